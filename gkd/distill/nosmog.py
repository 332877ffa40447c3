r"""Representation-similarity distillation, after NOSMOG (Tian et al., "Learning MLPs on Graphs: A Unified View of
Effectiveness, Robustness, and Efficiency", ICLR 2023).

On a random batch :math:`B` of the nodes the setting allows, the student's last hidden layer should relate nodes the
way the teacher's does: :math:`\lVert \bar H_S \bar H_S^\top - \bar H_T \bar H_T^\top \rVert^2_F / |B|^2` with rows
L2-normalised, so the widths of teacher and student need not match. NOSMOG's position features (FastRP,
:mod:`gkd.nn.position`) are the ``position`` term: columns appended to the student's input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DatasetError, check, check_int
from ..nn.position import fastrp
from ..train.terms import LossTerm, Step
from .registry import StudentContext, TermOptions, register_term


class RepresentationSimilarity(LossTerm):
    name = "rsd"

    def __init__(self, teacher_hidden: Tensor | None, mask: Tensor, batch_size: int = 512, weight: float = 1.0) -> None:
        super().__init__(weight)
        check(teacher_hidden is not None, "representation-similarity distillation needs the teacher's hidden layer; "
              "this teacher returned logits only (use a zoo model or drop the 'rsd' term)", ConfigError)
        check(isinstance(batch_size, int) and batch_size >= 2, f"rsd batch_size={batch_size!r}; expected >= 2",
              ConfigError)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        self.batch_size = batch_size
        self.register_buffer("idx", mask.nonzero().view(-1))
        self.register_buffer("hidden", F.normalize(teacher_hidden[mask].float(), dim=-1))

    def forward(self, step: Step) -> Tensor:
        check(len(step.hidden) > 0, "representation-similarity distillation needs a student with a hidden layer "
              "(num_layers >= 2)", ConfigError)
        pick = torch.randperm(self.idx.numel(), device=self.idx.device)[: self.batch_size]
        hs = F.normalize(step.hidden[-1][self.idx[pick]], dim=-1)
        ht = self.hidden[pick]
        return (hs @ hs.T - ht @ ht.T).pow(2).mean()


@dataclass
class RSDOptions(TermOptions):
    """``rsd``: nodes per similarity ``batch``."""

    batch: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("rsd batch", self.batch, 2, ConfigError)


@register_term("rsd", kind="student", options=RSDOptions, paper="NOSMOG (ICLR 2023)",
               summary="student/teacher hidden-similarity (Gram) matching on node batches",
               term=RepresentationSimilarity)
def build_rsd(ctx: StudentContext, o: RSDOptions) -> LossTerm:
    k = ctx.knowledge
    return RepresentationSimilarity(k.hidden, k.mask, o.batch, weight=o.weight)


@dataclass
class PositionOptions(TermOptions):
    """``position``: ``dim`` FastRP columns appended to the student's input (it adds no loss, so it has no weight)."""

    dim: int = 64
    drop: float = 0.0  # share of nodes whose position columns are zeroed at each training step (PositionDropout)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.drop, (int, float)) and 0.0 <= self.drop < 1.0,
              f"position drop={self.drop!r}; expected a share of nodes in [0, 1)", ConfigError)
        check(self.weight == 1.0, f"position weight={self.weight!r}: the position term adds input columns, not a "
              "loss, so it takes no weight; expected the default 1.0 (drop the term to switch it off)", ConfigError)
        check_int("position dim", self.dim, 1, ConfigError)  # its upper bound: limits.OPTION_LIMITS


def position_features(edge_index: Tensor, num_nodes: int, observed: Tensor, dim: int, seed: int) -> Tensor:
    """FastRP on the observed graph; nodes outside it get zeros (graph-free)."""
    if not bool(observed.all()):  # transductive: every node observed, no copy of the edges
        edge_index = edge_index[:, observed[edge_index[0]] & observed[edge_index[1]]]
    return fastrp(edge_index, num_nodes, dim, seed=seed) * observed.unsqueeze(-1)


@register_term("position", kind="transform", options=PositionOptions, paper="NOSMOG (ICLR 2023), FastRP",
               summary="structural position features on the student's input (new nodes: zeros)")
def prepare_position(ctx: StudentContext, o: PositionOptions) -> None:
    """Appends FastRP positions to the student's input (``ctx.positions``); adds no loss of its own."""
    d = ctx.data
    ctx.positions = position_features(d.edge_index, d.num_nodes, ctx.knowledge.mask.cpu(), o.dim, ctx.seed)
