"""Your own graph: arrays, scipy and networkx graphs, and graph files → a validated PyG ``Data`` like the built-in sets.

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
MASK_LAYOUTS = ("splits-first", "nodes-first")  # [S, N] or [N, S], for the square case S == N
DEFAULT_SPLIT = "random:0.6/0.2/0.2"  # a stratified 60/20/20 (as the heterophily benchmarks' random splits): any size
UNLABELLED = -1  # OGB's and PyG's mark for a node without a label


def parse_split(spec: str) -> tuple[str, tuple[float, ...]]:
    """``random:TRAIN/VAL/TEST`` or ``per-class:TRAIN/VAL[/TEST]`` → ``(kind, numbers)``.

    Fractions (``random:0.6/0.2/0.2``, sum <= 1) split every class in those shares; counts (``random:20/500/1000``)
    take TRAIN nodes per class for training, then VAL and TEST nodes from the rest, as Planetoid's split does.
    ``per-class:20/30`` is the protocol of Shchur et al. (2018) that CPF, GLNN, NOSMOG and VQGraph use: 20 training
    and 30 validation nodes drawn per class, every other labelled node for test (or TEST per class).
    """
    text = str(spec).strip()
    m = re.fullmatch(r"per-class:(\d+)/(\d+)(?:/(\d+))?", text)
    if m:
        parts = tuple(float(p) for p in m.groups() if p is not None)
        check(parts[0] >= 1, f"split={spec!r}: expected at least 1 training node per class", DatasetError)
        return "per-class", parts
    m = re.fullmatch(r"random:([^/]+)/([^/]+)/([^/]+)", text)
    try:
        parts = tuple(float(p) for p in m.groups()) if m else None
    except ValueError:
        parts = None
    check(parts is not None and all(np.isfinite(p) and p >= 0 for p in parts),
          f"split={spec!r}; expected random:TRAIN/VAL/TEST with fractions (random:0.6/0.2/0.2) or counts "
          "(random:20/500/1000: per class / validation / test), or per-class:TRAIN/VAL[/TEST] (per-class:20/30: "
          "per class, the rest test)", DatasetError)
    if all(p < 1 for p in parts) and any(p > 0 for p in parts):
        check(sum(parts) <= 1 + 1e-9 and parts[0] > 0,
              f"split={spec!r}: fractions must be > 0 for training and sum to at most 1", DatasetError)
        return "fractions", parts
    check(all(float(p).is_integer() for p in parts) and parts[0] >= 1,
          f"split={spec!r}: counts must be whole numbers, at least 1 per class for training", DatasetError)
    return "counts", parts


def per_class_split(y: np.ndarray, num_classes: int, train: int, val: int, test: int | None,
                    seed: int) -> dict[str, Tensor]:
    """Shchur et al.'s ``get_train_val_test_split`` as GLNN's ``dataloader.py`` calls it: with
    ``numpy.random.RandomState(seed)``, ``train`` nodes per class (each class's nodes in node order, drawn with
    ``choice(..., replace=False)``), then ``val`` per class from the rest; test: ``test`` per class, or every other
    labelled node. The same seed gives GLNN's split for that seed, draw for draw."""
    rs = np.random.RandomState(int(seed) % 2**32)
    n = y.shape[0]
    taken = np.zeros(n, dtype=bool)
    masks = {m: torch.zeros(n, dtype=torch.bool) for m in MASKS}

    def draw(k: int, mask: str) -> None:
        for c in range(num_classes):
            members = np.flatnonzero((y == c) & ~taken)
            check(members.size >= k, f"split per-class:{train}/{val}{f'/{test}' if test else ''}: class {c} has "
                  f"{members.size} nodes left; the split takes {k} per class", DatasetError)
            picked = rs.choice(members, k, replace=False)
            masks[mask][torch.from_numpy(picked)] = True
        taken[masks[mask].numpy()] = True

    draw(train, "train_mask")
    draw(val, "val_mask")
    if test is None:
        masks["test_mask"] = torch.from_numpy(~taken & (y >= 0))
    else:
        draw(test, "test_mask")
    return masks


def random_split(y: Tensor, num_classes: int, spec: str = DEFAULT_SPLIT, seed: int = 0) -> dict[str, Tensor]:
    """Seeded train/val/test masks (the same ``seed`` gives the same split) following :func:`parse_split`.
    Unlabelled nodes (label -1) are in no mask."""
    kind, parts = parse_split(spec)
    if kind == "per-class":
        return per_class_split(y.numpy(), num_classes, *map(int, parts[:2]),
                               int(parts[2]) if len(parts) > 2 else None, seed)
    a, b, c = parts
    n = y.numel()
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    perm = perm[y[perm] >= 0]
    masks = {m: torch.zeros(n, dtype=torch.bool) for m in MASKS}
    if kind == "counts":
        need = int(a) * num_classes + int(b) + int(c)
        check(need <= perm.numel(), f"split random:{int(a)}/{int(b)}/{int(c)} needs {need} nodes ({int(a)} per "
              f"class + {int(b)} + {int(c)}); the graph has {perm.numel()} labelled nodes", DatasetError)
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
    check(y.dtype != torch.bool, "y is boolean; expected integer classes 0 .. C-1", DatasetError)
    if y.numel():
        # in float64 first: a label of 1e20, inf or 2**64-1 must be reported as it is, not as int64's wrap-around
        wide = y.double() if y.dtype != torch.uint64 else torch.from_numpy(y.numpy().astype(np.float64))
        bad = ~torch.isfinite(wide) | (wide != wide.round()) | (wide < UNLABELLED) | (wide >= n)
        if bool(bad.any()):
            v = wide[bad][0].item()
            raise DatasetError(f"y holds the label {v:.6g}; expected integer classes 0 .. C-1 with C at most the node "
                               f"count ({n}), or -1 for an unlabelled node")
    y = y.long()
    check(bool((y >= 0).any()), "y labels no node (every label is -1); expected classes 0 .. C-1", DatasetError)
    return y


def _as_mask(name: str, value: Any, n: int, layout: str | None) -> Tensor:
    """A mask array as ``[N]`` or ``[S, N]`` booleans; ``[N, S]`` is transposed. A square ``[N, N]`` array could be
    either, so it is refused unless ``layout`` says which."""
    m = _tensor(value, name)
    if m.dim() == 2:
        if layout is None:
            check(not (m.size(0) == n and m.size(1) == n), f"{name} has shape {tuple(m.shape)}: as many splits as "
                  f"nodes, so [splits, nodes] and [nodes, splits] cannot be told apart; pass mask_layout="
                  "'splits-first' or 'nodes-first' (--dataset-arg mask_layout=...)", DatasetError)
            if m.size(0) == n and m.size(1) != n:
                m = m.t()
        elif layout == "nodes-first":
            m = m.t()
    check(m.dim() in (1, 2) and m.size(-1) == n, f"{name} has shape {tuple(m.shape)}; expected [{n}], "
          f"[num_splits, {n}] or [{n}, num_splits]", DatasetError)
    check(m.dtype == torch.bool or bool(((m == 0) | (m == 1)).all()), f"{name} holds values other than 0/1; "
          "expected a boolean mask", DatasetError)
    return m.bool()


def _index_mask(name: str, value: Any, n: int) -> Tensor:
    """Node ids (OGB's ``train_idx``) as an ``[N]`` mask."""
    idx = _tensor(value, name)
    if idx.dim() == 2 and idx.size(1) == 1:  # OGB keeps some id lists as a column
        idx = idx.view(-1)
    check(idx.dim() == 1 and not idx.is_floating_point() and idx.dtype != torch.bool,
          f"{name} is a {idx.dtype} array of shape {tuple(idx.shape)}; expected 1-D integer node ids", DatasetError)
    if idx.numel():
        lo, hi = int(idx.min()), int(idx.max())
        check(lo >= 0 and hi < n, f"{name} holds node ids in [{lo}, {hi}]; the graph has nodes 0 .. {n - 1}",
              DatasetError)
    return torch.zeros(n, dtype=torch.bool).index_fill_(0, idx.long(), True)


def _masks(full: dict[str, Tensor], split: int) -> tuple[dict[str, Tensor], int, int]:
    """Masks as :func:`_as_mask` / :func:`_index_mask` give them (``[N]`` or ``[S, N]``) → split ``split mod S``."""
    counts = {m.size(0) if m.dim() == 2 else 1 for m in full.values()}
    counts.discard(1)  # a 1-D mask beside [S, N] ones is shared by every split (WikiCS' one test_mask)
    check(len(counts) <= 1, f"the masks hold different numbers of splits {sorted(counts)}; expected the same for "
          "train, val and test (or one mask shared by all)", DatasetError)
    s = counts.pop() if counts else 1
    return {k: (m[split % s] if m.dim() == 2 else m).clone() for k, m in full.items()}, split % s, s


def symmetrise(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None
               ) -> tuple[Tensor, Tensor | None, int]:
    """Add the reverse of every edge that lacks one (with its weight), as PyG's ``ToUndirected`` and the public
    files' own loaders do; edges already present both ways, duplicates and their order are kept as given, so an
    undirected file loads bit for bit as before. Returns ``(edge_index, edge_weight, reverse edges added)``."""
    if edge_index.numel() == 0:
        return edge_index, edge_weight, 0
    key = edge_index[0] * num_nodes + edge_index[1]
    missing = ~torch.isin(edge_index[1] * num_nodes + edge_index[0], key)
    added = int(missing.sum())
    if not added:
        return edge_index, edge_weight, 0
    edge_index = torch.cat([edge_index, edge_index[:, missing].flip(0)], dim=1)
    if edge_weight is not None:
        edge_weight = torch.cat([edge_weight, edge_weight[missing]])
    return edge_index, edge_weight, added


def largest_component_mask(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Boolean mask of the nodes in the largest connected component (edges read both ways; the first of
    ``numpy.argsort``'s reversed size order, as Shchur et al.'s ``largest_connected_components`` keeps it)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    ei = edge_index.numpy()
    adj = sp.coo_matrix((np.ones(ei.shape[1], dtype=np.int8), (ei[0], ei[1])), shape=(num_nodes, num_nodes))
    _, comp = connected_components(adj, directed=True, connection="weak")
    sizes = np.bincount(comp)
    return torch.from_numpy(comp == np.argsort(sizes)[::-1][0])


def from_arrays(x: Any, edge_index: Any, y: Any, train_mask: Any = None, val_mask: Any = None,
                test_mask: Any = None, *, edge_weight: Any = None, num_classes: int | None = None, split: int = 0,
                random_split_spec: str | None = None, name: str = "custom", source: str = "arrays",
                directed: bool = False, largest_component: bool = False, mask_layout: str | None = None,
                index: dict[str, Any] | None = None, metric: str | None = None,
                unused: tuple[str, ...] = (), notify: bool = True,
                index_names: dict[str, str] | None = None) -> Data:
    """Build and validate a node-classification graph from arrays (numpy, torch or lists).

    ``edge_index`` is ``[2, E]`` (``[E, 2]`` is transposed), read as undirected: the reverse of every one-way edge is
    added (:func:`symmetrise`) unless ``directed=True``. ``largest_component`` keeps the largest connected component
    (nodes renumbered in their order). Masks are 1-D, ``[S, N]`` or ``[N, S]`` (``mask_layout`` settles a square
    one), or node-id arrays in ``index`` (``{"train_mask": ids, ...}``); run ``split`` uses split ``split mod S``.
    Without any, or with ``random_split_spec``, the split is :func:`random_split` seeded by ``split``, so run ``r``
    gets its own split. Labels ``-1`` mark unlabelled nodes (in no mask). ``metric`` is the score the runs report
    (default ``acc``); ``unused`` names arrays of the source that were not read (recorded, and named in a notice;
    ``notify=False``: recorded only, for a loader whose protocol already states what it does).
    """
    from .base import notice

    check(mask_layout is None or mask_layout in MASK_LAYOUTS, f"mask_layout={mask_layout!r}; expected one of "
          f"{', '.join(MASK_LAYOUTS)}", DatasetError)
    check(isinstance(directed, bool) and isinstance(largest_component, bool), f"directed={directed!r}, "
          f"largest_component={largest_component!r}; expected true or false", DatasetError)
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
    if ei.numel():  # before the int64 cast, which would turn inf or 2**64-1 into a negative id
        wide = ei.double() if ei.dtype != torch.uint64 else torch.from_numpy(ei.numpy().astype(np.float64))
        bad = ~torch.isfinite(wide) | (wide != wide.round()) | (wide < 0) | (wide >= n)
        if bool(bad.any()):
            raise DatasetError(f"edge_index holds the node id {wide[bad][0].item():.6g}; expected integer ids of the "
                               f"graph's nodes 0 .. {n - 1}")
    ei = ei.long().contiguous()
    labels = _labels(_tensor(y, "y"), n)
    w = None
    if edge_weight is not None:
        w = _tensor(edge_weight, "edge_weight").float().reshape(-1)
        check(w.numel() == ei.size(1), f"edge_weight has {w.numel()} entries for {ei.size(1)} edges", DatasetError)
        check(bool(torch.isfinite(w).all()) and bool((w > 0).all()), "edge_weight holds non-finite or non-positive "
              "weights; expected weights > 0", DatasetError)
    if directed:
        edges = "directed: edges as given"
    else:
        given_edges = ei.size(1)
        ei, w, added = symmetrise(ei, n, w)
        edges = "undirected" + (f": {added} reverse edges added to the {given_edges} given" if added else
                                ": every edge given both ways")
        if added and notify:
            one_way = added == int((ei[0, :given_edges] != ei[1, :given_edges]).sum())
            notice(f"{name}: {'each edge is listed one way only' if one_way else f'{added} edges lack their reverse'}"
                   f"; read as undirected ({added} reverse edges added; directed=true keeps them as given)")
    given = {k: v for k, v in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask))
             if v is not None}
    given_index = dict(index or {})
    check(not (set(given) & set(given_index)), f"the graph has both masks and node-id arrays for "
          f"{sorted(set(given) & set(given_index))}; expected one of them", DatasetError)
    have = set(given) | set(given_index)
    check(not have or len(have) == 3, f"the graph has {sorted(have)} but not all of train_mask, val_mask, "
          "test_mask; give all three or none (for a random split)", DatasetError)
    full = {k: _as_mask(k, v, n, mask_layout) for k, v in given.items()}
    full |= {k: _index_mask((index_names or {}).get(k, k), v, n) for k, v in given_index.items()}
    if largest_component:
        keep = largest_component_mask(ei, n)
        if not bool(keep.all()):
            new_id = torch.full((n,), -1, dtype=torch.long)
            new_id[keep] = torch.arange(int(keep.sum()))
            inside = keep[ei[0]] & keep[ei[1]]
            ei, w = new_id[ei[:, inside]], (None if w is None else w[inside])
            x, labels = x[keep], labels[keep]
            full = {k: m[..., keep] for k, m in full.items()}
            edges += f"; largest connected component: {int(keep.sum())} of {n} nodes"
            n = int(keep.sum())
    if num_classes is None:
        c = int(labels.max()) + 1
    else:
        check(isinstance(num_classes, int) and not isinstance(num_classes, bool) and 2 <= num_classes <= max(n, 2),
              f"num_classes={num_classes!r}; expected an integer in [2, {max(n, 2)}]", DatasetError)
        c = num_classes
    check(c >= 2, f"y holds a single class ({c}); node classification needs at least 2", DatasetError)
    seeded = not full or random_split_spec is not None
    if not seeded:
        masks, at, num_splits = _masks(full, split)
        how = f"given masks: {num_splits} splits, run r on split r mod {num_splits}" if num_splits > 1 else \
            "given masks"
    else:
        spec = random_split_spec or DEFAULT_SPLIT
        masks, at, num_splits = random_split(labels, c, spec, seed=split), split, 1
        how = f"{spec}, drawn per run (run r: seed r)"
    data = Data(x=x, edge_index=ei, y=labels, num_nodes=n, **masks)
    if w is not None:
        data.edge_weight = w
    if unused and notify:
        notice(f"{name}: arrays not used: {', '.join(unused)}")
    data.meta = DatasetMeta(name=name, num_classes=c, split=how, split_index=at, num_splits=num_splits,
                            source=source, edges=edges, metric=metric or "acc", unused=tuple(unused),
                            split_per_run=seeded)
    return check_data(data, c)


def from_scipy(adj: Any, x: Any, y: Any, **kwargs: Any) -> Data:
    """A ``scipy.sparse`` adjacency (``adj[i, j] != 0`` for an edge ``i → j``; its values become ``edge_weight``
    unless all are 1) plus features and labels; other arguments as :func:`from_arrays` (read as undirected:
    ``from_scipy(sp.triu(A), ...)`` gives the whole graph; ``directed=True`` keeps ``adj`` as it is)."""
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
    both directions of each edge, and a ``DiGraph`` is read as undirected too unless ``directed=True`` (as every
    ``from_*``); the edge attribute ``edge_weight`` (when every edge has it) becomes ``data.edge_weight``."""
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
