r"""Multi-head attention graph builder (MHGD: Lee & Song, "Graph-based Knowledge Distillation by Multi-head Attention
Network", BMVC 2019).

For a pair of consecutive taps (front, back) with compressed features :math:`f_i, b_i` of sample :math:`i`, head
:math:`h` relates samples by

.. math::
    S^h_{ij} = \theta_h(b_i)^\top \varphi_h(f_j) / \sqrt{D_2}, \qquad G^h = \mathrm{softmax}_j(S^h),
    \qquad D_2 = \lfloor (D_f + D_b) / 2 \rfloor,

with :math:`\theta, \varphi` = linear + BatchNorm, 8 heads by default. The builder learns self-supervised on the
teacher alone: :math:`\hat b_i = \mathrm{mean}_{h \in \text{kept}} \sum_j G^h_{ij}\, W f_j` must point where
:math:`b_i` points (loss :math:`1 - \cos(\hat b_i, b_i)`), with heads dropped at random during training so that each
head carries a relation of its own (``value="learned"``, MHGD's builder, used for distillation).

For relational graphs gkd offers ``value="others"``: :math:`\hat b_i = \sum_{j \ne i} G_{ij} b_j`, self masked.
With the learned map, a linear :math:`W` can send one class's front features to another class's back features, so
the heads are free to attend across classes: on digits the attention neighbours had edge homophily 0.01 (chance
0.10). With the other samples' back features as values the heads must find samples the teacher embeds alike (0.99),
which is what a graph over the dataset is for.

Then the builder is frozen: distillation (:mod:`gkd.vision.mhgd`) and the dataset-level graph
(:func:`relational_graph`) read its relations. The :math:`1/\sqrt{D_2}` scaling is the usual attention scaling (the
paper does not state one).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import ConfigError, DatasetError, check
from .compress import check_features

VALUES = ("learned", "others")  # what the attention reconstructs the back features from


def check_batch(front: Tensor, back: Tensor) -> None:
    check_features(front, "front feature")
    check_features(back, "back feature")
    check(front.dim() == 2 and back.dim() == 2, "the builder reads compressed features [B, D]; compress feature maps "
          "first (gkd.graph.compress)", DatasetError)
    check(front.size(0) == back.size(0), f"taps have different sample counts: {front.size(0)} (front) and "
          f"{back.size(0)} (back); expected the same samples in both", DatasetError)
    check(front.size(0) >= 2, f"a batch of {front.size(0)} sample; relations need at least 2 samples", DatasetError)


class RelationHead(nn.Module):
    """The attention between one (front, back) tap pair: ``heads`` relation matrices per batch."""

    def __init__(self, front_dim: int, back_dim: int, heads: int = 8, head_drop: float = 0.5,
                 value: str = "learned") -> None:
        super().__init__()
        check(value in VALUES, f"value={value!r}; expected one of {', '.join(VALUES)}", ConfigError)
        check(isinstance(heads, int) and heads >= 1, f"attention heads={heads!r}; expected an integer >= 1",
              ConfigError)
        check(0.0 <= head_drop < 1.0, f"head_drop={head_drop!r}; expected in [0, 1)", ConfigError)
        self.heads, self.head_drop, self.dim = heads, float(head_drop), (front_dim + back_dim) // 2
        self.front_dim, self.back_dim = front_dim, back_dim
        self.theta = nn.Sequential(nn.Linear(back_dim, heads * self.dim), nn.BatchNorm1d(heads * self.dim))
        self.phi = nn.Sequential(nn.Linear(front_dim, heads * self.dim), nn.BatchNorm1d(heads * self.dim))
        self.value = value
        self.value_map = nn.Linear(front_dim, back_dim) if value == "learned" else None

    def queries_keys(self, front: Tensor, back: Tensor) -> tuple[Tensor, Tensor]:
        """``[H, B, D2]`` queries from the back features, keys from the front features."""
        q = self.theta(back).view(back.size(0), self.heads, self.dim).transpose(0, 1)
        k = self.phi(front).view(front.size(0), self.heads, self.dim).transpose(0, 1)
        return q, k

    def forward(self, front: Tensor, back: Tensor) -> Tensor:
        """Relation logits ``S`` of shape ``[heads, B, B]`` (row ``i`` = sample ``i``'s back feature as query)."""
        check_batch(front, back)
        check(front.size(1) == self.front_dim and back.size(1) == self.back_dim, f"features of width "
              f"{front.size(1)}/{back.size(1)}; this head was built for {self.front_dim}/{self.back_dim}",
              DatasetError)
        q, k = self.queries_keys(front, back)
        return q @ k.transpose(1, 2) / math.sqrt(self.dim)

    def reconstruction_loss(self, front: Tensor, back: Tensor) -> Tensor:
        s = self(front, back)
        if self.value_map is not None:
            estimate = s.softmax(-1) @ self.value_map(front)      # [H, B, D_back]
        else:
            eye = torch.eye(s.size(-1), dtype=torch.bool, device=s.device)
            estimate = s.masked_fill(eye, float("-inf")).softmax(-1) @ back  # no sample attends to itself
        keep = torch.ones(self.heads, device=front.device)
        if self.training and self.head_drop > 0:
            keep = (torch.rand(self.heads, device=front.device) >= self.head_drop).float()
            if keep.sum() == 0:
                keep[torch.randint(self.heads, (1,))] = 1.0
        estimate = (estimate * keep.view(-1, 1, 1)).sum(0) / keep.sum()
        return (1.0 - F.cosine_similarity(estimate, back, dim=-1)).mean()


class MultiHeadGraphBuilder(nn.Module):
    """One :class:`RelationHead` per consecutive pair of taps with compressed widths ``dims``."""

    def __init__(self, dims: Sequence[int], heads: int = 8, head_drop: float = 0.5, value: str = "learned") -> None:
        super().__init__()
        check(len(dims) >= 2, f"dims={tuple(dims)!r}; expected the widths of at least 2 taps (front, back)",
              ConfigError)
        check(isinstance(heads, int) and heads >= 1, f"attention heads={heads!r}; expected an integer >= 1",
              ConfigError)
        self.dims, self.heads = tuple(int(d) for d in dims), heads
        self.pairs = nn.ModuleList(RelationHead(f, b, heads, head_drop, value)
                                   for f, b in zip(self.dims, self.dims[1:]))

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Relation logits per tap pair, each ``[heads, B, B]``."""
        self._check(feats)
        return [head(f, b) for head, f, b in zip(self.pairs, feats, feats[1:])]

    def reconstruction_loss(self, feats: Sequence[Tensor]) -> Tensor:
        self._check(feats)
        return sum(head.reconstruction_loss(f, b) for head, f, b in zip(self.pairs, feats, feats[1:])) / len(self.pairs)

    def _check(self, feats: Sequence[Tensor]) -> None:
        check(len(feats) == len(self.dims), f"{len(feats)} taps given; this builder was built for {len(self.dims)}",
              DatasetError)
        for i, f in enumerate(feats):
            check_features(f, f"tap {i}")
        counts = {int(f.size(0)) for f in feats}
        check(len(counts) == 1, f"taps have different sample counts {sorted(counts)}; expected one count", DatasetError)

    def freeze(self) -> "MultiHeadGraphBuilder":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def fit(self, feats: Sequence[Tensor], *, epochs: int = 100, batch_size: int = 128, lr: float = 1e-3,
            seed: int = 0, progress: bool = False) -> list[float]:
        """Self-supervised training on the teacher's compressed taps (each ``[N, D]``); returns the loss per epoch
        and leaves the builder frozen."""
        self._check(feats)
        n = feats[0].size(0)
        check(isinstance(batch_size, int) and batch_size >= 2, f"batch_size={batch_size!r}; expected >= 2",
              ConfigError)
        check(n >= 2, f"{n} samples; the builder needs at least 2", DatasetError)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=1e-4)
        losses = []
        self.train()
        for _ in tqdm(range(epochs), desc="graph builder", leave=False, disable=not progress):
            order, total = torch.randperm(n, generator=gen), 0.0
            batches = [b for b in order.split(batch_size) if b.numel() >= 2]
            for idx in batches:
                opt.zero_grad(set_to_none=True)
                loss = self.reconstruction_loss([f[idx] for f in feats])
                loss.backward()
                opt.step()
                total += loss.item()
            losses.append(total / len(batches))
        self.freeze()
        return losses
