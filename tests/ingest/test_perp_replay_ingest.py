"""Perpetual ingestion end to end against the replay server: the recording's marks, exactly, once.

The replay serves ``quantify/data/usdm-2023-btcusdt_20230405.perp.gz``: USD-M
BTCUSDT trades (ids 3535186032..3535198966) and 514 recorded
``markPriceUpdate`` events on ``/market`` (lap 0 byte for byte), plus
synthetic ``forceOrder`` events drawn from its large trades with the
replay's seed. The service subscribes them through the same code path it
uses for Binance; ``store.mark`` must then equal the recorded events in every
field (mark, index, estimated settle price, funding rate, next funding time).
Its REST serves the settlement the marks cross (2023-04-05 00:00 UTC) and a
synthetic open interest, which the service polls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from ingest_helpers import last_trades, reader, wait_for
from perp_helpers import PERP_CAPTURE, expected_marks

from quantify.cli import main
from quantify.config import IngestConfig
from quantify.exceptions import UnknownSymbol
from quantify.ingest.service import IngestService
from quantify.replay.config import ReplayConfig
from quantify.replay.perp_tape import FORCE
from quantify.replay.server import ReplayServer
from quantify.replay.tape import Tape
from quantify.replay.thread import ReplayThread
from quantify.venues.binance.recordings import read_frames

USDM = "binance-usdm:BTCUSDT"
LAST_TRADE_ID = 3535198966


def stored_marks(uri: str) -> pd.DataFrame:
    store = reader(uri)
    try:
        return expected_marks().iloc[:0] if store is None else store.mark(USDM)
    except UnknownSymbol:
        return expected_marks().iloc[:0]


def perp_service(uri: str, replay: ReplayThread, **kw: object) -> IngestService:
    return IngestService(IngestConfig(
        symbols=(USDM,), perps="all", store=uri, ws_url=replay.ws_url, rest_url=replay.rest_url,
        backoff_initial=0.2, backoff_min=0.2, backoff_max=1.0, alerts=False, **kw))  # type: ignore[arg-type]


def test_replayed_marks_are_stored_exactly(lmdb_uri: str) -> None:
    """Every mark the replay served is stored, equal in every field to the recorded event.

    The replay serves a connection from the moment it connects, as Binance
    does: the ``/market`` connection may start a few recorded seconds after
    the trades' (at speed 100, 50 ms later is 5 marks). What it served is a
    run of the recording up to its last mark, stored exactly and in full.
    """
    tape = Tape([PERP_CAPTURE])
    config = ReplayConfig(files=(PERP_CAPTURE,), speed=100, seed=11)
    expected = expected_marks()
    last = expected.index[-1]
    with ReplayThread(server=ReplayServer(config, tape=tape)) as replay:
        service = perp_service(lmdb_uri, replay, funding_delay=0.2)
        service.start_in_thread()
        try:
            def done() -> bool:
                p = service.status().perps[USDM]
                return last_trades(lmdb_uri).get(USDM, (0,))[0] == LAST_TRADE_ID and p.last_mark_time == last \
                    and p.funding_stored == 1 and p.open_interest_stored >= 1
            assert wait_for(done, 60), service.status().perps
        finally:
            service.join(timeout=10)
    marks = stored_marks(lmdb_uri)
    served = expected[expected.index >= marks.index[0]]
    print(f"\n{len(marks)} of the recording's {len(expected)} marks served and stored")
    assert len(marks) > 100  # most of them: the connections open within a fraction of a recorded minute
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), served, check_freq=False)
    # the replay's liquidations (synthetic, seeded), on the same connection: each once
    made = tape.liquidations(11)[USDM].payloads(0, FORCE)
    liquidations = reader(lmdb_uri).liquidations(USDM)  # type: ignore[union-attr]
    first = marks.index[0].value // 1_000_000
    sent = [e for e in made if e["E"] >= first]
    assert len(sent) > 0
    assert list(liquidations.index.asi8 // 1_000_000) == [e["o"]["T"] for e in sent]
    assert list(liquidations["avg_price"]) == [float(e["o"]["ap"]) for e in sent]
    # the settlement the marks cross (00:00), fetched from the replay's fundingRate once they moved on:
    # the replay settles at the rate and mark of the last mark event at or before it
    settlement = pd.Timestamp("2023-04-05", tz="UTC")
    before = expected[expected.index <= settlement].iloc[-1]
    funding = reader(lmdb_uri).funding(USDM)  # type: ignore[union-attr]
    assert list(funding.index) == [settlement]
    assert funding["funding_rate"].iloc[0] == before["funding_rate"]
    assert funding["mark_price"].iloc[0] == before["mark_price"]
    assert (reader(lmdb_uri).open_interest(USDM)["open_interest"] > 0).all()  # type: ignore[union-attr]
    status = service.status().perps[USDM]
    assert status.poll_errors == 0 and status.last_funding_time == settlement
    assert (status.marks_stored, status.liquidations_stored) == (len(marks), len(sent))
    assert status.duplicates_dropped == 0
    assert status.next_funding_time == pd.Timestamp("2023-04-05 08:00", tz="UTC")


def journaled_mark_times(store_dir: Path) -> set[int]:
    """Event times (ns) of the marks in the journal segments a killed writer left."""
    out = set()
    for path in sorted((store_dir / "journal" / "binance-usdm").glob("journal-*.log")):
        for _, frame in read_frames(path):
            if '"markPriceUpdate"' in frame:
                e = frame.index('"E":') + 4
                out.add(int(frame[e:frame.index(",", e)]) * 1_000_000)
    return out


def test_sigkill_and_restart_store_every_received_mark_once(tmp_path: Path) -> None:
    """kill -9 the writer mid-replay; its successor stores the journal's marks, nothing twice.

    Marks the exchange sent while no writer was connected are gone (no REST
    serves mark history); every mark the killed writer received is stored.
    """
    store_dir = tmp_path / "store"
    uri = f"lmdb://{store_dir}"
    log = tmp_path / "ingest.log"
    with ReplayThread(ReplayConfig(files=(PERP_CAPTURE,), speed=200)) as replay:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quantify", "ingest", "--store", uri, "--symbols", USDM, "--perp",
             "--ws-url", replay.ws_url, "--rest-url", replay.rest_url],
            stdout=log.open("a"), stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: len(stored_marks(uri)) >= 30, 60), log.read_text()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        before = set(stored_marks(uri).index.asi8)
        journaled = journaled_mark_times(store_dir)
        assert journaled, "the killed writer's journal holds its marks"
        service = perp_service(uri, replay, tail_check_interval=0.5)
        service.start_in_thread()
        try:
            # every trade stored (those of the downtime backfilled by id): the replay is over
            assert wait_for(lambda: last_trades(uri).get(USDM, (0,))[0] == LAST_TRADE_ID, 60), service.status().summary()
        finally:
            service.join(timeout=10)
    marks = stored_marks(uri)
    assert marks.index.is_unique
    stored = set(marks.index.asi8)
    assert before <= stored and journaled <= stored  # nothing the killed writer received is lost
    expected = expected_marks()
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected.loc[marks.index], check_freq=False)
    p = service.status().perps[USDM]
    assert p.marks_stored == len(stored - before)  # each stored once: the journal's overlap dropped
    print(f"\nkill -9 at {len(before)} marks stored, {len(journaled)} journaled; restart stored {p.marks_stored}, "
          f"recovered {service.stats.perp_recovered}; {len(stored)} of 514 stored")


def test_ingest_command_streams_perpetual_data(lmdb_uri: str, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("QUANTIFY_")]:
        monkeypatch.delenv(key)
    with ReplayThread(ReplayConfig(files=(PERP_CAPTURE,), speed=0)) as replay:
        code = main(["ingest", "--store", lmdb_uri, "--symbols", USDM, "--perp", "--open-interest-every", "30",
                     "--ws-url", replay.ws_url, "--rest-url", replay.rest_url, "--duration", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{replay.ws_url}/market/stream" in out.splitlines()[0]
    summary = [line for line in out.splitlines() if " perp · " in line]
    assert len(summary) == 1 and summary[0].startswith(f"quantify ingest: {USDM} perp · mark ")
    assert len(stored_marks(lmdb_uri)) > 0
