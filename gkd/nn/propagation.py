r"""Graph propagation on CSR matrices: the normalised adjacency and personalised-PageRank smoothing."""
from __future__ import annotations

import torch
from torch import Tensor


def normalized_adjacency(graph: Tensor, num_nodes: int, add_self_loops: bool = True) -> Tensor:
    r""":math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}` as ``torch.sparse_csr`` from ``[2, E]`` edges or a sparse adjacency.

    Duplicate edges are merged and edge weights are dropped: this is the structure operator, not a learned one.
    """
    if graph.layout == torch.strided:
        row, col = graph
    else:
        coo = graph.to_sparse_coo().coalesce()
        col, row = coo.indices()  # adj_t stores target-major; the operator is symmetric in use
    # one int64 key per edge, merged and sorted by row; the key's memory becomes the column ids (at ogbn-products'
    # size, 124M edges, separate row/col copies held several GB more)
    key = row * num_nodes + col
    if add_self_loops:
        key = torch.cat([key, torch.arange(num_nodes, device=row.device) * (num_nodes + 1)])
    idx = torch.unique(key)
    del key
    row = idx.div(num_nodes, rounding_mode="floor")
    col = idx.sub_(row * num_nodes)
    deg = torch.bincount(row, minlength=num_nodes).clamp_min(1).float()
    w = deg[row].rsqrt() * deg[col].rsqrt()
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, w, (num_nodes, num_nodes))


def appnp_propagate(adj: Tensor, z0: Tensor, steps: int = 10, alpha: float = 0.1,
                    clamp_mask: Tensor | None = None) -> Tensor:
    r"""Personalised-PageRank smoothing (APPNP, Klicpera et al., ICLR 2019):
    :math:`Z_{k+1} = (1-\alpha)\hat A Z_k + \alpha Z_0`, with rows in ``clamp_mask`` reset to :math:`Z_0` each step
    (label propagation's clamping, Zhu & Ghahramani 2002)."""
    z = z0
    for _ in range(steps):
        z = (1 - alpha) * (adj @ z) + alpha * z0
        if clamp_mask is not None:
            z = torch.where(clamp_mask.unsqueeze(-1), z0, z)
    return z
