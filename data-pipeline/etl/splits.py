"""Time splits, windowing and train-only normalisation.

Days are cut 70/15/15 into train, validation and test, in time order. A split's samples are the windows
that lie wholly inside it, targets included, so no window and no target crosses a split boundary. The
z-score statistics come from the train split's days only.
"""

import numpy as np

from etl.errors import EtlError

SPLIT_FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
MIN_WINDOWS_PER_SPLIT = 8


def split_bounds(days: int) -> dict[str, tuple[int, int]]:
    """Day ranges [start, stop) of each split."""
    train_end = int(round(days * SPLIT_FRACTIONS["train"]))
    validation_end = int(round(days * (SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["validation"])))
    return {"train": (0, train_end), "validation": (train_end, validation_end), "test": (validation_end, days)}


def windows_in(days: int, window: int, horizon: int) -> int:
    return max(0, days - window + 1 - horizon)


def check_history(days: int, window: int, horizon: int) -> dict[str, tuple[int, int]]:
    """Split bounds, or EtlError when a split would hold too few windows."""
    if window < 1 or horizon < 1:
        raise EtlError(f"--window and --horizon must be at least 1 (got {window} and {horizon})")
    bounds = split_bounds(days)
    short = {s: windows_in(b - a, window, horizon) for s, (a, b) in bounds.items()}
    if min(short.values()) < MIN_WINDOWS_PER_SPLIT:
        smallest = min(SPLIT_FRACTIONS.values())
        needed = int(np.ceil((window + horizon - 1 + MIN_WINDOWS_PER_SPLIT) / smallest)) + 1
        raise EtlError(
            f"too little history: {days + 1} price rows give {short['test']} test windows of {window} days "
            f"(horizon {horizon}); need about {needed} rows, or a smaller --window"
        )
    return bounds


def fit_normalization(features: np.ndarray, train: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature over the train days (std 1 where a feature is constant)."""
    part = features[train[0] : train[1]]
    mean, std = part.mean(axis=0), part.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def split_windows(
    features: np.ndarray, targets: np.ndarray, bounds: tuple[int, int], window: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(x [n, window, features] float32, y [n] float32) for the windows wholly inside `bounds`."""
    start, stop = bounds
    n = windows_in(stop - start, window, horizon)
    views = np.lib.stride_tricks.sliding_window_view(features[start:stop], window, axis=0)[:n]
    x = np.ascontiguousarray(views.transpose(0, 2, 1), dtype=np.float32)
    y = targets[start + window - 1 : start + window - 1 + n].astype(np.float32)
    return x, y
