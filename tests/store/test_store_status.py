"""``quantify.status()``: the store's description merged with its writer's published status."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

import quantify as qf
from quantify.model.status import InstrumentStatus, StoreStatus, WriterState, WriterStatus
from quantify.store.status import writer_status
from quantify.venues.binance.recordings import read_trades, sample_files


@pytest.fixture
def btc() -> pd.DataFrame:
    return read_trades(sample_files()[0])["BTCUSDT"].iloc[:500]


def _published(**kw: object) -> WriterStatus:
    fields: dict[str, object] = {
        "state": WriterState.RUNNING, "writer": "pid 1 on elsewhere", "heartbeat": time.time(),
        "store": "mem://", "ticks_per_second": 42.0, "reconnects": 3,
        "instruments": {"BTCUSDT": InstrumentStatus("BTCUSDT", gaps_found=2, gaps_filled=2)}}
    fields.update(kw)
    return WriterStatus(**fields)  # type: ignore[arg-type]


def test_status_merges_description_and_writer_counters(btc: pd.DataFrame) -> None:
    store = qf.open_store("mem://status-merge")
    store.append_ticks({"BTCUSDT": btc})
    assert qf.status(store).writers == ()  # nothing published yet
    store.write_status(_published())
    result = qf.status(store)
    assert isinstance(result, StoreStatus) and result.writer_alive  # mem://: a fresh heartbeat
    (inst,) = result.instruments
    assert inst.instrument == "BTCUSDT" and inst.rows == len(btc)
    assert inst.first_id == int(btc.trade_id.iloc[0]) and inst.last_id == int(btc.trade_id.iloc[-1])
    assert inst.last_time == btc.index[-1] and inst.gaps_found == 2
    d = result.to_dict()
    assert d["writer_state"] == "running" and d["ticks_per_second"] == 42.0 and d["counters"]["reconnects"] == 3
    assert d["symbols"][0]["rows"] == len(btc)
    assert "BTCUSDT" in result.summary()


def test_stale_heartbeat_is_not_alive(btc: pd.DataFrame) -> None:
    store = qf.open_store("mem://status-stale")
    store.write_status(_published(heartbeat=time.time() - 3600))
    d = qf.status(store).to_dict()
    assert not d["writer_alive"] and d["writer_state"] == "stopped" and d["ticks_per_second"] == 0.0


def test_an_older_published_dict_reads_back() -> None:
    store = qf.open_store("mem://status-old")
    store.write_status({"state": "running", "heartbeat": time.time(), "symbols": {}, "unknown": 1})
    w = writer_status(store)
    assert w is not None and w.state is WriterState.RUNNING and w.trades_stored == 0


def test_quantify_status_json_on_lmdb(lmdb_uri: str, btc: pd.DataFrame) -> None:
    store = qf.open_store(lmdb_uri, create=True)
    store.append_ticks({"BTCUSDT": btc})
    store.write_status(_published(state=WriterState.STOPPED))
    proc = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", lmdb_uri, "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["writer_alive"] is False and doc["writer_state"] == "stopped"  # no writer lock held
    assert doc["writer"] == "pid 1 on elsewhere"
    assert doc["symbols"][0]["symbol"] == "BTCUSDT" and doc["symbols"][0]["rows"] == len(btc)
    text = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", lmdb_uri],
                          capture_output=True, text=True, timeout=120, check=False).stdout
    assert "writer  none running (last: pid 1 on elsewhere)" in text and "BTCUSDT" in text
