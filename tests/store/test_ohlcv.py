"""Store.ohlcv: the aggregate path, the ticks path and resample give identical candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from arcticdb import QueryBuilder

from quantify.analytics import resample
from quantify.exceptions import UnknownSymbol
from quantify.store import Store, open_store
from quantify.store.candles import CANDLES_1M, CandleAggregator
from quantify.venues.binance.recordings import read_trades, sample_files

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
TIMEFRAMES = ["1s", "10s", "90s", "1m", "3m", "5m", "7min", "15m", "1h", "1d"]


def load(paths: list[Path]) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        for sym, frame in read_trades(path).items():
            parts.setdefault(sym, []).append(frame)
    return {sym: pd.concat(frames) for sym, frames in parts.items()}


def build(uri: str, frames: dict[str, pd.DataFrame], aggregated: float) -> Store:
    """Ticks appended in 7 batches; the aggregator sees the first ``aggregated`` share of them."""
    store = open_store(uri, create=True)
    agg = CandleAggregator(store, write_interval=0)
    for k in range(7):
        batch = {s: f.iloc[k * len(f) // 7 : (k + 1) * len(f) // 7] for s, f in frames.items()}
        store.append_ticks(batch)
        if (k + 1) / 7 <= aggregated:
            agg(batch)
    return store


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return load(sample_files())


@pytest.fixture(scope="module", params=[1.0, 0.5, 0.0], ids=["aggregated", "half", "ticks-only"])
def store(request: pytest.FixtureRequest, sample: dict, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build(f"lmdb://{tmp_path_factory.mktemp('ohlcv') / 'store'}", sample, request.param)


def expected(store: Store, sym: str, tf: str, start: object = None, end: object = None, fill: bool = True) -> pd.DataFrame:
    return resample(store.ticks(sym), tf, start=start, end=end, fill=fill)


def check(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_freq=False)  # exact: check_exact for floats below
    for col in got.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_whole_history_equals_resample(store: Store, tf: str) -> None:
    for sym in ("BTCUSDT", "ETHUSDT"):
        check(store.ohlcv(sym, tf), expected(store, sym, tf))
        check(store.ohlcv(sym, tf, fill=False), expected(store, sym, tf, fill=False))


@pytest.mark.parametrize("tf", ["1s", "1m", "3m", "5m", "90s"])
@pytest.mark.parametrize(
    "start, end",
    [
        ("2024-08-08 23:57", "2024-08-09 00:03"),  # across the aggregate's end, across midnight
        ("2024-08-09 00:00", None),
        (None, "2024-08-08 23:58"),
        ("2024-08-08 23:30", "2024-08-08 23:56"),  # before the first trade: bars without a price
        ("2024-08-09 00:04", "2024-08-09 00:15"),  # after the last trade: flat at the last close
    ],
)
def test_ranges_equal_resample(store: Store, tf: str, start: str | None, end: str | None) -> None:
    # ohlcv returns whole bars labelled in [start, end); resample floors start: align for it
    step = pd.Timedelta(tf)
    lo = None if start is None else pd.Timestamp(start, tz="UTC").ceil(step)
    hi = None if end is None else pd.Timestamp(end, tz="UTC").ceil(step)
    check(store.ohlcv("BTCUSDT", tf, start, end), expected(store, "BTCUSDT", tf, lo, hi))


def test_bars_are_labelled_inside_the_range(store: Store) -> None:
    got = store.ohlcv("BTCUSDT", "1m", "2024-08-08 23:57:30", "2024-08-09 00:01:10")
    assert list(got.index.strftime("%H:%M")) == ["23:58", "23:59", "00:00", "00:01"]
    check(got, expected(store, "BTCUSDT", "1m", "2024-08-08 23:58", "2024-08-09 00:02"))
    assert str(got.index.tz) == "UTC"


def test_three_paths_identical(sample: dict, tmp_path: Path) -> None:
    """Aggregate only, ticks only, and half and half give the very same frame."""
    stores = [build(f"lmdb://{tmp_path / f's{i}'}", sample, share) for i, share in enumerate((1.0, 0.0, 0.5))]
    for tf in ("1m", "5m", "1s"):
        frames = [s.ohlcv("ETHUSDT", tf, "2024-08-08 23:55", "2024-08-09 00:05") for s in stores]
        check(frames[0], frames[1])
        check(frames[0], frames[2])


def test_errors(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown timeframe '1M'.*1s, 1m, 3m"):
        store.ohlcv("BTCUSDT", "1M")
    with pytest.raises(ValueError, match="unknown timeframe 'fortnight'"):
        store.ohlcv("BTCUSDT", "fortnight")
    with pytest.raises(UnknownSymbol, match="DOGEUSDT"):
        store.ohlcv("DOGEUSDT")
    with pytest.raises(ValueError, match="not after start"):
        store.ohlcv("BTCUSDT", "1m", "2024-08-09", "2024-08-08")
    assert store.ohlcv("btcusdt", "1m", "2024-08-09 00:00:10", "2024-08-09 00:00:50").empty


@pytest.mark.parametrize(
    "files",
    [
        ["rest-aggtrades/xrpeth_aggtrades_2019-10-11_13.json.gz"],
        ["mixed-2023/usdm_btcusdt_20230404.dat.gz", "mixed-2023/usdm_btcusdt_20230405.dat.gz"],
        ["usdm-2024/btcusdt_20240808.gz", "usdm-2024/ethusdt_20240808.gz"],
    ],
    ids=["xrpeth-aggtrades", "usdm-2023", "usdm-2024"],
)
def test_shared_recordings(files: list[str], tmp_path: Path) -> None:
    """Aggregate trades over sparse days (flat bars, 1d), futures with a non-MARKET trade."""
    paths = [SHARED / f for f in files]
    if not all(p.exists() for p in paths):
        pytest.skip(f"recordings not found under {SHARED}")
    frames = load(paths)
    for i, share in enumerate((1.0, 0.5)):
        store = build(f"lmdb://{tmp_path / f's{i}'}", frames, share)
        for sym in frames:
            for tf in ("1m", "15m", "4h", "1d", "30s"):
                check(store.ohlcv(sym, tf), expected(store, sym, tf))


def test_arcticdb_in_engine_resample_matches_except_float_sums(store: Store) -> None:
    """What the in-engine resample gives once aligned and ordered (see quantify.store.candles).

    Prices and counts match exactly and the quantity sums after rounding to
    Binance's 1e-8 grid; the quote volume, a float sum of ``price * qty``,
    is why the store reads ticks, not the engine, for the unaggregated tail.
    """
    lo, hi = pd.Timestamp("2024-08-08 23:55", tz="UTC"), pd.Timestamp("2024-08-09 00:05", tz="UTC")
    q = QueryBuilder().resample("1min").agg(
        {"open": ("price", "first"), "high": ("price", "max"), "low": ("price", "min"),
         "close": ("price", "last"), "volume": ("qty", "sum"), "trades": ("trade_id", "count")}
    )
    engine = store.library("ticks").read("BTCUSDT", date_range=(lo, hi - pd.Timedelta(1, "ns")), query_builder=q).data
    engine = engine[["open", "high", "low", "close", "volume", "trades"]]  # the engine's order differs
    ref = store.ohlcv("BTCUSDT", "1m", lo, hi)
    assert list(engine.index) == list(ref.index)  # aligned date_range: no partial edge bars
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(engine[col].to_numpy(), ref[col].to_numpy())
    np.testing.assert_array_equal(engine["trades"].to_numpy(), ref["trades"].to_numpy())
    np.testing.assert_array_equal(np.round(engine["volume"].to_numpy() * 1e8) / 1e8, ref["volume"].to_numpy())


def test_aggregate_is_read_not_ticks(sample: dict, tmp_path: Path) -> None:
    """With the ticks of aggregated minutes gone, ohlcv still has them: it reads the aggregate."""
    store = build(f"lmdb://{tmp_path / 's'}", sample, 1.0)
    full = store.ohlcv("BTCUSDT", "1m")
    cut = pd.Timestamp("2024-08-09 00:02", tz="UTC")
    store.library("ticks").delete_data_in_range("BTCUSDT", (None, cut - pd.Timedelta(1, "ns")))
    assert store.library(CANDLES_1M).has_symbol("BTCUSDT")
    check(store.ohlcv("BTCUSDT", "1m", end=cut), full[full.index < cut])
