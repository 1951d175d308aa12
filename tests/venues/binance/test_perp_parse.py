"""Perpetual data parsing: recorded markPrice@1s events, forceOrder, and the REST answers."""

from __future__ import annotations

import asyncio
import gzip
import math
from pathlib import Path

import httpx
import orjson
import pytest

import quantify
from quantify.model.perp import (
    FUNDING_COLUMNS,
    LIQUIDATION_COLUMNS,
    MARK_COLUMNS,
    PERP_KINDS,
    empty_perp_frame,
    funding_to_frame,
    liquidations_to_frame,
    marks_to_frame,
)
from quantify.venues.binance import SPOT, USDM
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.perp_parse import funding_from_rows, open_interest_hist_from_rows
from quantify.venues.binance.rest import USDM_API, BinanceRest, RestConfig

DATA = Path(quantify.__file__).parent / "data"
FORCE = (b'{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT",'
         b'"S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910.5","X":"FILLED","l":"0.014",'
         b'"z":"0.014","T":1568014460891}}}')


def recorded_marks() -> list[dict]:
    out = []
    with gzip.open(DATA / "usdm-2023-btcusdt_20230405.perp.gz", "rt") as f:
        for line in f:
            if "@markPrice" in line:
                out.append(orjson.loads(line.split(" ", 1)[1])["data"])
    return out


def test_recorded_mark_price_events_parse_exactly() -> None:
    parser = FrameParser()
    events = recorded_marks()
    assert len(events) == 514
    marks = [parser.parse(orjson.dumps({"stream": "btcusdt@markPrice@1s", "data": e})) for e in events]
    assert parser.malformed_total == 0
    for e, m in zip(events, marks, strict=True):
        assert (m.mark_price, m.index_price, m.settle_price, m.funding_rate, m.next_funding_time, m.event_time) == (
            float(e["p"]), float(e["i"]), float(e["P"]), float(e["r"]), e["T"], e["E"])
    frame = marks_to_frame(marks)
    assert tuple(frame.columns) == MARK_COLUMNS and frame.index.is_monotonic_increasing
    # the capture crosses the 2023-04-05 00:00 settlement: the next funding time moves 8 hours on
    assert sorted(frame.next_funding_time.unique().astype("int64") // 10**6) == [1680652800000, 1680681600000]


def test_force_order_frame() -> None:
    liq = FrameParser().parse(FORCE)
    assert liq.side == "SELL" and liq.trade_time == 1568014460891 and liq.avg_price == 9910.5
    frame = liquidations_to_frame([liq])
    assert tuple(frame.columns) == LIQUIDATION_COLUMNS
    assert frame.side.iloc[0] == -1 and frame.notional.iloc[0] == 9910.5 * 0.014


@pytest.mark.parametrize("bad", [b'"S":"SELL"', b'"ap":"9910.5"', b'"T":1568014460891'])
def test_a_bad_force_order_is_counted_not_raised(bad: bytes) -> None:
    parser = FrameParser()
    frame = FORCE.replace(bad, bad.split(b":")[0] + b":null")
    assert parser.parse(frame) is None and parser.malformed["fields"] == 1


def test_empty_frames_have_their_columns() -> None:
    for kind in PERP_KINDS:
        assert empty_perp_frame(kind).empty
    with pytest.raises(ValueError, match="kind must be one of"):
        empty_perp_frame("marks")


def test_funding_rows_and_frame() -> None:
    rows = [{"symbol": "BTCUSDT", "fundingRate": "-0.03750000", "fundingTime": 1570608000000,
             "markPrice": "34287.54619963"},
            {"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": 1570636800000, "markPrice": ""}]
    frame = funding_to_frame(funding_from_rows(rows))
    assert tuple(frame.columns) == FUNDING_COLUMNS
    assert frame.funding_rate.tolist() == [-0.0375, 0.0001] and math.isnan(frame.mark_price.iloc[1])
    oi = open_interest_hist_from_rows([{"symbol": "BTCUSDT", "sumOpenInterest": "20403.637",
                                        "sumOpenInterestValue": "150570784.07809979", "timestamp": "1583127900000"}])
    assert oi[0].time == 1583127900000 and oi[0].open_interest == 20403.637


def test_perp_streams_are_on_the_market_route() -> None:
    assert USDM.perp_stream_urls("ws://127.0.0.1:9/public", ["BTCUSDT"], 200) == [
        "ws://127.0.0.1:9/market/stream?streams=btcusdt@markPrice@1s/btcusdt@forceOrder"]
    assert len(USDM.perp_stream_urls(None, [f"S{i}" for i in range(150)], 200)) == 2
    with pytest.raises(ValueError, match="binance-usdm"):
        SPOT.perp_stream_urls(None, ["BTCUSDT"], 200)


def test_rest_perp_endpoints() -> None:
    seen: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, dict(request.url.params)))
        answers = {
            "/fapi/v1/fundingRate": [{"symbol": "XRPUSDT", "fundingRate": "0.00010000", "fundingTime": 1637193600017}],
            "/fapi/v1/premiumIndex": {"symbol": "BTCUSDT", "markPrice": "28155.1", "indexPrice": "28165.0",
                                      "estimatedSettlePrice": "28141.4", "lastFundingRate": "0.00002760",
                                      "interestRate": "0.0001", "nextFundingTime": 1680681600000,
                                      "time": 1680652800010},
            "/fapi/v1/openInterest": {"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011},
            "/futures/data/openInterestHist": [],
        }
        return httpx.Response(200, json=answers[request.url.path])

    async def run() -> None:
        async with BinanceRest(RestConfig(api=USDM_API), transport=httpx.MockTransport(handler)) as rest:
            funding = await rest.funding_rate("XRPUSDT", 1637193600000)
            assert funding[0].funding_time == 1637193600017 and math.isnan(funding[0].mark_price)
            assert (await rest.premium_index("BTCUSDT")).funding_rate == 2.76e-05
            assert (await rest.open_interest("BTCUSDT")).open_interest == 10659.509
            assert await rest.open_interest_hist("BTCUSDT", "1h") == []
            with pytest.raises(ValueError, match="period"):
                await rest.open_interest_hist("BTCUSDT", "3m")
        async with BinanceRest(RestConfig(), transport=httpx.MockTransport(handler)) as spot:
            with pytest.raises(ValueError, match="USD-M"):
                await spot.funding_rate("BTCUSDT")

    asyncio.run(run())
    assert seen[0] == ("/fapi/v1/fundingRate", {"symbol": "XRPUSDT", "limit": "1000", "startTime": "1637193600000"})
    assert USDM_API.weight("premiumIndex") == 1 and USDM_API.weight("/futures/data/openInterestHist") == 0
