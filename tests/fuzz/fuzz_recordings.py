"""Fuzz the recorded-file readers: any file content in, trades or a ``FeedError`` out.

The input is written to a file (plain, or gzip when the first byte is odd)
under a name of each recorded format, then read with
:func:`~quantify.feed.recordings.read_trades`, whose documented failure is
:class:`~quantify.exceptions.FeedError` naming the file.
Run: ``python tests/fuzz/fuzz_recordings.py [-atheris_runs=N] [corpus dir]``.
"""

from __future__ import annotations

import gzip
import logging
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["quantify"]):
    from quantify.exceptions import FeedError
    from quantify.feed.recordings import read_trades

DIR = Path(tempfile.mkdtemp(prefix="quantify-fuzz-"))
NAMES = ("BTCUSDT-trades-2024-08-08.csv", "spot-2024-btcusdt_20240808.trades", "btcusdt_aggtrades.json",
         "BTCUSDT-aggTrades-2024-08-08.csv")


def one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    body = data[1:]
    path = DIR / (name + (".gz" if data[0] & 1 else ""))
    path.write_bytes(gzip.compress(body) if data[0] & 1 else body)
    try:
        frames = read_trades(path)
    except FeedError as exc:
        assert str(path.name) in str(exc) or str(path) in str(exc), f"error does not name the file: {exc}"
        return
    for frame in frames.values():
        assert {"price", "qty", "trade_id"} <= set(frame.columns), frame.columns


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
