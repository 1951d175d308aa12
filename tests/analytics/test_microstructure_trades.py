"""Trades against quotes (sign, effective/realised spread, markouts), Kyle's lambda and VPIN.

Each against a slow, obvious loop (bisect for the prevailing quote) on random
data and on recorded trades; Kyle's lambda against statsmodels OLS.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from quantify.analytics import effective_spread, kyle_lambda, markouts, realized_spread, trade_sign, vpin
from tests.analytics.test_microstructure import random_quotes, real_quotes, recorded_ticks

T0 = pd.Timestamp("2024-08-08 23:54", tz="UTC")
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def random_trades(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"price": 60_000 + np.round(np.cumsum(rng.choice([-0.01, 0.0, 0.0, 0.01], n)), 2),
                         "qty": np.round(rng.random(n), 5) + 1e-5, "is_buyer_maker": rng.random(n) < 0.5},
                        index=T0 + pd.to_timedelta(np.sort(rng.integers(0, 6_000, n)), "ms"))


def real_trades(instrument: str = "BTCUSDT") -> pd.DataFrame:
    return recorded_ticks(instrument).copy()


# ---- slow references -------------------------------------------------------------------------------


_BOOK: list = [None, [], []]  # the frame last asked about (kept alive, so never confused), its times and mids


def prevailing(quotes: pd.DataFrame, t: pd.Timestamp, exact: bool) -> float:
    """The mid of the last quote before ``t`` (at or before with ``exact``)."""
    if _BOOK[0] is not quotes:
        _BOOK[:] = [quotes, [x.value for x in quotes.index],
                    [(b + a) / 2 for b, a in zip(quotes["bid_price"], quotes["ask_price"])]]
    _, times, mids = _BOOK
    j = (bisect.bisect_right if exact else bisect.bisect_left)(times, t.value) - 1
    return mids[j] if j >= 0 else math.nan


def slow_tick_signs(prices: list[float]) -> list[float]:
    out, last = [], math.nan
    for i, p in enumerate(prices):
        if i and p != prices[i - 1]:
            last = 1.0 if p > prices[i - 1] else -1.0
        out.append(last)
    return out


def slow_costs(trades: pd.DataFrame, quotes: pd.DataFrame, horizons: list[str], exact: bool):
    last_quote = quotes.index[-1]
    es, rs, mk = [], {h: [] for h in horizons}, {h: [] for h in horizons}
    for t, row in trades.iterrows():
        s = -1.0 if row["is_buyer_maker"] else 1.0
        m = prevailing(quotes, t, exact)
        es.append(2 * s * (row["price"] - m) / m * 1e4)
        for h in horizons:
            at = t + pd.Timedelta(h)
            mh = prevailing(quotes, at, True) if at <= last_quote else math.nan
            rs[h].append(2 * s * (row["price"] - mh) / m * 1e4)
            mk[h].append(s * (mh - row["price"]) / row["price"] * 1e4 if not math.isnan(m) else math.nan)
    return es, rs, mk


def slow_vpin(trades: pd.DataFrame, vb: float, n: int, bar: str):
    bars = trades.groupby(trades.index.floor(bar)).agg(close=("price", "last"), volume=("qty", "sum"))
    dp = bars["close"].diff().iloc[1:]
    sigma = float(np.std(dp.to_numpy(), ddof=1))
    buckets, filled, b, s = [], 0.0, 0.0, 0.0
    for v, change in zip(bars["volume"].iloc[1:], dp):
        f = norm.cdf(change / sigma)
        while v > 1e-15:
            take = min(v, vb - filled)
            b, s, filled, v = b + take * f, s + take * (1 - f), filled + take, v - take
            if filled >= vb * (1 - 1e-12):
                buckets.append((b, s))
                filled, b, s = 0.0, 0.0, 0.0
    oi = [abs(x - y) for x, y in buckets]
    vp = [math.nan if k + 1 < n else sum(oi[k + 1 - n:k + 1]) / (n * vb) for k in range(len(oi))]
    return buckets, vp, sigma


def slow_kyle_intervals(trades: pd.DataFrame, quotes: pd.DataFrame, freq: str) -> pd.DataFrame:
    step = pd.Timedelta(freq)
    edges = pd.date_range(trades.index[0].floor(step), trades.index[-1].floor(step) + step, freq=step)
    flow = dict.fromkeys(edges[:-1], 0.0)
    for t, qty, maker in zip(trades.index, trades["qty"], trades["is_buyer_maker"]):
        flow[t.floor(step)] += -qty if maker else qty
    rows = [(flow[a], prevailing(quotes, b, False) - prevailing(quotes, a, False))
            for a, b in itertools.pairwise(edges)]
    return pd.DataFrame(rows, columns=["signed_volume", "mid_change"], index=edges[:-1])


# ---- tests -------------------------------------------------------------------------------------


def _close(got, ref, rtol: float = 1e-10, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float), rtol=rtol, atol=atol)


@SETTINGS
@given(n=st.integers(1, 60), m=st.integers(1, 60), seed=st.integers(0, 2**32 - 1), exact=st.booleans())
def test_trade_costs_equal_the_loops_on_random_data(n: int, m: int, seed: int, exact: bool) -> None:
    rng = np.random.default_rng(seed)
    trades, quotes = random_trades(rng, n), random_quotes(rng, m)
    quotes = quotes.assign(bid_qty=quotes["bid_qty"] + 0.1)
    horizons = ["100ms", "1s"]
    es, rs, mk = slow_costs(trades, quotes, horizons, exact)
    _close(effective_spread(trades, quotes, allow_exact_matches=exact), es)
    got_rs = realized_spread(trades, quotes, horizons, allow_exact_matches=exact)
    res = markouts(trades, quotes, horizons, allow_exact_matches=exact)
    for h in horizons:
        _close(got_rs[h], rs[h])
        _close(res.per_trade[h], mk[h])
        v = np.asarray(mk[h])
        ok = ~np.isnan(v)
        assert res.count[h] == ok.sum()
        if ok.any():
            assert res.mean[h] == pytest.approx(v[ok].mean(), rel=1e-10, abs=1e-12)
            w = trades["qty"].to_numpy()[ok]
            assert res.weighted_mean[h] == pytest.approx((v[ok] * w).sum() / w.sum(), rel=1e-9, abs=1e-12)
    _close(trade_sign(trades, method="tick"), slow_tick_signs(trades["price"].tolist()))


def test_trade_costs_on_real_trades() -> None:
    trades = real_trades().iloc[::25]  # the loops are slow: every 25th trade, all quotes
    quotes = real_quotes()
    es, rs, mk = slow_costs(trades, quotes, ["1s", "10s"], exact=False)
    _close(effective_spread(trades, quotes), es)
    got = realized_spread(trades, quotes, ["1s", "10s"])
    res = markouts(trades, quotes, ["1s", "10s"])
    for h in ("1s", "10s"):
        _close(got[h], rs[h])
        _close(res.per_trade[h], mk[h])
    assert np.isfinite(es).mean() > 0.99 and np.nanmedian(np.abs(es)) < 1  # well under a bp on BTCUSDT
    assert "Markouts" in res.summary() and "<table" in res._repr_html_()


def test_lee_ready_uses_the_quote_rule_then_the_tick_test() -> None:
    trades = random_trades(np.random.default_rng(5), 200)
    quotes = random_quotes(np.random.default_rng(6), 150)
    got = trade_sign(trades, quotes, method="lee_ready").to_numpy()
    ticks = slow_tick_signs(trades["price"].tolist())
    for i, (t, p) in enumerate(trades["price"].items()):
        m = prevailing(quotes, t, False)
        ref = ticks[i] if math.isnan(m) or p == m else (1.0 if p > m else -1.0)
        assert got[i] == ref or (math.isnan(got[i]) and math.isnan(ref))
    maker = trade_sign(trades)
    assert set(maker.unique()) <= {1.0, -1.0}
    assert (maker == np.where(trades["is_buyer_maker"], -1.0, 1.0)).all()


def test_signs_given_as_a_series_are_used() -> None:
    trades = random_trades(np.random.default_rng(2), 50)
    quotes = random_quotes(np.random.default_rng(3), 50)
    flipped = -trade_sign(trades)
    pd.testing.assert_series_equal(effective_spread(trades, quotes, sign=flipped),
                                   -effective_spread(trades, quotes))
    with pytest.raises(ValueError, match=r"\+1, -1 or NaN"):
        effective_spread(trades, quotes, sign=flipped * 2)


@pytest.mark.parametrize("intercept", [True, False])
def test_kyle_lambda_equals_statsmodels_ols(intercept: bool) -> None:
    trades, quotes = real_trades(), real_quotes()
    res = kyle_lambda(trades, quotes, "10s", intercept=intercept)
    ref_table = slow_kyle_intervals(trades, quotes, "10s")
    _close(res.intervals["signed_volume"], ref_table["signed_volume"], atol=1e-9)
    _close(res.intervals["mid_change"], ref_table["mid_change"], atol=1e-9)
    ok = ref_table.dropna()
    x = sm.add_constant(ok["signed_volume"]) if intercept else ok[["signed_volume"]]
    fit = sm.OLS(ok["mid_change"], x).fit()
    # statsmodels solves by pseudo-inverse; ours from centred moments: agree to ~1e-10 relative
    assert res.lambda_ == pytest.approx(fit.params["signed_volume"], rel=1e-9)
    assert res.stderr == pytest.approx(fit.bse["signed_volume"], rel=1e-9)
    assert res.tstat == pytest.approx(fit.tvalues["signed_volume"], rel=1e-9)
    assert res.r_squared == pytest.approx(fit.rsquared, rel=1e-9, abs=1e-12)
    assert res.nobs == int(fit.nobs)
    if intercept:
        assert res.alpha == pytest.approx(fit.params["const"], rel=1e-8, abs=1e-12)
    assert res.lambda_ > 0  # buying pushes the mid up
    assert "Kyle" in res.summary() and "lambda_" in res._repr_html_()


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), window=st.integers(1, 8), buckets=st.integers(3, 40))
def test_vpin_equals_the_loop_on_random_trades(seed: int, window: int, buckets: int) -> None:
    rng = np.random.default_rng(seed)
    trades = random_trades(rng, 400)
    vb = float(trades["qty"].sum()) / buckets
    res = vpin(trades, vb, window, bar="1s")
    ref, vp, sigma = slow_vpin(trades, vb, window, "1s")
    assert len(res.buckets) == len(ref)
    # bar volumes are summed exactly (in decimal) by resample, the loop sums floats: ~1e-12 relative
    _close(res.buckets["buy_volume"], [b for b, _ in ref], rtol=1e-8)
    _close(res.buckets["sell_volume"], [s for _, s in ref], rtol=1e-8)
    _close(res.buckets["vpin"], vp, rtol=1e-8)
    assert res.sigma == pytest.approx(sigma, rel=1e-12)


def test_vpin_on_real_trades() -> None:
    trades = real_trades()
    vb = float(trades["qty"].sum()) / 200
    res = vpin(trades, vb, 20, bar="1s")
    ref, vp, _ = slow_vpin(trades, vb, 20, "1s")
    _close(res.buckets["vpin"], vp, rtol=1e-8)
    valid = res.buckets["vpin"].dropna()
    assert len(valid) == len(ref) - 19 and valid.between(0, 1).all()
    assert res.last == pytest.approx(valid.iloc[-1]) and res.n_buckets == len(ref)
    assert res.buckets.index.is_monotonic_increasing
    assert "VPIN" in res.summary() and "n_buckets" in res._repr_html_()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t, q: trade_sign(t, method="quote"), ValueError, "method must be one of"),
        (lambda t, q: trade_sign(t, method="lee_ready"), ValueError, "needs quotes"),
        (lambda t, q: effective_spread(t.drop(columns="is_buyer_maker"), q), ValueError, "is_buyer_maker"),
        (lambda t, q: effective_spread(t, q.iloc[::-1]), ValueError, "must be sorted"),
        (lambda t, q: realized_spread(t, q, []), ValueError, "at least one horizon"),
        (lambda t, q: markouts(t, q, ["1s", "1s"]), ValueError, "distinct"),
        (lambda t, q: kyle_lambda(t.iloc[:3], q), ValueError, "kyle_lambda needs at least 3 intervals"),
        (lambda t, q: kyle_lambda(t.iloc[::-1], q), ValueError, "trades must be in time order"),
        (lambda t, q: vpin(t, 0.0), ValueError, "bucket_volume must be > 0"),
        (lambda t, q: vpin(t.assign(price=60_000.0), 1.0, bar="1s"), ValueError, "never changes"),
        (lambda t, q: effective_spread(t.assign(price=t["price"].where(np.arange(len(t)) != 5)), q), ValueError,
         "NaN prices"),
    ],
)
def test_bad_arguments_name_the_problem(call, error: type[Exception], match: str) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(error, match=match):
        call(random_trades(rng, 300), random_quotes(rng, 100))
