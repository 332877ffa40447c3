r"""Representation-similarity distillation, after NOSMOG (Tian et al., "Learning MLPs on Graphs: A Unified View of
Effectiveness, Robustness, and Efficiency", ICLR 2023).

On a random batch :math:`B` of the nodes the setting allows, the student's last hidden layer should relate nodes the
way the teacher's does: :math:`\lVert \bar H_S \bar H_S^\top - \bar H_T \bar H_T^\top \rVert^2_F / |B|^2` with rows
L2-normalised, so the widths of teacher and student need not match. (NOSMOG's position features are in
:mod:`gkd.nn.position`.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DatasetError, check
from ..train.trainer import LossTerm, Step


class RepresentationSimilarity(LossTerm):
    name = "rsd"

    def __init__(self, teacher_hidden: Tensor | None, mask: Tensor, batch_size: int = 512, weight: float = 1.0) -> None:
        super().__init__(weight)
        check(teacher_hidden is not None, "representation-similarity distillation needs the teacher's hidden layer; "
              "this teacher returned logits only (use a zoo model or drop the 'rsd' term)", ConfigError)
        check(isinstance(batch_size, int) and batch_size >= 2, f"rsd batch_size={batch_size!r}; expected >= 2",
              ConfigError)
        check(bool(mask.any()), "the distillation mask selects no node; expected at least one", DatasetError)
        self.batch_size = batch_size
        self.register_buffer("idx", mask.nonzero().view(-1))
        self.register_buffer("hidden", F.normalize(teacher_hidden[mask].float(), dim=-1))

    def forward(self, step: Step) -> Tensor:
        check(len(step.hidden) > 0, "representation-similarity distillation needs a student with a hidden layer "
              "(num_layers >= 2)", ConfigError)
        pick = torch.randperm(self.idx.numel(), device=self.idx.device)[: self.batch_size]
        hs = F.normalize(step.hidden[-1][self.idx[pick]], dim=-1)
        ht = self.hidden[pick]
        return (hs @ hs.T - ht @ ht.T).pow(2).mean()
