r"""Model artefacts: what ``gkd train --save`` / ``gkd distill --save`` / ``.save()`` write and :func:`load` reads.

An artefact is a directory::

    DIR/manifest.json          kind, format, gkd version, model class and constructor arguments, input recipe
                               (feature width, position features), classes, dataset (name, nodes, split and graph
                               sha256), the run's metrics and config, and the sha256 of every other file
    DIR/weights.safetensors    the model's state dict (safetensors: no pickle)
    DIR/positions.safetensors  position features of the known nodes (students with the ``position`` term only)

It is written under a temporary name and renamed into place, so a killed write leaves nothing that loads; only an
existing artefact may be replaced, and of two saves racing on one directory one complete artefact remains. :func:`load`
reads each file once, through one open handle on the directory (bounded in size, regular files only), checks the kind,
the format version, the sha256 of the very bytes it then builds from and every tensor's shape against the manifest,
and returns a ready ``nn.Module``: the zoo GNN itself (called as ``model(x, edge_index)``), or a
:class:`~gkd.nn.serving.Student` (``student(x, index=None)``). A directory replaced while it is read is read again.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..version import __version__
from ..datasets.fingerprint import graph_hash, split_hash
from .. import limits
from ..errors import GKDError, check
from ..io import atomic_write_bytes, check_new_path, is_sha256, read_regular_file, sha256_file
from ..nn.models import MODELS, BasicModel, GAT
from ..nn.serving import Student

KIND = "gkd-model"
FORMAT = 1
FILES = ("weights.safetensors", "positions.safetensors")
_TRIES = 5  # reads of a directory another process keeps replacing; consecutive refusals of a racing save
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class ArtifactError(GKDError):
    """A model artefact that is missing, damaged, foreign, or from a newer gkd."""


def model_spec(model: nn.Module) -> dict[str, Any]:
    """Class name and constructor arguments that rebuild ``model`` (gkd's zoo only: arbitrary modules cannot be
    rebuilt without their code, and unpickling code is what artefacts exist to avoid)."""
    check(isinstance(model, BasicModel) and type(model) in MODELS.values(),
          f"cannot save a {type(model).__name__}: artefacts rebuild gkd's zoo models (GCN, GAT, GraphSAGE, MLP); "
          "save another module's state_dict yourself", ArtifactError)
    args = {"in_channels": model.in_channels, "hidden_channels": model.hidden_channels,
            "num_layers": model.num_layers, "out_channels": model.out_channels, "dropout": model.dropout}
    if isinstance(model, GAT):
        args |= {"heads": model.heads, "out_heads": model.out_heads}
    return {"class": type(model).__name__, "args": args}


def _is_artifact(path: Path) -> bool:
    """``path`` is a directory (not a link) holding a gkd-model manifest and only an artefact's regular files. Read
    through one handle on the directory, so the answer is about one directory even while a save replaces it; a FIFO,
    a link or an oversized or absurdly nested manifest makes it not an artefact."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return False
    try:
        manifest = json.loads(read_regular_file("manifest.json", limits.MAX_MANIFEST_BYTES, "model manifest",
                                                dir_fd=fd, error=ArtifactError))
        return (isinstance(manifest, dict) and manifest.get("kind") == KIND
                and all(name in ("manifest.json", *FILES)
                        and stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
                        for name in os.listdir(fd)))
    except (OSError, ValueError, RecursionError):  # ArtifactError is a ValueError
        return False
    finally:
        os.close(fd)


def check_saveable(out: str | os.PathLike) -> Path:
    """Refuse an ``out`` that :func:`save` may not write: anything that exists but an earlier gkd artefact (a user's
    directory or file is never replaced). Call before training, so a bad ``--save`` costs nothing."""
    out = Path(out)
    if os.path.lexists(out):
        check(out.is_dir() and not out.is_symlink() and _is_artifact(out),
              f"--save {str(out)!r} exists and is not a gkd model artefact; it is left as it is: choose another "
              "directory", ArtifactError)
    check_new_path(out, "--save")
    return out


def save(model: nn.Module, out: str | os.PathLike, *, data=None, metrics: dict | None = None,
         config: dict | None = None, position: dict | None = None) -> Path:
    """Write ``model`` (a zoo model, or a :class:`Student` around one) as an artefact at ``out``.

    ``data``: the graph it was trained on (its name, node count, split and graph fingerprints go into the manifest);
    ``position``: the position-feature recipe (e.g. ``{"method": "fastrp", "dim": 64, "seed": 0}``) when the student
    has positions; ``metrics``/``config``: recorded as given (JSON).
    """
    from safetensors.torch import save

    out = check_saveable(out)
    inner, positions = (model.model, model.positions) if isinstance(model, Student) else (model, None)
    spec = model_spec(inner)
    n_pos = 0 if positions is None else positions.size(1)
    manifest: dict[str, Any] = {
        "kind": KIND, "format": FORMAT, "gkd": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": spec, "graph_free": not inner.uses_graph,
        "input": {"num_features": spec["args"]["in_channels"] - n_pos,
                  "position": None if positions is None else {"dim": n_pos, "known_nodes": positions.size(0) - 1,
                                                              **(position or {})}},
        "num_classes": spec["args"]["out_channels"],
        "dataset": None if data is None else {
            "name": getattr(getattr(data, "meta", None), "name", "custom"), "num_nodes": int(data.num_nodes),
            "split_sha256": split_hash(data), "graph_sha256": graph_hash(data)},
        "metrics": metrics or {}, "config": config or {}, "files": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}
        # safetensors' save_file creates 0600 files; through atomic_write_bytes they get the umask's mode, as the
        # manifest does, so a server running as another user can read the artefact
        atomic_write_bytes(tmp / "weights.safetensors", save(state))
        if positions is not None:
            atomic_write_bytes(tmp / "positions.safetensors",
                               save({"positions": positions[:-1].detach().float().cpu().contiguous()}))
        for f in FILES:
            if (tmp / f).is_file():
                manifest["files"][f] = sha256_file(tmp / f)
        text = json.dumps(manifest, indent=2, allow_nan=False)
        with open(tmp / "manifest.json", "w") as f:  # last: a directory without it is not an artefact
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished artefact ``tmp`` to ``out``, moving an earlier artefact there aside and removing it after.
    Another save of ``out`` may run at the same time: each rename moves a whole directory, so ``out`` always holds
    one complete artefact (the last renamed wins), and a directory moved aside is removed only once it is seen,
    under the name only this process uses, to be an artefact."""
    aside: list[Path] = []
    refused = 0
    try:
        for _ in range(8 * _TRIES):
            if os.path.lexists(out):
                if not (out.is_dir() and not out.is_symlink() and _is_artifact(out)):
                    refused += 1  # or a racing save moved it away between the two looks: look again
                    check(refused < _TRIES, f"--save {str(out)!r} exists and is not a gkd model artefact; it is left "
                          "as it is: choose another directory", ArtifactError)
                    time.sleep(0.01)
                    continue
                refused = 0
                old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                try:
                    os.rename(out, old)
                except FileNotFoundError:  # a racing save moved it first
                    continue
                if not _is_artifact(old):  # something else took its place between the look and the rename: put it back
                    try:
                        if os.path.lexists(out):
                            raise FileExistsError
                        os.rename(old, out)
                    except OSError:
                        raise ArtifactError(f"--save {str(out)!r} changed while it was replaced: what stood there is "
                                            f"not a gkd model artefact, and is now at {str(old)!r}") from None
                    continue
                aside.append(old)
            try:
                os.rename(tmp, out)
            except OSError as e:  # a racing save renamed its artefact into place first: move that aside too
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise
                continue
            _fsync_dir(out.parent)
            return
        raise ArtifactError(f"--save {str(out)!r} kept changing while it was replaced ({8 * _TRIES} tries): other "
                            "processes are writing it; expected one writer at a time")
    finally:
        for old in aside:
            shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Changed(Exception):
    """The directory being read no longer stands at its path (a save replaced it): read it again."""


def _same_dir(path: Path, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, bytes], nn.Module]:
    """The checked manifest of the artefact at ``path``, the bytes of its files (their sha256 checked) and the model
    it describes on the meta device. Everything comes from one directory, read once: when a save replaces the
    directory while it is read (a file vanishes, a check fails in a directory no longer at ``path``), it is read
    again, a few times, and then refused."""
    path = Path(path)
    check(path.is_dir() or _being_replaced(path), f"model artefact {str(path)!r} does not exist or is not a directory",
          ArtifactError)
    for attempt in range(_TRIES):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):  # moved aside for a moment by a save of a new artefact
            time.sleep(0.005 * 2 ** attempt)
            continue
        except OSError as e:
            raise ArtifactError(f"model artefact {str(path)!r} cannot be read ({e.strerror})") from None
        try:
            try:
                return _read_dir(path, fd)
            except (ArtifactError, FileNotFoundError):
                if _same_dir(path, fd):
                    raise
                raise _Changed from None
        except _Changed:
            time.sleep(0.005 * 2 ** attempt)
        finally:
            os.close(fd)
    check(path.is_dir(), f"model artefact {str(path)!r} does not exist or is not a directory", ArtifactError)
    raise ArtifactError(f"model artefact {str(path)!r} changed while it was read, {_TRIES} times: another process is "
                        "replacing it; expected a directory that stays put while gkd reads it")


def _being_replaced(path: Path) -> bool:
    """A save of ``path`` is under way (its temporary or the artefact it moved aside stands beside it): ``path`` may
    be missing for the moment between its two renames."""
    prefixes = (f".{path.name}.tmp-", f".{path.name}.old-")
    try:
        return any(name.startswith(prefixes) for name in os.listdir(path.parent))
    except OSError:
        return False


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the artefact at ``path``, after checking its kind, format, model and every file's sha256."""
    return _read(path)[0]


def _read_dir(path: Path, fd: int) -> tuple[dict[str, Any], dict[str, bytes], nn.Module]:
    mpath = path / "manifest.json"
    try:
        raw = read_regular_file("manifest.json", limits.MAX_MANIFEST_BYTES, f"model manifest {str(mpath)!r}",
                                dir_fd=fd, error=ArtifactError)
    except FileNotFoundError:
        raise ArtifactError(f"{str(path)!r} is not a gkd model artefact (no manifest.json)") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ArtifactError(f"model manifest in {str(path)!r} is not readable JSON ({type(e).__name__})") from None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    check(kind == KIND, f"{str(path)!r} is not a gkd model artefact (manifest kind {kind!r})", ArtifactError)
    fmt = manifest.get("format")
    check(isinstance(fmt, int) and not isinstance(fmt, bool) and 1 <= fmt,
          f"model artefact {str(path)!r} has format {fmt!r}; expected an integer", ArtifactError)
    check(fmt <= FORMAT, f"model artefact {str(path)!r} has format {fmt}; this gkd ({__version__}) reads formats up "
          f"to {FORMAT} (upgrade gkd)", ArtifactError)
    files = manifest.get("files")
    check(isinstance(files, dict) and "weights.safetensors" in files and set(files) <= set(FILES),
          f"model manifest in {str(path)!r} lists files {files!r}; expected weights.safetensors (and "
          "positions.safetensors)", ArtifactError)
    spec, inp = manifest.get("model"), manifest.get("input")
    pos = inp.get("position") if isinstance(inp, dict) else None
    ok = (isinstance(spec, dict) and spec.get("class") in {c.__name__ for c in MODELS.values()}
          and isinstance(spec.get("args"), dict) and isinstance(inp, dict)
          and isinstance(inp.get("num_features"), int) and (pos is None) == (len(files) == 1)
          and (pos is None or (isinstance(pos, dict) and _is_count(pos.get("dim"), limits.MAX_WIDTH)
                               and (pos.get("known_nodes") is None
                                    or _is_count(pos.get("known_nodes"), limits.MAX_NODES)))))
    check(ok, f"model manifest in {str(path)!r} does not describe a gkd zoo model and its input", ArtifactError)
    for key in ("dataset", "config", "metrics"):  # what predict and the serving code read: objects, or absent
        value = manifest.get(key)
        check(value is None or isinstance(value, dict), f"model manifest in {str(path)!r} has {key}={value!r:.60}; "
              "expected an object (damaged or edited)", ArtifactError)
    for key in ("split_sha256", "graph_sha256"):
        value = (manifest.get("dataset") or {}).get(key)
        check(value is None or is_sha256(value),
              f"model manifest in {str(path)!r} has dataset.{key}={value!r:.60}; expected 64 hex digits (damaged or "
              "edited)", ArtifactError)
    _check_spec(spec, inp, manifest.get("num_classes"), path)
    cls = {c.__name__: c for c in MODELS.values()}[spec["class"]]
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated until the weights file agrees with them
            shell = cls(**spec["args"])
    except (TypeError, GKDError) as e:
        raise ArtifactError(f"model manifest in {str(path)!r} has arguments {spec['args']} that do not build a "
                            f"{spec['class']} ({e})") from None
    # what each file may hold, from the manifest (8 bytes a number at most): a file beyond it is not read at all
    rows = (pos or {}).get("known_nodes")  # gkd writes it; without it only the overall bound holds
    numbers = {"weights.safetensors": sum(t.numel() for t in shell.state_dict().values()),
               "positions.safetensors": limits.MAX_ARTIFACT_FILE_BYTES if rows is None else rows * pos["dim"]}
    blobs = {}
    for name, digest in files.items():
        where = f"model artefact file {str(path / name)!r}"
        limit = min(limits.MAX_ARTIFACT_FILE_BYTES, 8 * numbers[name] + limits.SAFETENSORS_HEADER_BYTES)
        try:
            blob = read_regular_file(name, limit, where, dir_fd=fd, error=ArtifactError)
        except FileNotFoundError:
            raise ArtifactError(f"{where} is missing") from None
        check(hashlib.sha256(blob).hexdigest() == digest, f"{where} fails its sha256 check (damaged or edited)",
              ArtifactError)
        blobs[name] = blob
    return manifest, blobs, shell


def _is_count(value: Any, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= hi


def _check_spec(spec: dict, inp: dict, num_classes: Any, path: Path) -> None:
    """The manifest's constructor arguments are sane before anything is allocated (the manifest is checked against
    damage by the weights' sha256 and shapes only after the model is built)."""
    from ..limits import MAX_HEADS, MAX_LAYERS, MAX_WIDTH

    args = spec["args"]
    bounds = {"in_channels": (1, 10 ** 7), "hidden_channels": (1, MAX_WIDTH), "num_layers": (1, MAX_LAYERS),
              "out_channels": (1, 10 ** 6), "heads": (1, MAX_HEADS), "out_heads": (1, MAX_HEADS)}
    for key, value in args.items():
        if key == "dropout":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        else:
            lo, hi = bounds.get(key, (1, 0))
            ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
        check(ok, f"model manifest in {str(path)!r} has {key}={value!r}, which builds no sane {spec['class']}",
              ArtifactError)
    pos = inp.get("position") or {}
    width = inp["num_features"] + (pos.get("dim") or 0)
    check(args.get("in_channels") == width and args.get("out_channels") == num_classes,
          f"model manifest in {str(path)!r} disagrees with itself: in_channels={args.get('in_channels')} for "
          f"{width} inputs, out_channels={args.get('out_channels')} for {num_classes!r} classes", ArtifactError)


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path`` (verified as :func:`read_manifest` does, built from the very bytes whose
    sha256 was checked), in eval mode, on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    from ..nn.device import resolve_device
    from safetensors.torch import load as from_bytes

    target = resolve_device(device)
    path = Path(path)
    manifest, blobs, shell = _read(path)
    spec = manifest["model"]
    cls = type(shell)
    try:
        state = from_bytes(blobs["weights.safetensors"])
        positions = (from_bytes(blobs["positions.safetensors"]).get("positions")
                     if "positions.safetensors" in blobs else None)
    except Exception as e:  # safetensors' parser on bytes a user may have crafted (and re-hashed): any failure
        raise ArtifactError(f"weights in {str(path)!r} are not a safetensors file ({str(e)[:200]})") from None
    want = {k: list(v.shape) for k, v in shell.state_dict().items()}
    have = {k: list(v.shape) for k, v in state.items()}
    differ = sorted(set(want) ^ set(have) | {k for k in set(want) & set(have) if want[k] != have[k]})
    check(not differ, f"weights in {str(path)!r} do not fit the {spec['class']} the manifest describes (tensors "
          f"{', '.join(differ[:3])} differ)", ArtifactError)
    model = cls(**spec["args"])
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as e:
        raise ArtifactError(f"weights in {str(path)!r} do not fit the {spec['class']} the manifest describes "
                            f"({str(e).splitlines()[0][:200]})") from None
    bad = [k for k, v in [*state.items(), ("positions", positions)] if v is not None and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    check(not bad, f"weights in {str(path)!r} hold NaN or infinite values ({', '.join(bad[:3])}); a trained model's "
          "are finite: the artefact is damaged or its model diverged", ArtifactError)
    if "positions.safetensors" in blobs:
        pos = manifest["input"]["position"]
        check(positions is not None and positions.dim() == 2 and positions.size(1) == pos["dim"]
              and pos.get("known_nodes") in (None, positions.size(0))
              and positions.size(1) + manifest["input"]["num_features"] == model.in_channels,
              f"positions in {str(path)!r} are {None if positions is None else tuple(positions.shape)}; the manifest "
              f"says {pos.get('known_nodes', 'any number of')} nodes of width {pos['dim']}", ArtifactError)
        # gkd writes float32 positions; another dtype was put there by hand, and would fail later as the features'
        check(positions.dtype == torch.float32, f"positions in {str(path)!r} are {str(positions.dtype)[6:]}; gkd "
              "writes float32 positions (damaged or edited artefact)", ArtifactError)
        model = Student(model, positions)
    elif not model.uses_graph:
        model = Student(model)
    model.manifest = manifest  # what it was trained on and how well it did, for whoever serves it
    return model.to(target).eval()
