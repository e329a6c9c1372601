"""Retention: personal fields of old events go, daily reports and the hash chain stay."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support import reporting_log

from checkpoint.cli import main
from kiosk import stats
from kiosk.clock import FakeClock
from kiosk.config.policy import QuotaConfig
from kiosk.record import PURGED_HOUSEHOLD
from kiosk.retention import ClockNotTrusted, purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

TZ = "Asia/Shanghai"
QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"
PHONE_RE = re.compile(r"\b1[3-9]\d{9}\b")
ID_RE = re.compile(r"\b\d{17}[\dXx]\b")


@pytest.fixture
def store(reporting_store):
    return reporting_store


def fill(store, clock, start: datetime, days: int) -> None:
    """Six passages a day for ``days`` days, with households, names, phones and ID numbers."""
    for d in range(days):
        for i in range(6):
            clock.set_wall(start + timedelta(days=d, hours=2 * i))
            store.append(
                EventDraft(
                    direction="out" if i % 2 else "in",
                    decision="deny" if i == 5 else "pass",
                    reasons=("fever",) if i == 5 else ("ok",),
                    temp_c=36.5 + i * 0.3,
                    pass_id=f"P-{d}-{i}",
                    household=f"H{i % 3}",
                    holder="Zhang Wei",
                    person={
                        "name": "张伟",
                        "phone": "13800138000",
                        "id_number": "11010519491231002X",
                    },
                )
            )


def reports(store, first: date, days: int) -> list[dict]:
    return [daily_report(store.reader(), first + timedelta(days=d), TZ, QUOTA) for d in range(days)]


def test_purge_removes_personal_fields_keeps_reports_and_chain(store, clock):
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    fill(store, clock, start, 10)
    first = date(2026, 3, 1)
    before = reports(store, first, 10)
    now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    result = purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)

    cutoff = "2026-03-06T12:00:00"
    rows = list(store.reader().query("select * from events order by seq"))
    old = [r for r in rows if r["ts"] < cutoff]
    new = [r for r in rows if r["ts"] >= cutoff]
    assert old and new and result.events_purged == len(old)
    for row in old:
        assert row["pass_id"] is None and row["household"] == PURGED_HOUSEHOLD
        assert row["holder"] is None and row["person"] is None
        assert row["purged_at"] is not None
        assert not PHONE_RE.search(json.dumps(row)) and not ID_RE.search(json.dumps(row))
    assert all(r["pass_id"] and r["purged_at"] is None for r in new)
    assert reports(store, first, 10) == before
    assert store.verify().ok


def test_verify_log_cli_passes_after_purge(store, clock, tmp_path, capsys):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    purge(store, 1, datetime(2026, 3, 4, 12, 0, tzinfo=UTC), tz=TZ)
    assert main(["verify-log", "--db", str(tmp_path / "kiosk.db")]) == 0


def test_purge_is_audited_and_idempotent(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 5, tzinfo=UTC)
    clock.set_wall(now)
    first = purge(store, 1, now, tz=TZ, actor="cli")
    second = purge(store, 1, now, tz=TZ, actor="cli")
    assert first.events_purged == 18 and second.events_purged == 0
    assert [d.isoformat() for d in first.days_frozen] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    audits = [a for a in store.audits(limit=100) if a["action"] == "retention_purge"]
    # The second changed nothing: no row kept for ever (test_purge_audit_growth).
    assert len(audits) == 1 and audits[0]["actor"] == "cli"
    assert audits[0]["detail"]["events_purged"] == 18
    assert audits[0]["detail"]["cutoff"] == "2026-03-04T00:00:00+00:00"


def test_nothing_newer_than_retention_is_touched(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 2)
    result = purge(store, 30, datetime(2026, 3, 5, tzinfo=UTC), tz=TZ)
    assert result.events_purged == 0
    assert all(r["household"] for r in store.reader().query("select household from events"))


def test_quota_lookback_survives_daily_purges(store, clock, tmp_path):
    """Daily purges (as the daemon runs them) never lose the previous day's households."""
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    unpurged = reporting_log(tmp_path / "unpurged.db", FakeClock(start=start))
    for d in range(6):  # a day's passages, then the next night's purge (a day's retention)
        fill(store, clock, start + timedelta(days=d), 1)
        fill(unpurged, unpurged.clock, start + timedelta(days=d), 1)
        purge(store, 1, datetime(2026, 3, 2 + d, 0, 30, tzinfo=UTC), tz=TZ, quota_cfg=QUOTA)
    # The quota's two days are kept whatever the retention (kiosk.retention.quota_hold): the
    # last day's households go two days after it.
    purge(store, 1, datetime(2026, 3, 9, 0, 30, tzinfo=UTC), tz=TZ, quota_cfg=QUOTA)
    first = date(2026, 3, 1)
    try:
        before = reports(unpurged, first, 6)
    finally:
        unpurged.close()
    assert personal_rows(store) == 0
    assert reports(store, first, 6) == before
    assert before[1]["exits_per_household"]["over_quota_households"] > 0


@pytest.mark.parametrize("days", [-1, 40000, 1.5, True])
def test_bad_retention_is_refused(store, days):
    with pytest.raises(ValueError):
        purge(store, days, datetime(2026, 3, 5, tzinfo=UTC))


@pytest.mark.parametrize("days", [0, 36500])
def test_retention_of_0_and_of_the_most_days_is_a_purge(store, days):
    now = datetime(2026, 3, 5, tzinfo=UTC)
    assert purge(store, days, now).cutoff <= now  # a purge, not "must be between"


def test_a_clock_at_the_set_back_tolerance_may_date_a_purge_and_one_second_more_not():
    from kiosk.retention import SET_BACK_TOLERANCE, judge_clock
    from kiosk.store import format_ts

    now = datetime(2026, 3, 5, tzinfo=UTC)
    assert judge_clock(now, True, format_ts(now + SET_BACK_TOLERANCE)) is True
    later = format_ts(now + SET_BACK_TOLERANCE + timedelta(seconds=1))
    with pytest.raises(ClockNotTrusted, match="set back"):
        judge_clock(now, True, later)


def test_cli_purge(tmp_path, capsys, monkeypatch):
    db = _purge_cli_log(tmp_path)
    _system_clock_at(monkeypatch, datetime(2026, 6, 1, tzinfo=UTC), synced=True)
    assert main(["purge", "--older-than", "30", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events_purged"] == 6
    assert main(["purge", "--older-than", "-3", "--db", str(db)]) == 2


def test_purge_works_on_a_log_opened_without_the_stats_migrations(tmp_path, clock):
    log = EventLog(tmp_path / "bare.db", "gate-1", clock, "NORMAL").open()
    try:
        fill(log, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 2)
        before = reports(log, date(2026, 3, 1), 2)
        result = purge(log, 1, datetime(2026, 3, 5, tzinfo=UTC), tz=TZ, quota_cfg=QUOTA)
        assert result.events_purged == 12
        assert reports(log, date(2026, 3, 1), 2) == before
    finally:
        log.close()
    # Opening it later with the migrations is still fine.
    EventLog(tmp_path / "bare.db", "gate-1", clock, migrations=[stats.MIGRATIONS]).open().close()


# ---------------------------------------------------------------------------------------------
# The clock a purge is dated by


def personal_rows(store) -> int:
    query = "select count(*) from events where pass_id is not null"
    return store.reader().execute(query).fetchone()[0]


def untouched(store) -> tuple[int, int, int]:
    """Personal rows, frozen days, purge audit rows: what a refused purge must leave alone."""
    frozen = store.reader().execute("select count(*) from daily_aggregates").fetchone()[0]
    audits = [a for a in store.audits(limit=100) if a["action"] == "retention_purge"]
    return personal_rows(store), frozen, len(audits)


def test_an_unsynchronised_clock_ahead_by_weeks_purges_nothing(store, clock):
    """Before: a Pi booted without network, its clock weeks ahead (a bad fake-hwclock, a
    hand mis-set): the nightly purge took that clock's now, nulled the personal fields of
    rows the site must keep and froze today's half day as complete."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    before = untouched(store)
    clock.is_synced = False
    clock.set_wall(datetime(2026, 4, 20, tzinfo=UTC))  # 7 weeks ahead of the real date
    with pytest.raises(ClockNotTrusted, match="not synchronised"):
        purge(store, 30, clock.now(), tz=TZ, quota_cfg=QUOTA)
    assert untouched(store) == before == (18, 0, 0)
    assert store.verify().ok


def test_a_clock_set_back_behind_the_newest_synchronised_row_purges_nothing(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)  # synced, up to 3 March
    before = untouched(store)
    clock.set_wall(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # says synced, yet jumped back
    with pytest.raises(ClockNotTrusted, match="earlier than the newest synchronised"):
        purge(store, 1, clock.now(), tz=TZ)
    with pytest.raises(ClockNotTrusted, match="earlier than the newest synchronised"):
        purge(store, 1, clock.now(), tz=TZ, trust_unsynced_clock=True)  # evidence beats trust
    assert untouched(store) == before


def test_the_operator_may_date_a_purge_by_an_unsynchronised_clock_explicitly(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    clock.is_synced = False
    clock.set_wall(datetime(2026, 3, 5, tzinfo=UTC))  # checked by hand: right
    result = purge(store, 1, clock.now(), tz=TZ, trust_unsynced_clock=True)
    assert result.events_purged == 18 and result.clock_synced is False
    [audit] = [a for a in store.audits(limit=100) if a["action"] == "retention_purge"]
    assert audit["detail"]["clock_synced"] is False  # the audit says who vouched for the date
    assert store.verify().ok


def test_a_synchronised_clock_after_an_unsynchronised_stretch_purges_again(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 2)
    clock.is_synced = False
    clock.set_wall(datetime(2026, 3, 4, tzinfo=UTC))
    with pytest.raises(ClockNotTrusted):
        purge(store, 1, clock.now(), tz=TZ)
    clock.is_synced = True  # NTP answered: the next run (the daemon's within the hour) purges
    assert purge(store, 1, clock.now(), tz=TZ).events_purged == 12


def _system_clock_at(monkeypatch, when: datetime, *, synced: bool):
    """``kiosk purge``'s system clock, as a FakeClock at ``when`` (synced or not)."""
    from drivers import clocksync
    from kiosk.clock import FakeClock

    monkeypatch.setattr(
        clocksync, "system_clock", lambda *a, **kw: FakeClock(start=when, is_synced=synced)
    )


def _purge_cli_log(tmp_path) -> Path:
    from kiosk.clock import FakeClock

    db = tmp_path / "k.db"
    clock = FakeClock(start=datetime(2026, 1, 1, tzinfo=UTC))
    log = reporting_log(db, clock)
    fill(log, clock, datetime(2026, 1, 1, tzinfo=UTC), 1)
    log.close()
    return db


def test_cli_purge_refuses_an_unsynchronised_clock_with_one_line_and_exit_1(
    tmp_path, capsys, monkeypatch
):
    db = _purge_cli_log(tmp_path)
    _system_clock_at(monkeypatch, datetime(2026, 6, 1, tzinfo=UTC), synced=False)
    assert main(["purge", "--older-than", "30", "--db", str(db)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "not synchronised" in err and "nothing was purged" in err
    assert "--trust-clock" in err
    log = reporting_log(db, FakeClock())
    try:
        assert personal_rows(log) == 6
    finally:
        log.close()

    assert main(["purge", "--older-than", "30", "--db", str(db), "--trust-clock"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["events_purged"] == 6 and result["clock_synced"] is False


def test_a_passage_stamped_while_the_purge_read_its_clock_is_not_a_clock_set_back(store, clock):
    """The daemon's purge reads ``now``, then waits for the writer: a passage decided in
    between is stamped a moment later. That is no evidence against the clock."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    newest = clock.now()
    # It runs: the first two days, but the second day's last passage (11:00, 30 s too new).
    assert purge(store, 1, newest - timedelta(seconds=30), tz=TZ).events_purged == 11
    with pytest.raises(ClockNotTrusted, match="set back"):
        purge(store, 1, newest - timedelta(minutes=5), tz=TZ)


# A time zone renamed or corrected: the reports of the days purged before


def frozen_zones(store, day: date) -> list[str]:
    query = "select tz from daily_aggregates where day = ? order by tz"
    return [row[0] for row in store.reader().execute(query, [day.isoformat()])]


def frozen_days(store, tz: str) -> list[date]:
    query = "select day from daily_aggregates where tz = ? order by day"
    return [date.fromisoformat(row[0]) for row in store.reader().execute(query, [tz])]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("PRC", "Asia/Shanghai"),
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("US/Eastern", "America/New_York"),
    ],
)
def test_a_time_zone_renamed_keeps_the_reports_of_the_days_purged_under_its_old_name(
    store, clock, old, new
):
    """docs/install.md has the operator rewrite PRC as Asia/Shanghai: the same clock under
    another name. The days purged under the old name report what they did (households 3, not
    0), under the new name, and the next night's purge freezes no zeros over them."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    purge(store, 5, now, tz=old, quota_cfg=QUOTA)
    days = frozen_days(store, old)
    before = {day: daily_report(store.reader(), day, old, QUOTA) for day in days}
    assert sum(r["exits_per_household"]["households"] for r in before.values()) >= 3
    purge(store, 5, now + timedelta(days=1), tz=new, quota_cfg=QUOTA)  # the config renamed
    for day, was in before.items():
        now_is = daily_report(store.reader(), day, new, QUOTA)
        assert now_is["exits_per_household"] == was["exits_per_household"]
        assert (now_is["events"], now_is["timezone"]) == (was["events"], new)
        assert frozen_zones(store, day) == [old]


def test_a_copy_frozen_under_a_name_this_systems_zone_data_lacks_is_compared_by_its_hours(
    store, clock
):
    """Trixie keeps PRC only in tzdata-legacy, which it does not install: the very reason the
    operator renamed it. The copies frozen under it are compared by the clock they recorded
    (each hour's start with its UTC offset): Shanghai's, so they are the site's days."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)
    day = date(2026, 3, 2)
    was = daily_report(store.reader(), day, TZ, QUOTA)
    renamed = "update daily_aggregates set tz = ?, report = json_set(report, '$.timezone', ?)"
    store.submit(lambda db: db.execute(renamed, ["Gone/PRC", "Gone/PRC"]))
    got = daily_report(store.reader(), day, TZ, QUOTA)
    assert got["timezone"] == TZ and got["exits_per_household"] == was["exits_per_household"]
    assert "frozen_timezone" not in got  # its clock is the site's: nothing to say
    # Not Berlin's clock, and a name nobody here can load: served under Berlin, saying so.
    berlin = stats.stamp_as_of(daily_report(store.reader(), day, "Europe/Berlin", QUOTA), now)
    assert (berlin["timezone"], berlin["frozen_timezone"]) == ("Europe/Berlin", "Gone/PRC")
    assert berlin["exits_per_household"] == was["exits_per_household"]
    assert stats.as_of_text(berlin) == "2026-03-10 13:00 (Europe/Berlin)"


def test_a_copy_frozen_before_the_hours_under_a_name_this_system_lacks_is_served_saying_so(
    store, clock
):
    """Nearly every gate's copies were frozen before 2026-12-05: no ``hours``, so no clock to
    compare. Under PRC renamed Asia/Shanghai on Trixie without tzdata-legacy every face of a
    purged day raised ZoneInfoNotFoundError; the copy is served as kept, under the site's
    zone, naming the zone it was frozen under (a row of the report's files too)."""
    from kiosk.categories import report_rows

    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)
    day = date(2026, 3, 2)
    was = daily_report(store.reader(), day, TZ, QUOTA)
    store.submit(lambda db: db.execute(BEFORE_THE_HOURS))
    got = stats.stamp_as_of(daily_report(store.reader(), day, TZ, QUOTA), now)
    assert (got["timezone"], got["frozen_timezone"]) == (TZ, "Gone/PRC")
    assert got["exits_per_household"] == was["exits_per_household"]
    assert (got["events"], got["by_hour"], got["day_ended"]) == (6, was["by_hour"], True)
    assert stats.as_of_text(got) == "2026-03-10 20:00 (Asia/Shanghai)"
    assert ["report", "frozen_timezone", "Gone/PRC"] in report_rows(got)
    assert b"Gone/PRC" in stats.report_file(got, "csv")
    assert frozen_days(store, TZ) == []  # nothing frozen again over it


def test_a_report_naming_a_zone_this_system_lacks_is_stamped_in_utc_not_an_error():
    """``stamp_as_of`` and ``as_of_text`` read whatever a report names (one read from
    elsewhere, an office's): a name nobody here can load is UTC, said so, never a 500."""
    report = {"day": "2026-03-02", "timezone": "Gone/PRC"}
    stats.stamp_as_of(report, datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    assert report["day_ended"] is False
    assert stats.as_of_text(report) == (
        "2026-03-02 23:30 (UTC): the day has not ended, these are its figures so far"
    )


#: The copies as a release before 2026-12-05 froze them (no ``hours``, no fever ``at``), under
#: a name this system's zone data lacks (``PRC`` on Trixie without ``tzdata-legacy``).
BEFORE_THE_HOURS = (
    "update daily_aggregates set tz = 'Gone/PRC', report = json_remove("
    "json_set(report, '$.timezone', 'Gone/PRC'), '$.hours', '$.fever_alarms.at')"
)


def test_a_zone_corrected_serves_the_old_zones_report_of_a_purged_day_naming_that_zone(
    store, clock
):
    """A Shanghai gate set to Europe/Berlin by mistake, corrected after its days were purged:
    their reports were frozen in Shanghai's days and cannot be counted again in Berlin's (the
    households are gone). The report is Shanghai's, saying so; no zeros frozen in Berlin's."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)
    day = date(2026, 3, 2)
    was = daily_report(store.reader(), day, TZ, QUOTA)
    purge(store, 5, now + timedelta(days=1), tz="Europe/Berlin", quota_cfg=QUOTA)
    got = daily_report(store.reader(), day, "Europe/Berlin", QUOTA)
    assert got["timezone"] == TZ and got["exits_per_household"] == was["exits_per_household"]
    assert got["exits_per_household"]["households"] == 2 and got["events"] == 6
    assert frozen_days(store, "Europe/Berlin") == []


def test_a_purged_day_with_no_report_kept_says_its_households_are_unknown(store, clock):
    """A day whose households were nulled before a report of it was kept (a log of a release
    before the frozen reports) cannot tell them apart: its outing figures are unknown (null),
    never 0, and no purge freezes them so. The rest is counted, the day's outings too (their
    rows keep direction, decision and flags: kept since 2026-12-07)."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)
    store.submit(lambda db: db.execute("delete from daily_aggregates"))
    purge(store, 5, now + timedelta(days=1), tz=TZ, quota_cfg=QUOTA)
    report = daily_report(store.reader(), date(2026, 3, 2), TZ, QUOTA)
    exits = report["exits_per_household"]
    assert (report["events"], exits["quota_enabled"]) == (6, True)
    for key in ("households", "histogram", "max", "over_quota_households"):
        assert exits[key] is None, key
    assert exits["exits"] == 2
    assert frozen_days(store, TZ) == []


def test_the_console_says_whose_day_a_purged_days_report_is_and_what_it_cannot_know(
    guard_client, guard_core, clock
):
    """The console (a gate in Asia/Shanghai now) of a day frozen in Europe/Berlin, the zone
    set by mistake then, and purged: the figures are Berlin's day and it says so, in the
    report's rows (the community report, the files) too. Its outings' households lost with no
    report kept read unknown, not "0 households went out"."""
    from guard_support import add_event, login

    from kiosk.categories import report_rows

    for household in ("1-101", "1-102"):
        add_event(guard_core, direction="out", household=household, pass_id="a" * 12)
    clock.advance(3 * 86400)
    purge(guard_core.store, 1, clock.now(), tz="Europe/Berlin", quota_cfg=QUOTA)
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    assert 'id="report-zone"' in page and "Europe/Berlin" in page
    assert "外出住户 2 户" in page  # 2 households went out
    report = daily_report(guard_core.store.reader(), date(2026, 3, 2), TZ, QUOTA)
    assert ["report", "timezone", "Europe/Berlin"] in report_rows(report)

    guard_core.store.submit(lambda db: db.execute("delete from daily_aggregates"))
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    assert 'id="report-zone"' not in page and "外出住户 " not in page
    assert "外出住户数不明" in page  # households out unknown


def test_every_face_serves_a_purged_days_copy_frozen_under_a_zone_this_system_lacks(
    guard_client, guard_core, clock, capsys
):
    """PRC renamed Asia/Shanghai on Trixie without tzdata-legacy, the copies frozen before
    2026-12-05 (no hours): the statistics page, the printable report, the exports and
    /api/v1/stats answered 500 and ``kiosk report`` a traceback. Each serves the figures
    kept, under the site's zone, and says the zone they were kept under."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from guard_support import add_event, login

    from ui import api

    for household in ("1-101", "1-102"):
        add_event(guard_core, direction="out", household=household, pass_id="a" * 12)
    clock.advance(3 * 86400)
    purge(guard_core.store, 1, clock.now(), tz=TZ, quota_cfg=QUOTA)
    guard_core.store.submit(lambda db: db.execute(BEFORE_THE_HOURS))
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02")
    assert page.status_code == 200 and "外出住户 2 户" in page.text  # 2 households went out
    assert 'id="report-zone"' in page.text and "本机的时区数据里没有 Gone/PRC" in page.text
    printable = guard_client.get("/guard/community/report?day=2026-03-02")
    assert printable.status_code == 200 and "Gone/PRC" in printable.text
    assert "留存时的时区（本机无此时区数据）" in printable.text
    for lang, row in (("en", "report,frozen_timezone,Gone/PRC"), ("zh-CN", "本机无此时区数据")):
        csv = guard_client.get(f"/guard/community/report.csv?day=2026-03-02&lang={lang}")
        assert csv.status_code == 200 and row in csv.text, lang
    assert guard_client.get("/guard/export.xlsx?day=2026-03-02").status_code == 200
    app = FastAPI()
    api.install(app, guard_core)
    _, token = guard_core.tokens.create(("stats:read",))
    answer = TestClient(app).get(
        "/api/v1/stats?day=2026-03-02", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["timezone"], got["frozen_timezone"]) == (TZ, "Gone/PRC")
    assert got["exits_per_household"]["households"] == 2
    capsys.readouterr()
    assert main(["report", "--db", str(guard_core.store.path), "--day", "2026-03-02"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["frozen_timezone"], printed["exits_per_household"]["households"]) == (
        "Gone/PRC",
        2,
    )


def test_cli_purge_says_the_quota_held_the_households_of_its_outings_back(
    tmp_path, capsys, monkeypatch
):
    """``kiosk purge --older-than 0`` with the quota on moved its cutoff back a week without a
    word and kept every personal field of that week; it keeps an outing's household alone,
    and says so and until when (the JSON's ``households_held_from``, a line on stderr)."""
    when = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    toml = tmp_path / "k.toml"
    toml.write_text(
        '[site]\nkiosk_id = "gate-1"\ntimezone = "Europe/Berlin"\n[store]\nretention_days = 7\n'
        "[policy.quota]\nenabled = true\nperiod_days = 7\n",
        encoding="utf-8",
    )
    log = reporting_log(tmp_path / "k.db", FakeClock(start=when))
    log.append(
        EventDraft(
            direction="out", decision="pass", household="1-101", holder="Zhao Min",
            pass_id="a" * 12, temp_c=36.5,
        )
    )  # fmt: skip
    log.close()
    _system_clock_at(monkeypatch, when + timedelta(hours=1), synced=True)
    args = ["purge", "--config", str(toml), "--db", str(tmp_path / "k.db"), "--older-than", "0"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    said = json.loads(out)
    assert said["cutoff"] == (when + timedelta(hours=1)).isoformat()
    assert said["households_held_from"] == "2026-11-30T09:00:00+00:00"
    assert "outing quota's look-back (7 days)" in err and "2026-11-30T09:00:00+00:00" in err
    log = reporting_log(tmp_path / "k.db", FakeClock(start=when))
    try:
        row = log.reader().execute("select household, holder, pass_id from events").fetchone()
    finally:
        log.close()
    assert tuple(row) == ("1-101", None, None)


@pytest.mark.parametrize(
    ("old", "new"),
    [("PRC", "Asia/Shanghai"), ("Asia/Chongqing", "Asia/Shanghai")],
)
def test_a_day_frozen_under_the_old_name_of_its_clock_is_not_frozen_again(store, clock, old, new):
    """Frozen under PRC with the quota off; the site renamed its zone Asia/Shanghai (as
    Trixie asks) and switched the quota on. The next freeze found nothing frozen under the
    new name and froze every unpurged past day again under today's quota: a past day's
    report changed (quota on, a household over it) though its events had not."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    off = QuotaConfig(enabled=False)
    days = stats.freeze_days(store, old, off, now)
    assert days == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    was = {day: daily_report(store.reader(), day, old, off) for day in days}
    assert stats.freeze_days(store, new, QUOTA, now + timedelta(days=1)) == []
    for day in days:
        now_is = daily_report(store.reader(), day, new, QUOTA)
        assert now_is["exits_per_household"] == was[day]["exits_per_household"]
        assert frozen_zones(store, day) == [old]


def test_a_day_frozen_under_a_zone_really_changed_is_frozen_again_in_the_new_one(store, clock):
    """A zone corrected to another clock (Asia/Urumqi, two hours behind, to Asia/Shanghai)
    cuts the days elsewhere: each past day not purged yet is counted again in the new zone
    (docs/privacy.md, *Freeze*); the copies under the old zone stay."""
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert len(stats.freeze_days(store, "Asia/Urumqi", QUOTA, now)) == 3
    again = stats.freeze_days(store, TZ, QUOTA, now + timedelta(days=1))
    assert again == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    assert frozen_zones(store, date(2026, 3, 2)) == ["Asia/Shanghai", "Asia/Urumqi"]
