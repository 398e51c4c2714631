"""Naive predictors the model must beat, evaluated on the same test split with the same metrics.

Regression: `train_mean` (the train split's mean target) always; `persistence` for target volatility
(the last days' realised volatility, from `etl.baselines`); `zero` for target return. Classification:
`majority`, which predicts the train split's positive rate as a probability (its class at threshold 0.5
is the majority class; its loss is the BCE of that prior).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from etl import Dataset
from etl.baselines import persistence
from trainer.data import TrainTargets

Predictor = Callable[[torch.Tensor], torch.Tensor]


def _constant(value: float) -> Predictor:
    return lambda x: torch.full((len(x),), value, dtype=torch.float64, device=x.device)


def _persistence(dataset: Dataset) -> Predictor:
    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(persistence(dataset.index, x.cpu().numpy())).to(x.device)

    return predict


def baseline_predictors(dataset: Dataset, task: str, targets: TrainTargets) -> dict[str, Predictor]:
    """Name -> predictor (rows of x -> predictions, or logits for classification) for this dataset."""
    if task == "classification":
        rate = min(max(targets.positives / targets.rows, 1e-6), 1 - 1e-6)
        return {"majority": _constant(math.log(rate / (1 - rate)))}
    predictors = {"train_mean": _constant(targets.mean)}
    if dataset.target == "volatility":
        predictors["persistence"] = _persistence(dataset)
    if dataset.target == "return":
        predictors["zero"] = _constant(0.0)
    return predictors
