"""The daily report in the office's categories, checked against the event log by an
independent count, and its .xlsx / CSV exports."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from kiosk import lists, stats
from kiosk.clock import FakeClock
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.lists import ListStore
from kiosk.store import EventDraft, EventLog

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 2, 12)
START = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY


@pytest.fixture
def clock():
    return FakeClock(start=START - timedelta(hours=2))  # the evening before


@pytest.fixture
def log(tmp_path, clock):
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


def _random_event(rng: random.Random) -> EventDraft:
    kind = rng.choice(["passage"] * 6 + ["registration", "vehicle", "manual"])
    direction = rng.choice(["in", "out"])
    temp = rng.choice([36.4, 36.8, 37.5, 38.1, None])
    if kind == "vehicle":
        person = {"plate": rng.choice(["京A12345", "京B00001", "沪C77777"]), "driver": "D",
                  "occupants": rng.randint(0, 4)}  # fmt: skip
        return EventDraft(direction=direction, decision="manual_pass", kind=kind,
                          operator="Zhao", person=person)  # fmt: skip
    if kind in ("registration", "manual"):
        decision = rng.choice(["manual_pass", "manual_deny"])
        person = {"name": "Old Li", "unit": "2-301"} if kind == "registration" else None
        return EventDraft(direction=direction, decision=decision, kind=kind, operator="Zhao",
                          person=person, temp_c=temp)  # fmt: skip
    reasons = ("fever",) if temp is not None and temp >= 37.3 else ("ok",)
    decision = "deny" if reasons != ("ok",) else "pass"
    household = rng.choice(["1-101", "1-102", "2-201"])
    return EventDraft(direction=direction, decision=decision, reasons=reasons,
                      household=household, holder="H", temp_c=temp)  # fmt: skip


def _independent_count(log, day):
    """Straight from the log's rows, without the report's SQL."""
    people = {"in": 0, "out": 0}
    registrations = vehicles = occupants = 0
    # A person once however often refused: the pass, else name and dwelling (household and
    # holder, or a registration's typed name and unit).
    feverish = set()
    for e in log.events(limit=10000):
        if datetime.fromisoformat(e["ts"]).astimezone(TZ).date() != day:
            continue
        if "fever" in e["reasons"]:
            typed = e["person"] if isinstance(e["person"], dict) else {}
            who, where = e["holder"] or typed.get("name"), e["household"] or typed.get("unit")
            feverish.add(e["pass_id"] or ((who, where) if who and where else e["seq"]))
        if e["kind"] == "vehicle":
            vehicles += 1
            occupants += e["person"]["occupants"]
        elif e["decision"] in ("pass", "manual_pass"):
            people[e["direction"]] += 1
        registrations += e["kind"] == "registration"
    return people, len(feverish), registrations, vehicles, occupants


def test_a_days_report_matches_an_independent_count_of_the_log(log, clock):
    rng = random.Random(18)
    led = Ledgers.build(log, clock, TZ, fever_threshold_c=37.3)
    list_store = ListStore(log, clock)
    list_store.load()
    list_store.add_quarantine("5-702", None, DAY - timedelta(days=3), DAY + timedelta(days=10), "m")
    list_store.add_quarantine("6-101", "Li", DAY, DAY, "m")
    list_store.add_quarantine("7-101", None, DAY - timedelta(days=20), DAY - timedelta(days=6), "m")
    led.vehicles.apply(
        led.vehicles.plan_import("plate,household\n京A12345,1-101\n".encode(), "v.csv"), "m"
    )
    log.append(_random_event(rng))  # the evening before: not this day
    old = led.observation.register(name="Wang", household="3-701", phone="1", origin="Wuhan",
                                   date_back=DAY - timedelta(days=1), actor="m")  # fmt: skip
    clock.set_wall(START + timedelta(hours=7))
    for _ in range(60):
        log.append(_random_event(rng))
        clock.advance(rng.randint(60, 900))
    new = led.observation.register(name="Sun", household="3-702", phone="1", origin="Xiaogan",
                                   date_back=DAY, actor="m")  # fmt: skip
    led.observation.record_temperature(new.id, 37.8, actor="helper")
    led.observation.set_status(old.id, "transferred", actor="m")
    r1 = led.services.open("5-702", "food", "g", confined=True)
    led.services.open("5-702", "medicine", "g", confined=True)
    led.services.done(r1.id, "helper")
    clock.set_wall(START + timedelta(days=1, hours=1))  # next day
    log.append(_random_event(rng))

    report = stats.compute_report(log.reader(), DAY, TZ)
    got = report["community"]
    people, fevers, registrations, vehicles, occupants = _independent_count(log, DAY)
    assert got["people"] == people
    assert got["fevers"] == {"gate": fevers, "returnee_checks": 1}
    assert got["registrations"] == registrations
    assert got["vehicles"]["registrations"] == vehicles
    assert got["vehicles"]["occupants"] == occupants
    plates = [e["person"]["plate"] for e in log.events(limit=10000) if e["kind"] == "vehicle"
              and datetime.fromisoformat(e["ts"]).astimezone(TZ).date() == DAY]  # fmt: skip
    assert got["vehicles"]["unknown_plates"] == sum(p != "京A12345" for p in plates)
    assert got["returnees"] == {"new": 1, "observing": 1, "cleared": 0, "escalated": 0,
                                "transferred": 1}  # fmt: skip
    assert got["quarantined_households"] == 2
    assert got["service_requests"] == {"opened": 2, "done": 1, "open_at_end": 1,
                                       "by_kind": {"food": 1, "medicine": 1}}  # fmt: skip
    assert sum(people.values()) > 10 and vehicles > 0 and registrations > 0  # a real day
    assert 0 < fevers < report["fever_alarms"]["count"]  # some refused twice for a fever

    sheet = openpyxl.load_workbook(io.BytesIO(stats.report_file(report, "xlsx")))["daily report"]
    cells = {(r[0], r[1]): r[2] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells[("people", "in")] == people["in"] and cells[("people", "out")] == people["out"]
    assert cells[("fevers", "gate")] == fevers
    assert cells[("returnees", "transferred")] == 1
    assert cells[("service_requests", "by_kind.food")] == 1
    assert cells[("registrations", None)] == registrations
    rows = list(csv.reader(io.StringIO(stats.report_file(report, "csv").decode("utf-8-sig"))))
    assert rows[0] == ["category", "item", "value"]
    assert ["vehicles", "registrations", str(vehicles)] in rows
    assert "Wang" not in json.dumps(report) and "3-701" not in json.dumps(report)


def test_a_frozen_day_keeps_its_categories_after_the_purge(log, clock):
    from kiosk.retention import purge

    clock.set_wall(START + timedelta(hours=9))
    log.append(EventDraft(direction="in", decision="manual_pass", kind="vehicle",
                          operator="Z", person={"plate": "京A12345", "occupants": 3}))  # fmt: skip
    before = stats.daily_report(log.reader(), DAY, TZ)["community"]
    clock.set_wall(START + timedelta(days=40))
    purge(log, 30, clock.now(), tz=TZ)
    assert stats.daily_report(log.reader(), DAY, TZ)["community"] == before
    assert before["vehicles"]["occupants"] == 3


def test_without_the_ledgers_their_figures_are_unknown_not_zero(store):
    report = stats.compute_report(store.reader(), DAY, TZ)["community"]
    assert report["returnees"] is None and report["service_requests"] is None
    assert report["quarantined_households"] is None and report["registrations"] == 0


def test_a_cell_with_a_lone_carriage_return_stays_in_its_row_of_the_csv():
    """An old Mac line end (a lone CR) or a CR LF inside text: a spreadsheet (and Python's
    reader) splits a row at a bare one, so the shared writer quotes every such cell."""
    from kiosk.sheets import write_csv

    rows = [["category", "item", "value"], ["ledgers", "gates", "gate-1\rgate-2"],
            ["notes", "a\r\nb", 3], ["passages", "denied", 1]]  # fmt: skip
    text = write_csv(rows)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        [str(c) for c in row] for row in rows
    ]
    assert "passages,denied,1" in text.splitlines()  # plain cells stay unquoted
