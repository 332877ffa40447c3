import pytest
import torch

from gkd.errors import GKDError
from gkd.nn import build_model, to_adj_t
from gkd.train import LossTerm, Trainer, seed_everything


def fit(g, seed=0, **kw):
    seed_everything(seed)
    model = build_model("gcn", g.num_features, 3, hidden_channels=16)
    return model, Trainer(model, g, epochs=kw.pop("epochs", 60), patience=kw.pop("patience", 30), **kw).fit()


def test_gcn_learns_and_selects_on_validation(small_graph):
    model, res = fit(small_graph)
    assert res.test > 0.8
    best_val = max(h["val"] for h in res.history)
    assert res.val == best_val
    chosen = res.history[res.best_epoch - 1]
    assert chosen["val"] == res.val and chosen["test"] == res.test
    # the model left in the trainer is the best-validation checkpoint
    for k, v in model.state_dict().items():
        assert torch.equal(v, res.state_dict[k])


def test_same_seed_same_numbers(small_graph):
    _, a = fit(small_graph, seed=1)
    _, b = fit(small_graph, seed=1)
    _, c = fit(small_graph, seed=2)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert (a.val, a.test) == (b.val, b.test)
    assert [h["loss"] for h in a.history] != [h["loss"] for h in c.history]


def test_early_stopping(small_graph):
    _, res = fit(small_graph, epochs=500, patience=5)
    assert res.epochs_run == res.best_epoch + 5 < 500


def test_uses_csr_when_present(small_graph):
    g = small_graph.clone()
    g.adj_t = to_adj_t(g.edge_index, g.num_nodes)
    g.edge_index = torch.empty(2, 0, dtype=torch.long)  # would give an MLP-like result if it were used
    _, res = fit(g)
    _, ref = fit(small_graph)
    assert abs(res.test - ref.test) < 0.05 and res.test > 0.8


class Pull(LossTerm):
    name = "pull"

    def forward(self, step):
        return step.logits.pow(2).mean()


class Broken(LossTerm):
    name = "broken"

    def forward(self, step):
        return step.logits.sum() * (float("nan") if step.epoch == 3 else 1.0)


def test_loss_terms_add_to_the_objective(small_graph):
    _, plain = fit(small_graph, epochs=5)
    _, pulled = fit(small_graph, epochs=5, terms=[Pull(weight=2.0)])
    assert "pull" in pulled.history[0]
    assert pulled.history[0]["loss"] == pytest.approx(pulled.history[0]["ce"] + 2.0 * pulled.history[0]["pull"],
                                                      rel=1e-5)
    assert plain.history[0]["loss"] == pytest.approx(plain.history[0]["ce"])


def test_nan_term_stops_with_its_name_and_epoch(small_graph):
    with pytest.raises(GKDError, match=r"loss term 'broken' produced nan at epoch 3"):
        fit(small_graph, terms=[Broken()])


def test_negative_weight_and_bad_trainer_args(small_graph):
    with pytest.raises(GKDError, match=r"pull weight=-1"):
        Pull(weight=-1)
    model = build_model("mlp", small_graph.num_features, 3)
    with pytest.raises(GKDError, match=r"epochs=0"):
        Trainer(model, small_graph, epochs=0)
    with pytest.raises(GKDError, match=r"lr=0"):
        Trainer(model, small_graph, lr=0)


def test_summary_is_unbiased():
    from gkd.train import mean_std

    m, s = mean_std([0.8, 0.82, 0.84])
    assert m == pytest.approx(0.82) and s == pytest.approx(0.02)
    assert mean_std([0.8])[1] is None


def test_trainer_validates_the_graph(small_graph):
    from gkd.errors import DatasetError

    g = small_graph.clone()
    g.val_mask = torch.zeros_like(g.val_mask)
    model = build_model("mlp", g.num_features, 3)
    with pytest.raises(DatasetError, match="val_mask selects no node"):
        Trainer(model, g)
    g = small_graph.clone()
    g.y = g.y.clone()
    g.y[0] = 5
    with pytest.raises(DatasetError, match=r"labels lie in \[0, 5\]; expected classes in \[0, 2\]"):
        Trainer(model, g)
