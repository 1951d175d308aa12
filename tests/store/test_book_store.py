"""Order books in the store: idempotent appends, the book at any moment, the grid, the ledger.

The must-show: ``store.book(at=t)`` equals a from-scratch replay of the
recorded diffs up to ``t`` (the recorded snapshot, then every diff past its
``lastUpdateId``, as ``tests/model/test_order_book.py`` builds its reference, with
the snapshot's known range) at 50 random times on each shipped recording,
next to checkpoints, and during a stale period after an injected gap.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from book_helpers import Truth, events

from quantify.exceptions import UnknownSymbol
from quantify.model.book import DepthDiff, DepthSnapshot, OrderBook
from quantify.model.book_frames import book_frames
from quantify.model.booksync import BookSync
from quantify.store import open_store

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
SHIPPED = {
    "BTCUSDT": ("spot", [DATA / "spot-2024-btcusdt_20240808.book.gz", DATA / "spot-2024-btcusdt_20240809.book.gz"]),
    "binance-usdm:BTCUSDT": ("usdm", [DATA / "usdm-2024-btcusdt_20240808.book.gz"]),
}


def feed(sync, stream, store, key, chunk=700, drop=(), answer=None, delay=3):
    """Run ``stream`` through ``sync`` and append the frames to ``store`` every ``chunk`` events.

    ``drop``: stream indexes left out (lost frames); ``answer(update_id)`` gives the snapshot a
    resync fetches, as of the event received ``delay`` events after the gap (as over REST).
    """
    applied, all_applied = [], []
    delayed = None
    for i, (recv, ev) in enumerate(stream):
        if i in drop:
            continue
        if type(ev) is DepthDiff:
            applied += sync.on_diff(ev, recv)
            if answer is not None and sync.wants_snapshot and sync.ledger.events:
                delayed = delay if delayed is None else delayed - 1
                if delayed <= 0:  # the answer is as of the event just received
                    applied += sync.on_snapshot(answer(ev.last_id), recv)
                    delayed = None
        elif type(ev) is DepthSnapshot:
            applied += sync.on_snapshot(ev, recv)
        if len(applied) >= chunk:
            store.append_book({key: book_frames(applied, sync.take_events())})
            all_applied += applied
            applied = []
    store.append_book({key: book_frames(applied, sync.take_events())})
    return all_applied + applied


class Reference:
    """A from-scratch replay by time: the recorded snapshot, then every diff past it (``book_helpers.Truth``'s
    procedure, with the snapshot's known range: levels beyond it are unknown, as in the store)."""

    def __init__(self, stream):
        snap = next(ev for _, ev in stream if type(ev) is DepthSnapshot)
        self.snap = snap
        self.diffs = sorted((ev for _, ev in stream if type(ev) is DepthDiff and ev.last_id > snap.last_update_id),
                            key=lambda d: d.last_id)

    def at(self, t_ns, depth=20, skip=()):
        book = OrderBook.from_snapshot(self.snap)
        for d in self.diffs:
            if d.event_time * 1_000_000 > t_ns:
                break
            if d.last_id not in skip:
                book.apply(d)
        return book.levels(depth)

    def walk(self, times_ns, depth=20):
        """``at`` for sorted times, in one pass."""
        book = OrderBook.from_snapshot(self.snap)
        i, out = 0, []
        for t in times_ns:
            while i < len(self.diffs) and self.diffs[i].event_time * 1_000_000 <= t:
                book.apply(self.diffs[i])
                i += 1
            out.append(book.levels(depth))
        return out

    def upto(self, update_ids, depth=20):
        """The levels after each diff of ``update_ids``, in one pass: {update id: levels}."""
        book = OrderBook.from_snapshot(self.snap)
        wanted, out = set(update_ids), {}
        for d in self.diffs:
            if len(out) == len(wanted):
                break
            book.apply(d)
            if d.last_id in wanted:
                out[d.last_id] = book.levels(depth)
        assert len(out) == len(wanted)
        return out


@pytest.fixture(scope="module")
def streams():
    return {key: events(files) for key, (_, files) in SHIPPED.items()}


@pytest.fixture(scope="module")
def loaded(streams):
    store = open_store("mem://book-store-shipped", create=True)
    applied = {}
    for key, (rule, _) in SHIPPED.items():
        applied[key] = feed(BookSync(key, rule), streams[key], store, key)
    return store, applied


def assert_same(got, want):
    assert got.update_id == want.update_id
    np.testing.assert_array_equal(got.bids, want.bids)
    np.testing.assert_array_equal(got.asks, want.asks)
    assert got.complete == want.complete


@pytest.mark.parametrize("key", list(SHIPPED))
def test_book_at_random_times_equals_a_replay_from_scratch(loaded, streams, key):
    store, applied = loaded
    quotes = store.quotes(key)
    assert len(quotes) == len(applied[key])
    t0, t1 = quotes.index[0].value, quotes.index[-1].value
    rng = np.random.default_rng(14)
    times = rng.integers(t0, t1 + 2_000_000_000, 50).tolist()
    cps = store._books.read("book_checkpoints", key)
    cp_times = np.unique(cps.index.asi8)
    assert len(cp_times) > 10
    for c in cp_times[[1, len(cp_times) // 2, -1]].tolist():  # just before, at and after checkpoints
        times += [c - 1, c, c + 1, c + 60_000_000]
    times.sort()
    ref = Reference(streams[key]).walk(times)
    for t, want in zip(times, ref, strict=True):
        got = store.book(key, pd.Timestamp(t, tz="UTC"))
        assert_same(got, want)
        assert not got.stale and got.time <= pd.Timestamp(t, tz="UTC")
    print(f"{key}: store.book equal to the replay at {len(times)} times ({len(cp_times)} checkpoints)")


def test_a_side_beyond_the_known_range_stays_unknown(loaded):
    # spot BTCUSDT falls below its snapshot's lowest bid at 23:58:35.433: the bid side is unknown until
    # the price is back in range two seconds later, in the checkpoints too (a level-0 row keeps the
    # side's bound), never guessed
    store, _ = loaded
    book = store.book("BTCUSDT", "2024-08-08 23:58:37.6")
    assert len(book.bids) == 0 and len(book.asks) == 20 and not book.complete
    grid = store.book_snapshots("BTCUSDT", "2024-08-08 23:58:30", "2024-08-08 23:58:40", every="1s", depth=3)
    assert grid["bid_price_1"].isna().tolist() == [False] * 6 + [True] * 2 + [False] * 2
    assert not grid["ask_price_3"].isna().any()


@pytest.mark.parametrize("key", list(SHIPPED))
def test_grid_agrees_with_book_at_every_point(loaded, key):
    store, _ = loaded
    grid = store.book_snapshots(key, every="2s", depth=5)
    assert grid.index.freq is None or grid.index.is_monotonic_increasing
    assert (grid.index.asi8 % 2_000_000_000 == 0).all()
    assert list(grid.columns[:5]) == [f"bid_price_{i}" for i in range(1, 6)]
    assert list(grid.columns[-2:]) == ["update_id", "stale"]
    assert not grid["stale"].any() and (grid["update_id"] > 0).all()
    for t, row in grid.iloc[:: max(len(grid) // 8, 1)].iterrows():
        book = store.book(key, t, depth=5)
        assert row["update_id"] == book.update_id
        for side, levels in (("bid", book.bids), ("ask", book.asks)):
            prices = row[[f"{side}_price_{i}" for i in range(1, 6)]].to_numpy(dtype=float)
            qtys = row[[f"{side}_qty_{i}" for i in range(1, 6)]].to_numpy(dtype=float)
            np.testing.assert_array_equal(prices[: len(levels)], levels[:, 0])
            np.testing.assert_array_equal(qtys[: len(levels)], levels[:, 1])
            assert np.isnan(prices[len(levels):]).all()
    window = store.book_snapshots(key, grid.index[3], grid.index[6], every="2s", depth=5)
    pd.testing.assert_frame_equal(window, grid.iloc[3:6], check_freq=False)


def test_stale_between_an_injected_gap_and_its_resync(streams):
    key = "binance-usdm:BTCUSDT"
    stream = streams[key]
    ref = Reference(stream)
    rng = random.Random(7)
    diffs = [i for i, (_, ev) in enumerate(stream) if type(ev) is DepthDiff]
    dropped = set(rng.sample(diffs[200:-200], 3))
    store = open_store("mem://book-store-gap", create=True)

    applied = feed(BookSync(key, "usdm"), stream, store, key, drop=dropped, answer=Truth(stream).snapshot, delay=40)
    ledger = store.book_ledger(key)
    assert ledger["kind"].tolist().count("gap") == 3 and ledger["kind"].tolist().count("resync") == 3
    gaps = ledger[ledger["kind"] == "gap"].index
    resyncs = ledger[ledger["kind"] == "resync"].index
    assert (resyncs > gaps).all()
    times = [a.diff.event_time * 10**6 for a in applied]
    probes = sorted(t for gap, resync in zip(gaps, resyncs, strict=True)
                    for t in (gap, gap + (resync - gap) / 2, resync - pd.Timedelta(1, "ns")))
    got = {t: store.book(key, t) for t in [*probes, *resyncs]}
    # inside a stale period: the last levels known before the gap, the book at the last stored event before it
    before = {t: applied[int(np.searchsorted(times, t.value, side="right")) - 1].diff.last_id for t in probes}
    want = ref.upto([*before.values(), *(got[t].update_id for t in resyncs)])
    for t in probes:
        assert got[t].stale and got[t].update_id == before[t]
        np.testing.assert_array_equal(got[t].bids, want[before[t]].bids)
        np.testing.assert_array_equal(got[t].asks, want[before[t]].asks)
    for t in resyncs:  # back in sync at the resync
        assert not got[t].stale
        np.testing.assert_array_equal(got[t].bids, want[got[t].update_id].bids)
        np.testing.assert_array_equal(got[t].asks, want[got[t].update_id].asks)
    grid = store.book_snapshots(key, every="100ms", depth=1)
    inside = np.zeros(len(grid), dtype=bool)
    for gap, resync in zip(gaps, resyncs, strict=True):
        inside |= (grid.index >= gap) & (grid.index < resync)
    assert inside.any() and (grid["stale"].to_numpy() == inside).all()
    print(f"stale book checked at {len(probes)} times inside {len(gaps)} gaps")


def test_appends_are_idempotent_and_resumable(streams):
    key = "binance-usdm:BTCUSDT"
    stream = streams[key][:1500]
    sync = BookSync(key, "usdm", checkpoint_every_ms=5_000)
    applied = []
    for recv, ev in stream:
        if type(ev) is DepthDiff:
            applied += sync.on_diff(ev, recv)
        elif type(ev) is DepthSnapshot:
            applied += sync.on_snapshot(ev, recv)
    events = sync.take_events()
    frames = book_frames(applied, events)
    store = open_store("mem://book-store-idempotent", create=True)
    assert not store.has_book(key) and store.last_book_update(key) is None
    half = len(applied) // 2
    assert store.append_book({key: book_frames(applied[:half], events)}) == {key: half}
    assert store.last_book_update(key) == applied[half - 1].diff.last_id
    reader = open_store("mem://book-store-idempotent")  # another reader: sees later appends
    assert reader.last_book_update(key) == applied[half - 1].diff.last_id
    # a restarted writer re-applies the whole journal: only the second half is new
    assert store.append_book({key: book_frames(applied, [])}) == {key: len(applied) - half}
    assert store.append_book({key: frames._replace(ledger=frames.ledger.iloc[:0])}) == {key: 0}
    assert reader.last_book_update(key) == applied[-1].diff.last_id
    again = open_store("mem://book-store-idempotent")  # a fresh look at the store: nothing stored twice
    pd.testing.assert_frame_equal(again.quotes(key), frames.quotes, check_freq=False)
    pd.testing.assert_frame_equal(again.book_diffs(key), frames.diffs, check_freq=False)
    cps = again._books.read("book_checkpoints", key)
    pd.testing.assert_frame_equal(cps, frames.checkpoints, check_freq=False)
    assert again.has_book("binance-usdm:btcusdt") and again.book_symbols() == [key]
    assert again.last_book_update(key) == applied[-1].diff.last_id
    assert store.compact_book(key) and not store.compact_book("ETHUSDT")  # segments merged, rows the same
    pd.testing.assert_frame_equal(again.quotes(key), frames.quotes, check_freq=False)
    stored = again.stored_book(key)  # what a writer or a load carries on from: the whole book
    assert stored.book.update_id == applied[-1].diff.last_id and not stored.stale
    assert stored.book.bbo() == applied[-1].bbo and stored.time.value == applied[-1].diff.event_time * 10**6
    # ledger rows are always appended, in time order even when older than the stored ones
    store.append_book({key: frames._replace(quotes=frames.quotes.iloc[:0], diffs=frames.diffs.iloc[:0],
                                            checkpoints=frames.checkpoints.iloc[:0])})
    ledger = store.book_ledger(key)
    assert len(ledger) == 2 * len(events) and ledger.index.is_monotonic_increasing


def test_reads_refuse_what_is_not_there(loaded):
    store, _ = loaded
    key = "binance-usdm:BTCUSDT"
    quotes = store.quotes(key)
    t = quotes.index[len(quotes) // 2]
    window = store.quotes(key, start=t, end=t + pd.Timedelta("1s"))
    pd.testing.assert_frame_equal(window, quotes[(quotes.index >= t) & (quotes.index < t + pd.Timedelta("1s"))])
    diffs = store.book_diffs(key, start=t, end=t + pd.Timedelta("1s"))
    assert set(diffs["update_id"]) == set(window["update_id"])
    assert set(diffs["side"].unique()) <= {-1, 0, 1}
    with pytest.raises(UnknownSymbol, match="ETHUSDT"):
        store.quotes("ETHUSDT")
    with pytest.raises(UnknownSymbol):
        store.book("binance-usdm:ETHUSDT", t)
    with pytest.raises(ValueError, match="first checkpoint"):
        store.book(key, quotes.index[0] - pd.Timedelta("1s"))
    with pytest.raises(ValueError, match="depth"):
        store.book(key, t, depth=0)
    with pytest.raises(ValueError, match="every"):
        store.book_snapshots(key, every="soon")
    with pytest.raises(ValueError, match="grid points"):
        store.book_snapshots(key, every="1ns")
    with pytest.raises(ValueError, match="not after"):
        store.quotes(key, start=t, end=t)
    assert store.book_ledger(key)["kind"].iloc[0] == "start"
    counts = store._books.counts(key)
    assert counts["quotes"] == len(quotes) and counts["book_diff_rows"] >= len(quotes)
    assert counts["book_last_update_id"] == int(quotes["update_id"].iloc[-1])
    levels = store.book(key, t, depth=3)
    assert levels.bids.shape == (3, 2) and levels.spread > 0 and "Book" in levels._repr_html_()
