"""scikit-learn's handwritten digits as an image dataset (1,797 8x8 grey images, 10 classes; ships with sklearn,
no download), with gkd's fixed per-seed protocol for CNN distillation.

Protocol (``digits_split``): a stratified split per seed, 55% train / 15% validation / 30% test. The teacher learns
from every training label; students see the labels of ``labelled`` (a stratified fraction of the training images)
while distillation terms may read the teacher on every training image. Pixels are scaled to [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..errors import DatasetError, check


@dataclass
class ImageSplit:
    """Images with a fixed train/val/test split; ``labelled`` indexes the training images whose labels are used."""

    x: Tensor                 # [N, C, H, W] float32 in [0, 1]
    y: Tensor                 # [N] int64
    train: Tensor             # indices
    val: Tensor
    test: Tensor
    labelled: Tensor          # bool over ``train``
    num_classes: int
    protocol: dict = field(default_factory=dict)


def _stratified(y: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[int]] = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        bounds = np.cumsum([0] + [round(f * len(idx)) for f in fractions[:-1]] + [len(idx)])
        for p in range(len(fractions)):
            parts[p].extend(idx[bounds[p]:bounds[p + 1]].tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def digits_split(seed: int = 0, labelled_fraction: float = 1.0) -> ImageSplit:
    """The digits images with the split of run ``seed`` (the same seed always gives the same split)."""
    check(0.0 < float(labelled_fraction) <= 1.0, f"labelled_fraction={labelled_fraction!r}; expected in (0, 1]",
          DatasetError)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train, val, test = _stratified(y, (0.55, 0.15, 0.30), rng)
    labelled = np.zeros(len(train), dtype=bool)
    if labelled_fraction < 1.0:
        keep, _ = _stratified(y[train], (labelled_fraction, 1.0 - labelled_fraction), rng)
        labelled[keep] = True
    else:
        labelled[:] = True
    protocol = {"dataset": "digits", "source": "sklearn.datasets.load_digits", "split_seed": seed,
                "train/val/test": [len(train), len(val), len(test)], "labelled_fraction": labelled_fraction,
                "labelled": int(labelled.sum())}
    return ImageSplit(x, torch.from_numpy(y), torch.from_numpy(train), torch.from_numpy(val), torch.from_numpy(test),
                      torch.from_numpy(labelled), 10, protocol)
