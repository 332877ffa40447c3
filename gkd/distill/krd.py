r"""Reliability-aware node weighting, after KRD (Wu et al., "Quantifying the Knowledge in GNNs for Reliable
Distillation into MLPs", ICML 2023).

KRD measures how much the teacher's output entropy moves under feature noise, :math:`\rho_i` (see
:func:`gkd.distill.knowledge.teacher_knowledge`), and samples node :math:`i` as a distillation target with probability
:math:`s(\rho_i) = 1 - (\rho_i / \rho_M)^{\beta}`. gkd uses that probability as a deterministic weight (its
expectation) with :math:`\rho_M` the 95th percentile of :math:`\rho` (nodes above it get weight 0) and
:math:`\beta = 1`; labelled nodes always weigh 1 (their label is known to be right).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError, check


def reliability_weights(rho: Tensor, train_mask: Tensor | None = None, quantile: float = 0.95,
                        beta: float = 1.0) -> Tensor:
    check(0.0 < quantile <= 1.0, f"reliability quantile={quantile}; expected a value in (0, 1]", ConfigError)
    check(beta > 0, f"reliability beta={beta}; expected > 0", ConfigError)
    rho_m = torch.quantile(rho.float(), quantile).clamp_min(1e-12)
    w = 1.0 - (rho / rho_m).clamp(0.0, 1.0).pow(beta)
    if train_mask is not None:
        w = torch.where(train_mask, torch.ones_like(w), w)
    return w
