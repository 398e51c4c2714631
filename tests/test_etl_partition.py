"""The reader hands each rank its own part: every row exactly once per epoch, for any world size."""

import numpy as np
import pytest

from etl import open_dataset
from etl.writer import DatasetWriter


@pytest.fixture(scope="module")
def uneven_dataset(tmp_path_factory):
    """Train rows 0..1036 in shards of 100 (the last one 37 rows); y holds the row number."""
    out = tmp_path_factory.mktemp("ds") / "uneven"
    with DatasetWriter(out, shard_rows=100) as writer:
        for split, rows in (("train", 1037), ("validation", 50), ("test", 3)):
            y = np.arange(rows, dtype=np.float32)
            writer.add(split, np.repeat(y[:, None, None], 4, axis=1).repeat(2, axis=2), y)
        writer.finish({"task": "regression", "target": "volatility", "window": 4, "horizon": 1,
                       "feature_names": ["a", "b"], "normalization": {"mean": [0, 0], "std": [1, 1]}})
    return open_dataset(out)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("epoch", [None, 0, 7])
def test_every_row_read_by_exactly_one_rank(uneven_dataset, world_size, epoch):
    for split in ("train", "validation", "test"):
        seen = []
        for rank in range(world_size):
            rows = np.concatenate([y for _, y in uneven_dataset.iter_part(split, world_size, rank, epoch, seed=3)]
                                  or [np.empty(0, np.float32)])
            assert len(rows) == uneven_dataset.rows_for_rank(split, world_size, rank)
            seen.append(rows)
        allrows = np.sort(np.concatenate(seen))
        np.testing.assert_array_equal(allrows, np.arange(uneven_dataset.rows(split)))
        sizes = [len(s) for s in seen]
        assert max(sizes) - min(sizes) <= 1


def test_more_ranks_than_shards(uneven_dataset):
    # validation has one shard of 50 rows, test one of 3: 5 ranks still split them exactly
    assert len(uneven_dataset.shards("test")) == 1
    parts = [uneven_dataset.partition("test", 5, r) for r in range(5)]
    assert sum(p.stop - p.start for part in parts for p in part) == 3
    assert sum(1 for part in parts if not part) == 2


def test_shard_order_is_seeded_per_epoch_and_deterministic(uneven_dataset):
    order = uneven_dataset.shard_order
    assert order("train", None, 0) == list(range(11))
    assert order("train", 1, 0) == order("train", 1, 0)
    assert order("train", 1, 0) != order("train", 2, 0)
    assert sorted(order("train", 5, 9)) == list(range(11))


def test_a_rank_loads_only_the_shards_its_part_overlaps(uneven_dataset, monkeypatch):
    loaded = []
    real = uneven_dataset.load_shard
    monkeypatch.setattr(uneven_dataset, "load_shard", lambda s, n, **k: loaded.append(n) or real(s, n, **k))
    for _ in uneven_dataset.iter_part("train", 4, 1, epoch=None):
        pass
    assert loaded == [2, 3, 4, 5]  # rows 259..517 of 1037
