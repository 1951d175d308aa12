"""Every command the README, the ``--help`` examples and the notebooks show works as printed.

The commands are read from the documents themselves: the README's ``bash``
blocks (lines starting with ``quantify``; ``make`` lines excepted), its
``python`` blocks (run in an IPython shell, magics and all), its inline
commands, the example lines of every ``quantify ... --help`` epilog, and the
commands in the notebooks' markdown. Each is run exactly as printed, in a
temporary ``HOME`` (so ``~/.quantify/...`` lands there) with the exchange
pointed at one replay server on loopback through ``QUANTIFY_WS_URL`` and
``QUANTIFY_REST_URL``. Long-running commands (``ingest``, ``replay``,
``dashboard``) are started, checked for their first output, stopped with
SIGINT, and must exit 0. The ``--help`` examples and the S3 templates (which
name the reader's own hosts and files) are parsed as printed.

A command the documents gain that this module does not know how to run fails
:func:`test_every_documented_command_is_known`, so the check stays complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from quantify.cli import build_parser, main
from quantify.cli._common import bind_time_values
from quantify.datasets import sample_ticks
from quantify.ingest.load import load_files
from quantify.replay.config import ReplayConfig, default_files
from quantify.replay.thread import ReplayThread
from quantify.store import open_store
from quantify.venues.binance.recordings import book_sample_files, sample_files

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: How each README bash command is run: "run" to completion (exit 0), or
#: "serve": start, wait for the first output line, stop with SIGINT (exit 0).
#: Commands run in this order, sharing one HOME and its default store.
BASH_COMMANDS: dict[str, str] = {
    "quantify lab --replay": "serve",
    "quantify --help": "run",
    "quantify ingest --symbols BTCUSDT,ETHUSDT": "serve",
    "quantify status": "run",
    "quantify status --json": "run",
    "quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT": "serve",
    "quantify replay --loop --port 9443": "serve",
    "quantify ingest --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443 "
    "--symbols BTCUSDT,binance-usdm:BTCUSDT": "serve",
    "quantify dashboard pairs_monitor": "serve",
    "quantify alerts add --kind price-above --symbol BTCUSDT --level 62000 --severity high --cooldown 15m": "run",
    "quantify alerts history --start -1d": "run",
    "quantify load BTCUSDT-trades-2024-08-08.zip": "run",
    "quantify backfill BTCUSDT --start 2024-08-08 --end 2024-08-09": "run",
    "quantify export BTCUSDT --kind ohlcv --timeframe 1m --format parquet -o btc.parquet": "run",
    "quantify dashboard pairs_monitor --host 127.0.0.2": "serve",
}

#: Commands of the README's untagged blocks: templates with placeholders
#: (HOST, BUCKET) for a shared S3 store, which tests/reliability/test_shared_store.py
#: runs against a local S3, and dashboards shared on every interface with the reader's
#: certificate (tests/browser/test_dashboard_access.py runs them on 127.0.0.2). Here
#: they must at least parse as printed.
TEMPLATE_COMMANDS = {
    "quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols BTCUSDT,ETHUSDT",
    "quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols SOLUSDT --standby BTCUSDT,ETHUSDT",
    "quantify status --store 's3://HOST:BUCKET?port=9000' --json",
    "quantify dashboard pairs_monitor --host 0.0.0.0 --certfile /etc/quantify/desk.pem "
    "--keyfile /etc/quantify/desk-key.pem",
    "quantify demo --host 0.0.0.0 --port 8866 --no-browser",
    'quantify dashboard pairs_monitor --port 8866 --token "$QUANTIFY_DASHBOARD_TOKEN"',
}

#: Inline commands of the prose: run here (as part of a block's session), or
#: names of a command in a sentence (not a command line of their own).
INLINE_RUN = {"%quantify --help", "%quantify status"}
INLINE_REFERENCES = {
    "quantify ingest", "quantify dashboard", "quantify load", "quantify replay", "quantify status",
    "quantify replay --host", "quantify export --dir DIR", "quantify lab", "quantify ingest --book",
    "%quantify books add BTCUSDT", "quantify ingest --perp", "quantify ingest --ws-client websockets", "quantify demo", "%quantify perps add binance-usdm:BTCUSDT",
    "%quantify status|start|stop|symbols [add|remove SYM…]|store [URI]",
    "quantify ingest --metrics-port N", "quantify status --json",
}

#: Commands in the notebooks' markdown: run, or references to a command.
NOTEBOOK_RUN = {"quantify dashboard pairs_monitor": "serve", "quantify dashboard alerts": "serve",
                "quantify lab": "serve"}
NOTEBOOK_REFERENCES = {
    "quantify alerts add", "quantify alerts remove", "quantify ingest", "quantify status", "quantify load FILES",
    "%quantify --help", "%quantify start", "%quantify status", "%quantify stop",
}

#: Seconds a long-running command has to print its first line.
SERVE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    lang: str
    text: str


def readme_blocks() -> list[Block]:
    return [Block(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)]


def command_lines(text: str) -> list[str]:
    """Lines starting with ``quantify``, without their trailing ``# comment``."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("quantify "):
            out.append(" ".join(line.split("  #")[0].split()))
    return out


def readme_bash_commands() -> list[str]:
    return [c for b in readme_blocks() if b.lang == "bash" for c in command_lines(b.text)]


def readme_template_commands() -> list[str]:
    return [c for b in readme_blocks() if b.lang == "" for c in command_lines(b.text)]


def readme_python_blocks() -> list[str]:
    return [b.text for b in readme_blocks() if b.lang == "python"]


def inline_commands() -> set[str]:
    prose = re.sub(r"^```.*?^```", "", README.read_text(), flags=re.S | re.M)
    spans = re.findall(r"`(%quantify[^`]*|quantify\s[^`]*)`", prose)
    return {" ".join(span.split()) for span in spans}


def notebook_commands() -> set[str]:
    found = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "dashboards").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                found |= set(re.findall(r"`(%?quantify [^`]*)`", "".join(cell["source"])))
    return found


def epilog_examples() -> list[str]:
    """Every ``quantify ...`` example line of every ``--help`` epilog, without its description.

    A description follows the command after two spaces (with or without
    ``#``); a trailing ``&`` (run in the background) is shell, not the command.
    """
    out = set()
    stack = [build_parser()]
    while stack:
        p = stack.pop()
        text = re.sub(r"\s*\\\n\s*", " ", p.epilog or "")
        for line in text.splitlines():
            if line.strip().startswith("quantify "):
                command = re.split(r"\s{2,}", line.strip())[0].removesuffix(" &")
                out.add(" ".join(command.split()))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += list(action.choices.values())
    return sorted(out)


# -- running ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayThread]:
    # looping, so an instrument added later (binance-usdm:BTCUSDT) still has trades to stream
    with ReplayThread(ReplayConfig(files=tuple(default_files()), speed=10, loop=True)) as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def make_env(home: Path, replay: ReplayThread) -> dict[str, str]:
    """The environment of a user whose HOME is ``home`` and whose exchange is ``replay``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTIFY_")}
    env.update(HOME=str(home), QUANTIFY_WS_URL=replay.ws_url, QUANTIFY_REST_URL=replay.rest_url,
               BROWSER="true",  # webbrowser.open runs `true URL`: no browser here
               PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def env(home: Path, replay: ReplayThread) -> dict[str, str]:
    return make_env(home, replay)


def argv_of(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "quantify"
    return [sys.executable, "-m", "quantify", *words[1:]]


def run(command: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv_of(command), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    # backfill's documented exit 1: the replay has not yet played up to END ("rerun later")
    ok = proc.returncode == 0 or (command.startswith("quantify backfill") and proc.returncode == 1
                                  and "incomplete" in proc.stdout)
    assert ok, f"{command!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


#: The lines that say a server is up.
DASHBOARD_READY = "quantify dashboard: http://127.0.0.1:"
SHARED_READY = "quantify dashboard: http://127.0.0.2:"
LAB_READY = "open           http://127.0.0.1:"


def serve(command: str, env: dict[str, str], cwd: Path, ready: str = "", *,
          then: object = None) -> str:
    """Start ``command``, wait for its output line containing ``ready``, SIGINT it; its output.

    The output goes to a file, not a pipe: a server's children (Voilà) inherit it.
    """
    log = cwd / f"serve-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv_of(command), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while not any(line.strip() and ready in line for line in log.read_text().splitlines()):
            assert proc.poll() is None, f"{command!r} exited early ({proc.returncode}):\n{log.read_text()}"
            if time.monotonic() > deadline:
                pytest.fail(f"{command!r}: no line with {ready!r} within {SERVE_TIMEOUT:.0f} s:\n{log.read_text()}")
            time.sleep(0.1)
        if callable(then):
            then()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode} after SIGINT:\n{text}"
    return text


def wait_for_ticks(uri: str, symbols: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if set(symbols) <= set(open_store(uri).symbols()):
                return
        except Exception:  # the store may not exist yet
            pass
        time.sleep(0.2)
    pytest.fail(f"{symbols} not stored in {uri} within {timeout:.0f} s")


def vision_zip(path: Path) -> Path:
    """A data.binance.vision trades archive of the bundled BTCUSDT trades of 2024-08-08."""
    ticks = sample_ticks("BTCUSDT")["BTCUSDT"]
    ticks = ticks[ticks.index < "2024-08-09"]
    ms = ticks.index.asi8 // 1_000_000
    rows = [f"{i},{p:.8f},{q:.8f},{p * q:.8f},{t},{m},True"
            for i, p, q, t, m in zip(ticks.trade_id, ticks.price, ticks.qty, ms, ticks.is_buyer_maker)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.with_suffix(".csv").name, "\n".join(rows) + "\n")
    return path


# -- the tests ----------------------------------------------------------------


def test_every_documented_command_is_known() -> None:
    assert readme_bash_commands() == list(BASH_COMMANDS), "README bash commands changed: teach this module"
    assert set(readme_template_commands()) == TEMPLATE_COMMANDS
    assert inline_commands() == INLINE_RUN | INLINE_REFERENCES
    assert notebook_commands() == set(NOTEBOOK_RUN) | NOTEBOOK_REFERENCES
    blocks = readme_python_blocks()
    assert len(blocks) == 3 and "\n%load_ext quantify\n" in blocks[0]


@pytest.mark.parametrize("command", sorted(TEMPLATE_COMMANDS) + epilog_examples())
def test_printed_examples_parse(command: str) -> None:
    """Help examples and templates parse as printed (``--start -1d`` included)."""
    parser = build_parser()
    argv = shlex.split(command)[1:]
    try:
        args = parser.parse_args(bind_time_values(parser, argv))
    except SystemExit as exc:
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
    assert getattr(args, "func", None), command


@pytest.mark.timeout(600)
def test_readme_commands_run_as_printed(env: dict[str, str], home: Path, replay: ReplayThread) -> None:
    started = time.monotonic()
    default = f"lmdb://{home}/.quantify/arctic"
    vision_zip(home / "BTCUSDT-trades-2024-08-08.zip")
    for command, how in BASH_COMMANDS.items():
        t = time.monotonic()
        _run_bash_command(command, how, env, home, default)
        print(f"\n  {time.monotonic() - t:5.1f} s  {command}", end="")
    print(f"\nREADME bash commands: {time.monotonic() - started:.0f} s")


def _run_bash_command(command: str, how: str, env: dict[str, str], home: Path, default: str) -> None:
    cwd = home
    if how == "run":
        proc = run(command, env, cwd)
        if command.startswith("quantify alerts add"):
            assert re.fullmatch(r"\w+\n", proc.stdout), proc.stdout
        if command.startswith("quantify export"):
            assert (cwd / "btc.parquet").stat().st_size > 0
    elif command.startswith("quantify replay"):
        replay_then_ingest(command, env, home)
    elif command.startswith("quantify ingest --ws-url"):
        pass  # run against the README's replay by replay_then_ingest
    elif command.startswith("quantify ingest"):
        symbols = command.split("--symbols ")[1].split(",")
        serve(command, env, cwd, "streaming", then=lambda s=symbols: wait_for_ticks(default, s))
    elif command.startswith("quantify lab"):
        serve(command, env, cwd, LAB_READY)
    elif "--host" in command:
        serve(command, env, cwd, SHARED_READY, then=lambda: _opens_by_link_only(cwd))
    else:
        serve(command, env, cwd, DASHBOARD_READY)


def _opens_by_link_only(cwd: Path) -> None:
    """The printed link opens the dashboard; the same address without its token gets 403."""
    newest = max(cwd.glob("serve-*.log"), key=lambda p: p.stat().st_mtime_ns)
    line = next(line for line in newest.read_text().splitlines() if SHARED_READY in line)
    link = re.search(r"http://\S+\?token=\S+", line).group(0)
    with urllib.request.urlopen(link, timeout=120) as page:
        assert page.status == 200 and b"widget-view+json" in page.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link.split("?")[0], timeout=60)
    assert refused.value.code == 403


def replay_then_ingest(replay_cmd: str, env: dict[str, str], home: Path) -> None:
    """The README's replay serves the README's ``quantify ingest --ws-url ...:9443``, into a store of its own."""
    ingest_cmd = next(c for c in BASH_COMMANDS if c.startswith("quantify ingest --ws-url"))
    if not _port_free(9443):  # another process holds it: the same commands on another port
        port = str(_free_port())
        replay_cmd, ingest_cmd = replay_cmd.replace("9443", port), ingest_cmd.replace("9443", port)
    store = f"lmdb://{home}/replayed"
    ingest_env = {k: v for k, v in env.items() if k not in ("QUANTIFY_WS_URL", "QUANTIFY_REST_URL")}
    ingest_env["QUANTIFY_STORE"] = store
    serve(replay_cmd, env, home, then=lambda: serve(
        ingest_cmd, ingest_env, home, "streaming",
        then=lambda: wait_for_ticks(store, ["BTCUSDT", "binance-usdm:BTCUSDT"])))


NOTEBOOK_SESSION = """\
import sys
import pandas as pd
from IPython.core.interactiveshell import InteractiveShell
import quantify.model.times as times

# The store holds hours of replayed 2024-08-08 trades: relative times count back from their end.
times.parse_time.__kwdefaults__["now"] = pd.Timestamp("NOW")
shell = InteractiveShell.instance()
for i, cell in enumerate(sys.argv[1:]):
    result = shell.run_cell(open(cell).read())
    if not result.success:
        print(f"CELL {i} FAILED", flush=True)
        result.raise_error()
    print(f"CELL {i} OK", flush=True)
shell.run_line_magic("quantify", "stop")
"""


@pytest.mark.timeout(600)
def test_readme_notebook_snippets_run_as_printed(tmp_path: Path) -> None:
    """The README's python blocks, in an IPython shell, then ``%quantify --help``.

    The second and third blocks read the store ``quantify demo`` leaves (the
    recorded trades and books; tests/cli/test_demo.py runs the demo itself). The default store
    holds hours of the recording, lap after lap, as the README's commands
    leave it after a while, and the kernel's stream (``%load_ext``) comes from
    a replay that has played everything already, so the cells read settled data.
    """
    started = time.monotonic()
    home = tmp_path
    with ReplayThread(ReplayConfig(speed=0)) as played:
        env = make_env(home, played)
        assert load_files(open_store(f"lmdb://{home}/.quantify/demo", create=True),
                          [*sample_files(), *book_sample_files()], progress=False).ok
        now = hours_of_ingest(f"lmdb://{home}/.quantify/arctic", hours=6.5)
        _notebook_session(env, home, now)
    print(f"\nREADME notebook snippets: {time.monotonic() - started:.0f} s")


def hours_of_ingest(uri: str, hours: float) -> pd.Timestamp:
    """Fill ``uri`` as hours of ``quantify ingest`` would: the recording, lap after lap; its end.

    Laps follow each other as the looping replay plays them (times and ids
    shifted by a lap each), so the store holds ``hours`` of BTCUSDT and
    ETHUSDT. Returns the time just after the last trade: "now" for the
    README's ``start="-6h"``.
    """
    ticks = sample_ticks(["BTCUSDT", "ETHUSDT"])
    lap = max(t.index[-1] - t.index[0] for t in ticks.values()).ceil("1min")
    store = open_store(uri, create=True)
    laps = int(pd.Timedelta(hours=hours) / lap) + 1
    for k in range(laps):
        frames = {}
        for sym, t in ticks.items():
            ids = int(t["trade_id"].iloc[-1] - t["trade_id"].iloc[0] + 1) * k
            frame = t.assign(trade_id=t.trade_id + ids, first_id=t.first_id + ids, last_id=t.last_id + ids)
            frame.index = frame.index + k * lap
            frames[sym] = frame
        store.append_ticks(frames)
    return max(t.index[-1] for t in ticks.values()) + (laps - 1) * lap + pd.Timedelta("1s")


def _notebook_session(env: dict[str, str], home: Path, now: pd.Timestamp) -> None:
    cells = []
    for i, text in enumerate([*readme_python_blocks(), "%quantify --help\n%quantify status --help\n%quantify status\n"]):
        path = home / f"cell{i}.py"
        path.write_text(text)
        cells.append(str(path))
    script = home / "session.py"
    script.write_text(NOTEBOOK_SESSION.replace("NOW", now.isoformat()))
    proc = subprocess.run([sys.executable, str(script), *cells], env=env, cwd=home, capture_output=True,
                          text=True, timeout=400, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert all(f"CELL {i} OK" in proc.stdout for i in range(len(cells))), out
    assert "usage: %quantify status" in proc.stdout and "%quantify [--json] [-h]" in proc.stdout, out
    assert "streaming" in proc.stdout or "attached as reader" in proc.stdout, out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_notebook_commands_run_as_printed(env: dict[str, str], home: Path) -> None:
    default = home / ".quantify" / "arctic"
    if not default.exists():  # run alone (-m slow): the store the README's commands leave
        assert load_files(open_store(f"lmdb://{default}", create=True), sample_files(), progress=False).ok
    for command, how in NOTEBOOK_RUN.items():
        assert how == "serve"
        if command == "quantify dashboard pairs_monitor":
            continue  # a README command too: run by test_readme_commands_run_as_printed
        serve(command, env, home, LAB_READY if command.startswith("quantify lab") else DASHBOARD_READY)


#: How each ``--help`` example is checked: "run" in this process (exit 0, or
#: 1 where the help documents it: backfill's "no data up to END yet"),
#: "serve" as a long-running command (the slow run), or "placeholder": it
#: names the reader's own rule id or S3 host, so it is parsed only.
EPILOG_COMMANDS: dict[str, str] = {
    "quantify alerts add --kind pct-move --symbol ETHUSDT --pct 2 --window 5m --direction down": "run",
    "quantify alerts add --kind price-above --symbol BTCUSDT --level 62000 --severity high --cooldown 15m": "run",
    "quantify alerts add --kind stale --symbol BTCUSDT --seconds 30 --severity critical": "run",
    "quantify alerts add --kind zscore --symbol BTCUSDT/ETHUSDT --level 2.5 --op abs-above --timeframe 1m "
    "--window 120 --cooldown 15m --severity high": "run",
    "quantify alerts history --severity high --start -1d": "run",
    "quantify alerts list": "run",
    "quantify alerts remove 3f9c2a1b7e": "placeholder",
    "quantify backfill BTCUSDT --start -6h --end now --kind aggTrades": "run",
    "quantify backfill BTCUSDT --start 2024-08-08 --end 2024-08-09": "run",
    "quantify backfill ETHUSDT --start 2024-08-01 --end 2024-09-01 --kind klines --interval 1h": "run",
    "quantify backfill binance-usdm:BTCUSDT --start 2024-08-08 --end 2024-08-09": "run",
    "quantify backfill binance-usdm:XRPUSDT --kind funding": "run",
    "quantify backfill binance-usdm:XRPUSDT --kind funding --start 2021-11-18 --end 2021-12-19": "run",
    "quantify backfill binance-usdm:BTCUSDT --kind open_interest --period 1h --start -7d": "run",
    "quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols BTCUSDT,ETHUSDT": "placeholder",
    "quantify ingest --store 's3://HOST:BUCKET?port=9000' --symbols SOLUSDT --standby BTCUSDT,ETHUSDT": "placeholder",
    "quantify load BTCUSDT-trades-2024-08-08.zip": "run",
    "quantify load usdm-2023-btcusdt_20230405.perp.gz": "run",
    # after the load above: the store then holds binance-usdm:BTCUSDT
    "quantify alerts add --kind funding-above --symbol binance-usdm:BTCUSDT --level 1 --unit bps --cooldown 8h": "run",
    "quantify alerts add --kind basis-z --symbol binance-usdm:BTCUSDT/BTCUSDT --level 3 --timeframe 1m "
    "--window 60": "run",
    "quantify alerts add --kind liquidation-burst --symbol binance-usdm:BTCUSDT --count 5 --window 1m": "run",
    "quantify alerts add --kind drawdown --symbol BTCUSDT/ETHUSDT --level 2 --timeframe 1m --window 120": "run",
    "quantify load BTCUSDT-fundingRate-2023-04.zip BTCUSDT-metrics-2023-04-05.zip": "run",
    "quantify load usdm-2021-xrpusdt.funding.csv": "run",
    "quantify ingest --symbols BTCUSDT,ETHUSDT": "serve",
    "quantify ingest --symbols BTCUSDT,ETHUSDT --metrics-port 9108": "serve",
    "quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT": "serve",
    "quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT --book": "serve",
    "quantify ingest --symbols BTCUSDT,binance-usdm:BTCUSDT --perp": "serve",
    "quantify ingest --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443 --duration 60": "serve",
    "quantify replay": "serve",
    "quantify replay --loop": "serve",
    "quantify replay --speed 0 --port 0": "serve",
    "quantify replay --speed 10 --loop": "serve",
    "quantify replay my.trades.gz --drop-every 30 --refuse-for 5 --corrupt-fraction 0.001": "serve",
    "quantify replay spot.gz --usdm perp.gz": "serve",
    "quantify replay --synthetic-universe 300 --universe-seconds 30 --port 0": "serve",
}


def test_every_help_example_is_known() -> None:
    assert epilog_examples() == sorted(EPILOG_COMMANDS), "a --help example changed: teach this module"


@pytest.fixture
def example_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replay: ReplayThread) -> Path:
    """A HOME whose default store holds the bundled trades; the exchange is the replay."""
    for key in [k for k in os.environ if k.startswith("QUANTIFY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("QUANTIFY_WS_URL", replay.ws_url)
    monkeypatch.setenv("QUANTIFY_REST_URL", replay.rest_url)
    monkeypatch.chdir(tmp_path)
    store = open_store(f"lmdb://{tmp_path}/.quantify/arctic", create=True)
    assert load_files(store, sample_files(), progress=False).ok
    # the files the replay examples name, made from the bundled recordings
    spot, perp = (next(p for p in default_files() if p.name.startswith(m)) for m in ("spot-", "usdm-"))
    shutil.copy(spot, tmp_path / "my.trades.gz")
    shutil.copy(spot, tmp_path / "spot.gz")
    shutil.copy(perp, tmp_path / "perp.gz")
    # the files the load examples name: bundled ones, and the tests' data.binance.vision fixtures zipped
    vision_zip(tmp_path / "BTCUSDT-trades-2024-08-08.zip")
    for name in ("usdm-2023-btcusdt_20230405.perp.gz", "usdm-2021-xrpusdt.funding.csv"):
        shutil.copy(ROOT / "quantify" / "data" / name, tmp_path / name)
    for name in ("BTCUSDT-fundingRate-2023-04.csv", "BTCUSDT-metrics-2023-04-05.csv"):
        with zipfile.ZipFile(tmp_path / name.replace(".csv", ".zip"), "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(ROOT / "tests" / "data" / name, name)
    return tmp_path


def test_help_examples_run_as_printed(example_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command, how in EPILOG_COMMANDS.items():
        if how != "run":
            continue
        code = main(shlex.split(command)[1:])
        out = capsys.readouterr()
        allowed = (0, 1) if command.startswith("quantify backfill") else (0,)
        assert code in allowed, f"{command!r} exited {code}:\n{out.out}\n{out.err}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_long_running_help_examples_run_as_printed(example_home: Path) -> None:
    """Each long-running example, stopped with SIGINT; ingest's ``--ws-url ...:9443`` against
    ``quantify replay --loop``, as its help shows them (``quantify replay --loop &`` first)."""
    env = dict(os.environ, BROWSER="true", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    against_replay = next(c for c in EPILOG_COMMANDS if c.startswith("quantify ingest --ws-url"))
    on_9443 = ("quantify replay", "quantify replay --loop", "quantify replay --speed 10 --loop", against_replay,
               "quantify replay my.trades.gz --drop-every 30 --refuse-for 5 --corrupt-fraction 0.001",
               "quantify replay spot.gz --usdm perp.gz")
    for command, how in EPILOG_COMMANDS.items():
        if how != "serve" or command == against_replay:
            continue
        if command in on_9443 and not _port_free(9443):
            continue  # the examples' fixed port is taken on this machine
        if "--metrics-port 9108" in command:
            if _port_free(9108):
                serve(command, env, example_home, "metrics on", then=lambda: _scraped(9108))
            continue
        if command == "quantify replay --loop":
            serve(command, env, example_home, then=lambda: serve(against_replay, env, example_home, "streaming"))
        else:
            serve(command, env, example_home, "streaming" if "ingest" in command else "")


def _scraped(port: int) -> None:
    """The metrics server of ``quantify ingest --metrics-port`` answers /healthz and /metrics."""
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
        assert answer.status == 200
    deadline = time.monotonic() + SERVE_TIMEOUT
    while True:  # the instruments' counters appear once the service streams
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            if "quantify_ingest_trades_stored_total{" in answer.read().decode():
                return
        assert time.monotonic() < deadline, f"no trade counters at {base}/metrics"
        time.sleep(0.2)
