"""Repeat a training run over seeds and report it as a JSON-ready results dict."""
from __future__ import annotations

import copy
import platform
import sys
import time

import numpy as np
import torch
from torch_geometric.data import Data
from tqdm.auto import tqdm

from .. import __version__
from ..config import TrainConfig
from ..datasets import DatasetMeta, load
from ..nn import build_model, to_adj_t
from .checkpoint import RunCheckpoint
from .logger import fmt, summarize
from .trainer import FitResult, LossTerm, Trainer, check_test_nodes, get_metric, seed_everything

GENERATION_SEED_STRIDE = 100_003  # born-again generations; apart from ensembles' seed + 1000 j


def environment() -> dict:
    import torch_geometric

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"gkd": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "numpy": np.__version__, "platform": platform.platform(),
            "cpu": cpu, "torch_threads": torch.get_num_threads()}


def load_for_run(cfg: TrainConfig, run: int, cached: Data | None) -> Data:
    """Datasets with several fixed splits use split ``run mod num_splits``; the rest load once."""
    if cached is not None and cached.meta.num_splits == 1 and cfg.split is None:
        return cached
    data = load(cfg.dataset, cfg.root, split=run, random_split=cfg.split, **cfg.dataset_args)
    check_test_nodes(data)  # before anything trains: a run without test nodes reports no result
    return data


def train_run(cfg: TrainConfig, data: Data, seed: int, *, terms_factory=None, progress: bool | None = None,
              desc: str = "train") -> tuple[torch.nn.Module, FitResult]:
    """Seed, build ``cfg.model`` for ``data`` and fit it; returns the model at its best-validation epoch.

    With ``cfg.generations > 1`` each later generation (seed ``seed + GENERATION_SEED_STRIDE * g``) also learns the
    previous one's predictions (:class:`~gkd.distill.born_again.BornAgain`); the last generation is returned, and
    ``stats["generation_val"]`` lists every generation's validation score.
    ``data`` gains a CSR ``adj_t`` if it has none (every zoo model then runs SpMM)."""
    if getattr(data, "adj_t", None) is None:
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
            from ..distill.born_again import BornAgain  # distill builds on train, not the reverse

            terms.append(BornAgain(previous))
        trainer = Trainer(model, data, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                          patience=cfg.patience, terms=terms, metric=get_metric(data.meta.metric),
                          progress=progress, desc=desc if cfg.generations == 1 else f"{desc} gen {g}")
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


def run_experiment(cfg: TrainConfig, *, terms_factory=None, method: str = "plain", method_config: dict | None = None,
                   data: Data | None = None, progress: bool | None = None,
                   checkpoint: RunCheckpoint | None = None, on_model=None) -> dict:
    """Train ``cfg.runs`` models (seeds ``cfg.seed + r``) on ``cfg.device`` and summarise them.

    ``terms_factory(data, model) -> Iterable[LossTerm]`` supplies a method's loss terms for each run;
    ``on_model(model, run_record, data)`` is called after each trained run (e.g. to keep the best for saving).
    """
    from ..nn.device import resolve_device

    cfg.validate()
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    runs: list[dict] = []
    fixed = data is not None
    if not fixed:  # before the progress bar: a bad dataset is one error line, not a bar and then the error
        data = load_for_run(cfg, 0, None)
    bar = tqdm(range(cfg.runs), desc=f"{cfg.model}/{cfg.dataset}", disable=progress is False, dynamic_ncols=True,
               file=sys.stderr)
    if fixed:  # a user's graph (the Trainer validates it), shallow-copied so adding adj_t leaves theirs untouched
        data = copy.copy(data)
        if getattr(data, "meta", None) is None:
            data.meta = DatasetMeta(name="custom", num_classes=int(data.y.max()) + 1, split="user-provided masks")
    for r in bar:
        if not fixed and r > 0:
            data = load_for_run(cfg, r, data)
        if data.x.device != device:
            data = data.to(device)
        saved = checkpoint.done(r) if checkpoint else None
        if saved is not None:
            runs.append(saved)
            continue
        seed = cfg.seed + r
        model, res = train_run(cfg, data, seed, terms_factory=terms_factory, progress=progress, desc=f"run {r}")
        runs.append({"run": r, "seed": seed, "split": data.meta.split_index, "val": res.val, "test": res.test,
                     "train": res.train, "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
                     "seconds": round(res.seconds, 3), **({"stats": res.stats} if res.stats else {})})
        if checkpoint:
            checkpoint.save(r, runs[-1])
        if on_model is not None:
            on_model(model, runs[-1], data)
        s = summarize(runs)
        bar.set_postfix(test=fmt(s["test_mean"], s["test_std"]))
    return {"dataset": data.meta.name, "model": cfg.model.lower(), "method": method, "setting": "transductive",
            **summarize(runs), "runs": runs, "seconds": round(time.perf_counter() - start, 3),
            "split": data.meta.split, "method_config": method_config or {}, "config": cfg.to_dict(),
            "versions": environment()}
