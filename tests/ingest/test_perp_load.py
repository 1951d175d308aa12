"""``quantify load`` of perpetual-futures data: captures' mark prices and liquidations, funding and metrics CSVs.

The capture is the shipped real one (``quantify/data/usdm-2023-btcusdt_20230405.perp.gz``:
trades and ``markPriceUpdate``) and the shipped real XRPUSDT settlements
(``usdm-2021-xrpusdt.funding.csv``, the ``fundingRate`` answer's columns). The
data.binance.vision ``fundingRate``/``metrics`` files and the ``forceOrder``
lines are constructed in Binance's documented formats (``tests/data/README.md``).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

import quantify
from quantify.cli import main
from quantify.ingest.load import load_files, read_history, read_history_file
from quantify.store import open_store
from quantify.venues.binance.recordings import read_frames

DATA = Path(quantify.__file__).parent / "data"
CAPTURE = DATA / "usdm-2023-btcusdt_20230405.perp.gz"
XRP_FUNDING = DATA / "usdm-2021-xrpusdt.funding.csv"
TESTS = Path(__file__).parents[1] / "data"
VISION_FUNDING = TESTS / "BTCUSDT-fundingRate-2023-04.csv"
METRICS = TESTS / "BTCUSDT-metrics-2023-04-05.csv"
LIQUIDATIONS = TESTS / "usdm-2023-btcusdt_20230405.liquidations"
BTC = "binance-usdm:BTCUSDT"


def events(path: Path, kind: str) -> list[tuple[int, dict]]:
    """``(receive ns, data)`` of the ``kind`` events of a capture, as recorded."""
    out = []
    for recv, frame in read_frames(path):
        data = orjson.loads(frame)["data"]
        if data.get("e") == kind:
            out.append((recv, data))
    return out


def zipped(csv: Path, folder: Path, *, checksum: bool = False) -> Path:
    """``csv`` as data.binance.vision ships it: ``NAME.zip`` holding ``NAME.csv`` (and ``NAME.zip.CHECKSUM``)."""
    target = folder / csv.with_suffix(".zip").name
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv, csv.name)
    if checksum:
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        target.with_name(target.name + ".CHECKSUM").write_text(f"{digest}  {target.name}\n")
    return target


def test_a_capture_loads_its_marks_beside_its_trades_once(lmdb_uri: str) -> None:
    store = open_store(lmdb_uri, create=True)
    res = load_files(store, [CAPTURE], progress=False)
    assert res.ok and res.files[0].kind == "ticks+mark"
    assert res.files[0].added == {BTC: 12_935} and res.perp_added("mark") == 514
    assert len(store.ticks(BTC)) == 12_935
    mark = store.mark(BTC)
    want = events(CAPTURE, "markPriceUpdate")
    assert len(mark) == len(want) == 514
    np.testing.assert_array_equal(mark.index.asi8 // 1_000_000, [d["E"] for _, d in want])
    for col, field in (("mark_price", "p"), ("index_price", "i"), ("settle_price", "P"), ("funding_rate", "r")):
        np.testing.assert_array_equal(mark[col].to_numpy(), [float(d[field]) for _, d in want])
    np.testing.assert_array_equal(mark.next_funding_time.astype("int64") // 1_000_000, [d["T"] for _, d in want])
    np.testing.assert_array_equal(mark.recv_time.to_numpy(), [recv for recv, _ in want])
    # the settlement of 00:00 is crossed: the announced next funding time moves to 08:00
    assert set(mark.next_funding_time.dt.hour) == {0, 8}
    assert f"{BTC} mark: 514 read, 514 added" in res.summary()
    again = load_files(store, [CAPTURE], progress=False)
    assert again.ok and again.added == 0 and again.rows == 12_935 + 514
    assert len(store.mark(BTC)) == 514 and len(store.ticks(BTC)) == 12_935


def test_liquidations_of_a_capture(tmp_path: Path) -> None:
    store = open_store("mem://perp-load-liq")
    res = load_files(store, [LIQUIDATIONS], progress=False)
    assert res.ok and res.files[0].perp_added == {"liquidations": {BTC: 4}}  # USD-M by its forceOrder events
    assert not store.has_ticks(BTC)
    got = store.liquidations(BTC)
    want = events(LIQUIDATIONS, "forceOrder")
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, [d["o"]["T"] for _, d in want])
    np.testing.assert_array_equal(got.side.to_numpy(), [1 if d["o"]["S"] == "BUY" else -1 for _, d in want])
    np.testing.assert_array_equal(got.avg_price.to_numpy(), [float(d["o"]["ap"]) for _, d in want])
    np.testing.assert_array_equal(got.notional.to_numpy(),
                                  [float(d["o"]["ap"]) * float(d["o"]["z"]) for _, d in want])
    assert list(got.status) == ["FILLED"] * 4
    np.testing.assert_array_equal(got.recv_time.to_numpy(), [recv for recv, _ in want])
    assert load_files(store, [LIQUIDATIONS], progress=False).added == 0


@pytest.mark.parametrize("form", ["csv", "zip"])
def test_binance_vision_funding(tmp_path: Path, form: str) -> None:
    path = VISION_FUNDING if form == "csv" else zipped(VISION_FUNDING, tmp_path, checksum=True)
    store = open_store(f"mem://perp-load-vision-funding-{form}")
    res = load_files(store, [path], progress=False)
    assert res.ok and res.files[0].kind == "funding" and res.files[0].checksum_verified == (form == "zip")
    got = store.funding(BTC)
    want = pd.read_csv(VISION_FUNDING, dtype={"last_funding_rate": str})
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, want.calc_time.to_numpy())
    np.testing.assert_array_equal(got.funding_rate.to_numpy(), want.last_funding_rate.astype(float).to_numpy())
    assert got.mark_price.isna().all()  # the archive has no mark price
    assert load_files(store, [path], progress=False).added == 0


def test_funding_in_the_rest_answers_columns() -> None:
    store = open_store("mem://perp-load-xrp")
    res = load_files(store, [XRP_FUNDING], progress=False)
    assert res.ok and res.perp_added("funding") == 91
    got = store.funding("binance-usdm:XRPUSDT")
    want = pd.read_csv(XRP_FUNDING, dtype={"fundingRate": str})
    np.testing.assert_array_equal(got.index.asi8 // 1_000_000, want.fundingTime.to_numpy())
    np.testing.assert_array_equal(got.funding_rate.to_numpy(), want.fundingRate.astype(float).to_numpy())
    assert read_history_file(XRP_FUNDING)[0] == "funding"


@pytest.mark.parametrize("form", ["csv", "zip"])
def test_binance_vision_metrics_open_interest(tmp_path: Path, form: str) -> None:
    path = METRICS if form == "csv" else zipped(METRICS, tmp_path)
    store = open_store(f"mem://perp-load-metrics-{form}")
    res = load_files(store, [path], progress=False)
    assert res.ok and res.perp_added("open_interest") == 12
    got = store.open_interest(BTC)
    assert list(got.columns) == ["open_interest", "open_interest_value"]  # the ratio columns are not stored
    want = pd.read_csv(METRICS, dtype={"sum_open_interest": str, "sum_open_interest_value": str})
    times = pd.to_datetime(want.create_time, utc=True)
    assert list(got.index) == list(times) and got.index[0] == pd.Timestamp("2023-04-05", tz="UTC")
    np.testing.assert_array_equal(got.open_interest.to_numpy(), want.sum_open_interest.astype(float).to_numpy())
    np.testing.assert_array_equal(got.open_interest_value.to_numpy(),
                                  want.sum_open_interest_value.astype(float).to_numpy())
    assert load_files(store, [path], progress=False).added == 0


def test_all_kinds_in_one_load_of_any_order(tmp_path: Path) -> None:
    files = [METRICS, LIQUIDATIONS, zipped(VISION_FUNDING, tmp_path), CAPTURE, XRP_FUNDING]
    one, other = open_store("mem://perp-load-order-a"), open_store("mem://perp-load-order-b")
    assert load_files(one, files, progress=False).ok and load_files(other, files[::-1], progress=False).ok
    for read in ("mark", "liquidations", "funding", "open_interest"):
        pd.testing.assert_frame_equal(getattr(one, read)(BTC), getattr(other, read)(BTC))
    pd.testing.assert_frame_equal(one.funding("binance-usdm:XRPUSDT"), other.funding("binance-usdm:XRPUSDT"))
    assert {k: one.describe(BTC)[f"{k}_rows"] for k in ("mark", "funding", "open_interest", "liquidation")} == \
        {"mark": 514, "funding": 6, "open_interest": 12, "liquidation": 4}


@pytest.mark.parametrize("text, match", [
    ("create_time,symbol,sum_open_interest,sum_open_interest_value\n2023-04-05 00:00:00,BTCUSDT,1.5,42\n"
     "2023-04-05T00:05,BTCUSDT,1.6,43\n", "line 3: create_time '2023-04-05T00:05'"),
    ("create_time,symbol,sum_open_interest,sum_open_interest_value\n2023-04-05 00:00:00,BTCUSDT,oops,42\n",
     "line 2: could not convert"),
    ("calc_time,funding_interval_hours,last_funding_rate\n1680307200004,8,0.0001\n1680336000000,8,nan\n",
     "line 3: last_funding_rate 'nan' is not a finite number"),
    ("symbol,fundingTime\nBTCUSDT,1680307200004\n", "no fundingRate column"),
])
def test_bad_rows_are_named_and_the_file_skipped(tmp_path: Path, text: str, match: str) -> None:
    name = "BTCUSDT-metrics-2023-04-05.csv" if text.startswith("create") else "BTCUSDT-fundingRate-2023-04.csv"
    bad = tmp_path / name
    bad.write_text(text)
    res = load_files(open_store("mem://perp-load-bad"), [bad, LIQUIDATIONS], progress=False)
    assert [f.ok for f in res.files] == [False, True]
    assert str(bad) in res.files[0].error and match in res.files[0].error


def test_read_history_names_every_kind() -> None:
    kinds = read_history(CAPTURE)
    assert list(kinds) == ["ticks", "mark"] and list(kinds["mark"]) == [BTC]
    assert read_history_file(CAPTURE)[0] == "ticks"


def test_load_command(lmdb_uri: str, tmp_path: Path, capsys) -> None:
    funding = zipped(VISION_FUNDING, tmp_path)
    assert main(["load", str(CAPTURE), str(funding), str(METRICS), "--store", lmdb_uri]) == 0
    out = capsys.readouterr().out
    assert f"{BTC} mark: 514 read, 514 added" in out and f"{BTC} funding: 6 read, 6 added" in out
    assert f"{BTC} open_interest: 12 read, 12 added" in out and f"{BTC}: 12,935 read, 12,935 added" in out
    with pytest.raises(SystemExit):
        main(["load", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("markPriceUpdate", "forceOrder", "fundingRate", "metrics", "sum_open_interest",
                  "not stored", "symbol,fundingTime,fundingRate"):
        assert words in text, words
