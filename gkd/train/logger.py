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


def summarize(runs: list[dict]) -> dict:
    test_mean, test_std = mean_std([r["test"] for r in runs])
    val_mean, val_std = mean_std([r["val"] for r in runs])
    return {"test_mean": test_mean, "test_std": test_std, "val_mean": val_mean, "val_std": val_std}
