"""Dataset registry, data-root resolution and the one entry point :func:`load`."""
from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from torch_geometric.data import Data

from ..errors import DatasetError, check
from .validate import check_data

_REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"


@dataclass(frozen=True)
class DatasetMeta:
    """What a loaded graph is: attached to the returned ``Data`` as ``data.meta``."""

    name: str
    num_classes: int
    split: str          # human-readable split protocol, e.g. "public (20 per class / 500 / 1000)"
    split_index: int = 0
    num_splits: int = 1  # > 1 for datasets with several fixed splits (run r uses split r mod num_splits)
    metric: str = "acc"
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


Loader = Callable[..., Data]
Files = Callable[[str, Path], list[Path]]
_LOADERS: dict[str, Loader] = {}
_FILES: dict[str, Files] = {}


def register(*names: str, files: Files | None = None) -> Callable[[Loader], Loader]:
    """Register a loader under ``names``; ``files(key, root)`` lists the files it reads (for ``gkd datasets``;
    none for generated sets)."""
    def deco(fn: Loader) -> Loader:
        for n in names:
            _LOADERS[n.lower()] = fn
            if files is not None:
                _FILES[n.lower()] = files
        return fn
    return deco


def available() -> list[str]:
    from . import csbm, ogb, planetoid, webkb  # noqa: F401  (registration side effects)
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


def default_root() -> Path:
    """``$GKD_DATA`` if set, else the repository's ``datasets/`` folder."""
    env = os.environ.get("GKD_DATA")
    return Path(env) if env else _REPO_DATASETS


def resolve_root(root: str | os.PathLike | None) -> Path:
    """Data root precedence: ``root`` argument > ``$GKD_DATA`` > ``datasets/``."""
    return Path(root) if root is not None else default_root()


def ensure_writable(path: Path) -> None:
    """Fail clearly when a cache must be written into ``path`` (OGB's processed arrays) but it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as e:
        raise DatasetError(f"data root {str(path)!r} is not writable ({e.strerror}); processed files go there. "
                           "Pass a writable --root or set GKD_DATA") from None


def require_files(folder: Path, files: list[str], how: str) -> None:
    """Raise one clear error naming the folder and the first missing file; never try to download."""
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"dataset files not found: {str(folder / missing[0])!r} "
                           f"({len(missing)} of {len(files)} missing). No download is attempted; {how}")


def load(name: str, root: str | os.PathLike | None = None, *, split: int = 0, random_split: str | None = None,
         **kwargs) -> Data:
    """Load dataset ``name`` (a registered name, or the path of a graph file: see :mod:`gkd.datasets.graphfile`) as
    a PyG ``Data`` with 1-D ``train_mask/val_mask/test_mask`` and ``data.meta``.

    ``split`` picks one of a dataset's fixed splits (``split mod meta.num_splits``); ``random_split``
    (``"random:TRAIN/VAL/TEST"``) replaces the masks by a random split seeded by ``split``; extra keyword arguments go
    to the dataset's loader (e.g. ``homophily=`` for ``synthetic-csbm``).
    """
    from . import graphfile

    if graphfile.is_graph_file(name):
        check(not kwargs, f"a graph file takes no loader arguments; got {sorted(kwargs)}", DatasetError)
        return graphfile.load_graph_file(name, split=split, random_split_spec=random_split)
    names = available()
    key = str(name).lower()
    if key not in _LOADERS:
        near = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; available: {', '.join(names)}"
        raise DatasetError(f"unknown dataset {name!r}{hint}")
    data = _LOADERS[key](key, resolve_root(root), split=split, **kwargs)
    if random_split is not None:
        data.update(graphfile.random_split(data.y, data.meta.num_classes, random_split, seed=split))
        data.meta = dataclasses.replace(data.meta, split=f"{random_split} (seed {split})", split_index=split,
                                        num_splits=1)
    return check_data(data, data.meta.num_classes)
