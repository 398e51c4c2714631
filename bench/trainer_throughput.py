"""Training throughput: the trainer's epoch loop against the loop a user would write first.

Both loops train the same model (same initial weights) with MSE on the same train split, in this one
process, at the same batch size, with the same optimiser (AdamW, same lr and weight decay):

  naive    DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True); AdamW(model.parameters(), ...);
           zero_grad / loss / backward / step; `loss.item()` summed per step
  trainer  trainer.data.StreamData (its own shards read from disk each epoch, shuffled, batches cut with
           index_select) + trainer.loop.train_epoch (parameters in one flat tensor, fused AdamW, the
           config's gradient clipping, loss summed on the device, no per-step host sync)

Epochs of the two loops alternate (after one warm-up epoch each), so background load hits both alike.
Prints samples/s of both and their ratio at batch 64 and at the trainer's default batch size.

  python bench/trainer_throughput.py [--data DIR] [--epochs 3] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
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


def measure(dataset, config: Config, mode: str, batch_size: int, epochs: int,
            device: torch.device) -> tuple[float, float]:
    """(naive samples/s, trainer samples/s) at `batch_size`, over `epochs` alternating timed epochs."""
    x, y = (torch.from_numpy(a) for a in dataset.load_split("train"))
    torch.manual_seed(0)
    first = build_model(config.model, dataset.window, dataset.n_features)
    models = {name: build_model(config.model, dataset.window, dataset.n_features).to(device) for name in ("n", "t")}
    for model in models.values():
        model.load_state_dict(first.state_dict())
    naive_optimizer = torch.optim.AdamW(models["n"].parameters(), lr=config.train.lr,
                                        weight_decay=config.train.weight_decay)
    flat = flatten_parameters(models["t"])
    trainer_optimizer = make_optimizer(flat, config.train)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    world = World(0, 1, 0, 1, device)
    data = (MemoryData if mode == "memory" else StreamData)(dataset, world, seed=0)
    steps = steps_per_epoch(dataset, 1, batch_size)

    def run_trainer(epoch: int) -> int:
        _, rows = train_epoch(models["t"], flat, trainer_optimizer, data.train_batches(epoch, batch_size, steps),
                              F.mse_loss, config.train.grad_clip, device)
        return rows

    loops = {"naive": lambda epoch: naive_epoch(models["n"], naive_optimizer, loader, device), "trainer": run_trainer}
    for run in loops.values():  # warm-up
        run(0)
    seconds, rows = dict.fromkeys(loops, 0.0), dict.fromkeys(loops, 0)
    for epoch in range(1, epochs + 1):
        for name, run in loops.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            rows[name] += run(epoch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name] += time.perf_counter() - start
    return rows["naive"] / seconds["naive"], rows["trainer"] / seconds["trainer"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / Config().data.path), help="dataset folder (format v1)")
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs per loop and batch size")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the trainer's choice)")
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
          f"layers={config.model.layers}; device {device}; torch {torch.__version__}; {threads} thread(s)")
    print(f"{'batch':>6} {'data.mode':>9} {'naive samples/s':>16} {'trainer samples/s':>18} {'ratio':>6}")
    for batch_size in sorted({64, config.train.batch_size}):
        for mode in ("stream", "memory"):
            naive, ours = measure(dataset, config, mode, batch_size, args.epochs, device)
            print(f"{batch_size:>6} {mode:>9} {naive:>16,.0f} {ours:>18,.0f} {ours / naive:>5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
