"""The state of one network endpoint a writer talks to: connecting, connected, or unreachable.

An ingestion run talks to each venue's WebSocket (one connection per URL)
and REST API. :class:`EndpointStatus` says, per endpoint, whether it is
reached, since when, and the last error; :class:`~quantify.model.status.WriterStatus`
publishes them (``endpoints``) and every status view renders them, so an
unreachable exchange shows as ``unreachable since 2026-12-02 02:50:01 UTC:
connection refused`` instead of a silent zero ticks per second.

URLs are kept as :func:`public_url` gives them: no user, password or query
(stream lists, keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

__all__ = ["EndpointState", "EndpointStatus", "public_url"]


class EndpointState(str, Enum):
    """Whether an endpoint is reached."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNREACHABLE = "unreachable"


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment (``wss://u:p@host/stream?x`` -> ``wss://host/stream``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint of a writer and whether it is reached.

    Attributes
    ----------
    venue : str
        The venue it belongs to (``binance``, ``binance-usdm``).
    kind : str
        ``"websocket"`` or ``"rest"``.
    url : str
        Its URL, without credentials or query (:func:`public_url`).
    state : EndpointState
        ``connecting`` (first attempt, or reconnecting after a drop),
        ``connected``, or ``unreachable`` (the last attempt failed; retries go on).
    since : float or None
        When the endpoint entered ``state`` (seconds since the epoch); for
        ``unreachable``, the first failure of the outage.
    error : str or None
        The last failure, in words (``connection refused``, ``cannot resolve
        host ...``, ``no answer within 4 s``).
    failures : int
        Failed attempts since the endpoint was last reached.
    """

    venue: str
    kind: str
    url: str
    state: EndpointState = EndpointState.CONNECTING
    since: float | None = None
    error: str | None = None
    failures: int = 0

    @property
    def reached(self) -> bool:
        return self.state is EndpointState.CONNECTED

    def describe(self) -> str:
        """``connected``, ``connecting`` or ``unreachable since <UTC time>: <error>``."""
        if self.state is not EndpointState.UNREACHABLE:
            return self.state.value
        when = "" if self.since is None else \
            f" since {pd.Timestamp(self.since, unit='s', tz='UTC').strftime('%Y-%m-%d %H:%M:%S')} UTC"
        return f"unreachable{when}: {self.error or 'unknown error'}"

    def summary(self) -> str:
        """One line: venue, kind, URL, state."""
        return f"{self.venue} {self.kind} {self.url}: {self.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "kind": self.kind, "url": self.url, "state": self.state.value,
                "since": self.since, "error": self.error, "failures": self.failures,
                "description": self.describe()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointStatus:
        """Read :meth:`to_dict`'s form; unknown keys ignored, missing ones defaulted."""
        try:
            state = EndpointState(data.get("state"))
        except ValueError:
            state = EndpointState.CONNECTING
        since = data.get("since")
        try:
            since_s = None if since is None else float(since)
            failures = int(data.get("failures") or 0)
        except (TypeError, ValueError):
            since_s, failures = None, 0
        error = data.get("error")
        return cls(venue=str(data.get("venue") or ""), kind=str(data.get("kind") or ""),
                   url=str(data.get("url") or ""), state=state, since=since_s,
                   error=None if error is None else str(error), failures=failures)
