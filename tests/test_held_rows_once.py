"""A console row written once whatever a stop's cancel does (``kiosk.auditing.HeldRows``).

Before: the daemon's stop cancelled the console's rows task while the event log's writer was
already committing the minute's count of refused sign-ins (``audit_async``: a cancel does not
stop a write the writer has begun); the task held the row all the same, and the stop's last
flush wrote it a second time. Now the rows are written or held in one thread, by each write's
own outcome (``HeldRows.write``): cancelled, the caller no longer decides for it.

No sleeps: the writer is held inside the write by a ``threading.Event``, and the test waits
on another that the write sets when it has begun."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from guard_support import console_fixtures

from kiosk.auditing import HeldRows
from kiosk.store import StoreFault
from ui.auth import REFUSED_COUNTED, RefusedRows
from ui.guard.deps import flush_held

START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)


def rows(core, action):
    return [a for a in core.store.audits() if a["action"] == action]


def _a_count_due(app, clock):
    g = app.state.guard
    g.auth.refused_rows = RefusedRows(clock, per_minute=1)
    assert [g.auth.refused_rows.refused(f"10.8.0.{i}") for i in range(3)] == [True, False, False]
    clock.advance(61)  # the minute is over: its count row is due
    return g


def test_a_count_row_whose_write_began_before_a_stops_cancel_is_written_once(
    app, core, clock, monkeypatch
):
    g = _a_count_due(app, clock)
    begun, release = threading.Event(), threading.Event()
    insert = core.store._insert_audit

    def slow_insert(conn, actor, action, detail):
        if action == REFUSED_COUNTED and not begun.is_set():
            begun.set()  # the writer has begun this row's write: a cancel cannot stop it
            assert release.wait(10)
        return insert(conn, actor, action, detail)

    monkeypatch.setattr(core.store, "_insert_audit", slow_insert)

    async def stop_while_writing():
        task = asyncio.create_task(flush_held(g))
        assert await asyncio.to_thread(begun.wait, 10)
        task.cancel()  # the daemon's stop cancels the rows' task
        await asyncio.gather(task, return_exceptions=True)
        release.set()  # the storage answers: the write began goes through

    asyncio.run(stop_while_writing())  # returns once its threads are done
    core.store.submit(lambda _db: None)  # the writer's queue is through
    g.held.close(core.store)  # the stop's last try
    assert len(rows(core, REFUSED_COUNTED)) == 1
    assert g.held.unwritten() == 0


def test_a_cancel_before_the_rows_are_taken_leaves_them_due(app, core, clock):
    """A cancel that comes before the thread took the rows leaves them with ``due()``: the
    next flush (the stop's) writes them, once."""
    g = _a_count_due(app, clock)

    async def cancelled_at_once():
        task = asyncio.create_task(flush_held(g))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(cancelled_at_once())
    asyncio.run(flush_held(g, stopping=True))
    assert len(rows(core, REFUSED_COUNTED)) == 1 and len(g.held) == 0


class _Writer:
    """An audit writer that refuses while ``failing``, else keeps the rows."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.rows: list[tuple[str, str, dict]] = []

    def audit(self, actor, action, detail=None):
        if self.failing:
            raise StoreFault("store_fault", "disk I/O error")
        self.rows.append((actor, action, dict(detail or {})))


def test_write_holds_what_the_storage_refuses_and_counts_it_unwritten():
    held, writer = HeldRows(), _Writer(failing=True)
    at = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    assert held.write(writer, [("-", "a", {}), ("-", "b", {})], at) == 0
    assert len(held) == 2 and held.unwritten() == 2
    writer.failing = False
    assert held.write(writer, [("-", "c", {})], at) == 1  # behind the two, in order
    assert [r[1] for r in writer.rows] == ["a", "b", "c"]
    assert "held_at" in writer.rows[0][2] and "held_at" not in writer.rows[2][2]
    assert held.unwritten() == 0


def test_a_write_the_storage_does_not_answer_counts_as_unwritten():
    """A stop that gives up on a stuck write reads here how many rows it leaves unwritten."""
    held, entered, release = HeldRows(), threading.Event(), threading.Event()

    class Stuck:
        def audit(self, actor, action, detail=None):
            entered.set()
            assert release.wait(10)

    at = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    held.hold("-", "before", {}, at, essential=False)
    writing = threading.Thread(target=held.write, args=(Stuck(), [("-", "x", {})] * 2, at))
    writing.start()
    assert entered.wait(10)
    assert held.unwritten() == 3  # the held one (being written) and the two taken
    release.set()
    writing.join(10)
    assert held.unwritten() == 0
