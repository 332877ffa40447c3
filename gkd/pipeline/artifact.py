r"""Model artefacts: what ``gkd train --save`` / ``gkd distill --save`` / ``.save()`` write and :func:`load` reads.

An artefact is a directory::

    DIR/manifest.json          kind, format, gkd version, model class and constructor arguments, input recipe
                               (feature width, position features), classes, dataset (name, nodes, split and graph
                               sha256), the run's metrics and config, and the sha256 of every other file
    DIR/weights.safetensors    the model's state dict (safetensors: no pickle)
    DIR/positions.safetensors  position features of the known nodes (students with the ``position`` term only)

It is written under a temporary name and renamed into place, so a killed write leaves nothing that loads; only an
existing artefact may be replaced. :func:`load` checks the kind, the format version, every file's sha256 and every
tensor's shape against the manifest before anything is built, and returns a ready ``nn.Module``: the zoo GNN itself
(called as ``model(x, edge_index)``), or a :class:`~gkd.nn.serving.Student` (``student(x, index=None)``).
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..version import __version__
from ..datasets.fingerprint import graph_hash, split_hash
from ..errors import GKDError, check
from ..io import atomic_write_bytes, check_new_path, is_sha256, sha256_file
from ..nn.models import MODELS, BasicModel, GAT
from ..nn.serving import Student

KIND = "gkd-model"
FORMAT = 1
FILES = ("weights.safetensors", "positions.safetensors")


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
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("kind") == KIND
            and all(p.name in ("manifest.json", *FILES) and p.is_file() and not p.is_symlink()
                    for p in path.iterdir()))


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
                               save({"positions": positions[:-1].detach().cpu().contiguous()}))
        for f in FILES:
            if (tmp / f).is_file():
                manifest["files"][f] = sha256_file(tmp / f)
        text = json.dumps(manifest, indent=2, allow_nan=False)
        with open(tmp / "manifest.json", "w") as f:  # last: a directory without it is not an artefact
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        old = None
        if os.path.lexists(out):
            check_saveable(out)  # again: it may have changed while the model trained
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the artefact at ``path``, after checking its kind, format and every file's sha256."""
    path = Path(path)
    check(path.is_dir(), f"model artefact {str(path)!r} does not exist or is not a directory", ArtifactError)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{str(path)!r} is not a gkd model artefact (no manifest.json)") from None
    except (OSError, ValueError, RecursionError) as e:
        raise ArtifactError(f"model manifest in {str(path)!r} is not readable JSON ({type(e).__name__})") from None
    check(isinstance(manifest, dict) and manifest.get("kind") == KIND,
          f"{str(path)!r} is not a gkd model artefact (manifest kind {manifest.get('kind') if isinstance(manifest, dict) else None!r})",
          ArtifactError)
    fmt = manifest.get("format")
    check(isinstance(fmt, int) and not isinstance(fmt, bool) and 1 <= fmt,
          f"model artefact {str(path)!r} has format {fmt!r}; expected an integer", ArtifactError)
    check(fmt <= FORMAT, f"model artefact {str(path)!r} has format {fmt}; this gkd ({__version__}) reads formats up "
          f"to {FORMAT} (upgrade gkd)", ArtifactError)
    files = manifest.get("files")
    check(isinstance(files, dict) and "weights.safetensors" in files and set(files) <= set(FILES),
          f"model manifest in {str(path)!r} lists files {files!r}; expected weights.safetensors (and "
          "positions.safetensors)", ArtifactError)
    for name, digest in files.items():
        f = path / name
        check(f.is_file() and not f.is_symlink(), f"model artefact file {str(f)!r} is missing", ArtifactError)
        check(sha256_file(f) == digest, f"model artefact file {str(f)!r} fails its sha256 check (damaged or edited)",
              ArtifactError)
    spec, inp = manifest.get("model"), manifest.get("input")
    ok = (isinstance(spec, dict) and spec.get("class") in {c.__name__ for c in MODELS.values()}
          and isinstance(spec.get("args"), dict) and isinstance(inp, dict)
          and isinstance(inp.get("num_features"), int) and (inp.get("position") is None) == (len(files) == 1)
          and (inp.get("position") is None or (isinstance(inp["position"], dict) and isinstance(
              inp["position"].get("dim"), int) and not isinstance(inp["position"]["dim"], bool))))
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
    return manifest


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
    """Rebuild the model saved at ``path`` (verified by :func:`read_manifest`), in eval mode, on ``device``
    (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    from ..nn.device import resolve_device
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    target = resolve_device(device)
    path = Path(path)
    manifest = read_manifest(path)
    spec = manifest["model"]
    _check_spec(spec, manifest["input"], manifest.get("num_classes"), path)
    cls = {c.__name__: c for c in MODELS.values()}[spec["class"]]
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated until the weights file agrees with them
            shell = cls(**spec["args"])
    except (TypeError, GKDError) as e:
        raise ArtifactError(f"model manifest in {str(path)!r} has arguments {spec['args']} that do not build a "
                            f"{spec['class']} ({e})") from None
    want = {k: list(v.shape) for k, v in shell.state_dict().items()}
    try:
        with safe_open(str(path / "weights.safetensors"), "pt") as f:
            have = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except SafetensorError as e:
        raise ArtifactError(f"weights in {str(path)!r} are not a safetensors file ({str(e)[:200]})") from None
    differ = sorted(set(want) ^ set(have) | {k for k in set(want) & set(have) if want[k] != have[k]})
    check(not differ, f"weights in {str(path)!r} do not fit the {spec['class']} the manifest describes (tensors "
          f"{', '.join(differ[:3])} differ)", ArtifactError)
    model = cls(**spec["args"])
    try:
        state = load_file(str(path / "weights.safetensors"))
        positions = (load_file(str(path / "positions.safetensors"))["positions"]
                     if "positions.safetensors" in manifest["files"] else None)
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, KeyError) as e:
        raise ArtifactError(f"weights in {str(path)!r} do not fit the {spec['class']} the manifest describes "
                            f"({str(e).splitlines()[0][:200]})") from None
    bad = [k for k, v in [*state.items(), ("positions", positions)] if v is not None and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    check(not bad, f"weights in {str(path)!r} hold NaN or infinite values ({', '.join(bad[:3])}); a trained model's "
          "are finite: the artefact is damaged or its model diverged", ArtifactError)
    if positions is not None:
        pos = manifest["input"]["position"]
        check(positions.dim() == 2 and positions.size(1) == pos.get("dim")
              and positions.size(1) + manifest["input"]["num_features"] == model.in_channels,
              f"positions in {str(path)!r} are {tuple(positions.shape)}; the manifest says width {pos.get('dim')}",
              ArtifactError)
        model = Student(model, positions)
    elif not model.uses_graph:
        model = Student(model)
    model.manifest = manifest  # what it was trained on and how well it did, for whoever serves it
    return model.to(target).eval()
