"""Training throughput: the trainer's epoch loop against the loop a user would write first.

The loops train the same model (same initial weights) with MSE on the same train split, in this one
process, at the same batch size, with the same optimiser (AdamW, same lr and weight decay):

  naive        DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True); AdamW(model.parameters(), ...);
               zero_grad / loss / backward / step; `loss.item()` summed per step
  naive+fused  the same loop with AdamW(..., fused=True): what the fused optimiser alone buys
  trainer      trainer.data.StreamData (its own shards read from disk, each pool of rows shuffled in one
               copy, batches cut as slices of it; `--mode memory`: the whole split, index_select per batch)
               + trainer.loop.train_epoch (parameters in one flat tensor, fused AdamW through torch's
               functional API, the config's gradient clipping, loss summed on the device, no host sync)

Epochs of the loops take turns (after one warm-up epoch each), so background load hits all alike. Prints,
at batch 64 and at the trainer's default batch size, each loop's samples/s over its median epoch and the
ratios to the naive loop: the median over the rounds of (samples/s / naive samples/s of the same round),
so a slow spell of a shared machine mostly cancels out of a ratio.

  python bench/trainer_throughput.py [--data DIR] [--epochs 30] [--mode stream|memory] [--device cpu|cuda]
                                     [--threads N] [--profile]

`--profile` also runs the trainer's loop alone for `--epochs` epochs at the default batch size under
torch.profiler and prints where its time goes, op by op.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from etl import EtlError, open_dataset
from trainer.config import Config
from trainer.data import MemoryData, StreamData, steps_per_epoch
from trainer.distributed import World, resolve_device, set_threads
from trainer.errors import TrainerError
from trainer.loop import flatten_parameters, make_optimizer, train_epoch
from trainer.models import build_model

REPO = Path(__file__).resolve().parents[1]
LOOPS = ("naive", "naive+fused", "trainer")


def naive_epoch(model, optimizer, loader, device) -> int:
    model.train()
    rows, total = 0, 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        rows += len(y)
    return rows


def measure(dataset, config: Config, mode: str, batch_size: int, epochs: int, device: torch.device,
            profile: bool = False) -> dict[str, tuple[float, float]]:
    """{loop: (median samples/s, median ratio to naive)} at `batch_size` over `epochs` rounds; with `profile`,
    then prints the op table of the trainer's loop run alone for `epochs` epochs."""
    x, y = (torch.from_numpy(a) for a in dataset.load_split("train"))
    torch.manual_seed(0)
    first = build_model(config.model, dataset.window, dataset.n_features)
    models = {name: build_model(config.model, dataset.window, dataset.n_features).to(device) for name in LOOPS}
    for model in models.values():
        model.load_state_dict(first.state_dict())
    adamw = {"lr": config.train.lr, "weight_decay": config.train.weight_decay}
    naive_optimizers = {"naive": torch.optim.AdamW(models["naive"].parameters(), **adamw),
                        "naive+fused": torch.optim.AdamW(models["naive+fused"].parameters(), **adamw, fused=True)}
    flat = flatten_parameters(models["trainer"])
    trainer_optimizer = make_optimizer(flat, config.train)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    data = (MemoryData if mode == "memory" else StreamData)(dataset, World(0, 1, 0, 1, device), seed=0)
    steps = steps_per_epoch(dataset, 1, batch_size)

    def run(name: str, epoch: int) -> int:
        if name == "trainer":
            return train_epoch(models[name], flat, trainer_optimizer, data.train_batches(epoch, batch_size, steps),
                               F.mse_loss, config.train.grad_clip, device)[1]
        return naive_epoch(models[name], naive_optimizers[name], loader, device)

    for name in LOOPS:  # warm-up
        run(name, 0)
    rates = {name: [] for name in LOOPS}
    for epoch in range(1, epochs + 1):
        for name in LOOPS:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            rows = run(name, epoch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(rows / (time.perf_counter() - start))
    if profile:
        with torch.profiler.profile() as profiler:
            for epoch in range(epochs):
                run("trainer", epoch)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return {name: (statistics.median(rates[name]),
                   statistics.median(a / b for a, b in zip(rates[name], rates["naive"], strict=True)))
            for name in LOOPS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / Config().data.path), help="dataset folder (format v1)")
    parser.add_argument("--epochs", type=int, default=30, help="timed rounds (one epoch of each loop) per batch size")
    parser.add_argument("--mode", choices=("stream", "memory"), default="stream", help="the trainer's data.mode")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the trainer's choice)")
    parser.add_argument("--profile", action="store_true", help="print the op table of the trainer's loop")
    args = parser.parse_args(argv)
    try:
        dataset = open_dataset(args.data)
        device = resolve_device(args.device, 0)
    except (EtlError, TrainerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    threads = set_threads(args.threads, 1)
    config = Config()
    print(f"dataset {args.data}: {dataset.rows('train')} train rows, window {dataset.window}, "
          f"{dataset.n_features} features; model {config.model.kind} hidden={config.model.hidden} "
          f"layers={config.model.layers}; data.mode {args.mode}; device {device}; torch {torch.__version__}; "
          f"{threads} thread(s)")
    print(f"{'batch':>6} " + " ".join(f"{name + ' samples/s':>23}" for name in LOOPS))
    for batch_size in sorted({64, config.train.batch_size}):
        profile = args.profile and batch_size == config.train.batch_size
        result = measure(dataset, config, args.mode, batch_size, args.epochs, device, profile)
        cells = [f"{result[name][0]:>14,.0f}" + (f" ({result[name][1]:.2f}x)" if name != "naive" else " " * 8)
                 for name in LOOPS]
        print(f"{batch_size:>6} " + " ".join(f"{cell:>23}" for cell in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
