"""Scale a dataset's train split K-fold with noise-injected copies, streaming one shard at a time.

Copy 0 is the train split itself (its shards copied byte for byte); copy k >= 1 adds Gaussian noise of
standard deviation `noise_std` (in normalised feature units) to x, with a generator seeded by
(seed, k, shard), so the output is deterministic. Targets, validation and test are unchanged, so metrics
compare across multipliers. Peak memory is one shard, whatever K is.
"""

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from etl.errors import EtlError
from etl.reader import INDEX_FILE, file_sha256, open_dataset
from etl.writer import DatasetWriter

DEFAULT_NOISE_STD = 0.01


def parse_multiplier(text: str) -> int:
    """K from the command line: an integer >= 1, else EtlError."""
    try:
        value = int(text)
    except ValueError:
        raise EtlError(f"--multiplier must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise EtlError(f"--multiplier must be a whole number >= 1, got {value}")
    return value


def scale_dataset(
    base: Path, out: Path, multiplier: int, *, noise_std: float = DEFAULT_NOISE_STD, seed: int = 0,
    force: bool = False, say=print,
) -> dict:
    """Write `out`: the dataset at `base` with its train split `multiplier` times as large."""
    if multiplier < 1:
        raise EtlError(f"--multiplier must be a whole number >= 1, got {multiplier}")
    if noise_std < 0:
        raise EtlError(f"--noise-std must be >= 0, got {noise_std}")
    dataset = open_dataset(base)
    if dataset.index.get("multiplier", 1) != 1:
        raise EtlError(f"--base {base} is already scaled (multiplier {dataset.index['multiplier']}): "
                       "scale the unscaled dataset instead")
    train = dataset.shards("train")
    total_rows = dataset.rows("train") * multiplier
    started = time.perf_counter()
    progress = tqdm(total=total_rows, unit="row", unit_scale=True, desc=f"x{multiplier}",
                    disable=not sys.stderr.isatty())
    with DatasetWriter(out, force=force) as writer, progress:
        for number, entry in enumerate(train):
            dataset.load_shard("train", number)  # verify shape, dtype and rows before copying
            writer.copy_shard("train", base / entry["file"], entry)
            progress.update(entry["rows"])
        for copy in range(1, multiplier):
            for number in range(len(train)):
                x, y = dataset.load_shard("train", number)
                noise = np.random.default_rng([seed, copy, number]).standard_normal(x.shape, dtype=np.float32)
                writer.write_shard("train", x + np.float32(noise_std) * noise, y)
                progress.update(len(x))
                progress.set_postfix_str(f"{writer.bytes_written / 1e6 / (time.perf_counter() - started):.0f} MB/s")
        for split in ("validation", "test"):
            for number, entry in enumerate(dataset.shards(split)):
                dataset.load_shard(split, number)
                writer.copy_shard(split, base / entry["file"], entry)
        fields = {k: v for k, v in dataset.index.items() if k not in ("format_version", "splits")}
        fields.update(multiplier=multiplier, noise_std=noise_std, seed=seed,
                      base={"path": str(base), "index_sha256": file_sha256(base / INDEX_FILE)})
        index = writer.finish(fields)
    seconds = time.perf_counter() - started
    say(f"wrote {out}: {total_rows} train rows, {writer.bytes_written / 1e6:.1f} MB in {seconds:.1f} s "
        f"({writer.bytes_written / 1e6 / max(seconds, 1e-9):.0f} MB/s)")
    return index
