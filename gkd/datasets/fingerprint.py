"""Fingerprints of a graph: which split and which graph a book or a model artefact was made on.

Both are sha256 digests computed without copying the graph whole (a 2M-node graph hashes in about 0.3 s).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data


def split_hash(data: Data) -> str:
    """sha256 over the node count and the train/val/test masks: two splits share it only if they are equal."""
    h = hashlib.sha256(str(data.num_nodes).encode())
    for name in ("train_mask", "val_mask", "test_mask"):
        h.update(np.packbits(data[name].cpu().numpy().astype(np.uint8)).tobytes())
    return h.hexdigest()


def _hash_tensor(h, t: Tensor | None, chunk_bytes: int = 1 << 24) -> None:
    """Feed ``t``'s dtype, shape and row-major bytes to ``h`` in blocks of about ``chunk_bytes``: a 2M-node graph is
    never copied whole (nor moved off its device whole); the digest does not depend on the block size or strides."""
    if t is None:
        h.update(b"none;")
        return
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())  # equal bytes in another dtype or shape are another graph
    t = t.detach()
    if t.is_contiguous():
        flat = t.reshape(-1)  # a view
        step = max(1, chunk_bytes // t.element_size())
        blocks = (flat[i:i + step] for i in range(0, flat.numel(), step))
    else:
        rows = t.reshape(1) if t.dim() == 0 else t
        step = max(1, chunk_bytes // max(1, rows[0].numel() * rows.element_size())) if len(rows) else 1
        blocks = (rows[i:i + step].contiguous().reshape(-1) for i in range(0, len(rows), step))
    for block in blocks:
        h.update(memoryview(block.cpu().view(torch.uint8).numpy()))


def graph_hash(data: Data) -> str:
    """sha256 over the features, edges and labels (dtype, shape and bytes), streamed in blocks."""
    h = hashlib.sha256(b"gkd-graph-1;")
    for name in ("x", "edge_index", "y"):
        h.update(name.encode() + b":")
        _hash_tensor(h, getattr(data, name, None))
    return h.hexdigest()
