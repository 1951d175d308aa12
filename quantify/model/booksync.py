"""Keeping a local order book in sync with a venue's diff stream: Binance's procedure, sans I/O.

:class:`BookSync` takes depth diffs, REST snapshots and ``bookTicker`` events
of one instrument, in the order they arrive, and says which diffs it applied
(:class:`Applied`, with the best bid and offer after each) and when it needs
a snapshot (:attr:`BookSync.wants_snapshot`); the caller does the I/O.

The procedure (Binance's "How to manage a local order book correctly"):

``spot`` (as corrected on 2025-11-12): buffer the stream; fetch a snapshot;
drop buffered events with ``u`` <= the snapshot's ``lastUpdateId``; if the
first event left starts after ``lastUpdateId + 1`` (the snapshot is older
than the stream: Binance's "lastUpdateId < the first buffered U"), fetch
again; otherwise overlay and apply. From then on each event's ``U`` is the
previous ``u`` + 1; anything later is a gap.

``usdm``: drop events with ``u`` < ``lastUpdateId``; the first event applied
has ``U`` <= ``lastUpdateId`` <= ``u`` (or continues it: ``pu`` ==
``lastUpdateId``); from then on each event's ``pu`` equals the previous
event's ``u``.

Both: an event whose ``u`` is at or below the book's is a duplicate (a
rotated connection's overlap) and is dropped. Quantities are absolute, so
an event overlapping the book's last id still leaves the book right.

On a gap the stream is not lost: events keep being buffered from the one
that revealed the gap, the book is marked stale (it holds the last levels
known, never silently wrong ones), a snapshot is asked for, and the overlay
carries on with the buffered events. A crossed book (best bid at or above
best ask) and a ``bookTicker`` that disagrees with the book at the same
update id are treated as gaps. Every such event goes to the continuity
ledger (:class:`Continuity` counters, :class:`LedgerEvent` records).

Known range. A snapshot knows each side only as deep as its worst level
(:class:`~quantify.model.book.OrderBook`). When the price moves past that
range, a side's best level is unknown: the quotes say NaN for it, never a
guess, and a fresh snapshot is asked for while the book stays live
(``refresh`` in the ledger): a second book is built from it and the events
since, and replaces the first once both stand at the same update id. Nothing
of the stream is lost meanwhile.

Checkpoints: the first event applied after each overlay, and then one every
``checkpoint_every_ms`` of exchange time, carries the book's top
``checkpoint_depth`` levels (:attr:`Applied.checkpoint`), so that a store can
rebuild the book at any moment from a checkpoint and the diffs after it.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import Final, NamedTuple

from quantify.model.book import BBO, BookLevels, BookTicker, DepthDiff, DepthSnapshot, OrderBook, same_bbo

__all__ = [
    "CHECKPOINT_DEPTH",
    "CHECKPOINT_EVERY_MS",
    "FINDS_SYNC",
    "LOSES_SYNC",
    "RULES",
    "Applied",
    "BookSync",
    "Continuity",
    "LedgerEvent",
    "SyncState",
]

logger = logging.getLogger(__name__)

#: The continuity rules: Binance spot (``U`` == previous ``u`` + 1) and USD-M (``pu`` == previous ``u``).
RULES: Final = ("spot", "usdm")
#: Levels per side in a checkpoint.
CHECKPOINT_DEPTH: Final = 1000
#: Exchange milliseconds between periodic checkpoints.
CHECKPOINT_EVERY_MS: Final = 10_000
#: Events buffered at most while waiting for a snapshot (the oldest are dropped beyond it).
MAX_BUFFER: Final = 200_000
#: Recent update ids whose best bid and offer are kept for late ``bookTicker`` checks.
_TICKER_HISTORY = 256
#: ``bookTicker`` events held at most until the book reaches their id.
_PENDING_TICKERS = 1024

#: Continuity-ledger kinds that put a book out of sync (a stale episode starts) ...
LOSES_SYNC: Final = ("gap", "crossed", "mismatch")
#: ... and those that find it in sync: the first sync, a resync, a writer resuming from the stored book.
FINDS_SYNC: Final = ("start", "resync", "resume")

#: Checkpoint reasons (the ``reason`` column of stored checkpoints).
PERIODIC: Final = 0
OVERLAY: Final = 1


class SyncState(enum.Enum):
    """Where the local book is."""

    WAITING = "waiting"
    """No book yet: buffering until a snapshot fits the stream."""
    LIVE = "live"
    """In sync: every event is applied as it arrives."""
    STALE = "stale"
    """A gap was seen: buffering, the book holds the last known levels, a snapshot is due."""


class Applied(NamedTuple):
    """A diff applied to the book, and the book's best bid and offer after it."""

    diff: DepthDiff
    recv_ns: int
    bbo: BBO
    #: The top levels after this event, when a checkpoint is due here.
    checkpoint: BookLevels | None = None
    #: Why the checkpoint was taken: ``PERIODIC`` (0) or ``OVERLAY`` (1, after a snapshot).
    checkpoint_reason: int = PERIODIC
    #: The checkpoint's known range per side (bid floor, ask ceiling): the book's, or the worst
    #: level kept where the checkpoint holds fewer levels than the book knows.
    checkpoint_bounds: tuple[float, float] = (float("-inf"), float("inf"))


class LedgerEvent(NamedTuple):
    """One event of the continuity ledger.

    ``kind``: ``start`` (first sync), ``resume`` (from a stored book), ``gap``,
    ``range``/``refresh`` (the price left the known range; a snapshot widened it),
    ``resync`` (back in sync;
    ``stale_seconds`` since the gap), ``stale_snapshot`` (a snapshot older than
    the stream, fetched again), ``crossed``, ``mismatch`` (the venue's
    ``bookTicker`` disagreed), ``disconnect``. ``time_ms`` is the exchange
    time of the event that revealed it (or the receipt time, if none).
    """

    time_ms: int
    kind: str
    expected_id: int
    got_id: int
    stale_seconds: float
    detail: str


@dataclass
class Continuity:
    """The continuity counters of one instrument's book."""

    events: int = 0
    gaps: int = 0
    resyncs: int = 0
    crossed: int = 0
    mismatches: int = 0
    ticker_checks: int = 0
    #: bookTicker events at an id the book reached, but with a side beyond the book's known range.
    ticker_unknown: int = 0
    #: Snapshots taken to widen the known range (the price left it); the stream stays live meanwhile.
    refreshes: int = 0
    stale_snapshots: int = 0
    snapshots: int = 0
    disconnects: int = 0
    duplicates: int = 0
    buffer_dropped: int = 0
    stale_seconds: float = 0.0

    @property
    def gaps_per_million(self) -> float:
        """Gaps (and crossed or mismatching books) per million diff events applied."""
        bad = self.gaps + self.crossed + self.mismatches
        return bad / self.events * 1e6 if self.events else 0.0

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = asdict(self)
        out["gaps_per_million"] = self.gaps_per_million
        return out


class BookSync:
    """One instrument's local book kept in sync with its diff stream (see the module docstring).

    Parameters
    ----------
    symbol : str
        The venue's symbol.
    rule : {"spot", "usdm"}
        The continuity rule of the venue.
    checkpoint_every_ms : int
        Exchange milliseconds between periodic checkpoints.
    checkpoint_depth : int
        Levels per side in a checkpoint.
    max_buffer : int
        Events buffered at most while out of sync.
    """

    def __init__(self, symbol: str, rule: str = "spot", *, checkpoint_every_ms: int = CHECKPOINT_EVERY_MS,
                 checkpoint_depth: int = CHECKPOINT_DEPTH, max_buffer: int = MAX_BUFFER) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")
        if checkpoint_every_ms < 1 or checkpoint_depth < 1 or max_buffer < 1:
            raise ValueError("checkpoint_every_ms, checkpoint_depth and max_buffer must be at least 1")
        self.symbol = symbol
        self.rule = rule
        self.checkpoint_every_ms = checkpoint_every_ms
        self.checkpoint_depth = checkpoint_depth
        self.book = OrderBook(symbol)
        self.state = SyncState.WAITING
        self.ledger = Continuity()
        #: The caller should fetch a snapshot and hand it to :meth:`on_snapshot`.
        self.wants_snapshot = True
        self._usdm = rule == "usdm"
        self._buffer: deque[tuple[DepthDiff, int]] = deque(maxlen=max_buffer)
        self._snapshot: DepthSnapshot | None = None
        self._events: list[LedgerEvent] = []
        self._stale_since_ns: int | None = None
        self._checkpoint_due = False
        self._last_checkpoint_ms = -1
        self._last_time_ms = -1
        #: Exchange time of the last diff received (applied or not).
        self._seen_ms = -1
        self._pending: dict[int, BookTicker] = {}
        self._recent: dict[int, BBO] = {}
        self._recent_ids: deque[int] = deque()
        self._synced_once = False
        #: The book is a snapshot no event has continued yet (the next one must fit it).
        self._fresh = False
        #: Events applied since a range refresh was asked for (None: no refresh under way).
        self._refresh: deque[DepthDiff] | None = None

    # -- state ------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.state is SyncState.LIVE

    @property
    def stale(self) -> bool:
        """Out of sync (waiting for the first snapshot, or between a gap and its resync)."""
        return self.state is not SyncState.LIVE

    def stale_seconds_now(self, now_ns: int) -> float:
        """Seconds the book has been out of sync at ``now_ns`` (0 while live)."""
        if self._stale_since_ns is None or self.live:
            return 0.0
        return max(now_ns - self._stale_since_ns, 0) / 1e9

    def take_events(self) -> list[LedgerEvent]:
        """The ledger events since the last call."""
        out, self._events = self._events, []
        return out

    def restore_events(self, events: list[LedgerEvent]) -> None:
        """Put back ledger events taken but not stored (before those logged since)."""
        self._events[:0] = events

    def _log(self, time_ms: int, kind: str, expected: int = -1, got: int = -1, stale: float = 0.0,
             detail: str = "") -> None:
        self._events.append(LedgerEvent(time_ms, kind, expected, got, stale, detail))
        if kind in LOSES_SYNC or kind == "stale_snapshot":
            logger.info("%s book: %s (expected %d, got %d) %s", self.symbol, kind, expected, got, detail)

    def _lose_sync(self, kind: str, time_ms: int, recv_ns: int, expected: int, got: int, detail: str) -> None:
        if kind == "gap":
            self.ledger.gaps += 1
        elif kind == "crossed":
            self.ledger.crossed += 1
        elif kind == "mismatch":
            self.ledger.mismatches += 1
        self._log(time_ms, kind, expected, got, detail=detail)
        self.state = SyncState.STALE
        self._stale_since_ns = recv_ns
        self._snapshot = None
        self._buffer.clear()
        self._refresh = None
        self.wants_snapshot = True

    # -- input ------------------------------------------------------------------

    def on_diff(self, diff: DepthDiff, recv_ns: int) -> list[Applied]:
        """Take one diff event; return the events applied to the book now (maybe none)."""
        self._seen_ms = diff.event_time
        if self.state is SyncState.LIVE:
            prev = self.book.update_id
            if diff.last_id < prev or (diff.last_id == prev and not (self._fresh and self._usdm)):
                self.ledger.duplicates += 1
                return []
            if self._fresh:  # the first event after a snapshot that held the whole buffer
                fits = self._fits(diff, prev)
                self._fresh = False
            else:
                fits = (diff.prev_id == prev) if self._usdm else (diff.first_id <= prev + 1)
            if fits:
                out: list[Applied] = []
                self._apply(diff, recv_ns, out)
                return out
            expected, got = (prev, diff.prev_id) if self._usdm else (prev + 1, diff.first_id)
            self._lose_sync("gap", diff.event_time, recv_ns, expected, got,
                            f"update ids {expected}..{diff.first_id - 1} missing" if not self._usdm
                            else f"pu {diff.prev_id} != previous u {prev}")
            self._buffer.append((diff, recv_ns))
            return []
        if self._stale_since_ns is None:  # waiting for the first snapshot: out of sync since the first event
            self._stale_since_ns = recv_ns
        if len(self._buffer) == self._buffer.maxlen:
            self.ledger.buffer_dropped += 1
        self._buffer.append((diff, recv_ns))
        return self._align(recv_ns) if self._snapshot is not None else []

    def on_snapshot(self, snap: DepthSnapshot, recv_ns: int) -> list[Applied]:
        """Take a REST snapshot; return the buffered events applied after overlaying it."""
        self.ledger.snapshots += 1
        self.wants_snapshot = False
        if self.state is SyncState.LIVE:
            if self._refresh is not None:
                self._snapshot = snap
                self._try_refresh()
            return []  # an answer that arrives after the book got back in sync some other way
        self._snapshot = snap
        return self._align(recv_ns)

    def on_ticker(self, ticker: BookTicker, recv_ns: int = 0) -> None:
        """Check the book against the venue's best bid and offer at the same update id.

        A ticker ahead of the book waits (bounded) until the book reaches its
        id; one inside an event's id range is never comparable and is dropped.
        """
        u = ticker.update_id
        if u == self.book.update_id and self.live:
            self._check(ticker, self.book.bbo(), ticker.event_time, recv_ns)
        elif u > self.book.update_id:
            if len(self._pending) >= _PENDING_TICKERS:
                self._pending.pop(next(iter(self._pending)))
            self._pending[u] = ticker
        else:
            bbo = self._recent.get(u)
            if bbo is not None and self.live:
                self._check(ticker, bbo, ticker.event_time, recv_ns)

    def resume(self, book: OrderBook, time_ms: int) -> None:
        """Carry on from a stored book (a restarted writer): live at its update id.

        Events that continue it (a killed predecessor's journal) are applied;
        the first live event after the downtime shows a gap and resyncs.
        """
        self.book = book
        self.state = SyncState.LIVE
        self.wants_snapshot = False
        self._synced_once = True
        self._stale_since_ns = None
        self._last_checkpoint_ms = time_ms
        self._last_time_ms = time_ms
        self._log(time_ms, "resume", book.update_id, book.update_id, detail="resumed from the stored book")

    def on_disconnect(self, time_ms: int) -> None:
        """Note a lost connection (a gap, if any, shows in the ids of the next events)."""
        self.ledger.disconnects += 1
        self._log(time_ms, "disconnect")

    # -- the procedure ----------------------------------------------------------------

    def _align(self, recv_ns: int) -> list[Applied]:
        snap = self._snapshot
        assert snap is not None
        last = snap.last_update_id
        buf = self._buffer
        if self._usdm:
            while buf and buf[0][0].last_id < last:
                buf.popleft()
        else:
            while buf and buf[0][0].last_id <= last:
                buf.popleft()
        if not buf:
            # The snapshot holds everything buffered: it is the book at its id. The event that
            # continues it must fit as the first buffered one would (checked in on_diff).
            self._overlay(snap, first_time_ms=self._seen_ms, first_id=last + 1, recv_ns=recv_ns)
            self._fresh = True
            return []
        first = buf[0][0]
        if not self._fits(first, last):
            self.ledger.stale_snapshots += 1
            self._log(first.event_time, "stale_snapshot", last + 1, first.first_id,
                      detail=f"snapshot lastUpdateId {last} is older than the stream; fetching again")
            self._snapshot = None
            self.wants_snapshot = True
            return []
        self._overlay(snap, first_time_ms=first.event_time, first_id=first.first_id, recv_ns=recv_ns)
        out: list[Applied] = []
        pending = list(buf)
        buf.clear()
        for i, (diff, when) in enumerate(pending):
            if i == 0:
                self._apply(diff, when, out)
                continue
            applied = self.on_diff(diff, when)
            out.extend(applied)
            if not self.live:  # a gap inside the buffer: the rest waits for the next snapshot
                buf.extend(pending[i + 1:])
                break
        return out

    def _fits(self, first: DepthDiff, last: int) -> bool:
        """Whether ``first`` is the event that continues a snapshot as of ``last``."""
        if self._usdm:
            return first.first_id <= last <= first.last_id or first.prev_id == last
        return first.first_id <= last + 1

    def _overlay(self, snap: DepthSnapshot, *, first_time_ms: int, first_id: int, recv_ns: int) -> None:
        """Make ``snap`` the book: live from its id, the resync (or start) logged."""
        self._snapshot = None
        self.book.reset(snap)
        stale = self.stale_seconds_now(recv_ns) if self._stale_since_ns is not None else 0.0
        kind = "resync" if self._synced_once else "start"
        if self._synced_once:
            self.ledger.resyncs += 1
            self.ledger.stale_seconds += stale
        self._synced_once = True
        self._log(first_time_ms, kind, snap.last_update_id, first_id, stale)
        self.state = SyncState.LIVE
        self._stale_since_ns = None
        self._checkpoint_due = True
        self._fresh = False
        self._recent.clear()
        self._recent_ids.clear()

    def _apply(self, diff: DepthDiff, recv_ns: int, out: list[Applied]) -> None:
        book = self.book
        book.apply(diff)
        if book.crossed:
            bid, ask = book.best_bid(), book.best_ask()
            self._lose_sync("crossed", diff.event_time, recv_ns, diff.last_id, diff.last_id,
                            f"best bid {bid[0] if bid else None} >= best ask {ask[0] if ask else None}")
            return
        self.ledger.events += 1
        bbo = book.bbo()
        u = diff.last_id
        if self._refresh is not None:
            self._refresh.append(diff)
            if self._snapshot is not None:
                self._try_refresh()
                book = self.book
                bbo = book.bbo()
        elif (bbo[0] != bbo[0] and book.has_hidden(True)) or (bbo[2] != bbo[2] and book.has_hidden(False)):
            # a side's best is beyond the known range (NaN != NaN): widen it with a fresh snapshot
            self._refresh = deque(maxlen=self._buffer.maxlen)
            self.wants_snapshot = True
            self._log(diff.event_time, "range", u, u, detail="the price left the known range; refreshing")
        checkpoint = None
        reason = PERIODIC
        bounds = (float("-inf"), float("inf"))
        t = diff.event_time
        if self._checkpoint_due or t - self._last_checkpoint_ms >= self.checkpoint_every_ms:
            reason = OVERLAY if self._checkpoint_due else PERIODIC
            self._checkpoint_due = False
            self._last_checkpoint_ms = t
            checkpoint = book.levels(self.checkpoint_depth)
            depth = self.checkpoint_depth
            bounds = (checkpoint.bids[-1, 0] if len(checkpoint.bids) == depth else book.bid_floor,
                      checkpoint.asks[-1, 0] if len(checkpoint.asks) == depth else book.ask_ceiling)
        self._last_time_ms = t
        out.append(Applied(diff, recv_ns, bbo, checkpoint, reason, bounds))
        recent = self._recent
        recent[u] = bbo
        self._recent_ids.append(u)
        if len(self._recent_ids) > _TICKER_HISTORY:
            recent.pop(self._recent_ids.popleft(), None)
        if self._pending:
            for k in [k for k in self._pending if k <= u]:
                ticker = self._pending.pop(k)
                if k == u:
                    self._check(ticker, bbo, t, recv_ns)

    def _try_refresh(self) -> None:
        """Build a book from the pending snapshot and the events since; swap it in when it fits."""
        snap, events = self._snapshot, self._refresh
        assert snap is not None and events is not None
        last = snap.last_update_id
        if last > self.book.update_id:
            return  # the snapshot is ahead of the book: wait until the stream reaches it
        todo = [d for d in events if (d.last_id >= last if self._usdm else d.last_id > last)]
        if todo:
            first = todo[0]
            fits = (first.first_id <= last <= first.last_id or first.prev_id == last) if self._usdm \
                else first.first_id <= last + 1
        else:
            fits = last == self.book.update_id
        self._snapshot = None
        if not fits:
            self.ledger.stale_snapshots += 1
            self._log(todo[0].event_time if todo else self._last_time_ms, "stale_snapshot", last + 1,
                      todo[0].first_id if todo else last, detail=f"snapshot lastUpdateId {last} is older than "
                      "the events kept for the range refresh; fetching again")
            self.wants_snapshot = True
            return
        fresh = OrderBook.from_snapshot(snap, self.symbol)
        for d in todo:
            fresh.apply(d)
        self.book = fresh
        self._refresh = None
        self.ledger.refreshes += 1
        self._checkpoint_due = True
        self._log(self._last_time_ms, "refresh", last, self.book.update_id,
                  detail="known range widened by a snapshot; the stream stayed live")

    def _check(self, ticker: BookTicker, bbo: BBO, time_ms: int, recv_ns: int) -> None:
        theirs = (ticker.bid_price, ticker.bid_qty, ticker.ask_price, ticker.ask_qty)
        if any(v != v for v in bbo):  # a side beyond the known range: not comparable
            self.ledger.ticker_unknown += 1
            return
        self.ledger.ticker_checks += 1
        if not same_bbo(theirs, bbo):
            self._lose_sync("mismatch", time_ms if time_ms >= 0 else self._last_time_ms, recv_ns,
                            ticker.update_id, ticker.update_id, f"bookTicker {theirs} != book {bbo}")
