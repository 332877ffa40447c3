"""Resumable multi-seed runs: each finished seed is written to ``DIR/run-R.json`` (atomically) as soon as it ends.

A run killed at any moment (SIGKILL included) and restarted with ``--resume`` loads the finished seeds, recomputes
only the rest, and — because a seed's result depends only on the seed (CPU, same thread count) — ends with the same
numbers as an uninterrupted run (tested). The unfinished seed is recomputed from its start, not from mid-training.
``DIR/config.json`` pins the configuration: resuming with a different one is refused, and so is a directory holding
runs but no ``config.json``. Each record carries the sha256 of that configuration (``config_sha256``) and is checked
when it is reused: a record of another configuration, or one whose accuracies are not numbers in [0, 1], is refused.

Book making saves each trained teacher instead (``DIR/teacher-R-J.npz``: its knowledge arrays, weights and record,
pickle-free), so a resumed ``gkd book --teachers K`` trains only the teachers that were not finished.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, check
from ..io import atomic_write_bytes, read_json, read_npz, write_json


_GKD_FILE = re.compile(r"run-\d+\.json|teacher-\d+-\d+\.npz")  # what save() and save_teacher() write


def config_sha256(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a configuration, without ``root`` (data may move between runs)."""
    canon = json.dumps({k: v for k, v in config.items() if k != "root"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def _scores_ok(record: dict, required: tuple[str, ...] = ("val", "test")) -> str | None:
    """Why ``record``'s accuracies are wrong, or None: the ``required`` ones and any other field named ``*test*`` or
    ``*val*`` (``teacher_test``, ``test_ind``, a list such as ``generation_val``) must be numbers in [0, 1]."""
    for k in required:
        if not _fraction(record.get(k)):
            return f"{k}={record.get(k)!r}"
    for k, v in record.items():
        if {"test", "val"} & set(k.split("_")) and not (v is None or _fraction(v) or (
                isinstance(v, list) and all(_fraction(x) for x in v))):
            return f"{k}={v!r:.40}"
    return None


def _not_finite(value: Any, name: str = "") -> str | None:
    """The first NaN or infinite number in a JSON record (``name=value``), or None (Python's json reads NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name or 'a value'}={value!r}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        bad = _not_finite(v, f"{name}.{k}" if name and isinstance(k, str) else name or str(k))
        if bad is not None:
            return bad
    return None


class RunCheckpoint:
    def __init__(self, directory: str | Path | None, config: dict[str, Any], resume: bool = False) -> None:
        check(directory is not None or not resume, "--resume needs --checkpoint-dir (where the finished runs are)",
              ConfigError)
        self.dir = Path(directory) if directory is not None else None
        self.config_sha256: str | None = None
        if self.dir is None:
            return
        config = json.loads(json.dumps(config))  # what the file will hold (tuples become lists)
        self.config_sha256 = config_sha256(config)
        check(not self.dir.exists() or self.dir.is_dir(),
              f"--checkpoint-dir {str(self.dir)!r} exists and is not a directory; expected a directory (gkd creates it)",
              ConfigError)
        try:  # before any training: a run's result would otherwise be lost when its record cannot be written
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".gkd-write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"--checkpoint-dir {str(self.dir)!r} cannot be written ({e.strerror}); "
                              "expected a writable directory") from None
        pinned = self.dir / "config.json"
        if pinned.exists() or pinned.is_symlink():
            try:  # a FIFO or a link to /dev/zero here would hang or fill memory: regular files only
                old = read_json(pinned, f"{str(pinned)!r}", error=ConfigError)
            except (OSError, ConfigError):
                old = None
            check(isinstance(old, dict) and "command" in old, f"{str(pinned)!r} "
                  "is not a gkd checkpoint configuration (gkd writes a JSON object with a 'command'); choose another "
                  "directory", ConfigError)
            check(resume, f"checkpoint dir {str(self.dir)!r} already holds runs; pass --resume to continue them or "
                  "choose another directory", ConfigError)
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k) and k != "root")
            check(not diff, f"checkpoint dir {str(self.dir)!r} was made with another configuration (differs in "
                  f"{diff}); resume with the same options or use another directory", ConfigError)
        else:
            # runs without the configuration they were made with cannot be checked: never reuse (nor mix with) them
            found = sorted(p.name for p in self.dir.iterdir() if _GKD_FILE.fullmatch(p.name)) \
                if self.dir.is_dir() else []
            check(not found, f"checkpoint dir {str(self.dir)!r} holds gkd runs ({', '.join(found[:3])}"
                  f"{', …' if len(found) > 3 else ''}) but no config.json to check them against; choose another "
                  "directory", ConfigError)
            write_json(pinned, config)

    def done(self, r: int) -> dict | None:
        """The saved result of run ``r``, or None. A file that does not parse is ignored (its run is redone); one that
        parses but is not this configuration's record of run ``r`` with accuracies in [0, 1] is refused."""
        if self.dir is None:
            return None
        path = self.dir / f"run-{r}.json"
        try:
            record = read_json(path, f"checkpoint record {str(path)!r}", error=ConfigError)
        except (OSError, ConfigError):  # absent, not a plain file, truncated or garbled: redo the run
            return None
        if record is None:
            return None
        where = f"checkpoint record {str(path)!r}"
        check(isinstance(record, dict), f"{where} is a JSON {type(record).__name__}; expected a run record (an "
              "object); remove it to redo the run", ConfigError)
        theirs = str(record.get("config_sha256"))[:12]
        check(record.get("config_sha256") == self.config_sha256, f"{where} was written for another configuration "
              f"or by an older gkd (config_sha256 {theirs}…, this run {self.config_sha256[:12]}…); remove it to redo "
              "the run", ConfigError)
        check(record.get("run") == r and not isinstance(record.get("run"), bool), f"{where} holds run "
              f"{record.get('run')!r}; expected run {r}", ConfigError)
        bad = _scores_ok(record)
        check(bad is None, f"{where} has {bad}; expected accuracies in [0, 1]; remove it to redo the run", ConfigError)
        bad = _not_finite(record)
        check(bad is None, f"{where} has {bad}; expected finite numbers (gkd writes no NaN or infinity); remove it to "
              "redo the run", ConfigError)
        return {k: v for k, v in record.items() if k != "config_sha256"}

    def save(self, r: int, run: dict) -> None:
        if self.dir is not None:
            write_json(self.dir / f"run-{r}.json", {**run, "config_sha256": self.config_sha256})

    def teacher(self, r: int, j: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict] | None:
        """Teacher ``j`` of run ``r`` as saved by :meth:`save_teacher`: (knowledge arrays, weights, record), or None.
        A file that does not load, or lacks what a teacher needs, is ignored (that teacher is trained again)."""
        if self.dir is None:
            return None
        path = self.dir / f"teacher-{r}-{j}.npz"
        if not path.is_file():
            return None
        try:  # through read_npz: a zip bomb under this name is refused before it expands
            arrays = {k: torch.from_numpy(v.copy()) for k, v in read_npz(path, "teacher file").items()}
            record = json.loads(arrays.pop("record").numpy().tobytes())
        except Exception:  # truncated zip, bad JSON, no record: recompute
            return None
        know = {k[2:]: v for k, v in arrays.items() if k.startswith("k/")}
        weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w/")}
        finite = all(bool(torch.isfinite(v).all()) for v in arrays.values() if v.is_floating_point())
        if not (isinstance(record, dict) and record.pop("config_sha256", None) == self.config_sha256
                and _scores_ok(record, ("val",)) is None and _not_finite(record) is None and finite and weights
                and _knowledge_ok(know)):
            return None
        return know, weights, record

    def save_teacher(self, r: int, j: int, knowledge: dict[str, torch.Tensor | None],
                     weights: dict[str, torch.Tensor], record: dict) -> None:
        if self.dir is None:
            return
        arrays = {f"k/{k}": v.detach().cpu().numpy() for k, v in knowledge.items() if v is not None}
        arrays |= {f"w/{k}": v.detach().cpu().numpy() for k, v in weights.items()}
        record = {**record, "config_sha256": self.config_sha256}
        arrays["record"] = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.dir / f"teacher-{r}-{j}.npz", buf.getvalue())


def _knowledge_ok(know: dict[str, torch.Tensor]) -> bool:
    """A teacher's saved knowledge has what ``teacher_stage`` builds its Knowledge from, one row per node."""
    logits, mask = know.get("logits"), know.get("mask")
    if logits is None or mask is None or logits.dim() != 2 or not logits.is_floating_point():
        return False
    n = logits.size(0)
    if mask.dim() != 1 or mask.dtype != torch.bool or mask.numel() != n:
        return False
    hidden, rel = know.get("hidden"), know.get("reliability")
    return ((hidden is None or (hidden.dim() == 2 and hidden.size(0) == n and hidden.is_floating_point()))
            and (rel is None or (rel.dim() == 1 and rel.numel() == n and rel.is_floating_point())))
