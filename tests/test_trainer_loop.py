"""The hot loop computes what the textbook loop computes: AdamW, gradient clipping, a scheduled learning rate."""

import copy

import torch
import torch.nn.functional as F

from trainer.config import ModelConfig, TrainConfig
from trainer.loop import flatten_parameters, make_optimizer, make_scheduler, train_epoch
from trainer.models import build_model


def test_train_epoch_matches_torch_optim_adamw_with_clipping_and_cosine_schedule():
    torch.manual_seed(0)
    train = TrainConfig(lr=0.01, weight_decay=0.05, grad_clip=0.5, epochs=3)
    model = build_model(ModelConfig(hidden=8, layers=2), window=4, n_features=3)
    reference = copy.deepcopy(model)
    epochs = [[(torch.randn(16, 4, 3), torch.randn(16)) for _ in range(5)] for _ in range(train.epochs)]

    flat = flatten_parameters(model)
    optimizer = make_optimizer(flat, train)
    scheduler = make_scheduler(optimizer, train)
    expected_optimizer = torch.optim.AdamW(reference.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    expected_scheduler = make_scheduler(expected_optimizer, train)
    for batches in epochs:
        loss_sum, rows = train_epoch(model, flat, optimizer, batches, F.mse_loss, train.grad_clip, flat.device)
        scheduler.step()
        expected_loss = 0.0
        for x, y in batches:
            expected_optimizer.zero_grad()
            loss = F.mse_loss(reference(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), train.grad_clip)
            expected_optimizer.step()
            expected_loss += loss.item() * len(y)
        expected_scheduler.step()
        assert rows == 80
        assert abs(loss_sum.item() - expected_loss) < 1e-4
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert optimizer.state[flat]["step"].item() == 15  # the optimizer's own state was stepped
    assert optimizer.param_groups[0]["lr"] == expected_optimizer.param_groups[0]["lr"]
