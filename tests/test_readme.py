"""The README's Python example runs as written."""
import re
from pathlib import Path

from conftest import needs_cora

README = Path(__file__).resolve().parents[1] / "README.md"


@needs_cora
def test_readme_python_example_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["result"].test > 0.75
    assert set(scope["model"].state_dict()) == set(type(scope["model"])(1433, 64, 7).state_dict())
