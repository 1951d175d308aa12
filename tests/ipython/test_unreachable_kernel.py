"""%load_ext quantify with an unreachable exchange, an unknown symbol, and a kernel's own writer lock."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from IPython.testing.globalipapp import get_ipython

from quantify.config import IngestConfig
from quantify.ipython import current_session, load_ipython_extension, unload_ipython_extension
from quantify.ipython.session import KernelSession
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.store.lease import WriterLock


@pytest.fixture
def ip():
    import IPython

    shell = get_ipython() or IPython.get_ipython()
    yield shell
    unload_ipython_extension(shell)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_load_warns_status_shows_it_stop_is_prompt_and_a_restart_stays_the_writer(ip, closed_port, lmdb_uri,
                                                                                   capsys):
    url = f"127.0.0.1:{closed_port}"
    load_ipython_extension(ip, IngestConfig(store=lmdb_uri, ws_url=f"ws://{url}", rest_url=f"http://{url}"))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"quantify: streaming BTCUSDT, ETHUSDT (trade) into {lmdb_uri}"
    assert len(lines) == 2 and lines[1].startswith("quantify: warning: cannot reach binance ")
    assert url in lines[1] and "connection refused" in lines[1] and "quantify replay" in lines[1]

    ip.run_line_magic("quantify", "status")
    status = capsys.readouterr().out
    assert status.startswith("writer · running")
    assert f"binance websocket ws://{url}/stream: unreachable since " in status
    assert f"binance rest http://{url}: unreachable since " in status

    # adding a symbol restarts the stream: this kernel is its writer again, never a reader of itself
    ip.run_line_magic("quantify", "symbols add binance-usdm:BTCUSDT")
    out = capsys.readouterr().out
    assert "attached as reader" not in out
    assert "streaming BTCUSDT, ETHUSDT, binance-usdm:BTCUSDT" in out and "cannot reach" in out
    session = current_session()
    assert session is not None and session.mode == "writer" and session.service is not None

    t0 = time.monotonic()
    ip.run_line_magic("quantify", "stop")
    assert time.monotonic() - t0 < 10  # bounded: the stop timeout is 2 s, a stuck stop would say so
    assert capsys.readouterr().out.startswith("stopped; 0 trades stored")
    assert session.service is None and session.mode == "stopped"


def test_a_kernel_never_reads_from_its_own_writer(lmdb_uri):
    store = open_store(lmdb_uri, create=True)
    held = WriterLock(store.uri.uri, store.uri.path).acquire()  # as a writer of this process that has not stopped
    try:
        session = KernelSession(IngestConfig(store=lmdb_uri, ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9"))
        message = session.start()
        assert session.mode == "stopped" and "own earlier writer" in message and "reader" not in session.mode
    finally:
        held.release()


class _StillStopping:
    """A service whose stop has not finished (the stop timeout passed)."""

    class store:
        uri = "lmdb:///somewhere"

    def join(self, timeout: float | None = None) -> None:
        pass

    def is_alive(self) -> bool:
        return True


def test_a_start_waits_for_a_stop_that_has_not_finished(lmdb_uri):
    session = KernelSession(IngestConfig(store=lmdb_uri))
    session._stopping = _StillStopping()  # type: ignore[assignment]
    message = session.start()
    assert "still stopping" in message and session.mode == "stopped" and session.service is None


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayThread]:
    server = ReplayThread(ReplayConfig(speed=0, loop=False)).start()
    yield server
    server.stop()


def test_unknown_symbols_are_refused_on_load_and_when_added(ip, replay, lmdb_uri, capsys):
    urls = {"ws_url": replay.ws_url, "rest_url": replay.rest_url}
    load_ipython_extension(ip, IngestConfig(store=lmdb_uri, symbols=("BTCUSDX",), **urls))
    out = capsys.readouterr().out
    assert out.startswith("quantify: not streaming: binance does not list the symbol BTCUSDX "
                          "(closest listed: BTCUSDT")
    unload_ipython_extension(ip)
    capsys.readouterr()

    load_ipython_extension(ip, IngestConfig(store=lmdb_uri, **urls))
    assert capsys.readouterr().out.strip().splitlines() == [
        f"quantify: streaming BTCUSDT, ETHUSDT (trade) into {lmdb_uri}"]
    session = current_session()
    assert session is not None
    service = session.service
    with pytest.raises(ValueError, match=r"does not list the symbol ETHUSDX \(closest listed: ETHUSDT"):
        ip.run_line_magic("quantify", "symbols add ETHUSDX")
    # refused before anything stopped: the same stream goes on
    assert session.service is service and service.is_alive()
    assert session.config.symbols == ("BTCUSDT", "ETHUSDT")
