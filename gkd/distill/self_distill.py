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

from dataclasses import dataclass
from typing import Iterable, Sequence

from torch import Tensor, nn

from ..errors import ConfigError, check
from ..nn.propagation import normalized_adjacency
from ..train.terms import Capabilities, LossTerm, Step
from .registry import SelfContext, TermOptions, parse_names, term_names


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

    caps = Capabilities(late_start=True)

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
        built = [get_term("self", n).make(ctx, opts[n]) for n in names]
        self.terms = nn.ModuleList(built)

    def forward(self, logits: Tensor, hidden: list[Tensor], graph: Tensor | None, y: Tensor, train_mask: Tensor,
                epoch: int, val_mask: Tensor | None = None, x: Tensor | None = None) -> Tensor:
        """The weighted sum of the switched-on terms, to add to your supervised loss (``val_mask``: for the
        neighbour term's trust gate; ``x``: for its ``features`` graph)."""
        from torch_geometric.data import Data  # here, so that importing the terms (`gkd terms`) does not import PyG

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
        from torch_geometric.data import Data

        step = Step(logits=logits, hidden=[], data=Data(), epoch=epoch, model=None)
        for t in self.terms:
            t.on_epoch_end(step)

