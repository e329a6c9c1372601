"""A gate switched off all day showed in the district's report as a quiet gate: its
``downtime`` was read from its rows of the day alone, and it had none. Now a gate the collector
knows with no event that day is read as its own report reads it (``kiosk.stats``, docs/community.md
"Restarts"): its last event before the day and its first after, a restart spanning the day."""

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


def down_gate(
    tmp_path,
    pg_dsn,
    back_after: timedelta,
    same_boot: bool = False,
    first: timedelta = timedelta(hours=-2),
) -> dict:
    """gate-east: two events half an hour apart from ``first`` past DAY's midnight (the
    evening before), then (a new boot unless ``same_boot``) one ``back_after`` past it,
    pulled; its ``by_gate`` row, with the district CSV's rows (``csv``)."""
    at, path = FakeClock(start=MIDNIGHT + first), tmp_path / "east.db"
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS]
    log = EventLog(path, "gate-east", at, "NORMAL", migrations=sets, boot_id="boot-a").open()
    for _ in range(2):
        log.append(EventDraft(direction="in", decision="pass"))
        at.advance(1800)
    log.close()
    at.set_wall(MIDNIGHT + back_after)
    if same_boot:
        at.mono_ns += int(back_after.total_seconds() * 10**9)
    else:
        at.mono_ns = 60 * 10**9
    east = make_kiosk(path, "gate-east", at)
    if same_boot:
        east.store.boot_id = "boot-a"
    try:
        east.store.append(EventDraft(direction="in", decision="pass"))
        pull_pg("http://gate-east", east.token, pg_dsn, Network(east))
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    finally:
        east.store.close()
    [gate] = report["by_gate"]
    gate["csv"] = list(csv.reader(io.StringIO(district_csv(report))))
    return gate


def test_a_gate_switched_off_all_day_shows_the_day_down(tmp_path, pg_dsn):
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=32))  # back at 08:00 the day after
    assert gate["events"] == 0
    down = gate["downtime"]
    assert down["boots"] == 0
    assert down["restarts"] == [
        {
            "from": "2026-03-01T22:30:00+08:00",
            "booted": "2026-03-03T07:59:00+08:00",
            "to": "2026-03-03T08:00:00+08:00",
            "minutes": 2010.0,
            "kind": "boot",
        }
    ]
    assert down["restarts_total"] == 1 and down["restart_minutes"] == 1440.0
    assert ["gate gate-east", "downtime.restart_minutes", "1440.0"] in gate["csv"]


def test_a_gate_on_but_quiet_all_day_shows_no_restart(tmp_path, pg_dsn):
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=32), same_boot=True)
    assert gate["events"] == 0
    assert gate["downtime"]["restarts_total"] == 0
