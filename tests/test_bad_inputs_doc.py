"""tests/README.md lists the guarded bad inputs. Every row names the test that runs it; for every row the message
fragment must be produced by gkd, the named test must exist, and the fragment must sit in that test's own source (its
body and decorators, or a module-level table or helper it names), so that deleting the check a row documents fails the
named test, not merely some test that shares a common fragment."""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
ROW = re.compile(r"^\| (\d+) \| (.*?) \| (.*?) \| `(.+?)` \| `(test_\w+\.py)::(test_\w+)(?:\[([^\]]+)\])?` \|$", re.M)


def table_lines() -> list[str]:
    text = (TESTS / "README.md").read_text()
    return [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]


def rows() -> list[tuple[int, str, str, str, str | None]]:
    """(number, fragment, test file, test function, parametrised id or None) for every row of the table."""
    found = []
    for line in table_lines():
        m = ROW.match(line)
        assert m, f"a table row without a `test_file.py::test_name` column: {line}"
        found.append((int(m[1]), m[4], m[5], m[6], m[7]))
    return found


@lru_cache(maxsize=None)
def sources_of(filename: str) -> dict[str, str]:
    """``{test name: its source}`` for ``tests/FILENAME``: the function with its decorators, followed by every
    module-level assignment (a parametrize table) and helper function whose name the test or its decorators use."""
    path = TESTS / filename
    if not path.is_file():
        return {}
    src = path.read_text()
    lines = src.splitlines()
    tree = ast.parse(src)

    def segment(node) -> str:
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        return "\n".join(lines[start - 1:node.end_lineno])

    module_level: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("test_"):
            module_level[node.name] = segment(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        module_level[name.id] = segment(node)
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            used = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & module_level.keys())
            out[node.name] = "\n".join([segment(node)] + [module_level[n] for n in used])
    return out


def holds(source: str, fragment: str) -> bool:
    return fragment in source or fragment in source.replace("\\", "")  # fragments may sit inside regexes


def test_at_least_25_bad_inputs_listed_and_numbered():
    numbers = [n for n, *_ in rows()]
    assert len(numbers) >= 25 and numbers == list(range(1, len(numbers) + 1))


def test_every_row_names_a_test_that_exists():
    missing = [f"row {n}: {f}::{t}" for n, _, f, t, _ in rows() if t not in sources_of(f)]
    assert not missing, f"rows naming a test that does not exist: {missing}"


def test_every_named_test_asserts_its_rows_fragment():
    bad = [f"row {n}: {f}::{t} never mentions {frag!r}" for n, frag, f, t, _ in rows()
           if t in sources_of(f) and not holds(sources_of(f)[t], frag)]
    assert not bad, "rows whose named test does not hold the message:\n" + "\n".join(bad)


def string_literals(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_every_named_parameter_id_is_in_its_test():
    """A ``[id]`` after a test's name is one of its parametrised cases: a string in its source (``pytest.param(...,
    id=...)``, ``ids=[...]`` or a dict key of its table)."""
    bad = [f"row {n}: {f}::{t}[{i}]" for n, _, f, t, i in rows()
           if i is not None and t in sources_of(f) and i not in string_literals(sources_of(f)[t])]
    assert not bad, f"rows naming a parameter id their test does not have: {bad}"


def test_every_listed_message_is_produced_by_gkd():
    files = [*(ROOT / "gkd").rglob("*.py"), ROOT / "benchmarks" / "run.py"]  # run.py: the benchmarks' runner
    source = "\n".join(p.read_text() for p in files if p.is_file())
    missing = [f"row {n}: {frag!r}" for n, frag, *_ in rows() if frag not in source]
    assert not missing, f"listed but never raised by gkd: {missing}"
