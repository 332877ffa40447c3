"""What a loss term is to the trainer: the :class:`Step` it reads, the :class:`LossTerm` base, and the
:class:`Capabilities` record the trainer, the guards and the pipelines read (never found by building a term)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import torch
from torch import Tensor, nn

from ..errors import GKDError, check

if TYPE_CHECKING:  # the term protocol needs no PyG: `gkd terms` lists the registry without importing it
    from torch_geometric.data import Data


@dataclass(frozen=True)
class Capabilities:
    """What a loss term can do. Declared on its class (``caps = Capabilities(minibatch=True)``) or on its registry
    entry (``register_term(..., caps=...)``, which the built term then carries); read by the trainer, the student
    stage and the config checks, which never build a term to find out."""

    minibatch: bool = False   # also works on mini-batch steps (:class:`Step`'s ``nodes``/``seeds``; ``refresh``)
    late_start: bool = False  # off until it sets ``started``; the trainer's guard then holds the model from before it
    all_nodes: bool = False   # teaches unlabelled nodes too: mini-batches then seed every node once it is on
    transform: bool = False   # changes the student's input or the other terms' node weights; adds no loss itself

    def describe(self) -> str:
        """``"mini-batch, late start"``: the capabilities that are on, for ``gkd terms``."""
        on = [name.replace("_", " ").replace("minibatch", "mini-batch") for name, v in vars(self).items() if v]
        return ", ".join(on) or "full-batch"


# the flags terms declared before Capabilities (a plugin may still): class attribute -> capability
_LEGACY_FLAGS = {"minibatch": "minibatch", "late": "late_start", "all_nodes": "all_nodes"}


def caps_of(term: nn.Module) -> Capabilities:
    """A term's capabilities (a module that is not a :class:`LossTerm` declares none)."""
    caps = getattr(term, "caps", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


@dataclass
class Step:
    """What a loss term sees at one training step.

    Full-batch: every node's rows. Mini-batch: ``logits``, ``hidden``, ``data`` and ``graph`` are the sampled
    subgraph's (``data.y``/``data.x`` its rows, ``data.train_mask`` its training seed nodes), ``nodes`` their global
    ids and the first ``seeds`` rows the seed nodes, whose outputs saw their whole sampled neighbourhood."""

    logits: Tensor
    hidden: list[Tensor]
    data: Data
    epoch: int
    model: nn.Module | None
    graph: Tensor | None = None  # what the model was called with: CSR ``adj_t`` or ``edge_index``
    best_epoch: int | None = None  # epoch of the best-validation checkpoint so far (0 before the first evaluation)
    nodes: Tensor | None = None  # mini-batch: global node ids of the rows; None: the rows are all nodes
    seeds: int | None = None  # mini-batch: the first ``seeds`` rows are the batch's seed nodes

    def seed_rows(self) -> tuple[Tensor, Tensor | None]:
        """``(logits, global ids)`` of the rows a per-node target teaches: every node full-batch (ids ``None``),
        the seed nodes in a mini-batch."""
        if self.nodes is None:
            return self.logits, None
        return self.logits[: self.seeds], self.nodes[: self.seeds]


class LossTerm(nn.Module):
    """A loss added to the supervised cross-entropy.

    ``forward(step)`` returns the term's unweighted scalar; the trainer multiplies it by ``weight`` and logs it under
    ``name`` (set it: each term's value goes into the epoch history by name). Optional hooks: :meth:`on_epoch_end`,
    :meth:`restart_from_best`, :meth:`refresh`, and ``stats() -> dict`` (counters written into the run's JSON
    ``stats``). A term that switches on late sets ``started`` to that epoch; the trainer's guard then holds the model
    from before it. What it can do is its :class:`Capabilities` (``caps``): ``minibatch`` declares that it also works
    on mini-batch steps (see :class:`Step`): per-node state that needs the whole graph comes from :meth:`refresh`
    and is indexed by ``step.nodes``."""

    name = "term"
    started: int | None = None
    caps = Capabilities()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        legacy = {new: cls.__dict__[old] for old, new in _LEGACY_FLAGS.items()
                  if isinstance(cls.__dict__.get(old), bool)}
        if legacy and "caps" not in cls.__dict__:  # ``minibatch = True`` and friends, written before Capabilities
            cls.caps = dataclasses.replace(cls.caps, **legacy)

    @property
    def minibatch(self) -> bool:
        return self.caps.minibatch

    @property
    def late(self) -> bool:
        return self.caps.late_start

    @property
    def all_nodes(self) -> bool:
        return self.caps.all_nodes

    def refresh(self, step: Step) -> None:
        """Mini-batch training only: called every ``refresh`` epochs (and when a term restarts from the best weights)
        with a full-graph, eval-mode, gradient-free :class:`Step` of the current weights, for the per-node state a
        full-batch term would compute from its own step (propagated targets, a memory of past predictions)."""

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


