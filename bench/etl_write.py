"""Benchmark: shard writing against raw `np.savez`, and peak memory of scaling against K.

    .venv/bin/python bench/etl_write.py [--rounds 5] [--shards 200] [--multipliers 1 100 1000]

1. Bandwidth. The train shards of the default volatility dataset (built from the shipped snapshot) are
   written `--shards` times by `DatasetWriter.write_shard` (npz + sha256 + index bookkeeping) and by a
   plain `np.savez` to a path, alternating in `--rounds` rounds. Prints the median MB/s of each and the
   ratio (target >= 0.5: the format's guarantees cost at most half the raw speed).
2. Memory. `create_large_dataset.py --multiplier K` runs in a subprocess for each K; its peak RSS is read
   from the kernel (wait4 rusage). Prints RSS, output size and the ratio to K = 1 (target <= 1.2).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from etl import open_dataset
from etl.build import build_dataset
from etl.paths import SNAPSHOT_FILE
from etl.sources import read_price_csv
from etl.writer import DatasetWriter

SCALER = Path(__file__).resolve().parents[1] / "data-pipeline" / "create_large_dataset.py"


def write_ours(shards, out: Path, count: int) -> float:
    started = time.perf_counter()
    with DatasetWriter(out) as writer:
        for i in range(count):
            writer.write_shard("train", *shards[i % len(shards)])
        writer.finish({})
    return time.perf_counter() - started


def write_raw(shards, out: Path, count: int) -> float:
    out.mkdir()
    started = time.perf_counter()
    for i in range(count):
        x, y = shards[i % len(shards)]
        np.savez(out / f"train-{i:05d}.npz", x=x, y=y)
    return time.perf_counter() - started


def peak_rss(base: Path, out: Path, multiplier: int) -> tuple[float, float, float]:
    """(peak RSS MB, seconds, output MB) of one scaling run."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(SCALER), "--base", str(base), "--multiplier", str(multiplier),
                             "--out", str(out)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"scaling with K={multiplier} failed")
    size = sum(f.stat().st_size for f in out.iterdir())
    return usage.ru_maxrss / 1024, seconds, size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shards", type=int, default=200)
    parser.add_argument("--multipliers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        scratch = Path(scratch)
        prices, _ = read_price_csv(SNAPSHOT_FILE)
        base = scratch / "base"
        build_dataset(prices, {"provider": "snapshot"}, base)
        dataset = open_dataset(base)
        shards = [dataset.load_shard("train", i) for i in range(len(dataset.shards("train")))]
        megabytes = sum(x.nbytes + y.nbytes for x, y in (shards[i % len(shards)] for i in range(args.shards))) / 1e6
        ours, raw = [], []
        for round_ in range(args.rounds):
            ours.append(megabytes / write_ours(shards, scratch / f"ours-{round_}", args.shards))
            raw.append(megabytes / write_raw(shards, scratch / f"raw-{round_}", args.shards))
        ours_mbs, raw_mbs = statistics.median(ours), statistics.median(raw)
        print(f"shard writing, {args.shards} shards ({megabytes:.0f} MB) x {args.rounds} rounds, median:")
        print(f"  DatasetWriter.write_shard {ours_mbs:8.0f} MB/s")
        print(f"  np.savez (baseline)       {raw_mbs:8.0f} MB/s")
        print(f"  ratio                     {ours_mbs / raw_mbs:8.2f}   (target >= 0.5)")
        print("create_large_dataset.py peak RSS:")
        first = None
        for multiplier in args.multipliers:
            rss, seconds, size = peak_rss(base, scratch / f"x{multiplier}", multiplier)
            first = first or rss
            print(f"  K={multiplier:<6} peak RSS {rss:7.1f} MB  ({rss / first:.2f}x K={args.multipliers[0]})  "
                  f"wrote {size:9.1f} MB in {seconds:6.1f} s")
            subprocess.run(["rm", "-rf", str(scratch / f"x{multiplier}")], check=True)


if __name__ == "__main__":
    main()
