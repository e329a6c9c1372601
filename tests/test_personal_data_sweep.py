"""Where a resident's personal data lives, and whether it is gone once retention says so.

One named resident goes through everything a kiosk records about a person: a pass issued at
the console, a fever at the gate, a guard's override with a note, a registration of the
person (with a phone number) and of a car (a plate), the guard's CSV export, the office's
pull with ``logs:personal``, a returnee record with a door reading, a service request. Then
the clock moves past every retention period and the purge runs (the daemon's hourly one, or
``kiosk purge``). Nothing may be left that names the resident: no table row of the
database, no byte of any file in the data dir (the database, its WAL and shared memory: freed
pages included), no log record, and no page of the guard console (docs/privacy.md, "Where
personal data lives"). All on the fakes and a FakeClock; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, add_event, decided, make_app, post, signed_in

from checkpoint.app import Core, Daemon
from kiosk.clock import FakeClock

NAME = "Marlowe Qiuxiang"
HOUSEHOLD = "7-1404"
PHONE = "13912345678"
PLATE = "京Q7Z9K8"
GATE_PASS = "feedfacecafe"
#: What names the resident; the pass issued at the console joins it (its id is drawn).
NEEDLES = [NAME, "Qiuxiang", HOUSEHOLD, PHONE, PLATE, GATE_PASS]
START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
#: Past the default retention (30 days) after the returnee's 14 days of observation ended.
LATER = timedelta(days=14 + 30 + 2)
PAGES = (
    "/guard",
    "/guard/api/feed",
    "/guard/passes",
    "/guard/register",
    "/guard/lists",
    "/guard/stats",
    f"/guard/export.csv?day={START.date()}",
    "/guard/community",
    "/guard/community/returnees",
    "/guard/community/services",
    "/guard/passage/1",
    "/guard/passage/2",
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


def found_in(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def see_the_resident(core: Core, app, clock: FakeClock) -> None:
    """Everything the kiosk records about one named person, as it happens at a gate."""
    with signed_in(app) as guard, signed_in(app, "root", ADMIN_PW) as admin:
        issued = post(guard, "/guard/passes", guard.csrf, household=HOUSEHOLD, holder=NAME, days=1)
        assert issued.status_code == 200 and NAME in issued.text
        (pass_id,) = re.findall(r'<tr data-pass="([0-9a-f]{12})"', guard.get("/guard/passes").text)
        NEEDLES[6:] = [pass_id]
        add_event(
            core,
            decision="deny",
            reasons=("fever",),
            holder=NAME,
            household=HOUSEHOLD,
            pass_id=GATE_PASS,
            temp_c=38.6,
        )
        assert found_in(guard.get("/guard").text)  # the fever's alarm card names the person
        fever = str(core.store.last_seq)
        note = f"known to the guard: {NAME}, tel {PHONE}"
        steps = (
            ("/guard/manual", {"decision": "pass", "subject": fever, "reason": note}),
            (
                "/guard/register/person",
                {"name": NAME, "unit": HOUSEHOLD, "phone": PHONE, "reason": "visit"},
            ),
            (
                "/guard/register/vehicle",
                {"plate": PLATE, "driver": NAME, "driver_temp": "36.4", "reason": "moving"},
            ),
        )
        for path, form in steps:
            with decided(guard, core):
                done = post(guard, path, guard.csrf, temp_c="36.5", **form)
            assert done.status_code == 303 and "err" not in done.headers["location"], path
        lists = (
            ("revocations", {"pass_id": pass_id, "note": f"{NAME} lost it"}),
            (
                "quarantine",
                {
                    "household": HOUSEHOLD,
                    "holder": NAME,
                    "until": str(START.date() + timedelta(days=14)),
                    "note": f"{NAME} tested positive",
                },
            ),
        )
        for which, form in lists:
            edited = post(guard, f"/guard/lists/{which}/add", guard.csrf, confirm="yes", **form)
            assert edited.status_code == 303 and "err" not in edited.headers["location"], which
        assert NAME in guard.get("/guard/export.csv").text
        assert NAME in admin.get("/guard/export.csv").text
    ledger = core.ledgers.observation
    person = ledger.register(
        name=NAME,
        household=HOUSEHOLD,
        phone=PHONE,
        origin="Wuhan",
        date_back=clock.now().date(),
        actor="alice",
        note=f"{NAME} coughs",
    )
    ledger.record_temperature(person.id, 38.2, "alice")
    desk = core.ledgers.services
    request = desk.open(HOUSEHOLD, "food", "alice", confined=True, note=f"{NAME}: {PHONE}")
    desk.done(request.id, "alice")
    _office_pull(core)
    clock.advance(timedelta(days=15).total_seconds())
    ledger.set_status(person.id, "cleared", "alice")


def _office_pull(core: Core) -> None:
    from ui.app import create_app

    _, secret = core.tokens.create(["logs:read", "logs:personal"], name="office")
    fields = {"fields": "holder,household,pass_id,person"}
    with TestClient(create_app(core)) as api:
        for path in ("/api/v1/events", "/api/v1/events.csv"):
            pulled = api.get(path, params=fields, headers={"Authorization": f"Bearer {secret}"})
            assert pulled.status_code == 200 and NAME in pulled.text


def rows_naming(db: Path) -> dict[str, list[str]]:
    """Each table of ``db`` with the needles some row of it holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type='table'")]
        out = {}
        for table in tables:
            rows = conn.execute(f'select * from "{table}"').fetchall()
            hits = found_in(json.dumps(rows, default=str, ensure_ascii=False))
            if hits:
                out[table] = hits
        return out
    finally:
        conn.close()


def files_naming(data_dir: Path) -> dict[str, list[str]]:
    """Each file of the data dir whose bytes hold a needle (UTF-8), freed pages included."""
    out = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in NEEDLES if n.encode() in data]
            if hits:
                out[str(path.relative_to(data_dir))] = hits
    return out


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = []
    for record in caplog.records:
        text = record.getMessage() + json.dumps(vars(record), default=str, ensure_ascii=False)
        if found_in(text):
            lines.append(text[:300])
    return lines


@pytest.fixture
def seen(guard_core: Core, clock: FakeClock, caplog) -> Iterator[tuple[Core, object]]:
    caplog.set_level(logging.DEBUG)
    app = make_app(guard_core)
    see_the_resident(guard_core, app, clock)
    assert rows_naming(guard_core.data_dir / "kiosk.db")  # the data is there before
    yield guard_core, app


@pytest.mark.slow
def test_the_daemons_purge_leaves_no_copy_of_the_resident_in_the_data_dir(
    seen, clock, caplog, data_dir
):
    core, _ = seen
    clock.advance(LATER.total_seconds())
    add_event(core, holder="Someone Else", household="1-101")  # today's passage stays
    Daemon(core).purge_once()
    assert rows_naming(data_dir / "kiosk.db") == {}
    assert files_naming(data_dir) == {}
    assert logged(caplog) == []


@pytest.mark.slow
def test_kiosk_purge_leaves_no_copy_of_the_resident_in_the_data_dir(
    seen, clock, caplog, capsys, data_dir, monkeypatch
):
    from checkpoint.cli import main
    from drivers import clocksync

    core, _ = seen
    clock.advance(LATER.total_seconds())
    add_event(core, holder="Someone Else", household="1-101")
    then = FakeClock(start=clock.now())
    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: then)
    # beside the running daemon, as kiosk-purge.timer runs it
    assert main(["purge", "--older-than", "30", "--db", str(data_dir / "kiosk.db")]) == 0
    assert json.loads(capsys.readouterr().out)["events_purged"] == 4
    assert rows_naming(data_dir / "kiosk.db") == {}
    assert files_naming(data_dir) == {}
    assert logged(caplog) == []


@pytest.mark.slow
def test_no_page_of_the_console_names_the_resident_after_the_purge(seen, clock, caplog):
    """The console kept the fever's alarm card (in the daemon's memory) naming the person
    for as long as the daemon ran, after the purge had emptied the event it came from."""
    core, app = seen
    clock.advance(LATER.total_seconds())
    Daemon(core).purge_once()
    with signed_in(app) as guard, signed_in(app, "root", ADMIN_PW) as admin:
        for who, client in (("guard", guard), ("admin", admin)):
            shown = {p: found_in(client.get(p).text) for p in PAGES}
            assert {p: hits for p, hits in shown.items() if hits} == {}, who
    assert logged(caplog) == []


@pytest.mark.slow
def test_an_office_token_without_logs_personal_reads_no_name_in_a_guards_note(seen):
    """The guard's override note repeated the holder's name ("known to the guard: Marlowe
    Qiuxiang"): a ``logs:read`` token got ``holder: "M."`` and the full name in the note."""
    from ui.app import create_app

    core, _ = seen
    _, secret = core.tokens.create(["logs:read"], name="clerk")
    with TestClient(create_app(core)) as api:
        for path in ("/api/v1/events", "/api/v1/events.csv"):
            got = api.get(path, headers={"Authorization": f"Bearer {secret}"})
            assert got.status_code == 200 and found_in(got.text) == [], path


def test_a_note_is_masked_as_the_fields_it_repeats():
    from kiosk.privacy import mask_event

    event = {
        "holder": "Li Wei",
        "household": "3-201",
        "pass_id": "c0ffee000001",
        "reasons": ["guard_override"],
        "person": {
            "plate": "京A12345",
            "passengers": [{"name": "Zhao Gang", "temp_c": 36.4}],
            "occupants": 1,
            "note": "li wei's car 京A12345 with Zhao Gang, for 3-201, pass c0ffee000001",
        },
    }
    masked = mask_event(event)
    assert masked["person"]["note"] == "L.'s car *****45 with Z., for ***01, pass **********01"
    assert mask_event(event, {"person.note"})["person"]["note"] == event["person"]["note"]
    assert mask_event({"person": {"occupants": 3, "note": "x"}})["person"]["note"] == "x"
    # the codes stay what they say: the feed reads the overridden passage from the flag
    coded = mask_event({"household": "101", "flags": ["overrides:101"], "person": {"note": "a"}})
    assert coded["flags"] == ["overrides:101"] and coded["household"] == "*01"


def _observed_household(core: Core) -> None:
    ended = START.date() + timedelta(days=14)
    core.lists.set_household(HOUSEHOLD, "admin", residents=3, observation_until=ended)


def _import_residents(core: Core) -> list[tuple]:
    """An admin's sheet of ``household,residents`` (no observation column: the dates in
    force are kept), then the household ledger as the database holds it."""
    from kiosk.listimport import apply_list_import, plan_list_import

    sheet = f"household,residents\n{HOUSEHOLD},4\n".encode()
    plan = plan_list_import(sheet, "households.csv", core.lists.current, "households")
    apply_list_import(plan, core.lists, "root")
    rows = core.store.reader().execute(
        "select household, residents, observation_until from list_households"
    )
    return rows.fetchall()


def test_a_purged_observation_date_is_not_put_back_by_the_next_import(guard_core, clock):
    """The daemon's purge emptied the household's ended observation (a health status) in the
    database, but the lists' snapshot in memory kept it, and the next import of the
    household sheet wrote it back from there."""
    _observed_household(guard_core)
    clock.advance(LATER.total_seconds())
    Daemon(guard_core).purge_once()
    assert guard_core.lists.current.households[HOUSEHOLD].observation_until is None
    assert _import_residents(guard_core) == [(HOUSEHOLD, 4, None)]


def test_the_daemon_forgets_what_kiosk_purge_took_from_the_lists(
    guard_core, clock, data_dir, monkeypatch, capsys
):
    from checkpoint.cli import main
    from drivers import clocksync

    _observed_household(guard_core)
    guard_core.lists.revoke("c0ffee000001", f"{NAME} lost it", "alice")
    clock.advance(LATER.total_seconds())
    then = FakeClock(start=clock.now())
    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: then)
    assert main(["purge", "--older-than", "30", "--db", str(data_dir / "kiosk.db")]) == 0
    assert json.loads(capsys.readouterr().out)["revocation_reasons_purged"] == 1
    Daemon(guard_core).lists_once()  # the daemon's check, every LISTS_CHECK_S
    current = guard_core.lists.current
    assert current.revocations["c0ffee000001"].reason == ""
    assert current.households[HOUSEHOLD].observation_until is None
