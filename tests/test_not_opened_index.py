"""The rows saying the gate did not open for a pass (``not_opened:<seq>``, ``kiosk.links``)
are looked for at every render of the guard's feed, each row its stream sends, each
passage's page and each peer's page: every such query was a walk of every row after the
pass (60 ms at 400,000 rows on a PC, several times that on a Pi). Each is a search of an
index now (``events_not_opened``, migration ``m007_not_opened_rows``), however long the log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kiosk import queries
from kiosk.clock import FakeClock
from kiosk.store import EventLog

#: The one query's forms (``queries.not_opened_sql``): the feed's and a passage's page, a
#: peer's page (the first rows), a household's outings at the peers (its spellings).
QUERIES = {
    "after": (queries.not_opened_sql(), [1]),
    "first_rows": (queries.not_opened_sql(limited=True), [1, 10]),
    "household": (queries.not_opened_sql(households=2), [1, "A-101", "a-101"]),
}


@pytest.fixture
def log(tmp_path):
    clock = FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    opened = EventLog(tmp_path / "kiosk.db", "gate-1", clock).open()
    yield opened
    opened.close()


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_query_for_not_opened_rows_searches_an_index(log, name):
    sql, args = QUERIES[name]
    plan = [str(row[-1]) for row in log.reader().execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert plan[0].startswith("SEARCH events USING INDEX"), plan
    assert not any(step.startswith("SCAN") for step in plan), plan
    if name != "household":  # that one may take the household's index (as bounded)
        assert "events_not_opened" in plan[0], plan
