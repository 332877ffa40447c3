"""Shared fixtures: real Cora from the shared data root, sockets blocked, small generated graphs."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# absolute, so that a test that changes the working directory still finds it (CI passes ../shared/data)
os.environ["GKD_DATA"] = str(Path(os.environ.get("GKD_DATA", REPO / ".." / "shared" / "data")).resolve())
DATA_ROOT = Path(os.environ["GKD_DATA"])
HAS_CORA = (DATA_ROOT / "Cora" / "raw" / "ind.cora.x").is_file()
needs_cora = pytest.mark.skipif(not HAS_CORA, reason=f"Planetoid Cora raw files not found under {DATA_ROOT}")


def pytest_configure(config):
    if os.environ.get("CI") and not HAS_CORA:  # in CI a missing data root is a setup error, not a reason to skip
        pytest.exit(f"CI: Planetoid Cora raw files not found under {DATA_ROOT} (set GKD_DATA)", returncode=1)


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """gkd must never touch the network: any outbound connection fails the test."""
    def refuse(self, address, *args, **kwargs):
        if isinstance(address, str) or (isinstance(address, tuple) and address[0] in ("127.0.0.1", "localhost", "::1")):
            return real_connect(self, address, *args, **kwargs)  # unix sockets / loopback (torch.distributed)
        raise NetworkBlocked(f"test tried to open a network connection to {address!r}")

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def cora():
    if not HAS_CORA:
        pytest.skip(f"Planetoid Cora raw files not found under {DATA_ROOT}")
    from gkd.datasets import load

    return load("Cora")


@pytest.fixture
def small_graph():
    """A 300-node, 3-class CSBM graph that a GCN separates easily."""
    from gkd.datasets import csbm
    from gkd.datasets.registry import DatasetMeta

    data = csbm(num_nodes=300, num_classes=3, avg_degree=6, homophily=0.9, num_features=16, feature_noise=1.0,
                seed=0, train_per_class=10, num_val=60, num_test=120)
    data.meta = DatasetMeta(name="tiny", num_classes=3, split="test")
    return data


def assert_one_line_error(text: str) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{text}"
    assert lines[0].startswith("gkd: error:"), lines[0]
    assert "Traceback" not in text


def load_benchmark(name: str):
    """``benchmarks/NAME.py`` as a module (the scripts import their ``common`` helper as a top-level module)."""
    import importlib.util
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_bench", bench / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    return mod


torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def write_csv_gz(path, array) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(array).to_csv(path, header=False, index=False, compression="gzip")


def write_ogb_arxiv_folder(root: Path) -> Path:
    """A 60-node graph in the exact layout of the ogbn-arxiv download (CSV raw files + time split) under ``root``."""
    import numpy as np

    rng = np.random.default_rng(0)
    n, e = 60, 200
    raw = root / "ogbn_arxiv" / "raw"
    write_csv_gz(raw / "edge.csv.gz", rng.integers(0, n, size=(e, 2)))
    write_csv_gz(raw / "num-node-list.csv.gz", np.array([[n]]))
    write_csv_gz(raw / "num-edge-list.csv.gz", np.array([[e]]))
    write_csv_gz(raw / "node-feat.csv.gz", rng.normal(size=(n, 8)).round(4))
    write_csv_gz(raw / "node-label.csv.gz", (np.arange(n) % 40).reshape(-1, 1))
    write_csv_gz(raw / "node_year.csv.gz", np.full((n, 1), 2019))
    perm = rng.permutation(n)
    split = root / "ogbn_arxiv" / "split" / "time"
    for name, idx in (("train", perm[:30]), ("valid", perm[30:45]), ("test", perm[45:])):
        write_csv_gz(split / f"{name}.csv.gz", idx.reshape(-1, 1))
    (root / "ogbn_arxiv" / "RELEASE_v1.txt").write_text("generated")
    return root
