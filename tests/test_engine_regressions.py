"""Regressions found by the engine defect hunt: guard actions, codes and faults interleaved
with a passage under way. Virtual time, real policy, thermometry and event log."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest

from kiosk.store import format_ts
from tests import test_runner as runner_tests
from tests.test_engine import Rig, _carry_out, _hold_crossings


@pytest.fixture
def make_rig(clock, tmp_path):
    made: list[Rig] = []

    def make(**overrides) -> Rig:
        d = tmp_path / f"r{len(made)}"
        d.mkdir()
        r = Rig(clock, d, **overrides)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def rig(make_rig):
    return make_rig()


def test_a_code_kept_for_later_is_dropped_once_its_person_starts_a_passage(rig):
    """A code shown while a passage was being decided waits for the result to end; when its
    holder shows it again (a new passage, on the result screen), the kept copy must not start
    a second passage later, measuring whoever stands at the thermometer then for it."""
    held = _hold_crossings(rig)
    rig.show(rig.pass_text(holder="Li Wei"))
    rig.emulator.person_arrives(38.8)
    rig.run(4)
    [crossing] = held
    second = rig.pass_text(holder="Sun Li")
    rig.show(second)  # Sun Li shows her code while Li Wei's fever deny is being recorded
    _carry_out(rig, crossing)
    assert rig.decisions()[-1]["decision"] == "deny"
    rig.emulator.person_leaves()
    rig.run(0.5)
    rig.show(second)  # nothing happened for her: she shows it again on the result screen
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    assert [d["decision"] for d in rig.decisions()] == ["deny", "pass"]
    rig.emulator.person_leaves()
    rig.run(2)
    assert rig.engine.state == "idle"  # no passage started for a code nobody shows now
    rig.emulator.person_arrives(36.5)  # someone else steps up
    rig.run(12)
    assert [d["decision"] for d in rig.decisions()] == ["deny", "pass"]


def test_a_gate_that_fails_to_lock_stops_inviting_people_through(rig):
    """The pulse ended and the relay did not lock: the screen must not keep saying "Please
    pass" (anyone could walk through an unlocked gate on it); it says out of order until the
    relay locks, then the kiosk is back."""
    rig.resident_comes(2.5)
    assert rig.engine.state == "gate_open"
    rig.gate.unplug()
    rig.emulator.person_leaves()
    rig.run(5)
    assert ("gate_not_locked", "raised") in rig.alarms()
    assert rig.engine.prompt == "out_of_order"
    last_state = [m for m in rig.messages if m["type"] == "state"][-1]
    assert last_state["prompt"] == "out_of_order"
    assert rig.engine.gate_is_open  # not known to be locked: no new passage starts yet
    rig.gate.replug()
    rig.run(6)
    assert rig.gate.is_open is False
    assert rig.engine.state == "idle"
    assert rig.engine.prompt == "show_pass"


# ---------------------------------------------------------------- the runner (real loop)


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_stop_locks_a_gate_whose_open_command_is_still_stuck_when_it_lands(tmp_path):
    """A pass whose relay command hung past its deadline, then the kiosk stops: the lock at
    stop found the worker busy and was dropped, so when the wedged open finally went through
    the gate stayed open with nobody left to lock it. The lock now follows the stuck call."""
    r = runner_tests.Rig(tmp_path, overrides={"policy": {"mode": "pass_only"}})

    async def main():
        await r.runner.start()
        r.gate.stall()  # a wedged USB write
        r.show(r.pass_text())
        await r.next("alarm", alarm="gate_fault", state="raised")
        await r.runner.stop()

    try:
        runner_tests.run(main())
        assert r.gate.stalled_call.is_set()
        r.gate.release()  # the wedged open goes through after the kiosk stopped
        assert r.runner._gate_worker.wait_idle(runner_tests.WAIT_S)  # noqa: SLF001
        assert r.gate.is_open is False
        assert r.gate.commands[-1].open_ is False
    finally:
        r.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_late_commit_landing_while_the_relay_opens_for_it_is_kept_once(tmp_path):
    """A guard's manual pass on a slow disk (on_store_fault = "manual"): the commit misses its
    deadline, the gate opens on the guard's word, and the commit lands while the relay command
    is still under way. Its landing reached the engine before the crossing's outcome and was
    ignored: the held copy then waited forever for a landing already gone by, blocking every
    record behind it in the backlog. It is now answered after the outcome, and kept once."""
    r = runner_tests.Rig(tmp_path, overrides={"policy": {"on_store_fault": "manual"}})
    slow = runner_tests.SlowLog(r.log)
    r.runner.store = slow

    async def main():
        await r.runner.start()
        r.gate.stall()
        await r.runner.manual(
            decision="manual_pass", operator="guard-zhou", reason="known resident", direction="in"
        )
        await asyncio.to_thread(r.gate.stalled_call.wait, runner_tests.WAIT_S)
        slow.release.set()  # the commit lands while the relay command hangs
        decision = await r.next("decision")
        r.gate.release()
        alarm = await r.next("alarm", alarm="store_late_commit")
        backlog = len(r.runner.engine.backlog)
        await r.runner.stop()
        return decision, alarm, backlog

    try:
        decision, alarm, backlog = runner_tests.run(main())
        events = r.log.events()
    finally:
        r.close()
    assert decision["committed"] is False
    assert alarm["seq"] == 1
    assert backlog == 0
    assert [e["decision"] for e in events] == ["manual_pass"]


def test_a_gate_command_while_the_lock_is_still_under_way_waits_for_it(tmp_path):
    """The end of a pulse commands the lock; a guard's pass committed while the relay is still
    taking that command used to be refused at once ("previous call has not returned (device
    hung)"): a gate fault and the person sent to the guard, although the relay was answering
    well within its deadline. Commands to the relay now go one after the other, in order."""
    r = runner_tests.Rig(tmp_path)

    async def main():
        await r.runner.start()
        r.gate.stall()  # the lock command takes its time in the relay
        locking = asyncio.ensure_future(r.runner._set_gate(False))  # noqa: SLF001
        await asyncio.to_thread(r.gate.stalled_call.wait, runner_tests.WAIT_S)
        opening = asyncio.ensure_future(r.runner._set_gate(True))  # noqa: SLF001
        await asyncio.sleep(0)  # let the open command reach the relay's worker
        r.gate.release()
        faults = await asyncio.gather(locking, opening)
        await r.runner.stop()
        return faults

    faults = _run_then_close(r, main())
    assert faults == [None, None]
    assert [c.open_ for c in r.gate.commands][1:3] == [False, True]  # after the start's lock


def _run_then_close(r, coro):
    """Run ``coro`` on the runner rig ``r``'s loop, then close the rig whatever happened."""
    try:
        return runner_tests.run(coro)
    finally:
        r.close()


def test_a_code_kept_while_the_gate_would_not_lock_is_not_used_minutes_later(rig):
    """A code shown while the gate was stuck unlocked waits for it; when the relay comes back
    minutes later its holder is long gone, and whoever steps up then must not be measured
    for it. A kept code older than code_timeout_s is dropped."""
    rig.show(rig.pass_text(holder="Li Wei"))
    rig.emulator.person_arrives(36.6)
    rig.run(2.5)
    rig.emulator.person_leaves()
    rig.gate.unplug()
    rig.run(4)
    assert ("gate_not_locked", "raised") in rig.alarms()
    rig.show(rig.pass_text(holder="Sun Li"))  # kept: the kiosk is still busy
    rig.run(120)  # she gives up and walks away; the relay is fixed two minutes later
    rig.gate.replug()
    rig.emulator.person_arrives(36.5)  # someone else, with no code shown
    rig.run(10)
    assert [d["holder_initial"] for d in rig.decisions()] == ["L."]
    assert rig.gate.is_open is False


def test_records_held_behind_a_late_commit_are_written_once_it_lands(rig):
    """The store recovered while a commit past its deadline was still under way; when that
    commit landed, the records held behind it were left in memory until some later passage
    happened to commit (a quiet night: hours; a power cut: lost). They are retried at once."""
    from kiosk.crossing import Outcome
    from kiosk.store import StoreFault

    held = _hold_crossings(rig)
    rig.engine.manual("manual_deny", "guard-zhou", "first", "in")
    late = held[-1]
    fault = StoreFault("store_fault", "commit not confirmed within 3000 ms")
    rig.engine.on_crossed(Outcome(late, store_fault=fault, pending=True))
    rig.engine.manual("manual_deny", "guard-zhou", "second", "in")
    rig.engine.on_crossed(Outcome(held[-1], store_fault=StoreFault("store_fault", "disk full")))
    assert len(rig.engine.backlog) == 2
    rig.engine.manual("manual_deny", "guard-zhou", "third", "in")
    assert held[-1].behind_held  # not tried before the records held: held after them
    _carry_out(rig, held[-1])
    assert len(rig.engine.backlog) == 3  # the first may still land: nothing retried yet
    rig.engine.on_late_commit(late, rig.log.append(late.draft))  # ... and it lands
    rig.run(rig.config.engine.idle_probe_s * 2)
    assert len(rig.engine.backlog) == 0
    assert "store" not in rig.engine.faults
    assert [e["person"]["note"] for e in rig.events()] == ["first", "second", "third"]


def test_a_relay_failing_for_a_pass_is_reported_for_that_pass_not_the_guard_action_after(rig):
    """A guard's action queued while a pass was being committed started before the relay's
    failure for that pass was handled: the gate_fault alarm named the guard's record instead
    of the pass that did not open."""
    held = _hold_crossings(rig)
    rig.resident_comes(2)
    [crossing] = held
    rig.engine.manual("manual_deny", "guard-zhou", "turned back", "in")  # waits for the pass
    rig.gate.unplug()
    _carry_out(rig, crossing)
    [passed, guard] = rig.decisions()
    assert (passed["decision"], guard["decision"]) == ("pass", "manual_deny")
    [alarm] = [
        m
        for m in rig.messages
        if m["type"] == "alarm"
        and m["alarm"] == "gate_fault"
        and m["state"] == "raised"
        and "passage" in m
    ]
    assert (alarm["passage"], alarm["seq"]) == (passed["passage"], passed["seq"])


def test_stop_writes_the_records_held_in_memory_when_the_store_works_again(tmp_path):
    """Records held in memory during a store fault were dropped without a word when the kiosk
    stopped (an operator restarting it after freeing the disk): stop now tries them once, and
    logs how many could not be written."""
    r = runner_tests.Rig(
        tmp_path, overrides={"policy": {"mode": "pass_only"}, "engine": {"idle_probe_s": 60}}
    )

    async def main():
        await r.runner.start()
        r.store.fail()
        r.show(r.pass_text())
        decision = await r.next("decision")
        r.store.recover()  # the disk has room again; the next retry is a minute away
        await r.runner.stop()
        return decision

    try:
        decision = runner_tests.run(main())
        events = r.log.events()
    finally:
        r.close()
    assert decision["committed"] is False
    assert [e["decision"] for e in events] == ["deny"]
    assert "store_fault" in events[0]["reasons"]


def test_a_relay_failing_for_a_second_pass_while_open_for_the_first_is_not_taken_as_locked(rig):
    """Two guard passes in a row; the relay opened for the first and failed (unplugged) for
    the second. The engine took that failure as "the gate did not open", forgot the gate was
    still open from the first, and went back to idle inviting the next person while the lock
    was failing. It now stays busy until a lock is confirmed."""
    held = _hold_crossings(rig)
    rig.engine.manual("manual_pass", "guard-zhou", "first", "in")
    rig.engine.manual("manual_pass", "guard-zhou", "second", "in")  # waits for the first
    first = held.pop()
    rig.ports.cross = held.append  # the second is held too, once the first is answered
    type(rig.ports).cross(rig.ports, first)
    assert rig.gate.is_open
    rig.gate.unplug()
    type(rig.ports).cross(rig.ports, held.pop())
    rig.run(10)
    assert rig.gate.is_open  # the lock keeps failing
    assert ("gate_not_locked", "raised") in rig.alarms()
    assert rig.engine.gate_is_open
    assert rig.engine.state != "idle"
    rig.gate.replug()
    rig.run(6)
    assert rig.gate.is_open is False
    assert rig.engine.state == "idle"


def test_a_direction_pressed_by_someone_who_walked_away_is_not_the_next_persons(make_rig):
    """A two-way kiosk's button pressed with nobody passing after it (a child at the screen,
    someone who changed their mind) stayed selected indefinitely: the next person, minutes
    later, was recorded going the other way (their quota and passback counted on it). A
    choice not used within code_timeout_s goes back to the default, and the screen is told."""
    rig = make_rig(policy={"mode": "pass_only"})
    rig.engine.select_direction("out")
    rig.run(60)
    assert rig.engine.snapshot()["direction"] == "in"
    assert [m for m in rig.messages if m["type"] == "state"][-1]["direction"] == "in"
    rig.show(rig.pass_text(), direction=None)
    assert [d["direction"] for d in rig.decisions()] == ["in"]


def test_a_direction_pressed_just_before_the_code_still_applies(make_rig):
    rig = make_rig(policy={"mode": "pass_only"})
    rig.engine.select_direction("out")
    rig.run(5)
    rig.show(rig.pass_text(), direction=None)
    assert [d["direction"] for d in rig.decisions()] == ["out"]


def test_a_pass_whose_relay_did_not_open_does_not_tell_the_person_to_go_through(rig):
    """The relay failed to open for a committed pass: the engine said see_guard, which the
    kiosk screen does not read for a pass, so it showed PASS, "Please go through" and the
    gate's countdown in front of a locked gate. The state now says out_of_order, which every
    screen shows as the guard's call."""
    from ui.views import kiosk_view

    rig.gate.unplug()
    rig.resident_comes(2.5)
    [decision] = rig.decisions()
    assert decision["decision"] == "pass"
    state = [m for m in rig.messages if m["type"] == "state"][-1]
    assert state["prompt"] == "out_of_order"
    view = kiosk_view(state, decision, "en", gate_open_s=3.0)
    assert view["look"] != "pass"
    assert view["gate_closes_in_s"] is None


def test_stop_says_how_many_held_records_could_not_be_written(tmp_path, caplog):
    r = runner_tests.Rig(
        tmp_path, overrides={"policy": {"mode": "pass_only"}, "engine": {"idle_probe_s": 60}}
    )

    async def main():
        await r.runner.start()
        r.store.fail()  # the disk stays full
        r.show(r.pass_text())
        await r.next("decision")
        await r.runner.stop()

    try:
        with caplog.at_level(logging.ERROR, logger="kiosk.runner"):
            runner_tests.run(main())
        events = r.log.events()
    finally:
        r.close()
    assert events == []
    assert "stopping with 1 event(s) held in memory and not written" in caplog.text


def test_start_commands_the_gate_locked(tmp_path):
    """A kiosk restarted after a crash (the watchdog, the OOM killer) in the middle of a pulse:
    a USB relay keeps its coil energised across the daemon's death, and nothing commanded it
    locked at start (docs: "always leaves the gate commanded locked on start"), so the gate
    stayed open until the next pass's pulse ended."""
    r = runner_tests.Rig(tmp_path)
    r.gate.is_open = True  # left released by the previous run

    async def main():
        await r.runner.start()
        opened_after_start = r.gate.is_open
        await r.runner.stop()
        return opened_after_start

    opened_after_start = _run_then_close(r, main())
    assert opened_after_start is False
    assert r.gate.commands[0].open_ is False


def test_a_relay_that_cannot_be_locked_at_start_is_a_fault_and_retried(tmp_path):
    r = runner_tests.Rig(tmp_path)
    r.gate.unplug()

    async def main():
        await r.runner.start()
        alarm = await r.next("alarm", alarm="gate_not_locked", state="raised")
        r.gate.replug()
        await r.next("alarm", alarm="gate_fault", state="cleared")
        await r.runner.stop()
        return alarm

    _run_then_close(r, main())
    assert r.gate.commands[0].open_ is False


def _clock_at_decisions(rig) -> list[tuple[datetime, int, bool]]:
    """The rig's clock (wall, monotonic, synced) each time the engine announces a decision."""
    seen: list[tuple[datetime, int, bool]] = []

    def on_message(message: dict) -> None:
        rig.messages.append(message)
        if message["type"] == "decision":
            seen.append((rig.clock.now(), rig.clock.monotonic_ns(), rig.clock.synced()))

    rig.ports.on_message = on_message
    return seen


def test_a_decision_held_in_the_backlog_is_recorded_with_the_time_it_was_decided(rig, clock):
    """Before: a decision that waited in the backlog while the store was faulted (disk full)
    was stamped when the store took it, minutes later: its ts (the time of the decision, by
    the record's definition), mono_ns and clock_synced all said the commit's moment."""
    decided_at = _clock_at_decisions(rig)
    rig.store.fail()
    clock.is_synced = False  # booted without network: NTP has not answered yet
    rig.resident_comes(3)
    [decision] = rig.decisions()
    assert decision["committed"] is False and len(rig.engine.backlog) == 1
    [(wall, mono_ns, synced)] = decided_at
    rig.emulator.person_leaves()
    clock.advance(7 * 60)  # the disk stays full for minutes ...
    clock.is_synced = True  # ... NTP answers meanwhile and steps the clock
    clock.set_wall(clock.now() + timedelta(minutes=3))
    rig.store.recover()
    rig.run(2)
    [event] = rig.events()
    assert event["ts"] == format_ts(wall)
    assert event["mono_ns"] == mono_ns
    assert event["clock_synced"] is synced is False  # the ts was taken before NTP answered
    assert event["latency_ms"] == decision["latency_ms"]
    assert "store_fault" in event["reasons"]
    assert rig.log.verify().ok


def test_a_guards_pass_held_in_the_backlog_is_recorded_with_the_time_the_guard_gave_it(
    make_rig, clock
):
    rig = make_rig(policy={"on_store_fault": "manual"})  # the guard's word opens the gate
    decided_at = _clock_at_decisions(rig)
    rig.store.fail()
    rig.engine.manual("manual_pass", "guard-zhou", "known resident", "in")
    rig.run(0.5)
    [(wall, mono_ns, _)] = decided_at
    clock.advance(15 * 60)
    rig.store.recover()
    rig.run(2)
    [event] = rig.events()
    assert (event["decision"], event["ts"], event["mono_ns"]) == (
        "manual_pass",
        format_ts(wall),
        mono_ns,
    )
