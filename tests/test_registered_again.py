"""A registration recorded again (``kiosk.again``): the look for the same person or vehicle
let through a moment before is made again in the commit's own write transaction, so two
tablets sending at the very same moment record one (the console's side of it:
``tests/test_guard_two_tablets.py``)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_engine import Rig, _hold_crossings

from kiosk.again import AGAIN_WINDOW_S, NotAgain
from kiosk.clock import ClockReading
from kiosk.crossing import Outcome
from kiosk.queries import Since
from kiosk.store import AlreadyRecorded, EventDraft, EventLog, StoreFault

ZHANG = {"name": "Zhang Guiying", "unit": "3-201", "note": "no phone"}
WAIT_S = 10


def not_again(clock, seen: int | None = None, **person) -> NotAgain:
    since = Since.ago(ClockReading.take(clock), AGAIN_WINDOW_S, "t")
    return NotAgain("registration", ZHANG | person, "out", since, seen)


def registration(clock, **person) -> EventDraft:
    """Zhang Guiying of 3-201 let out by a guard, written unless she was a moment before."""
    return EventDraft(
        direction="out", decision="manual_pass", reasons=("guard_override",), operator="alice",
        kind="registration", person=ZHANG | person, unless=not_again(clock, **person),
        audit=("alice", "register_person", {"outcome": "ok"}),
    )  # fmt: skip


@pytest.fixture
def log(tmp_path, clock):
    with EventLog(tmp_path / "events.db", "gate-1", clock, "NORMAL", boot_id="t") as opened:
        yield opened


def test_two_registrations_committed_at_the_very_same_moment_write_one(log, clock):
    """Both drafts are handed to the log at once, neither having seen the other: the first
    written, the second not (nor its request's audit row), naming the first."""
    start = threading.Barrier(2, timeout=WAIT_S)

    def commit(spelled: str):
        start.wait()
        try:
            return log.append(registration(clock, name=spelled)).seq
        except AlreadyRecorded as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(commit, ["Zhang Guiying", "ZHANG guiying "]))
    [written] = [a for a in answers if isinstance(a, int)]
    [refused] = [a for a in answers if isinstance(a, AlreadyRecorded)]
    assert refused.seq == written and refused.event["operator"] == "alice"
    assert "Zhang" not in str(refused) and "Zhang" not in repr(refused)  # a log line's words
    assert [e["seq"] for e in log.events()] == [written]
    assert len(log.audits()) == 1  # the written one's request row, not the refused one's


def test_a_registration_confirmed_over_the_record_shown_is_written_a_newer_one_is_not(log, clock):
    first = log.append(registration(clock)).seq
    confirmed = dataclasses.replace(registration(clock), unless=not_again(clock, first))
    second = log.append(confirmed).seq  # twins: the guard said so, over the record shown
    with pytest.raises(AlreadyRecorded) as asked:
        log.append(confirmed)  # a newer record since the one shown: asked again
    assert asked.value.seq == second
    clock.advance(AGAIN_WINDOW_S + 1)
    assert log.append(registration(clock)).seq == second + 1  # minutes later: a new outing


def test_past_a_damaged_page_the_registration_is_recorded_unasked(log, clock, monkeypatch):
    """The look in the commit meets a page the card lost: the registration is recorded, as
    the console's own look lets it go ahead (never a store fault keeping the visitor)."""
    from kiosk import again

    def damaged(*_args, **_kwargs):
        exc = sqlite3.DatabaseError("database disk image is malformed")
        exc.sqlite_errorname = "SQLITE_CORRUPT"
        raise exc

    first = log.append(registration(clock)).seq
    monkeypatch.setattr(again.queries, "events_of_kinds_since", damaged)
    assert log.append(registration(clock)).seq == first + 1
    assert log.health().state == "ok"


@pytest.mark.parametrize("on_store_fault", ["deny", "manual"])
def test_the_engine_decides_nothing_on_a_registration_the_log_refused(
    clock, tmp_path, on_store_fault
):
    """The second tablet's registration, refused by the log: no decision published, no gate
    opened for it (not even where a guard's pass opens the gate unrecorded), nothing held for
    later; its guard is told (``on_recorded``) and the kiosk goes back to what it showed."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": on_store_fault})
    try:
        told: list = []

        def register() -> None:
            rig.engine.manual(
                "manual_pass", "alice", "no phone", "out", person=ZHANG, kind="registration",
                temp_c=36.5, unless=not_again(clock), on_recorded=told.append,
            )  # fmt: skip

        register()
        rig.run(0.2)
        register()
        rig.run(0.2)
        assert [e["seq"] for e in rig.events()] == [1]
        assert told[0].committed and told[1].refused.seq == 1 and not told[1].gate_commanded
        assert [d["decision"] for d in rig.decisions()] == ["manual_pass"]
        assert [c.open_ for c in rig.gate.commands] == [True]
        assert not rig.engine.backlog and rig.engine.state == "gate_open"
        rig.run(rig.config.gate.pulse_ms / 1000 + rig.config.engine.result_hold_s + 1)
        assert rig.engine.state == "idle"
        assert [c.open_ for c in rig.gate.commands] == [True, False]
    finally:
        rig.close()


def test_a_pass_held_through_a_late_commit_the_log_then_refused_is_not_written_twice(
    clock, tmp_path
):
    """The second tablet's registration missed its commit deadline (the card slow): its pass
    was let through unrecorded (``on_store_fault = "manual"``) and held for later. Its commit
    then ended, refused: the first tablet's record was there. The held one is not written
    after it: the visitor's passage is on record once."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.log.append(registration(clock))  # the first tablet's
        held = _hold_crossings(rig)
        rig.engine.manual(
            "manual_pass", "root", "no phone", "out", person=ZHANG, kind="registration",
            temp_c=36.5, unless=not_again(clock),
        )  # fmt: skip
        [crossing] = held
        missed = StoreFault("store_fault", "commit not confirmed within 3000 ms")
        rig.engine.on_crossed(Outcome(crossing, store_fault=missed, pending=True))
        assert len(rig.engine.backlog) == 1  # let through, its record held
        with pytest.raises(AlreadyRecorded) as refused:
            rig.log.append(crossing.draft)  # the commit ends after all: refused
        del rig.ports.cross
        rig.engine.on_late_commit(crossing, refused.value)
        rig.run(rig.config.engine.idle_probe_s * 2)
        assert [e["seq"] for e in rig.events()] == [1] and not rig.engine.backlog
    finally:
        rig.close()
