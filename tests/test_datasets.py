"""The bundled data sets of :mod:`quantify.datasets`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.datasets import CANDLES_2018_COINS, CANDLES_2018_FIELDS, candles_2018, candles_2018_ohlcv
from quantify.model.perp import FUNDING_COLUMNS as MODEL_FUNDING_COLUMNS
from quantify.model.perp import MARK_COLUMNS as MODEL_MARK_COLUMNS

# bars each coin lacks on the shared grid, counted in the source files (see quantify/data/README.md)
MISSING_2018 = {"ADA": 40, "DASH": 2, "ETC": 1, "ETH": 0, "LTC": 0, "NXT": 0, "TRX": 6, "XLM": 0,
                "XMR": 2, "ZEC": 3}


def test_candles_2018_is_one_wide_frame_on_the_five_minute_utc_grid() -> None:
    closes = candles_2018()
    assert list(closes.columns) == list(CANDLES_2018_COINS)
    assert isinstance(closes.index, pd.DatetimeIndex) and str(closes.index.tz) == "UTC"
    assert closes.index[0] == pd.Timestamp("2018-01-10 04:55", tz="UTC")
    assert closes.index[-1] == pd.Timestamp("2018-01-30 04:50", tz="UTC")
    assert len(closes) == 5760
    assert (np.diff(closes.index.asi8) == pd.Timedelta("5min").value).all()
    assert closes.isna().sum().to_dict() == MISSING_2018
    assert closes.dtypes.eq(np.float64).all()
    assert (closes.stack() > 0).all()  # prices in BTC
    assert 0.08 < closes["ETH"].iloc[0] < 0.11  # ETH/BTC in January 2018


def test_candles_2018_fields_are_the_coins_ohlcv_columns() -> None:
    eth = candles_2018_ohlcv("ETH")
    assert list(eth.columns) == list(CANDLES_2018_FIELDS)
    assert eth.index.is_monotonic_increasing and eth.index.is_unique
    assert str(eth.index.tz) == "UTC"
    assert (eth["high"] >= eth[["open", "close", "low"]].max(axis=1)).all()
    assert (eth["low"] <= eth[["open", "close"]].min(axis=1)).all()
    for field in CANDLES_2018_FIELDS:
        wide = candles_2018(field)
        for coin in ("ADA", "ETH"):
            own = candles_2018_ohlcv(coin)[field]
            pd.testing.assert_series_equal(wide[coin].dropna(), own, check_names=False, check_freq=False)
    assert candles_2018_ohlcv("ada").equals(candles_2018_ohlcv("ADA"))
    assert qf.datasets.candles_2018 is candles_2018  # the public spelling


@pytest.mark.parametrize("field", ["Close", "vwap", ""])
def test_candles_2018_rejects_an_unknown_field_naming_it(field: str) -> None:
    with pytest.raises(ValueError, match=f"got '{field}'"):
        candles_2018(field)


@pytest.mark.parametrize("coin", ["BTC", "ETHBTC", "DOGE"])
def test_candles_2018_ohlcv_rejects_an_unknown_coin_naming_it(coin: str) -> None:
    with pytest.raises(ValueError, match=f"got '{coin}'.*") as info:
        candles_2018_ohlcv(coin)
    assert "ADA" in str(info.value)


def test_sample_quotes_is_the_spot_book_sample_quotes_frame() -> None:
    quotes = qf.datasets.sample_quotes()
    assert list(quotes.columns) == ["bid_price", "bid_qty", "ask_price", "ask_qty", "update_id",
                                    "first_update_id", "recv_time"]
    assert len(quotes) == 6493 and quotes["update_id"].is_monotonic_increasing
    assert quotes.index.is_monotonic_increasing and str(quotes.index.tz) == "UTC"
    assert quotes.index[0] == pd.Timestamp("2024-08-08 23:54:15.408", tz="UTC")
    assert quotes.index[-1] < pd.Timestamp("2024-08-09 00:05:06", tz="UTC")
    # the bid side is unknown (NaN) only while the price is below the snapshot's lowest bid
    assert not quotes["ask_price"].isna().any() and quotes["bid_price"].isna().sum() == 918
    both = quotes.dropna()
    assert (both["bid_price"] < both["ask_price"]).all() and (both[["bid_qty", "ask_qty"]] > 0).all().all()
    quotes["bid_price"] = 0.0  # a copy: the next call is unchanged
    assert qf.datasets.sample_quotes()["bid_price"].max() > 60_000


def test_funding_2021_is_the_xrpusdt_funding_frame_with_its_marks() -> None:
    history = qf.datasets.funding_2021()
    funding, marks = history.funding, history.marks
    assert list(funding.columns) == list(MODEL_FUNDING_COLUMNS)
    assert len(funding) == 91 and len(marks) == 91 and str(funding.index.tz) == "UTC"
    assert funding.index[0] == pd.Timestamp("2021-11-18 00:00:00.017", tz="UTC")
    assert funding.index[-1].floor("1h") == pd.Timestamp("2021-12-18 00:00", tz="UTC")
    assert (funding.index - funding.index.floor("1h") < pd.Timedelta("1s")).all()  # ms after the hour
    assert (np.diff(funding.index.floor("1h").asi8) == pd.Timedelta("8h").value).all()
    assert funding["funding_rate"].iloc[0] == 0.0001
    assert 0 < funding["funding_rate"].mean() < 0.0002
    # each settlement's mark is the open of the 8-hour mark candle starting at its hour
    np.testing.assert_array_equal(funding["mark_price"].to_numpy(), marks["open"].to_numpy())
    assert marks["open"].iloc[0] == 1.0959 and list(marks.columns) == ["open", "high", "low", "close"]
    funding["funding_rate"] = 1.0  # a copy: the next call is unchanged
    assert qf.datasets.funding_2021().funding["funding_rate"].max() < 0.01


def test_sample_marks_is_the_recorded_btcusdt_mark_frame() -> None:
    marks = qf.datasets.sample_marks()
    assert list(marks.columns) == list(MODEL_MARK_COLUMNS)
    assert len(marks) == 514 and marks.index.is_monotonic_increasing and str(marks.index.tz) == "UTC"
    assert marks.index[0] >= pd.Timestamp("2023-04-04 23:58:20", tz="UTC")
    assert marks.index[-1] < pd.Timestamp("2023-04-05 00:06:55", tz="UTC")
    settle = pd.Timestamp("2023-04-05 00:00", tz="UTC")
    nft = marks["next_funding_time"]
    assert set(nft.unique()) == {settle, settle + pd.Timedelta("8h")}
    assert (nft[marks.index < settle] == settle).all()
    assert 27_000 < marks["mark_price"].median() < 29_000
    assert (marks["mark_price"] - marks["index_price"]).abs().max() / marks["index_price"].min() < 1e-3
