"""Hyperparameter search on a Kubernetes cluster: one Kubeflow PyTorchJob per trial, or one Katib Experiment.

Reads the same search-space file as the local search (model/configs/search_space.yaml) and renders each
trial from the PyTorchJob template k8s/trial-pytorchjob.yaml: the job is named `<search>-t<NN>`, the
trainer gets `--set io.run_name=<job>` and the trial's `--set section.key=value` overrides. Then either

  --render-only DIR   writes the rendered jobs (or, with --katib, the Experiment) as YAML, touching no cluster;
  (default)           submits them with the official `kubernetes` client (kubeconfig, else in-cluster config),
                      at most --max-parallel at a time, follows them with the watch API, reads each trial's
                      `RESULT {json}` line from its master pod's log, records failed and timed-out trials
                      with their reason, deletes finished jobs unless --keep, and writes the results JSON
                      (kind hp_search, where cloud) that compare_results.py merges with the local one;
  --katib             submits one Katib Experiment over the same space instead (grid or random, val_loss
                      minimised, the same PyTorchJob as trial spec), waits for it, and records its trials
                      and optimal trial.

An unreachable cluster, a missing CRD, a forbidden namespace or a bad input ends with one line, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import re
import sys
import time
from pathlib import Path

import yaml
from results_file import results_document, write_results
from search_space import load_search_space, overrides_as_args, read_yaml

from etl.cli import Parser
from etl.errors import UserError
from trainer.result_line import parse_result

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SPACE = REPO / "model" / "configs" / "search_space.yaml"
DEFAULT_TEMPLATE = REPO / "k8s" / "trial-pytorchjob.yaml"
DEFAULT_OUT = REPO / "model" / "outputs" / "results" / "hp_search_cloud.json"

PYTORCHJOB = ("kubeflow.org", "v1", "pytorchjobs")
EXPERIMENT = ("kubeflow.org", "v1beta1", "experiments")
TRIAL = ("kubeflow.org", "v1beta1", "trials")
CONTAINER = "pytorch"
SEARCH_LABEL = "hp-search.stock-training/search"
TRIAL_LABEL = "hp-search.stock-training/trial"
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
KATIB_ALGORITHMS = {"grid": "grid", "random": "random"}
PYTORCHJOB_SUCCEEDED = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
PYTORCHJOB_FAILED = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


class CloudSearchError(UserError):
    """Bad input or a cluster that cannot be used; the message names the thing and what to do."""


# ---------------------------------------------------------------------------------------------- render


def load_template(path: Path) -> dict:
    job = read_yaml(path, "trial template")
    if not isinstance(job, dict) or job.get("kind") != "PyTorchJob" or job.get("apiVersion") != "kubeflow.org/v1":
        raise CloudSearchError(f"trial template {path} must be one kubeflow.org/v1 PyTorchJob")
    replicas = job.get("spec", {}).get("pytorchReplicaSpecs") or {}
    if "Master" not in replicas or not all(_pytorch_containers(spec) for spec in replicas.values()):
        raise CloudSearchError(f"trial template {path}: every replica (a Master among them) needs a `pytorch` "
                               "container")
    return job


def _pytorch_containers(replica_spec: dict) -> list[dict]:
    containers = replica_spec.get("template", {}).get("spec", {}).get("containers") or []
    return [c for c in containers if c.get("name") == CONTAINER]


def render_trial(template: dict, name: str, overrides: dict, search_id: str, trial: int,
                 image: str | None, namespace: str) -> dict:
    """The PyTorchJob of one trial: the template renamed, relabelled, with the trial's overrides appended."""
    job = copy.deepcopy(template)
    meta = job.setdefault("metadata", {})
    meta["name"] = name
    meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), SEARCH_LABEL: search_id, TRIAL_LABEL: str(trial)}
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        for container in _pytorch_containers(replica):
            if image:
                container["image"] = image
            container["args"] = [*container.get("args", []), "--set", f"io.run_name={name}",
                                 *overrides_as_args(overrides)]
    return job


def katib_parameter_names(parameters: dict) -> dict[str, str]:
    """Katib parameter name for each `section.key` (its last part: lr, hidden, ...), which must be unique."""
    names = {key: key.rsplit(".", 1)[-1].replace("_", "-") for key in parameters}
    if len(set(names.values())) != len(names):
        raise CloudSearchError(f"search space parameters {', '.join(parameters)} do not have distinct last parts, "
                               "which the Katib parameter names need")
    return names


def render_experiment(template: dict, space, strategy: str, count: int | None, epochs: int, max_parallel: int,
                      image: str | None, namespace: str, name: str = "hp-search") -> dict:
    """A Katib Experiment over `space`: val_loss minimised, stdout metrics, the trial template as trial spec."""
    names = katib_parameter_names(space.parameters)
    trial_count = count or len(space.grid())
    overrides = {key: f"${{trialParameters.{names[key]}}}" for key in space.parameters}
    trial_spec = render_trial(template, "placeholder", {**overrides, "train.epochs": epochs}, name, 0, image,
                              namespace)
    for replica in trial_spec["spec"]["pytorchReplicaSpecs"].values():
        for container in _pytorch_containers(replica):
            container["args"] = [arg.replace("io.run_name=placeholder", "io.run_name=${trialParameters.trialName}")
                                 for arg in container["args"]]
    trial_spec["metadata"] = {"labels": {k: v for k, v in trial_spec["metadata"]["labels"].items()
                                         if k not in (SEARCH_LABEL, TRIAL_LABEL)}}
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "stock-training"}},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": space.objective,
                          "additionalMetricNames": ["train_loss"]},
            "algorithm": {"algorithmName": KATIB_ALGORITHMS[strategy]},
            "parallelTrialCount": max_parallel,
            "maxTrialCount": trial_count,
            "maxFailedTrialCount": trial_count,
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "parameters": [
                {"name": names[key],
                 "parameterType": "discrete" if all(isinstance(v, int | float) for v in values) else "categorical",
                 "feasibleSpace": {"list": [str(v) for v in values]}}
                for key, values in space.parameters.items()
            ],
            "trialTemplate": {
                "primaryContainerName": CONTAINER,
                "successCondition": PYTORCHJOB_SUCCEEDED,
                "failureCondition": PYTORCHJOB_FAILED,
                "trialParameters": [
                    *({"name": names[key], "description": f"trainer --set {key}", "reference": names[key]}
                      for key in space.parameters),
                    {"name": "trialName", "description": "the trial's name, as io.run_name",
                     "reference": "${trialSpec.Name}"},
                ],
                "trialSpec": trial_spec,
            },
        },
    }


def write_yaml(path: Path, document: dict, command: list[str]) -> None:
    """Write `document` as YAML (atomically) under a comment naming the command that rendered it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    header = f"# Rendered by: python model/experiments/hyperparam_search_cloud.py {' '.join(command)}\n"
    temporary.write_text(header + yaml.safe_dump(document, sort_keys=False, width=120))
    temporary.replace(path)


# --------------------------------------------------------------------------------------------- cluster


class Cluster:
    """The official client's APIs, with every failure turned into a `CloudSearchError` that says what to do."""

    def __init__(self, namespace: str):
        from kubernetes import client, config

        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError, TypeError):
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise CloudSearchError("no Kubernetes configuration: set KUBECONFIG (or ~/.kube/config), or run "
                                       "inside a cluster") from None
        self.namespace = namespace
        self.host = client.Configuration.get_default_copy().host
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()

    def call(self, what: str, function, *args, not_found: str | None = None, **kwargs):
        """`function(*args, **kwargs)`; HTTP and connection errors become one-line `CloudSearchError`s."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and not_found:
                raise CloudSearchError(not_found) from None
            raise CloudSearchError(self._explain(what, exc)) from None
        except (HTTPError, OSError) as exc:
            raise CloudSearchError(self._unreachable(exc)) from None

    def _unreachable(self, exc: Exception) -> str:
        return (f"cannot reach the Kubernetes API server at {self.host} ({type(exc).__name__}): check that the "
                "cluster is up and your kubeconfig context points at it")

    def _explain(self, what: str, exc) -> str:
        if exc.status in (401, 403):
            return (f"{what}: forbidden in namespace {self.namespace} (HTTP {exc.status}): your account needs RBAC "
                    "rights on pytorchjobs (or experiments and trials), pods and pods/log there")
        reason = exc.reason
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            reason = json.loads(exc.body).get("message", reason)
        return f"{what}: HTTP {exc.status} ({reason})"

    def check_crd(self, resource: tuple[str, str, str], install_hint: str) -> None:
        """Fail now if the cluster is unreachable, does not serve the resource, or forbids listing it."""
        group, version, plural = resource
        self.call(f"listing {plural}", self.custom.list_namespaced_custom_object, group, version, self.namespace,
                  plural, limit=1, not_found=f"the cluster does not serve {plural}.{group}/{version}: {install_hint}")

    def create(self, resource, body: dict) -> dict:
        group, version, plural = resource
        return self.call(f"creating {body['kind']} {body['metadata']['name']}",
                         self.custom.create_namespaced_custom_object, group, version, self.namespace, plural, body,
                         not_found=f"namespace {self.namespace} does not exist: run ./deploy.sh first")

    def delete(self, resource, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = resource
        try:
            self.custom.delete_namespaced_custom_object(group, version, self.namespace, plural, name,
                                                        propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise CloudSearchError(self._explain(f"deleting {plural} {name}", exc)) from None

    def list(self, resource, selector: str) -> dict:
        group, version, plural = resource
        return self.call(f"listing {plural}", self.custom.list_namespaced_custom_object, group, version,
                         self.namespace, plural, label_selector=selector)

    def watch(self, resource, selector: str, resource_version: str, seconds: int):
        """Events (type, object) on the selected objects after `resource_version`, for at most `seconds`."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        group, version, plural = resource
        stream = watch.Watch().stream(self.custom.list_namespaced_custom_object, group, version, self.namespace,
                                      plural, label_selector=selector, resource_version=resource_version,
                                      timeout_seconds=max(1, int(seconds)))
        try:
            for event in stream:
                if event["type"] == "ERROR":  # e.g. 410 Gone: the resource version expired; the caller lists again
                    return
                yield event["type"], event["object"]
        except ApiException as exc:
            if exc.status != 410:
                raise CloudSearchError(self._explain(f"watching {plural}", exc)) from None
        except (HTTPError, OSError) as exc:
            raise CloudSearchError(self._unreachable(exc)) from None

    def master_log(self, job: str) -> str:
        """The `pytorch` container's log of the job's master pod ('' when there is none yet)."""
        pods = self.call(f"listing the pods of {job}", self.core.list_namespaced_pod, self.namespace,
                         label_selector=f"training.kubeflow.org/job-name={job},"
                                        "training.kubeflow.org/replica-type=master")
        if not pods.items:
            return ""
        return self.call(f"reading the log of {pods.items[0].metadata.name}", self.core.read_namespaced_pod_log,
                         pods.items[0].metadata.name, self.namespace, container=CONTAINER)


OPERATOR_HINT = ("install the Kubeflow training operator v1.9: kubectl apply --server-side -k "
                 "'github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.0'")
KATIB_HINT = ("install Katib v0.17 or later: kubectl apply -k "
              "'github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.17.0'")


# -------------------------------------------------------------------------------------------- results


def condition(obj: dict, kind: str) -> dict | None:
    """The status condition of type `kind` when it is True."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def last_error(log: str) -> str | None:
    """The trainer's one-line `error: ...` message in a pod log."""
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else None


def result_row(trial: int, params: dict, status: str, error: str | None, result: dict | None, seconds: float,
               job: str) -> dict:
    result = result or {}
    return {
        "trial": trial, "params": params, "status": status, "error": error,
        "best_val_loss": result.get("best_val_loss"),
        "test": {k: v for k, v in result.items() if k.startswith("test_")},
        "epochs": result.get("epochs"), "seconds": round(seconds, 3), "job": job,
        "world_size": result.get("world_size"),
    }


def best_of(rows: list[dict]) -> dict | None:
    done = [r for r in rows if r["status"] == "ok" and r["best_val_loss"] is not None]
    if not done:
        return None
    best = min(done, key=lambda r: r["best_val_loss"])
    return {"trial": best["trial"], "params": best["params"], "best_val_loss": best["best_val_loss"],
            "test": best["test"]}


# -------------------------------------------------------------------------------------------- searches


def run_pytorchjobs(cluster: Cluster, jobs: list[tuple[int, str, dict, dict]], max_parallel: int,
                    timeout: float, keep: bool, on_row) -> list[dict]:
    """Submit the jobs, at most `max_parallel` running; follow them by watch; one row per trial, in order."""
    search_id = jobs[0][3]["metadata"]["labels"][SEARCH_LABEL]
    selector = f"{SEARCH_LABEL}={search_id}"
    pending = list(jobs)
    running: dict[str, tuple[int, dict, float]] = {}
    rows: dict[int, dict] = {}

    def finish(name: str, status: str, error: str | None, result: dict | None) -> None:
        trial, params, started = running.pop(name)
        rows[trial] = result_row(trial, params, status, error, result, time.monotonic() - started, name)
        print(f"trial {trial} {name}: {status}" + (f" ({error})" if error else
              f" best_val_loss={rows[trial]['best_val_loss']}"), flush=True)
        if not keep:
            cluster.delete(PYTORCHJOB, name)
        on_row([rows[i] for i in sorted(rows)])

    def settle(obj: dict) -> None:
        name = obj["metadata"]["name"]
        if name not in running:
            return
        if condition(obj, "Succeeded"):
            log = cluster.master_log(name)
            result = parse_result(log)
            if result is None:
                finish(name, "failed", "the master pod's log has no RESULT line", None)
            else:
                finish(name, "ok", None, result)
        elif failed := condition(obj, "Failed"):
            reason = last_error(cluster.master_log(name)) or failed.get("message") or failed.get("reason")
            finish(name, "failed", reason or "Failed", None)

    try:
        while pending or running:
            while pending and len(running) < max_parallel:
                trial, name, params, body = pending.pop(0)
                cluster.create(PYTORCHJOB, body)
                running[name] = (trial, params, time.monotonic())
                print(f"trial {trial} {name}: submitted {' '.join(overrides_as_args(params))}", flush=True)
            listing = cluster.list(PYTORCHJOB, selector)
            for obj in listing.get("items", []):
                settle(obj)
            now = time.monotonic()
            for name, (_, _, started) in list(running.items()):
                if now - started > timeout:
                    finish(name, "timeout", f"not finished after {timeout:g}s (--timeout)", None)
            if not running or (pending and len(running) < max_parallel):
                continue
            wait = min(timeout - (now - started) for _, _, started in running.values())
            for _kind, obj in cluster.watch(PYTORCHJOB, selector, listing["metadata"]["resourceVersion"], wait + 1):
                settle(obj)
                if len(running) < max_parallel and pending or not running:
                    break
    finally:
        if not keep:
            for name in list(running):
                cluster.delete(PYTORCHJOB, name)
    return [rows[i] for i in sorted(rows)]


def run_katib(cluster: Cluster, experiment: dict, timeout: float, keep: bool,
              params_of) -> tuple[list[dict], dict | None]:
    """Submit the Experiment, wait until it ends, and make rows of its trials (RESULT read from master logs)."""
    name = experiment["metadata"]["name"]
    cluster.create(EXPERIMENT, experiment)
    print(f"experiment {name}: submitted", flush=True)
    started = time.monotonic()
    selector = "app.kubernetes.io/part-of=stock-training"
    final = None
    try:
        while final is None:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise CloudSearchError(f"experiment {name} did not finish within {timeout:g}s (--timeout); "
                                       f"it is {'kept' if keep else 'deleted'}")
            listing = cluster.list(EXPERIMENT, selector)
            final = next((o for o in listing.get("items", []) if o["metadata"]["name"] == name
                          and (condition(o, "Succeeded") or condition(o, "Failed"))), None)
            if final is None:
                for _kind, obj in cluster.watch(EXPERIMENT, selector, listing["metadata"]["resourceVersion"], left):
                    if obj["metadata"]["name"] == name and (condition(obj, "Succeeded") or condition(obj, "Failed")):
                        final = obj
                        break
        trials = cluster.list(TRIAL, f"katib.kubeflow.org/experiment={name}").get("items", [])
        rows = []
        for index, trial in enumerate(sorted(trials, key=lambda t: t["metadata"].get("creationTimestamp", ""))):
            assignments = {a["name"]: a["value"] for a in trial["spec"].get("parameterAssignments", [])}
            ok = condition(trial, "Succeeded")
            log = cluster.master_log(trial["metadata"]["name"])
            status = "ok" if ok else "failed"
            failed = condition(trial, "Failed") or {}
            rows.append(result_row(index, params_of(assignments), status,
                                   None if ok else (last_error(log) or failed.get("message") or "not succeeded"),
                                   parse_result(log), 0.0, trial["metadata"]["name"]))
        optimal = (final.get("status") or {}).get("currentOptimalTrial")
        return rows, optimal
    finally:
        if not keep:
            cluster.delete(EXPERIMENT, name)


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python model/experiments/hyperparam_search_cloud.py",
        description="Hyperparameter search on Kubernetes: one Kubeflow PyTorchJob per trial, or one Katib "
                    "Experiment (--katib), over the same search space as the local search.",
    )
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search-space YAML (default: %(default)s)")
    parser.add_argument("--strategy", choices=("grid", "random"), default="grid")
    parser.add_argument("--trials", type=int, default=None, metavar="N",
                        help="random: how many combinations to draw; grid: run only the first N")
    parser.add_argument("--seed", type=int, default=0, help="seed of --strategy random (default 0)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs of every trial (default: the space's)")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help="the trial's PyTorchJob (default: %(default)s)")
    parser.add_argument("--image", default=None, help="trainer image for every pod (default: the template's)")
    parser.add_argument("--namespace", default="stock-training", help="namespace (default: %(default)s)")
    parser.add_argument("--max-parallel", type=int, default=3, metavar="N",
                        help="trials running at once (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="per trial (for --katib: the whole experiment) before it counts as timed out "
                             "(default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep finished PyTorchJobs / the Experiment")
    parser.add_argument("--katib", action="store_true", help="submit one Katib Experiment instead of one job per trial")
    parser.add_argument("--name", default=None, help="search name, the prefix of every job (default: hp-<time>; "
                                                     "with --katib: hp-search)")
    parser.add_argument("--render-only", type=Path, default=None, metavar="DIR",
                        help="write the rendered YAML into DIR and stop; no cluster needed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    args.command = sys.argv[1:] if argv is None else list(argv)
    if args.max_parallel < 1:
        parser.error("--max-parallel must be at least 1")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def search(args: argparse.Namespace) -> int:
    space = load_search_space(args.space)
    template = load_template(args.template)
    trials = space.trials(args.strategy, args.trials, args.seed)
    epochs = args.epochs or space.epochs
    trials = [{**t, "train.epochs": epochs} for t in trials]
    name = args.name or ("hp-search" if args.katib else time.strftime("hp-%m%d-%H%M%S").lower())
    if not DNS1035.match(name) or len(name) > 50:
        raise CloudSearchError(f"--name {name!r} must be a DNS-1035 label of at most 50 characters "
                               "(lowercase letters, digits, '-', starting with a letter)")

    if args.katib:
        experiment = render_experiment(template, space, args.strategy, args.trials, epochs, args.max_parallel,
                                       args.image, args.namespace, name)
        if args.render_only:
            write_yaml(args.render_only / "katib-experiment.yaml", experiment, args.command)
            print(f"wrote {args.render_only / 'katib-experiment.yaml'}")
            return 0
    else:
        jobs = [(i, f"{name}-t{i:02d}", t, render_trial(template, f"{name}-t{i:02d}", t, name, i, args.image,
                                                        args.namespace))
                for i, t in enumerate(trials)]
        if args.render_only:
            for _, job_name, _, job in jobs:
                write_yaml(args.render_only / f"{job_name}.yaml", job, args.command)
            print(f"wrote {len(jobs)} PyTorchJobs to {args.render_only}")
            return 0

    cluster = Cluster(args.namespace)
    started = time.monotonic()
    if args.katib:
        cluster.check_crd(EXPERIMENT, KATIB_HINT)
        cluster.check_crd(PYTORCHJOB, OPERATOR_HINT)
        names = katib_parameter_names(space.parameters)
        by_name = {v: k for k, v in names.items()}

        def params_of(assignments: dict) -> dict:
            return {**{by_name.get(k, k): v for k, v in assignments.items()}, "train.epochs": epochs}

        rows, optimal = run_katib(cluster, experiment, args.timeout, args.keep, params_of)
        extra = {"optimal_trial": optimal}
        mode = "katib"
    else:
        cluster.check_crd(PYTORCHJOB, OPERATOR_HINT)

        def save(rows_so_far: list[dict]) -> None:
            write_results(args.out, results_document(
                "hp_search", "cloud", rows_so_far, strategy=args.strategy, mode="pytorchjob", partial=True,
                wall_seconds=round(time.monotonic() - started, 3), best=best_of(rows_so_far)))

        rows = run_pytorchjobs(cluster, jobs, args.max_parallel, args.timeout, args.keep, save)
        extra = {}
        mode = "pytorchjob"
    document = results_document("hp_search", "cloud", rows, strategy=args.strategy, mode=mode, partial=False,
                                wall_seconds=round(time.monotonic() - started, 3), best=best_of(rows),
                                namespace=args.namespace, search=name, **extra)
    write_results(args.out, document)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"{ok}/{len(rows)} trials ok; best: {json.dumps(document['best'])}; wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return search(parse_args(argv))
    except UserError as exc:  # bad options, search space, template or cluster
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; unfinished jobs were deleted unless --keep", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
