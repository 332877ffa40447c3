"""Dataset registry, data-root resolution and the one entry point :func:`load`."""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os

from torch_geometric.data import Data

from ..errors import ConfigError, DatasetError, check
from . import cpf, csbm, graphfile, ogb, planetoid, webkb  # noqa: F401  (each registers its loaders)
from .base import _FILES, _LOADERS, DatasetMeta, default_root, register, require_files, resolve_root  # noqa: F401
from .validate import check_data

def available() -> list[str]:
    return sorted(_LOADERS)


def describe(root: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """``(name, status, where)`` for every registered dataset: ``present`` when all its files are under the data
    root, ``missing`` (``where`` names the first file expected), or ``generated`` (no files)."""
    base = resolve_root(root)
    rows = []
    for name in available():
        if name not in _FILES:
            rows.append((name, "generated", "-"))
            continue
        need = _FILES[name](name, base)
        absent = [p for p in need if not p.is_file()]
        rows.append((name, "missing" if absent else "present", str((absent or need)[0].parent)))
    return rows


def load(name: str, root: str | os.PathLike | None = None, *, split: int = 0, random_split: str | None = None,
         **kwargs) -> Data:
    """Load dataset ``name`` (a registered name, or the path of a graph file: see :mod:`gkd.datasets.graphfile`) as
    a PyG ``Data`` with 1-D ``train_mask/val_mask/test_mask`` and ``data.meta``.

    ``split`` picks one of a dataset's fixed splits (``split mod meta.num_splits``); ``random_split``
    (``"random:TRAIN/VAL/TEST"``) replaces the masks by a random split seeded by ``split``; extra keyword arguments go
    to the dataset's loader (e.g. ``homophily=`` for ``synthetic-csbm``).
    """
    if graphfile.is_graph_file(name):
        _check_graph_file_args(kwargs, DatasetError)
        return graphfile.load_graph_file(name, split=split, random_split_spec=random_split, **kwargs)
    names = available()
    key = str(name).lower()
    if key not in _LOADERS:
        near = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; available: {', '.join(names)}"
        raise DatasetError(f"unknown dataset {name!r}{hint}")
    data = _LOADERS[key](key, resolve_root(root), split=split, **kwargs)
    if random_split is not None:
        data.update(graphfile.random_split(data.y, data.meta.num_classes, random_split, seed=split))
        data.meta = dataclasses.replace(data.meta, split=f"{random_split}, drawn per run (run r: seed r)",
                                        split_index=split,
                                        num_splits=1, split_per_run=True)
    return check_data(data, data.meta.num_classes)


def check_dataset_args(dataset: str, args: dict) -> None:
    """Loader arguments are scalars the loader takes, checked before anything is loaded (a key the loader lacks
    would otherwise surface as a Python ``TypeError`` from inside it)."""
    check(isinstance(args, dict), f"dataset_args={args!r}; expected a mapping of loader arguments", ConfigError)
    for k, v in args.items():
        check(isinstance(k, str), f"dataset_args key {k!r}; expected a name", ConfigError)
        check(v is None or isinstance(v, (bool, int, float, str)),
              f"dataset_args {k}={v!r}; expected a number, string or boolean", ConfigError)
        check(not isinstance(v, float) or math.isfinite(v), f"dataset_args {k}={v!r}; expected a finite number",
              ConfigError)
    reserved = sorted(set(map(str, args)) & {"name", "root", "split"})
    check(not reserved, f"dataset_args may not set {reserved}; use --dataset, --root (the split follows the run)",
          ConfigError)
    if graphfile.is_graph_file(dataset):
        _check_graph_file_args(args, ConfigError)
        return
    loader = _LOADERS.get(str(dataset).lower())
    if loader is None:
        return  # load() names the unknown dataset, with suggestions
    params = inspect.signature(loader).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # the loader checks its own arguments (synthetic-csbm)
    takes = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "split"]
    unknown = sorted(set(map(str, args)) - set(takes))
    check(not unknown, f"dataset_args {unknown}: the {dataset!r} loader takes "
          f"{'only ' + ', '.join(takes) if takes else 'no arguments'}", ConfigError)


def _check_graph_file_args(args: dict, error: type) -> None:
    """A graph file's loader arguments: its edge policy, component and mask layout (:data:`GRAPH_FILE_ARGS`)."""
    allowed = graphfile.GRAPH_FILE_ARGS
    unknown = sorted(set(map(str, args)) - set(allowed))
    check(not unknown, f"dataset_args {unknown}: a graph file takes only {', '.join(allowed)}", error)
    for k, v in args.items():
        check(isinstance(v, allowed[k]) and not (allowed[k] is not bool and isinstance(v, bool)),
              f"dataset_args {k}={v!r}; expected {'true or false' if allowed[k] is bool else 'a string'}", error)
    layout = args.get("mask_layout")
    check(layout is None or layout in graphfile.MASK_LAYOUTS, f"dataset_args mask_layout={layout!r}; expected one "
          f"of {', '.join(graphfile.MASK_LAYOUTS)}", error)
