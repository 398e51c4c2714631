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
