"""Rebuild the README's results sections from benchmarks/results/*.md.

    python benchmarks/report.py          # rewrite README.md in place
    python benchmarks/report.py --check  # exit 1 if README.md is out of date (the test suite runs this)

Each region ``<!-- results:NAME -->`` … ``<!-- /results:NAME -->`` in README.md receives results/NAME.md verbatim.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REGION = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def render(readme: str) -> str:
    def fill(m: re.Match) -> str:
        path = RESULTS / f"{m['name']}.md"
        body = path.read_text() if path.is_file() else f"_No results yet: run the `{m['name']}` benchmark._\n"
        return m.group(1) + body + m.group(4)

    return REGION.sub(fill, readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md results sections are out of date: run python benchmarks/report.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        from gkd.io import atomic_write_text

        atomic_write_text(readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
