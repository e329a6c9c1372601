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


def past_its_deadline(rig, operator: str = "root", **manual):
    """A guard's registration out whose commit missed its deadline on a slow card: let
    through unrecorded (``on_store_fault = "manual"``) and held; its crossing, for the test to
    end. ``manual``: ``Engine.manual``'s person, kind and unless (Zhang, unless again)."""
    held = _hold_crossings(rig)
    rig.engine.manual(
        "manual_pass", operator, "no phone", "out", temp_c=36.5,
        **({"person": ZHANG, "kind": "registration", "unless": not_again(rig.clock)} | manual),
    )  # fmt: skip
    [crossing] = held
    missed = StoreFault("store_fault", "commit not confirmed within 3000 ms")
    rig.engine.on_crossed(Outcome(crossing, store_fault=missed, pending=True))
    return crossing


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
        crossing = past_its_deadline(rig)
        assert len(rig.engine.backlog) == 1  # let through, its record held
        with pytest.raises(AlreadyRecorded) as refused:
            rig.log.append(crossing.draft)  # the commit ends after all: refused
        del rig.ports.cross
        rig.engine.on_late_commit(crossing, refused.value)
        rig.run(rig.config.engine.idle_probe_s * 2)
        assert [e["seq"] for e in rig.events()] == [1] and not rig.engine.backlog
        # Not silently: the guards are told (a card on the record that stands) and it is audited.
        [alarm] = [m for m in rig.messages if m.get("alarm") == "held_pass_dropped"]
        assert alarm["seq"] == 1 and "root's registration out" in alarm["detail"]
        [row] = [a for a in rig.log.audits() if a["action"] == "held_pass_dropped"]
        assert row["actor"] == "kiosk"
        assert row["detail"] | {"why": ""} == {
            "decision": "manual_pass", "direction": "out", "kind": "registration",
            "operator": "root", "seq": 1, "why": "",
        }  # fmt: skip
    finally:
        rig.close()


def test_out_back_in_and_out_again_is_a_second_outing_not_a_registration_again(log, clock):
    """Out, back in two minutes later, out again a minute after: her newest record is the
    'in', so the second outing is written (only the newest record either way counts)."""
    first = log.append(registration(clock)).seq
    clock.advance(120)
    log.append(dataclasses.replace(registration(clock), direction="in", unless=None))
    clock.advance(60)
    assert log.append(registration(clock)).seq == first + 2
    with pytest.raises(AlreadyRecorded) as again:  # the same outing from another tablet
        log.append(registration(clock))
    assert again.value.seq == first + 2


def test_a_second_outing_whose_commit_ended_late_is_written(clock, tmp_path):
    """The second outing's commit misses its deadline on a slow card (let through, held):
    it lands, and the log ends with her out, recorded once."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        rig.log.append(registration(clock))
        clock.advance(120)
        rig.log.append(dataclasses.replace(registration(clock), direction="in", unless=None))
        clock.advance(60)
        crossing = past_its_deadline(rig, "bob")
        event = rig.log.append(crossing.draft)
        del rig.ports.cross
        rig.engine.on_late_commit(crossing, event)
        rig.run(rig.config.engine.idle_probe_s * 3)
        rows = [(e["operator"], e["direction"]) for e in rig.events()]
        assert rows == [("alice", "out"), ("alice", "in"), ("bob", "out")]
    finally:
        rig.close()


def _unsynced_log(path, clock, rows: int) -> None:
    """A log of an offline gate: ``rows`` passages of this boot on a clock never synced, an
    hour before now (copied by SQL: the chain is not what is read)."""
    with EventLog(path, "gate-1", clock, "NORMAL", boot_id="t") as log:
        for _ in range(10):
            log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
            clock.advance(1)
    con = sqlite3.connect(path)
    cols = ", ".join(r[1] for r in con.execute("PRAGMA table_info(events)") if r[1] != "seq")
    while con.execute("SELECT count(*) FROM events").fetchone()[0] < rows:
        top = con.execute("SELECT max(seq) FROM events").fetchone()[0]
        con.execute(
            f"INSERT INTO events (seq, {cols}) SELECT seq + {top}, {cols} FROM events"  # noqa: S608
        )
        con.commit()
    con.close()
    clock.advance(3600)


def _look_steps(path, clock) -> int:
    """The SQLite steps of a registration's look in its write transaction (``NotAgain``)."""
    import sqlite_utils

    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    con.execute("BEGIN IMMEDIATE")
    con.set_progress_handler(count, 100)
    assert not_again(clock).found(sqlite_utils.Database(con)) is None
    con.execute("ROLLBACK")
    con.close()
    return steps[0]


def test_the_look_on_a_gate_whose_clock_never_synced_reads_the_window_not_the_boot(tmp_path):
    """An offline gate's boot of weeks: the look (in the single write transaction, every
    passage queued behind it) reads the last five minutes' rows, not every row of the boot
    sorted (2 to 3.6 s at 1.6 M rows): twice the boot, the same steps."""
    from kiosk.clock import FakeClock

    steps = []
    for rows in (2000, 8000):
        clock = FakeClock(is_synced=False)
        _unsynced_log(tmp_path / f"{rows}.db", clock, rows)
        steps.append(_look_steps(tmp_path / f"{rows}.db", clock))
    assert steps[1] <= steps[0] + 5, steps


def test_the_looks_queries_search_indexes_and_sort_nothing(log):
    from kiosk import queries

    args = {"boot": "t", "first": 1, "mono": 0, "ms": 0, "from": 1, "kinds": "[]", "limit": 50}
    for sql in (queries.FIRST_UNSYNCED_SQL, queries._BOOT_FIRST_SQL, queries._KINDS_UNSYNCED_SQL):
        plan = [str(r[-1]) for r in log.reader().execute(f"EXPLAIN QUERY PLAN {sql}", args)]
        assert not [p for p in plan if p.startswith(("SCAN e", "SCAN events"))], plan
        assert not [p for p in plan if "TEMP B-TREE" in p and "GROUP BY" not in p], plan


def test_a_registration_made_while_passes_are_held_is_written_after_them(clock, tmp_path):
    """Tablet A's registrations meet a store fault (not a deadline): let through, held. The
    card recovers; tablet B registers the first visitor again a moment later (its look
    cannot see A's held one). B's goes to the log only after the held ones (in decision
    order): A's are written, and B's, finding A's record in its commit, is not: B's guard is
    asked (``refused``), not the held record dropped."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        told: list = []

        def register(operator: str, **person) -> None:
            rig.engine.manual(
                "manual_pass", operator, "no phone", "out", person=ZHANG | person,
                kind="registration", temp_c=36.5, unless=not_again(clock, **person),
                on_recorded=told.append,
            )  # fmt: skip
            rig.run(0.2)

        rig.store.fail()
        register("alice")
        register("alice", name="Li Hua")
        assert len(rig.engine.backlog) == 2
        rig.store.recover()
        register("bob")
        rig.run(rig.config.engine.idle_probe_s * 3)
        rows = [(e["operator"], e["person"]["name"]) for e in rig.events()]
        assert rows == [("alice", "Zhang Guiying"), ("alice", "Li Hua")]
        assert not rig.engine.backlog
        assert told[-1].refused.seq == 1 and not told[-1].gate_commanded
        assert not [m for m in rig.messages if m.get("alarm") == "held_pass_dropped"]
    finally:
        rig.close()


@pytest.mark.parametrize("refused", [True, False])
def test_the_store_fault_of_a_late_commit_ends_when_it_is_answered(clock, tmp_path, refused):
    """A registration's commit past its deadline raised the store fault (the kiosk 'out of
    order'); its end, refused or landed, with nothing else held, ends it: the kiosk is back
    in service at once, not at the next resident's commit."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    try:
        if refused:
            rig.log.append(registration(clock))  # the first tablet's
        crossing = past_its_deadline(rig)
        assert "store" in rig.engine.faults
        try:
            end = rig.log.append(crossing.draft)
        except AlreadyRecorded as exc:
            end = exc
        del rig.ports.cross
        rig.engine.on_late_commit(crossing, end)
        assert "store" not in rig.engine.faults and not rig.engine.backlog
        rig.run(60)
        assert rig.engine.state == "idle" and rig.engine.prompt != "out_of_order"
        assert ("store_fault", "cleared") in rig.alarms()
    finally:
        rig.close()


CAR = {"plate": "京A12345", "driver": "Zhao Gang", "occupants": 3}


def _counted(rig, clock) -> tuple[int, int, int, int]:
    """The day's registrations, vehicles and their occupants (the daily report), and the
    handover's registrations and vehicles summed."""
    from datetime import timedelta

    from kiosk.categories import _event_counts
    from kiosk.roster import summary_since

    day = _event_counts(rig.log.reader(), "2026-03-01", "2026-03-04")
    now = clock.now()
    shift = summary_since(rig.log.reader(), "gate-1", now - timedelta(hours=8), now, 0)
    cars = day["vehicles"]
    return (
        day["registrations"] + cars["registrations"],
        cars["occupants"],
        shift["registrations"] + shift["vehicles"],
        day["people"]["out"],
    )


def _late(rig, clock, kind: str, who: dict, refused: bool):
    """The second tablet's registration misses its commit deadline (held, as the screen
    showed it: denied with on_store_fault = deny); its commit then ends, refused (the first
    tablet's record is there) or landed; the engine is told."""
    since = Since.ago(ClockReading.take(clock), AGAIN_WINDOW_S, "t")
    again = NotAgain(kind, who, "out", since)
    if refused:
        first = EventDraft(
            direction="out", decision="manual_pass", reasons=("guard_override",),
            operator="alice", kind=kind, person=who,
        )  # fmt: skip
        rig.log.append(first)
    crossing = past_its_deadline(rig, person=who, kind=kind, unless=again)
    try:
        end = rig.log.append(crossing.draft)
    except AlreadyRecorded as exc:
        end = exc
    del rig.ports.cross
    rig.engine.on_late_commit(crossing, end)
    rig.run(rig.config.engine.idle_probe_s * 3)


@pytest.mark.parametrize("refused", [True, False])
@pytest.mark.parametrize("kind", ["registration", "vehicle"])
def test_the_deny_written_after_a_late_registration_is_not_another(clock, tmp_path, kind, refused):
    """on_store_fault = deny: a registration's commit missed its deadline (the gate kept
    shut, the deny shown held for the log). Refused (another tablet's record there) or
    landed, that deny is written after the record, naming it (``same_as:<seq>``,
    ``not_opened:<seq>``): the day's report and the handover count the visitor (the car
    and its occupants) once."""
    rig = Rig(clock, tmp_path)
    try:
        who = ZHANG if kind == "registration" else CAR
        _late(rig, clock, kind, who, refused)
        rows = [(e["decision"], e["flags"]) for e in rig.events()]
        link = "same_as:1" if refused else "not_opened:1"
        assert rows == [("manual_pass", []), ("manual_deny", [link])], rows
        occupants = 3 if kind == "vehicle" else 0
        # Refused: the first tablet's pass went through; landed: nobody went through on it.
        out = int(refused) if kind == "registration" else 0
        assert _counted(rig, clock) == (1, occupants, 1, out)
    finally:
        rig.close()
