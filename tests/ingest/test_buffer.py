"""Id ordering: contiguous runs out, gaps tracked, duplicates dropped."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.ingest.buffer import SymbolBuffer
from quantify.model.trades import Trade


def trade(i: int) -> Trade:
    return Trade("BTCUSDT", i, 1.0, 1.0, 1_700_000_000_000 + i, False, i, i, True, 0)


def ids(trades: list[Trade]) -> list[int]:
    return [t.trade_id for t in trades]


def test_in_order_and_duplicates() -> None:
    buf = SymbolBuffer("BTCUSDT", next_id=10)
    for i in (8, 9, 10, 11, 11, 12):
        buf.add(trade(i))
    assert ids(buf.take()) == [10, 11, 12] and buf.duplicates == 3 and not buf.gaps


def test_gap_holds_later_trades_until_filled() -> None:
    buf = SymbolBuffer("BTCUSDT")
    for i in (1, 2, 5, 6, 9):
        buf.add(trade(i))
    assert ids(buf.take()) == [1, 2]
    assert [(g.first, g.last) for g in buf.gaps] == [(3, 4), (7, 8)] and buf.pending == 3
    assert buf.fill([trade(i) for i in range(3, 10)]) == 4
    assert ids(buf.take()) == [3, 4, 5, 6, 7, 8, 9]
    assert buf.gaps_found == 2 and buf.gaps_filled == 2 and not buf.gaps and buf.pending == 0


def test_give_up_skips_the_gap() -> None:
    buf = SymbolBuffer("BTCUSDT", next_id=1)
    for i in (1, 4, 5):
        buf.add(trade(i))
    buf.give_up(buf.gaps[0])
    assert ids(buf.take()) == [1, 4, 5] and buf.trades_lost == 2 and buf.gaps_unfilled == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.floats(0, 0.3), st.floats(0, 0.3), st.integers(0, 2**32))
def test_any_arrival_order_gives_each_id_once(n: int, drop: float, dup: float, seed: int) -> None:
    rng = random.Random(seed)
    stream = []
    for i in range(1, n + 1):
        if rng.random() >= drop:
            stream.append(i)
        if rng.random() < dup:
            stream.append(max(1, i - rng.randint(0, 5)))
    buf = SymbolBuffer("BTCUSDT", next_id=1)
    out: list[int] = []
    for i in stream:
        buf.add(trade(i))
        if rng.random() < 0.1:
            out += ids(buf.take())
            buf.fill([trade(j) for j in range(1, n + 1)][: rng.randint(0, n)])
    buf.fill([trade(j) for j in range(1, n + 1)])
    out += ids(buf.take())
    last = max(stream) if stream else 0
    assert out == list(range(1, len(out) + 1))
    assert len(out) == last


def test_head_probe_recovers_trades_before_the_first_received() -> None:
    buf = SymbolBuffer("BTCUSDT", start_ms=1_700_000_000_000 + 3)
    for i in (6, 7, 9):
        buf.add(trade(i))
    assert buf.take() == [] and buf.head == 6
    # REST: ids 1..8; ids >= 3 are at or after the start time
    assert buf.resolve_head([trade(i) for i in range(1, 9)]) == 3
    assert ids(buf.take()) == [3, 4, 5, 6, 7]
    buf.fill([trade(8)])
    assert ids(buf.take()) == [8, 9]


def test_head_probe_given_up_starts_at_first_received() -> None:
    buf = SymbolBuffer("BTCUSDT", start_ms=0)
    buf.add(trade(5))
    buf.add(trade(6))
    buf.resolve_head([])
    assert ids(buf.take()) == [5, 6]


def test_skip_unserved_gives_up_the_ids_below_the_first_served_one() -> None:
    buf = SymbolBuffer("BTCUSDT", next_id=10)
    for i in (10, 12, 13, 20):
        buf.add(trade(i))
    assert [(g.first, g.last) for g in buf.gaps] == [(11, 11), (14, 19)]
    assert buf.skip_unserved(11, 12) == 1
    assert ids(buf.take()) == [10, 12, 13] and buf.next_id == 14 and buf.trades_lost == 1
    assert buf.skip_unserved(14, 16) == 2  # the head of a gap: its rest stays open
    assert [(g.first, g.last) for g in buf.gaps] == [(16, 19)] and buf.next_id == 16
    assert buf.skip_unserved(15, 30) == 0  # not in the first gap: nothing given up
