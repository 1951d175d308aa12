"""AlertBook: rules and history shared through the store."""

from __future__ import annotations

import pytest

from quantify import alerts as qa
from tests.alerts.conftest import feed


def test_rules_crud(store) -> None:
    book = qa.AlertBook(store)
    assert book.rules_version() == -1 and book.list() == []
    rid = book.add(qa.zscore("BTCUSDT", "ETHUSDT", 2.5, cooldown="15m", severity="high"), check_symbols=False)
    v1 = book.rules_version()
    rule = book.get(rid)
    assert rule.id == rid and rule.created is not None and rule.params["window"] == 120
    changed = book.update(rid, level=3.0, enabled=False)
    assert changed.params["level"] == 3.0 and not changed.enabled and book.rules_version() > v1
    assert qa.AlertBook(store).get(rid) == changed  # another reader sees it
    assert book.list(enabled=True) == []
    with pytest.raises(ValueError, match="window must be a positive integer number of bars, got '12O'"):
        book.update(rid, window="12O")
    with pytest.raises(ValueError, match="exists"):
        book.add(qa.gap("BTCUSDT", id=rid), check_symbols=False)
    book.remove(rid)
    with pytest.raises(KeyError):
        book.get(rid)
    with pytest.raises(KeyError):
        book.remove(rid)


def test_history_filters_tailing_and_acknowledge(store, sample, make_engine) -> None:
    book = qa.AlertBook(store)
    eth = sample["ETHUSDT"]
    level = float(eth["price"].median())
    low = book.add(qa.price_crosses("ETHUSDT", level, severity="low"), check_symbols=False)
    book.add(qa.price_below("ETHUSDT", float(eth["price"].quantile(0.2)), severity="critical"),
             check_symbols=False)
    assert book.latest_id() == -1 and book.history().empty
    engine = make_engine(store)
    chunk = {"ETHUSDT": eth.iloc[:6000]}
    feed(store, engine, [chunk])
    n = book.latest_id() + 1
    assert n >= 2
    seen = book.latest_id()
    feed(store, engine, [{"ETHUSDT": eth.iloc[6000:]}])
    new = book.history(since=seen)
    assert list(new["alert_id"]) == list(range(seen + 1, book.latest_id() + 1))
    everything = book.history()
    assert list(everything.columns) == list(qa.HISTORY_COLUMNS)
    assert everything["fired_at"].is_monotonic_increasing and str(everything["fired_at"].dt.tz) == "UTC"
    assert set(book.history(severity="low")["rule_id"]) == {low}
    assert (book.history(rule_id=low)["severity"] == "low").all()
    mid = everything["fired_at"].iloc[len(everything) // 2]
    assert (book.history(start=mid)["fired_at"] >= mid).all()
    assert (book.history(end=mid)["fired_at"] < mid).all()
    book.acknowledge(0)
    assert book.history()["acknowledged"].tolist()[:2] == [True, False]
    with pytest.raises(KeyError):
        book.acknowledge(10_000)
    with pytest.raises(ValueError, match="severity must be one of"):
        book.history(severity="urgent")
