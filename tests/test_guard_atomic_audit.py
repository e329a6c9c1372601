"""A guard's change to a list or a community ledger and its audit row are one transaction
(``kiosk.auditing``, applied to every console route by ``ui.guard.deps.audited_route``).

Each case below is a real change made from the console. Under each, the storage is made to
fail where the change and its row meet: the audit insert (the disk fills between them) or the
commit of both (the disk fills at the end). Either way nothing of the change is kept — the
database is what it was — and the guard is sent back to the form with a clear error, never a
5xx. Without the failure the same request writes its change and exactly one row.

``test_every_state_changing_route_is_a_case_here_or_named_as_not_a_ledger_change`` keeps the
table whole: a new route that changes state must come here (and so be atomic) or say why it
changes no ledger. The core tests make the same changes without the console (the command
line, the daemon's list sync): one transaction there too.

The console's other actions follow the same rule where their record is: a guard's decision
(``EVENT_CASES``) carries the request's row into its event's commit (held with the event in the
engine's backlog while the storage fails); an action whose only record is its row
(``ROW_CASES``: an alarm closed, a pass issued or printed, a calibration point) writes the row
before its effect is shown or handed over, or puts the effect back (the calibration file).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    GUARD_PW,
    add_event,
    console_fixtures,
    decided,
    post,
    refused_with,
)
from support import database_rows, disk_full, storage_failing

from kiosk.calibration import Calibration, default_path, record_clinical_pair
from kiosk.lists import sign_bundle
from kiosk.passes import TrustList
from kiosk.store import EventDraft, StoreFault
from ui import guard, i18n

#: 09:00 in Shanghai (the default site's time zone).
clock, core, app, alice, admin = console_fixtures(
    datetime(2026, 2, 12, 1, 0, tzinfo=UTC), raise_server_exceptions=False
)


@dataclass(frozen=True)
class Case:
    """One console change: the route's name, who makes it, its path and form (both may use the
    ids the ``world`` fixture made), and the audit action of the change it makes."""

    route: str
    who: str
    path: str
    form: dict[str, str]
    action: str

    def prepare(self, clients: dict[str, Any], world: dict[str, Any]) -> Callable[[], Any]:
        """The request, ready to send (an import is previewed now: its token is applied)."""
        client = clients[self.who]
        path = self.path.format(**world)
        form = {k: v.format(**world) for k, v in self.form.items()}
        if "file" in form:
            path, form = "/guard/community/imports/apply", {"token": preview(client, **form)}
        return lambda: post(client, path, client.csrf, **form)


CASES = [
    Case("list_edit", "alice", "/guard/lists/quarantine/add",
         {"household": "8-801", "from": "2026-02-12", "until": "2026-02-20"},
         "lists.quarantine_add"),
    Case("list_edit", "alice", "/guard/lists/quarantine/remove",
         {"id": "{quarantine_id}", "confirm": "yes"}, "lists.quarantine_remove"),
    Case("list_edit", "alice", "/guard/lists/households/add",
         {"household": "8-802", "residents": "3"}, "lists.household_set"),
    Case("list_edit", "alice", "/guard/lists/households/remove",
         {"household": "9-909", "confirm": "yes"}, "lists.household_remove"),
    Case("list_edit", "alice", "/guard/lists/revocations/add",
         {"pass_id": "0123456789ab", "note": "lost", "confirm": "yes"}, "lists.revoke"),
    Case("list_edit", "alice", "/guard/lists/revocations/remove",
         {"pass_id": "a0b1c2d3e4f5", "confirm": "yes"}, "lists.unrevoke"),
    Case("pass_revoked", "alice", "/guard/passes/revoke",
         {"pass_id": "{pass_id}", "confirm": "yes", "note": "lost"}, "lists.revoke"),
    Case("returnee_register", "alice", "/guard/community/returnees",
         {"name": "Wang Fang", "household": "3-2-701", "phone": "13812345678",
          "origin": "Wuhan", "date_back": "2026-02-12", "days": "14"},
         "observation.register"),
    Case("returnee_change", "alice", "/guard/community/returnees/{person_id}/temperature",
         {"temp_c": "36.6"}, "observation.check"),
    Case("returnee_change", "alice", "/guard/community/returnees/{person_id}/ack",
         {"day": "2026-02-12", "kind": "fever"}, "observation.ack"),
    Case("returnee_change", "admin", "/guard/community/returnees/{person_id}/status",
         {"status": "escalated"}, "observation.status"),
    Case("returnee_correct", "admin", "/guard/community/returnees/{person_id}/correct",
         {"name": "Li Lei", "household": "3-2-720", "date_back": "2026-02-11",
          "until": "2026-02-24"}, "observation.correct"),
    Case("service_open", "alice", "/guard/community/services",
         {"household": "5-702", "kind": "medicine"}, "service.open"),
    Case("service_step", "alice", "/guard/community/services/{request_id}/take", {},
         "service.taken"),
    Case("service_step", "alice", "/guard/community/services/{request_id}/done", {},
         "service.done"),
    Case("service_step", "alice", "/guard/community/services/{request_id}/cancel", {},
         "service.cancelled"),
    Case("shift_add", "admin", "/guard/community/shifts",
         {"guard": "alice", "starts": "2026-02-13T08:00", "ends": "2026-02-13T16:00"},
         "roster.shift_add"),
    Case("shift_remove", "admin", "/guard/community/shifts/{shift_id}/remove",
         {"guard": "alice", "starts_at": "{shift_starts}", "ends_at": "{shift_ends}"},
         "roster.shift_remove"),
    Case("handover_open", "admin", "/guard/community/handover", {"incoming": "alice"},
         "handover.open"),
    Case("handover_ack", "alice", "/guard/community/handover/{handover_id}/ack", {},
         "handover.ack"),
    Case("import_apply", "admin", "", {"kind": "compound",
         "file": "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-702\n"},
         "compound.import"),
    Case("import_apply", "admin", "", {"kind": "vehicles",
         "file": "plate,household\n京A12345,3-1-701\n"}, "vehicles.import"),
    Case("import_apply", "admin", "", {"kind": "households",
         "file": "household,residents\n7-707,2\n"}, "lists.csv"),
]  # fmt: skip

#: The console's other state-changing routes, and why none of them changes a ledger.
NOT_A_LEDGER_CHANGE = {
    "guard_login": "signing in: the session is in memory; accounts audit their own changes",
    "guard_logout": "signing out: the session is in memory",
    "check_household": "reads the lists",
    "register_search": "reads earlier visitors (posted: never in a URL)",
    "passes_search": "reads the issued passes (posted: never in a URL)",
    "plate": "reads the resident vehicles",
    "import_preview": "a preview writes nothing",
    # kiosk.people's own calls, the CLI's: show writes its row only; forget writes the change
    # and its person_forgotten row in one transaction (tests/test_guard_people.py).
    "person_show": "reads; kiosk.people.show writes its person_shown row, the request's",
    "person_forget": "a preview writes nothing; kiosk.people.forget is one audited write",
    # A fire does not wait for a disk: its row rides in its event's commit as a manual pass's
    # does, but the gate opens even when the storage refuses both (tests/test_gate_evacuation).
    "evacuation": "the guard's manual pass flagged evacuation: opens even unrecorded",
    "evacuation_end": "its row first (write_row_first), else no effect: test_gate_evacuation",
    # The time vouched for and its clock.vouched row are one transaction (submit_audited).
    "clock_vouched": "kiosk.store.vouch_time, one audited write: test_guard_clock_step",
}


def preview(client, kind: str, file: str) -> str:
    """Upload ``file`` as a ``kind`` import; the token that applies it."""
    page = client.post(
        "/guard/community/imports/preview",
        data={"csrf": client.csrf, "kind": kind},
        files={"file": (f"{kind}.csv", file.encode())},
        headers={"Origin": BASE},
    )
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return token.group(1)


@pytest.fixture
def world(core, clock, alice) -> dict[str, Any]:
    """What the cases act on, made through the core before any failure is injected."""
    lists, led, gate = core.lists, core.ledgers, core.config.site.kiosk_id
    lists.add_quarantine("5-702", None, "2026-02-10", "2026-02-24", "root")
    lists.set_household("9-909", "root", residents=2)
    lists.revoke("a0b1c2d3e4f5", "stolen", "root")
    quarantine_id = next(q["id"] for q in core.store.reader()["list_quarantine"].rows)
    person = led.observation.register(
        name="Li Lei", household="3-2-702", phone="", origin="Wuhan",
        date_back="2026-02-11", actor="root",
    )  # fmt: skip
    led.observation.record_temperature(person.id, 38.4, "alice")
    request = led.services.open("5-702", "food", "alice", confined=True)
    now = clock.now()
    led.roster.add_shift(gate, "root", now - timedelta(hours=1), now + timedelta(hours=7), "root")
    shift = led.roster.add_shift(
        gate, "alice", now - timedelta(hours=1), now + timedelta(hours=7), "root"
    )
    handover = led.roster.open_handover(gate, "alice", "root")
    issued = post(alice, "/guard/passes", alice.csrf, household="4-401", holder="Zhao", days="1")
    assert issued.status_code == 200, issued.text[:300]
    pass_id = next(a["detail"]["pass_id"] for a in core.store.audits(limit=1000)
                   if a["action"] == "pass_issued")  # fmt: skip
    return {
        "quarantine_id": quarantine_id,
        "person_id": person.id,
        "request_id": request.id,
        "handover_id": handover.id,
        "pass_id": pass_id,
        "shift_id": shift.id,
        "shift_starts": shift.starts_at.isoformat(),
        "shift_ends": shift.ends_at.isoformat(),
    }


def case_id(case: Case) -> str:
    return f"{case.route}:{case.action}:{case.path.rsplit('/', 1)[-1] or case.form.get('kind')}"


#: The cases the unit suite runs: one route each of a list, a ledger and an import. Auditing is
#: one mechanism every route has (``audited_route``; the table is kept whole by the test below),
#: so the rest of the table runs with the slow tests (CI): 63 console round trips, ~10 s of CPU.
UNIT_CASES = {"lists.quarantine_add", "observation.register", "compound.import"}


def sampled(cases: list[Case]) -> list[Any]:
    """``cases`` for ``parametrize``: those of ``UNIT_CASES`` as they are, the others slow."""
    slow = pytest.mark.slow
    return [c if c.action in UNIT_CASES else pytest.param(c, marks=slow) for c in cases]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["audit", "commit"])
@pytest.mark.parametrize("case", sampled(CASES), ids=case_id)
def test_a_change_whose_audit_row_cannot_be_written_is_not_kept_and_the_guard_is_told(
    case, where, world, core, alice, admin
):
    clients = {"alice": alice, "admin": admin}
    send = case.prepare(clients, world)
    before = database_rows(core.store)
    with storage_failing(core.store, where):
        response = send()
    assert response.status_code < 500, response.text[:300]
    assert response.status_code == 303, response.text[:300]
    err = parse_qs(urlsplit(response.headers["location"]).query)["err"][0]
    assert err in (i18n.t("en", "err.store"), i18n.t("zh-CN", "err.store"))
    assert clients[case.who].get(response.headers["location"]).status_code == 200
    assert database_rows(core.store) == before  # neither the change nor a row of it


@pytest.mark.slow
@pytest.mark.parametrize("case", sampled(CASES), ids=case_id)
def test_the_same_change_with_storage_working_is_kept_with_exactly_one_row(
    case, world, core, alice, admin
):
    clients = {"alice": alice, "admin": admin}
    send = case.prepare(clients, world)
    seq = core.store.last_audit_seq
    response = send()
    rows = core.store.audits(after_seq=seq, limit=100)
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    assert [(a["action"], a["detail"]["outcome"]) for a in rows] == [(case.action, "ok")]
    assert core.store.verify().ok


def test_every_state_changing_route_is_a_case_here_or_named_as_not_a_ledger_change():
    changing = {
        r.name
        for router in guard.ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    }
    cases = {c.route for c in CASES} | {c.route for c in EVENT_CASES} | set(ROW_CASES)
    assert not cases & set(NOT_A_LEDGER_CHANGE)
    assert changing == cases | set(NOT_A_LEDGER_CHANGE)


def test_when_the_storage_comes_back_the_refusal_is_on_record_and_the_change_is_not(
    world, core, alice
):
    """The disk fills for the change's transaction only: the change and its row are gone, and
    the route class writes the refusal (the storage's recovery row first)."""
    case = next(c for c in CASES if c.route == "returnee_register")
    send = case.prepare({"alice": alice}, world)
    seq, real = core.store.last_audit_seq, core.store._transaction
    failed: list[bool] = []

    def once(fn, **kwargs):
        if failed:
            return real(fn, **kwargs)
        failed.append(True)

        def then_fail(db):
            fn(db)
            raise disk_full()

        return real(then_fail, **kwargs)

    core.store._transaction = once
    try:
        response = send()
    finally:
        core.store._transaction = real
    assert "err=" in response.headers["location"]
    rows = [(a["actor"], a["action"], a["detail"]) for a in core.store.audits(after_seq=seq)]
    assert [r[:2] for r in rows] == [
        ("system", "store.recovered"),
        ("alice", "returnee_register_failed"),
    ]
    assert rows[1][2] == {"outcome": "error", "problem": "store_fault"}
    assert [p.name for p in core.ledgers.observation.people()] == ["Li Lei"]  # the world's


OFFICE = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
BUNDLE = sign_bundle(OFFICE, {
    "format": "kiosk-lists/1", "version": 1, "issued_at": "2026-02-11T20:00:00+00:00",
    "quarantine": [{"household": "6-601", "from": "2026-02-10", "until": "2026-02-24"}],
})  # fmt: skip
NOW = datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
BUNDLE_TRUST = TrustList([("office", OFFICE.public_key())])
SHIFT = datetime(2026, 2, 14, 0, 0, tzinfo=UTC), datetime(2026, 2, 14, 8, 0, tzinfo=UTC)

#: The ledgers' changes as the command line and the daemon make them: (action, the call).
CORE_CHANGES: list[tuple[str, Callable[[Any, dict[str, Any]], object]]] = [
    ("lists.bundle", lambda c, w: c.lists.import_bundle(BUNDLE, BUNDLE_TRUST, "office-sync")),
    ("lists.csv", lambda c, w: c.lists.import_csv("households", "household\n7-701\n", "root")),
    ("lists.quarantine_add", lambda c, w: c.lists.add_quarantine(
        "8-801", None, "2026-02-12", "2026-02-20", "root")),
    ("observation.status", lambda c, w: c.ledgers.observation.set_status(
        w["person_id"], "cleared", "root")),
    ("service.done", lambda c, w: c.ledgers.services.done(w["request_id"], "root")),
    ("roster.shift_add", lambda c, w: c.ledgers.roster.add_shift(
        "gate-1", "alice", *SHIFT, "root")),
    ("roster.shift_remove", lambda c, w: c.ledgers.roster.remove_shift(w["shift_id"], "root")),
    ("handover.ack", lambda c, w: c.ledgers.roster.acknowledge(w["handover_id"], "root")),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("where", ["audit", "commit"])
@pytest.mark.parametrize(("action", "make"), CORE_CHANGES, ids=[a for a, _ in CORE_CHANGES])
def test_without_the_console_a_change_whose_row_fails_is_not_kept_either(
    action, make, where, world, core
):
    before = database_rows(core.store)
    with storage_failing(core.store, where), pytest.raises(StoreFault):
        make(core, world)
    assert database_rows(core.store) == before


@pytest.mark.parametrize(("action", "make"), CORE_CHANGES, ids=[a for a, _ in CORE_CHANGES])
def test_without_the_console_a_change_is_kept_with_exactly_one_row(action, make, world, core):
    seq = core.store.last_audit_seq
    make(core, world)
    assert [a["action"] for a in core.store.audits(after_seq=seq)] == [action]
    again = core.store.last_audit_seq
    if action == "lists.bundle":  # the same version again: nothing to change, no row
        assert not core.lists.import_bundle(BUNDLE, BUNDLE_TRUST, "office-sync").applied
        assert core.store.last_audit_seq == again


# --- a guard's decision: the event and the request's row are one commit --------------------


@dataclass(frozen=True)
class EventCase:
    """A console request that makes the engine decide: its event (``kind``) carries the
    request's row (``action``) into the event's own commit."""

    route: str
    path: str
    form: dict[str, str]
    action: str
    kind: str


EVENT_CASES = [
    EventCase("manual", "/guard/manual",
              {"decision": "pass", "reason": "known resident", "subject": "none",
               "direction": "in"},
              "manual_pass", "manual"),
    EventCase("register_person", "/guard/register/person",
              {"name": "Wang Fang", "unit": "3-402", "reason": "visiting mother",
               "temp_c": "36.6", "direction": "in", "decision": "pass"},
              "register_person", "registration"),
    EventCase("register_vehicle", "/guard/register/vehicle",
              {"plate": "京B54321", "driver": "Zhang Wei", "driver_temp": "36.5",
               "reason": "delivery", "direction": "in", "decision": "pass"},
              "register_vehicle", "vehicle"),
]  # fmt: skip


def decision_rows(core, event_seq: int, audit_seq: int) -> tuple[list[dict], list[dict]]:
    """The events after ``event_seq`` and the audit rows after ``audit_seq``."""
    return core.store.events(after_seq=event_seq), core.store.audits(after_seq=audit_seq)


@pytest.mark.parametrize("where", ["audit", "commit"])
@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: c.route)
def test_a_guards_decision_whose_row_cannot_be_written_is_not_kept_and_waits_with_its_row(
    case, where, world, core, alice
):
    before = database_rows(core.store)
    with storage_failing(core.store, where), decided(alice, core) as seen:
        response = post(alice, case.path, alice.csrf, **case.form)
    # Not "done": the guard is told the decision waits in memory and the gate stayed shut.
    held_words = i18n.t("zh-CN", "err.held_locked")
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["location"]).query)["err"] == [held_words]
    assert seen[0]["committed"] is False
    assert database_rows(core.store) == before  # neither the event nor the request's row
    # The storage is back: the record held in memory is written, with its row, at once.
    event_seq, audit_seq = core.store.last_seq, core.store.last_audit_seq
    alice.portal.call(core.runner._flush_backlog)
    events, rows = decision_rows(core, event_seq, audit_seq)
    assert [(e["kind"], e["operator"]) for e in events] == [(case.kind, "alice")]
    assert [(a["actor"], a["action"]) for a in rows] == [
        ("system", "store.recovered"),
        ("alice", case.action),
    ]
    detail = rows[1]["detail"]
    assert detail["outcome"] == "ok"
    assert (detail["event_seq"], detail["recorded"]) == (events[0]["seq"], events[0]["decision"])
    assert core.store.verify().ok


@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: c.route)
def test_a_guards_decision_is_committed_with_exactly_one_row_naming_its_event(
    case, world, core, alice
):
    event_seq, audit_seq = core.store.last_seq, core.store.last_audit_seq
    with decided(alice, core) as seen:
        response = post(alice, case.path, alice.csrf, **case.form)
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    assert seen[0]["committed"] is True
    events, rows = decision_rows(core, event_seq, audit_seq)
    assert [(e["kind"], e["decision"]) for e in events] == [(case.kind, "manual_pass")]
    assert [(a["actor"], a["action"], a["detail"]["outcome"]) for a in rows] == [
        ("alice", case.action, "ok")
    ]
    assert rows[0]["detail"]["event_seq"] == events[0]["seq"]
    assert rows[0]["detail"]["recorded"] == "manual_pass"


def test_an_event_and_the_row_it_carries_are_one_commit_in_the_log(core):
    """``EventDraft.audit``: the event log writes the row in the event's transaction."""
    draft = EventDraft(
        direction="in", decision="manual_deny", reasons=("guard_override",), operator="alice",
        kind="manual", audit=("alice", "manual_deny", {"outcome": "ok"}),
    )  # fmt: skip
    before = database_rows(core.store)
    for where in ("audit", "commit"):
        with storage_failing(core.store, where), pytest.raises(StoreFault):
            core.store.append(draft)
        assert database_rows(core.store) == before
    event = core.store.append(draft)
    (row,) = [a for a in core.store.audits(limit=1000) if a["action"] == "manual_deny"]
    assert row["detail"] == {"outcome": "ok", "event_seq": event.seq, "recorded": "manual_deny"}
    assert core.store.last_audit_seq == row["seq"]


# --- actions whose record is their row: the row first, or the action undone -----------------


def open_alarm_keys(core, app) -> list[str]:
    return sorted(a.key for a in app.state.guard.alarms.open_alarms([]))


def fever_alarm(core, app, world) -> dict[str, str]:
    event = add_event(core, decision="deny", reasons=("fever",), temp_c=38.6)
    key = f"event:{event.seq}"
    assert key in open_alarm_keys(core, app)
    return {"only": f"{key}@1", "resolution": "sent_home"}  # as its card sends it: 1 time


def calibration_file(core, app) -> bytes | None:
    path = default_path(core.data_dir)
    return path.read_bytes() if path.exists() else None


def nothing_outside(core, app) -> None:
    return None


@dataclass(frozen=True)
class RowCase:
    """A console action whose only record is its row: ``form(core, app, world)`` the request
    (made ready before any failure); ``outside(core, app)`` what it changes outside the
    database (the alarm desk, the calibration file); ``ok`` its answer when done."""

    path: str
    form: Callable[[Any, Any, dict[str, Any]], dict[str, str]]
    outside: Callable[[Any, Any], Any]
    ok: int


ROW_CASES = {
    "alarm_ack": RowCase("/guard/alarms/ack", fever_alarm, open_alarm_keys, 303),
    "pass_issued": RowCase(
        "/guard/passes",
        lambda c, a, w: {"household": "4-402", "holder": "Qian", "days": "1"},
        nothing_outside,
        200,
    ),
    "pass_reprinted": RowCase(
        "/guard/passes/print", lambda c, a, w: {"pass_id": w["pass_id"]}, nothing_outside, 200
    ),
    "calibration_point": RowCase(
        "/guard/calibration",
        lambda c, a, w: {"clinical_c": "37.2", "object_c": "34.1", "ambient_c": "24.0"},
        calibration_file,
        303,
    ),
}


@pytest.mark.parametrize("where", ["audit", "commit"])
@pytest.mark.parametrize("route", sorted(ROW_CASES))
def test_an_action_whose_row_cannot_be_written_takes_no_effect_and_the_guard_is_told(
    route, where, world, core, app, alice
):
    case = ROW_CASES[route]
    form = case.form(core, app, world)
    before, outside = database_rows(core.store), case.outside(core, app)
    with storage_failing(core.store, where):
        response = post(alice, case.path, alice.csrf, **form)
    assert response.status_code == 303, response.text[:300]  # no pass or card handed over
    err = parse_qs(urlsplit(response.headers["location"]).query)["err"][0]
    assert err in (i18n.t("en", "err.store"), i18n.t("zh-CN", "err.store"))
    assert database_rows(core.store) == before
    assert case.outside(core, app) == outside  # the alarm still open, the file as it was
    if route == "calibration_point":
        assert sorted(p.name for p in core.data_dir.glob(".calibration*")) == [
            p.name for p in core.data_dir.glob(".calibration*.lock")
        ]  # nothing left beside the file


@pytest.mark.parametrize("route", sorted(ROW_CASES))
def test_the_same_action_with_storage_working_takes_effect_with_exactly_one_row(
    route, world, core, app, alice
):
    case = ROW_CASES[route]
    form = case.form(core, app, world)
    seq, outside = core.store.last_audit_seq, case.outside(core, app)
    response = post(alice, case.path, alice.csrf, **form)
    assert response.status_code == case.ok, response.text[:300]
    assert "err=" not in response.headers.get("location", "")
    rows = core.store.audits(after_seq=seq)
    assert [(a["action"], a["detail"]["outcome"]) for a in rows] == [(route, "ok")]
    if case.outside is not nothing_outside:
        assert case.outside(core, app) != outside
    for pass_id in rows[0]["detail"].get("pass_ids") or [rows[0]["detail"].get("pass_id")]:
        assert pass_id is None or pass_id in response.text  # the card handed over is on record


def test_the_alarm_desk_shows_an_alarm_closed_only_once_its_row_is_written(core, app):
    desk = app.state.guard.alarms
    key = fever_alarm(core, app, {})["only"].partition("@")[0]  # its key, without the count

    def failing(alarms):
        assert desk.close([key], "root", []) == []  # held for this close: no second closer
        assert key in open_alarm_keys(core, app)  # and still shown open meanwhile
        raise StoreFault("store_fault", "SQLITE_FULL")

    with pytest.raises(StoreFault):
        desk.close([key], "alice", [], record=failing)
    assert key in open_alarm_keys(core, app)
    closed = desk.close([key], "alice", [], "false_alarm", record=lambda alarms: None)
    assert [(a.key, a.acked_by, a.resolution) for a in closed] == [(key, "alice", "false_alarm")]
    assert key not in open_alarm_keys(core, app)


def test_a_calibration_point_whose_row_fails_puts_the_file_back_as_it_was(tmp_path):
    (tmp_path / "cal").mkdir()
    path = tmp_path / "cal" / "calibration.json"
    record_clinical_pair(path, 36.8, 33.8, 24.0, now=NOW)
    kept = path.read_bytes()

    def failing():
        assert Calibration.load(path).points[-1].clinical_c == 37.9  # saved, then its row
        raise disk_full()

    with pytest.raises(sqlite3.OperationalError):
        record_clinical_pair(path, 37.9, 34.9, 24.5, now=NOW, record=failing)
    assert path.read_bytes() == kept
    assert sorted(p.name for p in path.parent.iterdir()) == [".calibration.json.lock", path.name]
    fresh = tmp_path / "fresh" / "calibration.json"
    fresh.parent.mkdir()
    with pytest.raises(sqlite3.OperationalError):
        record_clinical_pair(fresh, 37.9, 34.9, 24.5, now=NOW, record=failing_fresh(fresh))
    assert not fresh.exists()  # there was none: there is none
    saved = record_clinical_pair(path, 37.9, 34.9, 24.5, now=NOW, record=lambda: None)
    assert Calibration.load(path) == saved and len(saved.points) == 2


def failing_fresh(path):
    def failing():
        assert path.exists()
        raise disk_full()

    return failing


# --- the route class's own row: never a 5xx when it cannot be written ----------------------


def sign_in_with_storage_failing(app, where: str):
    """A guard signing in while the storage fails: the answer, and whether a page opens."""
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/guard/login").text)
    form = {"name": "alice", "password": GUARD_PW, "csrf": token.group(1), "next": "/guard"}
    with storage_failing(app.state.guard.core.store, where):
        answer = client.post(
            "/guard/login", data=form, headers={"Origin": BASE}, follow_redirects=False
        )
    return answer, client.get("/guard", follow_redirects=False)


@pytest.mark.parametrize("where", ["audit", "commit"])
def test_signing_in_when_its_row_can_neither_be_written_nor_held_is_refused_clearly(
    where, core, app
):
    """A sign-in whose row the storage cannot take is let in with the row held in memory
    (tests/test_guard_outage_signin.py); once no more rows can be held, it is refused."""
    from kiosk.auditing import HeldRows

    app.state.guard.held = HeldRows(max_rows=0, reserve=0)
    answer, page = sign_in_with_storage_failing(app, where)
    assert answer.status_code == 400, answer.text[:300]  # the form again, saying why
    assert any(i18n.t(lang, "err.store") in answer.text for lang in ("en", "zh-CN"))
    assert "kiosk_session" not in answer.headers.get("set-cookie", "")  # no session handed over
    assert page.status_code == 303 and "/guard/login" in page.headers["location"]


@pytest.mark.parametrize("where", ["audit", "commit"])
def test_a_refusal_whose_row_cannot_be_written_is_still_answered_as_a_refusal(
    where, world, core, alice
):
    """Bad input changed nothing: the guard is told what was wrong, the storage or not."""
    before = database_rows(core.store)
    with storage_failing(core.store, where):
        refused = post(alice, "/guard/passes", alice.csrf, household="4-401", days="1")
        missing = post(alice, "/guard/community/returnees/99999/status", alice.csrf,
                       status="cleared")  # fmt: skip
    assert refused.status_code == 400, refused.text[:300]  # drawn again as typed
    err = refused_with(alice, refused)
    assert err and err not in (i18n.t("en", "err.store"), i18n.t("zh-CN", "err.store"))
    assert 400 <= missing.status_code < 500, missing.text[:300]
    assert database_rows(core.store) == before


@pytest.mark.parametrize("where", ["audit", "commit"])
def test_signing_out_when_its_row_cannot_be_written_is_no_server_error(where, core, alice):
    with storage_failing(core.store, where):
        response = post(alice, "/guard/logout", alice.csrf)
    assert response.status_code == 303, response.text[:300]
    # Signed out to the sign-in page; its row waits in memory (test_guard_outage_signin).
    assert response.headers["location"].startswith("/guard/login")
    # The session was ended all the same (signing out is never undone).
    assert alice.get("/guard", follow_redirects=False).status_code == 303
