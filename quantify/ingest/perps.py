"""The perpetual data of a run: streamed marks and liquidations, polled open interest and funding.

The receiver hands every ``MarkPrice`` and ``Liquidation`` its venue's
parser yields (live, and from a killed predecessor's journal) to the run's
:class:`PerpKeeper`; :class:`PerpPoller` asks each venue's REST API, in the
background, for what no stream carries:

- open interest (``Venue.perp_rest().open_interest``) of each perpetual
  every ``config.open_interest_interval`` seconds, stretched so that the
  polls use at most :data:`POLL_BUDGET_SHARE` of the venue's weight budget
  (Binance keeps open-interest history only 30 days: what is not polled
  and stored is lost after that);
- funding settlements: when a mark announces a later next funding time
  than the previous one (the previous settlement passed), ``fundingRate``
  from the last stored settlement + 1 ms, ``config.funding_delay`` seconds
  later, again at that interval until the venue lists the settlement.

Every request goes through the venue's REST client, so within its weight
budget and ``fundingRate``'s own pacing. What the keeper holds waits until
the writer takes it (:meth:`PerpKeeper.take`) and appends it with
``Store.append_perp``; an append that fails puts it back
(:meth:`PerpKeeper.restore`). Appends are idempotent, and the keeper drops
marks and liquidations at or before the last one it accepted (a rotation's
overlap, a journal replayed over what is stored), so nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import pandas as pd

from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.ingest.feeds import VenueFeed, perp_instruments
from quantify.model.instrument import Instrument
from quantify.model.perp import (
    FundingSettlement,
    Liquidation,
    MarkPrice,
    OpenInterest,
    funding_to_frame,
    liquidations_to_frame,
    marks_to_frame,
    open_interest_to_frame,
)
from quantify.model.perp_status import PerpStatus

__all__ = ["POLL_BUDGET_SHARE", "PerpBatch", "PerpKeeper", "PerpPoller", "perp_frames"]

logger = logging.getLogger(__name__)

#: The most of a venue's REST weight budget the open-interest polls may use.
POLL_BUDGET_SHARE: Final = 0.1
#: A settlement's ``fundingTime`` is a few ms after the hour the marks announced; this much earlier still counts.
_FUNDING_SLACK_MS: Final = 1_000
#: Longest wait between attempts of a failing funding fetch (seconds).
_MAX_RETRY: Final = 300.0
#: Attempts of one poll beyond the first (the client's default waits minutes; the next poll comes anyway).
_POLL_RETRIES: Final = 2
#: Request weight of ``openInterest`` (USD-M: 1; :data:`quantify.venues.binance.rest.USDM_WEIGHTS`).
_OPEN_INTEREST_WEIGHT: Final = 1

#: What the writer takes: kind (``mark``, ``liquidations``, ``open_interest``, ``funding``) -> key -> records.
PerpBatch = dict[str, dict[str, list[Any]]]

_TO_FRAME: Final[dict[str, Callable[[Any], pd.DataFrame]]] = {
    "mark": marks_to_frame, "liquidations": liquidations_to_frame,
    "open_interest": open_interest_to_frame, "funding": funding_to_frame,
}


def perp_frames(batch: PerpBatch) -> dict[str, dict[str, pd.DataFrame]]:
    """The frames of a taken batch, per kind and instrument key (:mod:`quantify.model.perp` layouts)."""
    return {kind: {key: _TO_FRAME[kind](rows) for key, rows in by_key.items()} for kind, by_key in batch.items()}


@dataclass
class _Track:
    """One perpetual's counters and latest values (what its :class:`PerpStatus` reports)."""

    key: str
    symbol: str
    last_mark_ms: int = -1
    last_liquidation_ms: int = -1
    last_funding_ms: int = -1
    mark: MarkPrice | None = None
    open_interest: float | None = None
    #: The settlement time that passed and whose rate is not stored yet (ms), and when it became due.
    funding_due: int | None = None
    due_since: float = 0.0
    marks_received: int = 0
    liquidations_received: int = 0
    duplicates: int = 0
    poll_errors: int = 0


class _Stored(NamedTuple):
    kind: str
    key: str
    rows: int


class PerpKeeper:
    """The run's perpetual data, waiting to be stored (see the module docstring).

    Parameters
    ----------
    config : IngestConfig
        ``perps``: whose data (spot instruments among them are ignored, with one notice).
    owns : callable
        True if this process writes instrument ``key``.
    clock : callable
        Monotonic seconds (when a settlement became due), injectable for tests.
    """

    def __init__(self, config: IngestConfig, *, owns: Callable[[str], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._owns = owns
        self._clock = clock
        #: (venue, symbol) -> instrument key, for the perpetuals this run keeps.
        self._keys: dict[tuple[str, str], str] = {}
        for inst in perp_instruments(config):
            self._keys[(inst.venue, inst.symbol)] = inst.key
        ignored = [p for p in config.perps if p not in {k for k in self._keys.values()}]
        #: Instruments of ``config.perps`` without perpetual data (spot), said once at start.
        self.ignored = tuple(ignored)
        self.tracks: dict[str, _Track] = {}
        self._pending: PerpBatch = {}
        #: Rows stored this run, per kind and key.
        self.stored: dict[str, dict[str, int]] = {}

    @property
    def keys(self) -> list[str]:
        """The instrument keys whose perpetual data this run keeps."""
        return list(self._keys.values())

    def keys_of(self, venue: str) -> list[tuple[str, str]]:
        """``(key, venue symbol)`` of the owned perpetuals of ``venue``."""
        return [(k, s) for (v, s), k in self._keys.items() if v == venue and self._owns(k)]

    def track(self, key: str) -> None:
        """Start keeping ``key`` (a perpetual of this run) before anything of it arrives."""
        inst = Instrument.parse(key)
        self._track(inst.venue, inst.symbol)

    def _track(self, venue: str, symbol: str) -> _Track | None:
        key = self._keys.get((venue, symbol))
        if key is None or not self._owns(key):
            return None
        track = self.tracks.get(key)
        if track is None:
            track = self.tracks[key] = _Track(key, symbol)
        return track

    def resume(self, key: str, *, mark_ms: int = -1, liquidation_ms: int = -1, funding_ms: int = -1) -> None:
        """Carry ``key`` on from the store: the last stored mark, liquidation and settlement (ms; -1: none)."""
        inst = Instrument.parse(key)
        track = self._track(inst.venue, inst.symbol)
        if track is None:
            return
        track.last_mark_ms = max(track.last_mark_ms, mark_ms)
        track.last_liquidation_ms = max(track.last_liquidation_ms, liquidation_ms)
        track.last_funding_ms = max(track.last_funding_ms, funding_ms)

    def drop(self, key: str) -> None:
        """Forget ``key`` (its ownership was lost); a new owner carries it on from the store."""
        self.tracks.pop(key, None)
        for by_key in self._pending.values():
            by_key.pop(key, None)

    # -- from the receiver --------------------------------------------------------

    def _add(self, kind: str, key: str, row: Any) -> None:
        self._pending.setdefault(kind, {}).setdefault(key, []).append(row)

    def on_mark(self, feed: VenueFeed, mark: MarkPrice) -> bool:
        """Keep ``mark`` (False: not a perpetual of this run, or a duplicate)."""
        track = self._track(feed.name, mark.symbol)
        if track is None:
            return False
        if mark.event_time <= track.last_mark_ms:
            track.duplicates += 1
            return False
        previous = track.mark
        if previous is not None and mark.next_funding_time > previous.next_funding_time \
                and previous.next_funding_time > track.last_funding_ms:
            # The settlement the previous marks announced has passed: its rate is fetched soon.
            track.funding_due = previous.next_funding_time
            track.due_since = self._clock()
        track.last_mark_ms = mark.event_time
        track.mark = mark
        track.marks_received += 1
        self._add("mark", track.key, mark)
        return True

    def on_liquidation(self, feed: VenueFeed, liquidation: Liquidation) -> bool:
        """Keep ``liquidation`` (False: not a perpetual of this run, or a duplicate)."""
        track = self._track(feed.name, liquidation.symbol)
        if track is None:
            return False
        if liquidation.trade_time <= track.last_liquidation_ms:
            track.duplicates += 1
            return False
        track.last_liquidation_ms = liquidation.trade_time
        track.liquidations_received += 1
        self._add("liquidations", track.key, liquidation)
        return True

    # -- from the poller -------------------------------------------------------------

    def on_open_interest(self, key: str, row: OpenInterest) -> None:
        track = self.tracks.get(key)
        if track is not None:
            track.open_interest = row.open_interest
            self._add("open_interest", key, row)

    def on_funding(self, key: str, settlements: Sequence[FundingSettlement]) -> bool:
        """Keep the settlements fetched for ``key``; True if the one due is among them (it is then done)."""
        track = self.tracks.get(key)
        if track is None:
            return True
        new = [s for s in settlements if s.funding_time > track.last_funding_ms]
        for s in new:
            self._add("funding", key, s)
        if new:
            track.last_funding_ms = max(s.funding_time for s in new)
        due = track.funding_due
        if due is not None and track.last_funding_ms >= due - _FUNDING_SLACK_MS:
            track.funding_due = None
        return track.funding_due is None

    def poll_failed(self, key: str) -> None:
        track = self.tracks.get(key)
        if track is not None:
            track.poll_errors += 1

    def funding_due(self, key: str) -> tuple[int, int] | None:
        """``(settlement ms, fetch from ms)`` if ``key``'s settlement is due for a fetch now, else None."""
        track = self.tracks.get(key)
        if track is None or track.funding_due is None:
            return None
        if self._clock() - track.due_since < self.config.funding_delay:
            return None
        start = track.last_funding_ms + 1 if track.last_funding_ms >= 0 else track.funding_due - _FUNDING_SLACK_MS
        return track.funding_due, start

    def retry_funding_later(self, key: str) -> None:
        """The settlement due is not listed yet: ask again ``funding_delay`` seconds from now."""
        track = self.tracks.get(key)
        if track is not None:
            track.due_since = self._clock()

    # -- the writer's side -------------------------------------------------------------

    def take(self) -> PerpBatch:
        """Everything received and polled since the last call, per kind and instrument key."""
        out, self._pending = self._pending, {}
        return {kind: by_key for kind, by_key in out.items() if by_key}

    def restore(self, batch: Mapping[str, Mapping[str, list[Any]]]) -> None:
        """Put back a batch the store refused (before what arrived since)."""
        for kind, by_key in batch.items():
            pending = self._pending.setdefault(kind, {})
            for key, rows in by_key.items():
                if key in self.tracks:
                    pending[key] = list(rows) + pending.get(key, [])

    def count_stored(self, kind: str, added: Mapping[str, int]) -> None:
        """Count the rows the store added of ``kind`` (``Store.append_perp``'s answer)."""
        by_key = self.stored.setdefault(kind, {})
        for key, n in added.items():
            by_key[key] = by_key.get(key, 0) + n

    def stored_keys(self) -> list[str]:
        """The instruments with perpetual data stored this run (whose segments compaction merges)."""
        return sorted({key for by_key in self.stored.values() for key, n in by_key.items() if n})

    @property
    def pending(self) -> int:
        """Rows waiting to be stored."""
        return sum(len(rows) for by_key in self._pending.values() for rows in by_key.values())

    def status(self) -> dict[str, PerpStatus]:
        """Each perpetual's :class:`PerpStatus`, by instrument key."""
        out = {}
        stored = self.stored
        for key, t in sorted(self.tracks.items()):
            m = t.mark
            out[key] = PerpStatus(
                instrument=key, marks_received=t.marks_received,
                marks_stored=stored.get("mark", {}).get(key, 0),
                liquidations_received=t.liquidations_received,
                liquidations_stored=stored.get("liquidations", {}).get(key, 0),
                open_interest_stored=stored.get("open_interest", {}).get(key, 0),
                funding_stored=stored.get("funding", {}).get(key, 0),
                duplicates_dropped=t.duplicates, poll_errors=t.poll_errors,
                last_mark_time=None if m is None else pd.Timestamp(m.event_time, unit="ms", tz="UTC"),
                mark_price=None if m is None else m.mark_price,
                funding_rate=None if m is None else m.funding_rate,
                next_funding_time=None if m is None else pd.Timestamp(m.next_funding_time, unit="ms", tz="UTC"),
                open_interest=t.open_interest,
                last_funding_time=None if t.last_funding_ms < 0 else pd.Timestamp(t.last_funding_ms, unit="ms",
                                                                                    tz="UTC"),
            )
        return out


class PerpPoller:
    """Poll one venue's open interest and funding settlements for the keeper (see the module docstring).

    Parameters
    ----------
    keeper : PerpKeeper
        Where the answers go (and which perpetuals, which settlements are due).
    feed : VenueFeed
        The venue; its ``perp_rest`` client sends the requests.
    config : IngestConfig
        ``open_interest_interval`` and ``funding_delay``.
    tick : float
        Seconds between looks at what is due.
    """

    def __init__(self, keeper: PerpKeeper, feed: VenueFeed, config: IngestConfig, *, tick: float = 0.5) -> None:
        self.keeper = keeper
        self.feed = feed
        self.config = config
        self.tick = tick
        self._next_oi: dict[str, float] = {}
        self._retry: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def interval(self, symbols: int) -> float:
        """Seconds between open-interest polls of one perpetual with ``symbols`` polled.

        ``config.open_interest_interval``, stretched so that ``symbols``
        polls of ``openInterest``'s weight per interval use at most
        :data:`POLL_BUDGET_SHARE` of the venue's budget per minute.
        """
        floor = 60.0 * symbols * _OPEN_INTEREST_WEIGHT / (self.feed.venue.weight_limit * POLL_BUDGET_SHARE)
        return max(self.config.open_interest_interval, floor)

    async def run(self) -> None:
        """Poll until cancelled; failures are logged, counted in the status and retried."""
        clock = time.monotonic
        while True:
            owned = self.keeper.keys_of(self.feed.name)
            interval = self.interval(len(owned))
            for key, symbol in owned:
                self.keeper.track(key)
                now = clock()
                if now >= self._retry.get(key, 0.0):
                    due = self.keeper.funding_due(key)
                    if due is not None:
                        await self._funding(key, symbol, *due)
                if now >= self._next_oi.get(key, 0.0):
                    self._next_oi[key] = now + interval
                    await self._open_interest(key, symbol)
            await asyncio.sleep(self.tick)

    async def _open_interest(self, key: str, symbol: str) -> None:
        rest = self.feed.perp_rest
        assert rest is not None
        try:
            row = await rest.open_interest(symbol, retries=_POLL_RETRIES)
        except RestError as exc:
            self._failed(key, "openInterest", exc)  # asked again at the next interval
            return
        self.keeper.on_open_interest(key, row)

    async def _funding(self, key: str, symbol: str, due_ms: int, start_ms: int) -> None:
        rest = self.feed.perp_rest
        assert rest is not None
        try:
            settlements = await rest.funding_rate(symbol, start_ms=start_ms, retries=_POLL_RETRIES)
        except RestError as exc:
            self._failed(key, "fundingRate", exc)
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            self._retry[key] = time.monotonic() + min(self.config.funding_delay * 2 ** min(failures, 8), _MAX_RETRY)
            return
        self._retry.pop(key, None)
        self._failures.pop(key, None)
        if self.keeper.on_funding(key, settlements):
            logger.info("%s: funding settlement of %s fetched", key,
                        pd.Timestamp(due_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC"))
        else:
            self.keeper.retry_funding_later(key)

    def _failed(self, key: str, endpoint: str, exc: RestError) -> None:
        track = self.keeper.tracks.get(key)
        first = track is None or track.poll_errors == 0
        self.keeper.poll_failed(key)
        # One warning per perpetual; later failures are counted in its status (poll_errors).
        (logger.warning if first else logger.debug)("%s: %s failed (%s); retrying", key, endpoint, exc)
