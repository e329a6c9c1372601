"""Personal data by role, as a guard on shift or an admin in the office meets it: what each
page shows of phone and ID numbers typed into free text. Each test names what went wrong."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from guard_support import BASE, console_fixtures, decided, post

from kiosk import vehicles
from kiosk.vehicles import VehicleList
from ui.app import create_app

PHONE = "13912345678"
RESIDENT_ID = "11010519491231002X"

clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


def test_a_guard_sees_no_phone_or_id_number_typed_into_a_list_note(core, alice, admin):
    """Before: /guard/lists showed the lists' notes and revocation reasons as stored, so a
    phone or ID number typed into one ("lost card, owner tel 139...") was shown in full to
    every guard, though a guard sees phone and ID numbers masked everywhere else."""
    lists = core.lists
    lists.set_household("G-707", "root", 3, note=f"owner ID {RESIDENT_ID}")
    lists.revoke("abcdef123456", f"lost card, owner tel {PHONE}", "root")
    lists.add_quarantine("F-606", None, "2026-03-01", "2026-03-14", "root", f"family {PHONE}")
    guard_page = alice.get("/guard/lists").text
    assert "G-707" in guard_page and "abcdef123456" in guard_page and "F-606" in guard_page
    assert PHONE not in guard_page and RESIDENT_ID not in guard_page
    assert "139****5678" in guard_page and "110*************2X" in guard_page
    admin_page = admin.get("/guard/lists").text
    assert PHONE in admin_page and RESIDENT_ID in admin_page


def test_the_office_gets_a_resident_cars_household_masked_like_every_household(core, alice):
    """Before: a vehicle registration keeps the household the plate is listed for
    (``person.resident_of``), and the masking knew only ``unit`` and ``plate`` as codes: the
    office's ``logs:read`` export (JSON, CSV, the pull) carried the household in full beside
    the masked plate, though it gets every other household as its last two characters."""
    core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(core.store, core.clock)
    listed = "plate,household\n京A12345,HH-3-402\n".encode()
    cars.apply(cars.plan_import(listed, "cars.csv"), "root")
    form = {"plate": "京A12345", "driver": "Zhao Gang", "driver_temp": "36.4", "reason": "搬家"}
    with decided(alice, core):
        assert post(alice, "/guard/register/vehicle", alice.csrf, **form).status_code == 303
    assert core.store.events()[-1]["person"]["resident_of"] == "HH-3-402"
    _, token = core.tokens.create(["logs:read"])
    api = TestClient(create_app(core))
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/events", "/api/v1/events.csv"):
        body = api.get(path, headers=headers).text
        assert "12345" not in body and "Zhao Gang" not in body
        assert "HH-3-402" not in body and "*02" in body
    # The guard, who sees households, still sees whose car it is.
    assert "HH-3-402" in alice.get("/guard/register").text


def test_the_office_gets_no_passenger_name_a_guard_repeated_in_a_car_note(core, alice):
    """Before: a note repeating a value of the record is masked as that value is, but the
    masking looked for passengers' names in ``person.occupants``, a count, while the console
    keeps them in ``person.passengers``: "taking Shangguan Lin home" reached the office's
    ``logs:read`` export (JSON, CSV) with the passenger's name in clear."""
    form = {
        "plate": "京B54321",
        "driver": "Sima Jia",
        "driver_temp": "36.5",
        "p1_name": "Shangguan Lin",
        "p1_temp": "36.4",
        "reason": "taking Shangguan Lin home; Sima Jia waits",
    }
    with decided(alice, core):
        assert post(alice, "/guard/register/vehicle", alice.csrf, **form).status_code == 303
    person = core.store.events()[-1]["person"]
    assert person["passengers"] == [{"name": "Shangguan Lin", "temp_c": 36.4}]
    _, token = core.tokens.create(["logs:read"])
    api = TestClient(create_app(core))
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/events", "/api/v1/events.csv"):
        body = api.get(path, headers=headers).text
        assert "Shangguan" not in body and "Sima Jia" not in body, path
        assert "taking S. home; S. waits" in body, path
    # The guard, who sees passengers' names, reads the note as typed.
    assert "taking Shangguan Lin home; Sima Jia waits" in alice.get("/guard/export.csv").text


def sign_in_attempt(app, name: str, password: str) -> int:
    client = TestClient(app, base_url=BASE)
    page = client.get("/guard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    data = {"name": name, "password": password, "csrf": token}
    return client.post("/guard/login", data=data, headers={"Origin": BASE}).status_code


def test_a_password_typed_into_the_name_field_is_not_kept_in_the_audit_log(core, app):
    """Before: a failed sign-in wrote whatever was typed as the name into the audit row's
    ``actor``, a column no purge ever empties: a guard who typed the password into the name
    field (on the guard phone, a common slip) left it in the chained audit log for good."""
    assert sign_in_attempt(app, "Gate2026pw", "") == 401
    assert sign_in_attempt(app, "alice", "wrong") == 401
    failed = [a for a in core.store.audits() if a["action"] == "guard_login_failed"]
    assert "Gate2026pw" not in json.dumps(core.store.audits())
    assert [a["actor"] for a in failed] == ["-", "alice"]  # a real account is still named


def test_a_refused_service_request_does_not_put_the_household_and_its_status_in_a_url(alice):
    """Before: a request for a household neither quarantined nor observed was refused with
    "household 1-101 is neither quarantined nor under observation today", and the console
    carries a problem in the redirect's ``?err=``: the dwelling and its health status went
    into the guard phone's browser history, which the household check's POST exists to
    avoid ("a dwelling and its quarantine never appear in a URL")."""
    refused = post(alice, "/guard/community/services", alice.csrf, household="1-101", kind="food")
    # Now no redirect at all: the form comes back as typed on the answer itself.
    assert refused.status_code == 400 and "location" not in refused.headers
    assert "既不在隔离也不在观察期" in refused.text
