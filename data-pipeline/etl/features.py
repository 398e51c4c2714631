"""Per-day features and targets computed from cleaned OHLCV prices.

Features of day t (all finite, whatever the volume):
  log_return         ln(close_t / close_t-1)
  hl_range           ln(high_t / low_t)
  oc_change          ln(close_t / open_t)
  log_volume_change  ln(volume_t / volume_t-1), 0 where either volume is 0 (old index data has zeros)
  close_location     where the close sits in the day's range, in [0, 1]; 0.5 when high == low

Targets of the window ending on day t, from the log returns of days t+1 .. t+horizon, in percent:
  volatility  100 * sqrt(mean(r^2))     (realised volatility; regression)
  return      100 * sum(r)              (next log return; regression)
  direction   1 if sum(r) > 0 else 0    (classification)
"""

import numpy as np
import pandas as pd

FEATURE_NAMES = ("log_return", "hl_range", "oc_change", "log_volume_change", "close_location")
TARGET_TASKS = {"volatility": "regression", "return": "regression", "direction": "classification"}
TARGET_SCALE = 100.0


def daily_features(prices: pd.DataFrame) -> np.ndarray:
    """Features [days - 1, len(FEATURE_NAMES)] float64; the first day has no previous close and is dropped."""
    open_, high, low, close, volume = (prices[c].to_numpy() for c in ("open", "high", "low", "close", "volume"))
    log_return = np.log(close[1:] / close[:-1])
    hl_range = np.log(high[1:] / low[1:])
    oc_change = np.log(close[1:] / open_[1:])
    both_traded = (volume[1:] > 0) & (volume[:-1] > 0)
    ratio = np.divide(volume[1:], volume[:-1], out=np.ones_like(volume[1:]), where=both_traded)
    log_volume_change = np.log(ratio)
    span = high[1:] - low[1:]
    close_location = np.divide(close[1:] - low[1:], span, out=np.full_like(span, 0.5), where=span > 0)
    return np.stack([log_return, hl_range, oc_change, log_volume_change, close_location], axis=1)


def day_targets(log_return: np.ndarray, target: str, horizon: int) -> np.ndarray:
    """Target of each day t from days t+1 .. t+horizon; NaN for the last `horizon` days."""
    days = len(log_return)
    out = np.full(days, np.nan)
    if days <= horizon:
        return out
    future = np.lib.stride_tricks.sliding_window_view(log_return[1:], horizon)  # row t: r[t+1 : t+1+h]
    if target == "volatility":
        out[: len(future)] = TARGET_SCALE * np.sqrt(np.mean(future**2, axis=1))
    elif target == "return":
        out[: len(future)] = TARGET_SCALE * future.sum(axis=1)
    elif target == "direction":
        out[: len(future)] = (future.sum(axis=1) > 0).astype(np.float64)
    else:
        raise ValueError(f"unknown target {target!r}")
    return out
