"""What a command does, also the Python API: ``gkd train`` (:func:`run_training`), GNN-to-MLP distillation
(:class:`GNNToMLP`, :func:`run_distillation`, the distiller :func:`distill_mlp`), books (:func:`make_book`), CNN
distillation (:func:`run_cnn_distillation`), the one seed runner (:func:`run_seeds`), model artefacts
(:func:`save` / :func:`load`) and answering nodes with them (:func:`predict`)."""
from .artifact import ArtifactError, load, read_manifest, save
from .gnn2mlp import DistillConfig, GNNToMLP, make_book, run_distillation, teacher_stage
from ..vision.pipeline import CNNDistillConfig, run_cnn_distillation
from .seeds import run_seeds
from .serve import predict
from .student import DistillOptions, distill_mlp
from .train import run_training, train_run

__all__ = ["GNNToMLP", "DistillConfig", "DistillOptions", "distill_mlp", "run_distillation", "teacher_stage",
           "make_book", "run_training", "train_run", "CNNDistillConfig", "run_cnn_distillation", "run_seeds", "save",
           "load", "read_manifest", "predict", "ArtifactError"]
