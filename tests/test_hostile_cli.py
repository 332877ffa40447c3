"""Hostile input, round two: every bad option is one `gkd: error:` line and exit 2, before any data loads or any
model trains; results are written whole, readable and strictly JSON."""
import json
import os
import stat

import pytest

from gkd.cli import main

from conftest import assert_one_line_error

CSBM = ["--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=200", "--dataset-arg", "num_classes=2",
        "--dataset-arg", "num_features=8", "--dataset-arg", "num_val=20", "--dataset-arg", "num_test=20"]


class Trained(Exception):
    """Raised where training would start: the options passed validation."""


@pytest.fixture
def no_training(monkeypatch):
    """Make loading and training impossible: a bad option must be refused before either."""
    def refuse(*args, **kwargs):
        raise Trained

    for target in ("gkd.pipeline.train.run_training", "gkd.pipeline.gnn2mlp.run_distillation", "gkd.datasets.load",
                   "gkd.pipeline.gnn2mlp.teacher_stage", "gkd.vision.pipeline.run_cnn_distillation"):
        monkeypatch.setattr(target, refuse)


def error_of(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    return err


# --- 1. non-finite and empty settings ---

NON_FINITE = [
    ("train", ["--lr", "inf"], "lr=inf; expected > 0 and finite"),
    ("train", ["--lr", "nan"], "lr=nan; expected > 0 and finite"),
    ("train", ["--lr", "-1"], "lr=-1.0; expected > 0 and finite"),
    ("train", ["--weight-decay", "inf"], "weight_decay=inf; expected >= 0 and finite"),
    ("train", ["--weight-decay", "nan"], "weight_decay=nan; expected >= 0 and finite"),
    ("train", ["--weight-decay", "-0.1"], "weight_decay=-0.1; expected >= 0 and finite"),
    ("train", ["--self-distill", "--sd-terms", "depth", "--term-arg", "depth.temperature=.inf"],
     "term_args depth: temperature=inf; expected a finite number"),
    ("train", ["--self-distill", "--sd-weight", "time=.inf"], "term_args time: weight=inf; expected a finite number"),
    ("distill", ["--temperature", "inf"], "temperature=inf; expected > 0 and finite"),
    ("distill", ["--kd-lambda", "nan"], "kd_lambda=nan"),
    ("distill", ["--inductive-fraction", "nan"], "inductive_fraction=nan"),
    ("distill", ["--method", "gkd+amkd", "--term-arg", "amkd.eta=.inf"], "eta=inf; expected a finite number"),
    ("distill", ["--method", "gkd+amkd", "--term-arg", "amkd.triplet_weight=.inf"],
     "triplet_weight=inf; expected a finite number"),
    ("distill", ["--term-weight", "neighbour=.inf"], "term_args neighbour: weight=inf; expected a finite number"),
    ("distill", ["--teacher-arg", "lr=.inf"], "lr=inf; expected > 0 and finite"),
    ("book", ["--temperature", "inf", "--out", "BOOK"], "temperature=inf; expected > 0 and finite"),
    ("book", ["--temperature", "nan", "--out", "BOOK"], "temperature=nan"),
    ("cnn", ["--lr", "inf"], "lr=inf; expected > 0 and finite"),
    ("cnn", ["--method", "mhgd", "--term-arg", "mhgd.grad_cap=.inf"], "grad_cap=inf; expected a finite number"),
]


# values too large for what they size: an overflow, NaN or hang inside the run otherwise
HUGE = "100000000000000000000"
OVERSIZED = [
    ("train", ["--lr", "1e300"], "lr=1e+300; expected a finite number of magnitude at most 3.403e+38 (float32's"),
    ("train", ["--weight-decay", "1e300"], "weight_decay=1e+300; expected a finite number of magnitude"),
    ("train", ["--num-layers", HUGE], f"num_layers={HUGE}; expected an integer in [1, 128]"),
    ("train", ["--batch-size", HUGE], f"batch_size={HUGE}; expected an integer <= 2147483647"),
    ("train", ["--batch-size", "64", "--fanout", f"{HUGE},5"], "positive integers (at most 2147483647), one per"),
    ("train", ["--device", f"cuda:{HUGE}"], "expected auto, cpu, cuda or cuda:N"),
    ("train", ["--generations", HUGE], f"generations={HUGE}; expected an integer <= 1000"),
    ("train", ["--self-distill", "--term-arg", f"neighbour.steps={HUGE}"], f"steps={HUGE}; expected an integer <="),
    ("train", ["--self-distill", "--sd-terms", "depth", "--term-arg", "depth.temperature=1e20"],
     "depth temperature=1e+20; expected > 0 and finite, at most 10000"),
    ("distill", ["--temperature", "1e20"], "temperature=1e+20; expected > 0 and finite, at most 10000"),
    ("distill", ["--teachers", HUGE], f"teachers={HUGE}; expected an integer <= 1000"),
    ("distill", ["--teacher-generations", HUGE], f"teacher_generations={HUGE}; expected an integer <= 1000"),
    ("distill", ["--student-batch-size", HUGE], f"student_batch_size={HUGE}; expected an integer <= 2147483647"),
    ("distill", ["--method", "gkd+"], "has an empty term after '+'"),
    ("book", ["--temperature", "1e5", "--out", "BOOK"], "temperature=100000.0; expected > 0 and finite, at most 10000"),
]


@pytest.mark.parametrize("command, args, message", NON_FINITE + OVERSIZED)
def test_non_finite_and_oversized_settings_are_refused_before_training(command, args, message, no_training, capsys,
                                                                        tmp_path):
    args = [str(tmp_path / "book") if a == "BOOK" else a for a in args]
    assert message in error_of(capsys, command, *args, "--quiet")


@pytest.mark.parametrize("command", ["distill", "book"])
def test_empty_test_mask_is_refused_before_training(command, monkeypatch, capsys, tmp_path):
    import gkd.pipeline.gnn2mlp as gnn2mlp
    import gkd.pipeline.teachers as teachers

    monkeypatch.setattr(teachers, "train_run", lambda *a, **k: pytest.fail("a teacher trained"))
    monkeypatch.setattr(gnn2mlp, "stage_from_book", lambda *a, **k: pytest.fail("a book was read"))
    extra = ["--out", str(tmp_path / "book")] if command == "book" else ["--runs", "1"]
    err = error_of(capsys, command, *CSBM[:-2], "--dataset-arg", "num_test=0", *extra, "--quiet")
    assert "test_mask selects no node" in err


def test_empty_test_mask_is_refused_before_gkd_train_trains(tmp_path, capsys, monkeypatch):
    import gkd.pipeline.train as train

    monkeypatch.setattr(train, "train_run", lambda *a, **k: pytest.fail("a model trained"))
    out = tmp_path / "r.json"
    err = error_of(capsys, "train", *CSBM[:-2], "--dataset-arg", "num_test=0", "--runs", "1", "--epochs", "2",
                   "--model", "mlp", "--json", str(out), "--quiet")
    assert "test_mask selects no node" in err and not out.exists()


def test_write_json_refuses_nan_and_infinity(tmp_path):
    from gkd.errors import GKDError
    from gkd.io import write_json

    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(GKDError, match="the results hold a NaN or infinite number"):
            write_json(tmp_path / "r.json", {"test_mean": bad})
    assert not (tmp_path / "r.json").exists()
    write_json(tmp_path / "r.json", {"test_mean": 0.5, "test_std": None})
    assert json.loads((tmp_path / "r.json").read_text()) == {"test_mean": 0.5, "test_std": None}


# --- 2. tracebacks where one line is promised ---

ONE_LINE = [
    (["--dataset-arg", "num_nodes=["], "value of 'num_nodes' is not plain YAML"),
    (["--dataset-arg", "num_nodes={a: 1"], "value of 'num_nodes' is not plain YAML"),
    (["--dataset-arg", "x=&a [*a]"], "anchors and aliases"),
    (["--dataset-arg", "x=" + "[" * 3000], "is nested too deeply"),
    (["--dataset-arg", "=1"], "is not KEY=VALUE"),
    (["--dataset-arg", "num_nodes=[1, 2]"], "dataset_args num_nodes=[1, 2]; expected a number, string or boolean"),
    (["--dataset-arg", "homophily=.nan"], "dataset_args homophily=nan; expected a finite number"),
    (["--dataset-arg", "split=3"], "dataset_args may not set ['split']"),
    (["--dataset", "Cora", "--dataset-arg", "homophily=0.2"], "dataset_args ['homophily']: the 'Cora' loader takes"),
    (["--seed", "-1"], "seed=-1; expected an integer >= 0"),
    (["--seed", str(2**32)], "seed=4294967296; expected an integer <= 4294967295"),
    (["--seed", "1" * 40], "expected an integer <= 4294967295"),
    (["--epochs", str(10**7)], "epochs=10000000; expected an integer <= 1000000"),
    (["--hidden-channels", str(2**40)], "hidden_channels=1099511627776; expected an integer <= 65536"),
    (["--heads", "65"], "heads=65; expected an integer <= 64"),
    (["--runs", "10001"], "runs=10001; expected an integer <= 10000"),
    (["--runs", "x"], "argument --runs: invalid int value: 'x'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--self-distill", "--sd-terms", "time,time"], "self term 'time' given twice"),
    (["--self-distill", "--sd-terms", "neighbour,neighbor"], "self term 'neighbour' given twice"),
    (["--self-distill", "--sd-weight", "depth=2"], "term_args given for self term(s) ['depth'] that are not switched on"),
]


@pytest.mark.parametrize("args, message", ONE_LINE)
def test_train_bad_values_are_one_line(args, message, no_training, capsys):
    assert message in error_of(capsys, "train", *args, "--quiet")


def test_usage_errors_are_one_line(capsys):
    for argv in ([], ["nope"], ["train", "--lr"], ["book"], ["distill", "--teachers", "two"]):
        err = error_of(capsys, *argv)
        assert "usage:" not in err and "--help)" in err


def test_multi_line_error_message_is_folded(monkeypatch, capsys):
    from gkd.errors import ConfigError

    def bad(args):
        raise ConfigError("first line\nsecond line\n\tthird")

    monkeypatch.setattr("gkd.cli.cmd_train", bad)
    assert "first line second line third" in error_of(capsys, "train")


HOSTILE_YAML = [
    (b"a: &a [*a]\n", "anchors and aliases"),
    (b"lr: &x 0.1\nweight_decay: *x\n", "anchors and aliases"),
    (b"lr: 0.1\nlr: 0.2\n", "duplicate key 'lr'"),
    (b"lr: \xff\xfe\n", "is not UTF-8 text"),
    (b"lr: .inf\n", "lr=inf; expected > 0 and finite"),
    (b"seed: 99999999999999999999999\n", "expected an integer <= 4294967295"),
    (b"dataset_args: {split: 1}\n", "dataset_args may not set ['split']"),
    (b"runs: [" + b"[" * 5000 + b"\n", "is nested too deeply"),
]


@pytest.mark.parametrize("text, message", HOSTILE_YAML)
def test_hostile_yaml_config(text, message, tmp_path, no_training, capsys):
    f = tmp_path / "c.yaml"
    f.write_bytes(text)
    assert message in error_of(capsys, "train", "--config", str(f))


def test_billion_laughs_is_refused_without_expanding(tmp_path, no_training, capsys):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    f = tmp_path / "lol.yaml"
    f.write_text("\n".join(lines) + "\n")
    assert f.stat().st_size < 500  # expands to 9**9 strings (hundreds of MB) if aliases were followed
    assert "anchors and aliases" in error_of(capsys, "train", "--config", str(f))


def test_oversized_yaml(tmp_path, no_training, capsys):
    f = tmp_path / "big.yaml"
    f.write_text("#" * (1 << 20) + "\nlr: 0.1\n")
    assert "is larger than 1048576 bytes" in error_of(capsys, "train", "--config", str(f))


# --- 3. --json / --out checked before the run ---

def _out_cases(tmp_path):
    (tmp_path / "file").write_text("x")
    return [
        (str(tmp_path), "is a directory; expected a file path"),
        (str(tmp_path / ("a" * 300 + ".json")), "(NAME_MAX)"),
        (str(tmp_path / ("a" * 300) / "r.json"), "File name too long"),
        ("/proc/gkd-results.json", "is not writable"),  # not even root can make a file there
        (str(tmp_path / "file" / "r.json"), "/file' is a file, not a folder"),
        (str(tmp_path / "missing" / "r.json"), "/missing' does not exist"),
        ("", "is empty; expected a file path"),
    ]


@pytest.mark.parametrize("command", ["train", "distill", "cnn"])
def test_json_path_checked_before_the_run(command, tmp_path, no_training, capsys):
    for path, message in _out_cases(tmp_path):
        assert message in error_of(capsys, command, "--json", path, "--quiet")


def test_graph_and_book_out_checked_before_the_run(tmp_path, no_training, capsys):
    for path, message in _out_cases(tmp_path)[1:4]:
        assert message in error_of(capsys, "graph", "--out", path, "--quiet")
    assert "(NAME_MAX)" in error_of(capsys, "book", "--out", str(tmp_path / ("b" * 300)), "--quiet")
    assert "is not writable" in error_of(capsys, "book", "--out", "/proc/gkd-book/x", "--quiet")
    assert "k=0; expected an integer >= 1" in error_of(capsys, "graph", "--out", str(tmp_path / "g.npz"), "--k", "0")


def test_json_and_graph_out_replace_only_what_gkd_wrote(tmp_path, no_training, capsys):
    """--json and gkd graph --out leave what gkd did not write (a user's file, a link to one, a device) as it is,
    refused before the run; gkd's own earlier results may be replaced."""
    user = tmp_path / "notes.json"
    user.write_text('{"mine": 1}\n')
    link = tmp_path / "link.json"
    link.symlink_to(user)
    for command in ("train", "distill", "cnn"):
        for path in (user, link, "/dev/null"):
            assert "exists and is not a gkd results JSON; it is left as it is" in error_of(
                capsys, command, "--json", str(path), "--quiet")
    assert user.read_text() == '{"mine": 1}\n' and link.is_symlink()
    earlier = tmp_path / "r.json"
    earlier.write_text(json.dumps({"versions": {"gkd": "0.1.0"}, "config": {}, "runs": []}))
    with pytest.raises(Trained):
        main(["train", "--json", str(earlier), "--quiet"])
    graph = tmp_path / "g.npz"
    graph.write_bytes(b"user bytes")
    assert "exists and is not a gkd graph file" in error_of(capsys, "graph", "--out", str(graph), "--quiet")
    assert graph.read_bytes() == b"user bytes"


def test_valid_out_paths_pass_the_check(tmp_path, no_training, capsys):
    for argv in (["train", "--json", str(tmp_path / "r.json")], ["book", "--out", str(tmp_path / "new" / "book")]):
        with pytest.raises(Trained):
            main(argv + ["--quiet"])
    assert sorted(os.listdir(tmp_path)) == []  # the write check leaves nothing behind


# --- 4. torchrun environment (benchmarks/run.py --out: tests/test_cli.py) ---

TORCHRUN = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531"}
BAD_ENV = [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc'; expected an integer"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0; expected an integer in [1, "),
    ({"RANK": None}, "RANK is not set"),
    ({"RANK": "2"}, "RANK=2; expected an integer in [0, 1]"),
    ({"RANK": "-1"}, "RANK=-1; expected an integer in [0, 1]"),
    ({"LOCAL_RANK": "x"}, "LOCAL_RANK='x'; expected an integer"),
    ({"MASTER_ADDR": None}, "MASTER_ADDR is not set"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000; expected an integer in [1, 65535]"),
    ({"GKD_DIST_TIMEOUT": "inf"}, "GKD_DIST_TIMEOUT='inf'; expected seconds in (0, 86400]"),
    ({"GKD_DIST_TIMEOUT": "-3"}, "GKD_DIST_TIMEOUT='-3'"),
]


@pytest.mark.parametrize("env, message", BAD_ENV)
def test_torchrun_environment_is_checked(env, message, monkeypatch, no_training, capsys, tmp_path):
    import torch.distributed as dist

    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: pytest.fail("joined with a bad environment"))
    for k, v in {**TORCHRUN, **env}.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    assert message in error_of(capsys, "distill", "--book", str(tmp_path), "--quiet")


def test_missing_peer_times_out_with_one_line(monkeypatch, no_training, capsys, tmp_path):
    import socket
    import time

    with socket.socket() as s:  # a free port: nobody else is listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {**TORCHRUN, "MASTER_PORT": str(port), "GKD_DIST_TIMEOUT": "1"}.items():
        monkeypatch.setenv(k, v)
    start = time.monotonic()
    err = error_of(capsys, "distill", "--book", str(tmp_path), "--quiet")
    assert "could not join the process group" in err and "within 1s (GKD_DIST_TIMEOUT)" in err
    assert time.monotonic() - start < 30


# --- 5. every distill option before any teacher trains ---

DISTILL_BAD = [
    (["--term-arg", "neighbour.steps=-1"], "neighbour steps=-1; expected an integer >= 1"),
    (["--term-arg", "neighbour.alpha=1.5"], "neighbour alpha=1.5; expected a value in [0, 1)"),
    (["--terms", "reliability", "--term-arg", "reliability.noise=0"], "reliability noise=0.0; expected > 0"),
    (["--terms", "rsd", "--term-arg", "rsd.batch=1"], "rsd batch=1; expected an integer >= 2"),
    (["--term-arg", "position.dim=0"], "position dim=0; expected an integer >= 1"),
    (["--term-arg", "position.dim=70000"], "position: dim=70000; expected an integer <= 65536"),
    (["--term-arg", "position.dim=x"], "term_args position.dim='x'; expected int"),
    (["--term-arg", "position.size=3"], "term_args position.size: not an option of the transform term 'position', which takes weight, dim"),
    (["--term-arg", "position"], "expected TERM.OPTION=VALUE"),
    (["--term-weight", "neighbour=-1"], "term_args neighbour: weight=-1.0; expected a finite number >= 0"),
    (["--term-weight", "neighbour=1", "--term-arg", "neighbour.weight=2"], "term option neighbour.weight given twice; expected once"),
    (["--label-smoothing", "1"], "label_smoothing=1.0; expected a value in [0, 1)"),
    (["--method", "gkd+amkd", "--term-arg", "amkd.steps=0"], "attack steps=0"),
    (["--method", "gkd+amkd", "--term-arg", "amkd.samples=0"], "max_samples=0"),
    (["--method", "gkd+amkd", "--term-arg", "amkd.refresh=0"], "refresh=0"),
    (["--method", "gkd+amkd", "--term-arg", "amkd.margin=-1"], "triplet margin=-1.0"),
    (["--method", "gkd+amkd", "--term-arg", "amkd.triplet_weight=-1"], "triplet_weight=-1.0; expected >= 0"),
    (["--terms", "position,position"], "transform term 'position' given twice"),
    (["--method", "gkd+position"], "student term(s) ['position'] given twice"),
    (["--term-weight", "rsd=2"], "term_args given for student term(s) ['rsd'] that are not switched on"),
    (["--method", "plain", "--term-weight", "neighbour=1"], "term_args given for student term(s) ['neighbour']"),
    (["--teacher-arg", "dropout=x"], "teacher_args: dropout='x' has type str; expected float"),
    (["--teacher-arg", "nope=1"], "teacher_args has unknown key(s) ['nope']"),
    (["--teacher-arg", "hidden_channels=100000"], "hidden_channels=100000; expected an integer <= 65536"),
    (["--teacher-arg", "sd_terms=time,time"], "self term 'time' given twice"),
]


@pytest.mark.parametrize("args, message", DISTILL_BAD)
def test_distill_options_checked_before_teachers_train(args, message, no_training, capsys):
    assert message in error_of(capsys, "distill", *args, "--quiet")


def test_book_options_checked_before_teachers_train(no_training, capsys, tmp_path):
    err = error_of(capsys, "book", "--teacher-arg", "term_args={depth: {weight: 1}}", "--out", str(tmp_path / "b"),
                   "--quiet")
    assert "term_args given for self term(s) ['depth'] that are not switched on" in err
    err = error_of(capsys, "book", "--teacher-arg", "epochs=2000000", "--out", str(tmp_path / "b"), "--quiet")
    assert "epochs=2000000; expected an integer <= 1000000" in err


# --- 6. result files keep the usual permissions ---

def test_atomic_writes_honour_umask_and_existing_mode(tmp_path):
    from gkd.io import atomic_write_text

    old = os.umask(0o022)
    try:
        new = atomic_write_text(tmp_path / "new.json", "{}")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644  # mkstemp alone gives 0600
        os.umask(0o002)
        assert stat.S_IMODE(atomic_write_text(tmp_path / "g.json", "{}").stat().st_mode) == 0o664
        kept = tmp_path / "kept.json"
        kept.write_text("old")
        kept.chmod(0o640)
        atomic_write_text(kept, "new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
    finally:
        os.umask(old)


def _taps(path, **arrays):
    import numpy as np

    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("arrays, message", [
    ({"tap0": [1.0, 2.0, 3.0], "tap1": [[1.0]] * 3}, "tap0 has shape (3,)"),
    ({"tap0": [["a", "b"]] * 3, "tap1": [[1.0]] * 3}, "has dtype <U1; expected numbers"),
    ({"tap0": [[1j]] * 3, "tap1": [[1.0]] * 3}, "has dtype complex128; expected numbers"),
    ({"tap0": [[]] * 3, "tap1": [[1.0]] * 3}, "with D >= 1"),
    ({"tap0": [[1.0]] * 3, "tap1": [[1.0]] * 3, "y": [0, -1, 1]}, "y holds negative labels"),
    ({"tap0": [[1.0]] * 3, "tap1": [[1.0]] * 3, "y": [0, float("nan"), 1]}, "y holds non-integer or NaN labels"),
    ({"tap0": [[1.0]] * 3, "tap1": [[1.0]] * 3, "y": [0, 1]}, "y has shape (2,); expected [3]"),
])
def test_hostile_embeddings_are_refused(arrays, message, tmp_path, capsys):
    import numpy as np

    path = _taps(tmp_path / "taps.npz", **{k: np.asarray(v) for k, v in arrays.items()})
    assert message in error_of(capsys, "graph", "--embeddings", path, "--out", str(tmp_path / "g.npz"), "--quiet")


def test_embeddings_header_claiming_a_huge_shape(tmp_path, capsys):
    """A 1 kB file whose .npy header claims 8 TB: refused from the header, nothing is allocated."""
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 9, 1000)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("tap0.npy", buf.getvalue() + b"\0" * 80)
        z.writestr("tap1.npy", buf.getvalue() + b"\0" * 80)
    err = error_of(capsys, "graph", "--embeddings", str(tmp_path / "huge.npz"), "--out", str(tmp_path / "g.npz"))
    assert "claims shape (1000000000, 1000)" in err


# --- 7. numbers in exponent form ---

def test_exponent_only_numbers_are_floats_in_yaml_and_flags(tmp_path):
    """YAML 1.1 reads 1e-3 as a string; gkd reads it as Python and YAML 1.2 do."""
    from gkd.config import make_config, parse_yaml

    assert parse_yaml("1e-3", "x") == 0.001 and parse_yaml("1.5E3", "x") == 1500.0 and parse_yaml("-2e+2", "x") == -200
    assert parse_yaml("'1e-3'", "x") == "1e-3" and parse_yaml("1e", "x") == "1e" and parse_yaml("0x10", "x") == 16
    config = tmp_path / "c.yaml"
    config.write_text("lr: 1e-3\nweight_decay: 5e-4\n")
    cfg = make_config(config, {"term_args": {"depth": {"temperature": parse_yaml("2e0", "x")}}, "method": "depth"})
    assert (cfg.lr, cfg.weight_decay, cfg.term_args["depth"]["temperature"]) == (0.001, 0.0005, 2.0)
