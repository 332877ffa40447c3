"""Heterophilous graphs with the geom-gcn splits (Pei et al., ICLR 2020): WebKB (Texas, Wisconsin, Cornell) and Actor.

Each ships 10 fixed 48/32/20 splits; run ``r`` uses split ``r mod 10``.
"""
from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from .registry import DatasetMeta, ensure_writable, read_pyg, register, require_files

_WEBKB = {"texas": "Texas", "wisconsin": "Wisconsin", "cornell": "Cornell"}
_SPLITS = [f"{{}}_split_0.6_0.2_{i}.npz" for i in range(10)]


def _select(data: Data, split: int, name: str, source: str) -> Data:
    s = split % data.train_mask.size(1)
    for m in ("train_mask", "val_mask", "test_mask"):
        data[m] = data[m][:, s].clone()
    data.meta = DatasetMeta(name=name, num_classes=int(data.y.max()) + 1, split=f"geom-gcn split {s} of 10 (48/32/20)",
                            split_index=s, num_splits=10, source=source)
    return data


def _read(cls, root: str, processed: Path, **kw) -> Data:
    if not processed.is_dir() or not any(processed.iterdir()):
        ensure_writable(processed)
    return read_pyg(lambda: cls(root, **kw)[0], processed, f"{kw.get('name', cls.__name__)} under {root!r}")


@register(*_WEBKB)
def load_webkb(key: str, root: Path, *, split: int = 0) -> Data:
    from torch_geometric.datasets import WebKB

    raw = root / key / "raw"
    require_files(raw, ["out1_node_feature_label.txt", "out1_graph_edges.txt"] + [f.format(key) for f in _SPLITS],
                  f"copy the geom-gcn WebKB files for {_WEBKB[key]} into {str(raw)!r}")
    data = _read(WebKB, str(root), root / key / "processed", name=_WEBKB[key])
    return _select(data, split, _WEBKB[key], "WebKB (geom-gcn) via torch_geometric.datasets.WebKB")


@register("actor")
def load_actor(key: str, root: Path, *, split: int = 0) -> Data:
    from torch_geometric.datasets import Actor

    raw = root / "Actor" / "raw"
    require_files(raw, ["out1_node_feature_label.txt", "out1_graph_edges.txt"] + [f.format("film") for f in _SPLITS],
                  f"copy the geom-gcn film (Actor) files into {str(raw)!r}")
    data = _read(Actor, str(root / "Actor"), root / "Actor" / "processed")
    return _select(data, split, "Actor", "Actor (geom-gcn film) via torch_geometric.datasets.Actor")
