"""What a run reports: the per-epoch `name=value` line (Katib's stdout collector) and facts about the
machine and this process. The final `RESULT {json}` line is in `trainer.result_line`.
"""

from __future__ import annotations

import os
import resource
import sys
from datetime import UTC, datetime

import psutil
import torch


def epoch_line(record: dict, task: str) -> str:
    """`epoch=3 train_loss=... val_loss=... [val_accuracy=...] lr=... samples_per_sec=...`"""
    names = ["train_loss", "val_loss"] + (["val_accuracy"] if task == "classification" else []) + [
        "lr", "samples_per_sec"]
    return " ".join([f"epoch={record['epoch']}"] + [f"{name}={record[name]:.6g}" for name in names])


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }


def where() -> str:
    """`cloud` inside a Kubernetes pod, else `local`."""
    return "cloud" if "KUBERNETES_SERVICE_HOST" in os.environ else "local"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
