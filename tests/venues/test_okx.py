"""OKX v5 trades: the parser on the recorded session, and ``quantify load`` beside Binance ticks.

The recording (``tests/data/okx-v5-session.ws.gz``, see tests/data/README.md)
is an 11-second session of 2022-05-13: 18 subscribe acks, 28 ``tickers``,
290 ``books`` and 74 ``trades`` pushes (69 BTC-USDT, 4 BTC-USD-220527, 1
UNI-USD-SWAP), one trade each.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pytest

from quantify.analytics import resample
from quantify.ingest.load import read_history_file
from quantify.model.instrument import Instrument, Market
from quantify.model.trades import TICK_COLUMNS, Trade
from quantify.store import open_store
from quantify.venues import okx
from quantify.venues.binance.recordings import read_frames

DATA = Path(__file__).resolve().parents[1] / "data"
SESSION = DATA / "okx-v5-session.ws.gz"
BINANCE = DATA / "usdm-2024-btcusdt_20240808.trades.gz"


@pytest.fixture(scope="module")
def messages() -> list[str]:
    """The received messages of the session, in order."""
    return [frame for _, frame in read_frames(SESSION)]


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[dict]]:
    """The recorded trade items per instId, read with plain JSON (the reference)."""
    out: dict[str, list[dict]] = {}
    for _, frame in read_frames(SESSION):
        msg = orjson.loads(frame)
        if msg.get("arg", {}).get("channel") == "trades" and "data" in msg:
            for item in msg["data"]:
                out.setdefault(item["instId"], []).append(item)
    return out


def _push(inst: str = "BTC-USDT", **fields: object) -> str:
    item = {"instId": inst, "tradeId": "338476307", "px": "30236", "sz": "0.0002",
            "side": "buy", "ts": "1652459224818", **fields}
    return orjson.dumps({"arg": {"channel": "trades", "instId": inst}, "data": [item]}).decode()


# -- the parser on the recording -------------------------------------------------------

def test_every_recorded_trade_is_parsed_once_per_instrument(messages, recorded) -> None:
    parser = okx.OkxParser()
    trades = [t for m in messages for t in parser.parse(m)]
    per_key = Counter(t.symbol for t in trades)
    assert per_key == {f"okx:{i}": len(items) for i, items in recorded.items()}
    assert per_key == {"okx:BTC-USDT": 69, "okx:BTC-USD-220527": 4, "okx:UNI-USD-SWAP": 1}
    assert parser.malformed_total == 0
    assert parser.events == {"subscribe": 18}
    assert parser.ignored == {"books": 290, "tickers": 28}
    assert len(messages) == 18 + 290 + 28 + 74  # nothing else was received


def test_fields_map_to_the_venue_neutral_trade(messages, recorded) -> None:
    parser = okx.OkxParser()
    trades = [t for m in messages for t in parser.parse(m)]
    items = [i for m in messages for i in orjson.loads(m).get("data", [])
             if orjson.loads(m).get("arg", {}).get("channel") == "trades"]
    assert len(trades) == len(items) == 74
    for t, item in zip(trades, items):
        assert isinstance(t, Trade)
        assert t.symbol == f"okx:{item['instId']}"
        assert t.trade_id == t.first_id == t.last_id == int(item["tradeId"])
        assert t.price == float(item["px"]) and t.qty == float(item["sz"])
        assert round(t.qty * 1e8) == round(float(item["sz"]) * 1e8)  # exact in 1e-8 units
        assert t.time == t.event_time == int(item["ts"])
        assert t.is_buyer_maker is (item["side"] == "sell")
        assert t.is_market is True
    sides = Counter(i["side"] for i in items)
    assert sides == {"buy": 48, "sell": 26}
    assert sum(not t.is_buyer_maker for t in trades) == 48


def test_ids_increase_per_instrument_but_are_not_consecutive_by_promise(recorded) -> None:
    assert okx.CONSECUTIVE_IDS is False
    for items in recorded.values():
        ids = [int(i["tradeId"]) for i in items]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    btc = [int(i["tradeId"]) for i in recorded["BTC-USDT"]]
    assert btc[0] == 338476307 and btc[-1] == 338476307 + 68  # consecutive here, not by contract


def _book_sides(messages: list[str]) -> dict[str, Counter]:
    """Per side, where each trade printed against the book just before it (from ``books``)."""
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    where: dict[str, Counter] = {"buy": Counter(), "sell": Counter()}
    for frame in messages:
        msg = orjson.loads(frame)
        channel = msg.get("arg", {}).get("channel")
        if channel == "books" and "data" in msg:
            inst = msg["arg"]["instId"]
            if msg["action"] == "snapshot":
                books[inst] = ({}, {})
            bids, asks = books[inst]
            for levels, book in ((msg["data"][0]["bids"], bids), (msg["data"][0]["asks"], asks)):
                for px, sz, *_ in levels:
                    if float(sz) == 0:
                        book.pop(float(px), None)
                    else:
                        book[float(px)] = float(sz)
        elif channel == "trades" and "data" in msg:
            for item in msg["data"]:
                if item["instId"] in books:
                    bids, asks = books[item["instId"]]
                    px = float(item["px"])
                    at = "ask" if px >= min(asks) else "bid" if px <= max(bids) else "inside"
                    where[item["side"]][at] += 1
    return where


def test_side_is_the_takers_side_as_the_recorded_book_shows(messages) -> None:
    # A taker buy lifts the offer, a taker sell hits the bid: every trade of the
    # session after the first book snapshot printed on the side its `side` names.
    where = _book_sides(messages)
    assert where == {"buy": Counter(ask=46), "sell": Counter(bid=25)}


def test_instruments_of_the_recording() -> None:
    assert okx.instrument_of("BTC-USDT") == Instrument("okx", Market.SPOT, "BTC-USDT")
    assert okx.instrument_of("BTC-USD-220527").market is Market.DELIVERY
    assert okx.instrument_of("UNI-USD-SWAP").market is Market.PERPETUAL
    assert okx.instrument_of("BTC-USDT-SWAP").key == "okx:BTC-USDT-SWAP"


# -- what is not a trade, and what is malformed ----------------------------------------

@pytest.mark.parametrize(("frame", "counter", "key"), [
    ("pong", "ignored", "pong"),
    ('{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
     "events", "subscribe"),
    ('{"event":"unsubscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}', "events", "unsubscribe"),
    ('{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}', "events", "error"),
    ('{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}', "ignored", "tickers"),
    ('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[]}', "ignored", "books"),
    ('{"something":"else"}', "ignored", "other"),
    ("not json", "malformed", "json"),
    ("[1, 2]", "malformed", "fields"),
    ('{"arg":{"channel":"trades","instId":"BTC-USDT"}}', "malformed", "fields"),
    ('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":{"tradeId":"1"}}', "malformed", "fields"),
    ('{"arg":"trades","data":[]}', "malformed", "fields"),
    ('{"event":7}', "malformed", "fields"),
    (_push(side="buyer"), "malformed", "fields"),
    (_push(tradeId=338476307), "malformed", "fields"),
    (_push(tradeId="-1"), "malformed", "fields"),
    (_push(tradeId="99999999999999999999"), "malformed", "fields"),
    (_push(px="nan"), "malformed", "fields"),
    (_push(px="1e5"), "malformed", "fields"),
    (_push(sz="1_0"), "malformed", "fields"),
    (_push(ts="1652459224818.5"), "malformed", "fields"),
    (_push(ts="9999999999999999"), "malformed", "fields"),
    (_push(instId="ETH-USDT"), "malformed", "fields"),
    (_push(px=None), "malformed", "fields"),
    (_push("BTC-USD-220527-30000-C"), "malformed", "instrument"),  # options are not supported
])
def test_other_and_malformed_messages_are_counted_never_raised(frame: str, counter: str, key: str) -> None:
    parser = okx.OkxParser()
    assert parser.parse(frame) == []
    assert parser.parse(frame.encode()) == []
    assert getattr(parser, counter) == {key: 2}
    if counter == "malformed":
        assert parser.malformed_total == 2 and key in parser.samples
    else:
        assert parser.malformed_total == 0


def test_error_reply_is_kept_and_oversized_messages_are_refused() -> None:
    parser = okx.OkxParser(max_frame_bytes=300)
    parser.parse('{"event":"error","code":"60018","msg":"Wrong URL or channel:trades"}')
    assert parser.last_error == {"code": "60018", "msg": "Wrong URL or channel:trades"}
    assert parser.parse(_push() + " " * 300) == []
    assert parser.malformed == {"oversized": 1}


def test_a_push_of_several_trades_keeps_their_order_and_rejects_whole_on_a_bad_one() -> None:
    items = [{"instId": "BTC-USDT", "tradeId": str(i), "px": "30000.5", "sz": "0.01",
              "side": "sell", "ts": "1652459224818"} for i in (10, 12, 11)]
    frame = {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": items}
    parser = okx.OkxParser()
    assert [t.trade_id for t in parser.parse(orjson.dumps(frame))] == [10, 12, 11]
    items[1]["px"] = "oops"
    assert parser.parse(orjson.dumps(frame)) == [] and parser.malformed == {"fields": 1}


def test_subscribe_message() -> None:
    msg = orjson.loads(okx.subscribe_message(["BTC-USDT", "btc-usdt-swap"]))
    assert msg == {"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USDT"},
                                               {"channel": "trades", "instId": "BTC-USDT-SWAP"}]}
    # the recorded client sent the same shape
    sent = [line for line in _lines(SESSION) if " <- " in line]
    assert sent and all(orjson.loads(s.split(": ", 1)[1])["op"] == "subscribe" for s in sent)
    with pytest.raises(ValueError, match="BTCUSDT"):
        okx.subscribe_message(["BTCUSDT"])
    with pytest.raises(ValueError, match="no instIds"):
        okx.subscribe_message([])


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


# -- the reader and the load dispatch ---------------------------------------------------

def test_session_is_told_from_binance_recordings() -> None:
    assert okx.is_session(SESSION)
    assert _lines(SESSION)[0].startswith(okx.DEFAULT_WS_URL)
    for other in ("cryptofeed-BINANCE_FUTURES.ws.gz", "usdm-2024-btcusdt_20240808.trades.gz",
                  "xrpeth_aggtrades_2019-10-11_13.json.gz"):
        assert not okx.is_session(DATA / other)


def test_read_history_file_returns_tick_frames_per_instrument_key(recorded) -> None:
    kind, frames = read_history_file(SESSION)
    assert kind == "ticks"
    assert set(frames) == {"okx:BTC-USDT", "okx:BTC-USD-220527", "okx:UNI-USD-SWAP"}
    for key, frame in frames.items():
        items = recorded[key.removeprefix("okx:")]
        assert tuple(frame.columns) == TICK_COLUMNS
        assert frame.index.tz is not None and str(frame.index.tz) == "UTC"
        assert frame["trade_id"].tolist() == [int(i["tradeId"]) for i in items]
        assert (frame.index.asi8 // 1_000_000).tolist() == [int(i["ts"]) for i in items]
    # Binance recordings of the same line format still read, under their market (a USD-M session)
    kind, frames = read_history_file(DATA / "cryptofeed-BINANCE_FUTURES.ws.gz")
    assert kind == "ticks" and frames and all(k.startswith("binance-usdm:") for k in frames)


# -- end to end: quantify load beside Binance ticks -------------------------------------

def _load(uri: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quantify", "load", *map(str, files), "--store", uri],
                          check=False, capture_output=True, text=True, timeout=300)


def test_quantify_load_stores_okx_trades_beside_binance(lmdb_uri: str, recorded) -> None:
    proc = _load(lmdb_uri, BINANCE)
    assert proc.returncode == 0, proc.stderr
    before = open_store(lmdb_uri)
    binance = {s: before.ticks(s) for s in before.symbols()}
    assert binance and all(len(t) for t in binance.values())
    del before

    proc = _load(lmdb_uri, SESSION)
    assert proc.returncode == 0, proc.stderr
    assert "okx:BTC-USDT: 69 read, 69 added" in proc.stdout

    store = open_store(lmdb_uri)
    assert set(store.symbols()) == set(binance) | {"okx:BTC-USDT", "okx:BTC-USD-220527", "okx:UNI-USD-SWAP"}
    for sym, ticks in binance.items():  # untouched
        pd.testing.assert_frame_equal(store.ticks(sym), ticks)

    ticks = store.ticks("okx:BTC-USDT")
    items = recorded["BTC-USDT"]
    assert len(ticks) == 69
    assert ticks["trade_id"].tolist() == [int(i["tradeId"]) for i in items]
    assert ticks["price"].tolist() == [float(i["px"]) for i in items]
    assert ticks["qty"].tolist() == [float(i["sz"]) for i in items]
    assert ticks["is_buyer_maker"].tolist() == [i["side"] == "sell" for i in items]
    assert (ticks.index.asi8 // 1_000_000).tolist() == [int(i["ts"]) for i in items]
    pd.testing.assert_frame_equal(ticks, read_history_file(SESSION)[1]["okx:BTC-USDT"],
                                  check_freq=False)

    # candles of an OKX instrument come from the same kernel as any other
    pd.testing.assert_frame_equal(store.ohlcv("okx:BTC-USDT", "1s"), resample(ticks, "1s"))

    # loading again adds nothing (ids decide)
    proc = _load(lmdb_uri, SESSION)
    assert proc.returncode == 0 and "0 added" in proc.stdout
