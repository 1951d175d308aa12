"""``qf.asof`` equals ``pandas.merge_asof`` for every option it supports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantify as qf
from quantify.analytics import asof

T0 = pd.Timestamp("2024-08-08 23:54", tz="UTC")


def _reference(left: pd.DataFrame, right: pd.DataFrame, **kw: object) -> pd.DataFrame:
    on = kw.pop("on", None)
    if on is None:
        out = pd.merge_asof(left, right, left_index=True, right_index=True, suffixes=("", "_right"), **kw)
    else:
        out = pd.merge_asof(left, right, on=on, suffixes=("", "_right"), **kw)
        out.index = left.index
        out = out[[*left.columns, *[c for c in out.columns if c not in left.columns]]]
    return out


def _frames(rng: np.random.Generator, n: int, m: int, span: int, dup: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random sorted frames on a ms clock; ``span`` small makes many ties and duplicates."""
    lt = np.sort(rng.integers(0, span, n)) if dup else np.sort(rng.choice(10 * span + n, n, replace=False))
    rt = np.sort(rng.integers(0, span, m)) if dup else np.sort(rng.choice(10 * span + m, m, replace=False))
    left = pd.DataFrame({"price": rng.normal(100, 1, n), "qty": rng.random(n),
                         "is_buyer_maker": rng.random(n) < 0.5},
                        index=pd.DatetimeIndex(T0 + pd.to_timedelta(lt, "ms"), name="time"))
    right = pd.DataFrame({"bid_price": rng.normal(99, 1, m), "ask_qty": rng.random(m),
                          "update_id": np.arange(m, dtype=np.int64), "flag": rng.random(m) < 0.5,
                          "price": rng.random(m)},
                         index=pd.DatetimeIndex(T0 + pd.to_timedelta(rt, "ms"), name="time"))
    right.loc[right.index[::7], "bid_price"] = np.nan  # NaN values (never keys) are carried as they are
    return left, right


OPTIONS = st.fixed_dictionaries({
    "direction": st.sampled_from(["backward", "forward", "nearest"]),
    "allow_exact_matches": st.booleans(),
    "tolerance": st.sampled_from([None, pd.Timedelta(0), pd.Timedelta("3ms"), pd.Timedelta("50ms")]),
})


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(0, 60), m=st.integers(0, 60), span=st.integers(1, 80), dup=st.booleans(),
       seed=st.integers(0, 2**32 - 1), options=OPTIONS)
def test_equals_merge_asof_on_random_frames(n: int, m: int, span: int, dup: bool, seed: int,
                                            options: dict) -> None:
    left, right = _frames(np.random.default_rng(seed), n, m, span, dup)
    pd.testing.assert_frame_equal(asof(left, right, **options), _reference(left, right, **options))


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
@pytest.mark.parametrize("exact", [True, False])
def test_equals_merge_asof_on_a_column_and_on_numbers(direction: str, exact: bool) -> None:
    rng = np.random.default_rng(3)
    left, right = _frames(rng, 500, 700, 300, dup=True)
    left, right = left.reset_index(), right.reset_index()
    kw = {"direction": direction, "allow_exact_matches": exact}
    pd.testing.assert_frame_equal(asof(left, right, on="time", **kw), _reference(left, right, on="time", **kw))
    left["t"] = left["time"].astype("int64") // 10**6
    right["t"] = right["time"].astype("int64") // 10**6
    left, right = left.drop(columns="time"), right.drop(columns="time")
    got = asof(left, right, on="t", tolerance=5, **kw)
    pd.testing.assert_frame_equal(got, _reference(left, right, on="t", tolerance=5, **kw))
    left["t"], right["t"] = left["t"] / 7.0, right["t"] / 7.0  # float keys
    got = asof(left, right, on="t", tolerance=0.5, **kw)
    pd.testing.assert_frame_equal(got, _reference(left, right, on="t", tolerance=0.5, **kw))


def _real_quotes(ticks: pd.DataFrame) -> pd.DataFrame:
    """A quotes frame from real trades: a sell prints at the bid, a buy at the ask (one tick wide)."""
    sell = ticks["is_buyer_maker"].to_numpy()
    p = ticks["price"].to_numpy()
    bid = np.where(sell, p, p - 0.01)
    return pd.DataFrame({"bid_price": bid, "bid_qty": ticks["qty"].to_numpy(), "ask_price": bid + 0.01,
                         "ask_qty": ticks["qty"].to_numpy()[::-1].copy()}, index=ticks.index)


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
def test_equals_merge_asof_on_real_trades(direction: str) -> None:
    ticks = qf.datasets.sample_ticks("BTCUSDT")["BTCUSDT"][["price", "qty", "is_buyer_maker", "trade_id"]]
    quotes = _real_quotes(qf.datasets.sample_ticks("binance-usdm:BTCUSDT")["binance-usdm:BTCUSDT"])
    assert ticks.index.duplicated().any() and quotes.index.duplicated().any()
    for exact in (True, False):
        kw = {"direction": direction, "allow_exact_matches": exact}
        pd.testing.assert_frame_equal(asof(ticks, quotes, **kw), _reference(ticks, quotes, **kw))
    got = asof(ticks, quotes, columns=["bid_price"], tolerance="100ms", direction=direction)
    ref = _reference(ticks, quotes[["bid_price"]], tolerance=pd.Timedelta("100ms"), direction=direction)
    pd.testing.assert_frame_equal(got, ref)


def test_unsorted_keys_name_the_row() -> None:
    left, right = _frames(np.random.default_rng(0), 20, 20, 1000, dup=False)
    shuffled = right.iloc[[0, 1, 3, 2, *range(4, 20)]]
    with pytest.raises(ValueError, match=r"right's index must be sorted .*row 3 goes back"):
        asof(left, shuffled)
    with pytest.raises(ValueError, match=r"left\['x'\]|no column 'x'"):
        asof(left, right, on="x")


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"direction": "sideways"}, ValueError, "direction must be one of"),
        ({"tolerance": pd.Timedelta("-1s")}, ValueError, "non-negative"),
        ({"tolerance": 5}, TypeError, "Timedelta on datetime keys"),
        ({"columns": ["nope"]}, ValueError, r"no column\(s\) \['nope'\]"),
        ({"suffix": ""}, ValueError, "suffix"),
        ({"allow_exact_matches": "yes"}, TypeError, "allow_exact_matches"),
    ],
)
def test_bad_options_raise(kw: dict, error: type[Exception], match: str) -> None:
    left, right = _frames(np.random.default_rng(0), 5, 5, 100, dup=False)
    with pytest.raises(error, match=match):
        asof(left, right, **kw)


def test_keys_of_different_kinds_or_zones_are_refused() -> None:
    left, right = _frames(np.random.default_rng(0), 5, 5, 100, dup=False)
    with pytest.raises(TypeError, match="differ in kind"):
        asof(left, right.tz_convert("Asia/Tokyo"))
    with pytest.raises(TypeError, match="differ in kind"):
        asof(left, right.reset_index(drop=True))
    with pytest.raises(TypeError, match="must be a DataFrame"):
        asof(left["price"], right)  # type: ignore[arg-type]
    nat = right.copy()
    nat.index = pd.DatetimeIndex([pd.NaT, *nat.index[1:]], name="time")
    with pytest.raises(ValueError, match="NaT"):
        asof(left, nat)


@pytest.mark.slow  # ~25 s: a million rows a side, every option; the random frames above are the bounded form
@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
def test_equals_merge_asof_on_a_million_rows(direction: str) -> None:
    left, right = _frames(np.random.default_rng(11), 1_000_000, 1_000_000, 3_600_000, dup=True)
    for exact in (True, False):
        for tol in (None, pd.Timedelta("2ms")):
            kw = {"direction": direction, "allow_exact_matches": exact, "tolerance": tol}
            pd.testing.assert_frame_equal(asof(left, right, **kw), _reference(left, right, **kw))
