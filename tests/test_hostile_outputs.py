"""Hostile input, round three (#38): what gkd writes. A file gkd cannot prove it wrote is never replaced; outputs that
collide are refused before training; a full disk is one line saying what was kept; a closed stdout is quiet; NaN from
the first forward pass is an error, not a result. Also `gkd predict --features` (#39): serving without a graph."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gkd
from gkd.cli import main
from gkd.datasets import load
from gkd.nn import MLP, build_model
from gkd.nn.student import Student

from conftest import assert_one_line_error

CSBM_ARGS = dict(num_nodes=400, num_classes=3, num_features=16, num_val=60, num_test=120)
CSBM = [a for k, v in CSBM_ARGS.items() for a in ("--dataset-arg", f"{k}={v}")]
CSBM = ["--dataset", "synthetic-csbm", *CSBM]
TINY = ["--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=200", "--dataset-arg", "num_classes=2",
        "--dataset-arg", "num_features=8", "--dataset-arg", "num_val=20", "--dataset-arg", "num_test=20",
        "--runs", "1", "--epochs", "3", "--model", "mlp", "--quiet"]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def error_of(capsys, *argv, code: int = 2) -> str:
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert_one_line_error(err)
    return err


@pytest.fixture
def student_dir(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "student"
    gkd.save(Student(MLP(16, 8, 2, 3)), path, data=load("synthetic-csbm", **CSBM_ARGS))
    return path


@pytest.fixture
def gnn_dir(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "gcn"
    gkd.save(build_model("gcn", 16, 3, hidden_channels=8), path, data=load("synthetic-csbm", **CSBM_ARGS))
    return path


class Trained(Exception):
    """Raised where training would start."""


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise Trained

    for target in ("gkd.pipeline.train.run_training", "gkd.pipeline.gnn2mlp.run_distillation", "gkd.datasets.load"):
        monkeypatch.setattr(target, refuse)


# --- 2. predict --out replaces only what gkd can prove it wrote ---

def test_predict_out_refuses_a_users_int64_npy_and_replaces_its_own(tmp_path, student_dir, capsys):
    ids = tmp_path / "ids.npy"
    np.save(ids, np.arange(5, dtype=np.int64))  # a node-id list: the very content gkd's .npy output has
    before = ids.read_bytes()
    args = ["predict", "--model", student_dir, *CSBM]
    assert "exists and is not a gkd predictions file" in error_of(capsys, *args, "--out", ids)
    assert ids.read_bytes() == before and not (tmp_path / "ids.npy.gkd.json").exists()

    out = tmp_path / "p.npy"
    assert main([str(a) for a in args + ["--out", out]]) == 0
    record = json.loads((tmp_path / "p.npy.gkd.json").read_text())
    assert record["kind"] == "gkd-predictions" and record["file"] == "p.npy" and record["rows"] == 120
    assert main([str(a) for a in args + ["--mask", "all", "--out", out]]) == 0  # its own output, proven
    assert np.load(out).shape == (400,) and json.loads((tmp_path / "p.npy.gkd.json").read_text())["rows"] == 400

    np.save(out, np.arange(400, dtype=np.int64))  # the user replaced it: the record no longer matches
    mine = out.read_bytes()
    assert "exists and is not a gkd predictions file" in error_of(capsys, *args, "--out", out)
    assert out.read_bytes() == mine


def test_predict_out_leaves_a_foreign_record_file_alone(tmp_path, student_dir, capsys):
    record = tmp_path / "p.npy.gkd.json"
    record.write_text('{"mine": true}\n')
    err = error_of(capsys, "predict", "--model", student_dir, *CSBM, "--out", tmp_path / "p.npy")
    assert "exists and is not a record of gkd predictions" in err
    assert record.read_text() == '{"mine": true}\n' and not (tmp_path / "p.npy").exists()


# --- 5. NaN from the first forward pass ---

def _huge_graph(small_graph):
    data = small_graph.clone()
    data.x = torch.where(data.x >= 0, 3e38, -3e38)  # finite, but the first layer's sums overflow
    return data


@pytest.mark.parametrize("model", ["gcn", "mlp"])
def test_huge_finite_features_are_refused_at_the_first_step(small_graph, model):
    from gkd.errors import DatasetError
    from gkd.train import Trainer

    torch.manual_seed(0)
    trainer = Trainer(build_model(model, 16, 3, hidden_channels=8), _huge_graph(small_graph), epochs=5)
    with pytest.raises(DatasetError, match=r"first forward pass gave NaN or infinite logits.*features are too "
                                           r"large \(max \|x\| = 3e\+38"):
        trainer.fit()


def test_huge_features_exit_2_before_anything_is_written(tmp_path, small_graph, capsys):
    from gkd.datasets import save_graph_file

    path = save_graph_file(_huge_graph(small_graph), tmp_path / "huge.npz")
    err = error_of(capsys, "train", "--dataset", path, "--runs", "1", "--epochs", "3", "--quiet",
                   "--save", tmp_path / "m", "--json", tmp_path / "r.json")
    assert "features are too large (max |x| = 3e+38" in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("minibatch", [False, True])
def test_first_step_check_leaves_runs_bit_identical(small_graph, monkeypatch, minibatch):
    """The check reads the logits and loss only: the same seed gives the same run with it and without it."""
    import gkd.train.trainer as trainer_mod
    from gkd.scale import neighbor_loader

    def fit():
        torch.manual_seed(3)
        data = small_graph.clone()
        model = build_model("sage", 16, 3, hidden_channels=8)
        extra = {"loader": neighbor_loader(data, [5, 5], 32, input_nodes=data.train_mask, seed=3)} if minibatch \
            else {}
        res = trainer_mod.Trainer(model, data, epochs=8, patience=8, **extra).fit()
        return res.history, {k: v.clone() for k, v in res.state_dict.items()}, torch.rand(3)

    calls = []
    real = trainer_mod.check_first_forward
    monkeypatch.setattr(trainer_mod, "check_first_forward", lambda *a: calls.append(1) or real(*a))
    checked = fit()
    assert calls == [1, 1]  # logits before the loss, then the loss; never again
    monkeypatch.setattr(trainer_mod, "check_first_forward", lambda *a: None)
    plain = fit()
    assert checked[0] == plain[0] and torch.equal(checked[2], plain[2])  # the RNG stream is where it was
    assert all(torch.equal(checked[1][k], plain[1][k]) for k in plain[1])


# --- 7. a full disk ---

def test_full_disk_for_the_model_is_one_line(tmp_path, monkeypatch, capsys):
    import gkd.io.store as store

    def full(*args, **kwargs):
        raise ENOSPC

    monkeypatch.setattr(store, "write_new_file", full)
    err = error_of(capsys, "train", *TINY, "--save", tmp_path / "m", code=1)
    assert f"the model could not be saved to {str(tmp_path / 'm')!r}: No space left on device" in err
    assert not (tmp_path / "m").exists() and os.listdir(tmp_path) == []  # nor a temporary folder left behind


def test_full_disk_for_the_model_keeps_the_results_json(tmp_path, monkeypatch, capsys):
    import gkd.io.store as store

    monkeypatch.setattr(store, "write_new_file", lambda *a, **k: (_ for _ in ()).throw(ENOSPC))
    err = error_of(capsys, "train", *TINY, "--save", tmp_path / "m", "--json", tmp_path / "r.json", code=1)
    assert "results JSON written to" in err and json.loads((tmp_path / "r.json").read_text())["runs"]


def test_full_disk_for_the_json_says_the_model_was_kept(tmp_path, monkeypatch, capsys):
    import gkd.io

    real = gkd.io.atomic_write_bytes

    def full_for_json(path, data):
        if str(path).endswith(".json") and os.path.basename(path) != "manifest.json":
            raise ENOSPC
        return real(path, data)

    monkeypatch.setattr(gkd.io, "atomic_write_bytes", full_for_json)
    assert main([str(a) for a in ["train", *TINY, "--save", tmp_path / "m", "--json", tmp_path / "r.json"]]) == 1
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert f"the model was saved to {str(tmp_path / 'm')!r}; the results JSON could not be written to " \
           f"{str(tmp_path / 'r.json')!r}: No space left on device" in captured.err
    assert "synthetic-csbm  mlp  plain  runs=1  test" in captured.out  # the summary line was printed first
    assert gkd.load(tmp_path / "m") is not None and not (tmp_path / "r.json").exists()


def test_full_disk_for_predictions_leaves_the_old_file(tmp_path, student_dir, monkeypatch, capsys):
    import gkd.pipeline.serve as serve

    out = tmp_path / "p.npy"
    args = ["predict", "--model", student_dir, *CSBM, "--out", out]
    assert main([str(a) for a in args]) == 0
    before = out.read_bytes()
    monkeypatch.setattr(serve, "atomic_write_bytes", lambda *a, **k: (_ for _ in ()).throw(ENOSPC))
    err = error_of(capsys, *args, "--mask", "all", code=1)
    assert f"the predictions could not be written to {str(out)!r}: No space left on device" in err
    assert out.read_bytes() == before


# --- 8. outputs that collide ---

def test_colliding_outputs_are_refused_before_training(tmp_path, no_training, capsys):
    same = tmp_path / "x"
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cases = [
        ("train", ["--save", same, "--json", same]),
        ("train", ["--save", tmp_path / "m", "--json", tmp_path / "m" / "r.json"]),  # inside the artefact
        ("train", ["--save", tmp_path / "a" / ".." / "m", "--json", tmp_path / "m"]),
        ("train", ["--save", tmp_path / "link", "--json", tmp_path / "real"]),  # a link to the same place
        ("distill", ["--save", same, "--json", same]),
    ]
    for command, args in cases:
        err = error_of(capsys, command, *args, "--quiet")
        assert f"--save {str(args[1])!r} and --json {str(args[3])!r} are the same path, or one lies inside the " \
               "other" in err
    err = error_of(capsys, "train", "--checkpoint-dir", tmp_path / "ck", "--json", tmp_path / "ck" / "run-0.json")
    assert "is a file --checkpoint-dir" in err and "keeps its runs in; expected another name" in err
    assert sorted(os.listdir(tmp_path)) == ["link"]
    with pytest.raises(Trained):  # apart: fine
        main(["train", "--save", str(tmp_path / "m"), "--json", str(tmp_path / "m.json"), "--quiet"])


def test_predict_out_inside_the_model_is_refused(tmp_path, student_dir, capsys):
    err = error_of(capsys, "predict", "--model", student_dir, *CSBM, "--out", student_dir / "p.csv")
    assert "lies inside the --model artefact" in err and not (student_dir / "p.csv").exists()


# --- 9. a closed stdout ---

def test_closed_stdout_exits_141_without_a_traceback():
    read, write = os.pipe()
    os.close(read)  # the reader left before the first line: every write is EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "gkd.cli", "terms"], stdout=write, stderr=subprocess.PIPE,
                           timeout=300)
    finally:
        os.close(write)
    assert p.returncode == 141 and p.stderr == b""


# --- 10. messages that mislead ---

def test_new_nodes_answers_every_node_of_another_graph(tmp_path, capsys):
    """The documented `gkd predict --dataset other --new-nodes`: the split check is for known nodes only."""
    data = load("synthetic-csbm", **CSBM_ARGS)
    torch.manual_seed(0)
    student = Student(MLP(16 + 4, 8, 2, 3), torch.randn(400, 4))
    gkd.save(student, tmp_path / "m", data=data)
    other = [*CSBM, "--dataset-arg", "seed=7"]  # another graph and split of the same sizes
    out = tmp_path / "p.csv"
    assert main([str(a) for a in ["predict", "--model", tmp_path / "m", *other, "--new-nodes", "--out", out]]) == 0
    rows = out.read_text().splitlines()
    assert len(rows) == 401 and rows[1].startswith("0,")
    x = load("synthetic-csbm", **CSBM_ARGS, seed=7).x
    want = gkd.load(tmp_path / "m")(x).argmax(-1).tolist()  # every row as a new node
    assert [int(r.split(",")[1]) for r in rows[1:]] == want
    assert main([str(a) for a in ["predict", "--model", tmp_path / "m", *other, "--out", out]]) == 2
    assert "trained with another split" in capsys.readouterr().err  # without --new-nodes: still refused


def test_new_nodes_with_a_gnn_is_refused(tmp_path, gnn_dir, capsys):
    err = error_of(capsys, "predict", "--model", gnn_dir, *CSBM, "--new-nodes", "--out", tmp_path / "p.csv")
    assert "is a GCN, which reads the graph: drop --new-nodes" in err


@pytest.mark.parametrize("args, message", [
    (["--sd-weight", "time=nan"], "term_args time: weight='nan' is not finite; expected a finite number >= 0"),
    (["--sd-weight", "time=inf"], "term_args time: weight='inf' is not finite; expected a finite number >= 0"),
    (["--sd-weight", "time=-Infinity"], "weight='-Infinity' is not finite; expected a finite number >= 0"),
    (["--term-arg", "time.weight=NaN"], "term_args time: weight='NaN' is not finite; expected a finite number >= 0"),
    (["--sd-terms", "depth", "--term-arg", "depth.temperature=nan"],
     "term_args depth: temperature='nan' is not finite; expected a finite number"),
])
def test_nan_spelt_plainly_is_called_non_finite(args, message, no_training, capsys):
    assert message in error_of(capsys, "train", "--self-distill", *args, "--quiet")


def _npy_claiming(path, shape, dtype="<i8", payload=b"\0" * 40):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + payload)
    return path


def test_nodes_header_is_checked_before_anything_is_allocated(tmp_path, student_dir, capsys):
    args = ["predict", "--model", student_dir, *CSBM, "--out", tmp_path / "p.npy", "--nodes"]
    err = error_of(capsys, *args, _npy_claiming(tmp_path / "huge.npy", (10 ** 13,)))
    assert "claims 10000000000000 rows; expected at most 2147483647" in err
    err = error_of(capsys, *args, _npy_claiming(tmp_path / "short.npy", (1000,)))
    assert "claims shape (1000,) (8000 bytes) but holds 40 bytes" in err
    err = error_of(capsys, *args, _npy_claiming(tmp_path / "obj.npy", (5,), "|O"))
    assert "holds a object array of shape (5,); expected 1-D integer node ids" in err
    assert not (tmp_path / "p.npy").exists()


def test_predictions_are_answered_in_bounded_chunks(tmp_path, student_dir, monkeypatch):
    """Memory follows the chunk, not the id count: the student never sees more rows than a chunk at once, and the
    answers are those of one whole call."""
    import gkd.pipeline.serve as serve

    monkeypatch.setattr(serve, "CHUNK", 7)
    seen = []
    real = Student.forward
    monkeypatch.setattr(Student, "forward", lambda self, x, index=None: seen.append(len(x)) or real(self, x, index))
    ids = np.random.default_rng(0).integers(0, 400, size=50)
    np.save(tmp_path / "ids.npy", ids)
    out = tmp_path / "p.csv"
    assert main([str(a) for a in ["predict", "--model", student_dir, *CSBM, "--nodes", tmp_path / "ids.npy",
                                  "--out", out]]) == 0
    assert max(seen) == 7 and sum(seen) == 50
    data = load("synthetic-csbm", **CSBM_ARGS)
    whole = gkd.predict(gkd.load(student_dir), data, torch.from_numpy(ids))
    rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == ids.tolist() and [int(r[1]) for r in rows] == whole.argmax(-1).tolist()
    conf = whole.softmax(-1).max(-1).values.tolist()
    assert [r[2] for r in rows] == [f"{c:.6f}" for c in conf]


def test_text_node_list_is_read_across_block_boundaries(tmp_path):
    from gkd.pipeline.serve import read_nodes

    ids = np.random.default_rng(1).integers(0, 10 ** 6, size=300_000)  # about 2 MB: three 1 MiB blocks
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{i},\n" if k % 3 else f"{i} " for k, i in enumerate(ids.tolist())))
    assert path.stat().st_size > 2 << 20
    assert read_nodes(path).tolist() == ids.tolist()


# --- #39 item 7: serving without a graph ---

def test_predict_features_answers_rows_as_new_nodes(tmp_path, capsys):
    torch.manual_seed(0)
    gkd.save(Student(MLP(16 + 4, 8, 2, 3), torch.randn(50, 4)), tmp_path / "m")  # positions: rows get zeros
    x = np.random.default_rng(0).normal(size=(30, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    want = gkd.load(tmp_path / "m")(torch.from_numpy(x)).argmax(-1).tolist()
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "p.npy")]) == 0
    assert np.load(tmp_path / "p.npy").tolist() == want and (tmp_path / "p.npy.gkd.json").is_file()
    assert "30 rows" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", str(tmp_path / "x.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    rows = [r.split(",") for r in (tmp_path / "p.csv").read_text().splitlines()]
    assert rows[0] == ["node", "prediction", "confidence"] and [int(r[0]) for r in rows[1:]] == list(range(30))
    assert [int(r[1]) for r in rows[1:]] == want


def test_predict_features_bad_inputs(tmp_path, student_dir, gnn_dir, capsys):
    np.save(tmp_path / "narrow.npy", np.zeros((4, 15), dtype=np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(16, dtype=np.float32))
    np.save(tmp_path / "obj.npy", np.array([[1.0] * 16, None], dtype=object), allow_pickle=True)
    (tmp_path / "head.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    good = tmp_path / "x.npy"
    np.save(good, np.zeros((4, 16), dtype=np.float32))
    base = ["predict", "--model", student_dir, "--out", tmp_path / "p.npy", "--features"]
    cases = [
        ([tmp_path / "narrow.npy"], "reads 16 features per node (its manifest's input.num_features)"),
        ([tmp_path / "flat.npy"], "holds an array of shape (16,); expected a 2-D array of numbers"),
        ([tmp_path / "obj.npy"], "holds a object array of shape (2,); expected a 2-D array of numbers"),
        ([_npy_claiming(tmp_path / "huge.npy", (10 ** 13, 16), "<f4")], "claims 10000000000000 rows"),
        ([tmp_path / "head.csv"], "is not a 2-D array of numbers (one row per node) (ValueError: could not convert"),
        ([tmp_path / "empty.csv"], "holds no rows; expected a 2-D array of numbers"),
        ([good, "--dataset", "Cora"], "--features answers feature rows without a graph; --dataset does not apply"),
        ([good, "--mask", "all", "--nodes", good], "--mask, --nodes do not apply"),
    ]
    for extra, message in cases:
        assert message in error_of(capsys, *base, *extra)
    err = error_of(capsys, "predict", "--model", gnn_dir, "--features", good, "--out", tmp_path / "p.npy")
    assert "is a GCN, which needs a graph: pass --dataset (--features answers graph-free students only)" in err
    err = error_of(capsys, "predict", "--model", student_dir, "--features", good, "--out", good)
    assert "is the --features file" in err
    assert not (tmp_path / "p.npy").exists() and np.load(good).shape == (4, 16)
