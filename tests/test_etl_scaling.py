"""create_large_dataset.py: K noise-injected train copies, deterministic, streaming, atomic."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, run_cli
from etl import open_dataset

SCRIPT = REPO / "data-pipeline" / "create_large_dataset.py"


def scale(base, out, k, *extra, check_rc=0):
    return run_cli(SCRIPT, "--base", base, "--multiplier", k, "--out", out, *extra, check_rc=check_rc)


def test_scaled_train_split_is_k_copies_and_the_rest_unchanged(tmp_path, volatility_dataset):
    out = tmp_path / "x3"
    scale(volatility_dataset, out, 3, "--noise-std", "0.05", "--seed", "4")
    base, big = open_dataset(volatility_dataset), open_dataset(out)
    big.verify(checksums=True)
    assert big.rows("train") == 3 * base.rows("train")
    assert (big.index["multiplier"], big.index["noise_std"], big.index["seed"]) == (3, 0.05, 4)
    assert big.index["normalization"] == base.index["normalization"]
    x0, y0 = base.load_split("train")
    xb, yb = big.load_split("train")
    n = len(x0)
    np.testing.assert_array_equal(xb[:n], x0)  # copy 0 is exact
    np.testing.assert_array_equal(yb, np.tile(y0, 3))  # targets unchanged in every copy
    noise = xb[n:] - np.tile(x0, (2, 1, 1))
    assert 0.045 < noise.std() < 0.055 and abs(noise.mean()) < 0.002
    for split in ("validation", "test"):
        assert [s["sha256"] for s in big.shards(split)] == [s["sha256"] for s in base.shards(split)]


def test_scaling_is_deterministic_by_seed(tmp_path, volatility_dataset):
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        scale(volatility_dataset, tmp_path / name, 2, "--seed", seed)
        runs[name] = [s["sha256"] for s in open_dataset(tmp_path / name).shards("train")]
    assert runs["a"] == runs["b"] != runs["c"]


def peak_rss_kib(*args) -> int:
    """Run `python ARGS` and return its peak resident set size, read from the kernel's rusage."""
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read()
    return usage.ru_maxrss


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_multiplier(tmp_path, volatility_dataset):
    small = peak_rss_kib(SCRIPT, "--base", volatility_dataset, "--multiplier", 1, "--out", tmp_path / "x1")
    large = peak_rss_kib(SCRIPT, "--base", volatility_dataset, "--multiplier", 200, "--out", tmp_path / "x200")
    big = open_dataset(tmp_path / "x200")
    assert sum(s["bytes"] for s in big.shards("train")) > 250e6  # 200x really was written
    assert large <= 1.2 * small, f"peak RSS {large} KiB at K=200 vs {small} KiB at K=1"


def kill_when_temporary_appears(args, parent, name) -> None:
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(f".{name}.tmp-") and any(p.iterdir()) for p in parent.iterdir()):
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_during_scale_up_leaves_no_dataset(tmp_path, volatility_dataset):
    out = tmp_path / "big"
    kill_when_temporary_appears([SCRIPT, "--base", volatility_dataset, "--multiplier", 2000, "--out", out],
                                tmp_path, "big")
    assert not out.exists()
    assert run_cli("-m", "etl", "verify", out).returncode == 2
    scale(volatility_dataset, out, 2)  # the next run cleans up the killed run's leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"]


def test_sigkill_during_build_leaves_no_dataset(tmp_path):
    out = tmp_path / "ds"
    kill_when_temporary_appears(["-m", "etl", "build", "--source", "snapshot", "--shard-rows", "1", "--out", out],
                                tmp_path, "ds")
    assert not out.exists()
    run_cli("-m", "etl", "build", "--source", "snapshot", "--out", out, check_rc=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert json.loads((out / "index.json").read_text())["splits"]["train"]["rows"] == 3501
