"""The accuracy a served student has: answers from features alone (new nodes) beside the transductive score.

    python benchmarks/served_accuracy.py [--datasets Cora,...] [--runs 10] [--sweep-runs 5] [--jobs 2] [--quick]

``gkd distill``'s default student reads FastRP position features of the training graph's nodes; a node the graph
never held is answered from its features with zero positions (``student(x)``), the path a served model meets. Per
seed / split one self-distilled GCN teacher of one generation (the same for every row of that seed) teaches, without
the student guard: gkd's default terms (``neighbour,position``), the same with ``position.drop`` 0.3 and 0.5
(positions zeroed for that share of nodes at each training step, so the student also learns to answer without
them), and gkd without the position term. Every row is scored on validation and test twice, with stored positions
and features only. Transductive setting, the eight real datasets and the homophily sweep.

Rule for ``position.drop``'s default, registered before the run: the drops in order (0, 0.3, 0.5); one replaces the
current choice when its paired gain in features-only **validation** score, pooled over every seed / split, is more
than twice its standard error while its paired change in transductive validation score is not below minus twice its
standard error. Test scores are reported, never used to choose. Writes benchmarks/results/served_accuracy.{json,md}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import (choose_in_order, invocations, load_results, md_table, mean_se, parser, ran_as, run_pool, save_json,
                    save_markdown)

DATASETS = ("Cora", "CiteSeer", "Texas", "Wisconsin", "Cornell", "Actor", "cpf-cora", "cpf-citeseer")
HOMOPHILY = (0.1, 0.3, 0.5, 0.7, 0.9)
SWEEP = "synthetic-csbm"
DROPS = (0.0, 0.3, 0.5)
KEYS = ("val", "test", "val_features_only", "test_features_only")


def variants() -> list[tuple[str, str | None, dict]]:
    """``(label, terms, term_args)``; ``None`` terms: gkd's defaults."""
    from gkd.pipeline import DistillConfig

    no_position = ",".join(t for t in DistillConfig().options().active_terms if t != "position")
    return ([(f"gkd, drop={d:g}" if d else "gkd (default)", None, {"position": {"drop": d}} if d else {})
             for d in DROPS] + [("gkd without positions", no_position, {})])


def one(task: tuple) -> dict:
    from gkd.datasets import load
    from gkd.pipeline import DistillConfig, student_stage, teacher_stage

    dataset, dataset_args, r, quick = task
    data = load(dataset, split=r, **dataset_args)
    short = {"epochs": 60, "patience": 60, "teacher_args": {"epochs": 60, "patience": 15}} if quick else {}
    base = DistillConfig(dataset=dataset, dataset_args=dict(dataset_args), teacher="gcn", teachers=1,
                         teacher_generations=1, student_guard=False, **short)
    stage = teacher_stage(base, data, r, progress=False)
    out = {"dataset": data.meta.name if dataset != SWEEP else SWEEP, "dataset_args": dict(dataset_args), "run": r,
           "seed": base.seed + r, "teacher": {k: stage.scores[k] for k in ("val", "test") if k in stage.scores},
           "students": {}}
    for name, terms, term_args in variants():
        cfg = DistillConfig(**{**base.to_dict(), "terms": terms, "term_args": term_args})
        run = student_stage(cfg, data, stage, r, progress=False)[1]
        out["students"][name] = {k: run.get(k, run[k.replace("_features_only", "")]) for k in KEYS}
    return out


def points(seeds: list[dict], a: str, b: str, key: str) -> list[float]:
    return [100 * (s["students"][a][key] - s["students"][b][key]) for s in seeds]


def summarise(seeds: list[dict]) -> tuple[str, list, list[dict], dict]:
    """``(choice, steps, rows, pooled)`` from the per-seed records: the rule of the module docstring, one row per
    dataset and student, and the pooled paired differences to the default student."""
    from gkd.train import mean_std

    names = list(seeds[0]["students"])
    drop_names = names[:len(DROPS)]

    def served_rule(a: str, b: str) -> list[float]:
        m, se = mean_se(points(seeds, a, b, "val"))
        if se is not None and m < -2 * se:  # a drop that costs transductive validation is never taken
            return [0.0, 0.0]
        return points(seeds, a, b, "val_features_only")

    choice, steps = choose_in_order(drop_names, served_rule)
    rows = []
    groups: dict[tuple, list[dict]] = {}
    for s in seeds:
        groups.setdefault((s["dataset"], s["dataset_args"].get("homophily")), []).append(s)
    for (ds, h), got in groups.items():
        for name in names:
            row = {"dataset": ds, "homophily": h, "student": name}
            for k in KEYS:
                row[f"{k}_mean"], row[f"{k}_std"] = mean_std([s["students"][name][k] for s in got])
            row["served_test_vs_no_positions"] = mean_se([100 * (s["students"][name]["test_features_only"] - s[
                "students"]["gkd without positions"]["test"]) for s in got])
            rows.append(row)
    pooled = {f"{n}|{k}": mean_se(points(seeds, n, "gkd (default)", k)) for n in names
              for k in ("val", "val_features_only", "test_features_only")}
    return choice, steps, rows, pooled


def report(result: dict, out: Path) -> int:
    """benchmarks/results/served_accuracy.md from the JSON alone."""
    from gkd.train import fmt

    choice, steps, rows, pooled = summarise(result["seeds"])
    names = list(result["seeds"][0]["students"])
    table = []
    for row in rows:
        h = row["homophily"]
        g = row["served_test_vs_no_positions"]
        table.append([row["dataset"] if h is None else f"csbm h={h:g}", row["student"],
                      *(fmt(row[f"{k}_mean"], row[f"{k}_std"]) for k in KEYS),
                      "—" if row["student"] == "gkd without positions" else f"{g[0]:+.2f} ± {g[1] or 0:.2f}"])
    flags = "" if (result["runs"], result["sweep_runs"]) == (10, 5) else \
        f" --runs {result['runs']} --sweep-runs {result['sweep_runs']}"
    lines = [f"### Served accuracy: features only vs with stored positions ({result['runs']} seeds / splits; sweep "
             f"{result['sweep_runs']} seeds per homophily)", "",
             *md_table(["dataset", "student", "val", "test", "val, features only", "test, features only",
                        "served test − no-positions test (paired)"], table), "",
             "Pooled paired differences to the default student (points, mean ± s.e. over every seed / split):", "",
             *md_table(["student", "val", "val, features only", "test, features only"],
                       [[n, *(f"{pooled[f'{n}|{k}'][0]:+.2f} ± {pooled[f'{n}|{k}'][1] or 0:.2f}"
                              for k in ("val", "val_features_only", "test_features_only"))]
                        for n in names if n != "gkd (default)"]), "",
             "Rule (validation only, registered before the run): " + "; ".join(
                 f"{a} vs {b}: {m:+.2f} ± {se or 0:.2f} on features-only validation -> {'taken' if t else 'kept'}"
                 for a, b, m, se, t in steps) + f". Choice: **{choice}**.",
             f"Score: accuracy %. {result['protocol']}.",
             f"Measured on {result['environment']['cpu']}, torch {result['environment']['torch']}, "
             f"{result['minutes']:.0f} min. Regenerate: `python benchmarks/served_accuracy.py{flags}`."]
    return save_markdown(out, "served_accuracy", lines)


def main(argv=None) -> int:
    from gkd.train import environment

    p = parser(__doc__, "2 runs, 60 epochs, Cora and Texas, 2-point sweep of 2 seeds (smoke test)", jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sweep-runs", type=int, default=5)
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the stored JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        return report(load_results(out, "served_accuracy"), out)
    datasets = ["Cora", "Texas"] if args.quick else [d.strip() for d in args.datasets.split(",") if d.strip()]
    runs, sweep_runs = (2, 2) if args.quick else (args.runs, args.sweep_runs)
    homs = (0.3, 0.7) if args.quick else HOMOPHILY
    tasks = [(ds, {}, r, args.quick) for ds in datasets for r in range(runs)]
    tasks += [(SWEEP, {"homophily": h}, r, args.quick) for h in homs for r in range(sweep_runs)]
    start = time.perf_counter()
    seeds = run_pool(one, tasks, args.jobs, "served_accuracy")
    minutes = (time.perf_counter() - start) / 60
    choice, steps, rows, pooled = summarise(seeds)
    result = {"benchmark": "served_accuracy", "quick": args.quick, "runs": runs, "sweep_runs": sweep_runs,
              "datasets": datasets, "homophily": list(homs), "drops": list(DROPS), "rows": rows, "seeds": seeds,
              "choice": choice, "steps": [list(x) for x in steps], "pooled_vs_default": pooled,
              "minutes": round(minutes, 1),
              "protocol": "transductive; per seed / split one self-distilled GCN teacher (1 generation) teaches every "
                          "student; no student guard; scores at the student's best-validation epoch; features only "
                          "= student(x), zero positions, as new nodes are served", "environment": environment()}
    result["invocations"] = invocations(None, False, ran_as("served_accuracy.py", argv), minutes)
    save_json(out, "served_accuracy", result)
    return report(result, out)


if __name__ == "__main__":
    sys.exit(main())
