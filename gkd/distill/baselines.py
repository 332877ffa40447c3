r"""Regularisers that self-distillation must beat, to show its gain is not mere smoothing."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check
from ..train.trainer import LossTerm, Step


class LabelSmoothing(LossTerm):
    r"""Label smoothing (Szegedy et al., CVPR 2016): target :math:`(1-\epsilon)\,\mathrm{onehot} + \epsilon/C`.

    Added to the trainer's cross-entropy as :math:`\epsilon\,[\mathrm{CE}(u, z) - \mathrm{CE}(y, z)]`."""

    name = "label_smoothing"

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__(1.0)
        check(0.0 <= epsilon < 1.0, f"label smoothing epsilon={epsilon}; expected a value in [0, 1)", ConfigError)
        self.epsilon = epsilon

    def forward(self, step: Step) -> Tensor:
        d = step.data
        z = step.logits[d.train_mask]
        uniform = -F.log_softmax(z, dim=-1).mean(-1).mean()
        return self.epsilon * (uniform - F.cross_entropy(z, d.y[d.train_mask]))


class TfKDReg(LossTerm):
    r"""Teacher-free KD, regularisation form (Tf-KD-reg, Yuan et al., CVPR 2020).

    A hand-made teacher puts ``a`` (0.99) on the true class and :math:`(1-a)/(C-1)` elsewhere; the term is
    :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(p^d/T) \Vert \mathrm{softmax}(z/T))` on labelled nodes, with the teacher
    softened by the same temperature as in the authors' code. ``weight`` is their :math:`\alpha`."""

    name = "tf_kd_reg"

    def __init__(self, weight: float = 0.1, temperature: float = 20.0, a: float = 0.99) -> None:
        super().__init__(weight)
        check(temperature > 0, f"Tf-KD temperature={temperature}; expected > 0", ConfigError)
        check(0.0 < a < 1.0, f"Tf-KD correct-class probability a={a}; expected a value in (0, 1)", ConfigError)
        self.temperature, self.a = temperature, a

    def forward(self, step: Step) -> Tensor:
        d = step.data
        z, y = step.logits[d.train_mask], d.y[d.train_mask]
        c = z.size(-1)
        hand = F.one_hot(y, c).float() * (self.a - (1 - self.a) / (c - 1)) + (1 - self.a) / (c - 1)
        t = self.temperature
        target = F.softmax(hand / t, dim=-1)
        return F.kl_div(F.log_softmax(z / t, dim=-1), target, reduction="batchmean") * t * t
