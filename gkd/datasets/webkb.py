"""Heterophilous graphs with the geom-gcn splits (Pei et al., ICLR 2020): WebKB (Texas, Wisconsin, Cornell) and Actor.

Each ships 10 fixed 48/32/20 splits; run ``r`` uses split ``r mod 10``. gkd parses the geom-gcn text files and split
``.npz`` files itself (``allow_pickle=False``) into the same tensors PyG's ``WebKB``/``Actor`` classes build (tested
against them), instead of going through those classes, whose ``processed/*.pt`` cache is read back with pickle.
Nothing is written under the data root.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from ..errors import DatasetError
from .base import DatasetMeta, register, require_files

_WEBKB = {"texas": "Texas", "wisconsin": "Wisconsin", "cornell": "Cornell"}
_SPLIT = "{}_split_0.6_0.2_{}.npz"


def _rows(path: Path, columns: int) -> list[list[str]]:
    """The tab-separated rows after the header line; each must have ``columns`` fields."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")[1:]
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {str(path)!r} ({e})") from None
    rows = [line.split("\t") for line in lines if line.strip()]
    for i, row in enumerate(rows):
        if len(row) != columns:
            raise DatasetError(f"{str(path)!r} line {i + 2} has {len(row)} tab-separated fields; expected {columns}")
    if not rows:
        raise DatasetError(f"{str(path)!r} holds no rows after its header")
    return rows


_MAX_ID = 2**62  # ids, labels and feature columns: int64 with room; a 20-digit one is damage, not a graph
_MAX_DENSE = 2**31  # values of Actor's dense feature matrix (8 GB of float32; the real one has 7 million)


def _ints(text: str, path: Path) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise DatasetError(f"{str(path)!r} holds {text[:40]!r}; expected comma-separated integers") from None
    if any(abs(v) > _MAX_ID for v in values):
        raise DatasetError(f"{str(path)!r} holds {text[:40]!r}; expected integers below 2**62 (node, feature and "
                           "class ids)")
    return values


def _int(text: str, path: Path) -> int:
    values = _ints(text, path)
    if len(values) != 1:
        raise DatasetError(f"{str(path)!r} holds {text[:40]!r}; expected one integer (a node id or label)")
    return values[0]


def _edges(path: Path, num_nodes: int) -> torch.Tensor:
    pairs = [_ints(",".join(row), path) for row in _rows(path, 2)]
    edge_index = torch.tensor(pairs, dtype=torch.long).t().contiguous()
    lo, hi = int(edge_index.min()), int(edge_index.max())
    if lo < 0 or hi >= num_nodes:
        raise DatasetError(f"{str(path)!r} links node ids in [{lo}, {hi}]; the graph has {num_nodes} nodes")
    return coalesce(edge_index, num_nodes=num_nodes)


def _split(raw: Path, prefix: str, split: int, num_nodes: int) -> tuple[int, dict[str, torch.Tensor]]:
    s = split % 10
    path = raw / _SPLIT.format(prefix, s)
    try:
        with np.load(path, allow_pickle=False) as f:
            masks = {k: torch.from_numpy(np.asarray(f[k])).to(torch.bool) for k in ("train_mask", "val_mask",
                                                                                    "test_mask")}
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"split file {str(path)!r} is not an .npz of train_mask/val_mask/test_mask "
                           f"({type(e).__name__}: {e})") from None
    for k, m in masks.items():
        if tuple(m.shape) != (num_nodes,):
            raise DatasetError(f"split file {str(path)!r}: {k} has shape {tuple(m.shape)}; expected ({num_nodes},)")
    return s, masks


def _finish(x, y, edge_index, raw: Path, prefix: str, split: int, name: str, source: str) -> Data:
    n, lo, hi = x.size(0), int(y.min()), int(y.max())
    if lo < 0 or hi >= n:  # C classes need at least C nodes; a 10**12 label would size [N, C] tensors
        raise DatasetError(f"{str(raw / 'out1_node_feature_label.txt')!r} holds labels in [{lo}, {hi}]; expected "
                           f"classes 0 .. C-1 with C at most the node count ({n})")
    s, masks = _split(raw, prefix, split, n)
    data = Data(x=x, edge_index=edge_index, y=y, **masks)
    # the split of every run, not this one's (split_index, and each run record's "split", say which)
    data.meta = DatasetMeta(name=name, num_classes=int(y.max()) + 1, split_index=s, num_splits=10, source=source,
                            split="geom-gcn's 10 fixed splits (48/32/20): run r on split r mod 10",
                            edges="directed: as geom-gcn's files list them (PyG's WebKB and Actor keep them so)")
    return data


def _names(prefix: str) -> list[str]:
    return ["out1_node_feature_label.txt", "out1_graph_edges.txt"] + [_SPLIT.format(prefix, i) for i in range(10)]


def _need(raw: Path, prefix: str, what: str) -> None:
    require_files(raw, _names(prefix), f"copy the geom-gcn {what} files into {str(raw)!r}")


@register(*_WEBKB, files=lambda key, root: [root / key / "raw" / f for f in _names(key)])
def load_webkb(key: str, root: Path, *, split: int = 0) -> Data:
    """Rows ``id \\t f1,f2,... \\t label`` in node order (dense features), as PyG's ``WebKB.process`` reads them."""
    raw = root / key / "raw"
    _need(raw, key, f"WebKB files for {_WEBKB[key]}")
    path = raw / "out1_node_feature_label.txt"
    rows = _rows(path, 3)
    try:
        x = torch.tensor([[float(v) for v in row[1].split(",")] for row in rows], dtype=torch.float)
    except (ValueError, TypeError) as e:  # TypeError: ragged feature rows
        raise DatasetError(f"{str(path)!r} is not a table of numeric features and integer labels ({e})") from None
    y = torch.tensor([_int(row[2], path) for row in rows], dtype=torch.long)
    edge_index = _edges(raw / "out1_graph_edges.txt", x.size(0))
    return _finish(x, y, edge_index, raw, key, split, _WEBKB[key], "WebKB (geom-gcn files), read by gkd")


@register("actor", files=lambda key, root: [root / "Actor" / "raw" / f for f in _names("film")])
def load_actor(key: str, root: Path, *, split: int = 0) -> Data:
    """Rows ``id \\t active feature ids \\t label`` (binary sparse features), as PyG's ``Actor.process`` reads them."""
    raw = root / "Actor" / "raw"
    _need(raw, "film", "film (Actor)")
    path = raw / "out1_node_feature_label.txt"
    rows = _rows(path, 3)
    ids = [_int(row[0], path) for row in rows]
    labels = [_int(row[2], path) for row in rows]
    active = [_ints(row[1], path) for row in rows]
    n = len(rows)
    if sorted(ids) != list(range(n)) or min(min(a) for a in active) < 0:
        raise DatasetError(f"{str(path)!r}: node ids must be 0..{n - 1} once each and feature ids >= 0")
    width = max(max(a) for a in active) + 1
    if n * width > _MAX_DENSE:  # x is dense: a stray id of 10**7 would ask for 300 GB
        raise DatasetError(f"{str(path)!r} has a feature id {width - 1}; a dense [{n}, {width}] feature matrix is more "
                           f"than {_MAX_DENSE:,} values (expected ids below the feature count, 932 for Actor)")
    row = torch.tensor([i for i, a in zip(ids, active) for _ in a])
    col = torch.tensor([c for a in active for c in a])
    x = torch.zeros(n, int(col.max()) + 1)
    x[row, col] = 1.0
    y = torch.empty(n, dtype=torch.long)
    y[torch.tensor(ids)] = torch.tensor(labels)
    edge_index = _edges(raw / "out1_graph_edges.txt", n)
    return _finish(x, y, edge_index, raw, "film", split, "Actor", "Actor (geom-gcn film files), read by gkd")
