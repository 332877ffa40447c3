"""Graphs built from node features: the feature kNN graph (the ``neighbour`` self term's ``features`` graph).
MHGD's attention graph builder is image-side: :mod:`gkd.vision`."""
from .knn import knn_graph

__all__ = ["knn_graph"]
