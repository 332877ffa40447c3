"""Relational graphs from embeddings: MHGD's multi-head attention builder (Lee & Song, BMVC 2019)."""
from .builder import MultiHeadGraphBuilder, RelationHead
from .compress import compress, compress_student
from .relational import load_graph, relational_graph, save_graph, with_split

__all__ = ["MultiHeadGraphBuilder", "RelationHead", "compress", "compress_student", "relational_graph",
           "with_split", "save_graph", "load_graph"]
