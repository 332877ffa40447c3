"""Distillation methods, picked by name. A method is a factory of :class:`~gkd.train.LossTerm` modules for the one
trainer; adding a paper means adding a file and a line here, not a training loop.

| name | paper | module |
|---|---|---|
| ``plain`` | supervised cross-entropy only | — |
| ``self-distill`` | BYOT, GNN-SD, PS-KD, USKD + gkd's label-aware neighbourhood term | ``self_distill`` |
| ``label-smoothing`` | Szegedy et al., CVPR 2016 | ``baselines`` |
| ``tf-kd-reg`` | Yuan et al., CVPR 2020 | ``baselines`` |
"""
from __future__ import annotations

from typing import Callable

from torch import nn
from torch_geometric.data import Data

from ..errors import ConfigError
from ..train.trainer import LossTerm
from .baselines import LabelSmoothing, TfKDReg
from .self_distill import TERMS, DepthTerm, NeighbourTerm, NormalizedTerm, SelfDistill, TimeTerm, parse_terms

TermsFactory = Callable[[Data, nn.Module], list[LossTerm]]


def _self_distill(cfg) -> tuple[TermsFactory, dict]:
    terms = parse_terms(cfg.sd_terms)
    options = {"neighbour": {"warmup": cfg.sd_warmup, "restart": cfg.sd_restart},
               "depth": {"temperature": cfg.sd_temperature}}
    options = {k: v for k, v in options.items() if k in terms}

    def build(num_classes: int, hidden_channels: int, num_layers: int) -> SelfDistill:
        return SelfDistill(num_classes, [hidden_channels] * (num_layers - 1), terms, weights=cfg.sd_weights,
                           total_epochs=cfg.epochs, **options)

    # built once now so that bad settings fail before any data is loaded
    checked = build(2, cfg.hidden_channels, cfg.num_layers)

    def factory(data: Data, model: nn.Module) -> list[LossTerm]:
        return list(build(data.meta.num_classes, model.hidden_channels, model.num_layers).terms)

    return factory, {**checked.config(), "warmup": cfg.sd_warmup, "restart": cfg.sd_restart,
                     "depth_temperature": cfg.sd_temperature}


def _label_smoothing(cfg):
    LabelSmoothing(cfg.ls_epsilon)  # validate now, not inside the first run
    return (lambda data, model: [LabelSmoothing(cfg.ls_epsilon)]), {"epsilon": cfg.ls_epsilon}


def _tf_kd_reg(cfg):
    TfKDReg(cfg.tfkd_weight, cfg.tfkd_temperature)
    return ((lambda data, model: [TfKDReg(cfg.tfkd_weight, cfg.tfkd_temperature)]),
            {"weight": cfg.tfkd_weight, "temperature": cfg.tfkd_temperature, "a": 0.99})


METHODS: dict[str, Callable] = {
    "plain": lambda cfg: (None, {}),
    "self-distill": _self_distill,
    "label-smoothing": _label_smoothing,
    "tf-kd-reg": _tf_kd_reg,
}


def build_method(cfg) -> tuple[TermsFactory | None, dict]:
    """``(terms_factory, method_config)`` for ``cfg.method``."""
    make = METHODS.get(cfg.method)
    if make is None:
        raise ConfigError(f"unknown method {cfg.method!r}; expected one of {', '.join(METHODS)}")
    return make(cfg)


__all__ = ["METHODS", "build_method", "SelfDistill", "NeighbourTerm", "DepthTerm", "TimeTerm", "NormalizedTerm",
           "LabelSmoothing", "TfKDReg", "TERMS", "parse_terms"]
