"""benchmarks/grid.py, the runner of benchmarks declared as data: a grid of public-API configs, rows cached by the
hash of their validated config, targets stated met or not, bad experiment files refused before anything trains."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))  # the scripts import their ``common`` helper as a top-level module
import grid  # noqa: E402

# the package tests' guard (gkd must never touch the network), loaded by path: two modules named conftest would clash
_spec = importlib.util.spec_from_file_location("gkd_tests_conftest", BENCH.parent / "tests" / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
no_network = _shared.no_network  # an autouse fixture there, so here too

EXPERIMENT = """
title: tiny grid
doc: two backbones on a small synthetic graph
command: train
base:
  data: {args: {num_nodes: 300, num_features: 16, train_per_class: 10, num_val: 60, num_test: 120}}
  train: {epochs: 4, patience: 4}
  run: {runs: 2, device: cpu}
datasets: [synthetic-csbm]
rows:
  MLP: {model: {name: mlp}}
  GCN: {model: {name: gcn, hidden_channels: 16}}
baseline: MLP
targets:
  - {row: GCN, against: MLP, at_least: -100.0}
  - {row: MLP, at_least: 101.0}
"""


def _write(tmp_path, text=EXPERIMENT, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_runs_caches_and_states_its_targets(tmp_path):
    exp, out, cache = _write(tmp_path), tmp_path / "out", tmp_path / "cache"
    args = [str(exp), "--out", str(out), "--cache", str(cache), "--jobs", "1"]
    assert grid.main(args) == 0
    first = json.loads((out / "tiny.json").read_text())
    assert [(r["dataset"], r["row"], r["cached"]) for r in first["rows"]] == [("synthetic-csbm", "MLP", False),
                                                                              ("synthetic-csbm", "GCN", False)]
    assert all(len(r["runs"]) == 2 and r["config"]["epochs"] == 4 and "commit" in r for r in first["rows"])
    assert [t["met"] for t in first["targets"]] == [True, False]
    md = (out / "tiny.md").read_text()
    assert "− MLP (paired)" in md and "**NOT met**" in md and "metric acc" in md
    assert sorted(p.stem for p in cache.glob("*.json")) == sorted(r["key"] for r in first["rows"])

    assert grid.main(args) == 0  # every row from the cache: same figures, nothing trained
    second = json.loads((out / "tiny.json").read_text())
    assert all(r["cached"] for r in second["rows"]) and second["invocations"][-1]["rows"] == 0
    assert [r["runs"] for r in second["rows"]] == [r["runs"] for r in first["rows"]]


def test_cache_key_is_the_validated_config():
    from gkd.pipeline import parse_yaml

    exp = parse_yaml(EXPERIMENT, "test")
    keys = {c["row"]: c["key"] for c in grid.cells(exp, quick=False)}
    flat = dict(exp, rows={"MLP": {"model": "mlp"}, "GCN": {"model": "gcn", "hidden_channels": 16}})
    assert {c["row"]: c["key"] for c in grid.cells(flat, quick=False)} == keys  # the same settings, spelled flat
    longer = dict(exp, base=grid._merge(exp["base"], {"train": {"epochs": 5}}))
    assert not set(keys.values()) & {c["key"] for c in grid.cells(longer, quick=False)}


@pytest.mark.parametrize("change, message", [
    (("title: tiny grid", "titel: tiny grid"), "unknown key(s) ['titel']"),
    (("command: train", "command: fit"), "command='fit'; expected train or distill"),
    (("baseline: MLP", "baseline: SAGE"), "baseline='SAGE'; expected one of the rows ['MLP', 'GCN']"),
    (("{row: MLP, at_least: 101.0}", "{row: GAT, at_least: 1}"), "target {'row': 'GAT', 'at_least': 1}"),
    (("hidden_channels: 16}", "hidden_channels: 0}"), "row 'GCN' on synthetic-csbm: "),
    (("epochs: 4, patience: 4", "epochs: 4, patiense: 4"), "section 'train' has unknown key(s) ['patiense']"),
    (("MLP: {model: {name: mlp}}", "MLP: mlp"), "rows={'MLP': 'mlp',"),
    (("{row: MLP, at_least: 101.0}", "{row: MLP, at_least: '80'}"), "expected row and at_least (a number)"),
    (("{row: MLP, at_least: 101.0}", "{row: MLP, at_least: 1, dataset: Cora}"), "and datasets ['synthetic-csbm']"),
    (("datasets: [synthetic-csbm]", "datasets: synthetic-csbm"), "datasets='synthetic-csbm'; expected a list"),
    (("base:", "quick: 5\nbase:"), "quick=5; expected a mapping of settings"),
])
def test_a_bad_experiment_is_one_error_before_anything_runs(tmp_path, capsys, change, message):
    exp = _write(tmp_path, EXPERIMENT.replace(*change))
    assert grid.main([str(exp), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("grid.py: error: ") and message in err, err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out" / "tiny.json").exists()


def test_every_declared_experiment_reads_and_validates():
    for path in sorted(grid.EXPERIMENTS.glob("*.yaml")):
        name, exp = grid.read_experiment(path.stem)
        assert name == path.stem and grid.cells(exp, quick=True) and grid.cells(exp, quick=False)


def test_what_only_the_data_can_refuse_is_one_error(tmp_path, capsys):
    exp = _write(tmp_path, EXPERIMENT.replace("num_test: 120", "num_test: 1000"))
    assert grid.main([str(exp), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("grid.py: error: row 'MLP' on synthetic-csbm: ") and "Traceback" not in err, err
    assert not (tmp_path / "out" / "tiny.json").exists()


def test_a_bad_file_or_worker_count_is_one_error(tmp_path, capsys):
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(EXPERIMENT.encode().replace(b"tiny grid", b"tiny gr\xe9d"))
    out = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    for args, message in (([str(bad), *out], "is not UTF-8 text (byte "), ([str(_write(tmp_path)), "--jobs", "0", *out],
                          "--jobs 0; expected at least 1"), ([str(_write(tmp_path))], "pass --out DIR")):
        assert grid.main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("grid.py: error: ") and message in err, err
    assert not (tmp_path / "cache").exists()


def test_layers_merge_by_setting_and_a_shared_row_keeps_each_label(tmp_path):
    text = EXPERIMENT.replace("  MLP: {model: {name: mlp}}", "  MLP: {model: {name: mlp}}\n  again: {model: mlp}")
    text = text.replace("  GCN: {model: {name: gcn, hidden_channels: 16}}", "  GCN: {model: gcn, epochs: 3}")
    text = text.replace("base:\n", "base:\n  model: {hidden_channels: 16}\n")
    from gkd.pipeline import parse_yaml

    cells = {c["row"]: c for c in grid.cells(parse_yaml(text, "test"), quick=False)}
    assert cells["GCN"]["config"]["epochs"] == 3 and cells["GCN"]["config"]["hidden_channels"] == 16  # row over base
    assert cells["again"]["key"] == cells["MLP"]["key"]
    exp, out, cache = _write(tmp_path, text), tmp_path / "out", tmp_path / "cache"
    assert grid.main([str(exp), "--out", str(out), "--cache", str(cache), "--jobs", "1"]) == 0
    rows = json.loads((out / "tiny.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ["MLP", "again", "GCN"] and len(list(cache.glob("*.json"))) == 2
    assert rows[0]["runs"] == rows[1]["runs"]


def test_a_target_without_common_seeds_is_stated_not_met(tmp_path):
    text = EXPERIMENT.replace("GCN: {model: {name: gcn, hidden_channels: 16}}",
                              "GCN: {model: {name: gcn, hidden_channels: 16}, run: {seed: 100}}")
    exp, out = _write(tmp_path, text), tmp_path / "out"
    assert grid.main([str(exp), "--out", str(out), "--cache", str(tmp_path / "cache"), "--jobs", "1"]) == 0
    first = json.loads((out / "tiny.json").read_text())["targets"][0]
    assert first["value"] is None and first["met"] is False and first["why"] == "no seed in common"
    assert "— (no seed in common)" in (out / "tiny.md").read_text()


def test_a_missing_or_broken_earlier_results_file_is_one_error_line(tmp_path, capsys):
    """`amkd.py --datasets digits --out DIR` keeps the other rows from DIR/amkd.json: without one, one line, exit 2."""
    import common

    with pytest.raises(SystemExit) as e:
        common.load_results(tmp_path, "amkd")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"amkd.py: error: {tmp_path / 'amkd.json'} does not exist; expected the results of a whole")
    (tmp_path / "amkd.json").write_text("{not json")
    with pytest.raises(SystemExit) as e:
        common.load_results(tmp_path, "amkd")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "cannot be read (JSONDecodeError" in err
    (tmp_path / "amkd.json").write_text('{"runs": 10}')
    assert common.load_results(tmp_path, "amkd") == {"runs": 10}
