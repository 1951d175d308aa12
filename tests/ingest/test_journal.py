"""The journal: replayable segments, released once stored."""

from __future__ import annotations

from pathlib import Path

from quantify.ingest.journal import Journal
from quantify.venues.binance.recordings import read_frames

FRAME = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":%d,"p":"1.0","q":"1.0","T":1,"m":true,"M":true}}'


def test_segments_rotate_replay_and_release(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=500)
    j.start()
    for i in range(1, 11):
        j.write(FRAME % i, 1_700_000_000_000_000_000 + i)
        j.flush(lambda i=i: {"BTCUSDT": i})
    segments = j.leftover()
    assert len(segments) > 1
    frames = [f for p in segments for _, f in read_frames(p)]
    assert frames == [(FRAME % i).decode() for i in range(1, 11)]
    # A restarted writer sees every frame.
    assert list(Journal(tmp_path).replay_leftover()) == frames
    assert j.release({"BTCUSDT": 5}) >= 1  # segments up to id 4 are stored
    j.close({"BTCUSDT": 10}, {"BTCUSDT": 11})
    assert j.leftover() == []


def test_leftover_released_only_when_asked(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.start()
    j.write(FRAME % 1, 1)
    j.flush(lambda: {"BTCUSDT": 1})
    # simulate a crash: no close; a new writer starts
    j2 = Journal(tmp_path)
    j2.start()
    assert j2.release({"BTCUSDT": 100}) == 0
    assert j2.release({"BTCUSDT": 100}, all_leftover=True) == 1


def test_frames_are_kept_as_received(tmp_path: Path) -> None:
    """Undecoded frames read back as they came; invalid UTF-8 parses as malformed, not as an error."""
    from quantify.model.trades import Trade
    from quantify.venues.binance.parse import FrameParser

    j = Journal(tmp_path)
    j.start()
    j.write(FRAME % 1, 1)
    j.write(b'{"stream":"\xff\xfe garbage', 2)
    j.write(FRAME % 3, 3)
    j.flush(lambda: {"BTCUSDT": 3})
    frames = [f for p in j.leftover() for _, f in read_frames(p)]
    assert len(frames) == 3
    parser = FrameParser()
    events = [parser.parse(f) for f in frames]
    assert [e.trade_id for e in events if type(e) is Trade] == [1, 3]
    assert parser.malformed_total == 1
