r"""MHGD: graph-based distillation through a frozen multi-head attention builder (Lee & Song, BMVC 2019).

Teacher and student taps are compressed (:mod:`gkd.vision.compress`; the student's are projected to the teacher's
widths by learned linear maps) and passed through the same frozen :class:`~gkd.vision.MultiHeadGraphBuilder`. For each
tap pair and head, relations are softened by :math:`\tanh` before the row softmax,
:math:`G = \mathrm{softmax}(\tanh(S))`, and the loss is

.. math::
    \mathcal{L}_\text{MHGD} = \frac{1}{P H B} \sum_{p,h,i} \mathrm{KL}\big(G^{p,h}_{S,i} \,\Vert\, G^{p,h}_{T,i}\big),

the student's relations measured against the teacher's (the paper's direction). As in MHGD/KD-SVD, the term's gradient
is capped: :class:`~gkd.vision.trainer.ImageTrainer` rescales it to at most ``grad_cap`` times the cross-entropy's
gradient norm at every step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distill.registry import ImageContext, TermOptions, register_term
from ..errors import ConfigError, DatasetError, check
from ..train.terms import LossTerm
from .builder import MultiHeadGraphBuilder
from .compress import compress_student
from .trainer import ImageStep


def relation_kl(s_student: Tensor, s_teacher: Tensor) -> Tensor:
    """Mean over heads and rows of KL(softmax(tanh S_s) || softmax(tanh S_t)); logits are ``[H, B, B]``."""
    log_s = F.log_softmax(torch.tanh(s_student), dim=-1)
    log_t = F.log_softmax(torch.tanh(s_teacher), dim=-1)
    return (log_s.exp() * (log_s - log_t)).sum(-1).mean()


class MHGD(LossTerm):
    """The MHGD term for :class:`~gkd.vision.trainer.ImageTrainer`.

    Args:
        builder: trained on the teacher's compressed taps, frozen here.
        teacher_feats: the teacher's compressed taps over the whole dataset (each ``[N, D_t]``), indexed by
            :attr:`ImageStep.index`.
        student_widths: channel widths of the student's taps; a learned projection is added where they differ from
            the teacher's.
        k: singular vectors the student keeps for alignment.
    """

    name = "mhgd"

    def __init__(self, builder: MultiHeadGraphBuilder, teacher_feats: list[Tensor], student_widths: list[int],
                 k: int = 2, weight: float = 1.0, grad_cap: float | None = 1.0) -> None:
        super().__init__(weight)
        check(len(teacher_feats) == len(builder.dims) == len(student_widths), f"{len(student_widths)} student taps, "
              f"{len(teacher_feats)} teacher taps and a builder for {len(builder.dims)}; expected one count",
              ConfigError)
        check(isinstance(k, int) and k >= 1, f"k={k!r}; expected an integer >= 1", ConfigError)
        check(grad_cap is None or grad_cap > 0, f"grad_cap={grad_cap!r}; expected > 0 or None", ConfigError)
        self.builder = [builder.freeze()]  # a list: frozen, and out of the optimiser
        self.teacher_feats = [t.detach() for t in teacher_feats]
        self.k, self.grad_cap = k, grad_cap
        self.project = nn.ModuleList(nn.Identity() if ws == wt else nn.Linear(ws, wt, bias=False)
                                     for ws, wt in zip(student_widths, builder.dims))

    def forward(self, step: ImageStep) -> Tensor:
        check(len(step.features) == len(self.project), f"the trainer tapped {len(step.features)} student layers; "
              f"MHGD needs {len(self.project)}", DatasetError)
        teacher = [t[step.index] for t in self.teacher_feats]
        student = [compress_student(f, t, self.k, p) for f, t, p in zip(step.features, teacher, self.project)]
        builder = self.builder[0]
        return torch.stack([relation_kl(s, t) for s, t in zip(builder(student), builder(teacher))]).mean()


@dataclass
class MHGDOptions(TermOptions):
    """``mhgd``: the term's gradient norm is capped at ``grad_cap`` times the cross-entropy's."""

    grad_cap: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.grad_cap > 0, f"grad_cap={self.grad_cap!r}; expected > 0", ConfigError)


@register_term("mhgd", kind="image", options=MHGDOptions, paper="MHGD (Lee & Song, BMVC 2019)",
               summary="the student's relational graphs (multi-head attention over a batch) match the teacher's",
               term=MHGD)
def build_mhgd(ctx: ImageContext, o: MHGDOptions) -> LossTerm:
    t = ctx.teacher
    check(t.builder is not None, "MHGD needs the teacher stage's builder (builder=True)", ConfigError)
    return MHGD(t.builder, t.feats, list(ctx.student_channels), weight=o.weight, grad_cap=o.grad_cap)
