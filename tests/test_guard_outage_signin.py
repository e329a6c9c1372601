"""Signing in to the guard console while the storage fails (a full or read-only card).

A storage outage is when the guard must take the gate over by hand (the kiosk denies
everyone: ``on_store_fault``), so a guard whose password is right is let in even though the
sign-in's audit row cannot be written: the row waits in memory, with the moment of the
sign-in, and is written once the storage works again (``kiosk.auditing.HeldRows``; bounded; a
restart loses it, and says so in the log). Filling the disk gains an attacker nothing: the
password is still checked, failed sign-ins are still limited, and their rows are held too,
within their own share of the memory."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, GUARD_PW, console_fixtures, post
from support import storage_failing

from kiosk.auditing import HeldRows
from kiosk.store import StoreFault, format_ts
from ui import i18n

START = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)


def sign_in(app, name="alice", password=GUARD_PW):
    client = TestClient(app, base_url=BASE)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/guard/login").text)
    form = {"name": name, "password": password, "csrf": token.group(1), "next": "/guard"}
    answer = client.post(
        "/guard/login", data=form, headers={"Origin": BASE}, follow_redirects=False
    )
    return client, answer


def logins(core):
    return [
        (a["actor"], a["action"], a["detail"].get("held_at"))
        for a in core.store.audits()
        if a["action"].startswith("guard_login")
    ]


@pytest.mark.parametrize("where", ["audit", "commit"])
def test_a_guard_signs_in_while_the_storage_fails_and_the_row_is_written_later(
    where, core, app, clock, caplog
):
    caplog.set_level(logging.WARNING)
    with storage_failing(core.store, where):
        client, answer = sign_in(app)
        assert answer.status_code == 303, answer.text[:300]
        assert "kiosk_session" in answer.headers.get("set-cookie", "")
        assert logins(core) == []  # nothing on disk yet
        page = client.get(answer.headers["location"])
        assert page.status_code == 200
        assert "/guard/login" not in str(page.url)
        # The console says the storage failed, and that the sign-in waits in memory.
        assert i18n.t("zh-CN", "login.held")[:12] in page.text
        assert i18n.t("zh-CN", "device.store") in page.text  # the storage's alarm card
    held_at = clock.now()
    assert "held in memory" in caplog.text and "restart" in caplog.text
    clock.advance(120)
    # The storage works again: the guard's next action writes the held row first, with the
    # moment of the sign-in, then its own.
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/guard").text).group(1)
    assert post(client, "/guard/logout", csrf).status_code == 303
    rows = [a for a in core.store.audits() if a["actor"] == "alice"]
    assert [r["action"] for r in rows] == ["guard_login", "guard_logout"]
    assert rows[0]["detail"]["held_at"] == format_ts(held_at)  # the sign-in's own moment
    assert rows[0]["detail"]["outcome"] == "ok" and rows[0]["detail"]["role"] == "guard"
    assert len(app.state.guard.held) == 0


@pytest.mark.slow
def test_a_wrong_password_is_still_refused_limited_and_held_while_the_storage_fails(core, app):
    held = app.state.guard.held
    with storage_failing(core.store, "audit"):
        answers = [sign_in(app, password="guess")[1] for _ in range(7)]
        right_after = sign_in(app)[1]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert {a.status_code for a in answers[5:]} == {429}  # limited as ever
    assert right_after.status_code == 429  # the right password waits its turn too
    assert all("kiosk_session" not in a.headers.get("set-cookie", "") for a in answers)
    # Each refusal waits in memory (a limited attempt names nobody: never written).
    assert len(held) == 5 and logins(core) == []
    _, later = sign_in(app, password="guess again")  # the storage works again
    assert later.status_code == 429  # the limit still holds
    rows = logins(core)
    assert [r[1] for r in rows] == ["guard_login_failed"] * 5
    assert all(r[2] for r in rows)  # each with the moment it was refused
    assert len(held) == 0


class Log:
    """An audit writer that fails while ``down``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict]] = []
        self.down = False

    def audit(self, actor, action, detail=None):
        if self.down:
            raise StoreFault("store_fault", "SQLITE_FULL")
        self.rows.append((actor, action, dict(detail or {})))


def test_held_rows_are_bounded_keep_room_for_sign_ins_and_say_what_was_lost(caplog):
    now = START
    held = HeldRows(max_rows=5, reserve=2)
    for i in range(4):  # refusals take at most max_rows - reserve
        held.hold("-", "guard_login_failed", {"n": i}, now, essential=False)
    assert len(held) == 3 and held.dropped == 1
    assert held.hold("alice", "guard_login", {}, now, essential=True)
    assert held.hold("bob", "guard_login", {}, now, essential=True)
    assert not held.hold("carol", "guard_login", {}, now, essential=True)  # full: refused
    assert len(held) == 5 and held.dropped == 1
    log = Log()
    log.down = True
    assert held.flush(log) == 0 and len(held) == 5  # kept, in order
    log.down = False
    assert held.flush(log) == 5
    assert [r[1] for r in log.rows] == ["guard_login_failed"] * 3 + ["guard_login"] * 2 + [
        "audit.held_rows_lost"
    ]
    assert log.rows[-1][2]["rows"] == 1
    assert log.rows[0][2] == {"n": 0, "held_at": "2026-02-12T01:00:00.000000Z"}
    assert len(held) == 0 and held.dropped == 0


def test_held_rows_left_at_a_restart_are_logged(caplog):
    caplog.set_level(logging.WARNING)
    held = HeldRows(max_rows=5, reserve=2)
    held.hold("alice", "guard_login", {}, START, essential=True)
    held.close()
    assert "1 audit row(s) held in memory were not written" in caplog.text
    assert "alice" not in caplog.text  # the log names no guard


def test_the_live_page_hearing_the_storage_recover_writes_the_held_rows(core, app):
    """A guard who signed in during the outage and only watches the live page: the storage's
    health message (sent when it works again) writes the held rows, no action needed."""
    import asyncio

    from ui.guard.live import FeedStream
    from ui.views import ScreenTracker, current_state

    g = app.state.guard
    with storage_failing(core.store, "audit"):
        _, answer = sign_in(app)
    assert answer.status_code == 303 and len(g.held) == 1
    session = g.auth.sessions.issue(g.auth.accounts.get("alice"))[1]
    stream = FeedStream(g, session, "en", 0)
    tracker = ScreenTracker(current_state(core))
    asyncio.run(stream.on_message({"type": "health"}, tracker))
    assert len(g.held) == 0 and [r[:2] for r in logins(core)] == [("alice", "guard_login")]


@pytest.mark.parametrize("storage_works", [True, False])
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_daemon_writes_held_rows_at_its_stop_or_says_they_are_lost(
    data_dir, caplog, storage_works
):
    import asyncio
    import contextlib

    from test_app import _config

    from checkpoint.app import Daemon, build_core
    from checkpoint.notify import Notifier

    caplog.set_level(logging.WARNING)

    async def scenario():
        core = await asyncio.to_thread(build_core, _config(), data_dir)
        daemon = Daemon(core, notifier=Notifier(None))
        await daemon.start()
        daemon.guard.held.hold("alice", "guard_login", {"outcome": "ok"}, START, essential=True)
        failing = (
            contextlib.nullcontext() if storage_works else storage_failing(core.store, "audit")
        )
        with failing:
            await asyncio.wait_for(daemon.stop(), 5.0)
        return core

    core = asyncio.run(scenario())
    from kiosk.store import EventLog

    with EventLog(core.store.path, core.store.kiosk_id, core.clock) as log:
        written = [(a["actor"], a["action"]) for a in log.audits() if a["actor"] == "alice"]
    lost = "1 audit row(s) held in memory were not written" in caplog.text
    assert (written, lost) == (([("alice", "guard_login")], False) if storage_works else ([], True))


def test_signing_out_while_the_storage_fails_signs_out_and_holds_its_row(core, app, clock):
    """Before: the sign-out's row could not be written, so its answer was withheld with
    ``err.store`` and the cookie kept (the guard handing the tablet over saw an error, not the
    sign-in page); the row was not held either. Now it signs out, and its row waits with
    the sign-in's."""
    client, answer = sign_in(app)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/guard").text).group(1)
    with storage_failing(core.store, "commit"):
        out = post(client, "/guard/logout", csrf)
        assert out.status_code == 303
        assert out.headers["location"].startswith("/guard/login")
        assert 'kiosk_session=""' in out.headers.get("set-cookie", "")
    assert [a["action"] for a in core.store.audits() if a["actor"] == "alice"] == ["guard_login"]
    assert len(app.state.guard.held) == 1
    # The storage works again: the next request to the console writes the held sign-out.
    sign_in(app, "root", ADMIN_PW)
    rows = [a["action"] for a in core.store.audits() if a["actor"] == "alice"]
    assert rows == ["guard_login", "guard_logout"]
    assert len(app.state.guard.held) == 0
