"""Upper bounds on the integers that size allocations or loops (seed, widths, heads, epochs, runs), and the checks
that apply them to a config dataclass."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError, check, check_int

# Upper bounds on the integers that size allocations or loops: far above any real run, low enough that a typo (an
# extra digit or ten) fails here with one line instead of as an overflow or allocator error after data has loaded.
MAX_SEED = 2**32 - 1  # NumPy's seed range; run r uses seed + r (torch takes up to 2**64 - 1)
MAX_WIDTH = 65536     # hidden_channels, position_dim, CNN block widths
MAX_HEADS = 64
MAX_EPOCHS = 10**6
MAX_RUNS = 10**4
INT_LIMITS: dict[str, tuple[int, int]] = {"seed": (0, MAX_SEED), "hidden_channels": (1, MAX_WIDTH),
                                          "heads": (1, MAX_HEADS),
                                          "epochs": (1, MAX_EPOCHS), "builder_epochs": (1, MAX_EPOCHS),
                                          "runs": (1, MAX_RUNS)}


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
