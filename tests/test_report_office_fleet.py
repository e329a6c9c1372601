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
