"""``gkd distill``'s settings: the teacher, the student, the setting and the distiller's options, validated once."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


from ..config import GraphRunConfig, TrainConfig, bounded, check_limits, check_types, make_config
from ..distill.registry import get_term
from ..errors import ConfigError, check, check_int
from ..sections import flatten
from ..limits import MAX_EPOCHS, MAX_NODES, MAX_REPEATS
from .student import SETTINGS, DistillOptions


@dataclass
class DistillConfig(DistillOptions, GraphRunConfig):
    """``gkd distill`` configuration: the teacher (any ``gkd train`` key through ``teacher_args``), the student, the
    setting, and the distiller's :class:`DistillOptions` (inherited). Defaults < YAML < flags, as for ``gkd train``;
    in YAML, nested (:attr:`SECTIONS`, :mod:`gkd.sections`) or flat."""

    SECTIONS: ClassVar[dict[str, dict[str, str]]] = {
        "data": {"dataset": "dataset", "root": "root", "args": "dataset_args", "split": "split", "metric": "metric"},
        # the teachers' own optimiser and model sizes are gkd train keys in args (teacher_args)
        "teacher": {"model": "teacher", "method": "teacher_method", "count": "teachers",
                    "generations": "teacher_generations", "args": "teacher_args", "book": "book",
                    "batch_size": "batch_size", "fanout": "fanout", "refresh": "refresh"},
        "student": {"model": "student", "method": "method", "terms": "terms", "term_args": "term_args",
                    "kd_lambda": "kd_lambda", "temperature": "temperature", "label_smoothing": "label_smoothing",
                    "hidden_channels": "hidden_channels", "num_layers": "num_layers", "dropout": "dropout",
                    "lr": "lr", "weight_decay": "weight_decay", "epochs": "epochs", "patience": "patience",
                    "batch_size": "student_batch_size", "guard": "student_guard"},
        "setting": {"name": "setting", "inductive_fraction": "inductive_fraction"},
        # term_nodes bounds the all-node terms' seed nodes in the teachers' and the student's mini-batches alike
        "run": {"runs": "runs", "seed": "seed", "device": "device", "term_nodes": "term_nodes"},
    }

    teacher: str = "gcn"
    teacher_method: str = "self-distill"
    teacher_args: dict = field(default_factory=dict)
    # benchmarks/teacher_cost.py, the student's validation over six datasets and the sweep (GCN teachers), paired:
    # 3 teachers +0.14 ± 0.05 over 1 (of 2 generations); 2 generations +0.44 ± 0.10 over 1 (1 teacher); no effect on
    # WebKB / Actor from GCN, where the guard keeps the plain MLP
    teachers: int = bounded(3, 1, MAX_REPEATS)
    teacher_generations: int = bounded(2, 1, MAX_REPEATS)  # born-again
    student: str = "mlp"  # hidden_channels 64: benchmarks/gnn2mlp.py: 256 ties on validation, costs 4x
    setting: str = "transductive"
    inductive_fraction: float = 0.2
    terms: str | list | None = None  # a comma list or a list of names; DistillOptions parses it
    book: str | None = None
    # the teachers' mini-batches (gkd train's keys of the same names); the student trains full-batch
    batch_size: int | None = bounded(None, 1, MAX_NODES)
    fanout: str | list | None = None
    refresh: int = bounded(1, 1, MAX_EPOCHS)
    # with batch_size / student_batch_size: seed nodes per epoch of the all-node terms
    term_nodes: int | None = bounded(None, 1, MAX_NODES)
    # node mini-batches of the (graph-free) student; None: full-batch
    student_batch_size: int | None = bounded(None, 1, MAX_NODES)
    # also train the student plainly (labels only) and, when it has terms, without them; keep whichever is best on
    # validation: on heterophilous graphs a GNN teacher can be worse than an MLP, and gkd's terms lowered validation
    # (benchmarks/gnn2mlp.py: Texas, Wisconsin, Cornell)
    student_guard: bool = True

    def options(self) -> DistillOptions:
        """The distiller's options (method, terms, their options), validated; built once per validated config."""
        def build() -> DistillOptions:
            names = {f.name for f in dataclasses.fields(DistillOptions)}
            return DistillOptions(**{k: v for k, v in dataclasses.asdict(self).items() if k in names}).validate()

        return self.derived("options", build)

    def reliability_noise(self) -> float:
        """The feature-noise scale of the teachers' reliability probe (the ``reliability`` term's ``noise``)."""
        args = {k.lower(): v for k, v in self.term_args.items()}.get("reliability")
        return get_term("student", "reliability").make_options(args).noise

    def teacher_config(self) -> TrainConfig:
        """The teachers' ``gkd train`` config (this run's data, seeds and mini-batches, ``teacher_args`` on top),
        validated; built once per validated config."""
        return self.derived("teacher_config", self._teacher_config)

    def _teacher_config(self) -> TrainConfig:
        args = flatten(TrainConfig, self.teacher_args, "teacher_args")  # nested or flat, as a config file
        bad = sorted(set(args) & {"dataset", "root", "dataset_args", "runs", "seed", "model", "method",
                                               "generations", "split", "metric", "device", "batch_size", "fanout",
                                               "refresh", "term_nodes"})
        check(not bad, f"teacher_args may not set {bad}; use the distill options of the same name (teacher, "
              f"teacher_method, teacher_generations, ...)", ConfigError)
        flags = {"dataset": self.dataset, "root": self.root, "dataset_args": self.dataset_args, "runs": self.runs,
                 "split": self.split, "metric": self.metric,
                 "device": self.device, "seed": self.seed, "model": self.teacher,
                 "method": self.teacher_method, "generations": self.teacher_generations, "batch_size": self.batch_size,
                 "fanout": self.fanout, "refresh": self.refresh,
                 "term_nodes": self.term_nodes if self.batch_size is not None else None, **args}
        try:
            return make_config(None, flags, source="teacher_args")
        except TypeError as e:
            raise ConfigError(f"teacher_args: {e}") from None

    def check(self) -> None:
        check_types(self)  # first: the checks below compare values
        # kept flat (a nested spelling of the teachers' settings is the same run, and records as the same config)
        self.teacher_args = flatten(TrainConfig, self.teacher_args, "teacher_args")
        check(self.setting in SETTINGS, f"setting={self.setting!r}; expected one of {', '.join(SETTINGS)}",
              ConfigError)
        check(0.0 < self.inductive_fraction < 1.0,
              f"inductive_fraction={self.inductive_fraction!r}; expected a value in (0, 1)", ConfigError)
        self.check_graph_run(self.student)  # before any teacher trains
        check_int("teachers", self.teachers, 1, ConfigError)
        check_int("teacher_generations", self.teacher_generations, 1, ConfigError)
        opts = self.options()
        drop = opts.term_options().get("position")
        if drop is not None and drop.drop > 0 and isinstance(self.student, str):
            from ..nn.models import model_class

            check(not model_class(self.student).uses_graph, f"position drop={drop.drop}: it trains a graph-free "
                  f"student to answer without positions; student={self.student!r} reads the graph", ConfigError)
        if self.student_batch_size is not None:
            from ..nn.models import model_class
            from .student import minibatch_student_terms

            check_int("student_batch_size", self.student_batch_size, 1, ConfigError, "nodes per student mini-batch")
            check(not model_class(self.student).uses_graph, f"student_batch_size={self.student_batch_size}: "
                  f"node mini-batches are for graph-free students; student={self.student!r} reads the graph",
                  ConfigError)
            from .student import METHODS

            supported = minibatch_student_terms()
            bad = [t for t in opts.loss_terms if t not in supported]
            own = [t for t in bad if t in METHODS[opts.distiller]]
            what = f"method {opts.distiller}" if own else f"student term(s) {bad}"
            methods = [m for m, names in METHODS.items() if all(t in supported for t in names)]
            knowledge = {names[0] for names in METHODS.values() if names}  # kd, bookkd: each method's own
            extra = ", ".join(t for t in supported if t not in knowledge)
            check(not bad, f"student_batch_size={self.student_batch_size}: {what} need full-batch steps; expected "
                  f"method {', '.join(methods[:-1])} or {methods[-1]} with terms from {extra}", ConfigError)
            check(self.term_nodes is None or opts.distiller != "plain", f"term_nodes={self.term_nodes}: read only "
                  "when a term teaches unlabelled nodes; the student's method 'plain' has none", ConfigError)
        if self.term_nodes is not None:
            from ..config import TERM_NODES_MEANING

            check_int("term_nodes", self.term_nodes, 1, ConfigError, TERM_NODES_MEANING)
            check(self.batch_size is not None or self.student_batch_size is not None, f"term_nodes={self.term_nodes}"
                  ": read only with batch_size or student_batch_size (mini-batch training); set one too", ConfigError)
        check_limits(self)  # before the teachers' config, whose messages would name teacher_generations generations
        tcfg = self._teacher_config()  # validated: its term_nodes too
        # kept: a validated config's derived parts are built here, once
        self.__dict__["_derived"] = {"options": opts, "teacher_config": tcfg}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
