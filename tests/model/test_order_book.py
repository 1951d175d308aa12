"""The local order book and Binance's procedure, on real recordings and on injected faults."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from book_helpers import Truth, events, feed

from quantify.model.book import DepthDiff, DepthSnapshot
from quantify.model.book_frames import book_from_checkpoint, checkpoint_to_frame, diffs_to_frame, quotes_to_frame
from quantify.model.booksync import BookSync, SyncState

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"

SHIPPED = {
    "spot-2024 BTCUSDT": ("spot", [DATA / "spot-2024-btcusdt_20240808.book.gz", DATA / "spot-2024-btcusdt_20240809.book.gz"]),
    "usdm-2024 BTCUSDT": ("usdm", [DATA / "usdm-2024-btcusdt_20240808.book.gz"]),
}
FULL = {
    "spot-2024 ETHUSDT": ("spot", [SHARED / "spot-2024/ethusdt_20240808.gz", SHARED / "spot-2024/ethusdt_20240809.gz"]),
    "usdm-2024 ETHUSDT": ("usdm", [SHARED / "usdm-2024/ethusdt_20240808.gz"]),
    "mixed-2023 USD-M BTCUSDT": ("usdm", [SHARED / "mixed-2023/usdm_btcusdt_20230404.dat.gz",
                                          SHARED / "mixed-2023/usdm_btcusdt_20230405.dat.gz"]),
}
RECORDINGS = {**SHIPPED, **{k: v for k, v in FULL.items() if all(p.exists() for p in v[1])}}


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_book_equals_binance_book_ticker_at_every_shared_id(name):
    rule, files = RECORDINGS[name]
    sync = BookSync("X", rule)
    applied = feed(sync, events(files))
    led = sync.ledger
    print(f"{name}: {led.events} events, {led.ticker_checks} bookTicker ids compared, {led.mismatches} mismatches, "
          f"{led.ticker_unknown} beyond the snapshot's known range")
    assert sync.live and led.gaps == led.mismatches == led.crossed == 0
    assert led.ticker_checks > 300
    assert len(applied) == led.events


def test_known_range_is_never_guessed():
    # spot-2024 BTCUSDT falls below its 1,000-level snapshot's lowest bid near 23:58:35: the
    # bid side is then unknown (NaN in the quotes) and a refresh is asked for, never a guess.
    rule, files = SHIPPED["spot-2024 BTCUSDT"]
    sync = BookSync("BTCUSDT", rule)
    applied = feed(sync, events(files))
    kinds = [e.kind for e in sync.take_events()]
    assert "range" in kinds and sync.ledger.ticker_unknown > 0
    quotes = quotes_to_frame(applied)
    assert quotes["bid_price"].isna().any() and not quotes["ask_price"].isna().any()


def test_range_refresh_restores_the_side_without_a_gap():
    rule, files = SHIPPED["spot-2024 BTCUSDT"]
    stream = events(files)
    truth = Truth(stream)
    sync = BookSync("BTCUSDT", rule)
    applied = []
    for recv, ev in stream:
        if type(ev) is DepthDiff:
            applied += sync.on_diff(ev, recv)
            if sync.wants_snapshot and sync.live:
                applied += sync.on_snapshot(truth.snapshot(sync.book.update_id), recv)
        elif type(ev) is DepthSnapshot:
            applied += sync.on_snapshot(ev, recv)
        else:
            sync.on_ticker(ev, recv)
    led = sync.ledger
    assert led.refreshes >= 1 and led.gaps == 0 and led.mismatches == 0
    assert led.ticker_unknown == 0 and led.ticker_checks == 1072
    # only the event that left the range (answered by the next snapshot) has its bid unknown
    assert quotes_to_frame(applied)[["bid_price", "ask_price"]].isna().sum().tolist() == [1, 0]


@pytest.mark.parametrize("rule,name", [("spot", "spot-2024 BTCUSDT"), ("usdm", "usdm-2024 BTCUSDT")])
def test_dropped_diffs_are_gaps_resynced_without_loss(rule, name):
    stream = events(SHIPPED[name][1])
    truth = Truth(stream)
    rng = random.Random(7)
    diffs = [i for i, (_, ev) in enumerate(stream) if type(ev) is DepthDiff]
    dropped = set(rng.sample(diffs[50:], 5))
    sync = BookSync("X", rule)
    applied = []
    delayed = None  # the snapshot answer arrives a few events after the gap, as over REST
    for i, (recv, ev) in enumerate(stream):
        if i in dropped:
            continue
        if type(ev) is DepthDiff:
            applied += sync.on_diff(ev, recv)
            if sync.wants_snapshot and sync.ledger.events:
                if delayed is None:
                    delayed = [3, ev.last_id]
                delayed[0] -= 1
                if delayed[0] <= 0:
                    applied += sync.on_snapshot(truth.snapshot(delayed[1]), recv)
                    delayed = None
        elif type(ev) is DepthSnapshot:
            applied += sync.on_snapshot(ev, recv)
        else:
            sync.on_ticker(ev, recv)
    led = sync.ledger
    assert led.gaps == len(dropped) and led.resyncs == len(dropped) and led.mismatches == 0
    assert sync.live and led.ticker_checks > 200
    kinds = [e.kind for e in sync.take_events()]
    assert kinds.count("gap") == kinds.count("resync") == len(dropped)
    ids = [a.diff.last_id for a in applied]
    assert ids == sorted(set(ids))
    # every applied event agrees with the full book at its id, after every resync too
    for a in applied:
        assert a.bbo == truth.bbo[a.diff.last_id] or np.isnan(a.bbo).any()


def test_stale_snapshot_is_fetched_again():
    stream = events(SHIPPED["spot-2024 BTCUSDT"][1])
    snap = next(ev for _, ev in stream if type(ev) is DepthSnapshot)
    sync = BookSync("X", "spot")
    first = next(ev for _, ev in stream if type(ev) is DepthDiff)
    sync.on_diff(first, 0)
    old = snap._replace(last_update_id=first.first_id - 5)
    assert sync.on_snapshot(old, 1) == []
    assert sync.wants_snapshot and sync.state is SyncState.WAITING and sync.ledger.stale_snapshots == 1


def test_duplicates_from_an_overlapping_connection_are_dropped():
    stream = events(SHIPPED["usdm-2024 BTCUSDT"][1])
    once = feed(BookSync("X", "usdm"), stream)
    twice_sync = BookSync("X", "usdm")
    doubled = []
    for item in stream:
        doubled.append(item)
        if type(item[1]) is DepthDiff:
            doubled.append(item)
    twice = feed(twice_sync, doubled)
    assert [a.bbo for a in twice] == [a.bbo for a in once]
    assert twice_sync.ledger.duplicates == len(once) and twice_sync.ledger.gaps == 0


def test_usdm_pu_rule_and_crossed_book():
    snap = DepthSnapshot(100, [(10.0, 1.0), (9.0, 1.0)], [(11.0, 1.0), (12.0, 1.0)], "X", 1000)
    sync = BookSync("X", "usdm")
    sync.on_diff(DepthDiff("X", 95, 101, 94, 1, [(10.0, 2.0)], []), 1)
    assert sync.on_snapshot(snap, 2)[0].bbo == (10.0, 2.0, 11.0, 1.0)
    assert sync.on_diff(DepthDiff("X", 103, 104, 101, 2, [], [(11.0, 3.0)]), 3)[0].bbo == (10.0, 2.0, 11.0, 3.0)
    assert sync.on_diff(DepthDiff("X", 106, 107, 105, 3, [], []), 4) == []  # pu 105 != 104: a gap
    assert sync.stale and sync.ledger.gaps == 1
    sync2 = BookSync("X", "spot")
    sync2.on_snapshot(snap, 0)
    sync2.on_diff(DepthDiff("X", 101, 101, -1, 1, [(11.5, 1.0)], []), 1)
    assert sync2.on_diff(DepthDiff("X", 102, 102, -1, 2, [(11.0, 1.0)], []), 2) == []
    assert sync2.ledger.crossed == 1 and sync2.wants_snapshot


def test_frames_round_trip_a_checkpoint():
    rule, files = SHIPPED["usdm-2024 BTCUSDT"]
    sync = BookSync("X", rule, checkpoint_every_ms=5_000)
    applied = feed(sync, events(files))
    cps = [a for a in applied if a.checkpoint is not None]
    assert cps[0].checkpoint_reason == 1 and len(cps) > 10
    rebuilt = book_from_checkpoint(checkpoint_to_frame(cps[-2]))
    for a in applied:
        if a.diff.last_id > rebuilt.update_id:
            rebuilt.apply(a.diff)
    want, got = sync.book.levels(20), rebuilt.levels(20)
    assert got.update_id == want.update_id
    np.testing.assert_array_equal(got.bids, want.bids)
    np.testing.assert_array_equal(got.asks, want.asks)
    diffs = diffs_to_frame(applied)
    assert diffs["update_id"].nunique() == len(applied) and diffs.index.is_monotonic_increasing
    q = quotes_to_frame(applied)
    assert list(q.columns)[:4] == ["bid_price", "bid_qty", "ask_price", "ask_qty"] and len(q) == len(applied)


@pytest.mark.parametrize("rule", ["spot", "usdm"])
def test_a_snapshot_ahead_of_the_buffer_is_the_book_until_the_stream_continues_it(rule):
    snap = DepthSnapshot(100, [(10.0, 1.0)], [(11.0, 1.0)], "X", 1000)
    sync = BookSync("X", rule)
    assert sync.on_diff(DepthDiff("X", 90, 95, 89, 1, [(10.0, 5.0)], []), 1) == []
    assert sync.on_snapshot(snap, 2) == [] and sync.live and sync.book.bbo() == (10.0, 1.0, 11.0, 1.0)
    nxt = DepthDiff("X", 99, 103, 97, 3, [(10.0, 2.0)], []) if rule == "usdm" else \
        DepthDiff("X", 101, 103, -1, 3, [(10.0, 2.0)], [])
    assert sync.on_diff(nxt, 3)[0].bbo == (10.0, 2.0, 11.0, 1.0)
    late = BookSync("X", rule)
    late.on_snapshot(snap, 0)
    assert late.live and late.on_diff(DepthDiff("X", 150, 151, 149, 4, [], []), 4) == []
    assert late.stale and late.ledger.gaps == 1 and late.wants_snapshot
