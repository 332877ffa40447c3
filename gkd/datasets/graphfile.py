"""Your own graph: graph files (read and written here) and, from :mod:`gkd.datasets.arrays` and
:mod:`gkd.datasets.splits`, arrays, scipy and networkx graphs and splits → a validated PyG ``Data`` like the built-in
sets.

Every entry point ends in :func:`from_arrays`, which checks the graph as :func:`gkd.datasets.load` checks Cora
(shapes, dtypes, finite features, edge ids, integer labels, disjoint masks), applies the edge policy (undirected
unless ``directed=True``), and attaches ``data.meta`` (split protocol, edge policy, metric, arrays left unused).

Graph files (``.npz``, read with ``allow_pickle=False``) come in the field's layouts; docs/data.md has the table:

- gkd's own (:func:`save_graph_file`): ``x`` (``node_features``), ``edge_index`` (``edges``; ``[2, E]`` or
  ``[E, 2]``), ``y`` (``node_labels``, ``label``, ``labels``), optional ``edge_weight``;
- the Shchur / CPF layout that PyG's ``Amazon``, ``Coauthor`` and ``CitationFull`` read: ``adj_data``,
  ``adj_indices``, ``adj_indptr``, ``adj_shape``, ``attr_*`` (sparse) or ``attr_matrix`` (dense), ``labels``; its
  name arrays (``node_names``, ``class_names``, ...) are text and are skipped;
- splits as masks (``train_mask``/``train_masks``, ``val_mask``/``valid_mask(s)``, ``test_mask(s)``: ``[N]``, or
  ``[S, N]`` / ``[N, S]`` for S fixed splits, run ``r`` using split ``r mod S``) or as index arrays (OGB's
  ``train_idx``/``valid_idx``/``test_idx`` and the usual variants).

A file whose masks gkd finds is never given a random split; without any, run ``r`` gets its own seeded split
(``random:0.6/0.2/0.2`` unless ``--split`` says otherwise, see :func:`parse_split`). Labels ``-1`` mark unlabelled
nodes: they are in no mask and never a class. An array gkd does not use is named in a notice and in ``data.meta``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch_geometric.data import Data

from ..errors import DatasetError, check
from .arrays import from_arrays, from_networkx, from_scipy, largest_component_mask, symmetrise
from .base import DatasetMeta
from .splits import (DEFAULT_SPLIT, MASK_LAYOUTS, UNLABELLED, parse_split, per_class_split,
                     random_split)
from .validate import MASKS

__all__ = ["from_arrays", "from_scipy", "from_networkx", "symmetrise", "largest_component_mask", "parse_split",
           "per_class_split", "random_split", "DEFAULT_SPLIT", "MASK_LAYOUTS", "UNLABELLED", "ALIASES", "MASK_NAMES",
           "INDEX_NAMES", "SHCHUR_ADJ", "SHCHUR_ATTR", "READ_NAMES", "GRAPH_FILE_ARGS", "is_graph_file",
           "load_graph_file", "save_graph_file"]

ALIASES = {"x": ("x", "node_features", "features"), "edge_index": ("edge_index", "edges"),
           "y": ("y", "node_labels", "labels", "label")}
# split arrays under the names public benchmark files use: masks (1-D, [S, N] or [N, S]) or node-id arrays
MASK_NAMES = {"train_mask": ("train_mask", "train_masks"),
              "val_mask": ("val_mask", "val_masks", "valid_mask", "valid_masks", "validation_mask"),
              "test_mask": ("test_mask", "test_masks")}
# (train/valid/test: np.savez(path, **dataset.get_idx_split()) as OGB returns it)
INDEX_NAMES = {"train_mask": ("train_idx", "idx_train", "train_index", "train_indices", "train_nodes", "train"),
               "val_mask": ("valid_idx", "val_idx", "idx_val", "valid_index", "val_index", "val_indices",
                            "valid_nodes", "val_nodes", "valid", "val"),
               "test_mask": ("test_idx", "idx_test", "test_index", "test_indices", "test_nodes", "test")}
SHCHUR_ADJ = ("adj_data", "adj_indices", "adj_indptr", "adj_shape")
SHCHUR_ATTR = ("attr_data", "attr_indices", "attr_indptr", "attr_shape")
# every array name gkd reads: one of these holding text is an error, any other text array (names) is skipped
READ_NAMES = frozenset({*(a for v in ALIASES.values() for a in v), *(a for v in MASK_NAMES.values() for a in v),
                        *(a for v in INDEX_NAMES.values() for a in v), *SHCHUR_ADJ, *SHCHUR_ATTR, "attr_matrix",
                        "edge_weight", "manifest"})

def is_graph_file(name: str | os.PathLike) -> bool:
    """Whether a ``--dataset`` value names a graph file rather than a registered dataset."""
    text = str(name)  # a file that merely shares a dataset's name (./cora) must not shadow it
    return text.lower().endswith(".npz") or "/" in text or os.sep in text


GRAPH_FILE_ARGS = {"directed": bool, "largest_component": bool, "mask_layout": str, "self_loops": bool,
                   "weighted": bool}


def _shchur(arrays: dict[str, Any], path: Path) -> tuple[Any, Any, Any, set[str]]:
    """``(x, edge_index, edge_weight, keys read)`` of a Shchur / CPF file: CSR adjacency and attributes (sparse
    ``attr_*`` or dense ``attr_matrix``), as Shchur et al.'s ``load_npz_to_sparse_graph`` reads them."""
    import scipy.sparse as sp

    def csr(prefix: str) -> Any:
        keys = [f"{prefix}_{k}" for k in ("data", "indices", "indptr", "shape")]
        missing = [k for k in keys if k not in arrays]
        check(not missing, f"graph file {str(path)!r} has {prefix}_* arrays but not {missing}", DatasetError)
        shape = tuple(int(v) for v in np.asarray(arrays[keys[3]]).reshape(-1))
        try:
            return sp.csr_matrix((arrays[keys[0]], arrays[keys[1]], arrays[keys[2]]), shape=shape), set(keys)
        except (ValueError, TypeError, OverflowError) as e:
            raise DatasetError(f"graph file {str(path)!r}: {prefix}_* do not form a CSR matrix ({e})") from None

    adj, read = csr("adj")
    check(adj.shape[0] == adj.shape[1], f"graph file {str(path)!r}: adj_shape {adj.shape} is not square",
          DatasetError)
    if "attr_data" in arrays:
        attr, more = csr("attr")
        x = attr.toarray() if attr.shape[0] * attr.shape[1] <= 2**31 else None
        check(x is not None, f"graph file {str(path)!r}: attributes of shape {attr.shape} are too large to hold "
              "densely (more than 2**31 values)", DatasetError)
        read |= more
    else:
        check("attr_matrix" in arrays, f"graph file {str(path)!r} has an adjacency (adj_*) but no attr_* or "
              "attr_matrix features", DatasetError)
        x, read = arrays["attr_matrix"], read | {"attr_matrix"}
    coo = adj.tocoo()
    weight = coo.data.astype(np.float32)
    return x, np.stack([coo.row, coo.col]).astype(np.int64), (None if np.all(weight == 1) else weight), read


def load_graph_file(path: str | os.PathLike, *, split: int = 0, random_split_spec: str | None = None,
                    directed: bool | None = None, largest_component: bool = False, mask_layout: str | None = None,
                    self_loops: bool = True, weighted: bool = True, name: str | None = None,
                    source: str | None = None, notify: bool = True) -> Data:
    """Read a graph file in any layout of the module docstring; never unpickles. ``directed``: ``None`` reads the
    graph as undirected unless the file's manifest says it is directed (``gkd graph --directed``);
    ``self_loops=False`` drops self-loops and ``weighted=False`` edge weights (as Shchur et al.'s ``standardize`` and
    PyG's ``parse_npz`` do); ``name``, ``source``, ``notify``: as :func:`from_arrays` (a registered loader's own)."""
    import json

    from ..errors import GKDError
    from ..io import read_npz

    path = Path(path)
    check(path.is_file(), f"graph file {str(path)!r} does not exist or is not a file", DatasetError)
    try:
        arrays = read_npz(path, "graph file", skip_text=True, numeric=READ_NAMES)
    except GKDError as e:
        raise DatasetError(str(e)) from None
    members = _member_names(path)
    manifest: Any = {}
    if "manifest" in arrays:  # written by `gkd graph`
        try:
            manifest = json.loads(arrays.pop("manifest").tobytes())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise DatasetError(f"graph file {str(path)!r} has a manifest that is not a JSON object") from None
        check(isinstance(manifest, dict), f"graph file {str(path)!r} has a manifest that is not a JSON object",
              DatasetError)
    read = {"manifest"}

    def pick(key: str) -> Any:
        found = [a for a in ALIASES[key] if a in arrays]
        check(found, f"graph file {str(path)!r} has no {' / '.join(ALIASES[key])} array (it holds "
              f"{sorted(members)})", DatasetError)
        read.add(found[0])
        return arrays[found[0]]

    if "adj_data" in arrays or "adj_indptr" in arrays:
        x, edge_index, weight, keys = _shchur(arrays, path)
        read |= keys
    else:
        x, edge_index = pick("x"), pick("edge_index")
        weight = arrays.get("edge_weight")
        if weight is not None:
            read.add("edge_weight")
    y = pick("y")
    if not weighted:
        weight = None
    if not self_loops:
        edge_index = np.asarray(edge_index)
        if edge_index.ndim == 2 and edge_index.shape[0] != 2 and edge_index.shape[1] == 2:
            edge_index = edge_index.T
        keep = edge_index[0] != edge_index[1]
        edge_index, weight = edge_index[:, keep], (None if weight is None else np.asarray(weight)[keep])

    def find(names: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        out = {}
        for mask, aliases in names.items():
            found = [a for a in aliases if a in arrays]
            check(len(found) <= 1, f"graph file {str(path)!r} holds {found} for one split; expected one of them",
                  DatasetError)
            if found:
                out[mask] = (found[0], arrays[found[0]])
                read.add(found[0])
        return out

    masks, index = find(MASK_NAMES), find(INDEX_NAMES)
    masks = {k: v for k, (_, v) in masks.items()}
    index_names = {k: name for k, (name, _) in index.items()}
    index = {k: v for k, (_, v) in index.items()}
    classes = manifest.get("num_classes")
    check(classes is None or (isinstance(classes, int) and not isinstance(classes, bool)),
          f"graph file {str(path)!r} has a manifest num_classes={classes!r}; expected an integer", DatasetError)
    metric = manifest.get("metric")
    if metric is not None:
        from ..metrics import check_metric  # a manifest names its field's score (rocauc, f1-macro, ...)

        check_metric(metric, f"graph file {str(path)!r} manifest metric")
    if directed is None:
        directed = manifest.get("symmetric") is False
    unused = tuple(sorted(members - read))
    return from_arrays(x, edge_index, y, **masks, index=index, edge_weight=weight, num_classes=classes, split=split,
                       random_split_spec=random_split_spec, name=name or path.stem,
                       source=source or f"graph file {str(path)!r}", directed=directed,
                       largest_component=largest_component, mask_layout=mask_layout, metric=metric, unused=unused,
                       index_names=index_names, notify=notify)


def _member_names(path: Path) -> set[str]:
    """The array names an ``.npz`` holds (its members without ``.npy``), read from the zip directory alone."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        return {n[:-4] if n.endswith(".npy") else n for n in z.namelist()}


def save_graph_file(data: Data, path: str | os.PathLike) -> Path:
    """Write ``data`` (x, edge_index, y, masks, optional edge_weight) as a graph file :func:`load_graph_file` reads;
    atomic, pickle-free. The documented way to hand a PyG ``Data`` to ``gkd ... --dataset PATH``. Its manifest
    records whether the edges are undirected (a directed graph loads back directed, as it was), the class count and
    the metric, so the file is the same experiment as ``data``."""
    import io
    import json

    from torch_geometric.utils import is_undirected

    from ..io import atomic_write_bytes

    arrays = {"x": data.x, "edge_index": data.edge_index, "y": data.y}
    arrays.update({m: data[m] for m in MASKS if getattr(data, m, None) is not None})
    if getattr(data, "edge_weight", None) is not None:
        arrays["edge_weight"] = data.edge_weight
    meta = getattr(data, "meta", None)
    manifest = {"symmetric": bool(is_undirected(data.edge_index, num_nodes=data.num_nodes)),
                **({"num_classes": meta.num_classes, "metric": meta.metric} if isinstance(meta, DatasetMeta) else {})}
    buf = io.BytesIO()
    np.savez(buf, **{k: v.detach().cpu().numpy() for k, v in arrays.items()},
             manifest=np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8))
    return atomic_write_bytes(path, buf.getvalue())
