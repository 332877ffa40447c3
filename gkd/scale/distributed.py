r"""Multi-process student training with ``torch.distributed`` (DDP): launch with ``torchrun``, no gkd cluster code.

``torchrun --nproc_per_node=N -m gkd distill --book BOOK ...`` starts N ranks (add ``--nnodes``/``--rdzv-endpoint``
for several machines: torchrun's own rendezvous). Each rank distils on its shard of the nodes (node ``i`` belongs to
rank ``i mod N``); DDP averages the gradients, so a step equals the full-batch step up to the shards' sizes. Every
rank evaluates on the whole validation set with the same synchronised weights, so early stopping agrees across ranks.
Backend: ``gloo`` on CPU, ``nccl`` on GPU.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); no-op otherwise. Returns whether it is on."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_mask(num_nodes: int, rank: int, world: int) -> torch.Tensor:
    """Nodes ``i`` with ``i mod world == rank``: every rank gets an interleaved, near-equal share."""
    return torch.arange(num_nodes) % world == rank
