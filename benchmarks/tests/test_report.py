"""The results pages are generated from benchmarks/results/ and stay in sync with it.

- The generated regions of docs/results.md and README.md equal what benchmarks/report.py makes now.
- Every figure written by hand around them (README.md, docs/results.md) appears in a generated table, so a number in
  the docs always comes from a results file.
"""
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("README.md", "docs/results.md")  # the pages that state results


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pages_match_results_files():
    assert _report().main(["--check"]) == 0, "docs/results.md or README.md is stale: run python benchmarks/report.py"


def test_every_page_has_its_regions():
    rep = _report()
    results = (ROOT / "docs" / "results.md").read_text()
    names = {p.stem for p in rep.RESULTS.glob("*.md")}
    assert names and names == {m["name"] for m in rep.REGION.finditer(results)}, "a results file has no section"
    for page in CHECKED:
        assert rep.SUMMARY.search((ROOT / page).read_text()), f"{page} lost its summary table"


def test_editing_a_results_file_is_detected(tmp_path, monkeypatch):
    rep = _report()
    (tmp_path / "x.md").write_text("| a | 1 |\n")
    monkeypatch.setattr(rep, "RESULTS", tmp_path)
    readme = "intro\n<!-- results:x -->\n| a | 1 |\n<!-- /results:x -->\nend\n"
    assert rep.render(readme) == readme
    (tmp_path / "x.md").write_text("| a | 2 |\n")
    assert rep.render(readme) != readme and "| a | 2 |" in rep.render(readme)


def test_links_are_rebased_for_pages_in_docs(tmp_path, monkeypatch):
    rep = _report()
    (tmp_path / "x.md").write_text("![plot](benchmarks/results/x.png) [web](https://example.org/a) [here](#x)\n")
    monkeypatch.setattr(rep, "RESULTS", tmp_path)
    page = "<!-- results:x -->\n<!-- /results:x -->\n"
    assert "](benchmarks/results/x.png)" in rep.render(page, "README.md")
    docs = rep.render(page, "docs/results.md")
    assert "](../benchmarks/results/x.png)" in docs and "](https://example.org/a)" in docs and "](#x)" in docs


def test_summary_follows_the_json(tmp_path, monkeypatch):
    rep = _report()
    monkeypatch.setattr(rep, "RESULTS", tmp_path)
    assert "not measured yet" in rep.summary("README.md")  # no results at all: said, not invented
    scale = json.loads((ROOT / "benchmarks" / "results" / "scale.json").read_text())
    (tmp_path / "scale.json").write_text(json.dumps(scale))
    assert "**met**" in rep.summary("README.md")
    scale["rows"][-1]["peak_rss_gb"] = 17.0  # over the 16 GB target
    (tmp_path / "scale.json").write_text(json.dumps(scale))
    row = next(r for r in rep.summary("README.md").splitlines() if "Knowledge book" in r)
    assert "17.00 GB" in row and "**not met**" in row and "](docs/results.md#scale-and-knowledge-books)" in row
    assert "](#scale-and-knowledge-books)" in rep.summary("docs/results.md")



def test_heterophilous_summary_lists_datasets_in_their_order():
    """A re-run subset's rows are stored after the others; the summary still reads Texas, Wisconsin, Cornell, Actor."""
    rep = _report()
    d = json.loads((ROOT / "benchmarks" / "results" / "self_distill.json").read_text())
    d["rows"].reverse()
    row = next(r for r in rep._rows_self_distill(d) if r[0].startswith("Self-distillation, heterophilous"))
    for model in ("GCN: ", "GraphSAGE: "):
        cells = row[2].split(model, 1)[1].split(";")[0]
        assert [c.split()[0] for c in cells.split(", ")] == ["Texas", "Wisconsin", "Cornell", "Actor"]

# a decimal number (not part of a version such as 2.13.0) or a ratio such as 12x
FIGURE = re.compile(r"(?<![\d.])\d+\.\d+(?!\.?\d)|(?<![\w.])\d+x\b")


def _tokens(text: str) -> list[str]:
    return FIGURE.findall(text.replace("×", "x"))


def _figures(text: str) -> list[str]:
    """The figures of hand-written text: outside code blocks and generated regions, durations left out."""
    rep = _report()
    text = rep.REGION.sub("", rep.SUMMARY.sub("", text))
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"\d+(\.\d+)?(–\d+(\.\d+)?)?\s*(min|minutes)\b", "", text)  # how long something takes
    return _tokens(text)


def test_every_figure_comes_from_the_results():
    rep = _report()
    held = set(_tokens("".join(p.read_text() for p in rep.RESULTS.glob("*.md")) + rep.summary("README.md")))
    missing = {f"{page}: {f}" for page in CHECKED for f in _figures((ROOT / page).read_text()) if f not in held}
    assert not missing, f"figures that no results file holds: {sorted(missing)}"


def test_the_figure_check_catches_an_invented_number():
    text = "gkd reaches 84.70 ± 0.75 (exponent 1.00.), 12x faster, in 1.5–2 min, with torch 2.13.0"
    assert _figures(text) == ["84.70", "0.75", "1.00", "12x"]
    assert "0.3" not in _tokens("10.3 and 80.30")  # whole figures only: 0.3 is not inside 10.3
