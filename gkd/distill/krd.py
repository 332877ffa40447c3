r"""Reliability-aware node weighting, after KRD (Wu et al., "Quantifying the Knowledge in GNNs for Reliable
Distillation into MLPs", ICML 2023).

KRD measures how much the teacher's output entropy moves under feature noise, :math:`\rho_i` (see
:func:`gkd.distill.knowledge.teacher_knowledge`), and samples node :math:`i` as a distillation target with probability
:math:`s(\rho_i) = 1 - (\rho_i / \rho_M)^{\beta}`. gkd uses that probability as a deterministic weight (its
expectation) with :math:`\rho_M` the 95th percentile of :math:`\rho` (nodes above it get weight 0) and
:math:`\beta = 1`; labelled nodes always weigh 1 (their label is known to be right).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError, check
from .registry import StudentContext, TermOptions, register_term


def reliability_weights(rho: Tensor, train_mask: Tensor | None = None, quantile: float = 0.95,
                        beta: float = 1.0) -> Tensor:
    check(0.0 < quantile <= 1.0, f"reliability quantile={quantile}; expected a value in (0, 1]", ConfigError)
    check(beta > 0, f"reliability beta={beta}; expected > 0", ConfigError)
    rho_m = torch.quantile(rho.float(), quantile).clamp_min(1e-12)
    w = 1.0 - (rho / rho_m).clamp(0.0, 1.0).pow(beta)
    if train_mask is not None:
        w = torch.where(train_mask, torch.ones_like(w), w)
    return w


@dataclass
class ReliabilityOptions(TermOptions):
    """``reliability``: ``noise``, the feature-noise scale of the teacher's entropy probe; ``weight`` in [0, 1]
    blends uniform node weights (0) with KRD's (1)."""

    noise: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.noise > 0, f"reliability noise={self.noise}; expected > 0", ConfigError)


@register_term("reliability", kind="transform", options=ReliabilityOptions, paper="KRD (ICML 2023)",
               summary="per-node weights of the knowledge terms from the teacher's entropy change under noise")
def prepare_reliability(ctx: StudentContext, o: ReliabilityOptions) -> None:
    """Weights the other terms' nodes (``ctx.node_weight``); adds no loss of its own."""
    check(ctx.knowledge.reliability is not None, "the 'reliability' transform needs the teacher's reliability scores; "
          "compute the knowledge with noise > 0", ConfigError)
    strength = min(o.weight, 1.0)
    ctx.node_weight = (1.0 - strength) + strength * reliability_weights(ctx.knowledge.reliability,
                                                                        ctx.data.train_mask)
