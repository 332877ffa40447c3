"""Inference latency for B unseen nodes: 2-layer GraphSAGE that fetches their 2-hop neighbourhood vs the MLP student.

    python benchmarks/inference_latency.py [--nodes 1000000] [--degree 20] [--repeats 100] [--threads 1,2] [--quick]

Both sides are the fast version of themselves (gkd.nn.serving): vectorised CSR gathers, layer 1 only for the nodes
layer 2 needs, ``inference_mode``; the MLP is a fused ``addmm`` chain that fetches its feature rows itself (gkd
distill's default 64-wide student, and a 256-wide one timed beside it). Timings
are medians over ``repeats`` random batches (the same batches for both), each side in its own block, one process,
the same torch thread count for both sides, once per count in ``--threads`` (1 thread is how a server with one worker
per core runs; with 2, small queries pay for waking the second thread). Also full-graph throughput
(nodes/s) and, when benchmarks/results/gnn2mlp.json exists, a plot of Cora accuracy vs latency.
Writes benchmarks/results/inference_latency.{json,md,png}.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

from gkd.datasets import csbm, load
from gkd.nn import FastMLP, build_model, sage_predict, to_adj_t
from gkd.train import environment

from common import (RESULTS, csbm_name, invocations, load_results, md_table, parser, pyplot, ran_as, save_json,
                    save_markdown, save_png)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def measure(name: str, data, batches: list[int], repeats: int, sage_hidden: int, mlp_hidden: int, threads: int,
            seed: int = 0, wide_hidden: int = 256):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    c = int(data.y.max()) + 1
    sage = build_model("sage", data.num_features, c, hidden_channels=sage_hidden).eval()
    base = build_model("mlp", data.num_features, c, hidden_channels=mlp_hidden).eval()
    mlp, bare = FastMLP(base), FastMLP(base, check_finite=False)  # bare: the cost of the NaN/inf check
    wide = FastMLP(build_model("mlp", data.num_features, c, hidden_channels=wide_hidden).eval())
    adj_t = to_adj_t(data.edge_index, data.num_nodes)
    crow, col = adj_t.crow_indices(), adj_t.col_indices()
    pool = data.test_mask.nonzero().view(-1)  # nodes that training never labels
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in batches:
        picks = [pool[torch.randint(pool.numel(), (b,), generator=g)] for _ in range(repeats + 3)]
        for i in range(3):  # warm-up: allocator, first-call dispatch
            sage_predict(list(sage.layers), data.x, crow, col, picks[i])
            mlp(data.x, picks[i])
            bare(data.x, picks[i])
            wide(data.x, picks[i])
        # each side timed in its own block, as a server runs only one of them: interleaving single calls made the
        # MLP pay for waking torch's worker threads after each SAGE call (0.37 vs 0.08 ms at B=10, measured)
        t_sage = []
        for i in range(3, repeats + 3):
            t = time.perf_counter()
            sage_predict(list(sage.layers), data.x, crow, col, picks[i])
            t_sage.append(time.perf_counter() - t)
        t_mlp, t_bare, t_wide = [], [], []
        for model, times in ((mlp, t_mlp), (bare, t_bare), (wide, t_wide)):
            for i in range(3, repeats + 3):  # the same nodes; fetching their feature rows is part of the query
                t = time.perf_counter()
                model(data.x, picks[i])
                times.append(time.perf_counter() - t)
        s, m, u, w = (statistics.median(x) * 1e3 for x in (t_sage, t_mlp, t_bare, t_wide))
        rows.append({"graph": name, "threads": threads, "batch": b, "sage_ms": s, "mlp_ms": m, "ratio": s / m,
                     "wide_ms": w, "wide_ratio": s / w, "mlp_unchecked_ms": u})
        print(f"{name:>12s}  {threads} thr  B={b:<5d} SAGE+fetch {s:9.3f} ms   MLP {m:7.3f} ms   {s / m:7.1f}x   "
              f"MLP-{wide_hidden} {w:7.3f} ms   {s / w:7.1f}x", file=sys.stderr)
    with torch.inference_mode():
        t = time.perf_counter()
        sage(data.x, adj_t)
        sage_full = time.perf_counter() - t
    t = time.perf_counter()
    for chunk in data.x.split(100_000):
        mlp(chunk)
    mlp_full = time.perf_counter() - t
    full = {"graph": name, "threads": threads, "nodes": data.num_nodes, "edges": int(data.edge_index.size(1)),
            "sage_nodes_per_s": data.num_nodes / sage_full, "mlp_nodes_per_s": data.num_nodes / mlp_full}
    return rows, full


def figure_points(gnn_rows: list[dict], lat: dict) -> dict[str, tuple[float, float]]:
    """(accuracy, ms) per point of the figure: gnn2mlp.json's transductive Cora rows under the SAGE teacher, timed by
    ``lat`` (this run's Cora row at B=1000). gnn2mlp.json holds every dataset, so the dataset is filtered here."""
    points = {}
    for r in gnn_rows:
        if r["dataset"] != "Cora" or r["setting"] != "transductive" or r["teacher"] != "sage":
            continue
        points.setdefault("SAGE teacher", (r["teacher_test_mean"], lat["sage_ms"]))
        if r["method"] == "gkd" or r["variant"] in ("plain MLP", "GLNN"):
            points[f"MLP: {r['method']}"] = (r["test_mean"], lat["mlp_ms"])
        elif r["variant"] == "GLNN, 256 wide" and "wide_ms" in lat:
            points["MLP: glnn, 256 wide"] = (r["test_mean"], lat["wide_ms"])
    return points


def plot(rows: list[dict], out: Path) -> dict | None:
    """Cora accuracy (from gnn2mlp.json) vs latency at B=1000 unseen nodes, like GLNN's Figure 1."""
    src = out if (out / "gnn2mlp.json").is_file() else RESULTS
    most = max(r["threads"] for r in rows)
    lat = {r["batch"]: r for r in rows if r["graph"] == "Cora" and r["threads"] == most}
    if not (src / "gnn2mlp.json").is_file() or 1000 not in lat:
        return None
    import matplotlib.ticker

    points = figure_points(load_results(src, "gnn2mlp")["rows"], lat[1000])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, (acc, ms) in points.items():
        ax.scatter(ms, acc * 100, s=30)
        ax.annotate(label, (ms, acc * 100), fontsize=7, xytext=(5, -9 if label == "MLP: glnn" else 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decade labels only: minor ones overlap
    ax.set_xlabel("ms to predict 1,000 unseen Cora nodes (log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Cora: accuracy vs inference latency")
    fig.tight_layout()
    save_png(fig, out / "inference_latency.png", dpi=120)
    return {k: {"accuracy": a, "ms": m} for k, (a, m) in points.items()}


def main(argv=None) -> int:
    p = parser(__doc__, "100k-node graph, 5 repeats")
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--degree", type=float, default=20.0)
    p.add_argument("--batches", default="1,10,100,1000")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--threads", default="1,2", help="torch thread counts; both sides use the same one per row "
                   "(1 = one serving worker per core)")
    p.add_argument("--sage-hidden", type=int, default=64, help="as the zoo's default GraphSAGE teacher")
    p.add_argument("--mlp-hidden", type=int, default=64, help="as gkd distill's default student")
    p.add_argument("--wide-hidden", type=int, default=256, help="a wider MLP student, timed beside it")
    p.add_argument("--root", default=None)
    p.add_argument("--plot-only", action="store_true", help="redraw the PNG from --out's JSON (after gnn2mlp.py)")
    args = p.parse_args(argv)
    if args.plot_only:
        out = Path(args.out)
        result = load_results(out, "inference_latency")
        result["accuracy_vs_latency"] = plot(result["rows"], out)
        save_json(out, "inference_latency", result)
        return 0
    start = time.perf_counter()
    nodes, repeats = (100_000, 5) if args.quick else (args.nodes, args.repeats)
    batches = [int(b) for b in args.batches.split(",")]
    rows, full = [], []
    t = time.perf_counter()
    big = csbm(num_nodes=nodes, avg_degree=args.degree, seed=0)
    gen_s = time.perf_counter() - t
    name = csbm_name(nodes)
    for graph, data in ((name, big), ("Cora", load("Cora", args.root))):
        for threads in (int(n) for n in args.threads.split(",")):
            r, f = measure(graph, data, batches, repeats, args.sage_hidden, args.mlp_hidden, threads,
                           wide_hidden=args.wide_hidden)
            rows += r
            full.append(f)
    del big
    out = Path(args.out)
    points = plot(rows, out)
    env = environment()
    result = {"benchmark": "inference_latency", "quick": args.quick, "rows": rows, "full_graph": full,
              "accuracy_vs_latency": points, "graph_seconds": gen_s,
              "protocol": f"median of {repeats} random batches of test nodes; SAGE {args.sage_hidden} hidden, 2 "
                          f"layers, 2-hop CSR fetch; MLP {args.mlp_hidden} hidden (and {args.wide_hidden}), 2 layers "
                          "(fused addmm under inference_mode, feature-row fetch included); each side timed in its own "
                          "block; same process, same torch thread count for both sides of a row; the check: the "
                          f"{args.mlp_hidden}-wide MLP's time less the same MLP's without its NaN/inf check of the "
                          "logits (FastMLP(check_finite=False)), timed beside it",
              "environment": env}
    result["invocations"] = invocations(None, False, ran_as("inference_latency.py", argv),
                                        (time.perf_counter() - start) / 60)
    save_json(out, "inference_latency", result)
    lines = [f"### Inference latency: B unseen nodes ({env['cpu']})", "",
             *md_table(["graph", "torch threads", "B", "SAGE + 2-hop fetch (ms)",
                        f"MLP student, {args.mlp_hidden} wide (ms)", "speed-up", f"MLP {args.wide_hidden} wide (ms)",
                        "speed-up", "of which the check (us)"],
                       [[r["graph"], r["threads"], f"{r['batch']:,}", f"{r['sage_ms']:.3f}", f"{r['mlp_ms']:.3f}",
                         f"{r['ratio']:.0f}x", f"{r['wide_ms']:.3f}", f"{r['wide_ratio']:.0f}x",
                         f"{(r['mlp_ms'] - r['mlp_unchecked_ms']) * 1e3:.1f}" if "mlp_unchecked_ms" in r else "—"]
                        for r in rows]),
             "", *md_table(["graph", "torch threads", "nodes", "edges", "SAGE full-graph (nodes/s)", "MLP (nodes/s)"],
                           [[f["graph"], f["threads"], f"{f['nodes']:,}", f"{f['edges']:,}",
                             f"{f['sage_nodes_per_s']:,.0f}", f"{f['mlp_nodes_per_s']:,.0f}"] for f in full])]
    lines += ["", f"Protocol: {result['protocol']}. Regenerate: `python benchmarks/inference_latency.py`."]
    if points:
        # repository-relative in benchmarks/results (report.py rebases it into the docs); beside the .md elsewhere
        at_results = out.resolve() == RESULTS.resolve()
        lines += ["", f"![accuracy vs latency]({'benchmarks/results/' if at_results else ''}inference_latency.png)"]
    return save_markdown(out, "inference_latency", lines)


if __name__ == "__main__":
    sys.exit(main())
