r"""MHGD's feature compression (Lee & Song, BMVC 2019, after KD-SVD, Lee et al. ECCV 2018).

A feature map :math:`F \in \mathbb{R}^{HW \times C}` of one sample is summarised by its top right singular vector
:math:`v_1 \in \mathbb{R}^C` (the channel direction that explains most of the map); vector features are L2-normalised.
Singular vectors have no sign, so gkd fixes it by making :math:`\langle v, \bar F\rangle \ge 0` (:math:`\bar F` the
spatial mean), which makes the teacher's vectors comparable across samples.

The student keeps its top-``k`` vectors, maps them to the teacher's width with a learned projection when widths differ,
and takes the one with the largest :math:`|\cos|` to the teacher's vector, sign-aligned to it. SVD's backward is
unstable for close singular values, so the student's vectors are found without gradient and made differentiable by one
power-iteration step, :math:`v \leftarrow F^\top F v / \lVert F^\top F v\rVert`, which leaves their value unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DatasetError, check


def check_features(feature: Tensor, what: str = "feature") -> None:
    check(feature.dim() in (2, 4), f"{what} has shape {tuple(feature.shape)}; expected [B, D] or [B, C, H, W]",
          DatasetError)
    check(bool(torch.isfinite(feature).all()), f"{what} contains NaN or inf; expected finite values", DatasetError)


def _as_rows(feature: Tensor) -> Tensor:
    b, c = feature.shape[:2]
    return feature.reshape(b, c, -1).transpose(1, 2)  # [B, HW, C]


def compress(feature: Tensor) -> Tensor:
    """Teacher side: ``[B, C, H, W]`` → sign-fixed top right singular vector ``[B, C]``; ``[B, D]`` → L2-normed."""
    check_features(feature)
    if feature.dim() == 2:
        return F.normalize(feature, dim=-1)
    rows = _as_rows(feature)
    v = torch.linalg.svd(rows, full_matrices=False).Vh[:, 0]
    sign = torch.sign((v * rows.mean(1)).sum(-1, keepdim=True))
    return v * torch.where(sign == 0, torch.ones_like(sign), sign)


def compress_student(feature: Tensor, reference: Tensor, k: int = 2, project: nn.Module | None = None) -> Tensor:
    """Student side: the top-``k`` right singular vector (projected to the teacher's width by ``project``) closest to
    ``reference`` (the teacher's compressed feature, ``[B, D_t]``) by ``|cos|``, sign-aligned to it; differentiable."""
    check_features(feature, "student feature")
    project = project if project is not None else nn.Identity()
    if feature.dim() == 2:
        return F.normalize(project(feature), dim=-1)
    rows = _as_rows(feature)
    k = min(k, *rows.shape[1:])
    with torch.no_grad():
        vk = torch.linalg.svd(rows, full_matrices=False).Vh[:, :k].transpose(1, 2)  # [B, C, k]
    gram = rows.transpose(1, 2) @ rows
    vk = F.normalize(gram @ vk + 1e-12 * vk, dim=1).transpose(1, 2)       # one power step: [B, k, C]
    vk = F.normalize(project(vk), dim=-1)                                  # [B, k, D_t]
    check(vk.size(-1) == reference.size(-1), f"student feature has width {vk.size(-1)} after projection; the "
          f"teacher's has {reference.size(-1)} (give a projection)", DatasetError)
    cos = (vk * reference.unsqueeze(1)).sum(-1)                            # [B, k]
    pick = cos.abs().argmax(-1)
    rows_idx = torch.arange(vk.size(0), device=vk.device)
    sign = torch.sign(cos[rows_idx, pick]).detach()
    return vk[rows_idx, pick] * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(-1)
