"""More of a day read past a damaged event row (``tests/test_damaged_day.py``): another
household's damaged row naming the unit visited, left alone by a household's forget; a time
that only looks like one; a guard's fever deny whose decision is damaged, on the desk after a
restart; a damaged deny of another pass of the household right after an exit; and the cost of
finding a day's rows whose time is no time in a log with an unsynchronised row. Each row is
damaged by hand (the append-only triggers dropped). Nothing is written outside
``tmp_path``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, login, make_app
from support import reporting_log
from test_damaged_day import DENIED, ZONE, edit, exit_not_opened, figures
from test_damaged_json_sites import _edit as _sql

from kiosk import queries
from kiosk.alarms import card_unknown
from kiosk.clock import FakeClock
from kiosk.days import day_bounds
from kiosk.people import Person, find, forget
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

DAY = date(2026, 10, 25)


@pytest.fixture
def clock():
    """09:00 UTC on the day (10:00 in Berlin)."""
    return FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path, clock):
    """The reports' log, closed after."""
    log = reporting_log(tmp_path / "k.db", clock)
    yield log
    log.close()


# --- a household's forget and another's damaged row -------------------------------------------


def test_a_household_forgotten_whole_leaves_another_households_damaged_row(tmp_path, clock):
    """5-502's outing let through by hand, the guard's note naming the unit visited
    (``"3-301"``), its person text damaged: forgetting 3-301 whole emptied 5-502's row and
    set its household to '' (5-502's quota look-back lost a real exit), and ``find`` listed
    it as 3-301's. A damaged text is matched only on a row with no household of its own (or
    this one's), an audit row's only for an action whose detail names a household."""
    log = EventLog(tmp_path / "k.db", "gate-1", clock).open()
    try:
        log.append(EventDraft(direction="out", decision="pass", household="3-301", holder="W"))
        note = {"name": "Li S", "note": "3-301"}
        log.append(
            EventDraft(direction="out", decision="manual_pass", household="5-502", person=note)
        )
        log.audit("alice", "report_export", {"note": "3-301", "day": "2026-10-25"})
        _sql(log.path, "UPDATE events SET person = substr(person, 2) WHERE seq = 2")
        _sql(
            log.path,
            "UPDATE audit SET detail = substr(detail, 2) WHERE action = ?",
            "report_export",
        )
        found = find(log.reader(), Person.of(household="3-301"), clock.now().date())
        assert [r["seq"] for r in found.rows.get("events", [])] == [1]
        assert "audit" not in found.counts()
        forget(log, Person.of(household="3-301"), clock.now(), actor="root", force=True)
        row = log.reader().execute("SELECT household, person FROM events WHERE seq = 2")
        assert row.fetchone() == ("5-502", note_text(log.path))
        kept = log.reader().execute("SELECT detail FROM audit WHERE action = 'report_export'")
        assert kept.fetchone()[0] is not None
    finally:
        log.close()


def note_text(path) -> str:
    """The damaged person text of row 2, as stored (read past the forget's own reader)."""
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT person FROM events WHERE seq = 2").fetchone()[0])
    finally:
        db.close()


def test_a_household_forgotten_whole_still_takes_its_own_damaged_row(tmp_path, clock):
    """The household's own row (its household column its code) whose damaged text holds it
    is still taken, as a row with none of its own is."""
    log = EventLog(tmp_path / "k.db", "gate-1", clock).open()
    try:
        note = {"name": "Wang R", "unit": "3-301"}
        log.append(EventDraft(direction="in", decision="pass", household="3-301", person=note))
        log.append(EventDraft(direction="in", decision="deny", kind="registration", person=note))
        _sql(log.path, "UPDATE events SET person = substr(person, 2)")
        done = forget(log, Person.of(household="3-301"), clock.now(), actor="root", force=True)
        left = log.reader().execute("SELECT count(*) FROM events WHERE person IS NOT NULL")
        assert done.rows["events"] == 2 and left.fetchone()[0] == 0
    finally:
        log.close()


# --- a time that only looks like one ----------------------------------------------------------

#: Texts in a time's form that are none: hour 29, day 35, month 18 (a bit flipped).
LOOKS_LIKE_TIME = (
    "'2026-10-25T29:00:05+00:00'",
    "'2026-10-35T09:00:05+00:00'",
    "'2026-18-25T09:00:05+00:00'",
)


@pytest.mark.parametrize("ts", LOOKS_LIKE_TIME)
def test_a_time_in_a_times_form_that_is_none_is_of_the_row_before(ts, store, clock):
    """Before: the deny sorted into another day or none and the day's rows (the console's
    export, the API's) left it out: the exit read as a pass. Now the row is of its own day,
    as a ``ts`` of words is."""
    exit_not_opened(store, clock)
    edit(store.path, 2, "ts", ts)
    start, end = day_bounds(DAY, ZONE)
    rows = queries.event_rows_between(store, start, end)
    assert [r["seq"] for r in rows] == [1, 2]
    assert figures(daily_report(store.reader(), DAY, ZONE)) == DENIED
    for later in (date(2026, 10, 26), date(2026, 10, 31), date(2027, 1, 1)):
        assert daily_report(store.reader(), later, ZONE)["events"] == 0


# --- the desk: a fever deny whose decision is damaged ------------------------------------------


@pytest.mark.parametrize("decision", ["manual_denx", "maybe"])
def test_a_guards_fever_deny_whose_decision_is_damaged_is_on_the_unreadable_card(
    decision, guard_core, clock
):
    """A guard's fever ``manual_deny`` whose decision is damaged: after a restart the desk
    raised no card at all (neither the fever's nor the unreadable rows'). It is named on the
    card of the rows that cannot be read."""
    guard_core.store.append(
        EventDraft(
            direction="in",
            decision="manual_deny",
            reasons=("fever",),
            temp_c=38.5,
            operator="alice",
            holder="Zhangsan Secret",
        )
    )
    _sql(guard_core.store.path, "UPDATE events SET decision = ? WHERE seq = 1", decision)
    clock.advance(60)
    with TestClient(make_app(guard_core), base_url=BASE, raise_server_exceptions=False) as client:
        login(client)
        answer = client.get("/guard/api/feed")
    assert answer.status_code == 200
    alarms = answer.json()["alarms"]
    assert [(a["key"], a["kind"]) for a in alarms] == [("device:unreadable_rows", "device")]
    assert "Zhangsan" not in str(alarms)


def test_card_unknown_takes_a_decision_the_log_never_records():
    row = {"seq": 1, "decision": "manual_denx", "reasons": '["fever"]', "flags": "[]"}
    assert card_unknown(row)
    assert not card_unknown({**row, "decision": "manual_deny"})
    assert not card_unknown({**row, "decision": "manual_pass"})


# --- the not_opened guess: the same person ------------------------------------------------------


def test_a_damaged_deny_of_another_pass_of_the_household_undoes_no_exit(store, clock):
    """A mother's exit, then her child's fever deny (same household, gate and direction) 5 s
    later, its flags damaged: read as the row saying the gate did not open for the mother,
    her real exit was undone. Two passes are two people."""
    mother = {"pass_id": "aa01aa01aa01", "household": "A-101", "holder": "Mother"}
    child = {"pass_id": "aa02aa02aa02", "household": "A-101", "holder": "Child"}
    store.append(
        EventDraft(direction="out", decision="pass", reasons=("ok",), temp_c=36.5, **mother)
    )
    clock.advance(5)
    deny = EventDraft(direction="out", decision="deny", reasons=("fever",), temp_c=38.6, **child)
    store.append(deny)
    edit(store.path, 2, "flags", "'[\"alarm:fev'")
    assert figures(daily_report(store.reader(), DAY, ZONE)) == (
        1,
        {"deny": 1, "pass": 1},
        (1, 1),
        1,
    )


def test_a_damaged_deny_of_the_same_pass_still_undoes_its_exit(store, clock):
    """The guess stands for the same pass (and for a row naming none)."""
    exit_not_opened(store, clock)
    edit(store.path, 2, "flags", "'[\"not_opened:'")
    assert figures(daily_report(store.reader(), DAY, ZONE)) == DENIED


# --- the cost of a day's undated rows ------------------------------------------------------------


def _steps(db: sqlite3.Connection, run) -> int:
    """How many SQLite VM steps (in thousands) ``run`` takes on ``db``."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    db.set_progress_handler(tick, 1000)
    try:
        run()
    finally:
        db.set_progress_handler(None, 1000)
    return counted[0]


def _day_cost(tmp_path, clock, later: int) -> int:
    """The steps of reading one day's rows of a log with an unsynchronised row (the dated
    view) and ``later`` rows on the days after it."""
    log = reporting_log(tmp_path / f"k{later}.db", clock)
    try:
        clock.is_synced = False
        log.append(EventDraft(direction="in", decision="deny", reasons=("ok",)))
        clock.is_synced = True
        clock.advance(3600)
        exit_not_opened(log, clock)
        edit(log.path, 3, "ts", "'garbage'")
        clock.advance(86400)  # the rows after it: on the days after
        for _ in range(later):
            clock.advance(600)
            log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
        start, end = day_bounds(DAY, ZONE)
        reader = log.reader()
        assert reader.execute("SELECT count(*) FROM dated_events").fetchone()[0] == later + 3
        rows: list[list[int]] = []
        cost = _steps(
            reader.conn,
            lambda: rows.append([r["seq"] for r in queries.event_rows_between(log, start, end)]),
        )
        assert rows == [[1, 2, 3]]
        return cost
    finally:
        log.close()


@pytest.mark.slow
def test_a_days_undated_rows_are_found_without_walking_the_log(tmp_path):
    """With a row stamped on an unsynchronised clock the day is read from the dated view, and
    finding its rows whose time is no time walked every row of the log after it (0.13-0.18 s
    a day at 112,000 rows): the cost grew with the log. It stays the day's."""
    start = datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    small = _day_cost(tmp_path, FakeClock(start=start), 20)
    big = _day_cost(tmp_path, FakeClock(start=start), 400)
    assert big <= small + 2, (small, big)


def test_the_undated_rows_are_still_the_days_own(tmp_path):
    """Bounded by the day's span of ``seq``: the undated row of each day is of its day."""
    clock = FakeClock(start=datetime(2026, 10, 25, 7, 0, tzinfo=UTC))
    log = reporting_log(tmp_path / "k.db", clock)
    try:
        clock.is_synced = False
        log.append(EventDraft(direction="in", decision="deny", reasons=("ok",)))
        clock.is_synced = True
        for _ in range(3):
            log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
            log.append(EventDraft(direction="in", decision="deny", reasons=("ok",)))
            clock.advance(86400)
        for seq in (3, 5, 7):
            edit(log.path, seq, "ts", "'garbage'")
        seqs = []
        for k in range(3):
            start, end = day_bounds(DAY + timedelta(days=k), ZONE)
            seqs.append([r["seq"] for r in queries.event_rows_between(log, start, end)])
        assert seqs == [[1, 2, 3], [4, 5], [6, 7]]
    finally:
        log.close()
