"""A run's settings are validated once and then frozen; what a term can do is read from its registry entry, never
found by building it (issue #40)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch

from gkd.config import TrainConfig, make_config
from gkd.distill import registry
from gkd.distill.registry import TermOptions, get_term, register_term
from gkd.errors import ConfigError
from gkd.pipeline import DistillConfig, DistillOptions, GNNToMLP
from gkd.train.trainer import Capabilities, LossTerm


def test_validated_settings_are_frozen_and_replace_validates_afresh():
    cfg = make_config(None, {"dataset": "Cora", "epochs": 5}, TrainConfig)
    assert cfg.validated
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to field 'epochs': TrainConfig is "
                       r"frozen once validated; make a new one with dataclasses.replace\(config, epochs=...\)"):
        cfg.epochs = 0
    other = dataclasses.replace(cfg, epochs=0)  # a new object: not validated until asked
    assert not other.validated
    with pytest.raises(ConfigError, match=r"^epochs=0; expected an integer >= 1$"):
        other.validate()
    unvalidated = TrainConfig(dataset="Cora")
    unvalidated.epochs = 7  # before validation a config is an ordinary dataclass
    assert unvalidated.validate().epochs == 7


def test_validate_checks_once(monkeypatch):
    calls = []
    real = TrainConfig.check
    monkeypatch.setattr(TrainConfig, "check", lambda self: (calls.append(1), real(self))[1])
    cfg = TrainConfig(dataset="Cora")
    assert cfg.validate() is cfg and cfg.validate() is cfg
    assert len(calls) == 1


def test_distill_config_derives_its_parts_once():
    cfg = make_config(None, {"teacher": "sage", "terms": "neighbour"}, DistillConfig)
    assert cfg.options() is cfg.options() and cfg.options().validated
    assert cfg.teacher_config() is cfg.teacher_config() and cfg.teacher_config().model == "sage"
    assert cfg.options().term_options() is cfg.options().term_options()
    # a config not yet validated builds them afresh each time (it may still change)
    raw = DistillConfig(teacher="sage")
    assert raw.options() is not raw.options()


def test_one_distillation_checks_each_settings_object_once(small_graph, monkeypatch):
    """Before #40 one ``gkd distill`` run (1 seed) type-checked its settings 7 times and built every term's options
    24 times; now each settings object is checked once: the run's config, the teachers' config, and the guard's two
    rival distillers (new objects, made by dataclasses.replace)."""
    import gkd.config as config

    checked = []
    real = config.check_types
    monkeypatch.setattr(config, "check_types", lambda cfg: (checked.append(type(cfg).__name__), real(cfg))[1])
    made = []
    real_make = registry.TermSpec.make_options
    monkeypatch.setattr(registry.TermSpec, "make_options", lambda spec, values=None: (
        made.append((spec.kind, spec.name)), real_make(spec, values))[1])
    import gkd.pipeline.distill_config as dc

    monkeypatch.setattr(dc, "check_types", config.check_types)
    est = GNNToMLP(teacher="gcn", teachers=2, teacher_generations=1, epochs=3, patience=3,
                   teacher_args={"epochs": 3, "patience": 3})
    est.fit(small_graph)
    est.fit(small_graph, run=1)
    assert sorted(checked) == ["DistillConfig", "TrainConfig"]
    # every option of every term built once: the student's (gkd: kd, position, neighbour), the guard's term-free
    # rival's (kd) and the teachers' self terms, however many seeds and teachers
    from gkd.distill.self_distill import SELF_DISTILL_TERMS, parse_terms

    assert sorted(made) == sorted([("student", "kd"), ("transform", "position"), ("student", "neighbour"),
                                   ("student", "kd")]
                                  + [("self", t) for t in parse_terms(SELF_DISTILL_TERMS)])


def test_term_capabilities_come_from_the_registry_without_building(monkeypatch):
    spec = get_term("self", "neighbour")
    assert spec.caps == Capabilities(minibatch=True, late_start=True, all_nodes=True)
    assert get_term("student", "position").caps.transform and get_term("student", "reliability").caps.transform

    def refuse(*a, **k):
        raise AssertionError("a config check built a term to learn what it can do")

    monkeypatch.setitem(registry._TERMS, ("self", "neighbour"),
                        dataclasses.replace(spec, build=refuse))
    cfg = make_config(None, {"dataset": "Cora", "method": "self-distill", "sd_terms": "neighbour", "batch_size": 64,
                             "term_nodes": 100}, TrainConfig)
    assert cfg.term_nodes == 100
    with pytest.raises(ConfigError, match=r"^term_nodes=100: read only when a term teaches unlabelled nodes"):
        make_config(None, {"dataset": "Cora", "method": "self-distill", "sd_terms": "time", "batch_size": 64,
                           "term_nodes": 100}, TrainConfig)


@dataclass
class _ToyOptions(TermOptions):
    pass


class _ToyMiniBatch(LossTerm):
    name = "toy-minibatch"
    minibatch = True  # the flag plugins wrote before Capabilities: still read

    def forward(self, step):
        return step.logits.new_zeros(())


class _ToyFull(_ToyMiniBatch):
    caps = Capabilities()  # declares full-batch only


def test_a_plugin_term_that_declares_minibatch_trains_on_student_minibatches(monkeypatch, small_graph):
    assert _ToyMiniBatch.caps == Capabilities(minibatch=True)
    monkeypatch.setattr(registry, "_TERMS", dict(registry._TERMS))  # the registration ends with the test
    register_term("toy-minibatch", kind="student", options=_ToyOptions, term=_ToyMiniBatch)(
        lambda ctx, o: _ToyMiniBatch(o.weight))
    register_term("toy-full", kind="student", options=_ToyOptions, term=_ToyFull)(lambda ctx, o: _ToyFull(o.weight))
    cfg = make_config(None, {"method": "glnn", "terms": "toy-minibatch", "student_batch_size": 64}, DistillConfig)
    assert cfg.options().active_terms == ("toy-minibatch",)
    with pytest.raises(ConfigError, match=r"student term\(s\) \['toy-full'\] need full-batch steps"):
        make_config(None, {"method": "glnn", "terms": "toy-full", "student_batch_size": 64}, DistillConfig)
    est = GNNToMLP(method="glnn", terms="toy-minibatch", student_batch_size=64, teachers=1, teacher_generations=1,
                   epochs=2, patience=2, teacher_args={"epochs": 2, "patience": 2}, student_guard=False)
    assert est.fit(small_graph).result_["epochs_run"] == 2


def test_declared_caps_are_carried_by_the_built_term(monkeypatch):
    monkeypatch.setattr(registry, "_TERMS", dict(registry._TERMS))
    caps = Capabilities(minibatch=True, all_nodes=True)
    register_term("toy-declared", kind="self", options=_ToyOptions, caps=caps)(lambda ctx, o: _ToyFull(o.weight))
    spec = get_term("self", "toy-declared")
    assert spec.caps == caps and spec.make(None, _ToyOptions()).caps == caps
    with pytest.raises(ConfigError, match=r"^term=<class 'int'>; expected the LossTerm subclass that build returns$"):
        register_term("toy-bad", kind="self", term=int)


def test_bounds_sit_beside_the_fields_they_bound():
    bounded = {f.name: f.metadata["bounds"] for f in dataclasses.fields(DistillConfig) if "bounds" in f.metadata}
    assert bounded["epochs"] == (1, 10**6) and bounded["teachers"] == (1, 1000) and bounded["seed"][0] == 0
    with pytest.raises(ConfigError, match=r"^teachers=1001; expected an integer <= 1000$"):
        DistillConfig(teachers=1001).validate()
    with pytest.raises(ConfigError, match=r"^epochs=1000001; expected an integer <= 1000000$"):
        make_config(None, {"epochs": 10**6 + 1}, TrainConfig)


def test_distill_options_given_to_distill_mlp_stay_the_callers(small_graph):
    from gkd.distill.knowledge import Knowledge
    from gkd.pipeline import distill_mlp

    opts = DistillOptions(method="glnn")
    know = Knowledge(torch.randn(small_graph.num_nodes, 3), torch.ones(small_graph.num_nodes, dtype=torch.bool))
    distill_mlp(small_graph, know, opts, epochs=2, patience=2)
    assert not opts.validated
    opts.kd_lambda = 0.5  # still the caller's to change


@pytest.mark.parametrize("command", ["train", "distill", "cnn"])
def test_one_term_weight_flag_in_every_command(command):
    """``--term-weight`` is the same flag in every command; ``gkd train``'s older ``--sd-weight`` reads the same."""
    from gkd.cli.parser import build_parser, flags

    term = {"train": "time", "distill": "neighbour", "cnn": "kd"}[command]
    args = build_parser().parse_args([command, "--term-weight", f"{term}=0.5"])
    assert flags(args, ["term_args"])["term_args"] == {term: {"weight": 0.5}}
    if command == "train":
        older = build_parser().parse_args([command, "--sd-weight", f"{term}=0.5"])
        assert flags(older, ["term_args"])["term_args"] == {term: {"weight": 0.5}}


def test_the_guard_names_what_its_baseline_trained_with(small_graph):
    """The late-term guard's baseline is plain training only when no term ran from the start."""
    from gkd.config import TrainConfig
    from gkd.pipeline import run_training

    def guard_of(sd_terms: str) -> dict:
        cfg = TrainConfig(dataset="tiny", model="mlp", method="self-distill", sd_terms=sd_terms, runs=1, epochs=60,
                          patience=5, term_args={"neighbour": {"warmup": 2}})
        res = run_training(cfg, data=small_graph, progress=False)
        return res["runs"][0]["stats"]["guard"]

    assert "baseline_terms" not in guard_of("neighbour")
    assert guard_of("label-smoothing,neighbour")["baseline_terms"] == ["label-smoothing"]  # logged as typed


def test_first_teacher_is_what_one_teacher_gives(small_graph):
    from gkd.pipeline import teacher_stage

    cfg = make_config(None, {"teachers": 2, "teacher_generations": 1, "teacher_args": {"epochs": 3, "patience": 3}},
                      DistillConfig)
    stage = teacher_stage(cfg, small_graph, 0, progress=False)
    one = stage.first_teacher()
    assert torch.equal(one.knowledge.logits, stage.teacher_logits[0]) and one.knowledge.reliability is None
    assert len(one.teachers) == len(one.teacher_logits) == 1 and one.scores == stage.scores
