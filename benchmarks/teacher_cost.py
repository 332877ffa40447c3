"""What gkd distill's teachers cost and what they buy: 1 or 3 teachers, 1 or 2 born-again generations each.

    python benchmarks/teacher_cost.py [--datasets Cora,...] [--runs 10] [--sweep-runs 5] [--jobs 2] [--quick]

``gkd distill`` used to train, per seed, 3 self-distilled teachers of 2 generations each (6 teacher trainings), a
choice made on Cora alone. Here gkd distill's default student (gkd's terms, guarded) learns from four teacher
settings, teachers × generations = 1×1, 1×2, 3×1, 3×2, from gkd distill's default teacher (GCN), transductive, on
the six real datasets (10 seeds / splits) and the synthetic homophily sweep. The settings share their seeded
teachers: "1 teacher" is the ensemble's first member; "1 generation" is the first generation of the same seeds,
trained on its own (``train_run`` is deterministic: each run records whether it matched the two-generation run's
first generation).

The rule (``RULE``, written before the full run and stored with the results): settings are taken in order of cost
(1×1, 1×2, 3×1, 3×2 teacher trainings: 1, 2, 3, 6); a costlier one replaces the current choice only if its student's
validation accuracy beats the choice's by more than twice the standard error of the paired difference, pooled over
every seed / split of the six datasets and of the sweep's graphs (each pair weighs the same: 60 real, 25 synthetic).
Test accuracy is shown, never used. Writes benchmarks/results/teacher_cost.{json,md}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import (choose_in_order, comma_list, invocations, invocations_line, load_results, md_table, mean_se,
                    merge_rows, paired_points, parser, ran_as, run_pool, save_json, save_markdown)

DATASETS = ("Cora", "CiteSeer", "Texas", "Wisconsin", "Cornell", "Actor")
SETTINGS = ((1, 1), (1, 2), (3, 1), (3, 2))  # (teachers, generations), in order of cost
HOMOPHILY = (0.1, 0.3, 0.5, 0.7, 0.9)
SWEEP = "synthetic-csbm"
RULE = ("settings in order of cost; a costlier one replaces the current choice only for a paired validation gain of "
        "more than twice its standard error, pooled over every seed / split of the datasets and the sweep")


def label(teachers: int, generations: int) -> str:
    plural = lambda n: "s" if n > 1 else ""  # noqa: E731
    return f"{teachers} teacher{plural(teachers)} × {generations} generation{plural(generations)}"


def one(task: tuple) -> list[dict]:
    """One seed / split of one dataset: both teacher stages, then the default student from each setting."""
    import dataclasses

    from gkd.datasets import load
    from gkd.pipeline import DistillConfig, student_stage, teacher_stage

    dataset, dataset_args, r, runs, extra = task
    data = load(dataset, None, split=r, **dataset_args)
    base = DistillConfig(dataset=dataset, dataset_args=dict(dataset_args), runs=runs, teacher="gcn", **extra)
    stages = {g: teacher_stage(dataclasses.replace(base, teachers=3, teacher_generations=g), data, r,
                               progress=False) for g in (1, 2)}
    same = all(a["val"] == b.get("generation_val", [None])[0]
               for a, b in zip(stages[1].teachers, stages[2].teachers))
    rows = []
    for k, g in SETTINGS:
        st = stages[g]
        if k == 1:
            st = st.first_teacher()  # what --teachers 1 gives the default student
        run = student_stage(base, data, st, r, progress=False)[1]
        run["teacher_seconds"] = round(stages[g].seconds * k / 3, 3)  # a third of the ensemble's per teacher
        run["same_first_generation"] = same
        rows.append({"dataset": data.meta.name if dataset != SWEEP else SWEEP, "dataset_args": dict(dataset_args),
                     "teachers": k, "generations": g, "setting": label(k, g), **run})
    return rows


def run_settings(extra: dict) -> dict:
    """What a row was trained with besides its dataset, seeds and teacher setting (gkd distill's options as resolved
    now): rows of another configuration are never pooled with these."""
    from gkd.pipeline import DistillConfig, build_method

    skip = ("dataset", "dataset_args", "root", "runs", "teachers", "teacher_generations", "generations")
    cfg = DistillConfig(teacher="gcn", **extra)
    tcfg = cfg.teacher_config()
    return {**{k: v for k, v in cfg.to_dict().items() if k not in skip},
            "teacher_config": {k: v for k, v in tcfg.to_dict().items() if k not in skip},
            "teacher_terms": build_method(tcfg)[1]}


def main(argv=None) -> int:
    from gkd.train import summarize

    p = parser(__doc__, "2 runs, 60 epochs, Cora and Texas, 2-point sweep of 2 seeds (smoke test)", jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma list (default {','.join(DATASETS)}); the other datasets' rows are kept from the "
                        "existing JSON")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sweep-runs", type=int, default=5)
    p.add_argument("--no-sweep", action="store_true", help="keep the homophily sweep's rows from the existing JSON")
    p.add_argument("--report-only", action="store_true", help="rebuild the Markdown from the existing JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        return report(load_results(out, "teacher_cost"), out)
    datasets = ["Cora", "Texas"] if args.quick else comma_list(args.datasets, fold_case=True)
    runs, sweep_runs = (2, 2) if args.quick else (args.runs, args.sweep_runs)
    homs = (0.3, 0.7) if args.quick else HOMOPHILY
    quick = {"epochs": 60, "patience": 60, "teacher_args": {"epochs": 60, "patience": 15}} if args.quick else {}
    tasks = [(ds, {}, r, runs, quick) for ds in datasets for r in range(runs)]
    if not args.no_sweep:
        tasks += [(SWEEP, {"homophily": h}, r, sweep_runs, quick) for h in homs for r in range(sweep_runs)]
    settings = run_settings(quick)
    old = load_results(out, "teacher_cost") if (out / "teacher_cost.json").is_file() else None
    same = old is not None and (old["runs"], old["sweep_runs"], old["quick"], old.get("settings")) == (
        runs, sweep_runs, args.quick, settings)
    again = {d.lower() for d in datasets} | (set() if args.no_sweep else {SWEEP})
    subset = args.no_sweep or {d.lower() for d in datasets} != {d.lower() for d in DATASETS}
    if old is not None and not same and subset:
        p.error(f"{out / 'teacher_cost.json'} was run with other --runs, --sweep-runs, --quick or distill settings "
                "(or records none): a subset would mix its rows with these; re-run everything, or pick another --out")
    start = time.perf_counter()
    per_task = run_pool(one, tasks, args.jobs, "teacher_cost")
    minutes = (time.perf_counter() - start) / 60
    groups: dict[tuple, list[dict]] = {}
    for rows in per_task:
        for x in rows:
            key = (x["dataset"], x["dataset_args"].get("homophily"), x["teachers"], x["generations"])
            groups.setdefault(key, []).append(x)
    fresh = []
    for (ds, h, k, g), rs in groups.items():
        runs_ = [{key: v for key, v in x.items() if key not in ("dataset", "dataset_args", "teachers", "generations",
                                                               "setting")} for x in rs]
        fresh.append({"dataset": ds, "homophily": h, "teachers": k, "generations": g, "setting": label(k, g),
                      **summarize(runs_), "runs": runs_})
    table, kept = merge_rows(old["rows"] if same else [], fresh,
                             lambda r: (r["dataset"], r["homophily"], r["teachers"], r["generations"]),
                             lambda r: r["dataset"].lower() in again)
    result = {"benchmark": "teacher_cost", "quick": args.quick, "runs": runs, "sweep_runs": sweep_runs,
              "datasets": [d for d in DATASETS if any(r["dataset"] == d for r in table)], "homophily": list(homs),
              "teacher": "gcn",
              "protocol": "gkd distill's default student (gkd terms, student guard on) from GCN teachers "
                          "(self-distilled), transductive; accuracy at the student's best-validation epoch; seeds "
                          "0..runs-1 or the 10 geom-gcn splits; settings paired by seed / split",
              "rule": RULE, "settings": settings, "rows": table,
              "invocations": invocations(old, kept > 0, ran_as("teacher_cost.py", argv), minutes,
                                         rows=len(fresh))}
    return report(result, out)


def pooled_points(rows: dict[tuple, list[dict]], setting: tuple, against: tuple, key: str = "val") -> list[float]:
    """``setting``'s rows minus ``against``'s, graph by graph and seed by seed, in points (``rows``: setting → its
    rows, in the same graph order for every setting)."""
    return [x for a, b in zip(rows[setting], rows[against]) for x in paired_points(a, b, key)]


def choose(rows: dict[tuple, list[dict]]) -> tuple[tuple[int, int], list[tuple]]:
    """The rule of the module docstring over ``rows`` (as :func:`pooled_points` takes them): ``(choice, steps)``,
    each step ``(candidate, against, mean, se, taken)``."""
    return choose_in_order(SETTINGS, lambda cand, choice: pooled_points(rows, cand, choice))


def report(result: dict, out: Path) -> int:
    from gkd.train import fmt

    save_json(out, "teacher_cost", result)
    rows = result["rows"]
    real_names = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    get = {(r["dataset"], r["homophily"], r["teachers"], r["generations"]): r for r in rows}
    cheap = SETTINGS[0]

    def ms(d: list[float]) -> str:
        m, se = mean_se(d) if d else (None, None)
        return "—" if se is None else f"{m:+.2f} ± {se:.2f}"

    per = []
    for ds in real_names:
        for k, g in SETTINGS:
            r = get.get((ds, None, k, g))
            if r is None:
                continue
            base = get[(ds, None, *cheap)]
            kept = [x["guard"]["kept"] for x in r["runs"] if "guard" in x]
            per.append([ds, label(k, g), fmt(r["teacher_test_mean"], r["teacher_test_std"]),
                        fmt(r["val_mean"], r["val_std"]), fmt(r["test_mean"], r["test_std"]),
                        "" if (k, g) == cheap else ms(paired_points(r, base)),
                        "" if (k, g) == cheap else ms(paired_points(r, base, "test")),
                        " / ".join(str(kept.count(name)) for name in ("distilled", "no terms", "plain")),
                        f"{sum(x['teacher_seconds'] for x in r['runs']) / len(r['runs']):.0f}"])
    # pooled pairs: only the graphs every setting has, in one order for all (a pair is one graph's seed / split)
    graphs = [g for g in dict.fromkeys((r["dataset"], r["homophily"]) for r in rows)
              if all((*g, *s) in get for s in SETTINGS)]
    graphs.sort(key=lambda g: (g[0] == SWEEP, DATASETS.index(g[0]) if g[0] in DATASETS else 0, g[1] or 0))
    real = {s: [get[(*g, *s)] for g in graphs if g[0] != SWEEP] for s in SETTINGS}
    sweep = {s: [get[(*g, *s)] for g in graphs if g[0] == SWEEP] for s in SETTINGS}
    both = {s: real[s] + sweep[s] for s in SETTINGS}
    choice, steps = choose(both) if graphs else (None, [])

    def pooled(s: tuple, against: tuple, key: str = "val", among=both) -> str:
        return ms(pooled_points(among, s, against, key))

    summary = [[label(*s), str(s[0] * s[1]), *("" if s == cheap else pooled(s, cheap, among=a)
                                               for a in (both, real, sweep)),
                "" if s == cheap else pooled(s, cheap, "test", real)] for s in SETTINGS]
    lines = [f"#### The default student from each teacher setting (GCN teachers, transductive; {result['runs']} "
             "seeds / splits)", "",
             *md_table(["dataset", "teachers × generations", "teacher test (first)", "student val", "student test",
                        f"val − {label(*cheap)}'s, paired", "(test, not used)",
                        "guard kept: distilled / no terms / plain", "teacher s / seed"], per),
             "", "#### Choosing the default: validation, paired against the cheapest, pooled", "",
             *md_table(["teachers × generations", "teacher trainings / seed",
                        f"val − {label(*cheap)}'s: six datasets and sweep", "six datasets", "sweep",
                        "(six datasets' test, not used)"], summary)]
    if steps:
        said = [f"{label(*c)} against {label(*a)}: {m:+.2f} ± {se:.2f} ({'taken' if t else 'not taken'})"
                for c, a, m, se, t in steps]
        lines += ["", f"Rule ({result.get('rule', RULE)}; here {len(real[cheap])} datasets and "
                  f"{len(sweep[cheap])} sweep graphs): " + "; ".join(said) + f". **Choice: {label(*choice)}.**"]
    if any(sweep.values()):
        cells = []
        for h in result["homophily"]:
            line = [f"{h:g}"]
            for s in SETTINGS:
                r = next((x for x in sweep[s] if x["homophily"] == h), None)
                line.append("—" if r is None else fmt(r["val_mean"], r["val_std"]) + (
                    "" if s == cheap else f" ({ms(paired_points(r, get[(SWEEP, h, *cheap)]))})"))
            cells.append(line)
        lines += ["", f"#### Homophily sweep (synthetic-csbm, 3,000 nodes; {result['sweep_runs']} seeds): student "
                  "validation, in brackets the paired difference to the cheapest", "",
                  *md_table(["homophily", *(label(*s) for s in SETTINGS)], cells)]
    same = [x["same_first_generation"] for r in rows if (r["teachers"], r["generations"]) == cheap
            for x in r["runs"]]  # one flag per seed / split (every setting of it carries the same)
    lines += ["", f"Cells: accuracy % (mean ± std); paired differences mean ± standard error over the same seeds / "
              f"splits. *guard kept*: in how many seeds the student guard kept the distilled student, the one "
              f"trained without gkd's terms, or the plain MLP (labels only). *teacher s / seed*: the teachers' "
              f"training time per seed (one teacher: a third of the ensemble's; timings share 2 cores with a second "
              f"worker). The one-"
              f"generation teachers' validation scores equal the two-generation runs' first generation's in "
              f"{sum(same)} of {len(same)} seeds / splits.",
              invocations_line(result) + " Regenerate: `python benchmarks/teacher_cost.py`."]
    return save_markdown(out, "teacher_cost", lines)


if __name__ == "__main__":
    sys.exit(main())
