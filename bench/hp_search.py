"""Benchmark: the 18-trial search, sequential fresh processes against forked workers, in one run.

    .venv/bin/python bench/hp_search.py [--parallel 2] [--trials N]

Runs `hyperparam_search_local.py` on the search space of model/configs/search_space.yaml (the original
grid: lr x hidden x layers, 20 epochs each) twice, as whole commands:
  baseline  --executor process --parallel 1   a fresh `python -m trainer` per trial, one after another
  fast      --executor workers --parallel N   N long-lived workers calling the trainer in-process
Prints both wall times (interpreter start to summary), the ratio (target >= 10x, and the fast way within
20 s on a 2-core machine), and checks that every trial reached the same best validation loss both ways.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / "model" / "experiments" / "hyperparam_search_local.py"


def timed_search(scratch: Path, name: str, *options: str) -> tuple[float, dict]:
    out = scratch / f"{name}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(SEARCH), *options, "--out", str(out), "--runs-dir", str(scratch / name)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2, help="workers of the fast way (default 2)")
    parser.add_argument("--trials", type=int, help="only the first N trials of the grid")
    args = parser.parse_args()
    limit = ["--trials", str(args.trials)] if args.trials else []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base_s, base = timed_search(scratch, "baseline", "--executor", "process", "--parallel", "1", *limit)
        fast_s, fast = timed_search(scratch, "fast", "--executor", "workers", "--parallel", str(args.parallel), *limit)
    same = all(a["best_val_loss"] == b["best_val_loss"] for a, b in zip(base["rows"], fast["rows"], strict=True))
    trials = len(base["rows"])
    print(f"{trials} trials, 20 epochs at most each (early stopping), 2-core machine")
    print(f"  baseline: sequential, a fresh process per trial  {base_s:7.1f} s")
    print(f"  fast:     {args.parallel} forked workers, trainer in-process   {fast_s:7.1f} s")
    print(f"  ratio                                            {base_s / fast_s:7.1f}x   (target >= 10x; fast <= 20 s)")
    print(f"  same best val_loss in every trial: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
