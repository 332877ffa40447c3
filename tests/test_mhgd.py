"""MHGD: feature taps, SVD compression, the multi-head attention builder, the dataset-level graph, CNN distillation."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.utils import to_networkx

from conftest import assert_one_line_error
from gkd.cli import main
from gkd.config import TrainConfig
from gkd.vision.digits import digits_split
from gkd.vision.pipeline import CNNDistillConfig, cnn_student_run, cnn_teacher_stage
from gkd.vision.mhgd import relation_kl
from gkd.errors import ConfigError, DatasetError
from gkd.vision import (MultiHeadGraphBuilder, compress, compress_student, load_graph, relational_graph, save_graph,
                        with_split)
from gkd.vision.cnn import CNN, FeatureTaps
from gkd.vision.relational import edge_homophily
from gkd.pipeline.train import train_run


def cli_error(capsys, argv: list[str], fragment: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert fragment in err, err


def clustered(n=120, dims=(12, 16), classes=3, seed=0):
    """Taps whose samples cluster by class, so attention has relations to find."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    feats = []
    for d in dims:
        centres = torch.randn(classes, d, generator=g) * 3
        feats.append(F.normalize(centres[y] + torch.randn(n, d, generator=g), dim=-1))
    return feats, y


def test_taps_read_named_layers_and_list_names_on_typos():
    model = CNN(channels=(4, 8))
    with FeatureTaps(model, ["block1", "block2", "embed"]) as taps:
        out, feats = taps(torch.rand(3, 1, 8, 8))
    assert out.shape == (3, 10)
    assert [tuple(f.shape) for f in feats] == [(3, 4, 8, 8), (3, 8, 4, 4), (3, 8)]
    assert not model.block1._forward_hooks  # removed when the block ends
    with pytest.raises(ConfigError, match=r"layer 'block9' does not exist in CNN; available: .*block1"):
        FeatureTaps(model, ["block9"])


def test_compress_is_sign_fixed_svd_and_student_aligns_to_teacher():
    torch.manual_seed(0)
    fmap = torch.randn(5, 6, 4, 4)
    v = compress(fmap)
    rows = fmap.reshape(5, 6, 16).transpose(1, 2)
    top = torch.linalg.svd(rows).Vh[:, 0]
    assert torch.allclose(v.abs(), top.abs(), atol=1e-5)                  # the top right singular vector
    assert ((v * rows.mean(1)).sum(-1) >= 0).all()                        # with the documented sign
    assert torch.allclose(compress(-fmap).abs(), v.abs(), atol=1e-5)
    # student of another width: projected, unit norm, |cos| to the reference maximised and made positive
    proj = torch.nn.Linear(3, 6, bias=False)
    s_map = torch.randn(5, 3, 4, 4, requires_grad=True)
    s = compress_student(s_map, v, k=2, project=proj)
    assert s.shape == (5, 6) and torch.allclose(s.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert ((s * v).sum(-1) >= 0).all()
    s.sum().backward()
    assert torch.isfinite(s_map.grad).all() and s_map.grad.abs().sum() > 0
    assert torch.allclose(compress(torch.tensor([[3.0, 4.0]])), torch.tensor([[0.6, 0.8]]))


def test_builder_learns_relations_and_kl_is_zero_on_identical_relations():
    feats, _ = clustered()
    builder = MultiHeadGraphBuilder([12, 16], heads=4)
    losses = builder.fit(feats, epochs=30, batch_size=40)
    assert losses[-1] < losses[0] - 0.05
    assert not any(p.requires_grad for p in builder.parameters()) and not builder.training
    (s,) = builder(feats)
    assert s.shape == (4, 120, 120)
    assert relation_kl(s, s).abs() < 1e-6 and relation_kl(s, s.flip(1)) > 0


def test_dataset_graph_shapes_symmetry_topk_weights_and_zoo_gcn_trains_on_it():
    feats, y = clustered(n=150)
    builder = MultiHeadGraphBuilder([12, 16], heads=4, value="others")
    builder.fit(feats, epochs=40, batch_size=50)
    directed = relational_graph(builder, feats, k=5, symmetric=False, y=y)
    assert directed.edge_index.shape == (2, 150 * 5)
    assert torch.bincount(directed.edge_index[1], minlength=150).eq(5).all()      # exactly k in-edges each
    assert (directed.edge_index[0] != directed.edge_index[1]).all()               # no self edges
    w = directed.edge_weight
    assert ((w > 0) & (w <= 1)).all()
    assert torch.allclose(torch.zeros(150).index_add_(0, directed.edge_index[1], w), torch.ones(150), atol=1e-5)
    sym = relational_graph(builder, feats, k=5, y=y)
    a = torch.sparse_coo_tensor(sym.edge_index, sym.edge_weight, (150, 150)).to_dense()
    assert torch.equal(a, a.T) and sym.edge_index.size(1) >= directed.edge_index.size(1)
    assert edge_homophily(sym) > 0.6                                             # clusters found (chance: 1/3)
    g = to_networkx(sym, edge_attrs=["edge_weight"], to_undirected=True)
    assert isinstance(g, nx.Graph) and g.number_of_nodes() == 150
    # the zoo and the trainer take it as they take Cora
    idx = torch.randperm(150, generator=torch.Generator().manual_seed(0))
    data = with_split(sym, idx[:60], idx[60:90], idx[90:], 3, "clustered")
    _, fit = train_run(TrainConfig(model="gcn", hidden_channels=16, epochs=60, patience=60), data, seed=0)
    assert fit.test > 0.8


def test_graph_file_round_trip_and_refusals(tmp_path):
    feats, y = clustered(n=60)
    builder = MultiHeadGraphBuilder([12, 16], heads=2)
    builder.fit(feats, epochs=2, batch_size=30)
    data = relational_graph(builder, feats, k=3, y=y)
    save_graph(tmp_path / "g.npz", data, {"k": 3})
    back, manifest = load_graph(tmp_path / "g.npz")
    assert torch.equal(back.edge_index, data.edge_index) and torch.equal(back.y, data.y) and manifest["k"] == 3
    np.savez(tmp_path / "evil.npz", x=np.array([object()], dtype=object))
    with pytest.raises(DatasetError, match="not a readable gkd graph"):
        load_graph(tmp_path / "evil.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "g.npz").read_bytes()[:200])
    with pytest.raises(DatasetError, match="not a readable gkd graph"):
        load_graph(tmp_path / "cut.npz")


def test_builder_bad_inputs():
    feats, _ = clustered(n=20)
    builder = MultiHeadGraphBuilder([12, 16], heads=2)
    with pytest.raises(ConfigError, match=r"attention heads=0; expected an integer >= 1"):
        MultiHeadGraphBuilder([12, 16], heads=0)
    with pytest.raises(DatasetError, match=r"taps have different sample counts \[19, 20\]"):
        builder([feats[0][:19], feats[1]])
    with pytest.raises(DatasetError, match="a batch of 1 sample; relations need at least 2 samples"):
        builder([feats[0][:1], feats[1][:1]])
    bad = feats[0].clone()
    bad[3, 2] = float("nan")
    with pytest.raises(DatasetError, match="tap 0 contains NaN or inf"):
        builder([bad, feats[1]])
    with pytest.raises(ConfigError, match=r"k=20; expected an integer in \[1, 19\] for 20 samples"):
        relational_graph(builder.freeze(), feats, k=20)


def test_mhgd_student_trains_and_cli_bad_inputs(tmp_path, capsys):
    cfg = CNNDistillConfig(method="mhgd+kd", epochs=3, patience=3, builder_epochs=2, runs=1, heads=2)
    split = digits_split(0, 0.2)
    assert abs(int(split.labelled.sum()) - 0.2 * split.train.numel()) <= 10  # stratified: rounding per class
    assert digits_split(0).train.tolist() == split.train.tolist() != digits_split(1).train.tolist()
    teacher = cnn_teacher_stage(split, cfg, 0)
    rec = cnn_student_run(split, teacher, cfg, "mhgd+kd", 0)
    assert 0 <= rec["test"] <= 1 and rec["epochs_run"] == 3
    # the CLI: --method, unknown layer-free bad inputs, exit code 2 and one line
    assert main(["cnn", "--method", "mhgd", "--epochs", "2", "--builder-epochs", "1", "--runs", "1", "--heads", "2",
                 "--quiet", "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["method"] == "mhgd" and len(r["runs"]) == 1 and "teacher_test_mean" in r
    cli_error(capsys, (["cnn", "--method", "fitnet", "--quiet"]), "method='fitnet'; expected one of")
    cli_error(capsys, (["cnn", "--student-channels", "4,8", "--quiet"]),
                          "teacher has 3 blocks, student 2; MHGD taps block by block")
    cli_error(capsys, (["graph", "--heads", "0", "--out", str(tmp_path / "g.npz"), "--quiet"]),
                          "attention heads=0; expected an integer >= 1")


def test_gkd_graph_cli_builds_from_embeddings(tmp_path, capsys):
    feats, y = clustered(n=80)
    np.savez(tmp_path / "taps.npz", tap0=feats[0].numpy(), tap1=feats[1].numpy(), y=y.numpy())
    assert main(["graph", "--embeddings", str(tmp_path / "taps.npz"), "--k", "4", "--heads", "2",
                 "--builder-epochs", "5", "--out", str(tmp_path / "g.npz"), "--quiet"]) == 0
    assert "80 nodes" in capsys.readouterr().out
    data, manifest = load_graph(tmp_path / "g.npz")
    assert data.num_nodes == 80 and manifest["k"] == 4 and manifest["symmetric"] is True
    np.savez(tmp_path / "one.npz", tap0=feats[0].numpy())
    cli_error(capsys, (["graph", "--embeddings", str(tmp_path / "one.npz"), "--out",
                                        str(tmp_path / "h.npz"), "--quiet"]), "expected tap0, tap1")
    cli_error(capsys, (["graph", "--embeddings", str(tmp_path / "taps.npz"), "--k", "80", "--out",
                                        str(tmp_path / "h.npz"), "--quiet"]), "k=80; expected an integer in [1, 79]")


def test_cnn_and_graph_commands_are_deterministic(tmp_path):
    """Same command, same seed: identical accuracies (mhgd+kd: SVD, builder, gradient cap) and an identical graph.
    (`gkd cnn --method amkd` twice: tests/test_amkd.py.)"""
    for method in ("mhgd+kd",):
        runs = []
        for i in range(2):
            out = tmp_path / f"{method}-{i}.json"
            assert main(["cnn", "--method", method, "--epochs", "2", "--builder-epochs", "2", "--heads", "2",
                         "--runs", "1", "--quiet", "--json", str(out)]) == 0
            runs.append({k: v for k, v in json.loads(out.read_text())["runs"][0].items() if "seconds" not in k})
        assert runs[0] == runs[1]
    graphs = []
    for i in range(2):
        assert main(["graph", "--epochs", "2", "--builder-epochs", "2", "--heads", "2", "--k", "5", "--out",
                     str(tmp_path / f"g{i}.npz"), "--quiet"]) == 0
        graphs.append(load_graph(tmp_path / f"g{i}.npz")[0])
    assert torch.equal(graphs[0].edge_index, graphs[1].edge_index)
    assert torch.equal(graphs[0].edge_weight, graphs[1].edge_weight) and torch.equal(graphs[0].x, graphs[1].x)
