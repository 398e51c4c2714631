"""hyperparam_search_cloud.py against a Kubernetes API server stand-in (tests/k8s/apiserver.py) through a
generated kubeconfig: the official client's create / list / watch / delete of pytorchjobs, pods and pod
logs. Each submitted PyTorchJob is checked against the v1.9 CRD schema and admission rules, then really
trained by the emulated operator, so the whole cloud search runs on this machine.
"""

import json
import shutil

import pytest
import yaml
from k8s.apiserver import ApiServer, FakeCluster
from k8s.operator import can_emulate_pods, config_map_dir, make_workdir

from conftest import REPO, run_cli

SCRIPT = "model/experiments/hyperparam_search_cloud.py"


@pytest.fixture
def cluster_dirs(volatility_dataset):
    workdir = make_workdir()
    data, outputs = workdir / "pvc-data", workdir / "pvc-outputs"
    shutil.copytree(volatility_dataset, data / "processed" / "gspc-volatility")
    outputs.mkdir()
    configs = config_map_dir(workdir / "configmap-trainer-configs")
    yield workdir, {"training-data": data, "training-outputs": outputs}, {"trainer-configs": configs}
    shutil.rmtree(workdir, ignore_errors=True)


def space_file(tmp_path, parameters: dict):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"base_config": "search_base.yaml", "epochs": 1, "parameters": parameters}))
    return path


@pytest.mark.slow
def test_cloud_search_trains_every_trial_and_records_the_failed_one(cluster_dirs, tmp_path):
    reason = can_emulate_pods()
    if reason:
        pytest.skip(reason)
    workdir, claims, config_maps = cluster_dirs
    cluster = FakeCluster(claims, config_maps, workdir)
    # model.hidden=0 is refused by the trainer's config check (exit 2), so that trial's pods fail until
    # the job's backoff limit: the job ends Failed.
    space = space_file(tmp_path, {"model.hidden": [8, 16, 0], "model.layers": [1]})
    out = tmp_path / "hp_search_cloud.json"
    with ApiServer(cluster) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        proc = run_cli(SCRIPT, "--space", space, "--name", "hp-ct", "--max-parallel", "2", "--timeout", "240",
                       "--out", out, env={"KUBECONFIG": str(kubeconfig)})
        remaining = dict(cluster.jobs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cluster.created == ["hp-ct-t00", "hp-ct-t01", "hp-ct-t02"]
    assert remaining == {}, "finished jobs are deleted without --keep"
    doc = json.loads(out.read_text())
    assert (doc["kind"], doc["where"], doc["mode"]) == ("hp_search", "cloud", "pytorchjob")
    rows = doc["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    for row, hidden in zip(rows[:2], (8, 16), strict=True):
        assert row["params"] == {"model.hidden": hidden, "model.layers": 1, "train.epochs": 1}
        assert row["best_val_loss"] > 0 and row["epochs"] == 1 and row["world_size"] == 2
        assert set(row["test"]) >= {"test_mse", "test_mae", "test_r2"}
        assert (claims["training-outputs"] / "hp-search" / row["job"] / "metrics.json").is_file()
    assert "model.hidden" in rows[2]["error"] and rows[2]["best_val_loss"] is None
    assert doc["best"]["best_val_loss"] == min(r["best_val_loss"] for r in rows[:2])


def test_refused_by_admission_is_one_line(cluster_dirs, tmp_path):
    """A template the operator's webhook refuses (two Masters) comes back as HTTP 422: one line, exit 2."""
    workdir, claims, config_maps = cluster_dirs
    template = yaml.safe_load((REPO / "k8s" / "trial-pytorchjob.yaml").read_text())
    template["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 2
    bad = tmp_path / "bad-template.yaml"
    bad.write_text(yaml.safe_dump(template))
    cluster = FakeCluster(claims, config_maps, workdir)
    with ApiServer(cluster) as server:
        proc = run_cli(SCRIPT, "--template", bad, "--trials", "1", "--out", tmp_path / "r.json",
                       env={"KUBECONFIG": str(server.kubeconfig(tmp_path / "kubeconfig"))})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "HTTP 422" in proc.stderr and "replicas must be 1" in proc.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(("setting", "expected"), [
    ("unreachable", "cannot reach the Kubernetes API server"),
    ("no-crd", "does not serve pytorchjobs.kubeflow.org/v1"),
    ("forbidden", "forbidden in namespace stock-training (HTTP 403)"),
])
def test_cluster_problems_are_one_line_exit_2(setting, expected, tmp_path):
    cluster = FakeCluster({}, {}, tmp_path, plurals=() if setting == "no-crd" else ("pytorchjobs",),
                          forbidden=setting == "forbidden")
    with ApiServer(cluster) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig",
                                       server="http://127.0.0.1:1" if setting == "unreachable" else None)
        proc = run_cli(SCRIPT, "--trials", "1", "--out", tmp_path / "r.json", env={"KUBECONFIG": str(kubeconfig)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and expected in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "r.json").exists() and cluster.created == []
