"""The district's report names each gate's restarts too (real PostgreSQL, as in
test_fleet_pg.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from kiosk import stats, tokens
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog
from office.district import district_csv, district_report

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)
MIDNIGHT = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY


def test_the_district_report_names_a_gates_restart(tmp_path, pg_dsn):
    """Before: the district's report showed a gate down for an hour and a half (a power
    cut) only as fewer events in its ``by_gate`` row."""
    at, path = FakeClock(start=MIDNIGHT + timedelta(hours=9)), tmp_path / "east.db"
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS]
    log = EventLog(path, "gate-east", at, "NORMAL", migrations=sets, boot_id="boot-a").open()
    for _ in range(2):
        log.append(EventDraft(direction="in", decision="pass"))
        at.advance(1800)
    log.close()
    at.set_wall(MIDNIGHT + timedelta(hours=11))  # the power back: booted at 10:59
    at.mono_ns = 60 * 10**9
    east = make_kiosk(path, "gate-east", at)  # this machine's boot
    try:
        east.store.append(EventDraft(direction="in", decision="pass"))
        pull_pg("http://gate-east", east.token, pg_dsn, Network(east))
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    finally:
        east.store.close()
    [gate] = report["by_gate"]
    assert gate["downtime"]["restarts"] == [
        {
            "from": "2026-03-02T09:30:00+08:00",
            "booted": "2026-03-02T10:59:00+08:00",
            "to": "2026-03-02T11:00:00+08:00",
            "minutes": 90.0,
        }
    ]
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    assert ["gate gate-east", "downtime.restarts_total", "1"] in rows
