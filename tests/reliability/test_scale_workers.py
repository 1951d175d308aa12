"""Scale: a synthetic universe ingested by three ``quantify ingest`` workers on one S3 store (moto).

Each worker owns a third of the instruments through the store's leases and
stands by for the rest; one is killed mid-stream (SIGKILL) and the others take
its instruments over once its lease expires, backfilling the hole over REST.
Every instrument's stored ids must then be contiguous, without a duplicate,
and end at the replay's last id (:mod:`scale_run`). The default form runs 30
instruments (80 s of trades at speed 4); the full one, 300 instruments, is slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scale_run import run_scale


def _check(result, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join("scale: " + line for line in result.lines()))
    assert not result.bad, result.bad
    assert result.killed_owned > 0 and result.takeover_s is not None
    assert result.takeovers >= result.killed_owned
    assert result.caught_up_s is not None
    assert result.trades_stored > 0


def test_thirty_instruments_three_workers_one_killed(s3_uri: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    result = run_scale(s3_uri, tmp_path, instruments=30, seconds=80, speed=4, lease_ttl=6)
    _check(result, capsys)


@pytest.mark.slow
def test_three_hundred_instruments_three_workers_one_killed(s3_uri: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The journey's size: 300 instruments, two minutes of trades each, in real time (benchmarks/scale.py)."""
    result = run_scale(s3_uri, tmp_path, instruments=300, seconds=120, speed=1, lease_ttl=15, timeout=600)
    _check(result, capsys)
