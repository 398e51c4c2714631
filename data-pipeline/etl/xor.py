"""The XOR (parity) dataset: points uniform in [0, 1]^d labelled by the parity of their rounded coordinates.

A model with no hidden layer cannot separate it (for d >= 2); one hidden layer can. Written in dataset
format v1 (task classification, window 1, features x1..xd, identity normalisation) so the trainer reads
it unchanged. Train, validation and test points are drawn independently from one seeded generator.
"""

from pathlib import Path

import numpy as np

from etl.errors import EtlError
from etl.writer import DEFAULT_SHARD_ROWS, DatasetWriter


def parity_labels(points: np.ndarray) -> np.ndarray:
    """1.0 where an odd number of coordinates round to 1, else 0.0."""
    return (np.rint(points).astype(np.int64).sum(axis=1) % 2).astype(np.float32)


def build_xor(out: Path, *, train: int = 10_000, validation: int = 1_000, test: int = 1_000, dims: int = 2,
              seed: int = 0, shard_rows: int = DEFAULT_SHARD_ROWS, force: bool = False) -> dict:
    if dims < 1:
        raise EtlError(f"--dims must be >= 1, got {dims}")
    if min(train, validation, test) < 1:
        raise EtlError("--train, --validation and --test must each be >= 1")
    rng = np.random.default_rng(seed)
    with DatasetWriter(out, force=force, shard_rows=shard_rows) as writer:
        for split, rows in (("train", train), ("validation", validation), ("test", test)):
            points = rng.random((rows, dims), dtype=np.float32)
            writer.add(split, points[:, None, :], parity_labels(points))
        return writer.finish({
            "task": "classification",
            "target": "xor",
            "window": 1,
            "horizon": 0,
            "feature_names": [f"x{i + 1}" for i in range(dims)],
            "normalization": {"mean": [0.0] * dims, "std": [1.0] * dims},
            "source": {"provider": "xor", "dims": dims, "distribution": "uniform [0, 1]^d", "seed": seed},
            "multiplier": 1,
            "noise_std": 0.0,
            "seed": seed,
        })
