import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gkd.cli import main
from gkd.distill import DepthTerm, LabelSmoothing, NeighbourTerm, NormalizedTerm, SelfDistill, TfKDReg, TimeTerm
from gkd.errors import ConfigError, GKDError
from gkd.nn import build_model
from gkd.train import LossTerm, Step, Trainer, seed_everything

from conftest import assert_one_line_error, load_benchmark

PATH = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # 0 - 1 - 2


def step_for(logits, y, train_mask, epoch=1, hidden=(), graph=PATH, val_mask=None, model=None):
    from torch_geometric.data import Data

    data = Data(y=y, train_mask=train_mask)
    if val_mask is not None:
        data.val_mask = val_mask
    return Step(logits=logits, hidden=list(hidden), data=data, epoch=epoch, model=model, graph=graph)


def test_neighbour_targets_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([1, 0, 1])
    train = torch.tensor([True, False, False])
    term = NeighbourTerm(steps=2, alpha=0.5, sharpen=0.5, warmup=0, adaptive=False)
    got = term.targets(logits, PATH, y, train)
    # by hand: A + I on the path, degrees (2, 3, 2), sym-normalised
    a = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.float)
    d = a.sum(1).rsqrt()
    a_hat = d[:, None] * a * d[None, :]
    z0 = F.softmax(logits, -1)
    z0[0] = torch.tensor([0.0, 1.0])  # node 0's training label is clamped in
    z = z0
    for _ in range(2):
        z = 0.5 * a_hat @ z + 0.5 * z0
        z[0] = z0[0]
    z = z.clamp_min(1e-12) ** 2
    assert torch.allclose(got, z / z.sum(-1, keepdim=True), atol=1e-6)
    loss = term(step_for(logits, y, train, epoch=1))
    expected = F.kl_div(F.log_softmax(logits, -1), got, reduction="batchmean")
    assert torch.allclose(loss, expected, atol=1e-6)


def test_neighbour_warmup_and_trust_gate():
    logits = torch.tensor([[0.0, 3.0], [3.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([1, 0, 1])
    train = torch.tensor([True, False, False])
    term = NeighbourTerm(warmup=5)
    assert float(term(step_for(logits, y, train, epoch=5))) == 0.0
    # the own prediction of node 1 (class 0) is right; its neighbours say class 1: the graph is not trusted
    val = torch.tensor([False, True, False])
    assert float(term(step_for(logits, y, train, epoch=6, val_mask=val))) == 0.0 and term.trust == 0.0
    y_wrong_own = torch.tensor([1, 1, 1])  # now the neighbours are right and the node's own guess is wrong
    assert float(term(step_for(logits, y_wrong_own, train, epoch=6, val_mask=val))) > 0 and term.trust == 1.0


def test_time_term_by_hand():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    train = torch.tensor([True, True])
    term = TimeTerm(alpha_max=0.8, total_epochs=10, warmup=0)
    assert float(term(step_for(logits, y, train, epoch=1))) == 0.0  # no memory yet
    prev = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    term.prev = prev
    got = term(step_for(logits, y, train, epoch=5))
    a = 0.8 * 5 / 10
    logp = F.log_softmax(logits, -1)
    soft = -(prev * logp).sum(-1).mean()
    ce = F.cross_entropy(logits, y)
    assert torch.allclose(got, a * (soft - ce))
    # cross-entropy + term == PS-KD's soft-target loss with (1 - a) onehot + a p_{t-1}
    target = (1 - a) * F.one_hot(y, 3) + a * prev
    assert torch.allclose(ce + got, -(target * logp).sum(-1).mean())
    term.on_epoch_end(step_for(logits, y, train))
    assert not term.prev.requires_grad and torch.allclose(term.prev, F.softmax(logits, -1).detach())


def test_normalised_term_by_hand():
    logits = torch.tensor([[2.0, 1.0, 3.0, 0.0]])
    y = torch.tensor([0])
    train = torch.tensor([True])
    got = NormalizedTerm(warmup=0)(step_for(logits, y, train))
    # one node: w = s^2 + 1 - mean(s^2) = 1, so the target part is zero
    nt = torch.tensor([[1.0, 3.0, 0.0]])  # non-target logits, ranks 2, 1, 3
    zipf = torch.tensor([1 / 2, 1 / 1, 1 / 3])
    zipf = zipf / zipf.sum()
    expected = -(zipf * F.log_softmax(nt, -1)).sum()
    assert torch.allclose(got, expected, atol=1e-6)
    two = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    yy = torch.tensor([0, 0])
    s = F.softmax(two, -1)[:, 0]
    w = s ** 2 + 1 - (s ** 2).mean()
    ce = F.cross_entropy(two, yy, reduction="none")
    assert torch.allclose(NormalizedTerm(warmup=0)(step_for(two, yy, torch.tensor([True, True]))), (w * ce).mean() - ce.mean())


def test_depth_ndr_by_hand():
    term = DepthTerm([2], num_classes=2, ndr_weight=1.0)
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    adj = term.cache.get(PATH, 3)
    a = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.float)
    d = a.sum(1).rsqrt()
    expected = 1 - F.cosine_similarity(h, (d[:, None] * a * d[None, :]) @ h, dim=-1)
    assert torch.allclose(term.ndr(h, adj), expected)


def test_label_smoothing_matches_torch():
    z = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    mask = torch.ones(5, dtype=torch.bool)
    got = F.cross_entropy(z, y) + LabelSmoothing(0.1)(step_for(z, y, mask))
    assert torch.allclose(got, F.cross_entropy(z, y, label_smoothing=0.1), atol=1e-6)
    assert float(TfKDReg()(step_for(z, y, mask))) > 0


def test_gradients_reach_the_right_parameters(small_graph):
    g = small_graph
    model = build_model("gcn", g.num_features, 3, hidden_channels=8)
    sd = SelfDistill(3, [8], terms="depth,neighbour,time,normalised", neighbour={"warmup": 0, "adaptive": False},
                     depth={"warmup": 0}, time={"warmup": 0}, normalised={"warmup": 0})
    logits, hidden = model(g.x, g.edge_index, return_hidden=True)
    sd.end_epoch(logits)
    loss = sd(logits, hidden, g.edge_index, g.y, g.train_mask, epoch=3)
    loss.backward()
    depth = sd.terms[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in depth.heads.parameters())
    assert all(p.grad is not None for p in model.parameters())
    assert sd.terms[2].prev.grad is None
    # the neighbour term's targets are constants: its gradient flows only through the student's logits
    model.zero_grad()
    logits = model(g.x, g.edge_index)
    nb = NeighbourTerm(warmup=0, adaptive=False)
    leaf = logits.detach().requires_grad_()
    nb.loss(leaf, g.edge_index, g.y, g.train_mask).backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["gcn", "gat", "sage", "mlp"])
def test_exported_model_is_the_plain_backbone(small_graph, name):
    g = small_graph
    seed_everything(0)
    model = build_model(name, g.num_features, 3, hidden_channels=16)
    plain_keys = {k: v.shape for k, v in build_model(name, g.num_features, 3, hidden_channels=16).state_dict().items()}
    sd = SelfDistill(3, [16], terms="depth,time,neighbour,normalised", total_epochs=10, neighbour={"warmup": 2})
    res = Trainer(model, g, epochs=10, terms=sd.terms).fit()
    assert {k: v.shape for k, v in res.state_dict.items()} == plain_keys
    assert {k: v.shape for k, v in model.state_dict().items()} == plain_keys


@pytest.mark.parametrize("kwargs, pattern", [
    ({"terms": "depth,colour"}, r"'colour' is not a registered self term"),
    ({"terms": ""}, r"no self-distillation term given"),
    ({"terms": "time", "weights": {"time": -1}}, r"term_args time: weight=-1.0; expected a finite number >= 0"),
    ({"terms": "time", "weights": {"depth": 1}}, r"term_args given for self term\(s\) \['depth'\]"),
    ({"terms": "depth", "depth": {"temperature": 0}}, r"depth temperature=0.0; expected > 0"),
    ({"terms": "depth", "hidden_dims": []},
     r"depth term needs num_layers >= 2 \(a hidden layer to attach a head to\); got num_layers=1"),
    ({"terms": "neighbour", "neighbour": {"sharpen": 0}}, r"sharpen temperature=0"),
])
def test_bad_self_distill_settings(kwargs, pattern):
    hidden = kwargs.pop("hidden_dims", [8])
    with pytest.raises(ConfigError, match=pattern):
        SelfDistill(3, hidden, **kwargs)


def test_nan_term_is_named(small_graph):
    g = small_graph.clone()
    model = build_model("gcn", g.num_features, 3, hidden_channels=8)
    sd = SelfDistill(3, [8], terms="neighbour", neighbour={"warmup": 0, "adaptive": False})
    sd.terms[0].targets = lambda *a: torch.full((g.num_nodes, 3), float("nan"))
    with pytest.raises(GKDError, match=r"loss term 'neighbour' produced nan at epoch 1"):
        Trainer(model, g, epochs=5, terms=sd.terms).fit()


def test_cli_self_distill_json(tmp_path):
    out = tmp_path / "r.json"
    code = main(["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "gcn",
                 "--runs", "1", "--epochs", "30", "--self-distill", "--sd-terms", "neighbour,time,depth",
                 "--sd-weight", "time=0.5", "--term-arg", "neighbour.warmup=5", "--term-arg", "neighbour.restart=false",
                 "--json", str(out), "--quiet"])
    assert code == 0
    r = json.loads(out.read_text())
    assert r["method"] == "self-distill"
    assert r["method_config"]["terms"] == ["neighbour", "time", "depth"]
    args = r["method_config"]["term_args"]
    assert {k: v["weight"] for k, v in args.items()} == {"neighbour": 1.0, "time": 0.5, "depth": 1.0}
    assert args["neighbour"]["restart"] is False and args["neighbour"]["warmup"] == 5


def test_cli_warmup_none_and_feature_graph(tmp_path):
    """``warmup=null`` (the default: the run's patience) and ``graphs=input,features`` from the command line."""
    out = tmp_path / "r.json"
    assert main(["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "gcn",
                 "--runs", "1", "--epochs", "40", "--patience", "5", "--self-distill", "--term-arg",
                 "neighbour.warmup=null", "--term-arg", "neighbour.graphs=input,features", "--json", str(out),
                 "--quiet"]) == 0
    r = json.loads(out.read_text())
    assert r["method_config"]["term_args"]["neighbour"]["warmup"] is None
    run = r["runs"][0]
    assert set(run["stats"]["neighbour"]["taught_epochs"]) == {"input", "features"}
    assert run["stats"]["guard"]["kept"] in ("terms", "baseline")


@pytest.mark.parametrize("args, message", [
    (["--self-distill", "--sd-terms", "colour"], "'colour' is not a registered self term"),
    (["--self-distill", "--sd-weight", "time=-2"], "term_args time: weight=-2.0"),
    (["--self-distill", "--sd-terms", "depth", "--term-arg", "depth.temperature=0"], "depth temperature=0.0"),
    (["--self-distill", "--sd-terms", "depth", "--num-layers", "1"], "depth term needs num_layers >= 2"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--self-distill", "--term-arg", "neighbour.graphs=input,colour"],
     "expected a comma list of distinct names from input, features"),
    (["--self-distill", "--term-arg", "time.warmup=-3"], "time warmup=-3; expected None or >= 0"),
    (["--self-distill", "--term-arg", "neighbour.knn=0"], "neighbour knn=0; expected >= 1"),
    (["--method", "label-smoothing", "--term-arg", "label-smoothing.epsilon=1.5"], "epsilon=1.5"),
])
def test_cli_bad_self_distill(args, message, capsys):
    assert main(["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--runs", "1",
                 "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err


class _Spy(LossTerm):
    """A zero loss term that records the weights each epoch's forward pass saw."""

    name = "spy"

    def __init__(self):
        super().__init__()
        self.seen, self.best = {}, {}

    def forward(self, step):
        self.seen[step.epoch] = [p.detach().clone() for p in step.model.parameters()]
        self.best[step.epoch] = step.best_epoch
        return step.logits.sum() * 0.0


@pytest.mark.parametrize("restart", [True, False])
def test_neighbour_term_starts_from_the_best_checkpoint(small_graph, restart):
    seed_everything(0)
    model = build_model("gcn", small_graph.num_features, 3, hidden_channels=16)
    nb, spy = NeighbourTerm(warmup=3, restart=restart), _Spy()
    Trainer(model, small_graph, epochs=80, patience=80, terms=[nb, spy]).fit()
    start, best = nb.started, spy.best[nb.started]
    assert start - best >= 3
    # epoch e's forward sees the weights evaluated at the end of epoch e - 1
    same = all(torch.equal(a, b) for a, b in zip(spy.seen[start], spy.seen[best + 1]))
    assert same == restart


def test_born_again_term_by_hand():
    from gkd.distill.born_again import BornAgain

    prev, z = torch.randn(5, 3), torch.randn(5, 3, requires_grad=True)
    p = F.softmax(prev, -1)
    want = (p * (p.log() - F.log_softmax(z, -1))).sum(-1).mean()
    got = BornAgain(prev)(Step(logits=z, hidden=[], data=None, epoch=1, model=None))
    assert torch.allclose(got, want)


@pytest.mark.parametrize("generations", [1, 3])
def test_generations_learn_the_previous_ones_predictions(small_graph, monkeypatch, generations):
    """Generation g + 1 gets a born-again term holding generation g's eval-mode logits at its best-validation
    weights; the run returns the last generation and lists every generation's validation score."""
    from gkd.config import TrainConfig
    from gkd.distill import born_again
    from gkd.pipeline.train import train_run

    built, handed = [], []
    monkeypatch.setattr(born_again.BornAgain, "__init__",
                        lambda self, prev, weight=1.0: (handed.append(prev.clone()),
                                                        LossTerm.__init__(self, 0.0))[-1])
    cfg = TrainConfig(model="gcn", hidden_channels=16, epochs=40, patience=40, generations=generations)
    model, res = train_run(cfg, small_graph, 0, terms_factory=lambda d, m: built.append(m) or [])
    assert len(built) == generations and model is built[-1]
    assert len(handed) == generations - 1
    for prev_model, prev_logits in zip(built, handed):
        prev_model.eval()
        assert torch.equal(prev_model(small_graph.x, small_graph.adj_t), prev_logits)
    assert ("generation_val" in res.stats) == (generations > 1)
    if generations > 1:
        assert len(res.stats["generation_val"]) == generations and res.stats["generation_val"][-1] == res.val


class _Harm(LossTerm):
    """A late-starting term that teaches every node the wrong class: it can only lower validation accuracy."""

    name = "harm"

    def __init__(self, warmup):
        super().__init__()
        self.warmup = warmup

    def restart_from_best(self, epoch, best_epoch):
        if self.started is None and epoch - best_epoch >= self.warmup:
            self.started = epoch
        return False

    def forward(self, step):
        if self.started is None:
            return step.logits.new_zeros(())
        wrong = (step.data.y + 1) % step.logits.size(-1)
        return 5.0 * F.cross_entropy(step.logits, wrong)


@pytest.mark.parametrize("guard", [True, False])
def test_guard_keeps_the_model_from_before_a_harmful_late_term(small_graph, guard):
    """The guard holds the best model from before the late term: with it, the run equals plain training on
    validation; without it, the harmful term's later epochs may still be picked (ties go to lower validation loss)."""
    seed_everything(0)
    plain = Trainer(build_model("gcn", small_graph.num_features, 3, hidden_channels=16), small_graph, epochs=60,
                    patience=10).fit()
    seed_everything(0)
    model = build_model("gcn", small_graph.num_features, 3, hidden_channels=16)
    harm = _Harm(warmup=10)
    res = Trainer(model, small_graph, epochs=200, patience=10, terms=[harm], guard=guard).fit()
    assert harm.started is not None
    if guard:
        assert res.stats["guard"]["kept"] == "baseline"
        assert (res.val, res.best_epoch) == (plain.val, plain.best_epoch)
        assert all(torch.equal(a, b) for a, b in zip(res.state_dict.values(), plain.state_dict.values()))
    else:
        assert "guard" not in res.stats


def test_guard_keeps_a_late_term_that_wins_on_validation(small_graph):
    """A late term whose model is better on validation is kept (here: it teaches the true labels of every node)."""

    class Oracle(_Harm):
        name = "oracle"

        def forward(self, step):
            if self.started is None:
                return step.logits.new_zeros(())
            return 5.0 * F.cross_entropy(step.logits, step.data.y)

    seed_everything(0)
    model = build_model("gcn", small_graph.num_features, 3, hidden_channels=16)
    res = Trainer(model, small_graph, epochs=200, patience=10, terms=[Oracle(warmup=10)]).fit()
    assert res.stats["guard"]["kept"] == "terms" and res.val > res.stats["guard"]["baseline_val"]


def test_default_terms_start_where_plain_training_stops(small_graph):
    """warmup=None: every default term waits for the run's patience; until then the run is plain training, so the
    guard's baseline is the plain run's model, and self-distillation is never below it on validation."""
    from gkd.config import make_config
    from gkd.pipeline.train import run_training

    flags = {"dataset": "synthetic-csbm", "dataset_args": {"num_nodes": 1700, "homophily": 0.3}, "model": "sage",
             "runs": 3, "epochs": 120, "patience": 15}
    plain = run_training(make_config(flags={**flags, "method": "plain"}))
    sd = run_training(make_config(flags={**flags, "method": "self-distill"}))
    for p, s in zip(plain["runs"], sd["runs"]):
        guard = s["stats"]["guard"]
        assert guard["baseline_epoch"] == p["best_epoch"] and guard["baseline_val"] == p["val"]
        assert s["val"] >= p["val"]
        assert (s["val"] > p["val"]) == (guard["kept"] == "terms")


def test_neighbour_feature_graph_teaches_where_the_input_graph_misleads():
    """Edges join different classes only; features cluster by class. The input graph's targets are wrong, the
    feature kNN graph's right: with graphs="input,features" the trust gate picks the features graph."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(0)
    n, c = 60, 3
    y = torch.arange(n) % c
    x = F.one_hot(y, c).float() * 3 + 0.3 * torch.randn(n, c, generator=g)
    src = torch.arange(n)
    edge_index = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([(src + 1) % n, src])], 1)
    train = torch.zeros(n, dtype=torch.bool)
    train[:c * 5] = True
    val = torch.zeros(n, dtype=torch.bool)
    val[c * 5:] = True
    logits = torch.zeros(n, c)  # an undecided model: the own predictions are at chance
    logits[~train, 0] = 0.1
    data = Data(x=x, y=y, train_mask=train, val_mask=val)
    for graphs, taught in (("input", {"input": 0}), ("input,features", {"input": 0, "features": 1})):
        term = NeighbourTerm(warmup=0, graphs=graphs, knn=4)
        loss = term(Step(logits=logits, hidden=[], data=data, epoch=1, model=None, graph=edge_index))
        assert term.stats()["taught_epochs"] == taught
        assert (float(loss) > 0) == ("features" in graphs)


def test_neighbour_choose_first_or_best_among_trusted_graphs():
    """Both graphs beat the undecided model on validation; the features graph beats the input graph. ``first``
    keeps the input graph (and never builds the other), ``best`` takes the features graph."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(0)
    n, c = 90, 3
    y = torch.arange(n) % c
    x = F.one_hot(y, c).float() * 3 + 0.3 * torch.randn(n, c, generator=g)
    src = torch.arange(n)
    dst = (src + c) % n  # a same-class edge for every node ...
    dst[::4] = (src[::4] + 1) % n  # ... but every fourth joins another class
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    train = torch.zeros(n, dtype=torch.bool)
    train[:c * 5] = True
    val = ~train
    logits = torch.zeros(n, c)
    logits[~train, 0] = 0.1  # an undecided model: the own predictions are at chance
    data = Data(x=x, y=y, train_mask=train, val_mask=val)
    step = Step(logits=logits, hidden=[], data=data, epoch=1, model=None, graph=edge_index)
    accs = {name: float((t[val].argmax(-1) == y[val]).float().mean())
            for name, t in NeighbourTerm(warmup=0, knn=4).candidates(logits, edge_index, x, y, train)}
    assert 1 / 3 < accs["input"] < accs["features"]  # the premise: both trusted, features better
    for choose, taught in (("first", {"input": 1, "features": 0}), ("best", {"input": 0, "features": 1})):
        term = NeighbourTerm(warmup=0, graphs="input,features", choose=choose, knn=4)
        term(step)
        assert term.stats()["taught_epochs"] == taught
        assert (term.feature_cache.adj is None) == (choose == "first")
    with pytest.raises(ConfigError, match="neighbour choose='any'; expected one of first, best"):
        NeighbourTerm(choose="any")


def test_neighbour_feature_graph_skipped_above_its_size_limit(small_graph):
    term = NeighbourTerm(warmup=0, graphs="features", knn_max_nodes=10, adaptive=False)
    g = small_graph
    out = term(Step(logits=torch.zeros(g.num_nodes, 3), hidden=[], data=g, epoch=1, model=None, graph=g.edge_index))
    assert float(out) == 0.0 and "knn_max_nodes=10" in term.stats()["skipped"]


def test_knn_graph_matches_brute_force():
    from gkd.graph import knn_graph

    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 6, generator=g)
    ei = knn_graph(x, 3)
    z = F.normalize(x, dim=-1)
    sim = z @ z.T
    sim.fill_diagonal_(-2)
    want = {(int(i), int(j)) for i in range(50) for j in sim[i].topk(3).indices}
    want |= {(j, i) for i, j in want}
    assert {(int(a), int(b)) for a, b in ei.t()} == want
    assert bool((ei[0] != ei[1]).all())
    with pytest.raises(ConfigError, match=r"k=50; expected an integer in \[1, 49\] \(fewer than the 50 nodes\)"):
        knn_graph(x, 50)


@pytest.mark.parametrize("args, pattern", [
    ({"graphs": "input,colour"}, r"neighbour graphs='input,colour'; expected a comma list of distinct names from "
                                 r"input, features"),
    ({"graphs": "input,input"}, r"neighbour graphs='input,input'"),
    ({"knn": 0}, r"neighbour knn=0; expected >= 1"),
    ({"warmup": -1}, r"neighbour warmup=-1; expected None or >= 0"),
])
def test_bad_neighbour_graph_options(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        SelfDistill(3, [8], terms="neighbour", neighbour=args)


def test_late_start_terms_take_patience_from_their_loop(small_graph):
    """warmup=None is the loop's patience: SelfDistill(patience=...) sets it; a bare term refuses None."""
    sd = SelfDistill(3, [8], terms="neighbour,time", patience=7)
    assert [t.warmup for t in sd.terms] == [7, 7]
    with pytest.raises(ConfigError, match=r"neighbour warmup=None; expected an integer >= 0 here"):
        NeighbourTerm(warmup=None)


def test_a_late_term_gets_a_full_patience_without_the_guard(small_graph):
    """The patience counter restarts when a term starts, guard or not: the term trains for `patience` epochs at
    least, instead of one (it starts where plain training would stop)."""
    seed_everything(0)
    model = build_model("gcn", small_graph.num_features, 3, hidden_channels=16)
    harm = _Harm(warmup=10)
    res = Trainer(model, small_graph, epochs=300, patience=10, terms=[harm], guard=False).fit()
    assert res.epochs_run >= harm.started + 10 - 1


def test_optional_option_type_error_names_both_types():
    from gkd.distill.registry import build_options

    with pytest.raises(ConfigError, match=r"term_args time.warmup=1.5; expected int or None"):
        build_options("self", ["time"], {"time": {"warmup": 1.5}})


def test_benchmark_candidate_equal_to_a_term_alone_is_that_run():
    """benchmarks/self_distill.py does not run a candidate default twice: one whose resolved configuration (terms,
    options, training settings, seeds) equals a row already run is that row, relabelled; one that differs in any of
    them (an older row's graphs, another seed count, a row stored without its settings) still runs."""
    mod = load_benchmark("self_distill")
    label = "SD: neighbour, graphs=input,features, choose=first"
    alone = dict(mod.variants(False))[label]
    task = (label, "gcn", alone, {"dataset": "Cora", "runs": 2})
    cfg, config = mod.resolved(("SD: neighbour", "gcn", {"method": "self-distill", "sd_terms": "neighbour"},
                                {"dataset": "Cora", "runs": 2}))
    row = {"dataset": "Cora", "model": "gcn", "dataset_args": {}, "variant": "SD: neighbour", "method_config": config,
           "settings": mod.settings(cfg), "runs": [{"seed": 0, "val": 0.8, "test": 0.81}]}
    todo, copies = mod.reuse_same_runs([task], [row])
    assert todo == [] and [(c["variant"], c["same_as"], c["runs"]) for c in copies] == \
        [(label, "SD: neighbour", row["runs"])]
    older = {**row, "method_config": {**config, "term_args": {"neighbour": {
        **config["term_args"]["neighbour"], "graphs": "input"}}}}
    three_seeds = (label, "gcn", alone, {"dataset": "Cora", "runs": 3})
    unrecorded = {k: v for k, v in row.items() if k != "settings"}
    everything = (f"SD: {','.join(mod.TERMS)}, graphs=input,features, choose=first", "gcn",
                  dict(mod.variants(False))[f"SD: {','.join(mod.TERMS)}, graphs=input,features, choose=first"],
                  {"dataset": "Cora", "runs": 2})
    for tasks, rows in (([task], [older]), ([three_seeds], [row]), ([task], [unrecorded]), ([everything], [row])):
        assert mod.reuse_same_runs(tasks, rows) == (tasks, [])


def test_benchmark_drops_a_row_whose_label_now_means_another_run():
    """A stored row whose label resolves today to other term options than it ran with (the candidate
    `graphs=input,features` once picked up a changed `choose` default) is stale: `--missing` re-runs it. An option
    the row predates is not a difference."""
    mod = load_benchmark("self_distill")
    label = "SD: neighbour,time, graphs=input,features"
    task = (label, "gat", dict(mod.variants(False))[label], {"dataset": "Actor", "runs": 10})
    config = mod.resolved(task)[1]
    ran_first = {"dataset": "Actor", "model": "gat", "dataset_args": {}, "variant": label, "method_config": {
        **config, "term_args": {**config["term_args"], "neighbour": {**config["term_args"]["neighbour"],
                                                                     "choose": "first"}}}}
    predates = {**ran_first, "method_config": {**config, "term_args": {**config["term_args"], "neighbour": {
        k: v for k, v in config["term_args"]["neighbour"].items() if k != "choose"}}}}
    assert mod.stale_rows([task], [ran_first, predates]) == [ran_first]
    assert mod.stale_rows([task], [{**ran_first, "model": "gcn"}]) == []


def test_benchmark_variants_re_runs_only_the_rows_named(tmp_path, monkeypatch, capsys):
    """`--variants 'plain;default'` re-runs those rows of the datasets and backbones asked for and keeps every other
    row as stored (other variants, other backbones, the sweep); an unknown label stops it before any run."""
    import shutil

    mod = load_benchmark("self_distill")
    shutil.copy(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "self_distill.json", tmp_path)
    old = json.loads((tmp_path / "self_distill.json").read_text())["rows"]
    by_key = {(r["dataset"], r["model"], r["variant"], json.dumps(r["dataset_args"])): r for r in old}
    ran = []

    def fake_pool(fn, tasks, jobs, desc):  # the stored row again, marked: no training in a unit test
        ran.extend((t[3]["dataset"], t[1], t[0]) for t in tasks)
        return [{**by_key[(t[3]["dataset"], t[1], t[0], "{}")], "rerun": True} for t in tasks]

    monkeypatch.setattr(mod, "run_pool", fake_pool)
    with pytest.raises(SystemExit) as e:
        mod.main(["--datasets", "Actor", "--variants", "plain;SD: nothing", "--out", str(tmp_path)])
    assert e.value.code == 2 and "SD: nothing" in capsys.readouterr().err and not ran
    assert mod.main(["--datasets", "Actor", "--models", "gcn,sage", "--variants", "plain;default",
                     "--out", str(tmp_path)]) == 0
    assert sorted(ran) == sorted(("Actor", m, v) for m in ("gcn", "sage") for v in ("plain", mod.default_label()))
    new = json.loads((tmp_path / "self_distill.json").read_text())["rows"]
    assert len(new) == len(old) and sum(r.get("rerun", False) for r in new) == 4
    kept = [r for r in new if not r.get("rerun")]
    assert all(by_key[(r["dataset"], r["model"], r["variant"], json.dumps(r["dataset_args"]))]["runs"] == r["runs"]
               for r in kept)


def test_benchmark_default_row_is_the_library_default():
    from gkd.distill import SELF_DISTILL_TERMS

    mod = load_benchmark("self_distill")
    name = mod.default_label().removeprefix("SD: ")
    assert mod.resolved(("", "gcn", mod.candidate_flags(name), {}))[1] == \
        mod.resolved(("", "gcn", {"method": "self-distill"}, {}))[1]
    assert mod.CANDIDATES[name][0] == ",".join(SELF_DISTILL_TERMS)


def test_benchmark_footer_names_each_invocations_machine():
    """A re-run of a subset keeps older rows, so the results name every invocation's machine, including the one
    recorded before per-invocation records (the file's single ``environment``)."""
    common = load_benchmark("common")
    old = {"environment": {"cpu": "Old CPU", "torch": "2.0"}, "rows": []}
    calls = common.invocations(old, True, "`self_distill.py --datasets Actor`", 12.3, rows=44, replaced=3)
    line = common.invocations_line({"invocations": calls})
    assert line.startswith("Measured, by invocation: earlier invocations") and "Old CPU, torch 2.0" in line
    assert "`self_distill.py --datasets Actor` (44 rows, 3 of them stale ones re-run, 12 min, " in line
    assert "1 torch thread per worker" in line
    assert len(common.invocations(old, False, "all", 1.0)) == 1  # a full re-run drops what it replaced
    assert common.invocations_line({"environment": {"cpu": "X", "torch": "1"}}) == "Measured on X, torch 1."


def test_benchmark_invocation_names_the_commit_it_ran_from(tmp_path, monkeypatch):
    """Each invocation records the git commit of gkd and the scripts, marked ``+modified`` when either differs from
    it; the results the run writes do not count, and outside a git checkout nothing is recorded."""
    import importlib.util
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "gkd").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "benchmarks" / "common.py", tmp_path / "benchmarks")
    (tmp_path / "gkd" / "core.py").write_text("x = 1\n")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no checkout above tmp_path counts
    spec = importlib.util.spec_from_file_location("common_copy", tmp_path / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert common.code_version() is None  # not a git checkout yet

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    head = git("rev-parse", "--short=12", "HEAD")
    (tmp_path / "benchmarks" / "results" / "x.json").write_text("{}")
    assert common.code_version() == head
    (tmp_path / "gkd" / "core.py").write_text("x = 2\n")
    assert common.code_version() == head + "+modified"
    line = common.invocations_line({"invocations": [{"ran": "r", "minutes": 1.0, "date": "d", "cpu": "C",
                                                     "torch": "t", "commit": head}]})
    assert f"(1 min, d, commit {head}): C, torch t" in line
