"""Build one dataset: cleaned prices -> features -> time splits -> normalised windows -> shards."""

import json
from pathlib import Path

import pandas as pd

from etl.errors import EtlError
from etl.features import FEATURE_NAMES, TARGET_SCALE, TARGET_TASKS, daily_features, day_targets
from etl.reader import SPLITS
from etl.splits import check_history, fit_normalization, split_windows
from etl.writer import DEFAULT_SHARD_ROWS, DatasetWriter


def build_dataset(
    prices: pd.DataFrame, source: dict, out: Path, *, target: str = "volatility", window: int = 20,
    horizon: int = 1, shard_rows: int = DEFAULT_SHARD_ROWS, force: bool = False,
) -> dict:
    """Write the dataset for `target` to `out` and return its index."""
    if target not in TARGET_TASKS:
        raise EtlError(f"--target {target!r} is not one of {', '.join(TARGET_TASKS)}")
    features = daily_features(prices)
    targets = day_targets(features[:, 0], target, horizon)
    bounds = check_history(len(features), window, horizon)
    mean, std = fit_normalization(features, bounds["train"])
    normalised = (features - mean) / std
    with DatasetWriter(out, force=force, shard_rows=shard_rows) as writer:
        for split in SPLITS:
            x, y = split_windows(normalised, targets, bounds[split], window, horizon)
            for start in range(0, len(x), shard_rows):
                writer.add(split, x[start : start + shard_rows], y[start : start + shard_rows])
        dates = prices.index[1:]
        return writer.finish({
            "task": TARGET_TASKS[target],
            "target": target,
            "target_scale": TARGET_SCALE if target != "direction" else 1.0,
            "window": window,
            "horizon": horizon,
            "feature_names": list(FEATURE_NAMES),
            "normalization": {"mean": mean.tolist(), "std": std.tolist()},
            "split_dates": {
                split: [dates[a].date().isoformat(), dates[b - 1].date().isoformat()]
                for split, (a, b) in bounds.items()
            },
            "source": source,
            "multiplier": 1,
            "noise_std": 0.0,
            "seed": 0,
        })


def describe(index: dict) -> str:
    """A few lines saying what a dataset holds."""
    lines = [f"task={index['task']} target={index['target']} window={index['window']} "
             f"horizon={index['horizon']} features={len(index['feature_names'])} multiplier={index['multiplier']}"]
    for split in SPLITS:
        entry = index["splits"][split]
        size = sum(s["bytes"] for s in entry["shards"])
        lines.append(f"  {split:<10} rows={entry['rows']:>9} shards={len(entry['shards']):>5} "
                     f"MB={size / 1e6:9.2f}")
    source = index.get("source", {})
    if "ticker" in source:
        lines.append(f"  source: {source.get('provider')} {source.get('ticker')} "
                     f"{source.get('first_date')}..{source.get('last_date')} ({source.get('rows')} days)")
    else:
        lines.append(f"  source: {json.dumps(source)}")
    return "\n".join(lines)

