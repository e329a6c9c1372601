"""The daemon's start reads the history's look-back (a month of passages) from the log
(``EngineRunner._load_history``). Read on ``events_ts`` and then sorted by ``seq``, those rows
went through SQLite's temp files (``USE TEMP B-TREE FOR ORDER BY``: /var/tmp, on a Pi the same
card): a card with a few MB free refused the start with ``SQLITE_FULL``, and systemd restarted
the daemon every 3 s for ever. The look-back is walked in ``seq`` order from the first row
stamped since: no temp file, the same rows in the same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kiosk.clock import FakeClock
from kiosk.links import NOT_OPENED_ROWS
from kiosk.runner import PASSING, _history_sql
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
    sql = _history_sql("events", "ts", passing)
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
    rows = list(log.reader().query(_history_sql("events", "ts"), args))
    assert [r["seq"] for r in rows] == seqs
