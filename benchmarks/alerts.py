"""Alert evaluation cost: 1,000 rules over 50 symbols, evaluated per writer batch.

Run: ``python benchmarks/alerts.py [--batches 200] [--batch-trades 5000]``

Synthetic random-walk trades (seeded) for 50 symbols at ~50k trades/s of
trade time are appended to an in-memory store in writer-sized batches, and
the :class:`AlertEngine` is called after each append, exactly as the
ingestion writer does. Printed: evaluation time per batch (mean, p50, p99,
max), the implied maximum trades/s of evaluation alone, the latency from
batch receipt to alerts stored, and the store append time of the same
batches for comparison (ratio engine / append).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from quantify import alerts as qa
from quantify.store import open_store


def make_rules(symbols: list[str], base: dict[str, float], rng: np.random.Generator) -> list[qa.Rule]:
    rules: list[qa.Rule] = []
    for i in range(700):  # price levels: the bulk of real rule books
        sym = symbols[i % len(symbols)]
        level = base[sym] * (1 + rng.uniform(-0.01, 0.01))
        kind = ("price-above", "price-below", "price-crosses")[i % 3]
        rules.append(qa.make_rule(kind, sym, level=level, margin=base[sym] * 1e-4, cooldown=60))
    for i in range(100):
        rules.append(qa.pct_move(symbols[i % len(symbols)], 0.3, ("30s", "1m", "5m")[i % 3], cooldown=60))
    for i in range(100):
        a, b = symbols[i % len(symbols)], symbols[(i + 1 + i // len(symbols)) % len(symbols)]
        rules.append(qa.zscore(a, b, 2.5, timeframe="1s", window=60, cooldown=30))
    for i in range(40):
        rules.append(qa.vol_breakout(symbols[i], 2.0, timeframe="1s", short=10, long=60))
    for i in range(30):
        rules.append(qa.corr_breakdown(symbols[i], symbols[i + 1], 0.0, timeframe="1s", window=60))
    for i in range(30):
        rules.append(qa.stale(symbols[i], 5) if i % 2 else qa.gap(symbols[i]))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-trades", type=int, default=5000, help="trades per writer batch (all symbols)")
    parser.add_argument("--rate", type=float, default=50_000, help="trades per second of trade time")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    symbols = [f"SYM{i:02d}USDT" for i in range(args.symbols)]
    base = {s: float(rng.uniform(1, 60_000)) for s in symbols}
    store = open_store("mem://alerts-benchmark")
    book = qa.AlertBook(store)
    rules = make_rules(symbols, base, rng)
    # One write of all rules (book.add would rewrite the table 1,000 times).
    frame = pd.DataFrame([r.replace(id=f"r{i:04d}", created=pd.Timestamp.now(tz="UTC")).to_record()
                          for i, r in enumerate(rules)])
    book._write_rules(frame)
    engine = qa.AlertEngine(store, log_alerts=False)

    price = dict(base)
    next_id = {s: 1 for s in symbols}
    t0 = pd.Timestamp("2024-08-09", tz="UTC").value
    dt = int(1e9 / args.rate)
    eval_s, latency, append_s = [], [], []
    n_per = args.batch_trades // len(symbols)
    for b in range(args.batches):
        frames = {}
        for k, sym in enumerate(symbols):
            steps = rng.normal(0, price[sym] * 2e-5, n_per)
            prices = np.round(price[sym] + np.cumsum(steps), 2)
            price[sym] = float(prices[-1])
            times = t0 + (b * args.batch_trades + np.arange(n_per) * len(symbols) + k) * dt
            ids = np.arange(next_id[sym], next_id[sym] + n_per)
            next_id[sym] += n_per
            frames[sym] = pd.DataFrame(
                {"price": prices, "qty": 0.01, "trade_id": ids, "is_buyer_maker": False,
                 "first_id": ids, "last_id": ids, "is_market": True},
                index=pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="time"),
            )
        a = time.perf_counter()
        store.append_ticks(frames)
        append_s.append(time.perf_counter() - a)
        engine(frames)
        st = engine.stats()
        if b >= 5:  # after warm-up (first batches start the engine, load rules)
            eval_s.append(st["alerts_eval_ms_last"] / 1e3)
            latency.append(st["alerts_latency_ms_last"] / 1e3)
    engine.close()

    ev, lat, ap = np.array(eval_s), np.array(latency), np.array(append_s[5:])
    trades = n_per * len(symbols)
    print(f"alerts benchmark: {len(rules)} rules over {len(symbols)} symbols, {len(ev)} batches of {trades} trades")
    print(f"  evaluation per batch    mean {ev.mean()*1e3:7.2f} ms  p50 {np.median(ev)*1e3:7.2f}  "
          f"p99 {np.quantile(ev, 0.99)*1e3:7.2f}  max {ev.max()*1e3:7.2f}")
    print(f"  implied max trades/s    {trades / ev.mean():,.0f} (evaluation alone, mean batch)")
    print(f"  batch -> alerts stored  mean {lat.mean()*1e3:7.2f} ms  p99 {np.quantile(lat, 0.99)*1e3:7.2f}  "
          f"max {lat.max()*1e3:7.2f}  (target <= 100 ms)")
    print(f"  store append per batch  mean {ap.mean()*1e3:7.2f} ms; evaluation / append = {ev.mean() / ap.mean():.2f}")
    print(f"  alerts fired {st['alerts_fired']}, suppressed by cooldown {st['alerts_suppressed']}")


if __name__ == "__main__":
    main()
