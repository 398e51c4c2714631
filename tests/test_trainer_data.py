"""Batches: equal step counts on every rank, each row at most once per epoch, seeded shuffles, eval parts."""

import pytest
import torch

from etl import open_dataset
from trainer.data import MemoryData, StreamData, TrainTargets, seed_for, steps_per_epoch
from trainer.distributed import World
from trainer.errors import TrainerError
from trainer_support import make_dataset

UNEVEN = {"train": [50, 7, 93, 1, 30, 64], "validation": [11, 2, 20], "test": [5]}


def world(rank: int, size: int) -> World:
    return World(rank, size, 0, 1, torch.device("cpu"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(make_dataset(tmp_path_factory.mktemp("data") / "uneven", shards=UNEVEN))


def row_keys(x: torch.Tensor) -> list[tuple]:
    return [tuple(row[:2].tolist()) for row in x.flatten(1)]  # first two values identify a row


@pytest.mark.parametrize("mode", [StreamData, MemoryData])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_every_rank_gets_the_same_full_batches_and_no_row_twice(dataset, mode, size):
    batch = 16
    steps = steps_per_epoch(dataset, size, batch)
    assert steps == (245 // size) // batch
    seen = []
    for rank in range(size):
        batches = list(mode(dataset, world(rank, size), seed=3).train_batches(1, batch, steps))
        assert len(batches) == steps and all(len(x) == len(y) == batch for x, y in batches)
        seen += row_keys(torch.cat([x for x, _ in batches]))
    assert len(seen) == len(set(seen)) == steps * batch * size


@pytest.mark.parametrize("mode", [StreamData, MemoryData])
def test_shuffle_is_fixed_by_seed_and_epoch(dataset, mode):
    def order(seed, epoch):
        batches = mode(dataset, world(1, 2), seed=seed).train_batches(epoch, 8, 10)
        return row_keys(torch.cat([x for x, _ in batches]))

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)


def test_stream_mixes_rows_across_shards(dataset):
    """Rows of the rank's shards are interleaved, not served shard after shard in file order."""
    batches = list(StreamData(dataset, world(0, 1), seed=0).train_batches(0, 4, 60))
    x = torch.cat([x for x, _ in batches])
    full = torch.cat([torch.from_numpy(dataset.load_shard("train", n)[0]) for n in range(6)])
    position = {key: i for i, key in enumerate(row_keys(full))}
    served = [position[key] for key in row_keys(x)]
    assert served != sorted(served)


@pytest.mark.parametrize("mode", [StreamData, MemoryData])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_eval_parts_cover_each_row_exactly_once(dataset, mode, size):
    for split in ("validation", "test"):
        rows = []
        for rank in range(size):
            for x, _ in mode(dataset, world(rank, size), seed=0).eval_batches(split, 4):
                assert len(x) <= 4
                rows += row_keys(x)
        expected = row_keys(torch.from_numpy(dataset.load_split(split)[0]))
        assert rows == expected


def test_batch_larger_than_a_ranks_share_is_refused(dataset):
    assert steps_per_epoch(dataset, 3, 81) == 1
    with pytest.raises(TrainerError, match="train.batch_size=82"):
        steps_per_epoch(dataset, 3, 82)


def test_train_targets_and_seeds():
    targets = TrainTargets(rows=4, total=6.0, positives=2)
    assert targets.mean == 1.5 and targets.majority == 1.0
    assert TrainTargets(rows=5, total=0.0, positives=2).majority == 0.0
    assert seed_for(0, 1, 0) != seed_for(0, 0, 1) and seed_for(1, 2) == seed_for(1, 2)
