r"""The shared distillation losses: temperature-scaled KL to soft targets (Hinton et al., 2015), and the temperature
check every term uses."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check
from ..limits import MAX_TEMPERATURE


def check_temperature(temperature: float, what: str = "distillation temperature") -> None:
    """``0 < T <= MAX_TEMPERATURE``: the losses scale by :math:`T^2`, so a larger one overflows float32 to NaN."""
    check(isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
          and 0 < temperature <= MAX_TEMPERATURE,
          f"{what}={temperature!r}; expected > 0 and finite, at most {MAX_TEMPERATURE:g}", ConfigError)


def soft_kl(target: Tensor, logits: Tensor, temperature: float = 1.0) -> Tensor:
    r""":math:`T^2\,\mathrm{KL}(t \Vert \mathrm{softmax}(z/T))`, averaged over rows (PyTorch's ``batchmean``)."""
    logp = F.log_softmax(logits / temperature, dim=-1)
    return F.kl_div(logp, target, reduction="batchmean") * temperature ** 2


def weighted_kl(target: Tensor, logits: Tensor, temperature: float, node_weight: Tensor | None = None) -> Tensor:
    r""":math:`T^2 \sum_i w_i\,\mathrm{KL}(t_i \Vert \mathrm{softmax}(z_i/T)) / \sum_i w_i` (uniform :math:`w` without
    ``node_weight``); zero-probability targets contribute zero (no ``log 0``)."""
    logp = F.log_softmax(logits / temperature, dim=-1)
    kl = (torch.xlogy(target, target) - target * logp).sum(-1)
    if node_weight is None:
        return kl.mean() * temperature ** 2
    return (kl * node_weight).sum() / node_weight.sum().clamp_min(1e-12) * temperature ** 2
