"""The training step and evaluation pass, shared by the trainer, the DDP tests and the throughput bench.

`train_epoch` is the hot loop: no per-step host sync (the loss is summed on the device), fused AdamW,
batches already cut as tensors. `evaluate` runs any predictor (the model, or a baseline) over batches
and returns metrics reduced across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import TrainConfig
from trainer.distributed import World
from trainer.metrics import ClassificationMetrics, RegressionMetrics

Batch = tuple[torch.Tensor, torch.Tensor]


def loss_function(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE for regression, BCE with logits for classification."""
    return F.binary_cross_entropy_with_logits if task == "classification" else F.mse_loss


def make_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW with `train.lr` and `train.weight_decay`, using the fused kernel (one op per step for all params)."""
    return torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig):
    """A per-epoch cosine decay to 0 over `train.epochs` when `train.schedule` is cosine, else None."""
    if train.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs)
    return None


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    grad_clip: float,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """One pass over `batches`; returns (sum over rows of the loss as a float64 tensor, rows seen)."""
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    rows = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(parameters, grad_clip, foreach=True)
        optimizer.step()
        loss_sum.add_(loss.detach(), alpha=len(y))
        rows += len(y)
    return loss_sum, rows


@torch.inference_mode()
def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[Batch],
    metrics: RegressionMetrics | ClassificationMetrics,
    world: World,
) -> dict[str, float]:
    """Metrics of `predict` over this rank's `batches`, summed over all ranks."""
    for x, y in batches:
        metrics.add(predict(x.to(world.device)), y.to(world.device))
    return metrics.result(world)
