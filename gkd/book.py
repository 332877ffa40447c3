r"""Knowledge books (BookKD, Knowledge-Based Systems 2023): a teacher's knowledge made once, learned from many times.

A book is a directory::

    BOOK/manifest.json       format, dataset (name, nodes, classes, split and graph hashes), setting, teachers,
                             sha256 per array
    BOOK/logits.npy          [K, N, C] each teacher's logits (rows of unobserved nodes are zero)
    BOOK/soft_labels.npy     [N, C] the ensemble's mean softmax(logits / T)
    BOOK/mask.npy            [N] nodes the setting lets a student learn from (uint8)
    BOOK/hidden.npy          [N, H] first teacher's last hidden layer (optional)
    BOOK/reliability.npy     [N] KRD entropy change under feature noise (optional)

Arrays are plain ``.npy`` (memory-mapped on read, ``allow_pickle=False``); the manifest is JSON; nothing is pickled.
:func:`write_book` builds the directory under a temporary name (``.BOOK.tmp-<pid>-<hex>``, removed by a later write
once that process is gone) and renames it into place, so a write killed at any point leaves nothing at ``BOOK`` that
loads; ``overwrite`` replaces only an existing book, never a user's file or folder. :func:`open_book` checks the
manifest's schema, the format version, every array's shape, dtype and sha256, and, given the data, its name, node
count, class count, split and graph (a sha256 over features, edges and labels).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from .version import __version__
from .datasets.fingerprint import graph_hash, split_hash
from .distill.knowledge import Knowledge
from .distill.losses import check_temperature
from .errors import ConfigError, GKDError, check
from .io import is_sha256, read_regular_file, sha256_file
from .limits import MAX_MANIFEST_BYTES

FORMAT = 2  # 2: the manifest fingerprints the graph (dataset.graph_sha256)
KIND = "gkd-book"
ARRAYS = ("logits", "soft_labels", "mask", "hidden", "reliability")  # the last two are optional
_MAX_MANIFEST_BYTES = MAX_MANIFEST_BYTES  # a manifest is a few kB; a bigger file is not one of gkd's
_NPY_HEADER_BYTES = 1 << 16  # an .npy file's header, beyond the array's bytes (numpy writes 128 or so)


class BookError(GKDError):
    """A book that is missing, damaged, or made for other data."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process (or a PID we cannot ask about)
        return True
    return True


def _only_book_files(path: Path) -> bool:
    """``path`` holds nothing but plain files with the names gkd gives a book's files."""
    names = {"manifest.json", *(f"{a}.npy" for a in ARRAYS)}
    return all(p.name in names and not p.is_symlink() and p.is_file() for p in path.iterdir())


def _remove_stale_temporaries(out: Path, kind: str = "tmp") -> None:
    """Remove the ``.NAME.<kind>-<pid>-<hex>`` folders (``tmp``: a new book; ``old``: the book it replaced) that a
    killed writer of ``out`` left behind, once its PID no longer runs. Only folders of exactly that pattern that hold
    only a book's files are touched."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.{kind}-(\d+)-[0-9a-f]{{8}}")
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = pattern.fullmatch(p.name)
        if m is None or p.is_symlink() or not p.is_dir() or _pid_alive(int(m.group(1))):
            continue
        try:
            if _only_book_files(p):
                shutil.rmtree(p)
        except OSError:  # a concurrent cleaner got there first, or no permission: harmless
            pass


def _is_int(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


_DTYPES = {"logits": {"float16", "float32"}, "soft_labels": {"float16", "float32"}, "mask": {"uint8", "bool"},
           "hidden": {"float16", "float32"}, "reliability": {"float32"}}


def _read_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest of the book at ``path`` if it is a JSON object of kind gkd-book (any format), else
    BookError."""
    mpath = path / "manifest.json"
    check(mpath.is_file() and not mpath.is_symlink(), f"{str(path)!r} is not a gkd book (no manifest.json; an "
          "interrupted write leaves none)", BookError)
    check(mpath.stat().st_size <= _MAX_MANIFEST_BYTES, f"{str(mpath)!r} is not a gkd book manifest (over "
          f"{_MAX_MANIFEST_BYTES} bytes)", BookError)
    try:  # read once, as a regular file: it may have become a FIFO or a link since the look above
        raw = read_regular_file(mpath, _MAX_MANIFEST_BYTES, f"book manifest {str(mpath)!r}", error=BookError)
    except FileNotFoundError:
        raise BookError(f"{str(path)!r} is not a gkd book (no manifest.json; an interrupted write leaves none)") \
            from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise BookError(f"book manifest {str(mpath)!r} is not valid JSON ({reason})") from None
    check(isinstance(manifest, dict) and manifest.get("kind") == KIND, f"{str(mpath)!r} is not a gkd book manifest",
          BookError)
    return manifest


def validate_manifest(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check a book manifest's schema (the one place that does): types, the format version, array entries and how
    their shapes fit the node and class counts. Returns it unchanged; raises one BookError naming the first fault."""
    mpath = path / "manifest.json"

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise BookError(f"book manifest {str(mpath)!r} is damaged: {what}; rebuild the book")

    fmt = manifest.get("format")
    need(_is_int(fmt), f"format={fmt!r}; expected an integer")  # True is an int to Python, not a format
    check(fmt <= FORMAT, f"book {str(path)!r} has format {fmt!r}; this gkd ({__version__}) reads formats up to "
          f"{FORMAT} (upgrade gkd)", BookError)
    check(fmt == FORMAT, f"book {str(path)!r} has format {fmt}, which does not record which graph it was made on; "
          f"rebuild it with this gkd (gkd book ... --out {str(path)!r} --overwrite)", BookError)
    ds = manifest.get("dataset")
    need(isinstance(ds, dict), f"dataset is {type(ds).__name__}; expected an object")
    need(isinstance(ds.get("name"), str), f"dataset.name={ds.get('name')!r}; expected a string")
    for key in ("num_nodes", "num_classes"):
        need(_is_int(ds.get(key), 1), f"dataset.{key}={ds.get(key)!r}; expected an integer >= 1")
    for key in ("split_sha256", "graph_sha256"):
        need(is_sha256(ds.get(key)), f"dataset.{key}={ds.get(key)!r}; expected 64 hex digits")
    setting = manifest.get("setting")
    need(isinstance(setting, dict) and isinstance(setting.get("name", ""), str),
         f"setting={setting!r}; expected an object with a string 'name'")
    temp = manifest.get("temperature")
    need(isinstance(temp, (int, float)) and not isinstance(temp, bool) and math.isfinite(temp) and temp > 0,
         f"temperature={temp!r}; expected a number > 0")
    need(isinstance(manifest.get("teachers"), list), f"teachers={manifest.get('teachers')!r:.60}; expected a list")
    scores = manifest.get("teacher_scores", {})
    need(isinstance(scores, dict) and all(_is_fraction(v) for v in scores.values()),
         f"teacher_scores={scores!r:.80}; expected an object of scores in [0, 1]")
    for key in ("created", "gkd"):
        need(isinstance(manifest.get(key), str), f"{key}={manifest.get(key)!r}; expected a string")
    arrays = manifest.get("arrays")
    need(isinstance(arrays, dict), f"arrays is {type(arrays).__name__}; expected an object")
    n, c = ds["num_nodes"], ds["num_classes"]
    for name, e in arrays.items():
        need(name in ARRAYS, f"unknown array {name!r}; expected some of {list(ARRAYS)}")
        need(isinstance(e, dict), f"arrays.{name} is {type(e).__name__}; expected an object")
        # the file is named after its array: no path, no '..', so nothing outside the book is read
        need(e.get("file") == f"{name}.npy", f"arrays.{name}.file={e.get('file')!r}; expected '{name}.npy'")
        need(is_sha256(e.get("sha256")), f"arrays.{name}.sha256={e.get('sha256')!r}; expected 64 hex digits")
        need(isinstance(e.get("dtype"), str) and e["dtype"] in _DTYPES[name],
             f"arrays.{name}.dtype={e.get('dtype')!r}; expected one of {sorted(_DTYPES[name])}")
        shape = e.get("shape")
        need(isinstance(shape, list) and all(_is_int(d) for d in shape), f"arrays.{name}.shape={shape!r}; expected "
             "a list of sizes")
    missing = {"logits", "soft_labels", "mask"} - set(arrays)
    check(not missing, f"book {str(path)!r} lacks array(s) {sorted(missing)}", BookError)
    k = arrays["logits"]["shape"][0] if len(arrays["logits"]["shape"]) == 3 else None
    expected = {"logits": [k if k else "K >= 1", n, c], "soft_labels": [n, c], "mask": [n], "reliability": [n]}
    if "hidden" in arrays:
        h = arrays["hidden"]["shape"][1:2]
        expected["hidden"] = [n, h[0] if h and h[0] >= 1 else "H >= 1"]
    for name, e in arrays.items():
        need(e["shape"] == expected[name], f"arrays.{name}.shape={e['shape']}; expected {expected[name]} "
             f"(nodes {n}, classes {c})")
    return manifest


def check_overwritable(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an ``out`` that :func:`write_book` may not write: one that exists, unless ``overwrite`` and it is a gkd
    book (a directory holding only a book's files and a gkd-book manifest; any format). Call it before the costly
    work (training the teachers) too; ``write_book`` checks again just before replacing."""
    out = Path(out)
    if not os.path.lexists(out):
        return out
    check(overwrite, f"{str(out)!r} already exists; pass --overwrite (overwrite=True) to replace it", ConfigError)
    what = ("a symlink" if out.is_symlink() else "a directory" if out.is_dir() else "a file" if out.is_file()
            else "not a directory")
    if what == "a directory":
        try:
            _read_manifest(out)
            check(_only_book_files(out), "it holds files a book does not", BookError)
            return out
        except BookError as e:
            what = f"a directory that is not a gkd book ({e})"
    raise ConfigError(f"--overwrite replaces only an existing gkd book; {str(out)!r} is {what}, so it is left as it "
                      "is: choose another --out")


def _versions(tensors: tuple) -> tuple | None:
    """In-place change counters of ``tensors`` (None where torch keeps none, e.g. inference tensors)."""
    try:
        return tuple(None if t is None else t._version for t in tensors)
    except (RuntimeError, AttributeError):
        return None


@dataclass
class Book:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]  # memory-mapped, read-only
    _checked: tuple | None = field(default=None, repr=False, compare=False)  # the tensors check_data last hashed

    @property
    def num_nodes(self) -> int:
        return int(self.manifest["dataset"]["num_nodes"])

    @property
    def num_classes(self) -> int:
        return int(self.manifest["dataset"]["num_classes"])

    @property
    def num_teachers(self) -> int:
        return int(self.arrays["logits"].shape[0])

    def knowledge(self, nodes: slice | np.ndarray | None = None, *, hidden: bool = True) -> Knowledge:
        """The ensemble's knowledge (mean probability of the teachers, as a live ensemble gives), optionally for a
        subset of rows only: a process reading a shard never loads the rest of the book. ``hidden=False`` leaves the
        teacher's hidden features on disk (only the ``rsd`` term reads them; 1.25 GB at ogbn-products' size)."""
        idx = slice(None) if nodes is None else nodes
        logits = torch.from_numpy(np.array(self.arrays["logits"][:, idx], dtype=np.float32))  # copy: mmap is read-only
        probs = F.softmax(logits, dim=-1).mean(0)
        merged = logits[0] if logits.size(0) == 1 else probs.clamp_min(1e-12).log()
        mask = torch.from_numpy(np.array(self.arrays["mask"][idx], dtype=bool))
        opt = {k: torch.from_numpy(np.array(self.arrays[k][idx], dtype=np.float32))
               for k in ("hidden", "reliability") if k in self.arrays and (hidden or k != "hidden")}
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
        tensors = tuple(getattr(data, k, None) for k in ("x", "edge_index", "y"))
        seen = _versions(tensors)
        if seen is None or self._checked is None or self._checked[1] != seen or \
                any(a is not b for a, b in zip(self._checked[0], tensors)):
            g = graph_hash(data)  # a second check of the same, unchanged tensors (each seed's stage) is skipped
            check(g == ds["graph_sha256"], f"book {str(self.path)!r} was made for another graph than this "
                  f"{ds['name']} (graph hash {ds['graph_sha256'][:12]}…, data {g[:12]}…): same size and split, other "
                  "features, edges or labels", BookError)
            self._checked = (tensors, seen) if seen is not None else None
        return self


def write_book(out: str | os.PathLike, data: Data, teacher_logits: list[Tensor], mask: Tensor, *,
               temperature: float = 1.0, hidden: Tensor | None = None, reliability: Tensor | None = None,
               teachers: list[dict] | None = None, setting: dict | None = None, float16: bool = False,
               teacher_scores: dict | None = None, overwrite: bool = False) -> Path:
    """Write a book for ``data`` from ``K`` teachers' logits (``[N, C]`` each); atomic (temporary dir + rename)."""
    out = Path(out)
    check(len(teacher_logits) >= 1, "a book needs at least one teacher (K >= 1); got 0", ConfigError)
    check_temperature(temperature, "book temperature")
    check_overwritable(out, overwrite)
    n = data.num_nodes
    for t in teacher_logits:
        check(tuple(t.shape)[0] == n, f"teacher logits have {t.shape[0]} rows; the graph has {n} nodes", ConfigError)
    for what, t in (("mask", mask), ("hidden", hidden), ("reliability", reliability)):
        check(t is None or len(t) == n, f"book {what} has {len(t) if t is not None else 0} rows; the graph has {n} "
              "nodes", ConfigError)
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
    for name, arr in arrays.items():  # float16 tops out at 65504: a larger logit would be stored as inf
        if arr.dtype.kind == "f" and not bool(np.isfinite(arr).all()):
            source = {"logits": logits, "hidden": hidden}.get(name)
            big = float(source.detach().float().abs().max()) if source is not None else float("nan")
            hint = (f"; the largest |value| is {big:.4g}, beyond float16's 65504: write the book without --float16"
                    if float16 and math.isfinite(big) else "")
            raise ConfigError(f"book {name} would hold NaN/inf{hint}")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # the PID: a later write sees it stale
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
                             "sha256": sha256_file(path)}
        meta = getattr(data, "meta", None)
        manifest = {
            "kind": KIND, "format": FORMAT, "gkd": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "dataset": {"name": getattr(meta, "name", "custom"), "num_nodes": n, "num_classes": int(logits.size(-1)),
                        "split": getattr(meta, "split", None), "split_index": getattr(meta, "split_index", 0),
                        "metric": getattr(meta, "metric", "acc"),
                        "split_sha256": split_hash(data), "graph_sha256": graph_hash(data)},
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
        check_overwritable(out, overwrite)  # again: what is at ``out`` may have changed while the teachers trained
        if os.path.lexists(out):  # move the old book aside first, so no moment holds a half-replaced one
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
        os.rename(tmp, out)
        _fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _remove_stale_temporaries(out, "old")  # only now: until the new book is in place, they may be the only one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def open_book(path: str | os.PathLike, data: Data | None = None, *, verify: bool = True) -> Book:
    """Open and validate a book; with ``data``, also check it was made for that dataset, split and graph."""
    path = Path(path)
    check(path.is_dir(), f"book {str(path)!r} does not exist or is not a directory", BookError)
    manifest = validate_manifest(_read_manifest(path), path)
    arrays = {}
    real = path.resolve()
    for name, entry in manifest["arrays"].items():
        file = path / entry["file"]
        check(file.is_file() and not file.is_symlink() and file.resolve().parent == real, f"book array {name!r} "
              f"({str(file)!r}) is missing or not a plain file of the book (a symlink?)", BookError)
        # the bytes the manifest's shape and dtype imply: a larger (e.g. sparse multi-GB) file is not hashed at all
        size, most = file.stat().st_size, math.prod(entry["shape"]) * np.dtype(entry["dtype"]).itemsize
        check(size <= most + _NPY_HEADER_BYTES, f"book array {str(file)!r} is {size} bytes; its manifest entry "
              f"{entry['shape']} {entry['dtype']} needs {most} and a header", BookError)
        if verify:
            check(sha256_file(file) == entry["sha256"], f"book array {str(file)!r} fails its sha256 check (damaged or "
                  "edited); rebuild the book", BookError)
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise BookError(f"book array {str(file)!r} cannot be read ({e})") from None
        check(list(arr.shape) == entry["shape"] and str(arr.dtype) == entry["dtype"],
              f"book array {str(file)!r} is {list(arr.shape)} {arr.dtype}; the manifest says {entry['shape']} "
              f"{entry['dtype']}", BookError)
        if verify and arr.dtype.kind == "f":
            rows = max(1, (1 << 24) // max(1, arr[:1].size))  # in blocks: the array may be larger than memory
            finite = all(np.isfinite(arr[i:i + rows]).all() for i in range(0, max(1, len(arr)), rows))
            check(finite, f"book array {str(file)!r} holds NaN or infinite values; a teacher's knowledge is finite: "
                  "rebuild the book", BookError)
        arrays[name] = arr
    book = Book(path, manifest, arrays)
    return book.check_data(data) if data is not None else book
