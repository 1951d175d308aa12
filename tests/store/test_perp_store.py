"""Perpetual data in the store: idempotent appends, merges of older rows, reads as the model's frames."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

import quantify
from quantify.model.perp import (
    PERP_KINDS,
    FundingSettlement,
    OpenInterest,
    empty_perp_frame,
    funding_to_frame,
    liquidations_to_frame,
    marks_to_frame,
    open_interest_to_frame,
)
from quantify.store import open_store
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.perp_parse import liquidation_from_event

DATA = Path(quantify.__file__).parent / "data"
KEY = "binance-usdm:BTCUSDT"


@pytest.fixture()
def store(tmp_path: Path):
    return open_store(f"lmdb://{tmp_path / 'store'}", create=True)


def recorded_mark_frame() -> pd.DataFrame:
    parser = FrameParser()
    with gzip.open(DATA / "usdm-2023-btcusdt_20230405.perp.gz", "rt") as f:
        marks = [parser.parse(line.split(" ", 1)[1]) for line in f if "@markPrice" in line]
    return marks_to_frame(marks)


def test_marks_round_trip_and_appends_are_idempotent(store) -> None:
    frame = recorded_mark_frame()
    half = len(frame) // 2
    assert store.append_perp("mark", {KEY: frame.iloc[:half]}) == {KEY: half}
    # a re-applied journal overlaps what is stored: only the new rows are added
    assert store.append_perp("mark", {KEY: frame.iloc[half - 10:]}) == {KEY: len(frame) - half}
    assert store.append_perp("mark", {KEY: frame}) == {KEY: 0}
    back = store.mark(KEY)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert str(back.next_funding_time.dtype) == "datetime64[ns, UTC]"
    assert store.perp_symbols() == [KEY]
    part = store.mark(KEY, start="2023-04-05T00:00:00Z", end="2023-04-05T00:01:00Z")
    assert len(part) == 60 and part.index[0] >= pd.Timestamp("2023-04-05", tz="UTC")


def test_funding_history_merges_in_order(store) -> None:
    rows = [FundingSettlement("XRPUSDT", 1637193600017 + i * 28_800_000, 1e-4 * (i + 1)) for i in range(10)]
    assert store.append_perp("funding", {"binance-usdm:XRPUSDT": funding_to_frame(rows[5:])}) == {
        "binance-usdm:XRPUSDT": 5}
    # a backfill of older history, overlapping by one
    assert store.append_perp("funding", {"binance-usdm:XRPUSDT": funding_to_frame(rows[:6])}) == {
        "binance-usdm:XRPUSDT": 5}
    back = store.funding("binance-usdm:XRPUSDT")
    pd.testing.assert_frame_equal(back, funding_to_frame(rows), check_freq=False)
    assert store.last_funding_time("binance-usdm:XRPUSDT") == back.index[-1]
    assert store.last_funding_time("binance-usdm:ETHUSDT") is None


def test_open_interest_value_is_filled_in_by_a_later_source(store) -> None:
    t = 1680652800000
    polled = open_interest_to_frame([OpenInterest("BTCUSDT", t, 100.0), OpenInterest("BTCUSDT", t + 300_000, 101.0)])
    store.append_perp("open_interest", {KEY: polled})
    hist = open_interest_to_frame([OpenInterest("BTCUSDT", t, 100.0, 2.8e6)])
    assert store.append_perp("open_interest", {KEY: hist}) == {KEY: 0}
    back = store.open_interest(KEY)
    assert back.open_interest.tolist() == [100.0, 101.0]
    assert back.open_interest_value.iloc[0] == 2.8e6 and np.isnan(back.open_interest_value.iloc[1])


def test_liquidations_and_empty_reads(store) -> None:
    event = orjson.loads(b'{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT",'
                         b'"f":"IOC","q":"0.014","p":"9910","ap":"9911","X":"FILLED","l":"0.014","z":"0.014",'
                         b'"T":1568014460891}}')
    frame = liquidations_to_frame([liquidation_from_event(event)])
    store.append_perp("liquidations", {KEY: frame})
    pd.testing.assert_frame_equal(store.liquidations(KEY), frame, check_freq=False)
    for kind in PERP_KINDS:
        empty = getattr(store, kind if kind != "liquidations" else "liquidations")("binance-usdm:ETHUSDT")
        assert empty.empty and list(empty.columns) == list(empty_perp_frame(kind).columns)
    with pytest.raises(ValueError, match="kind must be one of"):
        store.append_perp("marks", {KEY: frame})
    with pytest.raises(ValueError, match="columns"):
        store.append_perp("mark", {KEY: frame})
