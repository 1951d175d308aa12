"""``quantify ingest``: run the ingestion service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TYPE_CHECKING

from quantify.cli._common import add_store_argument, store_from_args
from quantify.config import ingest_config_from_env, parse_venue_urls

if TYPE_CHECKING:
    from quantify.ingest.service import IngestService

EPILOG = """\
examples:
  quantify ingest --symbols BTCUSDT,ETHUSDT
  quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT     # spot and the USD-M perpetual
  quantify replay --loop &    # offline: a local Binance-compatible server
  quantify ingest --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443 --duration 60

Instruments: a plain symbol (BTCUSDT) is Binance spot; VENUE:SYMBOL names
another venue (binance-usdm:BTCUSDT, the USD-M perpetual). Each venue streams
over its own connections (spot wss://stream.binance.com:9443; USD-M
wss://fstream.binance.com, @trade on /public, @aggTrade on /market) and fills
gaps over its own REST API (api.binance.com/api/v3, fapi.binance.com/fapi/v1).

Order books (--book): depth diffs (spot @depth@100ms, USD-M @depth@0ms on
/public) and @bookTicker on connections of their own; a local book per
instrument kept by Binance's procedure (buffer, REST snapshot, drop, apply; a
gap, a crossed book or a bookTicker that disagrees is resynced from a fresh
snapshot while the stream keeps arriving, the book marked stale meanwhile).
Stored: quotes (best bid/offer after each event), the raw diffs, checkpoints
every --book-checkpoint s and after each resync, and a continuity ledger
(gaps, resyncs, seconds stale) that 'quantify status' shows:
  quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT --book

Perpetual futures (--perp): each USD-M instrument's mark price (@markPrice@1s:
mark, index and estimated settle price, funding rate, next funding time) and
liquidations (@forceOrder, at most one a second) on a /market connection of
their own, journaled and stored like trades; its open interest polled every
--open-interest-every s (Binance keeps that history 30 days only) and each
funding settlement fetched once it has passed. Spot instruments have none and
are left out. 'quantify status' shows the latest mark, funding rate and counts:
  quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT --perp

Base URLs: --ws-url and --rest-url apply to every venue of the run (a replay
server serves all venues on one port); --venue-url VENUE=WS_URL,REST_URL
(repeatable; either URL may be empty) overrides them for one venue:
  quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT \
      --venue-url binance-usdm=ws://127.0.0.1:9443,http://127.0.0.1:9443

Exactly one writer per LMDB store: a second 'quantify ingest' on the same store
refuses and names the running one. On a shared S3 store several workers each
own the symbols they claim (a lease in the store, renewed every --lease-ttl/3 s):
symbols another live worker owns are skipped with a warning naming the owner and
taken over when its lease expires; a worker granted none of its symbols (and
given no --standby) refuses with exit code 2.
  quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols BTCUSDT,ETHUSDT
  quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols SOLUSDT --standby BTCUSDT,ETHUSDT

Monitoring (--metrics-port N): Prometheus metrics at http://127.0.0.1:N/metrics
(trades received and stored, store latency histogram, gaps, reconnects, book
resyncs, journal errors, degraded state, leases, alerts: the numbers of
'quantify status --json'), /healthz (200 while the service runs) and /readyz
(200 once connected and writing, else 503 and the reason). Loopback unless
--metrics-host says otherwise, and then only with a bearer token in
$QUANTIFY_METRICS_TOKEN that scrapers send. A Grafana dashboard over these
metrics: deploy/grafana/quantify-ingest.json.
  quantify ingest --symbols BTCUSDT,ETHUSDT --metrics-port 9108

Ctrl-C (SIGINT) or SIGTERM flushes every received trade and stops. 'quantify
status' shows what the writer is doing.

Before streaming, the symbols are checked against each venue's exchangeInfo: one
it does not list is refused (exit code 2) naming the closest listed symbols. An
exchange that cannot be reached (refused, unresolvable, TLS error, timeout) is
named within seconds, with what to do, and retried in the background with
backoff; 'quantify status' shows each connection as connecting, connected or
'unreachable since <UTC time>: <error>'.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest", help="stream Binance trades into the store (foreground)",
        description="Stream Binance trades over WebSocket into the ArcticDB store, with gap "
                    "backfill over REST, a raw journal, and exactly one writer per store.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--symbols", metavar="INST,INST",
                   help="instruments to stream, e.g. BTCUSDT,binance-usdm:BTCUSDT (default: "
                        "BTCUSDT,ETHUSDT or $QUANTIFY_SYMBOLS)")
    p.add_argument("--stream", choices=("trade", "aggTrade"), help="trade stream kind (default: trade)")
    add_store_argument(p)
    p.add_argument("--ws-url", metavar="URL",
                   help="WebSocket base URL for every venue (default: $QUANTIFY_WS_URL or each "
                        "venue's own)")
    p.add_argument("--rest-url", metavar="URL",
                   help="REST base URL for gap backfill, every venue (default: $QUANTIFY_REST_URL "
                        "or each venue's own)")
    p.add_argument("--venue-url", metavar="VENUE=WS,REST", action="append", default=[],
                   help="base URLs of one venue, overriding --ws-url/--rest-url for it "
                        "(repeatable), e.g. binance-usdm=ws://127.0.0.1:9443,http://127.0.0.1:9443")
    books = p.add_argument_group("order books")
    books.add_argument("--book", nargs="?", const="all", default=None, metavar="INST,INST",
                       help="also stream the order books of these instruments (default with no value: "
                            "every --symbols instrument; $QUANTIFY_BOOKS): depth diffs and bookTicker, a "
                            "local book kept by Binance's procedure, stored as quotes, diffs, checkpoints "
                            "and a continuity ledger")
    books.add_argument("--book-limit", type=int, metavar="N",
                       help="levels per side of each REST depth snapshot (default 1000; spot up to 5000, "
                            "weight 50 at 1000; USD-M 5/10/20/50/100/500/1000)")
    books.add_argument("--book-checkpoint", type=float, metavar="S",
                       help="exchange seconds between stored book checkpoints (default 10)")
    perps = p.add_argument_group("perpetual futures")
    perps.add_argument("--perp", nargs="?", const="all", default=None, metavar="INST,INST",
                       help="also stream and poll the perpetual data of these instruments (default with no "
                            "value: every USD-M --symbols instrument; $QUANTIFY_PERPS): mark price, "
                            "liquidations, open interest, funding settlements")
    perps.add_argument("--open-interest-every", type=float, metavar="S",
                       help="seconds between open-interest polls of each perpetual (default 60)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this many seconds")
    p.add_argument("--batch-size", type=int, metavar="N", help="append when a symbol has N new trades (default 5000)")
    p.add_argument("--flush-interval", type=float, metavar="S", help="... or after S seconds (default 0.1)")
    p.add_argument("--lease-ttl", type=float, metavar="S",
                   help="shared stores: seconds a dead worker's symbols stay owned (default 30)")
    p.add_argument("--standby", metavar="INST,INST",
                   help="shared stores: take these symbols over when their owner's lease expires")
    p.add_argument("--no-journal", action="store_true", help="do not keep the raw journal of received frames")
    monitoring = p.add_argument_group("monitoring")
    monitoring.add_argument("--metrics-port", type=int, metavar="N",
                            help="serve Prometheus metrics (/metrics) and health checks (/healthz, /readyz) "
                                 "on this port (default: none; 0 picks a free port)")
    monitoring.add_argument("--metrics-host", metavar="HOST",
                            help="address of the metrics server (default 127.0.0.1; any other needs "
                                 "$QUANTIFY_METRICS_TOKEN, a bearer token scrapers must send)")
    p.set_defaults(func=run)


async def _announce_metrics(service: IngestService) -> None:
    """Print the metrics server's address once it listens (its port may have been picked)."""
    while service.metrics is None:
        await asyncio.sleep(0.05)
    url = service.metrics.url
    print(f"quantify ingest: metrics on {url}/metrics (health {url}/healthz, {url}/readyz)", flush=True)


def run(args: argparse.Namespace) -> int:
    from quantify.ingest.listeners import standard_listeners
    from quantify.ingest.service import IngestService, stream_urls
    from quantify.store import open_store

    ws_urls, rest_urls = parse_venue_urls(args.venue_url)
    config = ingest_config_from_env(
        symbols=args.symbols, stream=args.stream, store=store_from_args(args), ws_url=args.ws_url,
        rest_url=args.rest_url, ws_urls=ws_urls or None, rest_urls=rest_urls or None,
        duration=args.duration, batch_size=args.batch_size, flush_interval=args.flush_interval, journal=False if args.no_journal else None,
        lease_ttl=args.lease_ttl, standby=args.standby or None, books=args.book,
        book_snapshot_limit=args.book_limit, book_checkpoint_seconds=args.book_checkpoint,
        perps=args.perp, open_interest_interval=args.open_interest_every,
        metrics_port=args.metrics_port, metrics_host=args.metrics_host,
    )
    service = IngestService(config, listeners=standard_listeners(open_store(config.store, create=True), config))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        announce = asyncio.ensure_future(_announce_metrics(service)) if config.metrics_port is not None else None
        try:
            await service.run()
        finally:
            if announce is not None:
                announce.cancel()

    sources = sorted({url.split("?")[0] for url in stream_urls(config)})
    print(f"quantify ingest: streaming {','.join(config.symbols)} ({config.stream}) from "
          f"{', '.join(sources)} into {service.store.uri}", flush=True)
    asyncio.run(main())
    s = service.status()
    print(f"quantify ingest: stopped; {s.trades_stored} trades stored, {s.reconnects} reconnects, "
          f"{s.backfilled} backfilled, {s.malformed_frames} malformed frames", flush=True)
    for book in s.books.values():
        print(f"quantify ingest: {book.summary()}", flush=True)
    for perp in s.perps.values():
        print(f"quantify ingest: {perp.summary()}", flush=True)
    return 0
