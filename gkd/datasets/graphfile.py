"""Your own graph: arrays, scipy and networkx graphs, and graph files → a validated PyG ``Data`` like the built-in sets.

Every entry point ends in :func:`from_arrays`, which checks the graph as :func:`gkd.datasets.load` checks Cora
(shapes, dtypes, finite features, edge ids, integer labels, disjoint masks) and attaches ``data.meta``.

Graph file format (``.npz``, read with ``allow_pickle=False``; :func:`save_graph_file` writes it):

=====================  ==============================================================================================
key (aliases)          content
=====================  ==============================================================================================
``x`` (node_features)  ``[N, F]`` float features
``edge_index`` (edges) ``[2, E]`` (or ``[E, 2]``) integer node ids, ``src → dst``
``y`` (node_labels)    ``[N]`` integer labels ``0 .. C-1``
``train_mask`` ...     optional ``val_mask``/``test_mask`` too: ``[N]`` bool, or ``[S, N]`` (also ``[N, S]``) for S
                       fixed splits (run ``r`` uses split ``r mod S``, as public heterophily sets ship them)
``edge_weight``        optional ``[E]`` positive weights
=====================  ==============================================================================================

The ``.npz`` that ``gkd graph`` writes (relational graphs from CNN embeddings) is read the same way. Without masks a
graph gets a seeded random split (``random:TRAIN/VAL/TEST``, see :func:`random_split`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import DatasetError, check
from .base import DatasetMeta
from .validate import MASKS, check_data

ALIASES = {"x": ("x", "node_features"), "edge_index": ("edge_index", "edges"), "y": ("y", "node_labels")}
DEFAULT_SPLIT = "random:0.6/0.2/0.2"  # geom-gcn's stratified 60/20/20: fits a graph of any size


def parse_split(spec: str) -> tuple[str, tuple[float, float, float]]:
    """``random:TRAIN/VAL/TEST`` → ``("fractions" | "counts", (train, val, test))``.

    Fractions (``random:0.6/0.2/0.2``, sum <= 1) split every class in those shares; counts (``random:20/500/1000``)
    take TRAIN nodes per class for training, then VAL and TEST nodes from the rest, as Planetoid's split does.
    """
    m = re.fullmatch(r"random:([^/]+)/([^/]+)/([^/]+)", str(spec).strip())
    try:
        parts = tuple(float(p) for p in m.groups()) if m else None
    except ValueError:
        parts = None
    check(parts is not None and all(np.isfinite(p) and p >= 0 for p in parts),
          f"split={spec!r}; expected random:TRAIN/VAL/TEST with fractions (random:0.6/0.2/0.2) or counts "
          "(random:20/500/1000: per class / validation / test)", DatasetError)
    if all(p < 1 for p in parts) and any(p > 0 for p in parts):
        check(sum(parts) <= 1 + 1e-9 and parts[0] > 0,
              f"split={spec!r}: fractions must be > 0 for training and sum to at most 1", DatasetError)
        return "fractions", parts
    check(all(float(p).is_integer() for p in parts) and parts[0] >= 1,
          f"split={spec!r}: counts must be whole numbers, at least 1 per class for training", DatasetError)
    return "counts", parts


def random_split(y: Tensor, num_classes: int, spec: str = DEFAULT_SPLIT, seed: int = 0) -> dict[str, Tensor]:
    """Seeded train/val/test masks (the same ``seed`` gives the same split) following :func:`parse_split`."""
    kind, (a, b, c) = parse_split(spec)
    n = y.numel()
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    masks = {m: torch.zeros(n, dtype=torch.bool) for m in MASKS}
    if kind == "counts":
        need = int(a) * num_classes + int(b) + int(c)
        check(need <= n, f"split random:{int(a)}/{int(b)}/{int(c)} needs {need} nodes ({int(a)} per class + "
              f"{int(b)} + {int(c)}); the graph has {n}", DatasetError)
        for cls in range(num_classes):
            members = perm[y[perm] == cls]
            check(members.numel() >= int(a), f"class {cls} has {members.numel()} nodes; the split takes {int(a)} per "
                  "class for training", DatasetError)
            masks["train_mask"][members[:int(a)]] = True
        rest = perm[~masks["train_mask"][perm]]
        masks["val_mask"][rest[:int(b)]] = True
        masks["test_mask"][rest[int(b):int(b) + int(c)]] = True
        return masks
    for cls in range(num_classes):  # stratified fractions
        members = perm[y[perm] == cls]
        k = members.numel()
        bounds = [round(a * k), round((a + b) * k), round((a + b + c) * k)]
        masks["train_mask"][members[:bounds[0]]] = True
        masks["val_mask"][members[bounds[0]:bounds[1]]] = True
        masks["test_mask"][members[bounds[1]:bounds[2]]] = True
    return masks


def _tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise DatasetError(f"{name} cannot be read as an array ({type(e).__name__})") from None
    check(arr.dtype.kind in "biuf", f"{name} has dtype {arr.dtype}; expected numbers", DatasetError)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _labels(y: Tensor, n: int) -> Tensor:
    check(y.dim() == 1 or (y.dim() == 2 and y.size(1) == 1), f"y has shape {tuple(y.shape)}; expected [{n}]",
          DatasetError)
    y = y.reshape(-1)
    check(y.numel() == n, f"y has {y.numel()} labels for {n} nodes (x has {n} rows)", DatasetError)
    if y.is_floating_point():
        check(bool(torch.isfinite(y).all()) and bool((y == y.round()).all()),
              "y holds non-integer or NaN labels; expected integer classes 0 .. C-1", DatasetError)
    check(y.dtype != torch.bool, "y is boolean; expected integer classes 0 .. C-1", DatasetError)
    y = y.long()
    if y.numel():
        check(int(y.min()) >= 0, f"y holds the negative label {int(y.min())}; expected classes 0 .. C-1 (mark "
              "unlabelled nodes by leaving them out of every mask, with any valid class)", DatasetError)
    return y


def _masks(given: dict[str, Any], n: int, split: int) -> tuple[dict[str, Tensor], int, int]:
    """1-D masks as they are; 2-D ``[S, N]`` (or ``[N, S]``) masks → split ``split mod S``."""
    masks, counts = {}, set()
    for name, value in given.items():
        m = _tensor(value, name)
        if m.dim() == 2 and m.size(0) == n and m.size(1) != n:
            m = m.t()
        check(m.dim() in (1, 2) and m.size(-1) == n, f"{name} has shape {tuple(m.shape)}; expected [{n}] or "
              f"[num_splits, {n}]", DatasetError)
        check(m.dtype == torch.bool or bool(((m == 0) | (m == 1)).all()), f"{name} holds values other than 0/1; "
              "expected a boolean mask", DatasetError)
        counts.add(m.size(0) if m.dim() == 2 else 1)
        masks[name] = m.bool()
    check(len(counts) <= 1, f"the masks hold different numbers of splits {sorted(counts)}; expected the same for "
          "train, val and test", DatasetError)
    s = counts.pop() if counts else 1
    return {k: (m[split % s] if m.dim() == 2 else m).clone() for k, m in masks.items()}, split % s, s


def from_arrays(x: Any, edge_index: Any, y: Any, train_mask: Any = None, val_mask: Any = None,
                test_mask: Any = None, *, edge_weight: Any = None, num_classes: int | None = None, split: int = 0,
                random_split_spec: str | None = None, name: str = "custom", source: str = "arrays") -> Data:
    """Build and validate a node-classification graph from arrays (numpy, torch or lists).

    ``edge_index`` is ``[2, E]`` (``[E, 2]`` is transposed); masks are 1-D or ``[S, N]`` (run ``split`` uses split
    ``split mod S``); without masks, or with ``random_split_spec``, the split is :func:`random_split` seeded by
    ``split``, so run ``r`` gets its own split.
    """
    x = _tensor(x, "x")
    check(x.dim() == 2, f"x has shape {tuple(x.shape)}; expected [num_nodes, num_features]", DatasetError)
    x = x.float()  # integer, half, bfloat16 or double features: the zoo's weights are float32
    n = x.size(0)
    check(n >= 2, f"x has {n} rows; a graph needs at least 2 nodes", DatasetError)
    ei = _tensor(edge_index, "edge_index")
    if ei.dim() == 2 and ei.size(0) != 2 and ei.size(1) == 2:
        ei = ei.t()
    check(ei.dim() == 2 and ei.size(0) == 2, f"edge_index has shape {tuple(ei.shape)}; expected [2, num_edges]",
          DatasetError)
    check(not ei.is_floating_point() or bool((ei == ei.round()).all()), "edge_index holds non-integer node ids",
          DatasetError)
    ei = ei.long().contiguous()
    labels = _labels(_tensor(y, "y"), n)
    if num_classes is None:
        c = int(labels.max()) + 1
        check(c <= n, f"y holds the label {c - 1} for a graph of {n} nodes; expected classes 0 .. C-1 with C at most "
              "the node count (pass num_classes= if classes are absent)", DatasetError)
    else:
        check(isinstance(num_classes, int) and not isinstance(num_classes, bool) and 2 <= num_classes <= max(n, 2),
              f"num_classes={num_classes!r}; expected an integer in [2, {max(n, 2)}]", DatasetError)
        c = num_classes
    check(c >= 2, f"y holds a single class ({c}); node classification needs at least 2", DatasetError)
    given = {k: v for k, v in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask))
             if v is not None}
    check(not given or len(given) == 3, f"the graph has {sorted(given)} but not all of train_mask, val_mask, "
          "test_mask; give all three or none (for a random split)", DatasetError)
    if given and random_split_spec is None:
        masks, index, num_splits = _masks(given, n, split)
        how = f"given masks (split {index} of {num_splits})" if num_splits > 1 else "given masks"
    else:
        spec = random_split_spec or DEFAULT_SPLIT
        masks, index, num_splits = random_split(labels, c, spec, seed=split), split, 1
        how = f"{spec} (seed {split})"
    data = Data(x=x, edge_index=ei, y=labels, num_nodes=n, **masks)
    if edge_weight is not None:
        w = _tensor(edge_weight, "edge_weight").float().reshape(-1)
        check(w.numel() == ei.size(1), f"edge_weight has {w.numel()} entries for {ei.size(1)} edges", DatasetError)
        check(bool(torch.isfinite(w).all()) and bool((w > 0).all()), "edge_weight holds non-finite or non-positive "
              "weights; expected weights > 0", DatasetError)
        data.edge_weight = w
    data.meta = DatasetMeta(name=name, num_classes=c, split=how, split_index=index, num_splits=num_splits,
                            source=source)
    return check_data(data, c)


def from_scipy(adj: Any, x: Any, y: Any, **kwargs: Any) -> Data:
    """A ``scipy.sparse`` adjacency (``adj[i, j] != 0`` for an edge ``i → j``; its values become ``edge_weight``
    unless all are 1) plus features and labels; other arguments as :func:`from_arrays`."""
    import scipy.sparse as sp

    check(sp.issparse(adj) and adj.ndim == 2 and adj.shape[0] == adj.shape[1],
          f"adj is {type(adj).__name__} {getattr(adj, 'shape', '')}; expected a square scipy.sparse matrix",
          DatasetError)
    coo = sp.coo_matrix(adj)
    coo.sum_duplicates()
    weight = coo.data.astype(np.float32)
    if "edge_weight" not in kwargs and not np.all(weight == 1):
        kwargs["edge_weight"] = weight
    return from_arrays(x, np.stack([coo.row, coo.col]).astype(np.int64), y, source="scipy.sparse", **kwargs)


def from_networkx(graph: Any, x: Any = "x", y: Any = "y", *, node_order: list | None = None,
                  edge_weight: str | None = "weight", **kwargs: Any) -> Data:
    """A networkx graph: ``x``/``y`` name node attributes (or are arrays in ``node_order``). Nodes must be the
    integers ``0 .. N-1`` unless ``node_order`` lists them (its position is the node's id); undirected graphs give
    both directions of each edge; the edge attribute ``edge_weight`` (when every edge has it) becomes
    ``data.edge_weight``."""
    nodes = list(graph.nodes) if node_order is None else list(node_order)
    if node_order is not None:
        stray = next((v for v in nodes if v not in graph), None)
        check(stray is None, f"node_order lists {stray!r}, which is not a node of the graph", DatasetError)
    if node_order is None:
        bad = next((v for v in nodes if not isinstance(v, (int, np.integer)) or isinstance(v, bool)), None)
        check(bad is None and sorted(nodes) == list(range(len(nodes))),
              f"networkx graph has node id {bad!r}{'' if bad is not None else ' (ids are not 0 .. N-1)'}; expected "
              "the integers 0 .. N-1, or pass node_order=[...] to number the nodes", DatasetError)
        nodes = list(range(len(nodes)))
    check(len(set(nodes)) == len(nodes) == graph.number_of_nodes(),
          f"node_order lists {len(nodes)} nodes ({len(set(nodes))} distinct); the graph has "
          f"{graph.number_of_nodes()}", DatasetError)
    index = {v: i for i, v in enumerate(nodes)}

    def attr(value: Any, what: str) -> Any:
        if not isinstance(value, str):
            return value
        missing = next((v for v in nodes if value not in graph.nodes[v]), None)
        if missing is not None:
            raise DatasetError(f"networkx node {missing!r} has no {what} attribute {value!r}")
        try:
            return np.asarray([graph.nodes[v][value] for v in nodes])
        except (ValueError, TypeError) as e:  # ragged or None entries
            raise DatasetError(f"networkx {what} attribute {value!r} does not form an array over the nodes "
                               f"(lengths or types differ: {str(e)[:80]})") from None

    edges = [(index[a], index[b]) for a, b in graph.edges()]
    weights = None
    if edge_weight is not None and "edge_weight" not in kwargs:
        has = [edge_weight in d for _, _, d in graph.edges(data=True)]
        check(all(has) or not any(has), f"only some edges carry the {edge_weight!r} attribute; expected all or none "
              "(pass edge_weight=None to ignore it)", DatasetError)
        if has and all(has):
            weights = [float(d[edge_weight]) for _, _, d in graph.edges(data=True)]
    if not graph.is_directed():
        if weights is not None:
            weights += [w for (a, b), w in zip(edges, weights) if a != b]
        edges += [(b, a) for a, b in edges if a != b]
    ei = np.asarray(edges, dtype=np.int64).reshape(-1, 2).T
    if weights is not None:
        kwargs["edge_weight"] = weights
    return from_arrays(attr(x, "feature"), ei, attr(y, "label"), source="networkx", **kwargs)


def is_graph_file(name: str | os.PathLike) -> bool:
    """Whether a ``--dataset`` value names a graph file rather than a registered dataset."""
    text = str(name)  # a file that merely shares a dataset's name (./cora) must not shadow it
    return text.lower().endswith(".npz") or "/" in text or os.sep in text


def load_graph_file(path: str | os.PathLike, *, split: int = 0, random_split_spec: str | None = None) -> Data:
    """Read a graph file (see the module docstring); never unpickles."""
    import json

    from ..errors import GKDError
    from ..io import read_npz

    path = Path(path)
    check(path.is_file(), f"graph file {str(path)!r} does not exist or is not a file", DatasetError)
    try:
        arrays = read_npz(path, "graph file")
    except GKDError as e:
        raise DatasetError(str(e)) from None
    manifest = {}
    if "manifest" in arrays:  # written by `gkd graph`
        try:
            manifest = json.loads(arrays.pop("manifest").tobytes())
        except (ValueError, UnicodeDecodeError):
            raise DatasetError(f"graph file {str(path)!r} has a manifest that is not JSON") from None

    def pick(key: str) -> Any:
        found = [a for a in ALIASES[key] if a in arrays]
        check(found, f"graph file {str(path)!r} has no {' / '.join(ALIASES[key])} array (it holds "
              f"{sorted(arrays)})", DatasetError)
        return arrays[found[0]]

    masks = {m: arrays[m] for m in MASKS if m in arrays}
    classes = manifest.get("num_classes") if isinstance(manifest, dict) else None
    check(classes is None or (isinstance(classes, int) and not isinstance(classes, bool)),
          f"graph file {str(path)!r} has a manifest num_classes={classes!r}; expected an integer", DatasetError)
    return from_arrays(pick("x"), pick("edge_index"), pick("y"), **masks, edge_weight=arrays.get("edge_weight"),
                       num_classes=classes, split=split,
                       random_split_spec=random_split_spec, name=path.stem, source=f"graph file {str(path)!r}")


def save_graph_file(data: Data, path: str | os.PathLike) -> Path:
    """Write ``data`` (x, edge_index, y, masks, optional edge_weight) as a graph file :func:`load_graph_file` reads;
    atomic, pickle-free. The documented way to hand a PyG ``Data`` to ``gkd ... --dataset PATH``."""
    import io

    from ..io import atomic_write_bytes

    arrays = {"x": data.x, "edge_index": data.edge_index, "y": data.y}
    arrays.update({m: data[m] for m in MASKS if getattr(data, m, None) is not None})
    if getattr(data, "edge_weight", None) is not None:
        arrays["edge_weight"] = data.edge_weight
    buf = io.BytesIO()
    np.savez(buf, **{k: v.detach().cpu().numpy() for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())
