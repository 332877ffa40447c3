"""Distillation loss terms, registered by name (:mod:`gkd.distill.registry`); ``gkd terms`` lists them.

A method is a set of registered terms plugged into the one trainer: adding a paper means adding a file that calls
:func:`register_term`, not a training loop. The files are named after the papers; each term's name, paper and options
are in the registry (``gkd terms``):

| file | terms (kind) |
|---|---|
| ``self_distill`` | ``depth``, ``time``, ``neighbour``, ``normalised`` (self); ``self`` (student) |
| ``baselines`` | ``label-smoothing``, ``tf-kd-reg`` (self) |
| ``glnn``, ``bookkd`` | the knowledge-distillation losses of ``gkd distill --method glnn | gkd | bookkd`` |
| ``ffg2m`` | ``neighbour`` (student) |
| ``krd`` | ``reliability`` (student) |
| ``nosmog`` | ``position``, ``rsd`` (student) |
| ``amkd`` | ``amkd`` (student, image), ``bss`` (image) |
| ``mhgd``, ``kd`` | ``mhgd``, ``kd`` (image) |
| ``born_again`` | born-again generations (``--generations``) |
"""
# Import order is registration order: student terms are added to the loss in this order.
from .ffg2m import NeighbourKD  # noqa: I001
from .self_distill import (SELF_DISTILL_TERMS, DepthTerm, NeighbourTerm, NormalizedTerm, SelfDistill, TimeTerm,
                           parse_terms)
from .baselines import LabelSmoothing, TfKDReg
from .krd import reliability_weights
from .nosmog import RepresentationSimilarity, position_features
from .amkd import GraphBoundaryDistill, ImageBoundaryDistill, TeacherView
from .mhgd import MHGD
from .kd import ImageKD
from .glnn import GLNN, OnlineKD
from .bookkd import BookKD
from .born_again import BornAgain
from .knowledge import Knowledge, teacher_knowledge
from .losses import check_temperature, soft_kl, weighted_kl
from .registry import (ImageContext, SelfContext, StudentContext, TermOptions, TermSpec, get_term, register_term,
                       term_names)
from ..train.trainer import LossTerm, Step

__all__ = ["register_term", "LossTerm", "Step", "TermOptions", "TermSpec", "get_term", "term_names", "SelfContext", "StudentContext",
           "ImageContext", "SelfDistill", "NeighbourTerm", "DepthTerm", "TimeTerm", "NormalizedTerm",
           "SELF_DISTILL_TERMS", "parse_terms", "LabelSmoothing", "TfKDReg", "NeighbourKD", "reliability_weights",
           "RepresentationSimilarity", "position_features", "GraphBoundaryDistill", "ImageBoundaryDistill",
           "TeacherView", "MHGD", "ImageKD", "GLNN", "OnlineKD", "BookKD", "BornAgain", "Knowledge",
           "teacher_knowledge", "check_temperature", "soft_kl", "weighted_kl"]
