"""The two model families: an MLP over the flattened window (the default) and an LSTM over the sequence.

Both map `x` of shape `[batch, window, features]` to one number per row: a regression prediction, or a
logit for classification. An MLP with `layers=0` is a single linear layer, i.e. linear regression (MSE)
or logistic regression (BCE with logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig


class MLP(nn.Module):
    """`layers` hidden layers (Linear, ReLU, dropout when > 0) and a linear head, over the flattened window.

    The forward pass calls the ops directly rather than a Sequential of modules (on small batches the
    per-module call overhead is a fifth of a training step on the CPU): `addmm` is what `nn.Linear` computes
    on a batch of rows, and ReLU is applied in place on its fresh output.
    """

    def __init__(self, window: int, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        widths = [window * n_features] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False))
        self.head = nn.Linear(widths[-1], 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = torch.addmm(layer.bias, h, layer.weight.t()).relu_()
            if self.dropout:
                h = F.dropout(h, self.dropout, self.training)
        return torch.addmm(self.head.bias, h, self.head.weight.t()).squeeze(-1)


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
