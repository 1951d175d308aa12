"""Settings of the replay server, and the bundled recordings it serves by default."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from quantify.replay.fapi import USDM_WEIGHT_LIMIT
from quantify.replay.rest import DEFAULT_WEIGHT_LIMIT
from quantify.venues.binance.recordings import book_sample_files, sample_files, usdm_sample_files

__all__ = [
    "DEFAULT_CHUNK_EVENTS",
    "DEFAULT_HOST",
    "DEFAULT_MAX_CONNECTIONS_PER_5_MINUTES",
    "DEFAULT_MAX_MESSAGES_PER_SECOND",
    "DEFAULT_SPEED",
    "ReplayConfig",
    "default_files",
    "funding_sample_files",
    "usdm_sample_files",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_SPEED = 1.0
#: Events written per ``transport.write()`` at most.
DEFAULT_CHUNK_EVENTS = 500
#: Binance: at most 5 incoming messages per second per connection.
DEFAULT_MAX_MESSAGES_PER_SECOND = 5
#: Binance: at most 300 connection attempts per 5 minutes per IP.
DEFAULT_MAX_CONNECTIONS_PER_5_MINUTES = 300

#: The bundled funding history the USD-M REST answers (real XRPUSDT settlements, 2021).
FUNDING_SAMPLE_FILES = ("usdm-2021-xrpusdt.funding.csv",)


def funding_sample_files() -> list[Path]:
    """The bundled ``fundingRate`` files served by ``/fapi/v1/fundingRate`` by default (see ``quantify/data/README.md``)."""
    root = Path(__file__).resolve().parents[1] / "data"
    return [root / name for name in FUNDING_SAMPLE_FILES]


def default_files() -> list[Path]:
    """What ``quantify replay`` serves with no files given: the spot and the USD-M sample, with their books."""
    return [*sample_files(), *usdm_sample_files(), *book_sample_files()]


@dataclass(frozen=True)
class ReplayConfig:
    """Settings of a :class:`ReplayServer`.

    Parameters
    ----------
    files : tuple of Path
        Recordings to serve (default: the bundled BTCUSDT/ETHUSDT spot
        sample); each file's market, spot or USD-M, is detected (see
        :func:`~quantify.replay.tape.detect_market`).
    usdm_files : tuple of Path
        More recordings served as USD-M futures whatever they look like
        (default none; :func:`usdm_sample_files` is the bundled USD-M sample).
    funding_files : tuple of Path
        ``fundingRate`` CSVs (the REST answer's columns or data.binance.vision's
        archives) whose settlements ``/fapi/v1/fundingRate`` serves as written,
        their symbols listed in the USD-M ``exchangeInfo``
        (:mod:`quantify.replay.fapi_perp`); default :func:`funding_sample_files`,
        the real XRPUSDT settlements of 2021-11-18 to 2021-12-18.
    host, port : str, int
        Where to listen; ``port=0`` picks a free port.
    speed : float
        Replay speed: 1 is real time, 10 ten times faster, 0 as fast as
        clients read.
    loop : bool
        Repeat the recording forever, ids and times shifted forward per lap
        and each lap's prices scaled to carry on from the previous lap's last
        price (:mod:`quantify.replay.laps`).
    drop_every : float
        Every this many seconds, close every connection abruptly (TCP close,
        no close frame); 0 disables.
    corrupt_fraction : float
        Fraction of frames replaced by garbage (truncated JSON, wrong
        types; book events are truncated). The genuine trade still counts
        as replayed, and the replay's own book still takes a corrupted diff.
    drop_depth : float
        Fraction of depth-diff frames not sent (per connection, seeded): the
        client sees a gap in the update ids. The replay's own book still
        takes them (the exchange did not lose them).
    stale_snapshot : float
        Fraction of REST depth answers that are stale: a book whose
        ``lastUpdateId`` is below the first depth event any open connection
        was sent (:mod:`quantify.replay.depth`).
    shutdown_after : float
        Seconds after a connection opens to send it ``serverShutdown``, then
        close it ``shutdown_grace`` seconds later; 0 disables.
    refuse_for : float
        After each drop, refuse new WebSocket handshakes with HTTP 503 for
        this many seconds.
    force_429 : int
        The first this many REST requests get HTTP 429 with ``Retry-After: 1``.
    seed : int
        Seed of the fault generator and of the synthetic liquidations
        (:mod:`quantify.replay.perp_tape`).
    weight_limit : int
        Spot REST (``/api/v3``) request weight per client IP per minute.
    usdm_weight_limit : int
        USD-M REST (``/fapi/v1``) request weight per client IP per minute.
    max_messages_per_second : int
        Incoming messages per connection per second above which the
        connection is closed (code 1008), as on Binance; 0 disables.
    max_connections_per_5_minutes : int
        WebSocket connections accepted per client IP in any 5 minutes; the
        handshakes past it are answered HTTP 429 with ``Retry-After``, as on
        Binance; 0 disables.
    chunk_events : int
        Events per bulk write at most.
    synthetic_universe : int
        Serve this many synthetic spot instruments (``SYN001USDT``, ...) made
        from the bundled BTCUSDT recording instead of ``files``
        (:mod:`quantify.replay.universe`); 0 serves ``files``.
    universe_seconds : float
        Seconds of the recording each synthetic instrument gets (0: all).
    """

    files: tuple[Path, ...] = field(default_factory=lambda: tuple(sample_files()))
    usdm_files: tuple[Path, ...] = ()
    funding_files: tuple[Path, ...] = field(default_factory=lambda: tuple(funding_sample_files()))
    host: str = DEFAULT_HOST
    port: int = 0
    speed: float = DEFAULT_SPEED
    loop: bool = False
    drop_every: float = 0.0
    corrupt_fraction: float = 0.0
    drop_depth: float = 0.0
    stale_snapshot: float = 0.0
    shutdown_after: float = 0.0
    shutdown_grace: float = 3.0
    refuse_for: float = 0.0
    force_429: int = 0
    seed: int = 0
    weight_limit: int = DEFAULT_WEIGHT_LIMIT
    usdm_weight_limit: int = USDM_WEIGHT_LIMIT
    max_messages_per_second: int = DEFAULT_MAX_MESSAGES_PER_SECOND
    max_connections_per_5_minutes: int = DEFAULT_MAX_CONNECTIONS_PER_5_MINUTES
    chunk_events: int = DEFAULT_CHUNK_EVENTS
    synthetic_universe: int = 0
    universe_seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(Path(f) for f in self.files))
        object.__setattr__(self, "usdm_files", tuple(Path(f) for f in self.usdm_files))
        object.__setattr__(self, "funding_files", tuple(Path(f) for f in self.funding_files))
        _check_config(self)

    @property
    def all_files(self) -> list[Path]:
        """``files`` then ``usdm_files``: every recording served (none with a synthetic universe)."""
        return [] if self.synthetic_universe else [*self.files, *self.usdm_files]


def _check_config(c: ReplayConfig) -> None:
    if not c.files and not c.usdm_files:
        raise ValueError("files must name at least one recording, got none")
    if not 0 <= c.port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {c.port!r}")
    for name in ("speed", "drop_every", "shutdown_after", "shutdown_grace", "refuse_for", "universe_seconds"):
        value = getattr(c, name)
        if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    for name in ("corrupt_fraction", "drop_depth", "stale_snapshot"):
        value = getattr(c, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    for name in ("force_429", "max_messages_per_second", "max_connections_per_5_minutes",
                 "synthetic_universe"):
        if getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)!r}")
    for name in ("weight_limit", "usdm_weight_limit"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)!r}")
    if c.chunk_events < 1:
        raise ValueError(f"chunk_events must be >= 1, got {c.chunk_events!r}")
