"""Where daily OHLCV prices come from: yfinance, a cached download, any Yahoo-style CSV, or the snapshot.

Every source ends in the same cleaning step (`clean_prices`), which turns a Yahoo-style table into a
frame of positive `open, high, low, close, volume` floats indexed by strictly increasing dates, with
prices adjusted by `Adj Close` when the file has it. `load_prices` picks the source and returns the
frame with a `source` record for `index.json`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from etl.errors import EtlError
from etl.paths import RAW_DIR, SNAPSHOT_FILE, SNAPSHOT_TICKER
from etl.reader import file_sha256

SOURCES = ("auto", "yfinance", "csv", "snapshot")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
MAX_DROPPED_FRACTION = 0.05
YFINANCE_TIMEOUT_SECONDS = 5


def _column_key(name: object) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def clean_prices(raw: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, int]:
    """Validate and normalise a Yahoo-style table; return (prices, number of rows dropped for null cells)."""
    columns = {_column_key(c): c for c in raw.columns}
    needed = ("date", *PRICE_COLUMNS)
    missing = [name for name in needed if name not in columns]
    if missing:
        raise EtlError(
            f"{origin}: missing column(s) {', '.join(missing)}: a daily OHLCV CSV needs "
            "Date, Open, High, Low, Close, Volume (Adj Close optional)"
        )
    dates = pd.to_datetime(raw[columns["date"]].astype(str), errors="coerce", format="mixed")
    table = {name: pd.to_numeric(raw[columns[name]], errors="coerce") for name in PRICE_COLUMNS}
    if "adjclose" in columns:
        table["adjclose"] = pd.to_numeric(raw[columns["adjclose"]], errors="coerce")
    prices = pd.DataFrame(table).set_axis(pd.DatetimeIndex(dates, name="date"))
    bad = prices.isna().any(axis=1).to_numpy() | prices.index.isna()
    dropped = int(bad.sum())
    if len(prices) and dropped > MAX_DROPPED_FRACTION * len(prices):
        raise EtlError(
            f"{origin}: {dropped} of {len(prices)} rows have a missing, null or non-numeric cell "
            f"(more than {MAX_DROPPED_FRACTION:.0%}): fix the file or use another source"
        )
    prices = prices[~bad]
    if prices.empty:
        raise EtlError(f"{origin}: no rows with prices: is this a daily OHLCV CSV?")
    order = prices.index.to_numpy()
    step = np.diff(order)
    if (step <= np.timedelta64(0)).any():
        at = int(np.argmax(step <= np.timedelta64(0))) + 1
        kind = "duplicate" if order[at] == order[at - 1] else "unsorted"
        raise EtlError(
            f"{origin}: {kind} date {pd.Timestamp(order[at]).date()} at data row {at + 1}: "
            "dates must be strictly increasing; sort the file and remove duplicates"
        )
    if (prices[["open", "high", "low", "close"]] <= 0).any().any() or (prices["volume"] < 0).any():
        first = prices.index[
            ((prices[["open", "high", "low", "close"]] <= 0).any(axis=1)) | (prices["volume"] < 0)
        ][0]
        raise EtlError(f"{origin}: non-positive price or negative volume on {first.date()}: fix the file")
    if "adjclose" in prices:
        factor = prices.pop("adjclose") / prices["close"]
        for name in ("open", "high", "low", "close"):
            prices[name] = prices[name] * factor
    return prices.astype("float64"), dropped


def read_price_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """Read and clean a Yahoo-style daily CSV (`.csv` or `.csv.gz`)."""
    if not path.is_file():
        raise EtlError(f"CSV file {path} does not exist: check --csv")
    try:
        raw = pd.read_csv(path, compression="infer")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, zipfile.BadZipFile,
            EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EtlError(f"{path} is not a readable CSV ({reason}): pass a daily OHLCV CSV") from None
    return clean_prices(raw, str(path))


def flatten_yfinance(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Turn a `yfinance.download` frame (MultiIndex columns or not) into a Yahoo-style CSV table."""
    if isinstance(frame.columns, pd.MultiIndex):
        level = next(
            (i for i, names in enumerate(frame.columns.levels) if ticker.upper() in map(str.upper, names)),
            None,
        )
        if level is None:
            raise EtlError(f"yfinance returned no columns for {ticker}")
        wanted = [c for c in frame.columns if str(c[level]).upper() == ticker.upper()]
        frame = frame[wanted].droplevel(level, axis=1)
    frame = frame.rename_axis(None, axis=1)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    return frame.set_axis(index.rename("Date")).reset_index()


def download_yfinance(ticker: str, start: str | None, end: str | None) -> pd.DataFrame:
    """Download daily prices with yfinance; an empty result (offline, unknown ticker) raises EtlError."""
    import yfinance

    logger = logging.getLogger("yfinance")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its own offline messages would bury the one line we print
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yfinance.download(
                ticker, start=start, end=end, interval="1d", auto_adjust=False, actions=False,
                progress=False, threads=False, timeout=YFINANCE_TIMEOUT_SECONDS,
            )
    finally:
        logger.setLevel(level)
    if frame is None or frame.dropna(how="all").empty:
        raise EtlError(f"yfinance returned no data for {ticker} (offline, or an unknown ticker)")
    return flatten_yfinance(frame, ticker)


def ticker_slug(ticker: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ticker.lower()).strip("-") or "ticker"


def latest_cache(ticker: str) -> Path | None:
    """The most recently fetched cached yfinance download of `ticker`, if any."""
    caches = sorted(RAW_DIR.glob(f"yfinance-{ticker_slug(ticker)}-fetched-*.csv"))
    return caches[-1] if caches else None


def _cache_download(table: pd.DataFrame, ticker: str) -> Path:
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    path = RAW_DIR / f"yfinance-{ticker_slug(ticker)}-fetched-{dt.date.today().isoformat()}.csv"
    temporary = path.with_suffix(".part")
    table.to_csv(temporary, index=False)
    temporary.replace(path)
    return path


def _record(provider: str, ticker: str, prices: pd.DataFrame, file: Path, dropped: int) -> dict:
    return {
        "provider": provider,
        "ticker": ticker,
        "file": file.name,
        "first_date": prices.index[0].date().isoformat(),
        "last_date": prices.index[-1].date().isoformat(),
        "rows": len(prices),
        "dropped_rows": dropped,
        "sha256": file_sha256(file),
    }


def _from_file(provider: str, ticker: str, file: Path, start: str | None, end: str | None):
    prices, dropped = read_price_csv(file)
    if start or end:
        prices = prices.loc[start:end]
        if prices.empty:
            raise EtlError(f"{file} has no rows between {start or 'the start'} and {end or 'the end'}")
    return prices, _record(provider, ticker, prices, file, dropped)


def _from_yfinance(ticker: str, start: str | None, end: str | None):
    table = download_yfinance(ticker, start, end)
    path = _cache_download(table, ticker)
    prices, dropped = clean_prices(table, f"yfinance download of {ticker}")
    return prices, _record("yfinance", ticker, prices, path, dropped)


def load_prices(
    source: str, *, ticker: str = SNAPSHOT_TICKER, csv: Path | None = None,
    start: str | None = None, end: str | None = None, say=print,
) -> tuple[pd.DataFrame, dict]:
    """Load and clean prices from `source`; return (prices, the `source` record for index.json)."""
    if source not in SOURCES:
        raise EtlError(f"--source {source!r} is not one of {', '.join(SOURCES)}")
    if source == "csv":
        if csv is None:
            raise EtlError("--source csv needs --csv PATH")
        return _from_file("csv", ticker, Path(csv), start, end)
    if source == "snapshot":
        if ticker != SNAPSHOT_TICKER:
            raise EtlError(f"the snapshot holds {SNAPSHOT_TICKER} only; use --source csv or yfinance for {ticker}")
        return _from_file("snapshot", ticker, SNAPSHOT_FILE, start, end)
    try:
        prices, record = _from_yfinance(ticker, start, end)
        say(f"source: yfinance download of {ticker}, cached as {record['file']}")
        return prices, record
    except EtlError as failure:
        cached = latest_cache(ticker)
        if cached is not None:
            say(f"source: {failure}; using the cached download {cached.name}")
            return _from_file("yfinance-cache", ticker, cached, start, end)
        if source == "yfinance":
            raise EtlError(f"{failure}, and no cached download of {ticker} under {RAW_DIR}") from None
        if ticker != SNAPSHOT_TICKER:
            raise EtlError(f"{failure}; no cached download, and the snapshot holds {SNAPSHOT_TICKER} only") from None
        say(f"source: {failure}; using the shipped snapshot {SNAPSHOT_FILE.name}")
        return _from_file("snapshot", ticker, SNAPSHOT_FILE, start, end)
