"""``gkd train`` as a function: one backbone and method over seeds (:func:`run_training`), one seed
(:func:`train_run`), and a method's terms (:func:`build_method`).

A method is ``plain``, ``self-distill`` (the ``self`` terms named by ``sd_terms``) or the name of any one registered
``self`` term (``label-smoothing``, ``tf-kd-reg``, ``depth``, ...); ``term_args`` sets their options."""
from __future__ import annotations

import copy
import os
import time
from typing import Callable, Iterable

import torch
from torch import nn
from torch_geometric.data import Data

from ..config import TrainConfig
from ..datasets.base import notice
from ..distill.born_again import BornAgain
from ..distill.registry import SelfContext, get_term
from ..errors import ConfigError, check
from ..nn import build_model, to_adj_t
from ..nn.device import resolve_device
from ..scale.distributed import rank_and_world
from ..train.checkpoint import RunCheckpoint
from ..metrics import get_metric
from ..train.trainer import FitResult, LossTerm, Trainer, caps_of, seed_everything
from . import artifact
from .seeds import data_loader, one_class_record, run_seeds

GENERATION_SEED_STRIDE = 100_003  # born-again generations; apart from ensembles' seed + 1000 j

TermsFactory = Callable[[Data, nn.Module], Iterable[LossTerm]]


def build_method(cfg: TrainConfig) -> tuple[TermsFactory | None, dict]:
    """``(terms_factory, method_config)`` for ``cfg.method``; every term option is checked here, before data loads."""
    names, options = cfg.terms(), cfg.term_options()
    if not names:
        return None, {}

    def factory(data: Data, model: nn.Module) -> list[LossTerm]:
        ctx = SelfContext(data.meta.num_classes, [model.hidden_channels] * (model.num_layers - 1), cfg.epochs,
                          cfg.patience)
        built = (get_term("self", n).make(ctx, options[n]) for n in names)
        return [t for t in built if t is not None]

    return factory, {"terms": list(names), "term_args": {n: vars(o) for n, o in options.items()}}


def train_run(cfg: TrainConfig, data: Data, seed: int, *, terms_factory: TermsFactory | None = None,
              progress: bool | None = None, desc: str = "train") -> tuple[nn.Module, FitResult]:
    """Seed, build ``cfg.model`` for ``data`` and fit it; returns the model at its best-validation epoch.

    With ``cfg.generations > 1`` each later generation (seed ``seed + GENERATION_SEED_STRIDE * g``) also learns the
    previous one's predictions (:class:`~gkd.distill.born_again.BornAgain`); the last generation is returned, and
    ``stats["generation_val"]`` lists every generation's validation score.
    ``data`` gains a CSR ``adj_t`` if it has none (every zoo model then runs SpMM)."""
    if getattr(data, "adj_t", None) is None:
        if getattr(data, "edge_weight", None) is not None:
            notice(f"{data.meta.name}: edge_weight is not read: gkd's zoo models train on the graph's structure alone")
        data.adj_t = to_adj_t(data.edge_index, data.num_nodes).to(data.x.device)
    previous: torch.Tensor | None = None
    vals: list[float] = []
    start = time.perf_counter()
    for g in range(cfg.generations):
        seed_everything(seed + GENERATION_SEED_STRIDE * g)
        model = build_model(cfg.model, data.num_features, data.meta.num_classes, **cfg.model_kwargs())
        model = model.to(data.x.device)
        terms: list[LossTerm] = list(terms_factory(data, model)) if terms_factory else []
        if previous is not None:
            terms.append(BornAgain(previous))
        trained = model
        if rank_and_world()[1] > 1:  # torchrun: DDP over mini-batches, each rank on its share of the seed nodes
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(model)
        trainer = Trainer(trained, data, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                          patience=cfg.patience, terms=terms, metric=get_metric(data.meta.metric),
                          progress=progress, desc=desc if cfg.generations == 1 else f"{desc} gen {g}",
                          **minibatches(cfg, data, any(caps_of(t).all_nodes for t in terms),
                                        seed + GENERATION_SEED_STRIDE * g))
        res = trainer.fit()
        vals.append(res.val)
        if g + 1 < cfg.generations:
            model.eval()
            with torch.no_grad():
                previous = model(data.x, data.adj_t)
    if cfg.generations > 1:
        res.stats["generation_val"] = vals
        res.seconds = time.perf_counter() - start  # all generations
    return model, res


def minibatches(cfg: TrainConfig, data: Data, all_nodes: bool, seed: int) -> dict:
    """The :class:`Trainer`'s mini-batch arguments (none: full-batch training): batches of ``cfg.batch_size`` seed
    nodes, the training nodes; with ``all_nodes`` (a term teaches unlabelled nodes), every node once such a term is
    on (an epoch then covers the whole graph, or ``cfg.term_nodes`` nodes drawn afresh each epoch)."""
    if cfg.batch_size is None:
        return {}
    from ..scale import neighbor_loader

    rank, world = rank_and_world()
    fanout = cfg.fanout_list()
    loader = neighbor_loader(data, fanout, cfg.batch_size, input_nodes=data.train_mask, seed=seed, rank=rank,
                             world_size=world)
    everyone = neighbor_loader(data, fanout, cfg.batch_size, seed=seed + 1, rank=rank, world_size=world,
                               num_samples=cfg.term_nodes) if all_nodes else None
    return {"loader": loader, "term_loader": everyone, "refresh": cfg.refresh}


def run_training(cfg: TrainConfig, *, data: Data | None = None, terms_factory: TermsFactory | None = None,
                 save: str | os.PathLike | None = None, progress: bool | None = None,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                 before_save: Callable[[dict], None] | None = None) -> dict:
    """``cfg.runs`` seeds (``cfg.seed + r``) of ``cfg.model`` trained with ``cfg.method``, summarised.

    ``data``: your own graph instead of ``cfg.dataset``; ``terms_factory(data, model)``: loss terms of your own
    instead of the method's; ``save``: write the model of the best-validation seed there as a model artefact
    (:func:`gkd.save`); ``checkpoint_dir``/``resume``: each finished seed is kept there, and a killed run resumes;
    ``before_save(result)``: called with the finished result just before the artefact is written (the CLI writes its
    JSON there: the small file first, so a disk too full for the model still keeps the results)."""
    cfg.validate()
    factory, method_config = build_method(cfg)
    if terms_factory is not None:
        factory, method_config = terms_factory, {"terms": "custom (terms_factory)"}
    best: dict = {}
    if save is not None:
        artifact.check_saveable(save)
        check(checkpoint_dir is None, "save= with checkpoint_dir= is not supported: resumed seeds keep no "
              "weights; run without checkpoints to save a model", ConfigError)
    checkpoint = RunCheckpoint(checkpoint_dir, {"command": "train", **cfg.to_dict()}, resume)

    def one_seed(r: int, d: Data) -> dict:
        seed = cfg.seed + r
        model, res = train_run(cfg, d, seed, terms_factory=factory, progress=progress, desc=f"run {r}")
        record = {"run": r, "seed": seed, "split": d.meta.split_index, "val": res.val, "test": res.test,
                  "train": res.train, "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
                  "seconds": round(res.seconds, 3), **({"stats": res.stats} if res.stats else {})}
        if cfg.batch_size is None:  # a full-graph forward, which mini-batch runs on big graphs are spared
            model.eval()
            with torch.no_grad():
                record |= one_class_record(model(d.x, d.adj_t).argmax(-1), d, r)
        if save is not None and (not best or record["val"] > best["run"]["val"]):
            best.update(model=copy.deepcopy(model).cpu(), run=record, data=d)
        return record

    result = run_seeds(cfg.runs, one_seed, data_loader(cfg, resolve_device(cfg.device), data),
                       head=lambda d: {"dataset": d.meta.name, "model": cfg.model.lower(),
                                       "method": cfg.method if terms_factory is None else "custom",
                                       "setting": "transductive", "split": d.meta.split,
                                       "method_config": method_config, "config": cfg.to_dict()},
                       checkpoint=checkpoint, progress=progress, desc=f"{cfg.model}/{cfg.dataset}")
    if save is not None:
        metrics = {k: v for k, v in best["run"].items() if isinstance(v, (int, float))}
        result["saved"] = {"path": str(save), "run": best["run"]["run"], "seed": best["run"]["seed"]}
        if before_save is not None:
            before_save(result)
        artifact.save(best["model"], save, data=best["data"].cpu(), metrics=metrics, config=cfg.to_dict())
    return result
