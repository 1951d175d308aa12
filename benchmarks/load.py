"""Bulk load and export throughput, against pandas in the same run.

1. A synthetic data.binance.vision spot trades CSV (no header, 7 columns,
   prices and quantities with 8 decimals, ms times) of ``--rows`` trades is
   written to a temporary directory.
2. ``pandas.read_csv(path, header=None)`` alone on that file (the reference).
3. ``quantify.ingest.load.load_files`` of the same file into a fresh LMDB
   store: parse, checks, ArcticDB write — end to end.
4. The same file loaded again (every row already stored: the idempotent path).
5. Export of the stored ticks to CSV and to Parquet, against
   ``DataFrame.to_csv``/``to_parquet`` of the same frame (export includes the
   store read).

Usage: python benchmarks/load.py [--rows 5000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from quantify.ingest.load import load_files
from quantify.store import open_store
from quantify.store.export import export


def write_vision_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A data.binance.vision-format spot trades CSV with ``rows`` trades."""
    rng = np.random.default_rng(seed)
    cents = (6_000_000 + np.cumsum(rng.integers(-3, 4, rows))).astype("int64")
    qty_units = rng.integers(1, 500_000, rows).astype("int64")  # 1e-8 .. 0.005 BTC

    def decimal(units: np.ndarray, scale: int, shown: int) -> pa.Array:
        whole = pc.cast(pa.array(units // 10**scale), pa.string())
        frac = pc.utf8_lpad(pc.cast(pa.array(units % 10**scale), pa.string()), scale, "0")
        return pc.binary_join_element_wise(whole, pc.binary_join_element_wise(
            frac, pa.scalar("0" * (shown - scale)), ""), ".")

    table = pa.table({
        "id": pa.array(3_000_000_000 + np.arange(rows, dtype="int64")),
        "price": decimal(cents, 2, 8),
        "qty": decimal(qty_units, 8, 8),
        "quote_qty": pa.array(np.round(cents * qty_units / 1e10, 8)),
        "time": pa.array(1723161255342 + np.cumsum(rng.integers(0, 3, rows))),
        "is_buyer_maker": pc.if_else(pa.array(rng.random(rows) < 0.5), "True", "False"),
        "is_best_match": pa.array(np.full(rows, "True")),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    n = args.rows
    results: dict[str, float] = {"rows": n}
    with tempfile.TemporaryDirectory(prefix="quantify-bench-load-") as tmp:
        csv = Path(tmp) / "BTCUSDT-trades-2024-08-08.csv"
        _, gen = timed(lambda: write_vision_csv(csv, n))
        print(f"wrote {n:,} trades ({csv.stat().st_size / 1e6:.0f} MB) in {gen:.1f} s")

        _, t_pandas = timed(lambda: pd.read_csv(csv, header=None))
        store = open_store(f"lmdb://{tmp}/store", create=True)
        res, t_load = timed(lambda: load_files(store, [csv], progress=False))
        assert res.ok and res.added == n, res.summary()
        res2, t_reload = timed(lambda: load_files(store, [csv], progress=False))
        assert res2.added == 0
        results.update(
            read_csv_rows_s=n / t_pandas, load_rows_s=n / t_load, reload_rows_s=n / t_reload,
            load_vs_read_csv=t_pandas / t_load,
        )
        print(f"pandas.read_csv alone      {n / t_pandas:>12,.0f} rows/s  ({t_pandas:.2f} s)")
        print(f"quantify load (into LMDB)  {n / t_load:>12,.0f} rows/s  ({t_load:.2f} s)  "
              f"= {t_pandas / t_load:.2f} x read_csv")
        print(f"  again (all duplicates)   {n / t_reload:>12,.0f} rows/s  ({t_reload:.2f} s)")

        ticks = store.ticks("BTCUSDT")
        for fmt, ref in (
            ("csv", lambda p: ticks.to_csv(p)),
            ("parquet", lambda p: ticks.to_parquet(p)),
        ):
            _, t_ref = timed(lambda ref=ref, fmt=fmt: ref(Path(tmp) / f"ref.{fmt}"))
            _, t_exp = timed(
                lambda fmt=fmt: export(store, "BTCUSDT", Path(tmp) / f"out.{fmt}", format=fmt)
            )
            results[f"export_{fmt}_rows_s"] = n / t_exp
            results[f"to_{fmt}_rows_s"] = n / t_ref
            results[f"export_{fmt}_vs_pandas"] = t_ref / t_exp
            print(f"export {fmt:<8} {n / t_exp:>12,.0f} rows/s  vs DataFrame.to_{fmt} "
                  f"{n / t_ref:>12,.0f} rows/s  = {t_ref / t_exp:.2f} x")
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))


if __name__ == "__main__":
    main()
