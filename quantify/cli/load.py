"""``quantify load``: bulk-load recorded files and data.binance.vision archives.

Exit codes: 0 when every file was loaded, 1 when some were skipped (each is
reported with its name and, when known, the line), 2 when none could be
loaded, and for usage errors — no such store, or a writer running on the store (loading takes the writer lock
so it never races ``quantify ingest``; stop the writer, load, restart it).
"""

from __future__ import annotations

import argparse
import sys

from quantify.cli._common import add_store_argument, store_from_args

EPILOG = """\
examples:
  quantify load BTCUSDT-trades-2024-08-08.zip
  quantify load usdm-2023-btcusdt_20230405.perp.gz   # trades and mark prices of a USD-M capture
  quantify load BTCUSDT-fundingRate-2023-04.zip BTCUSDT-metrics-2023-04-05.zip
  quantify load usdm-2021-xrpusdt.funding.csv   # settlements in the fundingRate answer's columns

Perpetual futures (stored under the USD-M instrument, binance-usdm:SYMBOL;
read back with store.mark/liquidations/funding/open_interest, written out
with 'quantify export --kind mark|liquidations|funding|open_interest'):

  recorded WebSocket captures: their markPriceUpdate (<sym>@markPrice@1s)
    and forceOrder (<sym>@forceOrder) events load as mark prices and
    liquidations beside the capture's trades, with the recorded receive
    time. Binance pushes at most one liquidation per symbol per second: a
    sample, not every liquidation.
  data.binance.vision USD-M fundingRate archives (monthly,
    SYMBOL-fundingRate-YYYY-MM.csv or .zip; header calc_time,
    funding_interval_hours,last_funding_rate; calc_time in ms): funding
    settlements (the archive gives no mark price: NaN).
  CSVs of fundingRate answers (symbol,fundingTime,fundingRate[,markPrice]):
    funding settlements.
  data.binance.vision USD-M metrics archives (daily,
    SYMBOL-metrics-YYYY-MM-DD.csv or .zip; create_time as YYYY-MM-DD
    HH:MM:SS UTC): open interest (sum_open_interest, contracts) and its
    value (sum_open_interest_value, USDT). Their long/short and taker ratio
    columns (count_toptrader_long_short_ratio, sum_toptrader_long_short_ratio,
    count_long_short_ratio, sum_taker_long_short_vol_ratio) are not stored.

Perpetual rows at a time already stored for the instrument are not stored
again: loading a file twice adds nothing.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "load", help="bulk-load recordings (trades, order books, perpetuals) and data.binance.vision CSVs/zips "
                     "into the store",
        description=(
            "Load trades, aggTrades, klines and order books into the store from data.binance.vision CSVs "
            "(spot or USD-M, zipped or not, with or without header, ms or µs timestamps), "
            "recorded WebSocket captures, REST JSON and QuantiFy journal segments. A capture "
            "with depth (depthUpdate diffs, the recorded REST snapshot, bookTicker) also loads "
            "its order book (quotes, diffs, checkpoints, ledger) by Binance's procedure, offline: "
            "one book per instrument across the files, in receive-time order; a capture with diffs "
            "but no snapshot (and no stored book it continues) is reported, its book not guessed. "
            "A .CHECKSUM "
            "beside a file is verified. Idempotent: trade ids decide, so loading a file twice or "
            "a file that overlaps the live stream adds nothing twice (books: update ids decide; perpetual data: "
            "times decide); files may come in any "
            "order. Perpetual futures: mark prices and liquidations of captures, data.binance.vision USD-M "
            "fundingRate and metrics archives, fundingRate answers as CSV (see below). "
            "Takes the store's writer lock: stop a running 'quantify ingest' first. "
            "Exit status: 0 all loaded, 1 some files skipped (reported), 2 no file loaded or a "
            "usage error."
        ),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="files to load")
    add_store_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quantify.ingest.load import load_files
    from quantify.store import open_store

    store = open_store(store_from_args(args), create=True)
    result = load_files(
        store, args.files, progress=not args.no_progress and sys.stderr.isatty(),
        on_file=lambda f: None if f.ok else print(f"quantify load: skipped {f.error}", file=sys.stderr),
    )
    print(result.summary())
    if result.ok:
        return 0
    if len(result.skipped) == len(result.files):
        print(f"quantify load: error: none of the {len(result.files)} file(s) could be loaded",
              file=sys.stderr)
        return 2
    return 1
