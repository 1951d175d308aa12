"""The pair scan and the backtest sweep on a Dask cluster whose workers read closes from the S3 store.

A ``distributed.LocalCluster`` of two worker processes on 127.0.0.1 and the
moto S3 server: the bundled 2018 universe (ten coins, 5-minute bars) is stored
as klines (the scans read seven of them over a week), every worker loads it from the store itself (``qf.StoreCloses``),
and the results equal the local process pool's. One test kills a worker while
it holds a task: the task runs again elsewhere and every pair is counted once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import quantify as qf
from quantify.analytics.parallel import limit_blas_threads
from quantify.cluster import StoreCloses, _load
from quantify.datasets import CANDLES_2018_COINS, candles_2018_ohlcv
from quantify.store import open_store
from quantify.store.merge import merge_klines

distributed = pytest.importorskip("distributed", reason="needs dask's distributed (pip install 'quantify[dask]')")
cloudpickle = pytest.importorskip("cloudpickle")

SYMBOLS = [f"{coin}BTC" for coin in CANDLES_2018_COINS]
# what the scans read: seven coins (21 pairs), the universe's first week
SCANNED = SYMBOLS[:7]
WEEK = {"start": "2018-01-11", "end": "2018-01-18"}
GRID = {"entry": [1.5, 2.0, 2.5], "exit": [0.0, 0.5], "window": [60, 120]}


@pytest.fixture(scope="module")
def cluster_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    client.run(limit_blas_threads)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def universe_uri(moto_server) -> str:
    bucket = f"qf-cluster-{os.getpid()}"
    moto_server.create_bucket(bucket)
    uri = moto_server.uri(bucket)
    store = open_store(uri, create=True)
    for coin, symbol in zip(CANDLES_2018_COINS, SYMBOLS, strict=True):
        merge_klines(store, f"{symbol}_5m", candles_2018_ohlcv(coin))
    return uri


def _worker_loads(client) -> dict[str, int]:
    return client.run(lambda: _load.cache_info().currsize)


@pytest.fixture(scope="module")
def local_scan(universe_uri) -> pd.DataFrame:
    """The scan on the local process pool, of the same closes read in this process."""
    return qf.scan_pairs(StoreCloses(universe_uri, SCANNED, "5m", klines=True, **WEEK).load(), fdr=0.05,
                         progress=False)


def test_scan_on_the_cluster_equals_the_local_pool(cluster_client, universe_uri, local_scan, capsys):
    closes = StoreCloses(universe_uri, SCANNED, "5m", klines=True, **WEEK)
    on_cluster = qf.scan_pairs(closes, fdr=0.05, executor=cluster_client.get_executor(), chunksize=3)
    assert_frame_equal(on_cluster, local_scan)
    assert len(on_cluster) == 21 and 1900 < len(closes.load()) <= 7 * 288  # bars all seven have
    assert "21/21" in capsys.readouterr().err  # the progress bar reached every pair
    # the workers read the closes from the store (each once), not from the tasks
    assert sum(_worker_loads(cluster_client).values()) >= 1
    assert "secret=" not in repr(closes)


def test_sweep_on_the_cluster_equals_the_local_pool(cluster_client, universe_uri):
    prices = StoreCloses(universe_uri, SCANNED, "5m", klines=True, log=False, **WEEK)
    y, x = "LTCBTC", "ETHBTC"
    local = qf.sweep_backtest(prices.load(), y, x, GRID, cost_bps=2.0, progress=False)
    on_cluster = qf.sweep_backtest(prices, y, x, GRID, cost_bps=2.0, progress=False,
                                   executor=cluster_client.get_executor(), chunksize=2)
    assert_frame_equal(on_cluster, local)
    assert len(local) == 12 and local["n_trades"].gt(0).all()
    # one backtest of the grid, run directly, is its row
    one = qf.backtest_pairs(prices.load()[y], prices.load()[x], entry=2.0, exit=0.5, window=120, cost_bps=2.0)
    row = local[(local.entry == 2.0) & (local.exit == 0.5) & (local.window == 120)].iloc[0]
    assert row.total_return == one.total_return and row.sharpe == one.sharpe


@dataclass(frozen=True, repr=False)
class _GatedCloses(StoreCloses):
    """Closes whose first load in a worker waits for the test's go (so a kill lands mid-task)."""

    gate: str = ""
    driver: int = 0

    def load(self) -> pd.DataFrame:
        gate = Path(self.gate)
        if os.getpid() != self.driver:
            (gate / f"blocked-{os.getpid()}").touch()
            deadline = time.monotonic() + 120
            while not (gate / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().load()


def test_a_worker_killed_mid_scan_loses_no_pair_and_counts_none_twice(cluster_client, universe_uri, local_scan,
                                                                      tmp_path):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    closes = _GatedCloses(universe_uri, SCANNED, "5m", klines=True, **WEEK, gate=str(tmp_path), driver=os.getpid())
    pool = cluster_client.get_executor()
    address_of = {pid: addr for addr, pid in cluster_client.run(os.getpid).items()}

    with ThreadPoolExecutor(1) as driver:
        scan = driver.submit(qf.scan_pairs, closes, fdr=0.05, executor=pool, chunksize=4, progress=False)
        try:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob("blocked-*")) and time.monotonic() < deadline:
                time.sleep(0.05)
            blocked = sorted(tmp_path.glob("blocked-*"))
            assert blocked, "no worker started a task"
            victim = int(blocked[0].name.split("-")[1])
            os.kill(victim, signal.SIGKILL)
            # the scheduler drops the lost worker (and reschedules its task) before the others go on
            deadline = time.monotonic() + 30
            while address_of[victim] in cluster_client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            (tmp_path / "go").touch()
        result = scan.result(timeout=120)
    assert address_of[victim] not in cluster_client.scheduler_info()["workers"]
    assert_frame_equal(result, local_scan)
    assert not result.duplicated(["y", "x"]).any() and len(result) == 21
    print(f"killed worker pid {victim} mid-scan; {len(result)} pairs, each once, equal to the local pool")
