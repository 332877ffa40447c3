"""The one trainer: full-batch training with early stopping on validation and the best-validation checkpoint.

Methods add :class:`LossTerm` modules; they never copy this loop. Model selection uses validation accuracy only
(ties broken by lower validation loss); test accuracy is read at the selected epoch and never looked at before.
"""
from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ..datasets.validate import check_data
from ..errors import ConfigError, DatasetError, GKDError, check
from ..limits import MAX_EPOCHS
from ..nn import graph_of
from ..nn.hidden import forward as model_forward

Metric = Callable[[Tensor, Tensor], float]  # (logits or predictions, labels) -> score in [0, 1]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; with a fixed thread count, CPU results are then bit-identical across runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def accuracy(logits: Tensor, y: Tensor) -> float:
    if y.numel() == 0:
        return float("nan")
    return float((logits.argmax(dim=-1) == y).float().mean())


def ogb_metric(name: str) -> Metric:
    """``ogb.nodeproppred.Evaluator`` for ``name`` as a gkd metric."""
    from ogb.nodeproppred import Evaluator

    ev = Evaluator(name)
    key = ev.eval_metric

    def metric(logits: Tensor, y: Tensor) -> float:
        pred = logits.argmax(dim=-1, keepdim=True)
        return float(ev.eval({"y_true": y.view(-1, 1), "y_pred": pred})[key])

    return metric


def get_metric(name: str) -> Metric:
    return ogb_metric(name[4:]) if name.startswith("ogb:") else accuracy


@dataclass
class Step:
    """What a loss term sees at one training step."""

    logits: Tensor
    hidden: list[Tensor]
    data: Data
    epoch: int
    model: nn.Module | None
    graph: Tensor | None = None  # what the model was called with: CSR ``adj_t`` or ``edge_index``
    best_epoch: int | None = None  # epoch of the best-validation checkpoint so far (0 before the first evaluation)


class LossTerm(nn.Module):
    """A loss added to the supervised cross-entropy.

    ``forward(step)`` returns the term's unweighted scalar; the trainer multiplies it by ``weight`` and logs it under
    ``name`` (set it: each term's value goes into the epoch history by name). Optional hooks: :meth:`on_epoch_end`,
    :meth:`restart_from_best`, and ``stats() -> dict`` (counters written into the run's JSON ``stats``). A term that
    switches on late sets ``started`` to that epoch; the trainer's guard then holds the model from before it."""

    name = "term"
    started: int | None = None

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        check(0 <= float(weight) < math.inf, f"{self.name} weight={weight!r}; expected >= 0 and finite")
        self.weight = float(weight)

    def forward(self, step: Step) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_epoch_end(self, step: Step) -> None:
        """Called once per epoch with the training-mode outputs (for terms that keep state over time)."""

    def restart_from_best(self, epoch: int, best_epoch: int) -> bool:
        """Asked by the trainer before each epoch; ``True`` makes it reload the best-validation weights first (for a
        term that switches on late, so that it starts from the best model so far, not the overfitted one after it)."""
        return False


@dataclass
class FitResult:
    best_epoch: int
    val: float
    test: float
    train: float
    epochs_run: int
    seconds: float
    state_dict: dict[str, Tensor] = field(repr=False)
    history: list[dict] = field(default_factory=list, repr=False)
    stats: dict = field(default_factory=dict)  # counters terms report (e.g. skipped steps), for the run's JSON


def weighted_terms(terms: Iterable[LossTerm], step, parts: dict[str, float]) -> list[tuple[LossTerm, Tensor]]:
    """``(term, weight * value)`` for every term with a non-zero weight at ``step`` (graph or image step); the raw
    values go into ``parts``. A non-finite value is an error, never a silently ruined model."""
    out = []
    for term in terms:
        if term.weight == 0:
            continue
        value = term(step)
        if not torch.isfinite(value):
            raise GKDError(f"loss term {term.name!r} produced {value.item()} at epoch {step.epoch}; "
                           "expected a finite loss (lower its weight or learning rate)")
        parts[term.name] = value.item()
        out.append((term, term.weight * value))
    return out


def term_stats(terms: Iterable[LossTerm]) -> dict:
    """``{term: term.stats()}`` for the terms that count something."""
    return {t.name: t.stats() for t in terms if callable(getattr(t, "stats", None))}


class BestValidation:
    """Model selection shared by the trainers: keep the state of the epoch with the best validation score (ties: lower
    validation loss), stop after ``patience`` epochs without one. Test scores are stored, never compared.

    The guard (:meth:`hold_baseline`): when terms switch on late (at the validation plateau), the best model before
    them is held as the baseline, and :meth:`result` returns the later model only if its validation score is strictly
    higher; a tie, or a lower score, keeps the baseline. A term can then cost nothing on validation, whatever it
    does after it starts."""

    def __init__(self, model: nn.Module, patience: int) -> None:
        self.model, self.patience = model, patience
        self.start = time.perf_counter()
        self.best, self.epoch, self.scores, self.state, self.since = (-1.0, float("inf")), 0, {}, {}, 0
        self.history: list[dict] = []
        self.baseline: tuple | None = None  # (best, epoch, scores, state) before the late terms started
        self.held = False

    def hold_baseline(self) -> None:
        """Hold the best model so far as the guard's baseline (once, at the first late term's start; nothing is held
        when a term starts before the first evaluation)."""
        if not self.held:
            self.held = True
            if self.state:
                self.baseline = (self.best, self.epoch, self.scores, self.state)

    def update(self, epoch: int, scores: dict[str, float], val_loss: float, logged: dict[str, float] | None = None) \
            -> bool:
        """Record an epoch (``logged``: the loss and each term's value, by term name); True when training should
        stop."""
        self.history.append({"epoch": epoch, **(logged or {}), **scores})
        if (scores["val"], -val_loss) > (self.best[0], -self.best[1]):
            self.best, self.epoch, self.scores, self.since = (scores["val"], val_loss), epoch, scores, 0
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.since += 1
        return self.since >= self.patience

    def result(self, epochs_run: int, terms: Iterable[LossTerm] = ()) -> FitResult:
        """Load the best state (or the guard's baseline, see :meth:`hold_baseline`) into the model and report it."""
        stats = term_stats(terms)
        if self.baseline is not None:
            kept = self.best[0] > self.baseline[0][0]
            stats["guard"] = {"baseline_epoch": self.baseline[1], "baseline_val": self.baseline[0][0],
                              "kept": "terms" if kept else "baseline"}
            if not kept:
                self.best, self.epoch, self.scores, self.state = self.baseline
        self.model.load_state_dict(self.state)
        s = self.scores
        return FitResult(best_epoch=self.epoch, val=s["val"], test=s["test"], train=s["train"], epochs_run=epochs_run,
                         seconds=time.perf_counter() - self.start, state_dict=self.state, history=self.history,
                         stats=stats)


def check_optim_args(epochs: int, patience: int, lr: float, weight_decay: float) -> None:
    """The trainer's argument checks; also run by the run config before any data is loaded. An infinite or NaN
    rate would train to NaN weights and report chance accuracy as if it were a result."""
    check(isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1,
          f"epochs={epochs!r}; expected an integer >= 1", ConfigError)
    check(epochs <= MAX_EPOCHS, f"epochs={epochs!r}; expected an integer <= {MAX_EPOCHS}", ConfigError)
    check(isinstance(patience, int) and not isinstance(patience, bool) and patience >= 1,
          f"patience={patience!r}; expected an integer >= 1", ConfigError)
    check(isinstance(lr, numbers.Real) and 0 < lr < math.inf, f"lr={lr!r}; expected > 0 and finite",
          ConfigError)
    check(isinstance(weight_decay, numbers.Real) and 0 <= weight_decay < math.inf,
          f"weight_decay={weight_decay!r}; expected >= 0 and finite", ConfigError)


def check_test_nodes(data: Data) -> None:
    """A run reports test accuracy: without a test node that is NaN, a non-result. The pipelines call this right after
    loading, before anything trains (the :class:`Trainer` itself accepts an empty test mask and reports NaN)."""
    check(bool(data.test_mask.any()), "test_mask selects no node; the reported score is test accuracy, so at least "
          "one test node is needed", DatasetError)


class Trainer:
    """Full-batch trainer for node classification.

    Args:
        model: a zoo model, or any module called as ``model(x, edge_index)`` (PyG models) or ``model(x)`` (MLPs);
            hidden features, for the terms that read them, come from forward hooks (:mod:`gkd.nn.hidden`).
        data: a validated graph with ``train_mask/val_mask/test_mask``; its ``adj_t`` (CSR) is used when present.
        terms: extra :class:`LossTerm` modules added to the cross-entropy on training nodes.
        patience: stop after this many epochs without a better validation score.
        ce_weight: weight of the cross-entropy on training nodes (distillers such as GLNN use ``lambda`` here).
        loader: mini-batches of sampled subgraphs (:func:`gkd.scale.neighbor_loader` over the training nodes) for
            graphs too big for full-batch steps; evaluation stays full-graph over CSR.
        guard: when a term starts late (sets its ``started``), keep the model from before it unless the terms beat
            it on validation (:class:`BestValidation`); the run's ``stats["guard"]`` says which was kept.
    """

    def __init__(self, model: nn.Module, data: Data, *, lr: float = 0.01, weight_decay: float = 5e-4,
                 epochs: int = 500, patience: int = 100, terms: Iterable[LossTerm] = (),
                 metric: Metric = accuracy, progress: bool | None = False, desc: str = "train",
                 ce_weight: float = 1.0, loader: Iterable[Data] | None = None, guard: bool = True) -> None:
        check_optim_args(epochs, patience, lr, weight_decay)
        check(0.0 <= float(ce_weight), f"ce_weight={ce_weight!r}; expected >= 0", ConfigError)
        meta = getattr(data, "meta", None)
        num_classes = meta.num_classes if meta is not None else getattr(model, "out_channels", None)
        check_data(data, num_classes if num_classes is not None else int(data.y.max()) + 1)
        check(bool(data.val_mask.any()), "val_mask selects no node; the trainer selects the checkpoint on "
              "validation, so at least one validation node is needed", DatasetError)
        self.model, self.data, self.terms = model, data, nn.ModuleList(terms)
        self.epochs, self.patience, self.metric = epochs, patience, metric
        self.optimizer = torch.optim.Adam(list(model.parameters()) + list(self.terms.parameters()), lr=lr,
                                          weight_decay=weight_decay)
        self.progress, self.desc, self.ce_weight = progress, desc, float(ce_weight)
        self.loader, self.guard = loader, guard
        check(loader is None or not len(self.terms), "loss terms need full-batch steps; mini-batch training "
              "(loader=...) takes plain cross-entropy only", ConfigError)

    def loss(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        d = step.data
        ce = F.cross_entropy(step.logits[d.train_mask], d.y[d.train_mask])
        parts = {"ce": ce.item()}
        loss = self.ce_weight * ce
        for _, value in weighted_terms(self.terms, step, parts):
            loss = loss + value
        return loss, parts

    def _epoch(self, epoch: int, best_epoch: int) -> tuple[Tensor, dict[str, float]]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        graph = graph_of(self.data)
        logits, hidden = model_forward(self.model, self.data.x, graph)
        step = Step(logits, hidden, self.data, epoch, self.model, graph, best_epoch)
        loss, parts = self.loss(step)
        loss.backward()
        self.optimizer.step()
        for term in self.terms:
            term.on_epoch_end(step)
        return loss, parts

    def _minibatch_epoch(self) -> tuple[Tensor, dict[str, float]]:
        """One pass over the loader's sampled subgraphs; the loss is read on each batch's seed nodes."""
        self.model.train()
        total, seen = 0.0, 0
        for batch in self.loader:
            self.optimizer.zero_grad(set_to_none=True)
            b = batch.batch_size
            out = self.model(batch.x, batch.edge_index)
            loss = self.ce_weight * F.cross_entropy(out[:b], batch.y[:b])
            loss.backward()
            self.optimizer.step()
            total, seen = total + loss.item() * b, seen + b
        mean = total / max(seen, 1)
        return torch.tensor(mean), {"ce": mean}

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float]:
        self.model.eval()
        d = self.data
        logits = model_forward(self.model, d.x, graph_of(d), want_hidden=False)[0]
        scores = {s: self.metric(logits[d[f"{s}_mask"]], d.y[d[f"{s}_mask"]]) for s in ("train", "val", "test")}
        val_loss = float(F.cross_entropy(logits[d.val_mask], d.y[d.val_mask])) if bool(d.val_mask.any()) else 0.0
        return scores, val_loss

    def fit(self) -> FitResult:
        select = BestValidation(self.model, self.patience)
        bar = tqdm(range(1, self.epochs + 1), desc=self.desc, leave=False, disable=not self.progress,
                   dynamic_ncols=True)
        for epoch in bar:
            restart = [t.restart_from_best(epoch, select.epoch) for t in self.terms]  # a list: ask every term
            if any(getattr(t, "started", None) == epoch for t in self.terms):
                select.since = 0  # a term starting now gets a full patience
            if self.guard and any(getattr(t, "started", None) is not None for t in self.terms):
                select.hold_baseline()
            if any(restart) and select.state:
                self.model.load_state_dict(select.state)  # weights only: keeping Adam's moments measured better
            loss, parts = self._epoch(epoch, select.epoch) if self.loader is None else self._minibatch_epoch()
            scores, val_loss = self.evaluate()
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{scores['val']:.3f}", refresh=False)
            if select.update(epoch, scores, val_loss, {"loss": loss.item(), **parts}):
                break
        return select.result(epoch, self.terms)
