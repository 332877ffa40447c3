"""What a command does, also the Python API: GNN-to-MLP distillation (:class:`GNNToMLP`), model artefacts
(:func:`save` / :func:`load`) and answering nodes with them (:func:`predict`)."""
from .artifact import ArtifactError, load, read_manifest, save
from .gnn2mlp import DistillConfig, GNNToMLP, run_distillation, teacher_stage
from .serve import predict

__all__ = ["GNNToMLP", "DistillConfig", "run_distillation", "teacher_stage", "save", "load", "read_manifest",
           "predict", "ArtifactError"]
