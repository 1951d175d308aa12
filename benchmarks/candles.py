"""Candles: continuous 1m aggregate vs resampling ticks, in one run.

The bundled BTCUSDT recording is looped (ids and times shifted per lap) to
``LAPS`` laps and appended in batches of ``BATCH`` trades, with a
:class:`~quantify.store.candles.CandleAggregator` fed every batch (as the
writer does). Then, over the whole range:

- ``Store.ohlcv`` reading the aggregate (1m, and 1h merged from 1m);
- ``Store.ohlcv`` on a copy of the store without aggregates (the ticks path);
- ArcticDB's in-engine ``QueryBuilder.resample`` (aligned range), and how many
  of its bars differ from the exact candles (its sums are float sums);
- reading every tick and :func:`quantify.analytics.resample`.

Run: ``python benchmarks/candles.py``.
"""

from __future__ import annotations

import tempfile
import time
import timeit

import numpy as np
import pandas as pd

LAPS = 50
BATCH = 5_000


def looped(frame: pd.DataFrame, laps: int) -> pd.DataFrame:
    span = (frame.index[-1] - frame.index[0]).ceil("1min") + pd.Timedelta(minutes=1)
    ids = int(frame["trade_id"].iloc[-1] - frame["trade_id"].iloc[0] + 1)
    parts = []
    for k in range(laps):
        part = frame.copy()
        part.index = part.index + k * span
        for col in ("trade_id", "first_id", "last_id"):
            part[col] = part[col] + k * ids
        parts.append(part)
    return pd.concat(parts)


def best(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    from arcticdb import QueryBuilder

    from quantify.analytics import resample
    from quantify.store import open_store
    from quantify.store.candles import CandleAggregator
    from quantify.venues.binance.recordings import read_trades, sample_files

    btc = pd.concat([read_trades(p)["BTCUSDT"] for p in sample_files() if "btcusdt" in p.name])
    ticks = looped(btc, LAPS)
    base = tempfile.mkdtemp()
    agg_store = open_store(f"lmdb://{base}/agg", create=True)
    raw_store = open_store(f"lmdb://{base}/raw", create=True)
    agg = CandleAggregator(agg_store)
    costs = []
    for i in range(0, len(ticks), BATCH):
        batch = {"BTCUSDT": ticks.iloc[i : i + BATCH]}
        agg_store.append_ticks(batch)
        raw_store.append_ticks(batch)
        t0 = time.perf_counter()
        agg(batch)
        costs.append(time.perf_counter() - t0)
    agg.close()
    ms = np.array(costs[1:]) * 1e3  # the first batch loads the compiled kernels
    print(f"{len(ticks):,} ticks, {len(ms) + 1} batches of {BATCH:,}: aggregator per batch "
          f"median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, mean {ms.mean():.2f} ms "
          f"(writes of closed bars at most once a second included); {agg.bars_written:,} bars written")

    sym = "BTCUSDT"
    exact = resample(agg_store.ticks(sym), "1m")
    lo, hi = exact.index[0], exact.index[-1] + pd.Timedelta(minutes=1)
    def engine() -> pd.DataFrame:
        qb = QueryBuilder()
        qb = qb.apply("pq", qb["price"] * qb["qty"])
        qb = qb.resample("1min").agg({
            "open": ("price", "first"), "high": ("price", "max"), "low": ("price", "min"),
            "close": ("price", "last"), "volume": ("qty", "sum"), "quote_volume": ("pq", "sum"),
            "trades": ("trade_id", "count"),
        })
        return raw_store.library("ticks").read(sym, date_range=(lo, hi - pd.Timedelta(1, "ns")),
                                               query_builder=qb).data

    rows = [
        ("ohlcv 1m, from the aggregate", best(lambda: agg_store.ohlcv(sym, "1m"))),
        ("ohlcv 1h, aggregate merged", best(lambda: agg_store.ohlcv(sym, "1h"))),
        ("ohlcv 1m, no aggregate (ticks path)", best(lambda: raw_store.ohlcv(sym, "1m"))),
        ("in-engine QueryBuilder.resample 1m", best(engine)),
        ("read all ticks + resample 1m", best(lambda: resample(raw_store.ticks(sym), "1m"))),
    ]
    assert agg_store.ohlcv(sym, "1m").equals(exact) and raw_store.ohlcv(sym, "1m").equals(exact)
    eng = engine().reindex(exact.index)
    have = exact["trades"] > 0
    vol_diff = int((np.round(eng["volume"][have] * 1e8) / 1e8 != exact["volume"][have]).sum())
    quote_diff = int((eng["quote_volume"][have] != exact["quote_volume"][have]).sum())
    rel = float((eng["quote_volume"][have] / exact["quote_volume"][have] - 1).abs().max())
    print(f"{len(exact):,} 1m bars ({int((~have).sum())} empty ones the engine drops)")
    for name, seconds in rows:
        print(f"  {name:40s} {seconds * 1e3:8.1f} ms")
    print(f"in-engine vs exact over {int(have.sum())} non-empty bars: volume differs in {vol_diff} after "
          f"rounding to 1e-8, quote volume in {quote_diff} (by up to {rel:.1e} relative)")


if __name__ == "__main__":
    main()
