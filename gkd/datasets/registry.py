"""Dataset registry, data-root resolution and the one entry point :func:`load`."""
from __future__ import annotations

import difflib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from torch_geometric.data import Data

from ..errors import DatasetError
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
_LOADERS: dict[str, Loader] = {}


def register(*names: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        for n in names:
            _LOADERS[n.lower()] = fn
        return fn
    return deco


def available() -> list[str]:
    from . import csbm, ogb, planetoid, webkb  # noqa: F401  (registration side effects)
    return sorted(_LOADERS)


def default_root() -> Path:
    """``$GKD_DATA`` if set, else the repository's ``datasets/`` folder."""
    env = os.environ.get("GKD_DATA")
    return Path(env) if env else _REPO_DATASETS


def resolve_root(root: str | os.PathLike | None) -> Path:
    """Data root precedence: ``root`` argument > ``$GKD_DATA`` > ``datasets/``."""
    return Path(root) if root is not None else default_root()


def ensure_writable(path: Path) -> None:
    """Fail clearly when a dataset must be processed into ``path`` but it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as e:
        raise DatasetError(f"data root {str(path)!r} is not writable ({e.strerror}); processed files go there. "
                           "Pass a writable --root or set GKD_DATA") from None


@contextmanager
def processing_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive file lock for ``folder`` while PyG processes (or reads) a dataset there, so that parallel
    workers loading the same dataset for the first time never read a half-written ``processed/data.pt``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no inter-process lock
        yield
        return
    try:  # the lock file sits beside the folder, so the folder itself holds only what PyG writes
        folder.parent.mkdir(parents=True, exist_ok=True)
        f = open(folder.parent / f".{folder.name}.gkd-lock", "a")
    except OSError:  # a read-only root holds finished files: nobody writes there, so nothing to wait for
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_pyg(make: Callable[[], Data], processed: Path, what: str) -> Data:
    """``make()`` (a PyG dataset's first graph) under :func:`processing_lock`; PyG's own failures become one
    :class:`DatasetError` naming ``what`` was being read."""
    try:
        with processing_lock(processed):
            return make()
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"could not read {what}: {type(e).__name__}: {e}") from None


def require_files(folder: Path, files: list[str], how: str) -> None:
    """Raise one clear error naming the folder and the first missing file; never try to download."""
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"dataset files not found: {str(folder / missing[0])!r} "
                           f"({len(missing)} of {len(files)} missing). No download is attempted; {how}")


def load(name: str, root: str | os.PathLike | None = None, *, split: int = 0, **kwargs) -> Data:
    """Load dataset ``name`` as a PyG ``Data`` with 1-D ``train_mask/val_mask/test_mask`` and ``data.meta``.

    ``split`` picks one of a dataset's fixed splits (``split mod meta.num_splits``); extra keyword arguments go to the
    dataset's loader (e.g. ``homophily=`` for ``synthetic-csbm``).
    """
    names = available()
    key = str(name).lower()
    if key not in _LOADERS:
        near = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; available: {', '.join(names)}"
        raise DatasetError(f"unknown dataset {name!r}{hint}")
    data = _LOADERS[key](key, resolve_root(root), split=split, **kwargs)
    return check_data(data, data.meta.num_classes)
