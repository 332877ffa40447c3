"""OGB node-property-prediction graphs (Hu et al., NeurIPS 2020) read with ogb's own raw-file readers.

ogb 1.3.6's dataset classes cache with a bare ``torch.load`` (fails on torch >= 2.6 and would unpickle) and prompt
with ``input()`` before downloading. gkd therefore calls ogb's raw readers and split layout directly, caches the
processed arrays as a pickle-free ``.npz``, and never downloads. Metrics come from ``ogb.nodeproppred.Evaluator``.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from ..errors import DatasetError
from ..io import atomic_write_bytes
from .base import DatasetMeta, ensure_writable, register, require_files

_CACHE = "gkd_graph.npz"


def _master():
    import pandas as pd
    import ogb.nodeproppred as onp

    return pd.read_csv(Path(onp.__file__).parent / "master.csv", index_col=0, keep_default_na=False)


def _raw_names(info) -> list[str]:
    if info["binary"] == "True":
        return ["data.npz", "node-label.npz"]
    return ["edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-feat.csv.gz", "node-label.csv.gz"]


def _files(key: str, root: Path) -> list[Path]:
    info = _master()[key]
    folder = root / key.replace("-", "_")
    return [folder / "raw" / f for f in _raw_names(info)] + \
        [folder / "split" / info["split"] / f"{k}.csv.gz" for k in ("train", "valid", "test")]


def _read_raw(folder: Path, info) -> dict[str, np.ndarray]:
    import pandas as pd
    from ogb.io.read_graph_raw import read_binary_graph_raw, read_csv_graph_raw

    raw = folder / "raw"
    binary = info["binary"] == "True"
    split_dir = folder / "split" / info["split"]
    how = (f"place the extracted OGB folder (from the ogb download for {info.name}) at {str(folder)!r}")
    require_files(raw, _raw_names(info), how)
    require_files(split_dir, ["train.csv.gz", "valid.csv.gz", "test.csv.gz"], how)
    add_inverse = info["add_inverse_edge"] == "True"
    # ogb prints to stdout (which carries gkd's results) and draws tqdm bars on stderr: both kept out, so that a bad
    # file's one error line is all the user sees
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if binary:
            graph = read_binary_graph_raw(str(raw), add_inverse_edge=add_inverse)[0]
            labels = np.load(raw / "node-label.npz", allow_pickle=False)["node_label"]
        else:
            graph = read_csv_graph_raw(str(raw), add_inverse_edge=add_inverse)[0]
            labels = pd.read_csv(raw / "node-label.csv.gz", compression="gzip", header=None).values
    split = {k: pd.read_csv(split_dir / f"{k}.csv.gz", compression="gzip", header=None).values.T[0]
             for k in ("train", "valid", "test")}
    return {"edge_index": graph["edge_index"].astype(np.int64), "x": graph["node_feat"].astype(np.float32),
            "y": labels.reshape(-1).astype(np.int64), "num_nodes": np.int64(graph["num_nodes"]),
            **{f"{k}_idx": v.astype(np.int64) for k, v in split.items()}}


def _fingerprint(folder: Path) -> str:
    """Sizes and mtimes of the raw/split files: the cache is rebuilt when any of them changes."""
    h = hashlib.sha256()
    for p in sorted(list((folder / "raw").glob("*")) + list((folder / "split").rglob("*"))):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@register("ogbn-arxiv", "ogbn-products", "ogbn-proteins", "ogbn-mag", files=_files)
def load_ogb(key: str, root: Path, *, split: int = 0) -> Data:
    name = key
    info = _master()[name]
    if info["is hetero"] == "True" or int(info["num tasks"]) != 1:
        raise DatasetError(f"{name} is not a single-label homogeneous node-classification graph; gkd loads "
                           "ogbn-arxiv and ogbn-products")
    folder = root / name.replace("-", "_")
    cache = folder / "processed" / _CACHE
    fp = _fingerprint(folder)
    arrays = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["fingerprint"]) == fp:
                    arrays = {k: z[k] for k in z.files if k != "fingerprint"}
        except (OSError, ValueError, KeyError):
            arrays = None  # a damaged cache is rebuilt from the raw files
    if arrays is None:
        try:
            arrays = _read_raw(folder, info)
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f"could not read {name} from {str(folder)!r}: {type(e).__name__}: {e}") from None
        ensure_writable(cache.parent)
        buf = io.BytesIO()
        np.savez(buf, fingerprint=np.array(fp), **arrays)
        atomic_write_bytes(cache, buf.getvalue())
    n = int(arrays["num_nodes"])
    edge_index = torch.from_numpy(arrays["edge_index"])
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise DatasetError(f"{name}: edge ids in [{int(edge_index.min())}, {int(edge_index.max())}] "
                           f"but the graph has {n} nodes")
    data = Data(x=torch.from_numpy(arrays["x"]), edge_index=to_undirected(edge_index, num_nodes=n),
                y=torch.from_numpy(arrays["y"]), num_nodes=n)
    for mask, k in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        idx = torch.from_numpy(arrays[f"{k}_idx"])
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise DatasetError(f"{name}: {k} split holds node ids outside [0, {n - 1}]")
        data[mask] = torch.zeros(n, dtype=torch.bool).index_fill_(0, idx, True)
    data.meta = DatasetMeta(name=name, num_classes=int(info["num classes"]), split=f"OGB {info['split']} split",
                            metric="ogb:" + name, source="OGB via ogb's raw readers; ogb.nodeproppred.Evaluator",
                            edges="undirected: symmetrised (to_undirected), as OGB's examples read them")
    return data
