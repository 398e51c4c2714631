"""One-process runs: the model learns, outputs are complete and loadable, logs parse, runs are deterministic."""

import json
import re

import pytest
import torch
import yaml

from etl import open_dataset
from trainer.cli import main
from trainer.config import load_config
from trainer.models import build_model
from trainer_support import REPO, make_dataset, result_of, write_config

KATIB = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")  # Katib's stdout metrics collector
DESIGN_RESULT_KEYS = {"best_val_loss", "epochs", "train_seconds", "samples_per_second", "peak_rss_mb", "world_size"}


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "regression")


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "classification", task="classification")


def train(capsys, config, *args):
    assert main(["--config", str(config), *args]) == 0
    out = capsys.readouterr().out
    return result_of(out), out


def test_regression_learns_and_writes_every_output(tmp_path, capsys, regression):
    config = write_config(tmp_path / "c.yaml", regression, tmp_path / "out", train={"epochs": 6})
    result, out = train(capsys, config)
    run = tmp_path / "out" / "run"
    metrics = json.loads((run / "metrics.json").read_text())

    assert DESIGN_RESULT_KEYS | {"test_mse", "test_mae", "test_r2"} <= result.keys()
    assert result["test_mse"] < 0.5 * result["baseline_train_mean_mse"]
    assert result["test_r2"] > 0.5 and "baseline_persistence_mse" in result
    assert metrics["test"]["mse"] == result["test_mse"] and metrics["world_size"] == 1
    assert len(metrics["history"]) == metrics["epochs"] == 6
    assert {"persistence", "train_mean"} == metrics["baselines"].keys()
    assert metrics["torch_version"] == torch.__version__ and metrics["device"] == "cpu"
    assert metrics["ranks"][0]["peak_rss_mb"] > 0 and metrics["samples_per_second"] > 0

    assert load_config(run / "config.yaml") == load_config(config)
    saved = torch.load(run / "model.pt", weights_only=True)
    assert saved["epoch"] == metrics["best_epoch"]
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["progress"]["epoch"] == 6
    assert not list(run.glob(".*tmp*"))

    model = build_model(load_config(config).model, window=8, n_features=3)
    model.load_state_dict(saved["weights"])
    model.eval()
    x, y = open_dataset(regression).load_split("test")
    with torch.no_grad():
        mse = torch.mean((model(torch.from_numpy(x)).double() - torch.from_numpy(y).double()) ** 2).item()
    assert mse == pytest.approx(result["test_mse"], rel=1e-9)


def test_epoch_lines_are_katib_metrics_and_there_is_no_progress_bar(tmp_path, capsys, regression):
    config = write_config(tmp_path / "c.yaml", regression, tmp_path / "out", train={"epochs": 2})
    _, out = train(capsys, config)
    lines = [line for line in out.splitlines() if line.startswith("epoch=")]
    assert len(lines) == 2 and "\r" not in out and "it/s" not in out
    for number, line in enumerate(lines, 1):
        parsed = {m.group(1): float(m.group(2)) for m in KATIB.finditer(line)}
        assert {"epoch", "train_loss", "val_loss", "samples_per_sec"} <= parsed.keys()
        assert parsed["epoch"] == number


def test_classification_beats_the_majority_class(tmp_path, capsys, classification):
    config = write_config(tmp_path / "c.yaml", classification, tmp_path / "out", train={"epochs": 8})
    result, out = train(capsys, config)
    assert {"test_accuracy", "test_precision", "test_recall", "test_f1"} <= result.keys()
    assert result["test_accuracy"] > result["baseline_majority_accuracy"] + 0.2
    assert all("val_accuracy=" in line for line in out.splitlines() if line.startswith("epoch="))


def test_logistic_regression_and_lstm_train_on_classification(tmp_path, capsys, classification):
    linear = write_config(tmp_path / "a.yaml", classification, tmp_path / "out", model={"layers": 0},
                          train={"epochs": 5, "lr": 0.01})
    result, _ = train(capsys, linear)
    assert result["test_accuracy"] > 0.8  # the classes are a linear function of two inputs
    lstm = write_config(tmp_path / "b.yaml", classification, tmp_path / "out",
                        model={"kind": "lstm", "hidden": 8, "layers": 1}, train={"epochs": 2})
    result, _ = train(capsys, lstm)
    assert 0 <= result["test_accuracy"] <= 1 and result["epochs"] == 2


def test_runs_are_deterministic_in_both_data_modes(tmp_path, capsys, regression):
    results = {}
    for mode in ("stream", "memory", "stream"):
        config = write_config(tmp_path / "c.yaml", regression, tmp_path / mode, data={"mode": mode},
                              model={"dropout": 0.2})
        results.setdefault(mode, []).append(train(capsys, config)[0])
    first, again = results["stream"]
    assert first["test_mse"] == again["test_mse"] and first["best_val_loss"] == again["best_val_loss"]
    assert results["memory"][0]["test_mse"] < results["memory"][0]["baseline_train_mean_mse"]


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path, capsys, regression):
    config = write_config(tmp_path / "c.yaml", regression, tmp_path / "out",
                          train={"epochs": 40, "lr": 0.05, "schedule": "none", "early_stop_patience": 2})
    result, _ = train(capsys, config)
    metrics = json.loads((tmp_path / "out" / "run" / "metrics.json").read_text())
    losses = [record["val_loss"] for record in metrics["history"]]
    assert metrics["stopped_early"] and result["epochs"] < 40
    assert result["epochs"] - result["best_epoch"] == 2
    assert min(losses) == result["best_val_loss"] == losses[result["best_epoch"] - 1]


def test_cosine_schedule_decays_the_learning_rate(tmp_path, capsys, regression):
    config = write_config(tmp_path / "c.yaml", regression, tmp_path / "out", train={"epochs": 4})
    train(capsys, config)
    history = json.loads((tmp_path / "out" / "run" / "metrics.json").read_text())["history"]
    rates = [record["lr"] for record in history]
    assert rates[0] == pytest.approx(1e-3) and rates == sorted(rates, reverse=True) and rates[-1] < 2e-4


def test_resume_of_a_finished_run_reports_the_same_result(tmp_path, capsys, regression):
    config = write_config(tmp_path / "c.yaml", regression, tmp_path / "out", train={"epochs": 3})
    first, _ = train(capsys, config)
    again, out = train(capsys, config, "--resume")
    assert "resumed from" in out and "epoch=" not in out
    assert {k: v for k, v in first.items() if k.startswith("test_")} == \
        {k: v for k, v in again.items() if k.startswith("test_")}
    saved = yaml.safe_load((tmp_path / "out" / "run" / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 3


def test_mlp_beats_persistence_on_the_real_volatility_dataset(tmp_path, capsys, volatility_dataset):
    """The default model on the dataset built from the shipped snapshot (conftest's session fixture)."""
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "model" / "configs" / "base.yaml").read_text())
    result, _ = train(capsys, config, "--set", f"data.path={volatility_dataset}", "--set", f"io.save_dir={tmp_path}",
                      "--set", "train.threads=1")
    assert result["test_mse"] < 0.8 * result["baseline_persistence_mse"]
    assert result["test_mse"] < result["baseline_train_mean_mse"] and result["test_r2"] > 0
