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
MAX_LAYERS = 128      # deep GNNs (GCNII) use 64; an artefact with more is refused as damaged
MAX_NODES = 2**31 - 1  # node counts (batch sizes, fan-outs, nodes drawn per epoch): above any graph's node count
MAX_REPEATS = 1000    # teachers per run, born-again generations: each multiplies the run's training time
MAX_STEPS = 1000      # loops a term runs per epoch (propagation or attack steps, noise draws, k nearest neighbours)
# Every float option is a float32 in the end (the optimiser's and the loss's tensors): larger magnitudes overflow to
# inf inside torch ("value cannot be converted to type float without overflow") after training has started.
MAX_FLOAT = 3.4028234663852886e38
MAX_TEMPERATURE = 1e4  # distillation losses scale by T**2: T = 1e20 gives inf * 0 = NaN
# A loss term's integer options: the ones that size a per-epoch loop; any other is at most MAX_NODES.
OPTION_LIMITS: dict[str, int] = {"steps": MAX_STEPS, "noise_draws": MAX_STEPS, "knn": MAX_STEPS, "dim": MAX_WIDTH}


def check_float(name: str, value: float) -> None:
    """``value`` is finite and within float32's range (:data:`MAX_FLOAT`)."""
    check(math.isfinite(value) and abs(value) <= MAX_FLOAT, f"{name}={value!r}; expected a finite number of "
          f"magnitude at most {MAX_FLOAT:.4g} (float32's range)", ConfigError)


def check_option(name: str, value: Any) -> None:
    """A loss term's option: floats as :func:`check_float`, integers at most :data:`OPTION_LIMITS` (or
    :data:`MAX_NODES`), so an extra digit or ten fails here instead of hanging or overflowing mid-training."""
    if isinstance(value, float):
        check_float(name, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        hi = OPTION_LIMITS.get(name, MAX_NODES)
        check(value <= hi, f"{name}={value!r}; expected an integer <= {hi}", ConfigError)


def check_limits(cfg: Any) -> None:
    """Every float option of the config dataclass ``cfg`` is finite and every bounded integer within its bounds (the
    field's ``metadata["bounds"]``, declared beside the field: ``gkd.config.bounded``). An infinite rate or
    temperature trains without complaint and reports garbage, so it is refused."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        bounds = f.metadata.get("bounds")
        if bounds is not None and v is not None:
            lo, hi = bounds
            check_int(f.name, v, lo, ConfigError)
            check(v <= hi, f"{f.name}={v!r}; expected an integer <= {hi}", ConfigError)
        elif f.name.endswith("_channels") and isinstance(v, list):
            for w in v:
                check_int(f.name, w, 1, ConfigError)
                check(w <= MAX_WIDTH, f"{f.name} width {w!r}; expected an integer <= {MAX_WIDTH}", ConfigError)
        elif isinstance(v, float):
            check_float(f.name, v)

# Sizes of the files gkd reads back (manifests, artefact weights, .npz archives), checked before a byte is read: a
# FIFO, a link to /dev/zero, a sparse multi-GB file or a zip bomb would otherwise hang, eat memory or hash for long.
MAX_MANIFEST_BYTES = 1 << 24     # 16 MiB: a manifest or a run record is a few kB
MAX_ARTIFACT_FILE_BYTES = 8 << 30  # a weights or positions file; each is also held to the size its manifest implies
SAFETENSORS_HEADER_BYTES = 1 << 20  # a safetensors file's JSON header and padding, beyond the tensors' bytes
# An .npz expands to at most max(MAX_NPZ_FREE_BYTES, MAX_NPZ_RATIO x its size on disk), and never beyond
# MAX_NPZ_BYTES: np.savez stores arrays uncompressed (ratio 1), savez_compressed of real features rarely passes 100x,
# while a zip bomb reaches about 1000x (2 MB on disk, 2 GiB in memory).
MAX_NPZ_FREE_BYTES = 256 << 20
MAX_NPZ_RATIO = 100
MAX_NPZ_BYTES = 64 << 30
MAX_NPZ_MEMBERS = 4096
