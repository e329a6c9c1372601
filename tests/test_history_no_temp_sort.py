"""The daemon's start reads the history's look-back (a month of passages) from the log
(``EngineRunner._load_history``). Read on ``events_ts`` and then sorted by ``seq``, those rows
went through SQLite's temp files (``USE TEMP B-TREE FOR ORDER BY``: /var/tmp, on a Pi the same
card): a card with a few MB free refused the start with ``SQLITE_FULL``, and systemd restarted
the daemon every 3 s for ever. The look-back is walked in ``seq`` order from the first row
stamped since: no temp file, the same rows in the same order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.clock import FakeClock
from kiosk.dating import dated_source
from kiosk.links import NOT_OPENED_ROWS
from kiosk.runner import PASSING, _history_rows, _history_sql, _redated_sql, _undated_sql
from kiosk.store import EventDraft, EventLog, format_ts

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


@pytest.fixture
def log(tmp_path):
    clock = FakeClock(start=START)
    opened = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    # Passages and refusals a day apart, then the clock stepped back a week (a row stamped
    # before rows stored earlier), then on again.
    for day, decision in enumerate(["pass", "deny", "manual_pass", "pass", "pass", "deny"]):
        clock.set_wall(START + timedelta(days=day))
        opened.append(EventDraft(direction="in" if day % 2 else "out", decision=decision))
    clock.set_wall(START - timedelta(days=7))
    opened.append(EventDraft(direction="in", decision="pass"))
    clock.set_wall(START + timedelta(days=2, hours=1))
    opened.append(EventDraft(direction="out", decision="pass"))
    yield opened
    opened.close()


@pytest.mark.parametrize("passing", [PASSING, NOT_OPENED_ROWS])
def test_the_look_back_needs_no_temp_file(log, passing):
    sql = _history_sql(passing)
    args = {"since": format_ts(START), "boot": log.boot_id}
    plan = [str(row[-1]) for row in log.reader().execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert not any(step.startswith("SCAN events") for step in plan), plan


@pytest.mark.parametrize(
    ("days", "seqs"),
    [(-30, [1, 3, 4, 5, 7, 8]), (0, [1, 3, 4, 5, 8]), (2, [3, 4, 5, 8]), (3, [4, 5]), (30, [])],
)
def test_the_look_back_reads_the_same_rows_in_the_same_order(log, days, seqs):
    args = {"since": format_ts(START + timedelta(days=days)), "boot": log.boot_id}
    rows = list(log.reader().query(_history_sql(), args))
    assert [r["seq"] for r in rows] == seqs


#: The look-back of a log with events stamped before NTP synced, as one query (before): both
#: sides sorted together in SQLite's temp files.
OLD_DATED = (
    "SELECT seq, pass_id, household, direction, decision, {ts} AS ts, flags,"
    " CASE WHEN {undated} THEN mono_ns END AS undated_mono_ns FROM {source}"
    " WHERE {passing} AND {ts} >= :since UNION"
    " SELECT seq, pass_id, household, direction, decision, {ts} AS ts, flags,"
    " CASE WHEN {undated} THEN mono_ns END AS undated_mono_ns FROM {source}"
    " WHERE {passing} AND {undated} ORDER BY seq"
)
UNDATED = "clock_synced = 0 AND boot_id = :boot AND dating = 'unsynced'"


def _old(db, source, ts, passing, args):
    sql = OLD_DATED.format(ts=ts, undated=UNDATED, source=source, passing=passing)
    return [dict(row) for row in db.query(sql, args)]


def _new(db, source, passing, args):
    with _history_rows(db, source, args, passing) as rows:
        return [dict(row) for row in rows]


def _unsynced_boot(tmp_path, clock):
    """A log whose first event was stamped before NTP synced (a Pi without a clock)."""
    clock.is_synced = False
    opened = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    opened.append(EventDraft(direction="in", decision="pass"))
    clock.is_synced = True
    return opened


@pytest.mark.parametrize("passing", [PASSING, NOT_OPENED_ROWS])
def test_the_look_back_of_a_log_with_an_unsynced_event_needs_no_temp_file(tmp_path, passing):
    """One event stamped before NTP synced (every boot of a Pi without a clock) made the
    look-back one ``UNION ... ORDER BY seq`` over ``dated_events``: a month of passages
    sorted in temp files again. Each part is read in its own order (or unordered)."""
    clock = FakeClock(start=START)
    log = _unsynced_boot(tmp_path, clock)
    for _ in range(20):
        clock.advance(60)
        log.append(EventDraft(direction="in", decision="pass"))
    db = log.reader()
    assert dated_source(db) == ("dated_events", "dated_ts")
    args = {"since": format_ts(START), "boot": log.boot_id}
    for sql in (_history_sql(passing, dated=True), _undated_sql(passing), _redated_sql(passing)):
        plan = [str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
        assert not any("TEMP B-TREE" in step for step in plan), plan
        assert not any(step.startswith("SCAN events") for step in plan), plan
    log.close()


def _random_log(tmp_path, rng: random.Random):
    """Boots (a new boot id each), some starting before NTP synced and some never synced, a
    clock stepped back and forth: the rows of every kind ``dated_events`` holds."""
    clock = FakeClock(start=START)
    log = None
    for boot in range(rng.randint(1, 4)):
        if log is not None:
            log.close()
        clock.is_synced = rng.random() < 0.3
        log = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
        for _ in range(rng.choice([0, 1, 5, 30])):
            clock.advance(rng.randint(1, 90000))
            if rng.random() < 0.2:
                clock.set_wall(START + timedelta(hours=rng.randint(-1500, 1500)))
            if not clock.is_synced and rng.random() < 0.2 and boot % 2 == 0:
                clock.is_synced = True
            decision = rng.choice(["pass", "deny", "manual_pass"])
            log.append(EventDraft(direction=rng.choice(["in", "out"]), decision=decision))
    assert log is not None
    return log


@pytest.mark.parametrize("trial", range(12))
def test_the_merged_look_back_reads_what_the_one_query_read(tmp_path, trial):
    rng = random.Random(trial)
    log = _random_log(tmp_path, rng)
    db = log.reader()
    source, ts = dated_source(db)
    for hours in (-100000, -1000, 0, 400, 1000, 100000):
        args = {"since": format_ts(START + timedelta(hours=hours)), "boot": log.boot_id}
        for passing in (PASSING, NOT_OPENED_ROWS):
            if source == "events":
                old = [dict(r) for r in db.query(_history_sql(passing), args)]
            else:
                old = _old(db, source, ts, passing, args)
            assert _new(db, source, passing, args) == old, (hours, passing)
    log.close()
