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

Importing the package registers the image terms (``gkd terms``), in the order of the table.
"""
# The image terms register on import, in this order; the rest is imported on first use (the relational graph and
# the pipelines import PyG, which `gkd terms` does not need).
from .amkd import ImageBoundaryDistill  # noqa: I001
from .mhgd import MHGD
from .kd import ImageKD
from .trainer import ImageStep, ImageTrainer
from .compress import compress, compress_student
from .builder import MultiHeadGraphBuilder, RelationHead
from ..lazy import lazy_exports

_WHERE = {"CNN": "cnn", "FeatureTaps": "cnn", "ImageSplit": "digits", "digits_split": "digits",
          "relational_graph": "relational", "with_split": "relational", "save_graph": "relational",
          "load_graph": "relational", "edge_homophily": "relational", "CNN_METHODS": "pipeline",
          "CNNDistillConfig": "pipeline", "run_cnn_distillation": "pipeline", "build_graph": "pipeline",
          "cnn_teacher_stage": "pipeline", "cnn_student_run": "pipeline"}
__all__ = ["CNN", "FeatureTaps", "ImageSplit", "digits_split", "ImageTrainer", "ImageStep", "compress",
           "compress_student", "MultiHeadGraphBuilder", "RelationHead", "relational_graph", "with_split", "save_graph",
           "load_graph", "ImageBoundaryDistill", "MHGD", "ImageKD", "CNN_METHODS", "CNNDistillConfig",
           "run_cnn_distillation", "build_graph", "cnn_teacher_stage", "cnn_student_run", "edge_homophily"]
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
