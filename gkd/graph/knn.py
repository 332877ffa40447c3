"""The k-nearest-neighbour graph of node features by cosine similarity (the feature view of a graph).

``torch_cluster.knn_graph(cosine=True)`` is used when it is importable; it is not installable on every machine gkd
runs on, so the fallback computes the same top-``k`` in row blocks whose ``block x n`` scores stay under a fixed
budget: memory is O(n·k) for the output plus O(n) per block, time O(n²·d).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import to_undirected

from ..errors import ConfigError, check

SCORE_BUDGET = 2 ** 24  # similarity scores held at once (64 MB of float32)


@torch.no_grad()
def knn_graph(x: Tensor, k: int = 10) -> Tensor:
    """``[2, E]`` undirected edges linking each node to its ``k`` most cosine-similar other nodes (self excluded)."""
    n = x.size(0)
    check(isinstance(k, int) and 1 <= k < n,
          f"k={k!r}; expected an integer in [1, {n - 1}] (fewer than the {n} nodes)", ConfigError)
    try:
        from torch_cluster import knn_graph as cluster_knn
    except ImportError:
        cluster_knn = None
    if cluster_knn is not None:
        return to_undirected(cluster_knn(x.float(), k, cosine=True, loop=False), num_nodes=n)
    z = F.normalize(x.float(), dim=-1)
    step = max(1, SCORE_BUDGET // n)
    cols = torch.empty(n, k, dtype=torch.long, device=x.device)
    for start in range(0, n, step):
        sim = z[start:start + step] @ z.T
        b = sim.size(0)
        sim[torch.arange(b), torch.arange(start, start + b)] = -2.0  # below any cosine: never its own neighbour
        cols[start:start + b] = sim.topk(k, dim=-1).indices
    src = torch.arange(n, device=x.device).repeat_interleave(k)
    return to_undirected(torch.stack([src, cols.view(-1)]), num_nodes=n)
