"""Real multi-process gloo runs: DDP equals one process on the union batch, metrics equal on 1/2/3 ranks,
uneven shards finish, the PyTorchJob environment works with plain `python -m trainer`, and a rank
killed mid-epoch under `torchrun --max-restarts 1` resumes to the same final metrics."""

import json
import signal
import subprocess
import time

import psutil
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from trainer.config import ModelConfig, TrainConfig
from trainer.distributed import available_cores, set_threads
from trainer.loop import flatten_parameters, make_optimizer, train_epoch
from trainer.models import build_model
from trainer_support import (
    FEATURES,
    REPO,
    WINDOW,
    clean_env,
    comparable,
    free_port,
    make_dataset,
    result_of,
    run_trainer,
    spawned_worker,
    trainer_command,
    windows,
    write_config,
)

UNEVEN = {"train": [50, 7, 93, 1, 30, 64, 3], "validation": [11, 2, 20], "test": [5, 16]}


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """One spawn per world size (1, 2, 3): evaluations on uneven datasets, and DDP steps on 2 ranks."""
    root = tmp_path_factory.mktemp("spawned")
    datasets = [str(make_dataset(root / task, task=task, shards=UNEVEN)) for task in ("regression", "classification")]
    batches = [tuple(torch.from_numpy(a) for a in windows(64, seed, "regression")) for seed in range(3)]
    results = {}
    for size in (1, 2, 3):
        jobs = {"eval": [(path, mode) for path in datasets for mode in ("stream", "memory")],
                "ddp": batches if size == 2 else None}
        out = root / f"{size}.pt"
        mp.spawn(spawned_worker, args=(size, free_port(), jobs, str(out)), nprocs=size)
        results[size] = torch.load(out, weights_only=True)
    return results, batches


def test_ddp_steps_on_two_ranks_equal_one_process_on_the_union(spawned):
    results, batches = spawned
    ddp = results[2]["ddp"]

    def one_process(steps):
        torch.manual_seed(0)
        model = build_model(ModelConfig(hidden=16), WINDOW, FEATURES)
        flat = flatten_parameters(model)
        train_epoch(model, flat, make_optimizer(flat, TrainConfig()), steps, F.mse_loss, 1.0, torch.device("cpu"))
        return [p.detach() for p in model.parameters()], [p.grad for p in model.parameters()]

    params, grads = one_process(batches)
    for got, want in zip(ddp["params"] + ddp["grads"], params + grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    halves, _ = one_process([(x[:32], y[:32]) for x, y in batches])  # what rank 0 alone would do
    assert max((a - b).abs().max().item() for a, b in zip(halves, params, strict=True)) > 1e-4


def test_metrics_are_equal_on_one_two_and_three_ranks(spawned):
    results, _ = spawned
    counted = {"accuracy", "precision", "recall", "f1"}
    for job, alone in enumerate(results[1]["eval"]):
        assert alone["model_test"]["loss"] > 0
        for size in (2, 3):
            many = results[size]["eval"][job]
            assert many["targets"] == alone["targets"]
            for split in ("validation", "test"):
                # the reduction is exact (sums and counts): only float64 summation order may differ
                assert many[f"probe_{split}"] == pytest.approx(alone[f"probe_{split}"], rel=1e-12)
                # the model's float32 forward pass may differ in the last bit with the batch's shape
                model, single = many[f"model_{split}"], alone[f"model_{split}"]
                assert model == pytest.approx(single, rel=1e-6)
                assert {k: model[k] for k in counted & model.keys()} == {k: single[k] for k in counted & single.keys()}


def test_auto_threads_share_the_cores_between_local_processes():
    before = torch.get_num_threads()
    try:
        for processes in (1, 2, 3):
            assert set_threads(0, processes) == torch.get_num_threads() == max(1, available_cores() // processes)
        assert set_threads(3, 2) == torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_uneven_shards_on_three_ranks_finish(tmp_path):
    dataset = make_dataset(tmp_path / "uneven", shards=UNEVEN)
    config = write_config(tmp_path / "c.yaml", dataset, tmp_path / "out",
                          train={"epochs": 2, "batch_size": 16, "threads": 0, "dist_timeout": 30})
    proc = run_trainer("--config", str(config), torchrun=["--standalone", "--nproc-per-node", "3"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = result_of(proc.stdout)
    metrics = json.loads((tmp_path / "out" / "run" / "metrics.json").read_text())
    assert result["world_size"] == 3 and len(metrics["ranks"]) == 3
    assert metrics["history"][0]["samples"] == 3 * 16 * ((248 // 3) // 16)
    assert metrics["threads_per_process"] == max(1, available_cores() // 3)
    assert len({rank["final_params_sha256"] for rank in metrics["ranks"]}) == 1


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """A dataset big enough for epochs of a fraction of a second, and its uninterrupted 2-rank torchrun run."""
    root = tmp_path_factory.mktemp("two")
    dataset = make_dataset(root / "data", shards={"train": [3000] * 4, "validation": [500], "test": [500]})

    def config(name):
        return write_config(root / f"{name}.yaml", dataset, root / name, train={"epochs": 3})

    proc = run_trainer("--config", str(config("reference")), torchrun=["--standalone", "--nproc-per-node", "2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, result_of(proc.stdout)


def test_pytorchjob_environment_with_plain_python(two_rank_run):
    """The operator sets RANK, WORLD_SIZE, MASTER_* and PET_* but no LOCAL_RANK; the worker starts first."""
    config, reference = two_rank_run
    port = free_port()
    path = config("pytorchjob")

    def start(rank):
        env = clean_env(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="localhost", MASTER_PORT=str(port),
                        PET_MASTER_ADDR="localhost", PET_MASTER_PORT=str(port), PET_NNODES="2",
                        PET_NODE_RANK=str(rank), PET_NPROC_PER_NODE="1")
        return subprocess.Popen(trainer_command("--config", str(path)), cwd=REPO, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    worker = start(1)
    time.sleep(1.0)
    master = start(0)
    (master_out, master_err), (worker_out, worker_err) = master.communicate(timeout=180), worker.communicate(60)
    assert master.returncode == 0, master_err[-3000:]
    assert worker.returncode == 0, worker_err[-3000:]
    assert "RESULT" not in worker_out and "epoch=" not in worker_out
    result = result_of(master_out)
    metrics = json.loads((path.parent / "pytorchjob" / "run" / "metrics.json").read_text())
    assert [rank["rank"] for rank in metrics["ranks"]] == [0, 1]
    assert len({rank["final_params_sha256"] for rank in metrics["ranks"]}) == 1
    assert comparable(result) == comparable(reference)


@pytest.mark.slow
def test_rank_killed_mid_epoch_under_torchrun_restart_resumes_to_the_same_result(two_rank_run):
    config, reference = two_rank_run
    torchrun = ["--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "--monitor-interval", "0.2"]
    proc = subprocess.Popen(trainer_command("--config", str(config("killed")), torchrun=torchrun), cwd=REPO,
                            env=clean_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, killed = [], None
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        lines.append(line)
        if killed is None and line.startswith("epoch=1 "):
            workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                       if p.environ().get("RANK") == "1" and "trainer" in " ".join(p.cmdline())]
            assert len(workers) == 1, workers
            workers[0].send_signal(signal.SIGKILL)
            killed = workers[0].pid
        assert time.monotonic() < deadline, "".join(lines)
    assert proc.wait(timeout=60) == 0, "".join(lines)
    out = "".join(lines)
    assert killed is not None and "resumed from" in out, out
    resumed_after = int(out.split("resumed from")[1].split("after epoch")[1].split()[0])
    assert 1 <= resumed_after < 3
    assert comparable(result_of(out)) == comparable(reference)
