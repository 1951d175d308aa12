"""Export of a perpetual's mark prices, funding, open interest and liquidations (``quantify export --kind ...``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantify
from quantify.cli import main
from quantify.exceptions import UnknownSymbol
from quantify.ingest.load import load_files
from quantify.model.perp import PERP_KINDS
from quantify.store import open_store
from quantify.store.status import status

DATA = Path(quantify.__file__).parent / "data"
TESTS = Path(__file__).parents[1] / "data"
FILES = [DATA / "usdm-2023-btcusdt_20230405.perp.gz", TESTS / "usdm-2023-btcusdt_20230405.liquidations",
         TESTS / "BTCUSDT-fundingRate-2023-04.csv", TESTS / "BTCUSDT-metrics-2023-04-05.csv"]
BTC = "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"lmdb://{tmp_path_factory.mktemp('perp-export') / 'store'}"
    assert load_files(open_store(uri, create=True), FILES, progress=False).ok
    return uri


@pytest.mark.parametrize("kind", PERP_KINDS)
def test_csv_round_trips_every_value(loaded: str, kind: str) -> None:
    store = open_store(loaded)
    want = store._perp.read(kind, BTC)
    buf = io.BytesIO()
    assert store.export(BTC, buf, kind=kind, format="csv") == len(want) > 0
    got = pd.read_csv(io.BytesIO(buf.getvalue()), dtype={"status": str})
    assert list(got.columns) == ["time", *want.columns]
    assert list(pd.to_datetime(got.time, utc=True)) == list(want.index)
    for col in want.columns:
        if col == "next_funding_time":
            assert list(pd.to_datetime(got[col], utc=True)) == list(want[col])
        elif col == "status":
            assert list(got[col]) == list(want[col])
        else:  # shortest round-trip floats: exactly the stored values (NaN as nan)
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())


@pytest.mark.parametrize("kind", PERP_KINDS)
def test_parquet_keeps_the_frame(loaded: str, kind: str, tmp_path: Path) -> None:
    store = open_store(loaded)
    path = tmp_path / f"{kind}.parquet"
    store.export(BTC, path, kind=kind)
    pd.testing.assert_frame_equal(pd.read_parquet(path), store._perp.read(kind, BTC), check_freq=False)


def test_a_range_is_inclusive_exclusive(loaded: str) -> None:
    store = open_store(loaded)
    buf = io.BytesIO()
    n = store.export(BTC, buf, kind="mark", start="2023-04-05", end="2023-04-05 00:01")
    times = pd.to_datetime(pd.read_csv(io.BytesIO(buf.getvalue())).time, utc=True)
    assert n == len(times) == len(store.mark(BTC, "2023-04-05", "2023-04-05 00:01")) > 0
    assert times.min() >= pd.Timestamp("2023-04-05", tz="UTC") > store.mark(BTC).index[0]
    assert times.max() < pd.Timestamp("2023-04-05 00:01", tz="UTC")


def test_nothing_stored_is_an_unknown_symbol(loaded: str) -> None:
    with pytest.raises(UnknownSymbol, match="no funding data for 'binance-usdm:ETHUSDT'"):
        open_store(loaded).export("binance-usdm:ETHUSDT", io.BytesIO(), kind="funding")
    # stored, but none in the range: a header only
    buf = io.BytesIO()
    assert open_store(loaded).export(BTC, buf, kind="funding", start="2024-01-01") == 0
    assert buf.getvalue().decode() == "time,funding_rate,mark_price\n"


def test_export_command(loaded: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "funding.csv"
    assert main(["export", BTC, "--kind", "funding", "--store", loaded, "-o", str(out)]) == 0
    assert "6 rows written" in capsys.readouterr().err
    assert len(pd.read_csv(out)) == 6
    assert main(["export", "binance-usdm:ETHUSDT", "--kind", "liquidations", "--store", loaded,
                 "-o", str(tmp_path / "x.csv")]) == 2
    assert "no liquidations data" in capsys.readouterr().err


def test_status_counts_the_perpetual_rows(loaded: str) -> None:
    st = status(loaded)
    (btc,) = [i for i in st.instruments if i.instrument == BTC]
    assert btc.rows == 12_935
    assert btc.perp_rows == {"mark": 514, "funding": 6, "open_interest": 12, "liquidations": 4}
    assert st.to_dict()["symbols"][0]["perp_rows"] == btc.perp_rows
    assert f"  {BTC}: mark 514, funding 6, open_interest 12, liquidations 4" in st.summary()
