"""`python -m etl xor`: uniform points labelled by the parity of their rounded coordinates, format v1."""

import numpy as np
import pytest

from conftest import run_cli
from etl import open_dataset
from etl.xor import parity_labels


@pytest.mark.parametrize("dims", [2, 3])
def test_labels_are_the_parity_of_the_rounded_coordinates(tmp_path, dims):
    out = tmp_path / f"xor{dims}"
    run_cli("-m", "etl", "xor", "--train", 500, "--test", 200, "--validation", 100, "--dims", dims, "--seed", 3,
            "--out", out, check_rc=0)
    dataset = open_dataset(out)
    dataset.verify(checksums=True)
    assert dataset.task == "classification" and dataset.window == 1 and dataset.n_features == dims
    assert [dataset.rows(s) for s in ("train", "validation", "test")] == [500, 100, 200]
    for split in ("train", "test"):
        x, y = dataset.load_split(split)
        points = x[:, 0, :]
        assert points.min() >= 0 and points.max() < 1
        corner = points >= 0.5  # which half of each axis the point is in
        np.testing.assert_array_equal(y, corner.sum(axis=1) % 2)
        assert 0.35 < y.mean() < 0.65


def test_parity_by_hand():
    points = np.array([[0.1, 0.2], [0.9, 0.2], [0.1, 0.7], [0.6, 0.8]])
    np.testing.assert_array_equal(parity_labels(points), [0, 1, 1, 0])
    np.testing.assert_array_equal(parity_labels(np.array([[0.9, 0.9, 0.9], [0.9, 0.1, 0.1]])), [1, 1])


def test_same_seed_same_points_and_bad_dims(tmp_path):
    for name in ("a", "b"):
        run_cli("-m", "etl", "xor", "--train", 50, "--seed", 1, "--out", tmp_path / name, check_rc=0)
    a, b = open_dataset(tmp_path / "a"), open_dataset(tmp_path / "b")
    assert a.shards("train")[0]["sha256"] == b.shards("train")[0]["sha256"]
    proc = run_cli("-m", "etl", "xor", "--dims", 0, "--out", tmp_path / "c")
    assert proc.returncode == 2 and "--dims must be >= 1" in proc.stderr and not (tmp_path / "c").exists()
