"""When an event happened, for the reports: its ``ts``, or the time its boot's clock gave it
once that clock was synchronised.

A Raspberry Pi has no battery-backed clock. Until NTP steps the clock, a boot's events are
stamped by a wall clock that is wrong (1970 on a fresh image, the saved time of the last
shutdown after a power cut) and flagged ``clock_synced = false``. Their ``mono_ns`` is right:
the monotonic clock runs from the boot, whatever the wall clock does. So once the same boot
records an event on a synchronised clock, ``ts - mono_ns`` of that event is the boot's offset
between the two clocks, and ``offset + mono_ns`` dates every earlier event of the boot.

The log keeps that offset per boot in ``boot_clock`` (filled by a trigger on the first
synchronised event of each boot; ``seq`` is that event's), and the view ``dated_events`` is
``events`` with two more columns:

* ``dated_ts``: the time the reports cut days by, in ``ts``'s own fixed-width form: ``ts`` for
  a synchronised event, ``boot_clock.offset_ms + mono_ns`` (to the millisecond) for an
  unsynchronised one its boot dated later;
* ``dating``: how: ``clock`` (synchronised when stamped), ``boot`` (dated by its boot's
  synchronised clock), ``unsynced`` (its boot never recorded a synchronised event: ``ts`` is
  the unsynchronised clock's guess, which the reports count apart);
* ``dated_by``: for ``boot``, the ``seq`` of the synchronised event that dated it (a day
  frozen before it is counted again: ``kiosk.stats``).

``redated_events`` holds the ``boot`` rows alone (what moved, cheaply). A log without any
unsynchronised event reads ``events`` itself (``dated_source``): the same rows.

Nothing is rewritten: ``ts`` stays what the clock said (the hash chain covers it) and the
record is unchanged; the dating is derived from hashed fields (``boot_id``, ``mono_ns``,
``clock_synced``, ``ts``), so anyone holding the rows can repeat it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .clock import ClockReading

__all__ = [
    "BOOT_RUNS_SQL",
    "DATED_EVENTS_SQL",
    "age_s",
    "dated_source",
    "dated_ts_sql",
    "has_unsynced",
    "retention_offsets",
    "run_end",
]


def _offset_ms(ts: str, mono_ns: str) -> str:
    """SQL: wall minus monotonic time of one reading, in integer milliseconds."""
    return (
        f"CAST(round((julianday({ts}) - 2440587.5) * 86400000.0) AS INTEGER) - {mono_ns} / 1000000"
    )


def dated_ts_sql(ms: str) -> str:
    """SQL: integer milliseconds since the epoch as the log's fixed-width UTC text."""
    return (
        f"strftime('%Y-%m-%dT%H:%M:%S', ({ms}) / 1000, 'unixepoch')"
        f" || printf('.%03d000Z', ({ms}) % 1000)"
    )


#: An event of ``events`` that ``dated_events`` dates by its own ``ts``: stamped on a
#: synchronised clock, or of a boot that never recorded one after it (``unsynced``).
CLOCK_DATED = """clock_synced = 1 OR NOT EXISTS (
        SELECT 1 FROM boot_clock b WHERE b.boot_id = events.boot_id AND b.seq > events.seq
    )"""
#: The columns of ``dated_events``' rows of ``CLOCK_DATED``.
CLOCK_DATED_COLUMNS = """*, ts AS dated_ts,
        CASE clock_synced WHEN 1 THEN 'clock' ELSE 'unsynced' END AS dating, NULL AS dated_by"""


#: The boot offsets, their trigger and the view (``kiosk.store`` migration m002). An event
#: after its boot's first synchronised one keeps its ``ts`` (that clock had been set).
DATED_EVENTS_SQL = f"""
CREATE TABLE boot_clock (
    boot_id TEXT PRIMARY KEY,
    offset_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO boot_clock (boot_id, offset_ms, seq)
    SELECT boot_id, {_offset_ms("ts", "mono_ns")}, seq FROM events
    WHERE clock_synced = 1 ORDER BY seq;
CREATE TRIGGER events_boot_clock AFTER INSERT ON events WHEN NEW.clock_synced = 1
    BEGIN
        INSERT OR IGNORE INTO boot_clock (boot_id, offset_ms, seq)
            VALUES (NEW.boot_id, {_offset_ms("NEW.ts", "NEW.mono_ns")}, NEW.seq);
    END;
CREATE INDEX events_unsynced ON events(boot_id, seq) WHERE clock_synced = 0;
CREATE VIEW redated_events AS
    SELECT e.*, {dated_ts_sql("b.offset_ms + e.mono_ns / 1000000")} AS dated_ts,
        'boot' AS dating, b.seq AS dated_by
    FROM boot_clock b CROSS JOIN events e
    WHERE e.boot_id = b.boot_id AND e.clock_synced = 0 AND e.seq < b.seq;
CREATE VIEW dated_events AS
    SELECT {CLOCK_DATED_COLUMNS}
    FROM events
    WHERE {CLOCK_DATED}
    UNION ALL
    SELECT * FROM redated_events;
"""  # noqa: S608 - module constants


def _runs_of(table: str) -> str:
    """SQL: ``boot_runs`` for ``table``: its rows already there (one pass, run to run: 0.2 s
    at 900,000 rows on a PC), then a trigger with each boot's first row."""
    latest = "ORDER BY seq DESC LIMIT 1"
    last = f"(SELECT boot_id FROM boot_runs WHERE tbl = '{table}' {latest})"  # noqa: S608
    return f"""
WITH RECURSIVE runs(seq, boot_id) AS (
    SELECT * FROM (SELECT seq, boot_id FROM {table} ORDER BY seq LIMIT 1)
    UNION ALL
    SELECT t.seq, t.boot_id FROM runs r JOIN {table} t ON t.seq = (
        SELECT min(n.seq) FROM {table} n WHERE n.seq > r.seq AND n.boot_id IS NOT r.boot_id
    )
)
INSERT INTO boot_runs (tbl, seq, boot_id) SELECT '{table}', seq, boot_id FROM runs;
CREATE TRIGGER {table}_boot_runs AFTER INSERT ON {table} WHEN NEW.boot_id IS NOT {last}
    BEGIN
        INSERT INTO boot_runs (tbl, seq, boot_id) VALUES ('{table}', NEW.seq, NEW.boot_id);
    END;
"""  # noqa: S608 - the module's own table names


#: Where each boot's rows begin in ``events`` and ``audit`` (``kiosk.store`` migration m008):
#: a row for each table's first row of a boot (of a run of one boot's rows), written once by a
#: trigger as that boot writes its first row there. Where a boot's rows end (the next one's
#: first) is one probe of it, however long the log (``kiosk.pihealth``'s power spells).
BOOT_RUNS_SQL = (
    """
CREATE TABLE boot_runs (
    tbl TEXT NOT NULL,
    seq INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    PRIMARY KEY (tbl, seq)
) WITHOUT ROWID;
"""
    + _runs_of("events")
    + _runs_of("audit")
)

#: The first row of ``:tbl`` after ``:after`` of a boot other than ``:boot`` (``boot_runs``).
RUN_END_SQL = (
    "SELECT min(seq) FROM boot_runs WHERE tbl = :tbl AND seq > :after AND boot_id != :boot"
)


def run_end(db: Any, table: str, boot: str, after: int) -> int | None:
    """The ``seq`` of the first row of ``table`` (``events``, ``audit``) after ``after`` of a
    boot other than ``boot``: where ``boot``'s rows from ``after`` end (None: they do not).
    One probe of ``boot_runs``; in a log of a version before it, a scan of the rows."""
    params = {"tbl": table, "after": after, "boot": boot}
    try:
        found = db.execute(RUN_END_SQL, params).fetchone()[0]
    except sqlite3.OperationalError:
        found = db.execute(
            f"SELECT min(seq) FROM {table} WHERE seq > :after AND boot_id != :boot",  # noqa: S608
            params,
        ).fetchone()[0]
    return None if found is None else int(found)


def dated_source(db: Any) -> tuple[str, str]:
    """Where the reports read events from and the column of their time: ``dated_events``
    and ``dated_ts`` in an event log with an event stamped on an unsynchronised clock;
    ``events`` and ``ts`` (the same rows, faster) in one without, in a table of rows already
    dated (the office's day in memory) or a log of a version before the view."""
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'dated_events'"
    ).fetchone()
    if found is None or not has_unsynced(db):
        return ("events", "ts")
    return ("dated_events", "dated_ts")


def has_unsynced(db: Any) -> bool:
    """Whether the log holds an event stamped on an unsynchronised clock (its partial index:
    one probe)."""
    row = db.execute("SELECT 1 FROM events WHERE clock_synced = 0 LIMIT 1").fetchone()
    return row is not None


def age_s(event: Mapping[str, Any], now: ClockReading, boot_id: str) -> float | None:
    """How long ago ``event`` happened. One of this boot (``boot_id``: the log's) by the
    monotonic clock, right whatever the wall clock did between (an event stamped 1970 before
    NTP stepped the clock is minutes old, not 56 years); an earlier boot's by its dated time
    (``dated_ts``, as ``kiosk.queries.dated`` gives it, else ``ts``) against the wall clock.
    None when its time cannot be read."""
    mono = event.get("mono_ns")
    if event.get("boot_id") == boot_id and isinstance(mono, int) and not isinstance(mono, bool):
        return (now.mono_ns - mono) / 1e9
    try:
        when = datetime.fromisoformat(str(event.get("dated_ts") or event.get("ts")))
        return (now.wall - when).total_seconds()
    except (TypeError, ValueError):
        return None


def retention_offsets(
    db: Any, boots: list[str], offsets: Mapping[str, int], now: ClockReading | None, boot_id: str
) -> dict[str, int]:
    """For retention: ``offsets`` (the dated boots', ``kiosk.queries.boot_offsets``) and, for
    each of ``boots`` never dated (an earlier boot than ``boot_id`` that ended before its
    clock was set), one that dates its stamps no earlier than they happened. A stamp of such
    a boot was purged at the first purge on a set clock (1970 is older than any cutoff),
    however recent; dated so, it is kept its retention period, and a little longer (the time
    between that boot's last row and the next boot's start)."""
    out = dict(offsets)
    for boot in boots:
        if boot not in out and boot != boot_id:
            bound = _never_dated_offset(db, boot, now)
            if bound is not None:
                out[boot] = bound
    return out


def _never_dated_offset(db: Any, boot: str, now: ClockReading | None) -> int | None:
    """An offset (``ms`` wall less monotonic) at least the true one of ``boot``, never dated:
    the boot ended before the next one began (that boot's offset: its monotonic clock's zero,
    its start; this boot's, by the clock read ``now``, set), so that start less the boot's
    last monotonic time read (its last row, events or audit) is no earlier than its own."""
    starts = (
        [int(now.wall.timestamp() * 1000) - now.mono_ns // 1_000_000] if now and now.synced else []
    )
    last_mono: int | None = None
    for table in ("events", "audit"):
        try:
            last = db.execute(
                f"SELECT seq, mono_ns FROM {table} WHERE boot_id = ? AND clock_synced = 0"  # noqa: S608
                " ORDER BY seq DESC LIMIT 1",
                [boot],
            ).fetchone()
            if last is None:
                continue
            last_mono = max(int(last[1]), last_mono or 0)
            nxt = db.execute(
                f"SELECT b.offset_ms FROM boot_clock b WHERE b.boot_id = (SELECT boot_id FROM"  # noqa: S608
                f" {table} WHERE seq > ? AND boot_id != ? ORDER BY seq LIMIT 1)",
                [last[0], boot],
            ).fetchone()
        except sqlite3.OperationalError:  # a log of a version before the boots' offsets
            continue
        if nxt is not None:
            starts.append(int(nxt[0]))
    if last_mono is None or not starts:
        return None
    return min(starts) - last_mono // 1_000_000
