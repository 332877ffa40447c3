"""Splits and masks of a user's graph: ``--split`` specs (:func:`parse_split`), seeded stratified splits
(:func:`random_split`, :func:`per_class_split`) and the split arrays a graph brings (masks ``[N]``, ``[S, N]`` or
``[N, S]``, or node-id arrays), read as boolean masks.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DatasetError, check
from .validate import MASKS

MASK_LAYOUTS = ("splits-first", "nodes-first")  # [S, N] or [N, S], for the square case S == N
DEFAULT_SPLIT = "random:0.6/0.2/0.2"  # a stratified 60/20/20 (as the heterophily benchmarks' random splits): any size
UNLABELLED = -1  # OGB's and PyG's mark for a node without a label


def parse_split(spec: str) -> tuple[str, tuple[float, ...]]:
    """``random:TRAIN/VAL/TEST`` or ``per-class:TRAIN/VAL[/TEST]`` → ``(kind, numbers)``.

    Fractions (``random:0.6/0.2/0.2``, sum <= 1) split every class in those shares; counts (``random:20/500/1000``)
    take TRAIN nodes per class for training, then VAL and TEST nodes from the rest, as Planetoid's split does.
    ``per-class:20/30`` is the protocol of Shchur et al. (2018) that CPF, GLNN, NOSMOG and VQGraph use: 20 training
    and 30 validation nodes drawn per class, every other labelled node for test (or TEST per class).
    """
    text = str(spec).strip()
    m = re.fullmatch(r"per-class:(\d+)/(\d+)(?:/(\d+))?", text)
    if m:
        parts = tuple(float(p) for p in m.groups() if p is not None)
        check(parts[0] >= 1, f"split={spec!r}: expected at least 1 training node per class", DatasetError)
        return "per-class", parts
    m = re.fullmatch(r"random:([^/]+)/([^/]+)/([^/]+)", text)
    try:
        parts = tuple(float(p) for p in m.groups()) if m else None
    except ValueError:
        parts = None
    check(parts is not None and all(np.isfinite(p) and p >= 0 for p in parts),
          f"split={spec!r}; expected random:TRAIN/VAL/TEST with fractions (random:0.6/0.2/0.2) or counts "
          "(random:20/500/1000: per class / validation / test), or per-class:TRAIN/VAL[/TEST] (per-class:20/30: "
          "per class, the rest test)", DatasetError)
    if all(p < 1 for p in parts) and any(p > 0 for p in parts):
        check(sum(parts) <= 1 + 1e-9 and parts[0] > 0,
              f"split={spec!r}: fractions must be > 0 for training and sum to at most 1", DatasetError)
        return "fractions", parts
    check(all(float(p).is_integer() for p in parts) and parts[0] >= 1,
          f"split={spec!r}: counts must be whole numbers, at least 1 per class for training", DatasetError)
    return "counts", parts


def per_class_split(y: np.ndarray, num_classes: int, train: int, val: int, test: int | None,
                    seed: int) -> dict[str, Tensor]:
    """Shchur et al.'s ``get_train_val_test_split`` as GLNN's ``dataloader.py`` calls it: with
    ``numpy.random.RandomState(seed)``, ``train`` nodes per class (each class's nodes in node order, drawn with
    ``choice(..., replace=False)``), then ``val`` per class from the rest; test: ``test`` per class, or every other
    labelled node. The same seed gives GLNN's split for that seed, draw for draw."""
    rs = np.random.RandomState(int(seed) % 2**32)
    n = y.shape[0]
    taken = np.zeros(n, dtype=bool)
    masks = {m: torch.zeros(n, dtype=torch.bool) for m in MASKS}

    def draw(k: int, mask: str) -> None:
        for c in range(num_classes):
            members = np.flatnonzero((y == c) & ~taken)
            check(members.size >= k, f"split per-class:{train}/{val}{f'/{test}' if test else ''}: class {c} has "
                  f"{members.size} nodes left; the split takes {k} per class", DatasetError)
            picked = rs.choice(members, k, replace=False)
            masks[mask][torch.from_numpy(picked)] = True
        taken[masks[mask].numpy()] = True

    draw(train, "train_mask")
    draw(val, "val_mask")
    if test is None:
        masks["test_mask"] = torch.from_numpy(~taken & (y >= 0))
    else:
        draw(test, "test_mask")
    return masks


def random_split(y: Tensor, num_classes: int, spec: str = DEFAULT_SPLIT, seed: int = 0) -> dict[str, Tensor]:
    """Seeded train/val/test masks (the same ``seed`` gives the same split) following :func:`parse_split`.
    Unlabelled nodes (label -1) are in no mask."""
    kind, parts = parse_split(spec)
    if kind == "per-class":
        return per_class_split(y.numpy(), num_classes, *map(int, parts[:2]),
                               int(parts[2]) if len(parts) > 2 else None, seed)
    a, b, c = parts
    n = y.numel()
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    perm = perm[y[perm] >= 0]
    masks = {m: torch.zeros(n, dtype=torch.bool) for m in MASKS}
    if kind == "counts":
        need = int(a) * num_classes + int(b) + int(c)
        check(need <= perm.numel(), f"split random:{int(a)}/{int(b)}/{int(c)} needs {need} nodes ({int(a)} per "
              f"class + {int(b)} + {int(c)}); the graph has {perm.numel()} labelled nodes", DatasetError)
        for cls in range(num_classes):
            members = perm[y[perm] == cls]
            check(members.numel() >= int(a), f"class {cls} has {members.numel()} nodes; the split takes {int(a)} per "
                  "class for training", DatasetError)
            masks["train_mask"][members[:int(a)]] = True
        rest = perm[~masks["train_mask"][perm]]
        masks["val_mask"][rest[:int(b)]] = True
        masks["test_mask"][rest[int(b):int(b) + int(c)]] = True
        return masks
    for cls in range(num_classes):  # stratified fractions
        members = perm[y[perm] == cls]
        k = members.numel()
        bounds = [round(a * k), round((a + b) * k), round((a + b + c) * k)]
        masks["train_mask"][members[:bounds[0]]] = True
        masks["val_mask"][members[bounds[0]:bounds[1]]] = True
        masks["test_mask"][members[bounds[1]:bounds[2]]] = True
    return masks



def _tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise DatasetError(f"{name} cannot be read as an array ({type(e).__name__})") from None
    check(arr.dtype.kind in "biuf", f"{name} has dtype {arr.dtype}; expected numbers", DatasetError)
    return torch.from_numpy(np.ascontiguousarray(arr))



def _as_mask(name: str, value: Any, n: int, layout: str | None) -> Tensor:
    """A mask array as ``[N]`` or ``[S, N]`` booleans; ``[N, S]`` is transposed. A square ``[N, N]`` array could be
    either, so it is refused unless ``layout`` says which."""
    m = _tensor(value, name)
    if m.dim() == 2:
        if layout is None:
            check(not (m.size(0) == n and m.size(1) == n), f"{name} has shape {tuple(m.shape)}: as many splits as "
                  f"nodes, so [splits, nodes] and [nodes, splits] cannot be told apart; pass mask_layout="
                  "'splits-first' or 'nodes-first' (--dataset-arg mask_layout=...)", DatasetError)
            if m.size(0) == n and m.size(1) != n:
                m = m.t()
        elif layout == "nodes-first":
            m = m.t()
    check(m.dim() in (1, 2) and m.size(-1) == n, f"{name} has shape {tuple(m.shape)}; expected [{n}], "
          f"[num_splits, {n}] or [{n}, num_splits]", DatasetError)
    check(m.dtype == torch.bool or bool(((m == 0) | (m == 1)).all()), f"{name} holds values other than 0/1; "
          "expected a boolean mask", DatasetError)
    return m.bool()


def _index_mask(name: str, value: Any, n: int) -> Tensor:
    """Node ids (OGB's ``train_idx``) as an ``[N]`` mask."""
    idx = _tensor(value, name)
    if idx.dim() == 2 and idx.size(1) == 1:  # OGB keeps some id lists as a column
        idx = idx.view(-1)
    check(idx.dim() == 1 and not idx.is_floating_point() and idx.dtype != torch.bool,
          f"{name} is a {idx.dtype} array of shape {tuple(idx.shape)}; expected 1-D integer node ids", DatasetError)
    if idx.numel():
        lo, hi = int(idx.min()), int(idx.max())
        check(lo >= 0 and hi < n, f"{name} holds node ids in [{lo}, {hi}]; the graph has nodes 0 .. {n - 1}",
              DatasetError)
    return torch.zeros(n, dtype=torch.bool).index_fill_(0, idx.long(), True)


def _masks(full: dict[str, Tensor], split: int) -> tuple[dict[str, Tensor], int, int]:
    """Masks as :func:`_as_mask` / :func:`_index_mask` give them (``[N]`` or ``[S, N]``) → split ``split mod S``."""
    counts = {m.size(0) if m.dim() == 2 else 1 for m in full.values()}
    counts.discard(1)  # a 1-D mask beside [S, N] ones is shared by every split (WikiCS' one test_mask)
    check(len(counts) <= 1, f"the masks hold different numbers of splits {sorted(counts)}; expected the same for "
          "train, val and test (or one mask shared by all)", DatasetError)
    s = counts.pop() if counts else 1
    return {k: (m[split % s] if m.dim() == 2 else m).clone() for k, m in full.items()}, split % s, s

