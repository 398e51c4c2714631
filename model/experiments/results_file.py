"""The results JSON every experiment writes (DESIGN.md, "Results JSON").

`results_document(kind, where, rows, **fields)` adds `kind`, `where`, `created` and the machine (cores,
memory, torch version, device) to an experiment's rows; `write_results` writes it atomically, so a reader
never sees half a file, even when a search is interrupted and rewrites its partial summary.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

KINDS = ("scale_test", "hp_search", "train_run", "xor_study")
WHERE = ("local", "cloud")


def machine() -> dict:
    """The trainer's machine facts (cores, memory, Python, torch) plus the host and the device."""
    import torch

    from trainer.report import machine as trainer_machine

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {**trainer_machine(), "hostname": platform.node(), "device": device}


def results_document(kind: str, where: str, rows: list[dict], **fields) -> dict:
    if kind not in KINDS or where not in WHERE:
        raise ValueError(f"kind {kind!r} / where {where!r} not in {KINDS} / {WHERE}")
    return {
        "kind": kind,
        "where": where,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **fields,
        "rows": rows,
    }


def write_results(path: str | Path, document: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=1, default=str) + "\n")
    temporary.replace(path)
    return path
