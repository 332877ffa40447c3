"""The one seed runner: every command repeats "one seed" over ``runs`` seeds through :func:`run_seeds`.

It owns what the pipelines share: the data of each run (datasets with several fixed splits, or a random split
seeded by the run, are reloaded per run; others load once), the progress bar, checkpoint/resume
(:class:`~gkd.train.checkpoint.RunCheckpoint`), the one summary (:func:`gkd.train.logger.summarize`: mean and std of
every numeric field of the run records) and the one result schema::

    {**head, "runs": [record, ...], "test_mean": ..., "test_std": ..., "val_mean": ..., ..., "seconds": ...,
     "versions": {...}}

A pipeline supplies ``one_seed(r, data) -> record`` (``record`` has at least ``run``, ``seed``, ``val`` and
``test``) and the fields that head its result.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

from tqdm.auto import tqdm

from ..train.checkpoint import RunCheckpoint
from ..train.logger import environment, fmt, mean_std, summarize

RECORD_KEYS = ("run", "seed", "val", "test")


def run_seeds(runs: int, one_seed: Callable[[int, Any], dict], data_for: Callable[[int, Any], Any], *,
              head: Callable[[Any], dict] | dict | None = None, checkpoint: RunCheckpoint | None = None,
              progress: bool | None = None, desc: str = "runs") -> dict:
    """Run ``one_seed(r, data)`` for ``r`` in ``range(runs)`` and return the result dict (module docstring).

    ``data_for(r, previous)`` gives run ``r``'s data (``previous``: the last run's, ``None`` at first) and is called
    for run 0 before the progress bar appears, so that a bad dataset is one error line, not a bar and then the error.
    A run found in ``checkpoint`` is not run again. ``head(data)`` (or a dict) supplies the result's leading fields.
    """
    start = time.perf_counter()
    data = data_for(0, None)
    records: list[dict] = []
    bar = tqdm(range(runs), desc=desc, disable=progress is False, dynamic_ncols=True, file=sys.stderr)
    for r in bar:
        if r > 0:
            data = data_for(r, data)
        saved = checkpoint.done(r) if checkpoint is not None else None
        if saved is None:
            saved = one_seed(r, data)
            missing = [k for k in RECORD_KEYS if k not in saved]
            assert not missing, f"one_seed's record lacks {missing}"  # a pipeline bug, not a user's input
            if checkpoint is not None:
                checkpoint.save(r, saved)
        records.append(saved)
        m, s = mean_std([x["test"] for x in records])
        bar.set_postfix(test=fmt(m, s))
    fields = head(data) if callable(head) else dict(head or {})
    return {**fields, "runs": records, **summarize(records), "seconds": round(time.perf_counter() - start, 3),
            "versions": environment()}
