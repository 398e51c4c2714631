"""deploy.sh: --dry-run renders and validates everything offline; without a cluster it stops with one line."""

import shutil
import subprocess

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.skipif(not shutil.which("kubectl"), reason="deploy.sh needs kubectl")


def deploy(*args, env=None):
    return subprocess.run([str(REPO / "deploy.sh"), *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env)


def test_dry_run_offline_prints_what_it_would_apply(tmp_path):
    proc = deploy("--dry-run", "--image", "registry.example/sp500-trainer:2",
                  env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "absent")})
    assert proc.returncode == 0, proc.stderr
    objects = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects) == [
        "ConfigMap/trainer-configs", "Job/data-loader", "Namespace/stock-training",
        "PersistentVolumeClaim/training-data", "PersistentVolumeClaim/training-outputs"]
    job = next(o for o in objects if o["kind"] == "Job")
    images = {c["image"] for c in job["spec"]["template"]["spec"]["initContainers"] + job["spec"]["template"]["spec"]
              ["containers"]}
    assert images == {"registry.example/sp500-trainer:2"}
    for validated in ("PyTorchJob/large-dataset", "Experiment/hp-search", "PyTorchJob/hp-dry-run-t00"):
        assert f"#   {validated}" in proc.stdout


def test_without_a_cluster_one_line_exit_2(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}]}))
    proc = deploy(env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig)})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: kubectl cannot reach a cluster")


@pytest.mark.parametrize("args", [["--image", "bad image"], ["--timeout", "soon"], ["--frobnicate"]])
def test_bad_options(args):
    proc = deploy(*args)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_help():
    proc = deploy("--help")
    assert proc.returncode == 0 and "--dry-run" in proc.stdout and "--image" in proc.stdout
