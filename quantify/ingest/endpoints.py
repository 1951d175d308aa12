"""Which endpoints a run reaches: one :class:`EndpointStatus` per connection URL and REST API.

The receiver reports each WebSocket connection's attempts (from the
reconnect loop of its client, picows or websockets), the venues' REST clients
report every request attempt (their ``observer``). :class:`Endpoints` keeps
the state of each, and on the first failure of an outage logs one warning
that names the host, the error and what to do; the writer's status carries
the states (``connecting``, ``connected``, ``unreachable since ...``).
Retrying is not this module's business: the receiver's loops and the REST
client keep trying, with capped, jittered backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from quantify.model.endpoints import EndpointState, EndpointStatus, public_url
from quantify.model.status import is_replay_url
from quantify.venues.base import describe_error

__all__ = ["OFFLINE_HINT", "Endpoints", "hint_for"]

logger = logging.getLogger(__name__)

#: What to do when Binance cannot be reached (an offline desk, a blocked network).
OFFLINE_HINT = ("no route to Binance? run `quantify replay --loop --port 9443` and pass "
                "`--ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443` "
                "(in a notebook: $QUANTIFY_WS_URL and $QUANTIFY_REST_URL)")


def hint_for(url: str) -> str:
    """What to do when ``url`` cannot be reached (start the replay server, point at it)."""
    if is_replay_url(url):
        return "is the replay server (`quantify replay`) running on that port?"
    return OFFLINE_HINT


class Endpoints:
    """The reachability of a run's endpoints (thread-safe: the service's status reads it).

    Parameters
    ----------
    clock : callable
        Wall clock (seconds since the epoch), injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str, str], EndpointStatus] = {}
        #: Failures reported so far (across endpoints).
        self.failures = 0

    @staticmethod
    def _key(venue: str, kind: str, url: str) -> tuple[str, str, str]:
        return venue, kind, public_url(url)

    def connecting(self, venue: str, kind: str, url: str) -> None:
        """An attempt starts (the first, or after a drop); an outage in progress stays ``unreachable``."""
        key = self._key(venue, kind, url)
        with self._lock:
            before = self._by_key.get(key)
            if before is not None and before.state is not EndpointState.CONNECTED:
                return
            self._by_key[key] = EndpointStatus(*key, state=EndpointState.CONNECTING, since=self._clock())

    def connected(self, venue: str, kind: str, url: str) -> None:
        """The endpoint answered."""
        key = self._key(venue, kind, url)
        with self._lock:
            before = self._by_key.get(key)
            if before is not None and before.state is EndpointState.CONNECTED:
                return
            self._by_key[key] = EndpointStatus(*key, state=EndpointState.CONNECTED, since=self._clock())
        if before is not None and before.state is EndpointState.UNREACHABLE:
            logger.info("%s %s %s reached again after %d failed attempt(s)", venue, kind, key[2],
                           before.failures)

    def failed(self, venue: str, kind: str, url: str, error: BaseException | str) -> None:
        """An attempt failed; the first failure of an outage logs the one warning saying what to do."""
        key = self._key(venue, kind, url)
        text = error if isinstance(error, str) else describe_error(error)
        with self._lock:
            before = self._by_key.get(key)
            outage = before is not None and before.state is EndpointState.UNREACHABLE
            since = before.since if outage and before is not None else self._clock()
            failures = (before.failures if outage and before is not None else 0) + 1
            self._by_key[key] = EndpointStatus(*key, state=EndpointState.UNREACHABLE, since=since,
                                               error=text, failures=failures)
            self.failures += 1
        if not outage:
            logger.warning("cannot reach %s %s %s: %s; retrying with backoff. %s", venue, kind, key[2], text,
                           hint_for(key[2]))

    def observer(self, venue: str, url: str) -> Callable[[BaseException | None], None]:
        """A REST client's ``observer`` reporting into this board as ``(venue, "rest", url)``."""
        self.connecting(venue, "rest", url)

        def observe(error: BaseException | None) -> None:
            if error is None:
                self.connected(venue, "rest", url)
            else:
                self.failed(venue, "rest", url, error)

        return observe

    def state(self, venue: str, kind: str, url: str) -> EndpointStatus | None:
        """The endpoint's state, if it was ever reported."""
        with self._lock:
            return self._by_key.get(self._key(venue, kind, url))

    def snapshot(self) -> tuple[EndpointStatus, ...]:
        """Every endpoint's state, WebSocket connections first."""
        with self._lock:
            values = list(self._by_key.values())
        return tuple(sorted(values, key=lambda e: (e.kind != "websocket", e.venue, e.url)))

    def settled(self) -> bool:
        """True when no endpoint is still making its first attempt (or reconnecting)."""
        return all(e.state is not EndpointState.CONNECTING for e in self.snapshot())

    def unreachable(self) -> tuple[EndpointStatus, ...]:
        return tuple(e for e in self.snapshot() if e.state is EndpointState.UNREACHABLE)
