"""The hot loop computes what the textbook loop computes (AdamW, clipping, a cosine schedule); the bench runs."""

import copy
import re

import torch
import torch.nn.functional as F

from conftest import run_cli
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


def test_throughput_bench_reports_all_three_loops_at_both_batch_sizes(volatility_dataset):
    """bench/trainer_throughput.py on a four-shard dataset (so stream mode mixes pieces), two rounds."""
    proc = run_cli("bench/trainer_throughput.py", "--data", volatility_dataset, "--epochs", "2", "--profile",
                   check_rc=0)
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\s+(64|256)\s+(.+)$", proc.stdout, re.MULTILINE)}
    assert sorted(rows) == [64, 256]
    for cells in rows.values():
        ratios = [float(r) for r in re.findall(r"\(([\d.]+)x\)", cells)]
        assert len(ratios) == 2 and all(r > 0 for r in ratios)  # naive+fused and trainer, against naive
    assert "aten::addmm" in proc.stdout  # --profile printed the trainer loop's op table
    bad = run_cli("bench/trainer_throughput.py", "--data", volatility_dataset.parent / "missing")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1
