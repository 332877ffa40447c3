"""Datasets: ``load(name, root=None, **kwargs)`` → PyG ``Data`` with split masks and ``data.meta``.

Data root: the ``root`` argument, else ``$GKD_DATA``, else the repository's ``datasets/``. Under it each dataset sits
where PyG/OGB put it given that root (``<root>/Cora/raw/ind.cora.x``, ``<root>/texas/raw``, ``<root>/Actor/raw``,
``<root>/ogbn_arxiv/raw``). Your own graph: ``load("path/graph.npz")`` or ``from_arrays`` / ``from_scipy`` /
``from_networkx`` (:mod:`gkd.datasets.arrays`; files: :mod:`gkd.datasets.graphfile`; splits:
:mod:`gkd.datasets.splits`). Nothing is downloaded: a missing dataset is one clear error naming the path.
"""
from .arrays import from_arrays, from_networkx, from_scipy
from .csbm import csbm
from .graphfile import load_graph_file, save_graph_file
from .inductive import InductiveSplit, inductive_split
from .registry import DatasetMeta, available, default_root, load, resolve_root
from .splits import random_split
from .validate import check_data, check_edge_index

__all__ = ["load", "available", "default_root", "resolve_root", "DatasetMeta", "csbm", "check_data",
           "check_edge_index", "from_arrays", "from_networkx", "from_scipy", "load_graph_file", "save_graph_file",
           "random_split", "inductive_split", "InductiveSplit"]
