"""The guard feed's resumption edges: a page asking after a ``seq`` beyond the log's newest
row (the log restored from an older backup) is told so and given the newest rows, never a
live-looking page showing nothing; a stream opened with ``after=0`` (no row shown yet) is the
feed's newest rows with no gap announced; ``/guard/api/feed`` says how many rows it left out."""

from __future__ import annotations

import asyncio
import json

from guard_support import add_event
from test_gate_truth_feed import _stream

from ui.guard import live
from ui.guard.live import FEED_ROWS


def _events(lines: list[str], name: str) -> list[dict]:
    return [json.loads(x.split("data: ", 1)[1]) for x in lines if x.startswith(f"event: {name}\n")]


def _fill(core, n: int) -> None:
    for _ in range(n):
        add_event(core)


def test_a_stream_opened_after_0_sends_the_newest_rows_and_no_gap(guard_core, monkeypatch):
    monkeypatch.setattr(live, "PAGE_ROWS", 20)  # the log longer than the page keeps, cheaply
    _fill(guard_core, FEED_ROWS + 10)
    stream, _ = _stream(guard_core, 0)
    lines = asyncio.run(stream.rows())
    assert not _events(lines, "gap")
    seqs = [r["seq"] for r in _events(lines, "row")]
    last = guard_core.store.last_seq
    assert seqs == list(range(last - FEED_ROWS + 1, last + 1))  # as /guard/api/feed gives them
    assert stream.after == last
