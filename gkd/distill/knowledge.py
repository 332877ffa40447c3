r"""A teacher's knowledge about one graph: what GNN-to-MLP distillers learn from.

Computed once from any trained teacher (a zoo model or any PyG model called as ``teacher(x, edge_index)``); the
student then never needs the teacher again. Knowledge books (``gkd.book``) store exactly these arrays.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DatasetError, check
from ..nn.hidden import forward as model_forward


@dataclass
class Knowledge:
    """``logits [N, C]`` of the teacher (eval mode) on the graph it may see; ``mask [N]``: the nodes whose outputs
    the setting allows a student to learn from; optional ``hidden [N, H]`` (last hidden layer, for representation
    distillers) and ``reliability [N]`` (KRD's entropy change under feature noise, lower = more reliable)."""

    logits: Tensor
    mask: Tensor
    hidden: Tensor | None = None
    reliability: Tensor | None = None

    def to(self, device: torch.device | str) -> "Knowledge":
        """The same knowledge on ``device`` (tensors already there are not copied)."""
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return Knowledge(self.logits.to(device), self.mask.to(device), move(self.hidden), move(self.reliability))

    def check_against(self, num_nodes: int, num_classes: int) -> "Knowledge":
        check(self.logits.dim() == 2 and self.logits.size(0) == num_nodes,
              f"teacher logits cover {tuple(self.logits.shape)}; expected one row per graph node ({num_nodes})",
              DatasetError)
        check(self.logits.size(1) == num_classes,
              f"teacher has {self.logits.size(1)} classes; the student/dataset has {num_classes}", DatasetError)
        check(bool(torch.isfinite(self.logits).all()), "teacher logits hold NaN/inf; expected finite values",
              DatasetError)
        check(self.mask.dtype == torch.bool and tuple(self.mask.shape) == (num_nodes,),
              f"knowledge mask is {tuple(self.mask.shape)} {self.mask.dtype}; expected bool ({num_nodes},)",
              DatasetError)
        for name in ("hidden", "reliability"):
            t = getattr(self, name)
            check(t is None or t.size(0) == num_nodes,
                  f"teacher {name} has {None if t is None else t.size(0)} rows; expected {num_nodes}", DatasetError)
        return self


def _entropy(logits: Tensor) -> Tensor:
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def teacher_knowledge(teacher: nn.Module, x: Tensor, graph: Tensor, mask: Tensor | None = None, *,
                      noise: float = 1.0, noise_draws: int = 4, seed: int = 0,
                      hidden: Sequence[str] | None = None) -> Knowledge:
    r"""Run ``teacher`` once (eval mode) on ``(x, graph)`` and collect its knowledge.

    ``teacher`` is a zoo model or any module called as ``teacher(x, edge_index)``; its last hidden layer is captured
    without changing it (:mod:`gkd.nn.hidden`: the modules named in ``hidden``, or a PyG model's activations).

    Reliability follows KRD (Wu et al., ICML 2023): :math:`\rho_i = |H(f(X + \delta))_i - H(f(X))_i|` averaged over
    ``noise_draws`` draws of :math:`\delta \sim \mathcal N(0, (\sigma\,\mathrm{std}(X))^2)`, ``noise`` being
    :math:`\sigma`; ``noise=0`` skips it.
    """
    check(noise >= 0, f"reliability noise={noise}; expected >= 0", ConfigError)
    was_training = teacher.training
    teacher.eval()
    try:
        logits, taps = model_forward(teacher, x, graph, hidden=hidden)
        last = taps[-1] if taps else None
        reliability = None
        if noise > 0:
            g = torch.Generator(device=x.device).manual_seed(seed)
            scale = noise * float(x.std())
            h0 = _entropy(logits)
            reliability = torch.zeros_like(h0)
            for _ in range(noise_draws):
                noisy = x + scale * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
                out = model_forward(teacher, noisy, graph, want_hidden=False)[0]
                reliability += (_entropy(out) - h0).abs() / noise_draws
    finally:
        teacher.train(was_training)
    mask = torch.ones(logits.size(0), dtype=torch.bool, device=logits.device) if mask is None else mask
    return Knowledge(logits.detach(), mask, None if last is None else last.detach(), reliability)


class TeacherView:
    """A GNN teacher seen from some nodes: ``view(ids, x_ids)`` runs the frozen teacher over its whole graph with the
    features of nodes ``ids`` replaced by ``x_ids`` and returns its logits on ``ids`` (differentiable in ``x_ids``).

    ``node_map`` maps original node ids to the teacher's rows (the teacher may see a subgraph: inductive setting).
    The teacher is left as it was given: it runs in eval mode on detached copies of its parameters (no gradient
    reaches them), its own mode and ``requires_grad`` flags untouched (it may be a user's model, trained further)."""

    def __init__(self, model: nn.Module, x: Tensor, graph: Tensor, node_map: Tensor | None = None) -> None:
        self.model, self.x, self.graph = model, x, graph
        self.node_map = (torch.arange(x.size(0)) if node_map is None else node_map).to(x.device)

    def features(self, ids: Tensor) -> Tensor:
        return self.x[self.node_map[ids]]

    def __call__(self, ids: Tensor, x_ids: Tensor) -> Tensor:
        rows = self.node_map[ids]
        check(bool((rows >= 0).all()), "attacked nodes must be nodes the teacher saw", ConfigError)
        x = self.x.index_put((rows,), x_ids)
        frozen = {k: v.detach() for k, v in itertools.chain(self.model.named_parameters(), self.model.named_buffers())}
        was_training = self.model.training
        self.model.eval()
        try:
            return torch.func.functional_call(self.model, frozen, (x, self.graph))[rows]
        finally:
            self.model.train(was_training)
