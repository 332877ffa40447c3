"""The settings' nested layout (gkd.sections): nested and flat configs read into the same settings, every field sits
in one section, and what a nested file gets wrong is one ConfigError naming it."""
from __future__ import annotations

import dataclasses

import pytest

from gkd.config import TrainConfig, make_config
from gkd.errors import ConfigError
from gkd.pipeline import DistillConfig
from gkd.pipeline.student import DistillOptions
from gkd.sections import layout_problems
from gkd.vision.pipeline import CNNDistillConfig

CLASSES = (TrainConfig, DistillConfig, DistillOptions, CNNDistillConfig)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_sits_in_one_section(cls):
    assert layout_problems(cls) == []


def test_layout_problems_are_found():
    @dataclasses.dataclass
    class Two:
        SECTIONS = {"a": {"x": "x", "y": "x", "z": "nope"}}
        x: int = 0
        w: int = 0

    assert sorted(layout_problems(Two)) == sorted(["field 'w' is in no section", "field 'x' is in 2 places",
                                                   "'nope' is not a field"])


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_nested_distill_yaml_reads_as_the_flat_one(tmp_path):
    nested = _write(tmp_path, """
data: {dataset: Cora, split: "per-class:20/30"}
teacher: {model: sage, count: 2, generations: 1, batch_size: 512, args: {model: {hidden_channels: 32}}}
student: {method: glnn, batch_size: 128, guard: false, lr: 0.005}
setting: {name: inductive}
run: {runs: 3, device: cpu}
""")
    flat = make_config(None, {"dataset": "Cora", "split": "per-class:20/30", "teacher": "sage", "teachers": 2,
                              "teacher_generations": 1, "batch_size": 512, "teacher_args": {"hidden_channels": 32},
                              "method": "glnn", "student_batch_size": 128, "student_guard": False, "lr": 0.005,
                              "setting": "inductive", "runs": 3, "device": "cpu"}, DistillConfig)
    got = make_config(nested, None, DistillConfig)
    assert got.to_dict() == flat.to_dict() and got.to_nested() == flat.to_nested()  # teacher_args kept flat too
    assert got.teacher_config().to_dict() == flat.teacher_config().to_dict()
    assert got.teacher_config().hidden_channels == 32 and got.teacher_config().batch_size == 512
    assert got.student_batch_size == 128 and got.batch_size == 512  # two batch sizes, one meaning each


@pytest.mark.parametrize("cls", CLASSES[:2] + CLASSES[3:], ids=lambda c: c.__name__)
def test_to_nested_round_trips(cls):
    cfg = make_config(None, {"seed": 3, "runs": 2}, cls)
    again = make_config(None, cfg.to_nested(), cls)
    assert again.to_dict() == cfg.to_dict()
    assert set(cfg.to_nested()) == set(cls.SECTIONS)


def test_a_section_named_like_a_field_is_that_field_unless_a_mapping():
    assert make_config(None, {"model": "gat"}).heads == 8 and make_config(None, {"model": "gat"}).dropout == 0.6
    nested = make_config(None, {"model": {"name": "gat", "hidden_channels": 16}})
    assert (nested.model, nested.hidden_channels, nested.dropout, nested.lr) == ("gat", 16, 0.6, 0.005)
    assert make_config(None, {"setting": "inductive"}, DistillConfig).setting == "inductive"
    assert make_config(None, {"setting": {"name": "inductive"}}, DistillConfig).setting == "inductive"


def test_cnn_builder_heads_are_not_a_gat_s(tmp_path):
    cfg = make_config(_write(tmp_path, "builder: {heads: 4, epochs: 7}\nstudent: {channels: [2, 4, 4]}\n"), None,
                      CNNDistillConfig)
    assert (cfg.heads, cfg.builder_epochs, cfg.student_channels) == (4, 7, [2, 4, 4])


@pytest.mark.parametrize("raw, message", [
    ({"dataset": "Cora", "data": {"dataset": "CiteSeer"}}, "dataset and data.dataset both set dataset"),
    ({"teacher": {"count": 2}, "teachers": 3}, "teacher.count and teachers both set teachers"),
    ({"student": {"batch_size": 2}, "student_batch_size": 3}, "student.batch_size and student_batch_size both set"),
    ({"teacher": {"modle": "sage"}}, "section 'teacher' has unknown key(s) ['modle']; known keys: model, method,"),
    ({"data": 5}, "data=5; expected a mapping (the data section, keys dataset, root, args, split, metric)"),
    ({"run": {"runs": "ten"}}, "runs='ten' has type str; expected int"),
    ({"teacher_args": {"data": {"dataset": "CiteSeer"}}}, "teacher_args may not set ['dataset']"),
])
def test_bad_nested_settings_are_one_error(raw, message):
    with pytest.raises(ConfigError) as e:
        make_config(None, raw, DistillConfig)
    assert message in str(e.value)


def test_nested_yaml_errors_name_the_file(tmp_path):
    path = _write(tmp_path, "model: {name: gcn, widht: 8}\n")
    with pytest.raises(ConfigError, match=r"config '.*run\.yaml': section 'model' has unknown key\(s\) \['widht'\]"):
        make_config(path)


def test_cli_reads_a_nested_config(tmp_path, capsys):
    from gkd.cli import main

    path = _write(tmp_path, "data: {dataset: Cora}\nmodel: {name: gcn, num_layers: 0}\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gkd: error:") and "num_layers=0" in err[0]


def test_the_documented_nested_config_reads(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    block = doc.split("# gkd distill --config distill.yaml\n", 1)[1].split("```", 1)[0]
    cfg = make_config(_write(tmp_path, block), None, DistillConfig)
    assert (cfg.teacher, cfg.teachers, cfg.batch_size, cfg.student_batch_size) == ("sage", 3, 1024, 4096)
    assert cfg.teacher_config().hidden_channels == 128 and cfg.options().active_terms == ("position", "neighbour")


def test_teacher_args_from_file_and_flags_merge_after_flattening(tmp_path):
    path = _write(tmp_path, "teacher: {args: {model: {hidden_channels: 16, dropout: 0.2}}}\n")
    cfg = make_config(path, {"teacher_args": {"hidden_channels": 32}}, DistillConfig)  # the flag overrides the file
    assert (cfg.teacher_config().hidden_channels, cfg.teacher_config().dropout) == (32, 0.2)
    cfg = make_config(path, {"teacher_args": {"model": {"num_layers": 3}}}, DistillConfig)  # the file's others stay
    assert (cfg.teacher_config().hidden_channels, cfg.teacher_config().num_layers) == (16, 3)


def test_a_term_option_flag_over_a_file_term_that_is_not_a_mapping_is_one_error(tmp_path):
    path = _write(tmp_path, "train: {method: self-distill, term_args: {neighbour: [1]}}\n")
    cfg = make_config(path, {"term_args": {"neighbour": {"warmup": 3}}})  # the flag's mapping replaces the list
    assert cfg.term_options()["neighbour"].warmup == 3
    with pytest.raises(ConfigError, match="expected a mapping term"):  # the file's list stays: refused, one error
        make_config(path, {"term_args": {"time": {"warmup": 3}}})


def test_none_is_not_given():
    cfg = make_config(None, {"model": {"name": "gat", "heads": 4}, "heads": None})
    assert cfg.heads == 4
