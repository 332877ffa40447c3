"""GNN-to-MLP distillation: teachers, plain MLP, GLNN, each structure-aware term, gkd; both settings.

    python benchmarks/gnn2mlp.py [--datasets Cora,...] [--core DATASETS] [--runs 10] [--jobs 2] [--quick]

For every (teacher, setting, seed) the teachers are trained once (gkd distill's default: an ensemble of 3, each
self-distilled with two born-again generations) and every student variant learns from that same knowledge, so the
rows differ only in the student's loss. The "1 teacher" rows learn from the ensemble's first member alone (what
``--teachers 1`` trains); the teacher rows report that member. The gkd row is the variant whose terms equal
``gkd.pipeline.GKD_TERMS``; those terms were chosen on validation accuracy from an earlier run of this ablation,
and the report states how they stand on validation in this one. Inductive: 20% of the test nodes are held out of
the teacher's graph (GLNN's production setting). Datasets named in ``--core`` get the teacher, plain MLP, GLNN and
gkd rows only; ``--datasets`` / ``--teachers`` re-run a subset and keep the other (dataset, teacher) rows from the
existing JSON. Writes benchmarks/results/gnn2mlp.{json,md}.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common import (comma_list, invocations, invocations_line, load_results, md_table, mean_se, merge_rows,
                    paired_points, parser, ran_as, run_pool, save_json, save_markdown)

ABLATION = [("plain MLP", "plain", ()), ("GLNN", "glnn", ()), ("+ position", "glnn", ("position",)),
            ("+ neighbour", "glnn", ("neighbour",)), ("+ reliability", "glnn", ("reliability",)),
            ("+ rsd", "glnn", ("rsd",)), ("+ self", "glnn", ("self",)),
            ("+ position + neighbour", "glnn", ("position", "neighbour")),
            # the student's width: gkd distill's default is the teacher's (64); 256 is GLNN-style wide
            ("GLNN, 256 wide", "glnn", (), 256),
            ("+ position + neighbour, 256 wide", "glnn", ("position", "neighbour"), 256)]
# the ensemble's effect: the same students taught by its first teacher alone (teachers=1 gives exactly this teacher)
ONE_TEACHER = [("GLNN, 1 teacher", "glnn", ()),
               ("+ position + neighbour, 1 teacher", "glnn", ("position", "neighbour"))]
SETTINGS = ("transductive", "inductive")
DATASETS = ("Cora", "CiteSeer", "Texas", "Wisconsin", "Cornell", "Actor")


def variants_for(teacher: str, full: bool, core: bool = False) -> list[tuple[str, str, tuple]]:
    """GCN gets the whole ablation; other teachers the rows that gkd's default could be made of; ``core``: plain MLP,
    GLNN and gkd's terms only."""
    if core:
        from gkd.pipeline import GKD_TERMS

        return [("plain MLP", "plain", ()), ("GLNN", "glnn", ()),
                (f"+ {' + '.join(GKD_TERMS)}", "glnn", tuple(GKD_TERMS))]
    if full or teacher == "gcn":
        return ABLATION
    return [v for v in ABLATION if v[0] in ("plain MLP", "GLNN", "+ position", "+ neighbour",
                                            "+ position + neighbour", "GLNN, 256 wide")]


def one(task: tuple) -> list[dict]:
    from gkd.datasets import load
    from gkd.pipeline import DistillConfig, student_stage, teacher_stage

    teacher, setting, r, extra, full = task
    extra = dict(extra)
    core = extra.pop("core", False)
    data = load(extra.get("dataset", "Cora"), extra.get("root"), split=r)
    base = DistillConfig(teacher=teacher, setting=setting, **{k: v for k, v in extra.items() if k != "root"},
                         root=extra.get("root"))
    stage = teacher_stage(base, data, r, reliability=True, progress=False)
    alone = stage.first_teacher()
    rows = []
    variants = [(v, stage) for v in variants_for(teacher, full, core)]
    if base.teachers > 1 and not core:
        variants += [(v, alone) for v in ONE_TEACHER]
    for (label, method, terms, *width), st in variants:
        # each ablation row is its student as trained (no guard); the guarded GLNN and gkd rows are derived from
        # them (guard_rows)
        cfg = DistillConfig(**{**base.to_dict(), "method": method, "terms": ",".join(terms),
                               "hidden_channels": width[0] if width else base.hidden_channels,
                               "student_guard": False})
        run = student_stage(cfg, data, st, r, progress=False)[1]
        rows.append({"dataset": data.meta.name, "variant": label, "method": method, "terms": list(terms),
                     "hidden": cfg.hidden_channels,
                     "teacher": teacher, "teachers": base.teachers if st is stage else 1,
                     "setting": setting, **run})
    return rows


def raw_val(run: dict) -> float:
    """The validation score of the student a run trained (a run measured with the guard on keeps it in ``guard``)."""
    return run["guard"]["distilled_val"] if "guard" in run else run["val"]


def guarded(candidates: dict[str, dict]) -> dict:
    """One seed as the student guard makes it: ``candidates`` maps ``distilled`` (then ``no terms``, then ``plain``)
    to the ablation rows' runs of that seed; the best on validation is kept (:func:`gkd.pipeline.guard_pick`).

    Exact for runs measured with the guard on as well: a candidate is kept only with a validation score at least the
    plain student's, and then its own guard had kept it too (a tie keeps the distilled student)."""
    from gkd.pipeline import guard_pick

    val = {k: (r["val"] if k == "plain" else raw_val(r)) for k, r in candidates.items()}
    kept = guard_pick(val)
    first, picked = candidates["distilled"], candidates[kept]
    run = {**{k: v for k, v in picked.items() if k != "guard" and "seconds" not in k},
           **{k: v for k, v in first.items() if "seconds" in k},  # the distilled student's time, as student_stage
           "guard": {"kept": kept, **{f"{k.replace(' ', '_')}_val": v for k, v in val.items()}}}
    if "test_ind_graph_aided" in first and "test_ind_graph_aided" not in picked:
        run["test_ind_graph_aided"] = picked["test_ind"]  # a student without positions reads no graph
    return run


def guard_rows(table: list[dict]) -> list[dict]:
    """The rows gkd distill's default student guard gives, seed by seed, made from the ablation rows' own runs:
    GLNN (its student or the plain MLP row's) and gkd = GLNN + GKD_TERMS (the terms row's student, the GLNN row's
    or the plain MLP row's). Each candidate is the very student that student_stage trains for that seed (same seed,
    same teachers; tests/test_gnn2mlp.py checks it), so this is the guard's choice, not another training."""
    from gkd.pipeline import GKD_TERMS, DistillConfig
    from gkd.train import summarize

    default = DistillConfig()
    table = [r for r in table if r["method"] != "gkd"]
    index = {(r["dataset"], r["teacher"], r["setting"], r["variant"]): r for r in table}

    def rebuilt(row: dict, runs: list[dict], **extra) -> dict:
        return {**{k: v for k, v in row.items() if k != "runs" and not k.endswith(("_mean", "_std"))},
                **summarize(runs), **extra, "runs": runs}

    out = []
    for r in table:
        key = (r["dataset"], r["teacher"], r["setting"])
        plain = index.get((*key, "plain MLP"))
        if r["variant"] == "GLNN" and plain is not None:
            alone = {x["seed"]: x for x in plain["runs"]}
            r = rebuilt(r, [guarded({"distilled": x, "plain": alone[x["seed"]]}) for x in r["runs"]])
        out.append(r)
        glnn = index.get((*key, "GLNN"))
        if not (r["method"] == "glnn" and tuple(r["terms"]) == GKD_TERMS and glnn is not None and plain is not None
                and r.get("hidden", default.hidden_channels) == default.hidden_channels
                and r.get("teachers", 1) == default.teachers):
            continue
        by_seed = [{x["seed"]: x for x in row["runs"]} for row in (glnn, plain)]
        runs = [guarded({"distilled": x, "no terms": by_seed[0][x["seed"]], "plain": by_seed[1][x["seed"]]})
                for x in r["runs"]]
        out.append(rebuilt(r, runs, variant=f"gkd (= GLNN + {' + '.join(GKD_TERMS)}, guarded)", method="gkd"))
    return out


def merged_rows(old: dict | None, fresh: list[dict], datasets: list[str],
                teachers: list[str]) -> tuple[list[dict], int]:
    """The file's rows after a run of ``datasets`` × ``teachers`` made the ablation rows ``fresh``, and how many
    stored rows it kept: the earlier file's rows of every (dataset, teacher) it did not re-run (``--datasets Texas
    --teachers gcn`` keeps Texas's SAGE rows), the re-run ones replaced where they stood (:func:`common.merge_rows`),
    and the gkd rows derived again from the ablation rows (:func:`guard_rows`)."""
    stored = [] if old is None else old["rows"]
    for r in stored:  # files written before the benchmark covered several datasets
        r.setdefault("dataset", old.get("dataset", "Cora"))
    again = {(d.lower(), t) for d in datasets for t in teachers}
    rows, kept = merge_rows([r for r in stored if r["method"] != "gkd"], fresh,
                            lambda r: (r["dataset"], r["teacher"], r["setting"], r["variant"]),
                            lambda r: (r["dataset"].lower(), r["teacher"]) in again)
    return guard_rows(rows), kept


def main(argv=None) -> int:
    from gkd.pipeline import GKD_TERMS
    from gkd.train import environment, summarize

    p = parser(__doc__, "2 runs, 60 epochs, GCN teacher only, Cora and Texas (smoke test)", jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma list (default {','.join(DATASETS)}); the other datasets' rows are kept from the "
                        "existing JSON")
    p.add_argument("--core", default=",".join(DATASETS[1:]), metavar="DATASETS",
                   help="datasets that get the teacher, plain MLP, GLNN and gkd rows only (default: all but Cora, "
                        "which gets the whole ablation)")
    p.add_argument("--teachers", default="gcn,sage",
                   help="comma list; the other teachers' rows of the re-run datasets are kept from the existing JSON")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the gkd rows (current GKD_TERMS) and the Markdown from the existing JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.report_only:
        result = load_results(args.out, "gnn2mlp")
        result["rows"] = guard_rows(result["rows"])
        result["gkd_terms"] = list(GKD_TERMS)
        return report(result, Path(args.out))
    teachers = ["gcn"] if args.quick else comma_list(args.teachers)
    runs = 2 if args.quick else args.runs
    datasets = ["Cora", "Texas"] if args.quick else comma_list(args.datasets, fold_case=True)
    core = {d.strip().lower() for d in args.core.split(",") if d.strip()}
    quick = {"epochs": 60, "patience": 60, "teacher_args": {"epochs": 60, "patience": 15}} if args.quick else {}
    tasks = [(t, s, r, {"dataset": ds, "runs": runs, "core": ds.lower() in core, **quick}, False)
             for ds in datasets for t in teachers for s in SETTINGS for r in range(runs)]
    old = load_results(args.out, "gnn2mlp") if (Path(args.out) / "gnn2mlp.json").is_file() else None
    same = old is not None and (old.get("runs"), old.get("quick")) == (runs, args.quick)
    if old is not None and not same and ({d.lower() for d in datasets} != {d.lower() for d in DATASETS}
                              or not set(old.get("teachers", [])) <= set(teachers)):
        p.error(f"{Path(args.out) / 'gnn2mlp.json'} was run with other --runs or --quick: a subset (--datasets, "
                "--teachers) would drop its other rows; re-run everything, or pick another --out")
    import time

    start = time.perf_counter()
    per_task = run_pool(one, tasks, args.jobs, "gnn2mlp")
    minutes = (time.perf_counter() - start) / 60
    groups: dict[tuple, list[dict]] = {}
    for rows in per_task:
        for x in rows:
            groups.setdefault((x["dataset"], x["teacher"], x["setting"], x["variant"]), []).append(x)
    fresh = []
    for (dataset, teacher, setting, variant), rs in groups.items():
        first = rs[0]
        fresh.append({"dataset": dataset, "teacher": teacher, "setting": setting, "variant": variant,
                      "method": first["method"], "terms": first["terms"], "hidden": first["hidden"],
                      "teachers": first["teachers"], **summarize(rs),
                      "runs": [{k: v for k, v in x.items() if k not in ("dataset", "variant", "method", "terms",
                                                                         "teacher", "setting", "hidden", "teachers")}
                               for x in rs]})
    table, kept = merged_rows(old if same else None, fresh, datasets, teachers)
    order = [d for d in DATASETS + tuple(datasets) if any(r["dataset"].lower() == d.lower() for r in table)]
    held = [t for t in dict.fromkeys([*(old.get("teachers", []) if kept else []), *teachers])
            if any(r["teacher"] == t for r in table)]  # the kept rows' teachers too, in the earlier file's order
    result = {"benchmark": "gnn2mlp", "dataset": order[0], "datasets": list(dict.fromkeys(order)),
              "quick": args.quick, "runs": runs, "gkd_terms": list(GKD_TERMS), "teachers": held,
              "minutes": {**(old.get("minutes", {}) if kept and old and isinstance(old.get("minutes"), dict)
                             else {}), ",".join(datasets): round(minutes, 1)},
              "protocol": "student test accuracy at its best-validation epoch; mean ± unbiased std over seeds "
                          "0..runs-1 (or the 10 geom-gcn splits); teachers = an ensemble of self-distilled GNNs (2 "
                          "born-again generations each), trained once per seed and setting, shared by all student "
                          "variants; teacher rows = its first member; inductive: 20% of test nodes held out "
                          "(production = 0.8 tran + 0.2 ind)",
              "rows": table, "environment": environment(),
              "invocations": invocations(old, kept > 0, ran_as("gnn2mlp.py", argv), minutes)}
    return report(result, Path(args.out))


def terms_choice(rows: list[dict], gkd_terms: list[str]) -> str:
    """What this file says of gkd's default terms: the ablation rows of the first dataset (GLNN and GLNN + terms,
    the default width and teachers) that ran in every (teacher, setting) cell the row with gkd's terms ran in, each
    row's validation accuracy averaged over those cells; the best of them, against the row with gkd's terms."""
    ours = f"+ {' + '.join(gkd_terms)}"
    width = next((r["hidden"] for r in rows if r["variant"] == "GLNN"), None)
    cands = [r for r in rows if r["method"] == "glnn" and r["hidden"] == width and r.get("teachers", 1) > 1]
    cells = {(r["teacher"], r["setting"]) for r in cands if r["variant"] == ours}
    full = [v for v in dict.fromkeys(r["variant"] for r in cands)
            if cells <= {(r["teacher"], r["setting"]) for r in cands if r["variant"] == v}]
    if not cells or ours not in full:
        return f"gkd's terms: {', '.join(gkd_terms)}."
    val = {v: sum(r["val_mean"] for r in cands if r["variant"] == v and (r["teacher"], r["setting"]) in cells)
           / len(cells) for v in full}
    best = max(val, key=val.get)
    text = (f"gkd's terms ({', '.join(gkd_terms)}) were chosen on validation accuracy. In this file, averaged over "
            f"{len(cells)} teacher / setting cells, the ablation row best on validation is *{best}* "
            f"({val[best] * 100:.2f})")
    if best == ours:
        return text + "."
    row = {(r["variant"], r["teacher"], r["setting"]): r for r in cands}
    diffs = [d for t, s in sorted(cells) for d in paired_points(row[ours, t, s], row[best, t, s])]
    m, se = mean_se(diffs)
    return text + (f"; *{ours}* minus it, paired over {len(diffs)} seeds × cells: {m:+.2f}"
                   + (f" ± {se:.2f} points." if se is not None else " points."))


def report(result: dict, out: Path) -> int:
    from gkd.train import fmt

    save_json(out, "gnn2mlp", result)
    every = result["rows"]
    for r in every:  # results written before the benchmark covered several datasets
        r.setdefault("dataset", result["dataset"])
    rows = [r for r in every if r["dataset"] == result["dataset"]]

    def get(teacher, setting, variant, among=rows):
        return next((r for r in among if r["teacher"] == teacher and r["setting"] == setting
                     and r["variant"] == variant), None)

    def cell(r, key="test"):
        return "—" if r is None or f"{key}_mean" not in r else fmt(r[f"{key}_mean"], r[f"{key}_std"])

    def paired(a, b, kb="test", ka="test"):
        """``a``'s ``ka`` minus ``b``'s ``kb``, paired over the same seeds / splits: (mean, standard error)."""
        if a is None or b is None:
            return None
        d = paired_points(a, b, ka, kb)
        return mean_se(d) if len(d) > 1 else None

    def gain(a, b, kb="test", ka="test"):
        g = paired(a, b, kb, ka)
        return "—" if g is None else f"{g[0]:+.2f} ± {g[1]:.2f}"

    def kept(r):
        """Seeds where the student guard kept another student than the distilled one ("—": run before the guard)."""
        guarded = [x["guard"]["kept"] for x in (r or {}).get("runs", []) if "guard" in x]
        if not guarded:
            return "—"
        other = [f"{guarded.count(k)} {k}" for k in ("no terms", "plain") if k in guarded]
        return f"{', '.join(other) or 'none'} of {len(guarded)}"

    name = {"gcn": "GCN", "sage": "SAGE", "gat": "GAT"}
    ts = result["teachers"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    gkd = next((v for v in variants if v.startswith("gkd")), "gkd")

    def per_teacher(variant: str, *keys: str) -> list[str]:  # transductive cells, teacher by teacher
        return [cell(get(t, "transductive", variant), k) for t in ts for k in keys]

    tran = [[f"teacher (self-distilled {'/'.join(name.get(t, t) for t in ts)}, 2 generations; the first of the "
             "ensemble)", *per_teacher("GLNN", "teacher_test", "teacher_val")]]
    tran += [[v, *per_teacher(v, "test", "val")] for v in variants]
    ind = []
    for t in ts:
        g = get(t, "inductive", "GLNN")
        ind.append([name.get(t, t), "the teacher itself", cell(g, "teacher_test_tran"), cell(g, "teacher_test_ind"),
                    "—", cell(g, "teacher_test")])
        for v in variants:
            r = get(t, "inductive", v)
            if r is not None:
                ind.append([name.get(t, t), v, cell(r, "test_tran"), cell(r, "test_ind"),
                            cell(r, "test_ind_graph_aided"), cell(r)])
    lines = [f"### GNN-to-MLP on {result['dataset']} ({result['runs']} seeds / splits): transductive", "",
             *md_table(["student"] + [c for t in ts for c in (f"from {name.get(t, t)}: test", "val")], tran),
             "", f"### Inductive / production (20% of test nodes unseen; {result['runs']} seeds)", "",
             *md_table(["teacher", "student", "tran", "ind", "ind, graph-aided", "production"], ind)]
    others = [d for d in result.get("datasets", [result["dataset"]])]
    if len(others) > 1:
        six_t, six_p, choose = [], [], []
        for ds in others:
            among = [r for r in every if r["dataset"] == ds]
            for t in ts:
                g, tr = get(t, "inductive", "GLNN", among), get(t, "transductive", "GLNN", among)
                if tr is None:
                    continue
                mlp, k = get(t, "transductive", "plain MLP", among), get(t, "transductive", gkd, among)
                six_t.append([ds, name.get(t, t), cell(tr, "teacher_test"), cell(mlp), cell(tr), cell(k),
                              gain(k, k, "teacher_test"), gain(k, mlp), f"{kept(tr)} / {kept(k)}"])
                terms = get(t, "transductive", f"+ {' + '.join(result['gkd_terms'])}", among)
                raw = None
                if terms is not None and mlp is not None:
                    raw = paired(*({"runs": [{"seed": x["seed"], "val": raw_val(x)} for x in row["runs"]]}
                                   for row in (terms, tr)), "val", "val")
                    alone = {x["seed"]: x for x in mlp["runs"]}  # the previous default: terms, guard against plain
                    terms = {"runs": [guarded({"distilled": x, "plain": alone[x["seed"]]}) for x in terms["runs"]]}
                choose.append((ds, name.get(t, t), raw, *(paired(x, tr, *keys) for x in (terms, k)
                                                          for keys in (("val", "val"), ("test", "test")))))
                if g is not None:
                    k = get(t, "inductive", gkd, among)
                    six_p.append([ds, name.get(t, t), cell(g, "teacher_test"), cell(g), cell(k),
                                  cell(g, "teacher_test_ind"), cell(g, "test_ind"), cell(k, "test_ind")])
        lines += ["", f"### Every dataset: transductive ({result['runs']} seeds / splits)", "",
                  *md_table(["dataset", "teachers", "teacher", "plain MLP", "GLNN", "gkd", "gkd − teacher",
                             "gkd − plain MLP", "guard kept: GLNN / gkd"], six_t),
                  "", "### Every dataset: production (80% observed + 20% unseen test nodes) and unseen nodes alone", "",
                  *md_table(["dataset", "teachers", "teacher: production", "GLNN", "gkd", "teacher: unseen",
                             "GLNN", "gkd"], six_p)]
        both = [c for c in choose if None not in c]
        if both:
            cell2 = lambda g: f"{g[0]:+.2f} ± {g[1]:.2f}"  # noqa: E731
            avg = [f"{sum(c[i][0] for c in both) / len(both):+.2f}" for i in range(2, 7)]
            lines += ["", "### Choosing gkd's terms: gain over GLNN (same teachers, paired, mean ± s.e.)", "",
                      *md_table(["dataset", "teachers", "terms, no guard: validation (both unguarded)",
                                 "terms, guard against plain only (before): validation",
                                 "(test)", "terms, guard against GLNN and plain (the default): validation", "(test)"],
                                [[ds, t, *(cell2(g) for g in gs)] for ds, t, *gs in both]
                                + [[f"mean of {len(both)}", "", *avg]])]
    took = result.get("minutes")
    took = "; ".join(f"{k}: {v:.0f} min" for k, v in took.items()) if isinstance(took, dict) else ""
    untimed = any("minutes" not in c for c in result.get("invocations", [{}]))  # files from before the record
    lines += ["", "Cells: accuracy % (mean ± std). The teacher answers unseen nodes with their edges (full graph); "
              "students never read a graph at inference. gkd − teacher, gkd − plain MLP: paired differences over "
              "the same seeds / splits, mean ± standard error. *guard kept*: seeds where the student guard (on by "
              "default) kept, as better on validation, the student trained without gkd's terms (*no terms*) or on the "
              "labels alone (*plain*) instead of the distilled one. The gkd rows "
              "are that choice made on the ablation rows' own runs (GLNN, + terms, plain MLP), and so is the GLNN row "
              "(against the plain MLP); the other ablation rows are their students as trained. Choosing gkd's "
              "terms: each way against the GLNN row (no guard: both students as trained), on validation; test gains "
              "are shown, not used to choose. "
              "*graph-aided*: position features of unseen nodes from their neighbours (the only term that needs the "
              "graph for new nodes); without it they get zeros.",
              terms_choice(rows, result["gkd_terms"]),
              invocations_line(result)[:-1] + (f" (run time {took})" if took and untimed else "")
              + ". Regenerate: `python benchmarks/gnn2mlp.py` (`--datasets` re-runs a subset)."]
    return save_markdown(out, "gnn2mlp", lines)


if __name__ == "__main__":
    sys.exit(main())
