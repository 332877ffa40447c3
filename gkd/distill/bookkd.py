r"""Learning from a knowledge book, after BookKD (Knowledge-Based Systems 2023).

Two of BookKD's book-learning steps, in gkd's own (documented) form:

* **knowledge regularisation** — where the book is wrong on a labelled node, its entry is moved toward the label:
  :math:`p_i \leftarrow \tfrac12 (p_i + \mathrm{onehot}(y_i))`, which always makes :math:`y_i` the arg-max
  (:math:`\tfrac12 + \tfrac12 p_{iy} > \tfrac12 \ge \tfrac12 p_{ik}`) while keeping the book's ranking of the others.
* **entropy dynamic adjustment** — node :math:`i`'s distillation term is weighted by the book's confidence, more
  sharply as training goes on: :math:`w_i(e) = 1 - \min(1, e/E_r)\,H(p_i)/\log C`, :math:`E_r` = ``ramp`` epochs.
  Early epochs learn from every entry; later ones trust confident entries most.

Label smoothing on the hard-label term (BookKD's third step) is :class:`gkd.distill.LabelSmoothing`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DatasetError, check
from ..train.terms import Capabilities, LossTerm, Step
from .losses import check_temperature, weighted_kl
from .registry import StudentContext, TermOptions, register_term


@torch.no_grad()
def regularise_knowledge(probs: Tensor, y: Tensor, train_mask: Tensor) -> tuple[Tensor, int]:
    """``probs`` with wrong labelled rows moved halfway to their one-hot label; returns (probs, rows fixed)."""
    wrong = train_mask & (probs.argmax(-1) != y)
    out = probs.clone()
    out[wrong] = 0.5 * (probs[wrong] + F.one_hot(y[wrong], probs.size(-1)).to(probs.dtype))
    return out, int(wrong.sum())


@dataclass
class BookKDOptions(TermOptions):
    """``bookkd``: ``ramp``, the epochs over which the entropy weights sharpen (:math:`E_r`)."""

    ramp: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.ramp >= 1, f"entropy ramp={self.ramp!r}; expected an integer >= 1", ConfigError)


class BookKD(LossTerm):
    """KL to the (regularised) book on ``mask`` nodes with entropy-dynamic weights."""

    name = "bookkd"
    caps = Capabilities(all_nodes=True)  # every node the book covers; full-batch (the entropy ramp reads the epoch)

    def __init__(self, teacher_logits: Tensor, y: Tensor, train_mask: Tensor, mask: Tensor, *,
                 temperature: float = 1.0, ramp: int = 100, weight: float = 1.0) -> None:
        super().__init__(weight)
        check_temperature(temperature)
        check(isinstance(ramp, int) and ramp >= 1, f"entropy ramp={ramp!r}; expected an integer >= 1", ConfigError)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        probs, self.corrected = regularise_knowledge(F.softmax(teacher_logits / temperature, dim=-1), y,
                                                     train_mask & mask)
        ent = -(torch.xlogy(probs, probs)).sum(-1) / math.log(probs.size(-1))
        self.temperature, self.ramp = float(temperature), ramp
        self.register_buffer("idx", mask.nonzero().view(-1))
        self.register_buffer("target", probs[mask])
        self.register_buffer("entropy", ent[mask].clamp(0.0, 1.0))

    def forward(self, step: Step) -> Tensor:
        w = 1.0 - min(1.0, step.epoch / self.ramp) * self.entropy
        return weighted_kl(self.target, step.logits[self.idx], self.temperature, w)


@register_term("bookkd", kind="student", options=BookKDOptions, paper="BookKD (Knowledge-Based Systems 2023)",
               summary="KL to the knowledge book, its wrong labelled entries regularised, entropy-weighted (method "
               "bookkd)", term=BookKD)
def build_bookkd(ctx: StudentContext, o: BookKDOptions) -> LossTerm:
    # the weight is 1 - kd_lambda (the trainer's ce_weight is kd_lambda), times the term's own weight
    d, know = ctx.data, ctx.knowledge
    return BookKD(know.logits, d.y, d.train_mask, know.mask, temperature=ctx.temperature, ramp=o.ramp,
                  weight=ctx.kd_weight * o.weight)
