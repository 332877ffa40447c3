r"""Knowledge books (BookKD, Knowledge-Based Systems 2023): a teacher's knowledge made once, learned from many times.

A book is a directory::

    BOOK/manifest.json       format, dataset (name, nodes, classes, split and graph hashes), setting, teachers,
                             sha256 per array
    BOOK/logits.npy          [K, N, C] each teacher's logits (rows of unobserved nodes are zero)
    BOOK/soft_labels.npy     [N, C] the ensemble's mean softmax(logits / T)
    BOOK/mask.npy            [N] nodes the setting lets a student learn from (uint8)
    BOOK/hidden.npy          [N, H] first teacher's last hidden layer (optional)
    BOOK/reliability.npy     [N] KRD entropy change under feature noise (optional)

Arrays are plain ``.npy`` (memory-mapped on read, never unpickled); the manifest is JSON. A book is a directory of
gkd's one on-disk format (:mod:`gkd.io.store`): :func:`write_book` builds it under a temporary name
(``.BOOK.tmp-<pid>-<hex>``, removed by a later write once that process is gone) and renames it into place, so a write
killed at any point leaves nothing at ``BOOK`` that loads; ``overwrite`` replaces only an existing book, never a
user's file or folder. :func:`open_book` reads every file once through one handle on the directory, checks the
manifest's schema, the format version, every array's size, shape, dtype and sha256, and, given the data, its name,
node count, class count, split and graph (a sha256 over features, edges and labels). Format 2 (before the manifest
listed its files with their sizes) is read as well.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from .datasets.fingerprint import graph_hash, split_hash
from .distill.knowledge import Knowledge
from .distill.losses import check_temperature
from .errors import ConfigError, GKDError, check
from .io import is_sha256
from .io.store import Format, damaged, foreign, read_dir, write_dir

FORMAT = 3  # 2: the manifest fingerprints the graph (dataset.graph_sha256); 3: it lists files with their sizes
KIND = "gkd-book"
ARRAYS = ("logits", "soft_labels", "mask", "hidden", "reliability")  # the last two are optional
_NPY_HEADER_BYTES = 1 << 16  # an .npy file's header, beyond the array's bytes (numpy writes 128 or so)


class BookError(GKDError):
    """A book that is missing, damaged, or made for other data."""


STORE = Format(kind=KIND, version=FORMAT, noun="book", file_noun="book array",
               names=frozenset(f"{a}.npy" for a in ARRAYS), error=BookError, remedy="; rebuild the book",
               legacy_files=lambda m: {e["file"]: e["sha256"] for e in m["arrays"].values()})


def _is_int(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


_DTYPES = {"logits": {"float16", "float32"}, "soft_labels": {"float16", "float32"}, "mask": {"uint8", "bool"},
           "hidden": {"float16", "float32"}, "reliability": {"float32"}}


def validate_manifest(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check a book manifest's schema (the one place that does): types, the format version, array entries and how
    their shapes fit the node and class counts. Returns it unchanged; raises one BookError naming the first fault."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise BookError(damaged(STORE, path, what))

    fmt = manifest.get("format")  # an integer <= FORMAT: checked by the store before
    check(fmt >= 2, f"book {str(path)!r} has format {fmt}, which does not record which graph it was made on; "
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
    if fmt >= 3:  # the digest is kept in both places (readers of format 2 look in arrays)
        files = manifest.get("files")
        need(isinstance(files, dict), f"files={files!r:.60}; expected an object")
        for name, e in arrays.items():
            entry = files.get(e["file"])
            need(isinstance(entry, dict) and entry.get("sha256") == e["sha256"],
                 f"arrays.{name}.sha256 is not the sha256 files.{e['file']} lists")
    return manifest


def _refusal(out: Path, overwrite: bool) -> GKDError | None:
    """Why the existing ``out`` may not be replaced by a book (an error to raise), or None."""
    if not overwrite:
        return ConfigError(f"{str(out)!r} already exists; pass --overwrite (overwrite=True) to replace it")
    what = foreign(out, STORE)
    if what is None:
        return None
    return ConfigError(f"--overwrite replaces only an existing gkd book; {str(out)!r} is {what}, so it is left as it "
                       "is: choose another --out")


def check_overwritable(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an ``out`` that :func:`write_book` may not write: one that exists, unless ``overwrite`` and it is a gkd
    book (a directory holding only a book's files and a gkd-book manifest; any format). Call it before the costly
    work (training the teachers) too; ``write_book`` checks again just before replacing."""
    out = Path(out)
    error = _refusal(out, overwrite) if os.path.lexists(out) else None
    if error is not None:
        raise error
    return out


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
    meta = getattr(data, "meta", None)

    def manifest(files: dict[str, dict]) -> dict[str, Any]:
        entries = {name: {"file": f"{name}.npy", "shape": list(arr.shape), "dtype": str(arr.dtype),
                          "sha256": files[f"{name}.npy"]["sha256"]} for name, arr in arrays.items()}
        return {"dataset": {"name": getattr(meta, "name", "custom"), "num_nodes": n,
                            "num_classes": int(logits.size(-1)), "split": getattr(meta, "split", None),
                            "split_index": getattr(meta, "split_index", 0), "metric": getattr(meta, "metric", "acc"),
                            "split_sha256": split_hash(data), "graph_sha256": graph_hash(data)},
                "setting": setting or {"name": "transductive"}, "temperature": temperature,
                "teachers": teachers or [{} for _ in teacher_logits], "teacher_scores": teacher_scores or {},
                "arrays": entries}

    files = {f"{name}.npy": (lambda f, a=arr: np.save(f, a, allow_pickle=False)) for name, arr in arrays.items()}
    return write_dir(out, STORE, files, manifest, refuse=lambda p: _refusal(p, overwrite))


def open_book(path: str | os.PathLike, data: Data | None = None, *, verify: bool = True) -> Book:
    """Open and validate a book; with ``data``, also check it was made for that dataset, split and graph.
    ``verify=False`` skips the sha256 of the arrays and their finiteness (sizes, shapes and dtypes are checked)."""
    path = Path(path)
    manifest, blobs, _ = read_dir(path, STORE, _plan, verify=verify, mapped=True)
    arrays = {}
    for name, entry in manifest["arrays"].items():
        file = path / entry["file"]
        arr = _array(blobs[entry["file"]], file)
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


def _plan(manifest: dict[str, Any], path: Path) -> tuple[dict[str, tuple[int, str]], None]:
    """The book's files, each with the bytes its manifest entry's shape and dtype imply (and a header): a larger (e.g.
    sparse multi-GB) file is not hashed at all."""
    limits = {}
    for entry in validate_manifest(manifest, path)["arrays"].values():
        most = math.prod(entry["shape"]) * np.dtype(entry["dtype"]).itemsize
        limits[entry["file"]] = (most + _NPY_HEADER_BYTES, f"; its manifest entry {entry['shape']} {entry['dtype']} "
                                 f"needs {most} and a header")
    return limits, None


def _array(buf: Any, file: Path) -> np.ndarray:
    """The array of the ``.npy`` bytes ``buf`` (a read-only map of the file), without a copy; never unpickled."""
    try:
        f = io.BytesIO(buf[:_NPY_HEADER_BYTES])
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        check(not dtype.hasobject, "it holds Python objects", ValueError)
        count, offset = math.prod(shape), f.tell()
        check(len(buf) >= offset + count * dtype.itemsize, f"it holds {len(buf) - offset} bytes of the "
              f"{count * dtype.itemsize} its header declares", ValueError)
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    except (ValueError, OSError) as e:
        raise BookError(f"book array {str(file)!r} cannot be read ({e})") from None
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
