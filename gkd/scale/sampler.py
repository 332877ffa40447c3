r"""Uniform neighbour sampling (GraphSAGE, Hamilton et al. 2017) for graphs too big for full-batch training.

:func:`neighbor_loader` returns PyG's ``NeighborLoader`` when its sampling backend (pyg-lib or torch-sparse) is
importable, else :class:`CSRNeighborSampler`, gkd's pure-torch sampler with the same batch layout: a ``Data`` whose
first ``batch_size`` nodes are the seed nodes, with ``n_id`` (global ids), local ``edge_index`` and ``batch_size``.
Sampling is without replacement and vectorised per hop (one sort over the frontier's edges, no Python loop per node).
"""
from __future__ import annotations

import copy
from typing import Iterator, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import ConfigError, check, check_int
from ..nn.serving import gather_neighbours


def sample_neighbours(crow: Tensor, col: Tensor, nodes: Tensor, k: int,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Up to ``k`` in-neighbours of each of ``nodes``, uniformly without replacement (all of them if fewer, or if
    ``k < 0``). Returns ``(neighbours, segment)`` as :func:`gather_neighbours` does."""
    nbr, seg = gather_neighbours(crow, col, nodes)
    if k < 0 or nbr.numel() == 0:
        return nbr, seg
    # random order within each node's segment: sort by segment + U[0, 1), then keep the first k of every segment
    key = seg.to(torch.float64) + torch.rand(seg.numel(), generator=generator, dtype=torch.float64)
    order = torch.argsort(key)
    nbr, seg = nbr[order], seg[order]
    counts = torch.bincount(seg, minlength=nodes.numel())
    rank = torch.arange(seg.numel()) - (torch.cumsum(counts, 0) - counts)[seg]
    keep = rank < k
    return nbr[keep], seg[keep]


class CSRNeighborSampler:
    """Mini-batches of seed nodes with their sampled ``len(num_neighbors)``-hop neighbourhoods (``[]``: the seed
    nodes alone, with no edges: node mini-batches for graph-free students).

    Args:
        data: the graph (``x``, ``y``, ``edge_index`` or CSR ``adj_t``).
        num_neighbors: neighbours sampled per node at each hop (``-1``: all), e.g. ``[10, 10]``.
        input_nodes: seed nodes (bool mask or ids); default all nodes.
        num_samples: seed nodes per epoch, drawn afresh each epoch at random from ``input_nodes`` (without
            replacement; as ``torch.utils.data.RandomSampler(num_samples=...)``); default all of them. An epoch of a
            term that teaches every node then costs ``num_samples`` seeds, not the whole graph.
        rank, world_size: multi-process training (DDP): each epoch the seed nodes are shuffled the same way on
            every rank (``seed`` must then be given) and cut into ``world_size`` equal shares, this rank taking share
            ``rank``; the fewer than ``world_size`` nodes left over sit out that epoch (others the next), so every
            rank runs the same number of batches and no collective waits on a rank that has none.
    """

    def __init__(self, data: Data, num_neighbors: Sequence[int], batch_size: int = 1024,
                 input_nodes: Tensor | None = None, shuffle: bool = True, seed: int | None = None,
                 rank: int = 0, world_size: int = 1, num_samples: int | None = None) -> None:
        check(all(isinstance(k, int) and (k >= 1 or k == -1) for k in num_neighbors),
              f"num_neighbors={list(num_neighbors)}; expected positive integers (or -1 for all)", ConfigError)
        check(isinstance(batch_size, int) and batch_size >= 1, f"batch_size={batch_size!r}; expected >= 1",
              ConfigError)
        self.crow = self.col = None  # node batches (no hops) never read the graph
        if len(num_neighbors):
            adj_t = getattr(data, "adj_t", None)
            if adj_t is None:
                from ..nn import to_adj_t

                adj_t = to_adj_t(data.edge_index, data.num_nodes)
            # sampled on the CPU (its generator's device); the batches are moved to the data's device
            self.crow, self.col = adj_t.crow_indices().cpu(), adj_t.col_indices().cpu()
        self.data, self.num_neighbors, self.batch_size, self.shuffle = data, list(num_neighbors), batch_size, shuffle
        if input_nodes is None:
            input_nodes = torch.arange(data.num_nodes)
        elif input_nodes.dtype == torch.bool:
            input_nodes = input_nodes.nonzero().view(-1)
        check(input_nodes.numel() >= 1, "input_nodes selects no node; expected at least one", ConfigError)
        check(isinstance(world_size, int) and 1 <= world_size and isinstance(rank, int) and 0 <= rank < world_size,
              f"rank={rank!r}, world_size={world_size!r}; expected 0 <= rank < world_size", ConfigError)
        check(world_size == 1 or seed is not None, "world_size > 1 needs a seed (every rank must shuffle the seed "
              "nodes the same way)", ConfigError)
        check(input_nodes.numel() >= world_size, f"input_nodes selects {input_nodes.numel()} node(s) for "
              f"world_size={world_size} ranks; expected at least one per rank", ConfigError)
        if num_samples is not None:
            check_int("num_samples", num_samples, 1, ConfigError, "seed nodes per epoch")
        self.input_nodes, self.rank, self.world_size = input_nodes.cpu(), rank, world_size
        self.num_samples = None if num_samples is None or num_samples >= input_nodes.numel() else num_samples
        check(self.num_samples is None or self.num_samples >= world_size, f"num_samples={num_samples} for "
              f"world_size={world_size} ranks; expected at least one per rank", ConfigError)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.order = self.generator  # draws the shuffle
        if world_size > 1:  # the shuffle is shared by the ranks, the neighbour draws are each rank's own
            self.order = torch.Generator().manual_seed(seed)
            self.generator.manual_seed(seed * world_size + rank + 1)

    def __len__(self) -> int:
        total = self.input_nodes.numel() if self.num_samples is None else self.num_samples
        share = total // self.world_size if self.world_size > 1 else total
        return (share + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Data]:
        ids = self.input_nodes
        if self.shuffle or self.num_samples is not None:
            ids = ids[torch.randperm(ids.numel(), generator=self.order)]
        if self.num_samples is not None:
            ids = ids[: self.num_samples]
        if self.world_size > 1:
            share = ids.numel() // self.world_size
            ids = ids[self.rank * share:(self.rank + 1) * share]
        for seeds in ids.split(self.batch_size):
            yield self.sample(seeds)

    def sample(self, seeds: Tensor) -> Data:
        """One batch: each hop expands only the nodes first reached at the previous hop (as PyG's sampler does)."""
        ids, src, dst = [seeds], [], []
        seen, frontier = seeds.unique(), seeds
        for k in self.num_neighbors:
            nbr, seg = sample_neighbours(self.crow, self.col, frontier, k, self.generator)
            src.append(nbr)
            dst.append(frontier[seg])
            ids.append(nbr)
            new = nbr.unique()
            frontier = new[~torch.isin(new, seen)]
            seen = torch.cat([seen, frontier]).unique()
        if not self.num_neighbors:  # node mini-batch: the seeds alone
            d, n_id = self.data, seeds.to(self.data.x.device)
            batch = Data(x=d.x[n_id], edge_index=torch.empty(2, 0, dtype=torch.long, device=n_id.device),
                         y=d.y[n_id], n_id=n_id, num_nodes=n_id.numel())
            batch.batch_size = seeds.numel()
            return batch
        # relabel: n_id lists nodes in order of first appearance, so the seeds come first
        all_ids = torch.cat(ids)
        uniq, inv = torch.unique(all_ids, return_inverse=True)
        first = torch.full((uniq.numel(),), all_ids.numel(), dtype=torch.long)
        first.scatter_reduce_(0, inv, torch.arange(all_ids.numel()), reduce="amin")
        order = torch.argsort(first)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel())
        n_id = uniq[order]
        glob_src, glob_dst = torch.cat(src), torch.cat(dst)
        loc = rank[torch.searchsorted(uniq, torch.stack([glob_src, glob_dst]))]
        d = self.data
        n_id, loc = n_id.to(d.x.device), loc.to(d.x.device)
        batch = Data(x=d.x[n_id], edge_index=loc, y=d.y[n_id], n_id=n_id, num_nodes=n_id.numel())
        batch.batch_size = seeds.numel()
        return batch


def neighbor_loader(data: Data, num_neighbors: Sequence[int], batch_size: int = 1024,
                    input_nodes: Tensor | None = None, shuffle: bool = True, seed: int | None = None,
                    rank: int = 0, world_size: int = 1, num_samples: int | None = None):
    """PyG's ``NeighborLoader`` when a sampling backend is importable, else :class:`CSRNeighborSampler`; always the
    latter with ``world_size > 1`` (DDP: its per-rank shares keep the ranks' batch counts equal), ``num_samples``
    (seed nodes drawn per epoch) or no hops (``num_neighbors=[]``: node mini-batches)."""
    if world_size > 1 or num_samples is not None or not list(num_neighbors):
        return CSRNeighborSampler(data, num_neighbors, batch_size, input_nodes, shuffle, seed, rank, world_size,
                                  num_samples)
    try:
        import torch_geometric.typing as pyg_typing

        if pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
            from torch_geometric.loader import NeighborLoader

            if getattr(data, "adj_t", None) is not None:  # PyG reads adj_t as its SparseTensor: give it edge_index
                data = copy.copy(data)
                del data.adj_t
            return NeighborLoader(data, num_neighbors=list(num_neighbors), batch_size=batch_size,
                                  input_nodes=input_nodes, shuffle=shuffle)
    except ImportError:
        pass
    return CSRNeighborSampler(data, num_neighbors, batch_size, input_nodes, shuffle, seed)
