r"""The ``normalised`` self term: USKD (Yang et al., "From Knowledge Distillation to Self-Knowledge Distillation: A
Unified Approach with Normalized Loss and Customized Soft Labels", ICCV 2023).

Target part: each labelled node's cross-entropy re-weighted by :math:`w = s_t^2 + 1 - \overline{s_t^2}`; non-target
part: cross-entropy against Zipf soft labels :math:`\propto 1/\mathrm{rank}` over the non-target classes
(:class:`NormalizedTerm`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check
from ..train.terms import Capabilities, LossTerm, Step
from .registry import SelfContext, register_term
from .self_distill import LateStart, LateStartOptions


@dataclass
class NormalisedOptions(LateStartOptions):
    """``normalised``: weight of the non-target (Zipf) part."""

    non_target_weight: float = 1.0

    term = "normalised"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.non_target_weight >= 0, f"normalised non_target_weight={self.non_target_weight}; expected >= 0",
              ConfigError)



class NormalizedTerm(LateStart):
    r"""Normalised target / non-target self-KD (USKD, Yang et al., ICCV 2023).

    Target part: each labelled node's cross-entropy is re-weighted by :math:`w = s_t^2 + 1 - \overline{s_t^2}`
    (:math:`s_t` its detached target-class probability, the mean over labelled nodes), so the weights average to 1.
    Non-target part: the non-target classes are ranked by the node's own detached logits and given Zipf soft labels
    :math:`\propto 1/\mathrm{rank}`; the loss is the cross-entropy against the softmax over non-target logits only.
    The trainer's plain cross-entropy is subtracted so that ``weight = 1`` replaces it by USKD's target loss.
    """

    name = "normalised"
    caps = Capabilities(minibatch=True, late_start=True)

    def __init__(self, weight: float = 1.0, non_target_weight: float = 1.0, warmup: int = 100,
                 restart: bool = True) -> None:
        super().__init__(weight, warmup, restart)
        NormalisedOptions(weight=weight, warmup=warmup, restart=restart, non_target_weight=non_target_weight)
        self.non_target_weight = non_target_weight

    def loss(self, logits: Tensor, y: Tensor, train_mask: Tensor) -> Tensor:
        if not bool(train_mask.any()):  # a mini-batch without a training seed node
            return logits.new_zeros(())
        z, t = logits[train_mask], y[train_mask]
        c = z.size(-1)
        ce = F.cross_entropy(z, t, reduction="none")
        s_t = F.softmax(z.detach(), dim=-1).gather(1, t.unsqueeze(1)).squeeze(1)
        w = s_t.pow(2) + 1.0 - s_t.pow(2).mean()
        target_part = (w * ce).mean() - ce.mean()
        if c < 3:
            return target_part
        keep = ~F.one_hot(t, c).bool()
        nt = z[keep].view(-1, c - 1)
        ranks = nt.detach().argsort(-1, descending=True).argsort(-1).float() + 1.0
        zipf = 1.0 / ranks
        zipf = zipf / zipf.sum(-1, keepdim=True)
        non_target = -(zipf * F.log_softmax(nt, dim=-1)).sum(-1).mean()
        return target_part + self.non_target_weight * non_target

    def term_loss(self, step: Step) -> Tensor:
        return self.loss(step.logits, step.data.y, step.data.train_mask)


@register_term("normalised", kind="self", options=NormalisedOptions, paper="USKD (ICCV 2023)",
               summary="normalised target loss and Zipf soft labels on the non-target classes",
               term=NormalizedTerm)
def build_normalised(ctx: SelfContext, o: NormalisedOptions) -> LossTerm:
    return NormalizedTerm(o.weight, o.non_target_weight, o.start_after(ctx.patience), o.restart)

