"""ArcticDB access: store URIs, reads, appends, compaction, the writer lock."""

from __future__ import annotations

from quantify.model.times import parse_time
from quantify.store.lease import WriterLock
from quantify.store.store import MIN_FREE_BYTES, Store, open_store
from quantify.store.uri import StoreURI, parse_store_uri

__all__ = ["MIN_FREE_BYTES", "Store", "StoreURI", "WriterLock", "open_store", "parse_store_uri", "parse_time"]
