"""The guard console: pages, actions, masking, alarms, statistics, on the real core.

The rig (``make_core``, ``decided``, ``login``, ...) is ``tests/guard_support.py``; the
``guard_core`` and ``guard_client`` fixtures are in tests/conftest.py. Nothing in these tests
sleeps.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    ADMIN_PW,
    BASE,
    GUARD_PW,
    WAIT_S,
    add_event,
    close_core,
    decided,
    gate_opening,
    login,
    make_app,
    make_core,
    nothing_recorded,
    post,
    refused_with,
    settle_idle,
    signed_in,
)

from kiosk.config import parse_config
from kiosk.devices import CodeRead, SensorFault
from kiosk.passes import issue_pass

# --- access control ----------------------------------------------------------------------

PAGES = [
    "/guard",
    "/guard/register",
    "/guard/passes",
    "/guard/lists",
    "/guard/stats",
    "/guard/stats?day=2026-03-01",
    "/guard/health",
    "/guard/calibration",
    "/guard/export.csv?day=2026-03-02",
]
ACTIONS = [
    "/guard/manual",
    "/guard/alarms/ack",
    "/guard/register/person",
    "/guard/register/vehicle",
    "/guard/passes",
    "/guard/lists/quarantine/add",
    "/guard/lists/quarantine/remove",
    "/guard/lists/revocations/add",
    "/guard/lists/revocations/remove",
    "/guard/lists/households/add",
    "/guard/lists/households/remove",
    "/guard/calibration",
    "/guard/logout",
]


def test_every_guard_page_redirects_to_login_without_a_session(guard_client):
    for path in PAGES:
        response = guard_client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/guard/login?next=/guard"), path


def test_every_guard_action_answers_401_without_a_session(guard_client, guard_core):
    for path in ACTIONS:
        response = guard_client.post(
            path, data={"reason": "x"}, headers={"Origin": BASE}, follow_redirects=False
        )
        assert response.status_code == 401, path
    assert nothing_recorded(guard_core)


def test_a_browser_form_post_without_a_session_goes_to_login_and_does_nothing(
    guard_client, guard_core
):
    response = guard_client.post(
        "/guard/manual",
        data={"decision": "pass", "reason": "x"},
        headers={"Origin": BASE, "Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/guard/login")
    assert nothing_recorded(guard_core)


def test_guard_feed_and_stream_answer_401_without_a_session(guard_client):
    assert guard_client.get("/guard/api/feed").status_code == 401
    assert guard_client.get("/guard/api/health").status_code == 401
    assert guard_client.get("/guard/events").status_code == 401


def test_login_sets_an_httponly_samesite_strict_cookie_scoped_to_guard(guard_client):
    page = guard_client.get("/guard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = guard_client.post(
        "/guard/login",
        data={"name": "alice", "password": GUARD_PW, "csrf": token},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "kiosk_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/guard" in cookie
    assert guard_client.get("/guard").status_code == 200


def test_wrong_password_is_refused_and_audited_without_the_password(guard_client, guard_core):
    page = guard_client.get("/guard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = guard_client.post(
        "/guard/login",
        data={"name": "alice", "password": "nope", "csrf": token},
        headers={"Origin": BASE},
    )
    assert response.status_code == 401
    assert "kiosk_session" not in response.headers.get("set-cookie", "")
    audits = guard_core.store.audits()
    assert audits[-1]["action"] == "guard_login_failed"
    assert "nope" not in json.dumps(audits)


def test_login_rate_limit_blocks_an_address_until_the_minute_has_passed(guard_client, guard_core):
    limit = guard_core.config.web.login_attempts_per_min
    page = guard_client.get("/guard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def attempt(password: str):
        return guard_client.post(
            "/guard/login",
            data={"name": "alice", "password": password, "csrf": token},
            headers={"Origin": BASE},
            follow_redirects=False,
        )

    for _ in range(limit):
        assert attempt("wrong").status_code == 401
    blocked = attempt(GUARD_PW)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    guard_core.clock.advance(61)
    assert attempt(GUARD_PW).status_code == 303


def test_cross_site_post_is_rejected_even_with_a_valid_session_and_token(guard_client, guard_core):
    csrf = login(guard_client)
    response = guard_client.post(
        "/guard/manual",
        data={"csrf": csrf, "decision": "pass", "reason": "x"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    response = guard_client.post(
        "/guard/manual",
        data={"csrf": csrf, "decision": "pass", "reason": "x"},
        headers={"Referer": "https://evil.example/form"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert nothing_recorded(guard_core)


def test_state_change_without_the_csrf_token_is_rejected(guard_client, guard_core):
    login(guard_client)
    response = guard_client.post(
        "/guard/manual",
        data={"decision": "pass", "reason": "x"},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert response.status_code == 403
    response = post(guard_client, "/guard/manual", "forged-token", decision="pass", reason="x")
    assert response.status_code == 403
    assert nothing_recorded(guard_core)


def test_logout_ends_the_session_even_for_a_copied_cookie(guard_client):
    csrf = login(guard_client)
    cookie = guard_client.cookies.get("kiosk_session")
    response = post(guard_client, "/guard/logout", csrf)
    assert response.status_code == 303
    guard_client.cookies.set("kiosk_session", cookie, path="/guard")
    assert guard_client.get("/guard", follow_redirects=False).status_code == 303


def test_a_session_survives_a_restart_when_the_session_key_secret_is_set(guard_core, monkeypatch):
    with TestClient(make_app(guard_core), base_url=BASE) as before:
        login(before)
        cookie = before.cookies.get("kiosk_session")
    with TestClient(make_app(guard_core), base_url=BASE) as restarted:  # a new router, same secret
        restarted.cookies.set("kiosk_session", cookie, path="/guard")
        assert restarted.get("/guard", follow_redirects=False).status_code == 200
    monkeypatch.delenv("KIOSK_SESSION_KEY")  # without it every start makes a random key
    with TestClient(make_app(guard_core), base_url=BASE) as keyless:
        keyless.cookies.set("kiosk_session", cookie, path="/guard")
        assert keyless.get("/guard", follow_redirects=False).status_code == 303


def test_login_next_parameter_never_leaves_the_guard_console(guard_client):
    page = guard_client.get("/guard/login?next=https://evil.example/")
    assert 'name="next" value="/guard"' in page.text
    page = guard_client.get("/guard/login?next=//evil.example/guard")
    assert 'name="next" value="/guard"' in page.text


# --- actions -----------------------------------------------------------------------------


def test_manual_pass_with_reason_is_an_event_with_the_operator_and_is_audited(
    guard_client, guard_core
):
    csrf = login(guard_client)
    with gate_opening(guard_core) as opened:
        with decided(guard_client, guard_core):
            response = post(
                guard_client,
                "/guard/manual",
                csrf,
                decision="pass",
                reason="known resident",
                subject="none",
                direction="in",
            )
        assert opened.wait(WAIT_S)  # a manual pass opens the gate like any other
    assert response.status_code == 303
    assert guard_core.devices.gate.is_open
    events = guard_core.store.events()
    assert len(events) == 1
    event = events[0]
    assert event["decision"] == "manual_pass"
    assert event["operator"] == "alice"
    assert event["reasons"] == ["guard_override"]
    assert event["person"]["note"] == "known resident"
    assert any(
        a["action"] == "manual_pass" and a["actor"] == "alice" for a in guard_core.store.audits()
    )


def test_manual_decision_without_a_reason_records_nothing_and_says_why(guard_client, guard_core):
    csrf = login(guard_client)
    response = post(
        guard_client, "/guard/manual", csrf, decision="pass", reason="  ", subject="none"
    )
    assert response.status_code == 303
    page = guard_client.get(response.headers["location"])
    assert "Reason" in page.text or "原因" in page.text
    assert "flash err" in page.text
    assert nothing_recorded(guard_core)


def test_registering_a_visitor_without_a_phone_records_a_registration_event(
    guard_client, guard_core
):
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        response = post(
            guard_client,
            "/guard/register/person",
            csrf,
            name="Wang Fang",
            phone="13800138000",
            id_number="110101199003071234",
            unit="3-402",
            reason="visiting mother",
            temp_c="36,6",  # a decimal comma is a decimal point
            direction="in",
            decision="pass",
        )
    assert response.status_code == 303
    (event,) = guard_core.store.events()
    assert event["kind"] == "registration"
    assert event["decision"] == "manual_pass"
    assert event["person"]["name"] == "Wang Fang"
    assert event["person"]["phone"] == "13800138000"
    assert event["person"]["unit"] == "3-402"
    assert event["temp_c"] == 36.6  # the hand-measured temperature is the event's own
    assert "hand_temp_c" not in event["person"]
    page = guard_client.get("/guard/register").text
    assert "36.6" in page and "Wang Fang" in page and "138****8000" in page
    assert any(a["action"] == "register_person" for a in guard_core.store.audits())


#: A visitor's form, but for the temperature and the decision.
LI_LEI = {"name": "Li Lei", "phone": "13900139000", "unit": "1-101", "reason": "delivery"}


def test_hand_measured_fever_cannot_be_registered_as_a_pass(guard_client, guard_core):
    csrf = login(guard_client)
    response = post(
        guard_client, "/guard/register/person", csrf, **LI_LEI, temp_c="38.2", decision="pass"
    )
    # The form comes back with what was typed and the button the message names.
    assert response.status_code == 400
    assert "38.2" in response.text and "flash err" in response.text
    assert 'value="Li Lei"' in response.text and 'value="delivery"' in response.text
    assert 'id="person-record-deny"' in response.text
    assert nothing_recorded(guard_core)


def test_an_implausible_hand_measured_temperature_names_the_range_and_records_nothing(
    guard_client, guard_core
):
    csrf = login(guard_client)
    response = post(
        guard_client, "/guard/register/person", csrf, **LI_LEI, temp_c="3.66", decision="deny"
    )
    page = response
    assert "flash err" in page.text and "34" in page.text and "43" in page.text
    assert nothing_recorded(guard_core)


def test_registering_a_vehicle_records_plate_driver_and_occupants(guard_client, guard_core):
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        post(
            guard_client,
            "/guard/register/vehicle",
            csrf,
            plate="京A12345",
            driver="Zhao Gang",
            driver_temp="36.4",
            p1_name="Zhao Min",
            p1_temp="36.9",
            p2_name="",
            p2_temp="36.6",
            reason="moving furniture",
            decision="pass",
        )
    (event,) = guard_core.store.events()
    assert event["kind"] == "vehicle"
    assert event["person"]["plate"] == "京A12345"
    assert event["person"]["driver"] == "Zhao Gang"
    assert event["person"]["driver_temp_c"] == 36.4
    assert event["person"]["passengers"] == [
        {"name": "Zhao Min", "temp_c": 36.9},
        {"name": "", "temp_c": 36.6},
    ]
    assert event["person"]["occupants"] == 2
    assert event["temp_c"] == 36.9  # the hottest occupant's


def test_bad_vehicle_input_records_nothing(guard_client, guard_core):
    csrf = login(guard_client)
    response = post(
        guard_client,
        "/guard/register/vehicle",
        csrf,
        plate="",
        driver="Z",
        driver_temp="36.5",
        reason="x",
    )
    assert response.status_code == 400 and "flash err" in response.text
    response = post(
        guard_client,
        "/guard/register/vehicle",
        csrf,
        plate="A1",
        driver="Z",
        driver_temp="36.5",
        p1_name="Q",
        p1_temp="warm",
        reason="x",
    )
    assert response.status_code == 400 and 'value="warm"' in response.text
    assert nothing_recorded(guard_core)


def test_guard_sees_phone_and_id_masked_while_admin_sees_them(guard_core):
    add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        operator="alice",
        kind="registration",
        person={"name": "Wang Fang", "phone": "13800138000", "id_number": "110101199003071234"},
    )
    with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
        login(guard_client)
        page = guard_client.get("/guard").text
        assert "Wang Fang" in page
        assert "13800138000" not in page and "138****8000" in page
        assert "110101199003071234" not in page
        feed = guard_client.get("/guard/api/feed").json()
        assert "13800138000" not in json.dumps(feed)
    with TestClient(make_app(guard_core), base_url=BASE) as admin_client:
        login(admin_client, "root", ADMIN_PW)
        page = admin_client.get("/guard").text
        assert "13800138000" in page


def test_csv_export_of_a_day_masks_phone_numbers_for_a_guard(guard_client, guard_core):
    add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        kind="registration",
        person={"name": "=cmd|calc", "phone": "13800138000"},
    )
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.1)
    login(guard_client)
    response = guard_client.get("/guard/export.csv?day=2026-03-02")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.startswith("\ufeff")  # Excel opens UTF-8 with a BOM
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert [r["结果"] for r in rows] == ["人工放行", "拒绝"]
    assert "13800138000" not in response.text and rows[0]["电话"] == "138****8000"
    assert rows[0]["姓名"] == "'=cmd|calc"  # never a formula
    assert rows[1]["体温（°C）"] == "38.1" and rows[1]["原因"] == "体温偏高"
    assert any(a["action"] == "export_csv" for a in guard_core.store.audits())


def test_export_of_a_malformed_day_is_a_clear_400(guard_client):
    login(guard_client)
    response = guard_client.get("/guard/export.csv?day=yesterday")
    assert response.status_code == 400


# --- alarms ------------------------------------------------------------------------------


def test_fever_raises_an_alarm_that_stays_until_a_guard_acknowledges_it(guard_client, guard_core):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    csrf = login(guard_client)
    page = guard_client.get("/guard").text
    assert 'class="alarm kind-fever"' in page
    key = re.search(r'name="key" value="(event:\d+@1)"', page).group(1)
    assert guard_client.get("/guard").text.count('class="alarm kind-fever"') == 1
    response = post(guard_client, "/guard/alarms/ack", csrf, key=key)
    assert response.status_code == 303
    assert 'class="alarm kind-fever"' not in guard_client.get("/guard").text
    acks = [a for a in guard_core.store.audits() if a["action"] == "alarm_ack"]
    assert acks and acks[0]["actor"] == "alice" and acks[0]["detail"]["alarm"] == "fever"


def test_an_acknowledged_alarm_stays_acknowledged_after_a_restart(guard_core):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
        csrf = login(guard_client)
        post(guard_client, "/guard/alarms/ack", csrf, key="event:1@1")
    with TestClient(make_app(guard_core), base_url=BASE) as restarted:  # a fresh router: new board
        login(restarted)
        assert 'class="alarm kind-fever"' not in restarted.get("/guard").text


def test_forged_pass_and_quarantine_breach_are_alarms_too(guard_client, guard_core):
    add_event(guard_core, decision="deny", reasons=("pass_bad_signature",))
    add_event(guard_core, decision="deny", reasons=("quarantined",), direction="out")
    add_event(guard_core, decision="deny", reasons=("pass_expired",))  # not an alarm
    login(guard_client)
    page = guard_client.get("/guard").text
    assert 'class="alarm kind-forged"' in page
    assert 'class="alarm kind-quarantine"' in page
    assert page.count('<div class="alarm ') == 2


def test_a_faulty_device_shows_a_standing_alarm(guard_client, guard_core):
    thermometer = guard_core.devices.thermometer
    thermometer.emulator.inject("bad_pec")  # every answer of the chip fails its checksum
    with pytest.raises(SensorFault):
        thermometer.read()
    login(guard_client)
    page = guard_client.get("/guard").text
    assert 'class="alarm kind-device"' in page
    health = guard_client.get("/guard/health").text  # the site's language: zh-CN
    assert "数据校验码不符" in health and "PEC mismatch" not in health
    assert "PEC mismatch" in guard_client.get("/guard/health?lang=en").text


def test_device_alarm_from_the_bus_stays_until_acknowledged_even_after_the_fault_clears():
    from kiosk.alarms import AlarmBoard, alarm_from_message, device_alarms
    from ui.views import faults_of

    board = AlarmBoard()
    raised = alarm_from_message({"type": "alarm", "alarm": "sensor_fault", "state": "raised"}, "t")
    assert board.add(raised)
    standing = device_alarms(faults_of({"devices": {"thermometer": {"state": "fault"}}}))
    assert [a.key for a in standing] == [raised.key]  # one card per device, not two
    board.forget_cleared_devices(set())  # fault cleared, nobody acknowledged yet
    assert [a.key for a in board.open()] == ["device:thermometer"]
    assert (
        alarm_from_message({"type": "alarm", "alarm": "sensor_fault", "state": "cleared"}, "t")
        is None
    )
    board.ack("device:thermometer", "alice", "t2")
    board.forget_cleared_devices(set())
    assert board.add(alarm_from_message({"type": "alarm", "alarm": "sensor_fault"}, "t3"))


def test_acknowledging_an_unknown_alarm_says_so(guard_client):
    csrf = login(guard_client)
    response = post(guard_client, "/guard/alarms/ack", csrf, key="event:999@1")
    assert "err=" in response.headers["location"]


# --- passes, lists ------------------------------------------------------------------------


def test_issued_pass_card_is_shown_for_printing_and_verifies_against_the_trust_list(
    guard_client, guard_core
):
    csrf = login(guard_client)
    response = post(
        guard_client,
        "/guard/passes",
        csrf,
        household="7-301",
        holder="Chen Jing",
        role="visitor",
        days="1",
    )
    assert response.status_code == 200
    assert 'id="print-card"' in response.text
    assert "<svg" in response.text
    pass_id = re.search(r"<code>([0-9a-f]{12})</code>", response.text).group(1)
    payload = re.search(r'data-payload="([^"]+)"', response.text).group(1)
    verified = guard_core.trust.verify(payload.replace("&#43;", "+").replace("&amp;", "&"))
    assert (verified.pass_id, verified.holder, verified.role) == (pass_id, "Chen Jing", "visitor")
    issued = [a for a in guard_core.store.audits() if a["action"] == "pass_issued"]
    assert issued[0]["detail"]["pass_id"] == pass_id


def test_a_pass_that_cannot_be_issued_says_why_and_records_nothing(guard_client, guard_core):
    csrf = login(guard_client)
    # Within the form's limits, but too many bytes for a QR pass: kiosk.passes refuses.
    too_big = {"household": "一" * 40, "holder": "二" * 60, "days": "1"}
    response = post(guard_client, "/guard/passes", csrf, **too_big)
    assert refused_with(guard_client, response)
    response = post(guard_client, "/guard/passes", csrf, household="7-301", holder="A", days="9999")
    assert refused_with(guard_client, response)
    assert not [a for a in guard_core.store.audits() if a["action"] == "pass_issued"]


def test_issue_pass_without_a_key_is_refused(guard_client, guard_core):
    guard_core.issuer_key = None
    csrf = login(guard_client)
    assert "pass.no_key" not in guard_client.get("/guard/passes").text
    response = post(guard_client, "/guard/passes", csrf, household="7-301", holder="A", days="1")
    assert refused_with(guard_client, response)


def test_quarantine_added_by_a_guard_is_recorded_with_who_and_the_next_scan_obeys_it(
    data_dir, clock, monkeypatch
):
    guard_core = make_core(
        data_dir, clock, monkeypatch, parse_config({"policy": {"mode": "pass_only"}})
    )
    engine = guard_core.runner.engine
    text, _pass = issue_pass(guard_core.issuer_key, "5-202", "Sun Li", days=30, now=clock.now())

    def scan_going_out() -> None:  # on the loop, as the runner delivers a reader's code
        engine.on_code(CodeRead(text, "test", clock.monotonic_ns()), "out")

    try:
        with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
            with decided(guard_client, guard_core):
                guard_client.portal.call(scan_going_out)
            assert guard_core.store.events()[-1]["decision"] == "pass"
            clock.advance(10)
            guard_client.portal.call(engine.tick)
            csrf = login(guard_client)
            response = post(
                guard_client,
                "/guard/lists/quarantine/add",
                csrf,
                household="5-202",
                holder="",
                until="2026-03-15",
                note="returned from abroad",
            )
            assert response.status_code == 303 and "err=" not in response.headers["location"]
            page = guard_client.get("/guard/lists").text
            assert "5-202" in page and "alice" in page and "returned from abroad" in page
            clock.advance(200)
            guard_client.portal.call(engine.tick)
            settle_idle(guard_client, guard_core)
            with decided(guard_client, guard_core) as seen:
                guard_client.portal.call(scan_going_out)
        last = guard_core.store.events()[-1]
        assert last["seq"] == seen[0]["seq"] == 2
        assert last["decision"] == "deny"
        assert "quarantined" in last["reasons"]
        assert any(
            a["action"] == "lists.quarantine_add" and a["actor"] == "alice"
            for a in guard_core.store.audits()
        )
    finally:
        close_core(guard_core)


def test_bad_list_input_is_refused_with_the_reason(guard_client, guard_core):
    csrf = login(guard_client)
    response = post(
        guard_client, "/guard/lists/quarantine/add", csrf, household="5-202", until="soon"
    )
    assert response.status_code == 400 and 'class="flash err"' in response.text
    response = post(
        guard_client, "/guard/lists/revocations/add", csrf, pass_id="not-hex", confirm="yes"
    )
    assert response.status_code == 400 and 'class="flash err"' in response.text
    assert guard_core.lists.current.counts() == {"revocations": 0, "quarantine": 0, "households": 0}


def test_revocation_and_household_edits_reach_the_lists(guard_client, guard_core):
    csrf = login(guard_client)
    yes = {"confirm": "yes"}  # destructive edits take a confirmation step (issue 17)
    post(
        guard_client,
        "/guard/lists/revocations/add",
        csrf,
        pass_id="0123456789ab",
        note="lost",
        **yes,
    )
    post(guard_client, "/guard/lists/households/add", csrf, household="9-909", residents="3")
    assert guard_core.lists.current.is_revoked("0123456789ab")
    assert "9-909" in guard_core.lists.current.households
    post(guard_client, "/guard/lists/revocations/remove", csrf, pass_id="0123456789ab", **yes)
    assert not guard_core.lists.current.is_revoked("0123456789ab")


# --- statistics, health, calibration -------------------------------------------------------


def test_statistics_page_draws_its_charts_from_the_daily_report(guard_client, guard_core):
    add_event(guard_core, decision="pass", temp_c=36.5, direction="out", household="1-101")
    guard_core.clock.advance(3600)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.0)
    add_event(guard_core, decision="deny", reasons=("pass_expired",), temp_c=36.7)
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice")
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02&lang=en").text
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart') == 4
    assert "Flow per hour" in page and "Temperature distribution" in page
    assert "Pass has expired" in page
    kpis = re.findall(r'<div class="v">(\d+)</div>', page)
    assert kpis[:4] == ["4", "2", "2", "1"]  # total, passes, denies, fevers
    assert "Decided by the guard" not in page  # an override is not a reason for a deny
    other_day = guard_client.get("/guard/stats?day=2026-02-01&lang=en").text
    assert "No data for this day" in other_day


def test_statistics_page_has_the_day_reports_card_of_the_guards_decisions(
    guard_client, guard_core, monkeypatch
):
    """The day report and the handover count the guards' overrides; the statistics page, where
    the guard looks at the day, had no card for them. It has the day report's (its
    ``overrides``: each kind of guard decision and those that changed the kiosk's), in the
    report's words, from the one report the page reads (no second query)."""
    from ui import views

    deny = add_event(guard_core, decision="deny", reasons=("pass_expired",), direction="out")
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice",
              direction="out", flags=(f"overrides:{deny.seq}",))  # fmt: skip
    passed = add_event(guard_core, decision="pass", direction="in")
    add_event(guard_core, decision="manual_deny", reasons=("guard_override",), operator="alice",
              flags=(f"overrides:{passed.seq}",))  # fmt: skip
    reports = []
    real = views.daily_report  # the report every face reads (``ui.views.gate_report``)
    monkeypatch.setattr(views, "daily_report", lambda *a, **k: reports.append(1) or real(*a, **k))
    login(guard_client)
    cards = {}
    for lang in ("en", "zh-CN"):
        page = guard_client.get(f"/guard/stats?day=2026-03-02&lang={lang}").text
        card = page.split('id="overrides"', 1)[1].split("</section>", 1)[0]
        rows = re.findall(r'<tr data-item="(\w+)"><td>([^<]+)</td><td class="num">(\d+)</td>', card)
        cards[lang] = (re.search(r"<h2>([^<]+)</h2>", card)[1], rows)
    assert len(reports) == 2  # one report a page
    title, rows = cards["en"]
    assert title == "Guard decisions"
    assert rows == [
        ("registrations", "Registered by hand (no kiosk decision)", "0"),
        ("confirmed_denies", "Denies confirmed", "0"),
        ("let_through_over_a_deny", "Let through over a deny", "1"),
        ("stopped_over_a_pass", "Stopped over a pass", "1"),
        ("confirmed_passes", "Passes confirmed", "0"),
        ("overriding", "Overrides (the kiosk&#39;s decision changed)", "2"),
    ]
    title, rows = cards["zh-CN"]
    assert title == "保安人工判定" and ("let_through_over_a_deny", "拒绝后放行", "1") in rows


def test_health_page_names_thermometer_readers_gate_store_clock_last_event_and_disk(
    guard_client, guard_core
):
    add_event(guard_core)
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    for word in ("thermometer", "code reader (camera)", "gate", "event store", "clock"):
        assert word in page
    assert "last event" in page and "2026-03-02 16:30:00" in page  # in the site's time zone
    assert re.search(r"\d+ MB free", page)


def test_health_page_says_when_the_thermometer_is_not_calibrated_for_this_site(
    guard_client, guard_core
):
    """An unfitted model reads some wrists half a degree off, more than the margin the early
    decision keeps from a fever: the guard's device page says so until the site is fitted
    (it said nothing; only the calibration page, which nobody opens, did)."""
    from kiosk.calibration import Calibration, CalibrationPoint, default_path

    assert guard_core.health()["calibration"] == {
        "fitted": False,
        "fitted_at": None,
        "problem": None,
    }
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "temperature calibration" in page and "Not fitted for this site" in page
    now = guard_core.clock.now()
    cal = Calibration()
    for clinical, obj, amb in ((36.5, 32.2, 20.0), (36.9, 33.8, 24.0), (37.1, 35.1, 28.0)):
        cal = cal.with_point(CalibrationPoint(clinical, obj, amb, now.isoformat(), "test"))
    cal.fitted(now)[0].save(default_path(guard_core.data_dir))
    assert guard_core.health()["calibration"]["fitted"] is True
    page = guard_client.get("/guard/health?lang=en").text
    assert "Not fitted for this site" not in page
    assert "fitted for this site on 2026-03-02" in page


def test_calibration_entry_records_a_clinical_pair_in_the_calibration_file(
    guard_client, guard_core
):
    from kiosk.calibration import Calibration, default_path

    csrf = login(guard_client)
    response = post(
        guard_client,
        "/guard/calibration",
        csrf,
        clinical_c="36.8",
        object_c="34.9",
        ambient_c="24.0",
    )
    assert response.status_code == 303 and "err=" not in response.headers["location"]
    cal = Calibration.load(default_path(guard_core.data_dir))
    assert [p.clinical_c for p in cal.points] == [36.8]
    assert cal.points[0].source == "guard"
    bad = post(
        guard_client, "/guard/calibration", csrf, clinical_c="99", object_c="34", ambient_c="20"
    )
    assert "err=" in bad.headers["location"]
    assert len(Calibration.load(default_path(guard_core.data_dir)).points) == 1


def test_console_speaks_the_chosen_language_and_remembers_it(guard_client):
    login(guard_client)
    assert "Guard console" in guard_client.get("/guard?lang=en").text
    assert "Guard console" in guard_client.get("/guard").text  # remembered by cookie
    assert "保安控制台" in guard_client.get("/guard?lang=zh-CN").text


def test_pages_forbid_framing_and_inline_scripts(guard_client):
    login(guard_client)
    csp = guard_client.get("/guard").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp


def test_feed_returns_rows_after_a_seq_newest_first(guard_client, guard_core):
    for _ in range(3):
        add_event(guard_core)
    login(guard_client)
    rows = guard_client.get("/guard/api/feed?after=1").json()["rows"]
    assert [r["seq"] for r in rows] == [3, 2]


def test_alarm_lookback_ignores_alarms_from_long_ago(guard_core):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.0)
    guard_core.clock.advance(timedelta(hours=38).total_seconds())  # past ALARM_LOOKBACK_H
    add_event(guard_core, decision="pass")
    with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
        login(guard_client)
        assert 'class="alarm kind-fever"' not in guard_client.get("/guard").text


def test_the_feed_shows_a_reading_as_the_gate_judged_it(data_dir, clock, monkeypatch):
    """A 37.4 let through under a 37.5 threshold; the office lowered it to 37.3 and
    restarted: the feed marked the passed row as a fever, against its own decision."""
    from guard_support import close_core, make_core

    lowered = parse_config({"thermometer": {"thermometry": {"fever_threshold_c": 37.3}}})
    core = make_core(data_dir, clock, monkeypatch, lowered)
    try:
        add_event(core, decision="pass", temp_c=37.4)
        add_event(core, decision="deny", reasons=("fever",), temp_c=37.4)
        with TestClient(make_app(core), base_url=BASE) as guard_client:
            login(guard_client)
            rows = guard_client.get("/guard/api/feed").json()["rows"]
        assert [(r["decision"], r["fever"]) for r in rows] == [("deny", True), ("pass", False)]
    finally:
        close_core(core)


def test_a_guard_s_pass_over_a_fever_carrying_its_reading_is_marked_a_fever(
    guard_client, guard_core
):
    """A guard lets a resident the kiosk denied for a fever through (home to isolate): the
    manual pass carries the kiosk's reading, and the feed drew it red ("⚠ fever") until
    db05a5ca marked a row a fever by its own reasons only. A guard's decision carrying the
    reading of a row the gate judged a fever is one again (``kiosk.links.judged_fever``, the
    returnee ledger's rule), with the fever's row drawn beside it or not: the live page, the
    feed's API, ``/guard/rows/N`` and the stream's rows. One with the guard's own reading
    (no sensor reading), or over a row that was no fever, is not."""
    import asyncio

    from ui.guard.deps import Guard
    from ui.guard.live import FeedStream

    kiosk_reading = {"temp_c": 38.2, "temp_object_c": 35.1, "temp_ambient_c": 24.0}
    fever = add_event(guard_core, decision="deny", reasons=("fever",), **kiosk_reading).seq

    def guard_pass(about: int, **reading):
        return add_event(guard_core, decision="manual_pass", reasons=("guard_override",),
                         kind="manual", operator="zhou", flags=(f"overrides:{about}",),
                         **reading).seq  # fmt: skip

    over = guard_pass(fever, **kiosk_reading)
    by_hand = guard_pass(fever, temp_c=37.0)
    normal = add_event(guard_core, decision="deny", reasons=("pass_expired",), temp_c=36.9,
                       temp_object_c=34.0, temp_ambient_c=24.0).seq  # fmt: skip
    over_normal = guard_pass(normal, temp_c=36.9, temp_object_c=34.0, temp_ambient_c=24.0)
    marked = {fever: True, over: True, by_hand: False, normal: False, over_normal: False}
    login(guard_client)

    def fevers(rows):
        return {r["seq"]: r["fever"] for r in rows}

    assert fevers(guard_client.get("/guard/api/feed").json()["rows"]) == marked
    after = guard_client.get(f"/guard/api/feed?after={fever}").json()["rows"]
    assert fevers(after) == {s: f for s, f in marked.items() if s != fever}
    live = guard_client.get("/guard").text.split('id="feed"', 1)[1]
    assert live.count('class="fever-mark"') == 2
    alone = guard_client.get(f"/guard/rows/{over}").text.split('id="rows-table"', 1)[1]
    assert alone.count('class="fever-mark"') == 1
    g = Guard.build(guard_core)
    session = g.auth.sessions.read(g.auth.sessions.issue(g.auth.accounts.get("alice"))[0])
    streamed = asyncio.run(FeedStream(g, session, "en", fever).rows())
    rows = [json.loads(line.split("data: ", 1)[1]) for line in streamed]
    assert fevers(rows) == {s: f for s, f in marked.items() if s != fever}


@pytest.mark.parametrize(
    ("camera", "scanner", "reader"),
    [
        ("degraded", "fault", "fault"),
        ("fault", "degraded", "fault"),
        ("degraded", "absent", "absent"),
        ("absent", "fault", "fault"),
        ("ok", "degraded", "degraded"),
        ("ok", "ok", None),
    ],
)
def test_two_readers_count_as_one_reader_in_the_worst_state_of_either(camera, scanner, reader):
    """A camera still starting (degraded) beside a scanner unplugged (fault) is a reader in
    fault: its card stands, and a desk rebuilding from health does not mark it cleared."""
    from ui.views import faults_of

    report = {
        "devices": {
            "reader:camera": {"state": camera, "detail": "x"},
            "reader:scanner": {"state": scanner, "detail": "y"},
        }
    }
    assert faults_of(report).get("reader") == reader


def test_a_reader_in_fault_beside_a_degraded_one_keeps_its_card_when_the_desk_rebuilds(
    guard_core, monkeypatch
):
    """The scanner unplugged raised its card on the bus; the desk, dropped as slow, rebuilds
    from health (faults_now): the card stands and is not marked cleared."""
    real = guard_core.runner.health

    def two_readers() -> dict:
        report = real()
        devices = {k: v for k, v in report["devices"].items() if not k.startswith("reader:")}
        devices["reader:camera"] = {"state": "degraded", "detail": "starting"}
        devices["reader:scanner"] = {"state": "fault", "detail": "unplugged"}
        return {**report, "devices": devices}

    monkeypatch.setattr(guard_core.runner, "health", two_readers)
    with signed_in(make_app(guard_core)) as tablet:
        guard = tablet.app.state.guard
        assert "device:reader" in [a.key for a in guard.standing_alarms()]
        desk = guard.alarms
        raised = {"type": "alarm", "alarm": "reader_fault", "state": "raised", "mono_ns": 1}
        desk.note_message(raised)
        desk.heard_standing(guard.faults_now())
        assert not desk.board.alarms["device:reader"].cleared
