"""The scores a run reports and selects on, by the names users type (``--metric``, ``metric=``, a graph file's
manifest): ``acc``, ``rocauc``, ``f1-macro``, ``f1-micro``, ``balanced-acc``, and ``ogb:NAME`` (OGB's ``Evaluator``).

Every score is "higher is better" and is what best-validation selection, early stopping, the self-distillation and
student guards, summaries and JSON use. ROC AUC is what the field reports on binary, imbalanced node labels
(accuracy there rewards the majority class): on two classes it scores the second class's probability; on more, it is
the mean of the one-vs-rest AUCs of the classes present. Accuracy is computed in torch; ROC AUC, F1 and balanced
accuracy are scikit-learn's.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError, check

__all__ = ["Metric", "METRICS", "accuracy", "rocauc", "ogb_metric", "check_metric", "get_metric"]

Metric = Callable[[Tensor, Tensor], float]  # (logits [n, C], labels [n]) -> score, higher is better
METRICS = ("acc", "rocauc", "f1-macro", "f1-micro", "balanced-acc")
NEEDS_TWO_CLASSES = ("rocauc",)  # undefined on a mask that holds one class


def accuracy(logits: Tensor, y: Tensor) -> float:
    if y.numel() == 0:
        return float("nan")
    return float((logits.argmax(dim=-1) == y).float().mean())


def rocauc(logits: Tensor, y: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    if y.numel() == 0:
        return float("nan")
    prob = torch.softmax(logits.detach().float(), dim=-1).cpu().numpy()
    labels = y.cpu().numpy()
    present = np.unique(labels)
    if prob.shape[1] == 2:
        return float(roc_auc_score(labels, prob[:, 1])) if present.size == 2 else float("nan")
    scores = [roc_auc_score(labels == c, prob[:, c]) for c in present] if present.size > 1 else []
    return float(np.mean(scores)) if scores else float("nan")


def _sklearn(name: str, **kwargs) -> Metric:
    def metric(logits: Tensor, y: Tensor) -> float:
        import sklearn.metrics

        if y.numel() == 0:
            return float("nan")
        pred = logits.argmax(dim=-1).cpu().numpy()
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true": the score is still defined
            warnings.simplefilter("ignore", UserWarning)
            return float(getattr(sklearn.metrics, name)(y.cpu().numpy(), pred, **kwargs))

    return metric


@functools.lru_cache(maxsize=None)
def _evaluator(name: str):
    """OGB's ``Evaluator`` for ``name``, if it scores single-label class predictions (accuracy: ogbn-arxiv,
    ogbn-products, ogbn-papers100M, ogbn-mag); anything else is one error (ogb prints its list and raises)."""
    import contextlib
    import io

    from ogb.nodeproppred import Evaluator

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ev = Evaluator(name)
    except (ValueError, KeyError, FileNotFoundError):
        ev = None
    check(ev is not None and ev.eval_metric == "acc" and ev.num_tasks == 1, f"metric='ogb:{name}'; expected "
          "ogb:DATASET for an OGB node dataset scored on class predictions (ogbn-arxiv, ogbn-products, "
          "ogbn-papers100M, ogbn-mag)", ConfigError)
    return ev


def ogb_metric(name: str) -> Metric:
    """``ogb.nodeproppred.Evaluator`` for ``name`` as a gkd metric."""
    ev = _evaluator(name)
    key = ev.eval_metric

    def metric(logits: Tensor, y: Tensor) -> float:
        pred = logits.argmax(dim=-1, keepdim=True)
        return float(ev.eval({"y_true": y.view(-1, 1), "y_pred": pred})[key])

    return metric


def check_metric(name: object, where: str = "metric") -> str:
    """``name`` is a metric gkd computes; one error naming the value and the choices otherwise."""
    ok = isinstance(name, str) and (name in METRICS or (name.startswith("ogb:") and len(name) > 4))
    check(ok, f"{where}={name!r}; expected one of {', '.join(METRICS)} or ogb:DATASET", ConfigError)
    if name.startswith("ogb:"):
        _evaluator(name[4:])  # cached: get_metric's ogb_metric builds from the same one
    return name


def get_metric(name: str) -> Metric:
    """The score called ``name`` (:data:`METRICS` or ``ogb:NAME``); an unknown name is an error, never accuracy."""
    if check_metric(name).startswith("ogb:"):
        return ogb_metric(name[4:])
    return {"acc": accuracy, "rocauc": rocauc,
            "f1-macro": _sklearn("f1_score", average="macro", zero_division=0),
            "f1-micro": _sklearn("f1_score", average="micro", zero_division=0),
            "balanced-acc": _sklearn("balanced_accuracy_score")}[name]
