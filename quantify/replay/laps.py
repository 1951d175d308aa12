"""Prices of a looping replay, lap by lap: each lap carries on from the last.

A looping replay serves the recording again and again, with trade ids and
times shifted so they keep increasing (see :mod:`quantify.replay.tape`).
Repeating the recorded prices as they are would make the price jump back to
the recording's first price at every lap boundary: a fake move far larger
than any real one-trade move, which charts, z-scores and price alerts would
all take for market action. Instead, lap ``k`` serves every recorded price
multiplied by ``f_k = (p_last / p_first) ** k``, where ``p_first`` and
``p_last`` are the recording's first and last ``MARKET`` trade prices of the
symbol: the first price of lap ``k`` is then the last price of lap ``k - 1``,
and every return inside a lap is the recorded one.

Scaled prices are rounded to the symbol's tick (the finest price increment
seen in the recording) and printed with the recording's own number of
decimals, so they stay valid Binance prices; lap 0 serves the recorded
strings unchanged. One :class:`LapPrices` per symbol tape serves the stream,
the REST trades, aggregates and klines alike, so all of them agree on the
price of a trade id in every lap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from quantify.replay._decimals import format_positive_units, tick_units

__all__ = ["LapPrices"]

#: Laps of scaled prices kept per symbol (clients and REST reads cluster near the present).
_CACHED_LAPS = 4
#: Largest price served, in units (far above any real price; keeps int64 sums exact).
_MAX_UNITS = 2**53


class LapPrices:
    """One symbol's trade prices in each lap of a looping replay.

    Parameters
    ----------
    units : sequence of int
        The recorded prices in units of ``10**-scale``, in the tape's order.
    texts : sequence of str
        The recorded price strings (served unchanged in lap 0).
    scale : int
        Decimals of ``units``; scaled prices are printed with this many decimals.
    market : sequence of bool
        Whether each trade is a ``MARKET`` trade; the lap ratio is taken from
        the first and last of those (USD-M insurance-fund trades do not set
        the level).

    Notes
    -----
    Lap ``k`` multiplies the recorded prices by ``ratio ** k`` (``ratio =
    p_last / p_first``) and rounds to the nearest tick (``floor(x / tick +
    1/2)``; at least one tick). The
    rounding error is below half a tick, so a return inside a lap differs from
    the recorded one by at most about ``tick / price`` (1.6e-7 on BTCUSDT at
    0.01 and 61,000).

    Continuity and the recorded returns fix the factor: the level moves by
    the recording's own net move every lap (the bundled BTCUSDT sample: -0.38 %
    a lap, so it halves in about 180 laps, 33 hours at real time). Prices
    stay at least one tick and at most ``2**53`` units.
    """

    def __init__(
        self, units: Sequence[int], texts: Sequence[str], scale: int, market: Sequence[bool]
    ) -> None:
        if len(units) != len(texts) or len(units) != len(market) or not units:
            raise ValueError(
                f"units, texts and market must be equally long and not empty, got "
                f"{len(units)}, {len(texts)} and {len(market)}"
            )
        self.scale = scale
        self.tick = tick_units(texts, scale)
        kept = [u for u, m in zip(units, market) if m] or list(units)
        #: Lap-to-lap price factor: last over first recorded (``MARKET``) price.
        self.ratio = kept[-1] / kept[0]
        self._units0 = np.asarray(units, dtype=np.int64)
        self._texts0 = list(texts)
        self._laps: OrderedDict[int, tuple[np.ndarray, list[str], list[bytes]]] = OrderedDict()

    def factor(self, lap: int) -> float:
        """The price factor of ``lap`` (1 for lap 0)."""
        if lap < 0:
            raise ValueError(f"lap must be >= 0, got {lap!r}")
        return float(self.ratio ** lap)

    def _lap(self, lap: int) -> tuple[np.ndarray, list[str], list[bytes]]:
        cached = self._laps.get(lap)
        if cached is not None:
            self._laps.move_to_end(lap)
            return cached
        if lap == 0:
            units, texts = self._units0, self._texts0
            encoded = [t.encode() for t in texts]
        else:
            scaled = np.floor(self._units0 * (self.factor(lap) / self.tick) + 0.5)
            units = np.clip(scaled, 1, _MAX_UNITS // self.tick).astype(np.int64) * self.tick
            # each distinct price printed once: a lap repeats few prices many times
            distinct, where = np.unique(units, return_inverse=True)
            printed = format_positive_units(distinct.tolist(), self.scale)
            printed_bytes = [t.encode() for t in printed]
            order = where.tolist()
            texts = [printed[k] for k in order]
            encoded = [printed_bytes[k] for k in order]
        entry = (units, texts, encoded)
        self._laps[lap] = entry
        while len(self._laps) > _CACHED_LAPS:
            self._laps.popitem(last=False)
        return entry

    def units(self, lap: int) -> np.ndarray:
        """Prices of ``lap`` in units of ``10**-scale``, in the tape's order."""
        return self._lap(lap)[0]

    def texts(self, lap: int) -> list[str]:
        """Prices of ``lap`` as Binance prints them, in the tape's order."""
        return self._lap(lap)[1]

    def encoded(self, lap: int) -> list[bytes]:
        """:meth:`texts` as ASCII bytes, for the pre-encoded frames."""
        return self._lap(lap)[2]

    def units_at(self, k: np.ndarray) -> np.ndarray:
        """Price units of absolute trade indices ``k`` (``lap * n + r``), any laps."""
        n = len(self._texts0)
        k = np.asarray(k, dtype=np.int64)
        if k.size == 0:
            return np.empty(0, dtype=np.int64)
        laps, rows = np.divmod(k, n)
        first, last = int(laps[0]), int(laps[-1])
        if first == last:
            return self.units(first)[rows]
        out = np.empty(k.size, dtype=np.int64)
        for lap in range(first, last + 1):
            sel = laps == lap
            out[sel] = self.units(lap)[rows[sel]]
        return out

    def text_at(self, k: int) -> str:
        """Price string of absolute trade index ``k``."""
        lap, r = divmod(k, len(self._texts0))
        return self.texts(lap)[r]

