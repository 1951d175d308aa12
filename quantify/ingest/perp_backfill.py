"""Backfill perpetual-futures history over REST: funding settlements and open interest.

``quantify backfill binance-usdm:XRPUSDT --kind funding`` and
:func:`backfill_perp` fetch a perpetual's history page by page from its
venue's REST API (or the replay server's) into the store
(:meth:`Store.append_perp <quantify.store.perp.PerpReads.append_perp>`):

``funding``
    ``/fapi/v1/fundingRate`` pages of 1,000 settlements (Binance's maximum),
    ascending from ``start``: from ``--start``, else from the last stored
    settlement + 1 ms, else from the first settlement Binance has; each
    next page from the last settlement received + 1 ms, until a page holds
    fewer than ``limit`` rows (no more up to ``end``, or up to now).
``open_interest``
    ``/futures/data/openInterestHist`` every ``period`` (``5m`` ... ``1d``),
    windows of 500 periods (the most one request returns) forward from
    ``start`` to ``end`` (default: the server's clock). Binance keeps only
    the last 30 days: a start before that is clipped to it, and the result's
    ``notes`` say so (``quantify backfill`` prints them).

Every page is stored as it arrives, so a stopped run (Ctrl-C, SIGTERM under
``quantify backfill``, a crash, a network failure) loses nothing it fetched.
Resumable: a run without ``start`` continues from what is stored; a run
with ``start`` saves its cursor after every page in the store's ``_meta``
library (:mod:`quantify.ingest.backfill`'s progress records, under
``backfill.<INSTRUMENT>.<kind>.<start>.<end>``) and the next run with the
same arguments continues there. A finished range with an ``end`` is
remembered and not fetched again. Appends are idempotent: a settlement or
open-interest row at a stored time is not stored twice.

Within the venue's limits: every request goes through the venue's REST
client, which keeps to the weight budget (USD-M 2,400 per minute, less 20 %
headroom), paces ``fundingRate`` within its own 500 requests per 5 minutes
and ``openInterestHist`` within 1,000 per 5 minutes, and waits out 429/418s.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx
import pandas as pd

from quantify.exceptions import RestError
from quantify.ingest.backfill import _INTERVAL_MS, INVALID_SYMBOL, _Progress
from quantify.ingest.endpoints import Endpoints
from quantify.model.instrument import Instrument, InstrumentLike
from quantify.model.perp import funding_to_frame, open_interest_to_frame
from quantify.model.times import TimeLike, parse_time
from quantify.store.lease import WriterLock
from quantify.venues import venue_of
from quantify.venues.base import PerpRest
from quantify.venues.binance.rest import OPEN_INTEREST_PERIODS
from quantify.venues.listing import check_listed

if TYPE_CHECKING:
    from quantify.store.store import Store

__all__ = [
    "FUNDING_PAGE",
    "OPEN_INTEREST_DAYS",
    "OPEN_INTEREST_PAGE",
    "PERP_BACKFILL_KINDS",
    "PerpBackfillResult",
    "backfill_perp",
    "run_backfill_perp",
]

logger = logging.getLogger(__name__)

PERP_BACKFILL_KINDS: Final = ("funding", "open_interest")
#: Settlements per ``fundingRate`` request (Binance's maximum).
FUNDING_PAGE: Final = 1000
#: Rows per ``openInterestHist`` request (Binance's maximum).
OPEN_INTEREST_PAGE: Final = 500
#: Days of open-interest history Binance keeps.
OPEN_INTEREST_DAYS: Final = 30
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class PerpBackfillResult:
    """What a :func:`backfill_perp` run did.

    Attributes
    ----------
    symbol, kind : str
        The instrument key and ``funding`` or ``open_interest``.
    start, end : pandas.Timestamp or None
        Where this run started fetching (after resuming and clipping) and the
        end asked for (exclusive; None: up to now).
    rows : int
        Rows fetched by this run.
    added : int
        Rows the store did not hold before.
    pages, requests, weight, rate_limited : int
        REST pages fetched; HTTP requests sent (retries included); their
        request weight; 429/418 answers waited out.
    elapsed : float
        Seconds the run took (pacing waits included).
    resumed : bool
        The run continued from a saved cursor or from the stored rows.
    complete : bool
        Everything up to ``end`` (or up to now) is in the store.
    reached : pandas.Timestamp or None
        Time of the last row fetched.
    notes : tuple of str
        What the caller should know: a start clipped to the 30 days of open
        interest Binance keeps, a stretch that cannot be fetched any more.
    """

    symbol: str
    kind: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    rows: int
    added: int
    pages: int
    requests: int
    weight: int
    rate_limited: int
    elapsed: float
    resumed: bool
    complete: bool
    reached: pd.Timestamp | None
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: the range, rows fetched and added, requests, weight, time; then the notes."""
        span = f"[{self.start or 'first'}, {self.end or 'now'})"
        state = "complete" if self.complete else f"incomplete (data reached {self.reached}; rerun later)"
        line = (
            f"{self.symbol} {self.kind} {span}: {self.rows:,} rows fetched, {self.added:,} added, "
            f"{self.pages} pages, {self.requests} requests (weight {self.weight}), "
            f"{self.rate_limited} rate-limited, {self.elapsed:.1f} s{', resumed' if self.resumed else ''}; {state}"
        )
        return "\n".join([line, *(f"  note: {n}" for n in self.notes)])


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _ts(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


def _check(symbol: InstrumentLike, kind: str, period: str, limit: int | None) -> Instrument:
    try:
        inst = Instrument.parse(symbol)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"symbol must be a perpetual such as 'binance-usdm:BTCUSDT', got {symbol!r}") from exc
    if kind not in PERP_BACKFILL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PERP_BACKFILL_KINDS)}, got {kind!r}")
    if period not in OPEN_INTEREST_PERIODS:
        raise ValueError(f"period must be one of {', '.join(OPEN_INTEREST_PERIODS)}, got {period!r}")
    most = FUNDING_PAGE if kind == "funding" else OPEN_INTEREST_PAGE
    if limit is not None and not 1 <= limit <= most:
        raise ValueError(f"limit must be 1 to {most} for {kind}, got {limit!r}")
    if not venue_of(inst).perp_kinds:
        raise ValueError(f"{inst} is a spot instrument: funding and open interest are of perpetual futures, "
                         f"on binance-usdm (binance-usdm:{inst.symbol})")
    return inst


async def backfill_perp(
    store: Store,
    symbol: InstrumentLike,
    *,
    kind: str = "funding",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    period: str = "5m",
    limit: int | None = None,
    rest_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: bool = True,
    lock: bool = True,
) -> PerpBackfillResult:
    """Fetch a perpetual's funding settlements or open-interest history over REST into ``store``.

    Parameters
    ----------
    store : Store
        Target store (``store.funding(symbol)``, ``store.open_interest(symbol)`` read it back).
    symbol : str or Instrument
        A perpetual: ``binance-usdm:XRPUSDT``. A spot instrument is refused.
    kind : {"funding", "open_interest"}
        Settlements (``/fapi/v1/fundingRate``) or open interest every
        ``period`` (``/futures/data/openInterestHist``).
    start, end : datetime, str or number, optional
        The range, inclusive-exclusive (see :func:`quantify.store.parse_time`).
        ``start`` None: from the last stored row + 1 ms (funding: from the
        first settlement when none is stored; open interest: from 30 days
        ago). ``end`` None: up to now (the server's clock).
    period : str, default "5m"
        Open-interest period: ``5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d``.
    limit : int, optional
        Rows per request (default and maximum: 1,000 settlements, 500 open-interest rows).
    rest_url : str, optional
        REST base URL (the replay server's); default: the venue's own
        (``https://fapi.binance.com``).
    transport : httpx.AsyncBaseTransport, optional
        Replaces the network (tests).
    progress : bool
        Show a tqdm bar (market time covered) on stderr.
    lock : bool
        Take the store's writer lock (default); False if the caller holds it.

    Returns
    -------
    PerpBackfillResult

    Raises
    ------
    WriterLocked
        If another process writes to the store.
    ValueError
        For a spot instrument, a bad kind, period, limit or range, an
        open-interest range wholly older than the 30 days Binance keeps, or a
        symbol the venue does not list (naming the closest listed ones).
    RestError
        If the server refuses a request or keeps failing.

    Notes
    -----
    Binance's ``startTime``/``endTime`` are inclusive; ``end`` here is
    exclusive (as everywhere in QuantiFy), so ``endTime = end - 1 ms``.
    ``fundingRate`` answers, when more than ``limit`` settlements lie in the
    range, the first ``limit`` from ``startTime``: the next page starts at
    the last settlement + 1 ms, and a page shorter than ``limit`` is the
    last. ``openInterestHist`` is asked for windows of exactly ``limit``
    periods, so an answer never holds more than ``limit`` rows whichever end
    of the window the server counts from; a window the venue has no rows
    for (a listing gap) is passed over.
    """
    inst = _check(symbol, kind, period, limit)
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ValueError(f"end {t1} is not after start {t0}")
    start_ms = None if t0 is None else _ms(t0)
    end_ms = None if t1 is None else -(-int(t1.value) // 1_000_000)
    venue = venue_of(inst)
    base = rest_url or venue.rest_url
    began = time.perf_counter()
    held = WriterLock(store.uri.uri, store.uri.path).acquire() if lock else None
    try:
        run = _PerpRun(store, inst, kind, period, start_ms, end_ms, limit, progress)
        async with venue.perp_rest(base, transport=transport,
                                   observer=Endpoints().observer(venue.name, base)) as client:
            try:
                if kind == "funding":
                    await run.funding(client)
                else:
                    await run.open_interest(client)
            except RestError as exc:
                if exc.code == INVALID_SYMBOL:  # say which symbols the venue does list
                    check_listed([inst], await client.listed_symbols([inst.symbol], retries=0))
                raise
            finally:
                run.close_bar()
                run.requests, run.rate_limited, run.weight = client.requests, client.rate_limited, client.weight_spent
    finally:
        if held is not None:
            held.release()
    result = run.result(time.perf_counter() - began)
    logger.info("backfill: %s", result.summary())
    return result


def run_backfill_perp(store: Store, symbol: InstrumentLike, **kwargs: Any) -> PerpBackfillResult:
    """:func:`backfill_perp` for synchronous callers (runs its own event loop)."""
    return asyncio.run(backfill_perp(store, symbol, **kwargs))


class _PerpRun:
    """State of one perpetual backfill run."""

    def __init__(self, store: Store, inst: Instrument, kind: str, period: str, start_ms: int | None,
                 end_ms: int | None, limit: int | None, progress: bool) -> None:
        self.store, self.key, self.venue_symbol = store, inst.key, inst.symbol
        self.kind, self.period = kind, period
        self.start_ms, self.end_ms = start_ms, end_ms
        self.limit = limit or (FUNDING_PAGE if kind == "funding" else OPEN_INTEREST_PAGE)
        self.rows = self.added = self.pages = self.requests = self.rate_limited = self.weight = 0
        self.resumed = self.complete = False
        self.reached: int | None = None
        self.first: int | None = None  # where this run starts fetching
        self.notes: list[str] = []
        self.record: _Progress | None = None
        if start_ms is not None:  # an explicit range has a cursor of its own
            what = kind if kind == "funding" else f"{kind}_{period}"
            name = f"backfill.{self.key}.{what}.{start_ms}.{'open' if end_ms is None else end_ms}"
            self.record = _Progress(store, name)
        self._progress = progress
        self._bar: Any = None
        self._opened = False
        self._covered = 0

    def result(self, elapsed: float) -> PerpBackfillResult:
        return PerpBackfillResult(
            self.key, self.kind, _ts(self.first), _ts(self.end_ms), self.rows, self.added, self.pages,
            self.requests, self.weight, self.rate_limited, elapsed, self.resumed, self.complete,
            _ts(self.reached), tuple(self.notes),
        )

    # -- progress -------------------------------------------------------------------

    def _open_bar(self, from_ms: int, to_ms: int) -> None:
        """Start counting market time covered at ``from_ms`` (the first call only)."""
        if self._opened:
            return
        self._opened, self._covered = True, from_ms
        if not self._progress:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=max(round((to_ms - from_ms) / 1000), 0), unit=" s", unit_scale=True,
                         desc=f"{self.key} {self.kind}", file=sys.stderr, dynamic_ncols=True)

    def _advance(self, t_ms: int) -> None:
        if self._bar is not None and t_ms > self._covered:
            self._bar.update(round((t_ms - self._covered) / 1000))
            self._bar.set_postfix_str(f"{self.rows:,} rows", refresh=False)
        self._covered = max(self._covered, t_ms)

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _cursor(self) -> int | None:
        """Where to continue: the saved cursor, else ``start``; None without ``start`` (the store decides)."""
        if self.record is None:
            return None
        saved = self.record.state.get("next_ms")
        if saved is not None:
            self.resumed = True
            return int(saved)
        return self.start_ms

    def _store(self, frame: pd.DataFrame, reached: int) -> None:
        """Append one page (stored as it arrives: an interruption loses nothing fetched)."""
        self.rows += len(frame)
        self.added += self.store.append_perp(self.kind, {self.key: frame})[self.key]
        self.reached = reached

    # -- funding ----------------------------------------------------------------------

    async def funding(self, client: PerpRest) -> None:
        if self.record is not None and self.record.state.get("done"):
            self.complete = True
            return
        cursor = self._cursor()
        if cursor is None:
            last = self.store.last_funding_time(self.key)
            self.resumed = last is not None
            cursor = 0 if last is None else _ms(last) + 1
        self.first = cursor
        last_ms = self.end_ms - 1 if self.end_ms is not None else None
        while last_ms is None or cursor <= last_ms:
            page = await client.funding_rate(self.venue_symbol, cursor, last_ms, self.limit)
            self.pages += 1
            keep = [s for s in page if s.funding_time >= cursor and (last_ms is None or s.funding_time <= last_ms)]
            if keep:
                if self.first == 0:  # from the very first settlement: say when that was
                    self.first = keep[0].funding_time
                self._open_bar(keep[0].funding_time, int(time.time() * 1000) if last_ms is None else last_ms)
                self._store(funding_to_frame(keep), keep[-1].funding_time)
                self._advance(keep[-1].funding_time)
                cursor = keep[-1].funding_time + 1
            if self.record is not None:
                self.record.save(next_ms=cursor, done=False)
            if len(page) < self.limit:
                self.complete = True
                break
            if not keep:  # a full page with nothing after the cursor: the server ignores startTime
                raise RestError(f"fundingRate answered {len(page)} settlements none of which is at or after "
                                f"startTime {cursor}: cannot page on")
        else:
            self.complete = True
        if self.record is not None:
            self.record.save(next_ms=cursor, done=self.complete and self.end_ms is not None)

    # -- open interest ------------------------------------------------------------

    async def open_interest(self, client: PerpRest) -> None:
        if self.record is not None and self.record.state.get("done"):
            self.complete = True
            return
        step = _INTERVAL_MS[self.period]
        now_ms = await client.server_time()
        # the oldest row Binance still serves: the first period boundary within the last 30 days
        earliest = -(-(now_ms - OPEN_INTEREST_DAYS * _DAY_MS) // step) * step
        end_ms = now_ms + 1 if self.end_ms is None else min(self.end_ms, now_ms + 1)  # rows at <= now exist
        if self.end_ms is not None and self.end_ms <= earliest:
            raise ValueError(f"open interest before {_ts(earliest)} is gone: Binance keeps the last "
                             f"{OPEN_INTEREST_DAYS} days only (the range ends at {_ts(self.end_ms)})")
        cursor = self._cursor()
        if cursor is None:
            stored = self.store.last_perp_time("open_interest", self.key)
            self.resumed = stored is not None
            cursor = earliest if stored is None else _ms(stored) + 1
            if 0 <= cursor < earliest:
                self.notes.append(f"stored open interest ends at {_ts(cursor - 1)}; Binance keeps "
                                  f"{OPEN_INTEREST_DAYS} days, so {_ts(cursor - 1)} to {_ts(earliest)} cannot be "
                                  "fetched any more")
        elif cursor < earliest:
            self.notes.append(f"start {_ts(cursor)} clipped to {_ts(earliest)}: Binance keeps "
                              f"{OPEN_INTEREST_DAYS} days of open-interest history")
        if cursor < earliest:
            logger.warning("%s open interest: %s", self.key, self.notes[-1])
            cursor = earliest
        self.first = cursor
        self._open_bar(cursor, end_ms)
        while cursor < end_ms:
            window_end = min(cursor + self.limit * step, end_ms) - 1
            page = await client.open_interest_hist(self.venue_symbol, self.period, cursor, window_end, self.limit)
            self.pages += 1
            keep = [r for r in page if cursor <= r.time <= window_end]
            if keep:
                self._store(open_interest_to_frame(keep), keep[-1].time)
            cursor = window_end + 1
            self._advance(cursor)
            if self.record is not None:
                self.record.save(next_ms=cursor, done=False)
        # rows up to the server's clock are all there are: complete unless the range reaches past it
        self.complete = self.end_ms is None or self.end_ms <= now_ms + 1
        if self.record is not None:
            self.record.save(next_ms=cursor, done=self.complete and self.end_ms is not None)
