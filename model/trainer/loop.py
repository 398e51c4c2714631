"""The training step and evaluation pass, shared by the trainer, the DDP tests and the throughput bench.

`train_epoch` is the hot loop: no per-step host sync (the loss is summed on the device), batches already cut
as tensors, and the model's parameters and gradients flattened into one tensor each (`flatten_parameters`),
so zeroing the gradients, clipping their norm and the fused AdamW step are a few whole-tensor ops instead
of a few ops per parameter; the step itself goes through torch's functional AdamW (`adamw_step`).
`evaluate` runs any predictor (the model, or a baseline) over batches and returns metrics reduced across
ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adamw import adamw

from trainer.config import TrainConfig
from trainer.distributed import World
from trainer.metrics import ClassificationMetrics, RegressionMetrics

Batch = tuple[torch.Tensor, torch.Tensor]


def loss_function(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE for regression, BCE with logits for classification."""
    return F.binary_cross_entropy_with_logits if task == "classification" else F.mse_loss


def flatten_parameters(model: nn.Module) -> nn.Parameter:
    """Move every parameter of `model` into one flat Parameter, and its gradient into the flat one's `.grad`.

    Each module parameter becomes a view of the flat tensor (values unchanged), and its `.grad` a view of the
    flat gradient, which autograd (and DDP) then fill in place. Call it after `model.to(device)`; zero the
    gradients with `flat.grad.zero_()`, never by setting them to None.
    """
    parameters = list(model.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in parameters]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in parameters:
        size = p.numel()
        p.data = flat.data[offset : offset + size].view_as(p)
        p.grad = flat.grad[offset : offset + size].view_as(p)
        offset += size
    return flat


def make_optimizer(flat: nn.Parameter, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW with `train.lr` and `train.weight_decay` over the flat parameter, with the fused kernel."""
    return torch.optim.AdamW([flat], lr=train.lr, weight_decay=train.weight_decay, fused=True)


def adamw_step(optimizer: torch.optim.AdamW) -> None:
    """`optimizer.step()` for the one-parameter fused AdamW of `make_optimizer`, through torch's functional
    `torch.optim.adamw.adamw`: the same fused kernel on the optimizer's own state and hyperparameters (so
    schedulers, `state_dict` and checkpoints see no difference), without the per-call bookkeeping of
    `Optimizer.step` (hooks, profiler scope, grouping tensors by device), which on a small model costs several
    times the kernel. The first step creates the state."""
    group = optimizer.param_groups[0]
    (flat,) = group["params"]
    state = optimizer.state[flat]
    if not state:
        optimizer.step()
        return
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        adamw([flat], [flat.grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [state["step"]],
              fused=True, amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
              weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)


def make_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig):
    """A per-epoch cosine decay to 0 over `train.epochs` when `train.schedule` is cosine, else None."""
    if train.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs)
    return None


def clip_gradient(grad: torch.Tensor, max_norm: float) -> None:
    """What nn.utils.clip_grad_norm_ does, on one flat gradient. On the CPU reading the norm costs nothing,
    so the gradient is scaled only when it is over the limit (one op instead of four); on a GPU the scale
    is computed on the device, so no step waits for the host."""
    norm = torch.linalg.vector_norm(grad)
    if grad.device.type == "cpu":
        total = float(norm) + 1e-6
        if total > max_norm:
            grad.mul_(max_norm / total)
    else:
        grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))


def train_epoch(
    model: nn.Module,
    flat: nn.Parameter,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    grad_clip: float,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """One pass over `batches`, updating `model` whose parameters `flat` holds (see `flatten_parameters`);
    returns (the sum over rows of the loss, as a float64 tensor, and the number of rows)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    rows = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(model(x), y)
        flat.grad.zero_()
        loss.backward()
        if grad_clip:
            clip_gradient(flat.grad, grad_clip)
        adamw_step(optimizer)
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
