"""Fuzz the frame parser: any bytes in, an event or ``None`` out, malformed frames counted.

Run: ``python tests/fuzz/fuzz_parse.py [-atheris_runs=N] [corpus dir]`` (atheris
is coverage-guided; a crash prints the input and exits non-zero).
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(include=["quantify"]):
    from quantify.feed.parse import FrameParser, Kline, ServerShutdown, SubscriptionReply, Trade

PARSER = FrameParser(max_frame_bytes=4096)
EVENTS = (Trade, Kline, ServerShutdown, SubscriptionReply)


def one_input(data: bytes) -> None:
    before = PARSER.malformed_total
    event = PARSER.parse(data)
    if event is None:
        return
    assert isinstance(event, EVENTS), type(event)
    assert PARSER.malformed_total == before, "an event returned for a frame counted as malformed"
    if type(event) is Trade:
        assert type(event.trade_id) is int and type(event.price) is float
        assert event.price - event.price == 0.0 and event.qty - event.qty == 0.0, "non-finite"


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
