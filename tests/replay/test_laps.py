"""A looping replay has no seams: each lap carries on from the last, with the recorded returns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from quantify.replay.rest import RestApi
from quantify.replay.tape import Tape

LAPS = 4
IP = "127.0.0.1"


class FakeClock:
    def __call__(self) -> float:
        return 1_000_000.0


def payload(frame: bytes) -> bytes:
    n = frame[1]
    return frame[2:] if n < 126 else frame[4:] if n == 126 else frame[10:]


def stream(tape: Tape, kind: str, laps: int = LAPS) -> dict[str, list[dict[str, Any]]]:
    """The events the server sends over ``laps`` laps, per symbol, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lap in range(laps):
        for frame in tape.frames(lap, kind, False):
            if frame is not None:
                event = orjson.loads(payload(frame))
                out.setdefault(event["s"], []).append(event)
    return out


@pytest.fixture(scope="module")
def trades(sample_tape: Tape) -> dict[str, list[dict[str, Any]]]:
    return stream(sample_tape, "trade")


def largest_move(prices: list[float]) -> float:
    """The largest one-trade move of a price series, as an absolute log return."""
    return float(np.max(np.abs(np.diff(np.log(prices)))))


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_no_lap_boundary_moves_more_than_the_recording_does(
    sample_events, trades, sample_tape, symbol
):
    recorded = [float(e["p"]) for e in sample_events[symbol]]
    biggest = largest_move(recorded)
    events = trades[symbol]
    n = len(recorded)
    assert len(events) == LAPS * n
    assert [e["t"] for e in events] == list(range(events[0]["t"], events[0]["t"] + LAPS * n))
    prices = [float(e["p"]) for e in events]
    for lap in range(1, LAPS):
        jump = abs(math.log(prices[lap * n] / prices[lap * n - 1]))
        assert jump <= biggest, f"lap {lap} starts {jump:.2e} away from lap {lap - 1}'s end"
    # the whole tape: no larger one-trade move than the recording's, up to the tick rounding
    sym = sample_tape.symbols[symbol]
    tick = sym.lap_prices.tick / 10**sym.price_scale
    assert largest_move(prices) <= biggest + 2 * tick / min(prices)
    assert prices[:n] == recorded  # lap 0 is the recording itself
    assert [e["p"] for e in events[:n]] == [e["p"] for e in sample_events[symbol]]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_returns_inside_a_lap_are_the_recorded_ones(sample_events, trades, sample_tape, symbol):
    recorded = np.array([float(e["p"]) for e in sample_events[symbol]])
    sym = sample_tape.symbols[symbol]
    tick = sym.lap_prices.tick / 10**sym.price_scale
    n = len(recorded)
    events = trades[symbol]
    for lap in range(1, LAPS):
        served = np.array([float(e["p"]) for e in events[lap * n:(lap + 1) * n]])
        # each price is off its exact scaled value by at most half a tick
        np.testing.assert_allclose(np.diff(np.log(served)), np.diff(np.log(recorded)),
                                   rtol=0, atol=1.01 * tick / served.min())
        # valid prices: on the tick, printed with the recording's decimals
        texts = [e["p"] for e in events[lap * n:(lap + 1) * n]]
        assert {len(t.partition(".")[2]) for t in texts} == {sym.price_scale}
        assert np.allclose(np.round(served / tick) * tick, served, rtol=0, atol=tick * 1e-6)
        # quantities, makers and times repeat the recording
        assert [e["q"] for e in events[lap * n:(lap + 1) * n]] == [e["q"] for e in sample_events[symbol]]


def rest(api: RestApi, tape: Tape, path: str, query: str, pos: int) -> Any:
    res = api.handle("/api/v3/" + path, query, IP, pos, tape.time_of(pos - 1))
    assert res.status == 200, res.body
    return orjson.loads(res.body)


def test_rest_serves_the_streamed_prices_on_lap_2(sample_tape, trades):
    api = RestApi(sample_tape, loop=True, clock=FakeClock())
    pos = 3 * sample_tape.n  # laps 0..2 replayed
    sym = sample_tape.symbols["BTCUSDT"]
    by_id = {e["t"]: e for e in trades["BTCUSDT"]}
    lap2_first = sym.ids[0] + 2 * sym.id_span
    for from_id in (lap2_first - 400, lap2_first + 5_000, lap2_first + sym.n - 600):
        rows = rest(api, sample_tape, "historicalTrades",
                    f"symbol=BTCUSDT&fromId={from_id}&limit=1000", pos)
        assert [r["id"] for r in rows] == list(range(from_id, from_id + len(rows)))
        assert len(rows) >= 600
        for r in rows:
            e = by_id[r["id"]]
            assert (r["price"], r["qty"], r["time"]) == (e["p"], e["q"], e["T"])
            assert float(r["quoteQty"]) == pytest.approx(float(e["p"]) * float(e["q"]), rel=1e-12)

    aggs = stream(sample_tape, "aggTrade", 3)["BTCUSDT"]
    lap2_aggs = [a for a in aggs if a["f"] >= lap2_first]
    rows = rest(api, sample_tape, "aggTrades",
                f"symbol=BTCUSDT&fromId={lap2_aggs[100]['a']}&limit=1000", pos)
    assert rows == [{k: v for k, v in a.items() if k not in ("e", "E", "s")}
                    for a in lap2_aggs[100:1100]]

    # 1m klines of lap 2: open/close/high/low are the streamed trades' prices
    lap2 = [e for e in trades["BTCUSDT"] if e["t"] >= lap2_first][: sym.n]
    start = lap2[0]["T"] // 60_000 * 60_000 + 60_000
    bars = rest(api, sample_tape, "klines",
                f"symbol=BTCUSDT&interval=1m&startTime={start}&limit=5", pos)
    assert len(bars) == 5
    for bar in bars:
        inside = [e for e in lap2 if bar[0] <= e["T"] < bar[0] + 60_000]
        assert inside, bar
        ps = [float(e["p"]) for e in inside]
        assert (bar[1], bar[4]) == (inside[0]["p"], inside[-1]["p"])
        assert (float(bar[2]), float(bar[3])) == (max(ps), min(ps))
        assert bar[8] == len(inside)
