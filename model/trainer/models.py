"""The two model families: an MLP over the flattened window (the default) and an LSTM over the sequence.

Both map `x` of shape `[batch, window, features]` to one number per row: a regression prediction, or a
logit for classification. An MLP with `layers=0` is a single linear layer, i.e. linear regression (MSE)
or logistic regression (BCE with logits).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.config import ModelConfig


class MLP(nn.Module):
    def __init__(self, window: int, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        blocks: list[nn.Module] = []
        width = window * n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout:
                blocks.append(nn.Dropout(dropout))
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(-1)


class LSTM(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(x)
        return self.head(output[:, -1]).squeeze(-1)


def build_model(config: ModelConfig, window: int, n_features: int) -> nn.Module:
    """A freshly initialised model of `config.kind` for windows of `window` steps of `n_features`."""
    if config.kind == "lstm":
        return LSTM(n_features, config.hidden, config.layers, config.dropout)
    return MLP(window, n_features, config.hidden, config.layers, config.dropout)
