"""USD-M futures ingestion end to end, against the replay server on loopback.

The USD-M recording's facts (``quantify/data/README.md``): BTCUSDT 21,313
trades, ids 5266583935..5266605247 with no gap. The spot recording's
BTCUSDT: 19,904 trades, ids 3735683259..3735703162. One replay serves both
markets on one port (spot on ``/stream``, USD-M ``@trade`` on
``/public/stream``, REST ``/api/v3`` and ``/fapi/v1``); in the store they are
``BTCUSDT`` and ``binance-usdm:BTCUSDT``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import last_trades, stored_ids, wait_for

from quantify.config import IngestConfig
from quantify.ingest.service import IngestService, stream_urls
from quantify.replay.config import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.venues import venue
from quantify.venues.binance.recordings import sample_files, usdm_sample_files

USDM_BTC = ("binance-usdm:BTCUSDT", 21_313, 5266583935, 5266605247)
SPOT_BTC = ("BTCUSDT", 19_904, 3735683259, 3735703162)




def assert_exact(uri: str, *facts: tuple[str, int, int, int]) -> None:
    for key, count, first, last in facts:
        ids = stored_ids(uri, key)
        assert len(ids) == count, f"{key}: {len(ids)} trades stored, expected {count}"
        assert ids == list(range(first, last + 1)), f"{key}: ids not contiguous"


def complete(uri: str, *facts: tuple[str, int, int, int]) -> bool:
    last = last_trades(uri)
    return all(last.get(key, (0,))[0] == final for key, _, _, final in facts)


def usdm_replay(**kw: object) -> ReplayConfig:
    """A replay of the bundled USD-M recording only."""
    return ReplayConfig(files=tuple(usdm_sample_files()), **kw)  # type: ignore[arg-type]


def ingest_usdm(uri: str, replay_cfg: ReplayConfig, timeout: float = 120, **kw: object) -> IngestService:
    """Ingest ``binance-usdm:BTCUSDT`` from a replay until every recorded trade is stored."""
    with ReplayThread(replay_cfg) as replay:
        service = IngestService(IngestConfig(
            symbols=("binance-usdm:BTCUSDT",), store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
            backoff_initial=0.2, backoff_min=0.2, backoff_max=1.0, **kw))  # type: ignore[arg-type]
        service.start_in_thread()
        try:
            assert wait_for(lambda: complete(uri, USDM_BTC), timeout), service.status()
        finally:
            service.join(timeout=10)
    assert_exact(uri, USDM_BTC)
    return service


def test_usdm_stream_urls_use_the_routed_paths() -> None:
    usdm = venue("binance-usdm")
    assert usdm.stream_urls(None, ["BTCUSDT"], "trade", 1024) == [
        "wss://fstream.binance.com/public/stream?streams=btcusdt@trade"]
    assert usdm.stream_urls("ws://127.0.0.1:9/market", ["ETHUSDT"], "aggTrade", 10) == [
        "ws://127.0.0.1:9/market/stream?streams=ethusdt@aggTrade"]
    # 450 symbols: USD-M allows 200 streams a connection whatever is asked for
    cfg = IngestConfig(symbols=[f"binance-usdm:S{i}USDT" for i in range(450)] + ["BTCUSDT"],
                       streams_per_connection=1000)
    urls = stream_urls(cfg)
    assert len(urls) == 4 and [u.count("@trade") for u in urls] == [200, 200, 50, 1]
    assert urls[3] == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade"
    # a per-venue override wins over the override for all venues
    cfg = IngestConfig(symbols=("BTCUSDT", "binance-usdm:BTCUSDT"), ws_url="ws://127.0.0.1:1",
                       ws_urls={"binance-usdm": "ws://127.0.0.1:2"})
    assert stream_urls(cfg) == ["ws://127.0.0.1:1/stream?streams=btcusdt@trade",
                                "ws://127.0.0.1:2/public/stream?streams=btcusdt@trade"]


def test_usdm_full_speed_replay_stores_every_trade_once(lmdb_uri: str) -> None:
    service = ingest_usdm(lmdb_uri, usdm_replay(speed=0), 60)
    status = service.status()
    assert status.trades_stored == USDM_BTC[1]
    ticks = open_store(lmdb_uri).ticks(USDM_BTC[0])
    assert ticks["is_market"].all()  # the recording's X is MARKET throughout


def test_usdm_drops_and_corrupt_frames_lose_nothing(lmdb_uri: str) -> None:
    service = ingest_usdm(lmdb_uri, usdm_replay(speed=40, drop_every=2.0, corrupt_fraction=0.05, seed=7))
    status = service.status()
    print(f"\nUSD-M faults: reconnects={status.reconnects} malformed={status.malformed_frames} "
          f"backfilled={status.backfilled} rest_requests={status.rest_requests} (trades lost 0, duplicates 0)")
    assert status.reconnects >= 2
    assert status.malformed_frames > 100
    assert status.backfilled >= status.malformed_frames * 0.5


def _ingest_process(uri: str, replay: ReplayThread, log: Path, symbols: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quantify", "ingest", "--store", uri, "--symbols", symbols,
         "--ws-url", replay.ws_url, "--rest-url", replay.rest_url],
        stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


# In the default run, a USD-M writer's kill -9 recovery (journal, /fapi/v1 backfill) is covered by
# test_book_ingest.py::test_sigkill_mid_stream_resumes_the_stored_book (both markets, every trade
# checked) and the spot path twice over by test_service.py::test_sigkill_twice_loses_nothing.
@pytest.mark.slow
def test_usdm_sigkill_twice_loses_nothing(lmdb_uri: str, tmp_path: Path) -> None:
    """kill -9 the USD-M writer twice mid-replay; its journal and /fapi/v1 backfill make it whole."""
    log = tmp_path / "ingest.log"
    with ReplayThread(usdm_replay(speed=40, drop_every=3.0, corrupt_fraction=0.05, seed=3)) as replay:
        proc = _ingest_process(lmdb_uri, replay, log, USDM_BTC[0])
        try:
            for _ in range(2):
                assert wait_for(lambda: len(stored_ids(lmdb_uri, USDM_BTC[0])) > 0, 60), log.read_text()[-3000:]
                time.sleep(2.5)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                time.sleep(0.5)
                proc = _ingest_process(lmdb_uri, replay, log, USDM_BTC[0])
            assert wait_for(lambda: complete(lmdb_uri, USDM_BTC), 120), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert_exact(lmdb_uri, USDM_BTC)


# Both markets in one store under drops and corrupt frames run by default in
# test_book_ingest.py::test_faults_lose_no_quote_nor_trade_and_every_gap_is_in_the_ledger.
@pytest.mark.parametrize("faults", [
    pytest.param({}, id="clean"),
    pytest.param({"drop_every": 3.0, "corrupt_fraction": 0.05, "seed": 5}, id="drops-and-corrupt",
                 marks=pytest.mark.slow),
])
def test_spot_and_usdm_btcusdt_in_one_store(lmdb_uri: str, tmp_path: Path, faults: dict) -> None:
    """One replay serving both markets, one ``quantify ingest`` for both: each exactly its recording."""
    log = tmp_path / "ingest.log"
    config = ReplayConfig(files=(*sample_files(), *usdm_sample_files()), speed=40 if faults else 0, **faults)
    with ReplayThread(config) as replay:
        proc = _ingest_process(lmdb_uri, replay, log, "BTCUSDT,binance-usdm:BTCUSDT")
        try:
            assert wait_for(lambda: complete(lmdb_uri, SPOT_BTC, USDM_BTC), 150), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert_exact(lmdb_uri, SPOT_BTC, USDM_BTC)
    store = open_store(lmdb_uri)
    assert {SPOT_BTC[0], USDM_BTC[0]} <= set(store.symbols())
    # the journal of each venue is its own, and empty once everything is stored
    journal = Path(lmdb_uri.removeprefix("lmdb://")) / "journal"
    assert not list(journal.glob("journal-*.log")) and not list((journal / "binance-usdm").glob("journal-*.log"))


async def _drain(url: str, count: int) -> None:
    import websockets

    async with websockets.connect(url, max_queue=None, close_timeout=2) as ws:
        for _ in range(count):
            await ws.recv()


@pytest.mark.parametrize("kind, rows", [("trades", USDM_BTC[1]), ("aggTrades", None), ("klines", 6)])
def test_usdm_backfill_over_fapi(tmp_path: Path, kind: str, rows: int | None) -> None:
    """``backfill`` of ``binance-usdm:BTCUSDT`` goes to /fapi/v1 (pages of 500 trades) into its own key."""
    import asyncio

    from quantify.ingest.backfill import run_backfill

    store = open_store(f"lmdb://{tmp_path}/store", create=True)
    with ReplayThread(usdm_replay(speed=0)) as replay:
        # REST serves only trades the clock has released: play the whole recording first
        asyncio.run(asyncio.wait_for(_drain(replay.ws_url + "/public/stream?streams=btcusdt@trade",
                                            USDM_BTC[1]), 60))
        res = run_backfill(store, USDM_BTC[0], "2024-08-08 23:54", "2024-08-09 00:00", kind=kind,
                           rest_url=replay.rest_url, progress=False)
    assert res.complete and res.symbol == USDM_BTC[0]
    if kind == "klines":
        assert res.rows == rows
        return
    ticks = open_store(f"lmdb://{tmp_path}/store").ticks(USDM_BTC[0])
    if kind == "trades":
        assert res.rows == rows and ticks["trade_id"].tolist() == list(range(USDM_BTC[2], USDM_BTC[3] + 1))
        assert res.pages >= rows // 500  # USD-M historicalTrades: 500 a page
    else:
        assert int((ticks.last_id - ticks.first_id + 1).sum()) == USDM_BTC[1]
    assert "BTCUSDT" not in store.symbols()  # spot BTCUSDT untouched
