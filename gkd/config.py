"""Run configuration: defaults (per model) < YAML file < command-line flags.

Unknown YAML keys and wrongly typed values are errors, never silently ignored or overridden.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, check, check_int

# Per-model defaults applied before YAML and flags; GAT's follow Veličković et al. (8 heads x 8, dropout 0.6, lr 0.005).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "gat": {"hidden_channels": 64, "heads": 8, "dropout": 0.6, "lr": 0.005},
}


def check_weights(name: str, weights: dict, known: tuple[str, ...] | None = None) -> None:
    """Per-term weights: numbers >= 0, keyed (when ``known`` is given) by known term names."""
    for k, v in weights.items():
        check(known is None or k in known, f"{name} has unknown term {k!r}; expected some of {', '.join(known or ())}",
              ConfigError)
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
              f"{name} {k}={v!r}; expected a number >= 0", ConfigError)


@dataclass
class TrainConfig:
    dataset: str = "Cora"
    root: str | None = None
    dataset_args: dict = field(default_factory=dict)
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
        from .nn.models import check_model_args, model_class
        from .train.trainer import check_optim_args

        # fail before any data is loaded, with the same messages the model and trainer would give
        model_class(self.model)
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
    """Read a YAML mapping with ``yaml.safe_load`` (no Python tags) and check its keys and types against ``cls``."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {str(p)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"config {str(p)!r} is not plain YAML ({first})") from None
    raw = {} if raw is None else raw
    check(isinstance(raw, dict), f"config {str(p)!r} holds a {type(raw).__name__}; expected a mapping of keys",
          ConfigError)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - known)
    check(not unknown, f"config {str(p)!r} has unknown key(s) {unknown}; known keys: {sorted(known)}", ConfigError)
    return {k: _typed(cls, k, v, str(p)) for k, v in raw.items()}


def make_config(yaml_path: str | Path | None = None, flags: dict[str, Any] | None = None,
                cls: type = TrainConfig) -> Any:
    """defaults < per-model defaults < YAML < flags (only flags the user gave; ``None`` means not given)."""
    from_yaml = read_yaml(yaml_path, cls) if yaml_path else {}
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    model_defaults: dict[str, Any] = {}
    if any(f.name == "model" for f in dataclasses.fields(cls)):
        model = str(given.get("model", from_yaml.get("model", cls().model))).lower()
        model_defaults = MODEL_DEFAULTS.get(model, {})
    merged = {**model_defaults, **from_yaml, **given}
    return cls(**merged).validate()
