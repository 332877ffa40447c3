r"""Position features from the graph alone, pure torch (no torch-cluster / pyg-lib random walks).

NOSMOG (Tian et al., ICLR 2023) concatenates DeepWalk embeddings to the MLP student's input. gkd uses FastRP
(Chen et al., CIKM 2019), which approximates the same random-walk proximity with sparse products:
:math:`E = \sum_{k=1}^{K} w_k (D^{-1}A)^k R`, :math:`R \sim \mathcal N(0, 1/d)`, then each column standardised.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError, check


def _row_normalized(edge_index: Tensor, num_nodes: int) -> Tensor:
    """:math:`D^{-1}A` as CSR (message j -> i lands in row i; a duplicated edge counts as many times as it is
    given), built from one int64 key per edge: at ogbn-products' size (124M edges) a COO tensor's stack and coalesce
    held about twice the memory."""
    n = num_nodes
    row = edge_index[1]
    deg = torch.bincount(row, minlength=n).clamp_min(1).float()
    key, count = torch.unique(row * n + edge_index[0], return_counts=True)  # sorted by (row, col)
    row = key.div(n, rounding_mode="floor")
    values = count.float() / deg[row]
    del count
    crow = torch.zeros(n + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
    col = key.sub_(row * n)  # in place: the key's memory becomes the column ids
    del row
    import warnings

    with warnings.catch_warnings():  # torch flags every CSR constructor as "beta"; the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n))


def fastrp(edge_index: Tensor, num_nodes: int, dim: int = 64, weights: Sequence[float] = (0.0, 1.0, 1.0, 1.0),
           seed: int = 0) -> Tensor:
    """FastRP embeddings ``[num_nodes, dim]``; ``weights[k-1]`` weighs the ``k``-hop term. Isolated nodes get zeros
    before standardisation (no structure, no position)."""
    check(isinstance(dim, int) and dim >= 1, f"position dim={dim!r}; expected an integer >= 1", ConfigError)
    check(len(weights) >= 1 and all(w >= 0 for w in weights) and sum(weights) > 0,
          f"FastRP weights={tuple(weights)}; expected non-negative weights, not all zero", ConfigError)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num_nodes, dim, generator=g) / dim ** 0.5
    p = _row_normalized(edge_index, num_nodes)
    out = torch.zeros(num_nodes, dim)
    for w in weights:
        z = torch.sparse.mm(p, z)
        out += w * z
    return (out - out.mean(0)) / out.std(0).clamp_min(1e-12)


def extend_to_new_nodes(emb: Tensor, edge_index: Tensor, new: Tensor) -> Tensor:
    """Graph-aided position features for nodes that were not in the graph ``emb`` was computed on: the mean of their
    observed neighbours' embeddings (one more FastRP hop). Nodes without observed neighbours keep zeros."""
    out = emb.clone()
    out[new] = 0.0
    src, dst = edge_index
    keep = new[dst] & ~new[src]
    n = emb.size(0)
    summed = torch.zeros_like(emb).index_add_(0, dst[keep], emb[src[keep]])
    deg = torch.bincount(dst[keep], minlength=n).clamp_min(1).unsqueeze(-1).float()
    out[new] = (summed / deg)[new]
    return out


class PositionDropout(torch.nn.Module):
    """The student while it trains with ``position.drop``: each training forward zeroes the position columns (the
    last ``dim`` of the input) of a random share ``p`` of the rows, so that the student also learns to answer from
    the features alone, as it must for a node it never saw (whose positions are zeros). In evaluation the input
    passes through unchanged; ``module`` is the student itself (its weights are the wrapper's)."""

    def __init__(self, module: torch.nn.Module, dim: int, p: float) -> None:
        super().__init__()
        self.module, self.dim, self.p = module, int(dim), float(p)

    def forward(self, x: Tensor, *args, **kwargs):
        if self.training and self.p > 0:
            keep = (torch.rand(x.size(0), 1, device=x.device) >= self.p).to(x.dtype)
            x = torch.cat([x[:, :-self.dim], x[:, -self.dim:] * keep], dim=-1)
        return self.module(x, *args, **kwargs)
