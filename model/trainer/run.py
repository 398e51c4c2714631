"""The training program, top to bottom: check inputs, join the world, train with validation and a
checkpoint every epoch, test the best model, compare with the baselines, report.

Every check of user input (config, dataset, model/task, batch size against a rank's share) happens
before the process group is joined and before anything is written, so bad input ends every rank at once
with one line and leaves no files. Rank 0 alone writes the run folder. Each epoch's randomness (dropout,
shuffling) is seeded from (train.seed, epoch, rank), so a run resumed from a checkpoint at the end of
epoch k replays epochs k+1.. exactly as the uninterrupted run does.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from etl import Dataset, open_dataset
from etl.reader import SPLITS
from trainer.baselines import baseline_predictors
from trainer.config import Config, dump_config
from trainer.data import TrainTargets, open_data, scan_dataset, seed_for, steps_per_epoch
from trainer.distributed import World, close_world, gather, join, on_main, set_threads, sum_across, world_from_env, wrap
from trainer.errors import TrainerError
from trainer.loop import evaluate, flatten_parameters, loss_function, make_optimizer, make_scheduler, train_epoch
from trainer.metrics import new_metrics
from trainer.models import build_model
from trainer.report import device_name, epoch_line, machine, now, peak_rss_mb, where
from trainer.result_line import result_line
from trainer.run_files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    load_tensors,
    save_tensors,
    start_fresh,
    write_json,
    write_text,
)

RESULT_BASELINE_METRIC = {"regression": "mse", "classification": "accuracy"}


@dataclass
class Progress:
    """Training state beyond model, optimizer and scheduler; a checkpoint stores it whole."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    best_state: dict | None = None


def dataset_signature(dataset: Dataset) -> dict:
    """What a checkpoint must agree on with the dataset it resumes on."""
    return {"task": dataset.task, "target": dataset.target, "window": dataset.window,
            "feature_names": dataset.feature_names, "rows": {split: dataset.rows(split) for split in SPLITS}}


def check_task(config: Config, dataset: Dataset) -> str:
    if config.model.task not in ("auto", dataset.task):
        raise TrainerError(
            f"model.task={config.model.task} but {dataset.path} is a {dataset.task} dataset (target "
            f"{dataset.target}): set model.task=auto or {dataset.task}, or point data.path at another dataset"
        )
    for split in ("validation", "test"):
        if dataset.rows(split) == 0:
            raise TrainerError(f"{dataset.path}: the {split} split is empty: rebuild the dataset with more history")
    return dataset.task


def compatibility(config: Config, dataset: Dataset) -> dict:
    """What a checkpoint records about its run, and must match to be resumed."""
    return {"model_config": config.model.model_dump(), "dataset": dataset_signature(dataset),
            "schedule": config.train.schedule}


def check_checkpoint(checkpoint: dict, config: Config, dataset: Dataset, path: Path) -> None:
    for key, value in compatibility(config, dataset).items():
        if checkpoint.get(key) != value:
            raise TrainerError(
                f"checkpoint {path} was written with a different {key} ({checkpoint.get(key)}): restore those "
                "settings, or start a new run with another io.run_name"
            )


def parameters_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def log(world: World, line: str) -> None:
    if world.is_main:
        print(line, flush=True)


def train(config: Config, resume: bool = False) -> dict:
    """Run the whole program on this rank; returns the metrics document (rank 0 also writes it)."""
    started = time.perf_counter()
    world = world_from_env(config.train.device)
    threads = set_threads(config.train.threads, world.local_world_size)
    dataset = open_dataset(config.data.path)
    task = check_task(config, dataset)
    steps = steps_per_epoch(dataset, world.world_size, config.train.batch_size)
    if config.train.max_steps_per_epoch:
        steps = min(steps, config.train.max_steps_per_epoch)
    join(world, config.train.dist_timeout)
    try:
        return _train(config, resume, world, dataset, task, steps, threads, started)
    finally:
        close_world(world)


def _train(config: Config, resume: bool, world: World, dataset: Dataset, task: str, steps: int,
           threads: int, started: float) -> dict:
    targets = scan_dataset(dataset, world, config.data.checksums)
    data = open_data(config.data.mode, dataset, world, config.train.seed)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, dataset.window, dataset.n_features).to(world.device)
    flat = flatten_parameters(model)
    optimizer = make_optimizer(flat, config.train)
    scheduler = make_scheduler(optimizer, config.train)
    progress = Progress()
    run_dir = config.run_dir
    checkpoint_path = run_dir / CHECKPOINT_FILE

    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    checkpoint = None
    if resume or restarted:
        checkpoint = on_main(world, lambda: load_tensors(checkpoint_path) if checkpoint_path.is_file() else None)
    if checkpoint is not None:
        check_checkpoint(checkpoint, config, dataset, checkpoint_path)
        model.load_state_dict(checkpoint["weights"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        progress = Progress(**checkpoint["progress"])
        log(world, f"resumed from {checkpoint_path} after epoch {progress.epoch}")
    elif resume or restarted:
        log(world, f"no checkpoint at {checkpoint_path}: starting from the beginning")
    resumed_from = progress.epoch if checkpoint is not None else None

    def prepare() -> None:
        try:
            if checkpoint is None:
                start_fresh(run_dir)
            write_text(run_dir / CONFIG_FILE, dump_config(config))
        except OSError as exc:
            raise TrainerError(f"cannot write the run folder {run_dir} ({exc.strerror}): check io.save_dir") from None

    on_main(world, prepare)

    net = wrap(world, model)
    loss_fn = loss_function(task)
    show_bar = world.is_main and sys.stdout.isatty()
    for epoch in range(progress.epoch, config.train.epochs):
        if progress.stopped_early:
            break
        torch.manual_seed(seed_for(config.train.seed, epoch, world.rank))
        lr = optimizer.param_groups[0]["lr"]
        batches = data.train_batches(epoch, config.train.batch_size, steps)
        if show_bar:
            batches = tqdm(batches, total=steps, desc=f"epoch {epoch + 1}", leave=False)
        start = time.perf_counter()
        loss_sum, rows = train_epoch(net, flat, optimizer, batches, loss_fn, config.train.grad_clip, world.device)
        seconds = time.perf_counter() - start
        if scheduler is not None:
            scheduler.step()
        totals = torch.stack([loss_sum, torch.tensor(float(rows), dtype=torch.float64, device=world.device)])
        loss_total, samples = sum_across(world, totals).tolist()
        model.eval()
        val = evaluate(model, data.eval_batches("validation", config.eval.batch_size),
                       new_metrics(task, world.device, config.eval.threshold), world)
        record = {"epoch": epoch + 1, "train_loss": loss_total / samples, "val_loss": val["loss"],
                  **{f"val_{name}": value for name, value in val.items() if name != "loss"},
                  "lr": lr, "samples": int(samples), "seconds": seconds, "samples_per_sec": samples / seconds}
        if not (math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"])):
            raise TrainerError(
                f"training diverged at epoch {epoch + 1} (train_loss={record['train_loss']}, "
                f"val_loss={record['val_loss']}): lower train.lr or set train.grad_clip"
            )
        progress.history.append(record)
        progress.epoch = epoch + 1
        if val["loss"] < progress.best_val_loss:
            progress.best_val_loss, progress.best_epoch, progress.bad_epochs = val["loss"], epoch + 1, 0
            progress.best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
            if world.is_main:
                save_tensors(run_dir / MODEL_FILE, {"weights": progress.best_state, "epoch": epoch + 1,
                                                    **compatibility(config, dataset)})
        else:
            progress.bad_epochs += 1
            patience = config.train.early_stop_patience
            progress.stopped_early = bool(patience) and progress.bad_epochs >= patience
        if world.is_main:
            save_tensors(checkpoint_path, {
                "weights": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "progress": vars(progress), **compatibility(config, dataset),  # not asdict: it deep-copies best_state
            })
        log(world, epoch_line(record, task))
    return _finish(config, world, dataset, data, task, model, progress, targets, threads, started, resumed_from)


def _finish(config: Config, world: World, dataset: Dataset, data, task: str, model: torch.nn.Module,
            progress: Progress, targets: TrainTargets, threads: int, started: float,
            resumed_from: int | None) -> dict:
    """Test the best model and the baselines, gather every rank's facts, write metrics.json, print RESULT."""
    final_sha256 = parameters_sha256(model)
    model.load_state_dict(progress.best_state)
    model.eval()

    def test(predict, threshold: float) -> dict:
        batches = data.eval_batches("test", config.eval.batch_size)
        return evaluate(predict, batches, new_metrics(task, world.device, threshold), world)

    test_metrics = test(model, config.eval.threshold)
    baselines = {name: test(predict, 0.5) for name, predict in baseline_predictors(dataset, task, targets).items()}
    ranks = gather(world, {"rank": world.rank, "peak_rss_mb": round(peak_rss_mb(), 1),
                           "final_params_sha256": final_sha256})
    history = progress.history
    train_seconds = sum(record["seconds"] for record in history)
    samples_per_second = sum(record["samples"] for record in history) / train_seconds
    metrics = {
        "kind": "train_run", "where": where(), "created": now(), "machine": machine(),
        "config": config.model_dump(), "run_dir": str(config.run_dir),
        "dataset": {"path": str(dataset.path), **dataset_signature(dataset),
                    "multiplier": dataset.index.get("multiplier", 1)},
        "world_size": world.world_size, "device": device_name(world.device), "torch_version": torch.__version__,
        "threads_per_process": threads, "data_mode": config.data.mode,
        "epochs": len(history), "best_epoch": progress.best_epoch, "best_val_loss": progress.best_val_loss,
        "stopped_early": progress.stopped_early, "resumed_from_epoch": resumed_from, "history": history,
        "test": test_metrics, "baselines": baselines,
        "train_seconds": train_seconds, "samples_per_second": samples_per_second,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_mb": max(rank["peak_rss_mb"] for rank in ranks), "ranks": ranks,
    }
    key = RESULT_BASELINE_METRIC[task]
    summary = {
        "run_dir": str(config.run_dir), "task": task, "target": dataset.target,
        "best_val_loss": progress.best_val_loss, "best_epoch": progress.best_epoch,
        **{f"test_{name}": value for name, value in test_metrics.items()},
        **{f"baseline_{name}_{key}": values[key] for name, values in baselines.items()},
        "epochs": len(history), "train_seconds": train_seconds, "samples_per_second": samples_per_second,
        "peak_rss_mb": metrics["peak_rss_mb"], "world_size": world.world_size, "device": metrics["device"],
    }
    if world.is_main:
        write_json(config.run_dir / METRICS_FILE, metrics)
        print(result_line(summary), flush=True)
    return metrics
