r"""The student stage of GNN-to-MLP distillation: :func:`distill_mlp` (a teacher's knowledge in, a student out).

A method (``method``) is a named list of registered ``student`` terms (:data:`METHODS`), in the manner of
torchdistill: ``plain`` (none: the student alone, on labels), ``glnn`` (``kd``: :mod:`gkd.distill.glnn`), ``gkd``
(``kd`` plus the structure-aware terms :data:`GKD_TERMS` that the ablation in ``benchmarks/gnn2mlp.py`` supports)
and ``bookkd`` (``bookkd``, ``label-smoothing``: :mod:`gkd.distill.bookkd`). Any registered ``student`` term can be
added by name (``terms=("neighbour",)``; ``gkd terms`` lists them with their papers and options), and a method name
may carry extra terms: ``glnn+amkd`` is ``glnn`` with ``terms=("amkd",)``, ``gkd+amkd`` adds ``amkd`` to
:data:`GKD_TERMS`. Losses are added in the order the configuration names them: the method's terms, then ``terms``,
then those after ``+``. Term options come from ``term_args`` (``{"neighbour": {"steps": 5}, "bookkd": {"ramp":
50}}``).

The whole pipeline that ``gkd distill`` runs — teachers, ensembles, books, settings, seeds — is
:class:`gkd.pipeline.GNNToMLP`. With any trained teacher::

    know = teacher_knowledge(teacher, data.x, data.edge_index)
    student, result = distill_mlp(data, know, method="gkd")
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from ..distill.knowledge import Knowledge, TeacherView
from ..distill.losses import check_temperature
from ..distill.registry import StudentContext, TermOptions, build_options, get_term, parse_names, term_names
from ..config import Settings
from ..errors import ConfigError, DatasetError, check
from ..limits import check_limits
from ..nn import build_model
from ..nn.hidden import takes_graph
from ..nn.position import PositionDropout
from ..nn.student import Student
from ..scale.distributed import rank_and_world, shard_mask
from ..metrics import get_metric
from ..train.trainer import FitResult, LossTerm, Trainer, caps_of, seed_everything

GKD_TERMS = ("position", "neighbour")  # benchmarks/gnn2mlp.py: best validation on Cora; the student guard weighs them


def minibatch_student_terms() -> tuple[str, ...]:
    """The student terms node mini-batches support: those whose registry entry says ``minibatch``, and the input
    transforms (which add no loss), in registration order."""
    return tuple(n for n in term_names("student") if get_term("student", n).caps.minibatch
                 or get_term("student", n).caps.transform)

# each method's own terms (its knowledge term first); ``terms`` adds to them (gkd's default: GKD_TERMS)
METHODS: dict[str, tuple[str, ...]] = {"plain": (), "glnn": ("kd",), "gkd": ("kd",),
                                       "bookkd": ("bookkd", "label-smoothing")}
DISTILLERS = tuple(METHODS)
SETTINGS = ("transductive", "inductive")


def split_method(method: str) -> tuple[str, tuple[str, ...]]:
    """``"gkd+amkd"`` → ``("gkd", ("amkd",))``."""
    base, *extra = [p.strip() for p in str(method).split("+")]
    check(all(extra), f"method {method!r} has an empty term after '+'; expected e.g. gkd+amkd", ConfigError)
    check(base in DISTILLERS, f"unknown distillation method {method!r}; expected one of {', '.join(DISTILLERS)}, "
          f"optionally +term (e.g. gkd+amkd)", ConfigError)
    return base, parse_names("student", extra, "method")


def parse_student_terms(method: str, terms: str | Iterable[str] | None) -> tuple[str, ...]:
    """The student terms ``method`` and ``terms`` add to the method's own (:data:`METHODS`), in the order given."""
    method, extra = split_method(method)
    given = list(GKD_TERMS if method == "gkd" else ()) if terms is None else list(parse_names("student", terms))
    names = given + list(extra)
    check(method != "plain" or not names, f"method 'plain' takes no distillation terms; got {names}", ConfigError)
    every = METHODS[method] + tuple(names)
    twice = sorted({t for t in every if every.count(t) > 1})
    check(not twice, f"student term(s) {twice} given twice (terms={terms!r}, method={method!r}); expected each "
          f"at most once{f' (method {method} has {list(METHODS[method])} already)' if METHODS[method] else ''}",
          ConfigError)
    return tuple(names)


@dataclass
class DistillOptions(Settings):
    """The distiller's settings: method, terms and their options (``term_args``), lambda, temperature.

    ``method`` and ``terms`` keep what was given (``"gkd+amkd"``); :attr:`distiller` (``"gkd"``),
    :attr:`active_terms` (``("position", "neighbour", "amkd")``: what it adds to the method's own) and
    :attr:`loss_terms` (``("kd", "position", "neighbour", "amkd")``: every term, in loss order) are what they
    resolve to. ``label_smoothing`` is the ``label-smoothing`` term's ``epsilon`` (``term_args`` may set it
    instead)."""

    SECTIONS: ClassVar[dict[str, dict[str, str]]] = {"student": {
        "method": "method", "terms": "terms", "kd_lambda": "kd_lambda", "temperature": "temperature",
        "label_smoothing": "label_smoothing", "term_args": "term_args"}}

    method: str = "gkd"
    terms: tuple[str, ...] | None = None
    kd_lambda: float = 0.0
    temperature: float = 1.0
    label_smoothing: float = 0.1  # bookkd's, on the hard-label term
    term_args: dict = field(default_factory=dict)  # {term: {option: value}}, e.g. {"neighbour": {"steps": 5}}

    @property
    def distiller(self) -> str:
        return split_method(self.method)[0]

    @property
    def active_terms(self) -> tuple[str, ...]:
        return self.derived("active_terms", lambda: parse_student_terms(self.method, self.terms))

    @property
    def loss_terms(self) -> tuple[str, ...]:
        return METHODS[self.distiller] + self.active_terms

    def check(self) -> None:
        self.active_terms  # noqa: B018  (checks method and terms)
        check(isinstance(self.kd_lambda, (int, float)) and 0.0 <= self.kd_lambda <= 1.0,
              f"kd_lambda={self.kd_lambda!r}; expected a value in [0, 1]", ConfigError)
        check_temperature(self.temperature)
        check(0.0 <= self.label_smoothing < 1.0, f"label_smoothing={self.label_smoothing!r}; expected a value in "
              "[0, 1)", ConfigError)
        options = self.term_options()  # every option of every switched-on term, before any teacher trains
        check_limits(self)
        self.__dict__["_derived"] = {"term_options": options}  # built once, kept for the validated options

    def term_options(self) -> dict[str, TermOptions]:
        return self.derived("term_options", self._term_options)

    def _term_options(self) -> dict[str, TermOptions]:
        args = dict(self.term_args)
        if "label-smoothing" in self.loss_terms:
            given = dict(args.get("label-smoothing") or {})
            default = type(self).label_smoothing  # the field's default: --label-smoothing not given
            check(given.get("epsilon", self.label_smoothing) == self.label_smoothing
                  or self.label_smoothing == default,
                  f"label_smoothing={self.label_smoothing!r} and term_args label-smoothing.epsilon="
                  f"{given.get('epsilon')!r} disagree; expected one of them", ConfigError)
            args["label-smoothing"] = {"epsilon": self.label_smoothing, **given}
        return build_options("student", self.loss_terms, args)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "method": self.distiller, "terms": list(self.active_terms)}


def ensemble(parts: list[Knowledge]) -> Knowledge:
    """Several teachers' knowledge as one: logits = log of the mean probability; hidden of the first teacher."""
    if len(parts) == 1:
        return parts[0]
    probs = torch.stack([F.softmax(p.logits, dim=-1) for p in parts]).mean(0)
    rel = [p.reliability for p in parts if p.reliability is not None]
    return Knowledge(probs.clamp_min(1e-12).log(), parts[0].mask, parts[0].hidden,
                     torch.stack(rel).mean(0) if rel else None)


def student_terms(opts: DistillOptions, ctx: StudentContext,
                  options: dict[str, TermOptions] | None = None) -> list[LossTerm]:
    """The loss terms of ``opts`` (:attr:`DistillOptions.loss_terms`, in that order; an input transform adds none);
    ``prepare`` hooks must have run on ``ctx`` already (:func:`distill_mlp` runs them). ``options``: the terms'
    options, if already built (``opts.term_options()``)."""
    options = opts.term_options() if options is None else options
    terms = []
    for name in opts.loss_terms:
        term = get_term("student", name).make(ctx, options[name])
        if term is not None:
            terms.append(term)
    return terms


def distill_mlp(data: Data, know: Knowledge, opts: DistillOptions | None = None, *, method: str | None = None,
                hidden_channels: int = 64, num_layers: int = 2, dropout: float = 0.5, lr: float = 0.01,
                weight_decay: float = 5e-4, epochs: int = 500, patience: int = 100,
                student: str | torch.nn.Module = "mlp", seed: int = 0, teacher_edge_index: Tensor | None = None,
                progress: bool | None = False, teacher: TeacherView | None = None, batch_size: int | None = None,
                num_samples: int | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Train a ``student`` (a zoo name, an MLP by default, or any module called as ``student(x)``, PyG's ``MLP``
    included) on ``data`` from the teacher's knowledge ``know``; returns it at its best-validation epoch with the
    trainer's result.

    Everything the method needs is built here: with the ``position`` term, FastRP position features of the nodes
    ``know`` covers are appended to the student's input, and the returned graph-free student is a
    :class:`~gkd.nn.student.Student` that adds them itself (``student(x, index)``; new nodes get zeros). A GNN
    student is returned as is. ``teacher_edge_index`` is the graph the teacher saw (default ``data.edge_index``);
    ``teacher`` (the live teacher) is read only by the ``amkd`` term.

    ``batch_size``: a graph-free student trains on node mini-batches (memory bounded by the batch, not the graph):
    batches of training nodes until the distillation terms are on, then of every node (``num_samples``: that many
    drawn afresh each epoch), with the terms that support mini-batches (``kd`` and :func:`minibatch_student_terms`).
    """
    opts = opts if opts is not None else DistillOptions()
    if method is not None:
        opts = dataclasses.replace(opts, method=method)
    if not opts.validated:  # builds the options of every term, before any training (on a copy: the caller's stays
        opts = copy.copy(opts).validate()  # theirs to change)
    num_classes = data.meta.num_classes if getattr(data, "meta", None) is not None else int(data.y.max()) + 1
    know.check_against(data.num_nodes, num_classes)
    edge_index = data.edge_index if teacher_edge_index is None else teacher_edge_index
    ctx = StudentContext(data, know, edge_index, opts.temperature, 1.0 - opts.kd_lambda, epochs, seed, teacher,
                         patience=patience)
    options = opts.term_options()
    for name in opts.loss_terms:
        prepare = get_term("student", name).prepare
        if prepare is not None:
            prepare(ctx, options[name])
    positions = ctx.positions
    if positions is not None:  # the student reads where a node sits (NOSMOG), computed once here
        data = copy.copy(data)
        data.x = torch.cat([data.x, positions.to(data.x.device)], dim=-1)
        ctx.data = data
    seed_everything(seed)
    if isinstance(student, torch.nn.Module):
        model = student
        for name, want in (("in_channels", data.num_features), ("out_channels", num_classes)):
            got = getattr(model, name, want)
            check(got == want, f"student {name}={got}; the data needs {want}"
                  f"{' (features + position.dim)' if positions is not None and name == 'in_channels' else ''}",
                  DatasetError)
    else:
        model = build_model(student, data.num_features, num_classes, hidden_channels=hidden_channels,
                            num_layers=num_layers, dropout=dropout).to(data.x.device)
    rank, world = rank_and_world()
    train_data, trained, batches = data, model, {}
    drop = options["position"].drop if "position" in options else 0.0
    check(drop == 0 or not takes_graph(model), f"position drop={drop}: it trains a graph-free student to answer "
          f"without positions; {type(model).__name__} reads the graph", ConfigError)
    if positions is not None and drop > 0:
        trained = PositionDropout(model, positions.size(1), drop)
    check(num_samples is None or batch_size is not None, f"num_samples={num_samples}: read only with batch_size "
          "(node mini-batches); expected batch_size too", ConfigError)
    if batch_size is not None:
        check(not takes_graph(model), f"student batch_size={batch_size}: "
              f"node mini-batches are for graph-free students; {type(model).__name__} reads the graph", ConfigError)
        from ..scale import neighbor_loader

        batches = {"loader": neighbor_loader(data, [], batch_size, input_nodes=data.train_mask, seed=seed,
                                             rank=rank, world_size=world),
                   "term_loader": neighbor_loader(data, [], batch_size, seed=seed + 1, rank=rank, world_size=world,
                                                  num_samples=num_samples)}
    if world > 1:  # DDP: this rank's loss covers its shard of the nodes; gradients are averaged over ranks
        from torch.nn.parallel import DistributedDataParallel

        if not batches:  # full-batch: each rank's loss covers its shard of the nodes (mini-batches: the loaders')
            shard = shard_mask(data.num_nodes, rank, world).to(know.mask.device)
            ctx.knowledge = Knowledge(know.logits, know.mask & shard, know.hidden, know.reliability)
            train_data = copy.copy(data)
            train_data.train_mask = data.train_mask & shard
        trained = DistributedDataParallel(trained)
    terms = student_terms(opts, ctx, options)
    check(num_samples is None or any(caps_of(t).all_nodes for t in terms), f"num_samples={num_samples}: "
          f"read only when a term teaches unlabelled nodes; method {opts.distiller!r} has none", ConfigError)
    trainer = Trainer(trained, train_data, lr=lr, weight_decay=weight_decay, epochs=epochs, patience=patience,
                      terms=terms, progress=progress, desc="student",
                      metric=get_metric(data.meta.metric) if getattr(data, "meta", None) else get_metric("acc"),
                      ce_weight=opts.kd_lambda if opts.distiller != "plain" else 1.0, **batches)
    fit = trainer.fit()
    if takes_graph(model):
        return model, fit
    return Student(model, positions), fit
