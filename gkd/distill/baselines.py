r"""Regularisers that self-distillation must beat, to show its gain is not mere smoothing."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check
from ..train.terms import Capabilities, LossTerm, Step
from .losses import check_temperature, soft_kl
from .registry import SelfContext, StudentContext, TermOptions, register_term


@dataclass
class LabelSmoothingOptions(TermOptions):
    """``label-smoothing``: ``epsilon``, the probability mass spread uniformly."""

    epsilon: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.epsilon < 1.0, f"label smoothing epsilon={self.epsilon}; expected a value in [0, 1)",
              ConfigError)


@dataclass
class TfKDRegOptions(TermOptions):
    """``tf-kd-reg``: the virtual teacher's ``temperature`` and correct-class probability ``a``; ``weight`` is the
    authors' alpha."""

    weight: float = 0.1
    temperature: float = 20.0
    a: float = 0.99

    def __post_init__(self) -> None:
        super().__post_init__()
        check_temperature(self.temperature, "Tf-KD temperature")
        check(0.0 < self.a < 1.0, f"Tf-KD correct-class probability a={self.a}; expected a value in (0, 1)",
              ConfigError)


class LabelSmoothing(LossTerm):
    r"""Label smoothing (Szegedy et al., CVPR 2016): target :math:`(1-\epsilon)\,\mathrm{onehot} + \epsilon/C`.

    Added to the trainer's cross-entropy as :math:`\epsilon\,[\mathrm{CE}(u, z) - \mathrm{CE}(y, z)]`."""

    name = "label-smoothing"  # logged under the name users type
    caps = Capabilities(minibatch=True)  # per training seed node

    def __init__(self, epsilon: float = 0.1, weight: float = 1.0) -> None:
        super().__init__(weight)
        LabelSmoothingOptions(weight, epsilon)
        self.epsilon = epsilon

    def forward(self, step: Step) -> Tensor:
        d = step.data
        if not bool(d.train_mask.any()):  # a mini-batch without a training seed node
            return step.logits.new_zeros(())
        z = step.logits[d.train_mask]
        uniform = -F.log_softmax(z, dim=-1).mean(-1).mean()
        return self.epsilon * (uniform - F.cross_entropy(z, d.y[d.train_mask]))


class TfKDReg(LossTerm):
    r"""Teacher-free KD, regularisation form (Tf-KD-reg, Yuan et al., CVPR 2020).

    A hand-made teacher puts ``a`` (0.99) on the true class and :math:`(1-a)/(C-1)` elsewhere; the term is
    :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(p^d/T) \Vert \mathrm{softmax}(z/T))` on labelled nodes, with the teacher
    softened by the same temperature as in the authors' code. ``weight`` is their :math:`\alpha`."""

    name = "tf_kd_reg"
    caps = Capabilities(minibatch=True)  # per training seed node

    def __init__(self, weight: float = 0.1, temperature: float = 20.0, a: float = 0.99) -> None:
        super().__init__(weight)
        TfKDRegOptions(weight, temperature, a)
        self.temperature, self.a = temperature, a

    def forward(self, step: Step) -> Tensor:
        d = step.data
        if not bool(d.train_mask.any()):  # a mini-batch without a training seed node
            return step.logits.new_zeros(())
        z, y = step.logits[d.train_mask], d.y[d.train_mask]
        c = z.size(-1)
        hand = F.one_hot(y, c).float() * (self.a - (1 - self.a) / (c - 1)) + (1 - self.a) / (c - 1)
        return soft_kl(F.softmax(hand / self.temperature, dim=-1), z, self.temperature)


@register_term("label-smoothing", kind="self", options=LabelSmoothingOptions, paper="Szegedy et al. (CVPR 2016)",
               summary="a regulariser self-distillation must beat: labels mixed with the uniform distribution",
               term=LabelSmoothing)
def build_label_smoothing(ctx: SelfContext, o: LabelSmoothingOptions) -> LossTerm:
    return LabelSmoothing(o.epsilon, o.weight)


@register_term("label-smoothing", kind="student", options=LabelSmoothingOptions, paper="Szegedy et al. (CVPR 2016)",
               summary="labels mixed with the uniform distribution, on the hard-label term (method bookkd; "
               "epsilon: --label-smoothing)", term=LabelSmoothing)
def build_student_label_smoothing(ctx: StudentContext, o: LabelSmoothingOptions) -> LossTerm:
    return LabelSmoothing(o.epsilon, o.weight)


@register_term("tf-kd-reg", kind="self", options=TfKDRegOptions, paper="Tf-KD (Yuan et al., CVPR 2020)",
               summary="teacher-free KD: KL to a hand-made virtual teacher",
               term=TfKDReg)
def build_tf_kd_reg(ctx: SelfContext, o: TfKDRegOptions) -> LossTerm:
    return TfKDReg(o.weight, o.temperature, o.a)
