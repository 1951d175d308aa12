"""Settings as frozen dataclasses with named defaults.

The environment is read once, at the entry points (the ``quantify`` command
and the IPython extension), through :func:`ingest_config_from_env`; library
code takes a config object and never looks at ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from quantify.model.instrument import VENUES, Instrument

__all__ = [
    "DEFAULT_FUNDING_DELAY",
    "DEFAULT_METRICS_HOST",
    "DEFAULT_OPEN_INTEREST_INTERVAL",
    "DEFAULT_SYMBOLS",
    "IngestConfig",
    "ingest_config_from_env",
    "is_loopback",
    "parse_symbols",
    "parse_venue_urls",
]

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
STREAM_KINDS = ("trade", "aggTrade")
#: Seconds between open-interest polls of a perpetual (Binance keeps its history 30 days only).
DEFAULT_OPEN_INTEREST_INTERVAL = 60.0
#: Seconds after a funding settlement before its rate is asked for.
DEFAULT_FUNDING_DELAY = 5.0
#: Where the metrics server of ``quantify ingest --metrics-port`` listens unless told otherwise.
DEFAULT_METRICS_HOST = "127.0.0.1"


def parse_symbols(text: str | Sequence[str]) -> tuple[str, ...]:
    """Read ``"btcusdt, binance-usdm:BTCUSDT"`` (or a sequence) as canonical instrument texts.

    Each item is an instrument text (:meth:`Instrument.parse`); a plain
    symbol is Binance spot. The result holds ``str(Instrument.parse(item))``
    (``BTCUSDT``, ``binance-usdm:BTCUSDT``), distinct, in order. Raises
    ``ValueError`` naming the first bad item.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        raw = str(item).strip()
        if not raw:
            continue
        try:
            key = str(Instrument.parse(raw))
        except ValueError as exc:
            if ":" in raw:
                raise
            raise ValueError(f"{item!r} is not a Binance symbol (letters and digits, such as BTCUSDT) "
                             f"nor an instrument such as binance-usdm:BTCUSDT") from exc
        if key not in out:
            out.append(key)
    if not out:
        raise ValueError("no symbols given; pass e.g. --symbols BTCUSDT,binance-usdm:BTCUSDT")
    return tuple(out)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``''`` and ``0.0.0.0`` mean every interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _check_url(url: str, schemes: tuple[str, ...]) -> str:
    if not isinstance(url, str) or not url.startswith(schemes):
        raise ValueError(f"URL {url!r} must start with {' or '.join(schemes)}")
    return url


def _check_venue(name: str) -> str:
    if name not in VENUES:
        raise ValueError(f"unknown venue {name!r}; known: {', '.join(VENUES)}")
    return name


def parse_venue_urls(items: str | Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Read ``VENUE=WS_URL,REST_URL`` items into ``(ws_urls, rest_urls)`` by venue name.

    Either URL may be left empty (``binance-usdm=,http://127.0.0.1:9443``).
    Raises ``ValueError`` naming the bad item.
    """
    ws: dict[str, str] = {}
    rest: dict[str, str] = {}
    for item in [items] if isinstance(items, str) else items:
        name, sep, urls = item.partition("=")
        ws_url, comma, rest_url = urls.partition(",")
        if not sep or not comma:
            raise ValueError(f"{item!r}: expected VENUE=WS_URL,REST_URL (e.g. "
                             f"binance-usdm=ws://127.0.0.1:9443,http://127.0.0.1:9443)")
        name = _check_venue(name.strip().lower())
        if ws_url.strip():
            ws[name] = _check_url(ws_url.strip(), ("ws://", "wss://"))
        if rest_url.strip():
            rest[name] = _check_url(rest_url.strip(), ("http://", "https://"))
    return ws, rest


@dataclass(frozen=True)
class IngestConfig:
    """Everything the ingestion service needs to run.

    Attributes
    ----------
    symbols : tuple of str
        Instruments to stream, as canonical instrument texts
        (``BTCUSDT`` = Binance spot, ``binance-usdm:BTCUSDT`` = USD-M
        perpetual): anything :func:`parse_symbols` reads is accepted and
        canonicalised. See :attr:`instruments`.
    stream : str
        ``"trade"`` or ``"aggTrade"``.
    store : str or None
        Store URI (``None``: the default store).
    ws_url, rest_url : str or None
        WebSocket and REST base URLs for every venue of the run (a replay
        server serves every venue on one port); ``None``: each venue's own
        (:mod:`quantify.venues`).
    ws_urls, rest_urls : mapping of str to str
        Per-venue base URLs (``{"binance-usdm": "ws://..."}``), taking
        precedence over ``ws_url``/``rest_url`` for that venue.
    batch_size : int
        Append to ArcticDB as soon as a symbol has this many new trades ...
    flush_interval : float
        ... or when this many seconds passed since the last append.
    switch_interval : float or None
        The interpreter's GIL switch interval (seconds) while the service
        runs; ``None`` leaves it alone. The receive loop keeps the GIL busy,
        and the writer thread, which releases the GIL in every ArcticDB
        call, waits up to one switch interval (5 ms by default) to get it
        back each time: at full speed that tripled the time of an append.
        The previous value is restored when the service stops.
    tune_gc : bool
        While streaming, (1) move the objects that exist when streaming starts
        (imported modules, mostly) out of the garbage collector's reach
        (``gc.freeze``): full collections otherwise walk them all, every few
        hundred thousand trades, with 120 ms pauses, 14 % of the time at full
        speed; and (2) collect the youngest generation every
        ``GC_YOUNG_THRESHOLD`` allocations instead of 700: each trade
        allocates, and at 700 the collections cost 0.5 µs per trade. Both are
        undone when the service stops.
    streams_per_connection : int
        Streams per WebSocket connection at most (each venue's own limit
        applies too: Binance spot 1,024, USD-M 200); more symbols open more
        connections.
    connection_max_age : float
        Rotate a connection after this many seconds (Binance closes them at 24 h).
    rotation_overlap : float
        Seconds the old and new connection run side by side during rotation;
        duplicates are dropped by trade id.
    backfill_delay : float
        Seconds a gap waits before it is filled over REST, so that one request
        (up to 1,000 ids) covers the gaps of that second and the request
        weight stays within Binance's budget.
    tail_check_interval : float
        A symbol without new trades for this long is checked over REST for
        trades after its last one (a lost last frame has no successor to
        reveal it). Stretched automatically so that tail checks of many quiet
        symbols use at most a quarter of the weight budget.
    gap_timeout : float
        Give up filling a gap over REST after this many seconds (the gap is
        then recorded as unfilled and ingestion moves on).
    journal : bool
        Keep a raw, replayable journal of received frames next to an LMDB store.
    compact_interval : float
        Seconds between compactions of each symbol's appended segments.
    status_interval : float
        Seconds between status publications to the store.
    alerts : bool
        Evaluate the store's alert rules on every stored batch (the writer is
        the one place rules are evaluated, once per event).
    duration : float or None
        Stop after this many seconds.
    backoff_initial, backoff_min, backoff_max : float
        Reconnection backoff (jittered initial delay, then exponential).
    max_frame_bytes : int
        Frames above this size are rejected.
    lease_ttl : float
        Shared (S3) stores: seconds a worker's ownership of its symbols lasts
        without renewal (renewed every ``lease_ttl / 3``); a dead worker's
        symbols can be taken over after this long.
    standby : tuple of str
        Shared stores: symbols this worker does not claim at start but takes
        over when their owner's lease expires (a dead worker).
    books : tuple of str
        Instruments (among :attr:`symbols`) whose order books are streamed
        too: depth diffs and ``bookTicker`` on their own connections, a local
        book kept by Binance's procedure, its quotes, diffs, checkpoints and
        continuity ledger stored (``"all"``: every instrument of the run).
    book_snapshot_limit : int
        Levels per side of the REST depth snapshots (spot: up to 5,000, weight
        50 at 1,000; USD-M: 5, 10, 20, 50, 100, 500 or 1,000, weight 20 at 1,000).
        The book knows each side only this deep until diffs extend it.
    book_checkpoint_seconds : float
        Exchange seconds between stored checkpoints of each book (also one after every resync).
    perps : tuple of str
        Instruments (among :attr:`symbols`) whose perpetual-futures data is
        streamed and polled too (``"all"``: every instrument of the run):
        mark price (``markPrice@1s``) and liquidations (``forceOrder``) on
        connections of their own, open interest every
        :attr:`open_interest_interval`, funding settlements after each one.
        Spot instruments have none: the service ignores them with one
        notice.
    open_interest_interval : float
        Seconds between open-interest polls of each perpetual (stretched so
        that the polls of many perpetuals use at most a tenth of the
        venue's weight budget).
    funding_delay : float
        Seconds after a funding settlement time (the marks' next funding
        time, passed) before its rate is fetched; retried this often until
        the venue lists it.
    metrics_port : int or None
        Serve Prometheus metrics (``/metrics``) and health checks
        (``/healthz``, ``/readyz``) on this port while the service runs
        (:mod:`quantify.ingest.metrics`); 0 picks a free port, ``None`` (the
        default) serves nothing.
    metrics_host : str
        Where the metrics server listens: loopback unless asked otherwise.
    metrics_token : str or None
        The bearer token every request to the metrics server must carry
        (``Authorization: Bearer TOKEN``). Required when ``metrics_host`` is
        not a loopback address: the server never listens on a network
        without access control. Not shown in the ``repr``.
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    stream: str = "trade"
    store: str | None = None
    ws_url: str | None = None
    rest_url: str | None = None
    ws_urls: Mapping[str, str] = field(default_factory=dict)
    rest_urls: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 5_000
    flush_interval: float = 0.1
    switch_interval: float | None = 0.0005
    tune_gc: bool = True
    streams_per_connection: int = 200
    connection_max_age: float = 23.5 * 3600
    rotation_overlap: float = 10.0
    backfill_delay: float = 1.0
    tail_check_interval: float = 5.0
    gap_timeout: float = 120.0
    journal: bool = True
    compact_interval: float = 300.0
    status_interval: float = 1.0
    alerts: bool = True
    duration: float | None = None
    backoff_initial: float = 1.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    max_frame_bytes: int = 1 << 20
    lease_ttl: float = 30.0
    standby: tuple[str, ...] = ()
    books: tuple[str, ...] = ()
    book_snapshot_limit: int = 1000
    book_checkpoint_seconds: float = 10.0
    perps: tuple[str, ...] = ()
    open_interest_interval: float = DEFAULT_OPEN_INTEREST_INTERVAL
    funding_delay: float = DEFAULT_FUNDING_DELAY
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    metrics_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", parse_symbols(self.symbols))
        self._check_books()
        self._check_perps()
        self._check_metrics()
        if self.standby:
            object.__setattr__(self, "standby", parse_symbols(self.standby))
        if not self.lease_ttl > 0:
            raise ValueError(f"lease_ttl must be positive seconds, got {self.lease_ttl!r}")
        if self.stream not in STREAM_KINDS:
            raise ValueError(f"stream must be one of {', '.join(STREAM_KINDS)}, got {self.stream!r}")
        for name in ("batch_size", "streams_per_connection"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.streams_per_connection > 1024:
            raise ValueError("no venue allows more than 1024 streams per connection")
        if self.switch_interval is not None and not 0 < self.switch_interval <= 0.1:
            raise ValueError(f"switch_interval must be in (0, 0.1] seconds, got {self.switch_interval!r}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be positive seconds, got {self.duration!r}")
        for url, schemes in ((self.ws_url, ("ws://", "wss://")), (self.rest_url, ("http://", "https://"))):
            if url is not None:
                _check_url(url, schemes)
        for name, urls, schemes in (("ws_urls", self.ws_urls, ("ws://", "wss://")),
                                    ("rest_urls", self.rest_urls, ("http://", "https://"))):
            checked = {_check_venue(v): _check_url(u, schemes) for v, u in dict(urls).items()}
            object.__setattr__(self, name, checked)

    def _check_books(self) -> None:
        object.__setattr__(self, "books", self._among_symbols(self.books, "order books"))
        if not 1 <= self.book_snapshot_limit <= 5000:
            raise ValueError(f"book_snapshot_limit must be 1 to 5000 levels, got {self.book_snapshot_limit!r}")
        if not self.book_checkpoint_seconds > 0:
            raise ValueError(f"book_checkpoint_seconds must be positive, got {self.book_checkpoint_seconds!r}")

    def _check_perps(self) -> None:
        object.__setattr__(self, "perps", self._among_symbols(self.perps, "perpetual data"))
        for name in ("open_interest_interval", "funding_delay"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive seconds, got {getattr(self, name)!r}")

    def _check_metrics(self) -> None:
        port = self.metrics_port
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise ValueError(f"metrics_port must be a TCP port (0 to 65535; 0 picks a free one), got {port!r}")
        if port is not None and not is_loopback(self.metrics_host) and not self.metrics_token:
            raise ValueError(f"metrics_host {self.metrics_host!r} is reachable from other machines: set a "
                             f"token (QUANTIFY_METRICS_TOKEN) that scrapers send as 'Authorization: Bearer ...'")

    def _among_symbols(self, value: str | Sequence[str], what: str) -> tuple[str, ...]:
        """``value`` (``"all"``, text or a sequence) as instrument texts, each one of :attr:`symbols`."""
        if isinstance(value, str):
            items = tuple(self.symbols) if value.strip().lower() == "all" else parse_symbols(value)
        else:
            items = parse_symbols(value) if value else ()
        unknown = [b for b in items if b not in self.symbols]
        if unknown:
            raise ValueError(f"{what} of {', '.join(unknown)} asked for, but the run streams only "
                             f"{', '.join(self.symbols)}: add them to the symbols")
        return tuple(items)

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """:attr:`symbols` as instruments, in order."""
        return tuple(Instrument.parse(s) for s in self.symbols)

    def ws_base(self, venue: str) -> str | None:
        """The WebSocket base URL configured for ``venue`` (``None``: the venue's own)."""
        return self.ws_urls.get(venue, self.ws_url)

    def rest_base(self, venue: str) -> str | None:
        """The REST base URL configured for ``venue`` (``None``: the venue's own)."""
        return self.rest_urls.get(venue, self.rest_url)

    def with_(self, **changes: object) -> IngestConfig:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]


def ingest_config_from_env(env: Mapping[str, str] | None = None, **overrides: object) -> IngestConfig:
    """Build an :class:`IngestConfig` from ``QUANTIFY_*`` variables and overrides.

    Read: ``QUANTIFY_STORE``, ``QUANTIFY_SYMBOLS``, ``QUANTIFY_STREAM``,
    ``QUANTIFY_WS_URL``, ``QUANTIFY_REST_URL`` (the base URLs of every
    venue), ``QUANTIFY_BOOKS`` (instruments whose order books to stream, or
    ``all``), ``QUANTIFY_METRICS_TOKEN`` (the metrics server's bearer
    token). Overrides that are ``None``
    are ignored. Called by entry points only.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for key, name in (("QUANTIFY_STORE", "store"), ("QUANTIFY_SYMBOLS", "symbols"),
                      ("QUANTIFY_STREAM", "stream"), ("QUANTIFY_WS_URL", "ws_url"),
                      ("QUANTIFY_REST_URL", "rest_url"), ("QUANTIFY_BOOKS", "books"),
                      ("QUANTIFY_PERPS", "perps"), ("QUANTIFY_METRICS_TOKEN", "metrics_token")):
        if env.get(key):
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return IngestConfig(**values)  # type: ignore[arg-type]
