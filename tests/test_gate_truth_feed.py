"""The guard's live feed shows the row saying the gate did not open for a pass when it is written.

The engine writes that row (``deny`` ``gate_fault`` flagged ``not_opened:<seq>``) from its
backlog after the pass, and announces a backlog record with a ``health`` message, not a
decision: the live stream drew new rows on decisions only, so the guard's feed still showed
the pass as the resident's last word until the next passage or a reload, and the guard, told
"gate fault", saw a pass at the top of the feed."""

from __future__ import annotations

import asyncio

from guard_support import add_event
from test_gate_truth import _failed_pass, rig  # noqa: F401 - the fixture

from ui.guard.deps import Guard
from ui.guard.live import FeedStream
from ui.views import ScreenTracker, current_state


def test_the_engine_announces_the_row_after_the_pass_with_a_health_message(rig):  # noqa: F811
    _failed_pass(rig)
    passed, followed = rig.events()
    kinds = [m["type"] for m in rig.messages]
    # The pass is a decision; the row after it is written from the backlog, then health says so.
    assert kinds.count("decision") == 1
    assert "health" in kinds[kinds.index("decision") + 1 :]
    assert followed["flags"] == [f"not_opened:{passed['seq']}"]


def _stream(guard_core, after: int) -> tuple[FeedStream, ScreenTracker]:
    g = Guard.build(guard_core)
    session = g.auth.sessions.read(g.auth.sessions.issue(g.auth.accounts.get("alice"))[0])
    return FeedStream(g, session, "en", after), ScreenTracker(current_state(guard_core))


def test_a_row_written_from_the_backlog_reaches_the_live_feed_at_the_health_message(
    guard_core,
):
    passed = add_event(guard_core, direction="out", household="3-201", pass_id="c0ffee000003")
    stream, tracker = _stream(guard_core, passed.seq)
    followed = add_event(guard_core, direction="out", decision="deny", reasons=("gate_fault",),
                         household="3-201", pass_id="c0ffee000003",
                         flags=(f"not_opened:{passed.seq}",))  # fmt: skip
    health = {"type": "health", "degraded": ["gate"], "faults": {}, "deciding": True, "backlog": 0}
    lines = asyncio.run(stream.on_message(health, tracker))
    rows = [line for line in lines if line.startswith("event: row\n")]
    assert len(rows) == 1 and f'"seq":{followed.seq}' in rows[0]
    assert stream.after == followed.seq
    # Heard again with nothing new: no row drawn twice.
    lines = asyncio.run(stream.on_message(health, tracker))
    assert not [line for line in lines if line.startswith("event: row\n")]
