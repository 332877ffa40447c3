"""Adversarial metric distillation (BSS, AMKD) on digits (CNN students) and Cora (MLP students of a GCN teacher).

    python benchmarks/amkd.py [--runs 10] [--jobs 2] [--quick] [--datasets digits,cora]

digits: gkd.vision.digits' protocol (teacher CNN on every training label, student CNN (4,8,8) on 20% of them);
KD vs BSS (KD + KD on boundary samples) vs AMKD (BSS + triplet). Cora: the teachers of `gkd distill`
(an ensemble of 3 self-distilled GCNs; the attacks run against its first member, the teacher row reports that
member); glnn vs glnn+amkd, gkd vs gkd+amkd. One teacher stage per (dataset, seed) shared by every row; test at the
best-validation epoch, mean ± std over seeds. The overhead is each adversarial student's seconds per epoch over its
non-adversarial counterpart's (kd; glnn; gkd), same process, same seed, then averaged.
Writes benchmarks/results/amkd.{json,md}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import (bench_threads, invocations, load_results, md_table, parser, ran_as, run_pool, save_json,
                    save_markdown)

DIGITS = ("kd", "bss", "amkd")
CORA = ("glnn", "glnn+amkd", "gkd", "gkd+amkd")
BASE = {"bss": "kd", "amkd": "kd", "glnn+amkd": "glnn", "gkd+amkd": "gkd"}


def one(task: tuple) -> dict:
    dataset, seed, quick = task
    rows = {}
    if dataset == "digits":
        from gkd.vision import CNNDistillConfig, cnn_student_run, cnn_teacher_stage

        cfg = CNNDistillConfig(**({"epochs": 20, "patience": 20} if quick else {})).validate()
        split = cfg.split(seed)
        teacher = cnn_teacher_stage(split, cfg, seed, builder=False)
        for m in DIGITS:
            rows[m] = cnn_student_run(split, teacher, cfg, m, seed)
        return {"dataset": dataset, "seed": seed, "teacher_test": teacher.test, "rows": rows}
    from gkd.datasets import load
    from gkd.pipeline import DistillConfig, student_stage, teacher_stage

    data = load("Cora")
    quick_args = {"epochs": 60, "patience": 60, "teacher_args": {"epochs": 60, "patience": 60}} if quick else {}
    base = DistillConfig(seed=0, **quick_args).validate()
    stage = teacher_stage(base, data, seed, progress=False)
    for m in CORA:
        # the students as trained: the guard could swap an amkd student for GLNN or a plain MLP
        cfg = DistillConfig(**{**base.to_dict(), "method": m, "student_guard": False}).validate()
        rows[m] = student_stage(cfg, data, stage, seed, progress=False)[1]
    return {"dataset": dataset, "seed": seed, "teacher_test": stage.scores["test"], "rows": rows}


def main(argv=None) -> int:
    p = parser(__doc__, "2 seeds, few epochs", jobs=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--datasets", default="digits,cora",
                   help="re-run only these (the others' seeds are kept from the existing amkd.json)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    from gkd.pipeline import DistillConfig
    from gkd.train import environment, fmt, mean_std
    from gkd.vision import CNNDistillConfig

    runs = 2 if args.quick else args.runs
    chosen = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not chosen or set(chosen) - {"digits", "cora"}:
        p.error(f"--datasets {args.datasets!r}; expected some of digits,cora")
    kept: list = []
    old = None
    if set(chosen) != {"digits", "cora"}:
        old = load_results(args.out, "amkd")
        if old["runs"] != runs or old["quick"] != args.quick:
            p.error(f"the existing amkd.json has runs={old['runs']}, quick={old['quick']}; re-run every dataset")
        kept = [r for r in old["seeds"] if r["dataset"] not in chosen]
    tasks = [(d, s, args.quick) for d in chosen for s in range(runs)]
    results = kept + run_pool(one, tasks, args.jobs, "amkd")
    summary: dict = {}
    for dataset, methods in (("digits", DIGITS), ("cora", CORA)):
        got = [r for r in results if r["dataset"] == dataset]
        t_mean, t_std = mean_std([r["teacher_test"] for r in got])
        summary[dataset] = {"teacher": {"test_mean": t_mean, "test_std": t_std}}
        for m in methods:
            test_mean, test_std = mean_std([r["rows"][m]["test"] for r in got])
            val_mean, _ = mean_std([r["rows"][m]["val"] for r in got])
            row = {"test_mean": test_mean, "test_std": test_std, "val_mean": val_mean,
                   "seconds_per_epoch": mean_std([r["rows"][m]["seconds_per_epoch"] for r in got])[0]}
            if m in BASE:
                row["overhead"] = mean_std([r["rows"][m]["seconds_per_epoch"] / r["rows"][BASE[m]]["seconds_per_epoch"]
                                            for r in got])[0]
                stats = [r["rows"][m].get("stats", {}) for r in got]
                name = "bss" if m == "bss" else "amkd"
                row["skips"] = {k: sum(s.get(name, {}).get(k, 0) for s in stats)
                                for k in ("skipped_no_base", "skipped_no_negative")}
                att = sum(s.get(name, {}).get("attacked", 0) for s in stats)
                row["crossed_rate"] = sum(s.get(name, {}).get("crossed", 0) for s in stats) / max(att, 1)
            summary[dataset][m] = row
    env = environment()
    result = {"benchmark": "amkd", "quick": args.quick, "runs": runs, "summary": summary,
              "config": {"digits": CNNDistillConfig().to_dict(), "cora": DistillConfig().to_dict()},
              "seeds": results, "datasets_run_last": chosen, "environment": env}
    result["invocations"] = invocations(old, bool(kept), ran_as("amkd.py", argv), (time.perf_counter() - start) / 60)
    out = Path(args.out)
    save_json(out, "amkd", result)

    def cell(d: str, m: str) -> str:
        return fmt(summary[d][m]["test_mean"], summary[d][m]["test_std"])

    table = []
    for d, methods, teacher in (("digits", DIGITS, "teacher CNN"),
                                ("cora", CORA, "GCN teacher (self-distilled, first of 3)")):
        table.append([d, teacher, cell(d, "teacher"), "", "", "", ""])
        for m in methods:
            row = summary[d][m]
            if m in BASE:
                diff = (row["test_mean"] - summary[d][BASE[m]]["test_mean"]) * 100
                table.append([d, m, cell(d, m), f"{diff:+.2f} vs {BASE[m]}", f"{row['overhead']:.2f}x",
                              f"{row['crossed_rate'] * 100:.0f}%",
                              f"{row['skips']['skipped_no_base']} / {row['skips']['skipped_no_negative']}"])
            else:
                table.append([d, m, cell(d, m), "", "1.00x", "", ""])
    lines = [f"### Adversarial metric distillation ({runs} seeds; {env['cpu']}, {bench_threads()} thread per seed)",
             "", *md_table(["dataset", "student", "test acc", "vs its base", "overhead (s/epoch ratio)",
                            "attacks that crossed", "skipped steps (no base / no negative)"], table)]

    def beats(d: str, m: str) -> str:
        a, b = summary[d][m], summary[d][BASE[m]]
        gain, std = a["test_mean"] - b["test_mean"], max(a["test_std"] or 0, b["test_std"] or 0)
        return f"{'met' if gain > std else 'not met'} ({gain * 100:+.2f}, one std {std * 100:.2f})"

    worst = max(summary[d][m]["overhead"] for d, ms in (("digits", DIGITS), ("cora", CORA)) for m in ms if m in BASE)
    lines += ["", f"Targets: AMKD above KD on digits by more than one std: **{beats('digits', 'amkd')}**; "
              f"glnn+amkd above glnn on Cora by more than one std: **{beats('cora', 'glnn+amkd')}**; "
              f"overhead ≤ 2x: **{'met' if worst <= 2.0 else 'not met'}** (worst {worst:.2f}x). "
              "Regenerate: `python benchmarks/amkd.py`."]
    return save_markdown(out, "amkd", lines)


if __name__ == "__main__":
    sys.exit(main())
