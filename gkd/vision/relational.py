"""The dataset-level relational graph: the frozen builder's attention over a whole dataset as a PyG ``Data``.

Nodes are samples, features their embeddings, and each sample keeps edges from its ``k`` strongest attention
neighbours (attention averaged over heads, self excluded); ``edge_weight`` is that attention renormalised over the
``k`` kept neighbours, so a sample's incoming weights sum to 1 before symmetrisation (in (0, 1], comparable with the
weight-1 self-loops GCN adds). A neighbour whose attention underflows to 0 (saturated scores) is dropped, so a sample
may keep fewer than ``k``. Rows are computed in
batches whose ``heads x batch x n`` scores stay under a fixed element budget, so memory is O(n·k) for the output
plus O(n) per batch, never O(n²).
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from ..errors import ConfigError, DatasetError, GKDError, check
from ..io import atomic_write_bytes
from .builder import MultiHeadGraphBuilder, check_batch

SCORE_BUDGET = 2 ** 24  # attention scores held at once (64 MB of float32)
GRAPH_FORMAT = 1


@torch.no_grad()
def relational_graph(builder: MultiHeadGraphBuilder, feats: list[Tensor], *, k: int = 10, pair: int = -1,
                     symmetric: bool = True, x: Tensor | None = None, y: Tensor | None = None) -> Data:
    """Build the graph from compressed taps ``feats`` (each ``[n, D]``) through ``builder.pairs[pair]``.

    Args:
        k: attention neighbours kept per sample (``1 <= k < n``).
        symmetric: add every edge in both directions (weight = the larger of the two); else edges point from the
            ``k`` neighbours to the sample that attends to them.
        x: node features (default: the back tap's features); ``y``: labels to attach.
    """
    builder._check(feats)
    check(-len(builder.pairs) <= pair < len(builder.pairs), f"pair={pair}; the builder has {len(builder.pairs)} "
          "tap pairs", ConfigError)
    pair = pair % len(builder.pairs)
    head, front, back = builder.pairs[pair], feats[pair], feats[pair + 1]
    check_batch(front, back)
    n = front.size(0)
    check(isinstance(k, int) and 1 <= k < n, f"k={k!r}; expected an integer in [1, {n - 1}] for {n} samples",
          ConfigError)
    head.eval()
    q, keys = head.queries_keys(front, back)                      # [H, n, D2] each
    keys_t = (keys / math.sqrt(head.dim)).transpose(1, 2).contiguous()
    step = max(1, SCORE_BUDGET // (head.heads * n))
    # Buffers are allocated once: a fresh [H, b, n] block per batch fragments the heap (peak RSS grew 6 GB at 80k).
    scores, attention = q.new_empty(head.heads, step, n), q.new_empty(step, n)
    vals, cols = q.new_empty(n, k), torch.empty(n, k, dtype=torch.long)
    for start in range(0, n, step):
        b = min(step, n - start)
        s, a = scores[:, :b], attention[:b]
        torch.matmul(q[:, start:start + b], keys_t, out=s)
        s.sub_(s.amax(-1, keepdim=True)).exp_()                   # softmax over the n samples, in place
        s.div_(s.sum(-1, keepdim=True))
        torch.mean(s, 0, out=a)
        a[torch.arange(b), torch.arange(start, start + b)] = -1.0   # no self edge
        torch.topk(a, k, dim=-1, out=(vals[start:start + b], cols[start:start + b]))
    vals.div_(vals.sum(-1, keepdim=True))
    dst = torch.arange(n).repeat_interleave(k)
    edge_index = torch.stack([cols.view(-1), dst])
    weight = vals.view(-1)
    keep = weight > 0  # attention that underflowed to 0 (saturated scores) is no relation
    edge_index, weight = edge_index[:, keep], weight[keep]
    if symmetric:
        edge_index, weight = to_undirected(edge_index, weight, num_nodes=n, reduce="max")
    data = Data(x=(back if x is None else x).detach().clone(), edge_index=edge_index, edge_weight=weight,
                num_nodes=n)
    if y is not None:
        check(y.numel() == n, f"y has {y.numel()} entries for {n} samples", DatasetError)
        data.y = y.clone()
    return data


def with_split(data: Data, train: Tensor, val: Tensor, test: Tensor, num_classes: int, name: str) -> Data:
    """Attach masks, :class:`~gkd.datasets.registry.DatasetMeta` and a weighted CSR ``adj_t`` so the zoo models,
    the trainer and the GNN-to-MLP distillers take the graph as they take Cora."""
    from ..datasets.registry import DatasetMeta
    from ..nn import to_adj_t

    for part, idx in (("train", train), ("val", val), ("test", test)):
        mask = torch.zeros(data.num_nodes, dtype=torch.bool)
        mask[idx] = True
        data[f"{part}_mask"] = mask
    data.meta = DatasetMeta(name=name, num_classes=num_classes, split="samples' own train/val/test split",
                            source="gkd.graph.relational_graph")
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes, data.edge_weight)
    return data


def read_taps(path: str | Path) -> tuple[list[Tensor], Tensor | None]:
    """Embeddings for the graph builder from an ``.npz`` of taps ``tap0, tap1, ...`` (``[n, D]`` numbers each, two at
    least) and optional labels ``y`` (``[n]`` integers >= 0); each tap row-normalised. Never unpickles."""
    from ..io import read_npz

    try:
        arrays = read_npz(path, "--embeddings")
    except GKDError as e:
        raise ConfigError(str(e)) from None
    names = sorted((k for k in arrays if k.startswith("tap")), key=lambda k: int(k[3:]) if k[3:].isdigit() else -1)
    check(len(names) >= 2 and names == [f"tap{i}" for i in range(len(names))],
          f"--embeddings {str(path)!r} holds {sorted(arrays)}; expected tap0, tap1, ... (at least two [n, D] arrays) "
          "and optionally y", ConfigError)
    for k in names:
        a = arrays[k]
        check(a.ndim == 2 and a.shape[1] >= 1 and a.dtype.kind in "iuf",
              f"--embeddings {str(path)!r}: {k} has shape {a.shape} and dtype {a.dtype}; expected [n, D] numbers "
              "with D >= 1", ConfigError)
    feats = [F.normalize(torch.as_tensor(arrays[k], dtype=torch.float32), dim=-1) for k in names]
    y = None
    if "y" in arrays:
        raw = arrays["y"]
        n = feats[0].size(0)
        check(raw.ndim == 1 and raw.shape[0] == n, f"--embeddings {str(path)!r}: y has shape {raw.shape}; expected "
              f"[{n}] (one label per sample)", ConfigError)
        ok = raw.dtype.kind in "iu" or (raw.dtype.kind == "f" and bool(np.isfinite(raw).all())
                                        and bool((raw == np.round(raw)).all()))
        check(ok and (raw.size == 0 or raw.min() >= 0), f"--embeddings {str(path)!r}: y holds "
              f"{'negative' if ok else 'non-integer or NaN'} labels; expected classes 0 .. C-1", ConfigError)
        y = torch.as_tensor(raw.astype(np.int64))
    return feats, y


def save_graph(path: str | Path, data: Data, manifest: dict) -> None:
    """Write ``x, edge_index, edge_weight, y`` and a JSON manifest into one ``.npz`` (atomic; no pickle)."""
    arrays = {"x": data.x.numpy(), "edge_index": data.edge_index.numpy(), "edge_weight": data.edge_weight.numpy()}
    if getattr(data, "y", None) is not None:
        arrays["y"] = data.y.numpy()
    manifest = {"format": GRAPH_FORMAT, "num_nodes": int(data.num_nodes), "num_edges": int(data.edge_index.size(1)),
                **manifest}
    arrays["manifest"] = np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def is_graph_file(path: Path) -> bool:
    """Whether ``path`` holds a graph :func:`save_graph` wrote (``gkd graph --out`` may replace it)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "manifest" not in f.files:
                return False
            return json.loads(f["manifest"].tobytes()).get("format") == GRAPH_FORMAT
    except Exception:  # not a zip, object arrays, bad JSON: not ours
        return False


def load_graph(path: str | Path) -> tuple[Data, dict]:
    """Read a graph written by :func:`save_graph`; refuses other files with a clear error (never unpickles)."""
    path = Path(path)
    check(path.is_file(), f"graph file {str(path)!r} does not exist", DatasetError)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # zip CRC errors, truncation, object arrays
        raise DatasetError(f"{str(path)!r} is not a readable gkd graph ({type(e).__name__}: {e})") from None
    check("manifest" in arrays, f"{str(path)!r} has no manifest; expected a file written by gkd graph", DatasetError)
    manifest = json.loads(arrays.pop("manifest").tobytes())
    check(manifest.get("format") == GRAPH_FORMAT, f"{str(path)!r} has graph format {manifest.get('format')!r}; "
          f"expected {GRAPH_FORMAT}", DatasetError)
    data = Data(x=torch.from_numpy(arrays["x"]), edge_index=torch.from_numpy(arrays["edge_index"]),
                edge_weight=torch.from_numpy(arrays["edge_weight"]), num_nodes=manifest["num_nodes"])
    if "y" in arrays:
        data.y = torch.from_numpy(arrays["y"])
    check(data.x.size(0) == data.num_nodes and data.edge_index.size(1) == manifest["num_edges"],
          f"{str(path)!r}: arrays do not match the manifest's node/edge counts", DatasetError)
    return data, manifest


def edge_homophily(data: Data) -> float:
    """Share of edges whose two ends have the same label (weighted by ``edge_weight`` when present)."""
    src, dst = data.edge_index
    same = (data.y[src] == data.y[dst]).float()
    w = getattr(data, "edge_weight", None)
    return float(same.mean() if w is None else (same * w).sum() / w.sum())
