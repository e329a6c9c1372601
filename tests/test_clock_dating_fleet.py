"""The district report dates a gate's passages stamped before NTP stepped its clock as the
gate's own report does (``kiosk.dating``): by the first synchronised event of the same boot,
from the rows pulled into PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from kiosk.clock import FakeClock
from kiosk.stats import daily_report
from kiosk.store import EventDraft
from office.district import district_report

pytest_plugins = ("pgfixture",)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)
BOOT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _passage(core, **kw) -> None:
    fields = {"direction": "in", "decision": "pass", "reasons": ("ok",), "temp_c": 36.6}
    core.store.append(EventDraft(**(fields | kw)))


@pytest.mark.slow
def test_the_district_report_counts_a_gates_passages_from_before_its_ntp_step(tmp_path, pg_dsn):
    synced = make_kiosk(tmp_path / "east.db", "gate-east", FakeClock(start=BOOT))
    fresh = make_kiosk(tmp_path / "west.db", "gate-west", FakeClock(start=EPOCH, is_synced=False))
    never = make_kiosk(  # a gate with no network: its clock's day, counted apart
        tmp_path / "north.db", "gate-north", FakeClock(start=BOOT, is_synced=False)
    )
    try:
        _passage(synced)
        fresh.clock.advance(600)  # 09:10 really, 00:10 on 1 January 1970 by its clock
        _passage(fresh, decision="deny", reasons=("fever",), temp_c=38.6)
        _passage(fresh, direction="out")
        fresh.clock.advance(600)
        fresh.clock.set_wall(BOOT + timedelta(minutes=20))  # NTP answers
        fresh.clock.is_synced = True
        _passage(fresh)
        _passage(never)
        for core in (synced, fresh, never):
            pull_pg(f"http://{core.config.site.kiosk_id}", core.token, pg_dsn, Network(core))
        report = district_report(pg_dsn, DAY, TZ)
        gate = daily_report(fresh.store.reader(), DAY, TZ)
    finally:
        for core in (synced, fresh, never):
            core.store.close()
    assert gate["events"] == 3  # the gate's own report
    assert report["events"] == 5
    assert report["by_hour"][9] == 5
    assert report["fever_alarms"] == {
        "count": 1,
        "people": 1,
        "times": ["09:10:00"],
        "at": ["2026-03-02T09:10:00+08:00"],
    }
    assert report["clock"] == {"redated": 2, "unsynced": 1}
    by_gate = {g["kiosk_id"]: g for g in report["by_gate"]}
    assert by_gate["gate-west"]["events"] == 3
    assert by_gate["gate-west"]["first_event"].startswith("2026-03-02T01:10")
    assert district_report(pg_dsn, EPOCH.date(), TZ)["events"] == 0
