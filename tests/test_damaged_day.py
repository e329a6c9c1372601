"""A day's report on an event row damaged by hand or by bit rot (the append-only trigger
dropped first), past what the reasons, flags, temperature and person of a row can lose
(``tests/test_damaged_rows.py``): its time that is no time, a decision the log never records,
the flags of the deny that said the gate did not open. Each was read as something the row
never said: the row gone from its day with ``unreadable_rows`` 0 (the office told the day is
whole) and the pass before it standing as an outing, or a decision kind of its own. Now each
is counted as unreadable, never as a pass; a deny is kept. The console's pages and the two
CSV exports name a damaged row's fields. Also: another household's damaged row naming the
unit visited, left alone by a household's forget; a time that only looks like one; a guard's
fever deny whose decision is damaged, on the desk after a restart; a damaged deny of another
pass of the household right after an exit; and the cost of finding a day's rows whose time is
no time in a log with an unsynchronised row."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, login, make_app
from support import kiosk_api, reporting_log
from test_damaged_json_sites import _edit as _sql
from test_damaged_sql import GUARDS_FEVER_DENY

from kiosk import queries
from kiosk.alarms import card_unknown
from kiosk.clock import FakeClock
from kiosk.days import day_bounds
from kiosk.people import Person, find, forget
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

DAY = date(2026, 10, 25)
ZONE = "Europe/Berlin"
#: A ``ts`` that is no time: words (sorting after every day), a day's date with words after it
#: (sorting into the next day: "g" after "2"), a time out of range, a number; texts in a
#: time's form that are none (hour 29, day 35, month 18).
NO_TIME = (
    "'garbage'",
    "'2026-10-25Tgarbage'",
    "'2026-10-25T99:99:99+00:00'",
    "5",
    "'2026-10-25T29:00:05+00:00'",
    "'2026-10-35T09:00:05+00:00'",
    "'2026-18-25T09:00:05+00:00'",
)


def edit(path, seq: int, column: str, sql: str) -> None:
    """Set row ``seq``'s ``column`` to the SQL value ``sql`` by hand."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS events_append_only_update")
    db.execute(f"UPDATE events SET {column} = {sql} WHERE seq = ?", [seq])  # noqa: S608
    db.commit()
    db.close()


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path, clock):
    log = reporting_log(tmp_path / "k.db", clock)
    yield log
    log.close()


WHO = {"pass_id": "aa01aa01aa01", "household": "A-101", "holder": "R"}


def exit_not_opened(store, clock, **who: str) -> None:
    """A resident's exit pass (seq 1); the gate did not open: the kiosk's deny (seq 2)."""
    who = who or WHO
    out = store.append(
        EventDraft(direction="out", decision="pass", reasons=("ok",), temp_c=36.5, **who)
    )
    clock.advance(5)
    store.append(
        EventDraft(
            direction="out",
            decision="deny",
            reasons=("gate_fault",),
            temp_c=36.5,
            flags=(f"not_opened:{out.seq}",),
            **who,
        )
    )


def figures(report: dict) -> tuple:
    passages = report["passages"]
    return (
        report["unreadable_rows"],
        report["by_decision"],
        (passages["passed"], passages["denied"]),
        report["exits_per_household"]["households"],
    )


#: The exit the gate did not open for, its deny damaged: one unreadable row, one denied
#: passage, no household out.
DENIED = (1, {"deny": 1, "pass": 1}, (0, 1), 0)


@pytest.mark.parametrize("ts", NO_TIME)
def test_a_deny_whose_time_is_no_time_is_counted_in_its_day(ts, store, clock):
    """Before: the row was in no day (or in the next, whose report raised ValueError, or in
    this one, raising): the day read as whole, the exit as a pass and an outing."""
    exit_not_opened(store, clock)
    clock.advance(86400)
    store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5))
    edit(store.path, 2, "ts", ts)
    assert figures(daily_report(store.reader(), DAY, ZONE)) == DENIED
    next_day = daily_report(store.reader(), date(2026, 10, 26), ZONE)
    assert (next_day["unreadable_rows"], next_day["by_decision"]) == (0, {"pass": 1})


def test_a_deny_whose_time_is_no_time_is_dated_as_the_row_before_it(store, clock):
    exit_not_opened(store, clock)
    edit(store.path, 2, "ts", "'garbage'")
    report = daily_report(store.reader(), DAY, ZONE)
    assert report["by_hour"][10] == 2  # 09:00 UTC, 10:00 in Berlin: both rows
    assert sum(h["events"] for h in report["hours"]) == report["events"] == 2


def test_a_pass_whose_time_is_no_time_is_counted_and_no_pass(store, clock):
    exit_not_opened(store, clock)
    edit(store.path, 1, "ts", "'garbage'")
    clock.advance(60)
    store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5))
    report = daily_report(store.reader(), DAY, ZONE)
    assert report["unreadable_rows"] == 1
    assert report["by_decision"] == {"deny": 1, "pass": 1}  # the later pass alone
    assert report["exits_per_household"]["households"] == 0


@pytest.mark.parametrize("decision", ["'maybe'", "'PASS'", "''"])
def test_a_damaged_decision_is_counted_unreadable_and_never_a_pass(decision, store, clock):
    """Before: a decision kind of its own in ``by_decision`` (``{"maybe": 1}``), unreadable 0
    (an empty one: {"": 1})."""
    exit_not_opened(store, clock)
    edit(store.path, 2, "decision", decision)
    assert figures(daily_report(store.reader(), DAY, ZONE)) == DENIED


def test_a_damaged_decision_of_a_pass_reads_as_a_deny(store, clock):
    store.append(EventDraft(direction="out", decision="pass", reasons=("ok",), **WHO))
    edit(store.path, 1, "decision", "'pazz'")
    report = daily_report(store.reader(), DAY, ZONE)
    assert figures(report) == (1, {"deny": 1}, (0, 1), 0)


@pytest.mark.parametrize("flags", ["'[\"not_opened:'", "'\"not_opened:1\"'", "'{}'"])
def test_the_not_opened_deny_whose_flags_are_damaged_still_undoes_its_pass(flags, store, clock):
    """Before: its link lost, the pass it undid counted as passed and as the household's
    outing, the deny as a passage of its own."""
    exit_not_opened(store, clock)
    edit(store.path, 2, "flags", flags)
    report = daily_report(store.reader(), DAY, ZONE)
    assert figures(report) == DENIED
    assert report["passages"]["total"] == 1


def test_a_damaged_deny_of_someone_else_undoes_no_pass(store, clock):
    exit_not_opened(store, clock)
    clock.advance(60)
    store.append(EventDraft(direction="out", decision="pass", reasons=("ok",), **WHO))
    clock.advance(60)
    other = {"pass_id": "bb02bb02bb02", "household": "B-202", "holder": "S"}
    store.append(EventDraft(direction="out", decision="deny", reasons=("fever",), **other))
    edit(store.path, 4, "flags", "'[\"x'")
    report = daily_report(store.reader(), DAY, ZONE)
    assert report["unreadable_rows"] == 1
    assert (report["passages"]["passed"], report["passages"]["denied"]) == (1, 2)
    assert report["exits_per_household"]["households"] == 1


def test_not_opened_for_reads_a_damaged_link_as_none(store, clock):
    """Before: JSONDecodeError out of ``queries.not_opened_after`` (the passage page's)."""
    exit_not_opened(store, clock)
    edit(store.path, 2, "flags", "'[\"not_opened:1'")
    assert queries.not_opened_for(store, 1) is None
    assert queries.not_let_through(store, [{"seq": 1, "decision": "pass"}]) == set()


@pytest.mark.parametrize("detail", ["'[1]'", "'\"text\"'", "'7'"])
def test_an_audit_detail_that_is_no_object_reads_as_empty(detail, store):
    """Before: a list, a text or a number was the note's detail, which its readers ask
    ``.get`` of (the alarm board's bundle scan)."""
    store.audit("alice", "lists.bundle", {"k": 1})
    db = sqlite3.connect(store.path)
    for trigger in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        if "audit" in trigger[0] and "update" in trigger[0]:
            db.execute(f"DROP TRIGGER {trigger[0]}")
    db.execute(f"UPDATE audit SET detail = {detail}")  # noqa: S608
    db.commit()
    db.close()
    [(_, note)] = queries.audits_after(store, "lists.bundle", 0)
    assert note.detail == {}


def guards_export(core, clock, column: str, sql: str) -> list[list[str]]:
    """The guard's CSV of the day (header first): the exit the gate did not open for, its
    deny's ``column`` set to ``sql``."""
    exit_not_opened(core.store, clock)
    edit(core.store.path, 2, column, sql)
    clock.advance(60)
    with TestClient(make_app(core), base_url=BASE) as c:
        login(c)
        answer = c.get("/guard/export.csv", params={"day": "2026-10-25", "lang": "en"})
    assert answer.status_code == 200
    return list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))


def test_the_guards_export_names_the_damaged_fields(guard_core, clock):
    rows = guards_export(guard_core, clock, "temp_c", "'hot'")
    assert [row[-1] for row in rows[1:]] == ["", "temp_c"]
    assert len({len(row) for row in rows}) == 1


def test_the_api_csv_names_the_damaged_fields(tmp_path, clock):
    api = kiosk_api(tmp_path / "k.db", "gate-1", clock, scopes=("logs:read",))
    try:
        exit_not_opened(api.store, clock)
        edit(api.store.path, 2, "reasons", "'{x'")
        answer = api.test_client.get(
            "/api/v1/events.csv", headers={"Authorization": f"Bearer {api.token}"}
        )
    finally:
        api.store.close()
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["unreadable"] for r in rows] == ["", '["reasons"]']
    assert rows[1]["reasons"] == "{x"  # the stored text, passed on


def test_the_guards_export_keeps_a_row_whose_time_is_no_time(guard_core, clock):
    """Before: the deny was in no day's file (its ``ts`` in no day's range)."""
    rows = guards_export(guard_core, clock, "ts", "'garbage'")
    assert [row[-1] for row in rows[1:]] == ["", "ts"]
    assert rows[2][0] == "garbage"  # the stored text, named in the last column


def test_the_consoles_pages_draw_a_damaged_not_opened_link(guard_core, clock):
    """Before: the live page, its feed and the pass's passage page were 500s
    (JSONDecodeError out of ``queries.not_opened_after``)."""
    exit_not_opened(guard_core.store, clock)
    edit(guard_core.store.path, 2, "flags", "'[\"not_opened:1'")
    clock.advance(60)
    pages = ("/guard/", "/guard/api/feed", "/guard/passage/1", "/guard/passage/2")
    with TestClient(make_app(guard_core), base_url=BASE, raise_server_exceptions=False) as c:
        login(c)
        status = {page: c.get(page).status_code for page in pages}
    assert status == dict.fromkeys(pages, 200)


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
    guard_core.store.append(GUARDS_FEVER_DENY)
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
