"""Mutation check of tests/README.md's bad-input table (not collected by pytest: run it by hand).

For a sample of rows, delete the check that raises the row's error in a temporary copy of the repository, run the
test the row names there, and report that it fails (and that it passed before the check was deleted):

    nice -n 15 python tests/mutate_rows.py            # copies the working tree
    nice -n 15 python tests/mutate_rows.py --head     # HEAD, with the table and its tests from the working tree
    nice -n 15 python tests/mutate_rows.py --rows 5 91

Exit status 0 when every mutant is caught: each named test passes on the copy as it is and fails without its check.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis",
                                 "runs", "build")
OWN = ("README.md", "test_bad_inputs_doc.py", "test_bad_input_rows.py", "mutate_rows.py")  # taken by --head too

# row: (file under the repository, the text of its check, the same text with the check deleted)
MUTANTS: dict[int, tuple[str, str, str]] = {
    5: ("gkd/datasets/ogb.py", "        ensure_writable(cache.parent)\n", "        pass  # check deleted\n"),
    24: ("gkd/config.py", "check(isinstance(self.method, str) and self.method.lower() in methods, f\"unknown method",
         "check(True, f\"unknown method"),
    30: ("gkd/distill/losses.py", "check(isinstance(temperature, (int, float)) and not isinstance(temperature, bool)\n"
         "          and 0 < temperature <= MAX_TEMPERATURE,", "check(True,"),
    53: ("gkd/vision/builder.py", "check(len(counts) == 1, f\"taps have different sample counts",
         "check(True, f\"taps have different sample counts"),
    69: ("gkd/distill/nosmog.py", "check_int(\"position dim\", self.dim, 1, ConfigError)", "pass"),
    91: ("gkd/datasets/validate.py", "check(both == 0, f\"{a} and {b} overlap in", "check(True, f\"{a} and {b} overlap in"),
    117: ("gkd/config.py", "raise yaml.constructor.ConstructorError(None, None, f\"duplicate key {key!r}\", "
          "key_node.start_mark)", "pass"),
    129: ("gkd/scale/distributed.py", "check(0 < timeout <= 86400, f\"GKD_DIST_TIMEOUT",
          "check(True, f\"GKD_DIST_TIMEOUT"),
    130: ("gkd/distill/ffg2m.py", "check(isinstance(self.steps, int) and self.steps >= 1, f\"neighbour steps=",
          "check(True, f\"neighbour steps="),
    146: ("gkd/pipeline/gnn2mlp.py", "check(self.student_ is not None, \"this GNNToMLP is not fitted yet",
          "check(True, \"this GNNToMLP is not fitted yet"),
    169: ("gkd/distill/registry.py", "check(old is None or old.build is build",
          "check(True or old is None or old.build is build"),
    198: ("gkd/pipeline/student.py", "check(all(extra), f\"method {method!r} has an empty term",
          "check(True, f\"method {method!r} has an empty term"),
}


def named_tests() -> dict[int, str]:
    """``{row: "tests/FILE.py::TEST"}`` from the table's last column."""
    text = (REPO / "tests" / "README.md").read_text()
    return {int(n): f"tests/{test}" for n, test in
            re.findall(r"^\| (\d+) \| .*\| `(test_\w+\.py::test_\w+(?:\[[^\]]+\])?)` \|$", text, re.M)}


def copy_repository(dest: Path, head: bool) -> None:
    if head:  # the repository as committed, with the table and its own tests from the working tree
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        for name in OWN:
            shutil.copy2(REPO / "tests" / name, dest / "tests" / name)
    else:
        shutil.copytree(REPO, dest, ignore=IGNORED, dirs_exist_ok=True)


def run_test(copy: Path, test: str, timeout: float) -> tuple[int, str, float]:
    """Run one test in the copy (its gkd/ comes first on sys.path: ``python -m`` puts the working directory there)."""
    start = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", test], cwd=copy,
                           capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return -1, "timed out", time.monotonic() - start
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    failed = next((line for line in lines if line.startswith("E ")), lines[-1] if lines else "")
    return r.returncode, failed.strip()[:160], time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=sorted(MUTANTS), help="rows to mutate (of MUTANTS)")
    parser.add_argument("--head", action="store_true", help="the repository as committed (HEAD), with the table and its tests (OWN) from the working tree")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    tests = named_tests()
    tmp = Path(tempfile.mkdtemp(prefix="gkd-mutate-"))
    copy = tmp / "repo"
    copy_repository(copy, args.head)
    where = subprocess.run([sys.executable, "-c", "import gkd; print(gkd.__file__)"], cwd=copy, capture_output=True,
                           text=True).stdout.strip()
    assert where.startswith(str(copy)), f"the copy's tests would import gkd from {where}, not from {copy}"
    print(f"copy of {REPO} ({'HEAD' if args.head else 'working tree'}) at {copy}")
    caught, results = 0, []
    for row in args.rows:
        path, old, new = MUTANTS[row]
        test = tests[row]
        target = copy / path
        source = target.read_text()
        count = source.count(old)
        if count != 1:
            results.append((row, test, f"SKIPPED: the check's text occurs {count} times in {path} (moved?)"))
            continue
        line = source[:source.index(old)].count("\n") + 1
        base_code, base_msg, base_s = run_test(copy, test, args.timeout)
        target.write_text(source.replace(old, new))
        try:
            code, msg, s = run_test(copy, test, args.timeout)
        finally:
            target.write_text(source)
        if base_code != 0:
            verdict = f"BASELINE FAILS (rc {base_code}: {base_msg})"
        elif code == 1:
            verdict = f"caught: the test fails without the check ({s:.0f}s): {msg}"
            caught += 1
        elif code == 0:
            verdict = "NOT CAUGHT: the test still passes without the check"
        else:
            verdict = f"inconclusive: pytest exit code {code} ({msg})"
        results.append((row, test, f"{path}:{line} deleted -> {verdict}"))
        print(f"row {row}: {test}\n    {results[-1][2]}", flush=True)
    print(f"\n{caught} of {len(args.rows)} mutants caught")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if caught == len(args.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
