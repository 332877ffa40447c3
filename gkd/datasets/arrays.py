"""Your own graph from arrays, a scipy sparse matrix or a networkx graph → a validated PyG ``Data``.

Every entry point ends in :func:`from_arrays`, which checks the graph as :func:`gkd.datasets.load` checks Cora
(shapes, dtypes, finite features, edge ids, integer labels, disjoint masks), applies the edge policy (undirected
unless ``directed=True``: :func:`symmetrise`), and attaches ``data.meta`` (split protocol, edge policy, metric, arrays
left unused). Graph files are read into it by :mod:`gkd.datasets.graphfile`; splits come from
:mod:`gkd.datasets.splits`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import DatasetError, check
from .base import DatasetMeta
from .splits import DEFAULT_SPLIT, MASK_LAYOUTS, UNLABELLED, _as_mask, _index_mask, _masks, _tensor, random_split
from .validate import check_data


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

