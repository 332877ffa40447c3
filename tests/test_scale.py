"""Pure-torch neighbour sampler and mini-batch training."""
from __future__ import annotations

import pytest
import torch

from gkd.datasets import csbm
from gkd.datasets.registry import DatasetMeta
from gkd.errors import ConfigError
from gkd.nn import build_model, to_adj_t
from gkd.scale import CSRNeighborSampler, neighbor_loader
from gkd.scale.sampler import sample_neighbours
from gkd.train import Trainer


@pytest.fixture(scope="module")
def graph():
    d = csbm(num_nodes=2000, avg_degree=10, seed=0, train_per_class=100, num_val=300, num_test=500)
    d.meta = DatasetMeta(name="x", num_classes=5, split="s")
    return d


def test_sample_neighbours_without_replacement_and_capped():
    crow, col = torch.tensor([0, 5, 6, 6]), torch.tensor([1, 2, 3, 4, 5, 0, ])
    nbr, seg = sample_neighbours(crow, col, torch.tensor([0, 1, 2]), 3, torch.Generator().manual_seed(0))
    first = nbr[seg == 0]
    assert first.numel() == 3 and first.unique().numel() == 3 and set(first.tolist()) <= {1, 2, 3, 4, 5}
    assert nbr[seg == 1].tolist() == [0] and (seg == 2).sum() == 0
    # every neighbour is equally likely: 5 choose 3 over many draws
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(6)
    for _ in range(400):
        counts += torch.bincount(sample_neighbours(crow, col, torch.tensor([0]), 3, g)[0], minlength=6)
    assert counts[0] == 0 and (counts[1:] - 240).abs().max() < 60


def test_batches_are_subgraphs_with_seeds_first(graph):
    s = CSRNeighborSampler(graph, [4, 3], batch_size=32, seed=0)
    assert len(s) == (2000 + 31) // 32
    b = next(iter(s))
    assert b.batch_size == 32 and b.n_id.unique().numel() == b.n_id.numel()
    edges = set(map(tuple, graph.edge_index.t().tolist()))
    assert all(tuple(e) in edges for e in b.n_id[b.edge_index].t().tolist())
    seed_in = torch.bincount(b.edge_index[1][b.edge_index[1] < 32], minlength=32)
    assert int(seed_in.max()) <= 4
    assert torch.equal(b.x, graph.x[b.n_id]) and torch.equal(b.y, graph.y[b.n_id])


def test_full_fanout_batch_gives_exact_seed_outputs(graph):
    """With every neighbour kept (-1), a 2-layer GNN on the 2-hop batch equals the full-graph output on the seeds."""
    torch.manual_seed(0)
    sage = build_model("sage", graph.num_features, 5, hidden_channels=16).eval()
    b = CSRNeighborSampler(graph, [-1, -1], batch_size=50, shuffle=False).sample(torch.arange(50))
    full = sage(graph.x, to_adj_t(graph.edge_index, 2000))[:50]
    assert torch.allclose(sage(b.x, b.edge_index)[:50], full, atol=1e-5)


def test_minibatch_training_learns(graph):
    torch.manual_seed(0)
    m = build_model("sage", graph.num_features, 5)
    loader = neighbor_loader(graph, [10, 10], batch_size=128, input_nodes=graph.train_mask, seed=0)
    r = Trainer(m, graph, epochs=10, patience=10, loader=loader).fit()
    assert r.test > 0.8


def test_bad_sampler_input(graph):
    with pytest.raises(ConfigError, match=r"num_neighbors=\[0\]; expected positive integers"):
        CSRNeighborSampler(graph, [0])
    with pytest.raises(ConfigError, match="batch_size=0"):
        CSRNeighborSampler(graph, [5], batch_size=0)
    with pytest.raises(ConfigError, match="input_nodes selects no node"):
        CSRNeighborSampler(graph, [5], input_nodes=torch.zeros(2000, dtype=torch.bool))
    from gkd.distill import LabelSmoothing

    with pytest.raises(ConfigError, match="mini-batch training"):
        Trainer(build_model("sage", 128, 5), graph, loader=[], terms=[LabelSmoothing()])
