"""The CPF files that GLNN (ICLR 2022), NOSMOG (ICLR 2023) and VQGraph (ICLR 2024) report on, read with their protocol.

``cpf-cora`` and ``cpf-citeseer`` read ``ROOT/cpf/cora.npz`` and ``ROOT/cpf/citeseer.npz`` (the Shchur layout, as the
CPF repository ships them; no pickle: the name arrays are text and are skipped) and apply what GLNN's
``load_cpf_data`` does: the graph made unweighted, undirected and free of self-loops, cut to its largest connected
component (Cora 2,485 nodes, CiteSeer 2,110), raw bag-of-words features, and for run ``r`` the split
``per-class:20/30`` drawn with ``numpy.random.RandomState(r)``: GLNN's split for seed ``r``, draw for draw.
"""
from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from .base import register, require_files

CPF = {"cpf-cora": "cora", "cpf-citeseer": "citeseer"}
SPLIT = "per-class:20/30"


def _files(key: str, root: Path) -> list[Path]:
    return [root / "cpf" / f"{CPF[key]}.npz"]


@register(*CPF, files=_files)
def load_cpf(key: str, root: Path, *, split: int = 0) -> Data:
    from .graphfile import load_graph_file

    path = _files(key, root)[0]
    require_files(path.parent, [path.name], f"copy the CPF repository's {path.name} into {str(path.parent)!r}")
    return load_graph_file(path, split=split, random_split_spec=SPLIT, directed=False, largest_component=True,
                           self_loops=False, weighted=False, name=key, notify=False,
                           source=f"CPF file {str(path)!r}, GLNN's protocol (unweighted, undirected, no self-loops, "
                                  "largest connected component)")
