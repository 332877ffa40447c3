"""CNN distillation on image datasets (``gkd cnn``): methods by name, one teacher stage shared by every student of a
seed, and the MHA relational graph of a dataset (``gkd graph``).

A method is a list of registered ``image`` terms (``gkd terms``), added in this order:

| method | terms | paper |
|---|---|---|
| ``student`` | cross-entropy only | — |
| ``kd`` | ``kd`` | Hinton et al., 2015 |
| ``mhgd`` | ``mhgd`` | Lee & Song, BMVC 2019 |
| ``mhgd+kd`` | ``mhgd``, ``kd`` | |
| ``bss`` | ``kd``, ``bss`` | Heo et al., AAAI 2019 |
| ``amkd`` | ``kd``, ``amkd`` | AMKD (:mod:`gkd.vision.amkd`) |

The protocol (``gkd.vision.digits``): teacher on every training label; students on the labelled fraction, with
distillation terms reading the teacher on every training image; checkpoint at the best validation accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from ..config import RunConfig, bounded, check_limits, check_types
from ..distill.losses import check_temperature
from ..distill.registry import ImageContext, build_options, get_term
from ..errors import ConfigError, check, check_int
from ..io import check_output_file
from ..limits import MAX_EPOCHS, MAX_HEADS, MAX_NODES
from ..train.trainer import LossTerm, seed_everything
from .builder import MultiHeadGraphBuilder
from .cnn import CNN, FeatureTaps
from .compress import compress
from .digits import ImageSplit, digits_split
from .relational import edge_homophily, is_graph_file, read_taps, relational_graph, save_graph
from .trainer import ImageTrainer

CNN_METHODS: dict[str, tuple[str, ...]] = {"student": (), "kd": ("kd",), "mhgd": ("mhgd",),
                                           "mhgd+kd": ("mhgd", "kd"), "bss": ("kd", "bss"), "amkd": ("kd", "amkd")}


@dataclass
class CNNDistillConfig(RunConfig):
    """One CNN distillation experiment; every field has a flag in ``gkd cnn``."""

    SECTIONS: ClassVar[dict[str, dict[str, str]]] = {
        "data": {"dataset": "dataset", "labelled_fraction": "labelled_fraction", "batch_size": "batch_size"},
        "teacher": {"channels": "teacher_channels"},
        "student": {"channels": "student_channels", "method": "method", "temperature": "temperature",
                    "term_args": "term_args", "lr": "lr", "weight_decay": "weight_decay", "epochs": "epochs",
                    "patience": "patience"},
        # MHGD's multi-head graph builder: its heads are not a GAT's
        "builder": {"heads": "heads", "epochs": "builder_epochs", "value": "builder_value"},
        "run": {"runs": "runs", "seed": "seed"},
    }

    epochs: int = bounded(150, 1, MAX_EPOCHS)
    patience: int = 50
    dataset: str = "digits"
    method: str = "kd"
    teacher_channels: list = field(default_factory=lambda: [32, 64, 128])
    student_channels: list = field(default_factory=lambda: [4, 8, 8])
    labelled_fraction: float = 0.2
    batch_size: int = bounded(64, 1, MAX_NODES)
    temperature: float = 4.0
    term_args: dict = field(default_factory=dict)  # {term: {option: value}}, e.g. {"mhgd": {"weight": 0.5}}
    heads: int = bounded(8, 1, MAX_HEADS)
    builder_epochs: int = bounded(100, 1, MAX_EPOCHS)
    builder_value: str = "learned"  # MHGD's builder; `gkd graph` uses "others" (see gkd.vision.builder)

    def check(self) -> None:
        check_types(self)
        check(self.method in CNN_METHODS, f"method={self.method!r}; expected one of {', '.join(CNN_METHODS)}",
              ConfigError)
        check(self.dataset == "digits", f"dataset={self.dataset!r}; CNN distillation supports 'digits'", ConfigError)
        self.check_run()
        check_temperature(self.temperature)
        self.term_options()
        check(isinstance(self.heads, int) and self.heads >= 1,
              f"attention heads={self.heads!r}; expected an integer >= 1",
              ConfigError)
        from .builder import VALUES

        check(self.builder_value in VALUES, f"builder_value={self.builder_value!r}; expected one of "
              f"{', '.join(VALUES)}", ConfigError)
        check(isinstance(self.builder_epochs, int) and self.builder_epochs >= 1,
              f"builder_epochs={self.builder_epochs!r}; expected an integer >= 1", ConfigError)
        check(isinstance(self.batch_size, int) and self.batch_size >= 2,
              f"batch_size={self.batch_size!r}; expected an integer >= 2", ConfigError)
        check(0.0 < self.labelled_fraction <= 1.0,
              f"labelled_fraction={self.labelled_fraction!r}; expected in (0, 1]", ConfigError)
        for name in ("teacher_channels", "student_channels"):
            widths = getattr(self, name)
            check(isinstance(widths, (list, tuple)) and len(widths) >= 1 and all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in widths),
                f"{name}={widths!r}; expected a list of positive integer widths", ConfigError)
            setattr(self, name, [int(c) for c in widths])
        check(len(self.teacher_channels) == len(self.student_channels), f"teacher has {len(self.teacher_channels)} "
              f"blocks, student {len(self.student_channels)}; MHGD taps block by block, so expected the same count",
              ConfigError)
        check_limits(self)

    def term_options(self) -> dict:
        return build_options("image", CNN_METHODS[self.method], self.term_args)

    def split(self, run: int) -> ImageSplit:
        return digits_split(self.seed + run, self.labelled_fraction)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CNNTeacher:
    model: CNN
    logits: Tensor                 # over every image
    feats: list[Tensor]            # compressed taps over every image
    test: float
    val: float
    seconds: float
    builder: MultiHeadGraphBuilder | None = None


def _trainer(model: CNN, split: ImageSplit, cfg: CNNDistillConfig, seed: int, **kw) -> ImageTrainer:
    return ImageTrainer(model, split, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                        patience=cfg.patience, batch_size=cfg.batch_size, seed=seed, **kw)


@torch.no_grad()
def teacher_outputs(model: CNN, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Logits and compressed block taps of ``model`` (eval mode) over ``x``."""
    model.eval()
    with FeatureTaps(model, model.blocks) as taps:
        logits, feats = taps(x)
    return logits, [compress(f) for f in feats]


def cnn_teacher_stage(split: ImageSplit, cfg: CNNDistillConfig, seed: int, *, builder: bool = True,
                      progress: bool = False) -> CNNTeacher:
    """Train the teacher on every training label, read its logits and taps, and (``builder``) fit the frozen MHGD
    builder on its training-image taps."""
    seed_everything(seed)
    full = ImageSplit(split.x, split.y, split.train, split.val, split.test, torch.ones_like(split.labelled),
                      split.num_classes, split.protocol)
    model = CNN(split.x.size(1), cfg.teacher_channels, split.num_classes)
    fit = _trainer(model, full, cfg, seed, progress=progress, desc="teacher").fit()
    logits, feats = teacher_outputs(model, split.x)
    teacher = CNNTeacher(model, logits, feats, fit.test, fit.val, fit.seconds)
    if builder:
        seed_everything(seed)
        teacher.builder = MultiHeadGraphBuilder([f.size(1) for f in feats], heads=cfg.heads, value=cfg.builder_value)
        teacher.builder.fit([f[split.train] for f in feats], epochs=cfg.builder_epochs, seed=seed, progress=progress)
    return teacher


def student_terms(method: str, teacher: CNNTeacher, cfg: CNNDistillConfig, split: ImageSplit,
                  seed: int = 0) -> list[LossTerm]:
    """The registered ``image`` terms of ``method``, in the method's order."""
    ctx = ImageContext(teacher, split, list(cfg.student_channels), cfg.temperature, cfg.epochs, seed)
    options = build_options("image", CNN_METHODS[method], cfg.term_args)
    return [get_term("image", name).make(ctx, options[name]) for name in CNN_METHODS[method]]


def cnn_student_run(split: ImageSplit, teacher: CNNTeacher | None, cfg: CNNDistillConfig, method: str, seed: int,
                    *, progress: bool = False) -> dict:
    """Train one student with ``method``'s terms; returns the run's JSON record."""
    check(method in CNN_METHODS, f"method={method!r}; expected one of {', '.join(CNN_METHODS)}", ConfigError)
    check(teacher is not None or not CNN_METHODS[method], f"method {method!r} needs a teacher", ConfigError)
    seed_everything(seed)
    student = CNN(split.x.size(1), cfg.student_channels, split.num_classes)
    terms = student_terms(method, teacher, cfg, split, seed) if teacher is not None else []
    taps = student.blocks if any(t.name == "mhgd" for t in terms) else ()
    trainer = _trainer(student, split, cfg, seed, terms=terms, taps=taps, progress=progress, desc=method)
    fit = trainer.fit()
    return {"method": method, "seed": seed, "test": fit.test, "val": fit.val, "best_epoch": fit.best_epoch,
            "epochs_run": fit.epochs_run, "seconds": fit.seconds, "seconds_per_epoch": fit.seconds / fit.epochs_run,
            "stats": fit.stats}


def run_cnn_distillation(cfg: CNNDistillConfig, *, progress: bool = False) -> dict:
    """``cfg.runs`` seeds of teacher + ``cfg.method`` student (run r: seed + r and that seed's split); the JSON
    written by ``gkd cnn`` (:func:`~gkd.pipeline.seeds.run_seeds`' schema)."""
    from ..pipeline.seeds import run_seeds  # here: gkd.pipeline imports this module

    cfg.validate()

    def one_seed(r: int, split: ImageSplit) -> dict:
        seed = cfg.seed + r
        teacher = cnn_teacher_stage(split, cfg, seed, builder="mhgd" in CNN_METHODS[cfg.method], progress=progress) \
            if CNN_METHODS[cfg.method] else None
        rec = {"run": r, **cnn_student_run(split, teacher, cfg, cfg.method, seed, progress=progress)}
        if teacher is not None:
            rec["teacher_test"], rec["teacher_val"] = teacher.test, teacher.val
        return rec

    return run_seeds(cfg.runs, one_seed, lambda r, previous: cfg.split(r),
                     head={"dataset": cfg.dataset, "method": cfg.method, "config": cfg.to_dict(),
                           "protocol": cfg.split(0).protocol | {"split_seed": "seed + run"}},
                     progress=False if not progress else None, desc=f"cnn {cfg.method}")


def build_graph(cfg: CNNDistillConfig, out: str | Path, *, k: int = 10, directed: bool = False,
                embeddings: str | Path | None = None, progress: bool = False) -> dict:
    """``gkd graph``: fit the MHA graph builder on a teacher CNN's block taps (``embeddings``: an ``.npz`` of
    taps ``tap0, tap1, ...`` and optional ``y`` instead of a trained teacher), keep each sample's ``k`` strongest
    attention neighbours, and write the relational graph to ``out`` as a gkd graph file; returns its summary."""
    check_int("k", k, 1, ConfigError)  # its upper bound (the sample count) is checked once samples exist
    check_output_file(out, "--out", is_graph_file, "gkd graph file")  # before the builder trains
    if embeddings is not None:
        feats, y = read_taps(embeddings)
        builder = MultiHeadGraphBuilder([f.size(1) for f in feats], heads=cfg.heads, value=cfg.builder_value)
        builder.fit(feats, epochs=cfg.builder_epochs, seed=cfg.seed, progress=progress)
        source = {"embeddings": str(embeddings)}
        x = feats[-1]
    else:
        split = cfg.split(0)
        teacher = cnn_teacher_stage(split, cfg, cfg.seed, progress=progress)
        builder, feats, y = teacher.builder, teacher.feats, split.y
        source = {"dataset": cfg.dataset, "teacher_channels": cfg.teacher_channels, "seed": cfg.seed,
                  "teacher_test": teacher.test}
        with torch.no_grad(), FeatureTaps(teacher.model.eval(), ["embed"]) as taps:
            x = taps(split.x)[1][0]
    data = relational_graph(builder, feats, k=k, symmetric=not directed, x=x, y=y)
    save_graph(out, data, {"k": k, "heads": cfg.heads, "symmetric": not directed, "builder_value": cfg.builder_value,
                           **source})
    return {"nodes": data.num_nodes, "edges": data.edge_index.size(1),
            "homophily": edge_homophily(data) if y is not None else None}
