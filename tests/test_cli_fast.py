"""``gkd --version`` and ``gkd --help`` answer at once: the parser imports neither torch nor PyG (they load when a
command runs); ``gkd terms`` imports torch but not PyG. The help texts' term lists, read without the registry, are
the registry's built-ins; the command modules stay small; ``--threads`` and the progress setting reach torch and the
pipelines as documented."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gkd.cli import BUILTIN_TERMS, CNN_METHOD_NAMES, main

from conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torch_geometric")


def _clean_env() -> dict:
    """This checkout's gkd, and no plugins (they are imported, with torch, to list their terms)."""
    env = {k: v for k, v in os.environ.items() if k != "GKD_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_neither_torch_nor_pyg(argv):
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "gkd", *argv], env=_clean_env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("gkd 0." if argv == ["--version"] else "usage: gkd")
    imported = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "gkd.cli" in imported  # the check sees what it should
    assert not imported & set(HEAVY), f"gkd {' '.join(argv)} imported {sorted(imported & set(HEAVY))}"


SCRIPT = """
import sys
from gkd.cli import main
for argv in ({argvs}):
    try:
        main(argv)
    except SystemExit:
        pass
print(sorted(m for m in {heavy} if m in sys.modules))
"""


def test_every_commands_help_imports_neither_torch_nor_pyg():
    argvs = [["--version"], ["--help"]] + [[c, "--help"] for c in ("train", "distill", "book", "cnn", "graph",
                                                                    "terms", "predict", "datasets")]
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(argvs=repr(argvs)[1:-1] + ",", heavy=HEAVY)],
                       env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"


def test_terms_listing_imports_torch_but_not_pyg():
    """`gkd terms` imports every term module, which needs torch, but not PyG: the packages' ``__init__`` import their
    names on first use (:mod:`gkd.lazy`), so the listing answers in about a third of the time (2 s instead of 5.7 s
    on an idle 2-core box)."""
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(argvs='["terms"], ["terms", "--markdown"],', heavy=HEAVY)],
                       env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "kd " in p.stdout and "| `position` | transform |" in p.stdout  # both listings ran in full
    assert p.stdout.strip().splitlines()[-1] == "['torch']"


def test_help_term_lists_are_the_registrys_built_ins():
    from gkd.distill.registry import KINDS, table

    assert set(BUILTIN_TERMS) == set(KINDS)
    for kind in KINDS:  # in registration order: the order the help texts list them
        assert BUILTIN_TERMS[kind] == tuple(r["name"] for r in table(kind) if r["module"].startswith("gkd."))


def test_help_cnn_methods_are_the_pipelines():
    from gkd.vision import CNN_METHODS

    assert CNN_METHOD_NAMES == tuple(CNN_METHODS)


PLUGIN = """
from dataclasses import dataclass
from gkd.distill import LossTerm, TermOptions, register_term

@register_term("toy-fast", kind="student", paper="a test", summary="a plugin term")
def build(ctx, opts):
    return None
"""


def test_help_lists_a_plugins_terms(tmp_path):
    (tmp_path / "fast_terms.py").write_text(PLUGIN)
    env = {**_clean_env(), "GKD_PLUGINS": "./fast_terms.py"}
    p = subprocess.run([sys.executable, "-m", "gkd", "distill", "--help"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert ",".join(BUILTIN_TERMS["student"] + ("toy-fast",) + BUILTIN_TERMS["transform"]) in " ".join(p.stdout.split()).replace(", ", ",")


def test_cli_modules_stay_small():
    for path in (ROOT / "gkd" / "cli").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


class Called(Exception):
    pass


@pytest.fixture
def captured(monkeypatch):
    """The pipeline functions replaced: their keyword arguments are kept, and nothing trains."""
    calls: list[dict] = []

    def fake(*args, **kwargs):
        import torch

        calls.append({**kwargs, "threads": torch.get_num_threads()})
        raise Called

    for target in ("gkd.pipeline.train.run_training", "gkd.pipeline.gnn2mlp.run_distillation",
                   "gkd.pipeline.gnn2mlp.make_book"):
        monkeypatch.setattr(target, fake)
    return calls


@pytest.mark.parametrize("command", [["train"], ["distill"], ["book", "--out", "b"]])
def test_progress_is_auto_unless_quiet(command, captured, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for extra, progress in (([], None), (["--quiet"], False)):
        with pytest.raises(Called):
            main(command + extra)
        assert captured[-1]["progress"] is progress


def test_threads_flag_sets_torchs_thread_count(captured, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        with pytest.raises(Called):
            main(["train", "--quiet"])
        assert captured[-1]["threads"] == before  # no flag: torch's own choice stands
        with pytest.raises(Called):
            main(["train", "--threads", "1", "--quiet"])
        assert captured[-1]["threads"] == 1
    finally:
        torch.set_num_threads(before)
    for bad in ("0", "-2", "two", "100000"):
        assert main(["train", "--threads", bad, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert_one_line_error(err)
        assert "argument --threads" in err
    assert torch.get_num_threads() == before


def test_threads_flag_is_on_every_command_that_computes():
    from gkd.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert {name for name, p in commands.items() if "--threads" in p._option_string_actions} == \
        {"train", "distill", "book", "cnn", "graph", "predict"}


def test_entry_point_scan_agrees_with_importlib_metadata(tmp_path, monkeypatch):
    """The parser's direct read of ``gkd.terms`` entry points (importlib.metadata is slow to import) finds a
    package's as importlib.metadata does, and no others."""
    from importlib.metadata import entry_points

    from gkd.cli import parser

    monkeypatch.delenv("GKD_PLUGINS", raising=False)
    assert parser._names_term_entry_points(str(tmp_path)) is False
    info = tmp_path / "toy_fast_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-fast-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[console_scripts]\ntoy = toy:main\n")
    assert parser._names_term_entry_points(str(tmp_path)) is False
    (info / "entry_points.txt").write_text("[console_scripts]\ntoy = toy:main\n\n[gkd.terms]\ntoy = toy_fast_plugin\n")
    assert parser._names_term_entry_points(str(tmp_path)) is True
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [ep.name for ep in entry_points(group="gkd.terms") if ep.value == "toy_fast_plugin"] == ["toy"]
    assert parser._plugins_possible()
    ours = [p for p in sys.path if p != str(tmp_path)]
    assert any(parser._names_term_entry_points(p or ".") for p in ours) == \
        any(ep.value != "toy_fast_plugin" for ep in entry_points(group="gkd.terms"))


@pytest.mark.parametrize("argv", [["distill", "--datas", "Cora"], ["train", "--epoch", "3"], ["--vers"]])
def test_flags_are_not_matched_by_prefix(argv, capsys):
    """``--epoch`` is not ``--epochs``: a prefix would change meaning the day another flag starts the same way."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert ("unrecognized arguments" in err or "required" in err) and "(see " in err
