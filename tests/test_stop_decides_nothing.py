"""A stop decides nothing once it has begun (``Engine.begin_stop``): a guard's decision
reaching the engine after it, one queued behind a kiosk passage, a code kept for later, an
open already in the relay's driver (``EngineRunner.lock_for_stop``).

No sleeps: whatever is stuck waits on a ``threading.Event`` set by the test; a test that would
hang instead fails after ``WAIT_S``."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from datetime import UTC, datetime

import pytest
from guard_support import console_fixtures
from test_runner import WAIT_S, Rig, SlowLog, run

from kiosk.deadline import StopBudget
from kiosk.devices import CodeRead, GateFault
from kiosk.engine import Stopping

START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)

JSON = {"Origin": "http://kiosk.test", "Accept": "application/json"}


def test_a_guards_decision_past_the_consoles_check_when_the_stop_begins_is_told_503(
    alice, core, monkeypatch, caplog
):
    """The console checks the stop once, on a request's arrival; the stop may begin during an
    await after it (the held rows' flush here; the form's check, the subject's read). The
    decision was then taken by an engine that no longer opens the gate: 200 "recorded but
    the gate did not open", a manual_pass on record for a gate that never opened. The engine
    refuses it (``Stopping``), and the guard is told 503, nothing recorded; the journal says
    which action was refused, nothing of what the guard wrote."""
    from ui.guard import deps

    alice.portal.call(core.runner.start)
    real_flush = deps.flush_held

    async def flush_then_stop(g, **kw):
        await real_flush(g, **kw)
        await core.runner.lock_for_stop(StopBudget(math.inf))  # SIGTERM lands here

    monkeypatch.setattr(deps, "flush_held", flush_then_stop)
    events = core.store.last_seq
    form = {"csrf": alice.csrf, "decision": "pass", "subject": "none", "reason": "neighbour",
            "direction": "in"}  # fmt: skip
    with caplog.at_level(logging.INFO):
        answer = alice.post("/guard/manual", data=form, headers=JSON, follow_redirects=False)
    alice.portal.call(core.runner.finish_stop, StopBudget(math.inf))
    assert answer.status_code == 503, answer.text
    said = [
        r.getMessage()
        for r in caplog.records
        if "refused: the checkpoint is stopping" in r.getMessage()
    ]
    assert said and said[0].startswith("guard action "), said
    assert "neighbour" not in caplog.text
    assert int(answer.headers["Retry-After"]) > 0
    assert core.store.last_seq == events
    assert [c.open_ for c in core.devices.gate.commands if c.open_] == []


def test_a_guards_pass_queued_behind_a_kiosk_pass_is_refused_by_the_stop(tmp_path):
    """A guard's pass sent while a kiosk pass was being committed waits for it; the stop
    began meanwhile, and the queued pass started after the lock: a manual_pass on record at a
    gate that never opened. It is answered with the stop's refusal and never started."""
    r = Rig(tmp_path, overrides={"engine": {"store_deadline_ms": 20000}})
    slow = SlowLog(r.log)
    r.runner.store = slow
    told: list[object] = []

    async def main():
        await r.runner.start()
        r.thermometer.body_c = 36.6
        r.show(r.pass_text(household="A-101"))
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        r.runner.engine.manual(  # the guard's pass, sent before the stop: queued
            decision="manual_pass",
            operator="alice",
            reason="x",
            direction="in",
            subject="none",
            on_recorded=told.append,
        )
        assert told == []  # queued behind the kiosk's pass
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)
        slow.release.set()
        await stopping

    try:
        run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [e["decision"] for e in events] == ["pass", "deny"]
    assert events[1]["reasons"] == ["stopping"]
    assert len(told) == 1 and isinstance(told[0], Stopping), told
    assert [c.open_ for c in r.gate.commands if c.open_] == []


def test_the_engine_refuses_a_guards_decision_once_the_stop_began(tmp_path):
    """``Engine.manual`` (and the runner's) after the stop began: ``Stopping``, not queued."""
    r = Rig(tmp_path)

    async def main():
        await r.runner.start()
        await r.runner.lock_for_stop(StopBudget(math.inf))
        try:
            await r.runner.manual(
                decision="manual_pass",
                operator="alice",
                reason="x",
                direction="in",
                subject="none",
            )
        except Stopping:
            refused = True
        else:
            refused = False
        await r.runner.finish_stop(StopBudget(math.inf))
        return refused

    try:
        assert run(main()) is True
        assert r.log.events() == []
    finally:
        r.close()


def test_a_code_kept_while_the_gate_was_open_is_not_decided_by_the_stops_lock(tmp_path):
    """A code shown while a pass held the gate open is kept for when it locks; the stop's
    lock was that moment, and decided it (a second pass, then its deny "stopping"): a
    decision after "no code is decided from here". The stop drops it."""
    r = Rig(tmp_path, overrides={"policy": {"mode": "pass_only"}, "gate": {"pulse_ms": 30000}})

    async def main():
        await r.runner.start()
        r.show(r.pass_text(holder="A", household="A-101"))
        await r.next("decision")
        await r.next("state", state="gate_open")
        r.show(r.pass_text(holder="B", household="B-202"))  # kept: the gate is open
        for _ in range(200):
            if r.runner.engine._pending_code is not None:
                break
            await asyncio.sleep(0)
        assert r.runner.engine._pending_code is not None
        await r.runner.stop()

    try:
        run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [(e["holder"], e["decision"]) for e in events] == [("A", "pass")]
    assert r.runner.engine._pending_code is None


def _open_in_the_driver_at_the_stop(tmp_path, lock_fails: bool):
    """A kiosk pass whose open is in the relay's driver when the stop begins, released once
    it has; the stop's lock then obeys, or fails (``lock_fails``: the relay gone). The rig,
    closed, and its log's events."""
    # The driver call outlasts the fake relay's own wait (WAIT_S) under any load: the open
    # answers within its deadline, so what the test reads is the stop's, never a timeout.
    r = Rig(tmp_path, overrides={"engine": {"device_deadline_ms": 10000}})
    in_open, release = threading.Event(), threading.Event()
    real = r.gate.set_open

    def set_open(open_):
        if open_:
            in_open.set()
            release.wait(WAIT_S)
        elif lock_fails and in_open.is_set():
            raise GateFault("relay gone")  # the stop's lock
        real(open_)

    r.gate.set_open = set_open

    async def main():
        await r.runner.start()
        r.thermometer.body_c = 36.6
        r.show(r.pass_text(household="A-101"))
        assert await asyncio.to_thread(in_open.wait, 6 * WAIT_S)
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)
        release.set()
        await stopping

    try:
        run(main())
        return r, r.log.events()
    finally:
        r.close()


def test_an_open_in_the_relays_driver_when_the_stop_begins_is_a_pass_not_let_through(tmp_path):
    """An open already in the relay's driver when the stop began went through (the lock waits
    behind it): the pass on record as let through, an outing counted, passback armed, though
    the gate was locked again at once. It is the stop's ``GateHeldShut``: its deny row
    ``stopping`` follows the pass, and the history holds no passage for it."""
    r, events = _open_in_the_driver_at_the_stop(tmp_path, lock_fails=False)
    assert [(e["decision"], e["reasons"]) for e in events][1] == ("deny", ["stopping"])
    assert events[1]["flags"] == [f"not_opened:{events[0]['seq']}"]
    assert r.runner.history.last_passage(events[0]["pass_id"], events[0]["direction"]) is None
    assert [c.open_ for c in r.gate.commands][-1] is False


def test_an_open_in_the_relays_driver_when_the_stop_begins_whose_lock_fails_is_let_through(
    tmp_path,
):
    """An open already in the relay's driver when the stop began, obeyed (the gate opened);
    the stop's lock then failed (the relay gone): the gate stands open, yet the pass got its
    ``stopping`` row ("opened and locked again at once", said before the lock had run): no
    outing counted, no passback armed, for someone who could walk through. The pass stands
    alone: the gate was last known open, and the lock's gate fault stands (the open's answer,
    coming after it, does not clear it)."""
    r, events = _open_in_the_driver_at_the_stop(tmp_path, lock_fails=True)
    assert [c.open_ for c in r.gate.commands][-1] is True  # never locked after it
    assert [(e["decision"], e["reasons"]) for e in events] == [("pass", ["ok"])], events
    assert r.runner.history.last_passage(events[0]["pass_id"], events[0]["direction"])
    assert "gate" in r.runner.engine.faults  # the open obeyed before the lock failed


def _lands_as_the_stop_writes(r: Rig) -> SlowLog:
    """The rig's log held up (a slow card) until the stop, its readers stopped, reaches its
    writes: then the card answers."""
    slow = SlowLog(r.log)
    r.runner.store = slow
    real_stop_readers = r.runner._stop_readers

    async def stop_readers_then_land(budget):
        await real_stop_readers(budget)
        slow.release.set()

    r.runner._stop_readers = stop_readers_then_land
    return slow


def test_a_pass_committed_after_the_stops_wait_gets_its_deny_row_before_the_stop_ends(tmp_path):
    """A kiosk pass still committing when the stop's wait for it ran out (the budget cut it
    short) landed after ``finish_stop`` found the backlog empty and ended: its ``stopping``
    deny row was never written before the log closed, and after a restart that pass counted
    as an outing and armed anti-passback. The stop's last writes wait for the crossings still
    under way (within their grant): the pass and its deny row are both in the log when the
    stop ends, nothing left under way."""
    r = Rig(tmp_path, overrides={"engine": {"store_deadline_ms": 20000}})
    slow = _lands_as_the_stop_writes(r)

    async def main():
        await r.runner.start()
        r.thermometer.body_c = 36.6
        r.show(r.pass_text(household="A-101"))
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        await r.runner.lock_for_stop(StopBudget(0.0))  # its wait for the crossing: none left
        assert r.runner._inflight, "the pass must still be committing"
        await r.runner.finish_stop(StopBudget(math.inf))
        return set(r.runner._inflight)

    try:
        left = run(main())
        events = r.log.events()
    finally:
        r.close()
    assert left == set()
    assert [(e["decision"], e["reasons"]) for e in events] == [
        ("pass", ["ok"]),
        ("deny", ["stopping"]),
    ], events
    assert events[1]["flags"] == [f"not_opened:{events[0]['seq']}"]
    assert [c.open_ for c in r.gate.commands if c.open_] == []


@pytest.mark.slow
def test_a_pass_whose_commit_was_late_at_the_stop_lands_once_with_its_deny_row(tmp_path):
    """A pass whose commit missed its deadline (answered as a store fault, held, its commit
    still under way: a late commit) lands just as the stop reaches its held decisions: the
    stop's last writes wait for it (``_under_way``) before the backlog is flushed, so the
    log gets the pass once, then its ``stopping`` row, nothing left held or under way."""
    overrides = {"policy": {"mode": "pass_only"}, "engine": {"store_deadline_ms": 200}}
    r = Rig(tmp_path, overrides=overrides)
    _lands_as_the_stop_writes(r)

    async def main():
        await r.runner.start()
        r.show(r.pass_text(household="A-101"))
        await r.next("decision")
        assert r.runner._late_commits, "the commit must be late"
        await r.runner.lock_for_stop(StopBudget(math.inf))
        await r.runner.finish_stop(StopBudget(math.inf))
        return list(r.runner.engine.backlog), set(r.runner._late_commits)

    try:
        backlog, late = run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [(e["decision"], e["flags"]) for e in events] == [
        ("pass", ["role:resident"]),  # the pass's role, flagged since 760dd300
        # the deny shown, with the alarm the engine raised for it (its row records it)
        ("deny", ["role:resident", "alarm:device_fault", f"not_opened:{events[0]['seq']}"]),
    ], events
    assert backlog == [] and late == set()


@pytest.mark.parametrize("egress", [False, True])
def test_a_guards_pass_the_stop_kept_the_gate_locked_for_is_told_so_not_a_relay_fault(
    alice, core, monkeypatch, egress
):
    """A guard's pass already being committed as the stop began is on record, but the stop
    keeps the gate locked (``GateHeldShut``): the console said "the relay does not answer ...
    call the technician", sending the technician to a relay that works. It says the checkpoint
    is stopping and the gate stays locked. For the wirings a stop releases (a maglock on NO)
    it said "keeps the gate locked ... open it by hand" while the stop released it: it says
    the stop releases it."""
    if egress:
        gate = core.config.gate.model_copy(
            update={"wiring": "normally_open", "fail_mode": "fail_safe"}
        )
        monkeypatch.setattr(core, "config", core.config.model_copy(update={"gate": gate}))
    alice.portal.call(core.runner.start)
    runner = core.runner
    real_store = runner.store
    stops: list[asyncio.Future[bool]] = []

    class StopDuringCommit:
        async def append_async(self, draft):
            stops.append(asyncio.ensure_future(runner.lock_for_stop(StopBudget(math.inf))))
            return await real_store.append_async(draft)

        def __getattr__(self, name):
            return getattr(real_store, name)

    monkeypatch.setattr(runner, "store", StopDuringCommit())
    form = {"csrf": alice.csrf, "decision": "pass", "subject": "none", "reason": "neighbour",
            "direction": "in"}  # fmt: skip
    answer = alice.post("/guard/manual", data=form, headers=JSON, follow_redirects=False)

    async def finish():
        await stops[0]
        await runner.finish_stop(StopBudget(math.inf))

    alice.portal.call(finish)
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["ok"] is True and said["gate_opened"] is False
    assert "stopping" in said["warning"] or "正在停止" in said["warning"], said
    assert "relay" not in said["warning"] and "继电器" not in said["warning"], said
    says_locked = "locked" in said["warning"] or "锁闭" in said["warning"]
    assert says_locked is not egress, said
    assert [c.open_ for c in core.devices.gate.commands if c.open_] == []


def test_a_lock_that_failed_at_the_stop_is_not_said_to_be_retried(tmp_path):
    """The stop's lock failing raised ``gate_not_locked`` "relay did not lock; retrying":
    nothing retries once the stop has begun (the engine's ticks are over), and the guard
    waited for a retry that never came. It says the checkpoint is stopping and the gate must
    be locked by hand."""
    r = Rig(tmp_path)

    async def main():
        await r.runner.start()
        r.gate.unplug()
        await r.runner.stop()
        return await r.next("alarm", alarm="gate_not_locked", state="raised")

    try:
        alarm = run(main())
    finally:
        r.close()
    assert "retrying" not in alarm["detail"]
    assert "stopping" in alarm["detail"] and "by hand" in alarm["detail"], alarm


def test_a_lock_that_failed_before_any_stop_is_said_to_be_retried(tmp_path):
    """Outside a stop a lock that failed is retried (the engine's ticks): its alarm says so."""
    r = Rig(tmp_path)

    async def main():
        r.gate.unplug()
        await r.runner.start()
        alarm = await r.next("alarm", alarm="gate_not_locked", state="raised")
        await r.runner.stop()
        return alarm

    try:
        alarm = run(main())
    finally:
        r.close()
    assert alarm["detail"] == "relay did not lock; retrying", alarm


def test_a_code_reaching_the_engine_once_the_stop_began_is_not_decided(tmp_path):
    """A code handed to the engine after the stop began (a reader's, still running until
    ``finish_stop``) is counted as ignored: no passage starts, nothing is recorded."""
    r = Rig(tmp_path)

    async def main():
        await r.runner.start()
        await r.runner.lock_for_stop(StopBudget(math.inf))
        r.thermometer.body_c = 36.6
        engine = r.runner.engine
        engine.on_code(CodeRead(r.pass_text(), "screen", r.clock.monotonic_ns()), None)
        seen = (engine.state, engine.passage, engine.ignored_codes)
        await r.runner.finish_stop(StopBudget(math.inf))
        return seen

    try:
        seen = run(main())
        events = r.log.events()
    finally:
        r.close()
    assert seen == ("idle", None, 1)
    assert events == []


@pytest.mark.slow
def test_a_runner_started_again_after_a_stop_decides_again(tmp_path):
    """The stop's "decides nothing" is the stop's: the same runner started again (the
    replay, the demo, a test) takes a guard's decision and records it."""
    r = Rig(tmp_path)

    async def main():
        await r.runner.start()
        await r.runner.stop()
        await r.runner.start()
        r.runner.engine.manual("manual_pass", "alice", "neighbour", "in", subject="none")
        found = await r.next("decision", decision="manual_pass")
        await r.runner.stop()
        return found

    try:
        found = run(main())
        events = r.log.events()
    finally:
        r.close()
    assert found["decision"] == "manual_pass"
    assert [e["decision"] for e in events] == ["manual_pass"]


@pytest.mark.parametrize("relay", ["locks", "unplugged"])
def test_a_pass_committed_while_an_evacuation_held_the_gate_open_then_the_stop(tmp_path, relay):
    """A resident's pass decided while a guard's evacuation held the gate open, committed
    after the stop's lock: the gate it would have gone through is locked, so nobody went
    through on it: its ``stopping`` row follows it (the relay's earlier open does not count),
    and once the relay obeyed the stop's lock the engine holds the gate locked, the screen no
    longer inviting anyone through it (the stop's ``on_gate_locked``). The relay gone, the
    stop's lock failed: the gate was last known open (the evacuation's), so the pass stands
    alone (it was recorded "not let through" while the gate stood open)."""
    overrides = {"policy": {"mode": "pass_only"}, "engine": {"store_deadline_ms": 20000}}
    r = Rig(tmp_path, overrides=overrides)
    slow = SlowLog(r.log)
    slow.release.set()
    r.runner.store = slow

    async def main():
        await r.runner.start()
        r.runner.engine.manual(
            "manual_pass", "alice", "fire", "out", subject="none", evacuate=("fire", 10)
        )
        await r.next("decision", decision="manual_pass")
        slow.release.clear()
        slow.entered.clear()
        r.show(r.pass_text(holder="B", household="B-202"))
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        if relay == "unplugged":
            r.gate.unplug()
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)
        slow.release.set()
        await stopping
        return r.runner.engine.gate_is_open, r.runner.engine.state

    try:
        gate_is_open, state = run(main())
        events = r.log.events()
    finally:
        r.close()
    if relay == "unplugged":  # the gate was last known open: the pass may have gone through
        assert [(e["decision"], e["reasons"]) for e in events[1:]] == [("pass", ["ok"])], events
        return
    assert [(e["decision"], e["reasons"]) for e in events[1:]] == [
        ("pass", ["ok"]),
        ("deny", ["stopping"]),
    ], events
    assert events[2]["flags"] == [f"not_opened:{events[1]['seq']}"]
    assert gate_is_open is False and state != "gate_open"


@pytest.mark.parametrize(
    ("method", "path", "data", "answered"),
    [
        ("post", "/guard/passes/search", {"q": "A-101"}, 200),
        ("post", "/guard/register/search", {"q": "Li"}, 200),
        ("post", "/guard/api/household", {"unit": "A-101"}, 200),
        ("get", "/guard/export.csv", None, 200),
        ("post", "/guard/logout", {}, 303),
    ],
)
def test_reads_and_a_sign_out_still_work_once_the_stop_has_begun(
    alice, app, core, method, path, data, answered
):
    """Every audited route was refused 503 once the stop began, though the docs say only
    what changes something is: a guard could not search, export the day, or sign out (the
    session left valid for the next start). A route that decides nothing and leaves the gate
    alone (marked ``served_while_stopping``: the searches, the exports, sign-in and out) is
    answered during the stop; a decision is still refused. A row held by a storage outage
    is left to the stop's own writes (a route writing it would race them)."""
    alice.portal.call(core.runner.start)
    held = app.state.guard.held
    held.hold("alice", "guard_sign_in", {}, core.clock.now(), essential=True)
    alice.portal.call(core.runner.lock_for_stop, StopBudget(math.inf))
    headers = {"Origin": "http://kiosk.test"}
    try:
        if method == "get":
            answer = alice.get(path, follow_redirects=False)
        else:
            form = {"csrf": alice.csrf, **data}
            answer = alice.post(path, data=form, headers=headers, follow_redirects=False)
        page = alice.get("/guard/passes", follow_redirects=False)  # a page, not audited
        refused = alice.post(
            "/guard/manual",
            data={"csrf": alice.csrf, "decision": "pass", "subject": "none", "reason": "x"},
            headers=headers,
            follow_redirects=False,
        )
    finally:
        alice.portal.call(core.runner.finish_stop, StopBudget(math.inf))
    assert answer.status_code == answered, answer.text[:300]
    if path == "/guard/logout":
        assert answer.headers["location"] == "/guard/login"
        assert page.status_code != 200  # signed out: the session is gone
    else:
        assert page.status_code == 200
    assert refused.status_code == 503
    assert len(held) == 1  # not written by the route


def test_an_export_is_a_use_of_the_log_and_one_asked_once_the_stop_closed_them_is_refused(
    alice, core, monkeypatch
):
    """An export's read in the web server's worker thread is a use of the event log
    (``Core.web_uses``): the stop closing the console's uses while it reads finds it under
    way (and closes the log only once it has ended); one asked after is answered 503."""
    from kiosk import queries

    real = queries.event_rows_between
    found_under_way: list[bool] = []

    def read_as_the_stop_closes_the_uses(store, start, end):
        found_under_way.append(not core.web_uses.close(0))
        return real(store, start, end)

    monkeypatch.setattr(queries, "event_rows_between", read_as_the_stop_closes_the_uses)
    try:
        first = alice.get("/guard/export.csv", follow_redirects=False)
        released = core.web_uses.released.is_set()
        second = alice.get("/guard/export.csv", follow_redirects=False)
    finally:
        core.web_uses.open()
    assert first.status_code == 200 and found_under_way == [True]
    assert released  # once it ended
    assert second.status_code == 503


def test_a_driver_bug_locking_the_gate_at_the_stop_is_a_gate_fault_and_the_stop_goes_on(tmp_path):
    """The relay's driver raising something not a device fault at the stop's lock (a bug:
    every shipped driver wraps its errors) aborted the whole stop: the crossing left in
    flight, the writes and the log's close skipped, nobody told. It is a gate fault, as any
    other command's bug is: the engine is told the gate did not lock, and the stop ends."""
    r = Rig(tmp_path)
    real = r.gate.set_open

    def set_open(open_):
        if not open_ and r.runner.stopping:
            raise RuntimeError("driver bug")
        real(open_)

    r.gate.set_open = set_open

    async def main():
        await r.runner.start()
        await r.runner.stop()

    try:
        run(main())
        faults = dict(r.runner.engine.faults)
    finally:
        r.close()
    assert "gate" in faults and "driver bug" in str(faults["gate"]), faults


def test_a_stop_cancelled_during_its_lock_leaves_no_open_waiting_for_it(tmp_path):
    """An open in the relay's driver waits, once the stop began, for the stop's lock to be
    answered (``_stop_lock``). A stop cancelled while its lock waits behind that open still
    answers it (not obeyed): the open's crossing ends, rather than waiting for ever."""
    r = Rig(tmp_path, overrides={"engine": {"device_deadline_ms": 10000}})
    in_open, release = threading.Event(), threading.Event()
    real = r.gate.set_open

    def set_open(open_):
        if open_:
            in_open.set()
            release.wait(WAIT_S)
        real(open_)

    r.gate.set_open = set_open

    async def main():
        await r.runner.start()
        r.thermometer.body_c = 36.6
        r.show(r.pass_text(household="A-101"))
        assert await asyncio.to_thread(in_open.wait, 6 * WAIT_S)
        crossings = set(r.runner._inflight)
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)  # the lock waits behind the open
        stopping.cancel()
        await asyncio.wait({stopping})
        release.set()
        _, left = await asyncio.wait(crossings, timeout=WAIT_S)
        return crossings, left

    try:
        crossings, left = run(main())
    finally:
        r.close()
    assert crossings and not left
