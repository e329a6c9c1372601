"""A power spell begun before NTP set the clock and never ended (the Pi browned out in it) was
dated on the boot's own clock: stamped with the saved time of the last shutdown (fake-hwclock)
the report gave it the hours between that stamp and the last sign of life; stamped 1970 it fell
outside the report's look-back and was not listed at all.

Its rows now keep the boot and the monotonic time of its first reading (``clock``), and the
report dates it as ``kiosk.dating`` dates that boot's events: by a later row of the boot on a
set clock; a boot never set says the spell's time is unknown and counts only its minutes, by
the boot's monotonic clock. Boots are simulated: the log's boot id, the monotonic clock from
near zero, the wall clock as a Pi without a battery-backed clock boots."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from guard_support import console_fixtures

from drivers.pihealth import FakePiSysfs, SysfsPiPower
from kiosk import dating, stats
from kiosk.pihealth import COALESCE_S, PowerWatch
from kiosk.store import EventDraft
from ui.api import DailyReport, ReportPowerSpell
from ui.guard.display import report_summary

START = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
clock, core, app, alice, admin = console_fixtures(START)

UNDER = 0x50005
#: fake-hwclock's saved time of the last shutdown: 22:00 the evening before in Shanghai.
SAVED = datetime(2026, 6, 30, 14, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def pi(tmp_path):
    return FakePiSysfs(tmp_path / "root").set(0, temp_c=47.2)


def _boot(pi, core, clock, boot: str, wall: datetime) -> PowerWatch:
    """A boot: its id in the log, the monotonic clock at 12 s, the wall clock at ``wall``
    (not synchronised), the daemon's start row, and its power watch."""
    core.store.boot_id = boot
    clock.mono_ns = 12 * 10**9
    clock.set_wall(wall)
    clock.is_synced = False
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "unclean"})
    return PowerWatch(SysfsPiPower(pi.root), clock, core.store, boot_id=boot)


def _ntp(clock, wall: datetime) -> None:
    clock.set_wall(wall)
    clock.is_synced = True


def _alive(core, clock, seconds: float) -> None:
    clock.advance(seconds)
    core.store.audit("alice", "roster.handover", {"note": "shift"})


def _power(core, day=date(2026, 7, 1)) -> list[tuple]:
    down = stats.daily_report(core.store.reader(), day, "Asia/Shanghai")["downtime"]
    return [(s["from"], s["to"], s["minutes"], s["dating"]) for s in down["power"]]


def _browned_out(pi, core, clock, wall: datetime) -> None:
    """Boot "a" at ``wall``, real 08:57:48: the supply sags at 08:58 (12 s in), NTP sets the
    clock at 09:00, a guard's handover at 09:03 (a row on the set clock), the Pi dies."""
    watch = _boot(pi, core, clock, "a", wall)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(120)
    _ntp(clock, START)
    watch.poll()
    _alive(core, clock, 180)
    watch.poll()


@pytest.mark.parametrize("wall", [SAVED, EPOCH], ids=["saved_shutdown", "1970"])
def test_a_spell_begun_before_ntp_that_the_pi_died_in_is_dated_by_its_boot(pi, core, clock, wall):
    _browned_out(pi, core, clock, wall)
    _boot(pi, core, clock, "b", START + timedelta(minutes=4))  # fake-hwclock's hourly save
    # Before: 22:00 the evening before to 09:03 (11 hours), or, stamped 1970, nothing.
    assert _power(core) == [
        ("2026-07-01T08:58:00+08:00", "2026-07-01T09:03:00+08:00", 5.0, "boot"),
    ]
    assert _power(core, date(2026, 6, 30)) == []  # not the evening of its stamp


def test_its_start_row_keeps_its_boot_and_monotonic_time_and_health_redates_it(
    pi, core, clock, caplog
):
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    watch = _boot(pi, core, clock, "a", SAVED)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    [start] = [r["detail"] for r in core.store.audits() if r["action"].startswith("pi_power.")]
    assert (start["from"], start["clock"]) == ("2026-06-30T14:00:00.000000Z", ["a", 12 * 10**9])
    assert watch.status()["under_voltage_since"] == "2026-06-30T14:00:00+00:00"
    assert "(by a clock NTP has not set yet)" in caplog.records[-1].getMessage()
    clock.advance(30)
    _ntp(clock, START)
    watch.poll()  # the clock set 30 s after the dip: health says when it really began
    assert watch.status()["under_voltage_since"] == "2026-07-01T00:59:30+00:00"


def test_a_throttled_spells_start_line_written_after_ntp_says_the_set_clocks_time(
    pi, core, clock, caplog
):
    """A throttle lingering after a dip turns hot after NTP set the clock: the throttled
    spell's line, written then, says its first reading on the set clock, not the saved time."""
    caplog.set_level(logging.INFO, logger="kiosk.pihealth")
    watch = _boot(pi, core, clock, "a", SAVED)
    for word, temp in ((UNDER, 55.0), (0x40004, 55.0)):
        pi.set(word, temp_c=temp)
        watch.poll()
        clock.advance(10)
    _ntp(clock, START)
    pi.set(0xA000A, temp_c=85.0)
    watch.poll()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("throttled:")]
    assert "from 2026-07-01T00:59:50.000000Z (throttle" in line
    assert watch.status()["throttled_since"] == "2026-07-01T00:59:50+00:00"


def test_a_spell_of_a_boot_never_set_has_no_time_only_its_minutes(pi, core, clock):
    watch = _boot(pi, core, clock, "a", EPOCH)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(120)
    watch.poll()
    _alive(core, clock, 180)  # 5 minutes on, still 1970: the Pi dies
    _boot(pi, core, clock, "b", EPOCH)
    clock.advance(48)
    _ntp(clock, START)  # boot "b" began at 08:59 on the set clock
    _alive(core, clock, 60)
    # The spell was over by the next boot's start: listed that day, its time unknown.
    assert _power(core) == [(None, None, 5.0, "unsynced")]
    assert _power(core, date(2026, 7, 2)) == []
    report = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")
    said = ("Pi under-voltage at a time unknown (the clock was not set; minutes)", 5.0)
    assert said in report_summary(report, "en")  # the day's export: never a false "from"


def test_a_spell_begun_on_a_set_clock_is_read_as_before(pi, core, clock):
    watch = _boot(pi, core, clock, "a", START)
    clock.is_synced = True
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    [start] = [r["detail"] for r in core.store.audits() if r["action"].startswith("pi_power.")]
    assert "clock" not in start
    _alive(core, clock, 600)
    _boot(pi, core, clock, "b", START + timedelta(hours=3))
    assert _power(core) == [
        ("2026-07-01T09:00:00+08:00", "2026-07-01T09:10:00+08:00", 10.0, "clock"),
    ]


def test_two_boots_in_one_day_are_each_dated_by_their_own_clock(pi, core, clock):
    """Boot "a" browns out in its spell (08:58-09:03); boot "b", its clock at the saved time
    again, sags 2 minutes after its start, NTP sets the clock at 09:30 and the spell ends
    on it at 09:31; its start is dated by its own boot (09:28), never by "a"'s."""
    _browned_out(pi, core, clock, SAVED)
    watch = _boot(pi, core, clock, "b", SAVED)  # real 09:26 at 12 s
    pi.set(0, temp_c=55.0)
    watch.poll()
    clock.advance(120)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()  # 09:28
    clock.advance(60)
    watch.poll()  # 09:29: the last dip
    pi.set(0, temp_c=55.0)
    clock.advance(60)
    _ntp(clock, START + timedelta(minutes=30))
    clock.advance(COALESCE_S)
    watch.poll()  # the end row, on the set clock
    assert _power(core) == [
        ("2026-07-01T08:58:00+08:00", "2026-07-01T09:03:00+08:00", 5.0, "boot"),
        ("2026-07-01T09:28:00+08:00", "2026-07-01T09:29:00+08:00", 1.0, "boot"),
    ]


def test_a_spell_begun_and_ended_before_ntp_is_dated_once_its_boot_is(pi, core, clock):
    watch = _boot(pi, core, clock, "a", EPOCH)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(60)
    watch.poll()
    pi.set(0, temp_c=55.0)
    clock.advance(COALESCE_S)
    watch.poll()  # its end row, still 1970
    assert _power(core) == []  # nothing of its boot on a set clock: nothing to place it by
    _ntp(clock, START)
    _alive(core, clock, 0)  # 09:00 on the set clock, 372 s into the boot
    assert _power(core) == [
        ("2026-07-01T08:54:00+08:00", "2026-07-01T08:55:00+08:00", 1.0, "boot"),
    ]


def test_an_earlier_boots_spell_stays_on_its_day_when_its_rows_are_out_of_sight(pi, core, clock):
    """A spell begun before NTP on 25 June and ended on the set clock: its start row, stamped
    1970, is read for every day's report; its end row and the next boot's start (on a set
    clock) are days out of the look-back. It is that day's, never "not over" on 1 July."""
    _sagged_then_set_on_25_june(pi, core, clock)
    core.store.boot_id = "b"
    clock.mono_ns = 12 * 10**9
    _ntp(clock, datetime(2026, 6, 26, 1, 0, tzinfo=UTC))  # boot "b", set before the daemon
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "clean"})
    assert _power(core) == []
    assert _power(core, date(2026, 6, 25)) == [
        ("2026-06-25T08:59:00+08:00", "2026-06-25T09:00:00+08:00", 1.0, "boot"),
    ]


def test_a_start_row_of_an_older_version_is_read_by_its_stamp_as_before(core, clock):
    """A start row written before its rows kept ``clock``, stamped 1970: as before, on no
    recent day's report, never a spell from 1970 to the next boot's last row."""
    clock.set_wall(EPOCH + timedelta(seconds=12))
    clock.is_synced = False
    old = {"from": "1970-01-01T00:00:12.000000Z", "word": "0x50005", "throttled": True}
    core.store.audit("daemon", "pi_power.under_voltage.start", old)
    core.store.boot_id = "b"
    _ntp(clock, datetime(2026, 6, 26, 1, 0, tzinfo=UTC))  # days out of 1 July's look-back
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "unclean"})
    assert _power(core) == []  # not "not over since 1970"


def _sagged_then_set_on_25_june(pi, core, clock) -> None:
    """Boot "a", stamped 1970: the supply sags, NTP sets the clock on 25 June 09:00, the
    spell ends on the set clock (its end row keeps its ``clock`` but is stamped 25 June)."""
    watch = _boot(pi, core, clock, "a", EPOCH)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(60)
    _ntp(clock, datetime(2026, 6, 25, 1, 0, tzinfo=UTC))
    watch.poll()
    pi.set(0, temp_c=55.0)
    clock.advance(COALESCE_S)
    watch.poll()


def _handover(pi, core, clock) -> None:
    _alive(core, clock, 0)


def _daemon_restarted(pi, core, clock) -> None:
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "clean"})


def _handover_then_restart(pi, core, clock) -> None:
    _alive(core, clock, 0)
    clock.advance(60)
    _daemon_restarted(pi, core, clock)


def _handover_then_next_boot(pi, core, clock) -> None:
    _alive(core, clock, 0)
    _boot(pi, core, clock, "b", datetime(2026, 7, 1, 2, 0, tzinfo=UTC))
    clock.is_synced = True


@pytest.mark.parametrize(
    "then",
    [_handover, _daemon_restarted, _handover_then_restart, _handover_then_next_boot],
    ids=["boot_goes_on", "daemon_restarted", "row_then_restart", "next_boot"],
)
def test_a_spell_ended_on_the_set_clock_stays_over_when_its_boot_runs_on_for_days(
    pi, core, clock, then
):
    """Its start row, stamped 1970, is read for every day's report; its end row, stamped 25
    June, was read only within the look-back: every later day read the spell without its end,
    "not over" (to null) or over at a later restart's last row (8646 minutes)."""
    _sagged_then_set_on_25_june(pi, core, clock)
    clock.advance(6 * 86400)  # the same boot, 6 days on: 1 July
    then(pi, core, clock)
    assert _power(core) == []
    assert _power(core, date(2026, 6, 25)) == [
        ("2026-06-25T08:59:00+08:00", "2026-06-25T09:00:00+08:00", 1.0, "boot"),
    ]


def test_the_reports_schema_holds_a_spell_whose_time_is_unknown(pi, core, clock):
    """The OpenAPI schema of ``/api/v1/stats`` said a spell's ``from`` was never null and had
    no ``dating``: a report with an ``unsynced`` spell failed its own model."""
    test_a_spell_of_a_boot_never_set_has_no_time_only_its_minutes(pi, core, clock)
    report = stats.daily_report(core.store.reader(), date(2026, 7, 1), "Asia/Shanghai")
    [spell] = DailyReport.model_validate(report).downtime.power
    assert (spell.from_, spell.to, spell.minutes, spell.dating) == (None, None, 5.0, "unsynced")
    schema = ReportPowerSpell.model_json_schema(by_alias=True)["properties"]
    assert {"type": "null"} in schema["from"]["anyOf"]
    assert schema["dating"]["enum"] == ["clock", "boot", "unsynced"]
    assert "time unknown" in schema["to"]["description"]


@pytest.mark.parametrize(
    "kept",
    [["a", 10**22], ["a", -(10**22)], ["a", -1], ["a" * 10_000, 12 * 10**9]],
    ids=["mono_huge", "mono_hugely_negative", "mono_negative", "boot_id_huge"],
)
def test_a_row_whose_clock_is_absurd_reads_as_one_without_it(core, clock, kept):
    """A start row (a restored backup, a hand-edited file) whose ``clock`` no boot could have
    written made every day's report and ``/api/v1/stats`` fail (OverflowError dating it): it
    is read as a row without ``clock``, by its stamp (1970: on no recent day's report)."""
    clock.set_wall(EPOCH + timedelta(seconds=12))
    clock.is_synced = False
    core.store.boot_id = "a"
    row = {"from": "1970-01-01T00:00:12.000000Z", "word": "0x50005", "clock": kept}
    core.store.audit("daemon", "pi_power.under_voltage.start", row)
    _ntp(clock, START)
    core.store.audit("alice", "roster.handover", {"note": "shift"})  # boot "a" on a set clock
    core.store.boot_id = "b"
    core.store.audit("daemon", stats.DAEMON_START, {"last_stop": "unclean"})
    assert _power(core) == []


def _passage(core) -> None:
    """A passage decided now: an event, stamped by the store's clock, with no audit row."""
    core.store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.6))


def test_a_spell_is_dated_by_an_event_of_its_boot_on_a_set_clock(pi, core, clock):
    """Its boot's only record on a set clock is a passage (``kiosk.dating``'s ``boot_clock``):
    the spell is dated by it, and lasts until it, the boot's last sign of life."""
    watch = _boot(pi, core, clock, "a", SAVED)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(120)
    _ntp(clock, START)
    clock.advance(180)
    _passage(core)  # 09:03 on the set clock; the Pi dies
    _boot(pi, core, clock, "b", START + timedelta(minutes=4))
    assert _power(core) == [
        ("2026-07-01T08:58:00+08:00", "2026-07-01T09:03:00+08:00", 5.0, "boot"),
    ]


def test_a_spells_boot_last_sign_of_life_may_be_an_event_before_ntp(pi, core, clock):
    """The boot never had a set clock; its last record is a passage stamped 1970, 5 minutes
    into the spell: the spell lasted those 5 minutes, not the 0 of its last audit row."""
    watch = _boot(pi, core, clock, "a", EPOCH)
    pi.set(UNDER, temp_c=55.0)
    watch.poll()
    clock.advance(300)
    _passage(core)  # still 1970: the Pi dies
    _boot(pi, core, clock, "b", EPOCH)
    clock.advance(48)
    _ntp(clock, START)
    _alive(core, clock, 60)
    assert _power(core) == [(None, None, 5.0, "unsynced")]


def test_where_a_boots_rows_end_is_read_from_boot_runs_as_from_the_rows(pi, core, clock):
    """``boot_runs`` (migration m008) says where each boot's rows begin, so a report finds
    where an old boot's rows end in one probe rather than reading them all; the report is
    the same whether the table was written by its trigger, filled by the migration from the
    rows already there, or is absent (a log of a version before it)."""
    _browned_out(pi, core, clock, SAVED)
    _boot(pi, core, clock, "b", START + timedelta(minutes=4))
    _passage(core)
    _alive(core, clock, 60)
    expected = [("2026-07-01T08:58:00+08:00", "2026-07-01T09:03:00+08:00", 5.0, "boot")]
    assert _power(core) == expected
    db = sqlite3.connect(core.store.path)
    try:
        written = db.execute("SELECT tbl, boot_id FROM boot_runs ORDER BY tbl, seq").fetchall()
        assert written == [("audit", "a"), ("audit", "b"), ("events", "b")]
        with db:
            db.executescript(
                "DROP TRIGGER audit_boot_runs; DROP TRIGGER events_boot_runs; DROP TABLE boot_runs;"
            )
        assert _power(core) == expected  # a log of a version before it: its rows read
        with db:
            db.executescript(dating.BOOT_RUNS_SQL)  # the migration, over the rows there
        assert db.execute("SELECT tbl, boot_id FROM boot_runs ORDER BY tbl, seq").fetchall() == (
            written
        )
    finally:
        db.close()
    assert _power(core) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ({"from": "not a time"}, {}),
        ({"from": 42}, {"to": "2026-99-99T00:00:00Z"}),
        ({}, {"from": "yesterday", "dated_from": "never", "to": ["x"]}),
    ],
    ids=["start_from", "end_to", "end_from_dated_from"],
)
def test_a_spell_row_whose_times_are_unreadable_is_read_by_its_stamps(core, clock, start, end):
    """A start or end row (a restored backup, a hand-edited file) whose ``from``, ``to`` or
    ``dated_from`` is no time made every day's report and ``/api/v1/stats`` fail
    (ValueError): each such field is read as absent, the row's own stamp standing for it."""
    clock.set_wall(START + timedelta(minutes=5))
    row = {"word": "0x50005"} | start
    core.store.audit("daemon", "pi_power.under_voltage.start", row)
    clock.advance(120)
    core.store.audit("daemon", "pi_power.under_voltage.end", {"word": "0x0"} | end)
    assert _power(core) == [
        ("2026-07-01T09:05:00+08:00", "2026-07-01T09:07:00+08:00", 2.0, "clock")
    ]
