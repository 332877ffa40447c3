import numpy as np
import pytest
import torch

from gkd.errors import ConfigError
from gkd.nn import GAT, GCN, MLP, GraphSAGE, build_model, to_adj_t


@pytest.mark.parametrize("name, cls", [("gcn", GCN), ("gat", GAT), ("sage", GraphSAGE), ("graphsage", GraphSAGE),
                                       ("mlp", MLP)])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_shapes_and_hidden_taps(small_graph, name, cls, num_layers):
    g = small_graph
    model = build_model(name, g.num_features, 3, hidden_channels=16, num_layers=num_layers)
    assert isinstance(model, cls)
    logits, hidden = model(g.x, g.edge_index, return_hidden=True)
    assert logits.shape == (g.num_nodes, 3)
    assert len(hidden) == num_layers - 1 and all(h.shape == (g.num_nodes, 16) for h in hidden)
    model.eval()
    assert torch.allclose(model(g.x, g.edge_index), model(g.x, g.edge_index, return_hidden=True)[0])


@pytest.mark.parametrize("name", ["gcn", "gat", "sage", "mlp"])
def test_csr_adjacency_equals_edge_index(small_graph, name):
    g = small_graph
    model = build_model(name, g.num_features, 3, hidden_channels=16).eval()
    a = model(g.x, g.edge_index)
    b = model(g.x, to_adj_t(g.edge_index, g.num_nodes))
    assert torch.allclose(a, b, atol=1e-5)


def test_mlp_ignores_graph_and_gnn_needs_it(small_graph):
    g = small_graph
    mlp = build_model("mlp", g.num_features, 3).eval()
    assert torch.equal(mlp(g.x), mlp(g.x, g.edge_index))
    with pytest.raises(ConfigError, match="GCN needs edge_index"):
        build_model("gcn", g.num_features, 3)(g.x, None)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"num_layers": 0}, r"num_layers=0; expected an integer in \[1, 128\]"),
    ({"hidden_channels": 0}, r"hidden_channels=0; expected an integer > 0"),
    ({"hidden_channels": -4}, r"hidden_channels=-4"),
    ({"dropout": 1.0}, r"dropout=1.0; expected a value in \[0, 1\)"),
    ({"dropout": -0.1}, r"dropout=-0.1"),
])
def test_bad_model_arguments(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_model("gcn", 8, 3, **kwargs)


def test_unknown_model_and_bad_gat_heads():
    with pytest.raises(ConfigError, match=r"unknown model 'gin'; expected one of gat, gcn, mlp, sage"):
        build_model("gin", 8, 3)
    with pytest.raises(ConfigError, match="multiple of heads=8"):
        build_model("gat", 8, 3, hidden_channels=12)


def test_reset_parameters_changes_weights():
    model = build_model("sage", 8, 3, hidden_channels=16)
    before = [p.clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_input_dropout_only_touches_nonzeros_and_is_unbiased():
    torch.manual_seed(0)
    x = (torch.rand(200, 50) < 0.05).float()  # sparse binary features, like bag-of-words
    model = build_model("mlp", 50, 3, dropout=0.5).train()
    outs = torch.stack([model._input_dropout(x) for _ in range(400)])
    assert torch.all(outs[:, x == 0] == 0)
    vals = outs[:, x != 0]
    assert set(vals.unique().tolist()) <= {0.0, 2.0}
    assert abs(float(vals.mean()) - 1.0) < 0.05  # E[dropout(x)] = x
    dense = torch.randn(20, 10)  # dense input falls back to F.dropout
    assert ((model._input_dropout(dense) == 0).float().mean() - 0.5).abs() < 0.2
    model.eval()  # evaluation hands the features over as they are: no copy rebuilt from the nonzeros
    assert model._input_dropout(x) is x
    gcn = build_model("gcn", 50, 3, dropout=0.5).eval()
    ei = torch.randint(0, 200, (2, 600))
    assert torch.equal(gcn(x, ei), gcn.layers[1](torch.relu(gcn.layers[0](x, ei)), ei))


def test_constructor_order_matches_pyg_basic_gnn():
    """``GCN(1433, 16, 2, 7)``: 2 layers, 7 classes, in gkd as in PyG (it was a 7-layer, 2-class net)."""
    from torch_geometric.nn import GCN as PyGGCN

    from gkd.nn import GCN

    ours, theirs = GCN(1433, 16, 2, 7), PyGGCN(1433, 16, 2, 7)
    assert ours.num_layers == 2 and ours.out_channels == 7
    assert [tuple(c.lin.weight.shape) for c in ours.layers] == [tuple(c.lin.weight.shape) for c in theirs.convs]
    assert GCN(8, 16, 3).out_channels == 16  # out_channels defaults to hidden_channels, as in PyG


def test_edge_weight_and_edge_attr_where_the_pyg_layer_takes_them():
    import pytest

    from gkd.errors import ConfigError
    from gkd.nn import GAT, GCN, GraphSAGE, to_adj_t

    torch.manual_seed(0)
    x, ei, w = torch.randn(6, 4), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]), torch.rand(5) + 0.1
    gcn = GCN(4, 8, 2, 3).eval()
    assert torch.allclose(gcn(x, ei), gcn(x, ei, torch.ones(5)), atol=1e-6)
    assert not torch.allclose(gcn(x, ei), gcn(x, ei, w))
    assert torch.allclose(gcn(x, ei, w), gcn(x, to_adj_t(ei, 6, w)), atol=1e-5)  # same weights through CSR
    with pytest.raises(ConfigError, match="GraphSAGE takes no edge_weight"):
        GraphSAGE(4, 8, 2, 3)(x, ei, w)
    with pytest.raises(ConfigError, match="GAT takes no edge_attr unless built with edge_dim"):
        GAT(4, 8, 2, 3, heads=2)(x, ei, edge_attr=torch.rand(5, 2))
    gat = GAT(4, 8, 2, 3, heads=2, edge_dim=2).eval()
    a = torch.rand(5, 2)
    assert not torch.allclose(gat(x, ei, edge_attr=a), gat(x, ei, edge_attr=a * 5))
    with pytest.raises(ConfigError, match="a sparse adjacency carries its weights itself"):
        gcn(x, to_adj_t(ei, 6), w)


def test_sparse_input_path_never_reuses_a_freed_tensors_pattern():
    """The nonzero pattern of a sparse input is cached per tensor; a new tensor allocated where a freed one lived
    (same shape, same data_ptr, same version) must get its own pattern, not the old one's."""
    import torch

    from gkd.nn import build_model

    torch.manual_seed(0)
    model = build_model("mlp", 200, 3, hidden_channels=8).eval()
    sources = [(torch.rand(300, 200) < 0.02).float() * (i + 1) for i in range(6)]
    refs = [model.layers[1](torch.relu(model.layers[0](s))) for s in sources]  # the dense path, by hand
    # Whether the allocator hands a freed block straight back varies by machine (CI's did not), so the reuse is
    # made certain: each input is a fresh tensor over one numpy buffer, refilled outside torch (version stays 0).
    buf = np.empty((300, 200), dtype=np.float32)
    ptrs = set()
    for i, s in enumerate(sources):
        np.copyto(buf, s.numpy())
        x = torch.from_numpy(buf)
        ptrs.add(x.data_ptr())
        assert x._version == 0
        assert torch.allclose(model(x), refs[i], atol=1e-5), i
        del x
    assert len(ptrs) == 1  # every input lived at the same address with the same shape and version
