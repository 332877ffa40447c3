r"""Model artefacts: what ``gkd train --save`` / ``gkd distill --save`` / ``.save()`` write and :func:`load` reads.

An artefact is a directory of gkd's one on-disk format (:mod:`gkd.io.store`: written atomically, replacing only an
earlier artefact, read once through one directory handle, every file's size and sha256 checked)::

    DIR/manifest.json          kind, format, gkd version, model class and constructor arguments, input recipe
                               (feature width, position features), classes, dataset (name, nodes, split and graph
                               sha256), the run's metrics and config, and the sha256 and size of every other file
    DIR/weights.safetensors    the model's state dict (safetensors: no pickle)
    DIR/positions.safetensors  position features of the known nodes (students with the ``position`` term only)

:func:`load` checks the kind, the format version, the sha256 of the very bytes it then builds from and every tensor's
shape against the manifest, and returns a ready ``nn.Module``: the zoo GNN itself (called as ``model(x, edge_index)``),
or a :class:`~gkd.nn.student.Student` (``student(x, index=None)``). Format 1 (before files recorded their size) is read
as well.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets.fingerprint import graph_hash, split_hash
from .. import limits
from ..errors import GKDError, check
from ..io import check_new_path, is_sha256
from ..io.store import Format, foreign, read_dir, write_dir
from ..nn.models import MODELS, BasicModel, GAT
from ..nn.student import Student

KIND = "gkd-model"
FORMAT = 2  # 2: the manifest's files record their size ({"sha256", "size"}; format 1 wrote the sha256 alone)
FILES = ("weights.safetensors", "positions.safetensors")


class ArtifactError(GKDError):
    """A model artefact that is missing, damaged, foreign, or from a newer gkd."""


STORE = Format(kind=KIND, version=FORMAT, noun="model artefact", file_noun="model artefact file",
               names=frozenset(FILES), error=ArtifactError)


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


def _refusal(out: Path) -> ArtifactError | None:
    """Why ``out`` may not be replaced by a save (an error to raise), or None: it is an earlier gkd artefact."""
    if foreign(out, STORE) is None:
        return None
    return ArtifactError(f"--save {str(out)!r} exists and is not a gkd model artefact; it is left as it is: choose "
                         "another directory")


def check_saveable(out: str | os.PathLike) -> Path:
    """Refuse an ``out`` that :func:`save` may not write: anything that exists but an earlier gkd artefact (a user's
    directory or file is never replaced). Call before training, so a bad ``--save`` costs nothing."""
    out = Path(out)
    error = _refusal(out) if os.path.lexists(out) else None
    if error is not None:
        raise error
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
        "model": spec, "graph_free": not inner.uses_graph,
        "input": {"num_features": spec["args"]["in_channels"] - n_pos,
                  "position": None if positions is None else {"dim": n_pos, "known_nodes": positions.size(0) - 1,
                                                              **(position or {})}},
        "num_classes": spec["args"]["out_channels"],
        "dataset": None if data is None else {
            "name": getattr(getattr(data, "meta", None), "name", "custom"), "num_nodes": int(data.num_nodes),
            "split_sha256": split_hash(data), "graph_sha256": graph_hash(data)},
        "metrics": metrics or {}, "config": config or {},
    }
    state = {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}
    files = {"weights.safetensors": save(state)}
    if positions is not None:
        files["positions.safetensors"] = save({"positions": positions[:-1].detach().float().cpu().contiguous()})
    return write_dir(out, STORE, files, manifest, refuse=_refusal)


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the artefact at ``path``, after checking its kind, format, model and every file's sha256."""
    return read_dir(path, STORE, _plan)[0]


def _plan(manifest: dict[str, Any], path: Path) -> tuple[dict[str, tuple[int, str]], nn.Module]:
    """Check the model the manifest describes; return the files it needs (each with the most bytes it may hold)
    and the model built on the meta device."""
    spec, inp = manifest.get("model"), manifest.get("input")
    pos = inp.get("position") if isinstance(inp, dict) else None
    ok = (isinstance(spec, dict) and spec.get("class") in {c.__name__ for c in MODELS.values()}
          and isinstance(spec.get("args"), dict) and isinstance(inp, dict) and isinstance(inp.get("num_features"), int)
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
    names = FILES if pos is not None else FILES[:1]
    return {name: (min(limits.MAX_ARTIFACT_FILE_BYTES, 8 * numbers[name] + limits.SAFETENSORS_HEADER_BYTES), "")
            for name in names}, shell


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
    manifest, blobs, shell = read_dir(path, STORE, _plan)
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
