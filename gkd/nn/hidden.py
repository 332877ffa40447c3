"""Logits and per-layer hidden features from any model, without changing it.

gkd's zoo returns both from one forward (``return_hidden=True``). Any other model — a PyG ``BasicGNN`` or ``MLP``, a
custom ``MessagePassing`` net — is called as ``model(x, edge_index)`` (or ``model(x)``) and its hidden features are
captured with forward hooks: on the modules named in ``hidden=[...]``, or by default on a PyG model's activation
module (``model.act``), whose output after each layer but the last is exactly the zoo's "post-activation hidden".
A model with neither gives no hidden features, and a term that needs them says so (:func:`require_hidden`).
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Iterator, Sequence

from torch import Tensor, nn

from ..errors import ConfigError, check


def is_zoo(model: nn.Module) -> bool:
    from .models import BasicModel

    return isinstance(model, BasicModel)


def takes_graph(model: nn.Module) -> bool:
    """Whether ``model`` is called with the graph: zoo GNNs and anything whose ``forward`` has a second positional
    parameter (PyG's ``BasicGNN``: ``edge_index``); ``MLP``-like modules take features alone."""
    if is_zoo(model):
        return bool(model.uses_graph)
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) >= 2 and params[1].name in ("edge_index", "adj_t", "adj", "graph")


EDGE_INPUTS = ("edge_weight", "edge_attr")


class BoundGraph(nn.Module):
    """A model of the user's called as its owner trained it: ``module(x, edge_index, edge_weight=..., ...)`` with
    the graph's own edge inputs (PyG's convention), whatever graph structure the caller hands it."""

    def __init__(self, module: nn.Module, edge_index: Tensor, edge_inputs: dict[str, Tensor]) -> None:
        super().__init__()
        self.module, self.edge_index, self.edge_inputs = module, edge_index, dict(edge_inputs)
        self.training = module.training  # not train(): that would reset the modes of the user's submodules

    def forward(self, x: Tensor, graph: Tensor | None = None) -> Tensor:
        return self.module(x, self.edge_index, **self.edge_inputs)


def bind_edges(model: nn.Module, data) -> nn.Module:
    """``model`` as it must be called on ``data``: a user's GNN bound to ``data.edge_index`` and the edge inputs
    (``edge_weight``, ``edge_attr``) its ``forward`` takes; a model that reads no graph, a zoo model (it reads the
    structure alone), or any model on data without edge inputs, as it is. Edge inputs the data has but the forward
    cannot take are refused: the model would answer another graph than the one it was trained on."""
    given = {k: getattr(data, k) for k in EDGE_INPUTS if getattr(data, k, None) is not None}
    if not given or is_zoo(model) or not takes_graph(model):
        return model  # called with whatever graph the caller gives (edge_index, or gkd's CSR adjacency)
    params = inspect.signature(model.forward).parameters
    any_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    takes = {k: v for k, v in given.items() if k in params or any_kw}
    left = [k for k in given if k not in takes]
    check(not left, f"{type(model).__name__}.forward takes no {' / '.join(left)}, but the graph has "
          f"{', '.join(f'data.{k}' for k in left)}: called without them it would answer another graph than its "
          f"owner's; drop them from data, or give a model that reads them", ConfigError)
    return BoundGraph(model, data.edge_index, takes)


def _modules(model: nn.Module, hidden: Sequence[str] | None) -> list[nn.Module]:
    if hidden is not None:
        named = dict(model.named_modules())
        missing = [h for h in hidden if h not in named]
        check(not missing, f"hidden={list(hidden)}: {type(model).__name__} has no module(s) {missing}; "
              f"available: {', '.join(n for n in named if n)[:300]}", ConfigError)
        return [named[h] for h in hidden]
    act = getattr(model, "act", None)  # PyG BasicGNN / MLP apply this module once per hidden layer
    return [act] if isinstance(act, nn.Module) else []


@contextmanager
def capture(model: nn.Module, hidden: Sequence[str] | None = None) -> Iterator[list[Tensor]]:
    """Collect, in call order, the outputs of ``model``'s hidden modules during the forward passes inside the
    ``with`` block."""
    out: list[Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, o: out.append(o[0] if isinstance(o, tuple) else o))
               for m in _modules(model, hidden)]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def _inner(model: nn.Module) -> nn.Module:
    """The wrapped module of a ``DistributedDataParallel`` (it is called through the wrapper, which syncs), of a
    training-time input wrapper (``PositionDropout``) or of a :class:`BoundGraph`, through any nesting of them."""
    from torch.nn.parallel import DistributedDataParallel

    from .position import PositionDropout

    while isinstance(model, (DistributedDataParallel, PositionDropout, BoundGraph)):
        model = model.module
    return model


def forward(model: nn.Module, x: Tensor, graph: Tensor | None, *, want_hidden: bool = True,
            hidden: Sequence[str] | None = None) -> tuple[Tensor, list[Tensor]]:
    """``(logits, hidden)`` of ``model`` on ``(x, graph)``; ``hidden`` lists per-layer features (may be empty)."""
    inner = _inner(model)
    if is_zoo(inner) and hidden is None:
        return model(x, graph, return_hidden=True) if want_hidden else (model(x, graph), [])
    if not want_hidden:
        return (model(x, graph) if takes_graph(inner) else model(x)), []
    with capture(inner, hidden) as taps:
        logits = model(x, graph) if takes_graph(inner) else model(x)
    if hidden is None and getattr(inner, "num_layers", None) is not None:
        taps = taps[: max(int(inner.num_layers) - 1, 0)]  # PyG MLP/BasicGNN: act runs once per hidden layer
    check(isinstance(logits, Tensor), f"{type(model).__name__} returned {type(logits).__name__}; expected a logits "
          "tensor [num_nodes, num_classes]", ConfigError)
    return logits, list(taps)


def require_hidden(hidden: list[Tensor], term: str, model: nn.Module) -> None:
    """The one error for a term that reads hidden features of a model that exposes none."""
    check(len(hidden) > 0, f"the {term!r} term reads hidden layers, which {type(model).__name__} does not expose; "
          "pass hidden=['module.name', ...] to capture them, or drop the term", ConfigError)
