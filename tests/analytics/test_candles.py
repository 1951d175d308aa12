"""Candles: exact Binance sums on real trades, and a pandas reference on generated ticks."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.analytics import (
    CANDLE_COLUMNS,
    TIMEFRAMES,
    merge_candles,
    resample,
    timeframe_to_offset,
)

DATA = Path(__file__).parent / "data" / "btcusdt_trades_20240808_2357.gz"


def load_trades(path: Path = DATA) -> pd.DataFrame:
    """Recorded ``<recv ns> <combined-stream JSON>`` lines → raw strings frame."""
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            data = json.loads(line.split(" ", 1)[1])["data"]
            if data.get("e") == "trade":
                rows.append((data["T"], data["p"], data["q"], data["t"], data["m"]))
    return pd.DataFrame(rows, columns=["T", "p", "q", "t", "m"])


def to_ticks(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": raw["p"].astype(float).to_numpy(),
            "qty": raw["q"].astype(float).to_numpy(),
            "trade_id": raw["t"].to_numpy(dtype=np.int64),
            "is_buyer_maker": raw["m"].to_numpy(dtype=bool),
        },
        index=pd.DatetimeIndex(pd.to_datetime(raw["T"].to_numpy(), unit="ms", utc=True)),
    )


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return load_trades()


@pytest.fixture(scope="module")
def ticks(raw: pd.DataFrame) -> pd.DataFrame:
    return to_ticks(raw)


def decimal_reference(raw: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Slow, obvious candles from the decimal strings (Binance's arithmetic)."""
    time = pd.to_datetime(raw["T"].to_numpy(), unit="ms", utc=True)
    bars = time.floor(timeframe_to_offset(timeframe))
    out = {}
    for bar, g in raw.groupby(bars):
        p = [Decimal(x) for x in g["p"]]
        q = [Decimal(x) for x in g["q"]]
        taker = ~g["m"].to_numpy(dtype=bool)
        vol = sum(q, Decimal(0))
        quote = sum((a * b for a, b in zip(p, q)), Decimal(0))
        out[bar] = {
            "open": float(p[0]),
            "high": float(max(p)),
            "low": float(min(p)),
            "close": float(p[-1]),
            "volume": float(vol),
            "quote_volume": float(quote),
            "trades": len(g),
            "taker_buy_volume": float(sum((b for b, t in zip(q, taker) if t), Decimal(0))),
            "taker_buy_quote_volume": float(
                sum((a * b for a, b, t in zip(p, q, taker) if t), Decimal(0))
            ),
            "vwap": float(quote) / float(vol),
        }
    return pd.DataFrame.from_dict(out, orient="index")


@pytest.mark.parametrize("timeframe", ["1s", "10s", "1m", "3m"])
def test_real_trades_equal_decimal_sums(raw: pd.DataFrame, ticks: pd.DataFrame, timeframe: str):
    got = resample(ticks, timeframe, fill=False)
    ref = decimal_reference(raw, timeframe)
    assert list(got.columns) == list(CANDLE_COLUMNS)
    assert got.index.equals(pd.DatetimeIndex(ref.index))
    for col in CANDLE_COLUMNS:
        if col == "vwap":
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-15)
        else:  # bit-for-bit: the float of the exact decimal sum
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    assert got["trades"].dtype == np.int64


def test_float_sum_would_differ(raw: pd.DataFrame, ticks: pd.DataFrame):
    """The reason for integer sums: pandas' float sums miss Binance's figure (44 of 149 bars)."""
    got = resample(ticks, "1s", fill=False)
    naive = (ticks["price"] * ticks["qty"]).resample("1s").sum()
    assert (naive[naive != 0].to_numpy() != got["quote_volume"].to_numpy()).sum() > 10


def test_real_trades_merge_equals_resample(ticks: pd.DataFrame):
    for fine, coarse in [("1s", "1m"), ("1s", "10s"), ("1m", "3m"), ("1m", "1h"), ("10s", "1d")]:
        merged = merge_candles(resample(ticks, fine), coarse)
        pd.testing.assert_frame_equal(merged, resample(ticks, coarse), check_exact=True)
        merged = merge_candles(resample(ticks, fine, fill=False), coarse, fill=False)
        pd.testing.assert_frame_equal(merged, resample(ticks, coarse, fill=False), check_exact=True)


def test_empty_bars_are_flat_at_previous_close(ticks: pd.DataFrame):
    minute = ticks.index.floor("1min")
    holed = ticks[minute != pd.Timestamp("2024-08-08 23:58", tz="UTC")]
    c = resample(holed, "1m")
    assert len(c) == 3
    flat = c.iloc[1]
    prev_close = c["close"].iloc[0]
    assert (flat[["open", "high", "low", "close", "vwap"]] == prev_close).all()
    assert flat["volume"] == flat["quote_volume"] == flat["trades"] == 0
    assert len(resample(holed, "1m", fill=False)) == 2
    # merging flat 1m bars into 3m skips them for prices
    pd.testing.assert_frame_equal(merge_candles(c, "3m"), resample(holed, "3m"), check_exact=True)
    pd.testing.assert_frame_equal(merge_candles(resample(holed, "1s"), "1m"), c, check_exact=True)


def test_start_end_select_whole_bars(ticks: pd.DataFrame):
    c = resample(ticks, "1m", start="2024-08-08 23:55:30", end="2024-08-09 00:01:00")
    assert c.index[0] == pd.Timestamp("2024-08-08 23:55", tz="UTC")
    assert c.index[-1] == pd.Timestamp("2024-08-09 00:00", tz="UTC")
    assert c.iloc[:2][["open", "close", "vwap"]].isna().all().all()  # no previous close
    assert (c["close"].iloc[-2:] == ticks["price"].iloc[-1]).all()
    assert c["trades"].sum() == len(ticks)
    inner = resample(ticks, "1m", start="2024-08-08 23:58:10", end="2024-08-08 23:58:20")
    assert (
        len(inner) == 1
        and inner["trades"].iloc[0]
        == (ticks.index.floor("1min") == pd.Timestamp("2024-08-08 23:58", tz="UTC")).sum()
    )
    late = resample(ticks, "1m", start="2024-08-09 00:00", end="2024-08-09 00:02")
    assert (late["close"] == ticks["price"].iloc[-1]).all()  # carried from before start
    assert (late["trades"] == 0).all()


def test_is_market_and_aggregate_trade_counts(ticks: pd.DataFrame):
    t = ticks.copy()
    t["is_market"] = True
    t.iloc[5, t.columns.get_loc("is_market")] = False
    t["first_id"] = np.arange(len(t)) * 3
    t["last_id"] = t["first_id"] + 2
    got = resample(t, "1m")
    ref = resample(ticks.iloc[np.r_[0:5, 6 : len(ticks)]], "1m")
    assert (got["trades"] == ref["trades"] * 3).all()
    pd.testing.assert_frame_equal(got.drop(columns="trades"), ref.drop(columns="trades"))


def test_timeframes_and_errors(ticks: pd.DataFrame):
    assert timeframe_to_offset("1m") == pd.Timedelta("1min")
    assert timeframe_to_offset("90min") == pd.Timedelta("90min")
    assert timeframe_to_offset("10s") == pd.Timedelta("10s")
    assert set(TIMEFRAMES) >= {"1s", "1m", "1h", "1d", "12h"}
    for bad in ("1M", "1w", "banana", "0s", "-1min"):
        with pytest.raises(ValueError, match="timeframe"):
            timeframe_to_offset(bad)
    with pytest.raises(ValueError, match="1m, 3m"):
        resample(ticks, "7x")
    with pytest.raises(TypeError):
        resample(ticks.reset_index(drop=True), "1m")
    with pytest.raises(ValueError, match="non-decreasing"):
        resample(ticks.iloc[::-1], "1m")
    with pytest.raises(ValueError, match="qty"):
        resample(ticks.drop(columns="qty"), "1m")
    assert resample(ticks.iloc[:0], "1m").columns.tolist() == list(CANDLE_COLUMNS)
    for col, value in [("price", -1.0), ("qty", float("nan")), ("price", 5e7)]:
        bad = ticks.copy()
        bad.iloc[7, bad.columns.get_loc(col)] = value
        with pytest.raises(ValueError, match="price=.*qty="):
            resample(bad, "1m")


def test_huge_quote_volume_exact():
    """Sums far above 2**64 units of 1e-16 stay exact."""
    idx = pd.DatetimeIndex(["2024-01-01 00:00:01"] * 2000, tz="UTC")
    p, q = "20000000.12345678", "30000000.87654321"
    ticks = pd.DataFrame({"price": float(p), "qty": float(q), "is_buyer_maker": False}, index=idx)
    c = resample(ticks, "1m")
    d = Decimal(p) * Decimal(q) * 2000
    assert c["quote_volume"].iloc[0] == float(d)
    assert c["taker_buy_quote_volume"].iloc[0] == float(d)


def pandas_reference(ticks: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    rule = timeframe_to_offset(timeframe)
    r = ticks.assign(quote=ticks["price"] * ticks["qty"]).resample(rule, origin="epoch")
    ref = pd.DataFrame(
        {
            "open": r["price"].first(),
            "high": r["price"].max(),
            "low": r["price"].min(),
            "close": r["price"].last(),
            "volume": r["qty"].sum(),
            "quote_volume": r["quote"].sum(),
            "trades": r["price"].count(),
        }
    )
    return ref


@st.composite
def tick_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.integers(0, 40_000), min_size=n, max_size=n))  # ms
    t0 = draw(st.integers(0, 10**12))
    prices = draw(st.lists(st.integers(1, 10**7), min_size=n, max_size=n))  # cents
    qtys = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))  # 1e-5
    maker = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    idx = pd.to_datetime(t0 + np.cumsum(gaps), unit="ms", utc=True)
    return pd.DataFrame(
        {
            "price": [float(Decimal(p) / 100) for p in prices],
            "qty": [float(Decimal(q) / 100_000) for q in qtys],
            "trade_id": np.arange(n),
            "is_buyer_maker": maker,
            "_p": [str(Decimal(p) / 100) for p in prices],
            "_q": [str(Decimal(q) / 100_000) for q in qtys],
        },
        index=pd.DatetimeIndex(idx),
    )


@settings(max_examples=40, deadline=None)
@given(tick_frames(), st.sampled_from(["1s", "10s", "1m", "7min"]))
def test_matches_pandas_reference(frame: pd.DataFrame, timeframe: str):
    ticks = frame.drop(columns=["_p", "_q"])
    got = resample(ticks, timeframe)
    ref = pandas_reference(ticks, timeframe)
    assert got.index.equals(ref.index)
    nonempty = ref["trades"] > 0
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[col][nonempty], ref[col][nonempty])
        np.testing.assert_array_equal(got[col][~nonempty], ref["close"].ffill()[~nonempty])
    np.testing.assert_array_equal(got["trades"], ref["trades"])
    np.testing.assert_allclose(got["volume"], ref["volume"], rtol=1e-12)
    np.testing.assert_allclose(got["quote_volume"], ref["quote_volume"], rtol=1e-12)
    # exact against Decimal sums, per bar
    bars = frame.index.floor(timeframe_to_offset(timeframe))
    for bar, g in frame.groupby(bars):
        quote = sum((Decimal(p) * Decimal(q) for p, q in zip(g["_p"], g["_q"])), Decimal(0))
        assert got.loc[bar, "quote_volume"] == float(quote)
        assert got.loc[bar, "volume"] == float(sum(map(Decimal, g["_q"]), Decimal(0)))
    # merge from 1s is exact for 2-decimal prices and 5-decimal quantities (p*q < 9e8 per bar)
    pd.testing.assert_frame_equal(
        merge_candles(resample(ticks, "1s"), timeframe), got, check_exact=True
    )


PACKAGED = Path(__file__).parents[2] / "quantify" / "data"


@pytest.mark.parametrize("symbol", ["btcusdt", "ethusdt"])
def test_packaged_sample_across_midnight(symbol: str):
    """The bundled replay sample (11 minutes, two files split at midnight)."""
    files = sorted(PACKAGED.glob(f"spot-2024-{symbol}_*.trades.gz"))
    if len(files) != 2:
        pytest.skip("bundled sample not present")
    raw = pd.concat([load_trades(f) for f in files], ignore_index=True)
    ticks = to_ticks(raw)
    got = resample(ticks, "1m")
    ref = decimal_reference(raw, "1m")
    assert got.index.equals(pd.DatetimeIndex(ref.index))  # no empty minute in the capture
    for col in CANDLE_COLUMNS:
        if col != "vwap":
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    for coarse in ("5m", "15m", "1h"):
        pd.testing.assert_frame_equal(
            merge_candles(got, coarse), resample(ticks, coarse), check_exact=True
        )
