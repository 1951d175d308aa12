"""A synthetic universe: N made-up spot instruments built from one real recording, for scale tests.

Binance lists some 300 USDT pairs that a desk may ingest at once; the
bundled recordings hold two. :func:`universe_frames` makes ``n`` distinct
instruments out of the bundled spot BTCUSDT recording of 2024-08-08 (trades,
depth diffs, book tickers and its depth snapshot: :func:`universe_source_files`)
by renaming and shifting it. Instrument ``i`` (0-based) is named
``SYN001USDT``, ``SYN002USDT``, ... (the ``SYN`` prefix marks it as synthetic
everywhere its name appears; the replay's ``exchangeInfo`` also says
``"synthetic": true`` and its start-up line says so), and every one of its
lines is the recorded one with:

- trade ids ``t`` and book update ids ``U``, ``u``, ``lastUpdateId`` plus
  ``i * ID_SHIFT`` (each instrument its own id range);
- prices (trades, book levels, book tickers) plus ``i`` whole quote units,
  written with the recorded decimals (a book stays consistent with its
  ticker and trades; instruments differ in level);
- times ``T``, ``E`` and the receive time plus ``i`` ms (instruments
  interleave instead of sharing every timestamp).

Quantities and maker flags are the recorded ones. ``seconds`` keeps only the
first that many seconds of the recording (0: all of it), which bounds the
tape at large ``n``. The result feeds :class:`~quantify.replay.tape.Tape` as
in-memory recordings, so the synthetic instruments are served, backfilled
over REST and snapshotted (``/api/v3/depth``) by the same code as recorded
ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from quantify.venues.binance.recordings import read_frames

__all__ = ["ID_SHIFT", "SYNTHETIC_PREFIX", "synthetic_symbol", "universe_frames", "universe_source_files"]

logger = logging.getLogger(__name__)

#: The prefix of every synthetic instrument's name.
SYNTHETIC_PREFIX = "SYN"
#: Id shift from one synthetic instrument to the next (far more than a recording's id span).
ID_SHIFT = 10_000_000
#: The recording the universe is made of: spot BTCUSDT, 2024-08-08 (see ``quantify/data/README.md``).
UNIVERSE_SOURCE = ("spot-2024-btcusdt_20240808.trades.gz", "spot-2024-btcusdt_20240808.book.gz")
_SOURCE_SYMBOL = "BTCUSDT"

Frames = list[tuple[int, str]]


def universe_source_files() -> list[Path]:
    """The bundled recording (trades and book of spot BTCUSDT, 2024-08-08) the universe is made of."""
    root = Path(__file__).resolve().parents[1] / "data"
    return [root / name for name in UNIVERSE_SOURCE]


def synthetic_symbol(i: int, n: int) -> str:
    """The name of synthetic instrument ``i`` (0-based) of ``n``: ``SYN001USDT`` (at least 3 digits)."""
    return f"{SYNTHETIC_PREFIX}{i + 1:0{max(3, len(str(n)))}d}USDT"


def _price_shifter(offset: int) -> Callable[[str], str]:
    def shift(price: str) -> str:
        whole, dot, frac = price.partition(".")
        return f"{int(whole) + offset}{dot}{frac}"
    return shift


def _levels(levels: list[list[str]], shift: Callable[[str], str]) -> list[list[str]]:
    return [[shift(p), q, *rest] for p, q, *rest in levels]


def _shifted(data: dict[str, Any], i: int, name: str) -> dict[str, Any]:
    """The recorded event ``data`` as synthetic instrument ``i`` (named ``name``)."""
    shift = _price_shifter(i)
    ids = i * ID_SHIFT
    out = dict(data)
    if "s" in out:
        out["s"] = name
    for key in ("t", "U", "u", "lastUpdateId"):
        if type(out.get(key)) is int:
            out[key] += ids
    for key in ("T", "E"):
        if type(out.get(key)) is int:
            out[key] += i
    kind = out.get("e")
    if kind == "trade":
        out["p"] = shift(out["p"])
    elif kind == "depthUpdate":
        out["b"], out["a"] = _levels(out["b"], shift), _levels(out["a"], shift)
    elif "bids" in out:  # a depth snapshot
        out["bids"], out["asks"] = _levels(out["bids"], shift), _levels(out["asks"], shift)
    elif "B" in out:  # a book ticker
        out["b"], out["a"] = shift(out["b"]), shift(out["a"])
    return out


def universe_frames(n: int, seconds: float = 0.0,
                    files: list[Path] | None = None) -> dict[Path, Frames]:
    """The recorded lines of ``n`` synthetic instruments, one in-memory recording per instrument and file.

    Parameters
    ----------
    n : int
        Number of instruments (>= 1).
    seconds : float
        Keep the first this many seconds of the recording (by receive time); 0 keeps all.
    files : list of Path, optional
        The recording to build from (default :func:`universe_source_files`); its
        BTCUSDT lines are used.

    Returns
    -------
    dict
        ``{Path("synthetic/SYN001USDT.trades"): [(recv_ns, line), ...], ...}``: names
        under ``synthetic/``, with the kind of the source file (trades, book).
    """
    if type(n) is not int or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not seconds >= 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    sources = files if files is not None else universe_source_files()
    parsed: list[tuple[str, list[tuple[int, str | None, dict[str, Any]]]]] = []
    start: int | None = None
    for path in sources:
        lines: list[tuple[int, str | None, dict[str, Any]]] = []
        for recv, text in read_frames(path):
            msg = orjson.loads(text)
            stream = msg.get("stream") if type(msg) is dict else None
            data = msg.get("data", msg) if type(msg) is dict else None
            if type(data) is not dict or data.get("s", _SOURCE_SYMBOL) != _SOURCE_SYMBOL:
                continue
            lines.append((recv, stream, data))
        if lines:
            start = min(lines[0][0], start if start is not None else lines[0][0])
        kind = "book" if ".book" in path.name else "trades"
        parsed.append((kind, lines))
    if start is None:
        raise ValueError(f"{', '.join(map(str, sources))}: no {_SOURCE_SYMBOL} lines to build a universe from")
    if seconds:
        end = start + int(seconds * 1e9)
        parsed = [(kind, [line for line in lines if line[0] < end]) for kind, lines in parsed]
    out: dict[Path, Frames] = {}
    lower = _SOURCE_SYMBOL.lower()
    for i in range(n):
        name = synthetic_symbol(i, n)
        for kind, lines in parsed:
            frames: Frames = []
            for recv, stream, data in lines:
                event = _shifted(data, i, name)
                if stream is None:
                    text = orjson.dumps(event).decode()
                else:
                    renamed = name.lower() + stream[len(lower):] if stream.startswith(lower) else stream
                    text = orjson.dumps({"stream": renamed, "data": event}).decode()
                frames.append((recv + i * 1_000_000, text))
            if frames:
                out[Path("synthetic") / f"{name}.{kind}"] = frames
    logger.info("synthetic universe: %d instruments %s..%s made from %s (%s)", n, synthetic_symbol(0, n),
                synthetic_symbol(n - 1, n), ", ".join(p.name for p in sources),
                f"first {seconds:g} s" if seconds else "all of it")
    return out
