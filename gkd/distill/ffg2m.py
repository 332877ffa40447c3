r"""Neighbour-aware KD, after FF-G2M (Wu et al., AAAI 2023).

FF-G2M's low-frequency term lets the student at node :math:`i` match the teacher at :math:`i`'s neighbours:
:math:`\frac1{|N(i)|}\sum_{j \in N(i)} \mathrm{CE}(p^T_j, p^S_i) = \mathrm{CE}(\bar p^T_i, p^S_i)` with
:math:`\bar p^T = D^{-1}A\,p^T`, i.e. KL to the neighbour-averaged teacher. gkd generalises the average to ``steps``
of personalised-PageRank smoothing, :math:`Z_{k+1} = (1-\alpha)\hat A Z_k + \alpha p^T`, with training labels clamped
in (label propagation over the teacher's beliefs, as in Correct & Smooth, Huang et al., ICLR 2021). ``steps=1,
alpha=0, clamp=False`` is FF-G2M's average (over :math:`\hat A`, which includes the node itself).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DatasetError, check
from ..nn.propagation import appnp_propagate, normalized_adjacency
from ..train.terms import LossTerm
from .glnn import FixedTargets
from .losses import check_temperature
from .registry import StudentContext, TermOptions, register_term


@dataclass
class NeighbourKDOptions(TermOptions):
    """``neighbour`` (student): smoothing ``steps`` and restart weight ``alpha`` of the teacher's predictions."""

    steps: int = 10
    alpha: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.steps, int) and self.steps >= 1, f"neighbour steps={self.steps!r}; expected an "
              "integer >= 1", ConfigError)
        check(0.0 <= self.alpha < 1.0, f"neighbour alpha={self.alpha!r}; expected a value in [0, 1)", ConfigError)


@torch.no_grad()
def neighbour_targets(teacher_logits: Tensor, edge_index: Tensor, y: Tensor, train_mask: Tensor, *,
                      temperature: float = 1.0, steps: int = 10, alpha: float = 0.1, clamp: bool = True) -> Tensor:
    """The smoothed teacher distribution ``[N, C]`` over the graph the teacher saw."""
    n, c = teacher_logits.shape
    p = F.softmax(teacher_logits / temperature, dim=-1)
    if clamp:
        p = torch.where(train_mask.unsqueeze(-1), F.one_hot(y.clamp_min(0), c).to(p.dtype), p)  # -1: not clamped
    z = appnp_propagate(normalized_adjacency(edge_index, n), p, steps, alpha, train_mask if clamp else None)
    return z / z.sum(-1, keepdim=True).clamp_min(1e-12)


class NeighbourKD(FixedTargets):
    """KL from the student to :func:`neighbour_targets` over the nodes in ``mask`` (full-batch or mini-batch)."""

    name = "neighbour"

    def __init__(self, teacher_logits: Tensor, edge_index: Tensor, y: Tensor, train_mask: Tensor, mask: Tensor, *,
                 temperature: float = 1.0, steps: int = 10, alpha: float = 0.1, clamp: bool = True,
                 weight: float = 1.0, node_weight: Tensor | None = None) -> None:
        check_temperature(temperature)
        NeighbourKDOptions(weight, steps, alpha)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        t = neighbour_targets(teacher_logits, edge_index, y, train_mask & mask, temperature=temperature,
                              steps=steps, alpha=alpha, clamp=clamp)
        super().__init__(t[mask], mask, temperature, weight, node_weight)


@register_term("neighbour", kind="student", options=NeighbourKDOptions, paper="FF-G2M (AAAI 2023), C&S (ICLR 2021)",
               summary="KL to the teacher's predictions smoothed over the graph, labels clamped",
               term=NeighbourKD)
def build_neighbour_kd(ctx: StudentContext, o: NeighbourKDOptions) -> LossTerm:
    k = ctx.knowledge
    return NeighbourKD(k.logits, ctx.edge_index, ctx.data.y, ctx.data.train_mask, k.mask,
                       temperature=ctx.temperature, steps=o.steps, alpha=o.alpha, weight=o.weight,
                       node_weight=ctx.node_weight)
