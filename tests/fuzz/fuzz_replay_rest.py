"""Fuzz the replay server's REST parameter handling: any path and query, a Binance answer.

Every request gets a status and a JSON body: 200 with data, or Binance's
error body (``{"code": -11xx, "msg": ...}``) with a 4xx status; never a 5xx
or an exception. Half the inputs call :meth:`RestApi.handle` with a query
built from Binance's parameter names; the other half send a raw request
target (any printable ASCII, as websockets admits it) through the server's
HTTP entry point, which also gates WebSocket handshakes.
Run: ``python tests/fuzz/fuzz_replay_rest.py [-atheris_runs=N]``.
"""

from __future__ import annotations

import logging
import sys

import atheris
import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request

with atheris.instrument_imports(include=["quantify"]):
    from quantify.replay.rest import RestApi
    from quantify.replay.server import ReplayConfig, ReplayServer
    from quantify.replay.tape import Tape
    from quantify.venues.binance.recordings import sample_files

PATHS = ("ping", "time", "exchangeInfo", "aggTrades", "historicalTrades", "trades", "klines", "depth", "")
KEYS = ("symbol", "symbols", "fromId", "startTime", "endTime", "limit", "interval", "timeZone", "x")
TAPE = Tape(sample_files())


class _Clock:
    t = 1_000_000.0

    def __call__(self) -> float:
        self.t += 61.0  # a fresh weight window each call: no 429s hide the parameter handling
        return self.t


class _Conn:
    """What the server's HTTP entry point reads of a connection."""

    remote_address = ("127.0.0.1", 50000)


API = RestApi(TAPE, clock=_Clock())
SERVER = ReplayServer(ReplayConfig(weight_limit=2**62), tape=TAPE)


def _check(status: int, body: bytes, what: object) -> None:
    assert status < 500, (what, status, body[:200])
    if status == 200 or (400 <= status < 500 and status != 404):
        decoded = orjson.loads(body)
        if status != 200:
            assert isinstance(decoded, dict) and isinstance(decoded.get("code"), int), decoded
            assert isinstance(decoded.get("msg"), str), decoded


def _query(fdp: atheris.FuzzedDataProvider) -> str:
    if fdp.ConsumeBool():
        return fdp.ConsumeUnicodeNoSurrogates(200)
    parts = []
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
        value = fdp.PickValueInList([
            str(fdp.ConsumeInt(8)), "BTCUSDT", "ethusdt", "1m", "1M", "", "-1", "1e3",
            '["BTCUSDT","ETHUSDT"]', fdp.ConsumeUnicodeNoSurrogates(12)])
        parts.append(f"{key}={value}")
    return "&".join(parts)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        path = "/api/v3/" + PATHS[fdp.ConsumeIntInRange(0, len(PATHS) - 1)]
        query = _query(fdp)
        res = API.handle(path, query, "127.0.0.1", fdp.ConsumeIntInRange(0, TAPE.n), TAPE.last_time)
        _check(res.status, res.body, (path, query))
        return
    prefix = fdp.PickValueInList(["/api/v3/", "/ws/", "/stream?streams=", "/", ""])
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    target = prefix + bytes(b for b in raw if 0x21 <= b <= 0x7E).decode("ascii")
    response = SERVER._process_request(_Conn(), Request(target, Headers()))  # type: ignore[arg-type]
    if response is not None:  # None: the WebSocket handshake goes ahead
        _check(response.status_code, response.body, target)


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
