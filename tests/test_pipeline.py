"""The library face: GNNToMLP is `gkd distill`, any PyG teacher or student plugs in, students are saved, loaded,
exported and answer nodes (`gkd predict`); your own graph goes in as a file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gkd
from gkd.cli import main
from gkd.datasets import load, save_graph_file
from gkd.errors import ConfigError, GKDError
from gkd.nn import MLP
from gkd.nn.student import Student

from conftest import assert_one_line_error, needs_cora

CSBM = ["--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=400", "--dataset-arg", "num_classes=3",
        "--dataset-arg", "num_features=16", "--dataset-arg", "num_val=60", "--dataset-arg", "num_test=120"]
CSBM_ARGS = dict(num_nodes=400, num_classes=3, num_features=16, num_val=60, num_test=120)
FAST = ["--teachers", "1", "--teacher-generations", "1", "--epochs", "40", "--patience", "40", "--quiet"]


@needs_cora
def test_api_and_cli_give_bit_identical_students(tmp_path):
    """`gkd distill` runs GNNToMLP.fit: same seed and config, the same test accuracy to the last bit."""
    out = tmp_path / "r.json"
    assert main(["distill", "--dataset", "Cora", "--runs", "1", "--teachers", "1", "--teacher-generations", "1",
                 "--epochs", "100", "--patience", "100", "--teacher-arg", "epochs=150", "--json", str(out),
                 "--quiet"]) == 0
    cli = json.loads(out.read_text())["runs"][0]
    est = gkd.GNNToMLP(method="gkd", teachers=1, teacher_generations=1, epochs=100, patience=100,
                       teacher_args={"epochs": 150}).fit(load("Cora"))
    assert est.result_["test"] == cli["test"] and est.result_["val"] == cli["val"]
    assert est.result_["teacher_test"] == cli["teacher_test"]
    # the position term is built inside: the student reads features + 64 position columns
    assert isinstance(est.student_, Student) and est.student_.positions.shape == (2708 + 1, 64)
    assert est.student_.model.in_channels == 1433 + 64


def test_pyg_student_and_hidden_capture(small_graph):
    from torch_geometric.nn import GCN, MLP

    from gkd.pipeline.student import distill_mlp
    from gkd.distill.knowledge import teacher_knowledge
    from gkd.nn.hidden import forward

    teacher = GCN(16, 32, 2, 3).eval()
    know = teacher_knowledge(teacher, small_graph.x, small_graph.edge_index, noise=0.0)
    assert know.hidden.shape == (300, 32)  # captured by a hook on the activation, model unchanged
    student = MLP([16, 32, 3])
    model, fit = distill_mlp(small_graph, know, method="glnn+rsd", student=student, epochs=10, patience=10)
    assert isinstance(model, Student) and model.model is student and np.isfinite(fit.val)
    logits, hidden = forward(student.eval(), small_graph.x, small_graph.edge_index)
    assert logits.shape == (300, 3) and len(hidden) == 1


def test_custom_message_passing_teacher_and_its_errors(small_graph):
    from torch_geometric.nn import GCNConv

    class Net(torch.nn.Module):
        def __init__(self, out: int = 3) -> None:
            super().__init__()
            self.conv1, self.conv2 = GCNConv(16, 32), GCNConv(32, out)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    est = gkd.GNNToMLP(method="glnn", epochs=20, patience=20)
    est.fit(small_graph, teacher=Net())  # no hidden layers exposed: fine for glnn
    with pytest.raises(ConfigError, match="needs the teacher's hidden layer"):
        gkd.GNNToMLP(method="glnn", terms="rsd", epochs=5).fit(small_graph, teacher=Net())
    gkd.GNNToMLP(method="glnn", terms="rsd", epochs=5, patience=5).fit(small_graph, teacher=Net(), hidden=["conv1"])
    with pytest.raises(ConfigError, match=r"answered with logits of shape \(300, 5\); the graph needs \(300, 3\)"):
        est.fit(small_graph, teacher=Net(out=5))
    with pytest.raises(ConfigError, match="has no module"):
        est.fit(small_graph, teacher=Net(), hidden=["conv9"])
    with pytest.raises(ConfigError, match="GNNToMLP got unknown option"):
        gkd.GNNToMLP(teacherz=2)


def test_save_load_predict_end_to_end(tmp_path, capsys):
    model_dir, preds, out = tmp_path / "student", tmp_path / "p.npy", tmp_path / "r.json"
    assert main(["distill", *CSBM, *FAST, "--runs", "2", "--save", str(model_dir), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    best = max(result["runs"], key=lambda r: r["val"])
    assert result["saved"]["run"] == best["run"]
    assert main(["predict", "--model", str(model_dir), *CSBM, "--out", str(preds)]) == 0
    data = load("synthetic-csbm", **CSBM_ARGS)
    test = data.test_mask.nonzero().view(-1)
    got = np.load(preds, allow_pickle=False)
    student = gkd.load(model_dir)
    assert np.array_equal(got, student(data.x[test], test).argmax(-1).numpy())
    # the saved student is the best-validation seed's: its test accuracy is that seed's record
    assert float((torch.from_numpy(got) == data.y[test]).float().mean()) == pytest.approx(best["test"], abs=1e-6)
    assert student.manifest["metrics"]["test"] == best["test"]
    csv = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model_dir), *CSBM, "--nodes", str(_ids(tmp_path, [0, 5, 7])),
                 "--out", str(csv)]) == 0
    assert csv.read_text().splitlines()[0] == "node,prediction,confidence" and len(csv.read_text().splitlines()) == 4


def _ids(tmp_path, ids, name="ids.txt"):
    path = tmp_path / name
    path.write_text("\n".join(map(str, ids)))
    return path


def test_train_save_then_predict_with_a_gnn(tmp_path):
    model_dir = tmp_path / "gcn"
    assert main(["train", *CSBM, "--runs", "1", "--epochs", "20", "--save", str(model_dir), "--quiet"]) == 0
    assert main(["predict", "--model", str(model_dir), *CSBM, "--mask", "all", "--out", str(tmp_path / "a.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape == (400,)
    # without --dataset: the graph the model was trained on, read from its manifest (loader arguments included)
    assert main(["predict", "--model", str(model_dir), "--mask", "all", "--out", str(tmp_path / "b.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


@pytest.mark.parametrize("extra, message", [
    (["--dataset-arg", "num_features=8"], "the model reads 16 features per node; the data has 8"),
    (["--nodes", "IDS"], r"node ids lie in [0, 400]; the graph has nodes 0 .. 399"),
    (["--out", "bad.txt"], "expected a .npy or .csv file name"),
    (["--nodes", "HUGE"], "is not a list of integer node ids (OverflowError)"),
    (["--nodes", "EMPTY"], "holds no node ids; expected at least one"),
    (["--nodes", "ZERO_BYTES"], "is not a list of integer node ids (EOFError)"),
    (["--nodes", "NPZ"], "is an .npz archive; expected one .npy array of node ids"),
    (["--nodes", "UINT64"], "holds node id 18446744073709551615; expected ids of the graph's nodes"),
    (["--dataset-arg", "root=/etc"], "dataset_args may not set ['root']"),
])
def test_predict_bad_inputs(tmp_path, capsys, extra, message):
    model_dir = tmp_path / "m"
    gkd.save(Student(MLP(16, 8, 2, 3)), model_dir)
    np.savez(tmp_path / "ids.npz", ids=np.arange(3))
    (tmp_path / "ids.npz").rename(tmp_path / "npz.npy")
    np.save(tmp_path / "uint64.npy", np.array([1, 2**64 - 1], dtype=np.uint64))  # would wrap to -1 as int64
    files = {"IDS": _ids(tmp_path, [0, 400]), "HUGE": _ids(tmp_path, [1, 10**20], "huge.txt"),
             "EMPTY": _ids(tmp_path, [], "empty.txt"),
             "NPZ": tmp_path / "npz.npy", "UINT64": tmp_path / "uint64.npy", "ZERO_BYTES": tmp_path / "zero.npy"}
    (tmp_path / "zero.npy").write_bytes(b"")
    extra = [str(files[e]) if e in files else str(tmp_path / e) if e.startswith("bad") else e for e in extra]
    out = [] if "--out" in extra else ["--out", str(tmp_path / "p.npy")]
    assert main(["predict", "--model", str(model_dir), *CSBM, *extra, *out]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err.replace("\\", "")


def test_save_onto_a_user_directory_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import gkd.pipeline.gnn2mlp as pipeline

    monkeypatch.setattr(pipeline, "teacher_stage", lambda *a, **k: pytest.fail("a teacher trained"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    assert main(["distill", *CSBM, *FAST, "--save", str(mine)]) == 2
    assert "exists and is not a gkd model artefact" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "keep"


def test_graph_file_as_dataset_end_to_end(tmp_path, small_graph):
    path = save_graph_file(small_graph, tmp_path / "mine.npz")
    out = tmp_path / "r.json"
    assert main(["train", "--dataset", str(path), "--runs", "2", "--epochs", "20", "--json", str(out),
                 "--quiet"]) == 0
    r = json.loads(out.read_text())
    assert r["dataset"] == "mine" and r["test_mean"] > 0.5
    assert main(["train", "--dataset", str(path), "--split", "random:0.5/0.25/0.25", "--runs", "2", "--epochs", "5",
                 "--quiet"]) == 0


def test_device_errors_and_cpu_default():
    from gkd.nn.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_distillation_matches_cpu_within_noise(small_graph):
    cpu = gkd.GNNToMLP(teachers=1, teacher_generations=1, epochs=60, patience=60, device="cpu").fit(small_graph)
    gpu = gkd.GNNToMLP(teachers=1, teacher_generations=1, epochs=60, patience=60, device="cuda").fit(small_graph)
    assert abs(cpu.result_["test"] - gpu.result_["test"]) < 0.1
    assert next(gpu.student_.parameters()).is_cuda


def test_fitted_estimator_predicts_and_refuses_before_fit(small_graph):
    est = gkd.GNNToMLP(teachers=1, teacher_generations=1, epochs=20, patience=20)
    with pytest.raises(GKDError, match="not fitted yet"):
        est.predict(small_graph.x)
    est.fit(small_graph)
    pred = est.predict(small_graph.x[:5], torch.arange(5))
    assert pred.shape == (5,) and pred.dtype == torch.long


@pytest.mark.parametrize("command", ["train", "distill"])
def test_save_with_checkpoints_is_refused_before_training(tmp_path, capsys, command):
    args = [command, *CSBM, "--save", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "ck"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "save= with checkpoint_dir= is not supported" in err and not (tmp_path / "ck").exists()


def test_predict_on_another_graph_or_split(tmp_path, capsys):
    """Positions belong to the training graph and masks to the training split: elsewhere one clear error, unless
    the nodes are declared new (zero positions, as unseen nodes had in training)."""
    model_dir = tmp_path / "m"
    data = load("synthetic-csbm", **CSBM_ARGS)
    gkd.save(Student(MLP(16 + 4, 8, 2, 3), torch.randn(400, 4)), model_dir, data=data)
    other = [*CSBM, "--dataset-arg", "seed=7"]  # same sizes, another graph and split
    out = ["--out", str(tmp_path / "p.npy")]
    assert main(["predict", "--model", str(model_dir), *other, *out]) == 2
    assert "trained with another split" in capsys.readouterr().err
    ids = ["--nodes", str(_ids(tmp_path, [1, 2]))]
    assert main(["predict", "--model", str(model_dir), *other, *ids, *out]) == 2
    assert "pass new_nodes=True (--new-nodes)" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_dir), *other, *ids, "--new-nodes", *out]) == 0
    assert main(["predict", "--model", str(model_dir), *CSBM, *out]) == 0  # its own graph and split


def test_review_findings_are_one_clear_error(tmp_path, small_graph, capsys):
    """Found by a hostile review: each was a traceback, a silent wrong answer or an overwritten user file."""
    from gkd.nn.serving import export_student

    torch.manual_seed(0)
    student = Student(MLP(16 + 4, 8, 2, 3), torch.randn(300, 4)).eval()
    x = small_graph.x
    with pytest.raises(GKDError, match=r"this student reads \[batch, 16\] features"):
        student(x[:, :15])
    for bad in (torch.tensor([-2]), torch.tensor([300]), torch.tensor([1.5])):
        with pytest.raises(GKDError, match="-1 \\(a new node\\) or a known node id in \\[0, 299\\]"):
            student(x[:1], bad)
    mine = tmp_path / "mine.pt2"
    mine.write_text("precious")
    with pytest.raises(GKDError, match="already exists; pass overwrite=True"):
        export_student(student, mine, 16)
    assert mine.read_text() == "precious"
    with pytest.raises(GKDError, match="this student reads 16 features"):
        export_student(student, tmp_path / "s.pt2", 15)
    with pytest.raises(GKDError, match="sees no CUDA GPU|expected auto, cpu"):
        gkd.load(tmp_path / "absent", device="cuda" if not torch.cuda.is_available() else "tpu")
    # a tampered manifest asking for a huge model is refused before anything is allocated
    gkd.save(student, tmp_path / "m", data=small_graph)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["model"]["args"]["hidden_channels"] = 10 ** 12
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GKDError, match="hidden_channels=1000000000000, which builds no sane MLP"):
        gkd.load(tmp_path / "m")
    # --out replaces only an earlier predictions file
    model_dir = tmp_path / "m2"
    gkd.save(Student(MLP(16, 8, 2, 3)), model_dir)
    user = tmp_path / "notes.csv"
    user.write_text("user data\n")
    args = ["predict", "--model", str(model_dir), *CSBM]
    assert main(args + ["--out", str(user)]) == 2
    assert "exists and is not a gkd predictions file" in capsys.readouterr().err and user.read_text() == "user data\n"
    assert main(args + ["--out", str(tmp_path / "p.csv")]) == 0
    assert main(args + ["--out", str(tmp_path / "p.csv")]) == 0  # its own earlier output may be replaced
    ids = tmp_path / "ids.npy"  # a 1-D int64 .npy looks like gkd's predictions: the input list is never the output
    np.save(ids, np.arange(5, dtype=np.int64))
    assert main(args + ["--nodes", str(ids), "--out", str(ids)]) == 2
    assert "is the --nodes file" in capsys.readouterr().err and np.load(ids).tolist() == [0, 1, 2, 3, 4]
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert main(args + ["--out", str(empty)]) == 2 and empty.read_bytes() == b""
    assert "exists and is not a gkd predictions file" in capsys.readouterr().err
    with pytest.raises(GKDError, match="nodes must be a 1-D integer tensor"):
        gkd.predict(gkd.load(model_dir), load("synthetic-csbm", **CSBM_ARGS), torch.tensor([1.9]))


def test_fit_takes_plain_data_and_records_the_given_teacher(tmp_path, small_graph):
    from torch_geometric.nn import GCN

    plain = small_graph.clone()
    del plain.meta
    teacher = GCN(16, 16, 2, 3).eval()
    est = gkd.GNNToMLP(method="glnn", epochs=10, patience=10).fit(plain, teacher=teacher)
    est.save(tmp_path / "s")
    config = gkd.load(tmp_path / "s").manifest["config"]
    assert (config["teacher"], config["teacher_method"], config["teachers"], config["dataset"]) == \
        ("GCN", "given", 1, "custom")
    assert next(est.student_.parameters()).device.type == "cpu"
    with pytest.raises(ConfigError, match="reads in_channels=15 features; the graph has 16"):
        est.fit(small_graph, teacher=GCN(15, 16, 2, 3))


def test_given_teacher_is_left_as_it_was_and_sets_the_device(small_graph):
    """fit(teacher=module) neither freezes the user's teacher nor changes its mode (amkd attacks through it on
    detached parameters), and distils where the teacher is: device='auto' follows it, another device is refused
    before any training with a message naming both."""
    from torch_geometric.nn import GCN

    from gkd.pipeline.teachers import teachers_device

    teacher = GCN(16, 16, 2, 3).train()
    est = gkd.GNNToMLP(method="glnn+amkd", epochs=6, patience=6, student_guard=False,
                       term_args={"amkd": {"refresh": 2}})
    est.fit(small_graph, teacher=teacher)
    assert teacher.training and all(p.requires_grad and p.grad is None for p in teacher.parameters())
    assert "amkd" in est.result_["stats"]  # the attack did run through the teacher
    cpu = torch.device("cpu")
    assert teachers_device([teacher], cpu, "auto") == cpu
    elsewhere = GCN(16, 16, 2, 3).to("meta")  # a device other than the CPU without needing a GPU
    assert teachers_device([elsewhere], cpu, "auto").type == "meta"
    with pytest.raises(ConfigError, match=r"device='cpu' but the teacher's parameters are on meta; move it"):
        gkd.GNNToMLP(device="cpu").fit(small_graph, teacher=elsewhere)
    with pytest.raises(ConfigError, match="expected one device"):
        teachers_device([teacher, elsewhere], cpu, "auto")


def test_api_book_option_is_read_as_the_cli_reads_it(tmp_path, small_graph, monkeypatch):
    """GNNToMLP(book=...).fit(data) learns from the book, as gkd distill --book does (it used to train teachers)."""
    def refuse(*args, **kwargs):
        raise AssertionError("trained teachers although a book was given")

    monkeypatch.setattr("gkd.pipeline.gnn2mlp.teacher_stage", refuse)
    with pytest.raises(GKDError, match="absent"):
        gkd.GNNToMLP(book=str(tmp_path / "absent")).fit(small_graph)


def test_saved_files_follow_the_umask_and_export_leaves_no_temporary(tmp_path, small_graph, recwarn):
    """safetensors' own writer makes 0600 files; an artefact's files get the umask's mode like every gkd file, so a
    server running as another user can read them. export_student writes through a .pt2-named temporary (torch warns
    on other names) and leaves nothing else behind."""
    import os

    from gkd.nn.serving import export_student

    est = gkd.GNNToMLP(teachers=1, teacher_generations=1, epochs=10, patience=10).fit(small_graph)
    umask = os.umask(0o022)
    try:
        est.save(tmp_path / "s")
        (tmp_path / "e").mkdir()
        export_student(gkd.load(tmp_path / "s"), tmp_path / "e" / "s.pt2", small_graph.num_features)
    finally:
        os.umask(umask)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "s").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
    assert [f.name for f in (tmp_path / "e").iterdir()] == ["s.pt2"]
    assert not [w for w in recwarn if "archive file" in str(w.message)]


def test_bad_graph_file_is_one_line_without_a_progress_bar(tmp_path, capsys):
    bad = tmp_path / "junk.npz"
    bad.write_text("not a zip")
    assert main(["train", "--dataset", str(bad), "--runs", "2"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "not a zip archive" in err


def test_your_own_graph_is_checked_by_both_pipelines(small_graph):
    """run_training and GNNToMLP.fit take a user's Data through one check (seeds.given_data): no NaN test score, no
    traceback from a sparse adjacency or a foreign ``meta``."""
    from torch_geometric.utils import to_torch_coo_tensor

    from gkd.config import TrainConfig
    from gkd.errors import DatasetError
    from gkd.pipeline import run_training

    def both(data, message):
        with pytest.raises(DatasetError, match=message):
            run_training(TrainConfig(dataset="custom", epochs=2, runs=1), data=data, progress=False)
        with pytest.raises(DatasetError, match=message):
            gkd.GNNToMLP(method="glnn", teachers=1, teacher_generations=1, epochs=2).fit(data)

    no_test = small_graph.clone()
    no_test.test_mask[:] = False
    both(no_test, "test_mask selects no node")  # run_training reported test nan before
    sparse = small_graph.clone()
    sparse.edge_index = to_torch_coo_tensor(sparse.edge_index, size=sparse.num_nodes)
    both(sparse, "data.edge_index is a sparse adjacency")
    meta = small_graph.clone()
    meta.x = meta.x.to("meta")
    both(meta, "is on the meta device")
    foreign = small_graph.clone()
    foreign.meta = "mine"  # not gkd's DatasetMeta: replaced in the copy, the user's left as it was
    assert run_training(TrainConfig(dataset="custom", epochs=2, runs=1), data=foreign, progress=False)["runs"]
    assert foreign.meta == "mine"
