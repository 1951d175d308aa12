"""``describe_many``: the fields ``status`` shows, for many instruments in a few batched reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quantify.store import open_store
from quantify.store.describe import describe_many
from quantify.venues.binance.recordings import read_trades, sample_files

FIELDS = ("rows", "first_time", "last_time", "first_id", "last_id",
          "mark_rows", "funding_rows", "open_interest_rows", "liquidation_rows")


def test_describe_many_equals_describe_one_by_one(tmp_path: Path) -> None:
    store = open_store(f"lmdb://{tmp_path / 'store'}", create=True)
    trades = read_trades(sample_files()[0])
    btc = trades["BTCUSDT"]
    store.append_ticks({"BTCUSDT": btc.iloc[:300]})
    store.append_ticks({"BTCUSDT": btc.iloc[300:700]})  # two segments: the tail is in the second
    store.append_ticks({"binance-usdm:BTCUSDT": btc.iloc[:50]})
    marks = pd.DataFrame({"mark_price": [1.0, 2.0]}, index=pd.DatetimeIndex(btc.index[:2]))
    store.library("perp_mark").write("binance-usdm:BTCUSDT", marks)
    keys = store.symbols()
    got = describe_many(store, keys)
    assert list(got) == keys
    for key in keys:
        one = store.describe(key)
        assert {f: got[key][f] for f in FIELDS} == {f: one[f] for f in FIELDS}, key
    assert got["binance-usdm:BTCUSDT"]["mark_rows"] == 2
    assert got["BTCUSDT"]["rows"] == 700 and got["BTCUSDT"]["last_id"] == int(btc["trade_id"].iloc[699])
    assert describe_many(store, []) == {}
