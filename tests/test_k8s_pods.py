"""The pods of a rendered trial PyTorchJob, run as the training operator v1.9 would start them.

One process per replica (Master + Worker), each in its own network namespace on a bridge, resolving
`<job>-master-0` through /etc/netns/<pod>/hosts, with exactly the operator's environment (no LOCAL_RANK),
the manifest's command and args as written, the image's layout and environment, the pod's volumes, user
and read-only root filesystem (tests/k8s/operator.py). The job must train to the end, rank 0 must print
RESULT and write the run folder on the outputs volume.
"""

import json
import shutil
import sys

import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "model" / "experiments"))
from hyperparam_search_cloud import load_template, render_trial  # noqa: E402
from k8s.operator import (  # noqa: E402
    JobRun,
    apply_defaults,
    can_emulate_pods,
    config_map_dir,
    make_workdir,
    operator_env,
    plan_pods,
)


def test_operator_environment_of_the_large_job():
    """WORLD_SIZE = replicas x nprocPerNode, ranks master 0 and workers 1..3, no LOCAL_RANK."""
    job = yaml.safe_load((REPO / "k8s" / "large-dataset-job.yaml").read_text())
    pods = plan_pods(apply_defaults(job))
    assert [p.name for p in pods] == ["large-dataset-master-0", *(f"large-dataset-worker-{i}" for i in range(3))]
    for rank, pod in enumerate(pods):
        assert pod.env["RANK"] == pod.env["PET_NODE_RANK"] == str(rank)
        assert pod.env["WORLD_SIZE"] == "4" and pod.env["PET_NNODES"] == "4" and pod.env["PET_NPROC_PER_NODE"] == "1"
        assert pod.env["MASTER_ADDR"] == pod.env["PET_MASTER_ADDR"] == "large-dataset-master-0"
        assert pod.env["MASTER_PORT"] == pod.env["PET_MASTER_PORT"] == "23456"
        assert pod.env["PYTHONUNBUFFERED"] == "1" and pod.env["ETL_DATA_DIR"] == "/data"
        assert "LOCAL_RANK" not in pod.env
    assert [name for name, _ in operator_env(apply_defaults(job), "worker", 0)] == [
        "PYTHONUNBUFFERED", "MASTER_PORT", "PET_MASTER_PORT", "MASTER_ADDR", "PET_MASTER_ADDR", "WORLD_SIZE",
        "RANK", "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_NNODES"]


@pytest.mark.slow
def test_trial_job_trains_in_emulated_pods(volatility_dataset, tmp_path, capsys):
    reason = can_emulate_pods()
    if reason:
        pytest.skip(reason)
    template = load_template(REPO / "k8s" / "trial-pytorchjob.yaml")
    job = render_trial(template, "hp-podtest-t00", {"model.hidden": 16, "model.layers": 1, "train.epochs": 2},
                       "hp-podtest", 0, None, "stock-training")
    workdir = make_workdir()
    data, outputs = workdir / "pvc-data", workdir / "pvc-outputs"
    shutil.copytree(volatility_dataset, data / "processed" / "gspc-volatility")
    outputs.mkdir()
    configs = config_map_dir(workdir / "configmap-trainer-configs")
    try:
        run = JobRun(job, {"training-data": data, "training-outputs": outputs}, {"trainer-configs": configs}, workdir)
        with capsys.disabled():
            note = "" if run.network_mode == "netns" else " (network namespaces unavailable)"
            print(f"\n[pods on {run.network_mode}{note}]")
        status, message = run.run(timeout=300)
        master_log, worker_log = run.logs("hp-podtest-t00-master-0"), run.logs("hp-podtest-t00-worker-0")
        assert status == "Succeeded", f"{message}\nmaster:\n{master_log}\nworker:\n{worker_log}"
        result = json.loads(next(line for line in master_log.splitlines() if line.startswith("RESULT "))[7:])
        assert result["world_size"] == 2 and result["epochs"] == 2
        assert "RESULT" not in worker_log
        epochs = [line.split()[0] for line in master_log.splitlines() if line.startswith("epoch=")]
        assert epochs == ["epoch=1", "epoch=2"]
        run_dir = outputs / "hp-search" / "hp-podtest-t00"
        assert (run_dir / "metrics.json").is_file()
        assert (run_dir / "metrics.json").stat().st_uid == 1000, "rank 0 must write as the pod's user"
        assert json.loads((run_dir / "metrics.json").read_text())["world_size"] == 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
