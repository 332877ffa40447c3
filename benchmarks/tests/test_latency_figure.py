"""benchmarks/inference_latency.py's accuracy-vs-latency figure plots Cora's rows of gnn2mlp.json, and nothing else."""
from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))  # the scripts import their ``common`` helper as a top-level module
import inference_latency  # noqa: E402


def _row(dataset, variant, method, test, teacher_test):
    return {"dataset": dataset, "setting": "transductive", "teacher": "sage", "variant": variant, "method": method,
            "test_mean": test, "teacher_test_mean": teacher_test}


def test_the_figure_takes_cora_rows_only():
    lat = {"sage_ms": 20.0, "mlp_ms": 1.0, "wide_ms": 3.0}
    rows = [_row("Texas", "plain MLP", "plain", 0.80, 0.76), _row("Cora", "plain MLP", "plain", 0.58, 0.83),
            _row("Cora", "GLNN", "glnn", 0.84, 0.83), _row("Cora", "GLNN, 256 wide", "glnn", 0.85, 0.83),
            _row("Cora", "gkd", "gkd", 0.86, 0.83), _row("Cornell", "GLNN", "glnn", 0.70, 0.75),
            {**_row("Cora", "GLNN", "glnn", 0.10, 0.10), "setting": "inductive"},
            {**_row("Cora", "GLNN", "glnn", 0.10, 0.10), "teacher": "gcn"}]
    assert inference_latency.figure_points(rows, lat) == {
        "SAGE teacher": (0.83, 20.0), "MLP: plain": (0.58, 1.0), "MLP: glnn": (0.84, 1.0),
        "MLP: glnn, 256 wide": (0.85, 3.0), "MLP: gkd": (0.86, 1.0)}


def test_the_committed_figure_matches_the_committed_results():
    results = BENCH / "results"
    latency = json.loads((results / "inference_latency.json").read_text())
    gnn = json.loads((results / "gnn2mlp.json").read_text())
    most = max(r["threads"] for r in latency["rows"])
    lat = next(r for r in latency["rows"] if r["graph"] == "Cora" and r["threads"] == most and r["batch"] == 1000)
    want = {k: {"accuracy": a, "ms": m} for k, (a, m) in inference_latency.figure_points(gnn["rows"], lat).items()}
    assert latency["accuracy_vs_latency"] == want
