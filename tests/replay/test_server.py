"""The replay server's WebSocket side: streams, subscriptions, timing, looping, faults."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from quantify.model.trades import ServerShutdown, Trade
from quantify.replay.server import ReplayConfig, ReplayServer
from quantify.replay.thread import ReplayThread
from quantify.venues.binance.parse import FrameParser

#: Seconds any single network wait may take (generous: shared CI machines are slow).
TIMEOUT = 20.0
BTC_FIRST, BTC_LAST = 3735683259, 3735703162


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def connect(url: str) -> Any:
    """A websockets client that keeps reading while it closes.

    With the default ``max_queue`` a client that stops reading a fast server
    pauses the socket, never sees the server's close frame and waits out its
    ``close_timeout`` (10 s) on exit.
    """
    return websockets.connect(url, max_size=None, max_queue=None, close_timeout=2)


async def collect(url: str, count: int, *, subscribe: list[str] | None = None) -> list[Any]:
    """Connect, optionally SUBSCRIBE, and return the next ``count`` decoded messages."""
    async with connect(url) as ws:
        if subscribe:
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": subscribe, "id": 1}))
            assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        return [orjson.loads(await ws.recv()) for _ in range(count)]


# ---- streams ---------------------------------------------------------------------------


def test_combined_stream_delivers_the_recording_exactly(replay, sample_events):
    server = replay(speed=0)
    n_btc, n_eth = len(sample_events["BTCUSDT"]), len(sample_events["ETHUSDT"])
    url = server.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade"
    messages = run(collect(url, n_btc + n_eth))
    got: dict[str, list[dict[str, Any]]] = {"BTCUSDT": [], "ETHUSDT": []}
    times = []
    for msg in messages:
        data = msg["data"]
        assert msg["stream"] == data["s"].lower() + "@trade"
        got[data["s"]].append(data)
        times.append(data["T"])
    # exactly the recorded events, decimal strings and all, in id order per symbol
    assert got == sample_events
    assert [e["t"] for e in got["BTCUSDT"]] == list(range(BTC_FIRST, BTC_LAST + 1))
    assert times == sorted(times)  # one timeline, ordered by trade time
    stats = server.stats
    assert stats["trades_replayed"] == {"BTCUSDT": n_btc, "ETHUSDT": n_eth}
    assert stats["frames_sent"] == n_btc + n_eth


def test_raw_stream_delivers_bare_events(replay, sample_events):
    server = replay(speed=0)
    events = run(collect(server.ws_url + "/ws/ethusdt@trade", len(sample_events["ETHUSDT"])))
    assert events == sample_events["ETHUSDT"]


def test_agg_trade_stream_aggregates_consecutive_trades(replay, sample_events):
    server = replay(speed=0)
    trades = sample_events["BTCUSDT"]
    by_id = {e["t"]: e for e in trades}
    aggs: list[dict[str, Any]] = []

    async def read() -> None:
        async with connect(server.ws_url + "/ws/btcusdt@aggTrade") as ws:
            while not aggs or aggs[-1]["l"] < BTC_LAST:
                aggs.append(orjson.loads(await ws.recv()))

    run(read())
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    assert aggs[0]["f"] == BTC_FIRST
    for prev, agg in zip([None, *aggs], aggs):
        assert agg["e"] == "aggTrade" and agg["s"] == "BTCUSDT"
        if prev is not None:
            assert agg["f"] == prev["l"] + 1
        members = [by_id[t] for t in range(agg["f"], agg["l"] + 1)]
        assert {(m["T"], m["p"], m["m"]) for m in members} == {(agg["T"], agg["p"], agg["m"])}
        assert Decimal(agg["q"]) == sum(Decimal(m["q"]) for m in members)
        assert len(agg["q"]) == len(members[0]["q"]) or Decimal(agg["q"]) >= 10
    # maximal: two neighbouring aggregates never share time, price and side
    for prev, agg in itertools.pairwise(aggs):
        assert (prev["T"], prev["p"], prev["m"]) != (agg["T"], agg["p"], agg["m"])


def test_subscribe_unsubscribe_list(replay):
    server = replay(speed=0, max_messages_per_second=0)  # the limit has its own test

    async def talk() -> None:
        async with connect(server.ws_url + "/ws") as ws:
            async def ask(req: Any) -> Any:
                await ws.send(req if isinstance(req, str) else orjson.dumps(req).decode())
                while True:  # skip data frames until the reply
                    msg = orjson.loads(await ws.recv())
                    if "id" in msg and ("result" in msg or "error" in msg):
                        return msg

            assert await ask({"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}
            assert await ask({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@aggTrade"],
                              "id": 2}) == {"result": None, "id": 2}
            event = orjson.loads(await ws.recv())
            assert event["e"] in ("trade", "aggTrade")
            listed = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert listed == {"result": ["btcusdt@trade", "ethusdt@aggTrade"], "id": 3}
            assert await ask({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "x-4"}) \
                == {"result": None, "id": "x-4"}
            assert (await ask({"method": "LIST_SUBSCRIPTIONS", "id": 5}))["result"] == \
                ["ethusdt@aggTrade"]
            # Binance's error replies
            bad = await ask("{not json")
            assert bad["error"]["code"] == 3 and bad["id"] is None
            bad = await ask({"method": "SUBSCRIB", "params": [], "id": 6})
            assert bad["error"]["code"] == 2 and "unknown variant" in bad["error"]["msg"]
            bad = await ask({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 7})
            assert bad["error"]["code"] == 2 and bad["id"] == 7
            bad = await ask({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": -1})
            assert bad["error"]["code"] == 2
            assert await ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 8}) == \
                {"result": False, "id": 8}
            bad = await ask({"method": "SET_PROPERTY", "params": ["colour", True], "id": 9})
            assert bad["error"]["code"] == 0
            # at most 1024 streams per connection
            many = [f"s{i}usdt@trade" for i in range(1025)]
            bad = await ask({"method": "SUBSCRIBE", "params": many, "id": 10})
            assert bad["error"]["code"] == 2 and "1024" in bad["error"]["msg"]

    run(talk())


def test_more_than_five_messages_a_second_closes_the_connection(replay):
    server = replay(speed=0)

    async def flood() -> int | None:
        async with connect(server.ws_url + "/ws") as ws:
            try:
                for i in range(20):
                    await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
        return None

    assert run(flood()) == 1008


def test_too_many_streams_in_url_is_refused(replay):
    server = replay(speed=0)
    streams = "/".join(f"s{i}usdt@trade" for i in range(1025))
    with pytest.raises(InvalidStatus) as info:
        run(collect(server.ws_url + "/stream?streams=" + streams, 1))
    assert info.value.response.status_code in (400, 414)  # websockets caps the URL at 8 KiB


def test_unknown_stream_is_accepted_but_silent(replay):
    server = replay(speed=0)

    async def talk() -> None:
        async with connect(server.ws_url + "/ws/dogeusdt@trade") as ws:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)

    run(talk())


# ---- the replay clock ---------------------------------------------------------------------


def test_clock_starts_at_first_subscription(replay, spaced_recording):
    server = replay(files=(spaced_recording,), speed=1)
    time.sleep(1.5)  # no subscriber yet: the clock must not run
    stats = server.stats
    assert not stats["started"] and stats["trades_replayed"] == {"BTCUSDT": 0}
    first_time = 1_723_161_600_000
    assert httpx.get(server.rest_url + "/api/v3/time").json() == {"serverTime": first_time}
    t0 = time.monotonic()
    events = run(collect(server.ws_url + "/ws/btcusdt@trade", 2))
    elapsed = time.monotonic() - t0
    assert [e["t"] for e in events] == [100, 101]  # from the beginning of the recording
    assert 0.5 < elapsed < 5.0  # the second trade is 1 s after the first
    assert server.stats["started"]


def test_late_subscriber_joins_the_running_clock(replay, spaced_recording):
    server = replay(files=(spaced_recording,), speed=4)  # trades 0.25 s apart

    async def two_clients() -> tuple[list[int], list[int]]:
        async with connect(server.ws_url + "/ws/btcusdt@trade") as first:
            a = [orjson.loads(await first.recv())["t"] for _ in range(2)]
            await asyncio.sleep(0.6)
            async with connect(server.ws_url + "/ws/btcusdt@trade") as late:
                b = [orjson.loads(await late.recv())["t"]]
            return a, b

    a, b = run(two_clients())
    assert a == [100, 101]
    assert b[0] >= 103  # like a live exchange: no history on the stream


def test_speed_scales_time(replay, spaced_recording):
    # ten trades 1 s apart: 9 s at speed 1, 0.9 s at speed 10
    server = replay(files=(spaced_recording,), speed=10)
    t0 = time.monotonic()
    events = run(collect(server.ws_url + "/ws/btcusdt@trade", 10))
    elapsed = time.monotonic() - t0
    assert [e["t"] for e in events] == list(range(100, 110))
    assert 0.5 < elapsed < 6.0
    assert abs(server.now_ms() - events[-1]["T"]) < 5_000


def test_loop_shifts_ids_and_times(replay, spaced_recording):
    server = replay(files=(spaced_recording,), speed=0, loop=True)
    events = run(collect(server.ws_url + "/ws/btcusdt@trade", 35))
    ids = [e["t"] for e in events]
    times = [e["T"] for e in events]
    assert ids == list(range(100, 135))  # id span 10 per lap: contiguous forever
    assert all(b > a for a, b in itertools.pairwise(times))
    lap_ms = 9_000 + 1_000  # duration + 1 s
    assert times[10] - times[0] == lap_ms and times[20] - times[0] == 2 * lap_ms
    assert events[13]["E"] - events[3]["E"] == lap_ms
    assert events[13]["q"] == events[3]["q"]
    # prices carry on: lap 1 is lap 0 scaled by last/first (60009/60000), at the tick (1)
    assert events[13]["p"] == "60012.00000000" and events[10]["p"] == events[9]["p"]
    # aggregates keep dense ids across laps too
    aggs = run(collect(server.ws_url + "/ws/btcusdt@aggTrade", 25))
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + 25))


def test_without_loop_the_server_stays_up_after_the_end(replay, spaced_recording):
    server = replay(files=(spaced_recording,), speed=0)

    async def read_past_end() -> None:
        async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
            for _ in range(10):
                await ws.recv()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
            await ws.ping()

    run(read_past_end())
    rows = httpx.get(server.rest_url + "/api/v3/historicalTrades?symbol=BTCUSDT").json()
    assert [r["id"] for r in rows] == list(range(100, 110))


# ---- faults -----------------------------------------------------------------------------


def test_drop_connections_closes_without_close_frame(replay):
    server = replay(speed=1, refuse_for=0.8)

    async def dropped() -> None:
        async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
            await ws.recv()
            assert await asyncio.to_thread(server.drop_connections) == 1
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.recv()
            assert info.value.rcvd is None  # abrupt: no close frame
        # refused for a while after the drop: HTTP 503 on the handshake
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_url + "/ws/btcusdt@trade"):
                pass
        assert refused.value.response.status_code == 503
        await asyncio.sleep(1.0)
        async with connect(server.ws_url + "/ws/btcusdt@trade"):
            pass

    run(dropped())
    faults = server.stats["faults"]
    assert faults["drop"] == 1 and faults["refused"] == 1


def test_drop_every_drops_periodically(replay):
    server = replay(speed=1, drop_every=0.4)

    async def wait_drop() -> float:
        t0 = time.monotonic()
        async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
        return time.monotonic() - t0

    assert run(wait_drop()) < 5.0
    assert server.stats["faults"]["drop"] >= 1


def test_refuse_connections_trigger(replay):
    server = replay(speed=0)
    server.refuse_connections(0.6)
    with pytest.raises(InvalidStatus):
        run(collect(server.ws_url + "/ws/btcusdt@trade", 1))
    time.sleep(0.8)
    assert len(run(collect(server.ws_url + "/ws/btcusdt@trade", 1))) == 1


def test_corrupt_fraction_garbles_frames_but_counts_trades(replay, sample_events):
    server = replay(speed=0, corrupt_fraction=0.05, seed=7)
    n = len(sample_events["BTCUSDT"])
    parser = FrameParser()

    async def read() -> list[Trade]:
        out = []
        async with connect(server.ws_url + "/stream?streams=btcusdt@trade") as ws:
            for _ in range(n):
                event = parser.parse(await ws.recv())
                if isinstance(event, Trade):
                    out.append(event)
        return out

    trades = run(read())
    stats = server.stats
    corrupt = stats["faults"]["corrupt"]
    assert 0.02 * n < corrupt < 0.08 * n
    assert parser.malformed_total == corrupt
    assert len(trades) == n - corrupt
    assert stats["trades_replayed"]["BTCUSDT"] == n  # lost to the client, not to the exchange
    lost = set(range(BTC_FIRST, BTC_LAST + 1)) - {t.trade_id for t in trades}
    assert len(lost) == corrupt
    # ... and recoverable over REST, as the ingester must do
    some = min(lost)
    rows = httpx.get(server.rest_url + "/api/v3/historicalTrades",
                     params={"symbol": "BTCUSDT", "fromId": some, "limit": 1}).json()
    assert rows[0]["id"] == some


def test_shutdown_after_announces_then_closes(replay):
    server = replay(speed=1, shutdown_after=0.3, shutdown_grace=0.3)
    parser = FrameParser()

    async def read() -> tuple[bool, int | None]:
        seen = False
        async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
            try:
                while True:
                    if isinstance(parser.parse(await ws.recv()), ServerShutdown):
                        seen = True
            except ConnectionClosed as exc:
                return seen, exc.rcvd.code if exc.rcvd else None

    seen, code = run(read())
    assert seen and code == 1001
    assert server.stats["faults"]["shutdown"] == 1


def test_send_server_shutdown_trigger(replay):
    server = replay(speed=1, shutdown_grace=0.2)

    async def read() -> list[str]:
        kinds = []
        async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
            kinds.append(orjson.loads(await ws.recv())["e"])
            await asyncio.to_thread(server.send_server_shutdown)
            try:
                while True:
                    kinds.append(orjson.loads(await ws.recv())["e"])
            except ConnectionClosed:
                pass
        return kinds

    kinds = run(read())
    assert kinds[-1] == "serverShutdown"


# ---- API ---------------------------------------------------------------------------------


def test_async_context_manager_and_properties(sample_tape):
    async def main() -> None:
        async with ReplayServer(ReplayConfig(speed=0), tape=sample_tape) as server:
            assert server.port > 0
            assert server.ws_url == f"ws://127.0.0.1:{server.port}"
            assert server.rest_url == f"http://127.0.0.1:{server.port}"
            async with connect(server.ws_url + "/ws/btcusdt@trade") as ws:
                assert orjson.loads(await ws.recv())["t"] == BTC_FIRST
            assert server.stats["connections"] == 1

    run(main())


def test_run_in_thread(sample_tape):
    thread = ReplayThread(server=ReplayServer(ReplayConfig(speed=0), tape=sample_tape)).start()
    try:
        assert httpx.get(thread.rest_url + "/api/v3/ping").json() == {}
    finally:
        thread.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(thread.rest_url + "/api/v3/ping")


@pytest.mark.parametrize(
    "kwargs",
    [{"speed": -1}, {"corrupt_fraction": 1.5}, {"port": 70000}, {"files": ()},
     {"drop_every": float("nan")}, {"chunk_events": 0}],
)
def test_bad_config_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        ReplayConfig(**kwargs)


def test_bad_file_raises_feed_error(tmp_path):
    from quantify.exceptions import FeedError

    bad = tmp_path / "x.trades"
    bad.write_text("123 {\"stream\":\"btcusdt@depth\",\"data\":{}}\n")
    with pytest.raises(FeedError, match="no @trade frames"):
        ReplayThread(ReplayConfig(files=(bad,)))
    with pytest.raises(FeedError):
        ReplayThread(ReplayConfig(files=(tmp_path / "missing.gz",)))


def test_cli_runs_and_stops_cleanly(tmp_path, spaced_recording):
    import os
    import signal
    import subprocess
    import sys

    code = ("import argparse, sys\n"
            "from quantify.cli import replay\n"
            "p = argparse.ArgumentParser(prog='quantify'); sp = p.add_subparsers(dest='command')\n"
            "replay.register(sp)\n"
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "replay", str(spaced_recording), "--port", "0",
         "--speed", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("replay: ws ws://127.0.0.1:") and "rest http://127.0.0.1:" in line
        rest = line.split("rest ")[1].split()[0]
        assert httpx.get(rest + "/api/v3/ping").status_code == 200
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    # a bad file is one clear error before anything binds (the main CLI exits 2 on it)
    import argparse

    from quantify.cli import replay as replay_cli
    from quantify.exceptions import FeedError

    parser = argparse.ArgumentParser(prog="quantify")
    replay_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", str(tmp_path / "none.gz")])
    with pytest.raises(FeedError, match="none.gz"):
        args.func(args)


@pytest.mark.parametrize("target", ["//[&)&", "//[::1/api/v3/ping", "/ws//[x"])
def test_a_target_that_looks_like_a_network_location_is_answered_not_raised(sample_tape, target):
    # Found by fuzzing: urlsplit read "//[..." as an IPv6 host and raised ValueError.
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    class Conn:
        remote_address = ("127.0.0.1", 50000)

    server = ReplayServer(ReplayConfig(speed=0), tape=sample_tape)
    response = server._process_request(Conn(), Request(target, Headers()))  # type: ignore[arg-type]
    assert response is None or 400 <= response.status_code < 500
