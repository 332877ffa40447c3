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
    from gkd.train import LossTerm

    class FullGraphOnly(LossTerm):
        name = "full_graph_only"

    with pytest.raises(ConfigError, match=r"loss terms \['full_graph_only'\] need full-batch steps"):
        Trainer(build_model("sage", 128, 5), graph, loader=[], terms=[FullGraphOnly()])
    with pytest.raises(ConfigError, match="refresh=0; expected an integer >= 1"):
        Trainer(build_model("sage", 128, 5), graph, loader=[], refresh=0)


def test_minibatch_self_distillation_terms_on_finite_and_gain_like_full_batch():
    """A homophilous csbm with few labels, GraphSAGE, 3 seeds: in mini-batches the self-distillation terms switch on
    (the neighbour term teaches, over every node), every logged value is finite, and the mean gain over plain
    mini-batch training is positive, as it is full-batch on the same graph and seeds."""
    import math

    from gkd.config import make_config
    from gkd.pipeline.train import build_method, train_run

    data = csbm(num_nodes=600, avg_degree=6.0, homophily=0.8, num_features=32, feature_noise=1.0, seed=0,
                train_per_class=4, num_val=100, num_test=300)
    data.meta = DatasetMeta(name="x", num_classes=5, split="s")
    base = {"model": "sage", "epochs": 200, "patience": 20, "hidden_channels": 16}
    gains = {}
    for mode, extra in (("full", {}), ("mini", {"batch_size": 128})):
        tests = {}
        for method in ("plain", "self-distill"):
            cfg = make_config(flags={**base, **extra, "method": method})
            tests[method] = []
            for seed in range(3):
                _, res = train_run(cfg, data, seed, terms_factory=build_method(cfg)[0])
                tests[method].append(res.test)
                assert all(math.isfinite(v) for row in res.history for v in row.values())
                if method == "self-distill":
                    assert res.stats["neighbour"]["taught_epochs"]["input"] > 0
                    assert any(row.get("neighbour", 0) > 0 for row in res.history)
                    assert res.stats["guard"]["kept"] in ("terms", "baseline")
        gains[mode] = sum(tests["self-distill"]) / 3 - sum(tests["plain"]) / 3
    assert gains["full"] > 0 and gains["mini"] > 0, gains


@pytest.mark.parametrize("batches", [{}, {"batch_size": 256}], ids=["full-batch", "mini-batch"])
def test_plain_phase_is_plain_training(graph, batches):
    """Until a late term starts, a self-distilled run is plain training step for step (mini-batch: the same
    training-node batches, the same draws): the guard's baseline is the plain run's best epoch, with its validation
    and test scores (benchmarks/ogb_scale.py reports the plain teacher from it)."""
    from gkd.config import make_config
    from gkd.pipeline.train import build_method, train_run

    base = {"model": "sage", "epochs": 60, "patience": 10, "hidden_channels": 16, **batches}
    _, plain = train_run(make_config(flags=base), graph, 0)
    cfg = make_config(flags={**base, "method": "self-distill"})
    _, sd = train_run(cfg, graph, 0, terms_factory=build_method(cfg)[0])
    guard = sd.stats["guard"]
    assert guard["baseline_epoch"] == plain.best_epoch
    assert guard["baseline_val"] == plain.val and guard["baseline_test"] == plain.test
    assert 0 < guard["seconds_before_terms"] < sd.seconds


def test_num_samples_draws_a_fresh_subset_each_epoch(graph):
    s = CSRNeighborSampler(graph, [3], batch_size=100, seed=0, num_samples=250)
    assert len(s) == 3
    epochs = [torch.cat([b.n_id[:b.batch_size] for b in s]) for _ in range(2)]
    for seeds in epochs:
        assert seeds.numel() == 250 and seeds.unique().numel() == 250  # without replacement
    assert not torch.equal(epochs[0].sort().values, epochs[1].sort().values)
    train = graph.train_mask.nonzero().view(-1)
    s = CSRNeighborSampler(graph, [3], batch_size=64, input_nodes=graph.train_mask, seed=0, num_samples=100)
    assert bool(torch.isin(torch.cat([b.n_id[:b.batch_size] for b in s]), train).all())
    # as many as there are: every node, as without num_samples
    assert len(CSRNeighborSampler(graph, [3], batch_size=100, num_samples=10 ** 6)) == 20
    with pytest.raises(ConfigError, match=r"num_samples=0; expected an integer >= 1 \(seed nodes per epoch\)"):
        CSRNeighborSampler(graph, [3], num_samples=0)


def test_node_batches_without_hops(graph):
    b = next(iter(neighbor_loader(graph, [], batch_size=50, seed=0)))
    assert b.batch_size == 50 and b.num_nodes == 50 and b.edge_index.shape == (2, 0)
    assert torch.equal(b.x, graph.x[b.n_id]) and torch.equal(b.y, graph.y[b.n_id])


def test_term_nodes_bound_the_all_node_epochs(graph):
    """--term-nodes: once the self-distillation terms are on, each epoch draws that many seed nodes (not all 2000)."""
    from gkd.config import make_config
    from gkd.pipeline.train import minibatches

    cfg = make_config(flags={"model": "sage", "batch_size": 100, "term_nodes": 300, "method": "self-distill"})
    loaders = minibatches(cfg, graph, True, 0)
    assert len(loaders["term_loader"]) == 3 and len(loaders["loader"]) == 5  # 500 training nodes


def test_student_node_minibatches_match_full_batch():
    """A graph-free student on node mini-batches (gkd's default terms: kd, neighbour, position) learns as well as
    full-batch: the terms teach every epoch and the test scores agree within 3 points."""
    from gkd.distill.knowledge import teacher_knowledge
    from gkd.pipeline.student import DistillOptions, distill_mlp
    from gkd.pipeline.train import train_run
    from gkd.config import make_config

    d = csbm(num_nodes=1500, avg_degree=8, seed=1, train_per_class=10, num_val=300, num_test=600)
    d.meta = DatasetMeta(name="x", num_classes=5, split="s")
    teacher, _ = train_run(make_config(flags={"model": "sage", "epochs": 100, "patience": 20}), d, 0)
    know = teacher_knowledge(teacher, d.x, d.adj_t, noise=0.0)
    out = {}
    for name, kw in (("full", {}), ("mini", {"batch_size": 256, "num_samples": 1000})):
        _, res = distill_mlp(d, know, DistillOptions(method="gkd"), epochs=200, patience=30, **kw)
        assert all(row["kd"] > 0 and row["neighbour"] > 0 for row in res.history[1:])
        out[name] = res.test
    assert abs(out["full"] - out["mini"]) < 0.03, out
    with pytest.raises(ConfigError, match="node mini-batches are for graph-free students"):
        distill_mlp(d, know, student="sage", batch_size=64)
    with pytest.raises(ConfigError, match="num_samples=10: read only with batch_size"):
        distill_mlp(d, know, num_samples=10)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "batch_size=0; expected an integer >= 1 (seed nodes per mini-batch)"),
    (["--batch-size", "-5"], "batch_size=-5; expected an integer >= 1"),
    (["--batch-size", "64", "--fanout", "10"], "fanout='10'; expected 2 positive integers (at most 2147483647), one"),
    (["--batch-size", "64", "--fanout", "10,0"], "positive integers (at most 2147483647), one per layer (num_layers=2)"),
    (["--batch-size", "64", "--fanout", "10,-1"], "one per layer (num_layers=2)"),
    (["--batch-size", "64", "--fanout", "10,10,10"], "one per layer (num_layers=2)"),
    (["--batch-size", "64", "--fanout", "ten,5"], "one per layer (num_layers=2)"),
    (["--batch-size", "64", "--refresh", "0"], "(epochs between full-graph refreshes)"),
    (["--fanout", "10,10"], "fanout='10,10': read only with batch_size"),
    (["--refresh", "5"], "refresh=5: read only with batch_size"),
    (["--term-nodes", "100"], "term_nodes=100: read only with batch_size"),
    (["--batch-size", "64", "--term-nodes", "100"], "term_nodes=100: read only when a term teaches unlabelled nodes"),
    (["--batch-size", "64", "--term-nodes", "100", "--method", "time"], "method 'time' has none"),
    (["--batch-size", "64", "--term-nodes", "0"],
     "term_nodes=0; expected an integer >= 1 (seed nodes drawn per epoch for the terms that teach unlabelled nodes)"),
    (["--term-arg", "neighbour.choose=any", "--self-distill"], "neighbour choose='any'; expected one of first, best"),
])
def test_cli_bad_minibatch_flags(args, message, capsys, monkeypatch):
    from gkd.cli import main
    from gkd.pipeline import train as train_pipeline

    monkeypatch.setattr(train_pipeline, "run_seeds", lambda *a, **k: pytest.fail("trained despite bad input"))
    assert main(["train", "--dataset", "synthetic-csbm", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gkd: error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("args, message", [
    (["--student-batch-size", "0"], "student_batch_size=0; expected an integer >= 1 (nodes per student mini-batch)"),
    (["--student-batch-size", "64", "--student", "sage"], "node mini-batches are for graph-free students"),
    (["--term-nodes", "500"], "term_nodes=500: read only with batch_size or student_batch_size"),
    (["--student-batch-size", "64", "--term-nodes", "-1"], "term_nodes=-1; expected an integer >= 1"),
    (["--student-batch-size", "64", "--student", "GraphSAGE"], "node mini-batches are for graph-free students"),
    (["--student-batch-size", "64", "--method", "bookkd"],
     "method bookkd need full-batch steps; expected method plain, glnn or gkd"),
    (["--student-batch-size", "64", "--terms", "rsd"], "student term(s) ['rsd'] need full-batch steps"),
    (["--student-batch-size", "64", "--method", "plain", "--term-nodes", "9"], "the student's method 'plain' has none"),
    (["--batch-size", "64", "--teacher-method", "plain", "--teacher-generations", "1", "--term-nodes", "9"],
     "read only when a term teaches"),
])
def test_cli_bad_student_minibatch_flags(args, message, capsys, monkeypatch):
    from gkd.cli import main
    from gkd.pipeline import gnn2mlp

    monkeypatch.setattr(gnn2mlp, "run_seeds", lambda *a, **k: pytest.fail("trained despite bad input"))
    assert main(["distill", "--dataset", "synthetic-csbm", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gkd: error: ") and err.count("\n") == 1 and message in err, err


def test_term_loader_needs_loader(graph):
    with pytest.raises(ConfigError, match="term_loader= needs loader="):
        Trainer(build_model("sage", 128, 5), graph, term_loader=[])


def test_two_process_ddp_teacher_matches_single_process(tmp_path):
    """torchrun, 2 CPU ranks (gloo): `gkd train --batch-size` trains one model with DDP, each rank on its share of
    the seed nodes, the self-distillation terms included (the neighbour term teaches and the guard decides on every
    seed); test accuracy matches the single-process run within 0.05 (other batches, other sampled neighbours)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from gkd.cli import main

    args = ["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1000", "--dataset-arg",
            "feature_noise=1.0", "--dataset-arg", "train_per_class=10", "--dataset-arg", "num_val=200",
            "--dataset-arg", "num_test=500", "--model", "sage", "--batch-size", "64", "--runs", "2", "--epochs",
            "300", "--patience", "20", "--self-distill", "--term-nodes", "256", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "gkd", *args, "--json", str(tmp_path / "ddp.json")], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert main([*args, "--json", str(tmp_path / "one.json")]) == 0
    ddp, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ddp", "one"))
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    for run in ddp["runs"]:
        assert run["stats"]["neighbour"]["taught_epochs"]["input"] > 0 and "guard" in run["stats"]
    assert abs(ddp["test_mean"] - one["test_mean"]) <= 0.05, (ddp["test_mean"], one["test_mean"])


def test_ddp_shares_are_equal_and_disjoint(graph):
    """World sizes that do not divide the seed nodes: every rank gets the same number of batches (no collective
    waits on a rank without one), the shares never overlap, and the nodes left over change from epoch to epoch."""
    ids = torch.arange(101)
    samplers = [CSRNeighborSampler(graph, [2], batch_size=10, input_nodes=ids, seed=3, rank=r, world_size=3)
                for r in range(3)]
    epochs = [[torch.cat([b.n_id[:b.batch_size] for b in s]) for s in samplers] for _ in range(2)]
    for shares in epochs:
        assert [s.numel() for s in shares] == [33, 33, 33]
        assert torch.cat(shares).unique().numel() == 99
    assert len({len(list(iter(s))) for s in samplers}) == 1 and len(samplers[0]) == 4
    left = [set(range(101)) - set(torch.cat(shares).tolist()) for shares in epochs]
    assert left[0] != left[1]
    with pytest.raises(ConfigError, match="world_size > 1 needs a seed"):
        CSRNeighborSampler(graph, [2], world_size=2, rank=0)
    with pytest.raises(ConfigError, match="expected 0 <= rank < world_size"):
        CSRNeighborSampler(graph, [2], seed=0, world_size=2, rank=2)


def test_ogb_scale_refuses_an_unknown_preset():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ogb_scale.py"
    proc = subprocess.run([sys.executable, str(script), "--presets", "arxiv,ogbn-nope"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "unknown preset(s) ['ogbn-nope']; expected some of arxiv, products" in proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DYING_ARGS = ["train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=2000", "--model", "sage",
              "--batch-size", "64", "--runs", "1", "--epochs", "50", "--quiet"]


@pytest.mark.parametrize("mode", ["exit", "stall"])
def test_a_rank_that_dies_or_stalls_mid_epoch_stops_its_peer_with_one_error(mode):
    """Two ranks started without torchrun's agent (as on two machines: nothing kills the survivor): rank 1 exits, or
    hangs, after 5 mini-batches. Rank 0 stops with exit 2 and one `gkd: error:` line naming itself, within
    GKD_DIST_TIMEOUT plus slack, instead of a backend traceback or waiting forever."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "GKD_DIST_TIMEOUT": "8", "DIE_RANK": "1", "DIE_AFTER": "5", "DIE_MODE": mode, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(root / "tests" / "dying_rank.py"), *DYING_ARGS]
    peer = subprocess.Popen(cmd, env={**env, "RANK": "1", "LOCAL_RANK": "1"}, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env={**env, "RANK": "0", "LOCAL_RANK": "0"}, cwd=root, capture_output=True,
                              text=True, timeout=120)
        waited = time.perf_counter() - start
    finally:
        peer.kill()
        peer.wait()
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("gkd: error: rank 0 of WORLD_SIZE=2 stopped: a peer rank exited or stalled"), lines
    assert waited < 60, waited


def test_torchrun_stops_the_job_when_a_rank_dies_mid_epoch():
    """Under torchrun (one machine) a rank exiting mid-epoch ends the whole job promptly with a non-zero status and
    torchrun's report naming the failed rank; the surviving rank does not hang."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DIE_RANK": "1", "DIE_AFTER": "5", "DIE_MODE": "exit", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(root / "tests" / "dying_rank.py"), *DYING_ARGS], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "rank      : 1" in proc.stderr or "rank: 1" in proc.stderr, proc.stderr[-2000:]
    assert time.perf_counter() - start < 60
