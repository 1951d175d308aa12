"""Fixtures for reliability tests: a local S3 server (moto on 127.0.0.1), one bucket per test.

Tests that need it are skipped when moto is not installed (``pip install "moto[server]"``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from arcticdb.config import get_config_int, set_config_int
from reliability_helpers import MotoServer

_bucket_counter = itertools.count()


@pytest.fixture(autouse=True)
def _default_storage_lock_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Workers on S3, and this process, keep ArcticDB's default lock wait (a rival's write may take a while to show)."""
    monkeypatch.delenv("ARCTICDB_StorageLock_WaitMs_int", raising=False)
    before = get_config_int("StorageLock.WaitMs")
    set_config_int("StorageLock.WaitMs", 1000)
    yield
    if before is not None:
        set_config_int("StorageLock.WaitMs", before)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    pytest.importorskip("moto", reason='needs moto[server] (pip install "moto[server]")')
    pytest.importorskip("boto3")
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_uri(moto_server: MotoServer) -> str:
    """URI of a fresh, empty bucket on the session's S3 server."""
    bucket = f"qf-{os.getpid()}-{next(_bucket_counter)}"
    moto_server.create_bucket(bucket)
    return moto_server.uri(bucket)
