r"""Hinton KD for images (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..distill.losses import check_temperature, weighted_kl
from ..distill.registry import ImageContext, TermOptions, register_term
from ..train.terms import LossTerm
from .trainer import ImageStep


class ImageKD(LossTerm):
    r"""Hinton KD on every image of the batch: :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(z_T/T) \Vert
    \mathrm{softmax}(z_S/T))`, teacher logits read by image index."""

    name = "kd"

    def __init__(self, teacher_logits: Tensor, temperature: float = 4.0, weight: float = 1.0) -> None:
        super().__init__(weight)
        check_temperature(temperature)
        self.temperature = float(temperature)
        self.register_buffer("target", F.softmax(teacher_logits.detach() / temperature, dim=-1))

    def forward(self, step: ImageStep) -> Tensor:
        return weighted_kl(self.target[step.index], step.logits, self.temperature)


@register_term("kd", kind="image", options=TermOptions, paper="Hinton et al. (2015)",
               summary="KL to the teacher's softened predictions on every image",
               term=ImageKD)
def build_image_kd(ctx: ImageContext, o: TermOptions) -> LossTerm:
    return ImageKD(ctx.teacher.logits, ctx.temperature, o.weight)
