"""The replay server's REST side: endpoints, Binance's rules and errors, weights, klines."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.model.timeframes import KLINE_INTERVALS
from quantify.replay.rest import RestApi, kline_open

IP = "10.0.0.1"


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def get(api: RestApi, path: str, query: str = "", pos: int | None = None,
        now_ms: int | None = None) -> tuple[int, Any, dict[str, str]]:
    tape = api.tape
    res = api.handle(
        "/api/v3/" + path, query, IP, tape.n if pos is None else pos,
        tape.last_time if now_ms is None else now_ms,
    )
    return res.status, orjson.loads(res.body), res.headers


@pytest.fixture
def api(sample_tape):
    return RestApi(sample_tape, clock=FakeClock())


# ---- simple endpoints and weights --------------------------------------------------------


def test_ping_time_exchange_info_and_weights(api, sample_tape):
    assert get(api, "ping")[:2] == (200, {})
    _, body, headers = get(api, "time", now_ms=1_723_161_300_123)
    assert body == {"serverTime": 1_723_161_300_123} and headers["X-MBX-USED-WEIGHT-1M"] == "2"
    _, info, headers = get(api, "exchangeInfo")
    assert headers["X-MBX-USED-WEIGHT-1M"] == "22"
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert set(symbols) == {"BTCUSDT", "ETHUSDT"}
    btc = symbols["BTCUSDT"]
    assert (btc["status"], btc["baseAsset"], btc["quoteAsset"]) == ("TRADING", "BTC", "USDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    _, one, _ = get(api, "exchangeInfo", "symbol=ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    _, listed, _ = get(api, "exchangeInfo", 'symbols=["ETHUSDT","BTCUSDT"]')
    assert [s["symbol"] for s in listed["symbols"]] == ["ETHUSDT", "BTCUSDT"]


def test_weight_budget_gives_429_with_retry_after_then_resets(sample_tape):
    clock = FakeClock(600.0)
    api = RestApi(sample_tape, weight_limit=100, clock=clock)
    for _ in range(4):
        assert get(api, "historicalTrades", "symbol=BTCUSDT&limit=1")[0] == 200  # 4 x 25
    status, body, headers = get(api, "ping")
    assert status == 429 and body["code"] == -1003 and body["msg"].startswith("Too many requests")
    assert 1 <= int(headers["Retry-After"]) <= 60 and headers["X-MBX-USED-WEIGHT-1M"] == "100"
    # another IP has its own budget
    assert api.handle("/api/v3/ping", "", "10.9.9.9", 0, 0).status == 200
    clock.t += 60
    status, _, headers = get(api, "ping")
    assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "1"


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("aggTrades", "", -1102),
        ("aggTrades", "symbol=", -1102),
        ("aggTrades", "symbol=NOPEUSDT", -1121),
        ("aggTrades", "symbol=btcusdt", -1100),
        ("aggTrades", "symbol=BTCUSDT&limit=abc", -1100),
        ("aggTrades", "symbol=BTCUSDT&limit=-5", -1100),
        ("aggTrades", "symbol=BTCUSDT&limit=0", -1130),
        ("aggTrades", "symbol=BTCUSDT&fromId=1.5", -1100),
        ("aggTrades", "symbol=BTCUSDT&startTime=0&endTime=3600001", -1127),
        ("aggTrades", "symbol=BTCUSDT&colour=red", -1104),
        ("aggTrades", "symbol=BTCUSDT&symbol=ETHUSDT", -1101),
        ("historicalTrades", "symbol=BTCUSDT&fromId=99999999999999999999", -1100),
        ("trades", "symbol=XRPUSDT", -1121),
        ("klines", "symbol=BTCUSDT", -1102),
        ("klines", "symbol=BTCUSDT&interval=2m", -1120),
        ("klines", "symbol=BTCUSDT&interval=1m&startTime=yesterday", -1100),
        ("exchangeInfo", "symbol=NOPE", -1121),
        ("exchangeInfo", "symbols=BTCUSDT", -1100),
    ],
)
def test_binance_error_bodies(api, path, query, code):
    status, body, headers = get(api, path, query)
    assert status == 400 and body["code"] == code and body["msg"]
    assert "X-MBX-USED-WEIGHT-1M" in headers


def test_unknown_path_is_404(api):
    res = api.handle("/api/v3/avgPrice", "symbol=BTCUSDT", IP, 0, 0)
    assert res.status == 404 and "X-MBX-USED-WEIGHT-1M" in res.headers


@settings(max_examples=150, deadline=None)
@given(
    path=st.sampled_from(["ping", "time", "exchangeInfo", "aggTrades", "historicalTrades",
                          "trades", "klines", "nope"]),
    query=st.one_of(
        st.text(max_size=80),
        st.lists(
            st.tuples(
                st.sampled_from(["symbol", "limit", "fromId", "startTime", "endTime",
                                 "interval", "symbols", "x"]),
                st.one_of(st.text(max_size=12), st.integers(-2**70, 2**70).map(str),
                          st.sampled_from(["BTCUSDT", "1m", "1M", "1w", "0", "1000"])),
            ),
            max_size=5,
        ).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv)),
    ),
    pos=st.integers(0, 200_000),
)
def test_fuzzed_parameters_never_crash(sample_tape, path, query, pos):
    api = RestApi(sample_tape, loop=True, clock=FakeClock())
    res = api.handle("/api/v3/" + path, query, IP, pos, sample_tape.time_of(max(pos - 1, 0)))
    assert res.status in (200, 400, 404)
    body = orjson.loads(res.body)
    if res.status == 400:
        assert isinstance(body["code"], int) and body["code"] < 0


# ---- trades ----------------------------------------------------------------------------


def test_historical_trades_and_recent_trades(api, sample_events):
    btc = sample_events["BTCUSDT"]
    _, rows, _ = get(api, "historicalTrades", "symbol=BTCUSDT")
    assert len(rows) == 500 and rows[-1]["id"] == btc[-1]["t"]
    _, rows, _ = get(api, "historicalTrades", f"symbol=BTCUSDT&fromId={btc[10]['t']}&limit=3")
    assert [r["id"] for r in rows] == [e["t"] for e in btc[10:13]]
    row, event = rows[0], btc[10]
    assert set(row) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert (row["price"], row["qty"], row["time"], row["isBuyerMaker"]) == \
        (event["p"], event["q"], event["T"], event["m"])
    assert Decimal(row["quoteQty"]) == Decimal(event["p"]) * Decimal(event["q"])
    _, rows, _ = get(api, "historicalTrades", "symbol=BTCUSDT&limit=5000")
    assert len(rows) == 1000  # clamped to Binance's maximum
    _, recent, _ = get(api, "trades", "symbol=ETHUSDT&limit=2")
    assert [r["id"] for r in recent] == [e["t"] for e in sample_events["ETHUSDT"][-2:]]


def test_agg_trades_pages_cover_every_trade(api, sample_events):
    btc = {e["t"]: e for e in sample_events["BTCUSDT"]}
    first = min(btc)
    _, rows, _ = get(api, "aggTrades", "symbol=BTCUSDT&startTime=0&endTime=3600000")
    assert rows == []
    _, rows, _ = get(api, "aggTrades", f"symbol=BTCUSDT&startTime={btc[first]['T']}&limit=1")
    assert rows[0]["f"] == first and set(rows[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    covered, next_id, pages = [], rows[0]["a"], 0
    while True:
        _, page, _ = get(api, "aggTrades", f"symbol=BTCUSDT&fromId={next_id}&limit=1000")
        if not page:
            break
        pages += 1
        for agg in page:
            assert agg["a"] == next_id
            next_id += 1
            members = [btc[t] for t in range(agg["f"], agg["l"] + 1)]
            assert Decimal(agg["q"]) == sum(Decimal(m["q"]) for m in members)
            assert {(m["T"], m["p"], m["m"]) for m in members} == {(agg["T"], agg["p"], agg["m"])}
            covered.extend(range(agg["f"], agg["l"] + 1))
    assert covered == sorted(btc) and pages > 1
    # a time window: every aggregate inside it, none outside
    t0 = btc[first]["T"] + 60_000
    _, window, _ = get(api, "aggTrades", f"symbol=BTCUSDT&startTime={t0}&endTime={t0 + 999}")
    expected = {e["T"] for e in btc.values() if t0 <= e["T"] <= t0 + 999}
    assert {a["T"] for a in window} == expected
    _, recent, _ = get(api, "aggTrades", "symbol=BTCUSDT")
    assert len(recent) == 500 and recent[-1]["l"] == max(btc)


def test_rest_serves_only_replayed_trades(api, sample_tape, sample_events):
    assert get(api, "historicalTrades", "symbol=BTCUSDT", pos=0)[1] == []
    assert get(api, "aggTrades", "symbol=BTCUSDT", pos=0)[1] == []
    assert get(api, "klines", "symbol=BTCUSDT&interval=1m", pos=0)[1] == []
    pos = 5000
    cutoff = sample_tape.time_of(pos - 1)
    replayed = [e for e in sample_events["BTCUSDT"] if e["T"] <= cutoff]
    n = sample_tape.replayed_trades(sample_tape.symbols["BTCUSDT"], pos)
    assert abs(len(replayed) - n) <= 5  # trades sharing the cutoff's millisecond
    _, rows, _ = get(api, "historicalTrades", "symbol=BTCUSDT&limit=1000", pos=pos)
    assert rows[-1]["id"] == sample_events["BTCUSDT"][n - 1]["t"]
    _, rows, _ = get(api, "historicalTrades", f"symbol=BTCUSDT&fromId={rows[-1]['id']}", pos=pos)
    assert len(rows) == 1  # nothing beyond what was replayed
    _, aggs, _ = get(api, "aggTrades", "symbol=BTCUSDT&limit=1000", pos=pos)
    assert aggs[-1]["l"] <= sample_events["BTCUSDT"][n - 1]["t"]
    _, bars, _ = get(api, "klines", "symbol=BTCUSDT&interval=1h", pos=pos, now_ms=cutoff)
    assert sum(row[8] for row in bars) == n


# ---- klines ------------------------------------------------------------------------------


def reference_klines(events: list[dict[str, Any]], step: int) -> dict[int, dict[str, Any]]:
    """Binance's klines computed the obvious way, with Decimal."""
    bars: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        bars[e["T"] // step * step].append(e)
    out = {}
    for t, trades in bars.items():
        prices = [Decimal(e["p"]) for e in trades]
        out[t] = {
            "open": trades[0]["p"], "high": max(prices), "low": min(prices),
            "close": trades[-1]["p"],
            "volume": sum(Decimal(e["q"]) for e in trades),
            "quote": sum(Decimal(e["p"]) * Decimal(e["q"]) for e in trades),
            "n": len(trades),
            "buy": sum(Decimal(e["q"]) for e in trades if not e["m"]),
            "buy_quote": sum(Decimal(e["p"]) * Decimal(e["q"]) for e in trades if not e["m"]),
        }
    return out


@pytest.mark.parametrize(("interval", "step"), [("1m", 60_000), ("5m", 300_000), ("1s", 1000)])
def test_klines_equal_an_independent_decimal_computation(api, sample_events, interval, step):
    events = sample_events["BTCUSDT"]
    ref = reference_klines(events, step)
    first, last = min(ref), max(ref)
    rows = []
    start = first
    while start <= last:
        _, page, _ = get(api, "klines", f"symbol=BTCUSDT&interval={interval}&startTime={start}"
                         f"&endTime={last}&limit=1000")
        rows += page
        start = page[-1][0] + step
    assert [r[0] for r in rows] == list(range(first, last + 1, step))
    prev_close = None
    for row in rows:
        open_t, o, h, lo, c, v, close_t, qv, n, tbv, tbqv, ignore = row
        assert close_t == open_t + step - 1 and ignore == "0"
        bar = ref.get(open_t)
        if bar is None:  # Binance's flat bar: previous close, no volume
            assert o == h == lo == c == prev_close
            assert Decimal(v) == Decimal(qv) == 0 and n == 0
        else:
            assert (o, Decimal(h), Decimal(lo), c) == \
                (bar["open"], bar["high"], bar["low"], bar["close"])
            assert (Decimal(v), Decimal(qv), n, Decimal(tbv), Decimal(tbqv)) == \
                (bar["volume"], bar["quote"], bar["n"], bar["buy"], bar["buy_quote"])
            assert len(v.split(".")[1]) == 8 and len(qv.split(".")[1]) >= 8
        prev_close = c
    if interval == "1s":
        assert any(row[8] == 0 for row in rows)  # the sample has quiet seconds


def test_klines_window_and_limit_rules(api, sample_tape):
    first = sample_tape.symbols["BTCUSDT"].times[0]
    bar0 = kline_open(first, "1m")
    _, rows, _ = get(api, "klines", "symbol=BTCUSDT&interval=1m&limit=3")
    assert len(rows) == 3 and rows[-1][0] == kline_open(sample_tape.last_time, "1m")
    _, rows, _ = get(api, "klines", f"symbol=BTCUSDT&interval=1m&startTime={bar0 + 1}&limit=2")
    assert [r[0] for r in rows] == [bar0 + 60_000, bar0 + 120_000]  # open >= startTime
    _, rows, _ = get(api, "klines", f"symbol=BTCUSDT&interval=1m&endTime={bar0 + 60_000}")
    assert [r[0] for r in rows] == [bar0, bar0 + 60_000]
    # the clock runs on after the last trade: flat bars up to the clock's bar
    later = sample_tape.last_time + 5 * 60_000
    _, rows, _ = get(api, "klines", "symbol=BTCUSDT&interval=1m&limit=1", now_ms=later)
    assert rows[0][0] == kline_open(later, "1m") and rows[0][8] == 0
    for interval in KLINE_INTERVALS:
        status, rows, _ = get(api, "klines", f"symbol=ETHUSDT&interval={interval}&limit=1000")
        assert status == 200 and rows[-1][0] == kline_open(sample_tape.last_time, interval)
        assert rows[0][0] == kline_open(first, interval)  # no bar before the first trade
    assert kline_open(first, "1w") == 1722816000000  # Monday 2024-08-05 00:00 UTC
    assert kline_open(first, "1M") == 1722470400000  # 2024-08-01 00:00 UTC


# ---- over HTTP ---------------------------------------------------------------------------


def test_http_headers_force_429_and_404(replay):
    server = replay(speed=0)
    res = httpx.get(server.rest_url + "/api/v3/ping")
    assert res.status_code == 200 and res.headers["x-mbx-used-weight-1m"] == "1"
    assert res.headers["content-type"].startswith("application/json")
    server.force_429(2)
    for _ in range(2):
        res = httpx.get(server.rest_url + "/api/v3/time")
        assert res.status_code == 429 and res.headers["retry-after"] == "1"
        assert res.json()["code"] == -1003
    assert httpx.get(server.rest_url + "/api/v3/time").status_code == 200
    res = httpx.get(server.rest_url + "/nothing/here")
    assert res.status_code == 404 and "x-mbx-used-weight-1m" in res.headers
    assert server.stats["faults"]["429"] == 2


def test_force_429_config(replay):
    server = replay(speed=0, force_429=1)
    assert httpx.get(server.rest_url + "/api/v3/ping").status_code == 429
    assert httpx.get(server.rest_url + "/api/v3/ping").status_code == 200


def test_rest_follows_a_looping_replay(replay, spaced_recording):
    server = replay(files=(spaced_recording,), speed=0, loop=True)

    async def read(n: int) -> None:
        async with websockets.connect(server.ws_url + "/ws/btcusdt@trade", max_queue=None,
                                      close_timeout=2) as ws:
            for _ in range(n):
                await ws.recv()

    asyncio.run(asyncio.wait_for(read(25), 20))
    rows = httpx.get(server.rest_url + "/api/v3/historicalTrades",
                     params={"symbol": "BTCUSDT", "fromId": 100, "limit": 25}).json()
    assert [r["id"] for r in rows] == list(range(100, 125))
    assert rows[10]["time"] - rows[0]["time"] == 10_000
    aggs = httpx.get(server.rest_url + "/api/v3/aggTrades",
                     params={"symbol": "BTCUSDT", "limit": 1000}).json()
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))


def test_exchange_info_refuses_a_list_with_an_unknown_symbol_and_can_leave_permission_sets_out(api):
    status, body, _ = get(api, "exchangeInfo", 'symbols=["BTCUSDT","BTCUSDX"]')
    assert (status, body["code"]) == (400, -1121)  # Binance does not say which one
    _, full, _ = get(api, "exchangeInfo", "showPermissionSets=false")
    assert [s["symbol"] for s in full["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert all("permissionSets" not in s for s in full["symbols"])
    _, default, _ = get(api, "exchangeInfo")
    assert all(s["permissionSets"] == [["SPOT"]] for s in default["symbols"])
