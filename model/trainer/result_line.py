"""The trainer's final log line, `RESULT {json}` on rank 0: how it is written and how it is read back.

The scale test reads it from a run's output and the cloud search from a master pod's log. This module
imports nothing heavy, so readers do not pay for torch.
"""

from __future__ import annotations

import json

PREFIX = "RESULT "


def result_line(summary: dict) -> str:
    return PREFIX + json.dumps(summary, separators=(",", ":"))


def parse_result(output: str) -> dict | None:
    """The payload of the last `RESULT {json}` line in `output`, or None if there is none (or it is cut off)."""
    for line in reversed(output.splitlines()):
        if line.startswith(PREFIX):
            try:
                return json.loads(line[len(PREFIX):])
            except ValueError:
                return None
    return None
