"""Run configuration: defaults (per model) < YAML file < command-line flags.

Unknown YAML keys and wrongly typed values are errors, never silently ignored or overridden.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, check, check_int
from .limits import INT_LIMITS, MAX_WIDTH

MAX_YAML_BYTES = 1 << 20  # configs are a few hundred bytes; this bounds what a hostile file can make the parser do

# Per-model defaults applied before YAML and flags; GAT's follow Veličković et al. (8 heads x 8, dropout 0.6, lr 0.005).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "gat": {"hidden_channels": 64, "heads": 8, "dropout": 0.6, "lr": 0.005},
}


def check_weights(name: str, weights: dict, known: tuple[str, ...] | None = None) -> None:
    """Per-term weights: finite numbers >= 0, keyed (when ``known`` is given) by known term names."""
    for k, v in weights.items():
        check(known is None or k in known, f"{name} has unknown term {k!r}; expected some of {', '.join(known or ())}",
              ConfigError)
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf,
              f"{name} {k}={v!r}; expected a finite number >= 0", ConfigError)


def check_limits(cfg: Any) -> None:
    """Every float option of the config dataclass ``cfg`` is finite and every integer in :data:`INT_LIMITS` within
    its bounds. An infinite rate or temperature trains without complaint and reports garbage, so it is refused."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in INT_LIMITS:
            lo, hi = INT_LIMITS[f.name]
            check_int(f.name, v, lo, ConfigError)
            check(v <= hi, f"{f.name}={v!r}; expected an integer <= {hi}", ConfigError)
        elif f.name.endswith("_channels") and isinstance(v, list):
            for w in v:
                check_int(f.name, w, 1, ConfigError)
                check(w <= MAX_WIDTH, f"{f.name} width {w!r}; expected an integer <= {MAX_WIDTH}", ConfigError)
        elif isinstance(v, float):
            check(math.isfinite(v), f"{f.name}={v!r}; expected a finite number", ConfigError)


def check_dataset_args(dataset: str, args: dict) -> None:
    """Loader arguments are scalars the loader takes, checked before anything is loaded (a key the loader lacks
    would otherwise surface as a Python ``TypeError`` from inside it)."""
    check(isinstance(args, dict), f"dataset_args={args!r}; expected a mapping of loader arguments", ConfigError)
    for k, v in args.items():
        check(isinstance(k, str), f"dataset_args key {k!r}; expected a name", ConfigError)
        check(v is None or isinstance(v, (bool, int, float, str)),
              f"dataset_args {k}={v!r}; expected a number, string or boolean", ConfigError)
        check(not isinstance(v, float) or math.isfinite(v), f"dataset_args {k}={v!r}; expected a finite number",
              ConfigError)
    reserved = sorted(set(map(str, args)) & {"name", "root", "split"})
    check(not reserved, f"dataset_args may not set {reserved}; use --dataset, --root (the split follows the run)",
          ConfigError)
    from .datasets.registry import _LOADERS, available

    available()  # registers the loaders
    loader = _LOADERS.get(str(dataset).lower())
    if loader is None:
        return  # load() names the unknown dataset, with suggestions
    params = inspect.signature(loader).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # the loader checks its own arguments (synthetic-csbm)
    takes = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "split"]
    unknown = sorted(set(map(str, args)) - set(takes))
    check(not unknown, f"dataset_args {unknown}: the {dataset!r} loader takes "
          f"{'only ' + ', '.join(takes) if takes else 'no arguments'}", ConfigError)


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


@dataclass
class TrainConfig:
    dataset: str = "Cora"
    root: str | None = None
    dataset_args: dict = field(default_factory=dict)
    split: str | None = None  # random:TRAIN/VAL/TEST replaces the dataset's split (gkd.datasets.random_split)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    model: str = "gcn"
    hidden_channels: int = 64
    num_layers: int = 2
    dropout: float = 0.5
    heads: int = 8
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 500
    patience: int = 100
    runs: int = 10
    seed: int = 0
    generations: int = 1  # born-again generations (gkd.distill.born_again)
    # method and its options (gkd.distill.METHODS)
    method: str = "plain"
    sd_terms: str = "neighbour,time"
    sd_weights: dict = field(default_factory=dict)
    sd_warmup: int = 20
    sd_restart: bool = True
    sd_temperature: float = 4.0
    ls_epsilon: float = 0.1
    tfkd_weight: float = 0.1
    tfkd_temperature: float = 20.0

    def validate(self) -> "TrainConfig":
        from .datasets.graphfile import parse_split
        from .nn.device import resolve_device
        from .nn.models import check_model_args, model_class
        from .train.trainer import check_optim_args

        # fail before any data is loaded, with the same messages the model and trainer would give
        model_class(self.model)
        resolve_device(self.device)
        if self.split is not None:
            parse_split(self.split)
        check_model_args(self.num_layers, self.hidden_channels, self.dropout)
        check_optim_args(self.epochs, self.patience, self.lr, self.weight_decay)
        check(self.runs >= 1, f"runs={self.runs}; expected an integer >= 1", ConfigError)
        check(self.heads >= 1, f"heads={self.heads}; expected an integer >= 1", ConfigError)
        check_int("generations", self.generations, 1, ConfigError)
        check(isinstance(self.sd_restart, bool), f"sd_restart={self.sd_restart!r}; expected true or false",
              ConfigError)
        check(self.sd_warmup >= 0, f"sd_warmup={self.sd_warmup}; expected an integer >= 0", ConfigError)
        check(self.sd_temperature > 0, f"sd_temperature={self.sd_temperature}; expected > 0", ConfigError)
        check(self.tfkd_temperature > 0, f"tfkd_temperature={self.tfkd_temperature}; expected > 0", ConfigError)
        check_weights("sd_weights", self.sd_weights)
        from .distill.self_distill import parse_terms

        # weights for terms that are off would be ignored without a word
        terms = parse_terms(self.sd_terms)
        inactive = sorted(set(self.sd_weights) - set(terms))
        check(not inactive, f"sd_weights given for term(s) {inactive} that are not in sd_terms ({', '.join(terms)})",
              ConfigError)
        check_dataset_args(self.dataset, self.dataset_args)
        check_limits(self)
        return self

    def model_kwargs(self) -> dict[str, Any]:
        kw = {"hidden_channels": self.hidden_channels, "num_layers": self.num_layers, "dropout": self.dropout}
        if self.model.lower() == "gat":
            kw["heads"] = self.heads
        return kw

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _typed(cls: type, key: str, value: Any, source: str) -> Any:
    """Check ``value`` against the annotated type of ``cls.key``; ints are accepted where floats are expected."""
    hint = typing.get_type_hints(cls)[key]
    allowed = typing.get_args(hint) or (hint,)
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    elif float in allowed and isinstance(value, int):
        return float(value)
    else:
        ok = isinstance(value, allowed)
    names = " or ".join("null" if a is type(None) else a.__name__ for a in allowed)
    check(ok, f"{source}: {key}={value!r} has type {type(value).__name__}; expected {names}", ConfigError)
    return value


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
    return _checked(cls, raw, f"config {str(p)!r}", str(p))


def _checked(cls: type, raw: dict, where: str, source: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - known)
    check(not unknown, f"{where} has unknown key(s) {unknown}; known keys: {sorted(known)}", ConfigError)
    return {k: _typed(cls, k, v, source) for k, v in raw.items()}


def make_config(yaml_path: str | Path | None = None, flags: dict[str, Any] | None = None,
                cls: type = TrainConfig, source: str = "flag") -> Any:
    """defaults < per-model defaults < YAML < flags (only flags the user gave; ``None`` means not given). Flags are
    checked like YAML keys (``source`` names them in messages): ``KEY=VALUE`` flags hold any YAML value."""
    from_yaml = read_yaml(yaml_path, cls) if yaml_path else {}
    given = _checked(cls, {k: v for k, v in (flags or {}).items() if v is not None}, source, source)
    model_defaults: dict[str, Any] = {}
    if any(f.name == "model" for f in dataclasses.fields(cls)):
        model = str(given.get("model", from_yaml.get("model", cls().model))).lower()
        model_defaults = MODEL_DEFAULTS.get(model, {})
    merged = {**model_defaults, **from_yaml, **given}
    cfg = cls(**merged).validate()
    check_limits(cfg)  # also for configs whose validate() does not (gkd cnn, gkd graph)
    return cfg
