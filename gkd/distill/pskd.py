r"""The ``time`` self term: progressive self-knowledge distillation (PS-KD, Kim et al., "Self-Knowledge
Distillation with Progressive Refinement of Targets", ICCV 2021).

The target on labelled nodes is :math:`(1-a_t)\,\mathrm{onehot}(y) + a_t\,p_{t-1}`, :math:`p_{t-1}` the model's own
softmax from the previous epoch and :math:`a_t = a_{\max}\, t / T` (:class:`TimeTerm`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check
from ..train.terms import Capabilities, LossTerm, Step
from .registry import SelfContext, register_term
from .self_distill import LateStart, LateStartOptions


@dataclass
class TimeOptions(LateStartOptions):
    """``time``: the largest weight ``alpha_max`` of the previous epoch's predictions (reached at the last epoch)."""

    alpha_max: float = 0.8

    term = "time"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.alpha_max <= 1.0, f"time alpha_max={self.alpha_max}; expected a value in [0, 1]",
              ConfigError)



class TimeTerm(LateStart):
    r"""Progressive self-knowledge distillation (PS-KD, Kim et al., ICCV 2021).

    The target on labelled nodes is :math:`(1-a_t)\,\mathrm{onehot}(y) + a_t\,p_{t-1}`, where :math:`p_{t-1}` is the
    model's own softmax from the previous epoch (an :math:`N\times C` buffer in full-batch training) and
    :math:`a_t = a_{\max}\, t / T` ramps up linearly. Added to the trainer's cross-entropy it contributes
    :math:`a_t\,[\mathrm{CE}(p_{t-1}, z) - \mathrm{CE}(y, z)]`, so the supervised part equals PS-KD's soft-target loss.
    """

    name = "time"
    caps = Capabilities(minibatch=True, late_start=True)

    def __init__(self, weight: float = 1.0, alpha_max: float = 0.8, total_epochs: int = 500, warmup: int = 100,
                 restart: bool = True) -> None:
        super().__init__(weight, warmup, restart)
        TimeOptions(weight=weight, warmup=warmup, restart=restart, alpha_max=alpha_max)
        check(total_epochs >= 1, f"time total_epochs={total_epochs}; expected >= 1", ConfigError)
        self.alpha_max, self.total_epochs = alpha_max, total_epochs
        self.register_buffer("prev", torch.empty(0), persistent=False)

    def alpha(self, epoch: int) -> float:
        return self.alpha_max * min(1.0, epoch / self.total_epochs)

    def loss(self, logits: Tensor, y: Tensor, train_mask: Tensor, epoch: int, nodes: Tensor | None = None) -> Tensor:
        """``nodes``: the global ids of ``logits``' rows (a mini-batch), ``None`` for all nodes."""
        if self.prev.numel() == 0 or not bool(train_mask.any()):  # (a mini-batch without a training seed node)
            return logits.new_zeros(())
        prev = self.prev if nodes is None else self.prev[nodes]
        z, p = logits[train_mask], prev[train_mask]
        soft = -(p * F.log_softmax(z, dim=-1)).sum(-1).mean()
        return self.alpha(epoch) * (soft - F.cross_entropy(z, y[train_mask]))

    def end_epoch(self, logits: Tensor) -> None:
        self.prev = F.softmax(logits.detach(), dim=-1)

    def term_loss(self, step: Step) -> Tensor:
        return self.loss(step.logits, step.data.y, step.data.train_mask, step.epoch, step.nodes)

    def on_epoch_end(self, step: Step) -> None:
        self.end_epoch(step.logits)

    def refresh(self, step: Step) -> None:
        self.end_epoch(step.logits)  # mini-batch: the memory is the last refresh's full-graph predictions


@register_term("time", kind="self", options=TimeOptions, paper="PS-KD (ICCV 2021)",
               summary="the previous epoch's predictions join the labels, with a weight ramped up over the run",
               term=TimeTerm)
def build_time(ctx: SelfContext, o: TimeOptions) -> LossTerm:
    return TimeTerm(o.weight, alpha_max=o.alpha_max, total_epochs=ctx.epochs, warmup=o.start_after(ctx.patience),
                    restart=o.restart)

