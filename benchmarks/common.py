"""What the benchmark scripts share: their command line, worker processes, fresh child processes, and the tail that
writes results/NAME.{json,md,png}.

The scripts run as ``python benchmarks/NAME.py`` (``benchmarks/run.py`` runs them so too), which puts this folder first on
``sys.path``: they import this module as ``common``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

RESULTS = Path(__file__).resolve().parent / "results"


def parser(doc: str, quick: str, *, jobs: bool = False) -> argparse.ArgumentParser:
    """The command line every benchmark has: described by its docstring's first line, with ``--quick`` (``quick``
    says what it shrinks), ``--out`` and, for the scripts that fan out over worker processes, ``--jobs``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results)")
    if jobs:
        p.add_argument("--jobs", type=int, default=2,
                       help="worker processes, GKD_BENCH_THREADS torch threads each (default 2 processes, 1 thread)")
    return p


def bench_threads() -> int:
    """Torch threads per worker process: ``GKD_BENCH_THREADS``, default 1."""
    return int(os.environ.get("GKD_BENCH_THREADS", "1"))


def _init_worker() -> None:
    import torch

    torch.set_num_threads(bench_threads())


def run_pool(fn: Callable[[Any], Any], tasks: Iterable, jobs: int, desc: str) -> list:
    """``[fn(t) for t in tasks]`` in ``jobs`` worker processes of :func:`bench_threads` torch threads each; results
    in task order, a progress bar on stderr. ``fn`` must be a module-level function (it is pickled)."""
    from tqdm.auto import tqdm

    tasks = list(tasks)
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
        return list(tqdm(pool.map(fn, tasks), total=len(tasks), desc=desc, file=sys.stderr))


def run_child(script: str, *args: Any) -> dict:
    """Run ``script`` (the calling benchmark's ``__file__``) with ``args`` in a fresh Python process, so that the peak
    memory it measures is its own; returns the JSON object the child printed last (see :func:`reply`)."""
    # the child's stderr (progress, a traceback) goes to ours as it runs
    proc = subprocess.run([sys.executable, script, *map(str, args)], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reply(obj: dict) -> int:
    """A child's answer to :func:`run_child`: ``obj`` as one JSON line on stdout; returns exit code 0."""
    print(json.dumps(obj))
    return 0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux reports KiB


def csbm_name(nodes: int) -> str:
    """How results name a synthetic-csbm graph of ``nodes`` nodes: csbm-100k, csbm-1M, csbm-2.5M."""
    return f"csbm-{nodes // 1000}k" if nodes < 1_000_000 else f"csbm-{nodes / 1e6:g}M"


def load_results(out: str | os.PathLike, name: str) -> dict:
    """A previous run's ``out/NAME.json`` (for the options that re-run part of a benchmark or only its report). None
    there, or one that is not JSON, is one ``NAME.py: error:`` line and exit code 2, not a traceback."""
    path = Path(out) / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        why = "does not exist" if isinstance(e, FileNotFoundError) else f"cannot be read ({type(e).__name__}: {e})"
        script = Path(sys.argv[0])  # the running script (student_guard.py writes student_guard_seed100.json too)
        prefix = script.name if script.resolve().parent == Path(__file__).resolve().parent else f"{name}.py"
        print(f"{prefix}: error: {path} {why}; expected the results of a whole earlier run of this benchmark "
              "there (the options that re-run a part of it, or only its report, keep the rest from that file)",
              file=sys.stderr)
        raise SystemExit(2) from None


def save_json(out: str | os.PathLike, name: str, result: dict) -> None:
    """``out/NAME.json``, strict (no NaN) and atomic; written before the Markdown is built, so that a report bug
    never loses a long run's figures."""
    from gkd.io import write_json

    write_json(Path(out) / f"{name}.json", result)


def code_version() -> str | None:
    """The git commit the benchmark scripts and ``gkd`` were run from, ``+modified`` when either differs from it
    (results files excepted), so that a stored row names the code that made it; ``None`` outside a git checkout."""
    top = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(top), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", "gkd", "benchmarks", ":(exclude)benchmarks/results")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+modified" if changed else "")


def comma_list(text: str, *, fold_case: bool = False) -> list[str]:
    """A comma list option's names in order, blanks and repeats dropped (``fold_case``: ``Texas,texas`` is one, as
    dataset names are), so that a repeated name never runs or counts twice."""
    names = (n.strip() for n in text.split(","))
    return list({(n.lower() if fold_case else n): n for n in names if n}.values())


def ran_as(script: str, argv: Sequence[str] | None) -> str:
    """How a results file names the command that made it: ``script.py ARGS`` in backticks (``argv`` None: this
    process's own arguments)."""
    return f"`{' '.join([script, *map(str, sys.argv[1:] if argv is None else argv)])}`"


def invocations(old: dict | None, kept: bool, ran: str, minutes: float, rows: int | None = None,
                replaced: int = 0) -> list[dict]:
    """Every invocation whose rows the results file holds, oldest first, this one last: what it ran (``rows`` new
    rows, ``replaced`` of them re-runs of stale ones), how long it took, on which machine, from which commit
    (:func:`code_version`; invocations before it was recorded have none). A re-run of a subset
    (``--datasets``, ``--missing``) keeps older rows that may have run on another machine; files from before this
    record name only the last machine, and are listed as such."""
    import datetime

    from gkd.train import environment

    past: list[dict] = []
    if old is not None and kept:
        past = list(old.get("invocations", []))
        if not past and "environment" in old:
            env = old["environment"]
            past = [{"ran": "earlier invocations (recorded together, under the last one's machine)",
                     "cpu": env["cpu"], "torch": env["torch"]}]
    env = environment()
    now = {"ran": ran, "minutes": round(minutes, 1), "date": datetime.date.today().isoformat(), "cpu": env["cpu"],
           "torch": env["torch"], "threads_per_worker": bench_threads()}
    commit = code_version()
    if commit is not None:
        now["commit"] = commit
    if rows is not None:
        now.update(rows=rows, replaced=replaced)
    return past + [now]


def merge_rows(stored: Sequence[dict], fresh: Sequence[dict], key: Callable[[dict], Any],
               rerun: Callable[[dict], bool]) -> tuple[list[dict], int]:
    """A results file's rows after a run that made ``fresh``, and how many stored rows it kept as they were.

    Each stored row this run re-ran (``rerun``) is replaced where it stood by the fresh row of the same ``key``, or
    dropped when the run made none; the other stored rows are kept (unless a fresh row has their key: never two rows
    of one key); fresh rows new to the file go last, in the order they ran. So a re-run of part of a file that
    reproduces its rows rewrites the file unchanged. A run that keeps no stored row is a new file: its rows in the
    order they ran."""
    new = {key(r): r for r in fresh}
    kept = sum(1 for r in stored if not rerun(r) and key(r) not in new)
    if not kept:
        return list(new.values()), 0
    rows = [new.pop(key(r), r) for r in stored if not rerun(r) or key(r) in new]
    return rows + list(new.values()), kept


def invocations_line(result: dict) -> str:
    """The footer sentence naming each invocation's machine (or, for files from before, the last one's)."""
    calls = result.get("invocations")
    if not calls:
        env = result["environment"]
        return f"Measured on {env['cpu']}, torch {env['torch']}."

    def one(c: dict) -> str:
        what = [f"{c['rows']} rows" + (f", {c['replaced']} of them stale ones re-run" if c.get("replaced") else "")
                ] if "rows" in c else []
        what += [f"{c['minutes']:.0f} min", c["date"]] if "minutes" in c else []
        what += [f"commit {c['commit']}"] if "commit" in c else []
        threads = c.get("threads_per_worker")
        where = f"{c['cpu']}, torch {c['torch']}" + (
            f", {threads} torch thread{'s' if threads != 1 else ''} per worker" if threads else "")
        return c["ran"] + (f" ({', '.join(what)})" if what else "") + f": {where}"

    return "Measured, by invocation: " + "; ".join(map(one, calls)) + "."


def mean_se(diffs: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of paired differences (``None`` for fewer than two)."""
    m = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return m, None
    return m, (sum((x - m) ** 2 for x in diffs) / (len(diffs) - 1) / len(diffs)) ** 0.5


def paired_points(a: dict, b: dict, key: str = "val", b_key: str | None = None) -> list[float]:
    """Row ``a``'s ``key`` minus row ``b``'s ``b_key`` (default the same key), in points, seed by seed over the seeds /
    splits both rows ran."""
    other = {x["seed"]: x[b_key or key] for x in b["runs"]}
    return [100 * (x[key] - other[x["seed"]]) for x in a["runs"] if x["seed"] in other]


def stat(runs: Sequence[dict], key: str) -> str:
    """``key`` over the runs that hold it as ``mean ± std`` in percent (``—`` when none does)."""
    from gkd.train import fmt, mean_std

    vals = [r[key] for r in runs if key in r]
    return fmt(*mean_std(vals)) if vals else "—"


def paired_text(points: Sequence[float]) -> str:
    """Paired differences as ``+m ± se`` points."""
    m, se = mean_se(points)
    return f"{m:+.2f} ± {se or 0:.2f}"


def choose_in_order(names: Sequence[Any], points: Callable[[Any, Any], list[float]]) -> tuple[Any, list[tuple]]:
    """``names`` in order (cheapest or simplest first): each replaces the current choice only if its paired
    differences against it, ``points(name, choice)``, average more than twice their standard error. Returns
    ``(choice, steps)``, each step ``(name, against, mean, se, taken)``."""
    choice, steps = names[0], []
    for name in names[1:]:
        m, se = mean_se(points(name, choice))
        taken = se is not None and m > 2 * se
        steps.append((name, choice, m, se, taken))
        choice = name if taken else choice
    return choice, steps


def md_row(cells: Sequence[Any]) -> str:
    """One Markdown table row; an empty cell is ``| |``."""
    return "|" + "".join(f" {c} |" if str(c) else " |" for c in cells)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines: header, separator, then one line per row."""
    return [md_row(header), "|" + "---|" * len(header), *(md_row(r) for r in rows)]


def save_markdown(out: str | os.PathLike, name: str, lines: list[str]) -> int:
    """``out/NAME.md`` (atomic), echoed on stdout; returns exit code 0 for the script's ``main``."""
    from gkd.io import atomic_write_text

    text = "\n".join(lines)
    atomic_write_text(Path(out) / f"{name}.md", text + "\n")
    print(text)
    return 0


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path, dpi: int) -> None:
    """``fig`` as a PNG at ``path``, written atomically."""
    import io

    from gkd.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())
