"""Model artefacts: save → load → same predictions; tampered, foreign, newer or misplaced artefacts refused."""
from __future__ import annotations

import json

import pytest
import torch

import gkd
from gkd.nn import GCN, MLP
from gkd.nn.student import Student
from gkd.pipeline import ArtifactError, read_manifest


@pytest.fixture
def student(small_graph):
    torch.manual_seed(0)
    pos = torch.randn(small_graph.num_nodes, 4)
    return Student(MLP(small_graph.num_features + 4, 32, 2, 3), pos).eval()


def test_round_trip_same_predictions(tmp_path, small_graph, student):
    gkd.save(student, tmp_path / "m", data=small_graph, metrics={"test": 0.9}, position={"method": "fastrp"})
    back = gkd.load(tmp_path / "m")
    x, idx = small_graph.x, torch.arange(small_graph.num_nodes)
    assert isinstance(back, Student) and not back.training
    assert torch.equal(back(x, idx), student(x, idx))
    new = torch.full((5,), -1)  # nodes the graph never held: zero positions
    assert torch.equal(back(x[:5], new), student(x[:5]))
    m = read_manifest(tmp_path / "m")
    assert m["input"] == {"num_features": small_graph.num_features,
                          "position": {"dim": 4, "known_nodes": small_graph.num_nodes, "method": "fastrp"}}
    assert m["dataset"]["num_nodes"] == small_graph.num_nodes and len(m["dataset"]["graph_sha256"]) == 64
    assert m["metrics"] == {"test": 0.9} and m["num_classes"] == 3


def test_gnn_round_trip(tmp_path, small_graph):
    model = GCN(small_graph.num_features, 16, 2, 3).eval()
    gkd.save(model, tmp_path / "gcn")
    back = gkd.load(tmp_path / "gcn")
    assert isinstance(back, GCN)
    assert torch.equal(back(small_graph.x, small_graph.edge_index), model(small_graph.x, small_graph.edge_index))


def test_weights_are_not_pickled(tmp_path, student):
    from safetensors.torch import load_file

    gkd.save(student, tmp_path / "m")
    assert set(load_file(str(tmp_path / "m" / "weights.safetensors"))) == set(student.model.state_dict())


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "weights.safetensors").write_bytes((d / "weights.safetensors").read_bytes()[:-1] + b"\0"),
     "fails its sha256 check"),
    (lambda d: (d / "positions.safetensors").unlink(), "is missing"),
    (lambda d: _edit(d, format=99), "reads formats up to"),
    (lambda d: _edit(d, format=True), "expected an integer"),
    (lambda d: _edit(d, kind="gkd-book"), "is not a gkd model artefact"),
    (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
    (lambda d: (d / "manifest.json").write_text("[" * 100000), "is not valid JSON .nested too deeply"),
    (lambda d: _edit(d, model={"class": "os.system", "args": {}}), "does not describe a gkd zoo model"),
    (lambda d: _edit(d, num_classes=5), "disagrees with itself"),
    (lambda d: _edit(d, dataset="Cora"), r"has dataset='Cora'; expected an object \(damaged or edited\)"),
    (lambda d: _edit(d, metrics=[0.9]), "has metrics=.0.9.; expected an object"),
    (lambda d: _edit(d, dataset={"split_sha256": 5}), "dataset.split_sha256=5; expected 64 hex digits"),
    (lambda d: _edit(d, input={"num_features": 8, "position": "fastrp"}), "does not describe a gkd zoo model"),
    (lambda d: _rehashed_nan(d), r"hold NaN or infinite values \(layers.0.weight\)"),
    # 10**7 inputs x 32 would allocate 1.3 GB before the weights could disagree: the shapes are compared first
    (lambda d: _edit(d, model={"class": "MLP", "args": {"in_channels": 10**7, "hidden_channels": 32, "num_layers": 2,
                                                        "out_channels": 3, "dropout": 0.5}},
                     input={"num_features": 10**7 - 4, "position": {"dim": 4}}),
     "do not fit the MLP the manifest describes .tensors layers.0.weight differ"),
])
def test_damaged_artifacts_are_refused(tmp_path, student, damage, message):
    gkd.save(student, tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ArtifactError, match=message):
        gkd.load(tmp_path / "m")


def _rehashed_nan(folder):
    """NaN weights whose manifest digest was updated to match: only the finiteness check can tell."""
    from safetensors.torch import load_file, save_file

    from gkd.io import sha256_file

    state = load_file(str(folder / "weights.safetensors"))
    state["layers.0.weight"][0, 0] = float("nan")
    save_file(state, str(folder / "weights.safetensors"))
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["weights.safetensors"] = {"sha256": sha256_file(folder / "weights.safetensors"),
                                         "size": (folder / "weights.safetensors").stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(m))


def test_a_student_refuses_what_would_give_nan_logits(small_graph, student):
    from gkd.errors import DatasetError
    from gkd.nn.serving import FastMLP

    x = small_graph.x[:3].clone()
    assert torch.isfinite(student(x)).all()
    x[1, 2] = float("nan")
    with pytest.raises(DatasetError, match="logits are NaN or infinite: the feature rows hold NaN"):
        student(x)
    with pytest.raises(DatasetError, match="logits are NaN or infinite"):
        FastMLP(student)(x)
    assert torch.isnan(FastMLP(student, check_finite=False)(x)).any()  # for features validated upstream
    x[1, 2] = float("inf")
    with pytest.raises(DatasetError, match="logits are NaN or infinite"):
        student(x)
    with pytest.raises(DatasetError, match="x is a ndarray; expected a torch.Tensor of feature rows"):
        student(small_graph.x[:3].numpy())
    # the check sums in float32: finite half-precision logits whose fp16 sum would overflow still answer
    half = Student(MLP(small_graph.num_features, 8, 2, 3)).eval()
    torch.nn.init.constant_(half.model.layers[-1].bias, 20.0)
    half = half.half()
    assert torch.isfinite(half(small_graph.x.half().repeat(20, 1))).all()
    # and torch.export traces past it (a data-dependent branch)
    torch.export.export(Student(MLP(small_graph.num_features, 8, 2, 3)).eval(), (small_graph.x[:4],))


def _edit(folder, **changes):
    m = json.loads((folder / "manifest.json").read_text())
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_save_never_replaces_what_gkd_did_not_write(tmp_path, student):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="exists and is not a gkd model artefact"):
        gkd.save(student, mine)
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="exists and is not a gkd model artefact"):
        gkd.save(student, tmp_path / "file")
    gkd.save(student, tmp_path / "m")
    gkd.save(student, tmp_path / "m")  # an artefact may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m", "mine"]  # no temporaries left


def test_only_zoo_models_are_saved(tmp_path):
    with pytest.raises(ArtifactError, match="cannot save a Linear"):
        gkd.save(torch.nn.Linear(3, 2), tmp_path / "m")


def test_exported_student_needs_no_gkd(tmp_path, small_graph, student):
    """torch.export of the served student (a plain Linear/ReLU chain plus the position lookup) gives the module's
    predictions; the .pt2 program loads with torch alone."""
    from gkd.nn.serving import export_student

    path = export_student(student, tmp_path / "student.pt2", num_features=small_graph.num_features)
    program = torch.export.load(str(path)).module()
    x, idx = small_graph.x[:50], torch.cat([torch.arange(40), torch.full((10,), -1)])
    assert torch.allclose(program(x, idx), student(x, idx), atol=1e-5)


def test_a_format_1_artefact_still_loads(tmp_path, student):
    """Format 1 listed each file's sha256 alone ({name: sha256}, no size): what earlier gkd wrote still loads."""
    out = gkd.save(student, tmp_path / "m")
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == 2 and set(m["files"]["weights.safetensors"]) == {"sha256", "size"}
    m = {**m, "format": 1, "files": {k: v["sha256"] for k, v in m["files"].items()}}
    (out / "manifest.json").write_text(json.dumps(m))
    back = gkd.load(out)
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in back.state_dict().items())
    raw = bytearray((out / "weights.safetensors").read_bytes())
    raw[-1] ^= 1
    (out / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="fails its sha256 check"):
        gkd.load(out)
