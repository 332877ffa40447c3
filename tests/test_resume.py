"""A multi-seed run killed with SIGKILL and restarted with --resume ends with the same numbers as an uninterrupted one."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_one_line_error
from gkd.cli import main

TRAIN = ["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "sage", "--runs", "4",
         "--epochs", "40", "--patience", "40", "--quiet"]
DISTILL = ["distill", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--dataset-arg",
           "num_features=32", "--runs", "3", "--epochs", "30", "--teacher-arg", "epochs=30", "--quiet"]


def kill_once_written(argv: list[str], path) -> None:
    """Run ``gkd argv`` in a subprocess and SIGKILL it as soon as ``path`` exists (or after 240 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "gkd", *argv], cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def accuracies(path):
    r = json.loads(path.read_text())
    return r["test_mean"], r["val_mean"], [(x["seed"], x["val"], x["test"], x["best_epoch"]) for x in r["runs"]]


@pytest.mark.parametrize("command", [TRAIN, DISTILL], ids=["train", "distill"])
def test_sigkill_then_resume_gives_the_uninterrupted_result(command, tmp_path):
    ckpt = tmp_path / "ckpt"
    kill_once_written([*command, "--checkpoint-dir", str(ckpt), "--json", str(tmp_path / "never.json")],
                      ckpt / "run-0.json")
    assert (ckpt / "run-0.json").exists() and not (tmp_path / "never.json").exists()
    assert not (ckpt / f"run-{int(command[command.index('--runs') + 1]) - 1}.json").exists()
    saved = json.loads((ckpt / "run-0.json").read_text())
    assert main([*command, "--checkpoint-dir", str(ckpt), "--resume", "--json", str(tmp_path / "resumed.json")]) == 0
    assert json.loads((tmp_path / "resumed.json").read_text())["runs"][0] == saved  # reused, timings included
    assert main([*command, "--json", str(tmp_path / "straight.json")]) == 0
    assert accuracies(tmp_path / "resumed.json") == accuracies(tmp_path / "straight.json")


def test_checkpoint_dir_misuse(tmp_path, capsys):
    ckpt = tmp_path / "c"
    args = [*TRAIN[:-5], "--runs", "1", "--epochs", "2", "--quiet", "--checkpoint-dir", str(ckpt)]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds runs; pass --resume" in capsys.readouterr().err
    assert main([*args, "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "was made with another configuration (differs in ['lr'])" in err
    assert main([*TRAIN, "--resume"]) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err


def test_book_sigkill_then_resume_gives_the_uninterrupted_book(tmp_path):
    """`gkd book --teachers 3` killed after its first teacher: --resume trains only the others; same arrays."""
    from gkd.book import open_book

    book = ["book", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--dataset-arg",
            "num_features=32", "--teachers", "3", "--teacher-arg", "epochs=30", "--quiet"]
    ckpt = tmp_path / "ckpt"
    kill_once_written([*book, "--checkpoint-dir", str(ckpt), "--out", str(tmp_path / "never")],
                      ckpt / "teacher-0-0.npz")
    assert (ckpt / "teacher-0-0.npz").exists() and not (tmp_path / "never").exists()
    assert not (ckpt / "teacher-0-2.npz").exists()
    first = (ckpt / "teacher-0-0.npz").stat().st_mtime_ns
    assert main([*book, "--checkpoint-dir", str(ckpt), "--resume", "--out", str(tmp_path / "resumed")]) == 0
    assert (ckpt / "teacher-0-0.npz").stat().st_mtime_ns == first  # loaded, not trained and saved again
    assert (ckpt / "teacher-0-2.npz").exists()
    assert main([*book, "--out", str(tmp_path / "straight")]) == 0
    arrays = [{k: v["sha256"] for k, v in open_book(tmp_path / b).manifest["arrays"].items()}
              for b in ("resumed", "straight")]
    assert arrays[0] == arrays[1]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_pickle_bearing_teacher_checkpoint_is_never_unpickled(tmp_path):
    import numpy as np

    from gkd.train.checkpoint import RunCheckpoint

    ckpt = RunCheckpoint(tmp_path / "c", {"command": "book"})
    marker = tmp_path / "pwned"
    np.savez(tmp_path / "c" / "teacher-0-0.npz", record=np.array([_Evil(str(marker))], dtype=object))
    assert ckpt.teacher(0, 0) is None and not marker.exists()  # refused (then retrained), nothing executed
