"""The one trainer: full-batch or mini-batch training with early stopping on validation and the best-validation
checkpoint.

Methods add :class:`LossTerm` modules; they never copy this loop. Model selection uses validation accuracy only
(ties broken by lower validation loss); test accuracy is read at the selected epoch and never looked at before.
"""
from __future__ import annotations

import math
import random
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ..datasets.validate import check_data
from ..errors import ConfigError, DatasetError, check, check_int
from ..metrics import Metric, accuracy, get_metric, ogb_metric  # noqa: F401  (re-exported: gkd.train's API)
from ..nn import graph_of
from ..nn.hidden import bind_edges
from ..nn.hidden import forward as model_forward
from .selection import BestValidation, FitResult, check_optim_args  # noqa: F401  (re-exported)
from .terms import Capabilities, LossTerm, Step, caps_of, weighted_terms  # noqa: F401  (gkd.train's API)

REFRESH_MEANING = "epochs between full-graph refreshes"  # the trainer's and the run config's messages


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; with a fixed thread count, CPU results are then bit-identical across runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _from_rank0(scores: dict[str, float], val_loss: float) -> tuple[dict[str, float], float]:
    import torch.distributed as dist

    keys = sorted(scores)
    t = torch.tensor([scores[k] for k in keys] + [val_loss], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, 0)
    values = t.cpu().tolist()
    return dict(zip(keys, values[:-1])), values[-1]


def check_test_nodes(data: Data) -> None:
    """A run reports test accuracy: without a test node that is NaN, a non-result. The pipelines call this right after
    loading, before anything trains (the :class:`Trainer` itself accepts an empty test mask and reports NaN)."""
    check(bool(data.test_mask.any()), "test_mask selects no node; the reported score is test accuracy, so at least "
          "one test node is needed", DatasetError)


def check_first_forward(logits: Tensor, loss: Tensor | None, x: Tensor) -> None:
    """The first step's logits and loss are finite. Features that are finite but near float32's limit (``3e38``)
    overflow in the first layer: every epoch would then train on NaN and the run would report chance accuracy as a
    result. Read-only (``isfinite`` and ``max``): the run's numbers and random draws are those of an unchecked run."""
    if bool(torch.isfinite(logits).all()) and (loss is None or bool(torch.isfinite(loss))):
        return
    what = "logits" if not bool(torch.isfinite(logits).all()) else "loss"
    big = float(x.detach().abs().max()) if x.numel() else 0.0
    cause = (f"the features are too large (max |x| = {big:.3g}; float32 overflows past 3.4e38 once the first layer "
             "sums them): scale or normalise them" if big > 1e15 else
             f"the features look sane (max |x| = {big:.3g}): the model's weights or layers are not finite")
    raise DatasetError(f"the first forward pass gave NaN or infinite {what}, before any training step: {cause}")


class Trainer:
    """Trainer for node classification, full-batch or on sampled mini-batches (``loader``).

    Args:
        model: a zoo model, or any module called as ``model(x, edge_index)`` (PyG models) or ``model(x)`` (MLPs);
            hidden features, for the terms that read them, come from forward hooks (:mod:`gkd.nn.hidden`).
        data: a validated graph with ``train_mask/val_mask/test_mask``; its ``adj_t`` (CSR) is used when present.
        terms: extra :class:`LossTerm` modules added to the cross-entropy on training nodes.
        patience: stop after this many epochs without a better validation score.
        ce_weight: weight of the cross-entropy on training nodes (distillers such as GLNN use ``lambda`` here).
        loader: mini-batches of sampled subgraphs (:func:`gkd.scale.neighbor_loader`) for graphs too big for
            full-batch steps; the cross-entropy is read on the training seed nodes, terms (``Capabilities.minibatch``) on
            the seed nodes (the depth term: the subgraph). Evaluation stays full-graph.
        term_loader: mini-batch only: the batches once a term that teaches unlabelled nodes (``all_nodes``) is on
            (not ``late``, or ``started``), e.g. seeded on every node; default ``loader``. Until then a run is plain
            mini-batch training batch for batch.
        refresh: mini-batch only: the terms' whole-graph state is recomputed from full-graph inference every
            ``refresh`` epochs (reusing the evaluation's) and whenever the best weights are reloaded.
        guard: when a term starts late (sets its ``started``), keep the model from before it unless the terms beat
            it on validation (:class:`BestValidation`); the run's ``stats["guard"]`` says which was kept.
    """

    def __init__(self, model: nn.Module, data: Data, *, lr: float = 0.01, weight_decay: float = 5e-4,
                 epochs: int = 500, patience: int = 100, terms: Iterable[LossTerm] = (),
                 metric: Metric | None = None, progress: bool | None = False, desc: str = "train",
                 ce_weight: float = 1.0, loader: Iterable[Data] | None = None, guard: bool = True,
                 term_loader: Iterable[Data] | None = None, refresh: int = 1) -> None:
        check_optim_args(epochs, patience, lr, weight_decay)
        check(0.0 <= float(ce_weight), f"ce_weight={ce_weight!r}; expected >= 0", ConfigError)
        meta = getattr(data, "meta", None)
        num_classes = meta.num_classes if meta is not None else getattr(model, "out_channels", None)
        check_data(data, num_classes if num_classes is not None else int(data.y.max()) + 1)
        check(bool(data.val_mask.any()), "val_mask selects no node; the trainer selects the checkpoint on "
              "validation, so at least one validation node is needed", DatasetError)
        self.model, self.data, self.terms = model, data, nn.ModuleList(terms)
        # the score it selects on: the one given, else the dataset's own (data.meta.metric), else accuracy
        if metric is None:
            metric = get_metric(meta.metric) if isinstance(getattr(meta, "metric", None), str) else accuracy
        self.epochs, self.patience, self.metric = epochs, patience, metric
        # full-batch forwards call a PyG model of the user's as its owner would: with data's edge_weight / edge_attr
        # when its forward takes them (gkd's zoo reads the structure alone, as before)
        self._forward_model = bind_edges(model, data)
        self.optimizer = torch.optim.Adam(list(model.parameters()) + list(self.terms.parameters()), lr=lr,
                                          weight_decay=weight_decay)
        self.progress, self.desc, self.ce_weight = progress, desc, float(ce_weight)
        self.loader, self.term_loader, self.guard = loader, term_loader, guard
        check(term_loader is None or loader is not None, "term_loader= needs loader= (mini-batch training)",
              ConfigError)
        check_int("refresh", refresh, 1, ConfigError, REFRESH_MEANING)
        self.refresh = refresh
        full_only = [t.name for t in self.terms if not caps_of(t).minibatch]
        check(loader is None or not full_only, f"loss terms {full_only} need full-batch steps; mini-batch training "
              "(loader=...) takes the terms that declare minibatch = True (self-distillation, born-again, label "
              "smoothing, tf-kd-reg, soft-label KD, the student's neighbour KD)", ConfigError)
        self._full_logits: Tensor | None = None  # the last evaluation's logits, while the weights are unchanged
        self._checked = False  # whether the first step's logits and loss were found finite

    def loss(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        d = step.data
        # a mini-batch seeded on all nodes may hold no training node: then no cross-entropy, not a NaN
        ce = F.cross_entropy(step.logits[d.train_mask], d.y[d.train_mask]) if bool(d.train_mask.any()) \
            else step.logits.new_zeros(())
        parts = {"ce": ce.item()}
        loss = self.ce_weight * ce
        for _, value in weighted_terms(self.terms, step, parts):
            loss = loss + value
        return loss, parts

    def _epoch(self, epoch: int, best_epoch: int) -> tuple[Tensor, dict[str, float]]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        graph = graph_of(self.data)
        logits, hidden = model_forward(self._forward_model, self.data.x, graph)
        if not self._checked:  # before the terms read the logits: their own NaN check would blame the term
            check_first_forward(logits, None, self.data.x)
        step = Step(logits, hidden, self.data, epoch, self.model, graph, best_epoch)
        loss, parts = self.loss(step)
        if not self._checked:
            check_first_forward(logits, loss, self.data.x)
            self._checked = True
        loss.backward()
        self.optimizer.step()
        for term in self.terms:
            term.on_epoch_end(step)
        return loss, parts

    def _minibatch_epoch(self, epoch: int, best_epoch: int) -> tuple[Tensor, dict[str, float]]:
        """One pass over the loader's sampled subgraphs: cross-entropy on each batch's training seed nodes, terms
        on its seed nodes (the depth term on the whole sampled subgraph; :class:`Step`); the epoch's loss and parts
        are seed-weighted means over batches (the cross-entropy: over training seed nodes)."""
        self.model.train()
        self._full_logits = None
        d, want_hidden = self.data, len(self.terms) > 0
        totals: dict[str, float] = {}
        weights: dict[str, int] = {}
        # the all-node batches serve the terms that teach unlabelled nodes, once one of them is on
        on = any(caps_of(t).all_nodes and (not caps_of(t).late_start or t.started is not None) for t in self.terms)
        world = _world_size()
        for batch in self.term_loader if on and self.term_loader is not None else self.loader:
            self.optimizer.zero_grad(set_to_none=True)
            batch = batch.to(d.x.device)
            b, nodes = int(batch.batch_size), batch.n_id
            seed = torch.zeros(nodes.numel(), dtype=torch.bool, device=nodes.device)
            seed[:b] = True
            local = Data(x=batch.x, y=d.y[nodes], train_mask=d.train_mask[nodes] & seed,
                         val_mask=torch.zeros_like(seed), test_mask=torch.zeros_like(seed), num_nodes=nodes.numel())
            labelled = int(local.train_mask.sum())
            logits, hidden = model_forward(self.model, batch.x, batch.edge_index, want_hidden=want_hidden)
            if not self._checked:
                check_first_forward(logits, None, batch.x)
            loss, parts = self.loss(Step(logits, hidden, local, epoch, self.model, batch.edge_index, best_epoch,
                                         nodes=nodes, seeds=b))
            if not self._checked:
                check_first_forward(logits, loss, batch.x)
                self._checked = True
            if not loss.requires_grad and world > 1:
                loss = loss + 0.0 * logits.sum()  # every DDP rank must take part in every step's all-reduce
            if loss.requires_grad:  # else a batch without a training seed node before the terms start
                loss.backward()
                if world > 1:
                    self._all_reduce_term_grads(world)
                self.optimizer.step()
            for k, v in {"loss": loss.item(), **parts}.items():  # the cross-entropy: per training seed node
                w = labelled if k == "ce" else b
                totals[k], weights[k] = totals.get(k, 0.0) + v * w, weights.get(k, 0) + w
        means = {k: v / weights[k] if weights[k] else 0.0 for k, v in totals.items()}
        return torch.tensor(means.pop("loss", 0.0)), means

    def _all_reduce_term_grads(self, world: int) -> None:
        """DDP averages the model's gradients; the terms' own parameters (the depth term's heads) are averaged here,
        so that every rank keeps the same heads."""
        import torch.distributed as dist

        for p in self.terms.parameters():
            if p.grad is not None:  # None on every rank alike (a term is on or off the same epoch everywhere)
                dist.all_reduce(p.grad)
                p.grad /= world

    @torch.no_grad()
    def _refresh_terms(self, epoch: int, best_epoch: int) -> None:
        """Hand the terms a full-graph step of the current weights (the last evaluation's logits when the weights
        have not changed since)."""
        d, graph = self.data, graph_of(self.data)
        if self._full_logits is None:
            self.model.eval()
            self._full_logits = model_forward(self._forward_model, d.x, graph, want_hidden=False)[0]
        step = Step(self._full_logits, [], d, epoch, self.model, graph, best_epoch)
        for term in self.terms:
            term.refresh(step)

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float]:
        self.model.eval()
        d = self.data
        logits = model_forward(self._forward_model, d.x, graph_of(d), want_hidden=False)[0]
        self._full_logits = logits if self.loader is not None else None
        scores = {s: self.metric(logits[d[f"{s}_mask"]], d.y[d[f"{s}_mask"]]) for s in ("train", "val", "test")}
        name = getattr(self.metric, "__name__", "the metric")
        check(math.isfinite(scores["val"]), f"the validation score is {scores['val']} ({name} is undefined on these "
              "validation nodes, e.g. ROC AUC over one class): the best epoch cannot be chosen; expected a "
              "validation split the metric scores", DatasetError)
        val_loss = float(F.cross_entropy(logits[d.val_mask], d.y[d.val_mask])) if bool(d.val_mask.any()) else 0.0
        return scores, val_loss

    def fit(self) -> FitResult:
        select = BestValidation(self.model, self.patience)
        # progress=None (the CLI without --quiet): a per-epoch bar with its ETA on a terminal, none in a log file
        bar = tqdm(range(1, self.epochs + 1), desc=self.desc, leave=False, dynamic_ncols=True,
                   disable=None if self.progress is None else not self.progress)
        for epoch in bar:
            restart = [t.restart_from_best(epoch, select.epoch) for t in self.terms]  # a list: ask every term
            if any(getattr(t, "started", None) == epoch for t in self.terms):
                select.since = 0  # a term starting now gets a full patience
            if self.guard and any(getattr(t, "started", None) is not None for t in self.terms):
                select.hold_baseline(t.name for t in self.terms if not caps_of(t).late_start)
            reloaded = any(restart) and bool(select.state)
            if reloaded:
                self.model.load_state_dict(select.state)  # weights only: keeping Adam's moments measured better
                self._full_logits = None
            if self.loader is None:
                loss, parts = self._epoch(epoch, select.epoch)
            else:
                if len(self.terms) and (reloaded or (epoch - 1) % self.refresh == 0):
                    self._refresh_terms(epoch, select.epoch)
                loss, parts = self._minibatch_epoch(epoch, select.epoch)
            scores, val_loss = self.evaluate()
            if _world_size() > 1:  # every rank takes rank 0's decision (stop, restart), whatever its own float noise
                scores, val_loss = _from_rank0(scores, val_loss)
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{scores['val']:.3f}", refresh=False)
            if select.update(epoch, scores, val_loss, {"loss": loss.item(), **parts}):
                break
        return select.result(epoch, self.terms)
