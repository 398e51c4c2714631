"""Helpers for the trainer tests: learnable synthetic datasets, configs, free ports, and trainer processes.

Datasets are written with the ETL's own `DatasetWriter`, so the trainer reads them exactly as it reads a
real build. Targets are a fixed function of the window plus a little noise, so "the model learned"
checks are meaningful: regression y = 1 + x[-1, 0] - 0.5 * mean(x[:, 1]) (+ noise), classification
y = [x[-1, 0] + x[-2, 1] > 0] with 5% of labels flipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from etl.writer import DatasetWriter

REPO = Path(__file__).resolve().parents[1]
DIST_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                  "TORCHELASTIC_RESTART_COUNT", "GROUP_RANK", "ROLE_RANK")
WINDOW, FEATURES = 8, 3


def windows(rows: int, seed: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, WINDOW, FEATURES)).astype(np.float32)
    if task == "classification":
        y = (x[:, -1, 0] + x[:, -2, 1] > 0).astype(np.float32)
        flip = rng.random(rows) < 0.05
        y[flip] = 1 - y[flip]
    else:
        y = (1 + x[:, -1, 0] - 0.5 * x[:, :, 1].mean(axis=1) + 0.1 * rng.standard_normal(rows)).astype(np.float32)
    return x, y


def make_dataset(out: Path, *, task: str = "regression", target: str | None = None,
                 shards: dict[str, list[int]] | None = None, seed: int = 0) -> Path:
    """Write a dataset whose splits are made of shards of exactly the given row counts."""
    shards = shards or {"train": [400, 400, 200], "validation": [150], "test": [150]}
    target = target or ("direction" if task == "classification" else "volatility")
    with DatasetWriter(out, shard_rows=10**9) as writer:
        for offset, (split, sizes) in enumerate(shards.items()):
            for number, rows in enumerate(sizes):
                writer.write_shard(split, *windows(rows, seed * 1000 + offset * 100 + number, task))
        writer.finish({
            "task": task, "target": target, "window": WINDOW, "horizon": 1,
            "feature_names": ["log_return", "hl_range", "oc_change"][:FEATURES],
            "normalization": {"mean": [0.0] * FEATURES, "std": [0.01] * FEATURES},
            "source": {"provider": "synthetic"}, "multiplier": 1, "noise_std": 0.0, "seed": seed,
        })
    return out


def write_config(path: Path, dataset: Path, save_dir: Path, **sections: dict) -> Path:
    """A YAML config for `dataset` writing under `save_dir`, with small defaults and `sections` merged in."""
    config = {"data": {"path": str(dataset)}, "model": {"hidden": 16},
              "train": {"epochs": 3, "batch_size": 32, "threads": 1, "dist_timeout": 60},
              "io": {"save_dir": str(save_dir), "run_name": "run"}}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict:
    """This process's environment without any distributed variables, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in DIST_VARIABLES}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


def trainer_command(*args: str, torchrun: list[str] | None = None) -> list[str]:
    if torchrun is None:
        return [sys.executable, "-m", "trainer", *args]
    return [sys.executable, "-m", "torch.distributed.run", *torchrun, "-m", "trainer", *args]


def run_trainer(*args: str, torchrun: list[str] | None = None, env: dict | None = None,
                timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(trainer_command(*args, torchrun=torchrun), cwd=REPO, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def result_of(stdout: str) -> dict:
    """The payload of the one `RESULT {json}` line in `stdout`."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0].removeprefix("RESULT "))


def comparable(result: dict) -> dict:
    """The parts of a RESULT that must not depend on timing, memory or where it ran."""
    return {key: value for key, value in result.items()
            if key.startswith(("test_", "baseline_", "best_")) or key in ("epochs", "world_size")}



def join_as(rank: int, size: int, port: int):
    """In a spawned test process: set the environment torchrun would and join a gloo world of `size`."""
    from trainer.distributed import join, set_threads, world_from_env

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    world = world_from_env("cpu")
    set_threads(1, 1)
    join(world, 60)
    return world


def ddp_steps(world, batches: list) -> dict:
    """One DDP step per batch on this rank's slice of it: the parameters and gradients afterwards."""
    import torch
    import torch.nn.functional as F

    from trainer.config import ModelConfig, TrainConfig
    from trainer.distributed import wrap
    from trainer.loop import flatten_parameters, make_optimizer, train_epoch
    from trainer.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=16), WINDOW, FEATURES)
    flat = flatten_parameters(model)
    optimizer = make_optimizer(flat, TrainConfig())
    mine = [(x.chunk(world.world_size)[world.rank], y.chunk(world.world_size)[world.rank]) for x, y in batches]
    train_epoch(wrap(world, model), flat, optimizer, mine, F.mse_loss, 1.0, world.device)
    return {"params": [p.detach() for p in model.parameters()], "grads": [p.grad for p in model.parameters()]}


def evaluations(world, dataset: str, mode: str) -> dict:
    """A freshly seeded model and a row-wise probe evaluated on this rank's parts; the train-target scan."""
    import dataclasses

    import torch

    from etl import open_dataset
    from trainer.config import ModelConfig
    from trainer.data import open_data, scan_dataset
    from trainer.loop import evaluate
    from trainer.metrics import new_metrics
    from trainer.models import build_model

    data_set = open_dataset(dataset)
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=16), WINDOW, FEATURES).eval()
    data = open_data(mode, data_set, world, seed=0)

    def probe(x):  # row by row in float64, so its predictions cannot depend on how rows are batched
        return x[:, -1, 0].double() * 0.5 + 0.2

    result = {"targets": dataclasses.asdict(scan_dataset(data_set, world, checksums=True))}
    for split in ("validation", "test"):
        for name, predict in (("model", model), ("probe", probe)):
            metrics = new_metrics(data_set.task, world.device, 0.5)
            result[f"{name}_{split}"] = evaluate(predict, data.eval_batches(split, 64), metrics, world)
    return result


def spawned_worker(rank: int, size: int, port: int, jobs: dict, out: str) -> None:
    """Run in a world of `size`: `evaluations` for each (dataset, mode) of jobs["eval"], and `ddp_steps` on
    jobs["ddp"] when given; rank 0 saves everything to `out`."""
    import torch

    from trainer.distributed import close_world

    world = join_as(rank, size, port)
    results = {"eval": [evaluations(world, dataset, mode) for dataset, mode in jobs["eval"]]}
    if jobs.get("ddp"):
        results["ddp"] = ddp_steps(world, jobs["ddp"])
    if world.is_main:
        torch.save(results, out)
    close_world(world)
