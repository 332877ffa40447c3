"""``gkd train`` as a function: seeds of one backbone and method, optionally saving the best-validation model."""
from __future__ import annotations

import copy
import os

from ..config import TrainConfig
from ..errors import ConfigError, check
from . import artifact


def run_training(cfg: TrainConfig, *, save: str | os.PathLike | None = None, progress: bool | None = None,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = False) -> dict:
    """``cfg.runs`` seeds of ``cfg.model`` trained with ``cfg.method`` (:func:`gkd.train.run_experiment`).

    ``save``: write the model of the best-validation seed there as a model artefact (:func:`gkd.save`);
    ``checkpoint_dir``/``resume``: each finished seed is kept there, and a killed run resumes
    (:class:`~gkd.train.checkpoint.RunCheckpoint`)."""
    from ..distill import build_method
    from ..train import run_experiment
    from ..train.checkpoint import RunCheckpoint

    cfg.validate()
    factory, method_config = build_method(cfg)
    best: dict = {}
    if save is not None:
        artifact.check_saveable(save)
        check(checkpoint_dir is None, "--save with --checkpoint-dir is not supported: resumed seeds keep no "
              "weights; run without checkpoints to save a model", ConfigError)
    checkpoint = RunCheckpoint(checkpoint_dir, {"command": "train", **cfg.to_dict()}, resume)

    def keep(model, run: dict, data) -> None:
        if not best or run["val"] > best["run"]["val"]:
            best.update(model=copy.deepcopy(model).cpu(), run=run, data=data)

    result = run_experiment(cfg, terms_factory=factory, method=cfg.method, method_config=method_config,
                            progress=progress, checkpoint=checkpoint, on_model=keep if save is not None else None)
    if save is not None:
        metrics = {k: v for k, v in best["run"].items() if isinstance(v, (int, float))}
        artifact.save(best["model"], save, data=best["data"].cpu(), metrics=metrics, config=cfg.to_dict())
        result["saved"] = {"path": str(save), "run": best["run"]["run"], "seed": best["run"]["seed"]}
    return result
