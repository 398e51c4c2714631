"""Hyperparameter search on this machine: the original 18-trial grid, or random trials, three ways.

    python model/experiments/hyperparam_search_local.py [--space model/configs/search_space.yaml]
        [--strategy grid|random] [--trials N] [--parallel N] [--executor process|workers]
        [--epochs N] [--resume] [--out FILE] [--set section.key=value ...]

Executors (what each trial computes is the same: the trainer on the trial's config):
  process  a fresh `python -m trainer` interpreter per trial, `--parallel N` of them at once
           (`--parallel 1` is the sequential baseline: how a search is first written);
  workers  N long-lived worker processes, forked from this one after it imported the trainer, that
           call the trainer in-process for trial after trial.
Each process gets cores / N torch threads. A failed trial is recorded with its error and the search
goes on; Ctrl-C stops it and leaves a valid partial summary; `--resume` skips finished trials. The
summary is a results JSON (`kind: hp_search`, `where: local`) naming the best trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path

from results_file import results_document, write_results
from search_space import STRATEGIES, load_search_space

from etl.cli import Parser, run
from etl.errors import UserError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SPACE = REPO / "model" / "configs" / "search_space.yaml"
RESULTS_DIR = REPO / "model" / "outputs" / "results"
RUNS_DIR = REPO / "model" / "outputs" / "search"
EXECUTORS = ("process", "workers")


def mode_name(executor: str, parallel: int) -> str:
    if executor == "process":
        return "sequential" if parallel == 1 else f"parallel-{parallel}"
    return f"workers-{parallel}"


def trial_settings(overrides: dict, extra: list[str], runs_dir: Path, trial: int, threads: int) -> list[str]:
    """The trainer's `section.key=value` settings for one trial."""
    settings = [f"{key}={value}" for key, value in overrides.items()] + list(extra)
    return settings + [f"io.save_dir={runs_dir}", f"io.run_name=trial-{trial:03d}", f"train.threads={threads}"]


def row_from(trial: int, overrides: dict, metrics: dict | None, seconds: float, error: str | None) -> dict:
    """One trial's row of the summary, from the trainer's metrics document."""
    if metrics is None:
        return {"trial": trial, "params": overrides, "status": "failed", "error": error, "best_val_loss": None,
                "test": {}, "epochs": None, "seconds": round(seconds, 2)}
    return {
        "trial": trial,
        "params": overrides,
        "status": "ok",
        "error": None,
        "best_val_loss": metrics["best_val_loss"],
        "test": {f"test_{name}": value for name, value in metrics["test"].items()},
        "baselines": metrics.get("baselines"),
        "epochs": metrics["epochs"],
        "seconds": round(seconds, 2),
        "history": [{k: h.get(k) for k in ("epoch", "train_loss", "val_loss")} for h in metrics["history"]],
    }


def preload_trainer() -> None:
    """Import the trainer, and torch._dynamo (which torch imports when the first optimizer is built; seconds of
    start-up), in this process before the workers are forked: they start with both loaded and share those
    pages, rather than each importing them at the same time on its own core."""
    import torch._dynamo  # noqa: F401

    import trainer.run  # noqa: F401

    gc.freeze()  # what is loaded now is never collected: the workers' collections skip it, and leave its pages shared


def run_in_process(config_file: str, settings: list[str], trial: int, overrides: dict, log: str) -> dict:
    """Worker side: the trainer, in this (long-lived) process, its output to `log`."""
    from trainer.config import load_config
    from trainer.run import train

    started = time.perf_counter()
    with open(log, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            metrics = train(load_config(config_file, settings))
        except Exception as exc:  # a failed trial is recorded and the search goes on
            return row_from(trial, overrides, None, time.perf_counter() - started, str(exc).splitlines()[0])
    return row_from(trial, overrides, metrics, time.perf_counter() - started, None)


def run_as_process(config_file: str, settings: list[str], trial: int, overrides: dict, log: str,
                   threads: int) -> dict:
    """A fresh `python -m trainer` for the trial; its exit status and metrics.json give the row."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "trainer", "--config", config_file, *(a for s in settings for a in ("--set", s))]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(log, "w") as sink:
        proc = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        output = Path(log).read_text(errors="replace").splitlines()
        error = next((line for line in reversed(output) if line.strip()), f"exit status {proc.returncode}")
        return row_from(trial, overrides, None, seconds, error)
    metrics = json.loads((Path(log).with_suffix("") / "metrics.json").read_text())  # run folder beside the log
    return row_from(trial, overrides, metrics, seconds, None)


def previous_rows(out: Path) -> dict[int, dict]:
    """Finished trials of an earlier run of the same search (for --resume)."""
    try:
        document = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {row["trial"]: row for row in document.get("rows", []) if row.get("status") == "ok"}


class Search:
    """Runs the trials on an executor, keeps the rows, and rewrites the summary after each trial."""

    def __init__(self, args, trials: list[dict], config_file: Path):
        self.args, self.trials, self.config_file = args, trials, config_file
        self.mode = mode_name(args.executor, args.parallel)
        self.runs_dir = args.runs_dir / self.mode
        self.threads = max(1, (os.cpu_count() or 1) // args.parallel)
        self.rows = previous_rows(args.out) if args.resume else {}
        self.started = time.perf_counter()
        self.carried_seconds = 0.0
        if args.resume and args.out.exists():
            with contextlib.suppress(OSError, json.JSONDecodeError):
                self.carried_seconds = float(json.loads(args.out.read_text()).get("wall_seconds") or 0)

    def submit(self, pool, trial: int) -> Future:
        settings = trial_settings(self.trials[trial], self.args.set, self.runs_dir, trial, self.threads)
        log = str(self.runs_dir / f"trial-{trial:03d}.log")
        if self.args.executor == "workers":
            return pool.submit(run_in_process, str(self.config_file), settings, trial, self.trials[trial], log)
        return pool.submit(run_as_process, str(self.config_file), settings, trial, self.trials[trial], log,
                           self.threads)

    def summary(self, interrupted: bool = False) -> dict:
        rows = [self.rows[t] for t in sorted(self.rows)]
        done = [r for r in rows if r["status"] == "ok" and r["best_val_loss"] is not None]
        best = min(done, key=lambda r: r["best_val_loss"], default=None)
        return results_document(
            "hp_search", "local", rows, strategy=self.args.strategy, mode=self.mode, executor=self.args.executor,
            parallel=self.args.parallel, space=str(self.args.space), total=len(self.trials),
            wall_seconds=round(self.carried_seconds + time.perf_counter() - self.started, 2),
            interrupted=interrupted, best={k: best[k] for k in ("trial", "params", "best_val_loss")} if best else None)

    def record(self, row: dict) -> None:
        self.rows[row["trial"]] = row
        write_results(self.args.out, self.summary())
        done = [r for r in self.rows.values() if r["status"] == "ok"]
        best = min(done, key=lambda r: r["best_val_loss"], default=None)
        outcome = f"val_loss={row['best_val_loss']:.5f}" if row["status"] == "ok" else f"FAILED: {row['error']}"
        best_text = f"best {best['best_val_loss']:.5f} (trial {best['trial']})" if best else "no trial done yet"
        print(f"[{len(self.rows)}/{len(self.trials)}] trial {row['trial']} {json.dumps(row['params'])} {outcome} "
              f"({row['seconds']:.1f} s); elapsed {time.perf_counter() - self.started:.1f} s; {best_text}",
              flush=True)

    def run(self) -> dict:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        pending = [t for t in range(len(self.trials)) if t not in self.rows]
        if self.args.executor == "workers":
            preload_trainer()
            pool = ProcessPoolExecutor(self.args.parallel, mp_context=multiprocessing.get_context("fork"))
        else:
            pool = ThreadPoolExecutor(self.args.parallel)
        futures: set[Future] = set()
        try:
            while pending or futures:
                while pending and len(futures) < self.args.parallel:
                    futures.add(self.submit(pool, pending.pop(0)))
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    self.record(future.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            document = self.summary(interrupted=True)
            write_results(self.args.out, document)
            print(f"interrupted: {len(self.rows)} of {len(self.trials)} trials recorded in {self.args.out}; "
                  "run again with --resume to finish", file=sys.stderr)
            raise
        pool.shutdown()
        document = self.summary()
        write_results(self.args.out, document)
        return document


def main(argv=None) -> None:
    parser = Parser(prog="hyperparam_search_local.py", description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search-space YAML")
    parser.add_argument("--strategy", choices=STRATEGIES, default="grid")
    parser.add_argument("--trials", type=int, help="random: how many trials; grid: only the first N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    parser.add_argument("--parallel", type=int, default=1, help="trials at once (default 1: sequential)")
    parser.add_argument("--executor", choices=EXECUTORS, default="process",
                        help="process: a fresh interpreter per trial; workers: long-lived worker processes")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: the search space's)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="trainer setting for every trial (repeatable), e.g. --set train.epochs=3")
    parser.add_argument("--resume", action="store_true", help="skip the trials --out already holds as finished")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where trial runs and logs go")
    parser.add_argument("--out", type=Path,
                        help="summary JSON (default: model/outputs/results/hp_search_local_<mode>.json)")
    args = parser.parse_args(argv)
    if args.parallel < 1:
        raise UserError(f"--parallel must be >= 1, got {args.parallel}")
    if any("=" not in s or "." not in s.split("=", 1)[0] for s in args.set):
        raise UserError("--set takes section.key=value")
    space = load_search_space(args.space)
    searched = {*space.parameters, "train.epochs"}
    clash = [s for s in args.set if s.split("=", 1)[0] in searched]
    if clash:
        raise UserError(f"--set {clash[0]} changes a searched key: edit the search space (or use --epochs)")
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError(f"--epochs must be >= 1, got {args.epochs}")
        space = dataclasses.replace(space, epochs=args.epochs)
    trials = space.trials(args.strategy, args.trials, args.seed)
    if not space.base_config.is_file():
        raise UserError(f"base config {space.base_config} named by {args.space} does not exist")
    args.out = args.out or RESULTS_DIR / f"hp_search_local_{mode_name(args.executor, args.parallel)}.json"
    print(f"search: {len(trials)} trials ({args.strategy}), {mode_name(args.executor, args.parallel)}, "
          f"summary in {args.out}", flush=True)
    document = Search(args, trials, space.base_config).run()
    best = document["best"]
    ok = sum(r["status"] == "ok" for r in document["rows"])
    print(f"done: {ok}/{len(trials)} trials ok in {document['wall_seconds']:.1f} s; "
          f"best trial {best['trial'] if best else '-'} {json.dumps(best['params']) if best else ''} "
          f"val_loss={best['best_val_loss'] if best else '-'}")


if __name__ == "__main__":
    sys.exit(run(main))
