"""``quantify export``: ticks, candles, order-book or perpetual-futures data of a time range to CSV or Parquet."""

from __future__ import annotations

import argparse
import os
import sys

from quantify.cli._common import add_store_argument, add_time_argument, store_from_args
from quantify.store.export import EXPORT_KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export ticks, candles, order-book or perpetual data of a time range to CSV or Parquet",
        description=(
            "Write SYMBOL's ticks, candles (from the ticks), loaded klines, or its order book's "
            "quotes (best bid and offer per depth event), diffs (one row per level) or continuity "
            "ledger, or a perpetual's mark prices, funding settlements, open interest or liquidations, with "
            "START <= time < END (inclusive-exclusive; for candles, the bar open time) to "
            "FILE, or CSV to standard output with '-o -'. An existing FILE is refused "
            "unless --force. With --dir, FILE is taken relative to DIR and refused if it "
            "resolves outside it ('..', an absolute path elsewhere, a symlink leading out)."
        ),
    )
    p.add_argument("symbol", metavar="SYMBOL",
                   help="an instrument: BTCUSDT (Binance spot) or binance-usdm:BTCUSDT (USD-M)")
    p.add_argument("--kind", choices=EXPORT_KINDS, default="ticks",
                   help="ticks (default), ohlcv candles computed from ticks, loaded klines, the "
                        "order book's quotes, book_diffs or book_ledger, or a perpetual's mark, funding, "
                        "open_interest or liquidations")
    p.add_argument("--timeframe", default="1m",
                   help="candle timeframe / kline interval (default 1m)")
    add_time_argument(p, "--start", default=None,
                      help="first time included: ISO ('2024-08-08 23:55'), 'now' or relative (-6h)")
    add_time_argument(p, "--end", default=None, help="first time excluded")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="default: parquet for a .parquet/.pq FILE, else csv")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file, or '-' for standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="write FILE only inside this existing directory (FILE relative to it)")
    add_store_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quantify.store import open_store
    from quantify.store.export import export

    store = open_store(store_from_args(args))
    target = sys.stdout.buffer if args.output == "-" else args.output
    fmt = args.format or ("csv" if args.output == "-" else None)
    if args.output == "-" and fmt == "parquet" and sys.stdout.isatty():
        raise ValueError("refusing to write Parquet to a terminal; redirect standard output or use -o FILE")
    try:
        rows = export(store, args.symbol, target, kind=args.kind, timeframe=args.timeframe,
                      start=args.start, end=args.end, format=fmt, overwrite=args.force,
                      directory=args.dir)
    except (FileExistsError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise ValueError(str(exc)) from exc
    if args.output != "-":
        written = args.output if args.dir is None else os.path.join(args.dir, args.output)
        print(f"{rows:,} rows written to {written}", file=sys.stderr)
    else:
        sys.stdout.flush()
    return 0
