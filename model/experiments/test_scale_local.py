"""Scale test: peak memory and time of the trainer against dataset size, per data mode and world size.

    python model/experiments/test_scale_local.py [--multipliers 1 10 50 200 1000] [--modes memory stream]
        [--world-sizes 1 2] [--epochs 1] [--max-steps 200] [--memory-cap 2GiB] [--out FILE]

For each multiplier K the scaled dataset `<base>-x<K>` is built if missing (create_large_dataset.py).
Then for each data mode and world size the trainer runs for a fixed budget (`--epochs`, at most
`--max-steps` optimiser steps per epoch) under the memory cap, as `python -m trainer` (one process) or
`torchrun --standalone --nproc-per-node N -m trainer`. Each run records wall time, samples/s (from the
trainer's RESULT line), the peak RSS of its whole process tree, its exit status, and whether it was
stopped at the cap (`oom_at_cap`). The rows go to a results JSON (`kind: scale_test`), rewritten after
every run so an interrupted test leaves a valid partial file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from capped_run import run_capped
from results_file import results_document, write_results
from tabulate import tabulate

from etl.cli import Parser, run
from etl.errors import UserError
from etl.paths import PROCESSED_DIR
from etl.reader import open_dataset
from trainer.result_line import parse_result

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "model" / "configs" / "base.yaml"
DEFAULT_OUT = REPO / "model" / "outputs" / "results" / "scale_test_local.json"
RUNS_DIR = REPO / "model" / "outputs" / "scale_runs"
SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
              "g": 2**30, "gb": 10**9, "gib": 2**30}


def parse_size(text: str) -> int:
    """'2GiB', '1500MB', '512m' -> bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        raise UserError(f"--memory-cap {text!r} is not a size such as 2GiB or 1500MB")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def ensure_dataset(base: Path, multiplier: int) -> Path:
    """The dataset for `multiplier`, built (base from the snapshot, scaled copies from the base) if missing."""
    if not (base / "index.json").exists():
        subprocess.run([sys.executable, "-m", "etl", "build", "--source", "snapshot", "--target", "volatility",
                        "--out", str(base)], check=True)
    if multiplier == 1:
        return base
    path = base.parent / f"{base.name}-x{multiplier}"
    if not (path / "index.json").exists():
        subprocess.run([sys.executable, str(REPO / "data-pipeline" / "create_large_dataset.py"), "--base",
                        str(base), "--multiplier", str(multiplier), "--out", str(path)], check=True)
    return path


def trainer_command(config: Path, world_size: int, overrides: dict) -> list[str]:
    launcher = [sys.executable, "-m", "trainer"]
    if world_size > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={world_size}", "-m", "trainer"]
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    return [*launcher, "--config", str(config), *sets]


def last_error(output: str) -> str | None:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error" in line]
    return (errors or lines or [None])[-1]


def describe_failure(outcome, args) -> str | None:
    """Why a run did not finish: the cap, the timeout, or the last error line it printed."""
    if outcome.status == "oom_at_cap":
        return f"stopped at the memory cap of {args.memory_cap / 2**20:.0f} MiB ({outcome.enforced_by})"
    if outcome.status == "timeout":
        return f"stopped after {args.timeout:.0f} s (--timeout)"
    return None if outcome.status == "ok" else last_error(outcome.output)


def measure(args, dataset: Path, multiplier: int, mode: str, world_size: int) -> dict:
    overrides = {"data.path": dataset, "data.mode": mode, "train.epochs": args.epochs,
                 "train.max_steps_per_epoch": args.max_steps, "io.save_dir": args.runs_dir,
                 "io.run_name": f"x{multiplier}-{mode}-w{world_size}"}
    outcome = run_capped(trainer_command(args.config, world_size, overrides), cap_bytes=args.memory_cap,
                         timeout=args.timeout, cwd=REPO)
    result = parse_result(outcome.output) or {}
    index = open_dataset(dataset).index
    return {
        "multiplier": multiplier,
        "mode": mode,
        "world_size": world_size,
        "train_rows": index["splits"]["train"]["rows"],
        "train_mb": round(sum(s["bytes"] for s in index["splits"]["train"]["shards"]) / 1e6, 1),
        "status": outcome.status,
        "returncode": outcome.returncode,
        "seconds": outcome.seconds,
        "peak_rss_mb": outcome.peak_rss_mb,
        "samples_per_second": result.get("samples_per_second"),
        "train_seconds": result.get("train_seconds"),
        "cap_mb": round(args.memory_cap / 2**20),
        "enforced_by": outcome.enforced_by,
        "error": describe_failure(outcome, args),
    }


def main(argv=None) -> None:
    parser = Parser(prog="test_scale_local.py", description=__doc__.splitlines()[0])
    parser.add_argument("--multipliers", type=int, nargs="+", default=[1, 10, 50, 200, 1000])
    parser.add_argument("--modes", nargs="+", choices=("memory", "stream"), default=["memory", "stream"])
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--max-steps", type=int, default=200, help="optimiser steps per epoch at most (default 200)")
    parser.add_argument("--memory-cap", type=parse_size, default=parse_size("2GiB"),
                        help="cap on the run's process tree (default 2GiB)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is stopped (default 600)")
    parser.add_argument("--base", type=Path, default=PROCESSED_DIR / "gspc-volatility", help="the unscaled dataset")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="trainer config")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where the trainer writes its runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    args = parser.parse_args(argv)
    if min(args.multipliers) < 1 or min(args.world_sizes) < 1 or args.epochs < 1 or args.max_steps < 1:
        raise UserError("--multipliers, --world-sizes, --epochs and --max-steps must all be >= 1")
    if not args.config.is_file():
        raise UserError(f"trainer config {args.config} does not exist")
    rows: list[dict] = []
    settings = {"epochs": args.epochs, "max_steps": args.max_steps, "memory_cap_mb": round(args.memory_cap / 2**20)}
    total = len(args.multipliers) * len(args.modes) * len(args.world_sizes)
    for multiplier in sorted(args.multipliers):
        dataset = ensure_dataset(args.base, multiplier)
        for mode in args.modes:
            for world_size in args.world_sizes:
                row = measure(args, dataset, multiplier, mode, world_size)
                rows.append(row)
                write_results(args.out, results_document("scale_test", "local", rows, settings=settings))
                rate = f"{row['samples_per_second']:.0f}/s" if row["samples_per_second"] else "-"
                print(f"[{len(rows)}/{total}] x{multiplier:<5} {mode:<6} world={world_size} {row['status']:<10} "
                      f"peak RSS {row['peak_rss_mb']:7.1f} MB  {row['seconds']:6.1f} s  {rate}", flush=True)
    columns = ("multiplier", "mode", "world_size", "status", "peak_rss_mb", "seconds", "samples_per_second")
    print(tabulate([[row[c] for c in columns] for row in rows], headers=columns))
    print(f"results: {args.out}")


if __name__ == "__main__":
    sys.exit(run(main))
