"""k8s/katib-xor-experiment.yaml: a valid Katib Experiment whose trials are the trainer in a PyTorchJob with the XOR
study's settings, objective val_accuracy (maximize), and whose containers' commands run here as written."""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import xor_study
import yaml
from k8s.crd_schema import crd_errors
from test_k8s_manifests import KATIB_METRICS_REGEX, KUBE_VERSION, load, validate

from conftest import REPO, run_cli
from trainer.config import load_config

EXPERIMENT = REPO / "k8s" / "katib-xor-experiment.yaml"
VALUES = {"lr": "0.01", "hidden": "16", "trialName": "xor-hidden-search-abc123"}


@pytest.fixture(scope="module")
def experiment():
    (document,) = load(EXPERIMENT)
    return document


def trial_job(experiment: dict, values: dict) -> dict:
    """The PyTorchJob Katib creates for one trial: parameters substituted, name and namespace set."""
    text = yaml.safe_dump(experiment["spec"]["trialTemplate"]["trialSpec"])
    for name, value in values.items():
        text = text.replace(f"${{trialParameters.{name}}}", value)
    assert "${" not in text
    job = yaml.safe_load(text)
    job["metadata"].update(name=values["trialName"], namespace=experiment["metadata"]["namespace"])
    return job


def test_experiment_is_valid_and_tunes_lr_and_hidden_for_val_accuracy(experiment):
    assert validate.object_errors(experiment) == []
    spec = experiment["spec"]
    assert spec["objective"]["type"] == "maximize" and spec["objective"]["objectiveMetricName"] == "val_accuracy"
    assert {p["name"]: p["parameterType"] for p in spec["parameters"]} == {"lr": "double", "hidden": "int"}
    assert spec["trialTemplate"]["primaryContainerName"] == "pytorch"
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    job = trial_job(experiment, VALUES)
    assert crd_errors(job) == [] and validate.pytorchjob_errors(job) == []
    for rtype, replica in job["spec"]["pytorchReplicaSpecs"].items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{job['metadata']['name']}-{rtype}"},
               "spec": replica["template"]["spec"]}
        kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)


def test_trials_train_the_hidden_model_with_the_study_settings(experiment):
    container = trial_job(experiment, VALUES)["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"][
        "containers"][0]
    assert container["command"] == ["python", "-m", "trainer"]
    overrides = [container["args"][i + 1] for i, a in enumerate(container["args"]) if a == "--set"]
    trial = load_config(None, overrides)
    study = xor_study.Settings(lr=float(VALUES["lr"]), hidden=int(VALUES["hidden"]), threads=1).config(
        "hidden", Path(trial.data.path), trial.run_dir).model_dump()
    study["train"]["device"] = "cpu"  # the pods have no GPU to find
    assert trial.model_dump() == study


def test_the_trial_commands_run_and_feed_katibs_collector(experiment, tmp_path):
    """Run the init container's and the trainer's commands as written (paths moved under tmp_path, 2 epochs)."""
    pod = trial_job(experiment, VALUES)["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]

    def here(args: list[str]) -> list[str]:
        return [a.replace("/xor/", f"{tmp_path}/xor/").replace("=/outputs", f"={tmp_path}/outputs") for a in args]

    (init,) = pod["initContainers"]
    assert init["command"][0] == "python"
    run_cli(*here(init["command"][1:] + init["args"]), check_rc=0)
    trainer = pod["containers"][0]
    proc = run_cli(*here(trainer["command"][1:] + trainer["args"]), "--set", "train.epochs=2", check_rc=0)
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch=")]
    metrics = [{m[0]: float(m[1]) for m in re.findall(KATIB_METRICS_REGEX, line)} for line in epochs]
    assert [m["epoch"] for m in metrics] == [1, 2] and all(0 <= m["val_accuracy"] <= 1 for m in metrics)
    assert (tmp_path / "outputs" / "xor-katib" / VALUES["trialName"] / "metrics.json").is_file()
