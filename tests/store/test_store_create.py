"""Reading never creates a store: ``open_store(uri)`` needs one; ``create=True`` (writers) makes it.

S3 cases run against moto on 127.0.0.1 (skipped without ``moto[server]``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import quantify as qf
from quantify.cli import main
from quantify.exceptions import StoreError, StoreNotFoundError
from quantify.store import open_store
from quantify.venues.binance.recordings import read_trades, sample_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return read_trades(sample_files()[0])["BTCUSDT"]


def test_a_missing_lmdb_store_is_an_error_naming_the_path_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "arctic"
    with pytest.raises(StoreNotFoundError, match=f"no store at {path}"):
        qf.open_store(f"lmdb://{path}")
    assert not path.exists() and not path.parent.exists()
    assert isinstance(StoreNotFoundError("x"), qf.QuantifyError)


def test_an_existing_directory_without_a_store_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match=str(tmp_path)):
        open_store(f"lmdb://{tmp_path}")
    assert list(tmp_path.iterdir()) == []  # nothing written into it


def test_create_makes_the_store_and_readers_then_open_it(tmp_path: Path, btc: pd.DataFrame) -> None:
    uri = f"lmdb://{tmp_path / 'new'}"
    writer = open_store(uri, create=True)
    writer.append_ticks({"BTCUSDT": btc.iloc[:100]})
    reader = open_store(uri)
    assert reader.symbols() == ["BTCUSDT"] and len(reader.ticks("BTCUSDT")) == 100


def test_memory_stores_always_open() -> None:
    assert open_store("mem://create-test").symbols() == []


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, no QUANTIFY_* variables, working in HOME."""
    for key in [k for k in os.environ if k.startswith("QUANTIFY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["status"], ["status", "--json"], ["alerts", "list"], ["alerts", "history", "--start", "-1d"],
    ["export", "BTCUSDT", "-o", "out.csv"], ["dashboard", "pairs_monitor", "--no-browser"],
], ids=" ".join)
def test_read_only_commands_refuse_a_missing_store(user: Path, argv: list[str], capsys) -> None:
    missing = user / "nonexistent" / "x"
    assert main([*argv, "--store", f"lmdb://{missing}"]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and f"no store at {missing}" in lines[0], out.err
    assert out.out == ""
    assert not missing.parent.exists() and not (user / "out.csv").exists()


def test_the_default_store_is_not_created_by_reading(user: Path, capsys) -> None:
    assert main(["status"]) == 2
    assert f"no store at {user}/.quantify/arctic" in capsys.readouterr().err
    assert not (user / ".quantify").exists()


def test_the_command_line_says_it_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    """``quantify status --store lmdb:///nonexistent/x``, as a user types it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTIFY_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    missing = tmp_path / "nonexistent" / "x"
    proc = subprocess.run([sys.executable, "-m", "quantify", "status", "--store", f"lmdb://{missing}"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        f"quantify status: error: no store at {missing}: nothing was ever written there (check the path; "
        f"a writer such as 'quantify ingest --store lmdb://{missing}' or 'quantify load FILE --store "
        f"lmdb://{missing}' creates it)"
    )
    assert not missing.parent.exists()


# -- S3 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, object]]:
    pytest.importorskip("moto", reason='needs moto[server] (pip install "moto[server]")')
    boto3 = pytest.importorskip("boto3")
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="key",
                              aws_secret_access_key="secret", region_name="us-east-1")
        yield f"port={port}&access=key&secret=secret", client
    finally:
        proc.terminate()
        proc.wait(10)


def test_s3_a_missing_bucket_is_an_error_whether_reading_or_creating(moto) -> None:
    query, client = moto
    uri = f"s3://127.0.0.1:qf-missing-bucket?{query}"
    with pytest.raises(StoreNotFoundError, match="qf-missing-bucket.*bucket is missing"):
        open_store(uri)
    with pytest.raises(StoreError, match="never creates a bucket") as info:
        open_store(uri, create=True)
    assert "access=key" not in str(info.value) and "secret=secret" not in str(info.value)
    assert "qf-missing-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_s3_reading_an_empty_bucket_writes_nothing_creating_makes_the_store(moto, btc: pd.DataFrame) -> None:
    query, client = moto
    client.create_bucket(Bucket="qf-empty-bucket")
    uri = f"s3://127.0.0.1:qf-empty-bucket?{query}"
    with pytest.raises(StoreNotFoundError, match="qf-empty-bucket"):
        open_store(uri)
    assert client.list_objects_v2(Bucket="qf-empty-bucket").get("KeyCount", 0) == 0
    open_store(uri, create=True).append_ticks({"BTCUSDT": btc.iloc[:10]})
    assert open_store(uri).symbols() == ["BTCUSDT"]
