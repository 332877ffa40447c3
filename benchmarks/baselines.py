"""Backbone baselines on Cora: GCN, GAT, GraphSAGE and MLP, 10 seeds each, default hyper-parameters.

    python benchmarks/baselines.py [--runs 10] [--dataset Cora] [--quick]

Writes benchmarks/results/baselines.{json,md}: test accuracy at the best-validation epoch, mean ± std over seeds.
"""
from __future__ import annotations

import sys

from gkd.pipeline import make_config, run_training
from gkd.train import environment, fmt

from common import md_table, parser, save_json, save_markdown


def main(argv=None) -> int:
    p = parser(__doc__, "3 runs, 100 epochs (smoke test)")
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args(argv)
    runs, epochs = (3, 100) if args.quick else (args.runs, None)
    rows = []
    for model in ("gcn", "gat", "sage", "mlp"):
        cfg = make_config(flags={"dataset": args.dataset, "model": model, "runs": runs, "epochs": epochs})
        res = run_training(cfg, progress=None)
        print(f"{model:5s} {fmt(res['test_mean'], res['test_std'])}", file=sys.stderr)
        rows.append({k: res[k] for k in ("model", "test_mean", "test_std", "val_mean", "val_std", "seconds",
                                         "runs", "config")})
    result = {"benchmark": "baselines", "dataset": args.dataset, "split": res["split"], "quick": args.quick,
              "protocol": "test accuracy at the best-validation epoch; mean ± unbiased std over seeds 0..runs-1",
              "rows": rows, "environment": environment()}
    save_json(args.out, "baselines", result)
    env = result["environment"]
    lines = [f"### Backbone baselines on {args.dataset} ({res['split']}, {runs} seeds)", "",
             *md_table(["model", "test acc (%)", "val acc (%)", "seconds / run"],
                       [[r["model"].upper() if r["model"] != "sage" else "GraphSAGE",
                         fmt(r["test_mean"], r["test_std"]), fmt(r["val_mean"], r["val_std"]),
                         f"{r['seconds'] / len(r['runs']):.1f}"] for r in rows]),
             "", f"Measured on {env['cpu']}, {env['torch_threads']} torch threads, torch {env['torch']}."]
    return save_markdown(args.out, "baselines", lines)


if __name__ == "__main__":
    sys.exit(main())
