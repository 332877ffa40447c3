"""A multi-seed run killed with SIGKILL and restarted with --resume ends with the same numbers as an uninterrupted one."""
from __future__ import annotations

import json

import pytest

import forked
from conftest import REPO, assert_one_line_error
from gkd.cli import main

TRAIN = ["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "sage", "--runs", "4",
         "--epochs", "40", "--patience", "40", "--quiet"]
DISTILL = ["distill", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--dataset-arg",
           "num_features=32", "--runs", "3", "--epochs", "30", "--teacher-arg", "epochs=30", "--teachers", "1",
           "--quiet"]  # one teacher of two born-again generations per seed: the resume path, a third of the time


def kill_once_written(argv: list[str], path) -> None:
    """Run ``gkd argv`` in another process and SIGKILL it as soon as ``path`` exists (or after 240 s)."""
    forked.kill_when(forked.start(argv, cwd=REPO), path.exists)


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
    assert len(saved.pop("config_sha256")) == 64  # the record's configuration, checked on resume, not reported
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


SMALL = [*TRAIN[:-5], "--runs", "1", "--epochs", "2", "--quiet"]


@pytest.mark.parametrize("leftover", ["run-0.json", "teacher-0-0.npz"])
def test_checkpoint_dir_with_runs_but_no_config_is_refused(leftover, tmp_path, capsys):
    """Runs whose configuration is unknown are neither reused (they may be another model's) nor mixed with new ones."""
    from gkd.errors import ConfigError
    from gkd.train.checkpoint import RunCheckpoint

    ckpt = tmp_path / "c"
    ckpt.mkdir()
    (ckpt / leftover).write_text('{"run": 0, "seed": 0, "val": 0.99, "test": 0.99}')
    for resume in (False, True):
        with pytest.raises(ConfigError, match="but no config.json to check them against"):
            RunCheckpoint(ckpt, {"command": "train"}, resume)
        assert main([*SMALL, "--checkpoint-dir", str(ckpt), *(["--resume"] if resume else [])]) == 2
        err = capsys.readouterr().err
        assert_one_line_error(err)
        assert leftover in err and "but no config.json" in err
    assert sorted(p.name for p in ckpt.iterdir()) == [leftover]  # nothing written next to them
    users = tmp_path / "u"
    users.mkdir()
    (users / "notes.txt").write_text("x")
    (users / "run-summary.json").write_text("{}")  # not a name gkd gives a run
    RunCheckpoint(users, {"command": "train"})  # a folder without gkd's files is fine
    assert (users / "config.json").is_file()


def test_checkpoint_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "c"
    f.write_text("mine")
    assert main([*SMALL, "--checkpoint-dir", str(f)]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "exists and is not a directory" in err and f.read_text() == "mine"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text("[1, 2]")
    assert main([*SMALL, "--checkpoint-dir", str(tmp_path / "d"), "--resume"]) == 2
    assert "is not a gkd checkpoint configuration" in capsys.readouterr().err


RECORD = {"run": 0, "seed": 0, "split": 0, "val": 0.8, "test": 0.75, "train": 0.9, "best_epoch": 3,
          "teacher_test": 0.8, "generation_val": [0.7, 0.8]}


@pytest.mark.parametrize("edit,says", [
    (lambda r: r.update(test=7.5), "has test=7.5; expected accuracies in [0, 1]"),
    (lambda r: r.update(val=float("nan")), "has val=nan"),
    (lambda r: r.update(test="0.9"), "has test='0.9'"),
    (lambda r: r.pop("test"), "has test=None"),
    (lambda r: r.update(teacher_test=-1), "has teacher_test=-1"),
    (lambda r: r.update(test_ind=True), "has test_ind=True"),
    (lambda r: r.update(generation_val=[0.5, 2]), "has generation_val=[0.5, 2]"),
    (lambda r: r.update(run=1), "holds run 1; expected run 0"),
    (lambda r: r.update(config_sha256="0" * 64), "was written for another configuration"),
    (lambda r: r.pop("config_sha256"), "was written for another configuration"),
    (lambda r: r.update(seconds=float("nan")), "has seconds=nan; expected finite numbers"),
    (lambda r: r.update(guard={"gain": float("-inf")}), "has guard.gain=-inf; expected finite numbers"),
], ids=["test>1", "val-nan", "test-str", "no-test", "teacher_test<0", "bool", "list", "run", "hash", "no-hash",
        "seconds-nan", "nested-inf"])
def test_resumed_record_is_checked(edit, says, tmp_path):
    from gkd.errors import ConfigError
    from gkd.train.checkpoint import RunCheckpoint

    ckpt = RunCheckpoint(tmp_path, {"command": "train", "lr": 0.01})
    ckpt.save(0, RECORD)
    assert ckpt.done(0) == RECORD  # the stored hash is not part of the result
    r = json.loads((tmp_path / "run-0.json").read_text())
    assert r["config_sha256"] == ckpt.config_sha256
    edit(r)
    (tmp_path / "run-0.json").write_text(json.dumps(r))
    with pytest.raises(ConfigError, match="checkpoint record") as e:
        ckpt.done(0)
    assert says in str(e.value) and str(tmp_path / "run-0.json") in str(e.value) and "\n" not in str(e.value)


def test_record_of_another_configuration_and_garbage(tmp_path):
    from gkd.errors import ConfigError
    from gkd.train.checkpoint import RunCheckpoint

    RunCheckpoint(tmp_path / "a", {"command": "train", "lr": 0.01}).save(0, RECORD)
    other = RunCheckpoint(tmp_path / "b", {"command": "train", "lr": 0.5})
    (tmp_path / "b" / "run-0.json").write_bytes((tmp_path / "a" / "run-0.json").read_bytes())  # copied by hand
    with pytest.raises(ConfigError, match="was written for another configuration"):
        other.done(0)
    (tmp_path / "b" / "run-0.json").write_text("[]")
    with pytest.raises(ConfigError, match="is a JSON list; expected a run record"):
        other.done(0)
    (tmp_path / "b" / "run-0.json").write_text('{"run": 0, "val": 0.')  # does not parse: the run is redone
    assert other.done(0) is None
    moved = RunCheckpoint(tmp_path / "a", {"command": "train", "lr": 0.01, "root": "/elsewhere"}, resume=True)
    assert moved.done(0) == RECORD  # the data root may move between runs


def test_cli_refuses_an_edited_record(tmp_path, capsys):
    ckpt = tmp_path / "c"
    args = [*SMALL, "--checkpoint-dir", str(ckpt)]
    assert main(args) == 0
    capsys.readouterr()
    r = json.loads((ckpt / "run-0.json").read_text())
    r["test"] = 7.5  # printed 288.00 before
    (ckpt / "run-0.json").write_text(json.dumps(r))
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "has test=7.5; expected accuracies in [0, 1]" in err


def test_damaged_teacher_checkpoints_are_retrained(tmp_path, small_graph):
    """A teacher file that lacks its record, weights or knowledge (or is another configuration's) is trained again,
    never a KeyError; a sound one is loaded."""
    import numpy as np
    import torch

    from gkd.pipeline.gnn2mlp import DistillConfig, teacher_stage
    from gkd.train.checkpoint import RunCheckpoint

    cfg = DistillConfig(teachers=1, teacher_args={"epochs": 5})
    ckpt = RunCheckpoint(tmp_path / "c", {"command": "book", **cfg.to_dict()})
    good = teacher_stage(cfg, small_graph, 0, checkpoint=ckpt)
    f = tmp_path / "c" / "teacher-0-0.npz"
    sound = dict(np.load(f, allow_pickle=False))
    assert ckpt.teacher(0, 0)[2] == good.teachers[0]  # loaded, its record as it was
    rec = json.loads(sound["record"].tobytes())
    as_bytes = lambda obj: np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)  # noqa: E731
    damaged = {
        "garbage": None,
        "no record": {k: v for k, v in sound.items() if k != "record"},
        "record a list": {**sound, "record": as_bytes([])},
        "record without val": {**sound, "record": as_bytes({k: v for k, v in rec.items() if k != "val"})},
        "val out of range": {**sound, "record": as_bytes({**rec, "val": 7.5})},
        "other configuration": {**sound, "record": as_bytes({**rec, "config_sha256": "0" * 64})},
        "no weights": {k: v for k, v in sound.items() if not k.startswith("w/")},
        "no logits": {k: v for k, v in sound.items() if k != "k/logits"},
        "mask rows": {**sound, "k/mask": sound["k/mask"][:-1]},
        "NaN weights": {k: (v * np.nan if k.startswith("w/") else v) for k, v in sound.items()},
        "inf logits": {**sound, "k/logits": np.full_like(sound["k/logits"], np.inf)},
        "NaN seconds": {**sound, "record": as_bytes({**rec, "seconds": float("nan")})},
    }
    for case, arrays in damaged.items():
        if arrays is None:
            f.write_bytes(b"[]")
        else:
            np.savez(f, **arrays)
        assert ckpt.teacher(0, 0) is None, case
        stage = teacher_stage(cfg, small_graph, 0, checkpoint=ckpt)  # retrained, and saved again
        assert torch.equal(stage.teacher_logits[0], good.teacher_logits[0]), case
        assert ckpt.teacher(0, 0) is not None, case


def test_checkpoint_dir_that_cannot_be_written_or_holds_a_users_config(tmp_path, capsys, monkeypatch):
    """Refused before training (a run's record would be lost after it trained); a user's config.json is not gkd's."""
    import gkd.pipeline.train as train

    monkeypatch.setattr(train, "train_run", lambda *a, **k: pytest.fail("a model trained"))
    (tmp_path / "file").write_text("mine")
    assert main([*SMALL, "--checkpoint-dir", str(tmp_path / "file" / "ck")]) == 2  # root ignores chmod; this fails
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "cannot be written (Not a directory); expected a writable directory" in err
    users = tmp_path / "users"
    users.mkdir()
    (users / "config.json").write_text('{"my": "own"}')
    for extra in ([], ["--resume"]):
        assert main([*SMALL, "--checkpoint-dir", str(users), *extra]) == 2
        assert "is not a gkd checkpoint configuration (gkd writes a JSON object with a 'command')" in \
            capsys.readouterr().err
    assert (users / "config.json").read_text() == '{"my": "own"}' and sorted(p.name for p in users.iterdir()) == [
        "config.json"]
