"""Building datasets: sources to shards, split boundaries, train-only statistics, features and targets."""

import json

import numpy as np
import pandas as pd

from conftest import DATA, run_cli
from etl import open_dataset
from etl.baselines import persistence
from etl.build import build_dataset
from etl.features import FEATURE_NAMES, daily_features, day_targets
from etl.paths import SNAPSHOT_FILE
from etl.sources import read_price_csv
from etl.splits import split_bounds


def test_build_from_csv_of_another_index_passes_verify_with_checksums(tmp_path):
    out = tmp_path / "nasdaq"
    csv = DATA / "nasdaq_1999_2018.csv.gz"
    run_cli("-m", "etl", "build", "--source", "csv", "--csv", csv, "--ticker", "^IXIC", "--out", out, check_rc=0)
    verified = run_cli("-m", "etl", "verify", "--checksums", out, check_rc=0)
    assert "sha256 checked" in verified.stdout
    index = json.loads((out / "index.json").read_text())
    assert index["source"]["provider"] == "csv"
    assert index["source"]["ticker"] == "^IXIC"
    assert index["source"]["rows"] == 5031
    assert index["source"]["first_date"] == "1999-01-04" and index["source"]["last_date"] == "2018-12-31"


def test_snapshot_build_writes_format_v1_index(tmp_path):
    out = tmp_path / "direction"
    run_cli("-m", "etl", "build", "--source", "snapshot", "--target", "direction", "--out", out, check_rc=0)
    index = json.loads((out / "index.json").read_text())
    assert index["format_version"] == 1
    assert index["task"] == "classification" and index["target"] == "direction"
    assert index["window"] == 20 and index["horizon"] == 1
    assert index["feature_names"] == list(FEATURE_NAMES)
    assert index["source"]["provider"] == "snapshot" and len(index["source"]["sha256"]) == 64
    assert (index["multiplier"], index["noise_std"], index["seed"]) == (1, 0.0, 0)
    dataset = open_dataset(out)
    for split in ("train", "validation", "test"):
        x, y = dataset.load_split(split)
        assert x.dtype == np.float32 and x.shape == (dataset.rows(split), 20, len(FEATURE_NAMES))
        assert set(np.unique(y)) <= {0.0, 1.0}
        assert sum(s["rows"] for s in dataset.shards(split)) == dataset.rows(split)
    info = run_cli("-m", "etl", "info", out, check_rc=0)
    assert "validation" in info.stdout and "log_return" in info.stdout


def test_default_build_writes_regression_and_classification_datasets(tmp_path):
    env = {"ETL_DATA_DIR": str(tmp_path)}
    done = run_cli("-m", "etl", "build", "--source", "snapshot", env=env, check_rc=0)
    tasks = {json.loads((tmp_path / "processed" / name / "index.json").read_text())["task"]
             for name in ("gspc-volatility", "gspc-direction")}
    assert tasks == {"regression", "classification"}
    assert "built" in done.stdout


def test_no_window_or_target_crosses_a_split_boundary(volatility_dataset):
    prices, _ = read_price_csv(SNAPSHOT_FILE)
    features = daily_features(prices)
    index = json.loads((volatility_dataset / "index.json").read_text())
    bounds = split_bounds(len(features))
    dates = prices.index[1:]
    window, horizon = index["window"], index["horizon"]
    mean, std = np.array(index["normalization"]["mean"]), np.array(index["normalization"]["std"])
    dataset = open_dataset(volatility_dataset)
    targets = day_targets(features[:, 0], "volatility", horizon)
    for split, (start, stop) in bounds.items():
        x, y = dataset.load_split(split)
        assert len(x) == (stop - start) - window + 1 - horizon
        # the first window starts on the split's first day, the last target ends on its last day
        np.testing.assert_allclose(x[0, 0], ((features[start] - mean) / std).astype(np.float32), rtol=1e-5)
        last_end = start + window - 1 + len(x) - 1
        assert last_end + horizon == stop - 1
        np.testing.assert_allclose(y[-1], targets[last_end], rtol=1e-5)
        assert index["split_dates"][split] == [dates[start].date().isoformat(), dates[stop - 1].date().isoformat()]


def test_normalisation_statistics_come_from_train_days_only(volatility_dataset):
    prices, _ = read_price_csv(SNAPSHOT_FILE)
    features = daily_features(prices)
    start, stop = split_bounds(len(features))["train"]
    index = json.loads((volatility_dataset / "index.json").read_text())
    np.testing.assert_allclose(index["normalization"]["mean"], features[start:stop].mean(axis=0))
    np.testing.assert_allclose(index["normalization"]["std"], features[start:stop].std(axis=0))
    assert not np.allclose(index["normalization"]["mean"], features.mean(axis=0))
    train_x, _ = open_dataset(volatility_dataset).load_split("train")
    assert abs(float(train_x[:, -1, 0].mean())) < 0.05  # z-scored on train


def test_zero_volume_gives_finite_features():
    days = pd.date_range("2000-01-03", periods=6, freq="B")
    prices = pd.DataFrame({"open": [10, 11, 12, 12, 13, 14.0], "high": [11, 12, 12, 13, 14, 15.0],
                           "low": [9, 10, 12, 11, 12, 13.0], "close": [10.5, 11.5, 12, 12.5, 13.5, 14.5],
                           "volume": [0, 0, 100, 0, 200, 300.0]}, index=days)
    features = daily_features(prices)
    assert np.isfinite(features).all()
    assert features[1, FEATURE_NAMES.index("close_location")] == 0.5  # high == low
    np.testing.assert_allclose(features[-1, FEATURE_NAMES.index("log_volume_change")], np.log(1.5))


def test_targets_follow_their_definitions():
    r = np.array([0.01, -0.02, 0.03, 0.01, -0.01])
    np.testing.assert_allclose(day_targets(r, "volatility", 2)[:3],
                               100 * np.sqrt([(0.02**2 + 0.03**2) / 2, (0.03**2 + 0.01**2) / 2,
                                              (0.01**2 + 0.01**2) / 2]))
    np.testing.assert_allclose(day_targets(r, "return", 1)[:4], 100 * r[1:])
    np.testing.assert_array_equal(day_targets(r, "direction", 1)[:4], [0, 1, 1, 0])
    assert np.isnan(day_targets(r, "volatility", 2)[-2:]).all()


def test_persistence_baseline_is_last_days_realised_volatility(volatility_dataset):
    dataset = open_dataset(volatility_dataset)
    x, y = dataset.load_split("test")
    naive = persistence(dataset.index, x)
    # persistence of window i equals the target of window i-1 (both are |r| of the same day, horizon 1)
    np.testing.assert_allclose(naive[1:], y[:-1], rtol=1e-4, atol=1e-5)


def test_adjusted_close_rescales_prices(write_csv):
    frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=3).strftime("%Y-%m-%d"),
                          "OPEN": [10.0, 20, 30], "High": [11.0, 21, 31], "Low": [9.0, 19, 29],
                          "Close": [10.0, 20, 30], "Adj Close": [5.0, 10, 15], "Volume": [1, 2, 3]})
    prices, dropped = read_price_csv(write_csv(frame))
    assert dropped == 0
    np.testing.assert_allclose(prices["close"], [5, 10, 15])
    np.testing.assert_allclose(prices["high"], [5.5, 10.5, 15.5])


def test_build_output_is_deterministic(tmp_path):
    prices, _ = read_price_csv(SNAPSHOT_FILE)
    a = build_dataset(prices, {}, tmp_path / "a", target="return", shard_rows=700)
    b = build_dataset(prices, {}, tmp_path / "b", target="return", shard_rows=700)
    assert a["splits"] == b["splits"]
    assert [s["rows"] for s in a["splits"]["train"]["shards"]] == [700] * 5 + [1]
