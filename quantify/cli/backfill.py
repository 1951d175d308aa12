"""``quantify backfill``: fetch a time range of trades or klines, or a perpetual's funding or open interest, over REST."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from quantify.cli._common import add_store_argument, add_time_argument, store_from_args
from quantify.ingest.perp_backfill import PERP_BACKFILL_KINDS
from quantify.venues.binance.rest import OPEN_INTEREST_PERIODS

if TYPE_CHECKING:
    from quantify.ingest.backfill import BackfillResult
    from quantify.ingest.perp_backfill import PerpBackfillResult

EPILOG = """\
examples:
  quantify backfill BTCUSDT --start 2024-08-08 --end 2024-08-09
  quantify backfill BTCUSDT --start -6h --end now --kind aggTrades
  quantify backfill ETHUSDT --start 2024-08-01 --end 2024-09-01 --kind klines --interval 1h
  quantify backfill binance-usdm:BTCUSDT --start 2024-08-08 --end 2024-08-09   # USD-M, /fapi/v1
  quantify backfill binance-usdm:XRPUSDT --kind funding   # every settlement after the last stored one
  quantify backfill binance-usdm:XRPUSDT --kind funding --start 2021-11-18 --end 2021-12-19
  quantify backfill binance-usdm:BTCUSDT --kind open_interest --period 1h --start -7d

An instrument is a Binance spot symbol (BTCUSDT) or VENUE:SYMBOL
(binance-usdm:BTCUSDT for the USD-M perpetual); each is fetched from its
venue's REST API (api.binance.com/api/v3, fapi.binance.com/fapi/v1) within
that venue's weight budget.

The range is inclusive-exclusive (START <= time < END); trades, aggTrades
and klines need both. Perpetuals (binance-usdm only): --kind funding pages
/fapi/v1/fundingRate (1,000 settlements a request, paced within its 500
requests per 5 minutes) from START, else from the last stored settlement
+ 1 ms, else from the first one, up to END or now; --kind open_interest
pages /futures/data/openInterestHist (500 periods a request) forward from
START (default: the last stored row, else 30 days ago) to END or now.
Binance keeps only the last 30 days of open interest: an older START is
clipped, with a note. Each page is stored as it arrives. Interrupted runs
resume where they stopped when rerun with the same arguments; nothing is
stored twice. Ctrl-C (SIGINT) or SIGTERM stops at once, storing what was
fetched. Takes the store's writer lock: stop a running 'quantify
ingest' first (it backfills its own gaps). Exit status: 0 complete, 1 the
server has no data up to END yet (rerun later), 2 usage error, 128 + the
signal's number when interrupted.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backfill", help="fetch trades, klines, funding or open interest over REST into the store",
        description="Fetch INSTRUMENT's trades (historicalTrades), aggregate trades or klines "
                    "with START <= time < END over its venue's REST API (Binance spot or "
                    "USD-M futures), or a perpetual's funding settlements or open-interest "
                    "history, within the request-weight budget and honouring "
                    "Retry-After, resumably.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("symbol", metavar="INSTRUMENT",
                   help="an instrument: BTCUSDT (Binance spot) or binance-usdm:BTCUSDT (USD-M)")
    add_time_argument(p, "--start", default=None,
                      help="first time included: ISO ('2024-08-08 23:55'), 'now' or relative (-6h); "
                           "required but for funding and open_interest")
    add_time_argument(p, "--end", default=None,
                      help="first time excluded; required but for funding and open_interest (default: now)")
    p.add_argument("--kind", choices=("trades", "aggTrades", "klines", *PERP_BACKFILL_KINDS), default=None,
                   help="default: the kind the symbol already holds, else trades; funding and "
                        "open_interest for a perpetual (binance-usdm:SYMBOL)")
    p.add_argument("--interval", default="1m", help="kline interval for --kind klines (default 1m)")
    p.add_argument("--period", choices=OPEN_INTEREST_PERIODS, default="5m",
                   help="open-interest period for --kind open_interest (default 5m)")
    add_store_argument(p)
    p.add_argument("--rest-url", metavar="URL", default=None,
                   help="REST base URL (default: $QUANTIFY_REST_URL or the venue's own: "
                        "https://api.binance.com, https://fapi.binance.com)")
    p.add_argument("--flush-rows", type=int, default=None, metavar="N",
                   help="store (and save the resume point) every N rows (default 50000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quantify.ingest.backfill import DEFAULT_FLUSH_ROWS, backfill
    from quantify.ingest.perp_backfill import backfill_perp
    from quantify.store import open_store

    perp = args.kind in PERP_BACKFILL_KINDS
    if not perp and (args.start is None or args.end is None):
        raise ValueError("--start and --end are required for trades, aggTrades and klines "
                         "(only --kind funding and open_interest default them)")
    store = open_store(store_from_args(args), create=True)
    url = args.rest_url or os.environ.get("QUANTIFY_REST_URL") or None
    received: list[int] = []

    async def main() -> BackfillResult | PerpBackfillResult:
        # SIGINT and SIGTERM cancel the run wherever it waits (a request, a
        # retry's backoff, the weight budget); it stores what it fetched first.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        def interrupt(sig: int) -> None:
            received.append(sig)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt, sig)
        if perp:
            return await backfill_perp(
                store, args.symbol, kind=args.kind, start=args.start, end=args.end, period=args.period,
                rest_url=url, progress=not args.no_progress and sys.stderr.isatty(),
            )
        return await backfill(
            store, args.symbol, args.start, args.end, kind=args.kind, interval=args.interval,
            rest_url=url, flush_rows=args.flush_rows or DEFAULT_FLUSH_ROWS,
            progress=not args.no_progress and sys.stderr.isatty(),
        )

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        if not received:
            raise
        print(f"quantify backfill: interrupted ({signal.Signals(received[0]).name}); what was fetched is "
              "stored: rerun the same command to resume", file=sys.stderr)
        return 128 + received[0]
    print(result.summary())
    return 0 if result.complete else 1
