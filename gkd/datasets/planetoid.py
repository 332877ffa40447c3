"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split (Yang et al., ICML 2016).

The raw ``ind.NAME.*`` files are Python 2 pickles. gkd never hands them (or anything under a data root) to
``pickle.load`` or to PyG's ``Planetoid`` class, whose ``processed/*.pt`` cache is itself read with pickle: each file
goes through :class:`RestrictedUnpickler`, which can build only the few numpy/scipy/collections objects the format
holds and refuses every other global, so a planted payload is refused before it can run. The graph is then assembled
as PyG's ``read_planetoid_data`` does (same tensors, same order; tested against PyG on generated files), and nothing
is cached: parsing Cora takes well under a second, and no cache means nothing in the root to tamper with or to leave
half-written.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import DatasetError
from .base import DatasetMeta, register, require_files

_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]


def _allowed() -> dict[tuple[str, str], object]:
    import collections
    import copyreg

    import scipy.sparse

    try:  # numpy >= 2 keeps the C module under numpy._core; the pickles name the old numpy.core path
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("collections", "defaultdict"): collections.defaultdict,
             ("copy_reg", "_reconstructor"): copyreg._reconstructor,
             ("copyreg", "_reconstructor"): copyreg._reconstructor}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = _reconstruct
    for module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse"):
        table[(module, "csr_matrix")] = scipy.sparse.csr_matrix
    for module in ("__builtin__", "builtins"):
        table[(module, "list")] = list
        table[(module, "object")] = object
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` returns only the exact classes Planetoid's files reference; any other global
    (``os.system``, ``builtins.eval``, ...) is refused, whatever opcodes (memo, ``STACK_GLOBAL``) name it."""

    _table: dict | None = None

    def find_class(self, module: str, name: str):
        if RestrictedUnpickler._table is None:
            RestrictedUnpickler._table = _allowed()
        try:
            return RestrictedUnpickler._table[(module, name)]
        except KeyError:
            raise _Refused(f"{module} {name}") from None


class _Refused(pickle.UnpicklingError):
    pass


def read_pickle(path: Path) -> object:
    """Unpickle one Planetoid raw file with :class:`RestrictedUnpickler`; a foreign reference or a damaged file is
    one :class:`DatasetError`."""
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy/scipy deprecation notes on the old module paths
            return RestrictedUnpickler(f, encoding="latin1").load()
    except _Refused as e:
        raise DatasetError(f"raw file {str(path)!r} references {str(e)!r}; a Planetoid file may only hold "
                           "numpy/scipy arrays and dicts of lists, so it is refused") from None
    except Exception as e:  # EOFError, UnpicklingError, ValueError ...: truncation or garbage
        raise DatasetError(f"raw file {str(path)!r} is truncated or corrupt ({type(e).__name__}: "
                           f"{str(e)[:200]}); re-copy the Planetoid raw files") from None


def _matrix(obj: object, path: Path, dtype=torch.float) -> Tensor:
    import scipy.sparse

    if isinstance(obj, scipy.sparse.spmatrix):
        try:
            obj = obj.toarray()
        except Exception as e:
            raise DatasetError(f"raw file {str(path)!r} holds a damaged sparse matrix ({e})") from None
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype.kind not in "biuf":
        raise DatasetError(f"raw file {str(path)!r} holds {type(obj).__name__}; expected a 2-D numeric array")
    return torch.from_numpy(np.ascontiguousarray(obj)).to(dtype)


def _graph(obj: object, path: Path) -> dict[int, list[int]]:
    ok = isinstance(obj, dict) and all(isinstance(k, int) and isinstance(v, list) and all(isinstance(i, int) for i in v)
                                       for k, v in obj.items())
    if not ok:
        raise DatasetError(f"raw file {str(path)!r} is not a dict of integer adjacency lists")
    return obj


def read_planetoid(raw: Path, key: str) -> Data:
    """Assemble the graph from ``raw/ind.KEY.*`` exactly as PyG's ``read_planetoid_data`` (public split)."""
    from torch_geometric.io.planetoid import edge_index_from_dict
    from torch_geometric.utils import index_to_mask

    path = {s: raw / f"ind.{key}.{s}" for s in _SUFFIXES}
    x, tx, allx, y, ty, ally = (_matrix(read_pickle(path[s]), path[s]) for s in ("x", "tx", "allx", "y", "ty", "ally"))
    graph = _graph(read_pickle(path["graph"]), path["graph"])
    try:
        test_index = torch.from_numpy(np.loadtxt(path["test.index"], dtype=np.int64, ndmin=1))
    except ValueError as e:
        raise DatasetError(f"raw file {str(path['test.index'])!r} is not a list of node ids ({e})") from None
    if not (test_index.numel() == tx.size(0) == ty.size(0) >= 1 and ally.size(0) == allx.size(0)
            and allx.size(1) == tx.size(1) and int(test_index.min()) >= allx.size(0)):
        raise DatasetError(f"Planetoid files under {str(raw)!r} disagree: allx {tuple(allx.shape)}, ally "
                           f"{tuple(ally.shape)}, tx {tuple(tx.shape)}, ty {tuple(ty.shape)}, "
                           f"{test_index.numel()} test ids")
    train_index = torch.arange(y.size(0))
    val_index = torch.arange(y.size(0), y.size(0) + 500)
    sorted_test_index = test_index.sort()[0]
    if key == "citeseer":  # isolated test nodes leave gaps in the test ids: zero rows fill them (as PyG does)
        span = int(test_index.max() - test_index.min()) + 1
        tx_ext = torch.zeros(span, tx.size(1), dtype=tx.dtype)
        tx_ext[sorted_test_index - test_index.min()] = tx
        ty_ext = torch.zeros(span, ty.size(1), dtype=ty.dtype)
        ty_ext[sorted_test_index - test_index.min()] = ty
        tx, ty = tx_ext, ty_ext
    n = allx.size(0) + tx.size(0)
    if int(test_index.max()) >= n or len(set(test_index.tolist())) != test_index.numel():
        raise DatasetError(f"raw file {str(path['test.index'])!r} holds repeated ids or ids beyond the {n} nodes")
    x = torch.cat([allx, tx], dim=0)
    x[test_index] = x[sorted_test_index]
    y = torch.cat([ally, ty], dim=0).max(dim=1)[1]
    y[test_index] = y[sorted_test_index]
    if any(i < 0 or i >= n for k, v in graph.items() for i in (k, *v)):
        raise DatasetError(f"raw file {str(path['graph'])!r} links node ids outside [0, {n - 1}]")
    return Data(x=x, edge_index=edge_index_from_dict(graph, num_nodes=n), y=y,
                train_mask=index_to_mask(train_index, size=n), val_mask=index_to_mask(val_index, size=n),
                test_mask=index_to_mask(test_index, size=n))


def _files(key: str, root: Path) -> list[Path]:
    return [root / _NAMES[key] / "raw" / f"ind.{key}.{s}" for s in _SUFFIXES]


@register(*_NAMES, files=_files)
def load_planetoid(key: str, root: Path, *, split: int = 0) -> Data:
    name = _NAMES[key]
    raw = root / name / "raw"
    require_files(raw, [p.name for p in _files(key, root)], f"copy the Planetoid raw files ind.{key}.* into "
                  f"{str(raw)!r}")
    data = read_planetoid(raw, key)
    data.meta = DatasetMeta(name=name, num_classes=int(data.y.max()) + 1,
                            split="public (20 per class / 500 val / 1000 test)",
                            source="Planetoid (Yang et al., ICML 2016), raw files read by gkd's restricted unpickler")
    return data
