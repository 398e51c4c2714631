"""model/experiments/xor_study.py: linear stays near chance, one hidden layer separates XOR; plots, results JSON,
the report's XOR section, and bad input."""

import json

import numpy as np
import pytest
import xor_study
from matplotlib.image import imread

from conftest import run_cli
from etl.cli import run
from etl.xor import build_xor

SCRIPT = "model/experiments/xor_study.py"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The 2-D study on the default 10000/1000/1000 points, with a test-sized budget of 12 epochs."""
    out = tmp_path_factory.mktemp("xor")
    proc = run_cli(SCRIPT, "--epochs", 12, "--threads", 1, "--out", out / "study", "--results", out / "xor.json",
                   check_rc=0)
    return out, json.loads((out / "xor.json").read_text()), proc.stdout


def test_linear_stays_near_chance_and_one_hidden_layer_separates_xor(study):
    _, document, _ = study
    assert document["kind"] == "xor_study" and document["where"] == "local"
    assert document["dataset"] == {"path": document["dataset"]["path"], "dims": 2, "seed": 0, "train": 10000,
                                   "validation": 1000, "test": 1000}
    rows = {row["model"]: row for row in document["rows"]}
    assert (rows["linear"]["layers"], rows["hidden"]["layers"]) == (0, 1)
    assert rows["linear"]["test_accuracy"] <= 0.65
    assert rows["hidden"]["test_accuracy"] >= 0.97
    assert rows["hidden"]["train_accuracy"] >= 0.97 and rows["linear"]["train_accuracy"] <= 0.65
    for row in rows.values():  # same settings: every epoch run (no early stopping), one history entry each
        assert row["epochs"] == 12 and [h["epoch"] for h in row["history"]] == list(range(1, 13))
    assert rows["hidden"]["history"][-1]["train_loss"] < 0.5 * rows["linear"]["history"][-1]["train_loss"]
    assert document["settings"]["epochs"] == 12 and document["notes"] == []


def test_plots_are_drawn(study):
    out, document, _ = study
    assert set(document["plots"]) == {"points", "loss", "accuracy", "regions"}
    for path in document["plots"].values():
        image = imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 500
        assert np.ptp(image[..., :3]) > 0.5  # not blank
        assert path.startswith(str(out / "study" / "plots"))


def test_compare_results_shows_the_study(study, tmp_path):
    out, _, _ = study
    proc = run_cli("model/experiments/compare_results.py", out / "xor.json", "--out", tmp_path, check_rc=0)
    report = (tmp_path / "report.md").read_text()
    assert "## XOR study" in report and "| linear" in report and "| hidden" in report
    for name in ("points", "loss", "accuracy", "regions"):
        assert f"(plots/xor_{name}.png)" in report
        assert (tmp_path / "plots" / f"xor_{name}.png").read_bytes() == (out / "study" / "plots" / f"xor_{name}.png") \
            .read_bytes()
    assert "XOR study: final metrics" in proc.stdout


def test_three_dimensions_has_no_scatter_and_says_so(tmp_path):
    run_cli(SCRIPT, "--dims", 3, "--train", 400, "--validation", 100, "--test", 100, "--epochs", 1, "--batch-size", 64,
            "--threads", 1, "--out", tmp_path / "s", "--results", tmp_path / "r.json", check_rc=0)
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["plots"]["points"] is None and document["plots"]["regions"] is None
    assert document["notes"] == ["d = 3: the scatter plot and the decision regions are drawn only for d = 2"]
    assert sorted(p.name for p in (tmp_path / "s" / "plots").iterdir()) == ["xor_accuracy.png", "xor_loss.png"]


@pytest.mark.parametrize(("args", "message"), [
    (["--dims", "0"], "--dims, --train, --validation and --test must each be >= 1"),
    (["--train", "100", "--batch-size", "128"], "--batch-size 128 is larger than --train 100"),
    (["--epochs", "0"], "config key train.epochs"),
    (["--lr", "-1"], "config key train.lr"),
    (["--hidden", "x"], "--hidden: invalid int value"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    assert run(xor_study.main, [*args, "--out", str(tmp_path / "s"), "--results", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_the_command_exits_2_on_bad_input(tmp_path):
    proc = run_cli(SCRIPT, "--dims", 0, "--out", tmp_path / "s", "--results", tmp_path / "r.json")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --dims") and proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_study_is_kept_without_force(tmp_path, capsys):
    build_xor(tmp_path / "s" / "data", train=50)
    assert run(xor_study.main, ["--out", str(tmp_path / "s"), "--results", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "s" / "runs").exists()
