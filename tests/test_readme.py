"""The README's Python examples run as written, in order, in one scope."""
import re
from pathlib import Path

from conftest import needs_cora

README = Path(__file__).resolve().parents[1] / "README.md"


@needs_cora
def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the first example saves under runs/
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    assert len(blocks[0].strip().splitlines()) < 30  # the pipeline's view fits on a screen
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert scope["est"].result_["test"] > 0.78 and scope["pred"].shape == (5,)
    assert (tmp_path / "runs" / "cora-student" / "manifest.json").is_file()
    exec(compile(blocks[1], "README.md", "exec"), scope)
    assert scope["result"].test > 0.75
    assert set(scope["model"].state_dict()) == set(type(scope["model"])(1433, 64, 2, 7).state_dict())
    for block in blocks[2:]:
        exec(compile(block, "README.md", "exec"), scope)
    assert scope["fit"].test > 0.7 and scope["pred"].shape == (10,)
