"""Fuzz the replay server's REST parameter handling: any path and query, a Binance answer.

Every request gets a status and a JSON body: 200 with data, or Binance's
error body (``{"code": -11xx, "msg": ...}``) with a 4xx status; never a 5xx
or an exception. Run: ``python tests/fuzz/fuzz_replay_rest.py [-atheris_runs=N]``.
"""

from __future__ import annotations

import logging
import sys

import atheris
import orjson

with atheris.instrument_imports(include=["quantify"]):
    from quantify.feed.recordings import sample_files
    from quantify.feed.replay_rest import RestApi
    from quantify.feed.tape import Tape

PATHS = ("ping", "time", "exchangeInfo", "aggTrades", "historicalTrades", "trades", "klines", "depth", "")
KEYS = ("symbol", "symbols", "fromId", "startTime", "endTime", "limit", "interval", "timeZone", "x")
TAPE = Tape(sample_files())


class _Clock:
    t = 1_000_000.0

    def __call__(self) -> float:
        self.t += 61.0  # a fresh weight window each call: no 429s hide the parameter handling
        return self.t


API = RestApi(TAPE, clock=_Clock())


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    path = "/api/v3/" + PATHS[fdp.ConsumeIntInRange(0, len(PATHS) - 1)]
    if fdp.ConsumeBool():
        query = fdp.ConsumeUnicodeNoSurrogates(200)
    else:
        parts = []
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
            value = fdp.PickValueInList([
                str(fdp.ConsumeInt(8)), "BTCUSDT", "ethusdt", "1m", "1M", "", "-1", "1e3",
                fdp.ConsumeUnicodeNoSurrogates(12)])
            parts.append(f"{key}={value}")
        query = "&".join(parts)
    pos = fdp.ConsumeIntInRange(0, TAPE.n)
    res = API.handle(path, query, "127.0.0.1", pos, TAPE.last_time)
    assert res.status < 500, (path, query, res.status, res.body[:200])
    body = orjson.loads(res.body)
    if res.status >= 400 and res.status != 404:
        assert isinstance(body, dict) and isinstance(body.get("code"), int) and "msg" in body, body


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # malformed input is logged by design; keep the output to crashes
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
