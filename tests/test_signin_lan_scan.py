"""A scan of the guard console's sign-in from many addresses (a compromised device on the
compound Wi-Fi cycling its address, one wrong password each): the per-address limiter never
sees a second try, so before the LAN-wide bound every refusal wrote an audit row (its actor
and action kept for the life of the log) to the gate's SD card and the guard's audit view.

Now past ``ui.auth.REFUSED_ROWS_PER_MIN`` refusals in a minute they are counted, and one row
(actor ``-``, no names, no passwords) says how many, from how many senders. Every wrong
password is still refused, and still counted per address; a guard's own mistyped password
in normal use is still its own row."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, GUARD_PW, console_fixtures
from support import storage_failing

from kiosk.clock import FakeClock
from kiosk.store import format_ts

START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)

SECRET = "hunter2-not-the-password"


def sign_in(app, addr, name="alice", password=SECRET):
    client = TestClient(app, base_url=BASE, client=(addr, 40000))
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/guard/login").text)
    form = {"name": name, "password": password, "csrf": token.group(1), "next": "/guard"}
    return client.post("/guard/login", data=form, headers={"Origin": BASE}, follow_redirects=False)


def rows(core, action):
    return [a for a in core.store.audits() if a["action"] == action]


def bound(app, clock, per_minute):
    """The console's bound, made small so the test stays cheap (each refusal is a scrypt)."""
    from ui.auth import RefusedRows

    app.state.guard.auth.refused_rows = RefusedRows(clock, per_minute=per_minute)


@pytest.mark.slow
def test_a_scan_from_many_addresses_writes_only_the_bound_then_one_counting_row(app, core, clock):
    names = ["alice", "root", SECRET, "nobody", "x"] * 5  # 25, one from each address
    for i, name in enumerate(names):
        answer = sign_in(app, f"192.168.7.{10 + i}", name=name)
        assert answer.status_code == 401  # every wrong password is refused all the same
        clock.advance(2)
    # The bound's worth (REFUSED_ROWS_PER_MIN, 20), each its own row; the rest counted.
    assert len(rows(core, "guard_login_failed")) == 20
    assert rows(core, "guard_login_failed_counted") == []  # its minute is not over yet
    clock.advance(60)
    # The minute is over: the next sign-in (a guard's own) writes its count first.
    assert sign_in(app, "192.168.7.200", password=GUARD_PW).status_code == 303
    (counted,) = rows(core, "guard_login_failed_counted")
    assert counted["actor"] == "-"
    detail = counted["detail"]
    assert detail["refused"] == 5 and detail["senders"] == 5
    assert detail["from"] == format_ts(START.replace(second=40))
    assert detail["to"] == format_ts(START.replace(second=48))
    written = json.dumps(core.store.audits())
    assert SECRET not in written


@pytest.mark.slow
def test_a_sustained_scan_writes_one_counting_row_a_minute_and_the_limiter_still_holds(
    app, core, clock
):
    bound(app, clock, 2)
    limit = core.config.web.login_attempts_per_min
    for minute in range(3):
        for i in range(4):
            assert sign_in(app, f"10.9.{minute}.{i}").status_code == 401
        clock.advance(61)
    # One address guessing past its own limit is still made to wait, scan or not.
    for _ in range(limit):
        assert sign_in(app, "10.9.9.9").status_code == 401
    assert sign_in(app, "10.9.9.9", password=GUARD_PW).status_code == 429
    counts = [r["detail"]["refused"] for r in rows(core, "guard_login_failed_counted")]
    assert counts == [2, 2, 2]
    # the limit's tries in the new minute: two written, the rest and the 429 counted
    assert len(rows(core, "guard_login_failed")) == 2 * 3 + 2


def test_a_guards_own_wrong_passwords_in_normal_use_are_each_written(app, core, clock):
    for _ in range(3):
        assert sign_in(app, "192.168.7.5", name="alice").status_code == 401
        clock.advance(5)
    failed = rows(core, "guard_login_failed")
    assert [r["actor"] for r in failed] == ["alice"] * 3
    assert sign_in(app, "192.168.7.5", password=GUARD_PW).status_code == 303
    assert rows(core, "guard_login_failed_counted") == []


def test_a_minutes_count_the_storage_cannot_take_is_held_then_written(app, core, clock):
    bound(app, clock, 1)
    for i in range(3):
        assert sign_in(app, f"172.16.0.{i}").status_code == 401
    clock.advance(61)
    with storage_failing(core.store, "audit"):
        assert sign_in(app, "172.16.0.9", password=GUARD_PW).status_code == 303
    assert rows(core, "guard_login_failed_counted") == []
    assert sign_in(app, "172.16.0.9", password=GUARD_PW).status_code == 303
    (counted,) = rows(core, "guard_login_failed_counted")
    assert counted["detail"]["refused"] == 2 and "held_at" in counted["detail"]


def test_the_count_tells_an_ipv6_64_as_one_sender_and_keeps_its_memory_bounded():
    from ui.auth import REFUSED_COUNTED, RefusedRows

    clock = FakeClock(start=START)
    counted = RefusedRows(clock, per_minute=0, max_senders=3)
    for host in range(1, 6):  # five hosts of one /64: one sender
        assert counted.refused(f"2001:db8:1:2::{host}") is False
    for i in range(10):
        counted.refused(f"10.0.0.{i}")
    assert counted.due() == []  # the minute is not over
    clock.advance(60)
    ((actor, action, detail),) = counted.due()
    assert (actor, action) == ("-", REFUSED_COUNTED)
    assert detail["refused"] == 15
    assert detail["senders"] == 3 and detail["senders_at_least"] is True
    assert counted.due() == []  # taken once


def _daemon(core, app):
    """The daemon around the console ``app`` (what ``Daemon.start`` keeps of it), unstarted."""
    from checkpoint.app import Daemon
    from checkpoint.notify import Notifier

    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    return daemon


def test_a_bursts_count_is_written_when_its_minute_ends_with_no_console_action(app, core, clock):
    """Before: the count of a burst that had ended waited in memory for the next action on the
    console (at night, hours; a restart meanwhile lost it). The daemon's check every few
    seconds (the one that reloads the lists) writes it once its minute is over."""
    import asyncio

    from ui.auth import REFUSED_COUNTED

    bound(app, clock, 1)
    refused = app.state.guard.auth.refused_rows
    assert [refused.refused(f"10.8.0.{i}") for i in range(3)] == [True, False, False]
    daemon = _daemon(core, app)
    asyncio.run(daemon.checks_once())
    assert rows(core, REFUSED_COUNTED) == []  # its minute is not over
    clock.advance(61)
    asyncio.run(daemon.checks_once())
    (counted,) = rows(core, REFUSED_COUNTED)
    assert counted["detail"]["refused"] == 2 and counted["detail"]["senders"] == 2
    asyncio.run(daemon.checks_once())
    assert len(rows(core, REFUSED_COUNTED)) == 1  # written once


@pytest.mark.slow
def test_the_daemons_clean_stop_writes_the_count_of_the_minute_in_progress(app, core, clock):
    """Before: refusals counted in the minute a stop came in (an update, a reboot) were lost
    with the process, their row never written. The clean stop writes the count so far."""
    import asyncio

    from kiosk.store import EventLog
    from ui.auth import REFUSED_COUNTED

    bound(app, clock, 1)
    refused = app.state.guard.auth.refused_rows
    for i in range(4):
        refused.refused(f"10.8.1.{i}")
    clock.advance(20)  # the minute runs on
    asyncio.run(_daemon(core, app).stop())
    with EventLog(core.store.path, core.store.kiosk_id, clock) as log:
        found = [a for a in log.audits() if a["action"] == REFUSED_COUNTED]
        actions = [a["action"] for a in log.audits()]
    (counted,) = found
    assert counted["detail"]["refused"] == 3 and counted["actor"] == "-"
    assert actions.index(REFUSED_COUNTED) < actions.index("daemon.stop")


def test_a_stuck_writer_does_not_stop_the_lists_check_and_a_stop_keeps_the_rows(
    app, core, clock, monkeypatch
):
    """Before: the checks loop awaited the console's rows with no deadline: a writer stuck
    behind a failing card stopped the lists reload too (a revocation applied beside the
    daemon not in force at this gate). The rows' write is its own task, waited on a bounded
    time; a stop that cancels it leaves its rows to the thread writing them (counted as not
    written while the storage does not answer), written once when it does."""
    import asyncio
    import threading

    from ui.auth import REFUSED_COUNTED

    bound(app, clock, 1)
    refused = app.state.guard.auth.refused_rows
    assert [refused.refused(f"10.8.0.{i}") for i in range(3)] == [True, False, False]
    clock.advance(61)
    daemon = _daemon(core, app)
    daemon.rows_wait_s = 0.0
    checks: list[int] = []
    daemon.lists_check = lambda: checks.append(1)
    write, answered = core.store.audit, threading.Event()

    def stuck(*args):
        assert answered.wait(10)
        write(*args)

    async def run():
        monkeypatch.setattr(core.store, "audit", stuck)
        for _ in range(3):
            await asyncio.wait_for(daemon.checks_once(), 5)
        assert len(checks) == 3  # each round's lists check, the writer stuck meanwhile
        daemon._rows_task.cancel()  # the stop
        await asyncio.gather(daemon._rows_task, return_exceptions=True)
        assert app.state.guard.held.unwritten() == 1  # the count row, in its stuck write
        answered.set()
        await daemon.console_rows(stopping=True)

    asyncio.run(run())
    (counted,) = rows(core, REFUSED_COUNTED)
    assert counted["detail"]["refused"] == 2


def test_a_count_row_waits_behind_rows_still_held(app, core, clock, monkeypatch):
    """Before: a flush of the held rows stopped partway and the minute's count row was written
    all the same, landing before rows it should follow. It is held behind them."""
    import asyncio

    from ui.auth import REFUSED_COUNTED
    from ui.guard.deps import flush_held

    g = app.state.guard
    bound(app, clock, 1)
    assert [g.auth.refused_rows.refused(f"10.8.0.{i}") for i in range(3)] == [True, False, False]
    g.held.hold("alice", "guard_sign_in", {}, clock.now(), essential=False)
    clock.advance(61)
    monkeypatch.setattr(g.held, "flush", lambda _writer: 0)  # the storage took none of them
    asyncio.run(flush_held(g))
    assert rows(core, REFUSED_COUNTED) == []
    assert len(g.held) == 2  # the count row behind the one held before it
    monkeypatch.undo()
    asyncio.run(flush_held(g))
    actions = [a["action"] for a in core.store.audits()]
    assert actions.index("guard_sign_in") < actions.index(REFUSED_COUNTED)  # in their order
    (counted,) = rows(core, REFUSED_COUNTED)
    assert counted["detail"]["refused"] == 2 and len(g.held) == 0
