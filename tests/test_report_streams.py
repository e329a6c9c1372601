"""The day's report and the handover's summary read the log's rows one batch at a time
(``kiosk.files.streamed_rows``), never the whole window at once: before, the office's
categories (``kiosk.categories._event_counts``, every event of the day with its person's
JSON) and the quarantine returns of a handover (``kiosk.roster._quarantine_returns``) read
their rows through ``query()``, which holds them all before it returns (100k rows: 181 MB).

What is measured is what the rows' size adds to the peak: the same rows with fat text in
the columns read (``person``, ``flags``) against lean; a read holding the window's rows
at once grows by all of that text, a streamed one by one batch's (``ROWS_PER_USE``)."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from support import reporting_log

from kiosk import roster, stats
from kiosk.clock import FakeClock
from kiosk.store import ROWS_PER_USE, EventDraft

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
ROWS = 16 * ROWS_PER_USE
FAT = 2000  # characters of text in each row's fat column
#: What a batch of fat rows holds in one fat column: a streamed read holds one or two (the
#: next fetched while the last is let go), one holding the window's rows all 16.
BATCH = ROWS_PER_USE * FAT


def _day_of(tmp_path, name: str, pad: int) -> Any:
    """A log holding ``ROWS`` passages and cars of one morning, written straight into the
    table (the chain is not the point), each row's ``person`` and ``flags`` carrying ``pad``
    characters more."""
    log = reporting_log(tmp_path / f"{name}.db", FakeClock(start=START), ledgers=True)
    log.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5))
    conn = sqlite3.connect(log.path)
    try:
        cols = [c[1] for c in conn.execute("PRAGMA table_info(events)")]
        first = conn.execute("SELECT * FROM events").fetchone()
        rows = []
        for seq in range(2, ROWS + 2):
            row = dict(zip(cols, first, strict=True))
            row |= {
                "seq": seq,
                "id": f"bulk-{seq}",
                "ts": (START + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "kind": "vehicle" if seq % 3 == 0 else "passage",
                "person": json.dumps({"plate": "AB123", "occupants": 2, "note": "n" * pad}),
                "flags": json.dumps(["quarantine", "f" * pad]),
            }
            rows.append([row[c] for c in cols])
        conn.executemany(f"INSERT INTO events VALUES ({', '.join('?' * len(cols))})", rows)  # noqa: S608
        conn.commit()
    finally:
        conn.close()
    return log


def _fat_over_lean(tmp_path, read: Callable[[Any], Any]) -> int:
    """What ``read(reader)`` peaks at over the fat rows, less over the lean ones."""
    peaks = []
    for name, pad in (("lean", 0), ("fat", FAT)):
        log = _day_of(tmp_path, name, pad)
        try:
            db = log.reader()
            tracemalloc.start()
            try:
                read(db)
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        finally:
            log.close()
    return peaks[1] - peaks[0]


@pytest.mark.slow  # two logs of 4,096 rows, read under tracemalloc
def test_the_days_report_reads_its_categories_a_batch_at_a_time(tmp_path):
    grown = _fat_over_lean(
        tmp_path, lambda db: stats.compute_report(db, date(2026, 3, 2), "Asia/Shanghai")
    )
    # Two fat columns read (the person, the flags): 32 batches' text held at once before.
    assert grown < 4 * 2 * BATCH, grown


@pytest.mark.slow  # two logs of 4,096 rows, read under tracemalloc
def test_a_handovers_quarantine_returns_read_a_batch_at_a_time(tmp_path):
    summaries: list[dict[str, int]] = []

    def summary(db: Any) -> None:
        until = START + timedelta(hours=2)
        summaries.append(roster.summary_since(db, "gate-1", START, until, open_alarms=0))

    grown = _fat_over_lean(tmp_path, summary)
    assert [s["quarantine_returns"] for s in summaries] == [ROWS] * 2  # the bulk rows, flagged
    assert grown < 4 * BATCH, grown  # the flags, 16 batches' text held at once before
