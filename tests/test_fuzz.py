"""Property-based fuzzing (hypothesis), from two strategies each: inputs valid by construction (hostile but legal:
self-loops, hubs, one class, extreme logits) must run, with finite results of the right shape; inputs invalid by
construction (a valid one with exactly one thing broken) must raise gkd's documented error (a ``GKDError`` whose
message names what is wrong), never a stray exception from deep inside torch/PyG. Neither accepts the other outcome."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from gkd.datasets.registry import DatasetMeta
from gkd.datasets.validate import check_data
from gkd.distill.amkd import triplet
from gkd.distill.glnn import GLNN, weighted_kl
from gkd.pipeline.student import DistillOptions, distill_mlp
from gkd.distill.knowledge import Knowledge
from gkd.vision.mhgd import relation_kl
from gkd.errors import GKDError
from gkd.vision import MultiHeadGraphBuilder, relational_graph
from gkd.nn import build_model, to_adj_t
from gkd.train import Trainer

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
EACH = settings(FUZZ, max_examples=4)  # per corruption: every one of them runs, on a few graphs
TRAINS = settings(FUZZ, max_examples=15)  # each example trains (3 epochs): fewer


@st.composite
def valid_graphs(draw) -> Data:
    """Valid by construction, and still hostile: self-loops, duplicate and one-way edges, isolated nodes, a hub, one
    class, classes absent from training, nodes in no split; float32 features, non-empty and disjoint masks."""
    n = draw(st.integers(3, 24))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))
    num_classes = draw(st.integers(1, 4))
    e = draw(st.integers(0, 60))
    edge_index = torch.randint(0, n, (2, e), generator=g)
    if draw(st.booleans()):                                         # self-loops and duplicates
        loops = torch.arange(n).repeat(2, 1)
        edge_index = torch.cat([edge_index, loops, edge_index[:, : e // 2]], 1)
    if draw(st.booleans()):                                         # a hub joined to every node, one way
        edge_index = torch.cat([edge_index, torch.stack([torch.zeros(n, dtype=torch.long), torch.arange(n)])], 1)
    x = torch.randn(n, 5, generator=g) * 3
    present = draw(st.integers(1, num_classes))                     # classes actually used: maybe a single one
    y = torch.randint(0, present, (n,), generator=g)
    split = torch.randint(0, 4, (n,), generator=g)                 # 3: in no split
    split[:3] = torch.randperm(3, generator=g)                      # every split holds a node
    data = Data(x=x, edge_index=edge_index, y=y, num_nodes=n, train_mask=split == 0, val_mask=split == 1,
                test_mask=split == 2)
    data.meta = DatasetMeta(name="fuzz", num_classes=num_classes, split="random")
    return data


def _set(name, value):
    def corrupt(data):
        data[name] = value(data) if callable(value) else value
    return corrupt


def _poison_x(value):
    def corrupt(data):
        data.x[int(data.num_nodes) // 2, 0] = value
    return corrupt


def _mask_overlap(data):
    data.val_mask = data.val_mask | data.train_mask


def _unlabelled_in_val(data):
    data.y[data.val_mask.nonzero()[0]] = -1


# one corruption each: (what it breaks, the error it must give, a regex searched in the message)
CORRUPTIONS = {
    "nan feature": (_poison_x(float("nan")), r"NaN/inf values \(first in node \d+\); expected finite features"),
    "inf feature": (_poison_x(float("inf")), r"NaN/inf values"),
    "integer features": (_set("x", lambda d: d.x.round().long()), r"x has dtype torch\.int64; expected a floating"),
    "float64 features": (_set("x", lambda d: d.x.double()), r"x has dtype torch\.float64; this model's parameters "
                                                            r"are torch\.float32"),
    "edge id beyond the graph": (_set("edge_index", lambda d: torch.tensor([[0], [d.num_nodes]])),
                                 r"edge_index holds node ids in \[0, \d+\]; expected ids in \[0, \d+\]"),
    "negative edge id": (_set("edge_index", torch.tensor([[-1], [0]])), r"edge_index holds node ids in \[-1, 0\]"),
    "float edge ids": (_set("edge_index", lambda d: d.edge_index.float()), r"edge_index has dtype torch\.float32"),
    "edge_index [E, 2]": (_set("edge_index", torch.zeros(3, 3, dtype=torch.long)), r"expected \[2, num_edges\]"),
    "label beyond the classes": (_set("y", lambda d: d.y.clone().fill_(d.meta.num_classes)),
                                 r"labels lie in \[\d+, \d+\]; expected classes in \[0, \d+\]"),
    "label below -1": (_set("y", lambda d: d.y.clone().fill_(-2)), r"labels lie in \[-2, -2\]"),
    "labels short by one": (_set("y", lambda d: d.y[1:]), r"y has \d+ entries for \d+ nodes"),
    "empty train mask": (_set("train_mask", lambda d: torch.zeros_like(d.train_mask)),
                         r"train_mask selects no node; expected at least one training node"),
    "empty val mask": (_set("val_mask", lambda d: torch.zeros_like(d.val_mask)), r"val_mask selects no node"),
    "overlapping masks": (_mask_overlap, r"train_mask and val_mask overlap in \d+ nodes; expected disjoint splits"),
    "mask of the wrong length": (_set("test_mask", lambda d: d.test_mask[1:]), r"test_mask is .*; expected a bool "
                                                                              r"tensor of shape"),
    "unlabelled validation node": (_unlabelled_in_val, r"val_mask selects \d+ unlabelled nodes \(label -1\)"),
}




def is_finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def train(data: Data, name: str):
    check_data(data, data.meta.num_classes)
    model = build_model(name, data.num_features, data.meta.num_classes, hidden_channels=8)
    outs = [model(data.x, graph) for graph in (data.edge_index, to_adj_t(data.edge_index, data.num_nodes))]
    return outs, Trainer(model, data, epochs=3, patience=3).fit()


@TRAINS
@given(valid_graphs(), st.sampled_from(["gcn", "sage", "gat", "mlp"]))
def test_models_and_trainer_run_on_valid_hostile_graphs(data, name):
    outs, fit = train(data, name)                                   # a valid graph is never refused
    for out in outs:
        assert out.shape == (data.num_nodes, data.meta.num_classes) and is_finite(out)
    assert 0.0 <= fit.val <= 1.0 and 0.0 <= fit.test <= 1.0
    assert all(is_finite(torch.tensor(h["loss"])) for h in fit.history)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@EACH
@given(data=valid_graphs(), name=st.sampled_from(["gcn", "sage", "gat", "mlp"]))
def test_models_and_trainer_refuse_invalid_graphs(corruption, data, name):
    corrupt, message = CORRUPTIONS[corruption]                      # a valid graph with exactly one thing broken
    corrupt(data)
    with pytest.raises(GKDError, match=message):                   # refused with the documented error, not a
        train(data, name)                                          # stray exception from deep inside torch/PyG


def teacher_logits(data: Data) -> torch.Tensor:
    return torch.randn(data.num_nodes, data.meta.num_classes) * 20  # confident teacher: softmax has exact zeros


@TRAINS
@given(valid_graphs(), st.floats(0.1, 10.0), st.booleans())
def test_distill_mlp_runs_on_valid_hostile_graphs(data, temperature, mask_all):
    mask = torch.ones(data.num_nodes, dtype=torch.bool) if mask_all else data.train_mask.clone()
    opts = DistillOptions(method="gkd", temperature=temperature)
    _, fit = distill_mlp(data, Knowledge(teacher_logits(data), mask), opts, hidden_channels=8, epochs=3, patience=3)
    assert all(is_finite(torch.tensor(h["loss"])) for h in fit.history)


KNOWLEDGE_CORRUPTIONS = {
    "a row short": (lambda d, k, m: (k[1:], m[1:]), r"expected one row per graph node"),
    "another class count": (lambda d, k, m: (torch.randn(d.num_nodes, d.meta.num_classes + 1), m),
                            r"teacher has \d+ classes; the student/dataset has \d+"),
}


@pytest.mark.parametrize("corruption", sorted(KNOWLEDGE_CORRUPTIONS))
@EACH
@given(data=valid_graphs())
def test_distill_mlp_refuses_knowledge_that_does_not_fit(corruption, data):
    corrupt, message = KNOWLEDGE_CORRUPTIONS[corruption]
    logits, mask = corrupt(data, teacher_logits(data), data.train_mask.clone())
    with pytest.raises(GKDError, match=message):
        distill_mlp(data, Knowledge(logits, mask), method="gkd", hidden_channels=8, epochs=3, patience=3)


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
    with pytest.raises(GKDError, match="selects no node"):
        GLNN(logits, torch.zeros(rows, dtype=torch.bool))


def relational(n: int, k: int, symmetric: bool, poison: float):
    g = torch.Generator().manual_seed(n * 100 + k)
    feats = [torch.randn(n, 6, generator=g), torch.randn(n, 10, generator=g)]
    if n and poison != 0.0:
        feats[0][0, 0] = poison
    builder = MultiHeadGraphBuilder([6, 10], heads=2).freeze()
    return relational_graph(builder, feats, k=k, symmetric=symmetric)


@st.composite
def valid_relations(draw) -> tuple[int, int]:
    n = draw(st.integers(2, 20))
    return n, draw(st.integers(1, n - 1))


@FUZZ
@given(valid_relations(), st.booleans(), st.sampled_from([0.0, 1e30]))
def test_relational_graph_on_valid_hostile_embeddings(nk, symmetric, poison):
    n, k = nk
    graph = relational(n, k, symmetric, poison)                    # 1 <= k < n and finite: never refused
    w = graph.edge_weight
    assert is_finite(w) and bool(((w > 0) & (w <= 1)).all()) and graph.edge_index.max() < n
    if not symmetric:  # k per sample, fewer only where attention underflowed to exactly 0
        degree = torch.bincount(graph.edge_index[1], minlength=n)
        assert bool((degree <= k).all()) and (poison != 0.0 or torch.equal(degree, torch.full((n,), k)))


@st.composite
def invalid_relations(draw, kind: str) -> tuple[int, int, float, str]:
    """Exactly one thing wrong: too few samples, k outside [1, n-1], or NaN/inf embeddings."""
    if kind == "few samples":
        return draw(st.integers(0, 1)), 1, 0.0, r"relations need at least 2 samples"
    n = draw(st.integers(2, 20))
    if kind == "k too small":
        return n, draw(st.integers(-3, 0)), 0.0, rf"; expected an integer in \[1, {n - 1}\] for {n} samples"
    if kind == "k too large":
        return n, draw(st.integers(n, n + 5)), 0.0, rf"; expected an integer in \[1, {n - 1}\] for {n} samples"
    return n, draw(st.integers(1, n - 1)), draw(st.sampled_from([float("nan"), float("inf")])), r"contains NaN or inf"


@pytest.mark.parametrize("kind", ["few samples", "k too small", "k too large", "poisoned"])
@EACH
@given(data=st.data(), symmetric=st.booleans())
def test_relational_graph_refuses_invalid_embeddings(kind, data, symmetric):
    n, k, poison, message = data.draw(invalid_relations(kind))
    with pytest.raises(GKDError, match=message):
        relational(n, k, symmetric, poison)
