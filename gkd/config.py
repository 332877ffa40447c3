"""Run configuration: defaults (per model) < YAML file < command-line flags.

Unknown YAML keys and wrongly typed values are errors, never silently ignored or overridden.
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .datasets.registry import check_dataset_args  # noqa: F401  (part of the config API)
from .errors import ConfigError, check, check_int
from .sections import flatten, nest
from .limits import (MAX_EPOCHS, MAX_HEADS, MAX_LAYERS, MAX_NODES, MAX_REPEATS, MAX_RUNS, MAX_SEED, MAX_WIDTH,
                     check_limits)

MAX_YAML_BYTES = 1 << 20  # configs are a few hundred bytes; this bounds what a hostile file can make the parser do

# Per-model defaults applied before YAML and flags; GAT's follow Veličković et al. (8 heads x 8, dropout 0.6, lr 0.005).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "gat": {"hidden_channels": 64, "heads": 8, "dropout": 0.6, "lr": 0.005},
}


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors and aliases (configs need none; a few hundred bytes of nested aliases
    expand to gigabytes, a recursive one to a cycle) and without duplicate keys (the last would silently win)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, f"anchors and aliases (&{event.anchor} / *{event.anchor})"
                                              " are not allowed in a gkd config", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class refuses it with its own message
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads 1e-3, 5e4 and 1.5e3 as strings (it wants a dot and a signed exponent: 1.0e-3). Configs
# are written the YAML 1.2 / Python way, so those are floats too.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def parse_yaml(text: str, source: str) -> Any:
    """``text`` as plain YAML (:class:`_StrictLoader`); any failure is one :class:`ConfigError` naming ``source``."""
    check(len(text) <= MAX_YAML_BYTES, f"{source} holds {len(text)} characters; expected at most {MAX_YAML_BYTES}",
          ConfigError)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        first = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"{source} is not plain YAML ({first}{where})") from None
    except RecursionError:
        raise ConfigError(f"{source} is nested too deeply; expected a flat mapping of plain values") from None


def bounded(default: Any, low: int, high: int) -> Any:
    """A dataclass field whose integer value must lie in ``[low, high]`` (:func:`gkd.limits.check_limits` reads the
    bound here, beside the field it bounds)."""
    return field(default=default, metadata={"bounds": (low, high)})


class Settings:
    """A run's settings: checked once by :meth:`validate`, then frozen.

    Subclasses say what to check in :meth:`check`; ``validate()`` runs it the first time only, so that nothing below
    the entry point checks the same values again. A validated object refuses assignment (make another with
    ``dataclasses.replace``, which is validated afresh), and what is derived from it (:meth:`derived`: a teacher's
    config, a distiller's options) is built once."""

    def check(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self):
        if not self.__dict__.get("_valid"):
            self.check()
            self.__dict__["_valid"] = True
        return self

    def to_nested(self) -> dict[str, dict[str, Any]]:
        """The settings in their nested layout (``SECTIONS``, :mod:`gkd.sections`): what a nested YAML config holds."""
        return nest(self)

    @property
    def validated(self) -> bool:
        return bool(self.__dict__.get("_valid"))

    def derived(self, key: str, build: Any) -> Any:
        """``build()``, computed once per validated object (every time before validation)."""
        if not self.validated:
            return build()
        cache = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_valid"):
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to field {name!r}: {type(self).__name__} is frozen once validated; make a new one "
                f"with dataclasses.replace(config, {name}=...)")
        object.__setattr__(self, name, value)


@dataclass
class RunConfig(Settings):
    """What every command that trains shares: the optimiser, early stopping and the seeds (run r: ``seed + r``)."""

    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = bounded(500, 1, MAX_EPOCHS)
    patience: int = 100
    runs: int = bounded(10, 1, MAX_RUNS)
    seed: int = bounded(0, 0, MAX_SEED)

    def check_run(self) -> None:
        from .train.selection import check_optim_args

        check_optim_args(self.epochs, self.patience, self.lr, self.weight_decay)
        check_int("runs", self.runs, 1, ConfigError)


@dataclass
class GraphRunConfig(RunConfig):
    """What ``gkd train`` and ``gkd distill`` share: the graph, the device and the size of the model they train."""

    dataset: str = "Cora"
    root: str | None = None
    dataset_args: dict = field(default_factory=dict)
    split: str | None = None  # random:TRAIN/VAL/TEST or per-class:TRAIN/VAL replaces the dataset's split
    metric: str | None = None  # acc | rocauc | f1-macro | ...: the score runs select on and report; None: the dataset's
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    hidden_channels: int = bounded(64, 1, MAX_WIDTH)
    num_layers: int = bounded(2, 1, MAX_LAYERS)
    dropout: float = 0.5

    def check_graph_run(self, model: str) -> None:
        """Everything about the run, checked before any data is loaded, with the messages the model, the trainer
        and the loader would give."""
        from .datasets.graphfile import parse_split
        from .nn.device import resolve_device
        from .nn.models import check_model_args, model_class

        model_class(model)
        resolve_device(self.device)
        if self.split is not None:
            parse_split(self.split)
        if self.metric is not None:
            from .metrics import check_metric

            check_metric(self.metric)
        check_model_args(self.num_layers, self.hidden_channels, self.dropout)
        self.check_run()
        check_dataset_args(self.dataset, self.dataset_args)


TERM_NODES_MEANING = "seed nodes drawn per epoch for the terms that teach unlabelled nodes"


@dataclass
class TrainConfig(GraphRunConfig):
    """``gkd train``: one backbone (``model``) and its method, over ``runs`` seeds."""

    SECTIONS: ClassVar[dict[str, dict[str, str]]] = {
        "data": {"dataset": "dataset", "root": "root", "args": "dataset_args", "split": "split", "metric": "metric"},
        "model": {"name": "model", "hidden_channels": "hidden_channels", "num_layers": "num_layers",
                  "dropout": "dropout", "heads": "heads"},
        "train": {"method": "method", "terms": "sd_terms", "term_args": "term_args", "generations": "generations",
                  "lr": "lr", "weight_decay": "weight_decay", "epochs": "epochs", "patience": "patience",
                  "batch_size": "batch_size", "fanout": "fanout", "refresh": "refresh", "term_nodes": "term_nodes"},
        "run": {"runs": "runs", "seed": "seed", "device": "device"},
    }

    model: str = "gcn"
    heads: int = bounded(8, 1, MAX_HEADS)
    generations: int = bounded(1, 1, MAX_REPEATS)  # born-again generations (gkd.distill.born_again)
    # plain | self-distill (the self terms in sd_terms) | the name of one registered self term (gkd terms)
    method: str = "plain"
    sd_terms: str | None = None  # with method self-distill; None: SELF_DISTILL_TERMS (neighbour,time)
    term_args: dict = field(default_factory=dict)  # {term: {option: value}}, e.g. {"neighbour": {"warmup": 10}}
    # mini-batch training (gkd.scale): seed nodes per batch; None: full-batch steps
    batch_size: int | None = bounded(None, 1, MAX_NODES)
    fanout: str | list | None = None  # neighbours sampled per layer, "15,10" or [15, 10]; None: 10 per layer
    refresh: int = bounded(1, 1, MAX_EPOCHS)  # with batch_size: epochs between the loss terms' full-graph refreshes
    # with batch_size: seed nodes drawn per epoch once a term that teaches unlabelled nodes is on; None: every node
    term_nodes: int | None = bounded(None, 1, MAX_NODES)

    def check(self) -> None:
        check_types(self)  # first: the checks below compare values
        self.check_graph_run(self.model)
        check(self.heads >= 1, f"heads={self.heads}; expected an integer >= 1", ConfigError)
        check_int("generations", self.generations, 1, ConfigError)
        from .train.trainer import REFRESH_MEANING

        check_int("refresh", self.refresh, 1, ConfigError, REFRESH_MEANING)
        if self.batch_size is None:
            given = [f"{k}={v!r}" for k, v, unset in (("fanout", self.fanout, None), ("refresh", self.refresh, 1),
                                                       ("term_nodes", self.term_nodes, None)) if v != unset]
            check(not given, f"{', '.join(given)}: read only with batch_size (mini-batch training); set batch_size "
                  "too", ConfigError)
        else:
            check_int("batch_size", self.batch_size, 1, ConfigError, "seed nodes per mini-batch")
            if self.term_nodes is not None:
                check_int("term_nodes", self.term_nodes, 1, ConfigError, TERM_NODES_MEANING)
            self.fanout_list()
        from .distill.registry import build_options

        options = build_options("self", self.terms(), self.term_args)  # every option checked before data loads
        check_limits(self)
        if self.term_nodes is not None and self.generations == 1:  # born-again generations teach every node
            # term_nodes bounds the epochs of the terms that teach unlabelled nodes (their registry entries say
            # which): for a method without one it would be silently ignored
            from .distill.registry import get_term

            check(any(get_term("self", n).caps.all_nodes for n in self.terms()), f"term_nodes={self.term_nodes}: "
                  f"read only when a term teaches unlabelled nodes (self-distillation's neighbour or depth term, "
                  f"born-again generations); method {self.method!r} has none", ConfigError)
        self.__dict__["_derived"] = {"term_options": options}  # built once, kept for the validated config

    def term_options(self) -> dict[str, Any]:
        """The options of the ``self`` terms :meth:`terms` names (``term_args`` applied), checked."""
        from .distill.registry import build_options

        return self.derived("term_options", lambda: build_options("self", self.terms(), self.term_args))

    def terms(self) -> tuple[str, ...]:
        """The registered ``self`` terms ``method`` switches on."""
        from .distill.registry import get_term, term_names
        from .distill.self_distill import SELF_DISTILL_TERMS, parse_terms

        if self.method == "self-distill":
            return parse_terms(SELF_DISTILL_TERMS if self.sd_terms is None else self.sd_terms)
        check(self.sd_terms is None, f"sd_terms={self.sd_terms!r} is read only with method self-distill; got "
              f"method={self.method!r} (use --self-distill, or --method self-distill)", ConfigError)
        if self.method == "plain":
            return ()
        methods = ("plain", "self-distill", *term_names("self"))
        check(isinstance(self.method, str) and self.method.lower() in methods, f"unknown method {self.method!r}; "
              f"expected one of {', '.join(methods)}", ConfigError)
        return (get_term("self", self.method).name,)

    def fanout_list(self) -> list[int]:
        """Neighbours sampled per layer, one positive integer per layer (``num_layers`` of them)."""
        if self.fanout is None:
            return [10] * self.num_layers
        items = self.fanout if isinstance(self.fanout, list) else str(self.fanout).split(",")
        try:
            out = [int(str(v).strip()) for v in items]
        except ValueError:
            out = []
        check(len(out) == self.num_layers and all(1 <= k <= MAX_NODES for k in out),
              f"fanout={self.fanout!r}; expected {self.num_layers} positive integers (at most {MAX_NODES}), one per "
              f"layer (num_layers={self.num_layers}), e.g. {','.join(['10'] * self.num_layers)!r}", ConfigError)
        return out

    def model_kwargs(self) -> dict[str, Any]:
        kw = {"hidden_channels": self.hidden_channels, "num_layers": self.num_layers, "dropout": self.dropout}
        if self.model.lower() == "gat":
            kw["heads"] = self.heads
        return kw

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _typed(cls: type, key: str, value: Any, source: str) -> Any:
    """Check ``value`` against the annotated type of ``cls.key``. What Python code naturally passes is taken in the
    form YAML would give it: ints (and NumPy numbers) where floats are expected, tuples where lists are, paths and
    ``torch.device`` where strings are."""
    hint = typing.get_type_hints(cls)[key]
    allowed = typing.get_args(hint) or (hint,)
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, numbers.Number) and type(value).__module__ == "numpy":
        value = value.item()  # np.float32(0.01) -> 0.01
    if isinstance(value, tuple) and list in allowed:
        value = list(value)
    elif str in allowed and (isinstance(value, os.PathLike) or type(value).__name__ == "device"):
        value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)  # root=Path(..), torch.device
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    elif float in allowed and isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer
            raise ConfigError(f"{source}: {key}={value}; expected a finite number") from None
    else:
        ok = isinstance(value, allowed)
    names = " or ".join("null" if a is type(None) else a.__name__ for a in allowed)
    check(ok, f"{source}: {key}={value!r} has type {type(value).__name__}; expected {names}", ConfigError)
    return value


def check_types(cfg: Any) -> None:
    """Every field of the config dataclass ``cfg`` has its annotated type, as YAML keys and flags are checked, so a
    config built in Python fails with the same one line; values are normalised in place as :func:`_typed` says."""
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, _typed(type(cfg), f.name, getattr(cfg, f.name), type(cfg).__name__))


def read_yaml(path: str | Path, cls: type = TrainConfig) -> dict[str, Any]:
    """Read a YAML mapping (:func:`parse_yaml`: no Python tags, aliases or duplicate keys; at most
    :data:`MAX_YAML_BYTES`) and check its keys and types against ``cls``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config {str(p)!r}: {e.strerror}") from None
    check(len(data) <= MAX_YAML_BYTES, f"config {str(p)!r} is larger than {MAX_YAML_BYTES} bytes; expected a small "
          "YAML mapping", ConfigError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {str(p)!r} is not UTF-8 text (byte {e.start}); expected a UTF-8 YAML file") \
            from None
    raw = parse_yaml(text, f"config {str(p)!r}")
    raw = {} if raw is None else raw
    check(isinstance(raw, dict), f"config {str(p)!r} holds a {type(raw).__name__}; expected a mapping of keys",
          ConfigError)
    return _checked(cls, flatten(cls, raw, f"config {str(p)!r}"), f"config {str(p)!r}", str(p))


def _checked(cls: type, raw: dict, where: str, source: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - known)
    sections = f"; sections: {', '.join(cls.SECTIONS)}" if getattr(cls, "SECTIONS", None) else ""
    check(not unknown, f"{where} has unknown key(s) {unknown}; known keys: {sorted(known)}{sections}", ConfigError)
    return {k: _typed(cls, k, v, source) for k, v in raw.items()}


def make_config(yaml_path: str | Path | None = None, flags: dict[str, Any] | None = None,
                cls: type = TrainConfig, source: str = "flag") -> Any:
    """defaults < per-model defaults < YAML < flags (only flags the user gave; ``None`` means not given). Flags are
    checked like YAML keys (``source`` names them in messages): ``KEY=VALUE`` flags hold any YAML value. The file and
    ``flags`` may use the nested layout (:mod:`gkd.sections`: ``{"teacher": {"model": "sage"}}``) or flat keys."""
    from_yaml = read_yaml(yaml_path, cls) if yaml_path else {}
    given = _checked(cls, {k: v for k, v in flatten(cls, flags or {}, source).items() if v is not None}, source,
                     source)
    model_defaults: dict[str, Any] = {}
    if any(f.name == "model" for f in dataclasses.fields(cls)):
        model = str(given.get("model", from_yaml.get("model", cls().model))).lower()
        model_defaults = MODEL_DEFAULTS.get(model, {})
    merged = {**model_defaults, **from_yaml, **given}
    if isinstance(from_yaml.get("term_args"), dict) and isinstance(given.get("term_args"), dict):
        # a flag sets one option of a term; the file's other options of that term stay (what is not a mapping is
        # left for the term's own check to refuse)
        old, new = from_yaml["term_args"], given["term_args"]
        merged["term_args"] = {t: {**old[t], **new[t]} if isinstance(old.get(t), dict) and isinstance(new.get(t), dict)
                               else new.get(t, old.get(t)) for t in {**old, **new}}
    for key in ("dataset_args", "teacher_args"):  # likewise: a flag sets one key, the file's others stay
        if isinstance(from_yaml.get(key), dict) and isinstance(given.get(key), dict):
            # teacher_args hold gkd train settings, nested or flat: flattened first, so that a flag overrides
            args = [flatten(TrainConfig, a, key) if key == "teacher_args" else a for a in (from_yaml[key], given[key])]
            merged[key] = {**args[0], **args[1]}
    return cls(**merged).validate()
