r"""GNN-to-MLP distillation, the whole pipeline: teachers → knowledge (or a book) → graph-free student → artefact.

:class:`GNNToMLP` is both the Python API and what ``gkd distill`` runs (:func:`run_distillation` fits one per seed),
so the two cannot drift::

    from gkd import GNNToMLP
    est = GNNToMLP(method="gkd").fit(data)                  # gkd's default teachers, exactly as `gkd distill`
    est = GNNToMLP(method="gkd").fit(data, teacher=my_gnn)  # any model called as model(x, edge_index), as is
    est.save("student/"); student = gkd.load("student/")    # pickle-free artefact, served without the graph

``teacher`` may also be a list of models (their mean probability teaches), a
:class:`~gkd.distill.knowledge.Knowledge`, or the path of a knowledge book (``gkd book``).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..book import Book, open_book
from ..config import GraphRunConfig, TrainConfig, check_limits, check_types, make_config
from ..datasets.inductive import inductive_split
from ..distill.amkd import TeacherView
from ..distill.knowledge import Knowledge, teacher_knowledge
from ..distill.registry import get_term
from ..errors import ConfigError, check, check_int
from ..nn import build_model, to_adj_t
from ..nn.device import resolve_device
from ..nn.hidden import forward as model_forward
from ..nn.hidden import bind_edges, takes_graph
from ..nn.position import extend_to_new_nodes
from ..nn.serving import Student
from ..train.checkpoint import RunCheckpoint
from ..metrics import get_metric
from ..train.trainer import FitResult
from . import artifact
from .seeds import data_loader, given_data, one_class_record, run_seeds, with_metric
from .student import SETTINGS, DistillOptions, distill_mlp, ensemble
from .train import build_method, check_term_nodes, train_run


@dataclass
class DistillConfig(DistillOptions, GraphRunConfig):
    """``gkd distill`` configuration: the teacher (any ``gkd train`` key through ``teacher_args``), the student, the
    setting, and the distiller's :class:`DistillOptions` (inherited). Defaults < YAML < flags, as for ``gkd train``."""

    teacher: str = "gcn"
    teacher_method: str = "self-distill"
    teacher_args: dict = field(default_factory=dict)
    # benchmarks/teacher_cost.py, the student's validation over six datasets and the sweep (GCN teachers), paired:
    # 3 teachers +0.14 ± 0.05 over 1 (of 2 generations); 2 generations +0.44 ± 0.10 over 1 (1 teacher); no effect on
    # WebKB / Actor from GCN, where the guard keeps the plain MLP
    teachers: int = 3
    teacher_generations: int = 2  # born-again
    student: str = "mlp"  # hidden_channels 64: benchmarks/gnn2mlp.py: 256 ties on validation, costs 4x
    setting: str = "transductive"
    inductive_fraction: float = 0.2
    terms: str | list | None = None  # a comma list or a list of names; DistillOptions parses it
    book: str | None = None
    # the teachers' mini-batches (gkd train's keys of the same names); the student trains full-batch
    batch_size: int | None = None
    fanout: str | list | None = None
    refresh: int = 1
    term_nodes: int | None = None  # with batch_size / student_batch_size: seed nodes per epoch of the all-node terms
    student_batch_size: int | None = None  # node mini-batches of the (graph-free) student; None: full-batch
    # also train the student plainly (labels only) and, when it has terms, without them; keep whichever is best on
    # validation: on heterophilous graphs a GNN teacher can be worse than an MLP, and gkd's terms lowered validation
    # (benchmarks/gnn2mlp.py: Texas, Wisconsin, Cornell)
    student_guard: bool = True

    def options(self) -> DistillOptions:
        names = {f.name for f in dataclasses.fields(DistillOptions)}
        return DistillOptions(**{k: v for k, v in dataclasses.asdict(self).items() if k in names}).validate()

    def reliability_noise(self) -> float:
        """The feature-noise scale of the teachers' reliability probe (the ``reliability`` term's ``noise``)."""
        args = {k.lower(): v for k, v in self.term_args.items()}.get("reliability")
        return get_term("student", "reliability").make_options(args).noise

    def teacher_config(self) -> TrainConfig:
        bad = sorted(set(self.teacher_args) & {"dataset", "root", "dataset_args", "runs", "seed", "model", "method",
                                               "generations", "split", "metric", "device", "batch_size", "fanout",
                                               "refresh", "term_nodes"})
        check(not bad, f"teacher_args may not set {bad}; use the distill options of the same name (teacher, "
              f"teacher_method, teacher_generations, ...)", ConfigError)
        flags = {"dataset": self.dataset, "root": self.root, "dataset_args": self.dataset_args, "runs": self.runs,
                 "split": self.split, "metric": self.metric,
                 "device": self.device, "seed": self.seed, "model": self.teacher,
                 "method": self.teacher_method, "generations": self.teacher_generations, "batch_size": self.batch_size,
                 "fanout": self.fanout, "refresh": self.refresh,
                 "term_nodes": self.term_nodes if self.batch_size is not None else None, **self.teacher_args}
        try:
            return make_config(None, flags, source="teacher_args")
        except TypeError as e:
            raise ConfigError(f"teacher_args: {e}") from None

    def validate(self) -> "DistillConfig":
        check_types(self)  # first: the checks below compare values
        check(self.setting in SETTINGS, f"setting={self.setting!r}; expected one of {', '.join(SETTINGS)}",
              ConfigError)
        check(0.0 < self.inductive_fraction < 1.0,
              f"inductive_fraction={self.inductive_fraction!r}; expected a value in (0, 1)", ConfigError)
        self.check_graph_run(self.student)  # before any teacher trains
        check_int("teachers", self.teachers, 1, ConfigError)
        check_int("teacher_generations", self.teacher_generations, 1, ConfigError)
        drop = self.options().term_options().get("position")
        if drop is not None and drop.drop > 0 and isinstance(self.student, str):
            from ..nn.models import model_class

            check(not model_class(self.student).uses_graph, f"position drop={drop.drop}: it trains a graph-free "
                  f"student to answer without positions; student={self.student!r} reads the graph", ConfigError)
        if self.student_batch_size is not None:
            from ..nn.models import model_class
            from .student import MINIBATCH_STUDENT_TERMS

            check_int("student_batch_size", self.student_batch_size, 1, ConfigError, "nodes per student mini-batch")
            check(not model_class(self.student).uses_graph, f"student_batch_size={self.student_batch_size}: "
                  f"node mini-batches are for graph-free students; student={self.student!r} reads the graph",
                  ConfigError)
            opts = self.options()
            bad = [t for t in opts.active_terms if t not in MINIBATCH_STUDENT_TERMS]
            what = "method bookkd" if opts.distiller == "bookkd" else f"student term(s) {bad}"
            check(opts.distiller != "bookkd" and not bad, f"student_batch_size={self.student_batch_size}: {what} "
                  "need full-batch steps; expected method plain, glnn or gkd with terms from "
                  f"{', '.join(MINIBATCH_STUDENT_TERMS)}", ConfigError)
            check(self.term_nodes is None or opts.distiller != "plain", f"term_nodes={self.term_nodes}: read only "
                  "when a term teaches unlabelled nodes; the student's method 'plain' has none", ConfigError)
        if self.term_nodes is not None:
            from ..config import TERM_NODES_MEANING

            check_int("term_nodes", self.term_nodes, 1, ConfigError, TERM_NODES_MEANING)
            check(self.batch_size is not None or self.student_batch_size is not None, f"term_nodes={self.term_nodes}"
                  ": read only with batch_size or student_batch_size (mini-batch training); set one too", ConfigError)
        check_limits(self)  # before the teachers' config, whose messages would name teacher_generations generations
        check_term_nodes(self.teacher_config())
        self.options()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@torch.no_grad()
def _scores(model: nn.Module, x: Tensor, graph: Tensor | None, y: Tensor, masks: dict[str, Tensor],
            metric) -> dict[str, float]:
    with evaluating(model):
        out = node_logits(model, x, graph)
    return {k: metric(out[m], y[m]) for k, m in masks.items()}


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block, its own mode after (a given teacher is the user's model, a student
    the trainer's: neither is left changed)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def node_logits(model: nn.Module, x: Tensor, graph: Tensor | None = None) -> Tensor:
    """Every node's logits: a :class:`Student` with its stored positions, any other model as it is called."""
    if isinstance(model, Student):
        return model(x, torch.arange(x.size(0), device=x.device))
    return model_forward(model, x, graph, want_hidden=False)[0]


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
    scores = _scores(teacher, data.x, to_adj_t(data.edge_index, n), data.y, {"test": data.test_mask, **masks},
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
    scores = _scores(calls[0], data.x, graph, data.y, {"test": data.test_mask, "val": data.val_mask},
                     get_metric(data.meta.metric))
    records = [{"model": type(t).__name__, "method": "given", "module": type(t).__module__} for t in teachers]
    view = TeacherView(calls[0], data.x, graph, torch.arange(n))
    return TeacherStage(k, torch.ones(n, dtype=torch.bool), {}, scores, data.edge_index, 0.0,
                        [p.logits for p in parts], records, view)


def _teachers_device(teachers: Sequence[nn.Module], device: torch.device, spec: str) -> torch.device:
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


def guard_pick(val: dict[str, float]) -> str:
    """The student guard's choice: the best on validation; a tie keeps the earlier (the distilled student, then the
    one without terms, then the plain one), so the guard switches away only for a strictly better score."""
    return max(val, key=lambda name: (val[name], -list(val).index(name)))


def guard_rivals(opts: DistillOptions) -> dict[str, DistillOptions]:
    """The students the guard trains beside the distilled one, in :func:`guard_pick`'s tie order: without gkd's terms
    (when it has terms: the terms answer to validation too), then on the labels alone."""
    rivals = {"plain": DistillOptions(method="plain")}
    if opts.active_terms:
        rivals = {"no terms": dataclasses.replace(opts, method=opts.distiller, terms=(), term_args={}), **rivals}
    return rivals


def student_candidates(cfg: DistillConfig, data: Data, stage: TeacherStage, r: int, progress: bool | None = None,
                       guard: bool | None = None) -> dict[str, tuple[nn.Module, FitResult, float]]:
    """Train the stage's student, and with the guard (``cfg.student_guard`` unless ``guard`` says) its rivals
    (:func:`guard_rivals`): ``{"distilled": (student, result, seconds), "no terms": ..., "plain": ...}``."""
    opts = cfg.options()
    sdata = copy.copy(data)
    sdata.adj_t = None
    fit = dict(hidden_channels=cfg.hidden_channels, num_layers=cfg.num_layers, dropout=cfg.dropout, lr=cfg.lr,
               weight_decay=cfg.weight_decay, epochs=cfg.epochs, patience=cfg.patience, student=cfg.student,
               seed=cfg.seed + r, teacher_edge_index=stage.edge_index, progress=progress,
               batch_size=cfg.student_batch_size)
    num_samples = cfg.term_nodes if cfg.student_batch_size is not None else None
    todo = {"distilled": opts}
    if (cfg.student_guard if guard is None else guard) and opts.distiller != "plain" and isinstance(cfg.student, str):
        todo.update(guard_rivals(opts))
    out = {}
    for name, o in todo.items():
        t0 = time.perf_counter()
        model, res = distill_mlp(sdata, stage.knowledge, o, teacher=stage.view, **fit,
                                 num_samples=None if name != "distilled" and o.distiller == "plain" else num_samples)
        out[name] = (model, res, time.perf_counter() - t0)
    return out


def student_stage(cfg: DistillConfig, data: Data, stage: TeacherStage, r: int,
                  progress: bool | None = None) -> tuple[nn.Module, dict]:
    """Distil the stage's knowledge into ``cfg.student`` and score it in ``cfg.setting``: ``(student, run record)``.
    A graph-free student comes back as a :class:`Student` holding its position features."""
    seed = cfg.seed + r
    opts = cfg.options()
    metric = get_metric(data.meta.metric)
    n, observed, masks = data.num_nodes, stage.observed, stage.masks
    candidates = student_candidates(cfg, data, stage, r, progress)
    student, sres, seconds = candidates["distilled"]
    per_epoch = seconds / max(sres.epochs_run, 1)  # the distilled student's, whichever the guard keeps
    guard = None
    if len(candidates) > 1:
        kept = guard_pick({name: res.val for name, (_, res, _) in candidates.items()})
        guard = {"kept": kept, **{f"{name.replace(' ', '_')}_val": res.val for name, (_, res, _) in candidates.items()}}
        guard_seconds = round(sum(s for name, (_, _, s) in candidates.items() if name != "distilled"), 3)
        student, sres, _ = candidates[kept]
    sgraph = to_adj_t(stage.edge_index, n).to(data.x.device) if takes_graph(student) else None
    sscores = _scores(student, data.x, sgraph, data.y, masks, metric) if masks else {}
    run = {"run": r, "seed": seed, "split": data.meta.split_index, "val": sres.val, "test": sres.test,
           "train": sres.train, "best_epoch": sres.best_epoch, "epochs_run": sres.epochs_run,
           "seconds": round(seconds, 3), "teacher_seconds": round(stage.seconds, 3),
           "seconds_per_epoch": per_epoch, **({"stats": sres.stats} if sres.stats else {}),
           **({"guard": guard, "guard_seconds": guard_seconds} if guard else {}), **sscores,
           **{f"teacher_{k}": v for k, v in stage.scores.items()}}
    if isinstance(student, Student) and student.positions is not None and masks:
        # graph-aided: new nodes' positions from their observed neighbours
        pos = student.positions[:-1]
        aided = Student(student.model, extend_to_new_nodes(pos, data.edge_index.to(pos.device), ~observed))
        run["test_ind_graph_aided"] = _scores(aided, data.x, None, data.y, {"m": masks["test_ind"]}, metric)["m"]
    elif "position" in opts.active_terms and "test_ind" in run:
        run["test_ind_graph_aided"] = run["test_ind"]  # the guard kept a student without positions: no graph to aid
    run |= served_scores(student, data, metric)
    if cfg.student_batch_size is None:
        run |= _one_class(student, data, sgraph, r)
    return student, run


def _rows(value: Any, name: str) -> Tensor:
    """A tensor, or a NumPy array / nested list of numbers as a tensor (no copy for NumPy)."""
    if isinstance(value, Tensor):
        return value
    arr = np.asarray(value)
    check(arr.dtype.kind in "biuf", f"{name} has dtype {arr.dtype}; expected numbers", ConfigError)
    return torch.from_numpy(np.ascontiguousarray(arr))


@torch.no_grad()
def served_scores(student: nn.Module, data: Data, metric) -> dict[str, float]:
    """Validation and test scores of a graph-free student answering every node as one the graph never held
    (``student(x)``: features only, zero positions), the path new nodes are served through; beside the scores with
    stored positions, which only nodes of the training graph can have. Empty for a student that reads the graph."""
    if not isinstance(student, Student):
        return {}
    with evaluating(student):
        out = student(data.x)
    return {f"{s}_features_only": metric(out[data[f"{s}_mask"]], data.y[data[f"{s}_mask"]]) for s in ("val", "test")}


def _one_class(student: nn.Module, data: Data, graph: Tensor | None, r: int) -> dict:
    with torch.no_grad(), evaluating(student):
        pred = node_logits(student, data.x, graph).argmax(-1)
    return one_class_record(pred, data, r)


def run_distillation(cfg: DistillConfig, progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
                     resume: bool = False, save: str | os.PathLike | None = None,
                     before_save: Callable[[dict], None] | None = None) -> dict:
    """``cfg.runs`` seeds, each one :meth:`GNNToMLP.fit`, summarised (test at the student's best-validation epoch).

    ``save``: write the student of the best-validation seed there as a model artefact (:func:`gkd.save`);
    ``checkpoint_dir``/``resume``: each finished seed is kept there, and a killed run resumes; ``before_save``: as
    :func:`~gkd.pipeline.train.run_training`'s."""
    cfg.validate()
    if save is not None:
        artifact.check_saveable(save)
        check(checkpoint_dir is None, "save= with checkpoint_dir= is not supported: resumed seeds keep no "
              "student weights; run without checkpoints to save a student", ConfigError)
    checkpoint = RunCheckpoint(checkpoint_dir, {"command": "distill", **cfg.to_dict()}, resume)
    opened: dict = {}

    def one_seed(r: int, data: Data) -> dict:
        if cfg.book is not None and "book" not in opened:
            opened["book"] = open_book(cfg.book, data)
        est = GNNToMLP(config=cfg).fit(data, teacher=opened.get("book"), run=r, progress=progress)
        if save is not None and ("best" not in opened or est.result_["val"] > opened["best"].result_["val"]):
            opened["best"] = est
        return est.result_

    def head(data: Data) -> dict:
        opts = cfg.options()
        teacher = {"teacher": cfg.teacher, "teacher_method": cfg.teacher_method, "teachers": cfg.teachers,
                   "teacher_generations": cfg.teacher_generations}
        config, source = cfg.to_dict(), {}
        book = opened.get("book")
        if book is not None:  # what taught the student is what the book says, not what the flags say
            teacher = book_teacher(book)
            config.update(teacher)
            source = {"book": str(cfg.book), "book_manifest": {k: book.manifest[k] for k in (
                "dataset", "setting", "teachers", "temperature", "created", "gkd")}}
        return {"dataset": data.meta.name, **teacher, **source, "student": cfg.student, "method": opts.distiller,
                "terms": list(opts.active_terms), "setting": cfg.setting, "split": data.meta.split,
                "method_config": opts.to_dict(), "config": config}

    result = run_seeds(cfg.runs, one_seed, data_loader(cfg, resolve_device(cfg.device)), head=head,
                       checkpoint=checkpoint, progress=progress, desc=f"{cfg.teacher}->{cfg.student}/{cfg.dataset}")
    best = opened.get("best")
    if best is not None:
        result["saved"] = {"path": str(save), "run": best.result_["run"], "seed": best.result_["seed"]}
        if before_save is not None:
            before_save(result)
        best.save(save, metrics={k: v for k, v in best.result_.items() if isinstance(v, (int, float))})
    return result


def make_book(cfg: DistillConfig, out: str | os.PathLike, *, float16: bool = False, overwrite: bool = False,
              progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False) -> tuple[Data, TeacherStage]:
    """``gkd book``: train ``cfg``'s teachers once (seed ``cfg.seed``) and write their knowledge book to ``out``.

    Only a gkd book may be replaced (``overwrite``), and that is checked before any teacher trains."""
    from ..book import check_overwritable, write_book
    from ..io import check_new_path

    cfg.validate()
    check_new_path(out, "--out")
    check_overwritable(out, overwrite)
    ckpt = RunCheckpoint(checkpoint_dir, {"command": "book", **cfg.to_dict()}, resume)
    data = data_loader(cfg, resolve_device(cfg.device))(0, None)  # the data of run 0, as gkd distill loads it
    stage = teacher_stage(cfg, data, 0, reliability=True, progress=progress, checkpoint=ckpt)
    k = stage.knowledge
    write_book(out, data, stage.teacher_logits, stage.observed, temperature=cfg.temperature, hidden=k.hidden,
               reliability=k.reliability, teachers=stage.teachers, teacher_scores=stage.scores,
               setting={"name": cfg.setting, "inductive_fraction": cfg.inductive_fraction, "seed": cfg.seed},
               float16=float16, overwrite=overwrite)
    return data, stage


def book_teacher(book) -> dict[str, Any]:
    """The teacher fields of a result, read from a book's manifest (its teachers' records)."""
    records = book.manifest.get("teachers") or [{}]
    first = records[0] if isinstance(records[0], dict) else {}
    config = first.get("config") if isinstance(first.get("config"), dict) else {}
    return {"teacher": first.get("model"), "teacher_method": first.get("method"), "teachers": len(records),
            "teacher_generations": config.get("generations")}


class GNNToMLP:
    """Distil a GNN teacher into a graph-free MLP student; ``fit`` is one seed of ``gkd distill``.

    Keyword arguments are :class:`DistillConfig` fields (``method``, ``teacher``, ``teachers``, ``hidden_channels``,
    ``terms``, ``term_args``, ``setting``, ``seed``, ``device``, ...), validated here, before anything trains;
    ``config=`` passes a whole :class:`DistillConfig` instead.

    After :meth:`fit`: ``student_`` (an ``nn.Module``; graph-free students answer ``student_(x, index=None)``),
    ``result_`` (the run record ``gkd distill`` writes), ``teacher_`` (the stage's scores and records).
    """

    def __init__(self, method: str = "gkd", *, config: DistillConfig | None = None, **options: Any) -> None:
        if config is not None:
            check(not options and method == "gkd", "pass either config= or keyword options, not both", ConfigError)
            self.config = copy.deepcopy(config).validate()
        else:
            known = {f.name for f in dataclasses.fields(DistillConfig)}
            unknown = sorted(set(options) - known)
            check(not unknown, f"GNNToMLP got unknown option(s) {unknown}; expected DistillConfig fields: "
                  f"{', '.join(sorted(known))}", ConfigError)
            self.config = make_config(None, {"method": method, **options}, DistillConfig, source="GNNToMLP")
        self.student_: nn.Module | None = None
        self.result_: dict | None = None
        self.given_teachers_: list[dict] | None = None

    def fit(self, data: Data, teacher: Any = None, *, run: int = 0, hidden: Sequence[str] | None = None,
            progress: bool | None = False, checkpoint=None) -> "GNNToMLP":
        """Train the student on ``data`` (seed ``config.seed + run``).

        ``teacher``: ``None`` trains gkd's default teachers (``config.teachers`` self-distilled, born-again GNNs,
        exactly as ``gkd distill``); an ``nn.Module`` or a list of them is used as is; a ``Knowledge`` or a book
        (a path or an opened :class:`~gkd.book.Book`) is learned from directly.
        """
        cfg = self.config
        check(isinstance(data, Data) and isinstance(getattr(data, "y", None), Tensor),
              f"fit(data): expected a PyG Data with labels y and train/val/test masks, got {type(data).__name__}",
              ConfigError)
        data = with_metric(given_data(data), cfg.metric)
        self.given_teachers_ = None
        if teacher is None and cfg.book is not None:  # as gkd distill --book: one code path
            teacher = cfg.book
        device = resolve_device(cfg.device)
        given = teacher if isinstance(teacher, (list, tuple)) else [teacher]
        modules = [t for t in given if isinstance(t, nn.Module)]
        if modules:
            device = _teachers_device(modules, device, cfg.device)
        if data.x.device != device:
            data = data.to(device)
        if teacher is None:
            stage = teacher_stage(cfg, data, run, progress=progress, checkpoint=checkpoint)
        elif isinstance(teacher, (str, os.PathLike, Book)):
            book = open_book(teacher, data) if not isinstance(teacher, Book) else teacher
            stage = stage_from_book(book, cfg, data)
        elif isinstance(teacher, Knowledge):
            know = teacher.to(device).check_against(data.num_nodes, data.meta.num_classes)
            stage = TeacherStage(know, know.mask.clone(), {}, {}, data.edge_index, 0.0, [know.logits], [{}])
        else:
            stage = stage_from_teachers(list(given), cfg, data, run, hidden=hidden)
            self.given_teachers_ = stage.teachers
        self.student_, self.result_ = student_stage(cfg, data, stage, run, progress=progress)
        self.teacher_ = {"scores": stage.scores, "teachers": stage.teachers}
        self.data_ = data
        return self

    def _fitted(self) -> nn.Module:
        check(self.student_ is not None, "this GNNToMLP is not fitted yet; call fit(data) first", ConfigError)
        return self.student_

    @torch.no_grad()
    def predict_proba(self, x: Any, index: Any = None) -> Tensor:
        """Class probabilities for feature rows ``x`` (a tensor or a NumPy array, as scikit-learn estimators take;
        ``index``: their ids in the training graph, ``-1``/``None`` for new nodes). GNN students need the graph:
        use ``student_`` directly."""
        student = self._fitted().eval()
        check(isinstance(student, Student), "predict(x) answers with a graph-free student; this one is a GNN "
              "(call student_(x, edge_index))", ConfigError)
        x, index = _rows(x, "x"), (None if index is None else _rows(index, "index"))
        device = next(student.parameters()).device
        return student(x.float().to(device), None if index is None else index.long().to(device)).softmax(-1)

    def predict(self, x: Any, index: Any = None) -> Tensor:
        """Class predictions for feature rows ``x`` (see :meth:`predict_proba`)."""
        return self.predict_proba(x, index).argmax(-1)

    def save(self, path: str | os.PathLike, metrics: dict | None = None) -> Path:
        """Write the student as a model artefact (:func:`gkd.save`): weights, position features, manifest."""
        student = self._fitted()
        cfg = self.config
        position = ({"method": "fastrp", "dim": student.positions.size(1), "seed": cfg.seed + self.result_["run"],
                     "new_nodes": "zeros"} if isinstance(student, Student) and student.positions is not None
                    else None)
        if metrics is None:
            metrics = {k: v for k, v in self.result_.items() if isinstance(v, (int, float))}
        config = {**cfg.to_dict(), "dataset": self.data_.meta.name}
        given = getattr(self, "given_teachers_", None)
        if given:  # what taught it, not the config's defaults for gkd's own teachers
            config.update(teacher=given[0]["model"], teacher_method="given", teachers=len(given),
                          teacher_generations=None, teacher_args={})
        return artifact.save(copy.deepcopy(student).cpu(), path, data=copy.copy(self.data_).cpu(), metrics=metrics,
                             config=config, position=position)
