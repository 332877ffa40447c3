"""How well can features alone answer unseen nodes? An MLP trained on the true labels of every observed node.

    python benchmarks/feature_ceiling.py [--datasets Cora,CiteSeer] [--runs 10] [--jobs 2] [--quick]

gkd distill's inductive setting (GLNN's production setting) holds 20% of the test nodes out of everything training
sees; a graph-free student answers them from their features alone. This script measures what a graph-free MLP of the
student's size reaches on those unseen nodes when it is given far more than any distilled student gets: the *true*
label of every observed node except the validation nodes (the labelled training nodes, the observed test nodes and
every unlabelled node), selected on validation as usual. It is not a method (it reads test labels of observed nodes),
it is a reference: a student taught by a teacher that is right less often should not be expected above it. Same
held-out nodes as benchmarks/gnn2mlp.py (``inductive_split`` with the run's seed). Writes
benchmarks/results/feature_ceiling.{json,md}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import invocations, md_table, parser, ran_as, run_pool, save_json, save_markdown

DATASETS = ("Cora", "CiteSeer")


def one(task: tuple) -> dict:
    import copy

    from gkd.datasets import inductive_split, load
    from gkd.nn import build_model
    from gkd.pipeline import DistillConfig
    from gkd.train import Trainer, seed_everything

    dataset, r, quick = task
    cfg = DistillConfig()  # the student's size and training: gkd distill's defaults
    data = load(dataset, split=r)
    seed = cfg.seed + r
    sp = inductive_split(data, cfg.inductive_fraction, seed)
    d = copy.copy(data)
    d.edge_index, d.adj_t = sp.observed_edge_index, None
    d.train_mask = sp.observed & ~data.val_mask
    d.test_mask = sp.test_ind
    out = {"dataset": data.meta.name, "run": r, "seed": seed, "labelled": int(d.train_mask.sum()),
           "unseen": int(sp.test_ind.sum())}
    for name, train_mask in (("every observed node", d.train_mask), ("training labels only", data.train_mask)):
        seed_everything(seed)
        dd = copy.copy(d)
        dd.train_mask = train_mask
        model = build_model(cfg.student, data.num_features, data.meta.num_classes, hidden_channels=cfg.hidden_channels,
                            num_layers=cfg.num_layers, dropout=cfg.dropout)
        epochs = 60 if quick else cfg.epochs
        res = Trainer(model, dd, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=epochs, patience=cfg.patience,
                      progress=False).fit()
        out[name] = {"val": res.val, "test_ind": res.test, "best_epoch": res.best_epoch}
    return out


def main(argv=None) -> int:
    from gkd.train import environment, fmt, mean_std

    p = parser(__doc__, "2 runs, 60 epochs, Cora only (smoke test)", jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args(argv)
    start = time.perf_counter()
    datasets = ["Cora"] if args.quick else [d.strip() for d in args.datasets.split(",") if d.strip()]
    runs = 2 if args.quick else args.runs
    seeds = run_pool(one, [(ds, r, args.quick) for ds in datasets for r in range(runs)], args.jobs, "ceiling")
    rows = []
    for ds in datasets:
        got = [s for s in seeds if s["dataset"].lower() == ds.lower()]
        row = {"dataset": got[0]["dataset"], "labelled_mean": mean_std([s["labelled"] for s in got])[0],
               "unseen_mean": mean_std([s["unseen"] for s in got])[0]}
        for name in ("every observed node", "training labels only"):
            for k in ("val", "test_ind"):
                row[f"{name}: {k}_mean"], row[f"{name}: {k}_std"] = mean_std([s[name][k] for s in got])
        rows.append(row)
    result = {"benchmark": "feature_ceiling", "quick": args.quick, "runs": runs, "rows": rows, "seeds": seeds,
              "protocol": "graph-free MLP (gkd distill's student: 64 wide, 2 layers, its training settings) on true "
                          "labels; test = the unseen 20% of test nodes of gkd's inductive split (same seed); "
                          "selected at the best-validation epoch; mean ± std over seeds 0..runs-1",
              "environment": environment()}
    result["invocations"] = invocations(None, False, ran_as("feature_ceiling.py", argv),
                                        (time.perf_counter() - start) / 60)
    out = Path(args.out)
    save_json(out, "feature_ceiling", result)
    table = [[r["dataset"], f"{r['labelled_mean']:.0f}",
              fmt(r["every observed node: test_ind_mean"], r["every observed node: test_ind_std"]),
              fmt(r["training labels only: test_ind_mean"], r["training labels only: test_ind_std"])] for r in rows]
    lines = [f"### Features alone on unseen nodes: an MLP on true labels ({runs} seeds)", "",
             *md_table(["dataset", "labelled observed nodes", "MLP on every observed node's label: unseen",
                        "MLP on the training labels only: unseen"], table), "",
             "Accuracy % on the 20% of test nodes held out (gkd distill's inductive split, same seeds), the MLP "
             "selected at its best-validation epoch. Labelling every observed node uses test labels: a reference for "
             "what features alone can reach on new nodes, not a method.",
             f"Measured on {result['environment']['cpu']}, torch {result['environment']['torch']}. "
             "Regenerate: `python benchmarks/feature_ceiling.py`."]
    return save_markdown(out, "feature_ceiling", lines)


if __name__ == "__main__":
    sys.exit(main())
