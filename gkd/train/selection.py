"""Model selection on validation, shared by the trainers: their optimisation settings' checks, the best-validation
checkpoint, early stopping, and the guard that holds the model from before late-starting terms."""
from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Iterable

from torch import Tensor, nn

from ..errors import ConfigError, check
from ..limits import MAX_EPOCHS
from .terms import LossTerm, term_stats


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
        self.held_seconds: float | None = None  # when the late terms started (seconds into the run)
        self.baseline_terms: list[str] = []  # the terms on before the late ones: none means plain training

    def hold_baseline(self, terms_on: Iterable[str] = ()) -> None:
        """Hold the best model so far as the guard's baseline (once, at the first late term's start; nothing is held
        when a term starts before the first evaluation). ``terms_on``: the terms trained from the start, which the
        baseline had too (none: it is plain training)."""
        if not self.held:
            self.held = True
            self.baseline_terms = list(terms_on)
            self.held_seconds = time.perf_counter() - self.start  # what the run cost before the terms
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
            # the baseline is the run before its late terms: plain training unless terms ran from the start
            stats["guard"] = {"baseline_epoch": self.baseline[1], "baseline_val": self.baseline[0][0],
                              "baseline_test": self.baseline[2]["test"], "seconds_before_terms": self.held_seconds,
                              "kept": "terms" if kept else "baseline",
                              **({"baseline_terms": self.baseline_terms} if self.baseline_terms else {})}
            if not kept:
                self.best, self.epoch, self.scores, self.state = self.baseline
        self.model.load_state_dict(self.state)
        s = self.scores
        return FitResult(best_epoch=self.epoch, val=s["val"], test=s["test"], train=s["train"], epochs_run=epochs_run,
                         seconds=time.perf_counter() - self.start, state_dict=self.state, history=self.history,
                         stats=stats)
