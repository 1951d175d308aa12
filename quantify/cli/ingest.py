"""``quantify ingest``: run the ingestion service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal

from quantify.cli._common import add_store_argument, store_from_args
from quantify.config import ingest_config_from_env

EPILOG = """\
examples:
  quantify ingest --symbols BTCUSDT,ETHUSDT
  quantify replay --loop &    # offline: a local Binance-compatible server
  quantify ingest --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443 --duration 60

Exactly one writer per LMDB store: a second 'quantify ingest' on the same store
refuses and names the running one. On a shared S3 store several workers each
own the symbols they claim (a lease in the store, renewed every --lease-ttl/3 s):
symbols another live worker owns are skipped with a warning naming the owner and
taken over when its lease expires; a worker granted none of its symbols (and
given no --standby) refuses with exit code 2.
  quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols BTCUSDT,ETHUSDT
  quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols SOLUSDT --standby BTCUSDT,ETHUSDT Ctrl-C (SIGINT) or SIGTERM flushes every
received trade and stops. 'quantify status' shows what the writer is doing.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest", help="stream Binance trades into the store (foreground)",
        description="Stream Binance trades over WebSocket into the ArcticDB store, with gap "
                    "backfill over REST, a raw journal, and exactly one writer per store.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--symbols", metavar="SYM,SYM", help="symbols to stream (default: BTCUSDT,ETHUSDT "
                   "or $QUANTIFY_SYMBOLS)")
    p.add_argument("--stream", choices=("trade", "aggTrade"), help="Binance stream kind (default: trade)")
    add_store_argument(p)
    p.add_argument("--ws-url", metavar="URL", help="WebSocket base URL (default: wss://stream.binance.com:9443)")
    p.add_argument("--rest-url", metavar="URL", help="REST base URL for gap backfill (default: https://api.binance.com)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this many seconds")
    p.add_argument("--batch-size", type=int, metavar="N", help="append when a symbol has N new trades (default 5000)")
    p.add_argument("--flush-interval", type=float, metavar="S", help="... or after S seconds (default 0.1)")
    p.add_argument("--lease-ttl", type=float, metavar="S",
                   help="shared stores: seconds a dead worker's symbols stay owned (default 30)")
    p.add_argument("--standby", metavar="SYM,SYM",
                   help="shared stores: take these symbols over when their owner's lease expires")
    p.add_argument("--no-journal", action="store_true", help="do not keep the raw journal of received frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quantify.ingest.listeners import standard_listeners
    from quantify.ingest.service import IngestService
    from quantify.store import open_store

    config = ingest_config_from_env(
        symbols=args.symbols, stream=args.stream, store=store_from_args(args), ws_url=args.ws_url,
        rest_url=args.rest_url, duration=args.duration, batch_size=args.batch_size,
        flush_interval=args.flush_interval, journal=False if args.no_journal else None,
        lease_ttl=args.lease_ttl, standby=args.standby or None,
    )
    service = IngestService(config, listeners=standard_listeners(open_store(config.store), config))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    print(f"quantify ingest: streaming {','.join(config.symbols)} ({config.stream}) from "
          f"{config.ws_url} into {service.store.uri}", flush=True)
    asyncio.run(main())
    s = service.status()
    print(f"quantify ingest: stopped; {s.trades_stored} trades stored, {s.reconnects} reconnects, "
          f"{s.backfilled} backfilled, {s.malformed_frames} malformed frames", flush=True)
    return 0
