"""Fuzz the recorded-file readers: any file content in, trades or a ``FeedError`` out.

The first input byte picks the file name (one per recorded format: the
symbol and a kline interval come from the name), the container (plain,
gzip, a zip archive holding the rest, or such an archive with bytes of its
headers overwritten, as the rest of the input says) and the reader: :func:`~quantify.venues.binance.recordings.read_trades` (which reads
frames, REST JSON and CSVs) or :func:`~quantify.ingest.load.read_history_file`
(``quantify load``: also zip archives and klines CSVs). Their documented
failure is :class:`~quantify.exceptions.FeedError` naming the file; what
they return must hold only what a store can take (ids and times >= 0).
Run: ``python tests/fuzz/fuzz_recordings.py [-atheris_runs=N] [corpus dir]``.
"""

from __future__ import annotations

import gzip
import io
import logging
import sys
import tempfile
import zipfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["quantify.venues", "quantify.ingest.load"]):
    from quantify.exceptions import FeedError
    from quantify.ingest.load import read_history_file
    from quantify.venues.binance.recordings import read_trades

DIR = Path(tempfile.mkdtemp(prefix="quantify-fuzz-"))
NAMES = ("BTCUSDT-trades-2024-08-08.csv", "spot-2024-btcusdt_20240808.trades", "btcusdt_aggtrades.json",
         "BTCUSDT-aggTrades-2024-08-08.csv", "BTCUSDT-1m-2024-08-08.csv")
CONTAINERS = ("plain", "gzip", "zip", "damaged zip")


def _write(name: str, container: str, body: bytes) -> Path:
    if container == "plain":
        path = DIR / name
        path.write_bytes(body)
    elif container == "gzip":
        path = DIR / (name + ".gz")
        path.write_bytes(gzip.compress(body, mtime=0))
    else:
        # zipfile is not instrumented: damage the archive here rather than hope mutations find it
        fdp = atheris.FuzzedDataProvider(body) if container == "damaged zip" else None
        if fdp is not None:
            body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, body)
        archive = bytearray(buf.getvalue())
        while fdp is not None and fdp.remaining_bytes() >= 2:
            archive[fdp.ConsumeIntInRange(0, len(archive) - 1)] = fdp.ConsumeInt(1) & 0xFF
        path = DIR / (name.rsplit(".", 1)[0] + ".zip")
        path.write_bytes(bytes(archive))
    return path


def one_input(data: bytes) -> None:
    if not data:
        return
    pick, body = data[0], data[1:]
    container = CONTAINERS[(pick // len(NAMES)) % len(CONTAINERS)]
    path = _write(NAMES[pick % len(NAMES)], container, body)
    history = container in ("zip", "damaged zip") or pick & 0x80
    try:
        frames = read_history_file(path)[1] if history else read_trades(path)
    except FeedError as exc:
        assert path.name in str(exc), f"error does not name the file: {exc}"
        return
    finally:
        path.unlink()
    for frame in frames.values():
        assert frame.index.tz is not None and (frame.index.asi8 >= 0).all(), frame.index
        if "trade_id" in frame:
            assert {"price", "qty", "first_id", "last_id"} <= set(frame.columns), frame.columns
            assert (frame["trade_id"] >= 0).all(), frame["trade_id"]


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
