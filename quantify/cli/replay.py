"""``quantify replay``: serve recorded Binance trades and order books (spot and USD-M) on a local server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from quantify.replay.config import default_files, funding_sample_files

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)

DEFAULT_CLI_PORT = 9443

_EPILOG = """\
examples:
  quantify replay                          bundled BTCUSDT/ETHUSDT samples, spot and USD-M,
                                           real time, port 9443
  quantify replay --speed 10 --loop        ten times faster, forever (ids and times keep
                                           increasing; each lap's prices are scaled to
                                           carry on from the last, so no lap jumps)
  quantify replay --speed 0 --port 0       as fast as clients read, on a free port
  quantify replay spot.gz --usdm perp.gz    spot.gz as detected, perp.gz as USD-M futures
  quantify replay my.trades.gz --drop-every 30 --refuse-for 5 --corrupt-fraction 0.001
                                           a hostile exchange, to test reconnects and backfill
  quantify replay --synthetic-universe 300 --universe-seconds 30 --port 0
                                           300 SYNTHETIC instruments SYN001USDT..SYN300USDT
                                           (the BTCUSDT recording renamed, ids, prices and
                                           times shifted each), 900 streams, for scale tests

clients connect to (spot):
  ws://HOST:PORT/ws/btcusdt@trade                      raw events
  ws://HOST:PORT/stream?streams=btcusdt@trade/ethusdt@aggTrade   combined events
  ws://HOST:PORT/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker   the order book
  http://HOST:PORT/api/v3/klines?symbol=BTCUSDT&interval=1m     REST (also ping, time,
      exchangeInfo, aggTrades, historicalTrades, trades)
  http://HOST:PORT/api/v3/depth?symbol=BTCUSDT&limit=1000       a depth snapshot of the
      replay's own book at the replay's position (limit 1-5000, weight 5/25/50/250)
clients connect to (USD-M futures, Binance's routed fstream paths):
  ws://HOST:PORT/public/ws/btcusdt@trade               raw @trade events
  ws://HOST:PORT/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker
      the order book (also @depth@100ms, merged from the 0ms events per 100 ms window)
  ws://HOST:PORT/market/stream?streams=btcusdt@aggTrade          combined @aggTrade events
  http://HOST:PORT/fapi/v1/klines?symbol=BTCUSDT&interval=1m    REST (same endpoints, and
      /fapi/v1/depth with limit 5, 10, 20, 50, 100, 500 or 1000)
  a stream on the wrong tier (/public vs /market) delivers nothing, as on Binance.
  http://HOST:PORT/fapi/v1/fundingRate?symbol=XRPUSDT&startTime=0&limit=1000
      funding settlements (also /fapi/v1/premiumIndex, /fapi/v1/openInterest and
      /futures/data/openInterestHist?symbol=BTCUSDT&period=1h, the last 30 days)

order books: the recorded depth diffs and book tickers are served as recorded on the
first lap, between the trades at their times. The bundled samples include the books
of spot and USD-M BTCUSDT. A recording without a depth snapshot streams its diffs but
its REST depth is an error (its book cannot be known). With --loop, each lap starts
with one synthetic depth event that turns the last lap's book into the next one's.

perpetuals (USD-M, on /market): <sym>@markPrice@1s, <sym>@markPrice (3 s), <sym>@forceOrder,
and !markPrice@arr@1s / !markPrice@arr (every symbol's marks, one array a second)
  ws://HOST:PORT/market/stream?streams=btcusdt@markPrice@1s/btcusdt@forceOrder
  mark prices are served as recorded where a recording holds markPriceUpdate events;
  otherwise they are SYNTHETIC: each second, mark = the last perpetual trade price,
  index = the last spot trade of the same symbol (else the mark), funding rate from
  Binance's premium formula, next funding time the next 00/08/16 UTC. Liquidations
  (forceOrder) are always SYNTHETIC: drawn from the largest trades (seeded by --seed),
  at most one per second per symbol. On REST, fundingRate serves the --funding files'
  settlements as written (default: the bundled real XRPUSDT settlements of 2021, so
  XRPUSDT is listed in /fapi/v1/exchangeInfo) and, for the recordings' USD-M symbols,
  SYNTHETIC settlements at 00/08/16 UTC from their marks; premiumIndex is the mark at
  the replay's position; openInterest and openInterestHist are SYNTHETIC (a smooth,
  deterministic series). The start-up line names what is synthetic.

limits, as on Binance: 1024 streams per connection, 5 incoming messages per second per
connection (then closed, code 1008), 300 connections per 5 minutes per IP (then HTTP 429
with Retry-After).
markets: a file is USD-M if its trades carry "X" (or its depth events "pu"), else if
its name contains "usdm" or "futures"; otherwise spot. --usdm forces USD-M.
"""


def register(subparsers: Any) -> None:
    """Add the ``replay`` subcommand to the ``quantify`` parser."""
    p = subparsers.add_parser(
        "replay",
        help="serve recorded Binance trades on a local Binance-compatible server",
        description=(
            "Serve recorded Binance trades and order books (depth diffs, book tickers, REST "
            "depth snapshots), and USD-M perpetual data (mark prices, liquidations, funding, "
            "open interest; recorded where recorded, else synthetic and labelled so), "
            "over Binance's WebSocket and REST protocols on "
            "one local port, so the ingestion service and Binance's own client libraries "
            "can run offline. Events are released at their recorded times scaled by --speed; "
            "the clock starts when the first client subscribes. REST serves only trades "
            "already released, and depth snapshots of the replay's own book at that point. "
            "Fault options make the server misbehave on purpose."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="*", type=Path, metavar="FILE",
        help="recorded frames (<recv ns> <JSON> lines, gzip or not), market detected; "
        "default: the bundled spot and USD-M samples, with the BTCUSDT order books",
    )
    p.add_argument(
        "--usdm", nargs="+", type=Path, default=[], metavar="FILE",
        help="recordings to serve as Binance USD-M futures whatever they look like",
    )
    p.add_argument(
        "--funding", nargs="+", type=Path, default=None, metavar="FILE",
        help="fundingRate CSVs (symbol,fundingTime,fundingRate[,markPrice] or data.binance.vision's "
             "archives) served by /fapi/v1/fundingRate; default: the bundled XRPUSDT settlements of 2021",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_CLI_PORT,
        help="port to bind, 0 for a free one (default: %(default)s)",
    )
    p.add_argument(
        "--speed", type=float, default=1.0,
        help="replay speed: 1 real time, 10 ten times faster, 0 as fast as possible "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--loop", action="store_true",
        help="repeat the recording forever, shifting ids and times forward each lap and "
             "scaling each lap's prices so they carry on from the previous lap's last price "
             "(returns stay the recorded ones, rounded to the tick; the level moves by the "
             "recording's net move each lap)",
    )
    p.add_argument(
        "--synthetic-universe", type=int, default=0, metavar="N",
        help="serve N SYNTHETIC spot instruments (SYN001USDT, ...) made from the bundled BTCUSDT "
             "recording (renamed; ids, prices and times shifted per instrument; trades, depth diffs, "
             "book tickers, REST depth) instead of FILES, for scale tests",
    )
    p.add_argument(
        "--universe-seconds", type=float, default=0.0, metavar="S",
        help="with --synthetic-universe: the first S seconds of the recording only (default: all)",
    )
    faults = p.add_argument_group("fault injection (all off by default)")
    faults.add_argument(
        "--drop-every", type=float, default=0.0, metavar="S",
        help="close every connection (trades and depth alike) abruptly, no close frame, every S seconds",
    )
    faults.add_argument(
        "--corrupt-fraction", type=float, default=0.0, metavar="F",
        help="replace this fraction of frames (trades and book events) by garbage (lost to clients)",
    )
    faults.add_argument(
        "--drop-depth", type=float, default=0.0, metavar="F",
        help="do not send this fraction of depth-diff frames (seeded, per connection): clients "
             "see gaps in the update ids and must resync from a snapshot",
    )
    faults.add_argument(
        "--stale-snapshot", type=float, default=0.0, metavar="F",
        help="answer this fraction of REST depth requests with an older book, whose lastUpdateId "
             "is below the first depth event any open connection was sent: clients must fetch again",
    )
    faults.add_argument(
        "--shutdown-after", type=float, default=0.0, metavar="S",
        help="S seconds after a connection opens, send serverShutdown and close it soon after",
    )
    faults.add_argument(
        "--refuse-for", type=float, default=0.0, metavar="S",
        help="after each drop, refuse WebSocket handshakes with HTTP 503 for S seconds",
    )
    faults.add_argument(
        "--force-429", type=int, default=0, metavar="N",
        help="answer the first N REST requests with HTTP 429 (Retry-After: 1)",
    )
    faults.add_argument(
        "--seed", type=int, default=0,
        help="seed of the fault generator and of the synthetic liquidations (default: %(default)s)"
    )
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Any:
    from quantify.replay.server import ReplayConfig

    return ReplayConfig(
        files=tuple(args.files) if args.files or args.usdm else tuple(default_files()),
        usdm_files=tuple(args.usdm),
        funding_files=tuple(funding_sample_files() if args.funding is None else args.funding),
        host=args.host, port=args.port, speed=args.speed, loop=args.loop,
        drop_every=args.drop_every, corrupt_fraction=args.corrupt_fraction,
        drop_depth=args.drop_depth, stale_snapshot=args.stale_snapshot,
        shutdown_after=args.shutdown_after, refuse_for=args.refuse_for,
        force_429=args.force_429, seed=args.seed,
        synthetic_universe=args.synthetic_universe, universe_seconds=args.universe_seconds,
    )


def run(args: argparse.Namespace) -> int:
    """Run the replay server until Ctrl-C or SIGTERM; return the exit code."""
    from quantify.replay.server import ReplayServer

    server = ReplayServer(_config(args))  # bad files raise FeedError before binding

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
                pass
        async with server:
            symbols = server.describe_symbols()
            speed = "max" if args.speed == 0 else f"{args.speed:g}x"
            print(
                f"replay: ws {server.ws_url}  rest {server.rest_url}  "
                f"({symbols}; speed {speed}{'; loop' if args.loop else ''}) - Ctrl-C to stop",
                flush=True,
            )
            made_up = server.synthetic()
            if made_up:
                print("replay: SYNTHETIC (not recorded): " + "; ".join(
                    f"{key} {', '.join(kinds)}" for key, kinds in made_up.items()), flush=True)
            await stop.wait()
        stats = server.stats
        print(
            f"replay: stopped after {stats['frames_sent']} frames to "
            f"{stats['connections']} connection(s)", file=sys.stderr,
        )

    try:
        asyncio.run(serve())
    except OSError as exc:  # port in use, bad host
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return 0
