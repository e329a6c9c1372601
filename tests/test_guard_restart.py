"""The guard's console across a daemon restart: what the guard did before it stays done.

Each test runs the console twice on one data directory (one database): ``before`` is the
daemon that ran until the restart, ``after`` the one systemd started again; the guard's
browser keeps its cookie and the page it had open.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from guard_support import BASE, close_core, hidden_fields, login, make_app, make_core, send
from starlette.testclient import TestClient

from kiosk import queries
from ui import i18n

PERSON = {"name": "Han Meimei", "unit": "3-402", "reason": "visiting", "temp_c": "36.6",
          "direction": "in", "decision": "pass"}  # fmt: skip
MANUAL = {"decision": "pass", "subject": "none", "reason": "neighbour, no phone", "direction": "in"}


@pytest.fixture
def restart(data_dir, clock, monkeypatch):
    """``restart()``: the daemon stopped and started again on the same database; returns the
    new core (the old one is closed)."""
    cores = [make_core(data_dir, clock, monkeypatch)]

    def again():
        close_core(cores[-1])
        cores.append(make_core(data_dir, clock, monkeypatch))
        return cores[-1]

    again.first = cores[0]
    yield again
    close_core(cores[-1])


def browser_on(core, cookies=None) -> TestClient:
    client = TestClient(make_app(core), base_url=BASE)
    if cookies is not None:
        client.cookies = cookies
    return client


def error_of(response) -> str | None:
    assert response.status_code == 303, response.text[:300]
    return parse_qs(urlsplit(response.headers["location"]).query).get("err", [None])[0]


def kinds(core) -> list[str]:
    return [f"{e['kind']}:{e['decision']}" for e in core.store.events()]


@pytest.mark.parametrize(
    ("path", "form_id", "page", "typed", "recorded"),
    [
        (
            "/guard/register/person",
            "person-form",
            "/guard/register",
            PERSON,
            "registration:manual_pass",
        ),
        ("/guard/manual", "manual-form", "/guard", MANUAL, "manual:manual_pass"),
    ],
)
def test_a_form_sent_again_after_a_restart_is_not_recorded_twice(
    restart, path, form_id, page, typed, recorded
):
    """The guard sends the form; the daemon restarts before the answer reaches the browser
    (or the guard reloads the answer's page, or taps back and sends again). The form as
    drawn acted once: the new daemon says it was already sent, and records nothing more."""
    before = browser_on(restart.first)
    login(before)
    fields = hidden_fields(before.get(page).text, form_id) | typed
    assert "msg=ok.done" in send(before, path, fields).headers["location"]

    core = restart()
    after = browser_on(core, before.cookies)
    again = send(after, path, fields)
    assert error_of(again) == i18n.t("zh-CN", "err.sent_twice")
    assert kinds(core) == [recorded]
    # A form drawn after the restart is a new action (the next visitor's: the same person
    # registered again a moment later is asked about first).
    fresh = hidden_fields(after.get(page).text, form_id) | typed
    fresh |= {"name": "Li Lei"} if "name" in typed else {}
    assert "msg=ok.done" in send(after, path, fresh).headers["location"]
    assert kinds(core) == [recorded, recorded]


def test_a_form_refused_before_a_restart_can_be_sent_corrected_after_it(restart):
    before = browser_on(restart.first)
    login(before)
    fields = hidden_fields(before.get("/guard").text, "manual-form") | MANUAL
    assert error_of(send(before, "/guard/manual", fields | {"reason": ""}))

    core = restart()
    after = browser_on(core, before.cookies)
    assert "msg=ok.done" in send(after, "/guard/manual", fields).headers["location"]
    assert kinds(core) == ["manual:manual_pass"]


def test_finding_a_sent_form_probes_an_index_not_the_audit_log(restart):
    """The look-up each decision form costs is one probe of an index, however long the
    audit log (a year of guard actions on a Pi), and a row whose detail is not JSON (purged:
    null) is no error."""
    store = restart.first.store
    for n in range(30):
        store.audit("alice", "lists_add", {"n": n})
    store.audit("system", "store.recovered", None)
    store.audit("alice", "manual_pass", {"form_once": "tok-1", "outcome": "ok"})
    reader = store.reader()
    plan = reader.execute(f"EXPLAIN QUERY PLAN {queries.FORM_ACTED_SQL}", ["x"]).fetchall()
    assert any("USING INDEX audit_form_once" in str(row[-1]) for row in plan), plan
    assert queries.form_acted(store, "tok-1") == "manual_pass"
    assert queries.form_acted(store, "tok-2") is None


def test_a_guard_signed_in_before_the_ntp_step_is_still_in_after_a_restart(data_dir, monkeypatch):
    """A Pi booted without network: the guard signed in at 09:05 (the clock said 1970); NTP
    set the clock; the daemon restarted at 10:00. The console is still theirs (the shift
    has hours left), not the sign-in page."""
    from datetime import UTC, datetime

    from kiosk.clock import FakeClock

    clock = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    core = make_core(data_dir, clock, monkeypatch)
    before = browser_on(core)
    login(before)
    clock.advance(3300)
    clock.set_wall(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    clock.is_synced = True
    close_core(core)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        after = browser_on(core, before.cookies)
        page = after.get("/guard", follow_redirects=False)
        assert page.status_code == 200, page.headers.get("location")
        clock.advance(core.config.web.session_hours * 3600)  # the shift is over
        assert after.get("/guard", follow_redirects=False).status_code == 303
    finally:
        close_core(core)
