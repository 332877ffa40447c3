"""Your own graph: graph files, arrays, scipy and networkx graphs, random splits; each bad input one clear error."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gkd.datasets import from_arrays, from_networkx, from_scipy, load, random_split, save_graph_file
from gkd.errors import DatasetError


def _arrays(n=60, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 5)).astype(np.float32), "edge_index": rng.integers(0, n, size=(2, 200)),
            "y": np.arange(n) % c}


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_with_masks_round_trip(tmp_path, small_graph):
    path = save_graph_file(small_graph, tmp_path / "g.npz")
    data = load(str(path))
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], small_graph[key]), key
    assert data.meta.num_classes == 3 and data.meta.name == "g"


def test_npz_aliases_and_random_split_seeded_by_run(tmp_path):
    a = _arrays(n=200)
    path = _write(tmp_path / "alias.npz", node_features=a["x"], edges=a["edge_index"].T, node_labels=a["y"])
    d0, d0b, d1 = load(path, split=0), load(path, split=0), load(path, split=1)
    assert torch.equal(d0.train_mask, d0b.train_mask) and not torch.equal(d0.train_mask, d1.train_mask)
    assert int(d0.train_mask.sum()) == 120 and abs(int(d0.val_mask.sum()) - 40) <= 3  # 60/20/20 per class
    frac = load(path, random_split="random:0.6/0.2/0.2")
    assert int(frac.train_mask.sum()) == 120 and int(frac.val_mask.sum() + frac.test_mask.sum()) == 80
    counts = load(path, random_split="random:10/50/50")
    assert int(counts.train_mask.sum()) == 30 and int(counts.val_mask.sum()) == 50
    per_class = torch.bincount(counts.y[counts.train_mask], minlength=3)
    assert per_class.tolist() == [10, 10, 10]


def test_two_dimensional_masks_pick_split_r_mod_s(tmp_path):
    a = _arrays(n=40)
    rng = np.random.default_rng(1)
    masks = {k: np.zeros((4, 40), dtype=bool) for k in ("train_mask", "val_mask", "test_mask")}
    for s in range(4):
        perm = rng.permutation(40)
        masks["train_mask"][s, perm[:20]] = masks["val_mask"][s, perm[20:30]] = masks["test_mask"][s, perm[30:]] = 1
    path = _write(tmp_path / "multi.npz", **a, **masks)
    d1, d5 = load(path, split=1), load(path, split=5)
    assert d1.meta.num_splits == 4 and d1.meta.split_index == 1 and torch.equal(d1.train_mask, d5.train_mask)
    assert torch.equal(d1.train_mask, torch.from_numpy(masks["train_mask"][1]))
    transposed = _write(tmp_path / "t.npz", **a, **{k: v.T for k, v in masks.items()})
    assert torch.equal(load(transposed, split=2).val_mask, torch.from_numpy(masks["val_mask"][2]))


def test_gkd_graph_npz_is_a_dataset(tmp_path):
    from gkd.vision import save_graph

    a = _arrays(n=200)
    from torch_geometric.data import Data

    g = Data(x=torch.from_numpy(a["x"]), edge_index=torch.from_numpy(a["edge_index"]),
             edge_weight=torch.rand(200) + 0.1, y=torch.from_numpy(a["y"]), num_nodes=200)
    save_graph(tmp_path / "rel.npz", g, {"k": 3})
    data = load(str(tmp_path / "rel.npz"), random_split="random:5/50/50", directed=True)
    assert data.num_nodes == 200 and data.edge_weight.shape == (200,)
    # read as undirected by default: one-way edges gain their reverse, with their weight
    data = load(str(tmp_path / "rel.npz"), random_split="random:5/50/50")
    assert data.edge_weight.shape == (data.edge_index.size(1),) and data.edge_index.size(1) > 200
    save_graph(tmp_path / "rel.npz", g, {"k": 3, "symmetric": False})  # gkd graph --directed says so itself
    assert load(str(tmp_path / "rel.npz")).edge_index.size(1) == 200


def test_scipy_and_networkx(small_graph):
    n = small_graph.num_nodes
    src, dst = small_graph.edge_index.numpy()
    adj = sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    masks = {k: small_graph[k] for k in ("train_mask", "val_mask", "test_mask")}
    a = from_scipy(adj, small_graph.x, small_graph.y, **masks)
    assert torch.equal(a.edge_index, small_graph.edge_index) and getattr(a, "edge_weight", None) is None
    g = nx.DiGraph()
    g.add_nodes_from((i, {"x": small_graph.x[i].numpy(), "y": int(small_graph.y[i])}) for i in range(n))
    g.add_edges_from(zip(src.tolist(), dst.tolist()))
    b = from_networkx(g, **masks)
    assert torch.equal(b.x, small_graph.x) and b.edge_index.size(1) == small_graph.edge_index.size(1)
    named = nx.relabel_nodes(g, {i: f"paper{i}" for i in range(n)})
    with pytest.raises(DatasetError, match="networkx graph has node id 'paper0'"):
        from_networkx(named)
    c = from_networkx(named, node_order=[f"paper{i}" for i in range(n)], **masks)
    assert torch.equal(c.y, small_graph.y)


def _bad(tmp_path, **changes):
    a = _arrays()
    a.update(changes)
    a = {k: v for k, v in a.items() if v is not None}
    return _write(tmp_path / "bad.npz", **a)


@pytest.mark.parametrize("changes, message", [
    ({"x": None}, r"has no x / node_features / features array \(it holds"),
    ({"y": np.arange(59) % 3}, "y has 59 labels for 60 nodes"),
    ({"edge_index": np.array([[0, 1], [1, 60]])},
     r"edge_index holds the node id 60; expected integer ids of the graph's nodes 0 \.\. 59"),
    ({"y": -(np.arange(60) % 3)}, "y holds the label -2; expected integer classes"),
    ({"y": np.arange(60) % 3 + 0.5}, "y holds the label 0.5; expected integer classes"),
    ({"x": np.full((60, 5), np.nan, dtype=np.float32)}, "NaN/inf values"),
    ({"train_mask": np.ones(60, bool), "val_mask": np.ones(60, bool), "test_mask": np.zeros(60, bool)},
     "train_mask and val_mask overlap in 60 nodes"),
    ({"train_mask": np.ones(50, bool), "val_mask": np.zeros(60, bool), "test_mask": np.zeros(60, bool)},
     r"train_mask has shape \(50,\); expected \[60\], \[num_splits, 60\] or \[60, num_splits\]"),
    ({"train_mask": np.ones(60, bool)}, "but not all of train_mask, val_mask, test_mask"),
    ({"x": np.array([["a"] * 5] * 60)}, "'x.npy' has dtype <U1; expected numbers"),
])
def test_bad_graph_files(tmp_path, changes, message):
    with pytest.raises(DatasetError, match=message):
        load(_bad(tmp_path, **changes), random_split="random:0.5/0.25/0.25" if "mask" not in str(changes) else None)


def test_unreadable_or_pickled_graph_file(tmp_path):
    (tmp_path / "zip.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="is not an .npz of plain arrays"):
        load(str(tmp_path / "zip.npz"))
    np.savez(tmp_path / "obj.npz", x=np.array([object()] * 3, dtype=object))
    with pytest.raises(DatasetError, match="has dtype object; expected numbers"):
        load(str(tmp_path / "obj.npz"))
    with pytest.raises(DatasetError, match="does not exist or is not a file"):
        load(str(tmp_path / "missing.npz"))


@pytest.mark.parametrize("spec, message", [
    ("random:0.6/0.6/0.2", "sum to at most 1"), ("random:1.5/2/3", "counts must be whole numbers"),
    ("random:a/b/c", "expected random:TRAIN/VAL/TEST"), ("0.6/0.2/0.2", "expected random:TRAIN/VAL/TEST"),
    ("random:50/500/1000", "needs 1650 nodes"),
])
def test_bad_split_specs(spec, message):
    y = torch.arange(60) % 3
    with pytest.raises(DatasetError, match=message):
        random_split(y, 3, spec)


def test_random_split_applies_to_named_datasets_too():
    d = load("synthetic-csbm", num_nodes=1700, random_split="random:0.5/0.25/0.25", split=3)
    assert int(d.train_mask.sum()) == 850 and d.meta.split_index == 3 and "random:0.5" in d.meta.split


def test_from_arrays_accepts_torch_and_lists():
    d = from_arrays(torch.randn(30, 4), [[0, 1, 2], [1, 2, 0]], [0, 1, 2] * 10, random_split_spec="random:2/6/6")
    assert d.num_nodes == 30 and d.x.dtype == torch.float32 and d.meta.num_classes == 3


def test_more_hostile_graphs_are_one_clear_error(small_graph):
    """Found by review: each of these was a hang or a traceback."""
    x, ei = small_graph.x.numpy(), small_graph.edge_index.numpy()
    y = small_graph.y.numpy().copy()
    y[-1] = 10 ** 12  # used to allocate a split over 10**12 classes and hang
    with pytest.raises(DatasetError, match=r"y holds the label 1e\+12; expected integer classes 0 .. C-1 with C at "
                                           r"most the node count \(300\)"):
        from_arrays(x, ei, y)
    with pytest.raises(DatasetError, match="single class"):
        from_arrays(x, ei, np.zeros(300, dtype=np.int64))
    with pytest.raises(DatasetError, match=r"num_classes='3'; expected an integer in \[2, "):
        from_arrays(x, ei, small_graph.y, num_classes="3")
    half = from_arrays(x.astype(np.float16), ei, small_graph.y)
    assert half.x.dtype == torch.float32
    g = nx.path_graph(4)
    nx.set_node_attributes(g, {i: [1.0] * (1 + (i == 2)) for i in range(4)}, "x")
    nx.set_node_attributes(g, {i: i % 2 for i in range(4)}, "y")
    with pytest.raises(DatasetError, match="does not form an array over the nodes"):
        from_networkx(g)
    with pytest.raises(DatasetError, match="which is not a node of the graph"):
        from_networkx(g, node_order=[0, 1, 2, "zzz"])
    nx.set_node_attributes(g, {i: [float(i)] for i in range(4)}, "x")
    nx.set_edge_attributes(g, {e: 2.0 for e in g.edges}, "weight")
    weighted = from_networkx(g, random_split_spec="random:1/1/1")
    assert weighted.edge_weight.shape == (6,) and bool((weighted.edge_weight == 2.0).all())
    del g.edges[0, 1]["weight"]
    with pytest.raises(DatasetError, match="only some edges carry the 'weight' attribute"):
        from_networkx(g, random_split_spec="random:1/1/1")


def test_from_arrays_refuses_string_features():
    with pytest.raises(DatasetError, match="x has dtype <U1; expected numbers"):
        from_arrays(np.array([["a"] * 5] * 60), np.array([[0], [1]]), np.arange(60) % 3)
