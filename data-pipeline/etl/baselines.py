"""Naive predictions a model must beat, computed from the windows themselves.

`persistence` predicts that the next `horizon` days' realised volatility equals that of the last
`horizon` days in the window: it de-normalises the `log_return` feature with the statistics in
`index.json` and applies the volatility target's formula (etl.features), in the same units.
"""

import numpy as np

from etl.features import TARGET_SCALE


def persistence(index: dict, x: np.ndarray) -> np.ndarray:
    """Persistence forecast of realised volatility for windows `x` [rows, window, features], float64 [rows]."""
    column = index["feature_names"].index("log_return")
    horizon = min(index["horizon"], x.shape[1])
    mean = index["normalization"]["mean"][column]
    std = index["normalization"]["std"][column]
    returns = x[:, -horizon:, column].astype(np.float64) * std + mean
    return TARGET_SCALE * np.sqrt(np.mean(returns**2, axis=1))
