"""Golden runs: a fixed set of small CLI and API runs whose results must not change across a refactor.

    python tests/golden.py OUT.json          # record
    python tests/golden.py OUT.json --diff BEFORE.json   # record and compare field by field (exit 1 on a change)

Each run's results JSON is kept except what measures the machine (seconds, timings, environment, paths of the
temporary folder); saved artefacts and predictions are kept as the sha256 of their files. Not collected by pytest
(a refactor check for a developer, a few minutes on 2 cores).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DROP = {"seconds", "environment", "time", "elapsed", "started", "finished", "timings", "commit", "gkd_version",
        "torch_threads", "command", "json", "save", "book", "out", "root", "checkpoint_dir", "path", "source",
        "seconds_per_run", "peak_memory_gb", "train_seconds", "teacher_seconds", "student_seconds", "epoch_seconds",
        "created", "python", "platform", "host"}


def _clean(obj, tmp: str):
    if isinstance(obj, dict):
        return {k: _clean(v, tmp) for k, v in obj.items() if k not in DROP and "second" not in k}
    if isinstance(obj, list):
        return [_clean(v, tmp) for v in obj]
    if isinstance(obj, str):
        return obj.replace(tmp, "<tmp>")
    return obj


def _sha(path: Path) -> dict:
    if path.is_dir():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())
                if p.is_file() and p.suffix != ".json"}
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}


def _gkd(tmp: str, *args: str, json_out: bool = True) -> dict:
    out = Path(tmp) / f"r{len(os.listdir(tmp))}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "gkd", *args, *(["--json", str(out)] if json_out else []), "--quiet"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return _clean(json.loads(out.read_text()), tmp) if json_out else {}


def runs(tmp: str) -> dict:
    import torch

    torch.set_num_threads(1)
    short = ["--runs", "2", "--epochs", "6", "--patience", "6"]
    teach = ["--teacher-arg", "epochs=6", "--teacher-arg", "patience=6"]
    g: dict = {}
    g["train plain"] = _gkd(tmp, "train", "--dataset", "Cora", *short)
    g["train self-distill sage"] = _gkd(tmp, "train", "--dataset", "Cora", "--model", "sage", "--self-distill",
                                         *short)
    g["train gat born-again"] = _gkd(tmp, "train", "--dataset", "Texas", "--model", "gat", "--generations", "2",
                                      *short)
    g["train mini-batch"] = _gkd(tmp, "train", "--dataset", "Cora", "--self-distill", "--batch-size", "512",
                                  "--term-nodes", "600", *short)
    save = str(Path(tmp) / "model")
    g["distill default"] = _gkd(tmp, "distill", "--dataset", "Cora", *short, *teach, "--save", save)
    g["distill default artefact"] = _sha(Path(save))
    pred = Path(tmp) / "p.npy"
    subprocess.run([sys.executable, "-m", "gkd", "predict", "--model", save, "--out", str(pred)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    g["predict"] = _sha(pred)
    g["distill glnn inductive csbm"] = _gkd(tmp, "distill", "--dataset", "synthetic-csbm", "--dataset-arg",
                                            "num_nodes=2000", "--teacher", "sage", "--method", "glnn", "--setting",
                                            "inductive", "--teachers", "1", "--teacher-generations", "1", *short,
                                            *teach)
    g["distill terms student batch"] = _gkd(tmp, "distill", "--dataset", "CiteSeer", "--terms", "neighbour",
                                            "--student-batch-size", "256", "--teachers", "1",
                                            "--teacher-generations", "1", *short, *teach)
    book = str(Path(tmp) / "book")
    g["book"] = _gkd(tmp, "book", "--dataset", "Cora", "--teachers", "2", "--teacher-generations", "1", "--out",
                     book, "--teacher-arg", "epochs=6", "--teacher-arg", "patience=6", json_out=False)
    g["book files"] = _sha(Path(book))
    g["distill from book"] = _gkd(tmp, "distill", "--dataset", "Cora", "--book", book, *short)
    g["cnn mhgd"] = _gkd(tmp, "cnn", "--method", "mhgd+kd", "--runs", "1", "--epochs", "3", "--builder-epochs", "2")
    g["cnn amkd"] = _gkd(tmp, "cnn", "--method", "amkd", "--runs", "1", "--epochs", "3")

    # the Python API: fit -> predict, and run_training
    import gkd
    from gkd.datasets import load as load_dataset

    data = load_dataset("Cora")
    model = gkd.GNNToMLP(teacher="gcn", epochs=6, patience=6, teacher_args={"epochs": 6, "patience": 6},
                         teachers=2, teacher_generations=1, seed=3).fit(data)
    g["api GNNToMLP proba"] = hashlib.sha256(model.predict_proba(data.x).numpy().tobytes()).hexdigest()
    return g


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        g = runs(tmp)
    out.write_text(json.dumps(g, indent=1, sort_keys=True))
    if "--diff" in argv:
        before = json.loads(Path(argv[argv.index("--diff") + 1]).read_text())
        bad = []

        def walk(a, b, where):
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{where}.{k}")
            elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b)):
                    walk(x, y, f"{where}[{i}]")
            elif a != b:
                bad.append(f"{where}: {a!r} -> {b!r}")

        walk(before, g, "")
        print("\n".join(bad[:80]) or "identical, field by field")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
