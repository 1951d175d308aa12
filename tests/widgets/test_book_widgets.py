"""BookMonitor and the book feeds, tested through get_state() on the shipped spot BTCUSDT book."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify.model.book import DepthDiff
from quantify.model.book_frames import BookFrames, book_frames
from quantify.model.booksync import BookSync
from quantify.store import Store, open_store
from quantify.widgets import BookMonitor, MicrostructurePanels
from quantify.widgets.book import stale_since
from quantify.widgets.source import BookTail, attach_service, book_feed_for, detach_service
from tests.book_helpers import events, feed

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
SPOT = [DATA / "spot-2024-btcusdt_20240808.book.gz", DATA / "spot-2024-btcusdt_20240809.book.gz"]


def sync_frames(files: list[Path], *, drop_after: int | None = None, stop_after_gap: bool = False) -> BookFrames:
    """Binance's procedure over a recording; optionally drop one diff (a gap) and end unresynced.

    Checkpoints keep 200 levels a side (the widgets draw 50): a fifth of the rows to store.
    """
    sync = BookSync("BTCUSDT", "spot", checkpoint_depth=200)
    stream = events(files)
    if drop_after is not None:
        diffs = [i for i, (_, ev) in enumerate(stream) if type(ev) is DepthDiff]
        stream = [e for i, e in enumerate(stream) if i != diffs[drop_after - 1]]
    applied = []
    for item in stream:
        applied += feed(sync, [item])
        if stop_after_gap and sync.ledger.gaps:
            break
    return book_frames(applied, sync.take_events())


def stored(tmp_path, frames: BookFrames, name: str = "store") -> Store:
    store = open_store(f"lmdb://{tmp_path / name}", create=True)
    store.append_book({"BTCUSDT": frames})
    return store


@pytest.fixture(scope="module")
def spot_frames() -> BookFrames:
    return sync_frames(SPOT)


@pytest.fixture(scope="module")
def book_store(spot_frames, tmp_path_factory) -> Store:
    return stored(tmp_path_factory.mktemp("book"), spot_frames)


@pytest.fixture(scope="module")
def early_store(spot_frames, tmp_path_factory) -> Store:
    return stored(tmp_path_factory.mktemp("early"), early_frames(spot_frames))


def test_monitor_draws_the_last_book(early_store):
    book_store = early_store
    mon = BookMonitor("BTCUSDT", store=book_store, depth=30, ladder=5, autostart=False)
    try:
        q = book_store.quotes("BTCUSDT")
        last = book_store.book("BTCUSDT", q.index[-1], depth=30)
        bid, ask = mon.figures["depth"].marks[:2]
        state = bid.get_state()
        assert state["fill"] == "bottom" and state["colors"] == [mon.theme.up]
        # cumulative size from the best bid out, drawn with prices ascending
        np.testing.assert_array_equal(np.asarray(bid.x), last.bids[:30, 0][::-1])
        np.testing.assert_allclose(np.asarray(bid.y), np.cumsum(last.bids[:30, 1])[::-1])
        np.testing.assert_array_equal(np.asarray(ask.x), last.asks[:30, 0])
        np.testing.assert_allclose(np.asarray(ask.y), np.cumsum(last.asks[:30, 1]))
        assert mon.levels.update_id == int(q["update_id"].iloc[-1])
        # the ladder shows the best 5 levels of each side
        html = mon._ladder.value
        assert html.count("<tr>") == 6 and f"{last.best_bid:,.2f}" in html and f"{last.best_ask:,.2f}" in html
        assert "IN SYNC" in mon._state.value and not mon.stale
        # the quotes of the last five minutes, bounded for the browser
        assert mon.quotes.index[0] >= q.index[-1] - pd.Timedelta("5min")
        assert 0 < mon.points["spread"] <= qf.widgets.MAX_POINTS + 2
    finally:
        mon.close()


def early_frames(frames: BookFrames, minutes: float = 4) -> BookFrames:
    """The frames of the first ``minutes`` (the bid side is in the snapshot's range until 23:58:35)."""
    cut = frames.quotes.index[0] + pd.Timedelta(minutes=minutes)
    return BookFrames(*(f[f.index <= cut] for f in frames))


def test_readouts_are_the_analytics_of_the_last_quote(early_store):
    store = early_store
    mon = BookMonitor("BTCUSDT", store=store, autostart=False)
    try:
        last = store.quotes("BTCUSDT").iloc[-1:]
        r = mon.readouts
        assert r["spread_bps"] == qf.quoted_spread(last, "bps").iloc[0]
        assert r["imbalance"] == qf.imbalance(last).iloc[0]
        assert r["microprice"] == qf.microprice(last).iloc[0]
        # and the book's own numbers at that moment agree
        levels = mon.levels
        assert r["mid"] == pytest.approx(levels.mid, rel=1e-15)
        assert r["microprice"] == pytest.approx(levels.microprice, rel=1e-12)
        assert f"{r['spread_bps']:.2f} bps" in mon._header.value
    finally:
        mon.close()


def test_a_side_beyond_the_known_range_is_unknown_not_guessed(book_store):
    # the recording ends with the best bid below the snapshot's lowest bid (no refresh recorded)
    assert np.isnan(book_store.quotes("BTCUSDT")["bid_price"].iloc[-1])
    mon = BookMonitor("BTCUSDT", store=book_store, autostart=False)
    try:
        assert np.isnan(mon.readouts["spread_bps"]) and np.isnan(mon.readouts["microprice"])
        assert "– bps" in mon._header.value
        assert len(mon.levels.bids) == 0 and not mon.levels.complete
        assert "no known bid: the best levels lie beyond the snapshot&#x27;s range" in mon._ladder.value
        assert len(mon.figures["depth"].marks[0].x) == 0 and len(mon.figures["depth"].marks[1].x) == 50
        # quotes with an unknown side are left out of the charts (the browser cannot draw NaN)
        assert np.isfinite(np.asarray(mon.figures["spread"].marks[0].y)).all()
    finally:
        mon.close()


def test_monitor_follows_new_quotes_frame_by_frame(spot_frames, tmp_path, monkeypatch):
    # the store first holds the book up to 23:58, then all of it: one frame takes the rest
    store = stored(tmp_path, early_frames(spot_frames))
    reads = []
    book = store.book
    monkeypatch.setattr(store, "book", lambda *a, **k: reads.append(a) or book(*a, **k))
    mon = BookMonitor("BTCUSDT", store=store, autostart=False, levels_every=0)
    slow = BookMonitor("BTCUSDT", store=store, autostart=False, levels_every=3600)
    try:
        first_id = mon.levels.update_id
        drawn, n = mon.frames_drawn, len(reads)
        mon.refresh()  # nothing new: no redraw, no book read
        assert (mon.frames_drawn, len(reads)) == (drawn, n)
        store.append_book({"BTCUSDT": spot_frames})  # idempotent: only the rows after the stored ones
        mon.refresh()
        assert mon.frames_drawn == drawn + 1 and len(reads) == n + 1
        assert mon.levels.update_id == int(spot_frames.quotes["update_id"].iloc[-1]) > first_id
        assert mon.quotes.index.is_monotonic_increasing and mon.quotes["update_id"].is_unique
        # at most one read of the levels per levels_every: the quotes follow at once, the ladder later
        n = len(reads)
        slow.refresh()
        assert len(reads) == n and slow.levels.update_id == first_id
        assert slow.quotes["update_id"].iloc[-1] == mon.levels.update_id
        slow.levels_every = 0
        slow.refresh()
        assert len(reads) == n + 1 and slow.levels.update_id == mon.levels.update_id
    finally:
        mon.close()
        slow.close()


def test_a_book_out_of_sync_is_grey_and_says_since_when(tmp_path):
    frames = sync_frames(SPOT, drop_after=300, stop_after_gap=True)
    gap = frames.ledger[frames.ledger["kind"] == "gap"]
    assert len(gap) == 1
    mon = BookMonitor("BTCUSDT", store=stored(tmp_path, frames), autostart=False)
    try:
        assert mon.stale and mon.stale_from == gap.index[0]
        label = mon._state.value
        assert "STALE since " + f"{gap.index[0]:%Y-%m-%d %H:%M:%S} UTC" in label and "IN SYNC" not in label
        bid, ask = mon.figures["depth"].marks[:2]
        assert bid.colors == ask.colors == [mon.theme.muted]
        assert "STALE" in mon.figures["depth"].title and "opacity:.6" in mon._ladder.value
    finally:
        mon.close()


def test_stale_since_reads_the_ledger():
    idx = pd.DatetimeIndex(pd.to_datetime(["2024-08-08 23:55", "2024-08-08 23:56", "2024-08-08 23:57",
                                           "2024-08-08 23:58"], utc=True), name="time")
    led = pd.DataFrame({"kind": ["start", "gap", "resync", "gap"]}, index=idx)
    assert stale_since(led) == idx[3]
    assert stale_since(led.iloc[:3]) is None
    assert stale_since(led.iloc[:2]) == idx[1]
    assert stale_since(led.iloc[:0]) is None


def test_no_book_says_so_and_bad_arguments_name_the_value(book_store):
    mon = BookMonitor("ETHUSDT", store=book_store, autostart=False)
    try:
        assert mon.levels is None and "NO BOOK" in mon._state.value
        assert "no order book stored for ETHUSDT" in mon._ladder.value
    finally:
        mon.close()
    with pytest.raises(ValueError, match="'deep'"):
        BookMonitor("BTCUSDT", store=book_store, depth="deep", autostart=False)
    with pytest.raises(ValueError, match="'soon'"):
        BookMonitor("BTCUSDT", store=book_store, window="soon", autostart=False)
    with pytest.raises(ValueError, match="-1"):
        BookMonitor("BTCUSDT", store=book_store, levels_every=-1, autostart=False)


class FakeService:
    """What the writer offers a widget: its store and batch listeners (book_batch on each flush)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.listeners: list = []

    def add_batch_listener(self, listener) -> None:
        self.listeners.append(listener)


def test_service_feed_takes_the_writers_book_batches(spot_frames, tmp_path):
    store = stored(tmp_path, early_frames(spot_frames))
    cut = store.quotes("BTCUSDT").index[-1]
    service = FakeService(store)
    attach_service(service)
    try:
        feed = book_feed_for(store, "BTCUSDT")
        assert type(feed) is not BookTail
        mon = BookMonitor("BTCUSDT", store=store, autostart=False, levels_every=0)
        try:
            assert not mon.stale
            rest = spot_frames.quotes[spot_frames.quotes.index > cut]
            store.append_book({"BTCUSDT": spot_frames})
            for listener in service.listeners:
                listener.book_batch({"BTCUSDT": rest}, {}, {"BTCUSDT": 0.0})
            mon.refresh()
            assert mon.levels.update_id == int(rest["update_id"].iloc[-1])
            # the writer says the book is out of sync: grey, with how long
            for listener in service.listeners:
                listener.book_batch({}, {}, {"BTCUSDT": 12.0})
            mon.refresh()
            assert mon.stale and "STALE since" in mon._state.value and "(12 s)" in mon._state.value
        finally:
            mon.close()
        feed.close()
    finally:
        detach_service(service)


def test_panels_show_the_notebooks_numbers(book_store):
    from quantify.venues.binance.recordings import read_trades

    for path in sorted(DATA.glob("spot-2024-btcusdt_2024080*.trades.gz")):
        book_store.append_ticks(read_trades(path))
    panels = MicrostructurePanels("BTCUSDT", store=book_store, autostart=False)
    try:
        quotes, trades = book_store.quotes("BTCUSDT"), book_store.ticks("BTCUSDT")
        ref = qf.markouts(trades, quotes, ["1s", "5s", "30s"])
        np.testing.assert_array_equal(np.asarray(panels.figures["markouts"].marks[0].y), ref.mean.to_numpy())
        assert f"30s {ref.weighted_mean['30s']:+.3f}" in panels._summary.value
        assert f"{ref.mean['1s']:+.3f} ± {ref.stderr['1s']:.3f} bps" in panels._summary.value
        # spread and imbalance of the last known quote of each second
        s = panels.series
        known = quotes.dropna(subset=["bid_price"])
        at = s.index[10]
        last = known[known.index <= at].iloc[-1:]
        assert s.loc[at, "spread_bps"] == qf.quoted_spread(last, "bps").iloc[0]
        assert s.loc[at, "imbalance"] == qf.imbalance(last).iloc[0]
        assert len(panels.figures["spread"].marks[0].x) == len(s) > 500
        panels.set_symbol("ETHUSDT")  # no book of it: empty panels, said so
        assert len(panels.series) == 0 and "quotes</span><b>0" in panels._summary.value
    finally:
        panels.close()


@pytest.mark.parametrize("name", ["BookMonitor", "MicrostructurePanels", "microstructure_dashboard"])
def test_constructing_the_book_widgets_warns_of_nothing(early_store, name):
    # an argument that is no trait of the installed bqplot (Axis(orientation=...)) only warns
    import warnings

    from quantify.widgets import stop_all
    from quantify.widgets.dashboards import microstructure_dashboard

    build = {"BookMonitor": lambda: BookMonitor("BTCUSDT", store=early_store, autostart=False, theme="dark"),
             "MicrostructurePanels": lambda: MicrostructurePanels("BTCUSDT", store=early_store, autostart=False),
             "microstructure_dashboard": lambda: microstructure_dashboard(early_store)}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="Passing a BlockManager", category=DeprecationWarning)
        widget = build()
        if hasattr(widget, "refresh"):
            widget.refresh()
        widget.close()
    stop_all()
