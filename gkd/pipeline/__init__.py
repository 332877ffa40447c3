"""What a command does, also the Python API: ``gkd train`` (:func:`run_training`), GNN-to-MLP distillation
(:class:`GNNToMLP`, :func:`run_distillation`, the distiller :func:`distill_mlp`), books (:func:`make_book`), CNN
distillation (:func:`run_cnn_distillation`), the one seed runner (:func:`run_seeds`), model artefacts
(:func:`save` / :func:`load`) and answering nodes with them (:func:`predict`).

The stages of one seed are public too: :func:`teacher_stage` (a :class:`TeacherStage`), then :func:`student_stage`
(:func:`student_candidates` and the student guard's :func:`guard_pick`); a run's settings are :class:`TrainConfig`
/ :class:`DistillConfig` (:func:`make_config` reads YAML and flags into one; :func:`parse_yaml` is its strict
YAML reader); books are :func:`write_book` / :func:`open_book`."""
from ..book import open_book, write_book
from ..config import TrainConfig, make_config, parse_yaml
from .artifact import ArtifactError, load, read_manifest, save
from .gnn2mlp import (DistillConfig, GNNToMLP, guard_pick, make_book, run_distillation, student_candidates,
                      student_stage, teacher_stage)
from ..vision.pipeline import CNNDistillConfig, run_cnn_distillation
from .scoring import node_logits
from .seeds import run_seeds
from .serve import predict
from .student import GKD_TERMS, DistillOptions, distill_mlp
from .teachers import TeacherStage
from .train import build_method, run_training, train_run

__all__ = ["GNNToMLP", "DistillConfig", "DistillOptions", "distill_mlp", "run_distillation", "teacher_stage",
           "make_book", "run_training", "train_run", "CNNDistillConfig", "run_cnn_distillation", "run_seeds", "save",
           "load", "read_manifest", "predict", "ArtifactError", "TrainConfig", "make_config", "TeacherStage",
           "student_stage", "student_candidates", "guard_pick", "node_logits", "GKD_TERMS", "build_method",
           "open_book", "write_book", "parse_yaml"]
