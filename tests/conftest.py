"""Shared fixtures: the repo's paths, a CLI runner, Yahoo-style CSV files, and a dataset built once."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from etl.build import build_dataset
from etl.paths import SNAPSHOT_FILE
from etl.sources import read_price_csv

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXPERIMENTS = REPO / "model" / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the experiment scripts import their sibling modules by name


def run_cli(*args, check_rc=None, env=None, **kwargs) -> subprocess.CompletedProcess:
    """Run `python ARGS...` from the repo root and return the finished process (text output)."""
    proc = subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=600, **kwargs,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, f"rc={proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def snapshot_frame() -> pd.DataFrame:
    """The shipped snapshot as a raw Yahoo-style table (Date column, original order)."""
    return pd.read_csv(SNAPSHOT_FILE)


@pytest.fixture
def write_csv(tmp_path):
    """Write a table to a CSV in tmp_path and return its path."""

    def write(frame: pd.DataFrame, name: str = "prices.csv") -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return write


@pytest.fixture(scope="session")
def volatility_dataset(tmp_path_factory) -> Path:
    """The volatility dataset built once from the snapshot, in shards of 1024 rows (4 train shards)."""
    prices, _ = read_price_csv(SNAPSHOT_FILE)
    out = tmp_path_factory.mktemp("datasets") / "gspc-volatility"
    build_dataset(prices, {"provider": "snapshot"}, out, target="volatility", shard_rows=1024)
    return out
