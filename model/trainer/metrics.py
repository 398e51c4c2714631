"""Evaluation metrics kept as sums and counts, so that N ranks report exactly what one process would.

A metrics object accumulates float64 sums over batches on one rank; `result(world)` adds them up across
ranks (one all-reduce) and only then divides. Regression: loss (= MSE), MSE, MAE, R². Classification
(predictions are logits): loss (mean BCE), accuracy, precision, recall, F1 at `threshold`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.distributed import World, sum_across


class RegressionMetrics:
    names = ("loss", "mse", "mae", "r2")

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)  # n, Σe², Σ|e|, Σy, Σy²

    def add(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        error = prediction.double() - target.double()
        target = target.double()
        self.sums += torch.stack([
            torch.tensor(float(len(target)), dtype=torch.float64, device=self.sums.device),
            error.square().sum(), error.abs().sum(), target.sum(), target.square().sum(),
        ])

    def result(self, world: World) -> dict[str, float]:
        n, squared, absolute, total, total_sq = sum_across(world, self.sums).tolist()
        mse = squared / n
        spread = total_sq - total * total / n
        return {"loss": mse, "mse": mse, "mae": absolute / n, "r2": 1.0 - squared / spread if spread else 0.0}


class ClassificationMetrics:
    names = ("loss", "accuracy", "precision", "recall", "f1")

    def __init__(self, device: torch.device, threshold: float):
        self.threshold = threshold
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)  # ΣBCE, TP, FP, TN, FN

    def add(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        logits, target = logits.double(), target.double()
        predicted = torch.sigmoid(logits) >= self.threshold
        actual = target > 0.5
        self.sums += torch.stack([
            F.binary_cross_entropy_with_logits(logits, target, reduction="sum"),
            (predicted & actual).sum(), (predicted & ~actual).sum(),
            (~predicted & ~actual).sum(), (~predicted & actual).sum(),
        ]).double()

    def result(self, world: World) -> dict[str, float]:
        bce, tp, fp, tn, fn = sum_across(world, self.sums).tolist()
        n = tp + fp + tn + fn
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"loss": bce / n, "accuracy": (tp + tn) / n, "precision": precision, "recall": recall, "f1": f1}


def new_metrics(task: str, device: torch.device, threshold: float) -> RegressionMetrics | ClassificationMetrics:
    if task == "classification":
        return ClassificationMetrics(device, threshold)
    return RegressionMetrics(device)
