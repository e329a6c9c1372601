"""Personal data in the ledgers around the gate: masked by role, never in the audit chain or
the logs, gone after retention."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk import lists, stats
from kiosk.clock import FakeClock
from kiosk.community import mask_record
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.retention import purge
from kiosk.store import EventLog

NAME, PHONE, ORIGIN, NOTE = "Wang Fangfang", "13812345678", "Wuhan Hankou", "call 13987654321"
HOUSEHOLD, PLATE = "3-2-701", "京A12345"
PERSONAL = (NAME, PHONE, ORIGIN, "13987654321", HOUSEHOLD)


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 2, 10, 1, 0, tzinfo=UTC))


@pytest.fixture
def log(tmp_path, clock):
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


@pytest.fixture
def filled(log, clock, caplog):
    caplog.set_level(logging.DEBUG)
    led = Ledgers.build(log, clock, "Asia/Shanghai", 37.3)
    person = led.observation.register(
        name=NAME, household=HOUSEHOLD, phone=PHONE, origin=ORIGIN, date_back=date(2026, 2, 10),
        actor="manager", note=NOTE, days=3,
    )  # fmt: skip
    led.observation.record_temperature(person.id, 38.0, actor="helper")
    request = led.services.open(HOUSEHOLD, "medicine", "guard", confined=True, note=NOTE)
    led.services.done(request.id, "helper")
    data = f"plate,household\n{PLATE},{HOUSEHOLD}\n".encode()
    led.vehicles.apply(led.vehicles.plan_import(data, "v.csv"), "manager")
    led.compound.apply(
        led.compound.plan_import(f"building,floor,household\n3,7,{HOUSEHOLD}\n".encode(), "m.csv"),
        "manager",
    )
    led.roster.add_shift("gate-1", "Zhao", clock.now(), clock.now() + timedelta(hours=8), "m")
    led.roster.open_handover("gate-1", "Zhao", "Qian")
    led.observation.set_status(person.id, "escalated", actor="manager")
    return led, person, request


def test_no_personal_field_reaches_the_audit_chain_or_the_logs(filled, log, caplog):
    details = json.dumps([a["detail"] for a in log.audits(limit=200)], ensure_ascii=False)
    for secret in (*PERSONAL, PLATE):
        assert secret not in details
        assert secret not in caplog.text
    led, person, request = filled
    assert all(s not in repr(person) + repr(request) for s in PERSONAL)


@pytest.mark.parametrize(
    ("role", "name", "phone", "origin", "note", "household"),
    [
        ("admin", NAME, PHONE, ORIGIN, NOTE, HOUSEHOLD),
        ("guard", NAME, "138****5678", ORIGIN, "call 139****4321", HOUSEHOLD),
        ("office", "W.", "138****5678", "*", "*", "*****01"),
    ],
)
def test_a_returnee_is_masked_by_role(filled, role, name, phone, origin, note, household):
    led, person, _ = filled
    shown = mask_record(led.observation.person(person.id).to_dict(), role)
    assert (shown["name"], shown["phone"], shown["origin"], shown["note"]) == (
        name, phone, origin, note,
    )  # fmt: skip
    assert shown["household"] == household
    assert shown["status"] == "escalated"  # not personal: always shown


def test_a_service_request_is_masked_by_role(filled):
    led, _, request = filled
    office = mask_record(led.services.get(request.id).to_dict(), "office")
    assert office["note"] == "*" and "701" not in office["household"][:-2]
    assert office["taken_by"] == "H." and office["kind"] == "medicine"


def test_retention_forgets_the_ledgers_personal_fields(filled, log, clock):
    led, person, request = filled
    clock.set_wall(datetime(2026, 4, 1, tzinfo=UTC))
    result = purge(log, 30, clock.now(), tz="Asia/Shanghai")
    assert result.ledger_rows_purged == {"returnees": 1, "service_requests": 1, "peer_passages": 0}
    gone = led.observation.person(person.id)
    assert (gone.name, gone.phone, gone.origin, gone.note) == ("", "", "", "")
    assert led.observation.checks(person.id) == []
    assert led.services.get(request.id).note == ""
    rows = json.dumps(
        [list(log.reader().query(f"select * from {t}"))  # noqa: S608
         for t in ("obs_people", "obs_checks", "service_requests")],
        ensure_ascii=False,
    )  # fmt: skip
    for secret in PERSONAL:
        assert secret not in rows
    assert log.verify().ok


def test_what_the_office_fetches_from_the_ledgers_is_counts_only(filled, log):
    """The collector keeps only ``office.gatereports.ledger_figures`` of the gate's report:
    counts, never a name, phone, household, plate or note; anything else is refused."""
    from office.gatereports import ledger_figures

    report = stats.compute_report(log.reader(), date(2026, 2, 10), "Asia/Shanghai")
    figures = ledger_figures(report["community"])
    assert figures["returnees"]["new"] == 1 and figures["service_requests"]["done"] == 1
    text = json.dumps(figures, ensure_ascii=False)
    for secret in (*PERSONAL, PLATE, "Wang", "helper", "manager"):
        assert secret not in text
    section = report["community"]
    for smuggled in (NAME, [PHONE], {"name": 1}, -1, True, 1.5):
        bad = json.loads(json.dumps(section))
        bad["returnees"]["new"] = smuggled
        with pytest.raises(ValueError, match="returnees"):
            ledger_figures(bad)


def test_retention_forgets_the_alarms_closed_for_a_forgotten_returnee(log, clock):
    """The guard closed a returnee's fever alarm (``obs_acks``: the record's id, the day,
    ``fever``). Retention emptied the record and deleted its temperatures, but the ack stayed
    for ever, saying that returnee had a fever that day, and every view of the alarms read all
    acks ever written; they go with the record's checks, and the alarms read only the acks of
    those still observed."""
    led = Ledgers.build(log, clock, "Asia/Shanghai", 37.3)
    obs = led.observation
    person = obs.register(
        name=NAME, household=HOUSEHOLD, phone=PHONE, origin=ORIGIN, date_back=date(2026, 2, 10),
        actor="manager", days=3,
    )  # fmt: skip
    obs.record_temperature(person.id, 38.4, actor="helper")
    (fever,) = [a for a in obs.alarms() if a.kind == "fever"]
    obs.acknowledge(person.id, fever.day, "fever", "guard Zhao")
    assert [a for a in obs.alarms() if a.kind == "fever"] == []
    obs.set_status(person.id, "cleared", actor="manager")
    clock.set_wall(datetime(2026, 4, 1, tzinfo=UTC))
    purge(log, 30, clock.now(), tz="Asia/Shanghai")
    acks = log.reader().execute("select * from obs_acks where person_id = ?", [person.id])
    assert acks.fetchall() == []
    assert log.verify().ok
