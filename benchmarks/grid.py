"""One runner for benchmarks declared as data: benchmarks/experiments/NAME.yaml, a grid of gkd settings and targets.

    python benchmarks/grid.py NAME [--quick] [--jobs 2] [--cache DIR] [--fresh] [--out DIR]

An experiment file (read with gkd's strict YAML loader; unknown keys are errors)::

    title: Backbone baselines
    doc: what it measures and how (the report's first paragraph)
    command: train                        # train | distill: gkd.pipeline.run_training / run_distillation
    base: {run: {runs: 10}}               # settings every row shares, nested or flat as in a --config file
    quick: {run: {runs: 3}}               # on top of everything, with --quick
    datasets: [Cora]                      # the grid's first axis (data.dataset)
    rows:                                 # its second: label -> settings on top of base
      GCN: {model: {name: gcn}}
      GAT: {model: {name: gat}}
    baseline: GCN                         # paired differences against this row (optional)
    targets:                              # optional; each is stated met or not, with its measured figure
      - {row: GAT, against: GCN, at_least: 0.0}   # paired test difference in points (mean over seeds)
      - {row: GCN, at_least: 80.0, dataset: Cora} # mean test %

Every cell (dataset x row) is one validated config of gkd's public API, all of them built before the first row
trains; layers (base < dataset < row < quick) merge setting by setting, whichever spelling each uses. A cell's cache
key is the sha256 of the command and its validated config, so the nested and the flat spelling of one setting share a
row (two spellings of one value do not: a list of terms and a comma string are two keys). The data root, the device
``auto`` resolves to and the code are not in the key: a finished row is kept as JSON under the cache folder with the
commit that made it (``common.code_version``) and reused until ``--fresh``; the report names each row's commit, and a
row shared by two labels is reported under each. Writes OUT/NAME.json (the
experiment, the rows, the targets with their figures, the invocations) and OUT/NAME.md.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from common import (RESULTS, code_version, invocations, invocations_line, md_table, mean_se, paired_points,
                    paired_text, parser, run_pool, save_json, save_markdown, stat)

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
CACHE = Path(__file__).resolve().parent / ".cache"  # git-ignored
KEYS = {"title", "doc", "command", "base", "quick", "datasets", "rows", "baseline", "targets"}
TARGET_KEYS = {"row", "against", "at_least", "dataset"}
KEEP = ("seed", "val", "test", "train", "best_epoch", "epochs_run", "teacher_test", "test_tran", "test_ind", "guard")


class GridError(Exception):
    """A bad experiment file or command line: one ``grid.py: error:`` line, exit code 2."""


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise GridError(message)


def read_experiment(name_or_path: str) -> tuple[str, dict]:
    """``(name, experiment)`` from ``experiments/NAME.yaml`` or a path, its keys, rows and targets checked."""
    from gkd import GKDError
    from gkd.pipeline import parse_yaml

    path = Path(name_or_path)
    path = path if path.suffix in (".yaml", ".yml") else EXPERIMENTS / f"{name_or_path}.yaml"
    _need(path.is_file(), f"no experiment {name_or_path!r}; expected a YAML file or one of "
          f"{', '.join(sorted(p.stem for p in EXPERIMENTS.glob('*.yaml')))}")
    try:
        exp = parse_yaml(path.read_bytes().decode("utf-8"), f"experiment {str(path)!r}")
    except UnicodeDecodeError as e:
        raise GridError(f"{path} is not UTF-8 text (byte {e.start}); expected a YAML file") from None
    except GKDError as e:
        raise GridError(str(e)) from None
    _need(isinstance(exp, dict), f"{path}: expected a mapping with keys {sorted(KEYS)}")
    unknown = sorted(set(map(str, exp)) - KEYS)
    _need(not unknown, f"{path}: unknown key(s) {unknown}; known keys: {sorted(KEYS)}")
    _need(exp.get("command") in ("train", "distill"), f"{path}: command={exp.get('command')!r}; expected train or "
          "distill")
    rows = exp.get("rows")
    _need(isinstance(rows, dict) and rows and all(isinstance(k, str) and isinstance(v, dict) for k, v in rows.items()),
          f"{path}: rows={rows!r}; expected a mapping of labels to mappings of settings")
    for key in ("base", "quick"):
        _need(exp.get(key) is None or isinstance(exp[key], dict), f"{path}: {key}={exp.get(key)!r}; expected a "
              "mapping of settings")
    datasets = exp.get("datasets")
    _need(datasets is None or isinstance(datasets, list) and datasets and all(isinstance(d, str) for d in datasets),
          f"{path}: datasets={datasets!r}; expected a list of dataset names")
    _need(exp.get("baseline") is None or exp["baseline"] in rows, f"{path}: baseline={exp.get('baseline')!r}; "
          f"expected one of the rows {list(rows)}")
    targets = exp.get("targets") or []
    _need(isinstance(targets, list), f"{path}: targets={targets!r}; expected a list")
    for t in targets:
        ok = (isinstance(t, dict) and set(t) <= TARGET_KEYS and {"row", "at_least"} <= set(t)
              and all(isinstance(t.get(k, ""), str) for k in ("row", "against", "dataset"))
              and t["row"] in rows and t.get("against", t["row"]) in rows
              and isinstance(t["at_least"], (int, float)) and not isinstance(t["at_least"], bool)
              and (datasets is None or t.get("dataset", datasets[0]) in datasets))
        _need(ok, f"{path}: target {t!r}; expected row and at_least (a number), optionally against and dataset, "
              f"naming rows {list(rows)}{f' and datasets {datasets}' if datasets else ''}")
    return path.stem, exp


def _flat(cls: type, layer: dict | None, what: str) -> dict:
    """One layer of settings, nested or flat, as flat fields (``teacher_args`` too), so that layers merge by
    setting whatever spelling each uses."""
    from gkd import GKDError
    from gkd.pipeline import TrainConfig
    from gkd.sections import flatten

    try:
        flat = flatten(cls, layer or {}, what)
        if isinstance(flat.get("teacher_args"), dict):
            flat["teacher_args"] = flatten(TrainConfig, flat["teacher_args"], f"{what}: teacher_args")
    except GKDError as e:
        raise GridError(str(e)) from None
    return flat


def _merge(*layers: dict) -> dict:
    """Flat settings layered left to right; mapping values (``term_args``, ``dataset_args``, ``teacher_args``)
    merge key by key."""
    out: dict = {}
    for layer in layers:
        for k, v in layer.items():
            out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def cells(exp: dict, quick: bool) -> list[dict]:
    """Every (dataset, row) of the grid as a validated config of gkd's public API, with its cache key."""
    from gkd import GKDError
    from gkd.pipeline import DistillConfig, TrainConfig, make_config

    cls = DistillConfig if exp["command"] == "distill" else TrainConfig
    out = []
    for dataset in exp.get("datasets") or [None]:
        for label, row in exp["rows"].items():
            where = f"row {label!r}{f' on {dataset}' if dataset else ''}"
            layers = [_flat(cls, exp.get("base"), "base"), {} if dataset is None else {"dataset": dataset},
                      _flat(cls, row, where), _flat(cls, exp.get("quick") if quick else None, "quick")]
            try:
                cfg = make_config(None, _merge(*layers), cls, source=where)
            except GKDError as e:
                raise GridError(f"{where}: {e}") from None
            flat = cfg.to_dict()
            # the validated config as given: two spellings of one value (a list of terms and a comma string) differ
            key = hashlib.sha256(json.dumps({"command": exp["command"], "config": flat}, sort_keys=True,
                                            default=str).encode()).hexdigest()[:16]
            out.append({"command": exp["command"], "row": label, "dataset": cfg.dataset, "config": flat, "key": key})
    return out


def run_cell(task: tuple[dict, str | None, bool]) -> dict:
    """One cell through gkd's public pipeline (what ``gkd train`` / ``gkd distill`` run), or its cached row (not
    with ``fresh``, which runs it again and replaces the cached row)."""
    from gkd import GKDError
    from gkd.io import read_json
    from gkd.pipeline import DistillConfig, TrainConfig, make_config, run_distillation, run_training

    cell, cache, fresh = task
    path = Path(cache) / f"{cell['key']}.json" if cache else None
    if path is not None and path.exists() and not fresh:
        try:
            row = read_json(path, "a cached row", limit=1 << 26)
            ok = isinstance(row, dict) and isinstance(row.get("runs"), list) and row.get("config") == cell["config"]
        except GKDError as e:
            raise GridError(f"cached row {path}: {e}; run with --fresh to replace it") from None
        if not ok:
            raise GridError(f"cached row {path} is not the row of this config; run with --fresh to replace it")
        # the same settings under another label (or experiment) share the row: it is reported under this one's
        return {**row, "row": cell["row"], "dataset": cell["dataset"], "cached": True}
    try:
        if cell["command"] == "distill":
            res = run_distillation(make_config(None, cell["config"], DistillConfig), progress=False)
        else:
            res = run_training(make_config(None, cell["config"], TrainConfig), progress=False)
    except GKDError as e:  # what only the data can say (a split larger than the graph): one line, as gkd's CLI
        raise GridError(f"row {cell['row']!r} on {cell['dataset']}: {e}") from None
    row = {**cell, "commit": code_version(), "seconds": res["seconds"], "split": res["split"],
           "edges": res["edges"], "metric": res["metric"],
           "runs": [{k: r[k] for k in KEEP if k in r} for r in res["runs"]]}
    if path is not None:
        save_json(path.parent, path.stem, row)  # strict and atomic, as every results file
    return {**row, "cached": False}


def targets(exp: dict, rows: list[dict]) -> list[dict]:
    """Each target per dataset, with its measured figure and whether it is met."""
    by = {(r["dataset"], r["row"]): r for r in rows}
    out = []
    for t in exp.get("targets") or []:
        matched = False
        for ds in dict.fromkeys(r["dataset"] for r in rows):
            if t.get("dataset", ds) != ds:
                continue
            matched, a = True, by[(ds, t["row"])]
            if "against" in t:
                points = paired_points(a, by[(ds, t["against"])], "test")
                value, se = mean_se(points) if points else (None, None)
                what = f"{t['row']} − {t['against']}, paired test points"
            else:
                value, se = 100 * sum(r["test"] for r in a["runs"]) / len(a["runs"]), None
                what = f"{t['row']}, mean test %"
            out.append({**t, "dataset": ds, "what": what, "value": None if value is None else round(value, 4),
                        "se": None if se is None else round(se, 4), "met": value is not None and value >= t["at_least"],
                        **({"why": "no seed in common"} if value is None else {})})
        if not matched:  # a dataset no row ran on: stated, not dropped
            out.append({**t, "what": f"{t['row']}", "value": None, "se": None, "met": False,
                        "why": f"no row ran on {t.get('dataset')}"})
    return out


def report(name: str, exp: dict, rows: list[dict], runs: int) -> list[str]:
    """The generic report: one table of every row, the targets, and what the runs used."""
    by = {(r["dataset"], r["row"]): r for r in rows}
    base = exp.get("baseline")

    def paired(r: dict) -> str:
        points = [] if base is None or r["row"] == base else paired_points(r, by[(r["dataset"], base)], "test")
        if not points:
            return "—" if base is None or r["row"] == base else "— (no seed in common)"
        return paired_text(points)

    table = [[r["dataset"], r["row"], stat(r["runs"], "val"), stat(r["runs"], "test"), *([paired(r)] if base else []),
              f"{r['seconds'] / len(r['runs']):.1f}", r.get("commit") or "—"] for r in rows]
    lines = [f"### {exp.get('title', name)} ({runs} seeds)", "",
             *md_table(["dataset", "row", "val", "test", *([f"− {base} (paired)"] if base else []), "s / run",
                        "commit"], table), ""]
    for t in targets(exp, rows):
        figure = (t["why"] if t["value"] is None else f"{t['value']:+.2f} ± {t['se'] or 0:.2f}" if "against" in t
                  else f"{t['value']:.2f}")
        lines.append(f"- Target: {t['what']} ≥ {t['at_least']} on {t['dataset']}: {figure}, "
                     f"{'met' if t['met'] else '**NOT met**'}.")
    used = sorted({f"{r['dataset']}: split {r['split']}; edges {r['edges']}; metric {r['metric']}" for r in rows})
    lines += ([""] if exp.get("targets") else []) + [
        " ".join(str(exp.get("doc", "")).split()),
        "Per run: " + " | ".join(used) + ".",
        f"Score %, mean ± std over seeds, at the best-validation epoch; paired differences in points (mean ± s.e.). "
        f"Regenerate: `python benchmarks/grid.py {name}`."]
    return lines


def main(argv=None) -> int:
    p = parser(__doc__, "the experiment's quick settings (smoke test)", jobs=True)
    p.add_argument("name", help="an experiment in benchmarks/experiments (or a YAML path)")
    p.add_argument("--cache", default=str(CACHE), help="folder of finished rows, keyed by the command and the "
                   "validated config (default benchmarks/.cache); rows are reused whatever commit made them")
    p.add_argument("--fresh", action="store_true", help="run every row again (the cache is then refreshed)")
    args = p.parse_args(argv)
    try:
        _need(args.jobs >= 1, f"--jobs {args.jobs}; expected at least 1 worker process")
        name, exp = read_experiment(args.name)
        own = Path(args.name).suffix not in (".yaml", ".yml") or Path(args.name).resolve().parent == EXPERIMENTS
        _need(own or Path(args.out).resolve() != RESULTS.resolve(), f"{args.name} is not one of "
              f"benchmarks/experiments: its results would replace the committed results/{name}.*; pass --out DIR")
        todo = cells(exp, args.quick)  # every config validated before the first row trains
    except GridError as e:
        print(f"grid.py: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        rows = run_pool(run_cell, [(c, args.cache or None, args.fresh) for c in todo], args.jobs, name)
    except GridError as e:
        print(f"grid.py: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    minutes = (time.perf_counter() - start) / 60
    runs = max(len(r["runs"]) for r in rows)
    fresh = sum(not r["cached"] for r in rows)
    result = {"benchmark": name, "experiment": exp, "quick": args.quick, "rows": rows,
              "targets": targets(exp, rows),
              "invocations": invocations(None, False, f"grid.py {name}{' --quick' if args.quick else ''}", minutes,
                                         rows=fresh)}
    out = Path(args.out)
    save_json(out, name, result)
    lines = report(name, exp, rows, runs) + [invocations_line(result)]
    return save_markdown(out, name, lines)


if __name__ == "__main__":
    sys.exit(main())
