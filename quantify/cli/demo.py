"""``quantify demo``: replay recorded Binance trades, ingest them, show them live."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from quantify.cli._stream import DEMO_STORE, fresh_demo_store, start_replay_stream
from quantify.model.status import WriterStatus
from quantify.store import Store

EPILOG = """\
The demo needs no network: a local, Binance-compatible replay server serves
real recorded Binance trades (spot BTCUSDT and ETHUSDT and their USD-M
perpetuals, binance-usdm:BTCUSDT and binance-usdm:ETHUSDT, 2024-08-08, bundled
with QuantiFy) in a loop, and the ingestion service streams them into a demo
store exactly as it would stream from Binance. Ctrl-C stops everything.

The demo store is wiped at the start of each demo; open it in a notebook with
  qf.open_store("lmdb://~/.quantify/demo")
"""

BANNER = "REPLAY — recorded Binance trades, 2024-08-08 (not live data)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="replay bundled Binance data, ingest it, and show it live",
        description="Start the replay server on bundled real Binance trades, the ingestion "
                    "service, and a live view; print where to look.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--store", metavar="URI", default=None,
                   help=f"demo store (default: lmdb://{DEMO_STORE}; wiped at start)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="replay speed: 1 real time (default), 10 ten times faster, 0 as fast as possible")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--port", type=int, default=0, help="dashboard port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; just print the URL")
    p.add_argument("--no-dashboard", action="store_true", help="run replay and ingestion only, with a status line")
    p.set_defaults(func=run)


def _line(status: WriterStatus, prices: Mapping[str, float]) -> str:
    """The demo's status line: each instrument's last price and trades this run, ticks/s."""
    parts = [BANNER]
    for key, inst in status.instruments.items():
        price = f" {prices[key]:,.2f}" if key in prices else ""
        parts.append(f"{key}{price} ({inst.rows_this_run:,} trades)")
    parts.append(f"{status.ticks_per_second:.0f} ticks/s")
    return " | ".join(parts)


def _last_prices(store: Store, status: WriterStatus) -> dict[str, float]:
    out = {}
    for key, inst in status.instruments.items():
        if inst.last_id is not None:
            tail = store.tail(key, 1)
            if len(tail):
                out[key] = float(tail["price"].iloc[-1])
    return out


def run(args: argparse.Namespace) -> int:
    replay, service = start_replay_stream(fresh_demo_store(args.store), speed=args.speed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dashboard = None
    print(f"quantify demo: {BANNER}", flush=True)
    print(f"  replay server  {replay.ws_url} (WebSocket), {replay.rest_url} (REST)", flush=True)
    print(f"  store          {service.store.uri}", flush=True)
    if not args.no_dashboard:
        from quantify.cli.dashboard import serve_dashboard

        try:
            url, dashboard = serve_dashboard("pairs_monitor", str(service.store.uri), args.port,
                                             open_browser=not args.no_browser)
        except BaseException:
            service.join(timeout=10)
            replay.stop()
            raise
        print(f"  dashboard      {url}   <- open this (pairs monitor, Voilà)", flush=True)
    print("  Ctrl-C stops the demo.", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(1.0)
            if not service.is_alive():
                print("quantify demo: ingestion stopped unexpectedly; see the log above", file=sys.stderr)
                return 1
            status = service.status()
            print(_line(status, _last_prices(service.store, status)), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(10)
            except subprocess.TimeoutExpired:
                dashboard.kill()
        service.join(timeout=10)
        replay.stop()
    status = service.status()
    print(f"quantify demo: stopped; {status.trades_stored:,} trades stored in {service.store.uri}", flush=True)
    return 0
