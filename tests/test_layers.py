"""The package's imports point down its layers and close no circle (read with ``ast``, function-level imports
included: a lazy import that runs up a layer is still a dependency up)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gkd"

# top to bottom; a module may import its own layer or any layer below it
LAYERS: list[tuple[str, ...]] = [
    ("gkd", "gkd.__main__", "gkd.cli"),
    ("gkd.pipeline", "gkd.config", "gkd.book", "gkd.vision"),
    ("gkd.distill",),
    ("gkd.train",),
    ("gkd.graph", "gkd.scale"),
    ("gkd.nn", "gkd.datasets"),
    ("gkd.io", "gkd.errors", "gkd.lazy", "gkd.limits", "gkd.metrics", "gkd.sections", "gkd.version"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The gkd modules ``name`` imports (``from . import x`` of a submodule counts as importing that submodule)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gkd")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "gkd":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            found.update(subs or [target])
            if len(subs) < len(node.names):
                found.add(target)
    found.discard(name)
    # a module inside a package imports the package's __init__ first; that is Python's order, not a dependency
    return {m for m in found if not name.startswith(m + ".")}


def _layer(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py"
    return best[0]


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_every_module_has_a_layer():
    for name in GRAPH:
        _layer(name)


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_point_down(name):
    up = sorted(m for m in GRAPH[name] if _layer(m) < _layer(name))
    assert not up, f"{name} (layer {_layer(name)}) imports a layer above it: {up}"


def test_no_import_cycles():
    seen: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(GRAPH.get(m, ())):
            if seen.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(GRAPH):
        if m not in seen:
            visit(m)


def test_the_check_sees_an_upward_import(tmp_path):
    """The walker is not blind: a lazy import of the pipeline inside gkd.train is found and is upward."""
    fake = tmp_path / "gkd" / "train" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..pipeline import train\n")
    found = _imports("gkd.train.x", fake, {"gkd.pipeline.train": fake})
    assert found == {"gkd.pipeline.train"} and _layer("gkd.pipeline.train") < _layer("gkd.train.x")


MAX_MODULE_LINES = 400  # one purpose per module (issue #40): a module past this holds several things


def test_no_module_over_the_line_bound():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by purpose): {long}"
