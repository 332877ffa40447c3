"""Scale path: neighbour sampling over CSR for mini-batch training (full-graph inference already runs over CSR)."""
from .sampler import CSRNeighborSampler, neighbor_loader

__all__ = ["CSRNeighborSampler", "neighbor_loader"]
