"""Read a dataset in format v1: check its index and shards, load shards, and give each rank its part.

A dataset is a folder with `index.json` and `{split}-{NNNNN}.npz` shards (see DESIGN.md). Opening checks
the index and that every shard file is there with the size the index records; loading a shard checks its
shapes, dtypes and row count (and its sha256 on request) and names the shard when anything is wrong.

`Dataset.partition` lays a split's shards end to end (in a seeded order per epoch, or in file order
when no epoch is given) and cuts the row range into `world_size` contiguous parts, so every row belongs
to exactly one rank, ranks differ by at most one row, and a rank touches only the shards its part
overlaps. `Dataset.iter_part` loads those shards one at a time.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etl.errors import EtlError

FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
TASKS = ("regression", "classification")
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class Piece:
    """Rows `start:stop` of shard number `shard` (position in the split's shard list)."""

    shard: int
    start: int
    stop: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def open_dataset(path: str | Path) -> Dataset:
    """Open the dataset folder `path`, checking its index and that every shard is present and whole."""
    path = Path(path)
    index_path = path / INDEX_FILE
    if not path.is_dir():
        raise EtlError(f"dataset {path} does not exist: build it with `python -m etl build --out {path}`")
    if not index_path.is_file():
        raise EtlError(f"{path} has no {INDEX_FILE}: it is not a complete dataset; rebuild it")
    try:
        index = json.loads(index_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EtlError(f"{index_path} is not valid JSON ({exc}): rebuild the dataset") from None
    dataset = Dataset(path, index)
    dataset.check_index()
    dataset.check_files()
    return dataset


class Dataset:
    """An opened dataset: the parsed `index.json` plus shard loading and rank partitioning."""

    def __init__(self, path: Path, index: dict):
        self.path = path
        self.index = index

    @property
    def task(self) -> str:
        return self.index["task"]

    @property
    def target(self) -> str:
        return self.index["target"]

    @property
    def window(self) -> int:
        return self.index["window"]

    @property
    def feature_names(self) -> list[str]:
        return self.index["feature_names"]

    @property
    def n_features(self) -> int:
        return len(self.index["feature_names"])

    def rows(self, split: str) -> int:
        return self.index["splits"][split]["rows"]

    def shards(self, split: str) -> list[dict]:
        return self.index["splits"][split]["shards"]

    def check_index(self) -> None:
        """Raise EtlError unless the index has format version 1 and the keys and totals readers rely on."""
        where = self.path / INDEX_FILE
        version = self.index.get("format_version") if isinstance(self.index, dict) else None
        if version != FORMAT_VERSION:
            raise EtlError(
                f"{where}: format_version is {version!r}, this reader reads {FORMAT_VERSION}: "
                "rebuild the dataset with this version of the ETL"
            )
        for key in ("task", "target", "window", "feature_names", "splits", "normalization"):
            if key not in self.index:
                raise EtlError(f"{where}: missing key {key!r}: rebuild the dataset")
        if self.task not in TASKS:
            raise EtlError(f"{where}: task {self.task!r} is not one of {', '.join(TASKS)}")
        for split in SPLITS:
            entry = self.index["splits"].get(split)
            if not entry or "shards" not in entry or "rows" not in entry:
                raise EtlError(f"{where}: split {split!r} is missing or incomplete: rebuild the dataset")
            total = sum(shard["rows"] for shard in entry["shards"])
            if total != entry["rows"]:
                raise EtlError(f"{where}: split {split!r} says {entry['rows']} rows, its shards hold {total}")

    def check_files(self) -> None:
        """Raise EtlError naming the first shard that is missing or whose size differs from the index."""
        for split in SPLITS:
            for shard in self.shards(split):
                file = self.path / shard["file"]
                if not file.is_file():
                    raise EtlError(f"shard {file} is missing: rebuild the dataset")
                size = file.stat().st_size
                if size != shard["bytes"]:
                    raise EtlError(
                        f"shard {file} has {size} bytes, the index says {shard['bytes']}: "
                        "it is truncated or was replaced; rebuild the dataset"
                    )

    def load_shard(self, split: str, number: int, checksum: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Load shard `number` of `split` as (x, y), checking shapes, dtypes, rows and optionally sha256."""
        shard = self.shards(split)[number]
        file = self.path / shard["file"]
        if checksum and file_sha256(file) != shard["sha256"]:
            raise EtlError(f"shard {file} fails its sha256 check: it was modified; rebuild the dataset")
        try:
            with np.load(file, allow_pickle=False) as npz:
                x, y = npz["x"], npz["y"]
        except FileNotFoundError:
            raise EtlError(f"shard {file} is missing: rebuild the dataset") from None
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise EtlError(f"shard {file} is corrupt ({exc}): rebuild the dataset") from None
        rows = shard["rows"]
        expected_x = (rows, self.window, self.n_features)
        if x.dtype != np.float32 or x.shape != expected_x:
            raise EtlError(f"shard {file}: x is {x.dtype}{list(x.shape)}, expected float32{list(expected_x)}")
        if y.dtype != np.float32 or y.shape != (rows,):
            raise EtlError(f"shard {file}: y is {y.dtype}{list(y.shape)}, expected float32[{rows}]")
        return x, y

    def verify(self, checksums: bool = False) -> None:
        """Load every shard of every split, raising EtlError naming the first bad one."""
        for split in SPLITS:
            for number in range(len(self.shards(split))):
                self.load_shard(split, number, checksum=checksums)

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole split in memory at once (the naive `memory` data mode)."""
        parts = [self.load_shard(split, number) for number in range(len(self.shards(split)))]
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    def shard_order(self, split: str, epoch: int | None, seed: int) -> list[int]:
        """File order when `epoch` is None, else a permutation fixed by (seed, epoch)."""
        count = len(self.shards(split))
        if epoch is None:
            return list(range(count))
        return np.random.default_rng([seed, epoch]).permutation(count).tolist()

    def rows_for_rank(self, split: str, world_size: int, rank: int) -> int:
        """How many rows of `split` rank `rank` reads per epoch (the same in every epoch)."""
        total = self.rows(split)
        return (rank + 1) * total // world_size - rank * total // world_size

    def partition(
        self, split: str, world_size: int, rank: int, epoch: int | None = None, seed: int = 0
    ) -> list[Piece]:
        """The pieces of shards that rank `rank` of `world_size` reads in `epoch`, in reading order."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of size {world_size}")
        total = self.rows(split)
        first, last = rank * total // world_size, (rank + 1) * total // world_size
        pieces, offset = [], 0
        for number in self.shard_order(split, epoch, seed):
            rows = self.shards(split)[number]["rows"]
            start, stop = max(first, offset), min(last, offset + rows)
            if start < stop:
                pieces.append(Piece(number, start - offset, stop - offset))
            offset += rows
            if offset >= last:
                break
        return pieces

    def iter_part(
        self, split: str, world_size: int, rank: int, epoch: int | None = None, seed: int = 0,
        load: Callable[[str, int], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x, y) for each piece of this rank's part, holding one shard in memory at a time.

        `load(split, number)` reads a shard (default `load_shard`); a caller may pass one that keeps the
        last shard it read."""
        load = load or self.load_shard
        for piece in self.partition(split, world_size, rank, epoch, seed):
            x, y = load(split, piece.shard)
            yield x[piece.start : piece.stop], y[piece.start : piece.stop]
