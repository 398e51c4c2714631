"""The yfinance source, offline: a yfinance.download frame (MultiIndex columns), caching and fallbacks.

`data/yfinance_download_gspc_2018q4.csv` is the frame that `yfinance.download("^GSPC", auto_adjust=False)`
(yfinance 1.7.0) returned when its per-ticker history held the snapshot's last quarter, saved with
`to_csv`: two header rows (Price, Ticker), the shape recent yfinance versions return.
"""

import pandas as pd
import pytest
import yfinance

import etl.sources as sources
from conftest import DATA
from etl.errors import EtlError

RECORDED = DATA / "yfinance_download_gspc_2018q4.csv"


@pytest.fixture
def recorded_frame() -> pd.DataFrame:
    return pd.read_csv(RECORDED, header=[0, 1], index_col=0, parse_dates=True)


@pytest.fixture
def raw_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RAW_DIR", tmp_path)
    return tmp_path


def test_download_parses_multiindex_frame_and_caches_it(monkeypatch, raw_dir, recorded_frame):
    calls = []

    def download(ticker, **kwargs):
        calls.append((ticker, kwargs))
        return recorded_frame

    monkeypatch.setattr(yfinance, "download", download)
    prices, record = sources.load_prices("yfinance", ticker="^GSPC", start="2018-10-01", end="2019-01-01",
                                         say=lambda _: None)
    assert calls[0][0] == "^GSPC" and calls[0][1]["auto_adjust"] is False
    assert list(prices.columns) == list(sources.PRICE_COLUMNS)
    assert len(prices) == len(recorded_frame) == 63
    assert prices.index[0] == pd.Timestamp("2018-10-01")
    assert prices["close"].iloc[-1] == pytest.approx(2506.850098)
    assert record["provider"] == "yfinance" and record["last_date"] == "2018-12-31"
    cached = list(raw_dir.glob("yfinance-gspc-fetched-*.csv"))
    assert [c.name for c in cached] == [record["file"]]


def test_flatten_handles_plain_columns_and_timezones(recorded_frame):
    plain = recorded_frame.droplevel(1, axis=1)
    plain.index = plain.index.tz_localize("America/New_York")
    table = sources.flatten_yfinance(plain, "^GSPC")
    prices, _ = sources.clean_prices(table, "test")
    assert prices.index.tz is None and len(prices) == 63


def test_offline_download_reuses_the_cache(monkeypatch, raw_dir, recorded_frame):
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: recorded_frame)
    sources.load_prices("yfinance", say=lambda _: None)
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())  # what it returns offline
    said = []
    prices, record = sources.load_prices("auto", say=said.append)
    assert record["provider"] == "yfinance-cache" and len(prices) == 63
    assert "cached download" in said[0]


def test_auto_falls_back_to_snapshot_and_yfinance_alone_fails(monkeypatch, raw_dir):
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    said = []
    prices, record = sources.load_prices("auto", say=said.append)
    assert record["provider"] == "snapshot" and record["rows"] == 5031 and "snapshot" in said[0]
    with pytest.raises(EtlError, match="no cached download"):
        sources.load_prices("yfinance", say=lambda _: None)
    with pytest.raises(EtlError, match="snapshot holds"):
        sources.load_prices("auto", ticker="AAPL", say=lambda _: None)
