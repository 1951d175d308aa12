"""Fuzz the frame parser: any bytes or text in, an event or ``None`` out, malformed frames counted.

Three kinds of input, chosen by the first byte: raw bytes; the same decoded
as text (the parser takes both); and a Binance event, taken from the seed
frames, with fields replaced by hostile JSON values or removed (so the
coverage reaches the field checks, which byte mutations of JSON rarely do).
Properties: nothing but an event or ``None`` comes out; a frame counted as
malformed returns nothing; a trade has integer ids and finite numbers; bytes
and their text give the same event; and the fast paths for combined trade
and book (depth, bookTicker) frames return exactly what the general path
does, or decline.

Run: ``python tests/fuzz/fuzz_parse.py [-atheris_runs=N] [corpus dir]`` (atheris
is coverage-guided; a crash prints the input and exits non-zero).
"""

from __future__ import annotations

import json
import logging
import sys

import atheris

with atheris.instrument_imports(include=["quantify"]):
    from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot
    from quantify.model.trades import ServerShutdown, Trade
    from quantify.venues.binance.parse import (
        FrameParser,
        Kline,
        SubscriptionReply,
        _fast_book,
        _fast_trade,
    )

PARSER = FrameParser(max_frame_bytes=4096)
EVENTS = (Trade, Kline, ServerShutdown, SubscriptionReply, DepthDiff, BookTicker, DepthSnapshot)

TRADE = {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259, "p": "61837.63000000",
         "q": "0.02000000", "T": 1723161255342, "m": True, "M": True}
AGG = {"e": "aggTrade", "E": 1626992741575, "a": 16599292, "s": "CTKUSDT", "p": "1.01100", "q": "10",
       "f": 23961322, "l": 23961324, "T": 1626992741421, "m": False, "X": "MARKET"}
KLINE = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 1, "T": 2, "s": "BTCUSDT", "i": "1m", "o": "1",
         "c": "1", "h": "1", "l": "1", "v": "1", "n": 1, "x": False, "q": "1", "V": "1", "Q": "1"}}
DEPTH = {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 50093239189, "u": 50093239202, "pu": 50093239188,
         "b": [["61737.63000000", "0.00000000"]], "a": [["61837.64000000", "1.54698000"]]}
TICKER = {"u": 50093239212, "s": "BTCUSDT", "b": "61837.63", "B": "3.788", "a": "61837.64", "A": "1.546"}
TEMPLATES = (TRADE, AGG, KLINE, DEPTH, TICKER, {"e": "serverShutdown", "E": 1723161255343}, {"result": None, "id": 1},
             {"lastUpdateId": 1, "bids": [["1", "1"]], "asks": []})
HOSTILE = (None, True, False, 0, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 1.5, -0.0, 1e308, "", "0",
           "-1", "nan", "inf", "-inf", "1e400", "NaN", "0x10", "1_000", " 1", "١", [], {}, [1], {"e": "trade"},
           "trade", "aggTrade", "MARKET", "LIMIT")


def _structured(fdp: atheris.FuzzedDataProvider) -> bytes:
    event = dict(TEMPLATES[fdp.ConsumeIntInRange(0, len(TEMPLATES) - 1)])
    keys = [*event, "X", "stream", "data", "k", "b", "a", "pu"]
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        choice = fdp.ConsumeIntInRange(0, 3)
        if choice == 0:
            event.pop(key, None)
        elif choice == 1:
            event[key] = fdp.ConsumeInt(9)
        elif choice == 2:
            event[key] = fdp.ConsumeUnicodeNoSurrogates(12)
        else:
            event[key] = HOSTILE[fdp.ConsumeIntInRange(0, len(HOSTILE) - 1)]
    if fdp.ConsumeBool():
        stream = fdp.PickValueInList(["btcusdt@trade", "ctkusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker", "", 1])
        event = {"stream": stream, "data": event}
    return json.dumps(event, separators=(",", ":")).encode()  # orjson would refuse ints beyond 64 bits


def _checked(frame: bytes | str) -> object:
    before = PARSER.malformed_total
    event = PARSER.parse(frame)
    if event is None:
        return None
    assert isinstance(event, EVENTS), type(event)
    assert PARSER.malformed_total == before, "an event returned for a frame counted as malformed"
    if type(event) is Trade:
        assert type(event.trade_id) is int and type(event.price) is float
        assert 0 <= event.trade_id < 2**63 and 0 <= event.time <= (2**63 - 1) // 1_000_000, event
        assert event.price - event.price == 0.0 and event.qty - event.qty == 0.0, "non-finite"
    return event


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    if mode == 2:
        body = _structured(atheris.FuzzedDataProvider(body))
    event = _checked(body)
    if mode >= 1 and len(body) <= PARSER.max_frame_bytes // 4:  # text: at most 4 bytes a character
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return
        assert _checked(text) == event, (body, event)
    fast = _fast_trade(body)
    if fast is not None:
        assert fast == PARSER._parse_any(body), (body, fast)
    book = _fast_book(body, body[:64])
    if book is not None:
        assert book == PARSER._parse_any(body), (body, book)


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
