r"""Knowledge books (BookKD, Knowledge-Based Systems 2023): a teacher's knowledge made once, learned from many times.

A book is a directory::

    BOOK/manifest.json       format, dataset (name, nodes, classes, split hash), setting, teachers, sha256 per array
    BOOK/logits.npy          [K, N, C] each teacher's logits (rows of unobserved nodes are zero)
    BOOK/soft_labels.npy     [N, C] the ensemble's mean softmax(logits / T)
    BOOK/mask.npy            [N] nodes the setting lets a student learn from (uint8)
    BOOK/hidden.npy          [N, H] first teacher's last hidden layer (optional)
    BOOK/reliability.npy     [N] KRD entropy change under feature noise (optional)

Arrays are plain ``.npy`` (memory-mapped on read, ``allow_pickle=False``); the manifest is JSON; nothing is pickled.
:func:`write_book` builds the directory under a temporary name and renames it into place, so a write killed at any
point leaves nothing at ``BOOK`` that loads. :func:`open_book` checks the format version, every array's shape, dtype
and sha256, and, given the data, its name, node count, class count and split.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from . import __version__
from .distill.knowledge import Knowledge
from .errors import ConfigError, GKDError, check

FORMAT = 1
KIND = "gkd-book"


class BookError(GKDError):
    """A book that is missing, damaged, or made for other data."""


def split_hash(data: Data) -> str:
    """sha256 over the node count and the train/val/test masks: two splits share it only if they are equal."""
    h = hashlib.sha256(str(data.num_nodes).encode())
    for name in ("train_mask", "val_mask", "test_mask"):
        h.update(np.packbits(data[name].cpu().numpy().astype(np.uint8)).tobytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Book:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]  # memory-mapped, read-only

    @property
    def num_nodes(self) -> int:
        return int(self.manifest["dataset"]["num_nodes"])

    @property
    def num_classes(self) -> int:
        return int(self.manifest["dataset"]["num_classes"])

    @property
    def num_teachers(self) -> int:
        return int(self.arrays["logits"].shape[0])

    def knowledge(self, nodes: slice | np.ndarray | None = None) -> Knowledge:
        """The ensemble's knowledge (mean probability of the teachers, as a live ensemble gives), optionally for a
        subset of rows only: a process reading a shard never loads the rest of the book."""
        idx = slice(None) if nodes is None else nodes
        logits = torch.from_numpy(np.array(self.arrays["logits"][:, idx], dtype=np.float32))  # copy: mmap is read-only
        probs = F.softmax(logits, dim=-1).mean(0)
        merged = logits[0] if logits.size(0) == 1 else probs.clamp_min(1e-12).log()
        mask = torch.from_numpy(np.array(self.arrays["mask"][idx], dtype=bool))
        opt = {k: torch.from_numpy(np.array(self.arrays[k][idx], dtype=np.float32))
               for k in ("hidden", "reliability") if k in self.arrays}
        return Knowledge(merged, mask, opt.get("hidden"), opt.get("reliability"))

    def check_data(self, data: Data) -> "Book":
        ds = self.manifest["dataset"]
        name = getattr(getattr(data, "meta", None), "name", None)
        check(name is None or name == ds["name"], f"book {str(self.path)!r} was made for dataset {ds['name']!r}, "
              f"not {name!r}", BookError)
        check(data.num_nodes == ds["num_nodes"], f"book {str(self.path)!r} covers {ds['num_nodes']} nodes; the graph "
              f"has {data.num_nodes}", BookError)
        c = data.meta.num_classes if getattr(data, "meta", None) is not None else int(data.y.max()) + 1
        check(c == ds["num_classes"], f"book {str(self.path)!r} has {ds['num_classes']} classes; the dataset has {c}",
              BookError)
        check(split_hash(data) == ds["split_sha256"], f"book {str(self.path)!r} was made for another split of "
              f"{ds['name']} (split hash {ds['split_sha256'][:12]}…, data {split_hash(data)[:12]}…)", BookError)
        return self


def write_book(out: str | os.PathLike, data: Data, teacher_logits: list[Tensor], mask: Tensor, *,
               temperature: float = 1.0, hidden: Tensor | None = None, reliability: Tensor | None = None,
               teachers: list[dict] | None = None, setting: dict | None = None, float16: bool = False,
               teacher_scores: dict | None = None, overwrite: bool = False) -> Path:
    """Write a book for ``data`` from ``K`` teachers' logits (``[N, C]`` each); atomic (temporary dir + rename)."""
    out = Path(out)
    check(len(teacher_logits) >= 1, "a book needs at least one teacher (K >= 1); got 0", ConfigError)
    check(temperature > 0, f"book temperature={temperature}; expected > 0", ConfigError)
    check(not out.exists() or overwrite, f"{str(out)!r} already exists; pass --overwrite (overwrite=True) to replace "
          "it", ConfigError)
    n = data.num_nodes
    for t in teacher_logits:
        check(tuple(t.shape)[0] == n, f"teacher logits have {t.shape[0]} rows; the graph has {n} nodes", ConfigError)
    logits = torch.stack([t.detach().float().cpu() for t in teacher_logits])
    float_t = np.float16 if float16 else np.float32
    arrays: dict[str, np.ndarray] = {
        "logits": logits.numpy().astype(float_t),
        "soft_labels": F.softmax(logits / temperature, dim=-1).mean(0).numpy().astype(float_t),
        "mask": mask.cpu().numpy().astype(np.uint8),
    }
    if hidden is not None:
        arrays["hidden"] = hidden.detach().float().cpu().numpy().astype(float_t)
    if reliability is not None:
        arrays["reliability"] = reliability.detach().float().cpu().numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        entries = {}
        for name, arr in arrays.items():
            path = tmp / f"{name}.npy"
            with open(path, "wb") as f:
                np.save(f, arr, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            entries[name] = {"file": path.name, "shape": list(arr.shape), "dtype": str(arr.dtype),
                             "sha256": _sha256(path)}
        meta = getattr(data, "meta", None)
        manifest = {
            "kind": KIND, "format": FORMAT, "gkd": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "dataset": {"name": getattr(meta, "name", "custom"), "num_nodes": n, "num_classes": int(logits.size(-1)),
                        "split": getattr(meta, "split", None), "split_index": getattr(meta, "split_index", 0),
                        "split_sha256": split_hash(data)},
            "setting": setting or {"name": "transductive"}, "temperature": temperature,
            "teachers": teachers or [{} for _ in teacher_logits], "teacher_scores": teacher_scores or {},
            "arrays": entries,
        }
        with open(tmp / "manifest.json", "w") as f:  # written last: a directory without it is not a book
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = None
        if out.exists():  # move the old book aside first, so no moment holds a half-replaced one
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
        os.rename(tmp, out)
        _fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def open_book(path: str | os.PathLike, data: Data | None = None, *, verify: bool = True) -> Book:
    """Open and validate a book; with ``data``, also check it was made for that dataset and split."""
    path = Path(path)
    check(path.is_dir(), f"book {str(path)!r} does not exist or is not a directory", BookError)
    mpath = path / "manifest.json"
    check(mpath.is_file(), f"{str(path)!r} is not a gkd book (no manifest.json; an interrupted write leaves none)",
          BookError)
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BookError(f"book manifest {str(mpath)!r} is not valid JSON ({e})") from None
    check(isinstance(manifest, dict) and manifest.get("kind") == KIND, f"{str(mpath)!r} is not a gkd book manifest",
          BookError)
    fmt = manifest.get("format")
    check(isinstance(fmt, int) and fmt <= FORMAT, f"book {str(path)!r} has format {fmt!r}; this gkd "
          f"({__version__}) reads formats up to {FORMAT} (upgrade gkd)", BookError)
    arrays = {}
    for name, entry in manifest.get("arrays", {}).items():
        file = path / entry["file"]
        check(file.is_file() and file.parent == path, f"book array {name!r} ({str(file)!r}) is missing", BookError)
        if verify:
            check(_sha256(file) == entry["sha256"], f"book array {str(file)!r} fails its sha256 check (damaged or "
                  "edited); rebuild the book", BookError)
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise BookError(f"book array {str(file)!r} cannot be read ({e})") from None
        check(list(arr.shape) == entry["shape"] and str(arr.dtype) == entry["dtype"],
              f"book array {str(file)!r} is {list(arr.shape)} {arr.dtype}; the manifest says {entry['shape']} "
              f"{entry['dtype']}", BookError)
        arrays[name] = arr
    missing = {"logits", "soft_labels", "mask"} - set(arrays)
    check(not missing, f"book {str(path)!r} lacks array(s) {sorted(missing)}", BookError)
    book = Book(path, manifest, arrays)
    return book.check_data(data) if data is not None else book
