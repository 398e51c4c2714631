"""The files of a run folder, each written atomically (temporary file, fsync, rename) by rank 0 only.

`config.yaml` (resolved config), `metrics.json` (history, test metrics, baselines, timing), `model.pt`
(the best model's weights and what is needed to rebuild it) and `checkpoint.pt` (everything to resume).
`.pt` files hold only tensors and plain values, so they load with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from trainer.errors import TrainerError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"


def _write_atomic(path: Path, write: Callable[[object], None]) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda f: f.write(text.encode()))


def write_json(path: Path, value: dict) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")


def save_tensors(path: Path, value: dict) -> None:
    _write_atomic(path, lambda f: torch.save(value, f))


def load_tensors(path: Path) -> dict:
    """A `.pt` file of this trainer, loaded with weights_only=True onto the CPU."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainerError(f"{path} is unreadable ({reason}): delete it, or use another io.run_name") from None


def start_fresh(run_dir: Path) -> None:
    """Create the run folder, removing outputs a previous run there left, so none is mistaken for ours."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (METRICS_FILE, MODEL_FILE, CHECKPOINT_FILE):
        (run_dir / name).unlink(missing_ok=True)
