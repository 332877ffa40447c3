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

This module holds the distiller (:func:`distill_mlp`: knowledge in, student out). The whole pipeline that ``gkd
distill`` runs — teachers, ensembles, books, settings, seeds — is :class:`gkd.pipeline.GNNToMLP`. With any trained
teacher::

    know = teacher_knowledge(teacher, data.x, data.edge_index)
    student, result = distill_mlp(data, know, method="gkd")
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from ..config import check_limits, check_weights
from ..errors import ConfigError, DatasetError, check, check_int
from ..nn import build_model
from ..nn.hidden import takes_graph
from ..nn.position import fastrp
from ..nn.serving import Student
from ..scale.distributed import rank_and_world, shard_mask
from ..train.trainer import FitResult, LossTerm, Trainer, get_metric, seed_everything
from .amkd import GraphBoundaryDistill, TeacherView
from .baselines import LabelSmoothing
from .bookkd import BookKD
from .ffg2m import NeighbourKD
from .glnn import GLNN, check_temperature
from .knowledge import Knowledge
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
                weight_decay: float = 5e-4, epochs: int = 500, patience: int = 100,
                student: str | torch.nn.Module = "mlp", seed: int = 0, teacher_edge_index: Tensor | None = None,
                progress: bool | None = False, teacher: TeacherView | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Train a ``student`` (a zoo name, an MLP by default, or any module called as ``student(x)``, PyG's ``MLP``
    included) on ``data`` from the teacher's knowledge ``know``; returns it at its best-validation epoch with the
    trainer's result.

    Everything the method needs is built here: with the ``position`` term, FastRP position features of the nodes
    ``know`` covers are appended to the student's input, and the returned graph-free student is a
    :class:`~gkd.nn.serving.Student` that adds them itself (``student(x, index)``; new nodes get zeros). A GNN
    student is returned as is. ``teacher_edge_index`` is the graph the teacher saw (default ``data.edge_index``);
    ``teacher`` (the live teacher) is read only by the ``amkd`` term.
    """
    opts = copy.copy(opts) if opts is not None else DistillOptions()
    if method is not None:
        opts.method = method
    opts.validate()
    num_classes = data.meta.num_classes if getattr(data, "meta", None) is not None else int(data.y.max()) + 1
    know.check_against(data.num_nodes, num_classes)
    positions = None
    if "position" in opts.terms:  # NOSMOG's input: the student reads where a node sits, computed once here
        positions = position_features(data.edge_index, data.num_nodes, know.mask.cpu(), opts.position_dim, seed)
        data = copy.copy(data)
        data.x = torch.cat([data.x, positions.to(data.x.device)], dim=-1)
    seed_everything(seed)
    if isinstance(student, torch.nn.Module):
        model = student
        for name, want in (("in_channels", data.num_features), ("out_channels", num_classes)):
            got = getattr(model, name, want)
            check(got == want, f"student {name}={got}; the data needs {want}"
                  f"{' (features + position_dim)' if positions is not None and name == 'in_channels' else ''}",
                  DatasetError)
    else:
        model = build_model(student, data.num_features, num_classes, hidden_channels=hidden_channels,
                            num_layers=num_layers, dropout=dropout).to(data.x.device)
    edge_index = data.edge_index if teacher_edge_index is None else teacher_edge_index
    rank, world = rank_and_world()
    train_data, trained = data, model
    if world > 1:  # DDP: this rank's loss covers its shard of the nodes; gradients are averaged over ranks
        from torch.nn.parallel import DistributedDataParallel

        shard = shard_mask(data.num_nodes, rank, world).to(know.mask.device)
        know = Knowledge(know.logits, know.mask & shard, know.hidden, know.reliability)
        train_data = copy.copy(data)
        train_data.train_mask = data.train_mask & shard
        trained = DistributedDataParallel(model)
    terms = student_terms(opts, know, data, edge_index, teacher, epochs, seed)
    trainer = Trainer(trained, train_data, lr=lr, weight_decay=weight_decay, epochs=epochs, patience=patience,
                      terms=terms, progress=progress, desc="student",
                      metric=get_metric(data.meta.metric) if getattr(data, "meta", None) else get_metric("acc"),
                      ce_weight=opts.kd_lambda if opts.method != "plain" else 1.0)
    fit = trainer.fit()
    if takes_graph(model):
        return model, fit
    return Student(model, positions), fit
