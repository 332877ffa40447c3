"""Run benchmark scripts (benchmarks/NAME.py) and refresh the results pages.

    python benchmarks/run.py inference_latency --quick --out runs/x   # one benchmark, small, into runs/x
    python benchmarks/run.py all --quick                              # every benchmark, small: runs/bench-quick
    python benchmarks/run.py gnn2mlp                                  # a full run into benchmarks/results, then
                                                                      # benchmarks/report.py rewrites the pages

Each script runs as ``python benchmarks/NAME.py --out DIR [--quick]``, each experiment (experiments/NAME.yaml) as
``python benchmarks/grid.py NAME --out DIR [--quick]``, with the repository as its working directory,
its output on stderr. ``--quick`` never writes over the committed results (its default folder is runs/bench-quick).
Bad input is one ``run.py: error: ...`` line on stderr and exit code 2; a failed benchmark stops the run, exit code 1.
This runner lives beside the scripts, not in the installed ``gkd`` package, which never reads this folder.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

FOLDER = Path(__file__).resolve().parent
ROOT = FOLDER.parent
RESULTS = FOLDER / "results"
# benchmarks declared as data (experiments/NAME.yaml), run by grid.py
EXPERIMENTS = tuple(sorted(p.stem for p in (FOLDER / "experiments").glob("*.yaml")))
# every script in this folder but common.py (shared code), grid.py (the experiments' runner), report.py (the pages)
# and this runner: tests/test_cli.py checks that none is left out
SCRIPTS = ("self_distill", "gnn2mlp", "inference_latency", "book_cost", "scale", "mhgd_digits",
              "amkd", "minibatch", "ogb_scale", "book_sweep", "feature_ceiling", "position_drop", "teacher_cost",
              "student_guard", "served_accuracy", "published")
BENCHMARKS = EXPERIMENTS + SCRIPTS
PROG = "run.py"


class BenchError(Exception):
    """Bad input (exit code 2) or a failed benchmark (``code``)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BenchError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=["all"], help=f"benchmarks to run, or all ({', '.join(BENCHMARKS)})")
    p.add_argument("--quick", action="store_true", help="fewer seeds/epochs, small graphs; writes to --out, never "
                   "over the committed results")
    p.add_argument("--out", help="results folder (default benchmarks/results; runs/bench-quick with --quick)")
    return p


def _out_folder(out: Path) -> None:
    """``--out`` is a folder that exists or can be made, and can be written (gkd's own check of output folders)."""
    from gkd import GKDError
    from gkd.io import check_output_folder

    try:
        check_output_folder(out, "--out", create=True)
    except GKDError as e:
        raise BenchError(str(e)) from None


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = list(BENCHMARKS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise BenchError(f"unknown benchmark(s) {unknown}; expected some of {', '.join(BENCHMARKS)} or all")
    # resolved here: the scripts run with the repository as their working directory
    out = Path(args.out).resolve() if args.out else (ROOT / "runs" / "bench-quick" if args.quick else RESULTS)
    _out_folder(out)
    for name in names:
        script = [str(FOLDER / "grid.py"), name] if name in EXPERIMENTS else [str(FOLDER / f"{name}.py")]
        cmd = [sys.executable, *script, "--out", str(out)] + (["--quick"] if args.quick else [])
        print(f"{PROG}: {name} ({' '.join(cmd[1:])})", file=sys.stderr)
        start = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT, stdout=sys.stderr)
        if code != 0:
            raise BenchError(f"benchmark {name!r} failed with exit code {code}", code=1)
        print(f"{PROG}: {name} done in {time.perf_counter() - start:.0f}s -> {out}", file=sys.stderr)
    if out.resolve() == RESULTS.resolve():
        subprocess.check_call([sys.executable, str(FOLDER / "report.py")], cwd=ROOT)
        print(f"{PROG}: results pages refreshed", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except BenchError as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
