"""The district's report names each gate's restarts too (real PostgreSQL, as in
test_fleet_pg.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pgfixture import Network
from support import kiosk_api
from test_district_silent_day import down_gate
from test_fleet_pg import pull_pg

from kiosk.clock import FakeClock
from kiosk.store import EventDraft
from office.district import district_report
from office.gatereports import STAFFING_KEY, fetch_report, gate_staffing
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)
MIDNIGHT = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY


def test_the_district_report_names_a_gates_restart(tmp_path, pg_dsn):
    """Before: the district's report showed a gate down for an hour and a half (a power
    cut) only as fewer events in its ``by_gate`` row."""
    # Down from 09:30 (its last event) until the power came back: booted at 10:59.
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=11), first=timedelta(hours=9))
    assert gate["downtime"]["restarts"] == [
        {
            "from": "2026-03-02T09:30:00+08:00",
            "booted": "2026-03-02T10:59:00+08:00",
            "to": "2026-03-02T11:00:00+08:00",
            "minutes": 90.0,
            "kind": "boot",
        }
    ]
    assert ["gate gate-east", "downtime.restarts_total", "1"] in gate["csv"]


def test_the_district_report_has_each_gates_split_by_its_staffed_hours(tmp_path, pg_dsn):
    """The district cannot count a gate's staffed hours (its own config): the collector keeps
    the gate's split as counts, and the district's ``by_gate`` gives it."""
    at = FakeClock(start=MIDNIGHT + timedelta(hours=7))
    west = kiosk_api(
        tmp_path / "w.db", "gate-west", at, config={"policy": {"hours": {"enabled": True}}}
    )
    try:
        for _ in range(2):  # 07:00 nobody at the gate, 09:00 the volunteers
            west.store.append(EventDraft(direction="in", decision="pass"))
            at.advance(2 * 3600)
        net = Network(west)
        pull_pg("http://gate-west", west.token, pg_dsn, net)
        day, zone, figures = fetch_report(net.client(), "http://gate-west", west.token, DAY)
    finally:
        west.store.close()
    assert figures[STAFFING_KEY]["hours"] == "08:30-17:30"
    with PgTarget(pg_dsn) as target:
        target.write_gate_report("gate-west", day, zone, figures, True)
    [gate] = district_report(pg_dsn, DAY, "Asia/Shanghai")["by_gate"]
    assert gate["staffing"]["unstaffed"] == {
        "events": 1,
        "passages": {"total": 1, "passed": 1, "denied": 0},
    }
    assert gate["staffing"]["staffed"]["events"] == 1
    for bad in ({"hours": "=cmd()"}, {"hours": None, "staffed": {"events": "Wang"}}, []):
        with pytest.raises(ValueError, match="staffing"):
            gate_staffing({"staffing": bad})


def test_the_office_keeps_the_split_the_gate_freezes_for_a_day_asked_before_its_freeze(
    tmp_path, pg_dsn
):
    """Staffed 08:30-17:30 all of DAY; at 00:05 the gate restarts staffed round the clock.
    The collector asked for DAY at 00:10, before the gate's freeze: it got DAY split by the
    new hours (2 staffed, 0 unstaffed) and kept it final; the freeze at 00:40 split it by the
    hours of that day (1 and 1), and the district's ``by_gate[].staffing`` said 2/0 for
    good. A day not frozen is split by the hours in force on it, as it will be frozen."""
    import httpx

    from checkpoint.app import site_record
    from kiosk.stats import daily_report, freeze_days
    from kiosk.store import record_site
    from office.gatereports import collect_reports

    at = FakeClock(start=MIDNIGHT + timedelta(hours=9))
    gate = kiosk_api(tmp_path / "w.db", "gate-west", at,
                     config={"policy": {"hours": {"enabled": True}}})  # fmt: skip
    policy = gate.config.policy
    hours = policy.hours.model_copy(update={"enabled": False})
    around = gate.config.model_copy(update={"policy": policy.model_copy(update={"hours": hours})})
    try:
        record_site(gate.store, site_record(gate.config))  # the daemon's start
        for hours in (10, 19):  # 10:00 staffed, 19:00 not
            at.set_wall(MIDNIGHT + timedelta(hours=hours))
            gate.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
        at.set_wall(MIDNIGHT + timedelta(days=1, minutes=5))
        record_site(gate.store, site_record(around))  # the restart, staffed round the clock
        gate.config = around
        at.set_wall(MIDNIGHT + timedelta(days=1, minutes=10))
        net = Network(gate)
        with PgTarget(pg_dsn) as target, httpx.Client(transport=httpx.MockTransport(net)) as c:
            collect_reports(c, target, "http://gate-west", "gate-west", gate.token, days=2)
        at.set_wall(MIDNIGHT + timedelta(days=1, minutes=40))
        assert freeze_days(gate.store, "Asia/Shanghai", None, at.now()) == [DAY]
        frozen = daily_report(gate.store.reader(), DAY, "Asia/Shanghai", hours=hours)
    finally:
        gate.store.close()
    [by_gate] = district_report(pg_dsn, DAY, "Asia/Shanghai")["by_gate"]
    assert frozen["staffing"]["hours"] == by_gate["staffing"]["hours"] == "08:30-17:30"
    assert (
        by_gate["staffing"]["staffed"]["events"] == by_gate["staffing"]["unstaffed"]["events"] == 1
    )
