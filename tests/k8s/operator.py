"""Play the Kubeflow training operator v1.9 and the kubelet for one PyTorchJob, on this machine.

`JobRun(job, claims, config_maps).run()` applies the operator's defaults, plans one pod per replica
(`<job>-master-0`, `<job>-worker-<i>`) with exactly the environment the operator gives it (envvar.go,
master.go: PYTHONUNBUFFERED, MASTER_PORT, PET_MASTER_PORT, MASTER_ADDR, PET_MASTER_ADDR, WORLD_SIZE, RANK,
PET_NODE_RANK, PET_NPROC_PER_NODE, PET_NNODES, appended to the container's own `env`; no LOCAL_RANK), and
starts each pod's `pytorch` container with its command and args as written, through `pod_launcher.py`:
own network namespace on a bridge (veth pairs; `/etc/netns/<pod>/hosts` maps every replica's Service
name to its pod's address), own hostname, the image's filesystem layout and environment (from the
Dockerfile's final stage), the pod's volumes, user, groups and security context.

Kubelet and operator behaviour kept: `restartPolicy` (OnFailure restarts a failed container in place;
restarts count against `runPolicy.backoffLimit`), the job Succeeded when the master exits 0, Failed when
the backoff limit is reached. Not kept: restart back-off delays, scheduling, resource limits.
Where network namespaces are unavailable (`ip netns add` fails), every pod shares the loopback network
(names resolve to 127.0.0.1) and `network_mode` says "loopback".
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "pod_launcher.py"
DEFAULT_PORT = 23456
CONTAINER = "pytorch"
SUBNET = "10.244.0"


def image_config(dockerfile: Path = REPO / "Dockerfile") -> dict:
    """ENV, WORKDIR and USER of the Dockerfile's final stage (the image the pods run)."""
    lines = dockerfile.read_text().replace("\\\n", " ").splitlines()
    final = [line.strip() for line in lines[max(i for i, line in enumerate(lines) if line.startswith("FROM")):]]
    config = {"env": {}, "workdir": "/", "user": "0"}
    for line in final:
        instruction, _, rest = line.partition(" ")
        if instruction == "ENV":
            config["env"].update(item.split("=", 1) for item in shlex.split(rest))
        elif instruction == "WORKDIR":
            config["workdir"] = rest.strip()
        elif instruction == "USER":
            config["user"] = rest.strip()
    return config


def apply_defaults(job: dict) -> dict:
    """SetDefaults_PyTorchJob of v1.9: replicas 1, restartPolicy OnFailure, the pytorchjob-port, nprocPerNode auto."""
    job = copy.deepcopy(job)
    spec = job["spec"]
    spec.setdefault("runPolicy", {}).setdefault("cleanPodPolicy", "None")
    for rspec in spec["pytorchReplicaSpecs"].values():
        rspec.setdefault("replicas", 1)
        rspec.setdefault("restartPolicy", "OnFailure")
        for container in rspec["template"]["spec"]["containers"]:
            if container["name"] == CONTAINER and not any(p.get("name") == "pytorchjob-port"
                                                           for p in container.get("ports", [])):
                container.setdefault("ports", []).append({"name": "pytorchjob-port", "containerPort": DEFAULT_PORT})
    if spec.get("elasticPolicy") is None:
        spec.setdefault("nprocPerNode", "auto")
    return job


def operator_env(job: dict, rtype: str, index: int) -> list[tuple[str, str]]:
    """The variables setPodEnv appends to each container of replica `rtype` (lowercase) number `index`."""
    spec = job["spec"]
    replicas = spec["pytorchReplicaSpecs"]
    total = sum(r["replicas"] for r in replicas.values())
    nproc = spec.get("nprocPerNode")
    nproc_int = int(nproc) if nproc is not None and str(nproc).isdigit() else 1
    env = [("PYTHONUNBUFFERED", "1")]
    if "Master" in replicas:
        port = next(p["containerPort"] for c in replicas["Master"]["template"]["spec"]["containers"]
                    if c["name"] == CONTAINER for p in c.get("ports", []) if p.get("name") == "pytorchjob-port")
        master = f"{job['metadata']['name']}-master-0"
        rank = index + 1 if rtype == "worker" else index
        env += [("MASTER_PORT", str(port)), ("PET_MASTER_PORT", str(port)), ("MASTER_ADDR", master),
                ("PET_MASTER_ADDR", master), ("WORLD_SIZE", str(total * nproc_int)), ("RANK", str(rank)),
                ("PET_NODE_RANK", str(rank))]
    if nproc is not None:
        env.append(("PET_NPROC_PER_NODE", str(nproc)))
    if spec.get("elasticPolicy") is None:
        env.append(("PET_NNODES", str(total)))
    return env


@dataclass
class Pod:
    name: str
    rtype: str
    index: int
    restart_policy: str
    spec: dict
    container: dict
    env: dict
    address: str = "127.0.0.1"
    restarts: int = 0
    exit_codes: list = field(default_factory=list)
    process: subprocess.Popen | None = None
    log: Path | None = None


def plan_pods(job: dict) -> list[Pod]:
    """One Pod per replica, master first, each container env = its own env, then the operator's (last wins)."""
    pods = []
    for rtype in ("Master", "Worker"):
        rspec = job["spec"]["pytorchReplicaSpecs"].get(rtype)
        for index in range(rspec["replicas"] if rspec else 0):
            pod_spec = copy.deepcopy(rspec["template"]["spec"])
            container = next(c for c in pod_spec["containers"] if c["name"] == CONTAINER)
            env = {}
            for item in container.get("env", []):
                if "value" not in item:
                    raise ValueError(f"env {item['name']}: only literal values are emulated")
                env[item["name"]] = item["value"]
            env.update(operator_env(job, rtype.lower(), index))
            pods.append(Pod(f"{job['metadata']['name']}-{rtype.lower()}-{index}", rtype.lower(), index,
                            rspec["restartPolicy"], pod_spec, container, env))
    return pods


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


_netns_ok: bool | None = None


def netns_available() -> bool:
    """Whether this process may create network namespaces (root with `ip` and the kernel's support)."""
    global _netns_ok
    if _netns_ok is None:
        probe = f"k8s-probe-{secrets.token_hex(3)}"
        try:
            run("ip", "netns", "add", probe)
            run("ip", "netns", "del", probe)
            _netns_ok = True
        except (OSError, subprocess.CalledProcessError):
            _netns_ok = False
    return _netns_ok


def can_emulate_pods() -> str | None:
    """Why pods cannot be emulated here (None when they can): mounts and chroot need root."""
    if os.geteuid() != 0:
        return "emulating pods needs root (mount namespaces, chroot, setuid)"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "emulating pods needs util-linux's unshare and mount"
    return None


class JobRun:
    """One emulated PyTorchJob: `run()` blocks until it Succeeded or Failed (or `stop()` was called)."""

    def __init__(self, job: dict, claims: dict[str, Path], config_maps: dict[str, Path], workdir: Path,
                 on_status=None):
        self.job = apply_defaults(job)
        self.name = job["metadata"]["name"]
        self.claims, self.config_maps = claims, config_maps
        self.workdir = workdir
        self.on_status = on_status or (lambda *_: None)
        self.pods = plan_pods(self.job)
        self.network_mode = "netns" if netns_available() else "loopback"
        self.tag = secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.stopped = threading.Event()
        self.status: tuple[str, str] | None = None

    # -- network
    def _netns_name(self, i: int | str) -> str:
        return f"k8s-{self.tag}-{i}"

    def setup_network(self) -> None:
        if self.network_mode == "loopback":
            return
        bridge = self._netns_name("net")
        run("ip", "netns", "add", bridge)
        self.namespaces.append(bridge)
        run("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", bridge, "link", "set", "br0", "up")
        for i, pod in enumerate(self.pods):
            ns = self._netns_name(i)
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            peer = f"v{self.tag}{i}"
            run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", bridge)
            run("ip", "-n", bridge, "link", "set", peer, "master", "br0", "up")
            pod.address = f"{SUBNET}.{i + 2}"
            run("ip", "-n", ns, "addr", "add", f"{pod.address}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def hosts_file(self, i: int, pod: Pod) -> Path:
        """What the kubelet and cluster DNS give a pod: its own name, and every replica's Service name."""
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost", f"{pod.address} {pod.name}"]
        lines += [f"{other.address} {other.name}" for other in self.pods if other is not pod]
        if self.network_mode == "netns":
            path = Path("/etc/netns") / self._netns_name(i) / "hosts"
        else:
            path = self.workdir / f"hosts-{pod.name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    def cleanup(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        self.namespaces.clear()

    # -- pods
    def launch_spec(self, i: int, pod: Pod) -> dict:
        image = image_config()
        security = {**pod.spec.get("securityContext", {}), **pod.container.get("securityContext", {})}
        uid = int(security.get("runAsUser", image["user"].split(":")[0]))
        gid = int(security.get("runAsGroup", (image["user"].split(":") + ["0"])[1]))
        if security.get("runAsNonRoot") and uid == 0:
            raise ValueError(f"{pod.name}: runAsNonRoot with user 0 (the kubelet refuses to start it)")
        fs_group = pod.spec.get("securityContext", {}).get("fsGroup")
        sources = {v["name"]: v for v in pod.spec.get("volumes", [])}
        volumes = []
        for mount in pod.container.get("volumeMounts", []):
            source = sources[mount["name"]]
            if "persistentVolumeClaim" in source:
                host = self.claims[source["persistentVolumeClaim"]["claimName"]]
                read_only = mount.get("readOnly", False) or source["persistentVolumeClaim"].get("readOnly", False)
                if fs_group is not None:  # the kubelet's volume ownership management for fsGroup
                    subprocess.run(["chgrp", "-R", str(fs_group), str(host)], check=True)
                    subprocess.run(["chmod", "-R", "g+rwX", str(host)], check=True)
            elif "configMap" in source:
                host, read_only = self.config_maps[source["configMap"]["name"]], True
            elif "emptyDir" in source:
                host, read_only = "tmpfs", False
            else:
                raise ValueError(f"{pod.name}: volume {mount['name']} has a kind this emulation lacks")
            volumes.append({"host": str(host), "path": mount["mountPath"], "read_only": read_only})
        env = {**image["env"], "HOSTNAME": pod.name, **pod.env}
        venv = Path(sys.prefix)
        return {
            "root": str(self.workdir / f"root-{pod.name}"),
            "hostname": pod.name, "hosts_file": str(self.hosts_file(i, pod)),
            "image": [[sys.base_prefix, sys.base_prefix], [str(REPO), str(REPO)], [str(REPO), "/app"],
                      [str(venv), "/opt/venv"]],
            "volumes": volumes,
            "workdir": pod.container.get("workingDir", image["workdir"]),
            "uid": uid, "gid": gid, "groups": [g for g in [fs_group] if g is not None],
            "no_new_privs": security.get("allowPrivilegeEscalation") is False,
            "read_only_root": bool(security.get("readOnlyRootFilesystem")),
            "env": env,
            "argv": [*pod.container.get("command", []), *pod.container.get("args", [])],
        }

    def start(self, i: int, pod: Pod) -> None:
        spec_file = self.workdir / f"launch-{pod.name}.json"
        Path(self.workdir / f"root-{pod.name}").mkdir(exist_ok=True)
        spec_file.write_text(json.dumps(self.launch_spec(i, pod)))
        prefix = ["ip", "netns", "exec", self._netns_name(i)] if self.network_mode == "netns" else []
        pod.log = self.workdir / f"{pod.name}.log"
        with pod.log.open("a") as log:
            pod.process = subprocess.Popen(
                [*prefix, "unshare", "--mount", "--uts", "--propagation", "private", sys.executable, str(LAUNCHER),
                 str(spec_file)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def logs(self, pod_name: str) -> str:
        pod = next((p for p in self.pods if p.name == pod_name), None)
        return pod.log.read_text(errors="replace") if pod and pod.log and pod.log.exists() else ""

    def stop(self) -> None:
        self.stopped.set()

    def _kill_all(self) -> None:
        for pod in self.pods:
            if pod.process and pod.process.poll() is None:
                pod.process.kill()
                pod.process.wait()

    def run(self, timeout: float = 600) -> tuple[str, str]:
        backoff_limit = self.job["spec"]["runPolicy"].get("backoffLimit")
        deadline = time.monotonic() + timeout
        try:
            self.setup_network()
            for i, pod in enumerate(self.pods):
                self.start(i, pod)
            self.on_status("Running", "pods started")
            while self.status is None:
                if self.stopped.is_set():
                    self.status = ("Failed", "deleted")
                    break
                if time.monotonic() > deadline:
                    self.status = ("Failed", f"emulation timeout after {timeout:g}s")
                    break
                for i, pod in enumerate(self.pods):
                    code = pod.process.poll()
                    if code is None:
                        continue
                    if code == 0 and pod.rtype == "master":
                        self.status = ("Succeeded", f"PyTorchJob {self.name} is successfully completed.")
                        break
                    if code == 0:
                        continue
                    pod.exit_codes.append(code)
                    if pod.restart_policy in ("OnFailure", "Always"):
                        if backoff_limit is not None and sum(p.restarts for p in self.pods) >= backoff_limit:
                            self.status = ("Failed", f"PyTorchJob {self.name} has failed because it has reached "
                                                     "the specified backoff limit")
                            break
                        pod.restarts += 1
                        self.start(i, pod)
                    else:
                        self.status = ("Failed", f"pod {pod.name} exited with code {code}")
                        break
                time.sleep(0.2)
            if self.status[0] == "Succeeded":  # workers end on their own right after the master
                end = time.monotonic() + 30
                while time.monotonic() < end and any(p.process.poll() is None for p in self.pods):
                    time.sleep(0.2)
        finally:
            self._kill_all()
            self.cleanup()
        self.on_status(*self.status)
        return self.status


def config_map_dir(into: Path) -> Path:
    """The trainer-configs ConfigMap (k8s/trainer-configs.yaml) as the kubelet mounts it: one file per key,
    readable by every user."""
    import yaml

    config_map = yaml.safe_load((REPO / "k8s" / "trainer-configs.yaml").read_text())
    into.mkdir(parents=True, exist_ok=True)
    into.chmod(0o755)
    for key, text in config_map["data"].items():
        target = into / key
        target.write_text(text)
        target.chmod(0o644)
    return into


def make_workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="k8s-job-"))
    path.chmod(0o755)
    return path
