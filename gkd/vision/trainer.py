"""The trainer for image classifiers (CNN distillation): mini-batches over the training images, checkpoint at the
best validation accuracy (ties: lower validation loss), test read at that epoch only.

It is the image counterpart of :class:`~gkd.train.trainer.Trainer` and takes the same :class:`LossTerm` modules, with
an :class:`ImageStep` instead of a graph ``Step``. A term with a ``grad_cap`` has its gradient rescaled to at most
``grad_cap`` times the cross-entropy's gradient norm (MHGD/KD-SVD's guard against a distillation gradient that
swamps the task).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import ConfigError, check
from ..metrics import accuracy
from ..train.selection import BestValidation, FitResult, check_optim_args
from ..train.terms import LossTerm, weighted_terms
from .cnn import FeatureTaps
from .digits import ImageSplit


@dataclass
class ImageStep:
    """What a loss term sees at one mini-batch: ``index`` are the images' positions in the dataset."""

    x: Tensor
    y: Tensor
    index: Tensor
    labelled: Tensor          # bool per batch image: its label may be used
    logits: Tensor
    features: list[Tensor]    # the student's tapped outputs, in ``tap`` order
    model: nn.Module
    epoch: int


class ImageTrainer:
    """Args:
        model: the student (or any classifier); ``taps`` names the layers whose outputs terms read.
        split: images and their split (``gkd.vision.digits.ImageSplit``).
        terms: extra :class:`LossTerm` modules; each gets an :class:`ImageStep`.
    """

    def __init__(self, model: nn.Module, split: ImageSplit, *, terms: Iterable[LossTerm] = (),
                 taps: Sequence[str] = (), lr: float = 1e-2, weight_decay: float = 5e-4, epochs: int = 100,
                 patience: int = 30, batch_size: int = 64, seed: int = 0, progress: bool | None = False,
                 desc: str = "train") -> None:
        check_optim_args(epochs, patience, lr, weight_decay)
        check(isinstance(batch_size, int) and batch_size >= 2, f"batch_size={batch_size!r}; expected an integer "
              ">= 2", ConfigError)
        self.model, self.split, self.terms = model, split, nn.ModuleList(terms)
        self.taps = FeatureTaps(model, taps) if taps else None
        self.optimizer = torch.optim.Adam(list(model.parameters()) + list(self.terms.parameters()), lr=lr,
                                          weight_decay=weight_decay)
        self.epochs, self.patience, self.batch_size = epochs, patience, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.progress, self.desc = progress, desc

    def _forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return self.taps(x) if self.taps is not None else (self.model(x), [])

    def _step(self, idx: Tensor, labelled: Tensor, epoch: int) -> dict[str, float]:
        s = self.split
        x, y = s.x[idx], s.y[idx]
        logits, feats = self._forward(x)
        step = ImageStep(x, y, idx, labelled, logits, feats, self.model, epoch)
        ce = F.cross_entropy(logits[labelled], y[labelled]) if labelled.any() else logits.sum() * 0.0
        parts, capped, loss = {"ce": ce.item()}, [], ce
        for term, value in weighted_terms(self.terms, step, parts):
            if getattr(term, "grad_cap", None) is not None:
                capped.append((term, value))
            else:
                loss = loss + value
        params = [p for p in self.optimizer.param_groups[0]["params"] if p.requires_grad]
        if not capped:
            loss.backward()
            return parts
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        base = torch.sqrt(sum((g.square().sum() for g in grads if g is not None), torch.zeros(())))
        total = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
        for i, (term, value) in enumerate(capped):
            g_term = torch.autograd.grad(value, params, retain_graph=i < len(capped) - 1, allow_unused=True)
            norm = torch.sqrt(sum((g.square().sum() for g in g_term if g is not None), torch.zeros(())))
            scale = min(1.0, float(term.grad_cap * base / norm)) if norm > 0 else 0.0
            total = [t + scale * g if g is not None else t for t, g in zip(total, g_term)]
        for p, g in zip(params, total):
            p.grad = g
        return parts

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float]:
        self.model.eval()
        s = self.split
        logits = self.model(s.x)
        scores = {part: accuracy(logits[getattr(s, part)], s.y[getattr(s, part)]) for part in ("train", "val", "test")}
        return scores, float(F.cross_entropy(logits[s.val], s.y[s.val]))

    def fit(self) -> FitResult:
        s, select = self.split, BestValidation(self.model, self.patience)
        bar = tqdm(range(1, self.epochs + 1), desc=self.desc, leave=False, disable=not self.progress,
                   dynamic_ncols=True)
        for epoch in bar:
            self.model.train()
            order = torch.randperm(s.train.numel(), generator=self.gen)
            sums: dict[str, float] = {}
            batches = [b for b in order.split(self.batch_size) if b.numel() >= 2]  # BatchNorm needs 2 samples
            for b in batches:
                self.optimizer.zero_grad(set_to_none=True)
                parts = self._step(s.train[b], s.labelled[b], epoch)
                self.optimizer.step()
                for key, v in parts.items():
                    sums[key] = sums.get(key, 0.0) + v / len(batches)
            scores, val_loss = self.evaluate()
            bar.set_postfix(val=f"{scores['val']:.3f}", refresh=False)
            if select.update(epoch, scores, val_loss, sums):
                break
        if self.taps is not None:
            self.taps.remove()
        return select.result(epoch, self.terms)
