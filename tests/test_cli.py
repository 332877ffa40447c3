import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gkd.cli import main

from conftest import assert_one_line_error, needs_cora


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "gkd", *args], capture_output=True, text=True, timeout=timeout)


@needs_cora
def test_train_gcn_on_cora_json(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("train", "--dataset", "Cora", "--model", "gcn", "--runs", "2", "--json", str(out), "--quiet")
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    for key in ("dataset", "model", "method", "setting", "runs", "test_mean", "test_std", "val_mean", "seconds",
                "config", "versions"):
        assert key in r
    assert r["dataset"] == "Cora" and r["method"] == "plain" and r["setting"] == "transductive"
    assert [x["seed"] for x in r["runs"]] == [0, 1]
    assert all(0.0 <= x["test"] <= 1.0 and 0.0 <= x["val"] <= 1.0 for x in r["runs"])
    assert r["test_mean"] >= 0.79  # GCN on Cora's public split: ~81.5
    # the summary on stdout: the scores, then the experiment stated (metric, split protocol, edge policy)
    assert "test" in p.stdout and p.stdout.count("\n") == 2
    assert p.stdout.splitlines()[1] == "  acc; split: public (20 per class / 500 val / 1000 test); edges: undirected"
    assert (r["metric"], r["edges"], r["unused_arrays"]) == ("acc", "undirected", [])


@pytest.mark.parametrize("model", ["mlp", "gat", "sage"])
def test_other_models_run(model, tmp_path, capsys):
    code = main(["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", model,
                 "--runs", "1", "--epochs", "20", "--json", str(tmp_path / "r.json"), "--quiet"])
    assert code == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["model"] == model and len(r["runs"]) == 1 and r["test_std"] is None


def test_same_seed_identical_json(tmp_path):
    args = ["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "sage", "--runs",
            "2", "--epochs", "15", "--quiet", "--json"]
    assert main(args + [str(tmp_path / "a.json")]) == 0
    assert main(args + [str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert [(r["val"], r["test"]) for r in a["runs"]] == [(r["val"], r["test"]) for r in b["runs"]]


BAD = [
    (["--dataset", "Coraa"], "unknown dataset 'Coraa'; did you mean cora"),
    (["--model", "gin"], "unknown model 'gin'"),
    (["--num-layers", "0"], "num_layers=0"),
    (["--hidden-channels", "0"], "hidden_channels=0"),
    (["--dropout", "1.0"], "dropout=1.0"),
    (["--runs", "0"], "runs=0"),
    (["--epochs", "0"], "epochs=0"),
    (["--generations", "0"], "generations=0; expected an integer >= 1"),
    (["--dataset", "texas", "--root", "/nonexistent-gkd-root"], "dataset files not found"),
    (["--json", "/nonexistent-gkd-dir/r.json"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_exit_2_one_line(args, message, capsys):
    assert main(["train", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err


def test_bad_yaml_via_cli(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("lr: fast\n")
    assert main(["train", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "lr='fast'" in err


def test_real_entry_point_bad_input_has_no_traceback():
    p = run_cli("train", "--dataset", "nope", "--quiet")
    assert p.returncode == 2
    assert_one_line_error(p.stderr)
    p = run_cli("train", "--runs", "x")
    assert p.returncode == 2 and "invalid int value" in p.stderr and "Traceback" not in p.stderr


def test_corrupt_raw_file_via_cli(tmp_path, capsys):
    import shutil

    from conftest import DATA_ROOT

    if not (DATA_ROOT / "Cora" / "raw").is_dir():
        pytest.skip("no Cora raw files")
    shutil.copytree(DATA_ROOT / "Cora" / "raw", tmp_path / "Cora" / "raw")
    f = tmp_path / "Cora" / "raw" / "ind.cora.graph"
    f.write_bytes(f.read_bytes()[:1000])
    assert main(["train", "--dataset", "Cora", "--root", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "ind.cora.graph" in err and "truncated or corrupt" in err


# --- benchmarks/run.py (the installed gkd has no bench command: it never reads benchmarks/) ---

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_run():
    """benchmarks/run.py as a module, so that a test can stand in for its subprocess calls."""
    spec = importlib.util.spec_from_file_location("gkd_bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_one_quick_benchmark_end_to_end(tmp_path):
    """`python benchmarks/run.py NAME --quick --out DIR` runs the script, which writes its JSON and Markdown there."""
    p = subprocess.run([sys.executable, str(BENCH / "run.py"), "inference_latency", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "run.py: inference_latency done in" in p.stderr
    r = json.loads((tmp_path / "inference_latency.json").read_text())
    assert r["quick"] and {row["batch"] for row in r["rows"]} == {1, 10, 100, 1000}
    assert all(row["ratio"] > 0 for row in r["rows"])
    assert "speed-up" in (tmp_path / "inference_latency.md").read_text()
    call, = r["invocations"]  # what made the file: the command, how long, the machine (and the commit, in a clone)
    ran = call["ran"].strip("`").split(" ")  # the script's own command line, as run.py started it
    assert ran[0] == "inference_latency.py" and "--quick" in ran and f"--out {tmp_path}" in call["ran"]
    assert 0 <= call["minutes"] < 10
    assert call["cpu"] == r["environment"]["cpu"] and call["threads_per_worker"] >= 1


def test_bench_knows_every_benchmark_script(bench_run):
    """`benchmarks/run.py all` runs every script in benchmarks/ (a new one left out of BENCHMARKS would never run)."""
    scripts = {p.stem for p in BENCH.glob("*.py")} - {"common", "grid", "report", "run"}
    assert set(bench_run.SCRIPTS) == scripts
    assert set(bench_run.EXPERIMENTS) == {p.stem for p in (BENCH / "experiments").glob("*.yaml")} >= {"baselines"}
    assert set(bench_run.BENCHMARKS) == scripts | set(bench_run.EXPERIMENTS)


def test_bench_unknown_name(bench_run, capsys):
    assert bench_run.main(["mhgd_digit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("run.py: error: ") and "Traceback" not in err
    assert "unknown benchmark(s) ['mhgd_digit']" in err


def test_bench_out_is_a_file(bench_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("a benchmark ran"))
    f = tmp_path / "results"
    f.write_text("x")
    for out, message in ((f, "is a file; expected a folder"), (f / "sub", "cannot create the folder")):
        assert bench_run.main(["scale", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_bench_relative_out_is_resolved_against_the_working_directory(bench_run, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: calls.append((cmd, kw)) or 0)
    monkeypatch.chdir(tmp_path)
    assert bench_run.main(["scale", "--quick", "--out", "rel"]) == 0
    cmd, kw = calls[0]
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "rel") and kw["cwd"] != tmp_path
    assert (tmp_path / "rel").is_dir()


def test_a_failed_benchmark_stops_the_run(bench_run, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: calls.append(cmd) or 3)
    assert bench_run.main(["scale", "amkd", "--quick", "--out", str(tmp_path)]) == 1
    assert len(calls) == 1 and "benchmark 'scale' failed with exit code 3" in capsys.readouterr().err


def test_gkd_has_no_bench_command(capsys):
    assert main(["bench", "scale"]) == 2
    assert "invalid choice: 'bench'" in capsys.readouterr().err
