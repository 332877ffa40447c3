r"""BSS and AMKD for CNN students (``gkd cnn --method bss | amkd``): the image terms ``bss`` and ``amkd``.

BSS (Heo et al., "Knowledge Distillation with Adversarial Samples Supporting Decision Boundary", AAAI 2019) and the
AMKD triplet term on images attacked through the frozen teacher CNN, inputs clamped to [0, 1]. The attack, the cache
and the losses are the modality-free :class:`~gkd.distill.amkd.BoundaryDistill` (formulas in :mod:`gkd.distill.amkd`,
which also holds the graph ``amkd`` student term).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..distill.amkd import AMKDOptions, AttackOptions, BoundaryDistill, Candidates, TeacherFn
from ..distill.registry import ImageContext, register_term
from ..train.terms import LossTerm


class ImageBoundaryDistill(BoundaryDistill):
    """BSS/AMKD for CNN students (:class:`~gkd.vision.trainer.ImageTrainer`); inputs clamped to [0, 1].

    Args:
        teacher: the frozen teacher CNN; ``teacher_logits``: its logits on every image (clean), by image index.
        x, y: every image and label; ``base``: ids of the images whose labels may be used (the attack's pool).
    """

    def __init__(self, teacher: nn.Module, teacher_logits: Tensor, x: Tensor, y: Tensor, base: Tensor,
                 **kwargs) -> None:
        kwargs.setdefault("lo", 0.0)
        kwargs.setdefault("hi", 1.0)
        super().__init__(teacher_logits.size(0), **kwargs)
        self.teacher = [teacher.eval()]  # a list: frozen and out of the optimiser
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher_logits, self.x, self.y, self.base = teacher_logits.detach(), x, y, base

    def pool(self, step) -> Candidates:
        model = step.model
        was = model.training
        model.eval()
        with torch.no_grad():
            student = model(self.x[self.base])
        model.train(was)
        t = self.teacher_logits[self.base]
        return Candidates(self.base, self.x[self.base], t, t.argmax(-1) == self.y[self.base], student)

    def batch(self, step) -> tuple[Tensor, Tensor]:
        return step.index, torch.arange(step.index.numel())

    def teacher_pred(self, ids: Tensor) -> Tensor:
        return self.teacher_logits[ids].argmax(-1)

    def teacher_fn(self, ids: Tensor) -> TeacherFn:
        return lambda x_rows, rows: self.teacher[0](x_rows)

    def student_on(self, step, ids: Tensor, x_adv: Tensor) -> Tensor:
        return step.model(x_adv)


def _image_boundary(ctx: ImageContext, o: AttackOptions, margin: float, triplet_weight: float) -> LossTerm:
    t, split = ctx.teacher, ctx.split
    return ImageBoundaryDistill(t.model, t.logits, split.x, split.y, split.train[split.labelled], eta=o.eta,
                                steps=o.steps, max_samples=o.samples, refresh=o.refresh,
                                temperature=ctx.temperature, margin=margin, triplet_weight=triplet_weight,
                                total_epochs=ctx.epochs, weight=o.weight, seed=ctx.seed)


@register_term("bss", kind="image", options=AttackOptions, paper="BSS (AAAI 2019)",
               summary="KD on boundary-supporting samples: images attacked toward another class of the teacher",
               term=ImageBoundaryDistill)
def build_image_bss(ctx: ImageContext, o: AttackOptions) -> LossTerm:
    term = _image_boundary(ctx, o, 0.05, 0.0)
    term.name = "bss"
    return term


@register_term("amkd", kind="image", options=AMKDOptions, paper="BSS (AAAI 2019) + AMKD",
               summary="BSS plus a triplet term pulling the student toward the teacher on attacked images",
               term=ImageBoundaryDistill)
def build_image_amkd(ctx: ImageContext, o: AMKDOptions) -> LossTerm:
    return _image_boundary(ctx, o, o.margin, o.triplet_weight)
