"""The office's day, as its clerk does it: the district's report sent up in the evening, the
gates' copies pulled by hand. Each test failed before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
from support import kiosk_api

from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.clock import FakeClock
from kiosk.days import local_day
from kiosk.store import EventDraft, EventLog
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


def test_a_gates_report_for_a_day_not_begun_is_refused_not_all_zeros(tmp_path, capsys):
    """The clerk typed next year (2027-03-02 for 2026-03-02): ``kiosk report`` printed a
    day of zeros, exit 0, and the zeros went into the sheet sent up. A day that has not
    begun on the site's clock, with no event in it, is refused naming today there; a past
    day still reports."""
    path = tmp_path / "kiosk.db"
    log = EventLog(path, "gate-1", system_clock(), "NORMAL").open()
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    today = local_day(log.events()[0]["ts"], "Asia/Shanghai")
    log.close()
    ahead = today.replace(year=today.year + 1) if today.month != 2 else today + timedelta(400)
    code = main(["report", "--day", ahead.isoformat(), "--db", str(path), "--csv",
                 str(tmp_path / "r.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "r.csv").exists()
    assert f"--day {ahead}: that day has not begun (today is {today} in Asia/Shanghai)" in err
    assert main(["report", "--day", today.isoformat(), "--db", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 1


def test_the_district_report_of_a_day_not_begun_is_refused(tmp_path, pg_dsn, monkeypatch, capsys):
    """``kiosk fleet report --day`` a year ahead printed zeros for every gate, as a quiet
    day; it is refused naming the database's today in the zone."""
    now = _db_now(pg_dsn)
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", FakeClock(start=now - timedelta(days=2)))
    try:
        core.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
        with PgTarget(pg_dsn) as target:
            target.write_page("http://gate-1", "gate-1", core.store.events(limit=10))
    finally:
        core.store.close()
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    ahead = now.date() + timedelta(days=366)
    code = main(["fleet", "report", "--day", ahead.isoformat(), "--tz", "UTC"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"--day {ahead}: that day has not begun (today is {now.date()} in UTC)" in err
    assert main(["fleet", "report", "--day", now.date().isoformat(), "--tz", "UTC"]) == 0
