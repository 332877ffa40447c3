"""The image side: CNN teachers and students, MHGD's relational-graph builder and the image distillation terms.

| module | what |
|---|---|
| ``cnn`` | small CNNs, :class:`FeatureTaps` (any module's outputs by layer name) |
| ``digits`` | scikit-learn's digits and gkd's per-seed protocol (:class:`ImageSplit`) |
| ``trainer`` | :class:`ImageTrainer`, the mini-batch trainer of CNN students (:class:`ImageStep`) |
| ``compress``, ``builder``, ``relational`` | MHGD's builder (Lee & Song, BMVC 2019): feature compression, the
  multi-head attention builder, the dataset-level relational graph (``gkd graph``) |
| ``amkd``, ``mhgd``, ``kd`` | the registered ``image`` terms: ``bss``, ``amkd``; ``mhgd``; ``kd`` |
| ``pipeline`` | ``gkd cnn`` (:func:`run_cnn_distillation`) and ``gkd graph`` (:func:`build_graph`) |

Importing the package registers the image terms (``gkd terms``), in this order.
"""
# Import order is registration order of the image terms.
from .cnn import CNN, FeatureTaps  # noqa: I001
from .digits import ImageSplit, digits_split
from .trainer import ImageStep, ImageTrainer
from .compress import compress, compress_student
from .builder import MultiHeadGraphBuilder, RelationHead
from .relational import edge_homophily, load_graph, relational_graph, save_graph, with_split
from .amkd import ImageBoundaryDistill
from .mhgd import MHGD
from .kd import ImageKD
from .pipeline import (CNN_METHODS, CNNDistillConfig, build_graph, cnn_student_run, cnn_teacher_stage,
                       run_cnn_distillation)

__all__ = ["CNN", "FeatureTaps", "ImageSplit", "digits_split", "ImageTrainer", "ImageStep", "compress",
           "compress_student", "MultiHeadGraphBuilder", "RelationHead", "relational_graph", "with_split", "save_graph",
           "load_graph", "ImageBoundaryDistill", "MHGD", "ImageKD", "CNN_METHODS", "CNNDistillConfig",
           "run_cnn_distillation", "build_graph", "cnn_teacher_stage", "cnn_student_run", "edge_homophily"]
