"""Answering nodes with a saved model (``gkd predict`` and its Python twin :func:`predict`)."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.fingerprint import graph_hash
from ..errors import ConfigError, check
from ..io import atomic_write_bytes, is_sha256, sha256_file
from ..nn import to_adj_t
from ..nn.student import Student
from .artifact import ArtifactError


MAX_ROWS = 2**31 - 1  # ids or feature rows one file may hold: the bound torch's int32 index paths share
MAX_TEXT_BYTES = 1 << 31  # a text --nodes list or a .csv --features file; larger ones go in as .npy
CHUNK = 65_536  # rows answered at a time: memory follows the chunk, not the number of rows asked for
CHUNK_BYTES = 1 << 27  # and at most this many bytes of float32 feature rows (1433-wide Cora: 23,000 rows)


def read_npy_header(p: Path, flag: str, what: str, kinds: str, noun: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` declares, read without loading it, after checking that the file holds exactly
    the bytes that shape needs (a header claiming 10**13 rows in a tiny file is refused before anything is
    allocated), at most :data:`MAX_ROWS` rows, and a dtype of one of ``kinds`` (no objects: nothing is unpickled).
    ``what``: the array expected, ``noun``: what its rows are, for the messages."""
    size = p.stat().st_size
    if size == 0:
        raise EOFError
    with open(p, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ConfigError(f"{flag} {str(p)!r} is an .npz archive; expected one .npy array of {noun}")
        f.seek(0)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        offset = f.tell()
    check(dtype.kind in kinds, f"{flag} {str(p)!r} holds a {dtype} array of shape {shape}; expected {what}",
          ConfigError)
    rows = shape[0] if shape else 1
    check(rows <= MAX_ROWS, f"{flag} {str(p)!r} claims {rows} rows; expected at most {MAX_ROWS}", ConfigError)
    need = math.prod(shape) * dtype.itemsize
    check(size - offset == need, f"{flag} {str(p)!r} claims shape {shape} ({need} bytes) but holds {size - offset} "
          "bytes (truncated or not an .npy file)", ConfigError)
    return shape, dtype


def _text_ids(p: Path) -> np.ndarray:
    """Integers separated by whitespace or commas, parsed a block at a time (no list of strings for the whole file)."""
    parts, rest = [], b""
    with open(p, "rb") as f:
        while True:
            block = f.read(1 << 20)
            tokens = (rest + block).replace(b",", b" ").split()
            # a token at the block's end may go on in the next block
            rest = tokens.pop() if block and tokens and not block[-1:].isspace() and block[-1:] != b"," else b""
            parts.append(np.array([int(t) for t in tokens], dtype=np.int64))
            if not block:
                return np.concatenate(parts)


def read_nodes(path: str | os.PathLike) -> Tensor:
    """Node ids from a ``.npy`` (1-D integers, no pickle; its header checked before anything is read) or a text file
    (one integer per line or comma-separated, at most :data:`MAX_TEXT_BYTES`)."""
    p = Path(path)
    check(p.is_file(), f"--nodes {str(p)!r} does not exist", ConfigError)
    what = "1-D integer node ids"
    try:
        if p.suffix == ".npy":
            shape, _ = read_npy_header(p, "--nodes", what, "iu", "node ids")
            check(len(shape) == 1, f"--nodes {str(p)!r} holds an array of shape {shape}; expected {what}",
                  ConfigError)
            check(shape[0] > 0, f"--nodes {str(p)!r} holds no node ids; expected at least one", ConfigError)
            ids = np.load(p, mmap_mode="r", allow_pickle=False)
        else:
            size = p.stat().st_size
            check(size <= MAX_TEXT_BYTES, f"--nodes {str(p)!r} is {size} bytes; expected a text list of at most "
                  f"{MAX_TEXT_BYTES} bytes (a longer one goes in as .npy)", ConfigError)
            ids = _text_ids(p)
    except (ValueError, OSError, OverflowError, EOFError) as e:  # an id beyond int64; no bytes; a broken header
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"--nodes {str(p)!r} is not a list of integer node ids ({type(e).__name__})") from None
    check(ids.size > 0, f"--nodes {str(p)!r} holds no node ids; expected at least one", ConfigError)
    big = int(ids.max())  # uint64 ids above int64's range would wrap to negative ids below
    check(big <= np.iinfo(np.int64).max, f"--nodes {str(p)!r} holds node id {big}; expected ids of the graph's "
          "nodes (0 .. N-1)", ConfigError)
    return torch.from_numpy(np.array(ids, dtype=np.int64))


def check_split(model: nn.Module, data: Data) -> None:
    """A mask of ``data`` may be answered only when it is the split the model was trained with: another split's test
    mask may hold the model's own training nodes."""
    from ..datasets.fingerprint import split_hash

    ds = (getattr(model, "manifest", {}) or {}).get("dataset") or {}
    if ds.get("split_sha256") is not None and ds["split_sha256"] != split_hash(data):
        raise ArtifactError(f"the model was trained with another split than this {data.meta.name} (split hash "
                            f"{ds['split_sha256'][:12]}…, data {split_hash(data)[:12]}…): its masks may hold the "
                            "model's training nodes; answer explicit --nodes instead (or, on another graph, "
                            "--new-nodes)")


def _answerer(model: nn.Module, data: Data, nodes: Tensor | None, new_nodes: bool):
    """``(nodes, answer)``: the checked node ids, and ``answer(ids) -> logits`` for any slice of them."""
    manifest = getattr(model, "manifest", {}) or {}
    n = data.num_nodes
    check(nodes is None or (isinstance(nodes, Tensor) and nodes.dim() == 1 and not nodes.is_floating_point()
                            and nodes.dtype != torch.bool),
          f"nodes must be a 1-D integer tensor of node ids; got {getattr(nodes, 'dtype', type(nodes).__name__)}",
          ConfigError)
    nodes = torch.arange(n) if nodes is None else nodes.long()
    if nodes.numel():
        lo, hi = int(nodes.min()), int(nodes.max())
        check(lo >= 0 and hi < n, f"node ids lie in [{lo}, {hi}]; the graph has nodes 0 .. {n - 1}", ConfigError)
    want = manifest.get("input", {}).get("num_features")
    check(want is None or data.num_features == want, f"the model reads {want} features per node; the data has "
          f"{data.num_features}", ArtifactError)
    model.eval()
    if isinstance(model, Student):
        if model.positions is None or new_nodes:
            return nodes, lambda ids: model(data.x[ids.to(data.x.device)], torch.full_like(ids, -1))
        known = (manifest.get("dataset") or {}).get("graph_sha256")
        check(known is None or known == graph_hash(data), f"the model's position features belong to the graph it "
              f"was trained on (graph hash {str(known)[:12]}…), not this one ({graph_hash(data)[:12]}…); "
              "pass new_nodes=True (--new-nodes) to answer these nodes as unseen", ArtifactError)
        return nodes, lambda ids: model(data.x[ids.to(data.x.device)], ids.to(data.x.device))
    full = model(data.x, to_adj_t(data.edge_index, n))
    return nodes, lambda ids: full[ids.to(full.device)]


@torch.no_grad()
def predict(model: nn.Module, data: Data, nodes: Tensor | None = None, *, new_nodes: bool = False) -> Tensor:
    """Logits of ``nodes`` (default: every node) of ``data``. A graph-free :class:`Student` reads only those feature
    rows, plus its stored position features when ``data`` is the graph it was trained on (same fingerprint); on any
    other graph pass ``new_nodes=True`` to answer the nodes as unseen (zero positions, as in training). A GNN runs on
    the whole graph."""
    nodes, answer = _answerer(model, data, nodes, new_nodes)
    return answer(nodes)


HEADER = "node,prediction,confidence"
RECORD = "gkd-predictions"  # the kind of the record gkd writes beside each .npy of predictions


def record_path(path: str | os.PathLike) -> Path:
    """Where gkd keeps the proof that it wrote the ``.npy`` at ``path``: ``P.npy.gkd.json``."""
    path = Path(path)
    return path.with_name(path.name + ".gkd.json")


def _read_record(path: Path) -> dict | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4096:
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == RECORD else None


def is_predictions_file(path: Path) -> bool:
    """Whether ``path`` holds predictions gkd wrote (so ``--out`` may replace it): our CSV header, or an ``.npy``
    whose record (:func:`record_path`) holds its sha256. A 1-D int64 ``.npy`` alone proves nothing: a user's list of
    node ids looks the same."""
    try:
        if path.suffix == ".csv":
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\n") == HEADER
        record = _read_record(record_path(path))
        return record is not None and record.get("file") == path.name and is_sha256(record.get("sha256")) \
            and record["sha256"] == sha256_file(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def check_predictions_out(path: str | os.PathLike) -> Path:
    """``--out`` is a .npy or .csv name gkd can write, and replaces only an earlier predictions file (for an ``.npy``
    the record beside it too: only one gkd wrote)."""
    from ..io import check_output_file

    check(Path(path).suffix in (".npy", ".csv"), f"--out {str(path)!r}; expected a .npy or .csv file name",
          ConfigError)
    out = check_output_file(path, "--out", is_predictions_file, "gkd predictions file")
    if out.suffix == ".npy":
        check_output_file(record_path(out), "--out", lambda p: _read_record(p) is not None,
                          f"record of gkd predictions (written beside {out.name})")
    return out


def _write(path: Path, nodes: np.ndarray, pred: np.ndarray, conf: np.ndarray | None) -> Path:
    """``.npy``: the class per row, with its record; ``.csv``: ``node,prediction,confidence`` rows. Atomic. A failed
    write (a full disk) is an ``OSError`` whose ``filename`` is ``path``, whichever file failed: ``path`` is then as
    it was."""
    try:
        return _write_unnamed(path, nodes, pred, conf)
    except OSError as e:  # a failed f.write() names no file
        raise OSError(e.errno, e.strerror, str(path)) from None


def _write_unnamed(path: Path, nodes: np.ndarray, pred: np.ndarray, conf: np.ndarray | None) -> Path:
    if path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, pred.astype(np.int64, copy=False), allow_pickle=False)
        data = buf.getvalue()
        record = {"kind": RECORD, "file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(pred)}
        # the record first: a write that fails between the two leaves a record that matches nothing, so the old file
        # is refused later rather than a new one left without proof
        atomic_write_bytes(record_path(path), (json.dumps(record) + "\n").encode())
        return atomic_write_bytes(path, data)
    check(path.suffix == ".csv", f"--out {str(path)!r}; expected a .npy or .csv file name", ConfigError)
    lines = [(HEADER + "\n").encode()]
    for i in range(0, len(pred), CHUNK):
        rows = zip(nodes[i:i + CHUNK].tolist(), pred[i:i + CHUNK].tolist(), conf[i:i + CHUNK].tolist())
        lines.append("".join(f"{n},{c},{p:.6f}\n" for n, c, p in rows).encode())
    return atomic_write_bytes(path, b"".join(lines))


@torch.no_grad()
def _answer_in_chunks(answer, rows: int, index, csv: bool, width: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Class (and, for a CSV, confidence) of ``rows`` rows of ``width`` features, a chunk at a time (:data:`CHUNK`
    rows, :data:`CHUNK_BYTES`): ``answer(index(i, j))``."""
    pred = np.empty(rows, dtype=np.int64)
    conf = np.empty(rows, dtype=np.float64) if csv else None
    step = max(1, min(CHUNK, CHUNK_BYTES // (4 * max(width, 1))))
    for i in range(0, rows, step):
        j = min(i + step, rows)
        logits = answer(index(i, j))
        pred[i:j] = logits.argmax(-1).cpu().numpy()
        if conf is not None:
            conf[i:j] = logits.float().softmax(-1).max(-1).values.cpu().numpy()
    return pred, conf


def write_predictions(path: str | os.PathLike, nodes: Tensor, logits: Tensor) -> Path:
    """``.npy``: the predicted class per node (and its record, :func:`record_path`); ``.csv``:
    ``node,prediction,confidence`` rows. Atomic."""
    csv = Path(path).suffix == ".csv"
    pred, conf = _answer_in_chunks(lambda ids: logits[ids], len(nodes), lambda i, j: torch.arange(i, j), csv)
    return _write(Path(path), nodes.cpu().numpy(), pred, conf)


def _same_file(out: str | os.PathLike, path: str | os.PathLike | None) -> bool:
    return path is not None and os.path.lexists(out) and os.path.exists(path) and os.path.samefile(out, path)


def _check_out_beside_model(out: str | os.PathLike, model_path: str | os.PathLike) -> None:
    model = os.path.realpath(model_path)
    check(not os.path.realpath(out).startswith(model + os.sep), f"--out {str(out)!r} lies inside the --model "
          f"artefact {str(model_path)!r}, which holds only gkd's own files; expected a path outside it", ConfigError)


@torch.no_grad()
def trained_split(manifest: dict, dataset: str) -> dict:
    """``load``'s split arguments for the split the model was trained with, when ``dataset`` is the one it was
    trained on: the saved run's split index and the run's ``--split`` (splits drawn per run, or one of several
    fixed splits, differ from run 0's)."""
    config, metrics = manifest.get("config") or {}, manifest.get("metrics") or {}
    if dataset != config.get("dataset"):
        return {}
    index, spec = metrics.get("split", 0), config.get("split")
    ok = isinstance(index, int) and not isinstance(index, bool) and index >= 0 and (spec is None or
                                                                                     isinstance(spec, str))
    check(ok, f"the manifest records split={index!r} / {spec!r}; expected a run's split index and its --split "
          "(damaged or edited)", ArtifactError)
    return {"split": index, "random_split": spec}


def predict_to_file(model_path: str | os.PathLike, out: str | os.PathLike, *, dataset: str | None = None,
                    root: str | os.PathLike | None = None, dataset_args: dict | None = None,
                    mask: str | None = None, nodes: str | os.PathLike | None = None, new_nodes: bool = False,
                    device: str = "auto") -> tuple[Data, Tensor]:
    """``gkd predict``: answer the ``mask`` nodes (default ``test``; ``all``) or the node ids in the file ``nodes``
    of ``dataset`` with the artefact at ``model_path`` and write them to ``out`` (``.npy`` or ``.csv``). Without
    ``dataset``, the one the model was trained on (its manifest's, with its loader arguments). ``new_nodes``: a
    graph-free student answers the nodes as unseen (no positions), so the split check does not apply, and the
    default is every node. Returns the graph and the node ids answered."""
    from ..datasets import load
    from ..datasets.registry import check_dataset_args
    from ..nn.device import resolve_device
    from .artifact import load as load_model
    from .artifact import read_manifest

    check(not _same_file(out, nodes), f"--out {str(out)!r} is the --nodes file; it is left as it is: choose another "
          "name", ConfigError)  # first: the most telling message for a path given twice
    check_predictions_out(out)
    _check_out_beside_model(out, model_path)
    manifest = read_manifest(model_path)
    check(not new_nodes or manifest.get("graph_free"), f"--new-nodes answers nodes as unseen by a graph-free "
          f"student; the model in {str(model_path)!r} is a {manifest['model']['class']}, which reads the graph: "
          "drop --new-nodes", ConfigError)
    if dataset is None:
        config = manifest.get("config") or {}
        dataset = config.get("dataset")
        check(isinstance(dataset, str) and dataset, f"the manifest of {str(model_path)!r} names no dataset; pass "
              "the graph to answer (--dataset)", ConfigError)
        if dataset_args is None and isinstance(config.get("dataset_args"), dict):
            dataset_args = config["dataset_args"]
    check(mask is None or nodes is None, "--nodes and --mask both given; expected one of them", ConfigError)
    check_dataset_args(dataset, dict(dataset_args or {}))  # a manifest's too: it may have been edited
    ids = read_nodes(nodes) if nodes is not None else None  # before the model and graph load: a bad list costs nothing
    dev = resolve_device(device)
    model = load_model(model_path, device=dev)
    data = load(dataset, root, **trained_split(manifest, dataset), **dict(dataset_args or {})).to(dev)
    if ids is None:
        mask = mask or ("all" if new_nodes else "test")
        if mask != "all" and not new_nodes:  # unseen nodes have no split: none of them was trained on
            check_split(model, data)
        ids = torch.arange(data.num_nodes) if mask == "all" else data[f"{mask}_mask"].nonzero().view(-1).cpu()
    ids, answer = _answerer(model, data, ids, new_nodes)
    pred, conf = _answer_in_chunks(answer, len(ids), lambda i, j: ids[i:j], Path(out).suffix == ".csv",
                                   data.num_features)
    check_predictions_out(out)  # again: it may have changed while the model ran
    _write(Path(out), ids.numpy(), pred, conf)
    return data, ids


def read_features(path: str | os.PathLike) -> np.ndarray:
    """Feature rows from an ``.npy`` (a 2-D array of numbers, no pickle, its header checked before anything is read;
    memory-mapped) or a ``.csv`` of numeric rows (at most :data:`MAX_TEXT_BYTES`)."""
    p = Path(path)
    check(p.is_file(), f"--features {str(p)!r} does not exist or is not a file", ConfigError)
    check(p.suffix in (".npy", ".csv"), f"--features {str(p)!r}; expected a .npy or .csv file", ConfigError)
    what = "a 2-D array of numbers (one row per node)"
    try:
        if p.suffix == ".npy":
            shape, _ = read_npy_header(p, "--features", what, "fiu", "feature rows")
            check(len(shape) == 2 and shape[0] > 0 and shape[1] > 0, f"--features {str(p)!r} holds an array of "
                  f"shape {shape}; expected {what}", ConfigError)
            return np.load(p, mmap_mode="r", allow_pickle=False)
        size = p.stat().st_size
        check(size <= MAX_TEXT_BYTES, f"--features {str(p)!r} is {size} bytes; expected a .csv of at most "
              f"{MAX_TEXT_BYTES} bytes (a larger one goes in as .npy)", ConfigError)
        with warnings.catch_warnings():  # an empty file is a warning (more lines on stderr), then no rows below
            warnings.simplefilter("ignore")
            x = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, OSError, EOFError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"--features {str(p)!r} is not {what} ({type(e).__name__}: {str(e)[:120]})") from None
    check(x.shape[0] > 0 and x.shape[1] > 0, f"--features {str(p)!r} holds no rows; expected {what}", ConfigError)
    return x


@torch.no_grad()
def predict_features_to_file(model_path: str | os.PathLike, features: str | os.PathLike, out: str | os.PathLike, *,
                             device: str = "auto") -> int:
    """``gkd predict --features``: answer each row of ``features`` (``.npy`` or ``.csv``) as a new node with the
    graph-free student at ``model_path`` (no graph, no labels, no positions) and write ``out`` as
    :func:`predict_to_file` does, rows numbered from 0. Returns the number of rows."""
    from ..nn.device import resolve_device
    from .artifact import load as load_model
    from .artifact import read_manifest

    check(not _same_file(out, features), f"--out {str(out)!r} is the --features file; it is left as it is: choose "
          "another name", ConfigError)
    check_predictions_out(out)
    _check_out_beside_model(out, model_path)
    manifest = read_manifest(model_path)
    needs_graph = (f"the model in {str(model_path)!r} is a {manifest['model']['class']}, which needs a graph: pass "
                   "--dataset (--features answers graph-free students only)")
    check(manifest.get("graph_free") is True, needs_graph, ConfigError)
    x = read_features(features)
    want = manifest["input"]["num_features"]
    check(x.shape[1] == want, f"--features {str(features)!r} has {x.shape[1]} columns; the model reads {want} "
          "features per node (its manifest's input.num_features)", ArtifactError)
    dev = resolve_device(device)
    model = load_model(model_path, device=dev)
    check(isinstance(model, Student), needs_graph, ConfigError)  # a manifest edited to say graph_free
    rows = x.shape[0]

    def answer(chunk: np.ndarray) -> Tensor:  # a copy of the chunk: torch warns on a read-only mapped file
        return model(torch.as_tensor(np.array(chunk, dtype=np.float32), device=dev))

    pred, conf = _answer_in_chunks(answer, rows, lambda i, j: x[i:j], Path(out).suffix == ".csv", x.shape[1])
    check_predictions_out(out)  # again: it may have changed while the model ran
    _write(Path(out), np.arange(rows), pred, conf)
    return rows
