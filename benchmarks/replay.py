"""The replay server's rate at --speed 0, against a bare server writing the same frames.

Each trial starts a fresh server process and a fresh client process. The
client is the cheapest a WebSocket client can be: an asyncio protocol that
does the handshake, walks the headers of the first 100,000 frames for their
mean size and then only counts bytes (no payload is read), so the server is
the bound. Two servers, interleaved:

- ``replay``: ``quantify replay --speed 0 --loop`` as the benchmarks run it
  (``ReplayThread`` in a fresh process), the combined ``@trade`` or
  ``@aggTrade`` stream of BTCUSDT and ETHUSDT, laps rendered as they come;
- ``bare``: an asyncio server that answers the handshake and writes the
  replay's own first lap of those frames, pre-joined into chunks, in a loop
  (the transport's ceiling on this machine: no clock, no laps, no rendering).

Prints, per server and stream, the median frames/s the client saw and the
server's CPU microseconds per frame (from /proc), the ratio of the replay to
the bare server, and the replay's rate against the 700k msgs/s goal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

from _common import start_replay

GOAL = 700_000
STREAMS = {"trade": "btcusdt@trade/ethusdt@trade", "aggTrade": "btcusdt@aggTrade/ethusdt@aggTrade"}
#: Events per write, as the replay's default ``chunk_events``.
CHUNK = 500

BARE = """
import asyncio, base64, hashlib
from quantify.replay import ReplayConfig
from quantify.replay.tape import Tape
c = ReplayConfig()
frames = [f for f in Tape(c.files, usdm_files=c.usdm_files).frames(0, "{kind}", True) if f is not None]
chunks = [b"".join(frames[i:i + {chunk}]) for i in range(0, len(frames), {chunk})]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

async def serve(reader, writer):
    head = await reader.readuntil(b"\\r\\n\\r\\n")
    key = next(l.split(b":", 1)[1].strip() for l in head.split(b"\\r\\n") if l.lower().startswith(b"sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\\r\\n\\r\\n")
    try:
        while True:
            for chunk in chunks:
                writer.write(chunk)
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()
                await asyncio.sleep(0)
    except ConnectionError:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ws://127.0.0.1:{{port}} http://127.0.0.1:{{port}}", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class _Counter(asyncio.Protocol):
    """Handshake, then walk the frame headers of the first ``sample`` frames (their mean size) and
    from then on count bytes only: frames = bytes / mean size (payloads never read)."""

    def __init__(self, request: bytes, sample: int = 100_000) -> None:
        self.request = request
        self.sample = sample
        self.walked = self.walked_bytes = 0
        self.bytes = 0
        self._open = False
        self._rest = b""

    @property
    def frames(self) -> float:
        return self.bytes / (self.walked_bytes / self.walked) if self.walked else 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.walked >= self.sample:
            self.bytes += len(data)
            return
        buf = self._rest + data if self._rest else data
        pos = 0
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._rest = buf
                return
            self._open, pos = True, end + 4
        start, n = pos, len(buf)
        while pos + 2 <= n:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if pos + 4 > n:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if pos + 10 > n:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if pos + head + length > n:
                break
            pos += head + length
            self.walked += 1
        self.walked_bytes += pos - start
        self.bytes += pos - start
        self._rest = buf[pos:]
        if self.walked >= self.sample:
            self.bytes += len(self._rest)  # a partial frame: counted as bytes from now on
            self._rest = b""


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _count(url: str, server_pid: int, seconds: float) -> tuple[float, float]:
    u = urllib.parse.urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_connection(lambda: _Counter(request), u.hostname, u.port)
    while counter.walked < counter.sample:  # past the handshake, the first laps and the sample
        await asyncio.sleep(0.1)
    f0, t0, c0 = counter.frames, time.perf_counter(), _cpu(server_pid)
    await asyncio.sleep(seconds)
    f1, t1, c1 = counter.frames, time.perf_counter(), _cpu(server_pid)
    transport.close()
    return (f1 - f0) / (t1 - t0), 1e6 * (c1 - c0) / max(f1 - f0, 1)


def trial(server: str, kind: str, seconds: float) -> tuple[float, float]:
    """Frames/s and server CPU us per frame of one fresh server and one fresh client process."""
    if server == "replay":
        proc, ws_url, _ = start_replay()
    else:
        proc, ws_url, _ = start_replay(BARE.format(chunk=CHUNK, kind=kind))
    try:
        url = ws_url.rstrip("/") + "/stream?streams=" + STREAMS[kind]
        out = subprocess.run([sys.executable, __file__, "--client", url, str(proc.pid), str(seconds)],
                             capture_output=True, text=True, check=True)
        rate, cpu = out.stdout.split()
        return float(rate), float(cpu)
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3, help="interleaved trials per server and stream (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds measured per trial (default 5)")
    parser.add_argument("--client", nargs=3, metavar=("URL", "SERVER_PID", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, pid, seconds = args.client
        rate, cpu = asyncio.run(_count(url, int(pid), float(seconds)))
        print(rate, cpu)
        return
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.trials):
        for kind in STREAMS:
            for server in ("replay", "bare"):
                results.setdefault((server, kind), []).append(trial(server, kind, args.seconds))
    for kind in STREAMS:
        med = {s: (statistics.median(r for r, _ in results[(s, kind)]),
                   statistics.median(c for _, c in results[(s, kind)])) for s in ("replay", "bare")}
        for server, (rate, cpu) in med.items():
            print(f"@{kind:8s} {server:6s} {rate:>11,.0f} frames/s  server {cpu:.2f} us CPU/frame")
        print(f"@{kind:8s} replay/bare {med['replay'][0] / med['bare'][0]:.2f}   "
              f"replay/goal ({GOAL:,}) {med['replay'][0] / GOAL:.2f}")


if __name__ == "__main__":
    main()
