"""Events stamped before NTP stepped the clock belong to the day they happened on.

A Pi boots with its wall clock at 1970 (a fresh image) or at the time saved at the last
shutdown; its events are flagged ``clock_synced = false`` until NTP steps the clock. The same
boot's monotonic clock dates them once a synchronised event shows the offset
(``kiosk.dating``). Passages of a boot that never synchronised are counted apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk.clock import FakeClock
from kiosk.stats import daily_report, freeze_days
from kiosk.store import EventDraft

TZ = "Asia/Shanghai"
DAY = date(2026, 3, 2)  # 2026-03-01T16:00Z .. 2026-03-02T16:00Z
#: The real moment of the boot: 09:00 on 2 March in Shanghai.
BOOT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A Pi just booted on a fresh image: 1970, not synchronised."""
    return FakeClock(start=EPOCH, is_synced=False)


@pytest.fixture
def store(tmp_path, clock):
    from support import reporting_log

    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    yield log
    log.close()


def passage(store, **kw):
    fields = {"direction": "in", "decision": "pass", "reasons": ("ok",), "temp_c": 36.6}
    fields.update(kw)
    return store.append(EventDraft(**fields))


def ntp_step(clock: FakeClock, real: datetime) -> None:
    clock.set_wall(real)
    clock.is_synced = True


def test_passages_before_the_ntp_step_are_in_the_real_days_report(store, clock):
    clock.advance(600)  # 09:10 really; the clock says 1970-01-01 00:10
    passage(store, direction="out", household="1-101")
    clock.advance(600)  # 09:20
    passage(store, decision="deny", reasons=("fever",), temp_c=38.6)
    clock.advance(600)  # 09:30: NTP answers
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)  # 09:40
    passage(store)

    report = daily_report(store.reader(), DAY, TZ)
    assert report["events"] == 3
    assert report["by_hour"][9] == 3
    assert report["fever_alarms"] == {
        "count": 1,
        "people": 1,
        "times": ["09:20:00"],
        "at": ["2026-03-02T09:20:00+08:00"],
    }
    assert report["by_decision"] == {"deny": 1, "pass": 2}
    assert report["community"]["people"]["out"] == 1
    assert report["clock"] == {"redated": 2, "unsynced": 0}
    assert daily_report(store.reader(), EPOCH.date(), TZ)["events"] == 0


def test_a_boot_that_never_synchronised_is_counted_apart_on_its_clocks_day(store, clock):
    """No network at the gate: no offset ever. Its passages stay on the day its clock said
    (the best there is), and the report says how many were dated by an unsynced clock."""
    clock.set_wall(BOOT)  # the time saved at the last shutdown: right, as far as it goes
    passage(store)
    clock.advance(60)
    passage(store)
    report = daily_report(store.reader(), DAY, TZ)
    assert report["events"] == 2
    assert report["clock"] == {"redated": 0, "unsynced": 2}


def test_a_day_frozen_before_its_boot_was_dated_is_counted_again(store, clock):
    """The retention freeze ran after NTP synced but before the next passage told the
    boot's offset: the day was frozen without the early passages, 1970 with them."""
    clock.advance(600)
    passage(store)
    passage(store, direction="out", household="2-202")
    ntp_step(clock, BOOT + timedelta(days=1, minutes=10))  # the passages: 3 March, 09:10
    assert freeze_days(store, TZ, None, clock.now()) == [EPOCH.date()]
    clock.advance(24 * 3600)
    assert freeze_days(store, TZ, None, clock.now()) == []
    passage(store)  # tells the boot's offset
    assert daily_report(store.reader(), DAY + timedelta(days=1), TZ)["events"] == 2
    assert daily_report(store.reader(), EPOCH.date(), TZ)["events"] == 0
    frozen = freeze_days(store, TZ, None, clock.now())
    assert frozen == [EPOCH.date(), DAY + timedelta(days=1)]
    assert daily_report(store.reader(), DAY + timedelta(days=1), TZ)["events"] == 2
    assert daily_report(store.reader(), EPOCH.date(), TZ)["events"] == 0


def test_the_handover_counts_a_fever_stamped_before_the_ntp_step(store, clock):
    from kiosk.roster import summary_since

    clock.advance(600)
    passage(store, decision="deny", reasons=("fever",), temp_c=38.6)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    passage(store)
    summary = summary_since(
        store.reader(), "gate-1", BOOT - timedelta(hours=1), BOOT + timedelta(hours=8), 0
    )
    assert summary["fevers"] == 1


def test_an_old_log_gets_its_boots_dated_when_it_is_opened(tmp_path, clock):
    """A log written before ``boot_clock`` existed: the migration reads every boot's first
    synchronised event, so its earlier passages are dated too."""
    import sqlite3

    from support import reporting_log

    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock)
    clock.advance(600)
    passage(log)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    passage(log)
    log.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP VIEW dated_events; DROP VIEW redated_events; DROP TRIGGER events_boot_clock;"
        " DROP TABLE boot_clock;"
        " DROP INDEX events_unsynced;"
        " DELETE FROM _sqlite_migrations WHERE name = 'm003_dated_events';"
    )
    conn.close()
    log = reporting_log(path, clock)
    try:
        assert daily_report(log.reader(), DAY, TZ)["events"] == 2
    finally:
        log.close()


def test_the_guards_export_of_the_day_holds_passages_stamped_before_the_ntp_step(store, clock):
    """The console's day table (CSV/Excel, ``queries.event_rows_between``) at the time they
    happened, not missing (they sat on 1 January 1970)."""
    from kiosk import queries
    from kiosk.days import day_bounds

    clock.advance(600)
    passage(store, decision="deny", reasons=("fever",), temp_c=38.6)
    clock.advance(600)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    passage(store)
    rows = queries.event_rows_between(store, *day_bounds(DAY, TZ))
    assert [r["ts"] for r in rows] == [
        "2026-03-02T01:20:00.000000Z",
        "2026-03-02T01:30:00.000000Z",
    ]


def test_a_returnees_gate_reading_before_the_ntp_step_is_that_days_check(store, clock):
    """A returnee measured at the gate at 09:10, minutes after a power cut (the Pi's clock at
    1970 until NTP answered at 09:30), had no check that day in the ledger: its reading was
    looked for by the stamp, not by when it happened, so at 20:00 the guard got a
    'missed check' alarm for someone the gate had measured in the morning."""
    from kiosk.observation import ObservationLedger

    clock.advance(600)  # 09:10 really; the clock says 1970-01-01 00:10
    passage(store, direction="out", household="3-2-701", holder="Wang L", temp_c=36.7)
    clock.advance(1200)  # 09:30: NTP answers
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)  # 09:40: the next passage, on the synchronised clock, dates the boot
    passage(store)
    ledger = ObservationLedger(store, clock, TZ)
    person = ledger.register(
        name="Wang L", household="3-2-701", phone="", origin="Wuhan", date_back=DAY,
        actor="manager",
    )  # fmt: skip
    assert [c.day for c in ledger.checks(person.id)] == [DAY]
    clock.set_wall(BOOT + timedelta(hours=12))  # 21:00, past the 20:00 check
    assert [a.kind for a in ledger.alarms()] == []


def test_a_households_passages_show_when_they_happened_not_the_boots_1970_stamp(store, clock):
    """The map's household page listed a passage made before NTP stepped the clock at
    '1970-01-01 08:10', while the day's export and report put it at 09:10 on 2 March."""
    from kiosk.compound import CompoundMap

    clock.advance(600)  # 09:10 really; the clock says 1970-01-01 00:10
    passage(store, direction="out", household="3-2-701")
    clock.advance(1200)  # 09:30: NTP answers
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)  # 09:40
    passage(store, household="3-2-701")
    shown = [datetime.fromisoformat(p["ts"]) for p in CompoundMap(store, clock).passages("3-2-701")]
    assert shown == [BOOT + timedelta(minutes=40), BOOT + timedelta(minutes=10)]  # newest first
