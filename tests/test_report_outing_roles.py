"""The daily report's outings per household and its over-quota count read one rule: the
roles in force (the config's ``quota.roles``; at the office, the roles the compound's gates
report), not a courier's exit counted as the household's outing beside an over-quota count
that does not count it (rvcfg2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from test_fleet_quota import _gate, _to_the_office

from kiosk.config.policy import QuotaConfig
from kiosk.stats import daily_report
from kiosk.store import EventDraft
from office.district import district_report

pytest_plugins = ("pgfixture",)

TZ = "Asia/Shanghai"
DAY = date(2026, 3, 2)
DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
ON = QuotaConfig(enabled=True, exits=1, period_days=2)  # residents


def _outings(store, clock):
    """F6's courier (recorded while the quota was off: no quota_exempt), then a resident."""
    for hours, role in ((2, "delivery"), (5, "resident")):
        clock.set_wall(DAY_START + timedelta(hours=hours))
        flags = (f"role:{role}",)
        store.append(EventDraft(direction="out", decision="pass", household="F6", flags=flags))


def test_the_gates_report_counts_the_outings_the_quota_counts(reporting_store, clock):
    _outings(reporting_store, clock)
    exits = daily_report(reporting_store.reader(), DAY, TZ, ON)["exits_per_household"]
    assert (exits["households"], exits["exits"], exits["max"]) == (1, 1, 1)
    assert exits["over_quota_households"] == 0


def test_the_staff_counted_when_the_roles_say_so(reporting_store, clock):
    _outings(reporting_store, clock)
    every = ON.model_copy(update={"roles": ("resident", "delivery")})
    exits = daily_report(reporting_store.reader(), DAY, TZ, every)["exits_per_household"]
    assert (exits["exits"], exits["max"], exits["over_quota_households"]) == (2, 2, 1)


def test_the_district_counts_by_the_roles_its_gates_report(tmp_path, pg_dsn):
    gate = _gate(tmp_path, "gate-north")
    try:
        _outings(gate.store, gate.clock)
        gate.clock.set_wall(DAY_START + timedelta(days=1, hours=1))  # the day is over
        _to_the_office(pg_dsn, gate)
    finally:
        gate.store.close()
    exits = district_report(pg_dsn, DAY, TZ)["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["quota"]["roles"] == ["resident"]
    assert (compound["exits"], compound["over_quota_households"]) == (1, 0)
    assert (exits["exits"], exits["max"], exits["over_quota_households"]) == (1, 1, 0)
