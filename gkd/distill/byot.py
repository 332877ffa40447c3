r"""The ``depth`` self term: BYOT (Zhang et al., "Be Your Own Teacher", ICCV 2019) with GNN-SD's neighbourhood
discrepancy (Chen et al., "On Self-Distilling Graph Neural Network", IJCAI 2021).

A linear head on every hidden layer :math:`l` learns :math:`\mathrm{CE}(y, z_l) + T^2\,\mathrm{KL}(\mathrm{softmax}
(z_L/T) \Vert \mathrm{softmax}(z_l/T))` from the deepest layer; the neighbourhood discrepancy
:math:`s_v = 1 - \cos(h_v, (\hat A h)_v)` of layer :math:`l` teaches layer :math:`l+1`'s by mean squared error
(:class:`DepthTerm`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, check
from ..nn.hidden import _inner
from ..train.terms import Capabilities, LossTerm, Step
from .losses import check_temperature, soft_kl
from .registry import SelfContext, register_term
from .self_distill import LateStart, LateStartOptions, _GraphCache


@dataclass
class DepthOptions(LateStartOptions):
    """``depth``: KD ``temperature`` of the layer heads, weight of GNN-SD's neighbourhood-discrepancy part."""

    temperature: float = 4.0
    ndr_weight: float = 1.0

    term = "depth"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_temperature(self.temperature, "depth temperature")
        check(self.ndr_weight >= 0, f"depth ndr_weight={self.ndr_weight}; expected >= 0", ConfigError)


class DepthTerm(LateStart):
    r"""Depth self-distillation.

    BYOT (Zhang et al., ICCV 2019): a linear head on every hidden layer :math:`l` is trained with cross-entropy on the
    labelled nodes and :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(z_L/T) \Vert \mathrm{softmax}(z_l/T))` toward the
    deepest layer's detached predictions. GNN-SD (Chen et al., IJCAI 2021): the neighbourhood discrepancy
    :math:`s_v = 1 - \cos(h_v, (\hat A h)_v)` of layer :math:`l` (stop-gradient; :math:`\hat A` the symmetric-normalised
    adjacency with self-loops, GCN's neighbourhood average) teaches layer :math:`l+1`'s by mean squared error. The heads are dropped at export.
    """

    name = "depth"
    # per batch: heads on the subgraph's hidden rows, discrepancies over its sampled edges
    caps = Capabilities(minibatch=True, late_start=True, all_nodes=True)

    def __init__(self, hidden_dims: Sequence[int], num_classes: int, weight: float = 1.0, temperature: float = 4.0,
                 ndr_weight: float = 1.0, warmup: int = 100, restart: bool = True) -> None:
        super().__init__(weight, warmup, restart)
        check(len(hidden_dims) >= 1, "the depth term needs num_layers >= 2 (a hidden layer to attach a head to); "
              f"got num_layers={len(hidden_dims) + 1}", ConfigError)
        DepthOptions(weight=weight, warmup=warmup, restart=restart, temperature=temperature, ndr_weight=ndr_weight)
        # the heads' initialisation leaves the global RNG as it was, so until the term starts the run is plain
        # training's draw for draw (and the trainer's guard holds the plain model)
        with torch.random.fork_rng(devices=[]):
            self.heads = nn.ModuleList(nn.Linear(d, num_classes) for d in hidden_dims)
        self.temperature, self.ndr_weight = temperature, ndr_weight
        self.cache = _GraphCache()

    def ndr(self, h: Tensor, adj_mean: Tensor) -> Tensor:
        return 1.0 - F.cosine_similarity(h, adj_mean @ h, dim=-1)

    def loss(self, logits: Tensor, hidden: list[Tensor], graph: Tensor | None, y: Tensor, train_mask: Tensor) -> Tensor:
        check(len(hidden) == len(self.heads), f"depth term built for {len(self.heads)} hidden layers, got "
              f"{len(hidden)}", ConfigError)
        target = F.softmax(logits.detach() / self.temperature, dim=-1)
        out = logits.new_zeros(())
        labelled = bool(train_mask.any())  # (a mini-batch may hold no training seed node)
        for head, h in zip(self.heads, hidden):
            z = head(h)
            if labelled:
                out = out + F.cross_entropy(z[train_mask], y[train_mask])
            out = out + soft_kl(target, z, self.temperature)
        if self.ndr_weight and graph is not None:
            adj = self.cache.get(graph, logits.size(0))
            layers = hidden + [logits]
            for shallow, deep in zip(layers[:-1], layers[1:]):
                out = out + self.ndr_weight * F.mse_loss(self.ndr(deep, adj), self.ndr(shallow, adj).detach())
        return out / len(self.heads)

    def term_loss(self, step: Step) -> Tensor:
        d = step.data
        graph = step.graph if getattr(_inner(step.model), "uses_graph", True) else None  # an MLP: no neighbourhood
        return self.loss(step.logits, step.hidden, graph, d.y, d.train_mask)


@register_term("depth", kind="self", options=DepthOptions, paper="BYOT (ICCV 2019) + GNN-SD (IJCAI 2021)",
               summary="heads on hidden layers learn the last layer; layer discrepancies learn the next layer's",
               term=DepthTerm)
def build_depth(ctx: SelfContext, o: DepthOptions) -> LossTerm:
    return DepthTerm(list(ctx.hidden_dims), ctx.num_classes, o.weight, o.temperature, o.ndr_weight,
                     o.start_after(ctx.patience), o.restart)

