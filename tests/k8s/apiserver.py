"""A Kubernetes API server stand-in on loopback, for the official `kubernetes` client.

It serves the real REST paths the cloud search uses, with the API server's JSON shapes (lists with
`metadata.resourceVersion`, `Status` errors, chunked watch streams of `{"type", "object"}` lines):

  GET/POST   /apis/kubeflow.org/v1/namespaces/NS/pytorchjobs            (list, watch=true, labelSelector)
  GET/DELETE /apis/kubeflow.org/v1/namespaces/NS/pytorchjobs/NAME
  GET        /api/v1/namespaces/NS/pods                                  (labelSelector)
  GET        /api/v1/namespaces/NS/pods/NAME/log                         (container)

A created PyTorchJob is checked as the cluster would: the vendored v1.9 CRD schema (strict fields) and the
operator's admission rules; a bad one is refused with 422. Each admitted job is then run for real by the
emulated operator (tests/k8s/operator.py): its pods appear with the operator's labels, their logs are the
containers' output, and the job's conditions go Created, Running, then Succeeded or Failed.
`plurals` says which resources are served (drop pytorchjobs to play a cluster without the CRD);
`forbidden=True` answers 403 to everything.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from k8s.crd_schema import crd_errors
from k8s.operator import JobRun

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("k8s_validate", REPO / "k8s" / "validate.py")
k8s_validate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(k8s_validate)

JOBS = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([^/]+)/pytorchjobs(?:/([^/]+))?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?$")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def matches(labels: dict, selector: str | None) -> bool:
    if not selector:
        return True
    return all(labels.get(k) == v for k, _, v in (term.partition("=") for term in selector.split(",")))


class FakeCluster:
    """The stored objects, their watch events, and the emulated jobs behind them."""

    def __init__(self, claims: dict, config_maps: dict, workdir: Path, namespaces=("stock-training",),
                 plurals=("pytorchjobs",), forbidden: bool = False, job_timeout: float = 300):
        self.claims, self.config_maps, self.workdir = claims, config_maps, workdir
        self.namespaces, self.plurals, self.forbidden = set(namespaces), set(plurals), forbidden
        self.job_timeout = job_timeout
        self.lock = threading.Condition()
        self.version = 1
        self.jobs: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.runs: dict[tuple[str, str], JobRun] = {}
        self.events: list[tuple[int, str, dict]] = []
        self.threads: list[threading.Thread] = []
        self.created: list[str] = []

    def _bump(self, obj: dict) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def record(self, kind: str, job: dict) -> None:
        with self.lock:
            self._bump(job)
            self.events.append((self.version, kind, json.loads(json.dumps(job))))
            self.lock.notify_all()

    def set_condition(self, key: tuple[str, str], kind: str, reason: str, message: str) -> None:
        with self.lock:
            job = self.jobs.get(key)
            if job is None:
                return
            conditions = job.setdefault("status", {}).setdefault("conditions", [])
            for cond in conditions:
                if cond["type"] in ("Running", "Created"):
                    cond["status"] = "False" if kind in ("Succeeded", "Failed") and cond["type"] == "Running" \
                        else cond["status"]
            conditions.append({"type": kind, "status": "True", "reason": reason, "message": message,
                               "lastTransitionTime": now(), "lastUpdateTime": now()})
            self.record("MODIFIED", job)

    def create_job(self, namespace: str, body: dict) -> tuple[int, dict]:
        errors = crd_errors(body) + k8s_validate.pytorchjob_admission_errors(body)
        if errors:
            return 422, status(422, "Invalid", "; ".join(errors))
        name = body["metadata"]["name"]
        key = (namespace, name)
        with self.lock:
            if key in self.jobs:
                return 409, status(409, "AlreadyExists", f'pytorchjobs.kubeflow.org "{name}" already exists')
            body["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
            self.jobs[key] = body
            self.created.append(name)
        self.record("ADDED", body)
        self.set_condition(key, "Created", "PyTorchJobCreated", f"PyTorchJob {name} is created.")
        run = JobRun(body, self.claims, self.config_maps, self.workdir / name,
                     on_status=lambda kind, message: self._on_status(key, kind, message))
        (self.workdir / name).mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.runs[key] = run
            for pod in run.pods:
                self.pods[(namespace, pod.name)] = {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod.name, "namespace": namespace, "labels": {
                        "training.kubeflow.org/job-name": name, "training.kubeflow.org/replica-type": pod.rtype,
                        "training.kubeflow.org/replica-index": str(pod.index),
                        "training.kubeflow.org/operator-name": "pytorchjob-controller",
                        **({"training.kubeflow.org/job-role": "master"} if pod.rtype == "master" else {})}},
                    "spec": pod.spec, "status": {"phase": "Pending"}}
        thread = threading.Thread(target=run.run, kwargs={"timeout": self.job_timeout}, daemon=True)
        thread.start()
        self.threads.append(thread)
        return 201, body

    def _on_status(self, key: tuple[str, str], kind: str, message: str) -> None:
        reason = {"Running": "PyTorchJobRunning", "Succeeded": "PyTorchJobSucceeded"}.get(kind, "PyTorchJobFailed")
        with self.lock:
            run = self.runs.get(key)
            for pod in run.pods if run else []:
                obj = self.pods.get((key[0], pod.name))
                if obj is not None:
                    code = pod.process.poll() if pod.process else None
                    obj["status"] = {"phase": "Running" if code is None else ("Succeeded" if code == 0 else "Failed")}
        if kind in ("Running", "Succeeded", "Failed"):
            self.set_condition(key, kind, reason, message)

    def delete_job(self, namespace: str, name: str) -> tuple[int, dict]:
        key = (namespace, name)
        with self.lock:
            job = self.jobs.pop(key, None)
            run = self.runs.pop(key, None)
            if job is None:
                return 404, status(404, "NotFound", f'pytorchjobs.kubeflow.org "{name}" not found')
            for pod_key in [k for k, p in self.pods.items()
                            if p["metadata"]["labels"]["training.kubeflow.org/job-name"] == name]:
                del self.pods[pod_key]
        if run:
            run.stop()
        self.record("DELETED", job)
        return 200, status(200, "Success", "deleted")

    def close(self) -> None:
        for run in list(self.runs.values()):
            run.stop()
        for thread in self.threads:
            thread.join(timeout=60)


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success" if code < 400 else "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cluster: FakeCluster

    def log_message(self, *args) -> None:
        pass

    def send_json(self, code: int, body: dict | str, content_type: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self, method: str) -> None:
        cluster = self.cluster
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if cluster.forbidden:
            return self.send_json(403, status(403, "Forbidden", f'User "someone" cannot {method} {url.path}'))
        if match := JOBS.match(url.path):
            namespace, name = match.groups()
            if "pytorchjobs" not in cluster.plurals:
                return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            if method == "POST" and name is None:
                if namespace not in cluster.namespaces:
                    return self.send_json(404, status(404, "NotFound", f'namespaces "{namespace}" not found'))
                length = int(self.headers.get("Content-Length", 0))
                return self.send_json(*cluster.create_job(namespace, json.loads(self.rfile.read(length))))
            if method == "DELETE" and name:
                return self.send_json(*cluster.delete_job(namespace, name))
            if method == "GET" and name:
                with cluster.lock:
                    job = cluster.jobs.get((namespace, name))
                return self.send_json(200, job) if job else self.send_json(404, status(404, "NotFound", name))
            if method == "GET" and query.get("watch") in ("true", "True", "1"):
                return self.watch(namespace, query)
            if method == "GET":
                with cluster.lock:
                    selector = query.get("labelSelector")
                    items = [j for (ns, _), j in cluster.jobs.items()
                             if ns == namespace and matches(j["metadata"].get("labels", {}), selector)]
                    version = str(cluster.version)
                return self.send_json(200, {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJobList",
                                            "metadata": {"resourceVersion": version}, "items": items})
        if (match := PODS.match(url.path)) and method == "GET":
            namespace, name, log = match.groups()
            with cluster.lock:
                if name is None:
                    items = [p for (ns, _), p in cluster.pods.items()
                             if ns == namespace and matches(p["metadata"]["labels"], query.get("labelSelector"))]
                    return self.send_json(200, {"apiVersion": "v1", "kind": "PodList",
                                                "metadata": {"resourceVersion": str(cluster.version)}, "items": items})
                pod = cluster.pods.get((namespace, name))
                run = cluster.runs.get((namespace, pod["metadata"]["labels"]["training.kubeflow.org/job-name"])) \
                    if pod else None
            if pod is None:
                return self.send_json(404, status(404, "NotFound", f'pods "{name}" not found'))
            if log:
                return self.send_json(200, run.logs(name) if run else "", "text/plain")
            return self.send_json(200, pod)
        return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def watch(self, namespace: str, query: dict) -> None:
        cluster = self.cluster
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while time.monotonic() < deadline:
                with cluster.lock:
                    fresh = [(v, kind, obj) for v, kind, obj in cluster.events if v > since
                             and obj["metadata"]["namespace"] == namespace
                             and matches(obj["metadata"].get("labels", {}), query.get("labelSelector"))]
                    if not fresh:
                        cluster.lock.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                        continue
                for version, kind, obj in fresh:
                    line = (json.dumps({"type": kind, "object": obj}) + "\n").encode()
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
                    since = version
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self.route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self.route("DELETE")


class ApiServer:
    """Serve `cluster` on 127.0.0.1 (a free port) in a thread; `kubeconfig(path)` writes a config for it."""

    def __init__(self, cluster: FakeCluster):
        self.cluster = cluster
        handler = type("BoundHandler", (Handler,), {"cluster": cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path, server: str | None = None) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": server or self.url}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}],
        }))
        return path

    def __enter__(self) -> ApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.cluster.close()
