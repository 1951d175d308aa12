"""Helpers of the perpetual ingestion tests: the recording's marks, a stand-in exchange.

The bundled ``usdm-2023-btcusdt_20230405.perp.gz`` holds 514 recorded
``btcusdt@markPrice@1s`` events (2023-04-04 23:58:21 to 2023-04-05 00:06:54
UTC, a funding settlement at 00:00 between them); the tests' fixture
``usdm-2023-btcusdt_20230405.liquidations`` four ``forceOrder`` events of
the same minutes. :func:`expected_marks` reads the marks straight from the
JSON (not through QuantiFy's parser), as the store must hold them.

:class:`FrameServer` is a WebSocket server on loopback that sends given
frames to every connection whose URL names a stream they belong to (the
exchange's streams for a test of the ingestion side only);
:func:`usdm_rest` a REST stand-in (an ``httpx.MockTransport``) answering
USD-M ``exchangeInfo``, ``time``, ``openInterest`` and ``fundingRate``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[2]
PERP_CAPTURE = ROOT / "quantify" / "data" / "usdm-2023-btcusdt_20230405.perp.gz"
LIQUIDATIONS = ROOT / "tests" / "data" / "usdm-2023-btcusdt_20230405.liquidations"
#: The settlement the recorded marks cross (2023-04-05 00:00 UTC), as Binance stamps it (a few ms after).
SETTLEMENT_MS = 1680652800004
#: Open interest the stand-in answers (contracts; constructed).
OPEN_INTEREST = 103_245.123


def capture_lines(path: Path, stream_part: str) -> list[str]:
    """The frames (JSON text) of ``path`` whose stream name contains ``stream_part``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        return [line.partition(" ")[2].rstrip("\n") for line in fh if f"@{stream_part}" in line]


def mark_frames() -> list[str]:
    return capture_lines(PERP_CAPTURE, "markPrice")


def liquidation_frames() -> list[str]:
    return capture_lines(LIQUIDATIONS, "forceOrder")


def expected_marks(frames: Iterable[str] | None = None) -> pd.DataFrame:
    """The marks of ``frames`` (default: the recording's) as the store's mark frame holds them."""
    rows = [json.loads(f)["data"] for f in (mark_frames() if frames is None else frames)]
    return pd.DataFrame(
        {"mark_price": [float(r["p"]) for r in rows], "index_price": [float(r["i"]) for r in rows],
         "settle_price": [float(r["P"]) for r in rows], "funding_rate": [float(r["r"]) for r in rows],
         "next_funding_time": pd.to_datetime([r["T"] for r in rows], unit="ms", utc=True)},
        index=pd.DatetimeIndex(pd.to_datetime([r["E"] for r in rows], unit="ms", utc=True), name="time"))


def settled_rate() -> float:
    """The rate the last mark before the settlement announced (what the stand-in says was settled)."""
    before = [json.loads(f)["data"] for f in mark_frames()]
    return float([r for r in before if r["E"] < SETTLEMENT_MS][-1]["r"])


class FrameServer:
    """A loopback WebSocket server sending ``frames[part]`` to each connection whose URL contains ``part``.

    Connections stay open after their frames (as Binance's do); ``sent``
    counts connections served per part.
    """

    def __init__(self, frames: dict[str, list[str]]) -> None:
        self.frames = frames
        self.sent: dict[str, int] = {}
        self.paths: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="frame-server")
        self.port = 0

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        self.paths.append(path)
        for part, frames in self.frames.items():
            if part in path:
                self.sent[part] = self.sent.get(part, 0) + 1
                for frame in frames:
                    await ws.send(frame)
        await ws.wait_closed()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = self._loop.create_future()
            async with serve(self._handle, "127.0.0.1", 0) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._ready.set()
                await self._stop

        self._loop.run_until_complete(main())

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> FrameServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def done() -> None:
            if self._stop is not None and not self._stop.done():
                self._stop.set_result(None)

        self._loop.call_soon_threadsafe(done)
        self._thread.join(10)


def usdm_rest(calls: list[str] | None = None, *, funding: bool = True) -> httpx.MockTransport:
    """A USD-M REST stand-in: ``exchangeInfo`` (BTCUSDT), ``time``, ``openInterest``, ``fundingRate``.

    ``fundingRate`` answers the 00:00 settlement when asked from before it
    (``funding=False``: an empty list, a settlement not published yet);
    every other path answers ``[]``. Each request's path is appended to ``calls``.
    """
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if calls is not None:
            calls.append(path)
        params = request.url.params
        body: Any = []
        if path.endswith("/exchangeInfo"):
            body = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}]}
        elif path.endswith("/time"):
            body = {"serverTime": int(time.time() * 1000)}
        elif path.endswith("/openInterest"):
            body = {"symbol": params["symbol"], "openInterest": str(OPEN_INTEREST), "time": int(time.time() * 1000)}
        elif path.endswith("/fundingRate"):
            start = int(params.get("startTime", 0))
            if funding and start <= SETTLEMENT_MS:
                body = [{"symbol": params["symbol"], "fundingTime": SETTLEMENT_MS,
                         "fundingRate": f"{settled_rate():.8f}", "markPrice": "28150.00000000"}]
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)
