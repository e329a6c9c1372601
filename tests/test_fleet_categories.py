"""``kiosk fleet report``: the office's categories rolled up across two gates (real
PostgreSQL, as in test_fleet_pg.py)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import psycopg
import pytest
from pgfixture import Network, make_kiosk
from support import kiosk_api
from test_fleet_pg import pull_pg

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.store import EventDraft
from office.collector import Collector
from office.district import district_report
from office.gatereports import LEDGER_PATHS, MAX_BODY_BYTES, fetch_report
from office.pull import PullError

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)


def _day_at_a_gate(core, passes_in, passes_out, fevers, registrations, cars):
    log = core.store
    for i in range(passes_in + passes_out):
        log.append(
            EventDraft(
                direction="in" if i < passes_in else "out",
                decision="pass",
                household="3-201",
                holder="Li Lei",
                temp_c=36.5,
            )
        )
    for _ in range(fevers):
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.5))
    for _ in range(registrations):
        log.append(
            EventDraft(
                direction="in",
                decision="manual_pass",
                kind="registration",
                operator="Zhao",
                person={"name": "Old Li", "phone": "-"},
            )
        )
    for occupants in cars:
        log.append(
            EventDraft(
                direction="in",
                decision="manual_pass",
                kind="vehicle",
                operator="Zhao",
                person={"plate": "京A12345", "occupants": occupants},
            )
        )
        core.clock.advance(60)


def test_fleet_report_rolls_the_office_categories_up_across_two_gates(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    east = make_kiosk(tmp_path / "e.db", "gate-east", FakeClock(start=start))
    west = make_kiosk(tmp_path / "w.db", "gate-west", FakeClock(start=start))
    try:
        _day_at_a_gate(east, 5, 3, 1, 2, [2, 3])
        _day_at_a_gate(west, 4, 6, 2, 1, [1])
        for core in (east, west):
            pull_pg(f"http://{core.config.site.kiosk_id}", core.token, pg_dsn, Network(core))
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
        community = report["community"]
        # People in: the passes and the people registered by hand (3) who came in.
        assert community["people"] == {"in": 12, "out": 9}
        assert community["fevers"] == {"gate": 3, "returnee_checks": None}
        assert community["registrations"] == 3
        assert community["vehicles"] == {"registrations": 3, "occupants": 6, "unknown_plates": None}
        # The ledgers stay at the gates: unknown centrally, never a made-up zero.
        assert community["returnees"] is None and community["service_requests"] is None
        per_gate = {g["kiosk_id"]: g["community"] for g in report["by_gate"]}
        assert per_gate["gate-east"]["people"] == {"in": 7, "out": 3}
        assert per_gate["gate-west"]["vehicles"]["occupants"] == 1
        assert per_gate["gate-east"]["registrations"] + per_gate["gate-west"]["registrations"] == 3

        monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
        assert main(["fleet", "report", "--day", "2026-03-02", "--tz", "Asia/Shanghai"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["community"] == community
    finally:
        east.store.close()
        west.store.close()


# --------------------------------------------------------------------------- the gates' ledgers

TZ = ZoneInfo("Asia/Shanghai")


def _local_day(ts):
    return datetime.fromisoformat(ts).astimezone(TZ).date()


def _held_at(core, day):
    """What the gate's ledgers hold for ``day``, counted from the raw rows in Python (not by
    the report's SQL): the independent count the district's figures are checked against."""
    db = core.store.reader()
    people = list(db.query("select * from obs_people"))
    history = sorted(db.query("select * from obs_status"), key=lambda r: (r["at"], r["id"]))
    last = {}
    for change in history:
        if _local_day(change["at"]) <= day:
            last[change["person_id"]] = change["status"]
    changes = Counter(
        c["status"] for c in history if _local_day(c["at"]) == day and c["status"] != "observing"
    )
    returnees = {
        "new": sum(_local_day(p["created_at"]) == day for p in people),
        "observing": sum(
            last.get(p["id"]) == "observing"
            and p["date_back"] <= day.isoformat() <= p["observation_until"]
            for p in people
        ),
        **{s: changes[s] for s in ("cleared", "escalated", "transferred")},
    }
    checks = [c for c in db.query("select * from obs_checks") if c["day"] == day.isoformat()]
    homes = {
        q["household"]
        for q in db.query("select * from list_quarantine")
        if q["from_date"] <= day.isoformat() <= q["until_date"]
    }
    requests = list(db.query("select * from service_requests"))
    opened = [r for r in requests if _local_day(r["opened_at"]) == day]
    done = [r for r in requests if r["state"] == "done" and _local_day(r["done_at"]) == day]
    still_open = [
        r
        for r in requests
        if _local_day(r["opened_at"]) <= day
        and (r["state"] in ("open", "taken") or _local_day(r["done_at"]) > day)
    ]
    known = {p["plate"] for p in db.query("select * from resident_vehicles")}
    plates = [
        e["person"]["plate"]
        for e in core.store.events(limit=10000)
        if e["kind"] == "vehicle" and _local_day(e["ts"]) == day
    ]
    return {
        "fevers": {"returnee_checks": sum(c["fever"] for c in checks)},
        "returnees": returnees,
        "quarantined_households": len(homes),
        "service_requests": {
            "opened": len(opened),
            "done": len(done),
            "open_at_end": len(still_open),
            "by_kind": dict(Counter(r["kind"] for r in opened)),
        },
        "vehicles": {"unknown_plates": sum(p not in known for p in plates)},
    }


def _ledgers_of_a_gate(core, returnees, homes, requests, plates):
    """A day of the gate's ledgers; ``returnees`` are (status at the end, or None)."""
    led, clock = core.ledgers, core.clock
    led.vehicles.apply(
        led.vehicles.plan_import(("plate,household\n" + "".join(
            f"{p},1-101\n" for p in plates)).encode(), "v.csv"), "manager",
    )  # fmt: skip
    for i, home in enumerate(homes):
        core.list_store.add_quarantine(home, None, DAY - timedelta(days=i), DAY, "manager")
    for i, status in enumerate(returnees):
        person = led.observation.register(
            name=f"Returnee {i}", household=f"9-{i}01", phone="13912345678", origin="Wuhan",
            date_back=DAY, actor="manager",
        )  # fmt: skip
        clock.advance(300)
        led.observation.record_temperature(person.id, 37.9 if i == 0 else 36.6, "helper")
        if status:
            led.observation.set_status(person.id, status, "manager")
    for i, kind in enumerate(requests):
        request = led.services.open(homes[0], kind, "guard", confined=True)
        clock.advance(120)
        if i % 2 == 0:
            led.services.done(request.id, "helper")


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_fleet_report_sums_the_gates_ledgers_and_names_a_gate_that_did_not_answer(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    """Returnees, quarantined households, service requests, the helpers' fever checks and
    unknown plates come from each gate's ledgers (through the collector, with the pull's
    token) and are summed across gates; a gate whose report cannot be had is missing, not 0."""
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai on DAY
    cores = []
    for name in ("gate-east", "gate-west", "gate-north"):
        core = kiosk_api(tmp_path / f"{name}.db", name, FakeClock(start=start), ledgers=True,
                         scopes=("logs:read", "stats:read"))  # fmt: skip
        cores.append(core)
    east, west, north = cores
    net = Network(*cores, faults=lambda r: (
        "connect" if r.url.host == "gate-north" and r.url.path == "/api/v1/stats" else None
    ))  # fmt: skip
    try:
        _day_at_a_gate(east, 5, 3, 1, 2, [2, 3])
        _day_at_a_gate(west, 4, 6, 2, 1, [1])
        _day_at_a_gate(north, 1, 1, 0, 0, [])
        _ledgers_of_a_gate(east, ["escalated", None, None], ["5-702", "6-101"],
                           ["food", "medicine", "parcel"], ["京B00001"])  # fmt: skip
        _ledgers_of_a_gate(west, ["cleared", "transferred"], ["2-301"], ["rubbish", "food"],
                           ["京A12345"])  # fmt: skip
        _ledgers_of_a_gate(north, [None], ["1-101"], ["other"], ["京A12345"])
        for core in cores:  # the next morning: DAY is over at every gate
            core.clock.advance(86400)
        config = CollectorConfig.model_validate({"kiosks": [
            {"url": f"http://{c.config.site.kiosk_id}", "token_env": f"TOKEN_{i}"}
            for i, c in enumerate(cores)
        ]})  # fmt: skip
        for i, core in enumerate(cores):
            monkeypatch.setenv(f"TOKEN_{i}", core.token)
        office_clock = FakeClock(start=start + timedelta(days=1))  # the office's, synchronised
        collector = Collector(config, pg_dsn, client=net.client(), report_interval_s=0,
                              clock=office_clock)  # fmt: skip
        try:
            statuses = {s.kiosk_id: s for s in collector.run_once()}
        finally:
            collector.stop()
        assert {k: s.state for k, s in statuses.items()} == dict.fromkeys(
            ("gate-east", "gate-west", "gate-north"), "ok"
        )  # the events came; only north's report did not
        assert statuses["gate-north"].report_error and statuses["gate-east"].report_error is None
        assert statuses["gate-east"].report_day == (DAY + timedelta(days=1)).isoformat()

        monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
        assert main(["fleet", "report", "--day", DAY.isoformat(), "--tz", "Asia/Shanghai"]) == 0
        printed = json.loads(capsys.readouterr().out)
        community = printed["community"]
        held = {c.config.site.kiosk_id: _held_at(c, DAY) for c in (east, west)}
        assert held["gate-east"]["returnees"]["new"] == 3  # the count sees a real day
        assert held["gate-west"]["service_requests"]["open_at_end"] == 1
        for path in LEDGER_PATHS:
            east_value = _at(held["gate-east"], path)
            west_value = _at(held["gate-west"], path)
            assert _at(community, path) == _sum(east_value, west_value), path
            per_gate = {g["kiosk_id"]: _at(g["community"], path) for g in printed["by_gate"]}
            assert per_gate == {"gate-east": east_value, "gate-west": west_value,
                                "gate-north": None}, path  # fmt: skip
        assert printed["ledgers"]["missing"] == ["gate-north"]
        assert [(g["kiosk_id"], g["final"]) for g in printed["ledgers"]["gates"]] == [
            ("gate-east", True), ("gate-west", True),
        ]  # fmt: skip
        # The events' categories still cover every gate, north included.
        assert community["people"] == {"in": 13, "out": 10}
        _check_exports(tmp_path, printed, held)
        again = district_report(pg_dsn, DAY, "Asia/Shanghai")
        assert printed | {"as_of": None} == again | {"as_of": None}  # as_of: when each was made
        with psycopg.connect(pg_dsn) as conn:  # counts went up, never who
            kept = json.dumps(conn.execute("SELECT * FROM fleet_gate_reports").fetchall(),
                              default=str, ensure_ascii=False)  # fmt: skip
        for personal in ("Returnee", "13912345678", "Wuhan", "5-702", "9-001", "京B00001"):
            assert personal not in kept
    finally:
        for core in cores:
            core.store.close()


def _check_exports(tmp_path, printed, held):
    """``kiosk fleet report --xlsx/--csv``: the same figures, the missing gate named."""
    xlsx, sheet_csv = tmp_path / "district.xlsx", tmp_path / "district.csv"
    args = [
        "fleet",
        "report",
        "--day",
        DAY.isoformat(),
        "--xlsx",
        str(xlsx),
        "--csv",
        str(sheet_csv),
    ]
    assert main(args) == 0
    book = openpyxl.load_workbook(xlsx)
    cells = {
        (r[0], r[1]): r[2] for r in book["daily report"].iter_rows(min_row=2, values_only=True)
    }
    total = sum(held[g]["returnees"]["new"] for g in held)
    assert cells[("returnees", "new")] == total == printed["community"]["returnees"]["new"]
    assert cells[("ledgers", "missing")] == "gate-north"
    assert cells[("quarantined_households", None)] == 3
    by_gate = {
        (r[0], r[1], r[2]): r[3] for r in book["by gate"].iter_rows(min_row=2, values_only=True)
    }
    assert by_gate[("gate-west", "service_requests", "opened")] == 2
    assert by_gate[("gate-north", "service_requests", None)] == "unknown"  # not a 0
    rows = list(csv.reader(io.StringIO(sheet_csv.read_text(encoding="utf-8"))))
    assert ["service_requests", "opened", "5"] in rows and [
        "ledgers",
        "missing",
        "gate-north",
    ] in rows


def _at(section, path):
    for key in path:
        section = section[key]
    return section


def _sum(a, b):
    if isinstance(a, dict):
        return {k: _sum(a.get(k, 0), b.get(k, 0)) for k in a.keys() | b.keys()}
    return a + b


def test_a_gate_report_is_read_bounded_and_must_be_a_report():
    """A gate's answer is read up to ``MAX_BODY_BYTES`` and checked before anything is kept."""
    answers = {
        "huge": httpx.Response(200, content=b" " * (MAX_BODY_BYTES + 1)),
        "other day": httpx.Response(200, json={"day": "2026-03-01", "timezone": "UTC",
                                               "community": {}}),  # fmt: skip
        "not json": httpx.Response(200, content=b"<html>"),
        "names": httpx.Response(200, json={"day": "2026-03-02", "timezone": "UTC",
                                           "community": {"returnees": {"new": "Wang"}}}),
    }  # fmt: skip
    for what, answer in answers.items():
        client = httpx.Client(transport=httpx.MockTransport(lambda request, a=answer: a))
        with pytest.raises(PullError, match="http://gate/api/v1/stats"):
            fetch_report(client, "http://gate", "kt_x", DAY)
            pytest.fail(f"kept a {what} answer")
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(
        200, json={"day": "2026-03-02", "timezone": "UTC", "community": {}})))  # fmt: skip
    got = fetch_report(client, "http://gate", "kt_x", DAY)
    assert got[:2] == (DAY, "UTC") and got[2]["returnees"] is None  # unknown, not 0


def test_fleet_report_without_tz_cuts_the_day_in_the_zone_the_gates_report_in(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    """``kiosk fleet report --day D`` without ``--tz`` cut D at Shanghai's midnight whatever
    the gates' zone: a Berlin district's evening went to the next day, and every gate's ledger
    figures (kept in the gate's own zone) were "missing". Without ``--tz`` the report takes the
    zone the gates report in; gates in several zones need ``--tz``."""
    late = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, 06:30 on the 3rd here
    gate = make_kiosk(tmp_path / "b.db", "gate-b", FakeClock(start=late))
    insert = (
        "INSERT INTO fleet_gate_reports (kiosk_id, day, timezone, ledgers, final)"
        " VALUES (%s, %s, %s, %s, true)"
    )
    try:
        gate.store.append(EventDraft(direction="in", decision="pass"))
        pull_pg("http://gate-b", gate.token, pg_dsn, Network(gate))
        figures = psycopg.types.json.Jsonb(fetch_report(
            httpx.Client(transport=httpx.MockTransport(Network(gate))), "http://gate-b",
            gate.token, DAY,
        )[2])  # fmt: skip
        with psycopg.connect(pg_dsn) as conn:  # as the collector keeps a Berlin gate's
            conn.execute(insert, ["gate-b", DAY, "Europe/Berlin", figures])
        monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
        assert main(["fleet", "report", "--day", DAY.isoformat()]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert (printed["timezone"], printed["events"]) == ("Europe/Berlin", 1)
        assert printed["ledgers"]["missing"] == []
        with psycopg.connect(pg_dsn) as conn:
            conn.execute(insert, ["gate-c", DAY, "Asia/Shanghai", figures])
        assert main(["fleet", "report", "--day", DAY.isoformat()]) == 2
        err = capsys.readouterr().err
        assert "--tz" in err and "Asia/Shanghai" in err and "Europe/Berlin" in err
        assert main(["fleet", "report", "--day", DAY.isoformat(), "--tz", "Europe/Berlin"]) == 0
    finally:
        gate.store.close()
