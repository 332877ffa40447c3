"""GNN-to-MLP distillation: knowledge, loss terms, settings, serving paths and their bad inputs."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_one_line_error, load_benchmark
from gkd.cli import main
from gkd.datasets.inductive import inductive_split
from gkd.distill.ffg2m import neighbour_targets
from gkd.pipeline.student import DistillOptions, distill_mlp, ensemble, parse_student_terms
from gkd.pipeline.gnn2mlp import DistillConfig
from gkd.distill.glnn import GLNN, weighted_kl
from gkd.distill.knowledge import Knowledge, teacher_knowledge
from gkd.distill.krd import reliability_weights
from gkd.errors import ConfigError, DatasetError
from gkd.nn import build_model, to_adj_t
from gkd.nn.position import extend_to_new_nodes, fastrp
from gkd.nn.serving import FastMLP, gather_neighbours, sage_predict
from gkd.train import Trainer

CSBM = ["--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--dataset-arg", "num_features=32"]


@pytest.fixture
def trained_teacher(small_graph):
    torch.manual_seed(0)
    teacher = build_model("gcn", small_graph.num_features, 3, hidden_channels=16)
    Trainer(teacher, small_graph, epochs=60, patience=60).fit()
    return teacher


def agreement(model, data, know):
    model.eval()
    with torch.no_grad():
        return float((model(data.x).argmax(-1) == know.logits.argmax(-1))[data.test_mask].float().mean())


def test_glnn_student_learns_the_teacher(small_graph, trained_teacher):
    know = teacher_knowledge(trained_teacher, small_graph.x, small_graph.edge_index, noise=0.0)
    assert know.logits.shape == (300, 3) and know.hidden.shape == (300, 16) and know.reliability is None
    kw = dict(hidden_channels=32, epochs=80, patience=80, seed=0)
    plain, _ = distill_mlp(small_graph, know, method="plain", **kw)
    student, res = distill_mlp(small_graph, know, method="glnn", **kw)
    # KD on all nodes (test nodes included, GLNN's transductive protocol) makes the MLP copy the teacher
    assert agreement(student, small_graph, know) > agreement(plain, small_graph, know) + 0.05
    assert res.test > 0.5


def test_every_term_runs_and_is_finite(small_graph, trained_teacher):
    know = teacher_knowledge(trained_teacher, small_graph.x, small_graph.edge_index, noise=1.0)
    assert know.reliability.shape == (300,) and bool((know.reliability >= 0).all())
    opts = DistillOptions(method="glnn", terms="neighbour,reliability,rsd,self")
    _, res = distill_mlp(small_graph, know, opts, hidden_channels=16, epochs=30, patience=30)
    for h in res.history:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in h.items() if isinstance(v, float))
    assert {"kd", "neighbour", "rsd"} <= set(res.history[-1])


def test_weighted_kl_is_kl_and_safe_with_zero_targets():
    t = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    z = torch.randn(2, 3)
    ref = F.kl_div(F.log_softmax(z, -1), t, reduction="none").sum(-1).mean()
    assert torch.isfinite(weighted_kl(t, z, 1.0))
    assert torch.allclose(weighted_kl(t, z, 1.0), ref)
    w = torch.tensor([1.0, 0.0])
    assert torch.allclose(weighted_kl(t, z, 1.0, w), F.kl_div(F.log_softmax(z[:1], -1), t[:1], reduction="sum"))


def test_neighbour_targets_clamp_labels_and_average_neighbours(small_graph):
    logits = torch.randn(300, 3)
    t = neighbour_targets(logits, small_graph.edge_index, small_graph.y, small_graph.train_mask)
    tm = small_graph.train_mask
    assert torch.equal(t[tm], F.one_hot(small_graph.y[tm], 3).float())
    assert torch.allclose(t.sum(-1), torch.ones(300))
    # steps=1, alpha=0, no clamping: one smoothing step of the teacher's probabilities
    one = neighbour_targets(logits, small_graph.edge_index, small_graph.y, tm, steps=1, alpha=0.0, clamp=False)
    assert not torch.allclose(one, F.softmax(logits, -1))


def test_reliability_weights():
    rho = torch.tensor([0.0, 0.5, 1.0, 10.0])
    w = reliability_weights(rho, torch.tensor([False, False, False, True]), quantile=0.5)
    assert w[0] == 1 and w[3] == 1 and w[2] == 0 and 0 < w[1] < 1


def test_ensemble_averages_probabilities():
    a = Knowledge(torch.tensor([[2.0, 0.0]]), torch.tensor([True]))
    b = Knowledge(torch.tensor([[0.0, 2.0]]), torch.tensor([True]))
    assert torch.allclose(ensemble([a, b]).logits.softmax(-1), torch.tensor([[0.5, 0.5]]))


def test_inductive_split_holds_out_test_nodes(small_graph):
    sp = inductive_split(small_graph, 0.2, seed=1)
    assert int(sp.test_ind.sum()) == 24 and int(sp.test_tran.sum()) == 96
    assert not bool((sp.test_ind & ~small_graph.test_mask).any())
    held = sp.test_ind
    assert not bool((held[sp.observed_edge_index[0]] | held[sp.observed_edge_index[1]]).any())
    assert torch.equal(sp.observed, ~held)


def test_fastrp_and_graph_aided_extension(small_graph):
    emb = fastrp(small_graph.edge_index, 300, dim=8, seed=0)
    assert emb.shape == (300, 8) and torch.allclose(emb.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.equal(emb, fastrp(small_graph.edge_index, 300, dim=8, seed=0))
    new = torch.zeros(300, dtype=torch.bool)
    new[:5] = True
    ext = extend_to_new_nodes(emb, small_graph.edge_index, new)
    assert torch.equal(ext[5:], emb[5:]) and not torch.equal(ext[:5], torch.zeros(5, 8))


def test_sage_predict_equals_full_graph_forward(small_graph):
    torch.manual_seed(0)
    sage = build_model("sage", small_graph.num_features, 3, hidden_channels=8).eval()
    adj = to_adj_t(small_graph.edge_index, 300)
    nodes = torch.tensor([0, 7, 299, 7])
    out = sage_predict(list(sage.layers), small_graph.x, adj.crow_indices(), adj.col_indices(), nodes)
    assert torch.allclose(out, sage(small_graph.x, adj)[nodes], atol=1e-5)
    mlp = build_model("mlp", small_graph.num_features, 3, hidden_channels=8).eval()
    fast = FastMLP(mlp)
    assert torch.allclose(fast(small_graph.x[:10]), mlp(small_graph.x[:10]), atol=1e-5)
    assert torch.allclose(fast(small_graph.x, nodes), mlp(small_graph.x[nodes]), atol=1e-5)
    before = small_graph.x.clone()
    fast(small_graph.x)
    assert torch.equal(small_graph.x, before)  # the caller's features are never written to


def test_gather_neighbours_handmade_csr():
    crow, col = torch.tensor([0, 2, 2, 5]), torch.tensor([1, 2, 0, 1, 2])
    nbr, seg = gather_neighbours(crow, col, torch.tensor([2, 1, 0]))
    assert nbr.tolist() == [0, 1, 2, 1, 2] and seg.tolist() == [0, 0, 0, 2, 2]


def test_mlp_sparse_input_path_matches_dense():
    torch.manual_seed(0)
    x = (torch.rand(200, 50) < 0.05).float()
    mlp = build_model("mlp", 50, 4, hidden_channels=16, dropout=0.0)
    dense = mlp.layers[1](torch.relu(mlp.layers[0](x)))
    for mode in (True, False):
        mlp.train(mode)
        assert torch.allclose(mlp(x), dense, atol=1e-6)
    mlp(x).sum().backward()
    assert mlp.layers[0].weight.grad is not None and bool(mlp.layers[0].weight.grad.abs().sum() > 0)


# ---- bad inputs -------------------------------------------------------------------------------------------------

def test_knowledge_shape_errors(small_graph):
    wrong_classes = Knowledge(torch.randn(300, 4), torch.ones(300, dtype=torch.bool))
    with pytest.raises(DatasetError, match="teacher has 4 classes; the student/dataset has 3"):
        distill_mlp(small_graph, wrong_classes, epochs=2)
    wrong_nodes = Knowledge(torch.randn(299, 3), torch.ones(299, dtype=torch.bool))
    with pytest.raises(DatasetError, match=r"cover \(299, 3\); expected one row per graph node \(300\)"):
        distill_mlp(small_graph, wrong_nodes, epochs=2)
    know = Knowledge(torch.randn(300, 3), torch.ones(300, dtype=torch.bool))
    with pytest.raises(DatasetError, match="student in_channels=8; the data needs 16"):
        distill_mlp(small_graph, know, method="glnn", student=build_model("mlp", 8, 3), epochs=2)
    with pytest.raises(DatasetError, match=r"the data needs 80 \(features \+ position.dim\)"):
        distill_mlp(small_graph, know, method="gkd", student=build_model("mlp", 16, 3), epochs=2)


@pytest.mark.parametrize("kw, message", [
    ({"temperature": 0.0}, "distillation temperature=0.0; expected > 0"),
    ({"kd_lambda": 1.5}, r"kd_lambda=1.5; expected a value in \[0, 1\]"),
    ({"terms": "position,bogus"}, r"'bogus' is not a registered student term"),
    ({"method": "glnnn"}, "unknown distillation method 'glnnn'"),
    ({"method": "plain", "terms": "neighbour"}, "method 'plain' takes no distillation terms"),
])
def test_bad_options(kw, message):
    with pytest.raises(ConfigError, match=message):
        DistillOptions(**kw).validate()


@pytest.mark.parametrize("kw, message", [({"teachers": True}, "teachers=True has type bool; expected int"),
                                         ({"teacher_generations": 1.5}, "teacher_generations=1.5 has type float"),
                                         ({"term_args": {"position": {"dim": 0}}}, "position dim=0; expected an integer >= 1")])
def test_distill_config_counts_are_integers(kw, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**kw).validate()


def test_inductive_split_without_held_out_nodes(small_graph):
    with pytest.raises(DatasetError, match="holds out 0; expected at least one held-out and one observed test node"):
        inductive_split(small_graph, 0.001)
    with pytest.raises(ConfigError, match="fraction=1.0"):
        inductive_split(small_graph, 1.0)


def test_rsd_needs_teacher_hidden(small_graph):
    know = Knowledge(torch.randn(300, 3), torch.ones(300, dtype=torch.bool))
    with pytest.raises(ConfigError, match="needs the teacher's hidden layer"):
        distill_mlp(small_graph, know, DistillOptions(method="glnn", terms="rsd"), epochs=2)


def test_glnn_term_refuses_student_with_other_classes(small_graph):
    term = GLNN(torch.randn(300, 5), torch.ones(300, dtype=torch.bool))
    with pytest.raises(DatasetError, match="student has 3 classes; the teacher has 5"):
        Trainer(build_model("mlp", 16, 3), small_graph, epochs=1, terms=[term]).fit()


# ---- CLI ----------------------------------------------------------------------------------------------------------

def test_distill_cli_transductive_and_inductive(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["distill", *CSBM, "--runs", "2", "--epochs", "40", "--patience", "40", "--teacher-arg", "epochs=40",
            "--teachers", "1", "--teacher-generations", "1", "--quiet"]  # the settings' paths, not the teachers'
    assert main(args + ["--method", "glnn", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["method"] == "glnn" and r["setting"] == "transductive" and len(r["runs"]) == 2
    assert 0.0 <= r["test_mean"] <= 1.0 and "teacher_test_mean" in r
    out2 = tmp_path / "i.json"
    assert main(args + ["--setting", "inductive", "--terms", "position", "--method", "glnn", "--json",
                        str(out2)]) == 0
    r = json.loads(out2.read_text())
    assert r["setting"] == "inductive" and r["terms"] == ["position"]
    for key in ("test_tran_mean", "test_ind_mean", "test_mean", "teacher_test_ind_mean", "test_ind_graph_aided_mean"):
        assert 0.0 <= r[key] <= 1.0, key
    # production = count-weighted mix of the two parts
    run = r["runs"][0]
    assert abs(run["test"] - (0.8 * run["test_tran"] + 0.2 * run["test_ind"])) < 1e-6
    assert "inductive: student tran" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--temperature", "0"], "temperature=0.0; expected > 0"),
    (["--kd-lambda", "-0.1"], "kd_lambda=-0.1"),
    (["--setting", "production"], "setting='production'; expected one of transductive, inductive"),
    (["--inductive-fraction", "0"], "inductive_fraction=0.0"),
    (["--teacher", "transformer"], "unknown model 'transformer'"),
    (["--teacher-arg", "model=gat"], "teacher_args may not set"),
    (["--teacher-arg", "hiddn=3"], "teacher_args"),
    (["--teachers", "0"], "teachers=0"),
    (["--teacher-generations", "0"], "teacher_generations=0; expected an integer >= 1"),
    (["--teacher-arg", "generations=3"], "use the distill options of the same name"),
    (["--lr", "0"], "lr=0.0; expected > 0"),
])
def test_distill_bad_input_exit_2(args, message, capsys):
    assert main(["distill", *CSBM, "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err


def test_distill_and_book_are_deterministic(tmp_path):
    """Same command, same seed: identical accuracies in the JSON and bit-identical book arrays."""
    from gkd.book import open_book

    base = ["distill", *CSBM, "--runs", "1", "--epochs", "30", "--teacher-arg", "epochs=30", "--quiet",
            "--method", "glnn", "--terms", "neighbour,rsd,reliability"]
    results = []
    for i in range(2):
        assert main(base + ["--json", str(tmp_path / f"r{i}.json")]) == 0
        results.append(json.loads((tmp_path / f"r{i}.json").read_text())["runs"][0])
    strip = lambda r: {k: v for k, v in r.items() if "seconds" not in k}  # noqa: E731
    assert strip(results[0]) == strip(results[1])
    shas = []
    for i in range(2):
        assert main(["book", *CSBM, "--teacher-arg", "epochs=30", "--out", str(tmp_path / f"b{i}"), "--quiet"]) == 0
        shas.append({k: v["sha256"] for k, v in open_book(tmp_path / f"b{i}").manifest["arrays"].items()})
    assert shas[0] == shas[1]


def test_student_guard_keeps_the_plain_student_where_the_teacher_misleads(tmp_path):
    """csbm at homophily 0.2 with 5 classes (edges ignore the classes): a GCN teacher is far below an MLP, so the
    GLNN student it teaches is too. The guard also trains the student plainly and keeps it (better on validation);
    with --no-student-guard the distilled student is returned, the very one the guard compared."""
    base = ["distill", *CSBM, "--dataset-arg", "homophily=0.2", "--runs", "1", "--epochs", "60", "--patience", "60",
            "--teacher-arg", "epochs=60", "--teachers", "1", "--teacher-generations", "1", "--teacher-method",
            "plain", "--method", "glnn", "--quiet"]
    runs = []
    for extra in ([], ["--no-student-guard"]):
        assert main(base + extra + ["--json", str(tmp_path / "r.json")]) == 0
        runs.append(json.loads((tmp_path / "r.json").read_text())["runs"][0])
    guarded, unguarded = runs
    g = guarded["guard"]
    assert g["kept"] == "plain" and g["plain_val"] > g["distilled_val"] + 0.03
    assert guarded["val"] == g["plain_val"] and guarded["test"] > guarded["teacher_test"] + 0.1
    assert "guard" not in unguarded and unguarded["val"] == g["distilled_val"]


def test_guard_pick_keeps_the_earlier_candidate_on_a_tie():
    from gkd.pipeline.gnn2mlp import guard_pick

    assert guard_pick({"distilled": 0.8, "no terms": 0.8, "plain": 0.8}) == "distilled"
    assert guard_pick({"distilled": 0.7, "no terms": 0.8, "plain": 0.8}) == "no terms"
    assert guard_pick({"distilled": 0.7, "no terms": 0.75, "plain": 0.8}) == "plain"
    assert guard_pick({"distilled": 0.7, "plain": 0.7}) == "distilled"


def test_student_guard_weighs_the_terms_against_the_student_without_them(tmp_path):
    """With terms (gkd's default), the guard's candidates are the distilled student, the same distiller without its
    terms and the plain student; each is the very student that run alone gives (--method glnn / plain, no guard),
    and the one kept is the best on validation. benchmarks/gnn2mlp.py derives its gkd rows from exactly this."""
    base = ["distill", *CSBM, "--dataset-arg", "homophily=0.5", "--runs", "1", "--epochs", "40", "--patience", "40",
            "--teacher-arg", "epochs=40", "--teachers", "1", "--teacher-generations", "1", "--teacher-method",
            "plain", "--quiet", "--json", str(tmp_path / "r.json")]
    runs = {}
    for method, extra in (("gkd", []), ("glnn", ["--no-student-guard"]), ("plain", [])):
        assert main(base + ["--method", method] + extra) == 0
        runs[method] = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    g = runs["gkd"]["guard"]
    assert set(g) == {"kept", "distilled_val", "no_terms_val", "plain_val"}
    assert g["no_terms_val"] == runs["glnn"]["val"] and g["plain_val"] == runs["plain"]["val"]
    best = max(g["distilled_val"], g["no_terms_val"], g["plain_val"])
    assert runs["gkd"]["val"] == best and g[f"{g['kept'].replace(' ', '_')}_val"] == best
    assert "guard" not in runs["plain"]  # nothing to guard: the plain student is the plain student


def test_position_dropout_zeroes_whole_position_blocks_while_training_only():
    """position.drop: in training a share of the rows lose their position columns (all of them, as a new node's
    are zeros), the features never; evaluation passes the input through; the student returned is the MLP itself."""
    from gkd.nn.hidden import forward as model_forward
    from gkd.nn.position import PositionDropout

    torch.manual_seed(0)
    seen = []
    inner = build_model("mlp", 12, 3, hidden_channels=8)
    inner.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    wrap = PositionDropout(inner, 4, 0.5).train()
    x = torch.rand(400, 12) + 0.5
    logits, hidden = model_forward(wrap, x, None)  # the zoo model's own hidden layers come through the wrapper
    assert logits.shape == (400, 3) and len(hidden) == 1
    got = seen[-1]
    assert torch.equal(got[:, :8], x[:, :8])
    zeroed = (got[:, 8:] == 0).all(1)
    assert torch.equal(zeroed, (got[:, 8:] == 0).any(1)) and 0.4 < float(zeroed.float().mean()) < 0.6
    assert torch.equal(got[~zeroed, 8:], x[~zeroed, 8:])
    wrap.eval()
    wrap(x)
    assert seen[-1] is x


def test_position_drop_trains_a_plain_student_and_is_checked(small_graph, trained_teacher):
    know = teacher_knowledge(trained_teacher, small_graph.x, small_graph.edge_index, noise=0.0)
    opts = DistillOptions(method="gkd", term_args={"position": {"drop": 0.5}})
    student, res = distill_mlp(small_graph, know, opts, epochs=30, patience=30)
    assert type(student.model).__name__ == "MLP" and 0.0 <= res.val <= 1.0
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"expected a share of nodes in \[0, 1\)"):
            DistillOptions(method="gkd", term_args={"position": {"drop": bad}}).validate()
    with pytest.raises(ConfigError, match="student to answer without positions"):
        DistillConfig(student="sage", term_args={"position": {"drop": 0.5}}).validate()  # before any teacher trains


def test_benchmark_derives_the_guard_from_the_ablation_rows():
    """benchmarks/gnn2mlp.py makes its guarded rows from the ablation rows' runs: the best on validation, a tie
    keeping the distilled student; runs measured with the older plain-only guard give the same choice."""
    mod = load_benchmark("gnn2mlp")
    terms = {"seed": 0, "val": 0.70, "test": 0.71, "seconds": 3.0, "test_ind": 0.6, "test_ind_graph_aided": 0.65}
    glnn = {"seed": 0, "val": 0.72, "test": 0.69, "seconds": 2.0, "test_ind": 0.62}
    plain = {"seed": 0, "val": 0.72, "test": 0.80, "seconds": 1.0, "test_ind": 0.7}
    run = mod.guarded({"distilled": terms, "no terms": glnn, "plain": plain})
    assert run["guard"] == {"kept": "no terms", "distilled_val": 0.70, "no_terms_val": 0.72, "plain_val": 0.72}
    assert run["test"] == 0.69 and run["seconds"] == 3.0 and run["test_ind_graph_aided"] == 0.62
    # the same terms run measured under the plain-only guard (it kept plain): its distilled score still counts
    old = {**plain, "guard": {"kept": "plain", "distilled_val": 0.70, "plain_val": 0.72}}
    assert mod.guarded({"distilled": old, "no terms": glnn, "plain": plain})["test"] == 0.69
    better = {**plain, "val": 0.75}
    assert mod.guarded({"distilled": terms, "no terms": glnn, "plain": better})["guard"]["kept"] == "plain"


def test_teacher_cost_takes_a_costlier_setting_only_for_a_clear_validation_gain():
    """benchmarks/teacher_cost.py's rule: settings in order of cost, a costlier one replaces the choice only for a
    paired validation gain above twice its standard error (a larger but noisy gain is not enough)."""
    mod = load_benchmark("teacher_cost")

    def row(vals):
        return {"runs": [{"seed": s, "val": v} for s, v in enumerate(vals)]}

    cheap = [0.70, 0.72, 0.71, 0.69, 0.73, 0.70]
    noisy = [v + d for v, d in zip(cheap, (0.05, -0.04, 0.06, -0.03, 0.05, -0.02))]  # +1.2 points, s.e. 1.9
    clear = [v + d for v, d in zip(cheap, (0.010, 0.012, 0.011, 0.009, 0.010, 0.011))]  # +1.05, s.e. 0.04
    rows = {(1, 1): [row(cheap)], (1, 2): [row(noisy)], (3, 1): [row(clear)], (3, 2): [row(clear)]}
    choice, steps = mod.choose(rows)
    assert choice == (3, 1)  # 3 × 2 ties 3 × 1: no gain, so the cheaper stays
    assert [(c, a, t) for c, a, _, _, t in steps] == [((1, 2), (1, 1), False), ((3, 1), (1, 1), True),
                                                      ((3, 2), (3, 1), False)]
    assert steps[0][2] == pytest.approx(1.1667, abs=1e-3)
    rows[(3, 1)] = [row(cheap)]
    assert mod.choose(rows)[0] == (3, 2)  # against the cheapest again, 3 × 2's clear gain earns its cost


def test_teacher_cost_refuses_to_pool_rows_of_other_settings(tmp_path):
    """A subset re-run (--datasets) keeps the other datasets' rows only if they were trained with the same distill
    settings; a file recording other (or no) settings stops it before any teacher trains."""
    import json

    mod = load_benchmark("teacher_cost")
    old = {"runs": 10, "sweep_runs": 5, "quick": False, "rows": [{"dataset": "Cora"}]}
    (tmp_path / "teacher_cost.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit) as e:
        mod.main(["--datasets", "Texas", "--no-sweep", "--out", str(tmp_path)])
    assert e.value.code == 2
    other = {**old, "settings": {**mod.run_settings({}), "lr": 0.05}}
    (tmp_path / "teacher_cost.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit):
        mod.main(["--datasets", "Texas", "--no-sweep", "--out", str(tmp_path)])
    assert mod.run_settings({})["teacher_terms"]["terms"]  # the teachers' resolved terms are part of it


def test_student_guard_rules_and_decision():
    """benchmarks/student_guard.py: a k-s.e. rule keeps the simpler student unless the richer one wins clearly on
    half A; today's rule keeps the best (a tie: the richer); a rule replaces today's only for a clear half-B gain."""
    import torch

    mod = load_benchmark("student_guard")
    a = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0, 1, 1])
    b = torch.tensor([1, 0, 0, 1, 0, 1, 1, 0, 1, 0])
    m, se = mod.paired(a, b)
    assert m == pytest.approx(0.2) and se == pytest.approx(0.1333, abs=1e-3)

    def run(acc_a, pairs, acc_b):
        cands = {n: {"a": acc_a[n], "b": acc_b[n], "test": acc_b[n]} for n in acc_a}
        return {"candidates": cands, "pairs": pairs}

    x = run({"plain": 0.70, "no terms": 0.72, "distilled": 0.74},
            {"no terms - plain": (0.02, 0.015), "distilled - plain": (0.04, 0.03),
             "distilled - no terms": (0.02, 0.01)},
            {"plain": 0.75, "no terms": 0.70, "distilled": 0.71})
    assert mod.pick(x, "best") == "distilled"
    assert mod.pick(x, "1 s.e.") == "distilled"  # no terms: +2 > 1 s.e. (1.5); then gkd's terms: +2 > 1.0
    assert mod.pick(x, "2 s.e.") == "plain"  # +2 < 2 s.e. (3.0) against plain, and +4 < 6.0 against plain too
    # strict at the plain step only: gkd's terms (best of the two on half A) against plain, +4 vs 1 s.e. 3.0, 2 s.e. 6.0
    assert mod.pick(x, "plain 1 s.e.") == "distilled" and mod.pick(x, "plain 2 s.e.") == "plain"
    glnn = run({"plain": 0.70, "no terms": 0.76, "distilled": 0.74},
               {"no terms - plain": (0.06, 0.02), "distilled - plain": (0.04, 0.01),
                "distilled - no terms": (-0.02, 0.01)}, x["candidates"])
    assert mod.pick(glnn, "plain 2 s.e.") == "no terms"  # GLNN is the better rich student, +6 > 2 s.e. (4.0)
    tie = run({"plain": 0.70, "no terms": 0.70, "distilled": 0.70},
              {"no terms - plain": (0.0, 0.0), "distilled - plain": (0.0, 0.0), "distilled - no terms": (0.0, 0.0)},
              {"plain": 0.7, "no terms": 0.7, "distilled": 0.7})
    assert mod.pick(tie, "best") == "distilled" and mod.pick(tie, "1 s.e.") == "plain"
    assert mod.pick(tie, "plain 1 s.e.") == "plain"

    def kept(rule_b):  # runs where '1 s.e.' keeps plain, '2 s.e.' too, 'best' the distilled student
        return [{"dataset": "Cora", "homophily": None, "teacher": t,
                 "run": {"seed": s, "kept": {"best": "distilled", "1 s.e.": "plain", "2 s.e.": "plain"},
                         "candidates": {"plain": {"b": p}, "distilled": {"b": d}}}}
                for s, (p, d) in enumerate(rule_b) for t in ("gcn", "sage")]

    clear = kept([(0.80, 0.70), (0.81, 0.70), (0.79, 0.70), (0.80, 0.71)])
    choice, steps = mod.choose(clear, ["best", "1 s.e.", "2 s.e."])
    assert choice == "1 s.e." and [(c, a, t) for c, a, _, _, t in steps] == [("1 s.e.", "best", True),
                                                                             ("2 s.e.", "1 s.e.", False)]
    noisy = kept([(0.80, 0.70), (0.60, 0.72), (0.79, 0.70), (0.65, 0.71)])
    assert mod.choose(noisy, ["best", "1 s.e.", "2 s.e."])[0] == "best"
    assert len(mod.rule_points(clear, "1 s.e.", "best")) == 4  # a seed's two teachers make one pair


def test_student_guard_chooses_on_half_a_and_scores_half_b():
    """One seed of benchmarks/student_guard.py on Texas: the validation nodes split in two disjoint halves, the
    students' own validation score is their half-A accuracy (they early-stopped on A, never saw B's labels), and
    every rule keeps one of the three guard candidates."""
    mod = load_benchmark("student_guard")
    from gkd.datasets import load

    data = load("Texas", None, split=0)
    quick = {"epochs": 30, "patience": 30, "teacher_args": {"epochs": 30, "patience": 10}}
    row = mod.one(("Texas", {}, "gcn", 0, 1, quick))
    run = row["run"]
    assert run["nodes_a"] + run["nodes_b"] == int(data.val_mask.sum()) and abs(run["nodes_a"] - run["nodes_b"]) <= 1
    assert set(run["candidates"]) == {"distilled", "no terms", "plain"}
    assert set(run["pairs"]) == {"no terms - plain", "distilled - plain", "distilled - no terms"}
    assert set(run["kept"]) == set(mod.RULES) and set(run["kept"].values()) <= set(run["candidates"])
    assert run["kept"]["best"] == mod.pick(run, "best")
