"""Scale: N synthetic instruments, three ``quantify ingest`` workers, one S3 store (moto), one worker killed.

Runs :func:`scale_run.run_scale` (``tests/reliability/scale_run.py``, the
runner of ``tests/reliability/test_scale_workers.py``) against a fresh moto
S3 server on loopback and prints: instruments and streams, trades replayed
and stored, takeovers and the time to take over, worker CPU per message
received, RSS per worker, append latency (each worker's published p50/p99),
reader freshness (how far the last stored trade of a few instruments lags the
replay clock) and the time ``quantify status --json`` takes for the whole
universe, in process and as a command.

Usage::

    python benchmarks/scale.py --instruments 300 --seconds 120 --speed 1 [--book]

Needs ``moto[server]``. The numbers depend heavily on the machine's load
(moto is a single Python process serving the three workers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from reliability_helpers import MotoServer  # noqa: E402
from scale_run import run_scale  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--instruments", type=int, default=300)
    p.add_argument("--seconds", type=float, default=120.0, help="seconds of the recording per instrument")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--lease-ttl", type=float, default=15.0)
    p.add_argument("--book", action="store_true", help="also stream each worker's own instruments' books")
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quantify-scale-") as tmp:
        moto = MotoServer(Path(tmp) / "moto.log")
        moto.start()
        try:
            bucket = f"qf-scale-{int(time.time())}"
            moto.create_bucket(bucket)
            result = run_scale(moto.uri(bucket), Path(tmp), instruments=args.instruments, seconds=args.seconds,
                               speed=args.speed, lease_ttl=args.lease_ttl, timeout=args.timeout,
                               extra=("--book",) if args.book else ())
        finally:
            moto.stop()
    print(f"scale benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"{args.instruments} instruments, {args.seconds:g} s each, speed {args.speed:g}"
          f"{', books' if args.book else ''}")
    for line in result.lines():
        print("  " + line)
    if result.bad:
        print(f"  BAD: {dict(list(result.bad.items())[:5])}")
    return 1 if result.bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
