"""The benchmarks use gkd's public API only (issue #40 item 5): every gkd import in ``benchmarks/*.py`` (read with
``ast``, function-level imports included: those run only when the function is called, so importing a script proves
nothing about them) is ``import gkd`` or ``from gkd[.PACKAGE] import NAME`` with ``PACKAGE`` one of the public
packages and ``NAME`` in its ``__all__``. Each name in those ``__all__`` lists resolves."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))

# the packages whose __all__ is gkd's public API
PUBLIC = ("gkd", "gkd.pipeline", "gkd.datasets", "gkd.distill", "gkd.train", "gkd.nn", "gkd.metrics", "gkd.vision",
          "gkd.scale", "gkd.io", "gkd.sections")


def _exports() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC}


def private_imports(source: str, filename: str, exports: dict[str, set[str]]) -> list[str]:
    """The gkd imports of ``source`` that are not ``import gkd`` / ``from PUBLIC_PACKAGE import NAME_IN___all__``,
    as ``file:line: what``."""
    bad = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gkd" and alias.name != "gkd":
                    bad.append(f"{where}: import {alias.name} (a module inside gkd; import from its package)")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                continue  # a benchmark's own modules (benchmarks/ is no package: none today)
            if module.split(".")[0] != "gkd":
                continue
            if module not in exports:
                bad.append(f"{where}: from {module} import ... ({module} is not one of the public packages "
                           f"{', '.join(PUBLIC)})")
                continue
            for alias in node.names:
                if alias.name not in exports[module]:
                    bad.append(f"{where}: from {module} import {alias.name} ({alias.name!r} is not in "
                               f"{module}.__all__)")
    return bad


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 10, BENCHMARKS


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_public_names_only(path):
    bad = private_imports(path.read_text(), str(path.relative_to(ROOT)), _exports())
    assert not bad, "benchmarks import gkd's public API only:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", PUBLIC)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{package}.__all__ repeats {sorted(n for n in names if names.count(n) > 1)}"
    missing = [n for n in names if not hasattr(module, n)]  # gkd's lazy names (gkd.load) resolve through __getattr__
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def test_the_check_sees_private_imports():
    """The walker is not blind: a module inside a package, a name outside __all__, a private name and a function-level
    import are each found; public ones pass."""
    exports = {"gkd": {"GKDError"}, "gkd.pipeline": {"DistillConfig"}}
    source = ("import gkd\n"
              "from gkd import GKDError\n"
              "from gkd.pipeline import DistillConfig\n"
              "def f():\n"
              "    from gkd.pipeline.gnn2mlp import DistillConfig\n"
              "    from gkd.pipeline import guard_pick, _rows\n"
              "    import gkd.train\n"
              "    from gkd import pipeline\n")
    bad = private_imports(source, "x.py", exports)
    assert [b.split(":")[1] for b in bad] == ["5", "6", "6", "7", "8"], bad
