"""Run a replay server in a daemon thread, for synchronous callers and tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, Self, TypeVar

from quantify.replay.server import ReplayConfig, ReplayServer

__all__ = ["ReplayThread"]

_T = TypeVar("_T")


class ReplayThread:
    """Run a :class:`ReplayServer` in a daemon thread with its own event loop.

    For synchronous callers and tests. Exposes the server's URLs, ``stats``
    and fault triggers, each safe to call from any thread.

    Parameters
    ----------
    config : ReplayConfig, optional
        Settings of a new server.
    server : ReplayServer, optional
        An existing, not yet started, server (instead of ``config``).

    Examples
    --------
    >>> with ReplayThread(ReplayConfig(speed=0)) as replay:  # doctest: +SKIP
    ...     url = replay.ws_url + "/stream?streams=btcusdt@trade"
    """

    def __init__(
        self, config: ReplayConfig | None = None, *, server: ReplayServer | None = None
    ) -> None:
        if server is not None and config is not None:
            raise ValueError("pass config or server, not both")
        self.server = server or ReplayServer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server thread; return once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("replay thread already started")
        self._thread = threading.Thread(target=self._run, name="quantify-replay", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"replay server did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - surfaced to start()'s caller
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.server.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread (idempotent)."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[[], _T], timeout: float = 10.0) -> _T:
        if self._loop is None:
            raise RuntimeError("replay thread not started")

        async def call() -> _T:
            return fn()

        future: concurrent.futures.Future[_T] = asyncio.run_coroutine_threadsafe(
            call(), self._loop
        )
        return future.result(timeout)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def rest_url(self) -> str:
        return self.server.rest_url

    @property
    def stats(self) -> dict[str, Any]:
        """A consistent snapshot of :attr:`ReplayServer.stats`."""
        return self._call(lambda: self.server.stats)

    def now_ms(self) -> int:
        return self._call(self.server.now_ms)

    def drop_connections(self) -> int:
        return self._call(self.server.drop_connections)

    def send_server_shutdown(self) -> int:
        return self._call(self.server.send_server_shutdown)

    def refuse_connections(self, seconds: float) -> None:
        self._call(lambda: self.server.refuse_connections(seconds))

    def force_429(self, count: int) -> None:
        self._call(lambda: self.server.force_429(count))

