"""The office's retention: the personal fields of a pulled copy go as they go at the gate.

A ``logs:personal`` pull (``kiosk pull --into FILE``, the collector's PostgreSQL) copies the
gates' clear names, households, pass ids and plates (a ``logs:read`` one their masked forms);
the gate purges its own log after ``store.retention_days``, but no purge there touches a copy.
``purge_copy(copy, older_than_days, now, ...)`` nulls them in the copy by the kiosk's rule
(``kiosk.store.purge_personal``), per kiosk, since ``seq`` is per kiosk:

* ``pass_id``, ``household``, ``holder`` are nulled and ``purged_at`` set, of every row up to
  the last clock-synchronised row stamped before the cutoff (so rows stamped 1970 before the
  gate's NTP synchronised go too), except synchronised rows stamped after it;
* ``person`` keeps only its counts, ``occupants`` and ``feverish`` (a car's passengers and
  feverish occupants as whole numbers: not personal, kept by masking too,
  docs/privacy.md): the office holds no frozen daily reports, and the district report counts
  people from them (``kiosk.categories``); every other key (name, phone, plate, note) goes;
* ``hash``, ``prev_hash``, ``personal_digest``, ``seq`` and every other column are never
  written, so the copy still verifies and ``kiosk verify-log --against`` still matches it.

In batches of ``BATCH_ROWS`` rows, each its own short transaction: a pull writing pages (the
collector's workers, another ``kiosk pull``) commits between two. A SQLite copy is purged
with ``secure_delete`` on and its WAL truncated after, as the kiosk's own log.

The purge is dated by the office's wall clock, checked first as the kiosk checks its own
(``kiosk.retention.check_clock``): not synchronised, it purges nothing unless the operator
vouches for it (``trust_unsynced_clock``); earlier than the last pull written into the copy
(its sources' ``updated_at``, stamped by the office's own clock) by more than a minute, it
was set back and purges nothing whatever anyone says. ``ClockNotTrusted`` either way.

``OfficeRetention`` is the collector's schedule: a purge of its PostgreSQL every hour with
its ``retention_days``, a refused or failed one retried the next hour, the last result in
its status.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from kiosk.clock import Clock
from kiosk.record import emptied
from kiosk.retention import MAX_DAYS, ClockNotTrusted, judge_clock
from kiosk.store import format_ts

__all__ = [
    "BATCH_ROWS",
    "ClockNotTrusted",
    "CopyError",
    "OfficePurgeResult",
    "OfficeRetention",
    "PgCopy",
    "SqliteCopy",
    "STORES",
    "kept_counts",
    "open_copy",
    "purge_copy",
]

log = logging.getLogger(__name__)

#: The most rows one transaction nulls (the kiosk's ``kiosk.retention.BATCH_ROWS``).
BATCH_ROWS = 1000
#: Between two batches of the CLI's purge, the file's write lock is let go this long (a pull
#: waiting for it polls at most every 100 ms, SQLite's busy handler).
BATCH_PAUSE_S = 0.15
#: The collector purges this often (the kiosk's daemon: hourly).
PURGE_INTERVAL_S = 3600.0
#: The counts a purged ``person`` keeps: whole numbers, not personal (docs/privacy.md).
COUNT_KEYS = ("occupants", "feverish")
#: ``fleet_meta`` key of the collector's last purge (its result as JSON).
LAST_PURGE_KEY = "retention.last_purge"
#: Every table of the office's copy (``office.pull``'s SQLite file, ``office.pg``'s
#: PostgreSQL schema), with the personal data it holds (``""``: none) and what prunes it, as
#: ``kiosk.retention.STORES`` for the gate's (docs/privacy.md's table of stores follows both).
STORES: dict[str, tuple[str, str]] = {
    "pulled_events": ("pass id, household, holder, person", "office.retention.purge_copy"),
    "fleet_events": ("pass id, household, holder, person", "office.retention.purge_copy"),
    "pull_sources": ("", "none: the gates' addresses"),
    "fleet_sources": ("", "none: the gates' addresses"),
    "pull_pin_changes": ("", "none: the gates' addresses"),
    "fleet_pin_changes": ("", "none: the gates' addresses"),
    "fleet_gate_reports": ("", "none: counts"),
    "fleet_meta": ("", "none: versions, counts"),
}

_NULLED = emptied(("pass_id", "household", "holder"))
# The kiosks in a copy, one index probe each (a loose index scan on the primary key):
# ``SELECT DISTINCT`` would read every row. Valid in SQLite and PostgreSQL alike.
_KIOSKS = (
    "WITH RECURSIVE k(id) AS (SELECT min(kiosk_id) FROM {t} UNION ALL"
    " SELECT (SELECT min(kiosk_id) FROM {t} WHERE kiosk_id > k.id) FROM k WHERE k.id IS NOT NULL)"
    " SELECT id FROM k WHERE id IS NOT NULL"
)


class CopyError(ValueError):
    """The target is not a pulled copy (no such file, another kind of file): nothing done."""


def kept_counts(person: object) -> dict[str, int] | None:
    """What a purged ``person`` keeps: its whole-number counts (``COUNT_KEYS``), else None."""
    if isinstance(person, str):
        try:
            person = json.loads(person)
        except ValueError:
            return None
    if not isinstance(person, dict):
        return None
    kept = {k: person[k] for k in COUNT_KEYS if type(person.get(k)) is int}
    return kept or None


@dataclass(frozen=True)
class OfficePurgeResult:
    cutoff: datetime
    events_purged: int
    #: Kiosks of the copy with rows old enough to purge.
    kiosks: int
    #: Write transactions the purge took.
    batches: int
    #: False only when the operator vouched for an unsynchronised clock.
    clock_synced: bool
    #: False when it was stopped between two batches (the next purge finishes the work).
    complete: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "events_purged": self.events_purged,
            "kiosks": self.kiosks,
            "batches": self.batches,
            "clock_synced": self.clock_synced,
            "complete": self.complete,
        }


class Copy(Protocol):
    """A pulled copy as the purge uses it (``SqliteCopy``, ``PgCopy``)."""

    def kiosks(self) -> list[str]: ...

    def bound(self, kiosk_id: str, cutoff: str) -> int | None:
        """The last seq of ``kiosk_id`` a purge with ``cutoff`` may null (the kiosk's rule)."""
        ...

    def candidates(
        self, kiosk_id: str, cutoff: str, after: int, through: int, limit: int
    ) -> list[tuple[int, Any]]:
        """``(seq, person)`` of the next rows to null in ``(after, through]``, in seq order."""
        ...

    def null(self, kiosk_id: str, rows: list[tuple[int, Any]], cutoff: str, stamp: str) -> int:
        """Null ``rows`` (``(seq, kept person)``) in one transaction; rows nulled."""
        ...

    def last_written(self) -> datetime | None:
        """When the office last wrote a pull into the copy (by its own clock)."""
        ...

    def finish(self, result: OfficePurgeResult) -> None:
        """After the last batch (a SQLite copy's WAL wipe; PostgreSQL's record)."""
        ...

    def close(self) -> None: ...


def _parse_stamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class SqliteCopy:
    """A ``kiosk pull --into FILE`` copy (``pulled_events``, ``pull_sources``)."""

    table = "pulled_events"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = _open_pulled_file(self.path)
        try:
            self.conn.execute("PRAGMA busy_timeout=5000")
            # Freed space is zeroed: without it the nulled values stay in the file's pages.
            self.conn.execute("PRAGMA secure_delete=ON")
            self.conn.execute(
                "CREATE INDEX IF NOT EXISTS pulled_events_unpurged ON pulled_events"
                " (kiosk_id, seq) WHERE purged_at IS NULL"
            )
        except BaseException:
            self.conn.close()
            raise

    def kiosks(self) -> list[str]:
        return [r[0] for r in self.conn.execute(_KIOSKS.format(t=self.table))]

    def bound(self, kiosk_id: str, cutoff: str) -> int | None:
        row = self.conn.execute(
            "SELECT max(seq) FROM pulled_events WHERE kiosk_id = ? AND clock_synced = 1 AND ts < ?",
            [kiosk_id, cutoff],
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def candidates(
        self, kiosk_id: str, cutoff: str, after: int, through: int, limit: int
    ) -> list[tuple[int, Any]]:
        return [
            (int(r[0]), r[1])
            for r in self.conn.execute(
                "SELECT seq, person FROM pulled_events WHERE kiosk_id = ? AND seq > ?"
                " AND seq <= ? AND purged_at IS NULL AND (coalesce(clock_synced, 0) = 0"
                " OR ts < ?) ORDER BY seq LIMIT ?",
                [kiosk_id, after, through, cutoff, limit],
            )
        ]

    def null(self, kiosk_id: str, rows: list[tuple[int, Any]], cutoff: str, stamp: str) -> int:
        sql = (
            f"UPDATE pulled_events SET {_NULLED}, person = ?, purged_at = ?"  # noqa: S608
            " WHERE kiosk_id = ? AND seq = ? AND purged_at IS NULL"
            " AND (coalesce(clock_synced, 0) = 0 OR ts < ?)"
        )
        args = [
            [None if p is None else json.dumps(p, sort_keys=True), stamp, kiosk_id, seq, cutoff]
            for seq, p in rows
        ]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            count = self.conn.executemany(sql, args).rowcount
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return int(count)

    def last_written(self) -> datetime | None:
        row = self.conn.execute("SELECT max(updated_at) FROM pull_sources").fetchone()
        return _parse_stamp(row[0])

    def finish(self, result: OfficePurgeResult) -> None:
        if result.events_purged:
            # The WAL still holds the rows as they were written (a reader may hold it up:
            # then the next purge, or SQLite's own checkpoint, does it).
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()


def _open_pulled_file(path: Path) -> sqlite3.Connection:
    """``path`` opened for writing when it is a pulled copy; ``CopyError`` (nothing made or
    changed) when it is not one."""
    if not path.is_file():
        raise CopyError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with path.open("rb") as f:
            is_sqlite = f.read(16) == b"SQLite format 3\x00"
    except OSError as exc:
        raise CopyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not is_sqlite:
        raise CopyError(f"{path}: not a pulled copy (not an SQLite database)")
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=rw", uri=True)
    conn.isolation_level = None
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CopyError(f"{path}: not a pulled copy ({exc})") from None
    if not {"pulled_events", "pull_sources"} <= names:
        conn.close()
        raise CopyError(
            f"{path}: not a pulled copy (no pulled_events table: `kiosk pull --into` makes one;"
            " a kiosk's own log is purged by `kiosk purge`)"
        )
    return conn


class PgCopy:
    """The office's PostgreSQL (``fleet_events``, ``fleet_sources``, ``office.pg``)."""

    table = "fleet_events"

    def __init__(self, dsn: str, *, application_name: str = "kiosk-purge") -> None:
        from office.pg import connect, ensure_schema

        self.dsn = dsn
        self.conn = connect(dsn, application_name=application_name)
        try:
            with self._errors():
                ensure_schema(self.conn)
        except BaseException:
            self.conn.close()
            raise

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        from office.pg import PgError, redact_dsn

        try:
            yield
        except psycopg.Error as exc:
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PgError(f"{redact_dsn(self.dsn)}: {line}") from None

    def kiosks(self) -> list[str]:
        with self._errors():
            return [r[0] for r in self.conn.execute(_KIOSKS.format(t=self.table))]

    def bound(self, kiosk_id: str, cutoff: str) -> int | None:
        with self._errors():
            row = self.conn.execute(
                "SELECT max(seq) FROM fleet_events WHERE kiosk_id = %s AND clock_synced"
                " AND ts < %s",
                [kiosk_id, cutoff],
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def candidates(
        self, kiosk_id: str, cutoff: str, after: int, through: int, limit: int
    ) -> list[tuple[int, Any]]:
        with self._errors():
            rows = self.conn.execute(
                "SELECT seq, person FROM fleet_events WHERE kiosk_id = %s AND seq > %s"
                " AND seq <= %s AND purged_at IS NULL AND (clock_synced IS NOT TRUE"
                " OR ts < %s) ORDER BY seq LIMIT %s",
                [kiosk_id, after, through, cutoff, limit],
            ).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def null(self, kiosk_id: str, rows: list[tuple[int, Any]], cutoff: str, stamp: str) -> int:
        from psycopg.types.json import Jsonb

        seqs = [seq for seq, _ in rows]
        persons = [None if p is None else Jsonb(p) for _, p in rows]
        with self._errors(), self.conn.transaction():
            cur = self.conn.execute(
                f"UPDATE fleet_events e SET {_NULLED}, person = v.person, purged_at = %s"  # noqa: S608
                " FROM unnest(%s::bigint[], %s::jsonb[]) AS v(seq, person)"
                " WHERE e.kiosk_id = %s AND e.seq = v.seq AND e.purged_at IS NULL"
                " AND (e.clock_synced IS NOT TRUE OR e.ts < %s)",
                [stamp, seqs, persons, kiosk_id, cutoff],
            )
            return int(cur.rowcount)

    def last_written(self) -> datetime | None:
        with self._errors():
            row = self.conn.execute("SELECT max(updated_at) FROM fleet_sources").fetchone()
        return _parse_stamp(row[0] if row else None)

    def finish(self, result: OfficePurgeResult) -> None:
        """Keep the purge's result in ``fleet_meta`` (``LAST_PURGE_KEY``): counts only."""
        with self._errors():
            self.conn.execute(
                "INSERT INTO fleet_meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [LAST_PURGE_KEY, json.dumps(result.as_dict())],
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def open_copy(target: str) -> SqliteCopy | PgCopy:
    """A ``postgresql://`` DSN or a pulled SQLite file; ``CopyError`` for anything else,
    ``office.pg.PgError`` when the database cannot be reached."""
    from office.pg import is_pg_dsn

    return PgCopy(target) if is_pg_dsn(target) else SqliteCopy(target)


def check_office_clock(
    copy: Copy, now: datetime, synced: bool, *, trust_unsynced_clock: bool = False
) -> bool:
    """Whether ``now`` (the office's clock, ``synced`` as the kernel says) may date a purge
    of ``copy``: the kiosk's rule (``kiosk.retention.judge_clock``) against the last pull
    written into the copy."""
    last = copy.last_written()
    return judge_clock(
        now,
        synced,
        None if last is None else format_ts(last),
        trust_unsynced_clock=trust_unsynced_clock,
        whose="the office's wall clock",
        unsynced="no NTP answer",
        newest_what="the last pull written into the copy",
    )


def _pause() -> None:
    time.sleep(BATCH_PAUSE_S)


def purge_copy(
    copy: Copy,
    older_than_days: int,
    now: datetime,
    *,
    clock_synced: bool,
    trust_unsynced_clock: bool = False,
    stop: threading.Event | None = None,
    between_batches: Callable[[], None] | None = None,
) -> OfficePurgeResult:
    """Null the personal fields of ``copy``'s rows older than ``older_than_days`` before
    ``now`` (module docstring), ``BATCH_ROWS`` a transaction, ``between_batches`` called
    between two (default: a short pause). ``stop`` set: it ends after the batch it is
    writing (``complete`` false). ``ClockNotTrusted`` before anything is written."""
    if isinstance(older_than_days, bool) or not 0 <= older_than_days <= MAX_DAYS:
        raise ValueError(f"older_than_days must be between 0 and {MAX_DAYS}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    synced = check_office_clock(copy, now, clock_synced, trust_unsynced_clock=trust_unsynced_clock)
    cutoff = (now - timedelta(days=older_than_days)).astimezone(UTC)
    cut, stamp = format_ts(cutoff), format_ts(now)
    pause = between_batches or _pause
    purged = batches = kiosks = 0
    complete = True
    for kiosk_id in copy.kiosks():
        through = copy.bound(kiosk_id, cut)
        if through is None:
            continue
        kiosks += 1
        after = 0
        while True:
            if stop is not None and stop.is_set():
                complete = False
                break
            rows = copy.candidates(kiosk_id, cut, after, through, BATCH_ROWS)
            if not rows:
                break
            if batches:
                pause()
            purged += copy.null(kiosk_id, [(s, kept_counts(p)) for s, p in rows], cut, stamp)
            batches += 1
            after = rows[-1][0]
        if not complete:
            break
    result = OfficePurgeResult(cutoff, purged, kiosks, batches, synced, complete)
    copy.finish(result)
    return result


class OfficeRetention:
    """The collector's purge of its PostgreSQL: ``run_once`` now, ``loop`` every
    ``interval_s`` until stopped. Never raises for a refused or failed purge: ``status()``
    says why, and the next hour tries again."""

    def __init__(
        self,
        dsn: str,
        retention_days: int,
        clock: Clock,
        *,
        interval_s: float = PURGE_INTERVAL_S,
        opener: Callable[[str], Copy] | None = None,
    ) -> None:
        self.dsn = dsn
        self.retention_days = retention_days
        self.clock = clock
        self.interval_s = interval_s
        self._open = opener or (lambda dsn: PgCopy(dsn, application_name="kiosk-collect"))
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "retention_days": retention_days,
            "last_purge_at": None,
            "events_purged": None,
            "events_purged_total": 0,
            "error": None,
        }

    def run_once(self, stop: threading.Event | None = None) -> OfficePurgeResult | None:
        from office.pull import PullError

        now = self.clock.now()
        result: OfficePurgeResult | None = None
        error: str | None = None
        try:
            copy = self._open(self.dsn)
            try:
                result = purge_copy(
                    copy,
                    self.retention_days,
                    now,
                    clock_synced=self.clock.synced(),
                    stop=stop,
                    between_batches=lambda: None,  # short transactions: pulls commit between
                )
            finally:
                copy.close()
        except ClockNotTrusted as exc:
            error = f"nothing was purged: {exc}; tried again within the hour"
        except PullError as exc:  # office.pg.PgError: the database
            error = f"database: {exc}"
        except Exception as exc:  # a bug must not stop the collector: shown, not lost
            log.exception("office purge failed unexpectedly")
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._status["error"] = error
            if result is not None:
                self._status["last_purge_at"] = now.isoformat()
                self._status["events_purged"] = result.events_purged
                self._status["events_purged_total"] += result.events_purged
        if error is not None:
            log.warning("office purge refused or failed", extra={"error": error})
        else:
            log.info("office purge", extra={"events_purged": result and result.events_purged})
        return result

    def loop(self, stop: threading.Event) -> None:
        """Purge now and then every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            self.run_once(stop)
            if stop.wait(self.interval_s):
                return

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)
