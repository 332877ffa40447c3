"""The term registry: a term registered outside the package is used by the API and the CLI like a built-in one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from gkd.cli import main
from gkd.distill import registry
from gkd.distill.registry import SelfContext, StudentContext, TermOptions, get_term, register_term, term_names
from gkd.errors import ConfigError
from gkd.train import LossTerm

ROOT = Path(__file__).resolve().parents[1]

# A plugin as a user writes it: its own options, a term, a builder; nothing in gkd changes.
PLUGIN = '''
from dataclasses import dataclass

import torch
from gkd.distill import LossTerm, TermOptions, register_term
from gkd.errors import ConfigError, check


@dataclass
class ToyOptions(TermOptions):
    strength: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check(self.strength > 0, f"toy strength={self.strength}; expected > 0", ConfigError)


class Toy(LossTerm):
    """Pulls logits toward zero; counts its calls in stats."""
    name = "toy"

    def __init__(self, weight, strength):
        super().__init__(weight)
        self.strength, self.calls = strength, 0

    def forward(self, step):
        self.calls += 1
        return self.strength * step.logits.pow(2).mean()

    def stats(self):
        return {"calls": self.calls, "strength": self.strength}


@register_term("toy", kind="self", options=ToyOptions, paper="a test", summary="logits toward zero")
def build_toy(ctx, o):
    return Toy(o.weight, o.strength)
'''


@pytest.fixture
def forget():
    """Registrations made by a test are removed after it (the registry is process-wide). The plugins and the image
    terms are loaded first: loaded during the test and then forgotten, they would never register again."""
    registry.term_names("self")
    before = dict(registry._TERMS)
    yield
    registry._TERMS.clear()
    registry._TERMS.update(before)


@dataclass
class ScaleOptions(TermOptions):
    scale: float = 1.0


class LogitNorm(LossTerm):
    name = "logit-norm"

    def __init__(self, weight: float, scale: float) -> None:
        super().__init__(weight)
        self.scale, self.calls = scale, 0

    def forward(self, step) -> torch.Tensor:
        self.calls += 1
        return self.scale * step.logits.pow(2).mean()

    def stats(self) -> dict:
        return {"calls": self.calls}


def test_outside_self_term_through_the_api(small_graph, forget):
    from gkd.config import TrainConfig
    from gkd.pipeline.train import run_training

    @register_term("logit-norm", kind="self", options=ScaleOptions, paper="a test")
    def build(ctx: SelfContext, o: ScaleOptions) -> LossTerm:
        assert ctx.num_classes == 3 and ctx.epochs == 8
        return LogitNorm(o.weight, o.scale)

    assert "logit-norm" in term_names("self") and get_term("self", "logit-norm").module == __name__
    cfg = TrainConfig(model="gcn", hidden_channels=8, epochs=8, patience=8, runs=1, method="self-distill",
                      sd_terms="logit-norm,time", term_args={"logit-norm": {"scale": 2, "weight": 0.5}})
    r = run_training(cfg, data=small_graph, progress=False)
    assert r["method_config"]["terms"] == ["logit-norm", "time"]
    assert r["method_config"]["term_args"]["logit-norm"] == {"weight": 0.5, "scale": 2.0}
    assert r["runs"][0]["stats"]["logit-norm"]["calls"] == 8  # its loss ran every epoch
    with pytest.raises(ConfigError, match=r"term_args logit-norm.shift: not an option of the self term 'logit-norm', which takes weight, scale"):
        TrainConfig(method="logit-norm", term_args={"logit-norm": {"shift": 1}}).validate()


def test_outside_student_term_through_the_api(small_graph, forget):
    from gkd.distill.knowledge import Knowledge
    from gkd.pipeline.student import distill_mlp

    @register_term("logit-norm", kind="student", options=ScaleOptions)
    def build(ctx: StudentContext, o: ScaleOptions) -> LossTerm:
        return LogitNorm(o.weight, o.scale)

    know = Knowledge(torch.randn(300, 3), torch.ones(300, dtype=torch.bool))
    _, fit = distill_mlp(small_graph, know, method="glnn+logit-norm", hidden_channels=8, epochs=5, patience=5)
    assert fit.stats["logit-norm"]["calls"] == 5 and "logit-norm" in fit.history[-1]


def test_registration_errors(forget):
    @register_term("dup", kind="self")
    def first(ctx, o):
        return None

    with pytest.raises(ConfigError, match="self term 'dup' is already registered by"):
        @register_term("dup", kind="self")
        def second(ctx, o):
            return None
    with pytest.raises(ConfigError, match="term kind='teacher'; expected one of self, student, transform, image"):
        register_term("x", kind="teacher")
    with pytest.raises(ConfigError, match="expected a lower-case word without commas"):
        register_term("a,b", kind="self")
    with pytest.raises(ConfigError, match="expected a TermOptions subclass decorated with @dataclass"):
        register_term("y", kind="self", options=dict)


def _plugin_env(tmp_path: Path, body: str = PLUGIN) -> dict:
    """A package found through the ``gkd.terms`` entry-point group, as ``pip install`` would leave it."""
    (tmp_path / "toy_gkd_plugin.py").write_text(body)
    info = tmp_path / "toy_gkd_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-gkd-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gkd.terms]\ntoy = toy_gkd_plugin\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def _gkd(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gkd", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_outside_term_from_the_cli(tmp_path):
    env = _plugin_env(tmp_path)
    listed = _gkd(env, "terms", "--kind", "self")
    assert listed.returncode == 0 and "toy" in listed.stdout and "toy_gkd_plugin" in listed.stdout
    out = tmp_path / "r.json"
    run = _gkd(env, "train", "--dataset", "synthetic-csbm", "--dataset-arg", "num_nodes=1700", "--model", "mlp",
               "--epochs", "4", "--patience", "4", "--runs", "1", "--self-distill", "--sd-terms", "toy",
               "--term-arg", "toy.strength=2", "--json", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    r = json.loads(out.read_text())
    assert r["method_config"]["term_args"]["toy"] == {"weight": 1.0, "strength": 2.0}
    assert r["runs"][0]["stats"]["toy"] == {"calls": 4, "strength": 2.0}
    bad = _gkd(env, "train", "--self-distill", "--sd-terms", "toy", "--term-arg", "toy.strength=-1", "--quiet")
    assert bad.returncode == 2 and "toy strength=-1.0; expected > 0" in bad.stderr
    assert_one_line_error(bad.stderr)


def test_a_broken_plugin_is_one_error_line(tmp_path):
    env = _plugin_env(tmp_path, "raise RuntimeError('boom')\n")
    r = _gkd(env, "terms")
    assert r.returncode == 2 and "gkd.terms plugin 'toy' (toy_gkd_plugin) failed to import: RuntimeError: boom" \
        in r.stderr
    assert_one_line_error(r.stderr)


def test_docs_term_table_is_current():
    """docs/methods.md's term table is the registry's (regenerate: the region between the markers is
    `gkd terms --markdown`)."""
    text = (ROOT / "docs" / "methods.md").read_text()
    region = text.split("<!-- terms:begin -->", 1)[1].split("<!-- terms:end -->", 1)[0]
    assert registry.markdown_table() in region


def test_terms_listing_is_the_registry(capsys):
    assert main(["terms", "--markdown"]) == 0
    table = capsys.readouterr().out
    for kind in registry.KINDS:
        for row in registry.table(kind):
            assert f"| `{row['name']}` | {kind} |" in table
    assert set(term_names("student")) == {r["name"] for r in registry.table() if r["kind"] in ("student", "transform")}
    assert "`gkd/distill/nosmog.py`" in table
    assert "`steps=10`" in table and "`dim=64`" in table


def test_term_help_is_read_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    listed = [r["name"] for kind in ("student", "transform") for r in registry.table(kind)]  # --terms names both
    assert ",".join(listed) in text.replace(", ", ",") and set(listed) == set(term_names("student"))


def test_gkd_plugins_names_modules_for_the_cli(tmp_path):
    (tmp_path / "my_terms.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GKD_PLUGINS": "my_terms"}
    r = subprocess.run([sys.executable, "-m", "gkd", "terms", "--kind", "self"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "toy" in r.stdout and "my_terms" in r.stdout
    env["GKD_PLUGINS"] = "no_such_module"
    r = subprocess.run([sys.executable, "-m", "gkd", "terms"], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "GKD_PLUGINS module 'no_such_module' failed to import" in r.stderr


def test_writers_traps_are_refused_or_handled(forget, small_graph):
    from dataclasses import field

    class Undecorated(TermOptions):
        strength: float = 1.0

    with pytest.raises(ConfigError, match="decorated with @dataclass"):
        register_term("undecorated", kind="self", options=Undecorated)
    with pytest.raises(ConfigError, match="prepare= is run for student terms only"):
        register_term("early", kind="self", prepare=lambda ctx, o: None)

    @dataclass
    class ListOptions(TermOptions):
        dims: list[int] = field(default_factory=lambda: [1, 2])

    @register_term("listy", kind="self", options=ListOptions)
    def build(ctx, o):
        return None  # a self term may add nothing

    spec = get_term("self", "listy")
    assert spec.option_defaults() == {"weight": 1.0, "dims": [1, 2]}
    assert spec.make_options({"dims": [3]}).dims == [3]
    with pytest.raises(ConfigError, match=r"term_args listy.dims=3; expected list"):
        spec.make_options({"dims": 3})
    from gkd.config import TrainConfig
    from gkd.pipeline.train import run_training

    r = run_training(TrainConfig(model="mlp", hidden_channels=8, epochs=3, patience=3, runs=1, method="listy"),
                     data=small_graph, progress=False)
    assert r["method_config"]["terms"] == ["listy"]


def test_sd_terms_without_self_distillation_is_refused():
    from gkd.config import TrainConfig

    with pytest.raises(ConfigError, match="sd_terms='depth' is read only with method self-distill"):
        TrainConfig(sd_terms="depth").validate()
    assert TrainConfig(method="self-distill").terms() == ("neighbour", "time")


def test_position_takes_no_weight():
    with pytest.raises(ConfigError, match="the position term adds input columns, not a loss"):
        get_term("student", "position").make_options({"weight": 0.0})


def test_self_distill_end_epoch_reaches_every_term(forget):
    from gkd.distill import SelfDistill

    seen = []

    class Remembers(LossTerm):
        name = "remembers"

        def forward(self, step):
            return step.logits.sum() * 0

        def on_epoch_end(self, step):
            seen.append(step.logits.shape)

    register_term("remembers", kind="self")(lambda ctx, o: Remembers(o.weight))
    sd = SelfDistill(3, [8], terms="remembers,time")
    sd.end_epoch(torch.zeros(5, 3))
    assert seen == [(5, 3)] and sd.terms[1].prev.shape == (5, 3)


def test_transforms_are_their_own_kind_and_typed_in_terms(capsys):
    """position and reliability add no loss: kind transform, listed as such, built into no term, and still named in
    gkd distill's --terms (a student term of a transform's name is refused)."""
    assert main(["terms", "--kind", "transform"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("transform terms:") and "  position " in out and "  reliability " in out
    assert "  neighbour " not in out
    for name in ("position", "reliability"):
        spec = registry.get_term("student", name)
        assert spec.kind == "transform" and spec.caps.transform and spec.prepare is spec.build
        assert spec.make(None, spec.make_options()) is None  # never a loss term
    with pytest.raises(ConfigError, match="'positon' is not a registered student term or transform"):
        registry.get_term("student", "positon")
    with pytest.raises(ConfigError, match="student 'position': a transform term of that name exists"):
        @register_term("position", kind="student")
        def clash(ctx, o):
            return None
    assert ("student", "position") not in registry._TERMS
