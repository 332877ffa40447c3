r"""Multi-process training with ``torch.distributed`` (DDP): launch with ``torchrun``, no gkd cluster code.

``torchrun --nproc_per_node=N -m gkd distill --book BOOK ...`` starts N ranks (add ``--nnodes``/``--rdzv-endpoint``
for several machines: torchrun's own rendezvous). Each rank distils on its shard of the nodes (node ``i`` belongs to
rank ``i mod N``); DDP averages the gradients, so a step equals the full-batch step up to the shards' sizes.
``torchrun ... -m gkd train --batch-size B ...`` trains a GNN (a teacher, self-distilled or not) over mini-batches:
each epoch every rank takes an equal share of the shuffled seed nodes (:class:`~gkd.scale.CSRNeighborSampler`), so
the ranks run the same number of steps. Every rank evaluates on the whole validation set with the same synchronised
weights, so early stopping (and the late terms' start) agrees across ranks. Backend: ``gloo`` on CPU, ``nccl`` on GPU.
A rank that exits or hangs stops its peers with one error (:func:`peer_failures`), not a hang.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from ..errors import ConfigError, GKDError, PeerRankError, check

DEFAULT_TIMEOUT_S = 300  # joining the group and each collective; GKD_DIST_TIMEOUT overrides (seconds)


def _env_int(name: str, lo: int, hi: int | None = None, default: str | None = None) -> int:
    text = os.environ.get(name, default)
    check(text is not None, f"{name} is not set; torchrun sets it next to WORLD_SIZE (launch with torchrun, or set "
          f"it yourself)", ConfigError)
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}; expected an integer") from None
    check(value >= lo and (hi is None or value <= hi),
          f"{name}={value}; expected an integer in [{lo}, {'inf' if hi is None else hi}]", ConfigError)
    return value


def dist_env() -> tuple[int, int, float]:
    """``(rank, world_size, timeout_s)`` from the torchrun environment, checked before anything waits on a peer."""
    world = _env_int("WORLD_SIZE", 1, default="1")
    if world == 1:
        return 0, 1, 0.0
    rank = _env_int("RANK", 0, world - 1)
    _env_int("LOCAL_RANK", 0, world - 1, default="0")
    check(bool(os.environ.get("MASTER_ADDR", "").strip()), "MASTER_ADDR is not set; torchrun sets it (the "
          "rendezvous host)", ConfigError)
    _env_int("MASTER_PORT", 1, 65535)
    text = os.environ.get("GKD_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        timeout = float(text)
    except ValueError:
        timeout = float("nan")
    check(0 < timeout <= 86400, f"GKD_DIST_TIMEOUT={text!r}; expected seconds in (0, 86400]", ConfigError)
    return rank, world, timeout


def init_from_env() -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); no-op otherwise. Returns whether it is on.

    A peer that never comes would otherwise leave this rank waiting forever without a word: joining (and every later
    collective) gives up after ``GKD_DIST_TIMEOUT`` seconds with one clear error."""
    rank, world, timeout = dist_env()
    if world <= 1:
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per rank: the local rank's (NCCL would put every rank on cuda:0)
            torch.cuda.set_device(_env_int("LOCAL_RANK", 0, default="0") % torch.cuda.device_count())
        try:
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo", rank=rank,
                                    world_size=world, timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, TimeoutError) as e:  # DistStoreError/DistNetworkError are RuntimeErrors
            first = " ".join(str(e).split())[:300]
            raise GKDError(f"rank {rank} of WORLD_SIZE={world} could not join the process group at "
                           f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} within {timeout:g}s "
                           f"(GKD_DIST_TIMEOUT): {first}") from None
    return True


# Words in the errors gloo and NCCL raise when a peer is gone or stalled; the DDP reducer re-raises them as plain
# RuntimeErrors from backward(), so the type alone cannot tell them from a bug.
_PEER_SIGNS = ("gloo", "nccl", "connection reset", "connection closed", "broken pipe", "timed out", "timeout")


@contextmanager
def peer_failures() -> Iterator[None]:
    """Report a collective that failed because a peer rank stopped (or stalled past ``GKD_DIST_TIMEOUT``) as one
    :class:`GKDError` naming this rank, instead of a backend traceback. torchrun itself stops the other local ranks
    as soon as one exits; this covers the ranks it cannot stop (other machines, or ranks launched without it)."""
    try:
        yield
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if not (dist.is_available() and dist.is_initialized()) or not (
                isinstance(e, dist.DistError) or any(s in text.lower() for s in _PEER_SIGNS)):
            raise
        timeout = os.environ.get("GKD_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
        raise PeerRankError(f"rank {dist.get_rank()} of WORLD_SIZE={dist.get_world_size()} stopped: a peer rank exited "
                       f"or stalled for more than {timeout}s (GKD_DIST_TIMEOUT) mid-training; see that rank's log. "
                       f"Backend said: {text[:300]}") from None


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_mask(num_nodes: int, rank: int, world: int) -> torch.Tensor:
    """Nodes ``i`` with ``i mod world == rank``: every rank gets an interleaved, near-equal share."""
    return torch.arange(num_nodes) % world == rank
