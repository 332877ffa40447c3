"""OGB-style summary: test score at the best-validation epoch, mean ± unbiased std over runs."""
from __future__ import annotations

import math
import statistics


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and unbiased (n - 1) standard deviation; the std of a single run is undefined (``None``)."""
    if not values:
        return math.nan, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt(mean: float, std: float | None, scale: float = 100.0) -> str:
    """``81.53 ± 0.42`` (percent by default)."""
    return f"{mean * scale:.2f}" + ("" if std is None else f" ± {std * scale:.2f}")


_NOT_SCORES = ("run", "seed", "split", "best_epoch", "epochs_run")


def summarize(runs: list[dict]) -> dict:
    """``KEY_mean`` and ``KEY_std`` of every numeric field the runs share (``test``, ``val``, ``teacher_test``,
    ``seconds``, ...), ids and epoch counts aside: the one summary every gkd result carries."""
    keys = [k for k, v in runs[0].items() if k not in _NOT_SCORES and isinstance(v, (int, float))
            and not isinstance(v, bool) and all(isinstance(r.get(k), (int, float)) for r in runs)]
    out: dict = {}
    for k in keys:
        out[f"{k}_mean"], out[f"{k}_std"] = mean_std([r[k] for r in runs])
    return out


def environment() -> dict:
    """Versions, platform, CPU model and thread count: written into every results file."""
    import platform

    import numpy as np
    import torch
    import torch_geometric

    from ..version import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"gkd": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "numpy": np.__version__, "platform": platform.platform(),
            "cpu": cpu, "torch_threads": torch.get_num_threads()}
