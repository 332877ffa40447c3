"""Universal self-distillation on Cora (and a homophily sweep on synthetic-csbm).

    python benchmarks/self_distill.py [--runs 10] [--jobs 2] [--quick] [--only TEXT[,TEXT]]

For GCN, GAT and GraphSAGE: plain training, label smoothing, Tf-KD-reg, each self-distillation term alone, all terms,
and gkd's default terms; mean ± std of test accuracy at the best-validation epoch, gain over plain, and time per
epoch relative to plain (same run, same machine). The sweep checks that the default never hurts across homophily.
Writes benchmarks/results/self_distill.{json,md}.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common import load_results, md_table, parser, run_pool, save_json, save_markdown

TERMS = ("depth", "time", "neighbour", "normalised")


def variants() -> list[tuple[str, dict]]:
    from gkd.distill import SELF_DISTILL_TERMS

    out = [("plain", {"method": "plain"}), ("label smoothing", {"method": "label-smoothing"}),
           ("Tf-KD-reg", {"method": "tf-kd-reg"})]
    out += [(f"SD: {t}", {"method": "self-distill", "sd_terms": t}) for t in TERMS]
    out += [("SD: all terms", {"method": "self-distill", "sd_terms": ",".join(TERMS)}),
            (f"SD: default ({','.join(SELF_DISTILL_TERMS)})", {"method": "self-distill"})]
    return out


def one(task: tuple[str, str, dict, dict]) -> dict:
    from gkd.config import make_config
    from gkd.pipeline.train import run_training

    label, model, flags, extra = task
    cfg = make_config(flags={"model": model, **flags, **extra})
    r = run_training(cfg, progress=False)
    epochs = sum(x["epochs_run"] for x in r["runs"])
    return {"variant": label, "model": model, "dataset": r["dataset"], "dataset_args": cfg.dataset_args,
            "method": r["method"], "method_config": r["method_config"], "test_mean": r["test_mean"],
            "test_std": r["test_std"], "val_mean": r["val_mean"], "runs": r["runs"],
            "seconds_per_epoch": sum(x["seconds"] for x in r["runs"]) / epochs}


def epoch_times(models: list[str], dataset: str, epochs: int = 60) -> dict[str, dict[str, float]]:
    """Seconds per epoch of plain vs default self-distillation, measured back to back in this process (one thread,
    a fixed number of epochs, no early stop), so that the ratio is not blurred by parallel workers."""
    import time

    import torch

    from gkd.config import make_config
    from gkd.datasets import load
    from gkd.pipeline.train import build_method
    from gkd.nn import build_model, to_adj_t
    from gkd.train import Trainer, seed_everything

    torch.set_num_threads(1)
    data = load(dataset)
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes)
    out: dict[str, dict[str, float]] = {}
    for m in models:
        out[m] = {}
        for method in ("plain", "self-distill"):
            cfg = make_config(flags={"model": m, "method": method, "epochs": epochs, "patience": epochs,
                                     **({"term_args": {"neighbour": {"warmup": 0}}} if method == "self-distill" else {})})
            factory, _ = build_method(cfg)
            seed_everything(0)
            model = build_model(m, data.num_features, data.meta.num_classes, **cfg.model_kwargs())
            terms = factory(data, model) if factory else []
            start = time.perf_counter()
            Trainer(model, data, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=epochs, patience=epochs,
                    terms=terms).fit()
            out[m][method] = (time.perf_counter() - start) / epochs
    return out


def main(argv=None) -> int:
    from gkd.train import environment

    p = parser(__doc__, "2 runs, 60 epochs, GCN only, 2-point sweep (smoke test)", jobs=True)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--models", default="gcn,gat,sage")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sweep-runs", type=int, default=5)
    p.add_argument("--only", default=None, metavar="TEXT[,TEXT]",
                   help="re-run only the variants whose label contains one of these (e.g. 'neighbour,all terms'); "
                        "the other rows are kept from the existing JSON (same runs required)")
    p.add_argument("--timing-only", action="store_true",
                   help="re-measure only the epoch-time ratios and rewrite the report from the existing JSON")
    args = p.parse_args(argv)
    models = ["gcn"] if args.quick else args.models.split(",")
    out = Path(args.out)
    if args.timing_only:
        result = load_results(out, "self_distill")
        result["epoch_time"] = epoch_times(result["models"], result["dataset"])
        return report(result, out)
    runs = 2 if args.quick else args.runs
    extra = {"dataset": args.dataset, "runs": runs, **({"epochs": 60} if args.quick else {})}
    tasks = [(label, m, flags, extra) for m in models for label, flags in variants()]
    homs = (0.2, 0.8) if args.quick else (0.1, 0.3, 0.5, 0.7, 0.9)
    sweep_models = ["gcn"] if args.quick else ["gcn", "sage"]
    sweep = {"dataset": "synthetic-csbm", "runs": 2 if args.quick else args.sweep_runs,
             **({"epochs": 60} if args.quick else {})}
    tasks += [(label, m, flags, {**sweep, "dataset_args": {"homophily": h}})
              for h in homs for m in sweep_models for label, flags in variants() if label in ("plain",)
              or label.startswith("SD: default")]
    kept: list[dict] = []
    if args.only is not None:
        old = load_results(out, "self_distill")
        if (old["runs"], old["sweep_runs"], old["quick"]) != (runs, sweep["runs"], args.quick):
            p.error("--only needs an existing JSON with the same runs, sweep runs and --quick; re-run everything")
        parts = [x for x in args.only.split(",") if x.strip()]
        rerun = [t for t in tasks if any(x.strip() in t[0] for x in parts)]
        if not rerun:
            p.error(f"--only {args.only!r} matches no variant")
        key = {(t[0], t[1], t[3].get("dataset"), str(t[3].get("dataset_args", {}))) for t in rerun}
        kept = [r for r in old["rows"]
                if (r["variant"], r["model"], r["dataset"], str(r["dataset_args"])) not in key]
        tasks = rerun
    rows = kept + run_pool(one, tasks, args.jobs, "self_distill")

    def plain_of(r):
        return next(x for x in rows if x["variant"] == "plain" and x["model"] == r["model"]
                    and x["dataset"] == r["dataset"] and x["dataset_args"] == r["dataset_args"])

    for r in rows:
        base = plain_of(r)
        r["gain"] = r["test_mean"] - base["test_mean"]
        r["epoch_time_ratio"] = r["seconds_per_epoch"] / base["seconds_per_epoch"]
    result = {"benchmark": "self_distill", "quick": args.quick, "runs": runs, "dataset": args.dataset,
              "models": models, "sweep_models": sweep_models, "homophily": list(homs), "sweep_runs": sweep["runs"],
              "protocol": "test accuracy at the best-validation epoch; mean ± unbiased std over seeds 0..runs-1; "
                          f"{args.jobs} worker processes with one torch thread each",
              "rows": rows, "environment": environment(),
              "epoch_time": epoch_times(models, args.dataset, epochs=20 if args.quick else 60)}
    return report(result, out)


def report(result: dict, out: Path) -> int:
    from gkd.train import fmt

    save_json(out, "self_distill", result)
    rows, models, dataset = result["rows"], result["models"], result["dataset"]
    main_rows = [r for r in rows if r["dataset"] == dataset]
    table = []
    for label, _ in variants():
        cells = []
        for m in models:
            r = next(x for x in main_rows if x["variant"] == label and x["model"] == m)
            gain = "" if label == "plain" else f" ({r['gain'] * 100:+.2f})"
            cells.append(f"{fmt(r['test_mean'], r['test_std'])}{gain}")
        table.append([label, *cells])
    t = result["epoch_time"]
    table.append(["epoch time, default SD / plain", *(f"×{t[m]['self-distill'] / t[m]['plain']:.2f} "
                                                      f"({t[m]['plain'] * 1000:.0f} ms plain)" for m in models)])
    sweep = []
    for h in result["homophily"]:
        cells = []
        for m in result["sweep_models"]:
            sel = [x for x in rows if x["dataset"] == "synthetic-csbm" and x["dataset_args"].get("homophily") == h
                   and x["model"] == m]
            pl = next(x for x in sel if x["variant"] == "plain")
            sd = next(x for x in sel if x["variant"] != "plain")
            cells += [fmt(pl["test_mean"], pl["test_std"]), f"{fmt(sd['test_mean'], sd['test_std'])} "
                      f"({sd['gain'] * 100:+.2f})"]
        sweep.append([h, *cells])
    lines = [f"### Self-distillation on {dataset} (public split, {result['runs']} seeds)", "",
             *md_table(["variant", *(m.upper() if m != "sage" else "GraphSAGE" for m in models)], table),
             "", "Cells: test accuracy % (gain over plain). Epoch time: 60 epochs of each, back to back in one "
             "process, one thread, the neighbour term active throughout.", "",
             f"### Homophily sweep on synthetic-csbm (3,000 nodes, 5 classes, degree 10; {result['sweep_runs']} seeds)",
             "", *md_table(["homophily", *(f"{m} {kind}" for m in result["sweep_models"]
                                           for kind in ("plain", "SD default"))], sweep)]
    env = result["environment"]
    lines += ["", f"Measured on {env['cpu']}, torch {env['torch']}; accuracy runs in 2 processes × 1 thread.",
              "Regenerate: `python benchmarks/self_distill.py` (`--timing-only` re-measures the epoch times)."]
    return save_markdown(out, "self_distill", lines)


if __name__ == "__main__":
    sys.exit(main())
