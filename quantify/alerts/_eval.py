"""Numerics of rule evaluation: level scans with hysteresis, bar series, window values, book episodes.

Pure numpy over the model's bar kernel; no store, no threads. The engine feeds these per symbol per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from quantify.model.bars import bar_bounds
from quantify.model.booksync import FINDS_SYNC, LOSES_SYNC

__all__ = [
    "LOSS_KINDS",
    "NS",
    "SYNC_KINDS",
    "BarSeries",
    "BookEpisodes",
    "StaleStep",
    "corr_value",
    "first_true",
    "scan_crosses",
    "scan_level",
    "vol_ratio",
]

NS = 1_000_000_000
#: Continuity-ledger kinds that open and close a stale episode (the model's, one definition).
LOSS_KINDS = LOSES_SYNC
SYNC_KINDS = FINDS_SYNC


def first_true(mask: np.ndarray, start: int) -> int:
    """Index of the first True of ``mask`` at or after ``start``, or -1."""
    if start >= len(mask):
        return -1
    i = int(np.argmax(mask[start:]))
    return start + i if mask[start + i] else -1


def _cooled(state: dict[str, Any], t: int, cooldown_ns: int) -> bool:
    last = state.get("last_fired")
    return last is None or t - last >= cooldown_ns


def scan_level(
    values: np.ndarray, times: np.ndarray, *, above: bool, level: float, margin: float,
    strict: bool, state: dict[str, Any], cooldown_ns: int,
) -> tuple[list[int], int]:
    """Walk ``values`` through an armed/disarmed level trigger.

    Armed, the first value beyond ``level`` (``>=``, or ``>`` if ``strict``;
    mirrored for ``above=False``) triggers: it fires unless the cooldown since
    the last firing has not run out (then it is suppressed), and either way
    disarms. Disarmed, the first value back on the other side by more than
    ``margin`` re-arms. NaN neither triggers nor re-arms.

    Returns the indices that fired and the number suppressed; ``state``
    (``armed``, ``last_fired``) is updated in place.
    """
    n = len(values)
    if n == 0:
        return [], 0
    with np.errstate(invalid="ignore"):
        if above:
            cond = values > level if strict else values >= level
            rearm = values < level - margin
        else:
            cond = values < level if strict else values <= level
            rearm = values > level + margin
    fired: list[int] = []
    suppressed = 0
    pos = 0
    armed = state.get("armed", True)
    while pos < n:
        if armed:
            i = first_true(cond, pos)
            if i < 0:
                break
            if _cooled(state, int(times[i]), cooldown_ns):
                fired.append(i)
                state["last_fired"] = int(times[i])
            else:
                suppressed += 1
            armed = False
        else:
            i = first_true(rearm, pos)
            if i < 0:
                break
            armed = True
        pos = i + 1
    state["armed"] = armed
    return fired, suppressed


def scan_crosses(
    values: np.ndarray, times: np.ndarray, *, level: float, margin: float,
    state: dict[str, Any], cooldown_ns: int,
) -> tuple[list[int], int]:
    """Fire when ``values`` reach ``level`` from beyond ``level ± margin``.

    ``state["side"]`` is ``"below"``, ``"above"`` or ``None`` (not yet beyond
    the dead band ``level ± margin``); only a reach from a known side fires.
    """
    n = len(values)
    if n == 0:
        return [], 0
    with np.errstate(invalid="ignore"):
        up = values >= level
        down = values <= level
        below = values < level - margin
        above = values > level + margin
        decided = below | above
    fired: list[int] = []
    suppressed = 0
    pos = 0
    side = state.get("side")
    while pos < n:
        if side is None:
            i = first_true(decided, pos)
            if i < 0:
                break
            side = "below" if below[i] else "above"
        else:
            i = first_true(up if side == "below" else down, pos)
            if i < 0:
                break
            if _cooled(state, int(times[i]), cooldown_ns):
                fired.append(i)
                state["last_fired"] = int(times[i])
            else:
                suppressed += 1
            side = "above" if above[i] else ("below" if below[i] else None)
        pos = i + 1
    state["side"] = side
    return fired, suppressed


class BarSeries:
    """Closes of consecutive bars of one symbol, Binance style (an empty bar repeats the last close).

    Only state lives here: the open bar (its start and close so far) and a
    bounded history of closed bars; each batch's bars come from the bar kernel
    (:func:`quantify.model.bars.bar_bounds`), so the closes equal
    :func:`~quantify.model.bars.resample`'s. A bar is closed by the first
    trade at or after its end; that trade is the bar's *trigger* (its time and
    id are kept per bar).

    Parameters
    ----------
    tf_ns : int
        Bar length in ns; bars start at multiples of it (UTC epoch).
    keep : int
        Closed bars kept (older ones are dropped).
    """

    def __init__(self, tf_ns: int, keep: int) -> None:
        self.tf = int(tf_ns)
        self.keep = int(keep)
        self.first: int | None = None  # start of closes[0]
        self.closes: list[float] = []
        self.trig_t: list[int] = []
        self.trig_id: list[int] = []
        self.cur: int | None = None  # start of the open bar
        self.cur_close = math.nan

    @property
    def last_closed(self) -> int | None:
        """Start of the newest closed bar."""
        if self.first is None or not self.closes:
            return None
        return self.first + (len(self.closes) - 1) * self.tf

    def _open(self, starts: np.ndarray, rows: np.ndarray, before: np.ndarray, closes: np.ndarray,
              times: np.ndarray, ids: np.ndarray) -> None:
        """Close the bars from ``before`` up to ``starts`` (the bars opened by ``rows``).

        Each opened bar closes the bar before it, at ``closes``, and the empty
        bars between them at the same close; the trade at ``rows`` triggers them.
        """
        tf = self.tf
        counts = (starts - before) // tf
        silent = np.flatnonzero(counts > self.keep + 1)
        if silent.size:  # a long silence: older bars are of no use
            j = int(silent[-1])
            self.first, self.closes, self.trig_t, self.trig_id = None, [], [], []
            before, closes, rows, counts = before[j:], closes[j:], rows[j:], counts[j:].copy()
            counts[0] = self.keep + 1
            before = before.copy()
            before[0] = starts[j] - counts[0] * tf
        if self.first is None or not self.closes:
            self.first = int(before[0])
        if len(counts) == 1 and counts[0] == 1:
            self.closes.append(float(closes[0]))
            self.trig_t.append(int(times[rows[0]]))
            self.trig_id.append(int(ids[rows[0]]))
            return
        self.closes += np.repeat(closes, counts).tolist()
        self.trig_t += np.repeat(times[rows], counts).tolist()
        self.trig_id += np.repeat(np.asarray(ids)[rows], counts).tolist()

    def update(self, times: np.ndarray, prices: np.ndarray, ids: np.ndarray) -> None:
        """Add trades (id order); close every bar they pass the end of.

        Trades come in id order and their times can dip: a trade stamped
        before an earlier one counts in that one's bar.
        """
        if len(times) == 0:
            return
        tf = self.tf
        times = np.asarray(times, dtype=np.int64)
        prices = np.asarray(prices, dtype=np.float64)
        stamps = times
        if self.cur is not None and stamps[0] < self.cur:
            stamps = np.maximum(stamps, self.cur)
        try:
            bounds, bar_ids = bar_bounds(stamps, tf)
        except ValueError:  # a dip inside the batch
            bounds, bar_ids = bar_bounds(np.maximum.accumulate(stamps), tf)
        starts = bar_ids * tf
        if self.cur is None:
            self.cur = int(starts[0])
        if starts[0] == self.cur:  # the batch goes on with the open bar
            if len(starts) > 1:
                self._open(starts[1:], bounds[1:-1], starts[:-1], prices[bounds[1:-1] - 1],
                           times, ids)
        else:
            closes = np.empty(len(starts))
            closes[0] = self.cur_close
            closes[1:] = prices[bounds[1:-1] - 1]
            before = np.empty_like(starts)
            before[0] = self.cur
            before[1:] = starts[:-1]
            self._open(starts, bounds[:-1], before, closes, times, ids)
        self.cur = int(starts[-1])
        self.cur_close = float(prices[-1])
        extra = len(self.closes) - 2 * self.keep
        if extra > 0:
            extra = len(self.closes) - self.keep
            del self.closes[:extra], self.trig_t[:extra], self.trig_id[:extra]
            self.first += extra * tf  # type: ignore[operator]

    def index(self, start: int) -> int:
        """Position of the closed bar starting at ``start`` (-1 if not kept)."""
        if self.first is None:
            return -1
        i = (start - self.first) // self.tf
        return int(i) if 0 <= i < len(self.closes) else -1

    def window(self, start: int, n: int) -> np.ndarray | None:
        """The ``n`` closes ending with bar ``start``, or None if fewer are kept."""
        i = self.index(start)
        if i < 0 or i + 1 < n:
            return None
        return np.asarray(self.closes[i + 1 - n:i + 1], dtype=float)


def vol_ratio(closes: np.ndarray, short: int, long: int) -> float:
    """``std(last short log returns) / std(last long log returns)``, both ``ddof=1``."""
    r = np.diff(np.log(closes[-(long + 1):]))
    base = float(r.std(ddof=1))
    if not base > 0:
        return math.nan
    return float(r[-short:].std(ddof=1)) / base


def corr_value(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the log returns of two close windows."""
    ra, rb = np.diff(np.log(a)), np.diff(np.log(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / den if den > 0 else math.nan


class StaleStep(NamedTuple):
    """One look at a book's sync: ``value`` seconds out of sync at ``t`` (ns); 0: back in sync."""

    t: int
    value: float
    #: The episode's id: the update id that revealed the gap (-1 on a step back in sync).
    episode: int


class BookEpisodes:
    """Each order book's position and its current episode out of sync, from the writer's calls.

    ``pos``: instrument -> (last evaluated quote's update id, its exchange time
    ns). ``open``: instrument -> (the episode's start, exchange time ns of the
    ledger event that revealed it; its id), while out of sync.
    """

    def __init__(self) -> None:
        self.pos: dict[str, tuple[int, int]] = {}
        self.open: dict[str, tuple[int, int]] = {}

    def new_quotes(self, inst: str, quotes: pd.DataFrame) -> pd.DataFrame:
        """The quotes after the last evaluated one (a quote handed twice is judged once)."""
        last = self.pos.get(inst)
        if last is None or not len(quotes):
            return quotes
        ids = quotes["update_id"].to_numpy()
        return quotes if ids[0] > last[0] else quotes[ids > last[0]]

    def advance(self, ledger: Mapping[str, pd.DataFrame], stale_seconds: Mapping[str, float]
                ) -> dict[str, list[StaleStep]]:
        """The sync steps of each book in this call, in order; episodes opened and closed on the way.

        Per ledger row: a loss (:data:`LOSS_KINDS`) opens an episode; a
        ``resync`` closes it with a step of its length (the row's
        ``stale_seconds``) then a step back in sync; ``start`` (the first sync)
        and ``resume`` (a writer carrying on from the stored book) are steps in sync. Then ``stale_seconds`` now: its step is timed at the
        episode's start plus its length (the exchange clock, like quotes and
        trades). An episode first seen open (the engine started during it) is
        dated from the book's last quote, or the wall clock if it has none.
        """
        out: dict[str, list[StaleStep]] = {}
        for inst in sorted(set(ledger) | set(stale_seconds)):
            steps: list[StaleStep] = []
            frame = ledger.get(inst)
            if frame is not None and len(frame):
                rows = zip(frame.index.asi8.tolist(), frame["kind"].tolist(), frame["got_id"].tolist(),
                           frame["stale_seconds"].tolist(), strict=True)
                for t, kind, got, secs in rows:
                    if kind in LOSS_KINDS:
                        self.open.setdefault(inst, (int(t), int(got)))
                    elif kind in SYNC_KINDS:
                        episode = self.open.pop(inst, None)
                        if kind == "resync" and secs > 0:
                            steps.append(StaleStep(int(t), float(secs), int(got) if episode is None else episode[1]))
                        steps.append(StaleStep(int(t), 0.0, -1))
            now = stale_seconds.get(inst)
            if now is not None:
                now = float(now)
                if now > 0:
                    if inst not in self.open:
                        last = self.pos.get(inst)
                        self.open[inst] = ((last[1], last[0]) if last is not None
                                           else (time.time_ns() - int(now * NS), -1))
                    start, episode_id = self.open[inst]
                    steps.append(StaleStep(start + int(now * NS), now, episode_id))
                else:
                    self.open.pop(inst, None)
                    steps.append(StaleStep(steps[-1].t if steps else -1, 0.0, -1))
            if steps:
                out[inst] = steps
        return out

    def to_state(self) -> dict[str, Any]:
        """A JSON-friendly copy (the engine's checkpoint)."""
        return {"pos": {k: list(v) for k, v in self.pos.items()}, "open": {k: list(v) for k, v in self.open.items()}}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`to_state`'s copy in place."""
        self.pos.clear()
        self.pos.update({k: (int(v[0]), int(v[1])) for k, v in state.get("pos", {}).items()})
        self.open.clear()
        self.open.update({k: (int(v[0]), int(v[1])) for k, v in state.get("open", {}).items()})
