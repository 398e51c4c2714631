"""model/pipelines: both pipelines compile with the KFP v2 SDK to YAML holding their components, dependencies and
the dims == 2 condition, and kfp.local's SubprocessRunner runs them end to end here.

kfp pins kubernetes<31 and the project's environment pins kubernetes 37, so kfp lives in an environment of
its own (`pip install -e '.[pipelines]' pytest`, model/pipelines/README.md); in the main environment these
tests skip, except the one that checks the scripts end with one line when kfp is missing.
"""

import importlib.util
import json

import pytest
import yaml
from matplotlib.image import imread

from conftest import REPO, run_cli

PIPELINES = REPO / "model" / "pipelines"
needs_kfp = pytest.mark.skipif(importlib.util.find_spec("kfp") is None,
                               reason="kfp is not installed (the pipelines extra needs kubernetes<31: "
                                      "see model/pipelines/README.md)")


def compiled(tmp_path, script: str) -> dict:
    run_cli(PIPELINES / script, "--compile", tmp_path / "pipeline.yaml", check_rc=0)
    return yaml.safe_load((tmp_path / "pipeline.yaml").read_text())


def tasks_by_display_name(dag: dict) -> dict:
    return {task["taskInfo"]["name"]: task for task in dag["tasks"].values()}


@pytest.mark.skipif(importlib.util.find_spec("kfp") is not None, reason="kfp is installed here")
@pytest.mark.parametrize("script", ["xor_pipeline.py", "sp500_pipeline.py"])
def test_without_kfp_the_scripts_end_with_one_line(tmp_path, script):
    proc = run_cli(PIPELINES / script, "--compile", tmp_path / "p.yaml")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: the KFP SDK (kfp) is not installed") and not (tmp_path / "p.yaml").exists()


@needs_kfp
def test_xor_pipeline_compiles_with_its_components_dependencies_and_condition(tmp_path):
    spec = compiled(tmp_path, "xor_pipeline.py")
    assert spec["pipelineInfo"]["name"] == "xor-study"
    assert {"comp-generate", "comp-scatter-plot", "comp-train-model", "comp-training-plots",
            "comp-decision-regions"} <= set(spec["components"])
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert {"train", "validation", "test", "dims", "epochs", "lr", "hidden", "image"} <= set(parameters)
    assert parameters["train"]["defaultValue"] == 10000 and parameters["dims"]["defaultValue"] == 2

    root = tasks_by_display_name(spec["root"]["dag"])
    assert set(root) == {"generate", "train-linear", "train-hidden", "training-plots", "dims-is-2"}
    assert "dependentTasks" not in root["generate"]
    names = {task["taskInfo"]["name"]: key for key, task in spec["root"]["dag"]["tasks"].items()}
    for model in ("linear", "hidden"):  # in parallel: each needs only the data
        assert root[f"train-{model}"]["dependentTasks"] == [names["generate"]]
        assert root[f"train-{model}"]["inputs"]["parameters"]["model_name"]["runtimeValue"]["constant"] == model
    assert sorted(root["training-plots"]["dependentTasks"]) == sorted(
        [names["generate"], names["train-linear"], names["train-hidden"]])

    condition = root["dims-is-2"]
    assert condition["triggerPolicy"]["condition"] == "int(inputs.parameter_values['pipelinechannel--dims']) == 2"
    inner = tasks_by_display_name(spec["components"][condition["componentRef"]["name"]]["dag"])
    assert set(inner) == {"scatter-plot", "decision-regions"}
    assert "dependentTasks" not in inner["scatter-plot"]  # its data comes in through the condition's inputs
    assert inner["scatter-plot"]["inputs"]["artifacts"]["dataset"]["componentInputArtifact"] \
        == "pipelinechannel--generate-dataset"

    executors = spec["deploymentSpec"]["executors"]
    for executor in executors.values():  # the project's image, no pip install at run time
        container = executor["container"]
        assert container["image"] == "{{$.inputs.parameters['pipelinechannel--image']}}"
        assert "pip install" not in " ".join(container["command"])
    code = {name: " ".join(e["container"]["command"]) for name, e in executors.items()}
    assert "from etl.xor import build_xor" in code["exec-generate"]
    assert "xor_study.train_model(" in code["exec-train-model"]


@needs_kfp
def test_sp500_pipeline_compiles_etl_scale_train_compare(tmp_path):
    spec = compiled(tmp_path, "sp500_pipeline.py")
    root = tasks_by_display_name(spec["root"]["dag"])
    assert set(root) == {"etl", "scale", "train-base", "train-scaled", "compare"}
    names = {name: task_id for task_id, name in
             ((key, task["taskInfo"]["name"]) for key, task in spec["root"]["dag"]["tasks"].items())}
    assert root["scale"]["dependentTasks"] == [names["etl"]]
    assert root["train-base"]["dependentTasks"] == [names["etl"]]
    assert root["train-scaled"]["dependentTasks"] == [names["scale"]]
    assert sorted(root["compare"]["dependentTasks"]) == sorted([names["train-base"], names["train-scaled"]])


def run_local(tmp_path, script: str, *arguments: str):
    run_cli(PIPELINES / script, "--run-local", tmp_path, *[a for pair in arguments for a in ("--arg", pair)],
            check_rc=0)
    (run,) = tmp_path.iterdir()  # kfp.local's folder for this run: one per task inside
    return run


@needs_kfp
@pytest.mark.slow
def test_xor_pipeline_runs_end_to_end_in_local_subprocesses(tmp_path):
    run = run_local(tmp_path, "xor_pipeline.py", "train=3000", "validation=500", "test=500", "epochs=15",
                    "threads=1")
    assert sorted(p.name for p in run.iterdir()) == ["decision-regions", "generate", "scatter-plot", "train-model",
                                                     "train-model-2", "training-plots"]
    for plot in ("scatter-plot/plot", "decision-regions/plot", "training-plots/loss", "training-plots/accuracy"):
        assert imread(run / plot, format="png").shape[1] > 500
    document = json.loads((run / "training-plots" / "results").read_text())
    assert document["kind"] == "xor_study" and document["dataset"]["train"] == 3000
    accuracy = {row["model"]: row["test_accuracy"] for row in document["rows"]}
    assert accuracy["linear"] <= 0.65 and accuracy["hidden"] >= 0.9
    metrics = json.loads((run / "train-model-2" / "executor_output.json").read_text())
    logged = metrics["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert logged["test_accuracy"] == accuracy["hidden"]


@needs_kfp
@pytest.mark.slow
def test_xor_pipeline_skips_the_2d_plots_for_three_dimensions(tmp_path):
    run = run_local(tmp_path, "xor_pipeline.py", "dims=3", "train=300", "validation=100", "test=100",
                       "epochs=1", "batch_size=64", "threads=1")
    assert sorted(p.name for p in run.iterdir()) == ["generate", "train-model", "train-model-2", "training-plots"]


@needs_kfp
@pytest.mark.slow
def test_sp500_pipeline_runs_end_to_end_in_local_subprocesses(tmp_path):
    run = run_local(tmp_path, "sp500_pipeline.py", "multiplier=2", "epochs=1", "max_steps_per_epoch=5",
                       "threads=1")
    report = (run / "compare" / "report" / "report.md").read_text()
    assert "## Scale test" in report and (run / "compare" / "report" / "plots" / "scale_peak_rss.png").is_file()
    rows = json.loads((run / "compare" / "report" / "results" / "scale_test_pipeline.json").read_text())["rows"]
    assert [r["multiplier"] for r in rows] == [1, 2] and rows[1]["train_rows"] == 2 * rows[0]["train_rows"]
    assert (run / "compare" / "summary").read_text() == report


@needs_kfp
def test_bad_arguments_are_one_line(tmp_path):
    for args, message in ((["--run-local", tmp_path, "--arg", "nope=1"], "--arg 'nope=1': expected NAME=VALUE"),
                          (["--run-local", tmp_path, "--arg", "dims=two"], "--arg 'dims=two': dims must be int"),
                          (["--compile", tmp_path / "p.yaml", "--arg", "dims=3"], "--arg applies to --run-local")):
        proc = run_cli(PIPELINES / "xor_pipeline.py", *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []
