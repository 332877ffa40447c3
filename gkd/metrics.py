"""The scores a run reports and selects on, by the names users type (``--metric``, ``metric=``, a graph file's
manifest): ``acc``, ``rocauc``, ``f1-macro``, ``f1-micro``, ``balanced-acc``, and ``ogb:NAME`` (OGB's ``Evaluator``).

Every score is "higher is better" and is what best-validation selection, early stopping, the self-distillation and
student guards, summaries and JSON use. ROC AUC is what the field reports on binary, imbalanced node labels
(accuracy there rewards the majority class): on two classes it scores the second class's probability; on more, it is
the mean of the one-vs-rest AUCs of the classes present. The F1 and balanced-accuracy scores are scikit-learn's.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .errors import ConfigError, check

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
    if prob.shape[1] == 2:
        return float(roc_auc_score(labels, prob[:, 1])) if len(set(labels.tolist())) == 2 else float("nan")
    scores = [roc_auc_score(labels == c, prob[:, c]) for c in sorted(set(labels.tolist())) if (labels != c).any()]
    return float(sum(scores) / len(scores)) if scores else float("nan")


def _sklearn(name: str, **kwargs) -> Metric:
    def metric(logits: Tensor, y: Tensor) -> float:
        import sklearn.metrics

        if y.numel() == 0:
            return float("nan")
        pred = logits.argmax(dim=-1).cpu().numpy()
        return float(getattr(sklearn.metrics, name)(y.cpu().numpy(), pred, **kwargs))

    return metric


def ogb_metric(name: str) -> Metric:
    """``ogb.nodeproppred.Evaluator`` for ``name`` as a gkd metric."""
    from ogb.nodeproppred import Evaluator

    ev = Evaluator(name)
    key = ev.eval_metric

    def metric(logits: Tensor, y: Tensor) -> float:
        pred = logits.argmax(dim=-1, keepdim=True)
        return float(ev.eval({"y_true": y.view(-1, 1), "y_pred": pred})[key])

    return metric


def check_metric(name: object, where: str = "metric") -> str:
    """``name`` is a metric gkd computes; one error naming the value and the choices otherwise."""
    ok = isinstance(name, str) and (name in METRICS or (name.startswith("ogb:") and len(name) > 4))
    check(ok, f"{where}={name!r}; expected one of {', '.join(METRICS)} or ogb:DATASET", ConfigError)
    return name


def get_metric(name: str) -> Metric:
    """The score called ``name`` (:data:`METRICS` or ``ogb:NAME``); an unknown name is an error, never accuracy."""
    check_metric(name)
    if name.startswith("ogb:"):
        return ogb_metric(name[4:])
    return {"acc": accuracy, "rocauc": rocauc,
            "f1-macro": _sklearn("f1_score", average="macro", zero_division=0),
            "f1-micro": _sklearn("f1_score", average="micro", zero_division=0),
            "balanced-acc": _sklearn("balanced_accuracy_score")}[name]
