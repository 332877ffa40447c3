"""BSS/AMKD: the boundary attack, the triplet term, skipped steps, both modalities and their bad inputs."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error
from gkd.cli import main
from gkd.distill.amkd import boundary_attack, check_attack_args, triplet
from gkd.distill.knowledge import TeacherView
from gkd.vision.amkd import ImageBoundaryDistill
from gkd.vision.pipeline import CNN_METHODS
from gkd.pipeline.student import DistillOptions, distill_mlp
from gkd.distill.knowledge import teacher_knowledge
from gkd.errors import ConfigError
from gkd.nn import build_model, to_adj_t
from gkd.train import Trainer
from gkd.vision.trainer import ImageStep


def linear_teacher() -> nn.Module:
    """Two classes split by the sign of the first input: f_0 = -x_0, f_1 = x_0."""
    t = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        t[1].weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    return t


def cli_error(capsys, argv, fragment):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert fragment in err, err


def test_attack_crosses_the_teachers_boundary_within_steps_and_stops():
    teacher = linear_teacher()
    x = torch.tensor([[-2.0, 0.3], [-0.5, -0.7], [-3.0, 1.0]]).view(3, 1, 2)  # all class 0
    b, k = torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long)
    x_adv, logits, crossed = boundary_attack(lambda xr, rows: teacher(xr), x, b, k, eta=0.3, steps=10, lo=-5, hi=5)
    assert crossed.all() and (logits.argmax(-1) == 1).all()
    assert torch.allclose(x_adv[:, 0, 1], x[:, 0, 1])                   # moved only along the gradient (x_0)
    assert (x_adv[:, 0, 0] < 0.2).all()                                 # stopped right after the boundary
    # one step too few: no crossing, and the clamp holds
    _, _, crossed = boundary_attack(lambda xr, rows: teacher(xr), x, b, k, eta=0.01, steps=1, lo=-5, hi=5)
    assert not crossed.any()


def test_triplet_is_zero_once_the_margin_holds():
    a = torch.tensor([[0.9, 0.1, 0.0]])
    assert triplet(a, a.clone(), torch.tensor([[0.0, 0.0, 1.0]]), margin=0.5) == 0
    assert triplet(a, torch.tensor([[0.5, 0.5, 0.0]]), a.clone(), margin=0.1) > 0.1


def image_step(x, y, logits, model, epoch=1):
    return ImageStep(x, y, torch.arange(len(x)), torch.ones(len(x), dtype=torch.bool), logits, [], model, epoch)


def test_image_skips_are_counted():
    teacher = linear_teacher()
    x = torch.tensor([[-2.0, 0.0], [-1.0, 0.5], [2.0, 0.0], [1.0, 1.0]]).view(4, 1, 2)
    student = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    # every label wrong for the teacher: no base sample, the adversarial term is skipped and counted
    wrong = torch.tensor([1, 1, 0, 0])
    term = ImageBoundaryDistill(teacher, teacher(x).detach(), x, wrong, torch.arange(4), eta=0.3, lo=-5, hi=5,
                                total_epochs=10)
    loss = term(image_step(x, wrong, student(x), student))
    assert loss == 0 and term.stats()["skipped_no_base"] == 1 and term.stats()["attacked"] == 0
    # correct labels but only 2 classes: KD on boundary samples runs, the triplet is skipped and counted
    right = torch.tensor([0, 0, 1, 1])
    term = ImageBoundaryDistill(teacher, teacher(x).detach(), x, right, torch.arange(4), eta=0.3, lo=-5, hi=5,
                                total_epochs=10)
    loss = term(image_step(x, right, student(x), student))
    stats = term.stats()
    assert loss > 0 and stats["attacked"] == 4 and stats["crossed"] == 4 and stats["skipped_no_negative"] == 1
    loss.backward()
    assert student[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"eta": 0.0}, "eta=0.0; expected a step size > 0"),
    ({"steps": 0}, "attack steps=0; expected an integer >= 1"),
    ({"margin": -0.1}, "triplet margin=-0.1; expected >= 0"),
    ({"refresh": 0}, "refresh=0; expected an integer >= 1"),
])
def test_attack_settings_are_checked(kwargs, message):
    args = {"eta": 0.1, "steps": 10, "margin": 0.2} | kwargs
    with pytest.raises(ConfigError, match=message):
        check_attack_args(**args)


def test_graph_attack_moves_only_attacked_nodes_and_composes_with_distillers(small_graph):
    data = small_graph
    adj = to_adj_t(data.edge_index, data.num_nodes)
    torch.manual_seed(0)
    teacher = build_model("gcn", data.num_features, 3, hidden_channels=16)
    Trainer(teacher, data, epochs=60, patience=60).fit()
    view = TeacherView(teacher, data.x, adj)
    ids = data.train_mask.nonzero().view(-1)[:5]
    x_ids = view.features(ids).clone().requires_grad_(True)
    out = view(ids, x_ids + 1.0)
    assert out.shape == (5, 3) and torch.equal(view.x, data.x)          # the graph and other nodes' features fixed
    out.sum().backward()
    assert x_ids.grad is not None and x_ids.grad.abs().sum() > 0
    know = teacher_knowledge(teacher, data.x, adj, noise=0.0)
    opts = DistillOptions(method="glnn+amkd", term_args={"amkd": {"refresh": 5}}).validate()
    assert opts.distiller == "glnn" and opts.active_terms == ("amkd",) and opts.method == "glnn+amkd"
    student, fit = distill_mlp(data, know, opts, hidden_channels=32, epochs=20, patience=20, teacher=view)
    stats = fit.stats["amkd"]
    assert stats["attacks"] == 4 and stats["attacked"] > 0 and stats["crossed"] > 0
    with pytest.raises(ConfigError, match="needs a live teacher"):
        distill_mlp(data, know, opts, epochs=2, patience=2)


def test_cli_modalities_and_bad_inputs(tmp_path, capsys):
    assert set(CNN_METHODS) == {"student", "kd", "mhgd", "mhgd+kd", "bss", "amkd"}
    runs = []
    for i in range(2):  # twice: the same seed gives the same numbers (attack sampling included)
        assert main(["cnn", "--method", "amkd", "--epochs", "3", "--runs", "1", "--quiet", "--json",
                     str(tmp_path / f"a{i}.json")]) == 0
        runs.append(json.loads((tmp_path / f"a{i}.json").read_text())["runs"][0])
    run = runs[0]
    assert run["stats"]["amkd"]["attacks"] == 1 and run["stats"]["amkd"]["attacked"] > 0
    strip = lambda r: {k: v for k, v in r.items() if "seconds" not in k}  # noqa: E731
    assert strip(runs[0]) == strip(runs[1])
    cli_error(capsys, ["cnn", "--method", "amkd", "--term-arg", "amkd.eta=0", "--quiet"], "eta=0.0; expected a step size > 0")
    cli_error(capsys, ["cnn", "--method", "bss", "--term-arg", "bss.steps=0", "--quiet"], "attack steps=0; expected")
    cli_error(capsys, ["distill", "--method", "glnn+amkd", "--term-arg", "amkd.margin=-1", "--quiet"], "triplet margin=-1.0; expected")
    cli_error(capsys, ["distill", "--method", "gkd+fgsm", "--quiet"], "'fgsm' is not a registered student term")
