"""The one seed runner: every command repeats "one seed" over ``runs`` seeds through :func:`run_seeds`.

It owns what the pipelines share: the data of each run (:func:`data_loader`: datasets with several fixed splits, or
a random split seeded by the run, are reloaded per run; others load once), the progress bar, checkpoint/resume
(:class:`~gkd.train.checkpoint.RunCheckpoint`), the one summary (:func:`gkd.train.logger.summarize`: mean and std of
every numeric field of the run records) and the one result schema::

    {**head, "runs": [record, ...], "test_mean": ..., "test_std": ..., "val_mean": ..., ..., "seconds": ...,
     "versions": {...}}

A pipeline supplies ``one_seed(r, data) -> record`` (``record`` has at least ``run``, ``seed``, ``val`` and
``test``) and the fields that head its result.
"""
from __future__ import annotations

import copy
import dataclasses
import sys
import time
from typing import Any, Callable

import torch
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ..datasets import DatasetMeta, check_data, load
from ..errors import DatasetError, check
from ..train.checkpoint import RunCheckpoint
from ..train.logger import environment, fmt, mean_std, summarize
from ..train.trainer import check_test_nodes

RECORD_KEYS = ("run", "seed", "val", "test")


def given_data(data: Data, split: str = "given masks") -> Data:
    """Your own graph as the pipelines take it: a shallow copy (adding ``adj_t`` or ``meta`` leaves yours untouched)
    with a :class:`DatasetMeta` when it carries none of gkd's, checked like a loaded dataset, with a test node (the
    score reported is test accuracy: without one it would be NaN)."""
    edges, x, y = (getattr(data, k, None) for k in ("edge_index", "x", "y"))
    check(not isinstance(edges, torch.Tensor) or edges.layout == torch.strided,
          "data.edge_index is a sparse adjacency; the pipelines take a [2, num_edges] edge_index "
          "(torch_geometric.utils.to_edge_index converts one)", DatasetError)
    check(not any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in (x, y)),
          "data.x or data.y is on the meta device (shapes without values); expected real tensors", DatasetError)
    data = copy.copy(data)
    if not isinstance(getattr(data, "meta", None), DatasetMeta):  # a plain PyG Data (gkd.datasets.csbm, your own)
        from torch_geometric.utils import is_undirected

        both = isinstance(edges, torch.Tensor) and is_undirected(edges, num_nodes=data.num_nodes)
        data.meta = DatasetMeta(name="custom", num_classes=int(data.y.max()) + 1, split=split,
                                edges=f"{'undirected' if both else 'directed'}: edges as given")
    check_data(data, data.meta.num_classes)
    check_test_nodes(data)
    return data


def data_loader(cfg, device: torch.device, data: Data | None = None) -> Callable[[int, Data | None], Data]:
    """``data_for(run, previous)`` for :func:`~gkd.pipeline.seeds.run_seeds`: datasets with several fixed splits,
    or a random split seeded by the run, are reloaded per run; others load once. A given ``data`` (your own graph) is
    used for every run, shallow-copied (so adding ``adj_t`` leaves yours untouched)."""
    metric = getattr(cfg, "metric", None)
    if data is not None:
        fixed = with_metric(given_data(data, "user-provided masks"), metric).to(device)
        return lambda r, previous: fixed

    def data_for(r: int, previous: Data | None) -> Data:
        if previous is not None and previous.meta.num_splits == 1 and not previous.meta.split_per_run:
            return previous
        d = with_metric(load(cfg.dataset, cfg.root, split=r, random_split=cfg.split, **cfg.dataset_args), metric)
        check_test_nodes(d)  # before anything trains: a run without test nodes reports no result
        return d.to(device)

    return data_for


def with_metric(data: Data, metric: str | None) -> Data:
    """``data`` scored by ``metric`` (``None``: the dataset's own), checked before anything trains: ROC AUC needs both
    classes among the validation and the test nodes, else selection would compare undefined scores."""
    from ..metrics import NEEDS_TWO_CLASSES, check_metric

    if metric is not None:
        data.meta = dataclasses.replace(data.meta, metric=check_metric(metric))
    if data.meta.metric in NEEDS_TWO_CLASSES:
        for mask in ("val_mask", "test_mask"):
            present = torch.unique(data.y[data[mask]]).numel()
            check(present >= 2, f"metric={data.meta.metric}: {mask} of {data.meta.name} ({data.meta.split}) holds "
                  f"{present} class; the score needs at least 2", DatasetError)
    return data


def one_class_record(pred: torch.Tensor, data: Data, r: int) -> dict:
    """``{"one_class": c}`` (and a notice) when every test node of run ``r`` is predicted as class ``c``: its score
    is then the share of one class, not a model's (a majority-class answer on imbalanced labels); else ``{}``."""
    from ..datasets.base import notice

    classes = torch.unique(pred[data.test_mask])
    if classes.numel() != 1:
        return {}
    c = int(classes[0])
    notice(f"{data.meta.name} run {r}: every test node is predicted as class {c}; the score is that class's, not a "
           "model's (on imbalanced labels try --metric rocauc or f1-macro)")
    return {"one_class": c}


def run_seeds(runs: int, one_seed: Callable[[int, Any], dict], data_for: Callable[[int, Any], Any], *,
              head: Callable[[Any], dict] | dict | None = None, checkpoint: RunCheckpoint | None = None,
              progress: bool | None = None, desc: str = "runs") -> dict:
    """Run ``one_seed(r, data)`` for ``r`` in ``range(runs)`` and return the result dict (module docstring).

    ``data_for(r, previous)`` gives run ``r``'s data (``previous``: the last run's, ``None`` at first) and is called
    for run 0 before the progress bar appears, so that a bad dataset is one error line, not a bar and then the error.
    A run found in ``checkpoint`` is not run again. ``head(data)`` (or a dict) supplies the result's leading fields;
    it is called once, after the last run, with that run's data.
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
    meta = getattr(data, "meta", None)
    if isinstance(meta, DatasetMeta):  # what the experiment was, stated: split, edge policy, score, unread arrays
        fields = {**fields, "split": fields.get("split", meta.split), "edges": meta.edges, "metric": meta.metric,
                  "unused_arrays": list(meta.unused)}
    return {**fields, "runs": records, **summarize(records), "seconds": round(time.perf_counter() - start, 3),
            "versions": environment()}
