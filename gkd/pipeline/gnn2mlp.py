r"""GNN-to-MLP distillation, the whole pipeline: teachers → knowledge (or a book) → graph-free student → artefact.

:class:`GNNToMLP` is both the Python API and what ``gkd distill`` runs (:func:`run_distillation` fits one per seed),
so the two cannot drift::

    from gkd import GNNToMLP
    est = GNNToMLP(method="gkd").fit(data)                  # gkd's default teachers, exactly as `gkd distill`
    est = GNNToMLP(method="gkd").fit(data, teacher=my_gnn)  # any model called as model(x, edge_index), as is
    est.save("student/"); student = gkd.load("student/")    # pickle-free artefact, served without the graph

``teacher`` may also be a list of models (their mean probability teaches), a
:class:`~gkd.distill.knowledge.Knowledge`, or the path of a knowledge book (``gkd book``).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..book import Book, open_book
from ..config import make_config
from ..distill.knowledge import Knowledge
from ..distill.registry import canonical
from ..errors import ConfigError, check
from ..nn import to_adj_t
from ..nn.device import resolve_device
from ..nn.hidden import takes_graph
from ..nn.position import extend_to_new_nodes
from ..nn.student import Student
from ..train.checkpoint import RunCheckpoint
from ..metrics import get_metric
from ..train.trainer import FitResult
from . import artifact
from .seeds import data_loader, given_data, run_seeds, with_metric
from .student import METHODS, DistillOptions, distill_mlp
from .distill_config import DistillConfig
from .scoring import one_class, score_model, served_scores  # noqa: F401  (gkd.pipeline's API)
from .teachers import (TeacherStage, book_teacher, stage_from_book, stage_from_teachers, teacher_stage,
                       teachers_device)


def guard_pick(val: dict[str, float]) -> str:
    """The student guard's choice: the best on validation; a tie keeps the earlier (the distilled student, then the
    one without terms, then the plain one), so the guard switches away only for a strictly better score."""
    return max(val, key=lambda name: (val[name], -list(val).index(name)))


def guard_rivals(opts: DistillOptions) -> dict[str, DistillOptions]:
    """The students the guard trains beside the distilled one, in :func:`guard_pick`'s tie order: without gkd's terms
    (when it has terms: the terms answer to validation too), then on the labels alone. Validated once per validated
    ``opts``, however many seeds ask."""
    def build() -> dict[str, DistillOptions]:
        rivals = {"plain": DistillOptions(method="plain")}
        if opts.active_terms:
            own = METHODS[opts.distiller]  # the method's own terms keep their options
            rivals = {"no terms": dataclasses.replace(opts, method=opts.distiller, terms=(), term_args={
                k: v for k, v in opts.term_args.items() if canonical(k) in own}), **rivals}
        return {name: rival.validate() for name, rival in rivals.items()}

    return opts.derived("guard_rivals", build)


def student_candidates(cfg: DistillConfig, data: Data, stage: TeacherStage, r: int, progress: bool | None = None,
                       guard: bool | None = None) -> dict[str, tuple[nn.Module, FitResult, float]]:
    """Train the stage's student, and with the guard (``cfg.student_guard`` unless ``guard`` says) its rivals
    (:func:`guard_rivals`): ``{"distilled": (student, result, seconds), "no terms": ..., "plain": ...}``."""
    opts = cfg.options()
    sdata = copy.copy(data)
    sdata.adj_t = None
    fit = dict(hidden_channels=cfg.hidden_channels, num_layers=cfg.num_layers, dropout=cfg.dropout, lr=cfg.lr,
               weight_decay=cfg.weight_decay, epochs=cfg.epochs, patience=cfg.patience, student=cfg.student,
               seed=cfg.seed + r, teacher_edge_index=stage.edge_index, progress=progress,
               batch_size=cfg.student_batch_size)
    num_samples = cfg.term_nodes if cfg.student_batch_size is not None else None
    todo = {"distilled": opts}
    if (cfg.student_guard if guard is None else guard) and opts.distiller != "plain" and isinstance(cfg.student, str):
        todo.update(guard_rivals(opts))
    out = {}
    for name, o in todo.items():
        t0 = time.perf_counter()
        model, res = distill_mlp(sdata, stage.knowledge, o, teacher=stage.view, **fit,
                                 num_samples=None if name != "distilled" and o.distiller == "plain" else num_samples)
        out[name] = (model, res, time.perf_counter() - t0)
    return out


def student_stage(cfg: DistillConfig, data: Data, stage: TeacherStage, r: int,
                  progress: bool | None = None) -> tuple[nn.Module, dict]:
    """Distil the stage's knowledge into ``cfg.student`` and score it in ``cfg.setting``: ``(student, run record)``.
    A graph-free student comes back as a :class:`Student` holding its position features."""
    seed = cfg.seed + r
    opts = cfg.options()
    metric = get_metric(data.meta.metric)
    n, observed, masks = data.num_nodes, stage.observed, stage.masks
    candidates = student_candidates(cfg, data, stage, r, progress)
    student, sres, seconds = candidates["distilled"]
    per_epoch = seconds / max(sres.epochs_run, 1)  # the distilled student's, whichever the guard keeps
    guard = None
    if len(candidates) > 1:
        kept = guard_pick({name: res.val for name, (_, res, _) in candidates.items()})
        guard = {"kept": kept, **{f"{name.replace(' ', '_')}_val": res.val for name, (_, res, _) in candidates.items()}}
        guard_seconds = round(sum(s for name, (_, _, s) in candidates.items() if name != "distilled"), 3)
        student, sres, _ = candidates[kept]
    sgraph = to_adj_t(stage.edge_index, n).to(data.x.device) if takes_graph(student) else None
    sscores = score_model(student, data.x, sgraph, data.y, masks, metric) if masks else {}
    run = {"run": r, "seed": seed, "split": data.meta.split_index, "val": sres.val, "test": sres.test,
           "train": sres.train, "best_epoch": sres.best_epoch, "epochs_run": sres.epochs_run,
           "seconds": round(seconds, 3), "teacher_seconds": round(stage.seconds, 3),
           "seconds_per_epoch": per_epoch, **({"stats": sres.stats} if sres.stats else {}),
           **({"guard": guard, "guard_seconds": guard_seconds} if guard else {}), **sscores,
           **{f"teacher_{k}": v for k, v in stage.scores.items()}}
    if isinstance(student, Student) and student.positions is not None and masks:
        # graph-aided: new nodes' positions from their observed neighbours
        pos = student.positions[:-1]
        aided = Student(student.model, extend_to_new_nodes(pos, data.edge_index.to(pos.device), ~observed))
        run["test_ind_graph_aided"] = score_model(aided, data.x, None, data.y, {"m": masks["test_ind"]}, metric)["m"]
    elif "position" in opts.active_terms and "test_ind" in run:
        run["test_ind_graph_aided"] = run["test_ind"]  # the guard kept a student without positions: no graph to aid
    run |= served_scores(student, data, metric)
    if cfg.student_batch_size is None:
        run |= one_class(student, data, sgraph, r)
    return student, run


def _rows(value: Any, name: str) -> Tensor:
    """A tensor, or a NumPy array / nested list of numbers as a tensor (no copy for NumPy)."""
    if isinstance(value, Tensor):
        return value
    arr = np.asarray(value)
    check(arr.dtype.kind in "biuf", f"{name} has dtype {arr.dtype}; expected numbers", ConfigError)
    return torch.from_numpy(np.ascontiguousarray(arr))


def run_distillation(cfg: DistillConfig, progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
                     resume: bool = False, save: str | os.PathLike | None = None,
                     before_save: Callable[[dict], None] | None = None) -> dict:
    """``cfg.runs`` seeds, each one :meth:`GNNToMLP.fit`, summarised (test at the student's best-validation epoch).

    ``save``: write the student of the best-validation seed there as a model artefact (:func:`gkd.save`);
    ``checkpoint_dir``/``resume``: each finished seed is kept there, and a killed run resumes; ``before_save``: as
    :func:`~gkd.pipeline.train.run_training`'s."""
    cfg.validate()
    if save is not None:
        artifact.check_saveable(save)
        check(checkpoint_dir is None, "save= with checkpoint_dir= is not supported: resumed seeds keep no "
              "student weights; run without checkpoints to save a student", ConfigError)
    checkpoint = RunCheckpoint(checkpoint_dir, {"command": "distill", **cfg.to_dict()}, resume)
    opened: dict = {}

    def one_seed(r: int, data: Data) -> dict:
        if cfg.book is not None and "book" not in opened:
            opened["book"] = open_book(cfg.book, data)
        est = GNNToMLP(config=cfg).fit(data, teacher=opened.get("book"), run=r, progress=progress)
        if save is not None and ("best" not in opened or est.result_["val"] > opened["best"].result_["val"]):
            opened["best"] = est
        return est.result_

    def head(data: Data) -> dict:
        opts = cfg.options()
        teacher = {"teacher": cfg.teacher, "teacher_method": cfg.teacher_method, "teachers": cfg.teachers,
                   "teacher_generations": cfg.teacher_generations}
        config, source = cfg.to_dict(), {}
        book = opened.get("book")
        if book is not None:  # what taught the student is what the book says, not what the flags say
            teacher = book_teacher(book)
            config.update(teacher)
            source = {"book": str(cfg.book), "book_manifest": {k: book.manifest[k] for k in (
                "dataset", "setting", "teachers", "temperature", "created", "gkd")}}
        return {"dataset": data.meta.name, **teacher, **source, "student": cfg.student, "method": opts.distiller,
                "terms": list(opts.active_terms), "setting": cfg.setting, "split": data.meta.split,
                "method_config": opts.to_dict(), "config": config}

    result = run_seeds(cfg.runs, one_seed, data_loader(cfg, resolve_device(cfg.device)), head=head,
                       checkpoint=checkpoint, progress=progress, desc=f"{cfg.teacher}->{cfg.student}/{cfg.dataset}")
    best = opened.get("best")
    if best is not None:
        result["saved"] = {"path": str(save), "run": best.result_["run"], "seed": best.result_["seed"]}
        if before_save is not None:
            before_save(result)
        best.save(save, metrics={k: v for k, v in best.result_.items() if isinstance(v, (int, float))})
    return result


def make_book(cfg: DistillConfig, out: str | os.PathLike, *, float16: bool = False, overwrite: bool = False,
              progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False) -> tuple[Data, TeacherStage]:
    """``gkd book``: train ``cfg``'s teachers once (seed ``cfg.seed``) and write their knowledge book to ``out``.

    Only a gkd book may be replaced (``overwrite``), and that is checked before any teacher trains."""
    from ..book import check_overwritable, write_book
    from ..io import check_new_path

    cfg.validate()
    check_new_path(out, "--out")
    check_overwritable(out, overwrite)
    ckpt = RunCheckpoint(checkpoint_dir, {"command": "book", **cfg.to_dict()}, resume)
    data = data_loader(cfg, resolve_device(cfg.device))(0, None)  # the data of run 0, as gkd distill loads it
    stage = teacher_stage(cfg, data, 0, reliability=True, progress=progress, checkpoint=ckpt)
    k = stage.knowledge
    write_book(out, data, stage.teacher_logits, stage.observed, temperature=cfg.temperature, hidden=k.hidden,
               reliability=k.reliability, teachers=stage.teachers, teacher_scores=stage.scores,
               setting={"name": cfg.setting, "inductive_fraction": cfg.inductive_fraction, "seed": cfg.seed},
               float16=float16, overwrite=overwrite)
    return data, stage


class GNNToMLP:
    """Distil a GNN teacher into a graph-free MLP student; ``fit`` is one seed of ``gkd distill``.

    Keyword arguments are :class:`DistillConfig` fields (``method``, ``teacher``, ``teachers``, ``hidden_channels``,
    ``terms``, ``term_args``, ``setting``, ``seed``, ``device``, ...), validated here, before anything trains;
    ``config=`` passes a whole :class:`DistillConfig` instead.

    After :meth:`fit`: ``student_`` (an ``nn.Module``; graph-free students answer ``student_(x, index=None)``),
    ``result_`` (the run record ``gkd distill`` writes), ``teacher_`` (the stage's scores and records).
    """

    def __init__(self, method: str = "gkd", *, config: DistillConfig | None = None, **options: Any) -> None:
        if config is not None:
            check(not options and method == "gkd", "pass either config= or keyword options, not both", ConfigError)
            # a validated config is frozen: shared as it is; another is copied, so the caller's stays theirs
            self.config = config if config.validated else copy.deepcopy(config).validate()
        else:
            known = {f.name for f in dataclasses.fields(DistillConfig)}
            unknown = sorted(set(options) - known)
            check(not unknown, f"GNNToMLP got unknown option(s) {unknown}; expected DistillConfig fields: "
                  f"{', '.join(sorted(known))}", ConfigError)
            self.config = make_config(None, {"method": method, **options}, DistillConfig, source="GNNToMLP")
        self.student_: nn.Module | None = None
        self.result_: dict | None = None
        self.given_teachers_: list[dict] | None = None

    def fit(self, data: Data, teacher: Any = None, *, run: int = 0, hidden: Sequence[str] | None = None,
            progress: bool | None = False, checkpoint=None) -> "GNNToMLP":
        """Train the student on ``data`` (seed ``config.seed + run``).

        ``teacher``: ``None`` trains gkd's default teachers (``config.teachers`` self-distilled, born-again GNNs,
        exactly as ``gkd distill``); an ``nn.Module`` or a list of them is used as is; a ``Knowledge`` or a book
        (a path or an opened :class:`~gkd.book.Book`) is learned from directly.
        """
        cfg = self.config
        check(isinstance(data, Data) and isinstance(getattr(data, "y", None), Tensor),
              f"fit(data): expected a PyG Data with labels y and train/val/test masks, got {type(data).__name__}",
              ConfigError)
        data = with_metric(given_data(data), cfg.metric)
        self.given_teachers_ = None
        if teacher is None and cfg.book is not None:  # as gkd distill --book: one code path
            teacher = cfg.book
        device = resolve_device(cfg.device)
        given = teacher if isinstance(teacher, (list, tuple)) else [teacher]
        modules = [t for t in given if isinstance(t, nn.Module)]
        if modules:
            device = teachers_device(modules, device, cfg.device)
        if data.x.device != device:
            data = data.to(device)
        if teacher is None:
            stage = teacher_stage(cfg, data, run, progress=progress, checkpoint=checkpoint)
        elif isinstance(teacher, (str, os.PathLike, Book)):
            book = open_book(teacher, data) if not isinstance(teacher, Book) else teacher
            stage = stage_from_book(book, cfg, data)
        elif isinstance(teacher, Knowledge):
            know = teacher.to(device).check_against(data.num_nodes, data.meta.num_classes)
            stage = TeacherStage(know, know.mask.clone(), {}, {}, data.edge_index, 0.0, [know.logits], [{}])
        else:
            stage = stage_from_teachers(list(given), cfg, data, run, hidden=hidden)
            self.given_teachers_ = stage.teachers
        self.student_, self.result_ = student_stage(cfg, data, stage, run, progress=progress)
        self.teacher_ = {"scores": stage.scores, "teachers": stage.teachers}
        self.data_ = data
        return self

    def _fitted(self) -> nn.Module:
        check(self.student_ is not None, "this GNNToMLP is not fitted yet; call fit(data) first", ConfigError)
        return self.student_

    @torch.no_grad()
    def predict_proba(self, x: Any, index: Any = None) -> Tensor:
        """Class probabilities for feature rows ``x`` (a tensor or a NumPy array, as scikit-learn estimators take;
        ``index``: their ids in the training graph, ``-1``/``None`` for new nodes). GNN students need the graph:
        use ``student_`` directly."""
        student = self._fitted().eval()
        check(isinstance(student, Student), "predict(x) answers with a graph-free student; this one is a GNN "
              "(call student_(x, edge_index))", ConfigError)
        x, index = _rows(x, "x"), (None if index is None else _rows(index, "index"))
        device = next(student.parameters()).device
        return student(x.float().to(device), None if index is None else index.long().to(device)).softmax(-1)

    def predict(self, x: Any, index: Any = None) -> Tensor:
        """Class predictions for feature rows ``x`` (see :meth:`predict_proba`)."""
        return self.predict_proba(x, index).argmax(-1)

    def save(self, path: str | os.PathLike, metrics: dict | None = None) -> Path:
        """Write the student as a model artefact (:func:`gkd.save`): weights, position features, manifest."""
        student = self._fitted()
        cfg = self.config
        position = ({"method": "fastrp", "dim": student.positions.size(1), "seed": cfg.seed + self.result_["run"],
                     "new_nodes": "zeros"} if isinstance(student, Student) and student.positions is not None
                    else None)
        if metrics is None:
            metrics = {k: v for k, v in self.result_.items() if isinstance(v, (int, float))}
        config = {**cfg.to_dict(), "dataset": self.data_.meta.name}
        given = getattr(self, "given_teachers_", None)
        if given:  # what taught it, not the config's defaults for gkd's own teachers
            config.update(teacher=given[0]["model"], teacher_method="given", teachers=len(given),
                          teacher_generations=None, teacher_args={})
        return artifact.save(copy.deepcopy(student).cpu(), path, data=copy.copy(self.data_).cpu(), metrics=metrics,
                             config=config, position=position)
