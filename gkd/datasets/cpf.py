"""The CPF files that GLNN (ICLR 2022), NOSMOG (ICLR 2023) and VQGraph (ICLR 2024) report on, read with their protocol.

``cpf-cora`` and ``cpf-citeseer`` read ``ROOT/cpf/cora.npz`` and ``ROOT/cpf/citeseer.npz`` (the Shchur layout, as the
CPF repository ships them; no pickle: the name arrays are text and are skipped) and apply what GLNN's
``load_cpf_data`` does: the graph made unweighted, undirected and free of self-loops, cut to its largest connected
component (Cora 2,485 nodes, CiteSeer 2,110), raw bag-of-words features, and for run ``r`` the split
``per-class:20/30`` drawn with ``numpy.random.RandomState(r)``: GLNN's split for seed ``r``, draw for draw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch_geometric.data import Data

from ..errors import DatasetError, GKDError
from .base import register, require_files

CPF = {"cpf-cora": "cora", "cpf-citeseer": "citeseer"}
SPLIT = "per-class:20/30"


def _files(key: str, root: Path) -> list[Path]:
    return [root / "cpf" / f"{CPF[key]}.npz"]


@register(*CPF, files=_files)
def load_cpf(key: str, root: Path, *, split: int = 0) -> Data:
    from ..io import read_npz
    from .graphfile import READ_NAMES, _member_names, _shchur, from_arrays

    path = _files(key, root)[0]
    require_files(path.parent, [path.name], f"copy the CPF repository's {path.name} into {str(path.parent)!r}")
    try:
        arrays = read_npz(path, "CPF file", skip_text=True, numeric=READ_NAMES)
    except GKDError as e:
        raise DatasetError(str(e)) from None
    x, edge_index, _, read = _shchur(arrays, path)  # unweighted: the weights are dropped, as GLNN's to_unweighted
    if "labels" not in arrays:
        raise DatasetError(f"CPF file {str(path)!r} has no labels array")
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]  # no self-loops
    unused = tuple(sorted(_member_names(path) - read - {"labels"}))
    return from_arrays(x, edge_index, np.asarray(arrays["labels"], dtype=np.int64), split=split,
                       random_split_spec=SPLIT, name=key, largest_component=True, unused=unused, notify=False,
                       source=f"CPF file {str(path)!r}, GLNN's protocol (unweighted, undirected, no self-loops, "
                              "largest connected component)")
