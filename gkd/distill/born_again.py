r"""Born-again generations (Furlanello et al., "Born-Again Neural Networks", ICML 2018).

Generation :math:`g+1` is the same architecture, trained from scratch with its usual loss plus
:math:`\mathrm{KL}(\mathrm{softmax}(z^{(g)}) \Vert \mathrm{softmax}(z))` on every node it sees, :math:`z^{(g)}` being
the previous generation's eval-mode logits. No teacher outside the backbone, no inference cost; each generation
costs one more training run. ``TrainConfig.generations`` (``gkd train --generations``) switches it on for any
method, and ``gkd distill`` trains its teachers with two (``--teacher-generations``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .glnn import GLNN


class BornAgain(GLNN):
    """KL to the previous generation's predictions on all nodes (weight 1, temperature 1)."""

    name = "born_again"

    def __init__(self, previous_logits: Tensor, weight: float = 1.0) -> None:
        mask = torch.ones(previous_logits.size(0), dtype=torch.bool, device=previous_logits.device)
        super().__init__(previous_logits, mask, temperature=1.0, weight=weight)
