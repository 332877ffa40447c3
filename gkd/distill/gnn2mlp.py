r"""GNN-to-MLP distillation: a graph-free student learns a GNN teacher's knowledge.

Methods (``method``): ``plain`` (the student alone, labels only), ``glnn`` (:mod:`.glnn`), ``gkd`` = GLNN plus
the structure-aware terms :data:`GKD_TERMS` that the ablation in ``benchmarks/gnn2mlp.py`` supports, and ``bookkd``
(:mod:`.bookkd`: the book's entries regularised, entropy-weighted, label smoothing). Any term can be
added to ``glnn`` by name (``terms=("neighbour",)``):

| term | source | what it adds |
|---|---|---|
| ``position`` | NOSMOG (ICLR 2023), FastRP | structural position features on the student's input |
| ``neighbour`` | FF-G2M (AAAI 2023), C&S | KL to the teacher smoothed over the graph, labels clamped |
| ``reliability`` | KRD (ICML 2023) | per-node KD weights from the teacher's entropy change under noise |
| ``rsd`` | NOSMOG (ICLR 2023) | student/teacher hidden-similarity (Gram) matching on node batches |
| ``self`` | gkd self-distillation | the student's own predictions smoothed over the teacher's graph |
| ``amkd`` | BSS (AAAI 2019) + AMKD | KD and a triplet term on node features attacked through the live teacher |

A method name may carry extra terms: ``glnn+amkd`` is ``glnn`` with ``terms=("amkd",)``, ``gkd+amkd`` adds ``amkd``
to :data:`GKD_TERMS`.

Python API, with any trained teacher::

    know = teacher_knowledge(teacher, data.x, data.edge_index)
    student, result = distill_mlp(data, know, method="gkd")
"""
from __future__ import annotations

import copy
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ..config import TrainConfig, check_dataset_args, check_limits, check_weights, make_config
from ..datasets import load
from ..datasets.inductive import inductive_split
from ..errors import ConfigError, DatasetError, check, check_int
from ..nn import build_model, to_adj_t
from ..nn.position import extend_to_new_nodes, fastrp
from ..train.experiment import environment, train_run
from ..train.logger import fmt, mean_std
from ..train.trainer import (FitResult, LossTerm, Trainer, check_optim_args, check_test_nodes, get_metric,
                             seed_everything)
from ..scale.distributed import rank_and_world, shard_mask
from .baselines import LabelSmoothing
from .amkd import GraphBoundaryDistill, TeacherView
from .bookkd import BookKD
from .ffg2m import NeighbourKD
from .glnn import GLNN, check_temperature
from .knowledge import Knowledge, teacher_knowledge
from .krd import reliability_weights
from .nosmog import RepresentationSimilarity

STUDENT_TERMS = ("position", "neighbour", "reliability", "rsd", "self", "amkd")
GKD_TERMS = ("position", "neighbour")  # benchmarks/gnn2mlp.py: best validation accuracy, GCN and SAGE
DISTILLERS = ("plain", "glnn", "gkd", "bookkd")
SETTINGS = ("transductive", "inductive")


def split_method(method: str) -> tuple[str, tuple[str, ...]]:
    """``"gkd+amkd"`` → ``("gkd", ("amkd",))``."""
    base, *extra = [p.strip() for p in str(method).split("+")]
    check(base in DISTILLERS, f"unknown distillation method {method!r}; expected one of {', '.join(DISTILLERS)}, "
          f"optionally +term (e.g. gkd+amkd)", ConfigError)
    bad = [t for t in extra if t not in STUDENT_TERMS]
    check(not bad, f"unknown student term(s) {bad} in method {method!r}; expected some of {', '.join(STUDENT_TERMS)}",
          ConfigError)
    return base, tuple(extra)


def parse_student_terms(method: str, terms: str | Iterable[str] | None) -> tuple[str, ...]:
    method, extra = split_method(method)
    if terms is None:
        names = list(GKD_TERMS if method == "gkd" else ()) + list(extra)
    else:
        names = [t.strip() for t in (terms.split(",") if isinstance(terms, str) else terms) if t.strip()] + list(extra)
    bad = [t for t in names if t not in STUDENT_TERMS]
    check(not bad, f"unknown student term(s) {bad}; expected some of {', '.join(STUDENT_TERMS)}", ConfigError)
    check(method != "plain" or not names, f"method 'plain' takes no distillation terms; got {names}", ConfigError)
    twice = sorted({t for t in names if names.count(t) > 1})
    check(not twice, f"student term(s) {twice} given twice (terms={terms!r}, method={method!r}); expected each "
          "at most once", ConfigError)
    return tuple(names)


@dataclass
class DistillOptions:
    """The distiller's settings (method, lambda, temperature, terms and their knobs)."""

    method: str = "gkd"
    terms: tuple[str, ...] | None = None
    kd_lambda: float = 0.0
    temperature: float = 1.0
    term_weights: dict = field(default_factory=dict)
    position_dim: int = 64
    neighbour_steps: int = 10
    neighbour_alpha: float = 0.1
    reliability_noise: float = 1.0
    rsd_batch: int = 512
    label_smoothing: float = 0.1
    eta: float = 1.0             # amkd step size (Cora's binary features: 98% of attacks cross in 10 steps; 0.1: 2%)
    attack_steps: int = 10
    attack_samples: int = 256    # base nodes attacked at once at most (Cora's 140 all together)
    refresh: int = 10            # epochs between attacks (each costs full-graph teacher passes)
    margin: float = 0.05         # amkd: triplet margin (as for CNNs: chosen on digits validation)
    triplet_weight: float = 1.0

    def validate(self) -> "DistillOptions":
        from .amkd import check_attack_args

        self.terms = parse_student_terms(self.method, self.terms)
        self.method = split_method(self.method)[0]
        check_attack_args(self.eta, self.attack_steps, self.margin, self.attack_samples, self.refresh)
        check(isinstance(self.kd_lambda, (int, float)) and 0.0 <= self.kd_lambda <= 1.0,
              f"kd_lambda={self.kd_lambda!r}; expected a value in [0, 1]", ConfigError)
        check_temperature(self.temperature)
        check_weights("term_weights", self.term_weights, STUDENT_TERMS)
        inactive = sorted(set(self.term_weights) - set(self.terms))
        check(not inactive, f"term_weights given for term(s) {inactive} that are not switched on "
              f"({', '.join(self.terms) or 'none'})", ConfigError)
        # every knob is checked here, before any teacher trains, whether or not its term is on
        check_limits(self)
        check_int("neighbour_steps", self.neighbour_steps, 1, ConfigError)
        check_int("rsd_batch", self.rsd_batch, 2, ConfigError)
        check(0.0 <= self.neighbour_alpha < 1.0, f"neighbour_alpha={self.neighbour_alpha!r}; expected a value in "
              "[0, 1)", ConfigError)
        check(self.reliability_noise > 0, f"reliability_noise={self.reliability_noise}; expected > 0", ConfigError)
        check(0.0 <= self.label_smoothing < 1.0, f"label_smoothing={self.label_smoothing!r}; expected a value in "
              "[0, 1)", ConfigError)
        check(self.triplet_weight >= 0, f"triplet_weight={self.triplet_weight!r}; expected >= 0", ConfigError)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "terms": list(self.terms or ())}


def ensemble(parts: list[Knowledge]) -> Knowledge:
    """Several teachers' knowledge as one: logits = log of the mean probability; hidden of the first teacher."""
    if len(parts) == 1:
        return parts[0]
    probs = torch.stack([F.softmax(p.logits, dim=-1) for p in parts]).mean(0)
    rel = [p.reliability for p in parts if p.reliability is not None]
    return Knowledge(probs.clamp_min(1e-12).log(), parts[0].mask, parts[0].hidden,
                     torch.stack(rel).mean(0) if rel else None)


def position_features(edge_index: Tensor, num_nodes: int, observed: Tensor, dim: int, seed: int) -> Tensor:
    """FastRP on the observed graph; nodes outside it get zeros (graph-free)."""
    keep = observed[edge_index[0]] & observed[edge_index[1]]
    return fastrp(edge_index[:, keep], num_nodes, dim, seed=seed) * observed.unsqueeze(-1)


class _FixedGraph(LossTerm):
    """Runs a graph-reading term on a fixed graph (the student itself is called without one)."""

    def __init__(self, term: LossTerm, edge_index: Tensor) -> None:
        super().__init__(term.weight)
        self.term, self.name, self.edge_index = term, term.name, edge_index

    def forward(self, step) -> Tensor:
        return self.term(dataclasses.replace(step, graph=self.edge_index))

    def restart_from_best(self, epoch: int, best_epoch: int) -> bool:
        return self.term.restart_from_best(epoch, best_epoch)


def student_terms(opts: DistillOptions, know: Knowledge, data: Data, edge_index: Tensor,
                  teacher: TeacherView | None = None, epochs: int = 500, seed: int = 0) -> list[LossTerm]:
    """The loss terms of ``opts.method`` for a student on ``data``; ``edge_index``: the graph the teacher saw;
    ``teacher``: the live teacher, needed only by ``amkd``."""
    if opts.method == "plain":
        return []
    w = {t: 1.0 for t in STUDENT_TERMS} | opts.term_weights
    node_weight = None
    if "reliability" in opts.terms:
        check(know.reliability is not None, "the 'reliability' term needs the teacher's reliability scores; "
              "compute the knowledge with noise > 0", ConfigError)
        strength = min(w["reliability"], 1.0)  # its weight blends uniform (0) and KRD's weights (1)
        node_weight = (1.0 - strength) + strength * reliability_weights(know.reliability, data.train_mask)
    if opts.method == "bookkd":
        terms: list[LossTerm] = [BookKD(know.logits, data.y, data.train_mask, know.mask, temperature=opts.temperature,
                                        weight=1.0 - opts.kd_lambda), LabelSmoothing(opts.label_smoothing)]
    else:
        terms = [GLNN(know.logits, know.mask, opts.temperature, 1.0 - opts.kd_lambda, node_weight)]
    if "neighbour" in opts.terms:
        terms.append(NeighbourKD(know.logits, edge_index, data.y, data.train_mask, know.mask,
                                 temperature=opts.temperature, steps=opts.neighbour_steps,
                                 alpha=opts.neighbour_alpha, weight=w["neighbour"], node_weight=node_weight))
    if "self" in opts.terms:
        from .self_distill import NeighbourTerm

        terms.append(_FixedGraph(NeighbourTerm(weight=w["self"]), edge_index))
    if "rsd" in opts.terms:
        terms.append(RepresentationSimilarity(know.hidden, know.mask, opts.rsd_batch, weight=w["rsd"]))
    if "amkd" in opts.terms:
        check(teacher is not None, "the 'amkd' term attacks the teacher: it needs a live teacher (teacher=...), "
              "not a knowledge book", ConfigError)
        terms.append(GraphBoundaryDistill(teacher, know.logits, know.mask, data.x, data.y, data.train_mask,
                                          eta=opts.eta, steps=opts.attack_steps, max_samples=opts.attack_samples,
                                          refresh=opts.refresh, temperature=opts.temperature, margin=opts.margin,
                                          triplet_weight=opts.triplet_weight, total_epochs=epochs,
                                          weight=w["amkd"], seed=seed))
    return terms


def distill_mlp(data: Data, know: Knowledge, opts: DistillOptions | None = None, *, method: str | None = None,
                hidden_channels: int = 64, num_layers: int = 2, dropout: float = 0.5, lr: float = 0.01,
                weight_decay: float = 5e-4, epochs: int = 500, patience: int = 100, student: str | torch.nn.Module = "mlp",
                seed: int = 0, teacher_edge_index: Tensor | None = None, progress: bool | None = False,
                teacher: TeacherView | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Train a ``student`` (a zoo name, an MLP by default, or a built module) on ``data`` from the teacher's
    knowledge ``know``; returns it at its best-validation epoch with the trainer's result.

    ``data.x`` must already hold any position features. ``teacher_edge_index`` is the graph the teacher saw (default
    ``data.edge_index``); the student itself never reads a graph unless it is a GNN. ``teacher`` (the live teacher)
    is read only by the ``amkd`` term.
    """
    opts = copy.copy(opts) if opts is not None else DistillOptions()
    if method is not None:
        opts.method = method
    opts.validate()
    num_classes = data.meta.num_classes if getattr(data, "meta", None) is not None else int(data.y.max()) + 1
    know.check_against(data.num_nodes, num_classes)
    seed_everything(seed)
    if isinstance(student, torch.nn.Module):
        model = student
        for name, want in (("in_channels", data.num_features), ("out_channels", num_classes)):
            got = getattr(model, name, want)
            check(got == want, f"student {name}={got}; the data needs {want}", DatasetError)
    else:
        model = build_model(student, data.num_features, num_classes, hidden_channels=hidden_channels,
                            num_layers=num_layers, dropout=dropout)
    edge_index = data.edge_index if teacher_edge_index is None else teacher_edge_index
    rank, world = rank_and_world()
    train_data, trained = data, model
    if world > 1:  # DDP: this rank's loss covers its shard of the nodes; gradients are averaged over ranks
        from torch.nn.parallel import DistributedDataParallel

        shard = shard_mask(data.num_nodes, rank, world)
        know = Knowledge(know.logits, know.mask & shard, know.hidden, know.reliability)
        train_data = copy.copy(data)
        train_data.train_mask = data.train_mask & shard
        trained = DistributedDataParallel(model)
    terms = student_terms(opts, know, data, edge_index, teacher, epochs, seed)
    trainer = Trainer(trained, train_data, lr=lr, weight_decay=weight_decay, epochs=epochs, patience=patience, terms=terms,
                      metric=get_metric(data.meta.metric) if getattr(data, "meta", None) else get_metric("acc"),
                      progress=progress, desc="student", ce_weight=opts.kd_lambda if opts.method != "plain" else 1.0)
    return model, trainer.fit()


@dataclass
class DistillConfig(DistillOptions):
    """``gkd distill`` configuration: the teacher (any ``gkd train`` key through ``teacher_args``), the student, the
    setting, and the distiller's :class:`DistillOptions` (inherited). Defaults < YAML < flags, as for ``gkd train``."""

    dataset: str = "Cora"
    root: str | None = None
    dataset_args: dict = field(default_factory=dict)
    teacher: str = "gcn"
    teacher_method: str = "self-distill"
    teacher_args: dict = field(default_factory=dict)
    teachers: int = 3  # benchmarks/gnn2mlp.py: gkd student val +0.38 (GCN), -0.16 (SAGE); csbm h=0.3: +2.7
    teacher_generations: int = 2  # born-again; benchmarks/gnn2mlp.py: teacher val +0.9 (GCN), +1.2 (SAGE) on Cora
    student: str = "mlp"
    hidden_channels: int = 64  # the teacher's width; benchmarks/gnn2mlp.py: 256 ties on validation, costs 4x
    num_layers: int = 2
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 500
    patience: int = 100
    runs: int = 10
    seed: int = 0
    setting: str = "transductive"
    inductive_fraction: float = 0.2
    terms: str | None = None  # a comma list here (a YAML/flag value); DistillOptions parses it
    book: str | None = None

    def options(self) -> DistillOptions:
        names = {f.name for f in dataclasses.fields(DistillOptions)}
        return DistillOptions(**{k: v for k, v in dataclasses.asdict(self).items() if k in names}).validate()

    def teacher_config(self) -> TrainConfig:
        bad = sorted(set(self.teacher_args) & {"dataset", "root", "dataset_args", "runs", "seed", "model", "method",
                                               "generations"})
        check(not bad, f"teacher_args may not set {bad}; use the distill options of the same name (teacher, "
              f"teacher_method, teacher_generations, ...)", ConfigError)
        flags = {"dataset": self.dataset, "root": self.root, "dataset_args": self.dataset_args, "runs": self.runs,
                 "seed": self.seed, "model": self.teacher, "method": self.teacher_method,
                 "generations": self.teacher_generations, **self.teacher_args}
        try:
            return make_config(None, flags, source="teacher_args")
        except TypeError as e:
            raise ConfigError(f"teacher_args: {e}") from None

    def validate(self) -> "DistillConfig":
        from ..nn.models import check_model_args, model_class

        check(self.setting in SETTINGS, f"setting={self.setting!r}; expected one of {', '.join(SETTINGS)}",
              ConfigError)
        check(0.0 < self.inductive_fraction < 1.0,
              f"inductive_fraction={self.inductive_fraction!r}; expected a value in (0, 1)", ConfigError)
        model_class(self.student)
        check_model_args(self.num_layers, self.hidden_channels, self.dropout)
        check_optim_args(self.epochs, self.patience, self.lr, self.weight_decay)  # before any teacher trains
        check(self.runs >= 1, f"runs={self.runs}; expected an integer >= 1", ConfigError)
        check_int("teachers", self.teachers, 1, ConfigError)
        check_int("teacher_generations", self.teacher_generations, 1, ConfigError)
        self.teacher_config()
        self.options()
        check_dataset_args(self.dataset, self.dataset_args)
        check_limits(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@torch.no_grad()
def _scores(model: torch.nn.Module, x: Tensor, graph: Tensor | None, y: Tensor, masks: dict[str, Tensor],
            metric) -> dict[str, float]:
    model.eval()
    out = model(x, graph)
    return {k: metric(out[m], y[m]) for k, m in masks.items()}


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
    from . import build_method

    seed = cfg.seed + r
    tcfg = cfg.teacher_config()
    n = data.num_nodes
    if cfg.setting == "inductive":
        sp = inductive_split(data, cfg.inductive_fraction, seed)
        observed, masks = sp.observed, {"test_tran": sp.test_tran, "test_ind": sp.test_ind}
    else:
        observed, masks = torch.ones(n, dtype=torch.bool), {}
    if reliability is None:
        reliability = "reliability" in cfg.options().terms
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
                                           noise=cfg.reliability_noise if reliability else 0.0))
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
    know = book.knowledge()
    observed = know.mask
    masks = {}
    if cfg.setting == "inductive":
        masks = {"test_tran": data.test_mask & observed, "test_ind": data.test_mask & ~observed}
    scores = dict(book.manifest.get("teacher_scores", {}))
    edges = data.edge_index[:, observed[data.edge_index[0]] & observed[data.edge_index[1]]]
    return TeacherStage(know, observed, masks, scores, edges, 0.0)


def student_stage(cfg: DistillConfig, data: Data, stage: TeacherStage, r: int,
                  progress: bool | None = None) -> dict:
    """Distil the stage's knowledge into ``cfg.student`` and score it in ``cfg.setting``."""
    seed = cfg.seed + r
    opts = cfg.options()
    metric = get_metric(data.meta.metric)
    n, observed, masks = data.num_nodes, stage.observed, stage.masks
    sdata = copy.copy(data)
    sdata.adj_t = None
    pos = None
    if "position" in opts.terms:
        pos = position_features(data.edge_index, n, observed, cfg.position_dim, seed)
        sdata.x = torch.cat([data.x, pos], dim=-1)
    t0 = time.perf_counter()
    student, sres = distill_mlp(sdata, stage.knowledge, opts, hidden_channels=cfg.hidden_channels,
                                num_layers=cfg.num_layers, dropout=cfg.dropout, lr=cfg.lr,
                                weight_decay=cfg.weight_decay, epochs=cfg.epochs, patience=cfg.patience,
                                student=cfg.student, seed=seed, teacher_edge_index=stage.edge_index,
                                progress=progress, teacher=stage.view)
    seconds = time.perf_counter() - t0
    sgraph = to_adj_t(stage.edge_index, n) if getattr(student, "uses_graph", False) else None
    sscores = _scores(student, sdata.x, sgraph, data.y, masks, metric) if masks else {}
    run = {"run": r, "seed": seed, "split": data.meta.split_index, "val": sres.val, "test": sres.test,
           "train": sres.train, "best_epoch": sres.best_epoch, "epochs_run": sres.epochs_run,
           "seconds": round(seconds, 3), "teacher_seconds": round(stage.seconds, 3),
           "seconds_per_epoch": seconds / max(sres.epochs_run, 1), **({"stats": sres.stats} if sres.stats else {}),
           **sscores, **{f"teacher_{k}": v for k, v in stage.scores.items()}}
    if pos is not None and masks:  # graph-aided: new nodes' positions from their observed neighbours
        aided = torch.cat([data.x, extend_to_new_nodes(pos, data.edge_index, ~observed)], dim=-1)
        run["test_ind_graph_aided"] = _scores(student, aided, sgraph, data.y, {"m": masks["test_ind"]}, metric)["m"]
    return run


def distill_run(cfg: DistillConfig, data: Data, r: int, progress: bool | None = None) -> dict:
    """One seed of the pipeline: teacher → knowledge → student."""
    return student_stage(cfg, data, teacher_stage(cfg, data, r, progress=progress), r, progress=progress)


def summarize_runs(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if k not in ("run", "seed", "split", "best_epoch", "epochs_run")
            and isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for k in keys:
        out[f"{k}_mean"], out[f"{k}_std"] = mean_std([x[k] for x in runs])
    return out


def run_distillation(cfg: DistillConfig, progress: bool | None = None, checkpoint=None) -> dict:
    """``cfg.runs`` seeds of :func:`distill_run`, summarised (test at the student's best-validation epoch)."""
    cfg.validate()
    start = time.perf_counter()
    runs: list[dict] = []
    data = book = None
    bar = tqdm(range(cfg.runs), desc=f"{cfg.teacher}->{cfg.student}/{cfg.dataset}", disable=progress is False,
               dynamic_ncols=True, file=sys.stderr)
    for r in bar:
        data = load(cfg.dataset, cfg.root, split=r, **cfg.dataset_args) if data is None or \
            data.meta.num_splits > 1 else data
        check_test_nodes(data)
        saved = checkpoint.done(r) if checkpoint else None
        if saved is not None:
            runs.append(saved)
            continue
        if cfg.book is not None:
            if book is None:
                from ..book import open_book

                book = open_book(cfg.book, data)
            runs.append(student_stage(cfg, data, stage_from_book(book, cfg, data), r, progress=progress))
        else:
            runs.append(distill_run(cfg, data, r, progress=progress))
        if checkpoint:
            checkpoint.save(r, runs[-1])
        m, s = mean_std([x["test"] for x in runs])
        bar.set_postfix(test=fmt(m, s))
    summary = summarize_runs(runs)
    opts = cfg.options()
    source = {"book": str(cfg.book), "book_manifest": {k: book.manifest[k] for k in ("dataset", "setting",
              "teachers", "temperature", "created", "gkd")}} if book is not None else {}
    return {"dataset": data.meta.name, "teacher": cfg.teacher, "teacher_method": cfg.teacher_method, **source,
            "student": cfg.student, "method": opts.method, "terms": list(opts.terms), "setting": cfg.setting,
            **summary, "runs": runs, "seconds": round(time.perf_counter() - start, 3), "split": data.meta.split,
            "method_config": opts.to_dict(), "config": cfg.to_dict(), "versions": environment()}
