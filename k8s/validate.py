"""Offline checks of rendered manifests, run by `deploy.sh --dry-run` before anything is applied.

`python k8s/validate.py FILE...` (`-` for stdin) reads every YAML document and checks:
- PyTorchJob (kubeflow.org/v1): the admission rules of the training operator v1.9's validating webhook
  (pkg/webhooks/pytorch/pytorchjob_webhook.go): the name is a DNS-1035 label; replica types are Master or
  Worker; every replica has containers, each with an image, one of them named `pytorch`; Master has
  exactly 1 replica, Worker at least 1; `elasticPolicy.nProcPerNode` is not combined with `nprocPerNode`.
- Katib Experiment (kubeflow.org/v1beta1): `primaryContainerName` names a container of the trial spec,
  every `${trialParameters.X}` used is declared and every declared one is used, and the trial spec, a
  PyTorchJob, passes the rules above (its name comes from Katib).
- Every pod this project runs (Job, PyTorchJob replicas, Katib trial spec): explicit CPU and memory
  requests and limits on each container, `runAsNonRoot`, no privilege escalation, a read-only root
  filesystem with a writable emptyDir on /tmp, `restartPolicy: OnFailure` and a backoff limit.
Prints one `ok KIND/NAME` line per object; problems are printed one a line and the exit status is 2.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.([^}]+)\}")
CONTAINER = "pytorch"


def pytorchjob_admission_errors(job: dict, check_name: bool = True) -> list[str]:
    """Why the operator's webhook would reject this PyTorchJob (empty when it would admit it)."""
    errors = []
    name = (job.get("metadata") or {}).get("name", "")
    if check_name and (len(name) > 63 or not DNS1035.match(name)):
        errors.append(f"metadata.name {name!r} is not a DNS-1035 label")
    spec = job.get("spec") or {}
    elastic = spec.get("elasticPolicy")
    replicas = spec.get("pytorchReplicaSpecs")
    if elastic is not None:
        if "Worker" not in (replicas or {}):
            errors.append("spec.pytorchReplicaSpecs[Worker] must be configured if elastic policy is used")
        if elastic.get("nProcPerNode") is not None and spec.get("nprocPerNode") is not None:
            errors.append("spec.elasticPolicy.nProcPerNode must not be used with spec.nprocPerNode")
    if not replicas:
        return [*errors, "spec.pytorchReplicaSpecs is required"]
    for rtype, rspec in replicas.items():
        where = f"spec.pytorchReplicaSpecs[{rtype}]"
        if rtype not in ("Master", "Worker"):
            errors.append(f"{where}: replica type must be Master or Worker")
        containers = ((rspec or {}).get("template") or {}).get("spec", {}).get("containers") or []
        if not containers:
            errors.append(f"{where}.template.spec.containers must be specified")
        for index, container in enumerate(containers):
            if not container.get("image"):
                errors.append(f"{where}.template.spec.containers[{index}].image is required")
        if not any(c.get("name") == CONTAINER for c in containers):
            errors.append(f"{where}.template.spec.containers must have a container named {CONTAINER}")
        count = (rspec or {}).get("replicas")
        if rtype == "Master" and count != 1:
            errors.append(f"{where}.replicas must be 1")
        elif count is not None and count < 1:
            errors.append(f"{where}.replicas must be at least 1")
    return errors


def pod_policy_errors(where: str, pod_spec: dict) -> list[str]:
    """Why a pod spec breaks this project's rules for every pod (resources, non-root, read-only root)."""
    errors = []
    if not (pod_spec.get("securityContext") or {}).get("runAsNonRoot"):
        errors.append(f"{where}: securityContext.runAsNonRoot must be true")
    tmp_volumes = {v["name"] for v in pod_spec.get("volumes") or [] if "emptyDir" in v}
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        at = f"{where}: container {container.get('name')}"
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind) or {})
            if missing:
                errors.append(f"{at}: resources.{kind} lacks {', '.join(sorted(missing))}")
        security = container.get("securityContext") or {}
        if security.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{at}: securityContext.allowPrivilegeEscalation must be false")
        if security.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{at}: securityContext.readOnlyRootFilesystem must be true")
        if not any(m.get("mountPath") == "/tmp" and m.get("name") in tmp_volumes
                   for m in container.get("volumeMounts") or []):
            errors.append(f"{at}: needs an emptyDir volume mounted on /tmp")
    return errors


def pytorchjob_errors(job: dict, check_name: bool = True) -> list[str]:
    errors = pytorchjob_admission_errors(job, check_name)
    spec = job.get("spec") or {}
    if (spec.get("runPolicy") or {}).get("backoffLimit") is None:
        errors.append("spec.runPolicy.backoffLimit must be set")
    for rtype, rspec in (spec.get("pytorchReplicaSpecs") or {}).items():
        if (rspec or {}).get("restartPolicy") != "OnFailure":
            errors.append(f"spec.pytorchReplicaSpecs[{rtype}].restartPolicy must be OnFailure")
        errors += pod_policy_errors(f"replica {rtype}", ((rspec or {}).get("template") or {}).get("spec") or {})
    return errors


def experiment_errors(experiment: dict) -> list[str]:
    errors = []
    template = (experiment.get("spec") or {}).get("trialTemplate") or {}
    trial_spec = template.get("trialSpec") or {}
    if trial_spec.get("kind") != "PyTorchJob":
        return ["spec.trialTemplate.trialSpec must be a PyTorchJob"]
    replicas = (trial_spec.get("spec") or {}).get("pytorchReplicaSpecs") or {}
    names = {c.get("name") for r in replicas.values() for c in r["template"]["spec"].get("containers") or []}
    if template.get("primaryContainerName") not in names:
        errors.append(f"spec.trialTemplate.primaryContainerName must name a container of the trial spec {names}")
    declared = {p["name"] for p in template.get("trialParameters") or []}
    used = set(TRIAL_PARAMETER.findall(yaml.safe_dump(trial_spec)))
    if used - declared:
        errors.append(f"trial spec uses undeclared trialParameters {', '.join(sorted(used - declared))}")
    if declared - used:
        errors.append(f"trialParameters {', '.join(sorted(declared - used))} are declared but never used")
    parameters = {p["name"] for p in (experiment.get("spec") or {}).get("parameters") or []}
    for parameter in template.get("trialParameters") or []:
        reference = parameter.get("reference", "")
        if not reference.startswith("${trialSpec.") and reference not in parameters:
            errors.append(f"trialParameter {parameter['name']} references unknown parameter {reference!r}")
    return errors + pytorchjob_errors(trial_spec, check_name=False)


def object_errors(obj: dict) -> list[str]:
    """Every problem with one manifest object."""
    kind = obj.get("kind")
    name = (obj.get("metadata") or {}).get("name", "")
    if not obj.get("apiVersion") or not kind:
        return ["apiVersion and kind are required"]
    if kind == "PyTorchJob":
        return pytorchjob_errors(obj)
    errors = [] if len(name) <= 253 and DNS1123_SUBDOMAIN.match(name) else [f"metadata.name {name!r} is invalid"]
    if kind == "Experiment":
        return errors + experiment_errors(obj)
    if kind == "Job":
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        if spec.get("backoffLimit") is None:
            errors.append("spec.backoffLimit must be set")
        if pod.get("restartPolicy") != "OnFailure":
            errors.append("spec.template.spec.restartPolicy must be OnFailure")
        errors += pod_policy_errors("pod", pod)
    return errors


def main(argv: list[str]) -> int:
    failed = False
    for source in argv or ["-"]:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
            documents = [d for d in yaml.safe_load_all(text) if d]
        except (OSError, yaml.YAMLError) as exc:
            print(f"error: {source}: cannot read YAML ({exc})", file=sys.stderr)
            failed = True
            continue
        for obj in documents:
            label = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            problems = object_errors(obj)
            for problem in problems:
                print(f"error: {source}: {label}: {problem}", file=sys.stderr)
            if not problems:
                print(f"ok {label}")
            failed |= bool(problems)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
