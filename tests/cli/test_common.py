"""Time options take relative values as printed (``--start -1d``); nothing else changes meaning."""

from __future__ import annotations

import pytest

from quantify.cli import build_parser, main
from quantify.cli._common import bind_time_values
from quantify.store import open_store


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize(("argv", "start", "end"), [
    (["alerts", "history", "--start", "-1d"], "-1d", None),
    (["alerts", "history", "--start", "-1d", "--end", "-1h"], "-1d", "-1h"),
    (["alerts", "history", "--start=-1d"], "-1d", None),
    (["export", "BTCUSDT", "--start", "-6h", "-o", "x.csv"], "-6h", None),
    (["export", "BTCUSDT", "-o", "x.csv", "--end", "-90s", "--start", "-15m"], "-15m", "-90s"),
    (["backfill", "BTCUSDT", "--start", "-6h", "--end", "now"], "-6h", "now"),
    (["backfill", "BTCUSDT", "--start", "2024-08-08", "--end", "2024-08-09"], "2024-08-08", "2024-08-09"),
])
def test_relative_times_bind_to_their_option(parser, argv, start, end) -> None:
    args = parser.parse_args(bind_time_values(parser, argv))
    assert (args.start, args.end) == (start, end)


def test_negative_numbers_and_options_keep_their_meaning(parser) -> None:
    argv = ["alerts", "add", "--kind", "price-below", "--symbol", "BTCUSDT", "--level", "-5", "--margin", "-0.5"]
    assert bind_time_values(parser, argv) == argv
    args = parser.parse_args(argv)
    assert (args.level, args.margin) == ("-5", "-0.5")
    # an option after a time option is an option: the missing value is still reported
    argv = ["alerts", "history", "--start", "--end", "2024-08-09"]
    assert bind_time_values(parser, argv) == argv
    argv = ["export", "BTCUSDT", "--start", "-o", "x.csv"]
    assert bind_time_values(parser, argv) == argv
    assert bind_time_values(parser, ["-v", "status", "--json"]) == ["-v", "status", "--json"]


def test_a_value_that_is_no_time_is_named(tmp_path, capsys) -> None:
    uri = f"lmdb://{tmp_path / 'store'}"
    open_store(uri, create=True)
    assert main(["alerts", "history", "--start", "-6h", "--store", uri]) == 0
    assert capsys.readouterr().out.strip() == "(no alerts fired)"
    assert main(["alerts", "history", "--start", "-6x", "--store", uri]) == 2
    assert "cannot read '-6x' as a time" in capsys.readouterr().err


def test_a_bare_number_of_seconds_is_seconds(capsys) -> None:
    """``--seconds 30`` and ``--cooldown 30`` mean 30 s (pandas alone reads "30" as nanoseconds)."""
    uri = "mem://cli-bare-seconds"
    argv = ["alerts", "add", "--kind", "stale", "--symbol", "BTCUSDT", "--seconds", "30", "--cooldown", "30",
            "--no-symbol-check", "--store", uri]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    (rule,) = open_store(uri).alerts.list()
    assert rule.params["seconds"] == 30.0 and rule.cooldown == 30.0
