import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_results_match_results_files():
    assert _report().main(["--check"]) == 0, "README.md is stale: run python benchmarks/report.py"


def test_editing_a_results_file_is_detected(tmp_path, monkeypatch):
    rep = _report()
    (tmp_path / "x.md").write_text("| a | 1 |\n")
    monkeypatch.setattr(rep, "RESULTS", tmp_path)
    readme = "intro\n<!-- results:x -->\n| a | 1 |\n<!-- /results:x -->\nend\n"
    assert rep.render(readme) == readme
    (tmp_path / "x.md").write_text("| a | 2 |\n")
    assert rep.render(readme) != readme and "| a | 2 |" in rep.render(readme)
