"""The continuous 1m aggregate equals a from-scratch resample, batch by batch and after a crash."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantify.analytics import resample
from quantify.config import IngestConfig
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import Store, open_store
from quantify.store.candles import CANDLES_1M, CandleAggregator
from quantify.venues.binance.recordings import read_trades, sample_files

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"


def load(paths: list[Path]) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        for sym, frame in read_trades(path).items():
            parts.setdefault(sym, []).append(frame)
    return {sym: pd.concat(frames) for sym, frames in parts.items()}


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    """The bundled recording: BTCUSDT and ETHUSDT spot trades across midnight."""
    return load(sample_files())


def batches(frames: dict[str, pd.DataFrame], seed: int, low: int = 1, high: int = 3000) -> Iterator[dict]:
    """The frames cut into batches of random sizes, every symbol in every batch (while it lasts)."""
    rng = np.random.default_rng(seed)
    pos = dict.fromkeys(frames, 0)
    while any(pos[s] < len(f) for s, f in frames.items()):
        out = {}
        for sym, frame in frames.items():
            n = int(rng.integers(low, high))
            if pos[sym] < len(frame):
                out[sym] = frame.iloc[pos[sym] : pos[sym] + n]
                pos[sym] += n
        yield out


def feed(store: Store, agg: CandleAggregator | None, frames: dict[str, pd.DataFrame], seed: int) -> None:
    for batch in batches(frames, seed):
        store.append_ticks(batch)
        if agg is not None:
            agg(batch)


def assert_aggregate_exact(store: Store, symbols: list[str]) -> None:
    """Every stored 1m bar equals resample over all ticks; only the open minute is missing."""
    for sym in symbols:
        agg = store.library(CANDLES_1M).read(sym).data
        ref = resample(store.ticks(sym), "1m")
        assert len(agg) == len(ref) - 1, sym  # the last minute is still open
        pd.testing.assert_frame_equal(agg, ref.iloc[:-1], check_names=False, check_freq=False)


def test_aggregate_equals_resample_over_uneven_batches(lmdb_uri: str, sample: dict) -> None:
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    agg.start(store)  # an empty store: nothing to catch up
    feed(store, agg, sample, seed=1)
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])
    assert agg.bars_written == 2 * 11  # 23:54 .. 00:04 closed, 00:05 open
    assert agg.stats()["candle_batches"] == agg.batches > 0


def test_throttled_writes_lag_but_reads_do_not(lmdb_uri: str, sample: dict) -> None:
    """Closed bars wait in memory between writes; ``ohlcv`` reads what is missing from ticks."""
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=3600)
    feed(store, agg, sample, seed=11)
    written = store.library(CANDLES_1M).read("BTCUSDT").data
    assert 0 < len(written) < 11  # the first closed minutes only
    for sym in sample:
        pd.testing.assert_frame_equal(store.ohlcv(sym), resample(store.ticks(sym), "1m"), check_freq=False)
    agg.close()  # the service's stop
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])


def test_one_trade_batches_and_repeated_batches(lmdb_uri: str, sample: dict) -> None:
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    full = sample["BTCUSDT"]
    cut = int(full.index.searchsorted(pd.Timestamp("2024-08-08 23:56", tz="UTC")))
    btc = full.iloc[: cut + 150]  # big batches, then one trade at a time across a minute's close
    store.append_ticks({"BTCUSDT": btc.iloc[: cut - 150]})
    agg({"BTCUSDT": btc.iloc[: cut - 150]})
    for i in range(cut - 150, len(btc)):
        one = {"BTCUSDT": btc.iloc[i : i + 1]}
        store.append_ticks(one)
        agg(one)
        if i % 500 == 0:
            agg(one)  # delivered twice: skipped by trade id
    assert_aggregate_exact(store, ["BTCUSDT"])


def test_kill_between_append_and_aggregation_is_caught_up(lmdb_uri: str, sample: dict) -> None:
    """Ticks appended without the aggregator (a kill -9 in between): ``start`` catches up."""
    store = open_store(lmdb_uri, create=True)
    first = {s: f.iloc[: len(f) // 3] for s, f in sample.items()}
    middle = {s: f.iloc[len(f) // 3 : 2 * len(f) // 3] for s, f in sample.items()}
    rest = {s: f.iloc[2 * len(f) // 3 :] for s, f in sample.items()}
    feed(store, CandleAggregator(store, write_interval=0), first, seed=2)
    feed(store, None, middle, seed=3)  # stored, never aggregated: the writer died
    assert len(store.library(CANDLES_1M).read("BTCUSDT").data) < 5
    agg = CandleAggregator(store, write_interval=0)  # the restarted writer
    agg.start(store)
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])
    feed(store, agg, rest, seed=4)
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])


def test_ticks_loaded_without_aggregates(lmdb_uri: str, sample: dict) -> None:
    store = open_store(lmdb_uri, create=True)
    feed(store, None, sample, seed=5)
    assert not store.library(CANDLES_1M).has_symbol("BTCUSDT")
    CandleAggregator(store, write_interval=0).start(store)
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])


def test_batch_before_start_is_not_counted_twice(lmdb_uri: str, sample: dict) -> None:
    """The service replays its journal (a batch reaches listeners) before calling ``start``."""
    store = open_store(lmdb_uri, create=True)
    old = {s: f.iloc[:2000] for s, f in sample.items()}
    recovered = {s: f.iloc[2000:2500] for s, f in sample.items()}
    feed(store, None, old, seed=6)
    store.append_ticks(recovered)
    agg = CandleAggregator(store, write_interval=0)
    agg(recovered)  # first sight of the symbols: catch up from the store, which holds this batch
    agg.start(store)
    feed(store, agg, {s: f.iloc[2500:] for s, f in sample.items()}, seed=7)
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])


@pytest.mark.parametrize(
    "files",
    [
        ["rest-aggtrades/xrpeth_aggtrades_2019-10-11_13.json.gz"],  # aggregate trades, 2.5 sparse days
        ["mixed-2023/usdm_btcusdt_20230404.dat.gz", "mixed-2023/usdm_btcusdt_20230405.dat.gz"],  # non-MARKET
        ["usdm-2024/btcusdt_20240808.gz", "usdm-2024/ethusdt_20240808.gz"],
    ],
    ids=["xrpeth-aggtrades", "usdm-2023", "usdm-2024"],
)
def test_shared_recordings(lmdb_uri: str, files: list[str]) -> None:
    paths = [SHARED / f for f in files]
    if not all(p.exists() for p in paths):
        pytest.skip(f"recordings not found under {SHARED}")
    frames = load(paths)
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    feed(store, agg, frames, seed=8)
    assert_aggregate_exact(store, sorted(frames))
    # flat bars for the minutes without trades, at the previous close
    bars = store.library(CANDLES_1M).read(min(frames)).data
    flat = bars[bars["trades"] == 0]
    if len(flat):
        prev = bars["close"].shift(1)[bars["trades"] == 0]
        np.testing.assert_array_equal(flat["open"], prev)
        assert (flat["volume"] == 0).all()


def test_a_batch_costs_milliseconds(lmdb_uri: str, sample: dict) -> None:
    """Batches of ~5k trades, each closing a minute: work per batch stays small.

    Not a timed assertion (benchmarks measure): a generous bound that only
    catches an accidental full re-read of the store per batch.
    """
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    feed(store, agg, {s: f.iloc[:200] for s, f in sample.items()}, seed=9)  # warm up
    agg.batches, agg.seconds = 0, 0.0
    for batch in batches({s: f.iloc[200:] for s, f in sample.items()}, seed=10, low=4000, high=6000):
        store.append_ticks(batch)
        agg(batch)
    assert agg.seconds / agg.batches < 0.5


def test_ingestion_service_maintains_the_aggregate(lmdb_uri: str, sample: dict) -> None:
    """Through the real stream: replay at full speed → service → candles_1m."""
    with ReplayThread(ReplayConfig(speed=0)) as replay:
        cfg = IngestConfig(store=lmdb_uri, ws_url=replay.ws_url, rest_url=replay.rest_url, journal=False)
        service = IngestService(cfg, listeners=standard_listeners(open_store(lmdb_uri, create=True), cfg))
        service.start_in_thread()
        store = open_store(lmdb_uri)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                last = store.last_trades()
                if all(s in last and last[s][0] == int(f["trade_id"].iloc[-1]) for s, f in sample.items()):
                    break
                time.sleep(0.2)
        finally:
            service.join(timeout=10)
    assert service.listener_errors == 0
    assert_aggregate_exact(store, ["BTCUSDT", "ETHUSDT"])
    for sym in sample:
        pd.testing.assert_frame_equal(store.ohlcv(sym, "1m"), resample(store.ticks(sym), "1m"), check_freq=False)


def test_known_empty_symbols_skip_the_catch_up_and_forget_brings_it_back(lmdb_uri: str, sample: dict,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A symbol the writer knows has no ticks is aggregated from its first batch without reading the store."""
    store = open_store(lmdb_uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    for sym in sample:
        agg.known_empty(sym)
    catch_ups: list[str] = []
    real = agg.catch_up
    monkeypatch.setattr(agg, "catch_up", lambda sym: (catch_ups.append(sym), real(sym)))
    feed(store, agg, sample, seed=5)
    agg.close()
    assert catch_ups == []
    assert_aggregate_exact(store, list(sample))
    agg.forget("BTCUSDT")  # e.g. taken over after another writer stored some of it
    agg({"BTCUSDT": sample["BTCUSDT"].iloc[-5:]})
    assert catch_ups == ["BTCUSDT"]
