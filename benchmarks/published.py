"""gkd against the published GNN-to-MLP tables, on their protocol: CPF Cora and CiteSeer, GraphSAGE teachers.

    python benchmarks/published.py [--datasets cpf-cora,cpf-citeseer] [--runs 10] [--jobs 2] [--quick] [--cache DIR]

The protocol of GLNN (ICLR 2022), followed by NOSMOG (ICLR 2023) and VQGraph (ICLR 2024): the CPF files made
unweighted, undirected, without self-loops and cut to their largest connected component; for seed s a split of 20
training and 30 validation nodes per class drawn with ``numpy.random.RandomState(s)``, the rest for test
(``gkd.datasets``' ``cpf-cora`` / ``cpf-citeseer``, GLNN's draws); test at the best-validation epoch, mean ± std
over 10 seeds. Production: 20% of the test nodes held out, unseen by teachers and students in training
(``setting=inductive``, GLNN's ``split_rate=0.2``), scored on observed, unseen and their mix.

Every row is one call of gkd's public pipeline (``run_training`` / ``run_distillation``, what ``gkd train`` /
``gkd distill`` run) with gkd's defaults unless the row says otherwise: plain MLP; plain GraphSAGE; self-distilled
GraphSAGE; GLNN (``method=glnn`` from one plain GraphSAGE teacher, no student guard, as the paper distils); gkd's
default student (``gkd distill --teacher sage``: 3 self-distilled teachers x 2 generations, the student guard); and,
to compare like with like, plain GraphSAGE and GLNN with the papers' own settings (GLNN's ``train.conf.yaml``).
Paired differences to plain GraphSAGE are over the same seeds. Writes benchmarks/results/published.{json,md}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import (bench_threads, invocations, md_table, paired_points, paired_text, parser, ran_as, run_pool,
                    save_json, save_markdown, stat)

DATASETS = ("cpf-cora", "cpf-citeseer")
# Published figures, GraphSAGE teacher (VQGraph's Table 1 re-runs all four, transductive; production: GLNN's
# repository, teacher -> GLNN on the mix and the unseen nodes)
PUBLISHED = {"cpf-cora": {"SAGE": 80.64, "GLNN": 80.26, "NOSMOG": 83.04, "VQGraph": 83.93},
             "cpf-citeseer": {"SAGE": 70.49, "GLNN": 71.22, "NOSMOG": 73.78, "VQGraph": 76.08}}
PRODUCTION = {"cpf-cora": {"SAGE mix": 79.29, "GLNN mix": 78.28, "SAGE unseen": 81.33, "GLNN unseen": 73.82},
              "cpf-citeseer": {"SAGE mix": 68.38, "GLNN mix": 69.27, "SAGE unseen": 69.75, "GLNN unseen": 69.25}}
SOURCES = ("VQGraph (Yang et al., ICLR 2024) Table 1 for SAGE, GLNN, NOSMOG, VQGraph (transductive); GLNN (Zhang et "
           "al., ICLR 2022) production setting, teacher -> GLNN, as its repository reports them")
ROWS = ("MLP", "SAGE", "SAGE, self-distilled", "GLNN", "gkd (default)", "SAGE, papers' settings",
        "GLNN, papers' settings")
PRODUCTION_ROWS = ("GLNN", "gkd (default)", "GLNN, papers' settings")
# GLNN's train.conf.yaml (followed by NOSMOG and VQGraph): SAGE 2 x 128, no dropout, fan-out 5,5 (batches of 4096
# seed nodes); MLP students 128 wide with their per-dataset dropout and weight decay
PAPERS_SAGE = {"hidden_channels": 128, "dropout": 0.0, "lr": 0.01, "weight_decay": 5e-4}
PAPERS_MLP = {"cpf-cora": {"hidden_channels": 128, "dropout": 0.6, "weight_decay": 0.005},
              "cpf-citeseer": {"hidden_channels": 128, "dropout": 0.1, "weight_decay": 0.001}}
PAPERS_SAMPLING = {"batch_size": 4096, "fanout": "5,5"}


def one(task: tuple) -> dict:
    """One row of one dataset and setting: ``runs`` seeds through gkd's public pipeline; with a ``cache`` folder a
    finished row is kept there as JSON and reused, so that an interrupted hour-long run resumes."""
    from gkd.io import read_json

    dataset, setting, row, runs, quick, cache = task
    key = f"{dataset}-{setting}-{row}-{runs}-{int(quick)}".replace(" ", "_").replace(",", "")
    if cache and (Path(cache) / f"{key}.json").exists():
        return read_json(Path(cache) / f"{key}.json", "a cached row", limit=1 << 26)
    got = _row(dataset, setting, row, runs, quick)
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
        save_json(cache, key, got)  # strict and atomic, as every results file
    return got


def _row(dataset: str, setting: str, row: str, runs: int, quick: bool) -> dict:
    from gkd.pipeline import DistillConfig, TrainConfig, run_distillation, run_training

    short = {"epochs": 60, "patience": 60} if quick else {}
    teacher_short = {"teacher_args": {"epochs": 60, "patience": 15}} if quick else {}
    if row == "SAGE, papers' settings":
        cfg = TrainConfig(dataset=dataset, runs=runs, model="sage", **PAPERS_SAGE, **PAPERS_SAMPLING, **short)
        res = run_training(cfg, progress=False)
    elif row == "GLNN, papers' settings":
        teacher_args = {**PAPERS_SAGE, **teacher_short.get("teacher_args", {})}
        cfg = DistillConfig(dataset=dataset, runs=runs, setting=setting, teacher="sage", teacher_method="plain",
                            teachers=1, teacher_generations=1, method="glnn", student_guard=False,
                            teacher_args=teacher_args, **PAPERS_SAMPLING, **PAPERS_MLP[dataset], **short)
        res = run_distillation(cfg, progress=False)
    elif row in ("MLP", "SAGE", "SAGE, self-distilled"):
        cfg = TrainConfig(dataset=dataset, runs=runs, model="mlp" if row == "MLP" else "sage",
                          method="self-distill" if row.endswith("self-distilled") else "plain", **short)
        res = run_training(cfg, progress=False)
    elif row == "GLNN":
        cfg = DistillConfig(dataset=dataset, runs=runs, setting=setting, teacher="sage", teacher_method="plain",
                            teachers=1, teacher_generations=1, method="glnn", student_guard=False, **short,
                            **teacher_short)
        res = run_distillation(cfg, progress=False)
    else:
        cfg = DistillConfig(dataset=dataset, runs=runs, setting=setting, teacher="sage", **short, **teacher_short)
        res = run_distillation(cfg, progress=False)
    keep = ("seed", "val", "test", "test_tran", "test_ind", "teacher_test", "teacher_test_tran", "teacher_test_ind",
            "test_features_only", "guard")
    return {"dataset": dataset, "setting": setting, "row": row, "seconds": res["seconds"],
            "runs": [{k: r[k] for k in keep if k in r} for r in res["runs"]], "split": res["split"],
            "edges": res["edges"], "metric": res["metric"]}


def main(argv=None) -> int:
    from gkd.train import environment

    p = parser(__doc__, "2 runs, 60 epochs (smoke test)", jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--cache", default=None, help="folder that keeps finished rows, so that a rerun resumes; rows are "
                   "reused as they are (keyed by dataset, setting, row, seeds): use a new folder after changing gkd")
    args = p.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    runs = 2 if args.quick else args.runs
    tasks = [(ds, "transductive", row, runs, args.quick, args.cache) for ds in datasets for row in ROWS]
    tasks += [(ds, "inductive", row, runs, args.quick, args.cache) for ds in datasets for row in PRODUCTION_ROWS]
    tasks.sort(key=lambda t: t[2] != "gkd (default)")  # the longest first, so the two workers end together
    start = time.perf_counter()
    done = run_pool(one, tasks, args.jobs, "published")
    minutes = (time.perf_counter() - start) / 60
    row_minutes = sum(d["seconds"] for d in done) / 60  # each row's own run, cached rows included
    by = {(d["dataset"], d["setting"], d["row"]): d for d in done}
    table, production, rows = [], [], []

    def paired(a: list[dict], b: list[dict], key: str, b_key: str = "test") -> str:
        return paired_text(paired_points({"runs": a}, {"runs": b}, key, b_key))

    for ds in datasets:
        sage = by[(ds, "transductive", "SAGE")]["runs"]
        for row in ROWS:
            got = by[(ds, "transductive", row)]
            r = got["runs"]
            rows.append({"dataset": ds, "setting": "transductive", "row": row, "test": stat(r, "test"),
                         "val": stat(r, "val")})
            teacher = stat(r, "teacher_test") if "teacher_test" in r[0] else "—"
            table.append([ds, row, stat(r, "val"), stat(r, "test"), teacher,
                          "—" if row == "SAGE" else paired(r, sage, "test"),
                          paired(r, r, "test", "teacher_test") if "teacher_test" in r[0] else "—"])
        for row in PRODUCTION_ROWS:
            r = by[(ds, "inductive", row)]["runs"]
            production.append([ds, row, stat(r, "teacher_test"), stat(r, "test"), stat(r, "teacher_test_tran"),
                               stat(r, "test_tran"), stat(r, "teacher_test_ind"), stat(r, "test_ind"),
                               paired(r, r, "test", "teacher_test")])
    published = [[ds, *(f"{PUBLISHED[ds][k]:.2f}" for k in ("SAGE", "GLNN", "NOSMOG", "VQGraph"))] for ds in datasets
                 if ds in PUBLISHED]
    result = {"benchmark": "published", "quick": args.quick, "runs": runs, "datasets": datasets, "rows": done,
              "published": PUBLISHED, "production_published": PRODUCTION, "sources": SOURCES,
              "minutes": round(minutes, 1), "row_minutes": round(row_minutes, 1), "environment": environment()}
    result["invocations"] = invocations(None, False, ran_as("published.py", argv), minutes)
    out = Path(args.out)
    save_json(out, "published", result)
    lines = [f"### On the published protocol: CPF files, 20/30 per class, GraphSAGE teachers ({runs} seeds)", "",
             *md_table(["dataset", "row", "val", "test", "its teacher's test", "− plain SAGE (paired)",
                        "− its teacher (paired)"], table), "",
             "Published (transductive; " + SOURCES.split(";")[0] + "):", "",
             *md_table(["dataset", "SAGE", "GLNN", "NOSMOG", "VQGraph"], published), "",
             "Production (20% of test nodes unseen in training; mix = all test nodes):", "",
             *md_table(["dataset", "row", "teacher mix", "student mix", "teacher observed", "student observed",
                        "teacher unseen", "student unseen", "student − teacher, mix (paired)"], production), "",
             "Published production (GLNN's repository, teacher → GLNN): " + "; ".join(
                 f"{ds}: mix {v['SAGE mix']:.2f} → {v['GLNN mix']:.2f}, unseen {v['SAGE unseen']:.2f} → "
                 f"{v['GLNN unseen']:.2f}" for ds, v in PRODUCTION.items() if ds in datasets) + ".",
             "Accuracy % (mean ± std over seeds); paired differences in points (mean ± s.e.). Rows without "
             "\"papers' settings\" use gkd's defaults (GraphSAGE 64 wide, dropout 0.5, full-batch; MLP student 64 "
             "wide, dropout 0.5); rows with it use GLNN's train.conf.yaml (GraphSAGE 128 wide, no dropout, fan-out "
             "5,5 in batches of 4096 seed nodes; MLP student 128 wide, dropout 0.6 / weight decay 0.005 on Cora, "
             "0.1 / 0.001 on CiteSeer), with gkd's epochs and patience (500, 100).",
             f"Measured on {result['environment']['cpu']}, torch {result['environment']['torch']}: the rows' runs "
             f"took {row_minutes:.0f} min in all (in {args.jobs} worker processes of "
             f"{bench_threads()} torch thread(s); {minutes:.0f} min this call"
             f"{', the other rows from --cache' if args.cache else ''}). Regenerate: `python benchmarks/published.py`."]
    return save_markdown(out, "published", lines)


if __name__ == "__main__":
    sys.exit(main())
