"""Batches for one rank: `stream` (its own shards, rows of at most two mixed at a time) or `memory` (whole splits).

Both modes give every rank the same number of training steps per epoch, `steps_per_epoch`, computed from
`index.json` alone (the smallest rank's share of the train split, in whole batches), so no rank waits in
a collective another rank never reaches. Batches are cut from contiguous tensors (slices in stream mode,
`index_select` in memory mode), never sample by sample. Shuffling is seeded by (seed, epoch[, rank]), so
an epoch's batches are the same whether the run was interrupted or not.

`scan_dataset` loads every shard once before training, shared across ranks, to fail early (on every
rank, naming the shard) on a corrupt dataset, and to count the train targets for the baselines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from etl import Dataset, EtlError
from etl.reader import SPLITS
from trainer.distributed import World, gather, sum_across
from trainer.errors import TrainerError

Batch = tuple[torch.Tensor, torch.Tensor]


def seed_for(*parts: int) -> int:
    """A 63-bit seed derived from integers (seed, epoch, rank ...), well mixed."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def steps_per_epoch(dataset: Dataset, world_size: int, batch_size: int) -> int:
    """Training steps per epoch on every rank; TrainerError if a rank's share is smaller than one batch."""
    share = dataset.rows("train") // world_size
    if share < batch_size:
        raise TrainerError(
            f"train.batch_size={batch_size} is larger than a rank's share of the train split "
            f"({dataset.rows('train')} rows / {world_size} ranks = {share}): lower train.batch_size"
        )
    return share // batch_size


def _slices(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Iterator[Batch]:
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


class StreamData:
    """Each rank reads only its part of a split, one shard file at a time, through the etl reader."""

    def __init__(self, dataset: Dataset, world: World, seed: int):
        self.dataset, self.world, self.seed = dataset, world, seed
        self.last_shard: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def _load_train_shard(self, split: str, number: int) -> tuple[np.ndarray, np.ndarray]:
        """`Dataset.load_shard`, except that the last shard read stays loaded: when the next piece (often the
        next epoch's first) is in the same shard, it is not read again. Every shard was verified by the
        start-up scan; at most one shard is kept."""
        if self.last_shard is None or self.last_shard[0] != number:
            self.last_shard = None  # release the old shard before reading the next
            self.last_shard = (number, self.dataset.load_shard(split, number))
        return self.last_shard[1]

    def train_batches(self, epoch: int, batch_size: int, steps: int) -> Iterator[Batch]:
        """`steps` shuffled batches: shard order by (seed, epoch), rows mixed across two shards at a time.

        Each new piece joins the rows carried over from the last one; the pool is shuffled in one copy, half
        of it (in whole batches) is served as slices of that copy and the rest carried on, so the pool never
        holds more than about two shards' rows and a batch costs no copy of its own.
        """
        generator = torch.Generator().manual_seed(seed_for(self.seed, epoch, self.world.rank))
        parts = self.dataset.iter_part("train", self.world.world_size, self.world.rank, epoch, self.seed,
                                       load=self._load_train_shard)
        carry_x = carry_y = None
        served = 0
        for x_np, y_np in parts:
            x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
            if carry_x is not None:
                x, y = torch.cat([carry_x, x]), torch.cat([carry_y, y])
                carry_x = carry_y = None
            order = torch.randperm(len(x), generator=generator)
            x, y = x.index_select(0, order), y.index_select(0, order)
            serve = len(x) // 2 // batch_size * batch_size
            for start in range(0, serve, batch_size):
                if served == steps:
                    return
                yield x[start : start + batch_size], y[start : start + batch_size]
                served += 1
            carry_x, carry_y = x[serve:], y[serve:]
        for start in range(0, (steps - served) * batch_size, batch_size):
            yield carry_x[start : start + batch_size], carry_y[start : start + batch_size]

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """This rank's part of `split` in file order, in batches of up to `batch_size` rows."""
        for x, y in self.dataset.iter_part(split, self.world.world_size, self.world.rank):
            yield from _slices(torch.from_numpy(x), torch.from_numpy(y), batch_size)


class MemoryData:
    """Every rank loads whole splits into memory at once (the naive way, kept for the scale test)."""

    def __init__(self, dataset: Dataset, world: World, seed: int):
        self.world, self.seed = world, seed
        self.splits = {}
        for split in SPLITS:
            x, y = dataset.load_split(split)
            self.splits[split] = torch.from_numpy(x), torch.from_numpy(y)

    def _my_range(self, rows: int) -> slice:
        rank, size = self.world.rank, self.world.world_size
        return slice(rank * rows // size, (rank + 1) * rows // size)

    def train_batches(self, epoch: int, batch_size: int, steps: int) -> Iterator[Batch]:
        """`steps` batches from this rank's slice of one permutation of the split, the same on all ranks."""
        x, y = self.splits["train"]
        generator = torch.Generator().manual_seed(seed_for(self.seed, epoch))
        mine = torch.randperm(len(x), generator=generator)[self._my_range(len(x))]
        for step in range(steps):
            rows = mine[step * batch_size : (step + 1) * batch_size]
            yield x.index_select(0, rows), y.index_select(0, rows)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """The same rows per rank as the stream mode (a contiguous part of the split)."""
        x, y = self.splits[split]
        part = self._my_range(len(x))
        yield from _slices(x[part], y[part], batch_size)


def open_data(mode: str, dataset: Dataset, world: World, seed: int) -> StreamData | MemoryData:
    return (MemoryData if mode == "memory" else StreamData)(dataset, world, seed)


@dataclass(frozen=True)
class TrainTargets:
    """Counts over the whole train split's targets: what the mean and majority-class baselines need."""

    rows: int
    total: float
    positives: int

    @property
    def mean(self) -> float:
        return self.total / self.rows

    @property
    def majority(self) -> float:
        return 1.0 if 2 * self.positives >= self.rows else 0.0


def _check_shard(dataset: Dataset, split: str, number: int, checksum: bool) -> np.ndarray:
    x, y = dataset.load_shard(split, number, checksum=checksum)
    file = dataset.path / dataset.shards(split)[number]["file"]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise EtlError(f"shard {file} holds NaN or infinite values: rebuild the dataset")
    if dataset.task == "classification" and not np.isin(y, (0.0, 1.0)).all():
        raise EtlError(f"shard {file}: classification targets must be 0 or 1: rebuild the dataset")
    return y


def scan_dataset(dataset: Dataset, world: World, checksums: bool) -> TrainTargets:
    """Load every shard once (rank r takes every r-th), raising on all ranks if any shard is bad."""
    shards = [(split, n) for split in SPLITS for n in range(len(dataset.shards(split)))]
    sums = torch.zeros(3, dtype=torch.float64)
    error = None
    for split, number in shards[world.rank :: world.world_size]:
        try:
            y = _check_shard(dataset, split, number, checksums)
        except EtlError as exc:
            error = str(exc)
            break
        if split == "train":
            sums += torch.tensor([len(y), y.sum(dtype=np.float64), (y > 0.5).sum()], dtype=torch.float64)
    errors = [message for message in gather(world, error) if message]
    if errors:
        raise EtlError(errors[0])
    sums = sum_across(world, sums.to(world.device)).cpu()
    return TrainTargets(int(sums[0]), float(sums[1]), int(sums[2]))
