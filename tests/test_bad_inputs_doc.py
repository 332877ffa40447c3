"""tests/README.md lists the guarded bad inputs; each message fragment must be produced by gkd and asserted by a test."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rows():
    text = (ROOT / "tests" / "README.md").read_text()
    return re.findall(r"^\| (\d+) \| .*? \| .*? \| `(.+?)` \|$", text, re.M)


def test_at_least_25_bad_inputs_listed():
    numbers = [int(n) for n, _ in rows()]
    assert len(numbers) >= 25 and numbers == list(range(1, len(numbers) + 1))


def test_every_listed_message_is_produced_and_asserted():
    source = "\n".join(p.read_text() for p in (ROOT / "gkd").rglob("*.py"))
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name)
    flat_tests = tests.replace("\\", "")  # fragments may sit inside regexes there
    missing_src = [m for _, m in rows() if m not in source]
    missing_test = [m for _, m in rows() if m not in tests and m not in flat_tests]
    assert not missing_src, f"listed but never raised by gkd: {missing_src}"
    assert not missing_test, f"listed but asserted by no test: {missing_test}"
