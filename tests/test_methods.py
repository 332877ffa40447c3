"""A ``gkd distill`` method is a named list of registered student terms; losses are added in the configured order."""
from __future__ import annotations

import pytest
import torch

from gkd.distill import BookKD, GLNN, LabelSmoothing, get_term
from gkd.distill.knowledge import Knowledge
from gkd.distill.registry import StudentContext
from gkd.errors import ConfigError
from gkd.pipeline import DistillOptions, distill_mlp
from gkd.pipeline.gnn2mlp import guard_rivals
from gkd.pipeline.student import METHODS, student_terms


def _ctx(data, kd_lambda: float = 0.0) -> StudentContext:
    torch.manual_seed(0)
    logits = torch.randn(data.num_nodes, 3)
    know = Knowledge(logits, torch.ones(data.num_nodes, dtype=torch.bool))
    return StudentContext(data, know, data.edge_index, 1.0, 1.0 - kd_lambda, 10, 0)


def test_each_method_is_its_registered_terms():
    assert DistillOptions(method="plain").validate().loss_terms == ()
    assert DistillOptions(method="glnn").validate().loss_terms == ("kd",)
    assert DistillOptions(method="gkd").validate().loss_terms == ("kd", "position", "neighbour")
    assert DistillOptions(method="bookkd").validate().loss_terms == ("bookkd", "label-smoothing")
    assert DistillOptions(method="glnn+amkd").validate().loss_terms == ("kd", "amkd")
    for names in METHODS.values():  # every method's terms are registered student terms
        for name in names:
            assert get_term("student", name).name == name


def test_loss_order_is_the_configured_order(small_graph):
    built = {}
    for terms in (("neighbour", "label-smoothing"), ("label-smoothing", "neighbour")):
        opts = DistillOptions(method="glnn", terms=terms).validate()
        built[terms] = [type(t).__name__ for t in student_terms(opts, _ctx(small_graph))]
    assert built[("neighbour", "label-smoothing")] == ["GLNN", "NeighbourKD", "LabelSmoothing"]
    assert built[("label-smoothing", "neighbour")] == ["GLNN", "LabelSmoothing", "NeighbourKD"]


def test_knowledge_terms_take_their_options(small_graph):
    opts = DistillOptions(method="bookkd", kd_lambda=0.25, label_smoothing=0.2,
                          term_args={"bookkd": {"ramp": 7, "weight": 2.0}}).validate()
    book, smooth = student_terms(opts, _ctx(small_graph, 0.25))
    assert isinstance(book, BookKD) and book.ramp == 7 and book.weight == pytest.approx(0.75 * 2.0)
    assert isinstance(smooth, LabelSmoothing) and smooth.epsilon == 0.2
    opts = DistillOptions(method="gkd", kd_lambda=0.5, term_args={"kd": {"weight": 3.0}}).validate()
    kd = student_terms(opts, _ctx(small_graph, 0.5))[0]
    assert isinstance(kd, GLNN) and kd.weight == pytest.approx(1.5)
    # the epsilon given as a term option, --label-smoothing left at its default
    opts = DistillOptions(method="bookkd", term_args={"label-smoothing": {"epsilon": 0.3}}).validate()
    assert student_terms(opts, _ctx(small_graph))[1].epsilon == 0.3


@pytest.mark.parametrize("opts, message", [
    (dict(method="glnn", terms=("kd",)), r"student term\(s\) \['kd'\] given twice .* \(method glnn has \['kd'\] "
                                         r"already\)"),
    (dict(method="bookkd", label_smoothing=0.2, term_args={"label-smoothing": {"epsilon": 0.3}}),
     r"label_smoothing=0.2 and term_args label-smoothing.epsilon=0.3 disagree"),
    (dict(method="glnn", term_args={"bookkd": {"ramp": 5}}), r"term_args given for student term\(s\) \['bookkd'\] "
                                                             r"that are not switched on \(kd\)"),
    (dict(method="bookkd", term_args={"bookkd": {"ramp": 0}}), r"entropy ramp=0; expected an integer >= 1"),
    (dict(method="plain", terms=("kd",)), r"method 'plain' takes no distillation terms"),
])
def test_bad_method_terms_are_refused_before_training(opts, message):
    with pytest.raises(ConfigError, match=message):
        DistillOptions(**opts).validate()


def test_the_guards_term_free_rival_keeps_the_methods_own_options():
    opts = DistillOptions(method="gkd", term_args={"kd": {"weight": 0.5}, "neighbour": {"steps": 3}}).validate()
    rival = guard_rivals(opts)["no terms"].validate()
    assert rival.loss_terms == ("kd",) and rival.term_args == {"kd": {"weight": 0.5}}


def test_glnn_through_the_registry_is_the_same_student(small_graph):
    """The registered ``kd`` term is GLNN's loss: a student from ``method='glnn'`` equals one trained with the
    GLNN term built by hand (same seed, same steps)."""
    from gkd.nn import build_model
    from gkd.train.trainer import Trainer, seed_everything

    ctx = _ctx(small_graph)
    student, _ = distill_mlp(small_graph, ctx.knowledge, DistillOptions(method="glnn"), epochs=5, patience=5)
    seed_everything(0)
    model = build_model("mlp", small_graph.num_features, 3, hidden_channels=64, num_layers=2, dropout=0.5)
    Trainer(model, small_graph, lr=0.01, weight_decay=5e-4, epochs=5, patience=5, ce_weight=0.0,
            terms=[GLNN(ctx.knowledge.logits, ctx.knowledge.mask, 1.0, 1.0)]).fit()
    for a, b in zip(student.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
