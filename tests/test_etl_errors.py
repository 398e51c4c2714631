"""Bad input: one line on stderr naming the problem, exit status 2, no traceback, nothing written."""

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from etl.writer import DatasetWriter


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def build(csv, out, *extra):
    return run_cli("-m", "etl", "build", "--source", "csv", "--csv", csv, "--out", out, *extra)


def yahoo(rows=300, start="2001-01-02") -> pd.DataFrame:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    return pd.DataFrame({"Date": pd.bdate_range(start, periods=rows).strftime("%Y-%m-%d"),
                         "Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99, "Close": close,
                         "Adj Close": close, "Volume": rng.integers(1, 10**6, rows)})


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("missing", ["does not exist"]),
        ("binary", ["not a readable CSV"]),
        ("gz-garbage", ["not a readable CSV"]),
        ("no-volume", ["missing column(s) volume"]),
        ("too-many-nulls", ["null or non-numeric", "more than 5%"]),
        ("unsorted", ["unsorted date"]),
        ("duplicate", ["duplicate date"]),
        ("short", ["too little history"]),
        ("non-positive", ["non-positive price"]),
    ],
)
def test_bad_csv(tmp_path, write_csv, case, needles):
    frame = yahoo()
    if case == "missing":
        csv = tmp_path / "nope.csv"
    elif case == "binary":
        csv = tmp_path / "prices.csv"
        csv.write_bytes(bytes(range(256)) * 40)
    elif case == "gz-garbage":
        csv = tmp_path / "prices.csv.gz"
        csv.write_bytes(b"\x1f\x8b" + os.urandom(500))
    else:
        if case == "no-volume":
            frame = frame.drop(columns="Volume")
        elif case == "too-many-nulls":
            frame = frame.astype({"Close": object})
            frame.loc[::10, "Close"] = "null"
        elif case == "unsorted":
            frame.loc[[100, 101], "Date"] = frame.loc[[101, 100], "Date"].to_numpy()
        elif case == "duplicate":
            frame.loc[101, "Date"] = frame.loc[100, "Date"]
        elif case == "short":
            frame = frame.head(60)
        elif case == "non-positive":
            frame.loc[50, "Low"] = 0.0
        csv = write_csv(frame)
    out = tmp_path / "out"
    assert_one_line_error(build(csv, out), *needles)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_few_null_cells_are_dropped_and_counted(tmp_path, write_csv):
    frame = yahoo().astype({"Volume": object, "Open": object})
    frame.loc[[40, 41, 90], "Volume"] = "null"
    frame.loc[120, "Open"] = "n/a"
    proc = build(write_csv(frame), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "dropped 4 rows" in proc.stdout
    assert json.loads((tmp_path / "out" / "index.json").read_text())["source"]["dropped_rows"] == 4


def test_existing_output_is_refused_without_force(tmp_path, write_csv):
    csv, out = write_csv(yahoo()), tmp_path / "out"
    assert build(csv, out).returncode == 0
    before = (out / "index.json").read_bytes()
    assert_one_line_error(build(csv, out), "already exists", "--force")
    assert (out / "index.json").read_bytes() == before
    assert build(csv, out, "--force", "--window", "10").returncode == 0
    assert json.loads((out / "index.json").read_text())["window"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "prices.csv"]


@pytest.mark.parametrize("multiplier", ["0", "-3", "2.5", "ten"])
def test_bad_multiplier(tmp_path, volatility_dataset, multiplier):
    out = tmp_path / "scaled"
    proc = run_cli("data-pipeline/create_large_dataset.py", "--base", volatility_dataset,
                   "--multiplier", multiplier, "--out", out)
    assert_one_line_error(proc, "--multiplier must be a whole number >= 1")
    assert not out.exists()


def test_missing_base_dataset(tmp_path):
    proc = run_cli("data-pipeline/create_large_dataset.py", "--base", tmp_path / "none", "--multiplier", "2")
    assert_one_line_error(proc, "does not exist")


def corrupt(dataset: Path, how: str) -> str:
    """Damage shard train-00001.npz of a copy of the dataset; return the damaged file's name."""
    shard = dataset / "train-00001.npz"
    data = bytearray(shard.read_bytes())
    if how == "missing":
        shard.unlink()
    elif how == "truncated":
        shard.write_bytes(data[: len(data) // 2])
    elif how == "corrupt":  # same size, bytes flipped inside the array data: the zip CRC catches it
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        shard.write_bytes(bytes(data))
    elif how == "wrong-shape":
        index = json.loads((dataset / "index.json").read_text())
        with open(shard, "wb") as f:
            np.savez(f, x=np.zeros((3, 20, 5), np.float32), y=np.zeros(3, np.float32))
        index["splits"]["train"]["shards"][1]["bytes"] = shard.stat().st_size
        (dataset / "index.json").write_text(json.dumps(index))
    return shard.name


@pytest.mark.parametrize("how", ["missing", "truncated", "corrupt", "wrong-shape"])
def test_verify_names_the_bad_shard(tmp_path, volatility_dataset, how):
    copy = tmp_path / "copy"
    shutil.copytree(volatility_dataset, copy)
    name = corrupt(copy, how)
    assert_one_line_error(run_cli("-m", "etl", "verify", copy), name)


def test_tampered_shard_fails_checksum_verification(tmp_path, volatility_dataset):
    copy = tmp_path / "copy"
    shutil.copytree(volatility_dataset, copy)
    shard = copy / "validation-00000.npz"
    with np.load(shard) as npz:
        x, y = npz["x"], npz["y"].copy()
    y[0] += 1.0  # a valid shard of the same size, with one label changed
    with DatasetWriter(tmp_path / "tampered") as writer:
        writer.write_shard("validation", x, y)
        writer.finish({})
    shutil.copyfile(tmp_path / "tampered" / shard.name, shard)
    assert run_cli("-m", "etl", "verify", copy).returncode == 0  # shapes and CRCs are fine
    assert_one_line_error(run_cli("-m", "etl", "verify", "--checksums", copy), "validation-00000.npz", "sha256")


def test_wrong_format_version_and_missing_index(tmp_path, volatility_dataset):
    copy = tmp_path / "copy"
    shutil.copytree(volatility_dataset, copy)
    index = json.loads((copy / "index.json").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "format_version": 2}))
    assert_one_line_error(run_cli("-m", "etl", "info", copy), "format_version is 2")
    (copy / "index.json").unlink()
    assert_one_line_error(run_cli("-m", "etl", "verify", copy), "index.json")


def test_scaling_a_corrupt_base_writes_nothing(tmp_path, volatility_dataset):
    copy, out = tmp_path / "copy", tmp_path / "scaled"
    shutil.copytree(volatility_dataset, copy)
    name = corrupt(copy, "corrupt")
    proc = run_cli("data-pipeline/create_large_dataset.py", "--base", copy, "--multiplier", "3", "--out", out)
    assert_one_line_error(proc, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_unknown_source_and_usage_errors_are_one_line(tmp_path):
    assert_one_line_error(run_cli("-m", "etl", "build", "--source", "bloomberg"), "--source")
    assert_one_line_error(run_cli("-m", "etl", "build", "--source", "csv", "--out", tmp_path / "x"), "--csv")
    assert_one_line_error(run_cli("-m", "etl", "build", "--source", "snapshot", "--ticker", "AAPL",
                                  "--out", tmp_path / "x"), "snapshot holds ^GSPC only")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_leaves_no_temporary_folder(small_disk, volatility_dataset):
    out = small_disk / "scaled"
    proc = run_cli("data-pipeline/create_large_dataset.py", "--base", volatility_dataset,
                   "--multiplier", "5", "--out", out)
    assert_one_line_error(proc, "disk full")
    assert list(small_disk.iterdir()) == []


def test_gzip_csv_is_read(tmp_path):
    csv = tmp_path / "prices.csv.gz"
    with gzip.open(csv, "wt") as f:
        yahoo().to_csv(f, index=False)
    assert build(csv, tmp_path / "out").returncode == 0
