"""%load_ext quantify and %quantify, in IPython's own test shell, against the replay server."""

from __future__ import annotations

import time

import pytest
from IPython.testing.globalipapp import get_ipython

from quantify.config import IngestConfig
from quantify.ipython import current_session, load_ipython_extension, unload_ipython_extension
from quantify.ipython.magics import complete_quantify
from quantify.replay.config import usdm_sample_files
from quantify.replay.server import ReplayConfig
from quantify.replay.thread import ReplayThread
from quantify.store import open_store


@pytest.fixture
def replay():
    server = ReplayThread(ReplayConfig(speed=0, loop=False)).start()
    yield server
    server.stop()


@pytest.fixture
def replay_both():
    """Spot and USD-M: the USD-M perpetual is a symbol the replay lists, to add."""
    server = ReplayThread(ReplayConfig(speed=0, loop=False, usdm_files=tuple(usdm_sample_files()))).start()
    yield server
    server.stop()


@pytest.fixture
def ip():
    import IPython

    shell = get_ipython() or IPython.get_ipython()  # the test shell is created once per process
    yield shell
    unload_ipython_extension(shell)


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_load_streams_prints_one_line_and_unload_flushes_fast(ip, replay, lmdb_uri, capsys):
    cfg = IngestConfig(store=lmdb_uri, ws_url=replay.ws_url, rest_url=replay.rest_url)
    load_ipython_extension(ip, cfg)
    out = capsys.readouterr().out
    assert out.strip().splitlines() == [f"quantify: streaming BTCUSDT, ETHUSDT (trade) into {lmdb_uri}"]
    session = current_session()
    assert session is not None and session.mode == "writer"
    assert _wait(lambda: session.service.stats.trades > 1000)
    ip.run_line_magic("quantify", "status")
    assert "writer" in capsys.readouterr().out
    t0 = time.monotonic()
    unload_ipython_extension(ip)
    assert time.monotonic() - t0 < 2.0
    assert current_session() is None
    received = session.status()  # reads the published status after stop
    store = open_store(lmdb_uri)
    stored = sum(store.describe(s)["rows"] for s in store.symbols())
    assert received is not None
    assert received.state == "stopped" and stored == received.trades_stored
    assert capsys.readouterr().out == ""  # background work printed nothing


def test_second_kernel_attaches_as_reader(ip, replay, lmdb_uri, capsys):
    import subprocess
    import sys

    code = (
        "import time\nfrom quantify.config import IngestConfig\nfrom quantify.ingest.service import IngestService\n"
        f"s = IngestService(IngestConfig(store={lmdb_uri!r}, ws_url={replay.ws_url!r}, rest_url={replay.rest_url!r}))\n"
        "s.start_in_thread(); print('up', flush=True); time.sleep(30)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "up"
        load_ipython_extension(ip, IngestConfig(store=lmdb_uri, ws_url=replay.ws_url, rest_url=replay.rest_url))
        line = capsys.readouterr().out.strip()
        assert "already has a writer; attached as reader" in line and f"pid {other.pid}" in line
        assert current_session().mode == "reader"
    finally:
        other.kill()
        other.wait()


def test_symbols_magic_help_and_completion(ip, replay_both, lmdb_uri, capsys):
    replay = replay_both
    load_ipython_extension(ip, IngestConfig(store=lmdb_uri, ws_url=replay.ws_url, rest_url=replay.rest_url))
    capsys.readouterr()
    # a symbol the replay lists (symbols are checked against the venue's exchangeInfo)
    ip.run_line_magic("quantify", "symbols add binance-usdm:BTCUSDT")
    assert "streaming BTCUSDT, ETHUSDT, binance-usdm:BTCUSDT" in capsys.readouterr().out
    ip.run_line_magic("quantify", "symbols remove ETHUSDT")
    assert current_session().config.symbols == ("BTCUSDT", "binance-usdm:BTCUSDT")
    with pytest.raises(ValueError, match="not a Binance symbol"):
        ip.run_line_magic("quantify", "symbols add BTC-USD")
    # order books: of streamed instruments only; removing a symbol removes its book
    ip.run_line_magic("quantify", "books add binance-usdm:BTCUSDT")
    assert current_session().config.books == ("binance-usdm:BTCUSDT",)
    with pytest.raises(ValueError, match="symbols add ETHUSDT"):
        ip.run_line_magic("quantify", "books add ETHUSDT")
    with pytest.raises(ValueError, match="no order book of BTCUSDT"):
        ip.run_line_magic("quantify", "books remove BTCUSDT")
    ip.run_line_magic("quantify", "symbols remove binance-usdm:BTCUSDT")
    assert current_session().config.books == () and current_session().config.symbols == ("BTCUSDT",)
    ip.run_line_magic("quantify", "symbols add binance-usdm:BTCUSDT")
    ip.run_line_magic("quantify", "stop")
    assert "stopped;" in capsys.readouterr().out
    doc = ip.find_line_magic("quantify").__doc__
    assert "add|remove SYM..." in doc and "--json" in doc
    session = current_session()
    assert complete_quantify(session, "sy", "%quantify sy") == ["symbols"]
    assert complete_quantify(session, "binance", "%quantify symbols remove binance") == ["binance-usdm:BTCUSDT"]
    assert "BTCUSDT" in complete_quantify(session, "BT", "%quantify symbols add BT")


def test_perps_magic_keeps_a_subset_of_the_symbols(ip, replay_both, lmdb_uri, capsys):
    replay = replay_both
    load_ipython_extension(ip, IngestConfig(symbols=("BTCUSDT", "binance-usdm:BTCUSDT"), store=lmdb_uri,
                                            ws_url=replay.ws_url, rest_url=replay.rest_url))
    ip.run_line_magic("quantify", "stop")
    capsys.readouterr()
    ip.run_line_magic("quantify", "perps")
    assert capsys.readouterr().out.strip() == "no perpetual data streamed (%quantify perps add binance-usdm:BTCUSDT)"
    ip.run_line_magic("quantify", "perps add binance-usdm:BTCUSDT")
    assert current_session().config.perps == ("binance-usdm:BTCUSDT",)
    with pytest.raises(ValueError, match="symbols add binance-usdm:ETHUSDT"):
        ip.run_line_magic("quantify", "perps add binance-usdm:ETHUSDT")
    with pytest.raises(ValueError, match="no perpetual data of BTCUSDT"):
        ip.run_line_magic("quantify", "perps remove BTCUSDT")
    ip.run_line_magic("quantify", "symbols remove binance-usdm:BTCUSDT")
    assert current_session().config.perps == () and current_session().config.symbols == ("BTCUSDT",)
    capsys.readouterr()
    ip.run_line_magic("quantify", "perps --help")
    assert capsys.readouterr().out.startswith("usage: %quantify perps [add|remove INST...]")
