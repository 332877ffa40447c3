"""The teacher stage of GNN-to-MLP distillation: gkd's own teachers (an ensemble of self-distilled, born-again
GNNs), a knowledge book, or trained models of the user's, each turned into one :class:`TeacherStage`."""
from __future__ import annotations

import copy
import itertools
import time
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.inductive import inductive_split
from ..distill.knowledge import Knowledge, TeacherView, teacher_knowledge
from ..errors import ConfigError, check
from ..nn import build_model, to_adj_t
from ..nn.hidden import bind_edges
from ..metrics import get_metric
from .student import ensemble
from .train import build_method, train_run
from .distill_config import DistillConfig
from .scoring import score_model


def _teacher_data(data: Data, observed: Tensor) -> Data:
    if bool(observed.all()):
        d = copy.copy(data)
    else:
        d = data.subgraph(observed)
        d.meta = data.meta
    d.adj_t = to_adj_t(d.edge_index, d.num_nodes)
    return d


@dataclass
class TeacherStage:
    """What one seed's teacher leaves for its students: knowledge over all ``N`` nodes (``mask`` = the observed
    ones), the teacher's scores, and the split of the setting."""

    knowledge: Knowledge
    observed: Tensor
    masks: dict[str, Tensor]
    scores: dict[str, float]
    edge_index: Tensor  # the graph the teacher saw (original node ids)
    seconds: float
    teacher_logits: list[Tensor] = field(default_factory=list)  # per teacher, all N rows
    teachers: list[dict] = field(default_factory=list)  # model, method, seed, config of each
    view: TeacherView | None = None  # the first teacher, live (absent when read from a book)

    def first_teacher(self) -> "TeacherStage":
        """This stage as if it had trained its first teacher only (what ``teachers=1`` gives a student): its logits
        are the knowledge (no reliability scores: an ensemble's), the other fields as they are."""
        know = Knowledge(self.teacher_logits[0], self.knowledge.mask, self.knowledge.hidden)
        return dataclasses.replace(self, knowledge=know, teacher_logits=self.teacher_logits[:1],
                                   teachers=self.teachers[:1])


def teacher_stage(cfg: DistillConfig, data: Data, r: int, *, reliability: bool | None = None,
                  progress: bool | None = None, checkpoint=None) -> TeacherStage:
    """Train ``cfg.teachers`` teachers on what the setting lets them see and collect their knowledge once.

    ``checkpoint`` (a :class:`~gkd.train.checkpoint.RunCheckpoint`): each finished teacher is saved there, and a
    saved one is loaded instead of trained again."""
    seed = cfg.seed + r
    tcfg = cfg.teacher_config()
    n = data.num_nodes
    if cfg.setting == "inductive":
        sp = inductive_split(data, cfg.inductive_fraction, seed)
        observed, masks = sp.observed, {"test_tran": sp.test_tran, "test_ind": sp.test_ind}
    else:
        observed, masks = torch.ones(n, dtype=torch.bool), {}
    if reliability is None:
        reliability = "reliability" in cfg.options().active_terms
    tdata = _teacher_data(data, observed)
    factory, _ = build_method(tcfg)
    t0 = time.perf_counter()
    parts, first, records = [], None, []
    for j in range(cfg.teachers):  # teacher j of run r: seed + 1000 j, so ensembles of different K share teachers
        saved = checkpoint.teacher(r, j) if checkpoint is not None else None
        if saved is not None:
            arrays, weights, record = saved
            teacher = build_model(tcfg.model, tdata.num_features, tdata.meta.num_classes, **tcfg.model_kwargs())
            try:
                teacher.load_state_dict(weights)
            except RuntimeError:  # a hand-edited file with some weights missing or misshapen: train it again
                saved = None
        if saved is not None:
            parts.append(Knowledge(arrays["logits"], arrays["mask"], arrays.get("hidden"), arrays.get("reliability")))
        else:
            teacher, tres = train_run(tcfg, tdata, seed + 1000 * j, terms_factory=factory, progress=progress,
                                      desc=f"teacher {r}.{j}")
            parts.append(teacher_knowledge(teacher, tdata.x, tdata.adj_t, seed=seed,
                                           noise=cfg.reliability_noise() if reliability else 0.0))
            record = {"model": tcfg.model, "method": tcfg.method, "seed": seed + 1000 * j, "val": tres.val,
                      "best_epoch": tres.best_epoch, **tres.stats, "config": tcfg.to_dict()}
            if checkpoint is not None:
                k = parts[-1]
                checkpoint.save_teacher(r, j, {"logits": k.logits, "mask": k.mask, "hidden": k.hidden,
                                               "reliability": k.reliability}, teacher.state_dict(), record)
        records.append(record)
        first = first or (teacher, record["val"])
    seconds = time.perf_counter() - t0
    teacher, first_val = first
    k = ensemble(parts)

    def widen(t: Tensor | None) -> Tensor | None:  # observed-node rows → all-node rows (zeros elsewhere)
        if t is None:
            return None
        out = t.new_zeros((n, *t.shape[1:]))
        out[observed] = t
        return out

    know = Knowledge(widen(k.logits), observed.clone(), widen(k.hidden), widen(k.reliability))
    # the teacher answers held-out nodes with the full graph (GLNN's protocol)
    scores = score_model(teacher, data.x, to_adj_t(data.edge_index, n), data.y, {"test": data.test_mask, **masks},
                     get_metric(data.meta.metric))
    scores["val"] = first_val
    edges = data.edge_index[:, observed[data.edge_index[0]] & observed[data.edge_index[1]]]
    node_map = torch.full((n,), -1, dtype=torch.long)
    node_map[observed] = torch.arange(int(observed.sum()))  # Data.subgraph keeps the node order
    view = TeacherView(teacher, tdata.x, tdata.adj_t, node_map)
    return TeacherStage(know, observed, masks, scores, edges, seconds, [widen(p.logits) for p in parts], records,
                        view)


def stage_from_book(book, cfg: DistillConfig, data: Data) -> TeacherStage:
    """A :class:`TeacherStage` read from a knowledge book (no teacher in memory)."""
    book.check_data(data)
    setting = book.manifest.get("setting", {})
    check(setting.get("name", "transductive") == cfg.setting, f"book {str(book.path)!r} was made for the "
          f"{setting.get('name')!r} setting; this run asks for {cfg.setting!r}", ConfigError)
    know = book.knowledge(hidden="rsd" in cfg.options().active_terms).to(data.x.device)
    observed = know.mask
    masks = {}
    if cfg.setting == "inductive":
        masks = {"test_tran": data.test_mask & observed, "test_ind": data.test_mask & ~observed}
    scores = dict(book.manifest.get("teacher_scores", {}))
    made_with = (book.manifest.get("dataset") or {}).get("metric", "acc")  # books before the record: accuracy
    if made_with != data.meta.metric:  # the stored scores are in another unit: score the book's teachers afresh
        from ..datasets.base import notice

        metric = get_metric(data.meta.metric)
        scores = {k: metric(know.logits[m], data.y[m]) for k, m in {"test": data.test_mask, "val": data.val_mask,
                                                                     **masks}.items()}
        notice(f"book {str(book.path)!r} scored its teachers by {made_with}; this run's teacher scores are "
               f"{data.meta.metric} of the book's ensemble")
    edges = data.edge_index[:, observed[data.edge_index[0]] & observed[data.edge_index[1]]]
    return TeacherStage(know, observed, masks, scores, edges, 0.0)


def stage_from_teachers(teachers: Sequence[nn.Module], cfg: DistillConfig, data: Data, r: int, *,
                        hidden: Sequence[str] | None = None) -> TeacherStage:
    """A :class:`TeacherStage` from trained models used as they are (any module called as ``model(x, edge_index)``;
    their mean probability teaches). Hidden features for ``rsd`` are captured by forward hooks (``hidden``: module
    names; default a PyG model's activations). Transductive: the teachers saw the whole graph."""
    check(cfg.setting == "transductive", "teachers you trained saw the graph you trained them on: fit them with "
          "setting='transductive' (gkd's own teachers support 'inductive')", ConfigError)
    check(len(teachers) >= 1 and all(isinstance(t, nn.Module) for t in teachers),
          f"teacher={teachers!r}; expected a trained nn.Module (or a list of them)", ConfigError)
    n, c = data.num_nodes, data.meta.num_classes
    graph = to_adj_t(data.edge_index, n).to(data.x.device) if getattr(data, "adj_t", None) is None else data.adj_t
    # each teacher called as its owner trained it: a PyG model with edge_index and the edge inputs its forward takes,
    # a zoo model as gkd's Trainer trains it (the structure alone)
    calls = [bind_edges(t, data) for t in teachers]
    opts = cfg.options()
    parts = []
    for t, call in zip(teachers, calls):
        width = getattr(t, "in_channels", None)
        check(width in (None, -1, data.num_features), f"teacher {type(t).__name__} reads in_channels={width} "
              f"features; the graph has {data.num_features}", ConfigError)
        try:
            know = teacher_knowledge(call, data.x, graph, seed=cfg.seed + r, hidden=hidden,
                                     noise=cfg.reliability_noise() if "reliability" in opts.active_terms else 0.0)
        except RuntimeError as e:  # shape or dtype clash inside the user's model
            raise ConfigError(f"teacher {type(t).__name__} failed on this graph ({str(e).splitlines()[0][:200]})") \
                from None
        check(tuple(know.logits.shape) == (n, c), f"teacher {type(t).__name__} answered with logits of shape "
              f"{tuple(know.logits.shape)}; the graph needs ({n}, {c}) (one row per node, one column per class)",
              ConfigError)
        parts.append(know)
    k = ensemble(parts)
    scores = score_model(calls[0], data.x, graph, data.y, {"test": data.test_mask, "val": data.val_mask},
                     get_metric(data.meta.metric))
    records = [{"model": type(t).__name__, "method": "given", "module": type(t).__module__} for t in teachers]
    view = TeacherView(calls[0], data.x, graph, torch.arange(n))
    return TeacherStage(k, torch.ones(n, dtype=torch.bool), {}, scores, data.edge_index, 0.0,
                        [p.logits for p in parts], records, view)


def teachers_device(teachers: Sequence[nn.Module], device: torch.device, spec: str) -> torch.device:
    """Where given teachers run: their own device, which ``device='auto'`` follows (a teacher trained on the CPU
    distils on the CPU, on any machine); a device named otherwise must be theirs: moving a user's module is theirs
    to do."""
    found = {p.device for t in teachers for p in itertools.chain(t.parameters(), t.buffers())}
    check(len(found) <= 1, f"the teachers' parameters are on {sorted(map(str, found))}; expected one device",
          ConfigError)
    if not found:
        return device
    (where,) = found
    if str(spec).strip().lower() == "auto":
        return where
    check(where.type == device.type and (where.index or 0) == (device.index or 0),
          f"device={spec!r} but the teacher's parameters are on {where}; move it (teacher.to({str(device)!r})) "
          f"or pass device={str(where)!r} (or 'auto', which follows the teacher)", ConfigError)
    return device


def book_teacher(book) -> dict[str, Any]:
    """The teacher fields of a result, read from a book's manifest (its teachers' records)."""
    records = book.manifest.get("teachers") or [{}]
    first = records[0] if isinstance(records[0], dict) else {}
    config = first.get("config") if isinstance(first.get("config"), dict) else {}
    return {"teacher": first.get("model"), "teacher_method": first.get("method"), "teachers": len(records),
            "teacher_generations": config.get("generations")}
