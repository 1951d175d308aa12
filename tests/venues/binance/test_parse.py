"""The sans-I/O frame parser: every event kind, and malformed frames counted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot
from quantify.model.trades import ServerShutdown, Trade, trades_to_frame
from quantify.venues.binance.parse import FrameParser, Kline, SubscriptionReply, _fast_book, _fast_trade

SPOT = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT",'
        '"t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}')
USDM = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,'
        '"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"INSURANCE_FUND","m":false}}')
AGG = ('{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10",'
       '"f":23961322,"l":23961324,"T":1626992741421,"m":false}')


def test_combined_spot_trade() -> None:
    t = FrameParser().parse(SPOT)
    assert t == Trade("BTCUSDT", 3735683259, 61837.63, 0.02, 1723161255342, True,
                      3735683259, 3735683259, True, 1723161255343)


def test_usdm_trade_keeps_non_market_type() -> None:
    t = FrameParser().parse(USDM)
    assert isinstance(t, Trade) and t.is_market is False and t.qty == 0.006


def test_raw_aggregate_trade_counts_underlying_trades() -> None:
    t = FrameParser().parse(AGG)
    assert isinstance(t, Trade)
    assert (t.trade_id, t.first_id, t.last_id) == (16599292, 23961322, 23961324)


def test_kline_shutdown_and_replies() -> None:
    p = FrameParser()
    k = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {
        "t": 0, "T": 59999, "s": "BTCUSDT", "i": "1m", "o": "1.0", "c": "2.0", "h": "2.5", "l": "0.5",
        "v": "10", "n": 3, "x": True, "q": "15", "V": "4", "Q": "6"}}
    kline = p.parse(orjson.dumps({"stream": "btcusdt@kline_1m", "data": k}))
    assert isinstance(kline, Kline) and kline.trades == 3 and kline.closed and kline.volume == "10"
    assert p.parse('{"e":"serverShutdown","E":1700000000000}') == ServerShutdown(1700000000000)
    assert p.parse('{"result":null,"id":1}') == SubscriptionReply(1, None, None)
    assert p.parse('{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}') is None
    assert p.malformed_total == 0


@pytest.mark.parametrize(
    "frame, reason",
    [
        ('{"stream":"btcusdt@trade","data":{"e":"trade"', "json"),
        ("not json at all", "json"),
        ('{"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","t":"1","p":"1","q":"1","T":1,"m":true}}', "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}}', "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","p":"1","q":"1","T":1,"m":true}}', "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"NaN","q":"1","T":1,"m":true}}',
         "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"inf","T":1,"m":true}}',
         "fields"),
        # found by tests/fuzz/fuzz_recordings.py: a time beyond an int64 ns index
        ('{"stream":"x@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1",'
         '"T":17231612553430000000,"m":true}}', "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":-5,"p":"1","q":"1","T":1,"m":true}}',
         "fields"),
        # found by tests/fuzz/fuzz_parse.py: the fast path took an event time beyond 64 bits that
        # the general path reads as a float; an event time is now an integer time like T on both
        ('{"stream":"x@trade","data":{"e":"trade","E":2240809193832263022969,"s":"BTCUSDT","t":1,"p":"1",'
         '"q":"1","T":1,"m":true}}', "fields"),
        ('{"stream":"x@trade","data":{"e":"trade","E":"1","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}',
         "fields"),
        ('{"stream":"x@trade","data":[1,2]}', "fields"),
        # found by tests/fuzz/fuzz_parse.py: the fast path accepted invalid UTF-8 in an unknown key
        (b'{"stream":"x@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,'
         b'"m":true,"\xb0":true}}', "json"),
        ("[1,2,3]", "fields"),
    ],
)
def test_malformed_frames_are_counted_not_raised(frame: str | bytes, reason: str) -> None:
    p = FrameParser()
    assert p.parse(frame) is None
    assert p.malformed[reason] == 1 and reason in p.samples


def test_oversized_frame_is_rejected() -> None:
    p = FrameParser(max_frame_bytes=100)
    assert p.parse(SPOT) is None and p.malformed["oversized"] == 1


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=4) | st.dictionaries(
                                  st.sampled_from(["e", "s", "t", "p", "q", "T", "m", "data", "stream", "a", "f", "l", "k"]),
                                  c, max_size=8), max_leaves=20).map(orjson.dumps)))
def test_parser_never_raises(frame: bytes | str) -> None:
    p = FrameParser()
    event = p.parse(frame)
    assert event is None or isinstance(event, (Trade, Kline, ServerShutdown, SubscriptionReply, DepthDiff, BookTicker,
                                                DepthSnapshot))


_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.sampled_from(["trade", "aggTrade", "BTCUSDT", "61837.63", "0.02", "1e3", "nan", "x", "MARKET", "ADL", ""]),
)
_TRADE = orjson.loads(SPOT)["data"]
_AGG = orjson.loads(AGG)


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from([_TRADE, _AGG]),
       changes=st.dictionaries(st.sampled_from(list("eEstpqTmMXafl")), _FIELD_VALUES, max_size=3),
       dropped=st.sets(st.sampled_from(list("eEstpqTmXafl")), max_size=2))
def test_fast_path_agrees_with_the_general_path(base, changes, dropped) -> None:
    """The msgspec fast path returns exactly what the general path does, or defers to it."""
    data = {k: v for k, v in {**base, **changes}.items() if k not in dropped}
    frame = orjson.dumps({"stream": "btcusdt@trade", "data": data})
    fast = _fast_trade(frame)
    general = FrameParser()._parse_any(frame)
    if fast is not None:
        assert fast == general and type(fast.price) is float
    assert FrameParser().parse(frame) == general


_DEPTH = {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 50093239189, "u": 50093239202,
          "b": [["61737.63000000", "0.00000000"], ["61730.17", "1.5"]], "a": [["61837.64000000", "1.54698000"]]}
_USDM_DEPTH = {**_DEPTH, "pu": 50093239188, "T": 1723161255200}
_TICKER = {"u": 50093239212, "s": "BTCUSDT", "b": "61837.63000000", "B": "3.78826000", "a": "61837.64000000",
           "A": "1.54698000"}
_USDM_TICKER = {**_TICKER, "e": "bookTicker", "E": 1723161255208, "T": 1723161255200}
_BOOK_VALUES = st.one_of(
    _FIELD_VALUES, st.sampled_from([[["1.5", "2"]], [["nan", "1"]], [["-1", "1"]], [["1", "inf"]], [[1, 2]],
                                    [["1"]], [], "depthUpdate", "bookTicker", -1]),
)


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from([("btcusdt@depth@100ms", _DEPTH), ("btcusdt@depth@0ms", _USDM_DEPTH),
                             ("btcusdt@bookTicker", _TICKER), ("btcusdt@bookTicker", _USDM_TICKER)]),
       changes=st.dictionaries(st.sampled_from(["e", "E", "s", "U", "u", "pu", "b", "a", "B", "A", "T"]),
                               _BOOK_VALUES, max_size=3),
       dropped=st.sets(st.sampled_from(["e", "E", "s", "U", "u", "pu", "b", "a", "B", "A"]), max_size=2))
def test_book_fast_path_agrees_with_the_general_path(base, changes, dropped) -> None:
    """Depth and bookTicker frames: the fast path returns what the general path does, or defers to it."""
    stream, event = base
    data = {k: v for k, v in {**event, **changes}.items() if k not in dropped}
    frame = orjson.dumps({"stream": stream, "data": data})
    fast = _fast_book(frame, frame[:64])
    general = FrameParser()._parse_any(frame)
    if fast is not None:
        assert fast == general
    assert FrameParser().parse(frame) == general


def test_recorded_book_frames_take_the_fast_path() -> None:
    from quantify.venues.binance.recordings import read_frames

    n = 0
    for path in sorted((Path(__file__).resolve().parents[3] / "quantify" / "data").glob("*.book.gz")):
        for _, frame in read_frames(path):
            if '"stream"' in frame:
                fast = _fast_book(frame, frame[:64])
                assert fast is not None and fast == FrameParser()._parse_any(frame), frame[:120]
                n += 1
    assert n > 150_000


def test_trades_to_frame_schema() -> None:
    p = FrameParser()
    df = trades_to_frame([p.parse(SPOT), p.parse(SPOT)])  # type: ignore[list-item]
    assert list(df.columns) == ["price", "qty", "trade_id", "is_buyer_maker", "first_id", "last_id", "is_market"]
    assert str(df.index.tz) == "UTC" and df.index.name == "time"
    assert df.index[0].value == 1723161255342 * 1_000_000
    assert trades_to_frame([]).empty
