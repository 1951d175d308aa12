"""Checking a run's symbols against what each venue lists, at start and when symbols are added.

:func:`check_listed_on` asks one venue's REST API, once and without
retries, and refuses symbols it does not list (``ValueError`` naming the
closest listed ones, :func:`quantify.venues.listing.check_listed`); a venue
that cannot be asked is warned about and the symbols go on unchecked.
:func:`check_symbols` does it for every venue of a config, synchronously
(for the IPython extension, whose thread may run an event loop already).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence

import httpx

from quantify.config import IngestConfig
from quantify.exceptions import RestError
from quantify.ingest.feeds import by_venue
from quantify.model.instrument import Instrument
from quantify.venues import venue as venue_named
from quantify.venues.base import VenueRest
from quantify.venues.listing import check_listed

__all__ = ["check_listed_on", "check_symbols", "raise_first"]

logger = logging.getLogger(__name__)


async def check_listed_on(rest: VenueRest, venue: str, instruments: Sequence[Instrument]) -> bool:
    """Refuse ``instruments`` of ``venue`` its REST API does not list; False if it could not be asked.

    One request, no retries (the stream retries in the background). An
    unreachable API has been named by the client's observer; other failures
    are said here. Raises ``ValueError`` naming unknown symbols and the closest listed ones.
    """
    try:
        listed = await rest.listed_symbols([i.symbol for i in instruments], retries=0)
    except (RestError, KeyError, TypeError, ValueError) as exc:
        logger.warning("%s: %s not checked against the exchange's list (%s); going on", venue,
                       ", ".join(str(i) for i in instruments), exc)
        return False
    check_listed(instruments, listed)
    return True


def raise_first(outcomes: Sequence[object]) -> None:
    """Raise the errors among ``outcomes`` (of ``gather(..., return_exceptions=True)``), unknown symbols as one."""
    errors = [e for e in outcomes if isinstance(e, BaseException)]
    if len(errors) > 1 and all(type(e) is ValueError for e in errors):
        raise ValueError("; ".join(str(e) for e in errors))  # every venue's unknown symbols at once
    if errors:
        raise errors[0]


async def _check_all(config: IngestConfig, transport: httpx.AsyncBaseTransport | None) -> None:
    async def one(name: str, instruments: list[Instrument]) -> None:
        v = venue_named(name)
        async with v.rest(config.rest_base(name), transport=transport) as rest:
            await check_listed_on(rest, name, instruments)

    groups = by_venue(config.instruments)
    raise_first(await asyncio.gather(*(one(n, g) for n, g in groups.items()), return_exceptions=True))


def check_symbols(config: IngestConfig, *, timeout: float = 10.0,
                  transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Check ``config.symbols`` against their venues' lists (see :func:`check_listed_on`), synchronously.

    Runs in a worker thread with its own event loop, so it may be called
    from a thread whose loop is running (a Jupyter kernel's). Gives up
    (warning, as for an unreachable venue) after ``timeout`` seconds.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quantify-symbols")
    future = pool.submit(asyncio.run, _check_all(config, transport))
    try:
        future.result(timeout)
    except concurrent.futures.TimeoutError:
        logger.warning("%s not checked against the exchange's list: no answer within %.0f s",
                       ", ".join(config.symbols), timeout)
    finally:
        pool.shutdown(wait=False)  # a late answer is dropped with its thread
