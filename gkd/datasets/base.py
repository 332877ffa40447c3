"""What every loader shares: :class:`DatasetMeta`, the loader table that :func:`register` fills, and the data root.

The loaders import this module, and :mod:`.registry` imports the loaders, so imports only point down."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from torch_geometric.data import Data

from ..errors import DatasetError

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
    edges: str = "undirected"  # the edge policy the graph was read with (gkd.datasets.arrays.from_arrays)
    unused: tuple[str, ...] = ()  # arrays of the source file that were not read
    split_per_run: bool = False  # a split drawn from the run index: each run reloads with its own

    def to_dict(self) -> dict:
        return {**asdict(self), "unused": list(self.unused)}


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


_NOTICED: set[str] = set()


def notice(message: str) -> None:
    """One line on stderr about something done to the data that the user did not ask for by name (an edge policy
    applied, arrays left unused): never silent, never an error; once per process (runs reload their data)."""
    import sys

    if message not in _NOTICED:
        _NOTICED.add(message)
        print(f"gkd: notice: {message}", file=sys.stderr)


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
