"""Property-based fuzzing of the CLI (hypothesis), from two strategies each. Command lines and YAML configs valid by
construction must pass validation (loading and training are replaced by a sentinel, so nothing loads or trains);
ones invalid by construction (a valid one with exactly one bad value, an unknown flag or a hostile file) must exit 2
with exactly one `gkd: error:` line: never a traceback, a usage block or another exception. Neither accepts the
other outcome."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gkd.cli import main

from conftest import assert_one_line_error

FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Validated(Exception):
    """Raised instead of loading data or training: every option passed the checks."""


def _sentinel(*args, **kwargs):
    raise Validated


PATCHED = ("gkd.pipeline.train.run_training", "gkd.pipeline.gnn2mlp.run_distillation", "gkd.datasets.load",
           "gkd.pipeline.gnn2mlp.teacher_stage")

def ints(lo: int, hi: int):
    return st.integers(lo, hi).map(str)


def floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False).map(repr)


# valid by construction: every value in range, flags that do not constrain one another (no GAT: its width must be a
# multiple of heads; no --fanout: it needs --batch-size and one count per layer)
VALID_COMMON = {
    "--hidden-channels": ints(1, 512), "--num-layers": ints(1, 4), "--epochs": ints(1, 1000),
    "--patience": ints(1, 1000), "--runs": ints(1, 10), "--seed": ints(0, 2 ** 31),
    "--dropout": floats(0.0, 0.99), "--lr": floats(1e-5, 1.0), "--weight-decay": floats(0.0, 1.0),
    "--dataset-arg": floats(0.0, 1.0).map(lambda h: f"homophily={h}"),
}
VALID_FLAGS = {
    "train": {**VALID_COMMON, "--model": st.sampled_from(["gcn", "sage", "mlp", "GCN"]),
              "--method": st.sampled_from(["plain", "self-distill"]), "--generations": ints(1, 3)},
    "distill": {**VALID_COMMON, "--teacher": st.sampled_from(["gcn", "sage"]), "--student": st.just("mlp"),
                "--method": st.sampled_from(["plain", "glnn", "gkd"]), "--kd-lambda": floats(0.0, 1.0),
                "--temperature": floats(0.05, 100.0), "--label-smoothing": floats(0.0, 0.99),
                "--teachers": ints(1, 3), "--teacher-generations": ints(1, 3),
                "--setting": st.sampled_from(["transductive", "inductive"]),
                "--inductive-fraction": floats(0.05, 0.95)},
    "book": {"--teachers": ints(1, 3), "--teacher-generations": ints(1, 3), "--seed": ints(0, 2 ** 31),
             "--temperature": floats(0.05, 100.0), "--teacher": st.sampled_from(["gcn", "sage"]),
             "--setting": st.sampled_from(["transductive", "inductive"]),
             "--dataset-arg": floats(0.0, 1.0).map(lambda h: f"homophily={h}")},
}

JUNK_INTS = st.one_of(st.sampled_from(["abc", "", "1.5", "nan", "inf", "0x10", "1e3", "9" * 5000, " ", "٣x"]),
                      st.integers(2 ** 63, 2 ** 70).map(str))
JUNK_FLOATS = st.sampled_from(["abc", "", "nan", "NaN", "inf", "-inf", "1e309", "-1e309", "0x1p3x", "."])


def either(*strategies):
    return st.one_of(*strategies)


def not_one_of(choices):
    """Text that is none of ``choices`` (in any case, and not blank: a blank word may mean the default)."""
    return st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and s.strip().lower() not in choices)


# invalid by construction: each value is outside what its flag takes
INVALID_COMMON = {
    "--hidden-channels": either(ints(-5, 0), ints(65537, 2 ** 40), JUNK_INTS),
    "--num-layers": either(ints(-5, 0), ints(129, 2 ** 40), JUNK_INTS),
    "--epochs": either(ints(-5, 0), ints(10 ** 6 + 1, 2 ** 40), JUNK_INTS),
    "--runs": either(ints(-5, 0), ints(10 ** 4 + 1, 2 ** 40), JUNK_INTS),
    "--seed": either(ints(-2 ** 40, -1), ints(2 ** 32, 2 ** 40), JUNK_INTS),
    "--dropout": either(floats(1.0, 1e6), floats(-1e6, -1e-6), JUNK_FLOATS),
    "--lr": either(floats(-1e6, 0.0), st.sampled_from(["1e300", "1e39"]), JUNK_FLOATS),
    "--weight-decay": either(floats(-1e6, -1e-6), JUNK_FLOATS),
    # (what synthetic-csbm's loader itself refuses, homophily=2 or a key it lacks, is refused when it loads: the
    # sentinel stops before)
    "--dataset-arg": st.sampled_from(["homophily=.nan", "homophily=.inf", "split=x", "root=/tmp", "name=x",
                                      "x", "=1", "num_nodes=[1, 2]", "num_nodes={a: 1}", "num_nodes=" + "[" * 3000,
                                      "homophily=&a [*a]"]),
    "--device": either(st.sampled_from(["tpu", "cuda:99999", "cuda:-1", "gpu", "cpu:0", "cuda:x"]),
                       not_one_of({"auto", "cpu", "cuda"}).filter(lambda s: not s.strip().startswith("cuda:"))),
    "--term-arg": st.sampled_from(["position", "nope.x=1", "time.nope=1", ".x=1", "x.=1"]),
}
INVALID_FLAGS = {
    "train": {**INVALID_COMMON, "--model": not_one_of({"gcn", "gat", "sage", "mlp"}),
              "--method": not_one_of(set()).filter(lambda s: s.strip().lower() not in TRAIN_METHODS),
              "--generations": either(ints(-5, 0), JUNK_INTS), "--heads": either(ints(-5, 0), ints(65, 10 ** 6)),
              "--batch-size": either(ints(-5, 0), JUNK_INTS)},
    "distill": {**INVALID_COMMON, "--teacher": not_one_of({"gcn", "gat", "sage", "mlp"}),
                "--setting": not_one_of({"transductive", "inductive"}),
                "--kd-lambda": either(floats(1.001, 1e6), floats(-1e6, -1e-6), JUNK_FLOATS),
                "--temperature": either(floats(-1e6, 0.0), floats(1e4 + 1, 1e30), JUNK_FLOATS),
                "--label-smoothing": either(floats(1.0, 1e6), floats(-1e6, -1e-6), JUNK_FLOATS),
                "--teachers": either(ints(-5, 0), JUNK_INTS), "--teacher-generations": either(ints(-5, 0), JUNK_INTS),
                "--inductive-fraction": either(floats(1.0, 1e6), floats(-1e6, 0.0), JUNK_FLOATS),
                "--teacher-arg": st.sampled_from(["model=gat", "generations=3", "nope=1", "dataset=x", "x"]),
                "--method": st.sampled_from(["gkd+", "gkd+fgsm", "magic", "glnn+", "+time", "gkd++amkd"])},
    "book": {"--teachers": either(ints(-5, 0), JUNK_INTS), "--teacher-generations": either(ints(-5, 0), JUNK_INTS),
             "--seed": either(ints(-2 ** 40, -1), ints(2 ** 32, 2 ** 40), JUNK_INTS),
             "--temperature": either(floats(-1e6, 0.0), floats(1e4 + 1, 1e30), JUNK_FLOATS),
             "--setting": not_one_of({"transductive", "inductive"}),
             "--dataset-arg": INVALID_COMMON["--dataset-arg"]},
}
TRAIN_METHODS = {"plain", "self-distill", "depth", "time", "neighbour", "neighbor", "normalised", "normalized",
                 "label-smoothing", "tf-kd-reg"}


@st.composite
def valid_argvs(draw, command: str) -> list[str]:
    """Up to four distinct flags, each with a value in its range (on synthetic-csbm, whose loader takes homophily)."""
    flags = VALID_FLAGS[command]
    argv = [command, "--dataset", "synthetic-csbm"]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4, unique=True)):
        argv += [flag, draw(flags[flag])]
    return argv


@st.composite
def invalid_argvs(draw, command: str) -> list[str]:
    """A valid command line with exactly one thing wrong: a value outside its flag's range, or an unknown flag."""
    argv = draw(valid_argvs(command))
    if draw(st.integers(0, 9)) == 0:
        bad = [draw(st.sampled_from(["--nope", "--hidden_channels", "--lr=", "-x", "--epochz"])), "1"]
    else:
        flag = draw(st.sampled_from(sorted(INVALID_FLAGS[command])))
        bad = [flag, draw(INVALID_FLAGS[command][flag])]
        argv = [a for i, a in enumerate(argv) if a != flag and (i == 0 or argv[i - 1] != flag)]
    at = draw(st.integers(1, len(argv)))
    at -= (at - 1) % 2  # between flag/value pairs
    return argv[:at] + bad + argv[at:]


def validated(argv, capsys) -> None:
    """The command line passes every check: it gets to loading/training (the sentinel), with nothing on stderr."""
    try:
        code = main(argv)
    except Validated:
        assert capsys.readouterr().err == ""
        return
    raise AssertionError(f"a valid command line was refused (exit {code}): {argv}\n{capsys.readouterr().err}")


def refused(argv, capsys) -> None:
    """Exit 2 with exactly one `gkd: error:` line, before anything loads or trains."""
    try:
        code = main(argv)
    except Validated:
        raise AssertionError(f"an invalid command line was accepted: {argv}") from None
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert_one_line_error(err)


def _patch(monkeypatch):
    for target in PATCHED:
        monkeypatch.setattr(target, _sentinel)


@FUZZ
@given(argv=valid_argvs("train"))
def test_valid_train_flags_pass(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    validated(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=invalid_argvs("train"))
def test_invalid_train_flags_are_refused(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    refused(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=valid_argvs("distill"))
def test_valid_distill_flags_pass(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    validated(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=invalid_argvs("distill"))
def test_invalid_distill_flags_are_refused(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    refused(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=valid_argvs("book"))
def test_valid_book_flags_pass(argv, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    validated(argv + ["--out", str(tmp_path / "book"), "--quiet"], capsys)


@FUZZ
@given(argv=invalid_argvs("book"))
def test_invalid_book_flags_are_refused(argv, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    refused(argv + ["--out", str(tmp_path / "book"), "--quiet"], capsys)


# YAML configs: the same keys, typed as YAML gives them
VALID_KEYS = {
    "lr": st.floats(1e-5, 1.0), "weight_decay": st.floats(0.0, 1.0), "epochs": st.integers(1, 1000),
    "runs": st.integers(1, 10), "seed": st.integers(0, 2 ** 31), "hidden_channels": st.integers(1, 512),
    "dropout": st.floats(0.0, 0.99), "patience": st.integers(1, 1000),
    "dataset_args": st.floats(0.0, 1.0).map(lambda h: {"homophily": h}),
}
VALID_CONFIG_KEYS = {
    "train": {**VALID_KEYS, "model": st.sampled_from(["gcn", "sage", "mlp"]), "method": st.just("plain")},
    "distill": {**VALID_KEYS, "teacher": st.sampled_from(["gcn", "sage"]), "temperature": st.floats(0.05, 100.0),
                "kd_lambda": st.floats(0.0, 1.0), "setting": st.sampled_from(["transductive", "inductive"])},
}
NOT_A_NUMBER = st.one_of(st.text(max_size=6), st.booleans(), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
INVALID_KEYS = {
    "lr": st.one_of(st.floats(-1e6, 0.0), st.sampled_from([float("nan"), float("inf"), 1e300]), NOT_A_NUMBER),
    "epochs": st.one_of(st.integers(-5, 0), st.integers(10 ** 6 + 1, 2 ** 70), st.floats(1.5, 9.5), NOT_A_NUMBER),
    "runs": st.one_of(st.integers(-5, 0), st.integers(10 ** 4 + 1, 2 ** 70), NOT_A_NUMBER),
    "seed": st.one_of(st.integers(-2 ** 70, -1), st.integers(2 ** 32, 2 ** 70), NOT_A_NUMBER),
    "hidden_channels": st.one_of(st.integers(-5, 0), st.integers(65537, 2 ** 70), NOT_A_NUMBER),
    "dropout": st.one_of(st.floats(1.0, 1e6), st.floats(-1e6, -1e-6), NOT_A_NUMBER),
    "model": st.one_of(st.integers(), st.booleans(), st.sampled_from(["gin", "transformer", ""])),
    "dataset_args": st.sampled_from([{"homophily": float("nan")}, {"split": "x"}, {"root": "/tmp"}, [1, 2], "x"]),
}


@st.composite
def valid_configs(draw, command: str) -> bytes:
    keys = VALID_CONFIG_KEYS[command]
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), max_size=4, unique=True))
    return yaml.safe_dump({"dataset": "synthetic-csbm", **{k: draw(keys[k]) for k in chosen}}).encode()


HOSTILE_TEXT = [
    b"lr: &a [*a]\n", b"runs: [" + b"[" * 2000 + b"\n", b"lr: 0.1\nlr: 0.2\n", b"lr: !!python/object/apply:os.system ['true']\n",
    b"lr: *x\n", b"a: b: c\n", b"'\n", b"{\n", b"- - -\n", b"lr: .inf\n", b"lr: .nan\n", b"%YAML 9.9\n---\n1\n",
    b"? [a]\n: 1\n", b"<<: {lr: 1}\n", b"lr: \xff\xfe\n", b"[1, 2]\n", b"7\n", b"just text\n", b"nope: 1\n",
]


@st.composite
def invalid_configs(draw, command: str) -> bytes:
    """A valid config with one key given a bad value, or a hostile file (aliases, duplicates, tags, not a mapping,
    not UTF-8, nested too deep)."""
    if draw(st.booleans()):
        return draw(st.sampled_from(HOSTILE_TEXT))
    config = yaml.safe_load(draw(valid_configs(command))) or {}
    key = draw(st.sampled_from(sorted(INVALID_KEYS)))
    config[key] = draw(INVALID_KEYS[key])
    return yaml.safe_dump(config).encode()


@FUZZ
@given(text=st.data(), command=st.sampled_from(["train", "distill"]))
def test_valid_yaml_config_passes(text, command, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    f = tmp_path / "c.yaml"
    f.write_bytes(text.draw(valid_configs(command)))
    validated([command, "--config", str(f), "--quiet"], capsys)


@FUZZ
@given(text=st.data(), command=st.sampled_from(["train", "distill"]))
def test_invalid_yaml_config_is_refused(text, command, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    f = tmp_path / "c.yaml"
    f.write_bytes(text.draw(invalid_configs(command)))
    refused([command, "--config", str(f), "--quiet"], capsys)
