r"""GLNN: graph-less neural networks (Zhang et al., ICLR 2022).

An MLP student learns :math:`\lambda\,\mathrm{CE}(y, z_S)` on labelled nodes plus
:math:`(1-\lambda)\,T^2\,\mathrm{KL}(\mathrm{softmax}(z_T/T) \Vert \mathrm{softmax}(z_S/T))` on every node the setting
allows (all nodes transductively; observed nodes inductively). The trainer carries :math:`\lambda` as its
``ce_weight``; this term carries :math:`1-\lambda`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DatasetError, check
from ..train.terms import Capabilities, LossTerm, Step
from .losses import check_temperature, weighted_kl
from .registry import StudentContext, TermOptions, register_term


class FixedTargets(LossTerm):
    """KL from the student to fixed per-node target distributions ``target`` (rows of the nodes in ``mask``),
    optionally weighted per node; full-batch or on mini-batches (a batch's seed nodes inside ``mask`` learn their
    rows)."""

    name = "kd"
    caps = Capabilities(minibatch=True, all_nodes=True)

    def __init__(self, target: Tensor, mask: Tensor, temperature: float = 1.0, weight: float = 1.0,
                 node_weight: Tensor | None = None) -> None:
        super().__init__(weight)
        check_temperature(temperature)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        self.temperature = float(temperature)
        self.register_buffer("idx", mask.nonzero().view(-1))
        self.register_buffer("target", target)
        self.node_weight = None if node_weight is None else node_weight[mask]
        self.num_nodes = mask.numel()

    def forward(self, step: Step) -> Tensor:
        check(step.logits.size(-1) == self.target.size(-1),
              f"student has {step.logits.size(-1)} classes; the teacher has {self.target.size(-1)}", DatasetError)
        if step.nodes is None:
            return weighted_kl(self.target, step.logits[self.idx], self.temperature, self.node_weight)
        rows, ids = step.seed_rows()
        if getattr(self, "_pos", None) is None:  # node id -> row of ``target`` (-1: outside the mask), built once
            self._pos = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.idx.device)
            self._pos[self.idx] = torch.arange(self.idx.numel(), device=self.idx.device)
        pos = self._pos[ids]
        keep = pos >= 0
        if not bool(keep.any()):
            return step.logits.new_zeros(())
        pos = pos[keep]
        weight = None if self.node_weight is None else self.node_weight[pos]
        return weighted_kl(self.target[pos], rows[keep], self.temperature, weight)


class GLNN(FixedTargets):
    """Soft-label KD from fixed teacher logits over the nodes in ``mask`` (optionally weighted per node)."""

    name = "kd"

    def __init__(self, teacher_logits: Tensor, mask: Tensor, temperature: float = 1.0, weight: float = 1.0,
                 node_weight: Tensor | None = None) -> None:
        check_temperature(temperature)
        super().__init__(F.softmax(teacher_logits[mask] / temperature, dim=-1), mask, temperature, weight,
                         node_weight)


@register_term("kd", kind="student", options=TermOptions, paper="GLNN (ICLR 2022); Hinton et al. (2015)",
               summary="soft-label KD from the teacher's knowledge on every node the setting allows (methods glnn, gkd)",
               term=FixedTargets)
def build_kd(ctx: StudentContext, o: TermOptions) -> LossTerm:
    # the weight is 1 - kd_lambda (the trainer's ce_weight is kd_lambda), times the term's own weight
    return GLNN(ctx.knowledge.logits, ctx.knowledge.mask, ctx.temperature, ctx.kd_weight * o.weight, ctx.node_weight)


class OnlineKD(LossTerm):
    """:class:`GLNN`'s loss with a live teacher: the frozen ``teacher`` runs (eval mode, no grad) at every step.

    The same targets as a knowledge book of that teacher, recomputed each epoch; ``benchmarks/book_cost.py`` measures
    what the book saves."""

    name = "kd"

    def __init__(self, teacher: nn.Module, x: Tensor, graph: Tensor, mask: Tensor, temperature: float = 1.0,
                 weight: float = 1.0) -> None:
        super().__init__(weight)
        check_temperature(temperature)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        self.teacher = [teacher]  # a list, so the teacher's parameters stay out of the optimiser
        self.x, self.graph, self.idx, self.temperature = x, graph, mask.nonzero().view(-1), float(temperature)

    def forward(self, step: Step) -> Tensor:
        teacher = self.teacher[0]
        teacher.eval()
        with torch.no_grad():
            target = F.softmax(teacher(self.x, self.graph)[self.idx] / self.temperature, dim=-1)
        return weighted_kl(target, step.logits[self.idx], self.temperature)
