"""Property-based fuzzing of the CLI (hypothesis): any argv and any YAML config either passes validation (training
is replaced by a sentinel, so nothing trains and nothing loads) or exits 2 with exactly one `gkd: error:` line;
never a traceback, a usage block or another exception."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gkd.cli import main

from conftest import assert_one_line_error

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Validated(Exception):
    """Raised instead of loading data or training: every option passed the checks."""


def _sentinel(*args, **kwargs):
    raise Validated


PATCHED = ("gkd.pipeline.train.run_training", "gkd.pipeline.gnn2mlp.run_distillation", "gkd.datasets.load",
           "gkd.pipeline.gnn2mlp.teacher_stage")

NUMBERS = st.one_of(
    st.integers(-(2 ** 70), 2 ** 70).map(str),
    st.integers(-3, 3).map(str),
    st.integers(1, 64).map(str),  # plausible values too, so that validation passes often enough to be tested
    st.floats(0.01, 0.9).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "1e309", "-0", "0.0", "1_000", "0x10", "", " 7 ", "1e-320",
                     "9" * 5000]),
)
WORDS = st.one_of(st.text(max_size=12), st.sampled_from(["gcn", "gat", "sage", "mlp", "plain", "self-distill",
                                                         "gkd", "glnn+amkd", "gkd+position", "time,time",
                                                         "neighbour,depth", "inductive", "synthetic-csbm", "Cora"]))
YAML_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10))
YAML_VALUES = st.recursive(YAML_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3)), max_leaves=8)
HOSTILE_TEXT = st.sampled_from([
    "&a [*a]", "[" * 2000, "{a: 1, a: 2}", "!!python/object/apply:os.system ['true']", "*x", "a: b: c", "'",
    "{", "- - -", ".inf", ".nan", "\t", "%YAML 9.9\n---\n1", "? [a]\n: 1", "<<: {lr: 1}",
])
KV_VALUES = st.one_of(HOSTILE_TEXT, YAML_VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
                      NUMBERS, WORDS)
KV_KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["num_nodes", "homophily", "split", "lr", "seed",
                                                          "hidden_channels", "time", "depth", "neighbour", "rsd",
                                                          "dataset", "generations", "epochs", "neighbour.steps",
                                                          "position.dim", "amkd.eta", "depth.temperature",
                                                          "neighbour.weight", "time.alpha_max", "x.", ".y"]))

INT_FLAGS = ["--hidden-channels", "--num-layers", "--epochs", "--patience", "--runs", "--seed"]
FLOAT_FLAGS = ["--dropout", "--lr", "--weight-decay"]
COMMANDS = {
    "train": (INT_FLAGS + ["--heads", "--generations", "--batch-size", "--refresh"], FLOAT_FLAGS,
              ["--dataset", "--model", "--method", "--sd-terms", "--fanout"], ["--dataset-arg", "--sd-weight", "--term-arg"]),
    "distill": (INT_FLAGS + ["--teachers", "--teacher-generations", "--batch-size", "--refresh"],
                FLOAT_FLAGS + ["--inductive-fraction", "--kd-lambda", "--temperature", "--label-smoothing"],
                ["--dataset", "--teacher", "--teacher-method", "--setting", "--student", "--method", "--terms", "--fanout"],
                ["--dataset-arg", "--teacher-arg", "--term-weight", "--term-arg"]),
    "book": (["--teachers", "--teacher-generations", "--seed", "--batch-size"], ["--inductive-fraction", "--temperature"],
             ["--dataset", "--teacher", "--teacher-method", "--setting"], ["--dataset-arg", "--teacher-arg"]),
}


@st.composite
def argvs(draw, command: str) -> list[str]:
    ints, floats, words, pairs = COMMANDS[command]
    argv = [command]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["int", "int", "float", "float", "word", "pair", "pair", "junk"]))
        if kind == "int":
            argv += [draw(st.sampled_from(ints)), draw(NUMBERS)]
        elif kind == "float":
            argv += [draw(st.sampled_from(floats)), draw(NUMBERS)]
        elif kind == "word":
            argv += [draw(st.sampled_from(words)), draw(WORDS)]
        elif kind == "pair":
            argv += [draw(st.sampled_from(pairs)), f"{draw(KV_KEYS)}={draw(KV_VALUES)}"]
        else:
            argv.append(draw(st.text(max_size=10)))
    return argv


def check_outcome(argv, capsys) -> None:
    try:
        code = main(argv)
    except Validated:
        capsys.readouterr()
        return
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert_one_line_error(err)


def _patch(monkeypatch):
    for target in PATCHED:
        monkeypatch.setattr(target, _sentinel)


@FUZZ
@given(argv=argvs("train"))
def test_fuzz_train_flags(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    check_outcome(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=argvs("distill"))
def test_fuzz_distill_flags(argv, monkeypatch, capsys):
    _patch(monkeypatch)
    check_outcome(argv + ["--quiet"], capsys)


@FUZZ
@given(argv=argvs("book"))
def test_fuzz_book_flags(argv, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    check_outcome(argv + ["--out", str(tmp_path / "book"), "--quiet"], capsys)


CONFIG_KEYS = st.one_of(st.sampled_from(["lr", "weight_decay", "epochs", "runs", "seed", "hidden_channels", "heads",
                                         "dropout", "model", "method", "sd_terms", "term_args", "dataset",
                                         "dataset_args", "teacher_args", "temperature", "terms", "term_args",
                                         "book", "setting", "batch_size", "fanout", "refresh"]), st.text(max_size=8))


@st.composite
def configs(draw) -> bytes:
    kind = draw(st.sampled_from(["mapping", "mapping", "value", "hostile", "bytes"]))
    if kind == "mapping":
        return yaml.safe_dump(draw(st.dictionaries(CONFIG_KEYS, YAML_VALUES, max_size=4))).encode()
    if kind == "value":
        return yaml.safe_dump(draw(YAML_VALUES)).encode()
    if kind == "hostile":
        return f"{draw(CONFIG_KEYS)}: {draw(HOSTILE_TEXT)}\n".encode()
    return draw(st.binary(max_size=40))


@FUZZ
@given(text=configs(), command=st.sampled_from(["train", "distill"]))
def test_fuzz_yaml_config(text, command, monkeypatch, capsys, tmp_path):
    _patch(monkeypatch)
    f = tmp_path / "c.yaml"
    f.write_bytes(text)
    check_outcome([command, "--config", str(f), "--quiet"], capsys)
