"""``quantify load`` of recordings with depth: the book through BookSync offline, stored once.

Small parts of the shipped USD-M book sample (its first 16,000 lines, cut in
two: the snapshot is on line 50 of the first part) keep these tests to a few
seconds; the full recordings run when ``../shared/data`` exists, marked slow.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantify.cli import main
from quantify.ingest.load import load_files
from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot
from quantify.model.book_frames import quotes_to_frame
from quantify.model.booksync import BookSync
from quantify.store import open_store
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.recordings import read_frames

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
KEY = "binance-usdm:BTCUSDT"


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> tuple[Path, Path]:
    with gzip.open(DATA / "usdm-2024-btcusdt_20240808.book.gz", "rt") as fh:
        lines = [next(fh) for _ in range(16_000)]
    folder = tmp_path_factory.mktemp("book-parts")
    out = []
    for name, chunk in (("usdm_btcusdt_a.gz", lines[:8_000]), ("usdm_btcusdt_b.gz", lines[8_000:])):
        with gzip.open(folder / name, "wt") as fh:
            fh.writelines(chunk)
        out.append(folder / name)
    return out[0], out[1]


def reference_quotes(files) -> pd.DataFrame:
    parser, sync, applied = FrameParser(), BookSync("BTCUSDT", "usdm"), []
    for path in files:
        for recv, frame in read_frames(path):
            ev = parser.parse(frame)
            if type(ev) is DepthDiff:
                applied += sync.on_diff(ev, recv)
            elif type(ev) is DepthSnapshot:
                applied += sync.on_snapshot(ev, recv)
            elif type(ev) is BookTicker:
                sync.on_ticker(ev, recv)
    assert sync.live and sync.ledger.ticker_checks > 50 and sync.ledger.mismatches == 0
    return quotes_to_frame(applied)


def counts(store) -> dict:
    return {k: v for k, v in store._books.counts(KEY).items()}


def test_load_stores_the_book_once(parts, tmp_path):
    store = open_store(f"lmdb://{tmp_path / 'store'}", create=True)
    first = load_files(store, parts, progress=False)
    assert first.ok and not any(f.notes for f in first.files), first.summary()
    want = reference_quotes(parts)
    assert first.book_added == first.book_events == len(want)
    pd.testing.assert_frame_equal(store.quotes(KEY), want, check_freq=False)
    assert store.book_ledger(KEY)["kind"].tolist() == ["start"]
    assert "binance-usdm:BTCUSDT book:" in first.summary()
    before = counts(store)
    second = load_files(store, parts, progress=False)
    assert second.ok and second.book_added == 0
    assert counts(store) == before  # quotes, diffs, checkpoints and ledger: nothing twice
    assert all("already stored" in f.notes[0] for f in second.files)
    assert store.last_book_update(KEY) == int(want["update_id"].iloc[-1])


def test_file_order_and_separate_loads_give_the_same_book(parts):
    together = open_store("mem://book-load-together", create=True)
    assert load_files(together, list(reversed(parts)), progress=False).ok  # taken by receive time
    apart = open_store("mem://book-load-apart", create=True)
    load_files(apart, parts[:1], progress=False)
    later = load_files(apart, parts[1:], progress=False)  # carries on from the stored book
    assert later.ok and not later.files[0].notes and later.book_added > 500
    a, b = together.quotes(KEY), apart.quotes(KEY)
    pd.testing.assert_frame_equal(a, b, check_freq=False)
    t = a.index[-1]
    np.testing.assert_array_equal(together.book(KEY, t).asks, apart.book(KEY, t).asks)


def test_diffs_without_a_snapshot_are_reported_not_guessed(parts):
    store = open_store("mem://book-load-orphan", create=True)
    result = load_files(store, parts[1:], progress=False)
    assert result.ok and result.book_added == 0 and not store.has_book(KEY)
    (note,) = result.files[0].notes
    assert "no snapshot" in note and "cannot be known" in note
    assert "cannot be known" in result.summary()


def test_cli_load_and_export_book_kinds(parts, tmp_path, capsys):
    uri = f"lmdb://{tmp_path / 'store'}"
    assert main(["load", *map(str, parts), "--store", uri, "--no-progress"]) == 0
    assert "book:" in capsys.readouterr().out
    out = tmp_path / "quotes.csv"
    assert main(["export", KEY, "--kind", "quotes", "-o", str(out), "--store", uri]) == 0
    csv = pd.read_csv(out)
    quotes = open_store(uri).quotes(KEY)
    assert list(csv.columns) == ["time", *quotes.columns] and len(csv) == len(quotes)
    np.testing.assert_array_equal(csv["update_id"].to_numpy(), quotes["update_id"].to_numpy())
    ledger = tmp_path / "ledger.csv"
    assert main(["export", KEY, "--kind", "book_ledger", "-o", str(ledger), "--store", uri]) == 0
    assert pd.read_csv(ledger)["kind"].tolist() == ["start"]
    diffs = tmp_path / "diffs.parquet"
    assert main(["export", KEY, "--kind", "book_diffs", "-o", str(diffs), "--store", uri,
                 "--start", str(quotes.index[10]), "--end", str(quotes.index[20])]) == 0
    frame = pd.read_parquet(diffs)
    assert set(frame["update_id"]) == set(quotes["update_id"].iloc[10:20])


FULL_SPOT = [SHARED / "spot-2024/btcusdt_20240808.gz", SHARED / "spot-2024/btcusdt_20240809.gz"]
NO_SNAPSHOT = SHARED / "mixed-2023/spot_btcusdt_20230405.dat.gz"


@pytest.mark.slow
@pytest.mark.skipif(not all(p.exists() for p in [*FULL_SPOT, NO_SNAPSHOT]), reason="needs ../shared/data")
def test_full_recordings_load_trades_and_book(tmp_path):
    store = open_store(f"lmdb://{tmp_path / 'store'}", create=True)
    result = load_files(store, [*FULL_SPOT, NO_SNAPSHOT], progress=False)
    assert result.ok, result.summary()
    assert store.has_ticks("BTCUSDT") and store.has_book("BTCUSDT")
    assert result.files[0].book_added["BTCUSDT"] + result.files[1].book_added["BTCUSDT"] == 6493
    assert any("cannot be known" in note for note in result.files[2].notes)
    again = load_files(store, FULL_SPOT, progress=False)
    assert again.added == 0 and again.book_added == 0
    print(result.summary())
