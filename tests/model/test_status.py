"""Status records: round trips, tolerant reading, the JSON of ``quantify status``."""

from __future__ import annotations

import dataclasses

import pandas as pd

from quantify.model.status import (
    InstrumentStatus,
    StoreStatus,
    WriterState,
    WriterStatus,
    is_replay_url,
)

T = pd.Timestamp("2024-08-08 12:00:00.123", tz="UTC")


def _writer(**kw: object) -> WriterStatus:
    inst = {
        "BTCUSDT": InstrumentStatus("BTCUSDT", rows_this_run=10, last_id=99, last_time=T, gaps_found=2,
                                    gaps_filled=1, gaps_open=1),
        "binance-usdm:BTCUSDT": InstrumentStatus("binance-usdm:BTCUSDT", rows_this_run=3, last_id=7),
    }
    base: dict[str, object] = {
        "state": WriterState.RUNNING, "writer": "pid 1 on h", "pid": 1, "host": "h", "heartbeat": 1000.0,
        "started": 900.0, "store": "lmdb:///x", "stream": "trade", "ws_url": "ws://127.0.0.1:9443",
        "ticks_per_second": 12.5, "trades_stored": 13, "reconnects": 2, "instruments": inst,
        "listeners": {"alerts_fired": 1, "candle_batches": 4}}
    base.update(kw)
    return WriterStatus(**base)  # type: ignore[arg-type]


def test_writer_status_round_trips_through_its_dict() -> None:
    w = _writer()
    assert WriterStatus.from_dict(w.to_dict()) == w
    sharded = _writer(owner="w1", lease_ttl=30.0, owned=("BTCUSDT",), skipped={"ETHUSDT": "w2"}, lease_errors=1)
    assert WriterStatus.from_dict(sharded.to_dict()) == sharded


def test_published_dict_keeps_the_keys_of_earlier_releases() -> None:
    d = _writer().to_dict()
    for key in ("writer", "pid", "state", "heartbeat", "started", "store", "stream", "ws_url",
                "ticks_per_second", "store_latency_ms", "frames", "trades_received", "trades_stored",
                "malformed_frames", "malformed_by_reason", "reconnects", "backfilled", "symbols"):
        assert key in d
    assert d["state"] == "running" and d["alerts_fired"] == 1  # listener stats stay flat too
    assert d["symbols"]["BTCUSDT"]["last_time_ms"] == int(T.value // 1_000_000)
    assert "owner" not in d  # lease keys only for workers of a sharded store


def test_from_dict_ignores_unknown_keys_and_defaults_missing_ones() -> None:
    old = {"state": "running", "heartbeat": 5.0, "trades_stored": 7, "alerts_fired": 3,
           "symbols": {"BTCUSDT": {"last_id": 4, "gaps_found": 1, "from_the_future": True}},
           "a_key_from_a_newer_writer": [1, 2]}
    w = WriterStatus.from_dict(old)
    assert w.state is WriterState.RUNNING and w.trades_stored == 7 and w.reconnects == 0
    assert w.listeners == {"alerts_fired": 3}  # flat listener stats of older writers
    assert w.instruments["BTCUSDT"].last_id == 4 and w.instruments["BTCUSDT"].gaps_filled == 0
    assert WriterStatus.from_dict({}).state is WriterState.STOPPED
    assert WriterStatus.from_dict({"state": "hibernating", "trades_stored": "x"}).trades_stored == 0


def test_summary_and_html() -> None:
    w = _writer()
    text = w.summary()
    assert text.startswith("running · lmdb:///x · 12 ticks/s") and "REPLAY" in text
    assert "binance-usdm:BTCUSDT" in text and "gaps 2 found, 1 filled, 1 open" in text
    assert "<table" in w._repr_html_() and "binance-usdm:BTCUSDT" in w._repr_html_()
    assert is_replay_url("ws://localhost:1") and not is_replay_url("wss://stream.binance.com:9443")
    assert not dataclasses.replace(w, ws_url="wss://stream.binance.com:9443").replay


def _store_status(alive: bool) -> StoreStatus:
    inst = InstrumentStatus("BTCUSDT", rows=5, first_time=T, last_time=T, first_id=1, last_id=5, gaps_found=2)
    return StoreStatus(store="lmdb:///x", writers=(dataclasses.replace(_writer(), alive=alive),),
                       instruments=(inst,), checked=1002.0)


def test_store_status_json_keeps_its_keys() -> None:
    d = _store_status(True).to_dict()
    assert list(d) == ["store", "writer_alive", "writer", "writer_state", "heartbeat_age_s",
                       "ticks_per_second", "counters", "symbols"]
    assert d["writer_alive"] and d["writer_state"] == "running" and d["heartbeat_age_s"] == 2.0
    assert d["ticks_per_second"] == 12.5 and d["counters"]["reconnects"] == 2
    assert d["symbols"] == [{"symbol": "BTCUSDT", "rows": 5, "first_time": T.isoformat(),
                             "last_time": T.isoformat(), "first_id": 1, "last_id": 5, "gaps_found": 2,
                             "gaps_filled": 0, "gaps_unfilled": 0, "duplicates_dropped": 0}]
    dead = _store_status(False).to_dict()
    assert not dead["writer_alive"] and dead["writer_state"] == "stopped" and dead["ticks_per_second"] == 0.0
    none = StoreStatus(store="mem://x").to_dict()
    assert none["writer"] is None and none["writer_state"] is None and none["symbols"] == []


def test_store_status_reads_its_json_back() -> None:
    s = _store_status(True)
    back = StoreStatus.from_dict({**s.to_dict(), "checked": s.checked})
    assert back.instruments == s.instruments
    assert back.to_dict() == s.to_dict()
    assert "writer  alive, running: pid 1 on h" in s.summary() and "BTCUSDT" in s.summary()
    assert "writer  none running (last: pid 1 on h)" in _store_status(False).summary()
    assert "<table" in s._repr_html_()


def test_sharded_store_status() -> None:
    w = dataclasses.replace(_writer(owner="w1", owned=("BTCUSDT",)), alive=True)
    inst = InstrumentStatus("BTCUSDT", rows=5, owner="w1", lease_alive=True, lease_age_s=1.5,
                            lease_expires_in_s=20.0)
    s = StoreStatus(store="s3://h:b", writers=(w,), instruments=(inst,), sharded=True, checked=1001.0)
    d = s.to_dict()
    assert d["sharded"] and d["writer_alive"] and d["writer"] == "pid 1 on h"
    assert d["workers"][0]["owned"] == ["BTCUSDT"] and d["workers"][0]["alive"]
    assert d["symbols"][0]["owner"] == "w1" and d["symbols"][0]["lease_age_s"] == 1.5
    assert "lease age" in s.summary() and "w1" in s.summary()
    assert StoreStatus.from_dict({**d, "checked": 1001.0}).to_dict() == d
