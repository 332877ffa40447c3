"""Checks that a PyG ``Data`` is a well-formed node-classification graph.

Run by :func:`gkd.datasets.load` on everything it returns and by the trainer on any graph a user hands in, so a
malformed graph fails with one clear message instead of a silent wrong answer.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import DatasetError, check

MASKS = ("train_mask", "val_mask", "test_mask")


def check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    """``edge_index`` must be a ``[2, E]`` int64 tensor with ids in ``[0, num_nodes)``, or a sparse ``[N, N]`` adjacency."""
    if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:
        check(tuple(edge_index.shape) == (num_nodes, num_nodes),
              f"sparse adjacency has shape {tuple(edge_index.shape)}; expected ({num_nodes}, {num_nodes})", DatasetError)
        return
    check(isinstance(edge_index, Tensor), f"edge_index is {type(edge_index).__name__}; expected a torch.Tensor",
          DatasetError)
    check(edge_index.dim() == 2 and edge_index.size(0) == 2,
          f"edge_index has shape {tuple(edge_index.shape)}; expected [2, num_edges]", DatasetError)
    check(edge_index.dtype == torch.long, f"edge_index has dtype {edge_index.dtype}; expected torch.int64",
          DatasetError)
    if edge_index.numel():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        check(lo >= 0 and hi < num_nodes,
              f"edge_index holds node ids in [{lo}, {hi}]; expected ids in [0, {num_nodes - 1}]", DatasetError)


def check_features(x: Tensor) -> None:
    check(isinstance(x, Tensor) and x.dim() == 2,
          f"x has shape {tuple(getattr(x, 'shape', ()))}; expected [num_nodes, num_features]", DatasetError)
    check(x.is_floating_point(), f"x has dtype {x.dtype}; expected a floating-point tensor", DatasetError)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        row = int(bad.any(dim=1).nonzero()[0])
        raise DatasetError(f"x holds {int(bad.sum())} NaN/inf values (first in node {row}); expected finite features")


def check_labels(y: Tensor, num_classes: int) -> None:
    """Classes ``0 .. num_classes-1``, or ``-1`` for an unlabelled node (OGB's and PyG's mark; it must be in no
    mask, :func:`check_masks`)."""
    check(isinstance(y, Tensor) and y.dim() == 1 and y.dtype == torch.long,
          f"y has shape {tuple(getattr(y, 'shape', ()))} and dtype {getattr(y, 'dtype', None)}; "
          "expected a 1-D int64 tensor", DatasetError)
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        check(lo >= -1 and hi < num_classes,
              f"labels lie in [{lo}, {hi}]; expected classes in [0, {num_classes - 1}] (or -1: unlabelled)",
              DatasetError)


def check_masks(data: Data) -> None:
    n = data.num_nodes
    for name in MASKS:
        m = getattr(data, name, None)
        check(isinstance(m, Tensor) and m.dtype == torch.bool and tuple(m.shape) == (n,),
              f"{name} is {None if m is None else (tuple(m.shape), m.dtype)}; expected a bool tensor of shape ({n},)",
              DatasetError)
    check(bool(data.train_mask.any()), "train_mask selects no node; expected at least one training node",
          DatasetError)
    y = getattr(data, "y", None)
    if isinstance(y, Tensor) and y.shape == (n,):
        for name in MASKS:
            dark = int((data[name] & (y < 0)).sum())
            check(dark == 0, f"{name} selects {dark} unlabelled nodes (label -1); expected labelled nodes only",
                  DatasetError)
    for a, b in (("train_mask", "test_mask"), ("train_mask", "val_mask"), ("val_mask", "test_mask")):
        both = int((data[a] & data[b]).sum())
        check(both == 0, f"{a} and {b} overlap in {both} nodes; expected disjoint splits", DatasetError)


def check_data(data: Data, num_classes: int) -> Data:
    """Validate ``data`` for node classification with ``num_classes`` classes; returns it unchanged."""
    check(isinstance(data, Data), f"expected a torch_geometric Data, got {type(data).__name__}", DatasetError)
    check_features(data.x)
    check(data.x.size(0) == data.num_nodes, f"x has {data.x.size(0)} rows for {data.num_nodes} nodes", DatasetError)
    check_edge_index(data.edge_index, data.num_nodes)
    check_labels(data.y, num_classes)
    check(data.y.size(0) == data.num_nodes, f"y has {data.y.size(0)} entries for {data.num_nodes} nodes",
          DatasetError)
    check_masks(data)
    return data
