"""Reference order books of the recordings, for the book tests of every layer.

``events(files)`` parses a recording's book events once per session;
``Truth`` is the recording's book rebuilt from scratch (its snapshot and
every diff after it) and answers a snapshot at any update id, as the replay
does; ``feed`` runs a ``BookSync`` over events.
"""

from __future__ import annotations

import functools

from quantify.model.book import BookTicker, DepthDiff, DepthSnapshot, OrderBook
from quantify.venues.binance.parse import FrameParser
from quantify.venues.binance.recordings import read_frames


def events(files):
    """``(receive ns, event)`` of the book events of ``files``, parsed once per session."""
    return _events(tuple(files))


@functools.cache
def _events(files):
    parser = FrameParser()
    out = []
    for path in files:
        for recv, frame in read_frames(path):
            ev = parser.parse(frame)
            if type(ev) in (DepthDiff, DepthSnapshot, BookTicker):
                out.append((recv, ev))
    assert not parser.malformed
    return out


def feed(sync, stream):
    applied = []
    for recv, ev in stream:
        if type(ev) is DepthDiff:
            applied += sync.on_diff(ev, recv)
        elif type(ev) is DepthSnapshot:
            applied += sync.on_snapshot(ev, recv)
        else:
            sync.on_ticker(ev, recv)
    return applied


class Truth:
    """The recording's book from its snapshot and every diff: answers snapshots at any id (as the replay does)."""

    def __init__(self, stream):
        # the snapshot line comes after the first diffs of the recording: apply every diff past its id
        self.snap = next(ev for _, ev in stream if type(ev) is DepthSnapshot)
        self.diffs = [ev for _, ev in stream if type(ev) is DepthDiff and ev.last_id > self.snap.last_update_id]
        book = self._start()
        self.bbo = {}
        for d in self.diffs:
            book.apply(d)
            self.bbo[d.last_id] = book.bbo()

    def _start(self):
        return OrderBook.from_levels(self.snap.bids, self.snap.asks, self.snap.last_update_id)

    def snapshot(self, update_id):
        book = self._start()
        for d in self.diffs:
            if d.last_id > update_id:
                break
            book.apply(d)
        assert book.update_id == update_id
        return DepthSnapshot(update_id, book.side(True, 1000), book.side(False, 1000), "", 1000)
