"""Order-book alert kinds on a real recording: the alert's number is the analytics' number.

The shipped spot BTCUSDT depth capture (its first file, 2024-08-08 23:54 .. 00:00 UTC) goes
through :class:`~quantify.model.booksync.BookSync` as the ingestion writer
drives it, with a few diff frames dropped so that the book goes out of sync
and back (the snapshot answers arrive a chosen number of events later, as
over REST). Every second of receipt time the writer's flush hands the
engine the new quotes, the ledger events and each book's stale seconds
(``AlertEngine.book_batch``). Spread and imbalance rules must fire exactly
at the quotes where :func:`quantify.analytics.quoted_spread` and
:func:`quantify.analytics.imbalance` of the concatenated quotes pass the
level while armed; ``book-stale`` once per episode out of sync longer than
its seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

import quantify as qf
from quantify import alerts as qa
from quantify.model.book import DepthDiff, DepthSnapshot, OrderBook
from quantify.model.book_frames import BookFrames, book_frames
from quantify.model.booksync import BookSync
from quantify.widgets._alert_form import EditBar, RuleForm
from quantify.widgets._alert_view import describe
from tests.book_helpers import events

DATA = Path(qf.__file__).resolve().parent / "data"
FILES = [DATA / "spot-2024-btcusdt_20240808.book.gz"]
INST = "BTCUSDT"
#: Diff events (by position among the diffs) dropped, and how many events later each gap's snapshot arrives.
DROPS = {300: 4, 900: 30, 1500: 45, 2100: 9, 2900: 70}
FLUSH_NS = 1_000_000_000


class Flush(NamedTuple):
    """What the writer hands the engine after one append."""

    quotes: pd.DataFrame
    ledger: pd.DataFrame
    stale_seconds: float
    #: What the writer stored just before (quotes, diffs, checkpoints, ledger).
    frames: BookFrames | None = None


def writer_flushes(stream, drops, flush_ns, rule="spot") -> list[Flush]:
    """Run the book as the writer does and cut its output into flushes every ``flush_ns`` of receipt time.

    A full reference book (the recording's snapshot and every diff after it,
    advanced along the stream, as ``tests.book_helpers.Truth`` builds it)
    answers the snapshots: a gap's answer is the book at the event that
    revealed it, handed over ``drops[...]`` events later; a range refresh
    (the price left the snapshot's 1,000 levels) is answered at once.
    """
    snap = next(ev for _, ev in stream if type(ev) is DepthSnapshot)
    ref = OrderBook.from_levels(snap.bids, snap.asks, snap.last_update_id)

    def answer() -> DepthSnapshot:
        return DepthSnapshot(ref.update_id, ref.side(True, 1000), ref.side(False, 1000), INST, 1000)

    sync = BookSync(INST, rule)
    out: list[Flush] = []
    applied: list = []

    def flush(at_ns: int) -> None:
        frames = book_frames(applied, sync.take_events())
        out.append(Flush(frames.quotes, frames.ledger, sync.stale_seconds_now(at_ns), frames))
        applied.clear()

    pending: list = []  # [events left, snapshot] of a gap's snapshot under way
    delay, n_diff, flush_end = 0, -1, stream[0][0] + flush_ns
    for recv, ev in stream:
        while recv >= flush_end:
            flush(flush_end)
            flush_end += flush_ns
        if type(ev) is DepthDiff:
            n_diff += 1
            if ev.last_id > ref.update_id:
                ref.apply(ev)
            if n_diff in drops:
                delay = drops[n_diff]
                continue
            applied.extend(sync.on_diff(ev, recv))
            if sync.wants_snapshot and sync.live:
                applied.extend(sync.on_snapshot(answer(), recv))
            elif sync.wants_snapshot and not pending and sync.ledger.events:
                pending = [delay, answer()]
            elif pending:
                pending[0] -= 1
                if pending[0] <= 0:
                    applied.extend(sync.on_snapshot(pending[1], recv))
                    pending = []
        elif type(ev) is DepthSnapshot:
            applied.extend(sync.on_snapshot(ev, recv))
        else:
            sync.on_ticker(ev, recv)
    flush(flush_end)
    assert sync.live and sync.ledger.gaps == sync.ledger.resyncs == len(drops) and sync.ledger.mismatches == 0
    return out


@pytest.fixture(scope="module")
def flushes() -> list[Flush]:
    """The writer's flushes of the one book (quotes, ledger events, stale seconds)."""
    return writer_flushes(events(FILES), DROPS, FLUSH_NS)


@pytest.fixture(scope="module")
def quotes(flushes) -> pd.DataFrame:
    """Every quote the writer stored, in order (what ``store.quotes`` reads back)."""
    return pd.concat([f.quotes for f in flushes if len(f.quotes)])


def feed(engine: qa.AlertEngine, flushes: list[Flush]) -> None:
    """Hand each flush to the engine as the writer does after each book append."""
    for f in flushes:
        engine.book_batch({INST: f.quotes} if len(f.quotes) else {}, {INST: f.ledger} if len(f.ledger) else {},
                          {INST: f.stale_seconds})


def run(store, flushes, make_engine, **kwargs) -> qa.AlertEngine:
    engine = make_engine(store, **kwargs)
    feed(engine, flushes)
    return engine


def expected_firings(values: np.ndarray, times: np.ndarray, level: float, margin: float, *, above: bool = True,
                     cooldown_ns: int = 0) -> list[int]:
    """The rule's trigger quote by quote: armed, the first value beyond ``level`` (strictly) fires
    unless within the cooldown of the last firing, and disarms; disarmed, the first value back by more
    than ``margin`` re-arms; NaN does neither."""
    out: list[int] = []
    armed, last = True, None
    for i, v in enumerate(values):
        if np.isnan(v):
            continue
        beyond = v > level if above else v < level
        back = v < level - margin if above else v > level + margin
        if armed and beyond:
            if last is None or times[i] - last >= cooldown_ns:
                out.append(i)
                last = times[i]
            armed = False
        elif not armed and back:
            armed = True
    return out


CASES = {
    "spread above 0.01 bps": dict(kind="spread-above", bps=0.01, margin=0.005),
    "spread, 30 s cooldown": dict(kind="spread-above", bps=0.01, margin=0.005, cooldown=30),
    "|imbalance| above 0.95": dict(kind="imbalance-beyond", level=0.95, op="abs-above", margin=0.3),
    "imbalance below -0.9": dict(kind="imbalance-beyond", level=-0.9, op="below", margin=0.4),
}
STALE_LIMIT = 1.5


@pytest.fixture(scope="module")
def judged(flushes) -> dict[str, tuple[qa.Rule, pd.DataFrame]]:
    """One writer run with every case's rule and a ``book-stale`` one: case -> (rule, its alert history)."""
    return judge(flushes, "mem://book-alerts-judged")


def judge(flushes: list[Flush], uri: str) -> dict[str, tuple[qa.Rule, pd.DataFrame]]:
    store = qf.open_store(uri)
    book = qa.AlertBook(store)
    ids = {}
    for case, spec in CASES.items():
        spec = dict(spec)
        ids[case] = book.add(qa.make_rule(spec.pop("kind"), INST, **spec), check_symbols=False)
    ids["stale"] = book.add(qa.book_stale(INST, STALE_LIMIT), check_symbols=False)
    engine = qa.AlertEngine(store, log_alerts=False, poll_interval=0)
    try:
        feed(engine, flushes)
    finally:
        engine.dispatcher.close(1.0)
    return {case: (book.get(rid), book.history(rule_id=rid)) for case, rid in ids.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_book_rule_fires_exactly_where_the_analytics_value_crosses(judged, quotes, case):
    rule, hist = judged[case]
    check_agreement(rule, hist, quotes)


def check_agreement(rule: qa.Rule, hist: pd.DataFrame, quotes: pd.DataFrame, minimum: int = 3) -> None:
    """``rule`` fired exactly at the quotes where the analytics' value passes its level while armed."""
    p = rule.params
    if rule.kind == "spread-above":
        v = qf.quoted_spread(quotes, unit="bps").to_numpy()
        test, above = v, True
    else:
        v = qf.imbalance(quotes, levels=1).to_numpy()
        test, above = (np.abs(v) if p["op"] == "abs-above" else v), p["op"] != "below"
    times = quotes.index.asi8
    want = expected_firings(test, times, rule.threshold, p["margin"], above=above,
                            cooldown_ns=int(rule.cooldown * 1e9))
    assert len(want) >= minimum  # the level is met several times: fired, re-armed, fired again
    if rule.cooldown and minimum:  # the cooldown held some firings back
        assert len(want) < len(expected_firings(test, times, rule.threshold, p["margin"]))
    assert list(hist["trade_id"]) == quotes["update_id"].to_numpy()[want].tolist()
    assert list(hist["fired_at"]) == list(quotes.index[want])
    np.testing.assert_array_equal(hist["value"].to_numpy(), v[want])
    assert (hist["threshold"] == rule.threshold).all() and (hist["kind"] == rule.kind).all()
    assert (hist["trigger_symbol"] == INST).all()


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
OTHER_RECORDINGS = {
    "usdm-2024 BTCUSDT (shipped)": ("usdm", [DATA / "usdm-2024-btcusdt_20240808.book.gz"]),
    "spot-2024 BTCUSDT (both files)": ("spot", [DATA / "spot-2024-btcusdt_20240808.book.gz",
                                                DATA / "spot-2024-btcusdt_20240809.book.gz"]),
    "usdm-2024 BTCUSDT": ("usdm", [SHARED / "usdm-2024/btcusdt_20240808.gz"]),
    "mixed-2023 USD-M BTCUSDT": ("usdm", [SHARED / "mixed-2023/usdm_btcusdt_20230404.dat.gz",
                                          SHARED / "mixed-2023/usdm_btcusdt_20230405.dat.gz"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OTHER_RECORDINGS))
def test_book_rules_agree_with_the_analytics_on_other_recordings(name):
    rule, files = OTHER_RECORDINGS[name]
    if not all(f.exists() for f in files):
        pytest.skip(f"{name}: recording not here")
    stream = events(files)
    n = sum(type(ev) is DepthDiff for _, ev in stream)
    drops = {int(n * k / 6): 20 for k in range(1, 6)}
    flushes = writer_flushes(stream, drops, FLUSH_NS, rule)
    quotes = pd.concat([f.quotes for f in flushes if len(f.quotes)])
    judged = judge(flushes, f"mem://book-alerts-{abs(hash(name))}")
    met = 0
    for case in CASES:
        rule_, hist = judged[case]
        check_agreement(rule_, hist, quotes, minimum=0)
        met += len(hist) > 0
    assert met >= 2
    print(f"{name}: {len(quotes)} quotes, firings {[len(judged[c][1]) for c in CASES]}")


def stale_episodes(flushes: list[Flush]) -> list[dict]:
    """Each episode out of sync from the ledger (gap .. resync), with the stale seconds the writer reported."""
    episodes: list[dict] = []
    for f in flushes:
        for t, row in f.ledger.iterrows():
            if row["kind"] == "gap":
                episodes.append({"start": t, "id": int(row["got_id"]), "seen": [], "length": None})
            elif row["kind"] == "resync":
                episodes[-1]["length"] = float(row["stale_seconds"])
        if f.stale_seconds > 0:
            episodes[-1]["seen"].append(f.stale_seconds)
    return episodes


@pytest.mark.parametrize("every", [1, 20])
def test_book_stale_fires_once_per_episode_longer_than_its_seconds(store, flushes, judged, make_engine, every):
    limit = STALE_LIMIT
    if every == 1:
        _, hist = judged["stale"]  # the writer flushes every second
    else:  # every 20 s: episodes also start and end between two calls
        merged = []
        for i in range(0, len(flushes), every):
            part = flushes[i:i + every]
            merged.append(Flush(pd.concat([f.quotes for f in part]), pd.concat([f.ledger for f in part]),
                                part[-1].stale_seconds))
        flushes = merged
        book = qa.AlertBook(store)
        rid = book.add(qa.book_stale(INST, limit), check_symbols=False)
        engine = run(store, flushes, make_engine)
        hist = book.history(rule_id=rid)
        assert engine.stats()["alerts_book_batches"] == len(flushes)

    episodes = stale_episodes(flushes)
    assert len(episodes) == len(DROPS) and all(e["length"] is not None for e in episodes)
    long = [e for e in episodes if e["length"] > limit]
    assert 0 < len(long) < len(episodes)  # short episodes pass quietly
    assert list(hist["trade_id"]) == [e["id"] for e in long]
    for (_, row), e in zip(hist.iterrows(), long, strict=True):
        seen = [s for s in e["seen"] if s > limit]
        want = seen[0] if seen else e["length"]
        assert row["value"] == want  # first look beyond the limit, or the episode's length at its resync
        if seen:  # dated on the exchange clock: the gap's event time plus the seconds out of sync
            assert row["fired_at"] == e["start"] + pd.Timedelta(seconds=want)
        else:  # dated at the resync that ended it
            assert row["fired_at"] > e["start"]
    if every == 1:
        assert any(e["seen"] and max(e["seen"]) > limit for e in long)  # seen while open, more than once
        assert any(sum(s > limit for s in e["seen"]) > 1 for e in long)


def test_a_quote_handed_twice_is_judged_once_and_state_survives_a_restart(store, flushes, judged, make_engine):
    book = qa.AlertBook(store)
    rid = book.add(qa.make_rule(**dict(CASES["|imbalance| above 0.95"], symbols=INST)), check_symbols=False)
    part = flushes[:240]  # the first four minutes, cut in two by a restart of the writer
    first = run(store, part[:120], make_engine)
    first.book_batch({INST: part[119].quotes}, {}, {INST: 0.0})  # the same quotes again
    first.close()
    run(store, part[120:], make_engine)  # a new writer: rule state and book position from the checkpoint
    check_once(book.history(rule_id=rid), judged["|imbalance| above 0.95"][1], part)


def check_once(got: pd.DataFrame, once: pd.DataFrame, part: list[Flush]) -> None:
    """``got`` holds exactly the firings of one writer throughout (``once``) over the flushes ``part``."""
    once = once[once["trade_id"] <= pd.concat([f.quotes for f in part])["update_id"].max()]
    assert len(got) == len(once) >= 3
    assert once["fired_at"].iloc[0] < part[len(part) // 2].quotes.index[0] < once["fired_at"].iloc[-1]
    assert list(got["trade_id"]) == list(once["trade_id"])
    assert list(got["value"]) == list(once["value"])


def test_a_crashed_writer_s_quotes_are_judged_again_and_stored_once(store, flushes, judged, make_engine):
    # the writer stores each flush, then hands it to the engine; the engine's last checkpoint is far
    # behind when the writer dies: the next engine judges the stored quotes after it again
    book = qa.AlertBook(store)
    rid = book.add(qa.make_rule(**dict(CASES["|imbalance| above 0.95"], symbols=INST)), check_symbols=False)
    part = flushes[:240]
    first = make_engine(store, checkpoint_interval=3600)  # one checkpoint, at its first call
    for f in part[:120]:
        store.append_book({INST: f.frames})
        feed(first, [f])
    first.dispatcher.close(1.0)  # killed: no final checkpoint
    stored = book.history(rule_id=rid)
    after_checkpoint = int((stored["trade_id"] > part[0].quotes["update_id"].max()).sum())
    second = make_engine(store)
    for f in part[120:]:
        store.append_book({INST: f.frames})
        feed(second, [f])
    # the quotes the alerts were judged on are the ones a notebook reads back
    pd.testing.assert_frame_equal(store.quotes(INST), pd.concat([f.quotes for f in part]))
    stats = second.stats()
    # judged again on start: every quote stored after the checkpoint (the first call's), the batch that
    # started it included (stored before the call)
    assert stats["alerts_catchup_quotes"] == sum(len(f.quotes) for f in part[1:121])
    assert stats["alerts_deduplicated"] == after_checkpoint > 0  # judged again, not stored again
    check_once(book.history(rule_id=rid), judged["|imbalance| above 0.95"][1], part)


def test_quotes_with_a_side_unknown_neither_fire_nor_rearm(store, make_engine):
    ask = [100.7, np.nan, 100.7, 100.7, 100.2, 100.7, 100.7]  # spread 69.8 bps, or 20.0 at 100.2
    bid = [100.0, 100.0, np.nan, 100.0, 100.0, np.nan, 100.0]
    n = len(ask)
    q = pd.DataFrame({"bid_price": bid, "bid_qty": 1.0, "ask_price": ask, "ask_qty": 1.0,
                      "update_id": np.arange(1, n + 1)},
                     index=pd.DatetimeIndex(pd.to_datetime(np.arange(n), unit="s", utc=True), name="time"))
    book = qa.AlertBook(store)
    rid = book.add(qa.spread_above(INST, 50.0, margin=10.0), check_symbols=False)
    engine = make_engine(store)
    for rows in ([0, 1], [2], [3, 4], [5], [6]):  # [2] and [5]: a batch with every bid unknown
        engine.book_batch({INST: q.iloc[rows]}, {}, {})
    hist = book.history(rule_id=rid)
    # fires at 1; NaN spreads at 2, 3, 6 neither re-arm nor fire; 20 bps at 5 re-arms; fires at 7
    assert list(hist["trade_id"]) == [1, 7]
    assert engine.stats()["alerts_rule_errors"] == 0 and engine.stats()["alerts_quotes"] == n


def test_rule_validation_says_what_to_write():
    assert qa.spread_above(INST, "2.5").params == {"bps": 2.5, "margin": 0.0}
    r = qa.imbalance_beyond("binance-usdm:btcusdt", 0.6)
    assert r.symbols == ("binance-usdm:BTCUSDT",) and r.params["op"] == "abs-above" and r.threshold == 0.6
    assert qa.book_stale(INST, "2m").threshold == 120.0
    assert r.format_message(value=-0.71, time=pd.Timestamp(0, tz="UTC")) == (
        "binance-usdm:BTCUSDT book imbalance -0.71 (threshold 0.6)")
    bad = {
        "bps must be positive, got -1": lambda: qa.spread_above(INST, -1),
        "bps: a spread-above rule needs bps": lambda: qa.make_rule("spread-above", INST),
        r"level must lie strictly between -1 and 1 .*got 1\.5": lambda: qa.imbalance_beyond(INST, 1.5),
        "level of an abs-above imbalance rule must be >= 0": lambda: qa.imbalance_beyond(INST, -0.5),
        r"levels: the writer judges imbalance on the best bid and offer \(levels=1\); got 5":
            lambda: qa.imbalance_beyond(INST, 0.5, levels=5),
        "levels must be a positive integer number of book levels, got 'two'":
            lambda: qa.imbalance_beyond(INST, 0.5, levels="two"),
        "op must be one of above, below, abs-above, got 'beyond'": lambda: qa.imbalance_beyond(INST, 0.5, op="beyond"),
        "seconds must be a positive duration such as '5m', got 0": lambda: qa.book_stale(INST, 0),
        "symbols: a book-stale rule watches one symbol": lambda: qa.make_rule("book-stale", "BTCUSDT/ETHUSDT",
                                                                              seconds=5),
    }
    for msg, make in bad.items():
        with pytest.raises(ValueError, match=msg):
            make()


def test_alert_panel_form_offers_the_book_kinds():
    form = RuleForm([INST], lambda action, fn: fn())
    assert set(qa.BOOK_KINDS) <= set(form.kind.options)

    def shown():
        return [n for box in form.params_box.children for n, f in form.fields.items() if f is box.children[1]]

    form.kind.value = "spread-above"
    assert shown() == ["bps", "margin"] and form.fields["bps"].placeholder == "e.g. 2"
    form.fields["bps"].value = "-3"
    assert "bps must be positive" in form.error.value  # inline, before any rule is built
    form.fields["bps"].value = "1.5"
    assert form.rule().params["bps"] == 1.5 and form.error.value == ""
    form.kind.value = "imbalance-beyond"
    assert shown() == ["level", "op", "margin"]  # levels: 1, the best bid and offer, for now
    form.fields["level"].value = "0.8"
    assert form.rule().params == {"level": 0.8, "op": "abs-above", "levels": 1, "margin": 0.0}
    form.kind.value = "book-stale"
    assert shown() == ["seconds"] and "Out of sync for" in form.field_boxes["seconds"].children[0].value
    form.fields["seconds"].value = "5s"
    assert form.rule().threshold == 5.0
    form.kind.value = "stale"  # the trade kind's label comes back
    assert "Silent for" in form.field_boxes["seconds"].children[0].value


def test_alert_panel_lists_and_edits_book_rules():
    spread = qa.spread_above(INST, 2, margin=0.5)
    imb = qa.imbalance_beyond(INST, -0.8, op="below")
    stale = qa.book_stale(INST, 90)
    assert [describe(r) for r in (spread, imb, stale)] == [
        "spread > 2 bps (re-arm ±0.5)", "imbalance < -0.8", "book out of sync for 90s"]
    bar = EditBar()
    bar.show(spread)
    assert bar.threshold.value == "2" and "Spread bps" in bar.threshold_box.children[0].value
    bar.threshold.value = "3.5"
    assert spread.replace(**bar.changes(spread)).params["bps"] == 3.5
    bar.show(stale)
    assert "Out of sync for" in bar.threshold_box.children[0].value
    assert stale.replace(**bar.changes(stale)).params["seconds"] == 90.0


def test_book_stale_episode_joined_late_is_dated_from_the_last_quote(store, make_engine):
    def ts(s: float) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime([int(s * 1e9)], utc=True), name="time")

    def ledger(kind: str, at: float, got: int, stale: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({"kind": [kind], "expected_id": [got - 1], "got_id": [got], "stale_seconds": [stale],
                             "detail": [""]}, index=ts(at))

    quote = pd.DataFrame({"bid_price": [100.0], "bid_qty": [1.0], "ask_price": [100.1], "ask_qty": [1.0],
                          "update_id": [41]}, index=ts(10))
    book = qa.AlertBook(store)
    rid = book.add(qa.book_stale(INST, 5), check_symbols=False)
    engine = make_engine(store)
    engine.book_batch({INST: quote}, {}, {INST: 0.0})
    engine.book_batch({}, {}, {INST: 3.0})  # out of sync, the gap not handed over (the writer restarted)
    engine.book_batch({}, {}, {INST: 6.0})  # fires: dated from the last quote, named by its update id
    engine.book_batch({}, {}, {INST: 9.0})  # the same episode: quiet
    engine.book_batch({}, {INST: ledger("resync", 25, 60, 14.0)}, {INST: 0.0})
    engine.book_batch({}, {INST: ledger("gap", 30, 77)}, {INST: 2.0})
    engine.book_batch({}, {INST: ledger("resync", 40, 90, 9.5)}, {INST: 0.0})  # ended between two looks
    engine.book_batch({}, {INST: ledger("gap", 50, 95)}, {INST: 7.0})
    # a writer resumed the stored book (in sync), then a new gap, both between two looks
    engine.book_batch({}, {INST: pd.concat([ledger("resume", 60, 95), ledger("gap", 70, 99)])}, {INST: 5.5})
    hist = book.history(rule_id=rid)
    assert list(hist["trade_id"]) == [41, 77, 95, 99]
    assert list(hist["value"]) == [6.0, 9.5, 7.0, 5.5]
    assert list(hist["fired_at"]) == [ts(16)[0], ts(40)[0], ts(57)[0], ts(75.5)[0]]
    assert hist["message"].iloc[0] == f"{INST}: book out of sync for 6.0 s (limit 5 s)"
