"""The microstructure functions on Binance's recorded book and trades (spot BTCUSDT, 2024-08-08/09).

The quotes are the local book's best bid and offer after each depth event
(Binance's procedure over the shipped ``*.book.gz`` extracts, as the store
writes them); the book snapshots frame samples the top 10 levels every
second of exchange time. Every function is checked against the same slow
loops as on random data, and Kyle's lambda against statsmodels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from book_helpers import events, feed

import quantify as qf
from quantify.analytics import (
    depth_within,
    effective_spread,
    imbalance,
    kyle_lambda,
    markouts,
    microprice,
    mid,
    ofi,
    quoted_spread,
    realized_spread,
)
from quantify.model.book_frames import quotes_to_frame
from quantify.model.booksync import BookSync
from tests.analytics.test_microstructure import slow_depth, slow_imbalance, slow_ofi, slow_point
from tests.analytics.test_microstructure_trades import slow_costs, slow_kyle_intervals

DATA = Path(__file__).resolve().parents[2] / "quantify" / "data"
SPOT = [DATA / "spot-2024-btcusdt_20240808.book.gz", DATA / "spot-2024-btcusdt_20240809.book.gz"]
LEVELS = 10


@pytest.fixture(scope="module")
def recorded() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(quotes, book snapshots every 1 s, trades) of the spot BTCUSDT capture."""
    sync = BookSync("BTCUSDT", "spot")
    applied = []
    rows, times = [], []
    next_second = None
    for recv, ev in events(SPOT):
        new = feed(sync, [(recv, ev)])
        applied += new
        for a in new:
            t = pd.Timestamp(a.diff.event_time, unit="ms", tz="UTC")
            if next_second is None or t >= next_second:
                lv = sync.book.levels(LEVELS)
                row = {}
                for side, arr in (("bid", lv.bids), ("ask", lv.asks)):
                    for i in range(LEVELS):
                        known = i < len(arr)
                        row[f"{side}_price_{i + 1}"] = arr[i, 0] if known else np.nan
                        row[f"{side}_qty_{i + 1}"] = arr[i, 1] if known else np.nan
                rows.append(row)
                times.append(t)
                next_second = t.floor("1s") + pd.Timedelta("1s")
    book = pd.DataFrame(rows, index=pd.DatetimeIndex(times, name="time"))
    trades = qf.datasets.sample_ticks("BTCUSDT")["BTCUSDT"]
    return quotes_to_frame(applied), book, trades


def _close(got, ref, rtol: float = 1e-10, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float), rtol=rtol, atol=atol)


def test_quote_features_on_the_recorded_book(recorded) -> None:
    quotes, _, _ = recorded
    assert len(quotes) > 6_000 and quotes["bid_price"].isna().any()  # the bid side leaves its known range
    ref = slow_point(quotes)
    _close(mid(quotes), ref["mid"])
    _close(quoted_spread(quotes, "bps"), ref["bps"])
    _close(microprice(quotes), ref["micro"])
    _close(imbalance(quotes), ref["imb"])
    _close(ofi(quotes), slow_ofi(quotes))
    spread = quoted_spread(quotes)
    assert (spread.dropna() > 0).all()  # never crossed
    assert spread.dropna().round(8).eq(0.01).mean() > 0.9  # one tick most of the time
    per_second = ofi(quotes, "1s")
    assert per_second.sum() == pytest.approx(np.nansum(slow_ofi(quotes)), rel=1e-9)


def test_book_features_on_the_recorded_book(recorded) -> None:
    _, book, _ = recorded
    assert len(book) > 500
    for k in (1, 5, LEVELS):
        _close(imbalance(book, k), slow_imbalance(book, k, None))
    _close(imbalance(book, LEVELS, decay_bps=0.5), slow_imbalance(book, LEVELS, 0.5))
    for bps in (0.01, 0.5, 5.0):
        bid, ask = slow_depth(book, bps, LEVELS)
        got = depth_within(book, bps)
        _close(got["bid_depth"], bid)
        _close(got["ask_depth"], ask)
    # ten levels of BTCUSDT span well under 5 bps: the frame cannot tell the depth within 5 bps
    assert depth_within(book, 5.0).isna().mean().min() > 0.5
    assert depth_within(book, 0.01).notna().mean().min() > 0.5


def test_trade_costs_on_the_recorded_book(recorded) -> None:
    quotes, _, trades = recorded
    sample = trades.iloc[::20]
    es, rs, mk = slow_costs(sample, quotes, ["1s", "10s"], exact=False)
    _close(effective_spread(sample, quotes), es)
    got = realized_spread(sample, quotes, ["1s", "10s"])
    res = markouts(sample, quotes, ["1s", "10s"])
    for h in ("1s", "10s"):
        _close(got[h], rs[h])
        _close(res.per_trade[h], mk[h])
    # the 100 ms book lags the trades it already contains: most trades print at or beyond the
    # quote prevailing before them (a non-negative effective spread)
    assert (effective_spread(trades, quotes).dropna() >= -1e-9).mean() > 0.95


def test_kyle_lambda_on_the_recorded_book_equals_statsmodels(recorded) -> None:
    quotes, _, trades = recorded
    res = kyle_lambda(trades, quotes, "10s")
    table = slow_kyle_intervals(trades, quotes, "10s")
    _close(res.intervals["mid_change"], table["mid_change"])
    ok = table.dropna()
    fit = sm.OLS(ok["mid_change"], sm.add_constant(ok["signed_volume"])).fit()
    assert res.lambda_ == pytest.approx(fit.params["signed_volume"], rel=1e-9)
    assert res.stderr == pytest.approx(fit.bse["signed_volume"], rel=1e-9)
    assert res.nobs == int(fit.nobs) and res.lambda_ > 0
