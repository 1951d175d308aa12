"""Binance USD-M perpetual REST data over a replay tape, sans I/O: funding, premium index, open interest.

:class:`PerpAnswers` answers, for :class:`~quantify.replay.fapi.UsdmRestApi`:

``GET /fapi/v1/fundingRate`` (``symbol`` optional, ``startTime``, ``endTime``, ``limit`` default 100, at most 1000)
    Settlements in ascending ``fundingTime``, only those at or before the
    replay clock: with neither time, the latest ``limit``; with
    ``startTime``, the first ``limit`` from it (up to ``endTime`` if sent),
    as Binance pages; with ``endTime`` only, the latest ``limit`` up to it
    (Binance's docs do not say; this is the rule picked). ``startTime``
    after ``endTime`` is error -1023. Without ``symbol``, every symbol's
    rows, merged by time. Two sources:

    - *funding files* (``ReplayConfig.funding_files``, by default the real
      XRPUSDT settlements of 2021, ``quantify/data/usdm-2021-xrpusdt.funding.csv``):
      served with the file's own strings (``fundingRate``, ``markPrice``,
      ``""`` where the file has no mark, as Binance answers for old rows)
      and ``fundingTime`` as written;
    - the tape's USD-M symbols: *synthetic* settlements at 00:00, 08:00 and
      16:00 UTC, each the funding rate ``r`` and mark ``p`` of the
      instrument's last mark event at or before it
      (:mod:`quantify.replay.perp_tape`), for every settlement the marks
      reach (one in the 8 hours before it).

    A symbol known only from a funding file is listed in ``exchangeInfo``
    (so clients' symbol checks pass) but has no marks: ``premiumIndex``,
    ``openInterest`` and ``openInterestHist`` answer it -1121.
``GET /fapi/v1/premiumIndex`` (``symbol`` optional: one object, else a list; weight 1, 10 without)
    The mark event at the replay position (the last one sent by then; the
    first before any): ``markPrice``, ``indexPrice``,
    ``estimatedSettlePrice``, ``lastFundingRate`` as in the event,
    ``interestRate`` ``"0.00010000"``, ``nextFundingTime`` its ``T``,
    ``time`` the replay clock.
``GET /fapi/v1/openInterest`` (``symbol``) and ``GET /futures/data/openInterestHist``
    *Synthetic* open interest, a deterministic function of the symbol and
    the time (no recording holds it): about 2e9 USDT of contracts at the
    instrument's first mark, moved by a weekly, a daily and a 97-minute
    wave (+-8 %, 3 %, 1 %) with phases drawn from the symbol's name.
    ``openInterest`` prints the contracts with the instrument's quantity
    decimals at the replay clock. ``openInterestHist`` (``symbol``,
    ``period`` ``5m`` ... ``1d``, ``limit`` default 30 at most 500,
    ``startTime``, ``endTime``) has one row per period boundary within the
    30 days before the replay clock, as Binance keeps: paging as
    ``fundingRate``; a range wholly older answers ``[]``. Rows carry
    ``sumOpenInterest`` and ``sumOpenInterestValue`` (8 decimals; valued at
    the instrument's first mark, times the lap's price factor of the
    trades when looping) and ``timestamp``.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from quantify.replay._params import BadRequest, check_known, parse_limit, parse_long, symbol_name
from quantify.replay.perp_tape import FUNDING_INTERVAL_MS, INTEREST_RATE, MARK, PerpTape
from quantify.replay.tape import USDM, Tape
from quantify.venues.binance.rest import OPEN_INTEREST_PERIODS

__all__ = ["FUTURES_DATA_PREFIX", "OPEN_INTEREST_DAYS", "PerpAnswers"]

#: The path prefix of Binance's futures statistics (``openInterestHist``), beside ``/fapi/v1/``.
FUTURES_DATA_PREFIX = "/futures/data/"
#: Binance keeps this many days of ``openInterestHist``.
OPEN_INTEREST_DAYS = 30
_DAY = 86_400_000
_PERIOD_MS = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
              "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": _DAY}
assert tuple(_PERIOD_MS) == OPEN_INTEREST_PERIODS
#: Open interest of a synthetic instrument, in quote currency at its first mark.
_OPEN_INTEREST_VALUE = 2e9
#: (amplitude, period ms) of the waves of synthetic open interest.
_WAVES = ((0.08, 7 * _DAY), (0.03, _DAY), (0.01, 97 * 60_000))
_CACHED_LAPS = 4
_EIGHT = Decimal("0.00000001")


def _page(times: list[int], start: int | None, end: int | None, limit: int) -> slice:
    """Which of the ascending ``times`` a ``startTime``/``endTime``/``limit`` request gets (module docstring)."""
    lo = 0 if start is None else bisect_left(times, start)
    hi = len(times) if end is None else bisect_right(times, end)
    if start is not None:
        return slice(lo, min(hi, lo + limit))
    return slice(max(lo, hi - limit), hi)


def _times(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    start, end = parse_long(dict(params), "startTime"), parse_long(dict(params), "endTime")
    if start is not None and end is not None and start > end:
        raise BadRequest(-1023, "Start time is greater than end time.")
    return start, end


class PerpAnswers:
    """The perpetual endpoints of the USD-M API over ``tape`` (see the module docstring).

    Parameters
    ----------
    tape : Tape
        The recording being replayed (its mark tapes: :attr:`Tape.marks`).
    funding_rows : iterable of dict
        Settlements from funding files (``symbol``, ``fundingTime``,
        ``fundingRate``, ``markPrice``: :func:`~quantify.venues.binance.perp_files.read_funding_rows`).
    loop : bool
        Whether the replay repeats the tape.
    """

    def __init__(self, tape: Tape, funding_rows: Iterable[Mapping[str, Any]] = (), *, loop: bool = False) -> None:
        self.tape = tape
        self.loop = loop
        by_symbol: dict[str, dict[int, dict[str, Any]]] = {}
        for row in funding_rows:
            by_symbol.setdefault(row["symbol"], {})[row["fundingTime"]] = dict(row)
        #: Funding-file rows per symbol, ascending (a repeated time: the last file's row).
        self.file_funding = {s: [rows[t] for t in sorted(rows)] for s, rows in sorted(by_symbol.items())}
        self._marks: dict[str, PerpTape] = {t.symbol: t for t in tape.marks.values()}
        self._decoded: OrderedDict[tuple[str, int], tuple[list[int], list[dict[str, Any]]]] = OrderedDict()
        self._settled: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # symbol -> (next to make, made)

    # ---- what is served ------------------------------------------------------------

    def funding_only(self) -> list[str]:
        """Symbols known from funding files only (no trades, no marks on the tape)."""
        return [s for s in self.file_funding if self.tape.symbol(s, USDM) is None and s not in self._marks]

    def _mark_tape(self, params: Mapping[str, str]) -> PerpTape:
        name = symbol_name(dict(params))
        tape = self._marks.get(name)
        if tape is None:
            raise BadRequest(-1121, "Invalid symbol.")
        return tape

    # ---- marks at a time --------------------------------------------------------------

    def _lap_marks(self, tape: PerpTape, lap: int) -> tuple[list[int], list[dict[str, Any]]]:
        key = (tape.symbol, lap)
        cached = self._decoded.get(key)
        if cached is None:
            events = tape.payloads(lap, MARK)
            cached = ([e["E"] for e in events], events)
            self._decoded[key] = cached
            while len(self._decoded) > _CACHED_LAPS * max(1, len(self._marks)):
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(key)
        return cached

    def mark_at(self, tape: PerpTape, ms: int) -> dict[str, Any] | None:
        """The last mark event of ``tape`` at or before ``ms`` (over laps when looping); None before the first."""
        lap = max(0, (ms - self.tape.first_time) // self.tape.lap_ms) if self.loop else 0
        while lap >= 0:
            times, events = self._lap_marks(tape, lap)
            i = bisect_right(times, ms)
            if i:
                return events[i - 1]
            lap -= 1
        return None

    def _mark_or_first(self, tape: PerpTape, ms: int) -> dict[str, Any]:
        event = self.mark_at(tape, ms)
        if event is None:
            events = self._lap_marks(tape, 0)[1]
            if not events:
                raise BadRequest(-1121, "Invalid symbol.")
            event = events[0]
        return event

    # ---- fundingRate -------------------------------------------------------------------

    def _synthetic_settlements(self, tape: PerpTape, now_ms: int) -> list[dict[str, Any]]:
        """``tape``'s synthetic settlements up to ``now_ms`` (made once each: the clock only moves on)."""
        next_s, rows = self._settled.get(tape.symbol, (-1, []))
        if next_s < 0:
            first = self._lap_marks(tape, 0)[0]
            if not first:
                return []
            next_s = (first[0] // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        end = now_ms if self.loop else min(now_ms, self.tape.first_time + self.tape.lap_ms + FUNDING_INTERVAL_MS)
        while next_s <= end:
            mark = self.mark_at(tape, next_s)
            if mark is not None and mark["E"] > next_s - FUNDING_INTERVAL_MS:  # marks reach this settlement
                rows.append({"symbol": tape.symbol, "fundingTime": next_s, "fundingRate": mark["r"],
                             "markPrice": mark["p"]})
            next_s += FUNDING_INTERVAL_MS
        self._settled[tape.symbol] = (next_s, rows)
        return rows[:bisect_right([r["fundingTime"] for r in rows], now_ms)]

    def settlements(self, symbol: str, now_ms: int) -> list[dict[str, Any]]:
        """Every settlement of ``symbol`` up to ``now_ms``, ascending: file rows and synthetic ones."""
        rows = {r["fundingTime"]: r for r in self.file_funding.get(symbol, ()) if r["fundingTime"] <= now_ms}
        tape = self._marks.get(symbol)
        if tape is not None:
            for row in self._synthetic_settlements(tape, now_ms):
                rows.setdefault(row["fundingTime"], row)
        return [rows[t] for t in sorted(rows)]

    def funding_rate(self, params: dict[str, str], now_ms: int) -> list[dict[str, Any]]:
        check_known(params, ("symbol", "startTime", "endTime", "limit"))
        limit = parse_limit(params, 100, 1000)
        start, end = _times(params)
        if "symbol" in params:
            name = symbol_name(params)
            if name not in self.file_funding and name not in self._marks:
                raise BadRequest(-1121, "Invalid symbol.")
            rows = self.settlements(name, now_ms)
        else:
            names = sorted({*self.file_funding, *self._marks})
            rows = sorted((r for n in names for r in self.settlements(n, now_ms)),
                          key=lambda r: (r["fundingTime"], r["symbol"]))
        return rows[_page([r["fundingTime"] for r in rows], start, end, limit)]

    # ---- premiumIndex -------------------------------------------------------------------

    def _premium(self, tape: PerpTape, now_ms: int) -> dict[str, Any]:
        event = self._mark_or_first(tape, now_ms)
        return {"symbol": tape.symbol, "markPrice": event["p"], "indexPrice": event["i"],
                "estimatedSettlePrice": event["P"], "lastFundingRate": event["r"],
                "interestRate": f"{INTEREST_RATE:.8f}", "nextFundingTime": event["T"], "time": now_ms}

    def premium_index(self, params: dict[str, str], now_ms: int) -> Any:
        check_known(params, ("symbol",))
        if "symbol" in params:
            return self._premium(self._mark_tape(params), now_ms)
        return [self._premium(t, now_ms) for _, t in sorted(self._marks.items())]

    # ---- open interest -------------------------------------------------------------------

    def _contracts(self, tape: PerpTape, ms: int) -> float:
        first = float(self._lap_marks(tape, 0)[1][0]["p"]) if self._lap_marks(tape, 0)[1] else 1.0
        phase = zlib.crc32(tape.symbol.encode()) / 2**32 * 2 * math.pi
        wave = sum(a * math.sin(2 * math.pi * ms / p + (k + 1) * phase) for k, (a, p) in enumerate(_WAVES))
        return _OPEN_INTEREST_VALUE / first * (1 + wave)

    def _price_at(self, tape: PerpTape, ms: int) -> str:
        """The price open interest is valued at: the first mark, times the lap's price factor when looping."""
        first = self._mark_or_first(tape, self.tape.first_time)["p"]
        sym = self.tape.symbol(tape.symbol, USDM)
        lap = max(0, (ms - self.tape.first_time) // self.tape.lap_ms) if self.loop else 0
        if sym is None or lap == 0:
            return str(first)
        return f"{float(first) * sym.lap_prices.factor(lap):.8f}"

    def _qty_scale(self, tape: PerpTape) -> int:
        sym = self.tape.symbol(tape.symbol, USDM)
        return sym.qty_scale if sym is not None else 3

    def open_interest(self, params: dict[str, str], now_ms: int) -> dict[str, Any]:
        check_known(params, ("symbol",))
        tape = self._mark_tape(params)
        qs = self._qty_scale(tape)
        return {"openInterest": f"{self._contracts(tape, now_ms):.{qs}f}", "symbol": tape.symbol, "time": now_ms}

    def open_interest_hist(self, params: dict[str, str], now_ms: int) -> list[dict[str, Any]]:
        check_known(params, ("symbol", "period", "limit", "startTime", "endTime"))
        tape = self._mark_tape(params)
        period = params.get("period")
        if not period:
            raise BadRequest(-1102, "Mandatory parameter 'period' was not sent, was empty/null, or malformed.")
        step = _PERIOD_MS.get(period)
        if step is None:
            raise BadRequest(-1120, "Invalid interval.")
        limit = parse_limit(params, 30, 500)
        start, end = _times(params)
        earliest = -(-(now_ms - OPEN_INTEREST_DAYS * _DAY) // step) * step
        latest = now_ms // step * step
        if end is not None:
            latest = min(latest, end // step * step)
        first = earliest if start is None else max(earliest, -(-start // step) * step)
        if latest < first:
            return []
        count = (latest - first) // step + 1
        k0 = 0 if start is not None else max(0, count - limit)
        qs = self._qty_scale(tape)
        rows = []
        for k in range(k0, min(count, k0 + limit)):
            t = first + k * step
            contracts = Decimal(f"{self._contracts(tape, t):.{qs}f}")
            value = (contracts * Decimal(self._price_at(tape, t))).quantize(_EIGHT)
            rows.append({"symbol": tape.symbol, "sumOpenInterest": f"{contracts:.8f}",
                         "sumOpenInterestValue": f"{value:.8f}", "timestamp": t})
        return rows

    # ---- dispatch ------------------------------------------------------------------------

    def answer(self, endpoint: str, params: dict[str, str], now_ms: int) -> Any:
        """The answer to ``endpoint`` (``fundingRate``, ``premiumIndex``, ``openInterest``,
        ``openInterestHist``); :class:`BadRequest` for a bad request."""
        if endpoint == "fundingRate":
            return self.funding_rate(params, now_ms)
        if endpoint == "premiumIndex":
            return self.premium_index(params, now_ms)
        if endpoint == "openInterest":
            return self.open_interest(params, now_ms)
        if endpoint == "openInterestHist":
            return self.open_interest_hist(params, now_ms)
        raise KeyError(endpoint)
