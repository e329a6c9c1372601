"""The gate's report and the office's district report of one day whose quota look-back holds
an outing retention purged: the office nulled over_quota_households whenever any purged outing
lay anywhere in the look-back, the gate only when it could be a household's of the day that is
not over by what is known (``kiosk.stats.over_quota_households`` for both)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pgfixture import Network
from support import kiosk_api

from kiosk.clock import FakeClock
from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft
from office.district import district_report
from office.gatereports import collect_reports
from office.pg import PgTarget
from office.pull import pull

pytest_plugins = ("pgfixture",)
DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on DAY
QUOTA = {"enabled": True, "exits": 1, "period_days": 2}


def _out(core, household: str, hours: float) -> None:
    core.clock.set_wall(START + timedelta(hours=hours))
    core.store.append(
        EventDraft(direction="out", decision="pass", household=household, holder="Li Lei")
    )


@pytest.mark.slow
@pytest.mark.parametrize("hours", [0, 7])  # F6 out before G7's period / inside it
def test_gate_and_office_agree_on_over_the_quota(tmp_path, pg_dsn, hours):
    north = kiosk_api(
        tmp_path / "n.db",
        "gate-north",
        FakeClock(start=START - timedelta(hours=60)),
        scopes=("logs:read", "logs:personal"),
        config={"policy": {"quota": QUOTA}, "store": {"retention_days": 2}},
    )
    try:
        _out(north, "F6", -51 + hours)
        if hours:
            _out(north, "G7", 3)
        now = START + timedelta(hours=-2.5 + hours)
        north.clock.set_wall(now)
        purge(north.store, 2, now, tz="Asia/Shanghai", quota_cfg=QuotaConfig(**QUOTA))
        if not hours:
            _out(north, "G7", 3)  # 12:00 on DAY: its period begins 28 Feb 12:00
        gate = daily_report(north.store.reader(), DAY, "Asia/Shanghai", QuotaConfig(**QUOTA))
        with PgTarget(pg_dsn) as target, Network(north).client() as client:
            pull("http://gate-north", north.token, target, client=client, fields=["household"])
            collect_reports(client, target, "http://gate-north", "gate-north", north.token)
        office = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
        g = gate["exits_per_household"]
        assert (office["households"], office["over_quota_households"]) == (
            g["households"],
            g["over_quota_households"],
        )
        assert g["over_quota_households"] == (None if hours else 0)
    finally:
        north.store.close()
