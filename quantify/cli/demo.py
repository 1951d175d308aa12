"""``quantify demo``: replay recorded Binance trades, ingest them, show them live."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from quantify.cli._access import access_from_args, add_access_arguments
from quantify.cli._stream import DEMO_STORE, fresh_demo_store, start_replay_stream
from quantify.cli.dashboard import serve_dashboard, stop_dashboard
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
    p.add_argument("--port", type=int, default=0, help="dashboard port (default: a free one)")
    add_access_arguments(p)
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


class StatusLine:
    """The demo's status line: rewritten in place on a terminal, a line every so often elsewhere.

    On a TTY each update replaces the previous one (carriage return, clear to
    the end of the line, cut to the terminal's width), so the URLs printed
    above stay in view. Elsewhere (a log file, a supervisor) a line is written
    every :attr:`LOG_EVERY` seconds only.
    """

    #: Seconds between two status lines when the output is not a terminal.
    LOG_EVERY = 30.0

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._last: float | None = None
        self._open = False  # a rewritten line is on screen without its newline

    def due(self) -> bool:
        """Whether an update would be shown now (always on a TTY)."""
        return self.tty or self._last is None or self.clock() - self._last >= self.LOG_EVERY

    def show(self, text: str) -> None:
        """Show ``text`` as the current status, if :meth:`due`."""
        if not self.due():
            return
        if self.tty:
            width = shutil.get_terminal_size().columns
            if len(text) >= width:
                text = text[: max(width - 2, 1)] + "…"
            self.stream.write("\r\x1b[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self._last = self.clock()
        self.stream.flush()

    def end(self) -> None:
        """Finish the line in place (before anything else is printed)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _last_prices(store: Store, status: WriterStatus) -> dict[str, float]:
    out = {}
    for key, inst in status.instruments.items():
        if inst.last_id is not None:
            tail = store.tail(key, 1)
            if len(tail):
                out[key] = float(tail["price"].iloc[-1])
    return out


def run(args: argparse.Namespace) -> int:
    try:
        access = access_from_args(args)
    except ValueError as exc:
        print(f"quantify demo: {exc}", file=sys.stderr)
        return 2
    replay, service = start_replay_stream(fresh_demo_store(args.store), speed=args.speed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dashboard = None
    print(f"quantify demo: {BANNER}", flush=True)
    print(f"  replay server  {replay.ws_url} (WebSocket), {replay.rest_url} (REST)", flush=True)
    print(f"  store          {service.store.uri}", flush=True)
    if not args.no_dashboard:
        try:
            url, dashboard = serve_dashboard("pairs_monitor", str(service.store.uri), args.port,
                                             open_browser=not args.no_browser,
                                             verbosity=getattr(args, "verbose", 0), access=access)
        except BaseException:
            service.join(timeout=10)
            replay.stop()
            raise
        print(f"  dashboard      {url}   <- open this (pairs monitor, Voilà)", flush=True)
        print(f"  order books    quantify dashboard microstructure --store {service.store.uri}   "
              "(BTCUSDT spot and USD-M, in another terminal)", flush=True)
    print("  Ctrl-C stops the demo.", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    line = StatusLine(sys.stdout)
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(1.0)
            if not service.is_alive():
                line.end()
                print("quantify demo: ingestion stopped unexpectedly; see the log above", file=sys.stderr)
                return 1
            if line.due():
                status = service.snapshot()
                line.show(_line(status, _last_prices(service.store, status)))
    except KeyboardInterrupt:
        pass
    finally:
        line.end()
        if dashboard is not None:
            stop_dashboard(dashboard)
        service.join(timeout=10)
        replay.stop()
    status = service.status()
    print(f"quantify demo: stopped; {status.trades_stored:,} trades stored in {service.store.uri}", flush=True)
    return 0
