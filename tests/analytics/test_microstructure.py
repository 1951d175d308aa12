"""Quote and book features against slow, obvious loops, on random and on real data.

The quotes of the "real" cases are built from recorded trades (a sell prints
at the bid, a buy at the ask) until recorded quotes ship with the package;
``test_microstructure_trades.py`` covers the trade-against-quote measures.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantify as qf
from quantify.analytics import depth_within, imbalance, microprice, mid, ofi, quoted_spread

T0 = pd.Timestamp("2024-08-08 23:54", tz="UTC")
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


@functools.cache
def recorded_ticks(instrument: str) -> pd.DataFrame:
    return qf.datasets.sample_ticks(instrument)[instrument]


def real_quotes(instrument: str = "BTCUSDT") -> pd.DataFrame:
    """A quotes frame from recorded trades: one tick wide, sizes from the trades, stamped 1 ms before."""
    ticks = recorded_ticks(instrument)
    sell = ticks["is_buyer_maker"].to_numpy()
    p = ticks["price"].to_numpy()
    bid = np.where(sell, p, np.round(p - 0.01, 2))
    qty = ticks["qty"].to_numpy()
    return pd.DataFrame({"bid_price": bid, "bid_qty": qty, "ask_price": np.round(bid + 0.01, 2),
                         "ask_qty": np.roll(qty, 7)}, index=ticks.index - pd.Timedelta("1ms"))


def random_quotes(rng: np.random.Generator, n: int, nan_rows: int = 0) -> pd.DataFrame:
    bid = 60_000 + np.cumsum(rng.choice([-0.02, -0.01, 0.0, 0.0, 0.01, 0.02], n))
    ask = bid + rng.choice([0.01, 0.01, 0.02, 0.05], n)
    q = pd.DataFrame({"bid_price": bid, "bid_qty": rng.choice([0.0, 0.5, 1.0, 2.5], n) * rng.random(n),
                      "ask_price": ask, "ask_qty": rng.random(n) * 3},
                     index=T0 + pd.to_timedelta(np.sort(rng.integers(0, 5_000, n)), "ms"))
    for _ in range(nan_rows if n > 1 else 0):  # row 0 stays complete: at least one usable row
        q.iloc[int(rng.integers(1, n)), int(rng.integers(0, 4))] = np.nan
    return q


def random_book(rng: np.random.Generator, n: int, levels: int, unknown: bool) -> pd.DataFrame:
    """A book snapshots frame: ticks of 0.01..0.5 between levels, NaN tails when ``unknown``."""
    m = 60_000 + np.cumsum(rng.normal(0, 1, n))
    cols = {}
    for side, sgn in (("bid", -1), ("ask", 1)):
        gaps = rng.choice([0.01, 0.02, 0.1, 0.5, 3.0], (n, levels))
        prices = np.round(m[:, None] + sgn * (0.005 + np.cumsum(gaps, axis=1)), 3)
        qty = rng.random((n, levels)) * rng.choice([0.0, 1.0, 5.0], (n, levels))
        if unknown:
            known = rng.integers(0, levels + 1, n)
            known[0] = max(known[0], 1)  # one row with a known top of book at least
            mask = np.arange(levels)[None, :] >= known[:, None]
            prices[mask] = np.nan
            qty[mask] = np.nan
        for i in range(levels):
            cols[f"{side}_price_{i + 1}"] = prices[:, i]
            cols[f"{side}_qty_{i + 1}"] = qty[:, i]
    return pd.DataFrame(cols, index=T0 + pd.to_timedelta(np.arange(n), "s"))


# ---- slow references -------------------------------------------------------------------------------


def slow_point(q: pd.DataFrame) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"mid": [], "spread": [], "bps": [], "micro": [], "imb": []}
    for b, bq, a, aq in q[["bid_price", "bid_qty", "ask_price", "ask_qty"]].itertuples(index=False):
        m = (b + a) / 2
        out["mid"].append(m)
        out["spread"].append(a - b)
        out["bps"].append((a - b) / m * 10_000)
        tot = bq + aq
        out["micro"].append((b * aq + a * bq) / tot if tot > 0 else math.nan)
        out["imb"].append((bq - aq) / tot if tot > 0 else math.nan)
    return out


def slow_imbalance(book: pd.DataFrame, k: int, decay: float | None) -> list[float]:
    out = []
    for _, row in book.iterrows():
        m = (row["bid_price_1"] + row["ask_price_1"]) / 2
        bids = asks = 0.0
        bad = False
        for i in range(1, k + 1):
            bp, bq, ap, aq = (row[f"bid_price_{i}"], row[f"bid_qty_{i}"], row[f"ask_price_{i}"],
                              row[f"ask_qty_{i}"])
            if any(math.isnan(v) for v in (bp, bq, ap, aq)):
                bad = True
                break
            wb = 1.0 if decay is None else math.exp(-abs(m - bp) / m * 1e4 / decay)
            wa = 1.0 if decay is None else math.exp(-abs(ap - m) / m * 1e4 / decay)
            bids += wb * bq
            asks += wa * aq
        out.append(math.nan if bad or bids + asks == 0 else (bids - asks) / (bids + asks))
    return out


def slow_depth(book: pd.DataFrame, bps: float, levels: int) -> tuple[list[float], list[float]]:
    res: dict[str, list[float]] = {"bid": [], "ask": []}
    for _, row in book.iterrows():
        m = (row["bid_price_1"] + row["ask_price_1"]) / 2
        for side, sgn in (("bid", -1), ("ask", 1)):
            total, value = 0.0, math.nan
            if not math.isnan(m):
                for i in range(1, levels + 1):
                    p, q = row[f"{side}_price_{i}"], row[f"{side}_qty_{i}"]
                    if math.isnan(p) or math.isnan(q):
                        break  # unknown inside the band
                    if sgn * (p - m) / m * 1e4 > bps * (1 + 1e-12):
                        value = total  # the band ends before this level: complete
                        break
                    total += q
            res[side].append(value)
    return res["bid"], res["ask"]


def slow_ofi(q: pd.DataFrame) -> list[float]:
    rows = list(q[["bid_price", "bid_qty", "ask_price", "ask_qty"]].itertuples(index=False))
    out = [math.nan]
    for (b0, bq0, a0, aq0), (b, bq, a, aq) in itertools.pairwise(rows):
        if any(math.isnan(v) for v in (b0, bq0, a0, aq0, b, bq, a, aq)):
            out.append(math.nan)
            continue
        e = (bq if b >= b0 else 0.0) - (bq0 if b <= b0 else 0.0) - (aq if a <= a0 else 0.0) \
            + (aq0 if a >= a0 else 0.0)
        out.append(e)
    return out


# ---- tests -------------------------------------------------------------------------------------


def _close(got: pd.Series | np.ndarray, ref: list[float], rtol: float = 1e-12, atol: float = 0.0) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float), rtol=rtol, atol=atol)


@SETTINGS
@given(n=st.integers(1, 80), nan_rows=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_point_features_equal_the_loops_on_random_quotes(n: int, nan_rows: int, seed: int) -> None:
    q = random_quotes(np.random.default_rng(seed), n, nan_rows)
    ref = slow_point(q)
    _close(mid(q), ref["mid"])
    _close(quoted_spread(q), ref["spread"], atol=1e-9)
    _close(quoted_spread(q, "bps"), ref["bps"], atol=1e-9)
    _close(microprice(q), ref["micro"])
    _close(imbalance(q), ref["imb"], atol=1e-15)
    _close(ofi(q), slow_ofi(q), atol=1e-12)


def test_point_features_on_real_quotes() -> None:
    q = real_quotes()
    ref = slow_point(q)
    for got, key in ((mid(q), "mid"), (quoted_spread(q, unit="bps"), "bps"), (microprice(q), "micro"),
                     (imbalance(q), "imb")):
        _close(got, ref[key], rtol=1e-12, atol=1e-12)
        assert got.index.equals(q.index)
    assert quoted_spread(q).round(8).eq(0.01).all()
    assert (microprice(q).between(q["bid_price"], q["ask_price"])).all()


@SETTINGS
@given(n=st.integers(1, 25), levels=st.integers(1, 6), unknown=st.booleans(), seed=st.integers(0, 2**32 - 1),
       decay=st.sampled_from([None, 0.5, 5.0]), bps=st.sampled_from([0.0, 0.01, 0.5, 2.0, 50.0]))
def test_book_features_equal_the_loops(n: int, levels: int, unknown: bool, seed: int, decay: float | None,
                                       bps: float) -> None:
    book = random_book(np.random.default_rng(seed), n, levels, unknown)
    k = int(np.random.default_rng(seed).integers(1, levels + 1))
    _close(imbalance(book, k, decay_bps=decay), slow_imbalance(book, k, decay), atol=1e-12)
    bid, ask = slow_depth(book, bps, levels)
    got = depth_within(book, bps)
    _close(got["bid_depth"], bid, atol=1e-12)
    _close(got["ask_depth"], ask, atol=1e-12)


def test_level_one_of_a_book_equals_the_quotes_frame() -> None:
    book = random_book(np.random.default_rng(1), 50, 3, unknown=False)
    q = book.rename(columns={"bid_price_1": "bid_price", "bid_qty_1": "bid_qty", "ask_price_1": "ask_price",
                             "ask_qty_1": "ask_qty"})
    pd.testing.assert_series_equal(imbalance(book, 1), imbalance(q))


def test_ofi_per_interval_sums_the_events() -> None:
    q = real_quotes()
    sums: dict[pd.Timestamp, float] = {}
    for t, e in zip(q.index, slow_ofi(q)):
        sums[t.floor("1s")] = sums.get(t.floor("1s"), 0.0) + (0.0 if math.isnan(e) else e)
    per_second = ofi(q, "1s")
    assert per_second.index.freq == pd.Timedelta("1s")
    assert per_second.index[0] == q.index[0].floor("1s")
    for t, value in per_second.items():
        assert value == pytest.approx(sums.get(t, 0.0), abs=1e-9)
    assert len(per_second) == (q.index[-1].floor("1s") - q.index[0].floor("1s")) // pd.Timedelta("1s") + 1


def test_ofi_signs_follow_the_paper() -> None:
    q = pd.DataFrame({"bid_price": [10.0, 10.0, 10.1, 10.0, 10.0],
                      "bid_qty": [1.0, 3.0, 2.0, 4.0, 4.0],
                      "ask_price": [10.2, 10.2, 10.2, 10.2, 10.1],
                      "ask_qty": [5.0, 5.0, 5.0, 1.0, 2.0]},
                     index=T0 + pd.to_timedelta(range(5), "s"))
    # bid size up 2: +2; bid price up (new level 2): +2; bid down (old 2 gone, ask size -4): -2 + 4;
    # ask price down to 10.1 with 2 there: -2
    assert ofi(q).tolist()[1:] == pytest.approx([2.0, 2.0, -2.0 + 4.0, -2.0])


def test_depth_within_is_nan_where_the_band_passes_the_known_levels() -> None:
    book = pd.DataFrame({"bid_price_1": [99.99, 99.99], "bid_qty_1": [1.0, 1.0],
                         "bid_price_2": [99.0, np.nan], "bid_qty_2": [2.0, np.nan],
                         "ask_price_1": [100.01, 100.01], "ask_qty_1": [3.0, 3.0],
                         "ask_price_2": [100.02, 100.02], "ask_qty_2": [4.0, 4.0]})
    got = depth_within(book, 5.0)  # 5 bps of 100 = 0.05
    assert got["bid_depth"].tolist()[0] == 1.0  # level 2 at 99.0 is outside: complete
    assert math.isnan(got["bid_depth"].tolist()[1])  # level 2 unknown: cannot tell
    assert got["ask_depth"].isna().all()  # both ask levels inside: the frame ends inside the band


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda q: imbalance(q, 2), ValueError, "levels=2 needs a book snapshots frame"),
        (lambda q: quoted_spread(q, "pct"), ValueError, "unit must be 'price' or 'bps'"),
        (lambda q: imbalance(q, decay_bps=-1.0), ValueError, "decay_bps must be > 0"),
        (lambda q: depth_within(q, 1.0), ValueError, "no book levels"),
        (lambda q: mid(q.drop(columns="ask_price")), ValueError, r"lacks column\(s\) \['ask_price'\]"),
        (lambda q: mid(q["bid_price"]), TypeError, "must be a DataFrame"),
        (lambda q: microprice(q.assign(bid_qty=-1.0)), ValueError, "bid_qty must be >= 0"),
        (lambda q: mid(q.assign(bid_price=0.0)), ValueError, "bid_price must be positive"),
        (lambda q: mid(q.iloc[:0]), ValueError, "mid needs at least 1 rows of quotes"),
        (lambda q: ofi(q.reset_index(drop=True), "1s"), TypeError, "DatetimeIndex"),
        (lambda q: depth_within(random_book(np.random.default_rng(0), 3, 2, False), -1), ValueError, ">= 0"),
        (lambda q: imbalance(random_book(np.random.default_rng(0), 3, 2, False), 3), ValueError,
         "only 2 level"),
    ],
)
def test_bad_arguments_name_the_problem(call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(random_quotes(np.random.default_rng(0), 10))
