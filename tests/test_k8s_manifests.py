"""Every manifest in k8s/ and every rendered trial, held to the real contracts, offline.

- PyTorchJobs: the training operator v1.9.0's CRD schema (vendored, strict fields), its webhook's admission
  rules (k8s/validate.py, each rule also shown to refuse a bad job), and the Kubeflow training SDK's models.
- Core objects (from `kubectl kustomize`) and every pod template: the Kubernetes schemas of
  kubernetes-validate, strict.
- The Katib Experiment: current with the search space and trial template, its trial spec a valid
  PyTorchJob once Katib substitutes the parameters, and the trainer's epoch line parsed by Katib's stdout
  metrics collector regex.
"""

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys

import kubernetes.client
import kubernetes_validate
import pytest
import yaml
from k8s.crd_schema import crd_errors
from kubeflow.training import models as training_models

from conftest import REPO, run_cli
from trainer.report import epoch_line

sys.path.insert(0, str(REPO / "model" / "experiments"))
from search_space import load_search_space  # noqa: E402


def load_module(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = load_module("k8s_validate", REPO / "k8s" / "validate.py")
render_configmap = load_module("k8s_render_configmap", REPO / "k8s" / "render_configmap.py")

K8S = REPO / "k8s"
KUBE_VERSION = kubernetes_validate.utils.latest_version()
KATIB_METRICS_REGEX = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"  # Katib v1beta1 default StdOut filter
SCRIPT = "model/experiments/hyperparam_search_cloud.py"


def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def kustomized():
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed (its kustomize renders k8s/)")
    out = subprocess.run(["kubectl", "kustomize", str(K8S)],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def rendered_trials(tmp_path_factory):
    out = tmp_path_factory.mktemp("trials")
    run_cli(SCRIPT, "--name", "hp-test", "--image", "registry.example/sp500-trainer:1", "--render-only", out,
            check_rc=0)
    return [load(p)[0] for p in sorted(out.glob("*.yaml"))]


def pytorchjobs(rendered_trials):
    return [*load(K8S / "large-dataset-job.yaml"), *load(K8S / "trial-pytorchjob.yaml"), *rendered_trials]


def test_rendered_trials_are_the_whole_grid(rendered_trials):
    space = load_search_space(REPO / "model" / "configs" / "search_space.yaml")
    assert len(rendered_trials) == len(space.grid())
    assert [t["metadata"]["name"] for t in rendered_trials] == [f"hp-test-t{i:02d}" for i in range(len(space.grid()))]
    for job, trial in zip(rendered_trials, space.trials("grid"), strict=True):
        for replica in job["spec"]["pytorchReplicaSpecs"].values():
            container = replica["template"]["spec"]["containers"][0]
            assert container["image"] == "registry.example/sp500-trainer:1"
            pairs = [container["args"][i + 1] for i, a in enumerate(container["args"]) if a == "--set"]
            assert f"io.run_name={job['metadata']['name']}" in pairs
            assert all(f"{k}={v}" in pairs for k, v in trial.items())


def test_pytorchjobs_match_the_crd_schema_and_admission_rules(rendered_trials):
    for job in pytorchjobs(rendered_trials):
        assert crd_errors(job) == [], job["metadata"]["name"]
        assert validate.object_errors(job) == [], job["metadata"]["name"]


NATIVE = {"str": str, "int": int, "bool": bool, "float": float, "object": object, "datetime": str}


def to_model(data, type_name: str):
    """`data` as the SDK's model `type_name` (Kubeflow models, with the kubernetes client's for core types).

    The SDK's own ApiClient cannot read the kubernetes 37 client's type names (`Dict[str, str]`), so this
    walks `openapi_types` the same way; each model's constructor checks its required fields and enums.
    """
    if data is None:
        return None
    if match := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        return [to_model(item, match[1]) for item in data]
    if match := re.fullmatch(r"(?:dict\(|Dict\[)str, (.+)[)\]]", type_name):
        return {key: to_model(value, match[1]) for key, value in data.items()}
    if type_name in NATIVE:
        return data
    cls = getattr(training_models, type_name, None) or getattr(kubernetes.client.models, type_name)
    unknown = set(data) - set(cls.attribute_map.values())
    assert not unknown, f"{type_name} has no field {unknown}"
    return cls(**{attr: to_model(data.get(key), cls.openapi_types[attr]) for attr, key in cls.attribute_map.items()
                  if key in data})


def from_model(model):
    """The JSON a model serialises to (set fields only), the inverse of `to_model`."""
    if isinstance(model, list):
        return [from_model(item) for item in model]
    if isinstance(model, dict):
        return {key: from_model(value) for key, value in model.items()}
    if hasattr(model, "attribute_map"):
        return {key: from_model(getattr(model, attr)) for attr, key in model.attribute_map.items()
                if getattr(model, attr) is not None}
    return model


def test_pytorchjobs_load_into_the_training_sdk_models(rendered_trials):
    for job in pytorchjobs(rendered_trials):
        model = to_model(job, "KubeflowOrgV1PyTorchJob")
        assert model.metadata.name == job["metadata"]["name"]
        assert set(model.spec.pytorch_replica_specs) == set(job["spec"]["pytorchReplicaSpecs"])
        master = model.spec.pytorch_replica_specs["Master"]
        assert master.replicas == 1 and master.template.spec.containers[0].name == "pytorch"
        # Nothing is lost on the way through the SDK's models.
        assert from_model(model) == json.loads(json.dumps(job))


def test_pod_templates_and_core_objects_match_the_kubernetes_schemas(kustomized, rendered_trials):
    kinds = [o["kind"] for o in kustomized]
    assert kinds.count("Namespace") == 1 and kinds.count("PersistentVolumeClaim") == 2
    assert "Job" in kinds and "ConfigMap" in kinds
    for obj in kustomized:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        assert validate.object_errors(obj) == [], obj["metadata"]["name"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "stock-training"
    for job in pytorchjobs(rendered_trials):
        for rtype, replica in job["spec"]["pytorchReplicaSpecs"].items():
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{job['metadata']['name']}-{rtype}"},
                   "spec": replica["template"]["spec"]}
            kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)


def test_the_schemas_can_fail():
    job = load(K8S / "large-dataset-job.yaml")[0]
    bad = copy.deepcopy(job)
    bad["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "3"
    bad["spec"]["runPolicy"]["backofflimit"] = 3
    errors = crd_errors(bad)
    assert any("is not of type 'integer'" in e for e in errors)
    assert "unknown field spec.runPolicy.backofflimit" in errors
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {**job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"], "restartpolicy": "Never"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(("change", "message"), [
    (lambda j: j["metadata"].update(name="Large_Job"), "is not a DNS-1035 label"),
    (lambda j: j["metadata"].update(name="9-large"), "is not a DNS-1035 label"),
    (lambda j: j["spec"]["pytorchReplicaSpecs"]["Master"].update(replicas=2), "[Master].replicas must be 1"),
    (lambda j: j["spec"]["pytorchReplicaSpecs"]["Worker"].update(replicas=0), "[Worker].replicas must be at least 1"),
    (lambda j: j["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(name="main"),
     "must have a container named pytorch"),
    (lambda j: j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].pop("image"),
     "image is required"),
    (lambda j: j["spec"]["pytorchReplicaSpecs"].update(Chief=j["spec"]["pytorchReplicaSpecs"]["Worker"]),
     "replica type must be Master or Worker"),
    (lambda j: j["spec"].update(elasticPolicy={"nProcPerNode": 2}), "must not be used with spec.nprocPerNode"),
])
def test_admission_rules_refuse(change, message):
    job = copy.deepcopy(load(K8S / "large-dataset-job.yaml")[0])
    for rspec in job["spec"]["pytorchReplicaSpecs"].values():  # unshare the YAML anchor's template
        rspec["template"] = copy.deepcopy(rspec["template"])
    change(job)
    errors = validate.pytorchjob_admission_errors(job)
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem must be true"),
    (lambda c: c["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation must be false"),
    (lambda c: c["resources"]["limits"].pop("memory"), "resources.limits lacks memory"),
    (lambda c: c.update(volumeMounts=[m for m in c["volumeMounts"] if m["mountPath"] != "/tmp"]), "emptyDir"),
])
def test_pod_policy_refuses(change, message):
    job = copy.deepcopy(load(K8S / "trial-pytorchjob.yaml")[0])
    change(job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0])
    assert any(message in e for e in validate.object_errors(job))


def test_configmap_is_current_and_holds_every_config(kustomized):
    assert (K8S / "trainer-configs.yaml").read_text() == render_configmap.render(), \
        "k8s/trainer-configs.yaml is stale: run python k8s/render_configmap.py"
    config_map = next(o for o in kustomized if o["kind"] == "ConfigMap")
    assert config_map["metadata"]["name"] == "trainer-configs"
    assert sorted(config_map["data"]) == sorted(p.name for p in (REPO / "model" / "configs").glob("*.yaml"))
    for pod_job in load(K8S / "large-dataset-job.yaml") + load(K8S / "trial-pytorchjob.yaml"):
        container = pod_job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
        config = container["args"][container["args"].index("--config") + 1]
        assert config.startswith("/config/") and config.removeprefix("/config/") in config_map["data"]


def test_katib_experiment_is_current_and_valid(tmp_path):
    run_cli(SCRIPT, "--katib", "--render-only", tmp_path, check_rc=0)
    committed = load(K8S / "katib-experiment.yaml")[0]
    assert load(tmp_path / "katib-experiment.yaml")[0] == committed, \
        f"k8s/katib-experiment.yaml is stale: rerun python {SCRIPT} --katib --render-only k8s"
    assert validate.object_errors(committed) == []
    spec = committed["spec"]
    space = load_search_space(REPO / "model" / "configs" / "search_space.yaml")
    assert spec["objective"] == {"type": "minimize", "objectiveMetricName": "val_loss",
                                 "additionalMetricNames": ["train_loss"]}
    assert spec["maxTrialCount"] == len(space.grid()) and spec["trialTemplate"]["primaryContainerName"] == "pytorch"
    assert [p["feasibleSpace"]["list"] for p in spec["parameters"]] == \
        [[str(v) for v in values] for values in space.parameters.values()]
    # What Katib creates for one trial: the parameters substituted, the trial's name from Katib.
    values = {p["name"]: p["feasibleSpace"]["list"][0] for p in spec["parameters"]}
    text = yaml.safe_dump(spec["trialTemplate"]["trialSpec"])
    for parameter in spec["trialTemplate"]["trialParameters"]:
        value = "hp-search-abc123" if parameter["reference"] == "${trialSpec.Name}" else values[parameter["reference"]]
        text = text.replace(f"${{trialParameters.{parameter['name']}}}", value)
    assert "${" not in text
    trial_job = yaml.safe_load(text)
    trial_job["metadata"].update(name="hp-search-abc123", namespace="stock-training")
    assert crd_errors(trial_job) == [] and validate.pytorchjob_admission_errors(trial_job) == []


def test_katib_stdout_collector_reads_the_trainer_epoch_line():
    line = epoch_line({"epoch": 3, "train_loss": 0.51234567, "val_loss": 4.5e-05, "lr": 1e-3,
                       "samples_per_sec": 12000.5}, "regression")
    metrics = {m[0]: float(m[1]) for m in re.findall(KATIB_METRICS_REGEX, line)}
    assert metrics["val_loss"] == pytest.approx(4.5e-05) and metrics["train_loss"] == pytest.approx(0.512346)
    assert metrics["epoch"] == 3


def test_image_build_file():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM .*$", text, re.M)
    assert len(stages) == 2 and " AS build" in stages[0], "multi-stage: a build stage and a final stage"
    final = text[text.rindex("\nFROM "):]
    assert "COPY --from=build" in final and "pip install" not in final
    assert re.search(r"^USER 1000:1000$", final, re.M) and 'ENTRYPOINT ["python", "-m", "trainer"]' in final
    assert "ARG TORCH_VARIANT=cpu" in text and "python:3.11-slim" in text
    assert "COPY requirements.txt pyproject.toml" in text
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert {"data-pipeline/data/processed/", "model/outputs/"} <= set(ignored)


def test_validate_cli_on_a_bad_file(tmp_path):
    job = load(K8S / "trial-pytorchjob.yaml")[0]
    job["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(job))
    proc = run_cli("k8s/validate.py", bad, K8S / "large-dataset-job.yaml")
    assert proc.returncode == 2
    assert "PyTorchJob/hp-trial: spec.pytorchReplicaSpecs[Master].replicas must be 1" in proc.stderr
    assert proc.stdout == "ok PyTorchJob/large-dataset\n"
