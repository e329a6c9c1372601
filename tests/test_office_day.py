"""The office's day, as its clerk does it: the district's report sent up in the evening, the
gates' copies pulled by hand. Each test failed before its fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from support import kiosk_api

from kiosk.clock import FakeClock
from kiosk.store import EventDraft
from office.district import district_csv, district_report
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)


def _db_now(dsn: str) -> datetime:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0].astimezone(UTC)


def test_the_district_report_of_a_day_not_yet_over_says_its_figures_are_so_far(tmp_path, pg_dsn):
    """The clerk sends the report up at 17:30: the day's passages until then. The report
    read as the whole day's (no word that the day runs on, every gate 'complete'), and the
    district added it up as the day's total. A day not yet over says so: ``day_ended``
    false and ``as_of``, in the JSON and as a row of the CSV the clerk sends; a past day
    ``day_ended`` true."""
    now = _db_now(pg_dsn)
    day = now.date()
    then = max(now - timedelta(minutes=1), datetime(day.year, day.month, day.day, tzinfo=UTC))
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", FakeClock(start=then))
    try:
        core.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
        with PgTarget(pg_dsn) as target:
            target.write_page("http://gate-1", "gate-1", core.store.events(limit=10))
    finally:
        core.store.close()
    report = district_report(pg_dsn, day, "UTC")
    assert report["events"] == 1
    assert report["day_ended"] is False
    assert now <= datetime.fromisoformat(report["as_of"]) < now + timedelta(minutes=5)
    csv = district_csv(report)
    assert "the day has not ended" in csv.split("report,as_of,")[1].splitlines()[0]
    earlier = district_report(pg_dsn, day - timedelta(days=1), "UTC")
    assert earlier["day_ended"] is True
    assert "has not ended" not in district_csv(earlier)
