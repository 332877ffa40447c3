r"""Universal self-distillation: a backbone teaches itself through depth, time and its neighbourhood.

No teacher model. Every term is a :class:`~gkd.train.LossTerm` built from the backbone's own outputs; auxiliary heads
live in the term, not in the model, so the exported model is the unchanged backbone and inference costs nothing
extra. The terms work for any zoo backbone because they only read ``logits`` and the per-layer ``hidden`` taps.

Every term starts late (at the validation plateau in the trainer, which then guards against it: see
:class:`LateStartOptions`). Use inside the gkd trainer (``terms=SelfDistill(...).terms``) or in your own loop, where
the terms start after ``warmup`` epochs (default: 100, the trainer's default patience)::

    sd = SelfDistill(num_classes, hidden_channels, terms=("neighbour", "time"), neighbour={"warmup": 50},
                     time={"warmup": 50})
    logits, hidden = model(x, edge_index, return_hidden=True)
    loss = F.cross_entropy(logits[train_mask], y[train_mask]) + sd(logits, hidden, edge_index, y, train_mask, epoch)
    sd.end_epoch(logits)  # once per epoch, for the time term's memory
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from ..errors import ConfigError, check
from ..nn.hidden import _inner
from ..nn.propagation import appnp_propagate, normalized_adjacency
from ..train.trainer import LossTerm, Step
from .losses import check_temperature, soft_kl
from .registry import SelfContext, StudentContext, TermOptions, parse_names, register_term, term_names


@dataclass
class LateStartOptions(TermOptions):
    """Options every self-distillation term has: ``warmup`` epochs of validation plateau before it starts (``None``:
    the run's patience, so the term starts where plain training would stop), and ``restart`` from the best weights
    when it starts. Starting late is the safety net: the trainer holds the best model from before the term and keeps
    it unless the term's model beats it on validation (``Trainer(guard=True)``)."""

    warmup: int | None = None
    restart: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.warmup is None or self.warmup >= 0, f"{self.term} warmup={self.warmup}; expected None or >= 0",
              ConfigError)

    def start_after(self, patience: int) -> int:
        """``warmup``, or ``patience`` where it is ``None``."""
        return patience if self.warmup is None else self.warmup

    term = "self-distillation"  # the term's name in error messages (a class attribute, not an option)


@dataclass
class NeighbourOptions(LateStartOptions):
    """``neighbour``: propagation ``steps`` and restart weight ``alpha``, ``sharpen`` temperature, the validation
    trust gate (``adaptive``), the ``graphs`` whose propagated targets may teach (``input``: the graph itself;
    ``features``: the ``knn`` nearest neighbours by feature cosine), how one of several is chosen each epoch
    (``choose``: ``first``, the first trusted in the order given; ``best``, the trusted one best on validation) and
    the largest graph the ``features`` graph is built for (``knn_max_nodes``)."""

    steps: int = 10
    alpha: float = 0.1
    sharpen: float = 0.5
    adaptive: bool = True
    graphs: str = "input,features"  # chosen on validation over six datasets (benchmarks/self_distill.py)
    choose: str = "first"  # chosen on validation over the datasets (benchmarks/self_distill.py)
    knn: int = 10
    knn_max_nodes: int = 200_000

    term = "neighbour"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.steps >= 1, f"neighbour steps={self.steps}; expected >= 1", ConfigError)
        check(0.0 < self.alpha <= 1.0, f"neighbour alpha={self.alpha}; expected a value in (0, 1]", ConfigError)
        check(self.sharpen > 0, f"neighbour sharpen temperature={self.sharpen}; expected > 0", ConfigError)
        names = self.graph_names
        check(bool(names) and all(g in NEIGHBOUR_GRAPHS for g in names) and len(set(names)) == len(names),
              f"neighbour graphs={self.graphs!r}; expected a comma list of distinct names from "
              f"{', '.join(NEIGHBOUR_GRAPHS)}", ConfigError)
        check(self.choose in NEIGHBOUR_CHOICES,
              f"neighbour choose={self.choose!r}; expected one of {', '.join(NEIGHBOUR_CHOICES)}", ConfigError)
        check(self.knn >= 1, f"neighbour knn={self.knn}; expected >= 1", ConfigError)
        check(self.knn_max_nodes >= 0, f"neighbour knn_max_nodes={self.knn_max_nodes}; expected >= 0", ConfigError)

    @property
    def graph_names(self) -> tuple[str, ...]:
        return tuple(g.strip() for g in str(self.graphs).split(",") if g.strip())


NEIGHBOUR_GRAPHS = ("input", "features")
NEIGHBOUR_CHOICES = ("first", "best")


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


@dataclass
class TimeOptions(LateStartOptions):
    """``time``: the largest weight ``alpha_max`` of the previous epoch's predictions (reached at the last epoch)."""

    alpha_max: float = 0.8

    term = "time"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.alpha_max <= 1.0, f"time alpha_max={self.alpha_max}; expected a value in [0, 1]",
              ConfigError)


@dataclass
class NormalisedOptions(LateStartOptions):
    """``normalised``: weight of the non-target (Zipf) part."""

    non_target_weight: float = 1.0

    term = "normalised"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.non_target_weight >= 0, f"normalised non_target_weight={self.non_target_weight}; expected >= 0",
              ConfigError)


class _GraphCache:
    """Normalised adjacency, built once per graph tensor and reused every epoch.

    It holds a reference to the graph it was built from (so an ``id`` can never be recycled for another graph)."""

    def __init__(self) -> None:
        self.graph, self.adj = None, None

    def get(self, graph: Tensor, num_nodes: int) -> Tensor:
        if self.graph is not graph or self.adj.size(0) != num_nodes:
            self.graph, self.adj = graph, normalized_adjacency(graph, num_nodes)
        return self.adj


class LateStart(LossTerm):
    """A term that switches on at the validation plateau (``warmup`` epochs without a better validation score) and,
    with ``restart``, asks the trainer to reload the best weights first. In a custom loop (no trainer), it starts after
    ``warmup`` epochs. ``forward`` returns 0 until then; subclasses implement :meth:`term_loss`."""

    late = True

    def __init__(self, weight: float, warmup: int, restart: bool) -> None:
        super().__init__(weight)
        check(isinstance(warmup, int) and not isinstance(warmup, bool) and warmup >= 0,
              f"{self.name} warmup={warmup!r}; expected an integer >= 0 here (warmup=None, the run's patience, is "
              "resolved where the term is built for a run: gkd train, SelfDistill(patience=...))", ConfigError)
        self.warmup, self.restart = warmup, restart
        self.started: int | None = None

    def _plateaued(self, epoch: int, best_epoch: int) -> bool:
        if self.started is None and epoch - best_epoch >= self.warmup:
            self.started = epoch
            return True
        return False

    def restart_from_best(self, epoch: int, best_epoch: int) -> bool:
        return self._plateaued(epoch, best_epoch) and self.restart

    def active(self, step: Step) -> bool:
        if step.best_epoch is None:
            return step.epoch > self.warmup
        self._plateaued(step.epoch, step.best_epoch)
        return self.started is not None

    def forward(self, step: Step) -> Tensor:
        return self.term_loss(step) if self.active(step) else step.logits.new_zeros(())

    def term_loss(self, step: Step) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class _FeatureGraphCache:
    """The normalised feature kNN graph, built once per feature tensor (held by a weak reference, so a new tensor
    allocated where a freed one lived is never mistaken for it)."""

    def __init__(self) -> None:
        self.ref, self.k, self.adj = None, None, None

    def get(self, x: Tensor, k: int) -> Tensor:
        if self.ref is None or self.ref() is not x or self.k != k:
            from ..graph.knn import knn_graph

            self.ref, self.k = weakref.ref(x), k
            self.adj = normalized_adjacency(knn_graph(x, k), x.size(0))
        return self.adj


class NeighbourTerm(LateStart):
    r"""Label-aware neighbourhood self-distillation (gkd).

    The model's own detached predictions :math:`P`, with training labels clamped in as one-hot rows, are propagated
    APPNP-style (:math:`Z_{k+1} = (1-\alpha)\hat A Z_k + \alpha Z_0`, ``steps`` times, labels re-clamped each step:
    label propagation, Zhu & Ghahramani 2002) and sharpened, :math:`T \propto Z^{1/\tau}`. The loss is
    :math:`\mathrm{KL}(T \Vert \mathrm{softmax}(z))` on every node, switched on at the validation plateau.

    Trust, not assumed homophily: a graph teaches only while its propagated targets beat the model's own
    predictions on the validation nodes (``trust = 1``), else the term is off (``trust = 0``) for that epoch. This is
    the same information early stopping already reads; test labels are never read. On heterophilous graphs the
    input graph then stops teaching instead of pulling nodes toward the wrong classes; ``graphs="input,features"``
    adds a second candidate, the ``knn``-nearest-neighbour graph of the node features (cosine), whose neighbours share
    a class where the input graph's do not (the feature-similarity view of heterophilous GNNs, e.g. SimP-GCN, Jin et
    al., WSDM 2021). Each epoch one trusted candidate teaches: with ``choose="first"`` the first in ``graphs``' order
    (the features graph stands in only where the input graph is not trusted), with ``choose="best"`` the one best on
    validation (which, on validation sets of a few hundred nodes, picks by noise between two trusted graphs).

    Restart (``restart=True``): when the term switches on, the trainer reloads the best-validation weights, so
    self-distillation starts from the plateau's best model rather than from the epochs of overfitting that follow
    it (which GAT, peaking early, otherwise never recovers from on validation). Cora, 10 seeds, validation / test
    without -> with restart: GCN 81.24 / 83.27 -> 81.50 / 83.73, GAT 81.20 / 82.41 -> 81.34 / 83.15, GraphSAGE
    80.46 / 82.13 -> 81.20 / 82.65 (clearing Adam's moments as well: 81.34 / 83.34, 81.40 / 83.32, 80.90 / 82.42).

    Mini-batches (:class:`~gkd.train.Trainer` with a loader): the targets and the trust decision come from the
    full-graph, eval-mode predictions of the last refresh and teach each batch's seed nodes.

    The teacher is the current training-mode (dropout) forward pass. Measured alternatives on Cora/GCN, 5 seeds, were
    no better: the previous epoch's dropout-free predictions (82.7), the best-validation checkpoint's (82.7), a
    mean-teacher weight average (82.1), against 83.0-83.5 for this choice.
    """

    name = "neighbour"
    minibatch = True
    all_nodes = True

    def __init__(self, weight: float = 1.0, steps: int = 10, alpha: float = 0.1, sharpen: float = 0.5,
                 warmup: int = 100, adaptive: bool = True, restart: bool = True, graphs: str = "input,features",
                 choose: str = "first", knn: int = 10, knn_max_nodes: int = 200_000) -> None:
        o = NeighbourOptions(weight=weight, steps=steps, alpha=alpha, sharpen=sharpen, warmup=warmup,
                             adaptive=adaptive, restart=restart, graphs=graphs, choose=choose, knn=knn,
                             knn_max_nodes=knn_max_nodes)  # the one place values are checked
        super().__init__(weight, warmup, restart)
        self.steps, self.alpha, self.sharpen, self.adaptive = steps, alpha, sharpen, adaptive
        self.graphs, self.choice, self.knn, self.knn_max_nodes = o.graph_names, choose, knn, knn_max_nodes
        self.cache = _GraphCache()
        self.feature_cache = _FeatureGraphCache()
        self.trust = 1.0
        self.taught = {g: 0 for g in self.graphs}  # epochs each graph taught (stats)
        self.skipped: str | None = None
        self._full: Step | None = None  # mini-batch: the last full-graph refresh
        self._fixed: tuple | None = None
        self._taught_epoch: int | None = None

    @torch.no_grad()
    def propagate(self, adj: Tensor, logits: Tensor, y: Tensor, train_mask: Tensor) -> Tensor:
        z0 = F.softmax(logits.detach(), dim=-1)
        # clamp_min: an unlabelled node (-1) is in no train_mask, so its one-hot row is never used
        z0 = torch.where(train_mask.unsqueeze(-1), F.one_hot(y.clamp_min(0), logits.size(-1)).to(z0.dtype), z0)
        z = appnp_propagate(adj, z0, self.steps, self.alpha, clamp_mask=train_mask).clamp_min(1e-12)
        z = z.pow(1.0 / self.sharpen)
        return z / z.sum(-1, keepdim=True)

    def targets(self, logits: Tensor, graph: Tensor, y: Tensor, train_mask: Tensor) -> Tensor:
        """The input graph's propagated, sharpened targets."""
        return self.propagate(self.cache.get(graph, logits.size(0)), logits, y, train_mask)

    def candidates(self, logits: Tensor, graph: Tensor, x: Tensor | None, y: Tensor, train_mask: Tensor):
        for g in self.graphs:
            if g == "input":
                yield g, self.targets(logits, graph, y, train_mask)
            elif x is None or x.size(0) > self.knn_max_nodes:
                self.skipped = (f"features graph not built: {x.size(0)} nodes > knn_max_nodes="
                                f"{self.knn_max_nodes}") if x is not None else "features graph not built: no x"
            else:
                yield g, self.propagate(self.feature_cache.get(x, min(self.knn, x.size(0) - 1)), logits, y,
                                        train_mask)

    def choose(self, teacher: Tensor, graph: Tensor, y: Tensor, train_mask: Tensor, val_mask: Tensor | None = None,
               x: Tensor | None = None) -> tuple[str | None, Tensor | None]:
        """``(graph name, targets)`` of the candidate that teaches now, ``(None, None)`` when none is trusted."""
        gated = self.adaptive and val_mask is not None and bool(val_mask.any())
        if not gated:
            return next(self.candidates(teacher, graph, x, y, train_mask), (None, None))
        yv = y[val_mask]
        best, best_acc, best_name = None, float((teacher[val_mask].argmax(-1) == yv).float().mean()), None
        for name, t in self.candidates(teacher, graph, x, y, train_mask):
            acc = float((t[val_mask].argmax(-1) == yv).float().mean())
            if acc >= best_acc and (best is None or acc > best_acc):
                best, best_acc, best_name = t, acc, name
                if self.choice == "first":
                    break  # the later graphs are not even built this epoch
        self.trust = float(best is not None)
        return best_name, best

    def loss(self, logits: Tensor, graph: Tensor, y: Tensor, train_mask: Tensor,
             val_mask: Tensor | None = None, x: Tensor | None = None) -> Tensor:
        """KL to the propagated targets of the model's own (detached) ``logits``."""
        name, t = self.choose(logits.detach(), graph, y, train_mask, val_mask, x)
        if t is None:
            return logits.new_zeros(())
        self.taught[name] += 1
        return soft_kl(t, logits)

    def refresh(self, step: Step) -> None:
        self._full, self._fixed = step, None  # the targets are built when a batch first needs them

    def _batch_loss(self, step: Step) -> Tensor:
        """Mini-batch: the seed nodes learn the targets chosen on the last refresh's full-graph predictions."""
        if self._fixed is None:
            check(self._full is not None, "the neighbour term got a mini-batch step before any full-graph refresh "
                  "(the trainer refreshes it; in a custom loop call term.refresh(full_step) first)", ConfigError)
            f, d = self._full, self._full.data
            self._fixed = self.choose(f.logits, f.graph, d.y, d.train_mask, getattr(d, "val_mask", None),
                                      getattr(d, "x", None))
        name, t = self._fixed
        if t is None:
            return step.logits.new_zeros(())
        if self._taught_epoch != step.epoch:
            self._taught_epoch = step.epoch
            self.taught[name] += 1
        rows, ids = step.seed_rows()
        return soft_kl(t[ids], rows)

    def stats(self) -> dict:
        return {"taught_epochs": dict(self.taught), **({"skipped": self.skipped} if self.skipped else {})}

    def term_loss(self, step: Step) -> Tensor:
        if step.nodes is not None:
            return self._batch_loss(step)
        d = step.data
        return self.loss(step.logits, step.graph, d.y, d.train_mask, getattr(d, "val_mask", None),
                         getattr(d, "x", None))


class DepthTerm(LateStart):
    r"""Depth self-distillation.

    BYOT (Zhang et al., ICCV 2019): a linear head on every hidden layer :math:`l` is trained with cross-entropy on the
    labelled nodes and :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(z_L/T) \Vert \mathrm{softmax}(z_l/T))` toward the
    deepest layer's detached predictions. GNN-SD (Chen et al., IJCAI 2021): the neighbourhood discrepancy
    :math:`s_v = 1 - \cos(h_v, (\hat A h)_v)` of layer :math:`l` (stop-gradient; :math:`\hat A` the symmetric-normalised
    adjacency with self-loops, GCN's neighbourhood average) teaches layer :math:`l+1`'s by mean squared error. The heads are dropped at export.
    """

    name = "depth"
    minibatch = True  # per batch: heads on the subgraph's hidden rows, discrepancies over its sampled edges
    all_nodes = True

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


class TimeTerm(LateStart):
    r"""Progressive self-knowledge distillation (PS-KD, Kim et al., ICCV 2021).

    The target on labelled nodes is :math:`(1-a_t)\,\mathrm{onehot}(y) + a_t\,p_{t-1}`, where :math:`p_{t-1}` is the
    model's own softmax from the previous epoch (an :math:`N\times C` buffer in full-batch training) and
    :math:`a_t = a_{\max}\, t / T` ramps up linearly. Added to the trainer's cross-entropy it contributes
    :math:`a_t\,[\mathrm{CE}(p_{t-1}, z) - \mathrm{CE}(y, z)]`, so the supervised part equals PS-KD's soft-target loss.
    """

    name = "time"
    minibatch = True

    def __init__(self, weight: float = 1.0, alpha_max: float = 0.8, total_epochs: int = 500, warmup: int = 100,
                 restart: bool = True) -> None:
        super().__init__(weight, warmup, restart)
        TimeOptions(weight=weight, warmup=warmup, restart=restart, alpha_max=alpha_max)
        check(total_epochs >= 1, f"time total_epochs={total_epochs}; expected >= 1", ConfigError)
        self.alpha_max, self.total_epochs = alpha_max, total_epochs
        self.register_buffer("prev", torch.empty(0), persistent=False)

    def alpha(self, epoch: int) -> float:
        return self.alpha_max * min(1.0, epoch / self.total_epochs)

    def loss(self, logits: Tensor, y: Tensor, train_mask: Tensor, epoch: int, nodes: Tensor | None = None) -> Tensor:
        """``nodes``: the global ids of ``logits``' rows (a mini-batch), ``None`` for all nodes."""
        if self.prev.numel() == 0 or not bool(train_mask.any()):  # (a mini-batch without a training seed node)
            return logits.new_zeros(())
        prev = self.prev if nodes is None else self.prev[nodes]
        z, p = logits[train_mask], prev[train_mask]
        soft = -(p * F.log_softmax(z, dim=-1)).sum(-1).mean()
        return self.alpha(epoch) * (soft - F.cross_entropy(z, y[train_mask]))

    def end_epoch(self, logits: Tensor) -> None:
        self.prev = F.softmax(logits.detach(), dim=-1)

    def term_loss(self, step: Step) -> Tensor:
        return self.loss(step.logits, step.data.y, step.data.train_mask, step.epoch, step.nodes)

    def on_epoch_end(self, step: Step) -> None:
        self.end_epoch(step.logits)

    def refresh(self, step: Step) -> None:
        self.end_epoch(step.logits)  # mini-batch: the memory is the last refresh's full-graph predictions


class NormalizedTerm(LateStart):
    r"""Normalised target / non-target self-KD (USKD, Yang et al., ICCV 2023).

    Target part: each labelled node's cross-entropy is re-weighted by :math:`w = s_t^2 + 1 - \overline{s_t^2}`
    (:math:`s_t` its detached target-class probability, the mean over labelled nodes), so the weights average to 1.
    Non-target part: the non-target classes are ranked by the node's own detached logits and given Zipf soft labels
    :math:`\propto 1/\mathrm{rank}`; the loss is the cross-entropy against the softmax over non-target logits only.
    The trainer's plain cross-entropy is subtracted so that ``weight = 1`` replaces it by USKD's target loss.
    """

    name = "normalised"
    minibatch = True

    def __init__(self, weight: float = 1.0, non_target_weight: float = 1.0, warmup: int = 100,
                 restart: bool = True) -> None:
        super().__init__(weight, warmup, restart)
        NormalisedOptions(weight=weight, warmup=warmup, restart=restart, non_target_weight=non_target_weight)
        self.non_target_weight = non_target_weight

    def loss(self, logits: Tensor, y: Tensor, train_mask: Tensor) -> Tensor:
        if not bool(train_mask.any()):  # a mini-batch without a training seed node
            return logits.new_zeros(())
        z, t = logits[train_mask], y[train_mask]
        c = z.size(-1)
        ce = F.cross_entropy(z, t, reduction="none")
        s_t = F.softmax(z.detach(), dim=-1).gather(1, t.unsqueeze(1)).squeeze(1)
        w = s_t.pow(2) + 1.0 - s_t.pow(2).mean()
        target_part = (w * ce).mean() - ce.mean()
        if c < 3:
            return target_part
        keep = ~F.one_hot(t, c).bool()
        nt = z[keep].view(-1, c - 1)
        ranks = nt.detach().argsort(-1, descending=True).argsort(-1).float() + 1.0
        zipf = 1.0 / ranks
        zipf = zipf / zipf.sum(-1, keepdim=True)
        non_target = -(zipf * F.log_softmax(nt, dim=-1)).sum(-1).mean()
        return target_part + self.non_target_weight * non_target

    def term_loss(self, step: Step) -> Tensor:
        return self.loss(step.logits, step.data.y, step.data.train_mask)


@register_term("depth", kind="self", options=DepthOptions, paper="BYOT (ICCV 2019) + GNN-SD (IJCAI 2021)",
               summary="heads on hidden layers learn the last layer; layer discrepancies learn the next layer's")
def build_depth(ctx: SelfContext, o: DepthOptions) -> LossTerm:
    return DepthTerm(list(ctx.hidden_dims), ctx.num_classes, o.weight, o.temperature, o.ndr_weight,
                     o.start_after(ctx.patience), o.restart)


@register_term("time", kind="self", options=TimeOptions, paper="PS-KD (ICCV 2021)",
               summary="the previous epoch's predictions join the labels, with a weight ramped up over the run")
def build_time(ctx: SelfContext, o: TimeOptions) -> LossTerm:
    return TimeTerm(o.weight, alpha_max=o.alpha_max, total_epochs=ctx.epochs, warmup=o.start_after(ctx.patience),
                    restart=o.restart)


@register_term("neighbour", kind="self", options=NeighbourOptions, paper="gkd; label propagation (Zhu 2002)",
               summary="the model's own predictions propagated over the graph, labels clamped, trusted on validation")
def build_neighbour(ctx: SelfContext, o: NeighbourOptions) -> LossTerm:
    return NeighbourTerm(**{**vars(o), "warmup": o.start_after(ctx.patience)})


@register_term("normalised", kind="self", options=NormalisedOptions, paper="USKD (ICCV 2023)",
               summary="normalised target loss and Zipf soft labels on the non-target classes")
def build_normalised(ctx: SelfContext, o: NormalisedOptions) -> LossTerm:
    return NormalizedTerm(o.weight, o.non_target_weight, o.start_after(ctx.patience), o.restart)


SELF_DISTILL_TERMS = ("neighbour", "time")  # the default of --sd-terms (benchmarks/self_distill.py)


def parse_terms(terms: str | Iterable[str]) -> tuple[str, ...]:
    """Self-distillation term names (registered ``self`` terms; ``neighbor`` and ``normalized`` accepted)."""
    out = parse_names("self", terms, "sd_terms")
    check(bool(out), "no self-distillation term given; expected some of "
          f"{', '.join(term_names('self'))}", ConfigError)
    return out


class SelfDistill(nn.Module):
    """The switchable, weighted self-distillation terms for one backbone.

    Args:
        num_classes: output width of the backbone.
        hidden_dims: widths of the backbone's hidden taps (``[hidden_channels] * (num_layers - 1)``).
        terms: registered ``self`` term names (``gkd terms``), a comma string or a list.
        weights: per-term weight (default 1.0 each); negative weights are refused.
        total_epochs: the time term's ramp length.
        patience: the early-stopping patience of the loop the terms join; a term's ``warmup=None`` (the default)
            becomes this, so that with the gkd trainer the terms start where plain training would stop.
        options: per-term options by term name, ``neighbour={"steps": 5}`` (each term's options dataclass).
    """

    def __init__(self, num_classes: int, hidden_dims: Sequence[int],
                 terms: str | Iterable[str] = SELF_DISTILL_TERMS, weights: dict[str, float] | None = None,
                 total_epochs: int = 500, patience: int = 100, **options: dict) -> None:
        super().__init__()
        from .registry import build_options, get_term

        names = parse_terms(terms)
        args = {k: dict(v) for k, v in options.items()}
        for k, w in (weights or {}).items():
            args.setdefault(k, {})["weight"] = float(w)
        opts = build_options("self", names, args)
        ctx = SelfContext(num_classes, list(hidden_dims), total_epochs, patience)
        built = [get_term("self", n).build(ctx, opts[n]) for n in names]
        self.terms = nn.ModuleList(built)

    def forward(self, logits: Tensor, hidden: list[Tensor], graph: Tensor | None, y: Tensor, train_mask: Tensor,
                epoch: int, val_mask: Tensor | None = None, x: Tensor | None = None) -> Tensor:
        """The weighted sum of the switched-on terms, to add to your supervised loss (``val_mask``: for the
        neighbour term's trust gate; ``x``: for its ``features`` graph)."""
        data = Data(y=y, train_mask=train_mask)
        if val_mask is not None:
            data.val_mask = val_mask
        if x is not None:
            data.x = x
        step = Step(logits=logits, hidden=hidden, data=data, epoch=epoch, model=None, graph=graph)
        total = logits.new_zeros(())
        for t in self.terms:
            total = total + t.weight * t(step)
        return total

    def end_epoch(self, logits: Tensor, epoch: int = 0) -> None:
        """Call once per epoch with the epoch's logits: every term's ``on_epoch_end`` runs (the time term remembers
        them)."""
        step = Step(logits=logits, hidden=[], data=Data(), epoch=epoch, model=None)
        for t in self.terms:
            t.on_epoch_end(step)



class FixedGraph(LossTerm):
    """Runs a graph-reading term on a fixed graph (a graph-free student is called without one)."""

    def __init__(self, term: LossTerm, edge_index: Tensor, name: str) -> None:
        super().__init__(term.weight)
        self.term, self.name, self.edge_index = term, name, edge_index
        if callable(getattr(term, "stats", None)):  # the trainer reports stats() of the terms that have one
            self.stats = term.stats

    def forward(self, step: Step) -> Tensor:
        return self.term(dataclasses.replace(step, graph=self.edge_index))

    def restart_from_best(self, epoch: int, best_epoch: int) -> bool:
        return self.term.restart_from_best(epoch, best_epoch)

    @property
    def started(self) -> int | None:
        return getattr(self.term, "started", None)

    def on_epoch_end(self, step: Step) -> None:
        self.term.on_epoch_end(dataclasses.replace(step, graph=self.edge_index))

    @property
    def minibatch(self) -> bool:
        return getattr(self.term, "minibatch", False)

    @property
    def late(self) -> bool:
        return getattr(self.term, "late", False)

    @property
    def all_nodes(self) -> bool:
        return getattr(self.term, "all_nodes", False)

    def refresh(self, step: Step) -> None:
        self.term.refresh(dataclasses.replace(step, graph=self.edge_index))


@dataclass
class StudentSelfOptions(NeighbourOptions):
    """``self`` (student): the ``neighbour`` options, over the teacher's graph unless ``graphs`` says otherwise."""

    graphs: str = "input"


@register_term("self", kind="student", options=StudentSelfOptions, paper="gkd self-distillation",
               summary="the student's own predictions smoothed over the teacher's graph (the self 'neighbour' term)")
def build_student_self(ctx: StudentContext, o: NeighbourOptions) -> LossTerm:
    return FixedGraph(build_neighbour(ctx, o), ctx.edge_index, "self")
