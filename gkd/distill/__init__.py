"""Distillation loss terms, registered by name (:mod:`gkd.distill.registry`); ``gkd terms`` lists them.

A method is a set of registered terms plugged into the one trainer: adding a paper means adding a file that calls
:func:`register_term`, not a training loop. The files are named after the papers; each term's name, paper and options
are in the registry (``gkd terms``):

| file | terms (kind) |
|---|---|
| ``byot`` | ``depth`` (self): BYOT + GNN-SD |
| ``pskd`` | ``time`` (self): PS-KD |
| ``neighbour`` | ``neighbour`` (self): label propagation of the model's own predictions |
| ``uskd`` | ``normalised`` (self): USKD |
| ``student_self`` | ``self`` (student): the ``neighbour`` self term over the teacher's graph |
| ``self_distill`` | what the self terms share (``LateStart``, ``--sd-terms``) and :class:`SelfDistill` (your own loop) |
| ``baselines`` | ``label-smoothing``, ``tf-kd-reg`` (self) |
| ``glnn``, ``bookkd`` | ``kd``, ``bookkd`` (student): the knowledge terms of ``gkd distill --method glnn | gkd | bookkd`` |
| ``baselines`` | ``label-smoothing`` (student): the hard-label term of ``--method bookkd`` |
| ``ffg2m`` | ``neighbour`` (student) |
| ``krd`` | ``reliability`` (student) |
| ``nosmog`` | ``position``, ``rsd`` (student) |
| ``amkd`` | ``amkd`` (student); BSS/AMKD's attack and losses, which the image terms share |
| ``born_again`` | born-again generations (``--generations``) |

The ``image`` terms (``bss``, ``amkd``, ``mhgd``, ``kd``) live with the CNNs in :mod:`gkd.vision`.
"""
# Import order is registration order, the order ``gkd terms`` lists them (losses are added in the order a run's
# configuration names its terms): the knowledge terms of the methods first.
from .glnn import GLNN, OnlineKD  # noqa: I001
from .bookkd import BookKD
from .ffg2m import NeighbourKD
from .byot import DepthTerm
from .pskd import TimeTerm
from .neighbour import NeighbourTerm
from .uskd import NormalizedTerm
from .student_self import FixedGraph  # noqa: F401  (registers the student term 'self')
from .self_distill import SELF_DISTILL_TERMS, SelfDistill, parse_terms
from .baselines import LabelSmoothing, TfKDReg
from .krd import reliability_weights
from .nosmog import RepresentationSimilarity, position_features
from .amkd import GraphBoundaryDistill
from .born_again import BornAgain
from .knowledge import Knowledge, TeacherView, teacher_knowledge
from .losses import check_temperature, soft_kl, weighted_kl
from .registry import (ImageContext, SelfContext, StudentContext, TermOptions, TermSpec, get_term, register_term,
                       term_names)
from ..train.terms import LossTerm, Step

__all__ = ["register_term", "LossTerm", "Step", "TermOptions", "TermSpec", "get_term", "term_names", "SelfContext", "StudentContext",
           "ImageContext", "SelfDistill", "NeighbourTerm", "DepthTerm", "TimeTerm", "NormalizedTerm",
           "SELF_DISTILL_TERMS", "parse_terms", "LabelSmoothing", "TfKDReg", "NeighbourKD", "reliability_weights",
           "RepresentationSimilarity", "position_features", "GraphBoundaryDistill", "TeacherView", "GLNN", "OnlineKD",
           "BookKD", "BornAgain", "Knowledge", "teacher_knowledge", "check_temperature", "soft_kl", "weighted_kl"]
