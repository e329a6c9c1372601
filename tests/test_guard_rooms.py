"""The guard console in rooms: every state change audited by one mechanism, bounded parameters
(4xx, never 5xx), no SQL in ``ui/``, the alarm desk and queries of the core."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    add_event,
    login,
    make_app,
    post,
)

from kiosk import queries
from kiosk.alarms import AlarmDesk, alarm_from_event
from ui import guard

UI = Path(__file__).resolve().parent.parent / "ui"


def _changing_routes() -> list[APIRoute]:
    """Every POST/PUT/PATCH/DELETE route the console mounts (``ui.guard.install``)."""
    return [
        r
        for router in guard.ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]


def _concrete(path: str) -> str:
    params = {"{which}": "quarantine", "{op}": "add", "{pid}": "1", "{what}": "temperature",
              "{rid}": "1", "{action}": "take", "{hid}": "1"}  # fmt: skip
    for name, value in params.items():
        path = path.replace(name, value)
    return path


@pytest.mark.slow
def test_every_state_changing_guard_route_is_audited_with_actor_action_and_outcome(guard_core):
    app = make_app(guard_core)
    routes = _changing_routes()
    assert len(routes) >= 8  # login, logout, manual, ack, two registrations, pass, list, cal.
    assert {r.path for r in routes} >= {
        "/guard/community/returnees",
        "/guard/community/returnees/{pid}/{what}",
        "/guard/community/services",
        "/guard/community/services/{rid}/{action}",
        "/guard/community/shifts",
        "/guard/community/handover",
        "/guard/community/handover/{hid}/ack",
        "/guard/community/imports/preview",
        "/guard/community/imports/apply",
        "/guard/community/plate",
    }
    with TestClient(app, base_url=BASE) as guard_client:
        signed_in = login(guard_client)
        for route in sorted(routes, key=lambda r: r.path == "/guard/logout"):  # logout last
            csrf = signed_in
            before = guard_core.store.last_audit_seq
            form = {}  # an empty form, except that signing in needs the login form's token
            if route.path == "/guard/login":
                csrf = app.state.guard.auth.sessions.login_form_token()
                form = {"name": "alice", "password": "wrong"}
            response = post(guard_client, _concrete(route.path), csrf, **form)
            assert response.status_code < 500, route.path
            rows = guard_core.store.audits(after_seq=before)
            mine = [a for a in rows if a["actor"] == "alice"]
            assert mine, f"{route.path} wrote no audit row"
            assert mine[-1]["detail"]["outcome"] in ("ok", "refused"), route.path
            assert mine[-1]["action"].startswith(route.name), (route.path, mine[-1]["action"])


def test_a_refused_action_is_audited_as_failed_with_the_problem_key_not_the_text(
    guard_client, guard_core
):
    csrf = login(guard_client)
    response = post(guard_client, "/guard/manual", csrf, decision="pass", reason="", subject="none")
    assert "err=" in response.headers["location"]
    last = guard_core.store.audits()[-1]
    assert (last["actor"], last["action"]) == ("alice", "manual_pass_failed")
    assert last["detail"] == {
        "subject": "none",
        "outcome": "refused",
        "problem": "err.required",
    }


def test_a_request_without_a_session_names_nobody_and_writes_nothing(guard_client, guard_core):
    before = guard_core.store.last_audit_seq
    response = guard_client.post("/guard/manual", data={"reason": "x"}, headers={"Origin": BASE})
    assert response.status_code == 401
    assert guard_core.store.last_audit_seq == before


@pytest.mark.parametrize(
    "path",
    [
        "/guard/events?after=abc",
        "/guard/events?after=-1",
        "/guard/api/feed?after=-1",
        "/guard/api/feed?after=abc",
        "/guard/api/feed?after=99999999999999999999999",
        "/guard/stats?day=9999-12-31",
        "/guard/stats?day=0001-01-01",
        "/guard/stats?day=2026-02-30",
        "/guard/stats?day=" + "9" * 500,
        "/guard/export.csv?day=9999-12-31",
        "/guard/export.csv?day=abc",
    ],
)
def test_bad_parameters_are_refused_with_4xx_never_5xx(guard_client, path):
    login(guard_client)
    response = guard_client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)


def test_the_last_day_the_statistics_accept_still_answers(guard_client):
    """Read (its day's bounds at the range's end), and refused as a day not begun holding
    nothing (``kiosk.days.refuse_unbegun``), never a 500."""
    login(guard_client)
    response = guard_client.get("/guard/stats?day=2999-12-31&lang=en")
    assert response.status_code == 400
    assert "that day has not begun" in response.text


def test_ui_holds_no_sql():
    sql = re.compile(
        r"\b(select\s+.+\s+from|insert\s+into|delete\s+from|execute\(|rows_where|import sqlite)",
        re.I,
    )
    offenders = [
        f"{p.relative_to(UI)}:{n}"
        for p in UI.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if sql.search(line)
    ]
    assert offenders == []


def test_alarm_desk_reads_open_alarms_and_acknowledgements_back_after_a_restart(guard_core):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    add_event(guard_core, decision="deny", reasons=("pass_expired",))
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    assert [a.key for a in desk.open_alarms([])] == ["event:1"]
    acked = desk.ack("event:1", "alice", [])
    assert acked is not None and desk.ack("event:1", "alice", []) is None
    guard_core.store.audit("alice", "alarm_ack", {"key": "event:1"})
    assert AlarmDesk(guard_core.store, guard_core.clock).open_alarms([]) == []


def test_alarm_from_event_reads_reasons_stored_as_json_text():
    alarm = alarm_from_event({"seq": 4, "decision": "deny", "reasons": '["quarantined"]'})
    assert alarm is not None and (alarm.key, alarm.kind) == ("event:4", "quarantine")
    assert alarm_from_event({"seq": 5, "decision": "pass", "reasons": ["fever"]}) is None


def test_queries_answer_the_consoles_questions(guard_core):
    add_event(guard_core, temp_c=36.5, temp_object_c=33.1, temp_ambient_c=22.0)
    add_event(guard_core, decision="deny", reasons=("quota_exceeded",))
    assert [e["seq"] for e in queries.recent_events(guard_core.store, 5)] == [2, 1]
    assert queries.head_seq(guard_core.store) == 2
    measured = queries.last_measured(guard_core.store)
    assert measured is not None and (measured.seq, measured.temp_object_c) == (1, 33.1)
    assert queries.first_seq_since(guard_core.store, "2999-01-01") is None
    assert set(queries.list_rows(guard_core.store)) == {"quarantine", "revocations", "households"}
