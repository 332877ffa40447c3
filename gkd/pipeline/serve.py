"""Answering nodes with a saved model (``gkd predict`` and its Python twin :func:`predict`)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.fingerprint import graph_hash
from ..errors import ConfigError, check
from ..io import atomic_write_bytes
from ..nn import to_adj_t
from ..nn.serving import Student
from .artifact import ArtifactError


def read_nodes(path: str | os.PathLike) -> Tensor:
    """Node ids from a ``.npy`` (1-D integers, no pickle) or a text file (one integer per line or comma-separated)."""
    p = Path(path)
    check(p.is_file(), f"--nodes {str(p)!r} does not exist", ConfigError)
    try:
        if p.suffix == ".npy":
            ids = np.load(p, allow_pickle=False)
        else:
            ids = np.array([int(t) for t in p.read_text().replace(",", " ").split()], dtype=np.int64)
    except (ValueError, OSError, UnicodeDecodeError, OverflowError, EOFError) as e:  # an id beyond int64; no bytes
        raise ConfigError(f"--nodes {str(p)!r} is not a list of integer node ids ({type(e).__name__})") from None
    if not isinstance(ids, np.ndarray):  # an .npz archive under a .npy name
        ids.close()
        raise ConfigError(f"--nodes {str(p)!r} is an .npz archive; expected one .npy array of node ids")
    check(ids.ndim == 1 and ids.dtype.kind in "iu", f"--nodes {str(p)!r} holds a {ids.dtype} array of shape "
          f"{ids.shape}; expected 1-D integer node ids", ConfigError)
    check(ids.size > 0, f"--nodes {str(p)!r} holds no node ids; expected at least one", ConfigError)
    big = int(ids.max())  # uint64 ids above int64's range would wrap to negative ids below
    check(big <= np.iinfo(np.int64).max, f"--nodes {str(p)!r} holds node id {big}; expected ids of the graph's "
          "nodes (0 .. N-1)", ConfigError)
    return torch.from_numpy(ids.astype(np.int64))


def check_split(model: nn.Module, data: Data) -> None:
    """A mask of ``data`` may be answered only when it is the split the model was trained with: another split's test
    mask may hold the model's own training nodes."""
    from ..datasets.fingerprint import split_hash

    ds = (getattr(model, "manifest", {}) or {}).get("dataset") or {}
    if ds.get("split_sha256") is not None and ds["split_sha256"] != split_hash(data):
        raise ArtifactError(f"the model was trained with another split than this {data.meta.name} (split hash "
                            f"{ds['split_sha256'][:12]}…, data {split_hash(data)[:12]}…): its masks may hold the "
                            "model's training nodes; answer explicit --nodes instead")


@torch.no_grad()
def predict(model: nn.Module, data: Data, nodes: Tensor | None = None, *, new_nodes: bool = False) -> Tensor:
    """Logits of ``nodes`` (default: every node) of ``data``. A graph-free :class:`Student` reads only those feature
    rows, plus its stored position features when ``data`` is the graph it was trained on (same fingerprint); on any
    other graph pass ``new_nodes=True`` to answer the nodes as unseen (zero positions, as in training). A GNN runs on
    the whole graph."""
    manifest = getattr(model, "manifest", {}) or {}
    n = data.num_nodes
    check(nodes is None or (isinstance(nodes, Tensor) and nodes.dim() == 1 and not nodes.is_floating_point()
                            and nodes.dtype != torch.bool),
          f"nodes must be a 1-D integer tensor of node ids; got {getattr(nodes, 'dtype', type(nodes).__name__)}",
          ConfigError)
    nodes = torch.arange(n) if nodes is None else nodes.long()
    if nodes.numel():
        lo, hi = int(nodes.min()), int(nodes.max())
        check(lo >= 0 and hi < n, f"node ids lie in [{lo}, {hi}]; the graph has nodes 0 .. {n - 1}", ConfigError)
    want = manifest.get("input", {}).get("num_features")
    check(want is None or data.num_features == want, f"the model reads {want} features per node; the data has "
          f"{data.num_features}", ArtifactError)
    model.eval()
    if isinstance(model, Student):
        if model.positions is None or new_nodes:
            return model(data.x[nodes], torch.full_like(nodes, -1))
        known = (manifest.get("dataset") or {}).get("graph_sha256")
        check(known is None or known == graph_hash(data), f"the model's position features belong to the graph it "
              f"was trained on (graph hash {str(known)[:12]}…), not this one ({graph_hash(data)[:12]}…); "
              "pass new_nodes=True (--new-nodes) to answer these nodes as unseen", ArtifactError)
        return model(data.x[nodes], nodes)
    return model(data.x, to_adj_t(data.edge_index, n))[nodes]


HEADER = "node,prediction,confidence"


def is_predictions_file(path: Path) -> bool:
    """Whether ``path`` holds predictions gkd wrote (so ``--out`` may replace it): our CSV header, or a 1-D integer
    ``.npy``."""
    try:
        if path.suffix == ".csv":
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\n") == HEADER
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return arr.ndim == 1 and arr.dtype == np.int64
    except (OSError, ValueError, UnicodeDecodeError, EOFError):  # EOFError: an empty .npy
        return False


def check_predictions_out(path: str | os.PathLike) -> Path:
    """``--out`` is a .npy or .csv name gkd can write, and replaces only an earlier predictions file."""
    from ..io import check_output_file

    check(Path(path).suffix in (".npy", ".csv"), f"--out {str(path)!r}; expected a .npy or .csv file name",
          ConfigError)
    return check_output_file(path, "--out", is_predictions_file, "gkd predictions file")


def write_predictions(path: str | os.PathLike, nodes: Tensor, logits: Tensor) -> Path:
    """``.npy``: the predicted class per node; ``.csv``: ``node,prediction,confidence`` rows. Atomic."""
    path = Path(path)
    pred = logits.argmax(-1)
    if path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, pred.cpu().numpy().astype(np.int64), allow_pickle=False)
        return atomic_write_bytes(path, buf.getvalue())
    check(path.suffix == ".csv", f"--out {str(path)!r}; expected a .npy or .csv file name", ConfigError)
    conf = logits.softmax(-1).max(-1).values
    lines = [HEADER] + [f"{i},{c},{p:.6f}" for i, c, p in
                                              zip(nodes.tolist(), pred.tolist(), conf.tolist())]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def predict_to_file(model_path: str | os.PathLike, out: str | os.PathLike, *, dataset: str | None = None,
                    root: str | os.PathLike | None = None, dataset_args: dict | None = None,
                    mask: str | None = None, nodes: str | os.PathLike | None = None, new_nodes: bool = False,
                    device: str = "auto") -> tuple[Data, Tensor]:
    """``gkd predict``: answer the ``mask`` nodes (default ``test``; ``all``) or the node ids in the file ``nodes``
    of ``dataset`` with the artefact at ``model_path`` and write them to ``out`` (``.npy`` or ``.csv``). Without
    ``dataset``, the one the model was trained on (its manifest's, with its loader arguments). Returns the graph and
    the node ids answered."""
    from ..datasets import load
    from ..datasets.registry import check_dataset_args
    from ..nn.device import resolve_device
    from .artifact import load as load_model
    from .artifact import read_manifest

    check_predictions_out(out)
    if nodes is not None and os.path.lexists(out) and os.path.exists(nodes):
        check(not os.path.samefile(out, nodes), f"--out {str(out)!r} is the --nodes file; it is left as it is: "
              "choose another name", ConfigError)
    if dataset is None:
        config = read_manifest(model_path).get("config") or {}
        dataset = config.get("dataset")
        check(isinstance(dataset, str) and dataset, f"the manifest of {str(model_path)!r} names no dataset; pass "
              "the graph to answer (--dataset)", ConfigError)
        if dataset_args is None and isinstance(config.get("dataset_args"), dict):
            dataset_args = config["dataset_args"]
    check(mask is None or nodes is None, "--nodes and --mask both given; expected one of them", ConfigError)
    check_dataset_args(dataset, dict(dataset_args or {}))  # a manifest's too: it may have been edited
    dev = resolve_device(device)
    model = load_model(model_path, device=dev)
    data = load(dataset, root, **dict(dataset_args or {})).to(dev)
    if nodes is not None:
        ids = read_nodes(nodes)
    else:
        mask = mask or "test"
        if mask != "all":
            check_split(model, data)
        ids = torch.arange(data.num_nodes) if mask == "all" else data[f"{mask}_mask"].nonzero().view(-1)
    write_predictions(out, ids, predict(model, data, ids, new_nodes=new_nodes))
    return data, ids
