import pytest

from gkd.config import TrainConfig, make_config
from gkd.errors import ConfigError


def test_precedence_defaults_yaml_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: gat\nlr: 0.02\nruns: 4\ndropout: 0.3\n")
    cfg = make_config(f, {"runs": 2, "epochs": None})
    assert (cfg.model, cfg.lr, cfg.runs, cfg.dropout) == ("gat", 0.02, 2, 0.3)
    assert cfg.epochs == TrainConfig().epochs and cfg.heads == 8  # unset flag does not override
    gat = make_config(None, {"model": "gat"})
    assert gat.dropout == 0.6 and gat.lr == 0.005  # per-model defaults
    assert make_config(None, {"model": "gat", "lr": 0.1}).lr == 0.1


def test_dict_flags_set_one_key_and_keep_the_files_others(tmp_path):
    """--dataset-arg / --teacher-arg add to the file's dataset_args / teacher_args (as --term-arg does to term_args);
    they used to replace the whole dict, silently dropping the file's keys."""
    from gkd.pipeline.gnn2mlp import DistillConfig

    f = tmp_path / "c.yaml"
    f.write_text("dataset: synthetic-csbm\ndataset_args: {num_nodes: 300, homophily: 0.2}\n"
                 "teacher_args: {epochs: 3, hidden_channels: 8}\n")
    cfg = make_config(f, {"dataset_args": {"num_features": 16, "homophily": 0.4}, "teacher_args": {"dropout": 0.1}},
                      DistillConfig)
    assert cfg.dataset_args == {"num_nodes": 300, "homophily": 0.4, "num_features": 16}
    assert cfg.teacher_args == {"epochs": 3, "hidden_channels": 8, "dropout": 0.1}


@pytest.mark.parametrize("text, pattern", [
    ("epochz: 10\n", r"unknown key\(s\) \['epochz'\]"),
    ("runs: ten\n", r"runs='ten' has type str; expected int"),
    ("runs: 2.5\n", r"runs=2.5 has type float; expected int"),
    ("dropout: true\n", r"dropout=True has type bool; expected float"),
    ("- a\n- b\n", r"holds a list; expected a mapping"),
    ("model: !!python/object/apply:os.system ['echo pwned']\n", r"is not plain YAML"),
    ("runs: 0\n", r"runs=0; expected an integer >= 1"),
    ("epochs: 0\n", r"epochs=0; expected an integer >= 1"),
    ("dropout: 1.5\n", r"dropout=1.5; expected a value in \[0, 1\)"),
])
def test_bad_yaml(tmp_path, text, pattern):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        make_config(f, {})


def test_missing_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        make_config(tmp_path / "nope.yaml", {})


@pytest.mark.parametrize("kwargs, message", [
    ({"root": 5}, "TrainConfig: root=5 has type int; expected str or null"),
    ({"method": "self-distill", "term_args": [1]}, "TrainConfig: term_args=[1] has type list; expected dict"),
    ({"dropout": "x"}, "TrainConfig: dropout='x' has type str; expected float"),
    ({"method": "self-distill", "sd_terms": 5}, "TrainConfig: sd_terms=5 has type int; expected str or null"),
    ({"epochs": 2.0}, "TrainConfig: epochs=2.0 has type float; expected int"),
    ({"lr": 10**400}, "TrainConfig: lr=1000000000"),  # float() would raise OverflowError
])
def test_a_config_built_in_python_is_type_checked_like_yaml(kwargs, message):
    """Not a TypeError or ValueError from deep inside: the same one line a YAML key of that type gets."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig(**kwargs).validate()


def test_python_conveniences_are_kept():
    """What Python code naturally passes is taken in the form YAML gives: Paths, tuples, NumPy numbers, devices."""
    from pathlib import Path

    import numpy as np
    import torch

    from gkd import GNNToMLP
    from gkd.pipeline.gnn2mlp import DistillConfig
    from gkd.vision.pipeline import CNNDistillConfig

    cfg = TrainConfig(root=Path("/data"), lr=1, batch_size=8, fanout=(5, 5), dropout=np.float32(0.5),
                      device=torch.device("cpu")).validate()
    assert (cfg.root, cfg.lr, cfg.fanout, cfg.dropout, cfg.device) == ("/data", 1.0, [5, 5], 0.5, "cpu")
    assert isinstance(cfg.lr, float) and type(cfg.dropout) is float
    assert CNNDistillConfig(student_channels=(4, 8, 8)).validate().student_channels == [4, 8, 8]
    terms = DistillConfig(terms=("position", "neighbour")).validate().options().active_terms
    assert sorted(terms) == ["neighbour", "position"]
    assert GNNToMLP(root=Path("/data"), temperature=np.float32(2)).config.root == "/data"


def test_python_built_configs_are_checked_before_any_comparison():
    from gkd.pipeline.gnn2mlp import DistillConfig
    from gkd.vision.pipeline import CNNDistillConfig

    with pytest.raises(ConfigError, match="DistillConfig: inductive_fraction='0.2' has type str; expected float"):
        DistillConfig(inductive_fraction="0.2").validate()
    with pytest.raises(ConfigError, match=r"lr=1e\+39; expected a finite number of magnitude at most"):
        CNNDistillConfig(lr=1e39).validate()
    with pytest.raises(ConfigError, match="heads=1000; expected an integer <= 64"):
        CNNDistillConfig(heads=1000).validate()
