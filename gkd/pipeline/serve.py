"""Answering nodes with a saved model (``gkd predict`` and its Python twin :func:`predict`)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.fingerprint import graph_hash
from ..errors import ConfigError, check
from ..io import atomic_write_bytes
from ..nn import to_adj_t
from ..nn.serving import Student
from .artifact import ArtifactError


def read_nodes(path: str | os.PathLike) -> Tensor:
    """Node ids from a ``.npy`` (1-D integers, no pickle) or a text file (one integer per line or comma-separated)."""
    p = Path(path)
    check(p.is_file(), f"--nodes {str(p)!r} does not exist", ConfigError)
    try:
        if p.suffix == ".npy":
            ids = np.load(p, allow_pickle=False)
        else:
            ids = np.array([int(t) for t in p.read_text().replace(",", " ").split()], dtype=np.int64)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--nodes {str(p)!r} is not a list of integer node ids ({type(e).__name__})") from None
    check(ids.ndim == 1 and ids.dtype.kind in "iu", f"--nodes {str(p)!r} holds a {ids.dtype} array of shape "
          f"{ids.shape}; expected 1-D integer node ids", ConfigError)
    return torch.from_numpy(ids.astype(np.int64))


@torch.no_grad()
def predict(model: nn.Module, data: Data, nodes: Tensor | None = None) -> Tensor:
    """Logits of ``nodes`` (default: every node) of ``data``. A graph-free :class:`Student` reads only those feature
    rows; it adds its stored position features when ``data`` is the graph it was trained on (same fingerprint) and
    zeros, as for unseen nodes, otherwise. A GNN runs on the whole graph."""
    manifest = getattr(model, "manifest", {}) or {}
    n = data.num_nodes
    nodes = torch.arange(n) if nodes is None else nodes.long()
    if nodes.numel():
        lo, hi = int(nodes.min()), int(nodes.max())
        check(lo >= 0 and hi < n, f"node ids lie in [{lo}, {hi}]; the graph has nodes 0 .. {n - 1}", ConfigError)
    want = manifest.get("input", {}).get("num_features")
    check(want is None or data.num_features == want, f"the model reads {want} features per node; the data has "
          f"{data.num_features}", ArtifactError)
    model.eval()
    if isinstance(model, Student):
        same = (model.positions is not None and (manifest.get("dataset") or {}).get("graph_sha256") == graph_hash(data))
        index = nodes if same else torch.full_like(nodes, -1)
        return model(data.x[nodes], index)
    return model(data.x, to_adj_t(data.edge_index, n))[nodes]


def write_predictions(path: str | os.PathLike, nodes: Tensor, logits: Tensor) -> Path:
    """``.npy``: the predicted class per node; ``.csv``: ``node,prediction,confidence`` rows. Atomic."""
    path = Path(path)
    pred = logits.argmax(-1)
    if path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, pred.numpy(), allow_pickle=False)
        return atomic_write_bytes(path, buf.getvalue())
    check(path.suffix == ".csv", f"--out {str(path)!r}; expected a .npy or .csv file name", ConfigError)
    conf = logits.softmax(-1).max(-1).values
    lines = ["node,prediction,confidence"] + [f"{i},{c},{p:.6f}" for i, c, p in
                                              zip(nodes.tolist(), pred.tolist(), conf.tolist())]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
