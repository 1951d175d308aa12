"""Research beyond one machine: closes that workers read from the shared store themselves.

A pair scan or a backtest sweep on a Dask cluster (or any executor) ships
each task its part of the work. With :class:`StoreCloses` as the closes, a
task carries a description of them (the store URI, symbols, timeframe,
range) and each worker process reads them from the store once and keeps
them, so nothing as big as the panel travels with the tasks::

    from dask.distributed import Client
    import quantify as qf

    client = Client("tcp://scheduler:8786")           # or distributed.LocalCluster()
    closes = qf.StoreCloses("s3://HOST:BUCKET?port=9000", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], "5m",
                            start="2024-08-01", end="2024-08-08")
    scan = qf.scan_pairs(closes, executor=client.get_executor())
    sweep = qf.sweep_backtest(qf.StoreCloses(..., log=False), "ETHUSDT", "BTCUSDT",
                              {"entry": [1.5, 2, 2.5], "window": [60, 120]},
                              executor=client.get_executor())

Workers need QuantiFy installed and the store's credentials in their own
environment (the standard AWS variables or profile): the URI they receive
should not carry them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantify.model.timeframes import timeframe_to_offset
from quantify.store import open_store, parse_store_uri

__all__ = ["StoreCloses"]


@dataclass(frozen=True, repr=False)
class StoreCloses:
    """Closes of ``symbols`` in the store at ``uri``, loaded (and kept) by each process that asks.

    Parameters
    ----------
    uri : str
        A store every worker can reach: ``s3://...`` for a cluster, or
        ``lmdb://PATH`` for processes of one machine (``mem://`` lives in
        one process only and is refused).
    symbols : sequence of str
        Instruments, as ``store.ohlcv`` takes them; at least two, distinct.
    timeframe : str, default "1m"
        Bar size, as ``store.ohlcv``.
    start, end : str or None
        Bar range, as ``store.ohlcv`` (``start <= t < end``).
    klines : bool, default False
        Read loaded or backfilled Binance klines (``store.klines``) instead
        of candles built from the stored trades.
    log : bool, default True
        Log prices (what :func:`~quantify.analytics.scan_pairs` wants);
        ``False`` for prices (what a backtest wants).

    Notes
    -----
    :meth:`load` returns the closes on the bars every symbol has (an inner
    join), as one frame per distinct description and process: do not modify
    it.
    """

    uri: str
    symbols: tuple[str, ...]
    timeframe: str = "1m"
    start: str | None = None
    end: str | None = None
    klines: bool = False
    log: bool = True

    def __post_init__(self) -> None:
        parsed = parse_store_uri(self.uri)
        if parsed.scheme == "mem":
            raise ValueError("StoreCloses: a mem:// store lives in one process; give workers an "
                             "lmdb:// or s3:// store")
        if isinstance(self.symbols, str) or not isinstance(self.symbols, Sequence):
            raise TypeError(f"StoreCloses: symbols must be a list of instruments, got {self.symbols!r}")
        symbols = tuple(str(s) for s in self.symbols)
        if len(symbols) < 2 or len(set(symbols)) != len(symbols):
            raise ValueError(f"StoreCloses: needs at least two distinct symbols, got {list(symbols)!r}")
        object.__setattr__(self, "symbols", symbols)
        timeframe_to_offset(self.timeframe)  # a bad one raises, listing the valid ones

    def __repr__(self) -> str:  # the URI as shown to users: credentials elided (tasks get logged)
        return (f"StoreCloses({str(parse_store_uri(self.uri))!r}, {list(self.symbols)!r}, {self.timeframe!r}, "
                f"start={self.start!r}, end={self.end!r}, klines={self.klines}, log={self.log})")

    def load(self) -> pd.DataFrame:
        """The closes, one column per symbol, read from the store on this process's first call."""
        return _load(self)


@functools.lru_cache(maxsize=8)
def _load(source: StoreCloses) -> pd.DataFrame:
    store = open_store(source.uri)
    columns = {}
    for symbol in source.symbols:
        if source.klines:
            bars = store.klines(symbol, source.timeframe, source.start, source.end)
        else:
            bars = store.ohlcv(symbol, source.timeframe, source.start, source.end)
        if bars.empty:
            raise ValueError(f"StoreCloses: no {source.timeframe} "
                             f"{'klines' if source.klines else 'bars'} of {symbol} in {source!r}")
        columns[symbol] = bars["close"].astype(np.float64)
    closes = pd.concat(columns, axis=1, join="inner").dropna()
    return np.log(closes) if source.log else closes
