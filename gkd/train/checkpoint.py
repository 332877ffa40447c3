"""Resumable multi-seed runs: each finished seed is written to ``DIR/run-R.json`` (atomically) as soon as it ends.

A run killed at any moment (SIGKILL included) and restarted with ``--resume`` loads the finished seeds, recomputes
only the rest, and — because a seed's result depends only on the seed (CPU, same thread count) — ends with the same
numbers as an uninterrupted run (tested). The unfinished seed is recomputed from its start, not from mid-training.
``DIR/config.json`` pins the configuration: resuming with a different one is refused.

Book making saves each trained teacher instead (``DIR/teacher-R-J.npz``: its knowledge arrays, weights and record,
pickle-free), so a resumed ``gkd book --teachers K`` trains only the teachers that were not finished.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, check
from ..io import atomic_write_bytes, write_json


class RunCheckpoint:
    def __init__(self, directory: str | Path | None, config: dict[str, Any], resume: bool = False) -> None:
        check(directory is not None or not resume, "--resume needs --checkpoint-dir (where the finished runs are)",
              ConfigError)
        self.dir = Path(directory) if directory is not None else None
        if self.dir is None:
            return
        pinned = self.dir / "config.json"
        config = json.loads(json.dumps(config))  # what the file will hold (tuples become lists)
        if pinned.is_file():
            check(resume, f"checkpoint dir {str(self.dir)!r} already holds runs; pass --resume to continue them or "
                  "choose another directory", ConfigError)
            try:
                old = json.loads(pinned.read_text())
            except json.JSONDecodeError:
                raise ConfigError(f"{str(pinned)!r} is not valid JSON; remove the checkpoint dir") from None
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k) and k != "root")
            check(not diff, f"checkpoint dir {str(self.dir)!r} was made with another configuration (differs in "
                  f"{diff}); resume with the same options or use another directory", ConfigError)
        else:
            write_json(pinned, config)

    def done(self, r: int) -> dict | None:
        """The saved result of run ``r``, or None. A file that does not parse is ignored (its run is redone)."""
        if self.dir is None:
            return None
        path = self.dir / f"run-{r}.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except json.JSONDecodeError:
            return None

    def save(self, r: int, run: dict) -> None:
        if self.dir is not None:
            write_json(self.dir / f"run-{r}.json", run)

    def teacher(self, r: int, j: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict] | None:
        """Teacher ``j`` of run ``r`` as saved by :meth:`save_teacher`: (knowledge arrays, weights, record), or None.
        A file that does not load is ignored (that teacher is trained again)."""
        if self.dir is None:
            return None
        path = self.dir / f"teacher-{r}-{j}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: torch.from_numpy(f[k].copy()) for k in f.files}
            record = json.loads(arrays.pop("record").numpy().tobytes())
        except Exception:  # truncated zip, bad JSON: recompute
            return None
        know = {k[2:]: v for k, v in arrays.items() if k.startswith("k/")}
        weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w/")}
        return know, weights, record

    def save_teacher(self, r: int, j: int, knowledge: dict[str, torch.Tensor | None],
                     weights: dict[str, torch.Tensor], record: dict) -> None:
        if self.dir is None:
            return
        arrays = {f"k/{k}": v.detach().cpu().numpy() for k, v in knowledge.items() if v is not None}
        arrays |= {f"w/{k}": v.detach().cpu().numpy() for k, v in weights.items()}
        arrays["record"] = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.dir / f"teacher-{r}-{j}.npz", buf.getvalue())
