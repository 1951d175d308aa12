"""``quantify alerts``: add, list, history, remove; bad input gives one line and exit 2."""

from __future__ import annotations

from quantify.cli import main


def test_alerts_commands(tmp_path, capsys) -> None:
    uri = f"lmdb://{tmp_path / 'store'}"
    assert main(["alerts", "add", "--kind", "price-above", "--symbol", "BTCUSDT", "--level", "62000",
                 "--severity", "high", "--cooldown", "15m", "--store", uri, "--no-symbol-check"]) == 0
    rid = capsys.readouterr().out.strip()
    assert main(["alerts", "list", "--store", uri]) == 0
    out = capsys.readouterr().out
    assert rid in out and "price-above" in out and "900s" in out
    assert main(["alerts", "history", "--store", uri]) == 0
    assert "(no alerts fired)" in capsys.readouterr().out
    assert main(["alerts", "remove", rid, "--store", uri]) == 0
    assert main(["alerts", "list", "--store", uri]) == 0
    assert "(no alert rules)" in capsys.readouterr().out


def test_bad_input_is_one_clear_line(tmp_path, capsys) -> None:
    uri = f"lmdb://{tmp_path / 'store'}"
    code = main(["alerts", "add", "--kind", "zscore", "--symbol", "BTCUSDT/ETHUSDT", "--level", "2.5",
                 "--window", "12O", "--store", uri, "--no-symbol-check"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "quantify alerts: error: window must be a positive integer number of bars, got '12O'"
    assert main(["alerts", "add", "--kind", "price-above", "--symbol", "BTCUSDT", "--level", "x",
                 "--store", uri]) == 2
    assert "--level must be a number, got 'x'" in capsys.readouterr().err
    assert main(["alerts", "add", "--kind", "price-above", "--symbol", "BTCUSDT", "--level", "1",
                 "--store", uri]) == 2
    assert "unknown symbol 'BTCUSDT'" in capsys.readouterr().err
    assert main(["alerts", "remove", "nope", "--store", uri]) == 2
    assert "no alert rule with id 'nope'" in capsys.readouterr().err
