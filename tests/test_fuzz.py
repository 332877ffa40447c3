"""Property-based fuzzing (hypothesis): hostile graphs and inputs either work correctly or raise gkd's documented
error (a ``GKDError``); never a NaN, a silent wrong shape, or a stray exception from deep inside torch/PyG."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from gkd.datasets.registry import DatasetMeta
from gkd.datasets.validate import check_data
from gkd.distill.amkd import triplet
from gkd.distill.glnn import GLNN, weighted_kl
from gkd.pipeline.student import distill_mlp
from gkd.distill.knowledge import Knowledge
from gkd.distill.mhgd import relation_kl
from gkd.errors import GKDError
from gkd.graph import MultiHeadGraphBuilder, relational_graph
from gkd.nn import build_model, to_adj_t
from gkd.train import Trainer

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def hostile_graphs(draw) -> Data:
    """Self-loops, duplicate and one-way edges, isolated nodes, a hub, one class, classes absent from training,
    float64 or integer features, empty graphs and empty masks."""
    n = draw(st.integers(0, 24))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))
    num_classes = draw(st.integers(1, 4))
    e = draw(st.integers(0, 60)) if n else 0
    edge_index = torch.randint(0, max(n, 1), (2, e), generator=g)
    if n and draw(st.booleans()):                                   # self-loops and duplicates
        loops = torch.arange(n).repeat(2, 1)
        edge_index = torch.cat([edge_index, loops, edge_index[:, : e // 2]], 1)
    if n and draw(st.booleans()):                                   # a hub joined to every node, one way
        edge_index = torch.cat([edge_index, torch.stack([torch.zeros(n, dtype=torch.long), torch.arange(n)])], 1)
    dtype = draw(st.sampled_from([torch.float32, torch.float32, torch.float64, torch.int64]))
    x = (torch.randn(n, 5, generator=g) * 3).to(dtype)
    present = draw(st.integers(1, num_classes))                     # classes actually used: maybe a single one
    y = torch.randint(0, present, (n,), generator=g)
    split = torch.randint(0, 4, (n,), generator=g)                 # 3: in no split
    data = Data(x=x, edge_index=edge_index, y=y, num_nodes=n, train_mask=split == 0, val_mask=split == 1,
                test_mask=split == 2)
    data.meta = DatasetMeta(name="fuzz", num_classes=num_classes, split="random")
    return data


def is_finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


@FUZZ
@given(hostile_graphs(), st.sampled_from(["gcn", "sage", "gat", "mlp"]))
def test_models_and_trainer_on_hostile_graphs(data, name):
    try:
        check_data(data, data.meta.num_classes)
    except GKDError:
        return                                                      # refused with the documented error
    model = build_model(name, data.num_features, data.meta.num_classes, hidden_channels=8)
    for graph in (data.edge_index, to_adj_t(data.edge_index, data.num_nodes)):
        try:
            out = model(data.x, graph)
        except GKDError:
            assert data.x.dtype != torch.float32                    # the only thing a valid graph can still get wrong
            return
        assert out.shape == (data.num_nodes, data.meta.num_classes) and is_finite(out)
    try:
        fit = Trainer(model, data, epochs=3, patience=3).fit()
    except GKDError:
        assert not bool(data.val_mask.any())                        # the documented refusal: nothing to select on
        return
    assert 0.0 <= fit.val <= 1.0 and (fit.test != fit.test or 0.0 <= fit.test <= 1.0)  # NaN only for an empty test
    assert all(is_finite(torch.tensor(h["loss"])) for h in fit.history)


@FUZZ
@given(hostile_graphs(), st.floats(0.1, 10.0), st.booleans())
def test_distill_mlp_on_hostile_graphs(data, temperature, mask_all):
    if data.num_nodes == 0 or data.x.dtype != torch.float32:
        return
    c = data.meta.num_classes
    logits = torch.randn(data.num_nodes, c) * 20                    # confident teacher: softmax has exact zeros
    mask = torch.ones(data.num_nodes, dtype=torch.bool) if mask_all else data.train_mask.clone()
    try:
        _, fit = distill_mlp(data, Knowledge(logits, mask), method="gkd", hidden_channels=8, epochs=3, patience=3)
    except GKDError:
        return
    assert all(is_finite(torch.tensor(h["loss"])) for h in fit.history)


@FUZZ
@given(st.integers(1, 6), st.integers(1, 5), st.floats(0.05, 20.0), st.floats(-80, 80))
def test_losses_are_finite_on_extreme_inputs(rows, classes, temperature, scale):
    g = torch.Generator().manual_seed(rows * 31 + classes)
    logits = torch.randn(rows, classes, generator=g) * scale
    target = F.one_hot(torch.randint(0, classes, (rows,), generator=g), classes).float()  # log(0) territory
    assert is_finite(weighted_kl(target, logits, temperature))
    assert is_finite(weighted_kl(target, logits, temperature, torch.zeros(rows)))          # all weights zero
    s = logits.view(1, rows, classes)[:, :, :1].expand(2, rows, rows) * scale
    assert is_finite(relation_kl(s, -s)) and relation_kl(s, s).abs() < 1e-5
    p = F.softmax(logits, -1)
    assert is_finite(triplet(p, p.flip(0), p, margin=abs(scale)))
    with __import__("pytest").raises(GKDError, match="selects no node"):
        GLNN(logits, torch.zeros(rows, dtype=torch.bool))


@FUZZ
@given(st.integers(0, 20), st.integers(0, 25), st.booleans(), st.sampled_from([0.0, float("nan"), 1e30]))
def test_relational_graph_on_hostile_embeddings(n, k, symmetric, poison):
    g = torch.Generator().manual_seed(n * 100 + k)
    feats = [torch.randn(n, 6, generator=g), torch.randn(n, 10, generator=g)]
    if n and poison != 0.0:
        feats[0][0, 0] = poison
    builder = MultiHeadGraphBuilder([6, 10], heads=2).freeze()
    try:
        graph = relational_graph(builder, feats, k=k, symmetric=symmetric)
    except GKDError:
        return
    assert n >= 2 and 1 <= k < n and poison == poison  # NaN embeddings are always refused
    w = graph.edge_weight
    assert is_finite(w) and bool(((w > 0) & (w <= 1)).all()) and graph.edge_index.max() < n
    if not symmetric:  # k per sample, fewer only where attention underflowed to exactly 0
        degree = torch.bincount(graph.edge_index[1], minlength=n)
        assert bool((degree <= k).all()) and (poison != 0.0 or torch.equal(degree, torch.full((n,), k)))
