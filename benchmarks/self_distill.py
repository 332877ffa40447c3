"""Universal self-distillation on six real datasets (and a homophily sweep on synthetic-csbm).

    python benchmarks/self_distill.py [--datasets Cora,CiteSeer,...] [--runs 10] [--jobs 2] [--quick]

For GCN, GAT and GraphSAGE on Cora and CiteSeer (Planetoid public split, 10 seeds) and Texas, Wisconsin, Cornell and
Actor (the 10 geom-gcn splits): plain training, each self-distillation term alone, gkd's default terms and the
candidate defaults (term sets and neighbour-graph options); on the first dataset also label smoothing, Tf-KD-reg and
all terms together. Test accuracy at the best-validation epoch, and the gain over plain as a paired difference
(same seeds / splits): mean ± standard error. The candidates are compared on validation over the six datasets
and the sweep: each against the default, paired by dataset, backbone and seed / split; a default changes only for a
difference of more than twice its standard error (test is reported, never used). Epoch time relative to plain is
measured on the first dataset. ``--datasets`` re-runs a subset: the other datasets' rows are kept from the existing
JSON. Writes benchmarks/results/self_distill.{json,md}.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common import (comma_list, invocations, invocations_line, load_results, md_table, mean_se, merge_rows, parser,
                    ran_as, run_pool, save_json, save_markdown)

DATASETS = ("Cora", "CiteSeer", "Texas", "Wisconsin", "Cornell", "Actor")
TERMS = ("depth", "time", "neighbour", "normalised")
MODELS = ("gcn", "gat", "sage")
NAMES = {"gcn": "GCN", "gat": "GAT", "sage": "GraphSAGE"}
# The candidate defaults, compared on validation: label -> (terms, per-term options). The one equal to the library's
# default is the default row.
_BOTH_FIRST = {"neighbour": {"graphs": "input,features", "choose": "first"}}
CANDIDATES = {"neighbour,time, graphs=input": ("neighbour,time", {"neighbour": {"graphs": "input"}}),
              "neighbour,time, graphs=input,features": ("neighbour,time",
                                                        {"neighbour": {"graphs": "input,features", "choose": "best"}}),
              "neighbour,time, graphs=input,features, choose=first": ("neighbour,time", _BOTH_FIRST),
              "neighbour, graphs=input,features, choose=first": ("neighbour", _BOTH_FIRST),
              "depth,time,neighbour,normalised, graphs=input,features, choose=first": (",".join(TERMS), _BOTH_FIRST)}


def candidate_label(name: str) -> str:
    return f"SD: {name}"


def candidate_flags(name: str) -> dict:
    terms, args = CANDIDATES[name]
    return {"method": "self-distill", "sd_terms": terms, "term_args": args}


def default_label() -> str:
    """The candidate row that is the library's default: the one resolving to the terms and options of
    ``gkd train --self-distill``."""
    want = resolved(("", "gcn", {"method": "self-distill"}, {}))[1]
    for name in CANDIDATES:
        if resolved(("", "gcn", candidate_flags(name), {}))[1] == want:
            return candidate_label(name)
    raise SystemExit("benchmarks/self_distill.py: no entry of CANDIDATES resolves to the library's default "
                     f"self-distillation ({want}); add it, so that the default is compared with the others")


def variants(first: bool, per_term: bool = True) -> list[tuple[str, dict]]:
    """``(label, flags)`` of every variant; ``first``: the first dataset, which also gets the baselines;
    ``per_term``: each term alone too."""
    out = [("plain", {"method": "plain"})]
    if first and per_term:
        out += [("label smoothing", {"method": "label-smoothing"}), ("Tf-KD-reg", {"method": "tf-kd-reg"})]
    if per_term:
        out += [(f"SD: {t}", {"method": "self-distill", "sd_terms": t}) for t in TERMS]
    if first and per_term:
        out.append(("SD: all terms", {"method": "self-distill", "sd_terms": ",".join(TERMS)}))
    out += [(candidate_label(name), candidate_flags(name)) for name in CANDIDATES]
    return out


# what a row's computation depends on besides its dataset, backbone and term configuration (``method_config``)
_NOT_SETTINGS = ("method", "sd_terms", "term_args", "dataset", "dataset_args", "model", "root", "device")


def settings(cfg) -> dict:
    """The resolved training settings of a row (epochs, patience, lr, widths, seeds, ...), stored with it so that
    a later invocation can tell whether a stored row is the computation a task asks for."""
    return {k: v for k, v in cfg.to_dict().items() if k not in _NOT_SETTINGS}


def resolved(task: tuple[str, str, dict, dict]):
    """``(config, method_config)`` a task resolves to, with no data loaded; ``method_config`` as stored in the JSON
    (tuples become lists)."""
    import json

    from gkd.pipeline import build_method, make_config

    label, model, flags, extra = task
    cfg = make_config(flags={"model": model, **flags, **extra})
    return cfg, json.loads(json.dumps(build_method(cfg)[1]))


def one(task: tuple[str, str, dict, dict]) -> dict:
    from gkd.pipeline import make_config, run_training

    label, model, flags, extra = task
    cfg = make_config(flags={"model": model, **flags, **extra})
    r = run_training(cfg, progress=False)
    epochs = sum(x["epochs_run"] for x in r["runs"])
    return {"variant": label, "model": model, "dataset": r["dataset"], "dataset_args": cfg.dataset_args,
            "method": r["method"], "method_config": r["method_config"], "settings": settings(cfg),
            "test_mean": r["test_mean"],
            "test_std": r["test_std"], "val_mean": r["val_mean"], "runs": r["runs"],
            "seconds_per_epoch": sum(x["seconds"] for x in r["runs"]) / epochs}


def epoch_times(models: list[str], dataset: str, epochs: int = 60) -> dict[str, dict[str, float]]:
    """Seconds per epoch of plain vs default self-distillation, measured back to back in this process (one thread,
    a fixed number of epochs, no early stop, the terms on from the first epoch), so that the ratio is not blurred by
    parallel workers or by the plain epochs before the terms start."""
    import time

    import torch

    from gkd.datasets import load
    from gkd.distill import SELF_DISTILL_TERMS
    from gkd.nn import build_model, to_adj_t
    from gkd.pipeline import build_method, make_config
    from gkd.train import Trainer, seed_everything

    torch.set_num_threads(1)
    data = load(dataset)
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes)
    now = {t: {"warmup": 0} for t in SELF_DISTILL_TERMS}
    out: dict[str, dict[str, float]] = {}
    for m in models:
        out[m] = {}
        for method in ("plain", "self-distill"):
            cfg = make_config(flags={"model": m, "method": method, "epochs": epochs, "patience": epochs,
                                     **({"term_args": now} if method == "self-distill" else {})})
            factory, _ = build_method(cfg)
            seed_everything(0)
            model = build_model(m, data.num_features, data.meta.num_classes, **cfg.model_kwargs())
            terms = factory(data, model) if factory else []
            start = time.perf_counter()
            Trainer(model, data, lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=epochs, patience=epochs,
                    terms=terms).fit()
            out[m][method] = (time.perf_counter() - start) / epochs
    return out


def _key(dataset: str, model: str, variant: str, dataset_args: dict | None) -> tuple:
    return dataset.lower(), model, variant, tuple(sorted((dataset_args or {}).items()))


def _same_computation(r: dict, cfg, config: dict) -> bool:
    return (r["dataset"].lower() == cfg.dataset.lower() and r["model"] == cfg.model
            and r["dataset_args"] == cfg.dataset_args and r["method_config"] == config
            and r.get("settings") == settings(cfg) and "same_as" not in r)


def reuse_same_runs(tasks: list[tuple], rows: list[dict]) -> tuple[list[tuple], list[dict]]:
    """Split ``tasks`` into those still to run and copies of ``rows`` that already ran the same computation (same
    dataset, split, backbone, resolved term configuration and training settings, seeds included: a candidate
    default equal to a term run alone). Runs are seeded, so the copy is what a re-run would give; it keeps its own
    label and names the row it copies. Rows stored without their settings (older files) are never copied."""
    todo, copies = [], []
    for task in tasks:
        cfg, config = resolved(task)
        same = next((r for r in rows if _same_computation(r, cfg, config)), None)
        if same is None:
            todo.append(task)
        else:
            copies.append({**same, "variant": task[0], "same_as": same["variant"]})
    return todo, copies


def stale_rows(tasks: list[tuple], rows: list[dict]) -> list[dict]:
    """The stored rows whose label now resolves to another term configuration than the one they ran (an option
    whose value differs, or a term set that differs; an option the row predates is not a difference): kept, they
    would report one computation under another's name."""
    out = []
    for task in tasks:
        cfg, config = resolved(task)
        for r in rows:
            if r["variant"] != task[0] or r["model"] != task[1] or r["dataset"].lower() != cfg.dataset.lower() \
                    or r["dataset_args"] != cfg.dataset_args:
                continue
            if _ran_other_options(r["method_config"], config):
                out.append(r)
    return out


def _ran_other_options(ran: dict, now: dict) -> bool:
    if ran.get("terms") != now.get("terms"):
        return True
    for term, options in now.get("term_args", {}).items():
        had = ran.get("term_args", {}).get(term, {})
        if any(key in had and had[key] != value for key, value in options.items()):
            return True
    return False


def paired(rows: list[dict], r: dict, key: str = "test") -> tuple[float, float]:
    """Mean and standard error of ``r``'s per-seed ``key`` minus plain's on the same seeds / splits."""
    base = next(x for x in rows if x["variant"] == "plain" and x["model"] == r["model"]
                and x["dataset"] == r["dataset"] and x["dataset_args"] == r["dataset_args"])
    by_seed = {x["seed"]: x[key] for x in base["runs"]}
    mean, se = mean_se([x[key] - by_seed[x["seed"]] for x in r["runs"]])
    return mean, 0.0 if se is None else se


def main(argv=None) -> int:
    from gkd.train import environment

    p = parser(__doc__, "2 runs, 60 epochs (patience 15), GCN only, Cora and Texas, 2-point sweep (smoke test)",
               jobs=True)
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma list (default {','.join(DATASETS)}); with an existing JSON of the same --runs, the "
                        "other datasets' rows are kept")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sweep-runs", type=int, default=5)
    p.add_argument("--no-sweep", action="store_true", help="keep the homophily sweep's rows from the existing JSON")
    p.add_argument("--per-term", default=None, metavar="DATASETS",
                   help="the datasets that also get each term alone (default: all of --datasets); the others get "
                        "plain and the candidate defaults only")
    p.add_argument("--variants", default=None, metavar="LABELS",
                   help="semicolon list of row labels as the tables name them ('default' for the default's), e.g. "
                        "'plain;default': only those rows of --datasets and --models are re-run, the others kept")
    p.add_argument("--missing", action="store_true",
                   help="run only the rows the existing JSON lacks (a new candidate, a new dataset) and keep the rest")
    p.add_argument("--timing-only", action="store_true",
                   help="re-measure only the epoch-time ratios and rewrite the report from the existing JSON")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite the report from the existing JSON (the default row follows the library's default)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        result = load_results(out, "self_distill")
        result["default"] = default_label()
        result["candidates"] = [candidate_label(c) for c in CANDIDATES]
        return report(result, out)
    if args.timing_only:
        result = load_results(out, "self_distill")
        result["epoch_time"] = epoch_times(result["models"], result["datasets"][0])
        return report(result, out)
    models = ["gcn"] if args.quick else comma_list(args.models)
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        p.error(f"--models {args.models!r}: unknown {unknown}; expected some of {','.join(MODELS)}")
    datasets = ["Cora", "Texas"] if args.quick else comma_list(args.datasets, fold_case=True)
    runs = 2 if args.quick else args.runs
    quick = {"epochs": 60, "patience": 15} if args.quick else {}
    per_term = {d.lower() for d in datasets} if args.per_term is None else \
        {d.strip().lower() for d in args.per_term.split(",") if d.strip()}
    tasks = [(label, m, flags, {"dataset": ds, "runs": runs, **quick})
             for ds in datasets for m in models
             for label, flags in variants(ds == DATASETS[0], ds.lower() in per_term)]
    only = None
    if args.variants is not None:
        only = {default_label() if v.strip() == "default" else v.strip() for v in args.variants.split(";") if v.strip()}
        known = {t[0] for t in tasks}
        if not only or only - known:
            p.error(f"--variants {args.variants!r}: unknown {sorted(only - known)}; expected labels of "
                    f"{', '.join(datasets)}'s rows: 'default' or {'; '.join(sorted(known))}")
        if args.missing:
            p.error("--variants re-runs rows the file holds; --missing runs the rows it lacks: give one of them")
        tasks = [t for t in tasks if t[0] in only]
    homs = (0.2, 0.8) if args.quick else (0.1, 0.3, 0.5, 0.7, 0.9)
    sweep_models = ["gcn"] if args.quick else ["gcn", "sage"]
    sweep = {"dataset": "synthetic-csbm", "runs": 2 if args.quick else args.sweep_runs, **quick}
    if not args.no_sweep and only is None:
        tasks += [(label, m, flags, {**sweep, "dataset_args": {"homophily": h}})
                  for h in homs for m in sweep_models for label, flags in variants(False, per_term=False)]
    default = default_label()  # before any run: a CANDIDATES without the default stops here, not after hours
    old = load_results(out, "self_distill") if (out / "self_distill.json").is_file() else None
    stored: list[dict] = []
    copies: list[dict] = []
    stale: list[dict] = []
    if old is not None and (old.get("runs"), old.get("quick")) == (runs, args.quick) and \
            (not (args.no_sweep or args.missing or only is not None) or old.get("sweep_runs") == sweep["runs"]):
        stored = old["rows"]
        if args.missing:
            stale = stale_rows(tasks, old["rows"])
            current = [r for r in old["rows"] if all(r is not x for x in stale)]
            have = {_key(r["dataset"], r["model"], r["variant"], r.get("dataset_args")) for r in current}
            tasks = [t for t in tasks if _key(t[3]["dataset"], t[1], t[0], t[3].get("dataset_args")) not in have]
            tasks, copies = reuse_same_runs(tasks, current)

            def rerun(r: dict) -> bool:
                return any(r is x for x in stale)
        else:
            again = {(t[3]["dataset"].lower(), t[1]) for t in tasks}

            def rerun(r: dict) -> bool:
                if r["dataset"] == "synthetic-csbm" and not args.no_sweep and only is None:
                    return True
                return (r["dataset"].lower(), r["model"]) in again and (only is None or r["variant"] in only)
    elif old is not None and (args.no_sweep or args.missing or only is not None
                              or {d.lower() for d in datasets} != {d.lower() for d in DATASETS}):
        p.error(f"{out / 'self_distill.json'} was run with other --runs, --sweep-runs or --quick: a subset "
                "(--datasets, --no-sweep) would drop its other rows; re-run everything, or pick another --out")
    import time

    start = time.perf_counter()
    fresh = copies + run_pool(one, tasks, args.jobs, "self_distill")
    minutes = (time.perf_counter() - start) / 60
    rows, kept = merge_rows(stored, fresh, lambda r: _key(r["dataset"], r["model"], r["variant"],
                                                          r.get("dataset_args")), rerun) if stored else (fresh, 0)
    first = next(d for d in DATASETS + tuple(datasets) if any(r["dataset"].lower() == d.lower() for r in rows))
    times = epoch_times(models, first, epochs=20 if args.quick else 60) \
        if (first.lower() in {d.lower() for d in datasets} and only is None) or old is None else old["epoch_time"]
    for r in rows:
        r["gain"], r["gain_se"] = paired(rows, r)
        r["val_gain"], r["val_gain_se"] = paired(rows, r, "val")
    order = [d for d in DATASETS + tuple(x for x in datasets if x not in DATASETS)
             if any(r["dataset"].lower() == d.lower() for r in rows)]
    result = {"benchmark": "self_distill", "quick": args.quick, "runs": runs, "datasets": order,
              "models": sorted({r["model"] for r in rows if r["dataset"] != "synthetic-csbm"}, key=MODELS.index),
              "sweep_models": sweep_models, "homophily": list(homs), "sweep_runs": sweep["runs"],
              "default": default, "candidates": [candidate_label(c) for c in CANDIDATES],
              "minutes": round(minutes + (old.get("minutes", 0) if kept else 0), 1),
              "protocol": "test accuracy at the best-validation epoch; mean ± unbiased std over seeds 0..runs-1 "
                          "(Planetoid public split) or the 10 geom-gcn splits; gains are paired differences over the "
                          f"same seeds/splits, mean ± standard error; {args.jobs} worker processes with one torch "
                          "thread each",
              "rows": rows, "environment": environment(), "epoch_time": times,
              "invocations": invocations(old, kept > 0, ran_as("self_distill.py", argv), minutes,
                                         rows=len(fresh) - len(copies), replaced=len(stale))}
    return report(result, out)


def _cell(r: dict | None, with_gain: bool = True) -> str:
    from gkd.train import fmt

    if r is None:
        return "—"
    if not with_gain or r["variant"] == "plain":
        return fmt(r["test_mean"], r["test_std"])
    return f"{fmt(r['test_mean'], r['test_std'])} ({r['gain'] * 100:+.2f} ± {r['gain_se'] * 100:.2f})"


def paired_val_difference(rows: list[dict], label: str, other: str, datasets: list[str], models: list[str]
                          ) -> tuple[float, float | None] | None:
    """Validation accuracy (points) of ``label`` minus ``other``'s, paired by dataset, backbone and seed / split over
    the real datasets: mean and standard error (``None`` where they share fewer than two runs)."""
    def runs(variant: str) -> dict[tuple, float]:
        return {(x["dataset"].lower(), x["model"], r["seed"]): r["val"] for x in rows
                if x["variant"] == variant and x["dataset"].lower() in real and x["model"] in models
                for r in x["runs"]}

    real = {d.lower() for d in datasets}
    a, b = runs(label), runs(other)
    diffs = [(a[k] - b[k]) * 100 for k in a.keys() & b.keys()]
    return mean_se(diffs) if len(diffs) >= 2 else None


def report(result: dict, out: Path) -> int:
    save_json(out, "self_distill", result)
    rows, models, datasets = result["rows"], result["models"], result["datasets"]

    def find(ds: str, m: str, label: str) -> dict | None:
        return next((x for x in rows if x["dataset"].lower() == ds.lower() and x["model"] == m
                     and x["variant"] == label), None)

    default = result["default"]
    lines = [f"### Self-distillation on {len(datasets)} datasets: default terms vs plain ({result['runs']} seeds / "
             "splits)", "",
             *md_table(["dataset", *(f"{NAMES[m]} plain" for m in models), *(f"{NAMES[m]} SD (paired gain)"
                                                                             for m in models)],
                       [[ds, *(_cell(find(ds, m, "plain")) for m in models),
                         *(_cell(find(ds, m, default)) for m in models)] for ds in datasets]),
             "", "Cells: test accuracy % at the best-validation epoch, mean ± std; in brackets the gain over plain "
             "training, a paired difference over the same seeds/splits: mean ± standard error."]
    for m in models:
        labels = [label for label, _ in variants(True) if any(find(ds, m, label) for ds in datasets)]
        table = [[label, *(_cell(r) if (r := find(ds, m, label)) else "—" for ds in datasets)] for label in labels]
        lines += ["", f"#### {NAMES[m]}: each term", "", *md_table(["variant", *datasets], table)]
    alone = sorted({r["method_config"]["term_args"]["neighbour"]["graphs"] for r in rows
                    if r["variant"] in ("SD: neighbour", "SD: all terms")})
    lines += ["", "`graphs`: which graph the neighbour term propagates over (`input`: the graph itself; `features`: "
              "each node's 10 nearest neighbours by feature cosine; both: each epoch the trusted one better on "
              "validation, or "
              "with `choose=first` the input graph while it is trusted, else the features graph). "
              "—: not run (each term alone is run where `--per-term` says)."
              + (f" The neighbour term alone ran with its default of the time, `graphs={', '.join(alone)}`."
                 if alone else "")
              + (" A candidate whose resolved configuration equals a row already run (a term alone) is that row, "
                 "not run twice (the runs are seeded)." if any("same_as" in r for r in rows) else "")]
    # how the default was chosen: validation, averaged over the datasets and the sweep
    cands = result["candidates"]
    choice = []
    for label in cands:
        real = [x for x in rows if x["variant"] == label and x["dataset"] != "synthetic-csbm"]
        synth = [x for x in rows if x["variant"] == label and x["dataset"] == "synthetic-csbm"]
        if not real:
            continue

        def avg(xs, key):
            return sum(x[key] for x in xs) / len(xs) * 100 if xs else float("nan")

        worst = min(real, key=lambda x: x["val_gain"])
        vs = paired_val_difference(rows, label, default, datasets, models)
        short = f" ({len(real)} of {len(datasets) * len(models)} dataset × backbone rows)" \
            if len(real) < len(datasets) * len(models) else ""
        choice.append([label + (" (the default)" if label == default else "") + short,
                       f"{avg(real, 'val_gain'):+.2f}",
                       "" if label == default else "—" if vs is None else f"{vs[0]:+.2f} ± {vs[1]:.2f}",
                       f"{avg(synth, 'val_gain'):+.2f}" if synth else "—",
                       f"{worst['val_gain'] * 100:+.2f} ({worst['dataset']}, {NAMES[worst['model']]})",
                       f"{avg(real, 'gain'):+.2f}"])
    lines += ["", "#### Choosing the default: validation gain, paired against the default and averaged over plain", "",
              *md_table(["setting", f"{len(datasets)} datasets × {len(models)} models: val gain",
                         "− the default's, paired", "sweep: val gain", "worst val gain",
                         "(test gain, not used to choose)"], choice),
              "", "*− the default's, paired*: the setting's validation accuracy minus the default's on the same "
              "dataset, backbone and seed / split, mean ± standard error over those pairs (a default changes only "
              "for a difference of more than twice its standard error)."]
    cost = []
    for ds in datasets:
        parts = []
        for m in models:
            pl, sd = find(ds, m, "plain"), find(ds, m, default)
            if pl and sd:
                per_run = [sum(x["seconds"] for x in r["runs"]) / len(r["runs"]) for r in (pl, sd)]
                parts.append(f"{NAMES[m]} ×{per_run[1] / per_run[0]:.1f}")
        if parts:
            cost.append(f"{ds} {', '.join(parts)}")
    if cost:
        lines += ["", "Training time per run, default terms / plain (plain epochs, then the terms' own patience; rows "
                  "added later with `--missing` ran in another invocation, under other load on the 2 cores, so "
                  "these ratios are rough): " + "; ".join(cost) + "."]
    t = result["epoch_time"]
    epochs = 20 if result["quick"] else 60  # as epoch_times measured them
    lines += ["", f"Epoch time of the default terms on {datasets[0]}, relative to plain ({epochs} epochs of each, back "
              "to back in one process, one thread, the terms on from the first epoch): "
              + ", ".join(f"{NAMES[m]} ×{t[m]['self-distill'] / t[m]['plain']:.2f} ({t[m]['plain'] * 1000:.0f} ms "
                          "plain)" for m in t) + ". A self-distilled run also trains longer: the terms start where "
                          "plain training would stop and get the same patience again."]
    sweep = []
    sel_label = [c for c in cands if any(x["variant"] == c and x["dataset"] == "synthetic-csbm" for x in rows)]
    for h in result["homophily"]:
        cells = []
        for m in result["sweep_models"]:
            sel = [x for x in rows if x["dataset"] == "synthetic-csbm" and x["dataset_args"].get("homophily") == h
                   and x["model"] == m]
            cells.append(_cell(next((x for x in sel if x["variant"] == "plain"), None)))
            cells += [_cell(next((x for x in sel if x["variant"] == c), None)) for c in sel_label]
        sweep.append([h, *cells])
    if sweep:
        lines += ["", f"### Homophily sweep on synthetic-csbm (3,000 nodes, 5 classes, degree 10; "
                  f"{result['sweep_runs']} seeds)", "",
                  *md_table(["homophily", *(f"{m} {kind}" for m in result["sweep_models"]
                                            for kind in ("plain", *sel_label))], sweep)]
    lines += ["", invocations_line(result),
              f"The invocations took {result['minutes']:.0f} minutes in all (re-runs of a subset included). "
              "Regenerate: `python benchmarks/self_distill.py` (`--datasets` re-runs a subset, `--variants` some rows "
              "of it, `--timing-only` re-measures the epoch times)."]
    return save_markdown(out, "self_distill", lines)


if __name__ == "__main__":
    sys.exit(main())
