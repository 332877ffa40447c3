"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split (Yang et al., ICML 2016).

Raw files are Python pickles, so before PyG reads them each one is checked statically (without executing it) to
reference only the numpy/scipy/collections classes the format needs; a truncated or tampered file is refused.
"""
from __future__ import annotations

import pickletools
from pathlib import Path

from torch_geometric.data import Data

from ..errors import DatasetError
from .registry import DatasetMeta, ensure_writable, read_pyg, register, require_files

_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]
_ALLOWED_GLOBALS = {
    "numpy.core.multiarray _reconstruct", "numpy._core.multiarray _reconstruct", "numpy ndarray", "numpy dtype",
    "scipy.sparse.csr csr_matrix", "scipy.sparse._csr csr_matrix", "collections defaultdict", "__builtin__ list",
    "builtins list", "copy_reg _reconstructor", "__builtin__ object", "builtins object",
}


def check_pickle(path: Path) -> None:
    """Walk the pickle's opcodes (nothing is executed): it must end with STOP and import only allowed classes."""
    data = path.read_bytes()
    try:
        ops = list(pickletools.genops(data))
    except Exception as e:  # pickletools raises ValueError for truncation, others for garbage
        raise DatasetError(f"raw file {str(path)!r} is truncated or corrupt ({e}); re-copy the Planetoid raw files")
    strings: list[str] = []
    for op, arg, _ in ops:
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "SHORT_BINSTRING", "BINSTRING"):
            strings.append(arg)
        if op.name in ("GLOBAL", "INST"):
            ref = arg
        elif op.name == "STACK_GLOBAL":
            ref = " ".join(strings[-2:])
        else:
            continue
        if ref not in _ALLOWED_GLOBALS:
            raise DatasetError(f"raw file {str(path)!r} references {ref!r}; a Planetoid file may only hold "
                               "numpy/scipy arrays and dicts of lists, so it is refused")


@register(*_NAMES)
def load_planetoid(key: str, root: Path, *, split: int = 0) -> Data:
    from torch_geometric.datasets import Planetoid

    name = _NAMES[key]
    raw = root / name / "raw"
    files = [f"ind.{key}.{s}" for s in _SUFFIXES]
    require_files(raw, files, f"copy the Planetoid raw files ind.{key}.* into {str(raw)!r}")
    processed = root / name / "processed"
    if not (processed / "data.pt").is_file():
        for f in files:
            if not f.endswith("test.index"):
                check_pickle(raw / f)
        ensure_writable(processed)
    data = read_pyg(lambda: Planetoid(str(root), name, split="public")[0], processed,
                    f"Planetoid {name} from {str(raw)!r}")
    n_cls = int(data.y.max()) + 1
    data.meta = DatasetMeta(name=name, num_classes=n_cls, split="public (20 per class / 500 val / 1000 test)",
                            source="Planetoid (Yang et al., ICML 2016) via torch_geometric.datasets.Planetoid")
    return data
