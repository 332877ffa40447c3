r"""GLNN's inductive ("production") setting (Zhang et al., ICLR 2022, Sec. 5.3).

A fraction of the test nodes is held out of everything training sees: the teacher's graph, any structural features
and the distillation targets. The observed graph keeps the remaining nodes and the edges among them; the held-out
nodes arrive later with their features (and, for graph-aided methods only, their edges).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from ..errors import ConfigError, DatasetError, check


@dataclass
class InductiveSplit:
    """``observed``: node mask of the graph training sees; ``test_ind``/``test_tran``: held-out / observed test
    nodes; ``observed_edge_index``: edges with both ends observed (original node ids)."""

    observed: Tensor
    test_ind: Tensor
    test_tran: Tensor
    observed_edge_index: Tensor


def inductive_split(data: Data, fraction: float = 0.2, seed: int = 0) -> InductiveSplit:
    """Hold out ``fraction`` of ``data.test_mask`` (chosen with ``seed``) as unseen nodes."""
    check(isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0,
          f"inductive fraction={fraction!r}; expected a value in (0, 1)", ConfigError)
    test = data.test_mask.nonzero().view(-1)
    n_ind = int(round(fraction * test.numel()))
    check(n_ind >= 1 and n_ind < test.numel(),
          f"inductive fraction={fraction} of {test.numel()} test nodes holds out {n_ind}; expected at least one "
          "held-out and one observed test node", DatasetError)
    g = torch.Generator().manual_seed(seed)
    held = test[torch.randperm(test.numel(), generator=g)[:n_ind]]
    test_ind = torch.zeros(data.num_nodes, dtype=torch.bool)
    test_ind[held] = True
    observed = ~test_ind
    edge_index, _ = subgraph(observed, data.edge_index, num_nodes=data.num_nodes)
    return InductiveSplit(observed, test_ind, data.test_mask & observed, edge_index)
