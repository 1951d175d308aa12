"""The replay stream of ``quantify demo`` and ``quantify lab --replay``.

A local replay server loops the bundled recordings (spot and USD-M
BTCUSDT/ETHUSDT, 2024-08-08) and the ingestion service streams them into a
store, in this process, through the same code path it uses for Binance.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from quantify.config import IngestConfig
from quantify.exceptions import WriterLocked
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.replay.config import ReplayConfig, default_files
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.store.lease import read_writer_info, writer_alive

__all__ = ["DEMO_BOOKS", "DEMO_PERPS", "DEMO_STORE", "DEMO_SYMBOLS", "fresh_demo_store", "start_replay_stream"]

DEMO_STORE = Path("~/.quantify/demo")
#: What the replay streams: the bundled spot and USD-M recordings, side by side in one store.
DEMO_SYMBOLS = ("BTCUSDT", "ETHUSDT", "binance-usdm:BTCUSDT", "binance-usdm:ETHUSDT")
#: Whose order books it streams too: the recordings with depth diffs and book tickers.
DEMO_BOOKS = ("BTCUSDT", "binance-usdm:BTCUSDT")
#: Whose perpetual data (mark price, liquidations, open interest, funding) it streams and polls:
#: the USD-M instruments. A replay without those streams accepts them and sends nothing.
DEMO_PERPS = tuple(s for s in DEMO_SYMBOLS if s.startswith("binance-usdm:"))


def fresh_demo_store(uri: str | None) -> str:
    """``uri`` if given, else the demo store (``lmdb://~/.quantify/demo``), wiped.

    Raises
    ------
    WriterLocked
        If a running process (another demo or ``quantify lab --replay``)
        writes the demo store: it is left alone.
    """
    if uri is not None:
        return uri
    path = DEMO_STORE.expanduser()
    if writer_alive(path):
        info = read_writer_info(path)
        who = info.describe() if info is not None else "another process"
        raise WriterLocked(f"the demo store lmdb://{path} is in use by {who}; stop it first, "
                           f"or pass --store URI")
    if path.exists():
        shutil.rmtree(path)
    return f"lmdb://{path}"


def start_replay_stream(uri: str, speed: float = 1.0) -> tuple[ReplayThread, IngestService]:
    """Start the looping replay of the bundled data and the ingestion of it into ``uri``.

    Parameters
    ----------
    uri : str
        The store the ingestion service writes (it takes the store's writer lock).
    speed : float
        Replay speed: 1 real time, 10 ten times faster, 0 as fast as possible.

    Returns
    -------
    (ReplayThread, IngestService)
        Both running in daemon threads of this process. Stop them with
        ``service.join(timeout)`` (flushes what was received), then ``replay.stop()``.
    """
    replay = ReplayThread(ReplayConfig(files=tuple(default_files()), speed=speed, loop=True)).start()
    config = IngestConfig(symbols=DEMO_SYMBOLS, books=DEMO_BOOKS, perps=DEMO_PERPS, store=uri, ws_url=replay.ws_url,
                          rest_url=replay.rest_url, status_interval=0.5)
    service = IngestService(config, listeners=standard_listeners(open_store(config.store, create=True), config))
    try:
        service.start_in_thread()
    except BaseException:
        replay.stop()
        raise
    return replay, service
