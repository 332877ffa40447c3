"""The ``self`` student term: a graph-free student distils itself, the ``neighbour`` self term
(:mod:`gkd.distill.neighbour`) run over the teacher's graph through :class:`FixedGraph`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from ..train.terms import Capabilities, LossTerm, Step, caps_of
from .neighbour import NeighbourOptions, build_neighbour
from .registry import StudentContext, register_term


class FixedGraph(LossTerm):
    """Runs a graph-reading term on a fixed graph (a graph-free student is called without one)."""

    def __init__(self, term: LossTerm, edge_index: Tensor, name: str) -> None:
        super().__init__(term.weight)
        self.term, self.name, self.edge_index = term, name, edge_index
        self.caps = caps_of(term)  # it can do what the wrapped term can
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

    def refresh(self, step: Step) -> None:
        self.term.refresh(dataclasses.replace(step, graph=self.edge_index))


@dataclass
class StudentSelfOptions(NeighbourOptions):
    """``self`` (student): the ``neighbour`` options, over the teacher's graph unless ``graphs`` says otherwise."""

    graphs: str = "input"


@register_term("self", kind="student", options=StudentSelfOptions, paper="gkd self-distillation",
               summary="the student's own predictions smoothed over the teacher's graph (the self 'neighbour' term)",
               # the neighbour term on the teacher's graph; node mini-batches of a student are not tested with it
               caps=Capabilities(late_start=True, all_nodes=True))
def build_student_self(ctx: StudentContext, o: NeighbourOptions) -> LossTerm:
    return FixedGraph(build_neighbour(ctx, o), ctx.edge_index, "self")

