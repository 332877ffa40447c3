"""How the distillation pipeline scores a model: every node's logits (a graph-free :class:`Student` with its
stored positions, any other model as it is called), the served (features-only) scores, the one-class check."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..nn.hidden import forward as model_forward
from ..nn.student import Student
from .seeds import one_class_record


@torch.no_grad()
def score_model(model: nn.Module, x: Tensor, graph: Tensor | None, y: Tensor, masks: dict[str, Tensor],
            metric) -> dict[str, float]:
    with evaluating(model):
        out = node_logits(model, x, graph)
    return {k: metric(out[m], y[m]) for k, m in masks.items()}


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block, its own mode after (a given teacher is the user's model, a student
    the trainer's: neither is left changed)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def node_logits(model: nn.Module, x: Tensor, graph: Tensor | None = None) -> Tensor:
    """Every node's logits: a :class:`Student` with its stored positions, any other model as it is called."""
    if isinstance(model, Student):
        return model(x, torch.arange(x.size(0), device=x.device))
    return model_forward(model, x, graph, want_hidden=False)[0]


@torch.no_grad()
def served_scores(student: nn.Module, data: Data, metric) -> dict[str, float]:
    """Validation and test scores of a graph-free student answering every node as one the graph never held
    (``student(x)``: features only, zero positions), the path new nodes are served through; beside the scores with
    stored positions, which only nodes of the training graph can have. Empty for a student that reads the graph."""
    if not isinstance(student, Student):
        return {}
    with evaluating(student):
        out = student(data.x)
    return {f"{s}_features_only": metric(out[data[f"{s}_mask"]], data.y[data[f"{s}_mask"]]) for s in ("val", "test")}


def one_class(student: nn.Module, data: Data, graph: Tensor | None, r: int) -> dict:
    with torch.no_grad(), evaluating(student):
        pred = node_logits(student, data.x, graph).argmax(-1)
    return one_class_record(pred, data, r)
