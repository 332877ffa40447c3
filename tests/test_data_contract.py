"""Anyone's graph, read as its authors meant it (issue #39): the field's file layouts, the edge policy, splits per run,
the metric, a teacher's own inputs, unlabelled nodes, and the served accuracy. Every file here is generated."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from conftest import DATA_ROOT, assert_one_line_error, needs_cora
from gkd.datasets import load
from gkd.datasets.graphfile import from_arrays, from_scipy, per_class_split
from gkd.errors import ConfigError, DatasetError, GKDError

N = 120


def _graph(seed: int = 0, n: int = N, classes: int = 3, positives: float | None = None):
    """Features that carry the class, and each edge listed ONE way (src < dst), as public files list them."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(np.int64) if positives else rng.integers(0, classes, n)
    x = rng.normal(size=(n, 8)).astype(np.float32) + np.eye(max(int(y.max()) + 1, 2), 8, dtype=np.float32)[y]
    src, dst = rng.integers(0, n, 4 * n), rng.integers(0, n, 4 * n)
    keep = src < dst
    return x, np.stack([src[keep], dst[keep]]), y


def _masks(n: int, splits: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    m = np.zeros((3, splits, n), dtype=bool)
    for s in range(splits):
        p = rng.permutation(n)
        m[0, s, p[: n // 2]], m[1, s, p[n // 2: 3 * n // 4]], m[2, s, p[3 * n // 4:]] = True, True, True
    return m


def test_plural_masks_are_the_runs_splits(tmp_path, capsys):
    x, ei, y = _graph()
    m = _masks(N, 10)
    path = tmp_path / "plural.npz"
    np.savez(path, node_features=x, edges=ei.T, label=y, train_masks=m[0], val_masks=m[1], test_masks=m[2])
    for r in (0, 1, 13):
        d = load(str(path), split=r)
        assert torch.equal(d.train_mask, torch.from_numpy(m[0, r % 10]))
        assert torch.equal(d.test_mask, torch.from_numpy(m[2, r % 10]))
        assert "given masks: 10 splits" in d.meta.split and not d.meta.split_per_run
    # [N, S] is read as S splits too
    np.savez(path, x=x, edge_index=ei, y=y, train_mask=m[0].T, val_mask=m[1].T, test_mask=m[2].T)
    assert torch.equal(load(str(path), split=3).val_mask, torch.from_numpy(m[1, 3]))


def test_index_arrays_are_the_split(tmp_path):
    x, ei, y = _graph()
    path = tmp_path / "ogb-like.npz"
    np.savez(path, x=x, edge_index=ei, y=y, train_idx=np.arange(0, 60), valid_idx=np.arange(60, 90),
             test_idx=np.arange(90, N))
    d = load(str(path))
    assert d.train_mask.nonzero().view(-1).tolist() == list(range(60))
    assert d.val_mask.nonzero().view(-1).tolist() == list(range(60, 90))
    assert d.meta.split == "given masks"


def test_square_masks_are_ambiguous_unless_stated(tmp_path):
    x, ei, y = _graph(n=4)
    sq = np.zeros((3, 4, 4), dtype=bool)  # [S=4, N=4]
    for s in range(4):
        sq[0, s, s], sq[1, s, (s + 1) % 4], sq[2, s, (s + 2) % 4] = True, True, True
    path = tmp_path / "square.npz"
    np.savez(path, x=x, edge_index=np.array([[0, 1], [1, 2]]), y=np.array([0, 1, 0, 1]), train_mask=sq[0],
             val_mask=sq[1], test_mask=sq[2])
    with pytest.raises(DatasetError, match="cannot be told apart"):
        load(str(path))
    d = load(str(path), split=1, mask_layout="splits-first")
    assert d.train_mask.tolist() == [False, True, False, False]
    d = load(str(path), split=1, mask_layout="nodes-first")
    assert d.train_mask.tolist() == sq[0][:, 1].tolist()


def test_one_way_edges_are_read_undirected_unless_directed(tmp_path, capsys):
    x, ei, y = _graph()
    path = tmp_path / "oneway.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    d = load(str(path))
    pairs = set(map(tuple, d.edge_index.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs) and d.edge_index.size(1) == 2 * ei.shape[1]
    assert d.meta.edges.startswith("undirected")
    assert "listed one way only" in capsys.readouterr().err
    kept = load(str(path), directed=True)
    assert kept.edge_index.size(1) == ei.shape[1] and kept.meta.edges.startswith("directed")
    # an undirected file loads exactly as given: no edge added, none reordered
    both = np.concatenate([ei, ei[::-1]], axis=1)
    np.savez(path, x=x, edge_index=both, y=y)
    assert torch.equal(load(str(path)).edge_index, torch.from_numpy(both))


def test_from_scipy_triu_is_symmetrised():
    x, ei, y = _graph()
    a = sp.coo_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(N, N)).tocsr()
    assert (a != a.T).nnz > 0
    d = from_scipy(sp.triu(a), x, y)
    b = sp.coo_matrix((np.ones(d.edge_index.size(1)), d.edge_index.numpy()), shape=(N, N))
    assert (b != b.T).nnz == 0
    assert from_scipy(sp.triu(a), x, y, directed=True).edge_index.size(1) == sp.triu(a).nnz


def test_shchur_layout_reads_like_pyg(tmp_path, capsys):
    """adj_* / attr_* CSR arrays plus labels and text name arrays (skipped, never unpickled, and named)."""
    x, ei, y = _graph()
    a = sp.csr_matrix((np.ones(ei.shape[1], dtype=np.float32), (ei[0], ei[1])), shape=(N, N))
    a = (a + a.T).tocsr()
    attr = sp.csr_matrix(x)
    path = tmp_path / "shchur.npz"
    np.savez(path, adj_data=a.data, adj_indices=a.indices, adj_indptr=a.indptr, adj_shape=np.array(a.shape),
             attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr, attr_shape=np.array(attr.shape),
             labels=y, node_names=np.array([f"n{i}" for i in range(N)]), class_names=np.array(["a", "b", "c"]))
    d = load(str(path))
    assert torch.allclose(d.x, torch.from_numpy(x))
    assert torch.equal(d.y, torch.from_numpy(y))
    coo = a.tocoo()
    assert set(map(tuple, d.edge_index.t().tolist())) == set(zip(coo.row.tolist(), coo.col.tolist()))
    assert d.meta.unused == ("class_names", "node_names")
    assert "arrays not used: class_names, node_names" in capsys.readouterr().err
    np.savez(path, adj_data=a.data, adj_indices=a.indices, adj_indptr=a.indptr, adj_shape=np.array(a.shape),
             attr_matrix=x, labels=y)
    assert torch.allclose(load(str(path)).x, torch.from_numpy(x))
    # PyG's parse_npz reading: no self-loops, no weights
    a = (a + sp.eye(N, format="csr") * 3).tocsr()
    np.savez(path, adj_data=a.data, adj_indices=a.indices, adj_indptr=a.indptr, adj_shape=np.array(a.shape),
             attr_matrix=x, labels=y)
    d = load(str(path))
    assert bool((d.edge_index[0] == d.edge_index[1]).any()) and d.edge_weight is not None
    d = load(str(path), self_loops=False, weighted=False)
    assert not bool((d.edge_index[0] == d.edge_index[1]).any()) and getattr(d, "edge_weight", None) is None


def test_unlabelled_nodes_are_in_no_mask(tmp_path):
    x, ei, y = _graph()
    y[:15] = -1
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    for r in (0, 1):
        d = load(str(path), split=r)
        labelled = d.y >= 0
        assert not bool((d.train_mask | d.val_mask | d.test_mask)[~labelled].any())
        assert d.meta.num_classes == 3
    m = _masks(N, 1)[:, 0]
    np.savez(path, x=x, edge_index=ei, y=y, train_mask=m[0] | (y < 0), val_mask=m[1] & (y >= 0),
             test_mask=m[2] & (y >= 0))
    with pytest.raises(DatasetError, match="selects .* unlabelled nodes"):
        load(str(path))


@pytest.mark.parametrize("label, shown", [(1e20, "1e+20"), (float("inf"), "inf"), (-5, "-5")])
def test_label_messages_name_the_value(label, shown):
    x, ei, y = _graph()
    y = y.astype(np.float64)
    y[3] = label
    with pytest.raises(DatasetError, match=re.escape(f"y holds the label {shown}; expected integer classes 0 .. C-1 "
                                                     f"with C at most the node count ({N}), or -1 for an unlabelled "
                                                     "node")):
        from_arrays(x, ei, y)


def test_edge_ids_beyond_int64_are_named():
    x, _, y = _graph()
    for bad, shown in ((np.array([[0, 1], [1, np.inf]]), "inf"),
                       (np.array([[0, 1], [1, 2**64 - 1]], dtype=np.uint64), "1.84467e+19")):
        with pytest.raises(DatasetError, match=re.escape(f"edge_index holds the node id {shown};")):
            from_arrays(x, bad, y)


def test_random_split_is_drawn_per_run(tmp_path):
    from gkd.config import TrainConfig
    from gkd.pipeline.seeds import data_loader

    x, ei, y = _graph()
    path = tmp_path / "nomasks.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    data_for = data_loader(TrainConfig(dataset=str(path)), torch.device("cpu"))
    first = data_for(0, None)
    second = data_for(1, first)
    assert first.meta.split_per_run and not torch.equal(first.train_mask, second.train_mask)
    assert torch.equal(data_for(2, second).train_mask, load(str(path), split=2).train_mask)


def test_metrics_by_name():
    from gkd.metrics import get_metric
    from gkd.train import get_metric as train_get_metric

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.5, 0.0]])
    y = torch.tensor([0, 1, 1, 0])
    assert get_metric("acc")(logits, y) == 0.75
    assert get_metric("rocauc")(logits, y) == 1.0  # the positive class's probability ranks both positives first
    assert get_metric("f1-macro")(logits, y) == pytest.approx(0.7333, abs=1e-3)
    assert train_get_metric("rocauc")(logits, y) == 1.0
    with pytest.raises(ConfigError, match=re.escape("metric='roc-auc'; expected one of acc, rocauc, f1-macro, "
                                                    "f1-micro, balanced-acc or ogb:DATASET")):
        get_metric("roc-auc")


def test_rocauc_on_imbalanced_binary_labels_selects_and_reports(tmp_path):
    from sklearn.metrics import roc_auc_score

    from gkd.config import TrainConfig
    from gkd.nn import build_model, to_adj_t
    from gkd.pipeline.train import run_training
    from gkd.metrics import get_metric
    from gkd.train import Trainer

    x, ei, y = _graph(positives=0.2, n=400)
    path = tmp_path / "binary.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    acc = run_training(TrainConfig(dataset=str(path), model="mlp", runs=2, epochs=20), progress=False)
    auc = run_training(TrainConfig(dataset=str(path), model="mlp", runs=2, epochs=20, metric="rocauc"),
                       progress=False)
    assert acc["metric"] == "acc" and auc["metric"] == "rocauc"
    assert [r["test"] for r in acc["runs"]] != [r["test"] for r in auc["runs"]]
    # the score selected on is ROC AUC of the best-validation model
    d = load(str(path))
    torch.manual_seed(0)
    model = build_model("mlp", d.num_features, 2)
    res = Trainer(model, d, epochs=20, metric=get_metric("rocauc")).fit()
    model.eval()
    with torch.no_grad():
        p = model(d.x).softmax(-1)[:, 1]
    assert res.val == pytest.approx(roc_auc_score(d.y[d.val_mask].numpy(), p[d.val_mask].numpy()), abs=1e-6)
    del to_adj_t


def test_rocauc_needs_two_classes_before_training(tmp_path):
    from gkd.config import TrainConfig
    from gkd.pipeline.train import run_training

    x, ei, y = _graph(positives=0.2)
    m = _masks(N, 1)[:, 0]
    m[1] &= y == 0  # validation holds the negative class alone
    path = tmp_path / "oneclass.npz"
    np.savez(path, x=x, edge_index=ei, y=y, train_mask=m[0], val_mask=m[1], test_mask=m[2])
    with pytest.raises(DatasetError, match="val_mask .* holds 1 class; the score needs at least 2"):
        run_training(TrainConfig(dataset=str(path), runs=1, epochs=2, metric="rocauc"), progress=False)


def test_manifest_metric_is_used(tmp_path):
    x, ei, y = _graph()
    path = tmp_path / "manifested.npz"
    manifest = np.frombuffer(json.dumps({"metric": "f1-macro"}).encode(), dtype=np.uint8)
    np.savez(path, x=x, edge_index=ei, y=y, manifest=manifest)
    assert load(str(path)).meta.metric == "f1-macro"
    np.savez(path, x=x, edge_index=ei, y=y, manifest=np.frombuffer(b'{"metric": "auc"}', dtype=np.uint8))
    with pytest.raises(GKDError, match="manifest metric='auc'"):
        load(str(path))


def _glnn_split(labels: np.ndarray, seed: int, train: int = 20, val: int = 30):
    """Shchur et al.'s get_train_val_test_split as GLNN's dataloader calls it, written from its published
    description: binarised labels, per class the node-ordered members, RandomState(seed).choice without
    replacement; validation drawn after training from what training left; test the rest."""
    onehot = np.eye(labels.max() + 1)[labels]
    rs = np.random.RandomState(seed)

    def per_class(k, forbidden=()):
        forbidden = set(forbidden)
        return np.concatenate([rs.choice([i for i in range(len(labels)) if onehot[i, c] > 0 and i not in forbidden],
                                         k, replace=False) for c in range(onehot.shape[1])])

    tr = per_class(train)
    va = per_class(val, tr)
    te = np.setdiff1d(np.arange(len(labels)), np.concatenate([tr, va]))
    return tr, va, te


@pytest.mark.skipif(not (DATA_ROOT / "cpf" / "cora.npz").is_file(), reason="CPF files not under the data root")
def test_cpf_protocol_node_counts_and_glnn_splits():
    for name, nodes in (("cpf-cora", 2485), ("cpf-citeseer", 2110)):
        d = load(name, split=0)
        assert d.num_nodes == nodes and d.meta.split.startswith("per-class:20/30")
        ei = d.edge_index
        assert not bool((ei[0] == ei[1]).any())
        a = sp.coo_matrix((np.ones(ei.size(1)), ei.numpy()), shape=(nodes, nodes))
        assert (a != a.T).nnz == 0
        c = d.meta.num_classes
        for seed in (0, 3):
            d = load(name, split=seed)
            tr, va, te = _glnn_split(d.y.numpy(), seed)
            assert sorted(d.train_mask.nonzero().view(-1).tolist()) == sorted(tr.tolist())
            assert sorted(d.val_mask.nonzero().view(-1).tolist()) == sorted(va.tolist())
            assert d.test_mask.nonzero().view(-1).tolist() == te.tolist()
            assert int(d.train_mask.sum()) == 20 * c and int(d.val_mask.sum()) == 30 * c


def test_per_class_split_matches_reference_on_a_small_graph():
    y = np.random.default_rng(1).integers(0, 4, 200)
    for seed in (0, 7):
        m = per_class_split(y, 4, 5, 6, None, seed)
        tr, va, te = _glnn_split(y, seed, 5, 6)
        assert sorted(m["train_mask"].nonzero().view(-1).tolist()) == sorted(tr.tolist())
        assert sorted(m["val_mask"].nonzero().view(-1).tolist()) == sorted(va.tolist())
        assert m["test_mask"].nonzero().view(-1).tolist() == te.tolist()


class _WeightedGCN(torch.nn.Module):
    """A PyG model of the user's, trained by its owner with edge weights."""

    def __init__(self, f, c):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1, self.conv2 = GCNConv(f, 32), GCNConv(32, c)

    def forward(self, x, edge_index, edge_weight=None):
        return self.conv2(self.conv1(x, edge_index, edge_weight).relu(), edge_index, edge_weight)


def test_a_teacher_gets_its_edge_weights(small_graph):
    import gkd

    data = small_graph.clone()
    data.meta = small_graph.meta
    g = torch.Generator().manual_seed(0)
    data.edge_weight = torch.rand(data.edge_index.size(1), generator=g) * 5 + 0.01
    torch.manual_seed(0)
    teacher = _WeightedGCN(data.num_features, 3)
    opt = torch.optim.Adam(teacher.parameters(), lr=0.02)
    for _ in range(60):  # the owner's own loop, with the weights
        opt.zero_grad()
        out = teacher(data.x, data.edge_index, data.edge_weight)
        torch.nn.functional.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
    teacher.eval()
    with torch.no_grad():
        pred = teacher(data.x, data.edge_index, data.edge_weight).argmax(-1)
        unweighted = teacher(data.x, data.edge_index).argmax(-1)
    owner = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
    assert not torch.equal(pred, unweighted)  # the weights matter to this teacher
    est = gkd.GNNToMLP(method="glnn", epochs=5, patience=5).fit(data, teacher=teacher)
    assert est.result_["teacher_test"] == pytest.approx(owner, abs=1e-9)
    assert not teacher.training  # left as it was


def test_a_teacher_that_cannot_take_the_weights_is_refused(small_graph):
    import gkd
    from torch_geometric.nn import GCN

    data = small_graph.clone()
    data.meta = small_graph.meta
    data.edge_weight = torch.ones(data.edge_index.size(1))

    class NoWeights(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gnn = GCN(data.num_features, 16, 2, 3)

        def forward(self, x, edge_index):
            return self.gnn(x, edge_index)

    with pytest.raises(ConfigError, match="forward takes no edge_weight"):
        gkd.GNNToMLP(method="glnn", epochs=2).fit(data, teacher=NoWeights())


def _served(est, data):
    student = est.student_
    student.eval()
    with torch.no_grad():
        pred = student(data.x[data.test_mask]).argmax(-1)  # the README's serving path: features only
    return float((pred == data.y[data.test_mask]).float().mean())


def test_served_accuracy_is_reported_csbm(small_graph):
    import gkd
    from torch_geometric.nn import GCN

    torch.manual_seed(0)
    teacher = GCN(small_graph.num_features, 32, 2, 3)
    from gkd.train import Trainer

    Trainer(teacher, small_graph, epochs=50).fit()
    est = gkd.GNNToMLP(method="gkd", epochs=40, patience=40, student_guard=False).fit(small_graph, teacher=teacher)
    assert est.result_["test_features_only"] == pytest.approx(_served(est, small_graph), abs=1e-9)
    assert "val_features_only" in est.result_
    # predict / predict_proba take NumPy rows, as a scikit-learn estimator does
    rows = small_graph.x[:7].numpy()
    assert torch.equal(est.predict(rows), est.student_(small_graph.x[:7]).argmax(-1))
    assert torch.allclose(est.predict_proba(rows).sum(-1), torch.ones(7))


@needs_cora
def test_served_accuracy_is_reported_cora(cora):
    import gkd
    from torch_geometric.nn import GCN

    from gkd.train import Trainer

    torch.manual_seed(0)
    teacher = GCN(cora.num_features, 64, 2, 7, dropout=0.5)
    Trainer(teacher, cora, epochs=60).fit()
    est = gkd.GNNToMLP(method="gkd", epochs=60, patience=60, student_guard=False).fit(cora, teacher=teacher)
    assert est.result_["test_features_only"] == pytest.approx(_served(est, cora), abs=1e-9)


def test_cli_graph_file_args_checked(tmp_path, capsys):
    from gkd.cli import main

    x, ei, y = _graph()
    path = tmp_path / "g.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    rc = main(["train", "--dataset", str(path), "--dataset-arg", "directd=true", "--runs", "1", "--epochs", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "a graph file takes only directed, largest_component, mask_layout" in err


def test_a_run_that_predicts_one_class_says_so(tmp_path, capsys):
    from gkd.config import TrainConfig
    from gkd.pipeline.train import run_training

    rng = np.random.default_rng(0)
    n = 200
    y = (rng.random(n) < 0.1).astype(np.int64)  # 10% positives, features that carry nothing
    x = rng.normal(size=(n, 4)).astype(np.float32)
    path = tmp_path / "majority.npz"
    np.savez(path, x=x, edge_index=np.stack([np.arange(n - 1), np.arange(1, n)]), y=y)
    res = run_training(TrainConfig(dataset=str(path), model="mlp", runs=1, epochs=30, lr=0.05), progress=False)
    assert res["runs"][0]["one_class"] == 0
    assert "every test node is predicted as class 0" in capsys.readouterr().err


@pytest.mark.parametrize("arrays, message", [
    (lambda x, ei, y, m: {"x": x, "edge_index": ei, "y": y, "train_mask": m[0], "val_mask": m[1], "test_mask": m[2],
                          "train_idx": np.arange(3)}, "both masks and node-id arrays"),
    (lambda x, ei, y, m: {"x": x, "edge_index": ei, "y": y, "train_mask": m[0], "train_masks": m[0],
                          "val_mask": m[1], "test_mask": m[2]}, "for one split; expected one of them"),
    (lambda x, ei, y, m: {"adj_data": np.ones(2, dtype=np.float32), "adj_indices": np.array([1, 0]),
                          "adj_indptr": np.r_[0, 1, 2, np.full(N - 2, 2)], "adj_shape": np.array([N, N]),
                          "labels": y}, "but no attr_\\* or attr_matrix"),
    (lambda x, ei, y, m: {"x": x, "edge_index": ei, "y": y, "train_idx": np.array([0, N]),
                          "valid_idx": np.arange(3), "test_idx": np.arange(3, 6)}, "train_idx holds node ids in"),
])
def test_bad_layouts_are_one_clear_error(tmp_path, arrays, message):
    x, ei, y = _graph()
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays(x, ei, y, _masks(N, 1)[:, 0]))
    with pytest.raises(DatasetError, match=message):
        load(str(path))


def test_bad_split_and_layout_arguments(tmp_path):
    x, ei, y = _graph()
    path = tmp_path / "g.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    with pytest.raises(DatasetError, match="nodes left; the split takes 500 per class"):
        load(str(path), random_split="per-class:500/30")
    with pytest.raises(DatasetError, match="mask_layout='sideways'; expected one of splits-first, nodes-first"):
        load(str(path), mask_layout="sideways")


def test_yaml_nan_term_option_is_named_non_finite(tmp_path):
    from gkd.config import make_config

    path = tmp_path / "c.yaml"
    path.write_text("method: self-distill\nterm_args:\n  neighbour:\n    weight: nan\n")
    with pytest.raises(ConfigError, match=re.escape("term_args neighbour.weight='nan' is not finite; expected a "
                                                    "finite number")):
        make_config(path)


def test_deeply_nested_graph_file_manifest_is_one_error(tmp_path):
    x, ei, y = _graph()
    path = tmp_path / "nested.npz"
    np.savez(path, x=x, edge_index=ei, y=y, manifest=np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8))
    with pytest.raises(DatasetError, match="has a manifest that is not a JSON object"):
        load(str(path))


def test_unlabelled_nodes_through_distillation_and_self_distillation(tmp_path):
    from gkd.config import TrainConfig
    from gkd.pipeline.gnn2mlp import DistillConfig, run_distillation
    from gkd.pipeline.train import run_training

    x, ei, y = _graph(n=200)
    y[:20] = -1
    path = tmp_path / "unl.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    short = {"epochs": 4, "patience": 4, "runs": 1}
    res = run_distillation(DistillConfig(dataset=str(path), teachers=1, teacher_generations=1,
                                         teacher_args={"epochs": 4, "patience": 4}, **short), progress=False)
    assert 0 <= res["test_mean"] <= 1
    res = run_training(TrainConfig(dataset=str(path), method="self-distill", term_args={"neighbour": {"warmup": 0}},
                                   **short), progress=False)
    assert 0 <= res["test_mean"] <= 1


def test_predict_answers_the_split_the_model_was_trained_on(tmp_path):
    from gkd.cli import main

    x, ei, y = _graph(n=200)
    path = tmp_path / "nomasks.npz"
    np.savez(path, x=x, edge_index=ei, y=y)
    assert main(["train", "--dataset", str(path), "--model", "mlp", "--runs", "3", "--epochs", "3", "--quiet",
                 "--save", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")]) == 0
    kept = json.loads((tmp_path / "r.json").read_text())["saved"]["run"]
    assert main(["predict", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "p.csv")]) == 0
    answered = [int(line.split(",")[0]) for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    assert answered == load(str(path), split=kept).test_mask.nonzero().view(-1).tolist()


def test_wikics_and_ogb_split_layouts(tmp_path):
    x, ei, y = _graph()
    m = _masks(N, 4)
    path = tmp_path / "wikics.npz"
    np.savez(path, x=x, edge_index=ei, y=y, train_masks=m[0].T, val_masks=m[1].T, test_mask=m[2, 0] & ~m[0].any(0)
             & ~m[1].any(0))
    d = load(str(path), split=2)
    assert torch.equal(d.train_mask, torch.from_numpy(m[0, 2])) and d.meta.num_splits == 4
    path = tmp_path / "ogb.npz"
    np.savez(path, x=x, edge_index=ei, y=y, train=np.arange(50)[:, None], valid=np.arange(50, 80),
             test=np.arange(80, N))
    d = load(str(path))
    assert int(d.train_mask.sum()) == 50 and d.meta.split == "given masks" and d.meta.unused == ()


def test_given_graph_metric_and_undefined_validation_score(small_graph):
    import gkd
    from torch_geometric.nn import GCN

    from sklearn.metrics import f1_score

    from gkd.metrics import get_metric
    from gkd.nn import build_model
    from gkd.train import Trainer

    torch.manual_seed(0)
    teacher = GCN(small_graph.num_features, 16, 2, 3)
    est = gkd.GNNToMLP(method="glnn", epochs=3, patience=3, metric="f1-macro").fit(small_graph, teacher=teacher)
    with torch.no_grad():
        pred = est.student_.eval()(small_graph.x).argmax(-1)  # glnn: no positions, so every path answers alike
    m = small_graph.test_mask
    want = f1_score(small_graph.y[m].numpy(), pred[m].numpy(), average="macro", zero_division=0)
    assert est.result_["test"] == pytest.approx(want, abs=1e-9)
    d = small_graph.clone()
    d.meta = small_graph.meta
    d.val_mask = d.val_mask & (d.y == 0)  # one class: ROC AUC undefined
    with pytest.raises(DatasetError, match="the validation score is nan"):
        Trainer(build_model("mlp", d.num_features, 3), d, epochs=2, metric=get_metric("rocauc")).fit()


def test_save_graph_file_keeps_a_directed_graph_directed(tmp_path):
    from gkd.datasets.graphfile import save_graph_file

    x, ei, y = _graph()
    d = from_arrays(x, ei, y, directed=True)
    save_graph_file(d, tmp_path / "g.npz")
    back = load(str(tmp_path / "g.npz"))
    assert torch.equal(back.edge_index, d.edge_index) and back.meta.edges.startswith("directed")


def test_edge_inputs_a_teacher_cannot_take_are_named(small_graph):
    from gkd.nn.hidden import bind_edges

    class OnlyWeights(torch.nn.Module):
        def forward(self, x, edge_index, edge_weight=None):
            return x

    d = small_graph.clone()
    d.edge_weight = torch.ones(d.edge_index.size(1))
    d.edge_attr = torch.ones(d.edge_index.size(1), 2)
    with pytest.raises(ConfigError, match="forward takes no edge_attr"):
        bind_edges(OnlyWeights(), d)


def test_ogb_metric_names_are_checked():
    from gkd.metrics import check_metric

    assert check_metric("ogb:ogbn-arxiv") == "ogb:ogbn-arxiv"
    for bad in ("ogb:nope", "ogb:ogbn-proteins"):
        with pytest.raises(ConfigError, match="for an OGB node dataset scored on class predictions"):
            check_metric(bad)
