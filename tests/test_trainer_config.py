"""Config: defaults for every key, YAML plus --set overrides with type conversion, one-line errors."""

import pytest
import yaml

from trainer.config import Config, dump_config, load_config
from trainer.errors import TrainerError
from trainer_support import REPO

DESIGN_KEYS = ["data.path", "data.mode", "model.kind", "model.hidden", "model.layers", "model.dropout",
               "train.epochs", "train.batch_size", "train.lr", "train.weight_decay", "train.early_stop_patience",
               "train.seed", "train.device", "eval.threshold", "io.save_dir", "io.run_name"]


def test_every_design_key_has_a_default():
    defaults = Config().model_dump()
    for key in DESIGN_KEYS:
        section, name = key.split(".")
        assert name in defaults[section], key


def test_file_and_overrides_are_converted_to_the_key_types(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  epochs: 7\n  lr: 0.01\nmodel:\n  kind: lstm\n")
    config = load_config(file, ["train.lr=1e-4", "train.batch_size=64", "data.checksums=true", "model.layers=0",
                                "model.kind=mlp", "io.run_name=trial-3"])
    assert config.train.epochs == 7
    assert config.train.lr == pytest.approx(1e-4) and isinstance(config.train.lr, float)
    assert config.train.batch_size == 64 and config.data.checksums is True
    assert (config.model.kind, config.model.layers, config.io.run_name) == ("mlp", 0, "trial-3")


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(None, ["train.epochs=2", "model.hidden=8"])
    file = tmp_path / "config.yaml"
    file.write_text(dump_config(config))
    assert load_config(file) == config
    assert yaml.safe_load(file.read_text())["train"]["epochs"] == 2


@pytest.mark.parametrize("name", ["base.yaml", "large.yaml", "search_base.yaml"])
def test_shipped_configs_load(name):
    load_config(REPO / "model" / "configs" / name)


@pytest.mark.parametrize(("overrides", "named"), [
    (["train.epochs=abc"], "train.epochs"),
    (["train.epochs=2.5"], "train.epochs"),
    (["train.epochs=0"], "train.epochs"),
    (["train.lr=-1"], "train.lr"),
    (["model.dropout=1.0"], "model.dropout"),
    (["eval.threshold=1.5"], "eval.threshold"),
    (["data.mode=disk"], "data.mode"),
    (["train.device=tpu"], "train.device"),
    (["train.optimizer=sgd"], "train.optimizer"),
    (["optim.lr=1"], "optim.lr"),
    (["model.kind=lstm", "model.layers=0"], "model.layers"),
    (["io.run_name=../x"], "io.run_name"),
    (["epochs=3"], "epochs=3"),
])
def test_bad_overrides_name_the_key(overrides, named):
    with pytest.raises(TrainerError) as error:
        load_config(None, overrides)
    message = str(error.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize(("text", "named"), [
    ("train:\n  epochs: [1, 2]\n", "train.epochs"),
    ("train:\n  batch_sizes: 3\n", "train.batch_sizes"),
    ("train: 3\n", "train"),
    ("- a\n- b\n", "mapping"),
    ("train: {epochs: 3\n", "not valid YAML"),
    ("model:\n  hidden: -4\n", "model.hidden"),
])
def test_bad_files_name_the_key(tmp_path, text, named):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(TrainerError) as error:
        load_config(file)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(TrainerError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
