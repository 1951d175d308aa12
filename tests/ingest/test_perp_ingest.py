"""Live perpetual data in the ingestion service: marks, liquidations, open interest, funding.

Against a loopback stand-in of the exchange (:mod:`perp_helpers`): its
WebSocket sends the recording's 514 ``markPrice@1s`` events and the
fixture's four ``forceOrder`` events on the ``/market`` connection the
service opens for them; its REST answers ``openInterest`` and the
``fundingRate`` of the settlement the marks cross (2023-04-05 00:00 UTC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ingest_helpers import wait_for
from perp_helpers import (
    OPEN_INTEREST,
    SETTLEMENT_MS,
    FrameServer,
    expected_marks,
    liquidation_frames,
    mark_frames,
    settled_rate,
    usdm_rest,
)

import quantify as qf
from quantify import alerts as qa
from quantify.config import IngestConfig, ingest_config_from_env
from quantify.exceptions import StoreError
from quantify.ingest.feeds import perp_instruments, stream_urls
from quantify.ingest.listeners import standard_listeners
from quantify.ingest.service import IngestService
from quantify.model.perp import MARK_COLUMNS
from quantify.model.status import StoreStatus, WriterState, WriterStatus
from quantify.store import open_store

USDM = "binance-usdm:BTCUSDT"


def perp_config(uri: str, ws_url: str, **kw: Any) -> IngestConfig:
    return IngestConfig(symbols=(USDM,), perps="all", store=uri, ws_url=ws_url, rest_url="http://127.0.0.1:9",
                        backoff_initial=0.2, backoff_min=0.2, backoff_max=1.0, alerts=False,
                        funding_delay=0.2, **kw)


class Recorder:
    """A batch listener that keeps the marks and liquidations handed to ``perp_batch``."""

    def __init__(self) -> None:
        self.marks: list[pd.DataFrame] = []
        self.liquidations: list[pd.DataFrame] = []

    def __call__(self, frames: Any) -> None:
        pass

    def perp_batch(self, marks: dict[str, pd.DataFrame], liquidations: dict[str, pd.DataFrame]) -> None:
        self.marks += [f for f in marks.values() if len(f)]
        self.liquidations += [f for f in liquidations.values() if len(f)]


# -- configuration and URLs ----------------------------------------------------------


def test_perps_are_a_subset_of_the_symbols() -> None:
    cfg = IngestConfig(symbols=("BTCUSDT", USDM), perps="all")
    assert cfg.perps == ("BTCUSDT", USDM)
    assert [i.key for i in perp_instruments(cfg)] == [USDM]  # spot has no perpetual data
    assert IngestConfig(symbols=("BTCUSDT", USDM), perps=f"{USDM}").perps == (USDM,)
    with pytest.raises(ValueError, match="perpetual data of binance-usdm:ETHUSDT asked for"):
        IngestConfig(symbols=(USDM,), perps="binance-usdm:ETHUSDT")
    with pytest.raises(ValueError, match="open_interest_interval must be positive"):
        IngestConfig(symbols=(USDM,), open_interest_interval=0)
    env = {"QUANTIFY_SYMBOLS": f"BTCUSDT,{USDM}", "QUANTIFY_PERPS": "all"}
    assert ingest_config_from_env(env).perps == ("BTCUSDT", USDM)


def test_perp_streams_have_a_market_connection_of_their_own() -> None:
    cfg = IngestConfig(symbols=("BTCUSDT", USDM, "binance-usdm:ETHUSDT"), perps="all",
                       ws_url="ws://127.0.0.1:9")
    assert stream_urls(cfg) == [
        "ws://127.0.0.1:9/stream?streams=btcusdt@trade",
        "ws://127.0.0.1:9/public/stream?streams=btcusdt@trade/ethusdt@trade",
        "ws://127.0.0.1:9/market/stream?streams=btcusdt@markPrice@1s/btcusdt@forceOrder/"
        "ethusdt@markPrice@1s/ethusdt@forceOrder",
    ]
    assert len(stream_urls(cfg.with_(perps=()))) == 2


# -- the service, end to end against the stand-in ----------------------------------------


def test_streamed_marks_liquidations_open_interest_and_funding_are_stored(tmp_path: Path) -> None:
    uri = f"lmdb://{tmp_path}/store"
    frames = mark_frames()
    assert len(frames) == 514
    calls: list[str] = []
    recorder = Recorder()
    with FrameServer({"markPrice": frames + liquidation_frames()}) as server:
        service = IngestService(perp_config(uri, server.ws_url), listeners=[recorder],
                                rest_transport=usdm_rest(calls))
        service.start_in_thread()
        try:
            def done() -> bool:
                p = service.status().perps.get(USDM)
                return p is not None and p.marks_stored == 514 and p.funding_stored == 1 \
                    and p.open_interest_stored >= 1 and p.liquidations_stored == 4
            assert wait_for(done, 60), service.status().perps
        finally:
            service.join(timeout=10)
        assert any("/market/stream?streams=btcusdt@markPrice@1s/btcusdt@forceOrder" in p for p in server.paths)
    store = open_store(uri)
    marks = store.mark(USDM)
    assert list(marks.columns) == list(MARK_COLUMNS)
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected_marks(), check_freq=False)
    assert (marks["recv_time"] > 0).all()  # the live receive times
    liquidations = store.liquidations(USDM)
    expected = [json.loads(f)["data"]["o"] for f in liquidation_frames()]
    assert list(liquidations.index.asi8 // 1_000_000) == [o["T"] for o in expected]
    assert list(liquidations["side"]) == [1 if o["S"] == "BUY" else -1 for o in expected]
    assert list(liquidations["avg_price"]) == [float(o["ap"]) for o in expected]
    funding = store.funding(USDM)
    assert list(funding.index.asi8 // 1_000_000) == [SETTLEMENT_MS]
    assert funding["funding_rate"].iloc[0] == settled_rate()
    assert store.open_interest(USDM)["open_interest"].iloc[-1] == OPEN_INTEREST
    # asked once the marks' next funding time moved on, from before the settlement
    assert calls.count("/fapi/v1/fundingRate") == 1
    # the listeners saw every mark and liquidation once
    seen = pd.concat(recorder.marks)
    assert len(seen) == 514 and seen.index.is_unique
    assert sum(len(f) for f in recorder.liquidations) == 4
    status = service.status().perps[USDM]
    last = expected_marks().iloc[-1]
    assert status.mark_price == last["mark_price"] and status.funding_rate == last["funding_rate"]
    assert status.next_funding_time == last["next_funding_time"]
    assert status.last_funding_time == pd.Timestamp(SETTLEMENT_MS, unit="ms", tz="UTC")
    assert status.open_interest == OPEN_INTEREST and status.poll_errors == 0


def test_live_marks_fire_the_funding_alert(tmp_path: Path) -> None:
    """The writer's listeners (the alert engine's ``perp_batch``) judge the marks as they are stored."""
    uri = f"lmdb://{tmp_path}/store"
    store = open_store(uri, create=True)
    rid = qa.AlertBook(store).add(qa.funding_above(USDM, 0.284, unit="bps"), check_symbols=False)
    with FrameServer({"markPrice": mark_frames()}) as server:
        cfg = perp_config(uri, server.ws_url).with_(alerts=True)
        service = IngestService(cfg, listeners=standard_listeners(store, cfg), rest_transport=usdm_rest())
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.status().perps[USDM].marks_stored == 514
                            and service.status().listeners.get("alerts_marks") == 514, 60)
        finally:
            service.join(timeout=10)
    marks = expected_marks()
    crossing = marks.index[(marks["funding_rate"] * 1e4 >= 0.284).to_numpy().argmax()]
    history = qa.AlertBook(open_store(uri)).history()
    assert list(history["rule_id"]) == [rid] and list(history["fired_at"]) == [crossing]


def test_a_reconnect_stores_no_mark_twice(tmp_path: Path, ws_client: str) -> None:
    """The stand-in closes the connection after the first half: the reconnect sends it all again."""
    uri = f"lmdb://{tmp_path}/store"
    frames = mark_frames()[:60]
    with FrameServer({"markPrice": frames}) as server:
        service = IngestService(perp_config(uri, server.ws_url, connection_max_age=1.0, rotation_overlap=0.5,
                                            ws_client=ws_client),
                                rest_transport=usdm_rest(funding=False))
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.stats.rotations >= 1
                            and service.status().perps[USDM].duplicates_dropped >= 60, 30), service.status().perps
        finally:
            service.join(timeout=10)
    marks = open_store(uri).mark(USDM)
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected_marks(frames), check_freq=False)
    assert service.status().perps[USDM].marks_stored == 60


def test_a_refused_append_keeps_the_marks_until_stored(tmp_path: Path) -> None:
    uri = f"lmdb://{tmp_path}/store"
    frames = mark_frames()[:30]
    with FrameServer({"markPrice": frames}) as server:
        service = IngestService(perp_config(uri, server.ws_url), rest_transport=usdm_rest(funding=False))
        append, refused = service.store.append_perp, []

        def flaky(kind: str, by_key: Any) -> dict[str, int]:
            if kind == "mark" and len(refused) < 3:
                refused.append(kind)
                raise StoreError("no space left on device")
            return append(kind, by_key)

        service.store.append_perp = flaky  # type: ignore[method-assign]
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.status().perps[USDM].marks_stored == 30
                            and service.state is WriterState.RUNNING, 30), service.status().perps
        finally:
            service.join(timeout=10)
    assert len(refused) == 3 and service.stats.store_errors >= 3
    marks = open_store(uri).mark(USDM)
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected_marks(frames), check_freq=False)


def test_marks_the_store_refused_at_shutdown_stay_in_the_journal(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    uri = f"lmdb://{store_dir}"
    frames = mark_frames()[:20]
    with FrameServer({"markPrice": frames}) as server:
        cfg = perp_config(uri, server.ws_url, duration=1.5)
        refusing = IngestService(cfg, rest_transport=usdm_rest(funding=False))

        def refuse(kind: str, by_key: Any) -> dict[str, int]:
            raise StoreError("no space left on device")

        refusing.store.append_perp = refuse  # type: ignore[method-assign]
        refusing.start_in_thread()
        refusing._thread.join(30)  # type: ignore[union-attr]
        assert refusing.status().perps[USDM].marks_received == 20
        assert list((store_dir / "journal" / "binance-usdm").glob("journal-*.log"))  # kept
    with FrameServer({}) as server:
        after = IngestService(perp_config(uri, server.ws_url, duration=0.5), rest_transport=usdm_rest(funding=False))
        after.start_in_thread()
        after._thread.join(30)  # type: ignore[union-attr]
    assert after.status().perps[USDM].marks_stored == 20
    marks = open_store(uri).mark(USDM)
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected_marks(frames), check_freq=False)


def test_spot_instruments_are_left_out_with_one_notice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    uri = f"lmdb://{tmp_path}/store"
    with FrameServer({"markPrice": mark_frames()[:5]}) as server:
        cfg = perp_config(uri, server.ws_url).with_(symbols=("BTCUSDT", USDM), perps="all", duration=1.5)
        service = IngestService(cfg, rest_transport=usdm_rest())
        with caplog.at_level("INFO", logger="quantify.ingest.service"):
            service.start_in_thread()
            service._thread.join(20)  # type: ignore[union-attr]
    assert [r.message for r in caplog.records if "no perpetual data" in r.message] == [
        "no perpetual data for BTCUSDT (spot): ignored"]
    assert list(service.status().perps) == [USDM]


# -- journal recovery -------------------------------------------------------------------


def write_journal(store_dir: Path, frames: list[str]) -> None:
    """A leftover journal segment of a killed writer holding ``frames`` (the USD-M venue's journal)."""
    directory = store_dir / "journal" / "binance-usdm"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "journal-00000000000000000001.log", "w") as fh:
        for i, frame in enumerate(frames):
            fh.write(f"{1_680_652_701_000_000_000 + i * 1_000_000_000} {frame}\n")


def test_journal_of_a_killed_writer_is_stored_once(tmp_path: Path) -> None:
    """A leftover journal's marks are stored at restart; replayed again over them, nothing twice."""
    store_dir = tmp_path / "store"
    uri = f"lmdb://{store_dir}"
    frames = mark_frames()
    first, rest = frames[:300], frames[300:]
    with FrameServer({}) as server:  # the exchange sends nothing: all comes from the journal
        cfg = perp_config(uri, server.ws_url, duration=0.5)
        write_journal(store_dir, first)
        service = IngestService(cfg, rest_transport=usdm_rest(funding=False))
        service.start_in_thread()
        service._thread.join(30)  # type: ignore[union-attr]
        assert service.status().perps[USDM].marks_stored == 300
        assert service.stats.perp_recovered == 300
        assert not list((store_dir / "journal" / "binance-usdm").glob("journal-0*.log"))  # released
        # a predecessor killed later: its journal holds everything, the first 300 already stored
        write_journal(store_dir, frames)
        again = IngestService(cfg, rest_transport=usdm_rest(funding=False))
        again.start_in_thread()
        again._thread.join(30)  # type: ignore[union-attr]
    p = again.status().perps[USDM]
    assert (p.marks_received, p.marks_stored) == (len(rest), len(rest))
    marks = open_store(uri).mark(USDM)
    pd.testing.assert_frame_equal(marks.drop(columns="recv_time"), expected_marks(), check_freq=False)
    assert marks["recv_time"].iloc[0] == 1_680_652_701_000_000_000  # the journal's receive time kept


def test_a_run_without_perps_says_what_of_the_journal_it_does_not_store(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store_dir = tmp_path / "store"
    write_journal(store_dir, mark_frames()[:5])
    with FrameServer({}) as server:
        cfg = perp_config(f"lmdb://{store_dir}", server.ws_url, duration=0.3).with_(perps=())
        with caplog.at_level("WARNING", logger="quantify.ingest.receiver"):
            service = IngestService(cfg, rest_transport=usdm_rest(funding=False))
            service.start_in_thread()
            service._thread.join(30)  # type: ignore[union-attr]
    assert [r.message for r in caplog.records if "not stored" in r.message] == [
        "journal: 5 marks and liquidations of a previous run not stored: this run keeps no perpetual data "
        "(quantify ingest --perp, $QUANTIFY_PERPS)"]


# -- status -------------------------------------------------------------------------------


def test_perp_status_is_published_and_read_back(tmp_path: Path) -> None:
    uri = f"lmdb://{tmp_path}/store"
    with FrameServer({"markPrice": mark_frames()[:20]}) as server:
        service = IngestService(perp_config(uri, server.ws_url, status_interval=0.2),
                                rest_transport=usdm_rest(funding=False))
        service.start_in_thread()
        try:
            assert wait_for(lambda: service.status().perps[USDM].marks_stored == 20, 30)
            status = service.status()
        finally:
            service.join(timeout=10)
    published = WriterStatus.from_dict(json.loads(json.dumps(status.to_dict(), default=str)))
    assert published.perps == status.perps
    line = status.perps[USDM].summary()
    assert line.startswith(f"{USDM} perp · mark 28,146.5 at 2023-04-04 23:58:40 UTC") and "20 marks" in line
    assert "funding 0.0028 %" in line
    text = StoreStatus(store=uri, writers=(status,)).summary()
    assert "perpetuals (live data this run)" in text and line in text
    stopped = qf.status(uri)  # what `quantify status` prints: the last published status
    assert stopped.writer is not None and stopped.writer.perps[USDM].marks_stored == 20
    assert "perpetuals (live data this run)" in stopped.summary()
    assert "perpetuals (live data this run)" in stopped._repr_html_() and "next funding (UTC)" in stopped._repr_html_()
    doc = StoreStatus(store=uri, writers=(published,)).to_dict()
    assert doc["perps"][USDM]["marks_stored"] == 20
    assert StoreStatus.from_dict(doc).writers[0].perps[USDM].marks_stored == 20


def test_perp_status_reads_what_it_does_not_know() -> None:
    from quantify.model.perp_status import PerpStatus

    assert PerpStatus.from_dict({"marks_stored": "x", "mark_price": None, "new": 1,
                                 "last_mark_time": "2023-04-05T00:00:00"}, USDM) == PerpStatus(
        USDM, last_mark_time=pd.Timestamp("2023-04-05", tz="UTC"))
    assert "no mark yet" in PerpStatus(USDM).summary()

