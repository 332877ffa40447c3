"""Graphs from embeddings: MHGD's multi-head attention builder (Lee & Song, BMVC 2019) and the feature kNN graph."""
from .builder import MultiHeadGraphBuilder, RelationHead
from .compress import compress, compress_student
from .knn import knn_graph
from .relational import load_graph, relational_graph, save_graph, with_split

__all__ = ["MultiHeadGraphBuilder", "RelationHead", "compress", "compress_student", "relational_graph",
           "with_split", "save_graph", "load_graph", "knn_graph"]
