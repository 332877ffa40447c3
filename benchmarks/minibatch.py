"""Self-distillation on sampled mini-batches: full-batch vs mini-batch, plain vs self-distilled, 1 process vs 2 (DDP).

    python benchmarks/minibatch.py [--nodes 10000] [--runs 10] [--quick]

One synthetic-csbm graph (homophilous, noisy features, few labels: room for the neighbourhood to help), GraphSAGE.
Each variant is one ``gkd train`` command in a fresh process with one torch thread (``OMP_NUM_THREADS=1``): plain and
``--self-distill``, full-batch and ``--batch-size`` (fan-out 10,10), and the self-distilled mini-batch run again under
``torchrun --nproc_per_node=2`` (DDP, gloo, one thread per rank). Gains are paired over the same seeds; times are
wall-clock seconds of the whole command, measured back to back in one invocation on the machine named in the JSON.
Writes benchmarks/results/minibatch.{json,md}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import invocations, md_table, mean_se, parser, ran_as, save_json, save_markdown

ROOT = Path(__file__).resolve().parents[1]


def command(nodes: int, runs: int, epochs: int, mode: str, method: str) -> list[str]:
    graph = {"num_nodes": nodes, "avg_degree": 6.0, "homophily": 0.8, "num_features": 32, "feature_noise": 1.0,
             "train_per_class": 20, "num_val": nodes // 10, "num_test": nodes // 4}
    argv = ["train", "--dataset", "synthetic-csbm", "--model", "sage", "--runs", str(runs), "--epochs", str(epochs),
            "--patience", "20", "--quiet"]
    for k, v in graph.items():
        argv += ["--dataset-arg", f"{k}={v}"]
    if method == "self-distill":
        argv.append("--self-distill")
    if mode != "full-batch":
        argv += ["--batch-size", "512", "--fanout", "10,10"]
    return argv


def run(argv: list[str], ddp: bool) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if ddp \
            else [sys.executable]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        subprocess.run([*launcher, "-m", "gkd", *argv, "--json", str(out)], check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        return json.loads(out.read_text()), seconds


def paired(a: list[float], b: list[float]) -> tuple[float, float | None]:
    return mean_se([y - x for x, y in zip(a, b)])


def main(argv=None) -> int:
    p = parser(__doc__, "2,000 nodes, 2 runs, 100 epochs")
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--report-only", action="store_true", help="rewrite the Markdown from the existing JSON")
    args = p.parse_args(argv)
    if args.report_only:
        from common import load_results

        return save_markdown(Path(args.out), "minibatch", report(load_results(Path(args.out), "minibatch")))
    start = time.perf_counter()
    nodes, runs, epochs = (2000, 2, 100) if args.quick else (args.nodes, args.runs, 300)
    variants = [("full-batch", "plain", False), ("full-batch", "self-distill", False),
                ("mini-batch", "plain", False), ("mini-batch", "self-distill", False),
                ("mini-batch, 2 processes (DDP)", "self-distill", True)]
    rows = []
    for mode, method, ddp in variants:
        r, seconds = run(command(nodes, runs, epochs, mode, method), ddp)
        rows.append({"mode": mode, "method": method, "world_size": r.get("world_size", 1), "seconds": seconds,
                     "test": [x["test"] for x in r["runs"]], "val": [x["val"] for x in r["runs"]],
                     "test_mean": r["test_mean"], "test_std": r["test_std"], "val_mean": r["val_mean"],
                     "epochs_run": [x["epochs_run"] for x in r["runs"]],
                     "kept": [x.get("stats", {}).get("guard", {}).get("kept") for x in r["runs"]]})
        print(f"{mode:32s} {method:13s} test {100 * r['test_mean']:.2f}  {seconds:.0f}s", file=sys.stderr)
    plain = {row["mode"]: row for row in rows if row["method"] == "plain"}
    for row in rows:
        base = plain.get(row["mode"], plain["mini-batch"])
        row["gain"], row["gain_se"] = paired(base["test"], row["test"]) if row["method"] != "plain" else (0.0, 0.0)
    from gkd.train import environment

    result = {"benchmark": "minibatch", "quick": args.quick, "nodes": nodes, "runs": runs, "epochs": epochs,
              "rows": rows, "environment": environment(),
              "protocol": "test at the best-validation epoch, mean ± std over seeds 0..runs-1; gains paired over "
                          "the same seeds against plain training of the same mode (the DDP row: against one-process "
                          "plain mini-batch training); seconds: the whole gkd train command, one torch thread per "
                          "process, variants back to back"}
    result["invocations"] = invocations(None, False, ran_as("minibatch.py", argv), (time.perf_counter() - start) / 60)
    out = Path(args.out)
    save_json(out, "minibatch", result)
    return save_markdown(out, "minibatch", report(result))


def report(result: dict) -> list[str]:
    rows = result["rows"]
    one = next(r for r in rows if r["mode"] == "mini-batch" and r["method"] == "self-distill")
    table = []
    for r in rows:
        se = "" if r["gain_se"] is None or r["method"] == "plain" else f" ± {100 * r['gain_se']:.2f}"
        table.append([r["mode"], r["method"], f"{100 * r['test_mean']:.2f} ± {100 * (r['test_std'] or 0):.2f}",
                      "—" if r["method"] == "plain" else f"{100 * r['gain']:+.2f}{se}", f"{r['seconds']:.0f}",
                      "—" if r["method"] == "plain" else f"{sum(k == 'terms' for k in r['kept'])} of {len(r['kept'])}"])
    ddp = next((r for r in rows if r["world_size"] > 1), None)
    env = result["environment"]
    lines = [f"### Self-distillation on mini-batches (synthetic-csbm, {result['nodes']:,} nodes, GraphSAGE, "
             f"{result['runs']} seeds)", "",
             *md_table(["mode", "method", "test %", "paired gain", "seconds", "seeds where the guard kept the terms"],
                      table), "",
             f"Machine: {env.get('cpu', 'unknown CPU')}, one torch thread per process. "
             + (f"Two DDP processes vs one, self-distilled mini-batch run: {one['seconds'] / ddp['seconds']:.2f}× "
                "the speed (the same seeds; each rank samples half the seed nodes each epoch)." if ddp else "")]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
