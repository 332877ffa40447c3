"""Backbone baselines on Cora: GCN, GAT, GraphSAGE and MLP, 10 seeds each, default hyper-parameters.

    python benchmarks/baselines.py [--runs 10] [--dataset Cora] [--quick]

Writes benchmarks/results/baselines.{json,md}: test accuracy at the best-validation epoch, mean ± std over seeds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gkd.config import make_config
from gkd.io import atomic_write_text, write_json
from gkd.train import environment, fmt, run_experiment

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="3 runs, 100 epochs (smoke test)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    runs, epochs = (3, 100) if args.quick else (args.runs, None)
    rows = []
    for model in ("gcn", "gat", "sage", "mlp"):
        cfg = make_config(flags={"dataset": args.dataset, "model": model, "runs": runs, "epochs": epochs})
        res = run_experiment(cfg, progress=None)
        print(f"{model:5s} {fmt(res['test_mean'], res['test_std'])}", file=sys.stderr)
        rows.append({k: res[k] for k in ("model", "test_mean", "test_std", "val_mean", "val_std", "seconds",
                                         "runs", "config")})
    out = Path(args.out)
    result = {"benchmark": "baselines", "dataset": args.dataset, "split": res["split"], "quick": args.quick,
              "protocol": "test accuracy at the best-validation epoch; mean ± unbiased std over seeds 0..runs-1",
              "rows": rows, "environment": environment()}
    write_json(out / "baselines.json", result)
    lines = [f"### Backbone baselines on {args.dataset} ({res['split']}, {runs} seeds)", "",
             "| model | test acc (%) | val acc (%) | seconds / run |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model'].upper() if r['model'] != 'sage' else 'GraphSAGE'} | "
                     f"{fmt(r['test_mean'], r['test_std'])} | {fmt(r['val_mean'], r['val_std'])} | "
                     f"{r['seconds'] / len(r['runs']):.1f} |")
    env = result["environment"]
    lines += ["", f"Measured on {env['cpu']}, {env['torch_threads']} torch threads, torch {env['torch']}."]
    atomic_write_text(out / "baselines.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
