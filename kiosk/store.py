"""The durable event log: one SQLite file, one writer thread, two hash chains.

Why one writer fed by a queue: SQLite allows one writer at a time and a Pi's SD card is slow
to ``fsync``; funnelling every write (events, audit rows, other modules' ``submit`` jobs)
through one thread and one connection means no ``database is locked`` surprises inside the
process and a single place that knows whether the disk is healthy. Readers use their own
read-only connections (WAL lets them run while the writer commits).

Why ``synchronous=FULL`` by default: a decision is committed *before* the gate relay fires
(docs/event-log.md). With WAL + FULL a committed row survives a power cut; with NORMAL the last
commits may roll back after one. ``kiosk bench`` measures what FULL costs.

Why the write takes the tail *inside* ``BEGIN IMMEDIATE``: another process (``kiosk purge``,
``kiosk calibrate``) may write to the same file; reading the last ``seq``/``hash`` under the
write lock keeps one consistent chain whoever writes.

Failure: a write that fails on the storage (disk full, I/O error, read-only file) rolls back
completely, consumes no ``seq``, raises ``StoreFault`` and turns ``health()`` to ``fault``.
The next write simply tries again, so logging resumes by itself once space returns; the first
successful write after a fault also records an audit row saying how many writes were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import math
import os
import secrets
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Protocol, TypeVar, cast

import sqlite_utils
from sqlite_utils.migrations import Migrations

from kiosk import dating, days, hashchain, record
from kiosk.cardfault import card_fault, unwritable_part
from kiosk.clock import AGREE_SLACK, Clock, ClockReading, FlooredClock
from kiosk.config.store import StoreSection
from kiosk.deadline import LogUses, Stopped
from kiosk.devices import Health
from kiosk.files import ended_read, read_snapshot, sqlite_read_only
from kiosk.history import counted_outing
from kiosk.links import NOT_OPENED_ROWS
from kiosk.record import DECISIONS
from kiosk.schema import PROGRAM_SETS, execute_script
from kiosk.typed import whole_number
from kiosk.unreadable import decode_json

log = logging.getLogger(__name__)

T = TypeVar("T")

DIRECTIONS = frozenset({"in", "out"})
KINDS = frozenset({"passage", "manual", "registration", "vehicle"})
#: Cap on ``person`` / audit ``detail`` JSON: a note or a photo must not bloat the log.
MAX_JSON_BYTES = 65536

#: SQLite result codes that mean "the storage failed", not "the caller's SQL is wrong".
_STORAGE_ERRORS = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
)
#: A read failing with these met a page the card no longer gives back whole (``note_read_fault``).
_DAMAGE_ERRORS = ("SQLITE_CORRUPT", "SQLITE_IOERR", "SQLITE_NOTADB")
#: What a read the storage failed means, in health and the log (docs/operations.md).
READ_FAULT_DETAIL = (
    "part of the database is damaged or cannot be read (the SD card may be failing);"
    " run kiosk verify-log"
)
#: After these the connection itself is suspect (e.g. opened read-only): reopen before retrying.
_REOPEN_ERRORS = (
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL",
)

#: The most ``EventLog.wipe_wal`` waits for readers (appends queue behind it meanwhile).
WIPE_WAIT_MS = 200

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_PROCESS_BOOT_ID = str(uuid.uuid4())

_EVENT_COLUMNS = record.EVENT_COLUMNS
_AUDIT_COLUMNS = record.AUDIT_COLUMNS
_EVENT_JSON = tuple(c for c in _EVENT_COLUMNS if c in record.JSON_FIELDS)
_EVENT_KINDS = {c.name: c.kind for c in record.EVENT}

# Column and table names below are module constants, never caller input.
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)
_INSERT_AUDIT = (
    f"INSERT INTO audit ({', '.join(_AUDIT_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' * len(_AUDIT_COLUMNS))})"
)
_CHAINED_TABLES = ("events", "audit")


def _table_name(table: str) -> str:
    """Guard for the f-string SQL below: only the two chained tables are ever named."""
    if table not in _CHAINED_TABLES:
        raise ValueError(f"not a chained table: {table!r}")
    return table


class StoreFault(Exception):
    """The event log could not commit. ``reason`` is the reason code ``store_fault``.

    Nothing of the failed write is in the database and no ``seq`` was used; the policy's
    ``on_store_fault`` decides what the gate does (default: deny). ``path``: the database file
    the storage failed under, when the log raised it (``kiosk.cardfault`` names its card)."""

    def __init__(
        self, reason: str = "store_fault", detail: str = "", *, path: Path | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.path = path


class AlreadyRecorded(Exception):  # noqa: N818 - what the log answers, not an error in it
    """The log holds already what a draft's ``unless`` looks for (``EventDraft.unless``): the
    draft is not written, and nothing else of its transaction is. ``event``: the record found
    (decoded, personal fields and all: said as its ``seq`` only, in any text of this).
    Neither a ``StoreFault`` nor a ``ValueError``: the storage works and the draft was good."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self.seq = int(event["seq"])
        super().__init__(f"already recorded as event {self.seq}")


class Unless(Protocol):
    """A condition a draft is written on (``EventDraft.unless``), looked at by the log's one
    writer in the draft's own write transaction (``BEGIN IMMEDIATE``): no other write comes
    between the look and the write."""

    def found(
        self, db: sqlite_utils.Database, until: ClockReading | None = None
    ) -> Mapping[str, Any] | None:
        """The event (decoded) that makes the draft not to be written, else None; ``until``:
        the draft's decision (``EventDraft.decided``), after which nothing counts."""
        ...


class Migrating(Protocol):
    """Told the log's migration's progress as it opens (``EventLog``'s ``on_migrating``; the
    daemon's ``checkpoint.notify.LongStart``): step ``done`` of ``of`` begins, and once it is
    over ``done == of`` (all applied), or ``failed`` with ``done`` the step that failed (none
    applied: the migration is one transaction, rolled back; ``done == of`` when the tables' own
    upgrade after the steps failed)."""

    def __call__(self, done: int, of: int, /, *, failed: bool = False) -> None: ...


class LogReplaced(StoreFault):
    """The database file was replaced under this open log (a copy moved or written over it,
    a restore run beside the daemon): nothing more is written to it, whatever file is there
    now, until the log is opened again (the daemon restarted)."""


class LogClosing(StoreFault, Stopped):
    """A read of the event log asked for once its close began (``EventLog.close``: the
    daemon's stop): refused before it touches the file, the client told the checkpoint is
    stopping (503), a stream ended where it was; nothing is written by a read."""

    def __init__(self) -> None:
        super().__init__("store_fault", "the event log is closing")


class NewerSchema(StoreFault):
    """The log was migrated by a later version of the program (this one was installed back
    over it): nothing is wrong with the card or the file, only the version."""


# ---------------------------------------------------------------------------------------------
# Records


def _prefixed(name: str, exc: Exception) -> str:
    message = str(exc)
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


def _check_text(name: str, value: Any, *, optional: bool = True, max_len: int = 256) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValueError(f"{name}: expected a non-empty string of at most {max_len} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name}: not valid Unicode text") from None


def _check_number(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number or None, got {value!r}")


#: ``(actor, action, detail)``: an audit row to write with an event (``EventDraft.audit``).
AuditRow = tuple[str, str, Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class EventDraft:
    """What the engine knows about a passage; the log adds seq, time, ids and hashes.

    Personal fields (``pass_id``, ``household``, ``holder``, ``person``) are kept out of
    ``repr`` so a draft that ends up in a log line does not carry resident data.

    ``decided`` is the clock as the engine decided: the log stamps the event's ``ts``,
    ``mono_ns`` and ``clock_synced`` from it, so a decision committed late (held in the
    engine's backlog while the store failed) keeps its own time. None: the commit's moment.
    It is not a field of the record (``record.DRAFT_FIELDS``), only the source of its stamp.

    ``audit`` is the ``(actor, action, detail)`` row of the request the event answers (a
    guard's decision made at the console): the log inserts it in the event's own transaction,
    its detail naming the event (``event_seq``) and what it recorded (``recorded``), so the
    event is never on record without its row, nor the row without its event. It is not a
    field of the record either; it travels with the draft (into the engine's backlog too).

    ``unless``: a condition looked at in the draft's own write transaction (``Unless``); when
    it finds an event, nothing is written and ``append`` raises ``AlreadyRecorded`` naming it
    (a registration another tablet recorded a moment before: ``kiosk.again``). Not a field
    of the record; the engine's backlog holds its drafts without one (what the guard was told
    is held is written)."""

    direction: str
    decision: str
    reasons: tuple[str, ...] = ("ok",)
    pass_id: str | None = field(default=None, repr=False)
    household: str | None = field(default=None, repr=False)
    temp_c: float | None = None
    temp_object_c: float | None = None
    temp_ambient_c: float | None = None
    latency_ms: float | None = None
    operator: str | None = None
    kind: str = "passage"
    flags: tuple[str, ...] = ()
    holder: str | None = field(default=None, repr=False)
    person: Mapping[str, Any] | None = field(default=None, repr=False)
    decided: ClockReading | None = None
    audit: AuditRow | None = field(default=None, repr=False)
    unless: Unless | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction: expected one of {sorted(DIRECTIONS)}")
        if self.decision not in DECISIONS:
            raise ValueError(f"decision: expected one of {sorted(DECISIONS)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {sorted(KINDS)}")
        for name in ("reasons", "flags"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ValueError(f"{name}: expected a list of codes")
            value = tuple(value)
            for code in value:
                _check_text(name, code, optional=False, max_len=64)
            object.__setattr__(self, name, value)
        if not self.reasons:
            raise ValueError("reasons: at least one code ('ok' when nothing failed)")
        for name in ("temp_c", "temp_object_c", "temp_ambient_c", "latency_ms"):
            _check_number(name, getattr(self, name))
        if self.latency_ms is not None and self.latency_ms < 0:
            raise ValueError("latency_ms: must not be negative")
        for name in ("pass_id", "household", "holder", "operator"):
            _check_text(name, getattr(self, name))
        if self.person is not None:
            if not isinstance(self.person, Mapping):
                raise ValueError("person: expected a mapping or None")
            try:
                size = len(hashchain.canonical(hashchain.normalise("person", dict(self.person))))
            except hashchain.CanonicalError as exc:
                raise ValueError(_prefixed("person", exc)) from None
            if size > MAX_JSON_BYTES:
                raise ValueError(f"person: {size} bytes of JSON, at most {MAX_JSON_BYTES}")
        if self.decided is not None and not isinstance(self.decided, ClockReading):
            raise ValueError("decided: expected a ClockReading or None")
        if self.audit is not None:
            check_audit_row(self.audit)
        check_unless(self.unless)

    def values(self) -> dict[str, Any]:
        """The draft's fields (``record.DRAFT_FIELDS``) as the log stores and hashes them:
        lists for codes, a plain dict for ``person``, finite floats."""
        out: dict[str, Any] = {}
        for name in record.DRAFT_FIELDS:
            value = getattr(self, name)
            kind = _EVENT_KINDS[name]
            if kind == "list":
                value = list(value)
            elif kind == "json":
                value = None if value is None else dict(value)
            elif kind == "float":
                value = hashchain.normalise(name, value)
            out[name] = value
        return out


def check_unless(unless: object) -> Unless | None:
    """``unless`` as a draft's condition (``Unless``) or None; ``ValueError`` otherwise."""
    if unless is not None and not callable(getattr(unless, "found", None)):
        raise ValueError("unless: expected a condition with found(db), or None")
    return cast("Unless | None", unless)


def check_audit_row(row: object) -> AuditRow:
    """``row`` as an ``(actor, action, detail)`` audit row; ``ValueError`` if it is not one."""
    if not isinstance(row, tuple) or len(row) != 3:
        raise ValueError("audit: expected (actor, action, detail)")
    actor, action, detail = row
    _check_audit(actor, action, detail)
    if not isinstance(detail, Mapping):
        raise ValueError("audit: expected a detail mapping")
    return actor, action, detail


def _check_audit(actor: Any, action: Any, detail: Any) -> None:
    _check_text("actor", actor, optional=False, max_len=64)
    _check_text("action", action, optional=False, max_len=64)
    if detail is not None:
        if not isinstance(detail, Mapping):
            raise ValueError("detail: expected a mapping or None")
        try:
            size = len(hashchain.canonical(hashchain.normalise("detail", dict(detail))))
        except hashchain.CanonicalError as exc:
            raise ValueError(_prefixed("detail", exc)) from None
        if size > MAX_JSON_BYTES:
            raise ValueError(f"detail: {size} bytes of JSON, at most {MAX_JSON_BYTES}")


@dataclass(frozen=True)
class Event:
    """A committed event row (the documented record plus kind, flags and personal fields)."""

    seq: int
    id: str
    kiosk_id: str
    ts: str
    boot_id: str
    mono_ns: int
    clock_synced: bool
    direction: str
    pass_id: str | None = field(repr=False)
    household: str | None = field(repr=False)
    decision: str
    reasons: tuple[str, ...]
    temp_c: float | None
    temp_object_c: float | None
    temp_ambient_c: float | None
    latency_ms: float | None
    operator: str | None
    kind: str
    flags: tuple[str, ...]
    holder: str | None = field(repr=False)
    person: dict[str, Any] | None = field(repr=False)
    personal_digest: str
    purged_at: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (lists, not tuples), like ``EventLog.events()``."""
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["flags"] = list(self.flags)
        return data


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking both chains. ``first_bad_seq`` and ``problem`` name the first bad row
    (of ``table``); ``problems`` has the first problem of each table that has one."""

    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None
    table: str | None = None
    events_checked: int = 0
    audit_checked: int = 0
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Schema

MIGRATIONS = Migrations("kiosk.events")

# The tables as schema version 1 created them (a later field comes with its own migration).
_EVENTS_V1 = record.sqlite_columns(record.EVENT).replace("\n", "\n            ")
_AUDIT_V1 = record.sqlite_columns(record.AUDIT).replace("\n", "\n            ")
_IMMUTABLE_EVENT_COLUMNS = ", ".join(
    c for c in _EVENT_COLUMNS if c not in hashchain.EVENT_PERSONAL_FIELDS + ("purged_at",)
)
_IMMUTABLE_AUDIT_COLUMNS = ", ".join(
    c for c in _AUDIT_COLUMNS if c not in hashchain.AUDIT_PERSONAL_FIELDS + ("purged_at",)
)


@MIGRATIONS()
def m001_events_audit_meta(db: sqlite_utils.Database) -> None:
    """Tables, indexes and append-only triggers.

    The triggers guard against *bugs* elsewhere in the code base (an UPDATE that rewrites a
    decision, a DELETE): only personal fields and ``purged_at`` may change. They do not stop
    someone with a shell; the hash chain and ``kiosk verify-log`` are for that."""
    execute_script(
        db,
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events (
            {_EVENTS_V1}
        );
        CREATE INDEX events_ts ON events(ts);
        CREATE INDEX events_pass ON events(pass_id, direction);
        CREATE INDEX events_household ON events(household);
        CREATE TABLE audit (
            {_AUDIT_V1}
        );
        CREATE INDEX audit_action ON audit(action);
        CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
        CREATE TRIGGER events_append_only_update BEFORE UPDATE OF {_IMMUTABLE_EVENT_COLUMNS}
            ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only: only personal fields change'); END;
        CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
        CREATE TRIGGER audit_append_only_update BEFORE UPDATE OF {_IMMUTABLE_AUDIT_COLUMNS}
            ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only: only personal fields change'); END;
        """,
    )
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('salt', ?), ('events.seq', '0'), ('audit.seq', '0')",
        [secrets.token_hex(32)],
    )


#: ``meta`` keys of the legacy salt (the one salt of a log written before period salts): the
#: last ``seq`` of each table it keys, and when retention deleted it.
_LEGACY_THROUGH = "salt.legacy_through."
_LEGACY_SHREDDED = "salt.legacy_shredded_at"


@MIGRATIONS()
def m002_period_salts(db: sqlite_utils.Database) -> None:
    """Digest salts per period (``hashchain.period_of``), deleted by retention once the period
    holds no personal field (``shred_salts``). The rows already written stay keyed by the one
    salt in ``meta`` (up to the ``seq`` recorded here), which goes the same way once every one
    of them is purged. ``digest_attested``: the public digests of the rows that still carry a
    value under their digest when their salt goes (a purge's own audit row)."""
    execute_script(
        db,
        """
        CREATE TABLE digest_salts (period TEXT PRIMARY KEY, salt TEXT, shredded_at TEXT);
        CREATE TABLE digest_attested (
            tbl TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
            PRIMARY KEY (tbl, seq)
        );
        CREATE INDEX audit_ts ON audit(ts);
        """,
    )
    for table in _CHAINED_TABLES:
        last = db.execute(f"SELECT max(seq) FROM {_table_name(table)}").fetchone()[0]  # noqa: S608
        through = max(int(last or 0), _high_water(db.conn, table) or 0)
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)", [_LEGACY_THROUGH + table, str(through)]
        )


@dataclass(frozen=True)
class DigestKeys:
    """What keys the personal digests of a log file: the legacy salt for the rows up to
    ``legacy_through`` (all rows of a file not migrated yet: None), a salt per period (None:
    deleted), and the attested public digests of rows whose salt was deleted."""

    legacy: bytes | None
    legacy_shredded: bool
    legacy_through: Mapping[str, int] | None
    periods: Mapping[str, bytes | None]
    attested: Mapping[tuple[str, int], str]

    def key(self, table: str, row: Mapping[str, Any]) -> bytes | None:
        """The key of ``row``'s digest; None when it was deleted (or is missing)."""
        through = self.legacy_through
        seq = row.get("seq")
        if through is None or (isinstance(seq, int) and seq <= through.get(table, 0)):
            return self.legacy
        salt = self.periods.get(hashchain.period_of(row.get("ts")))
        return None if salt is None else hashchain.row_key(salt, row)


def _hex(value: object) -> bytes | None:
    try:
        key = bytes.fromhex(str(value)) if value else b""
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def _meta_value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def digest_keys(
    conn: sqlite3.Connection, *, live_only: bool = False, tables: Collection[str] | None = None
) -> DigestKeys:
    """The digest keys of the file ``conn`` reads (a file not migrated to period salts: its
    one salt keys every row). ``live_only``: only the salts not deleted yet, and no
    attestations (``shred_salts``, inside the purge's transaction: both grow with the log's
    age, a period a day and an attested row an hour, and it needs neither). ``tables``: the
    file's table names, when the caller has just read them."""
    legacy = _hex(_meta_value(conn, "salt"))
    shredded = _meta_value(conn, _LEGACY_SHREDDED) is not None
    if tables is None:
        tables = _table_names(conn)
    if "digest_salts" not in tables:
        return DigestKeys(legacy, shredded, None, {}, {})
    through = {}
    for table in _CHAINED_TABLES:
        text = _meta_value(conn, _LEGACY_THROUGH + table) or ""
        number = whole_number(text, most_digits=19)
        through[table] = 2**62 if number is None else number
    live = " WHERE salt IS NOT NULL" if live_only else ""
    periods = {
        str(p): _hex(v)
        for p, v in conn.execute("SELECT period, salt FROM digest_salts" + live)  # noqa: S608
    }
    attested = (
        {}
        if live_only
        else {(str(t), int(q)): str(d) for t, q, d in conn.execute("SELECT * FROM digest_attested")}
    )
    return DigestKeys(legacy, shredded, through, periods, attested)


def write_key(conn: sqlite3.Connection, row: Mapping[str, Any]) -> bytes:
    """The digest key of a row about to be written (inside the write transaction): its
    period's salt, made when the period has none (new, or deleted when all its rows were
    purged: those need no salt any more), mixed with the row's id."""
    period = hashchain.period_of(row["ts"])
    found = conn.execute("SELECT salt FROM digest_salts WHERE period = ?", [period]).fetchone()
    if found is not None and found[0] is not None:
        salt = _hex(found[0])
        if salt is None:  # never replaced: the rows it keys would read as edited
            raise StoreFault("store_fault", f"the digest salt of {period} is damaged")
    else:
        salt = secrets.token_bytes(32)
        conn.execute(
            "INSERT INTO digest_salts (period, salt) VALUES (?, ?) ON CONFLICT(period)"
            " DO UPDATE SET salt = excluded.salt, shredded_at = NULL",
            [period, salt.hex()],
        )
    return hashchain.row_key(salt, row)


@MIGRATIONS()
def m003_dated_events(db: sqlite_utils.Database) -> None:
    """Each boot's offset between wall and monotonic clock once synchronised, and the view
    the reports date events by (``kiosk.dating``): an event stamped before NTP stepped the
    clock belongs to the day it happened on, not to 1970's."""
    execute_script(db, dating.DATED_EVENTS_SQL)


#: The one-time token of the guard's form a decision came from, as its audit row keeps it
#: (``detail.form_once``, written in the decision's own commit; retention purges it with the
#: rest of the detail). A row whose detail is not JSON has none (never an error).
FORM_ONCE_SQL = "json_extract(detail, '$.form_once')"
FORM_ONCE_ROWS = f"json_valid(detail) AND {FORM_ONCE_SQL} IS NOT NULL"


@MIGRATIONS()
def m004_audit_form_once(db: sqlite_utils.Database) -> None:
    """The guard's forms that acted, by their token (``FORM_ONCE_SQL``): a form sent again
    after a restart (its token no longer in memory) is found by one probe of this index,
    however long the audit log. Only rows carrying a token are in it."""
    execute_script(
        db,
        f"CREATE INDEX audit_form_once ON audit({FORM_ONCE_SQL}) WHERE {FORM_ONCE_ROWS};",
    )


#: An event's reason codes as rows (``json_each``): none for an event without any.
_REASONS_OF = "json_each(CASE WHEN json_valid({r}) THEN {r} ELSE '[]' END)"


@MIGRATIONS()
def m005_decision_tally(db: sqlite_utils.Database) -> None:
    """Decisions by reason code over the whole log, kept in the commit of each event (a
    trigger, whoever writes it): ``/metrics`` reads these few rows, never the log (a year's
    events after each restart, seconds on a card). Seeded here from the log once, at the
    upgrade; an event with two reasons counts once under each, as it always did."""
    execute_script(
        db,
        f"""
        CREATE TABLE decision_tally (
            decision TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (decision, reason)
        ) WITHOUT ROWID;
        INSERT INTO decision_tally (decision, reason, n)
            SELECT e.decision, r.value, count(*) FROM events AS e,
                {_REASONS_OF.format(r="e.reasons")} AS r
            GROUP BY e.decision, r.value;
        CREATE TRIGGER events_decision_tally AFTER INSERT ON events BEGIN
            INSERT INTO decision_tally (decision, reason, n)
                SELECT NEW.decision, value, 1 FROM {_REASONS_OF.format(r="NEW.reasons")}
                WHERE true
                ON CONFLICT (decision, reason) DO UPDATE SET n = n + 1;
        END;
        """,  # noqa: S608 - module constants
    )


# ---------------------------------------------------------------------------------------------
# Helpers


def read_boot_id(path: Path | None = None) -> str:
    """The kernel's per-boot UUID (``mono_ns`` is only comparable within one boot): this
    boot's read once per process (it cannot change while the process runs; every event log
    opened, every power watch made read the file again), ``path``'s as it is."""
    return _this_boot_id() if path is None else _boot_id_in(path)


@functools.cache
def _this_boot_id() -> str:
    return _boot_id_in(_BOOT_ID_FILE)


def _boot_id_in(path: Path) -> str:
    try:
        value = path.read_text(encoding="ascii").strip()
    except OSError:
        value = ""
    return value or _PROCESS_BOOT_ID


def format_ts(when: datetime) -> str:
    """Fixed-width UTC ISO 8601 (``2026-03-02T08:30:00.000000Z``): sorts as text."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return hashchain.canonical(value).decode("utf-8")


def newer_schema(db: sqlite_utils.Database, known: Iterable[Migrations]) -> str | None:
    """What shows the file was migrated by a newer program than one with the sets ``known``
    (besides ``PROGRAM_SETS`` by name): a set it does not have, or a migration of a known set
    it does not have; None when nothing does. Reads only."""
    recorded = _recorded_steps(db, _table_names(db.conn))
    return _newer_than(recorded or {}, _every_step(known))


#: A migration set with the name of every migration it has.
_SetSteps = list[tuple[Migrations, list[str]]]


def _table_names(conn: sqlite3.Connection) -> set[str]:
    """The file's tables, in one read of its schema."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _recorded_steps(
    db: sqlite_utils.Database, tables: Collection[str]
) -> dict[str, list[str]] | None:
    """The migrations the file (whose tables are ``tables``) records as applied, by set, in
    the order they were (one read of the table); None when it has no migrations table yet (a
    new file)."""
    table = Migrations.migrations_table
    if table not in tables:
        return None
    recorded: dict[str, list[str]] = {}
    rows = db.execute(f"SELECT migration_set, name FROM [{table}] ORDER BY rowid")  # noqa: S608
    for set_name, name in rows:
        recorded.setdefault(set_name, []).append(name)
    return recorded


class _Empty(sqlite_utils.Database):
    """A new in-memory database, which has no table or view: it says so without asking, so
    a set's ``pending`` on it reads nothing (it asked the schema three times a set)."""

    def table_names(self, fts4: bool = False, fts5: bool = False) -> list[str]:
        return []

    def view_names(self) -> list[str]:
        return []


def _every_step(known: Iterable[Migrations]) -> _SetSteps:
    """Each set of ``known`` with every migration it has (what it would apply to an empty
    file), named without a query."""
    empty = _Empty(memory=True)
    try:
        return [(m, [step.name for step in m.pending(empty)]) for m in known]
    finally:
        empty.close()


def _pending_steps(
    recorded: Mapping[str, list[str]], known: _SetSteps
) -> list[tuple[Migrations, str]]:
    """The steps of ``known`` the file has not ``recorded``, in the order they apply."""
    return [
        (migrations, name)
        for migrations, steps in known
        for name in steps
        if name not in set(recorded.get(migrations.name, ()))
    ]


def _newer_than(recorded: Mapping[str, list[str]], known: _SetSteps) -> str | None:
    """``newer_schema`` of a file whose applied migrations are ``recorded``."""
    unknown = sorted(set(recorded) - PROGRAM_SETS - {m.name for m, _ in known})
    if unknown:
        return f"its migration set {unknown[0]} is unknown to this one"
    for migrations, steps in known:
        ours = set(steps)
        for applied in recorded.get(migrations.name, ()):
            if applied not in ours:
                return f"migration {migrations.name} {applied} is unknown to this one"
    return None


def _all_applied(
    db: sqlite_utils.Database, recorded: Mapping[str, list[str]] | None, known: _SetSteps
) -> bool:
    """Whether every migration of ``known`` is recorded in a migrations table of the form
    sqlite-utils keeps (keyed by ``id``), so applying the sets would change nothing: an
    opening of a current log skips the per-set checks (each set reads the table and its
    schema twice, ~11 sets at every start of the daemon and every verb)."""
    if recorded is None:
        return False
    if not all(set(steps) <= set(recorded.get(m.name, ())) for m, steps in known):
        return False
    # Its primary key's columns (``Table.pks``, without the three reads of the schema first).
    columns = db.execute(f"PRAGMA table_info([{Migrations.migrations_table}])").fetchall()
    return [c[1] for c in sorted(columns, key=lambda c: c[5]) if c[5]] == ["id"]


def _refuse_newer_schema(why: str | None, name: str) -> None:
    """Refuse a file a newer program migrated (a rollback of the program): writing into a
    schema this one does not know would leave rows without the newer columns or checks."""
    if why is not None:
        raise NewerSchema(
            "store_fault",
            f"cannot open {name}: it was written by a newer version of the program ({why});"
            " install that version or a later one",
        )


def _read_only(path: Path) -> bool:
    """Whether the file system of the log at ``path`` refuses writes, asked without writing:
    its statvfs flag (a card mounted read-only), then opening a probe file beside the log for
    writing (made once, empty): ext4 turned read-only by an error on a failing card keeps the
    flag clear on current kernels but refuses the open. Never the database or its -wal/-shm:
    closing another descriptor of those would drop SQLite's locks."""
    probe = path.with_name(f".{path.name}-probe")
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        return exc.errno == errno.EROFS
    return False


def _unwritable(path: Path) -> str:
    """Why this process cannot write the log at ``path``, if it is the file system or a file
    another user owns (a verb run as root beside the daemon's user); "" when neither."""
    if _read_only(path):
        return "the file system is read-only"
    found = unwritable_part(path)
    if found is None:
        return ""
    shown = f"{found.path}/" if found.path == found.folder else found.path.name
    return f"{shown} is not writable by this user (owner uid {found.uid})"


def _close_all(connections: Iterable[sqlite3.Connection]) -> None:
    for conn in connections:
        try:
            conn.close()
        except sqlite3.Error:
            pass


def _open_connection(path: Path, timeout_s: float) -> sqlite3.Connection:
    """The writer's connection factory (one seam, so tests can make the disk misbehave)."""
    return sqlite3.connect(str(path), timeout=timeout_s)


def _error_name(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


#: The most rows a read past a damaged page leaves out and the log remembers (a page holds
#: a few to a few tens of rows; more is the card failing as a whole).
MAX_SKIPPED = 1000

#: What a read of the log raises when the storage fails it (``is_damaged_read`` tells a
#: damaged page from a lock): the faces catch it by this name, holding no SQL of their own.
ReadFailure = sqlite3.DatabaseError
#: Of those, the database refusing for now (locked past the busy timeout, out of memory), not
#: a bug's error (a constraint, wrong bindings): what a face answers "retry later".
RefusedForNow = sqlite3.OperationalError


def error_name(exc: BaseException) -> str:
    """SQLite's name of the error (``SQLITE_CORRUPT``), else the exception's class name."""
    return _error_name(exc) or type(exc).__name__


def is_damaged_read(exc: BaseException) -> bool:
    """True when a read raised ``exc`` because the file could not be read back whole (a
    damaged page, an I/O error): not a lock or a full disk, which pass."""
    return isinstance(exc, sqlite3.DatabaseError) and _error_name(exc).startswith(_DAMAGE_ERRORS)


def is_storage_error(exc: BaseException) -> bool:
    """True when ``exc`` says the storage failed (full, I/O, read-only, locked, corrupt)."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, sqlite3.Error) and _error_name(exc).startswith(_STORAGE_ERRORS)


def decode_event_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored events row with its JSON text fields decoded and ``clock_synced`` a bool; a
    field whose text is not JSON read as nothing and named in ``unreadable`` (``decode_json``)."""
    out = decode_json(dict(row), _EVENT_JSON)
    if out.get("clock_synced") is not None:
        out["clock_synced"] = bool(out["clock_synced"])
    return out


def decode_audit_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored audit row as ``decode_event_row`` reads an event (``detail`` decoded)."""
    out = decode_json(dict(row), ("detail",))
    if out.get("clock_synced") is not None:
        out["clock_synced"] = bool(out["clock_synced"])
    return out


def _high_water(conn: sqlite3.Connection, table: str) -> int | None:
    """``meta``'s high-water mark of ``table`` (the highest ``seq`` ever committed); None
    when it is missing or not a number (damaged: ``verify`` says so)."""
    mark = conn.execute("SELECT value FROM meta WHERE key = ?", [f"{table}.seq"]).fetchone()
    text = str(mark[0]) if mark else ""
    return whole_number(text, most_digits=19)


def _tail(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    """Next ``seq`` and the ``prev_hash`` for it; call inside the write transaction.

    A damaged high-water mark does not stop the log: it goes on from its last row (and
    writes the mark again); ``verify`` reports the damage until then."""
    sql = f"SELECT seq, hash FROM {_table_name(table)} ORDER BY seq DESC LIMIT 1"  # noqa: S608
    row = conn.execute(sql).fetchone()
    last_seq, last_hash = (row[0], row[1]) if row else (0, hashchain.GENESIS)
    return max(last_seq, _high_water(conn, table) or 0) + 1, last_hash


def _set_high_water(conn: sqlite3.Connection, table: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [f"{table}.seq", str(seq)],
    )


#: ``meta``'s key for the site settings the log's local days and reports are cut by (the
#: site's timezone, the outing quota), recorded by the daemon that writes the log: a verb run
#: by hand without the kiosk's config reads them from the log, not the defaults.
SITE_META_KEY = "site"


#: ``meta``'s key of the history of the site settings a past day is read by
#: (``HISTORY_SETTINGS``, ``record_site``): a JSON list of ``{"since": format_ts or null,
#: "hours": ..., "quota": ...}``, oldest first, one entry a change of any of them; ``since``
#: null: in force from the log's start (or from before the history was kept).
SITE_HISTORY_KEY = "site.history"
#: Where the history was kept while it held the staffed hours alone (2026-12-07), the one the
#: release before reads: still written, the hours alone (``_hours_alone``), so a release gone
#: back to splits a day by its hours; read while ``SITE_HISTORY_KEY`` is not (a log that
#: release wrote last), and its changes after the history's last entry are that release's.
_HOURS_HISTORY_KEY = "site.hours"
#: The site settings whose changes are kept with the time each came into force: the staffed
#: hours (a day's ``staffing`` split) and the outing quota (a day's outings and over-quota
#: count), so a past day is read by those of that day, not by a restart's since.
HISTORY_SETTINGS = ("hours", "quota")


def record_site(store: EventLog, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` (JSON-able) as the site the log is written for, if they changed;
    those of ``HISTORY_SETTINGS`` with the time they came into force on the log's clock too
    (``SITE_HISTORY_KEY``), so a past day is read by the settings of that day
    (``recorded_history``). Each start checks the history against the site recorded: a
    release gone back to records the site (and the hours) but not the history, and one before
    the quota joined it kept none of it (``_history_after``). A change made on a clock not
    set yet (a boot before NTP answered: 1970, fake-hwclock's last save) is dated once the
    clock is set (``date_site_changes``: at the log's first row on a set clock,
    ``EventLog.site_undated``), by this boot's monotonic clock, never by that clock's guess."""
    text = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    reading = ClockReading.take(store.clock)
    since = format_ts(reading.wall)
    pending = None if reading.synced else {"boot": store.boot_id, "mono_ns": reading.mono_ns}

    def change(db: sqlite_utils.Database) -> Callable[[], None] | None:
        before = recorded_site(db)
        stored = _history_entries(db)
        dated = _dated_entries(db, stored, reading, store.boot_id)
        history = _history_after(dated, _hours_entries(db), before, settings, since)
        if pending is not None:  # the entries this start added: dated once the clock is set
            for entry in history[len(dated) :]:
                if entry.get("since") == since:
                    entry["pending"] = pending
        hours = _hours_alone(history)
        if before == settings and history == stored and hours == _hours_entries(db):
            return None

        def write() -> None:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [SITE_META_KEY, text],
            )
            _write_history(db, history)

        return write

    def write(db: sqlite_utils.Database) -> None:
        todo = change(db)
        if todo is not None:
            todo()

    if change(store.reader()) is not None:  # most starts: nothing to write
        store.submit(write)
    store.site_undated = site_changes_pending(store.reader())


def _kept_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings of ``HISTORY_SETTINGS`` that ``settings`` holds (each a JSON object)."""
    return {k: v for k in HISTORY_SETTINGS if isinstance(v := (settings or {}).get(k), dict)}


def _history_after(
    stored: list[dict[str, Any]],
    hours: list[dict[str, Any]],
    before: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    since: str,
) -> list[dict[str, Any]]:
    """The history once ``settings`` are recorded at ``since``: ``stored`` (its entries) with
    an entry from ``since`` on when one of ``settings``' differs from the last; a log's first
    (no site recorded before) from its start. What the site recorded (``before``) holds is
    taken as in force from the start where the history lacks it (a release before the history,
    or before a setting joined it), and the changes a release gone back to made since the
    last entry (``hours``: its ``site.hours``) are taken in (``_older_release_changes``)."""
    history = [dict(entry) for entry in stored]
    old = _kept_settings(before)
    if not history and old:
        history = [{"since": None, **old}]
    for entry in history:  # kept before the setting joined the history
        for name, value in old.items():
            entry.setdefault(name, value)
    _older_release_changes(history, hours, old, since)
    new = _kept_settings(settings)
    if new and not (history and all(history[-1].get(k) == v for k, v in new.items())):
        start = before is None and not history
        history.append({"since": None if start else since, **new})
    return history


def _older_release_changes(
    history: list[dict[str, Any]],
    hours: list[dict[str, Any]],
    site: Mapping[str, Any],
    since: str,
) -> None:
    """Add to ``history`` what a release gone back to changed after its last entry: that
    release records the site (``site``: its settings) and the hours' history (``hours``), not
    this history. Each of its hours from the time it recorded; the site's settings from its
    last such time when their hours are those (it wrote both then), else from ``since`` (this
    start: when it changed them is not recorded). After the last entry dated: a change
    pending (``record_site`` on a clock not set) keeps that clock's guess (1970) as its
    ``since``, and ``site.hours`` holds it too (``_hours_alone``); taken in again, each start
    before NTP added every later entry and a copy of the pending one."""
    if not history:
        return
    dated = [e.get("since") for e in history if "pending" not in e]
    last = dated[-1] if dated else None
    ours = [(e.get("since"), e.get("hours")) for e in history]
    newer = [
        e
        for e in hours
        if isinstance(e.get("since"), str)
        and (last is None or e["since"] > last)
        and (e["since"], e.get("hours")) not in ours
    ]
    for entry in newer:
        if history[-1].get("hours") != entry.get("hours"):
            tail = {k: v for k, v in history[-1].items() if k != "pending"}
            history.append({**tail, "since": entry["since"], "hours": entry.get("hours")})
    if not site or all(history[-1].get(k) == v for k, v in site.items()):
        return
    if (
        newer
        and history[-1]["since"] == newer[-1]["since"]
        and site.get("hours") == newer[-1].get("hours")
    ):
        history[-1].update(site)
    else:
        history.append({"since": since, **site})


def date_site_changes(db: sqlite_utils.Database, reading: ClockReading, boot_id: str) -> bool:
    """Date the changes of the site's settings a start recorded on a clock not set yet
    (``record_site``'s ``pending``), now that ``reading`` (the log's clock, of boot
    ``boot_id``) can: run by the purge before it freezes a day (``kiosk.retention``) and by
    each start. Whether any was."""
    stored = _meta_entries(db, SITE_HISTORY_KEY)
    dated = _dated_entries(db, stored, reading, boot_id)
    if dated == stored:
        return False
    _write_history(db, dated)
    return True


def site_changes_pending(db: sqlite_utils.Database) -> bool:
    """Whether a change of the site's settings waits for a set clock to date it
    (``date_site_changes``)."""
    return any("pending" in e for e in _meta_entries(db, SITE_HISTORY_KEY))


def _write_history(db: sqlite_utils.Database, history: list[dict[str, Any]]) -> None:
    for key, value in ((SITE_HISTORY_KEY, history), (_HOURS_HISTORY_KEY, _hours_alone(history))):
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, json.dumps(value, sort_keys=True, ensure_ascii=False)],
        )


def _dated_entries(
    db: sqlite_utils.Database,
    stored: list[dict[str, Any]],
    reading: ClockReading | None,
    boot_id: str,
) -> list[dict[str, Any]]:
    """``stored`` with each change recorded on a clock not set (``pending``: its boot and
    monotonic time) dated where it can be (``_pending_since``): never before the entry before
    it nor into a day frozen already (its copy was counted by the rule before, which the gate
    held to until that start). ``reading`` None (a reader's): one not known yet is taken from
    the day after the newest stamp on a set clock (the start came after it; never that day),
    or its clock's guess where that is later; it stays pending in the log."""
    out: list[dict[str, Any]] = []
    for entry in stored:
        pending = entry.get("pending")
        when = _pending_since(db, pending, reading, boot_id) if pending else None
        if when is None and not (pending and reading is None):
            out.append(entry)
            continue
        floors = (_frozen_until(db), *(e.get("since") for e in out))
        if when is None:  # a reader's, the clock not known yet: never the day of a synced stamp
            site = recorded_site(db) or {}
            newest = newest_synced_ts(db)
            floors = (*floors, newest and _next_midnight(newest, site.get("timezone")))
            when_text = str(entry.get("since") or "")
        else:
            when_text = format_ts(when)
        since = max([when_text, *(f for f in floors if isinstance(f, str))])
        out.append({k: v for k, v in entry.items() if k != "pending"} | {"since": since})
    return out


def _pending_since(
    db: sqlite_utils.Database, pending: object, reading: ClockReading | None, boot_id: str
) -> datetime | None:
    """When a start on a clock not set (``pending``: ``{"boot", "mono_ns"}``) happened: by
    ``reading``'s clock, set, for this boot (``kiosk.clock.ClockReading.wall_at``); by the
    boot's offset once it recorded an event on a set clock (``kiosk.dating``'s
    ``boot_clock``); for an earlier boot never dated, no earlier than it happened
    (``kiosk.dating.retention_offsets``: the next boot's start, by its offset or, set,
    ``reading``'s; a reader's, ``reading`` None, by the offset alone), else ``reading``'s time.
    None: not known yet."""
    if not isinstance(pending, dict):
        return None
    boot, mono = pending.get("boot"), pending.get("mono_ns")
    if not isinstance(boot, str) or isinstance(mono, bool) or not isinstance(mono, int):
        return None
    if not 0 <= mono < 2**63:  # damaged: no monotonic time (``events.mono_ns``'s range)
        return None
    if boot == boot_id:
        return reading.wall_at(mono) if reading is not None and reading.synced else None
    offsets = dict(
        db.execute("SELECT boot_id, offset_ms FROM boot_clock WHERE boot_id = ?", [boot])
    )
    set_now = reading if reading is not None and reading.synced else None
    if boot not in offsets and (reading is None or set_now is not None):
        # never dated: no earlier than it happened, by the next boot's start (its offset, a
        # reader's too) or this one's (``reading``, set)
        offsets = dating.retention_offsets(db, [boot], offsets, set_now, boot_id)
    if boot not in offsets:
        return set_now.wall if set_now is not None else None
    return datetime.fromtimestamp((offsets[boot] + mono // 1_000_000) / 1000, UTC)


def _frozen_until(db: sqlite_utils.Database) -> str | None:
    """The end of the newest day frozen (``kiosk.stats``' ``daily_aggregates``), UTC text."""
    try:
        row = db.execute("SELECT day, tz FROM daily_aggregates ORDER BY day DESC LIMIT 1")
        found = row.fetchone()
    except sqlite3.OperationalError:  # no day frozen in this log yet
        return None
    return None if found is None else _next_midnight(str(found[0]), found[1])


def _next_midnight(day_or_ts: str, tz: object) -> str | None:
    """The start (UTC text) of the local day after the one of ``day_or_ts`` (a date, or a
    stamp) in zone ``tz``; None when either cannot be read."""
    try:
        zone = days.as_zone(str(tz))
        if len(day_or_ts) > 10:
            day = days.local_day(day_or_ts.replace("Z", "+00:00"), zone)
        else:
            day = date.fromisoformat(day_or_ts)
        return format_ts(days.day_start(day + timedelta(days=1), zone))
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


def _hours_alone(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hours' history as the release before reads it (``_HOURS_HISTORY_KEY``): each
    change of the hours with the time it came into force."""
    out: list[dict[str, Any]] = []
    for entry in history:
        if isinstance(entry.get("hours"), dict) and (not out or out[-1]["hours"] != entry["hours"]):
            out.append({"since": entry.get("since"), "hours": entry["hours"]})
    return out


def _hours_entries(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The hours' history as kept for the release before (``_HOURS_HISTORY_KEY``)."""
    return _meta_entries(db, _HOURS_HISTORY_KEY)


def _history_entries(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The history's entries as kept (``SITE_HISTORY_KEY``, else the hours' alone kept
    before), each a JSON object with a ``since`` of null or text; [] when none was kept (a log
    recorded before 2026-12-07, one no daemon wrote) or it cannot be read."""
    if not db["meta"].exists():
        return []
    row = db.execute("SELECT 1 FROM meta WHERE key = ?", [SITE_HISTORY_KEY]).fetchone()
    return _meta_entries(db, SITE_HISTORY_KEY if row is not None else _HOURS_HISTORY_KEY)


def _meta_entries(db: sqlite_utils.Database, key: str) -> list[dict[str, Any]]:
    """The entries of the history kept under ``key``; [] when none or unreadable."""
    if not db["meta"].exists():
        return []
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    try:
        value = json.loads(row[0]) if row else []
    except (TypeError, ValueError):
        return []
    if not isinstance(value, list):
        return []
    return [
        e
        for e in value
        if isinstance(e, dict) and (e.get("since") is None or isinstance(e.get("since"), str))
    ]


def recorded_history(
    db: sqlite_utils.Database, setting: str
) -> list[tuple[str | None, dict[str, Any]]]:
    """One setting of ``HISTORY_SETTINGS`` as the daemon recorded it (``record_site``), each
    value with the time it came into force (``format_ts``; None: from the log's start),
    oldest first; [] when none was recorded (a log recorded before 2026-12-07: the hours;
    before this version: the quota) or the record cannot be read."""
    entries = _history_entries(db)
    if any("pending" in e for e in entries):  # a change on a clock not set (record_site)
        entries = _dated_entries(db, entries, None, "")
    return [(e.get("since"), e[setting]) for e in entries if isinstance(e.get(setting), dict)]


def recorded_site(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The site settings the daemon recorded in the log (``record_site``); None if none
    were (a log no daemon has written since) or the record is not a JSON object."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [SITE_META_KEY]).fetchone()
    try:
        value = json.loads(row[0]) if row else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------
# Verification


def _digest_problem(
    table: str,
    row: Mapping[str, Any],
    keys: DigestKeys,
    personal: tuple[str, ...],
    digest_fn: Callable[[bytes, Mapping[str, Any]], str],
) -> str | None:
    """What is wrong with ``row``'s personal digest, if anything: checked with its key, or,
    its key deleted, against the digest attested then. A purged row (fields nulled) needs no
    check: its stored digest is what the chain covers."""
    seq = row["seq"]
    # A purged row's household is its marker, or kept for the quota's look-back (``hold``).
    if row.get("purged_at") is not None and all(
        row.get(p) is None for p in personal if p != "household"
    ):
        return _held_problem(table, row, keys)
    key = keys.key(table, row)
    # Only a purge's own row is ever attested; attested first: a day whose salt went may
    # have a new one since (a row stamped late).
    attested = keys.attested.get((table, seq)) if row.get("action") in KEPT_ACTIONS else None
    if attested is not None:
        if digest_fn(hashchain.ATTEST_KEY, row) == attested:
            return None
    elif key is not None:
        if digest_fn(key, row) == row["personal_digest"]:
            return None
    else:
        return (
            f"{table} seq {seq}: holds personal fields, but the digest salt of its period"
            f" ({hashchain.period_of(row.get('ts'))}) is gone (deleted or edited)"
        )
    return f"{table} seq {seq}: personal fields do not match their digest (edited)"


def _held_problem(table: str, row: Mapping[str, Any], keys: DigestKeys) -> str | None:
    """What is wrong with a purged row's household, if anything: its marker (``""``, or
    null for none), or held for the quota's look-back and matching the digest the purge took
    of it (``HELD_DIGESTS``) with its key."""
    seq, household = row["seq"], row.get("household")
    if household in (None, record.PURGED_HOUSEHOLD):
        return None
    held = keys.attested.get((HELD_DIGESTS, seq))
    key = keys.key(table, row)
    if held is None:
        return f"{table} seq {seq}: purged, but holds a household no purge kept (edited)"
    if key is None:
        return (
            f"{table} seq {seq}: holds a household, but the digest salt of its period"
            f" ({hashchain.period_of(row.get('ts'))}) is gone (deleted or edited)"
        )
    if _held_digest(key, row) != held:
        return (
            f"{table} seq {seq}: its household kept for the quota does not match its digest"
            " (edited)"
        )
    return None


def _verify_table(
    conn: sqlite3.Connection,
    table: str,
    keys: DigestKeys,
    personal: tuple[str, ...],
    digest_fn: Callable[[bytes, Mapping[str, Any]], str],
    hash_fn: Callable[[Mapping[str, Any]], str],
) -> tuple[int, int | None, str | None]:
    """Walk one chain in ``seq`` order; return (rows checked, first bad seq, problem). A
    page the card no longer reads back whole (``is_damaged_read``) ends the walk there, named
    as the first row that cannot be read: the rows before it are verified."""
    cursor = conn.execute(f"SELECT * FROM {_table_name(table)} ORDER BY seq")  # noqa: S608
    names = [d[0] for d in cursor.description]
    expected_seq = 1
    prev_hash = hashchain.GENESIS
    checked = 0
    rows = iter(cursor)
    while True:
        try:
            values = next(rows, None)
        except sqlite3.DatabaseError as exc:
            if not is_damaged_read(exc):
                raise
            return checked, expected_seq, _unreadable_from(table, expected_seq, exc)
        if values is None:
            break
        row = dict(zip(names, values, strict=True))
        seq = row["seq"]
        checked += 1
        if seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if seq == expected_seq + 1
                else (f"seq {expected_seq}..{seq - 1}")
            )
            return checked, seq, f"{table} seq {seq}: {missing} missing (rows deleted)"
        if not row.get("hash") or not row.get("prev_hash") or not row.get("personal_digest"):
            return checked, seq, f"{table} seq {seq}: hash fields missing (partial row)"
        if row["prev_hash"] != prev_hash:
            return (
                checked,
                seq,
                (
                    f"{table} seq {seq}: prev_hash does not match seq {seq - 1}"
                    " (rows deleted, inserted or reordered)"
                ),
            )
        try:
            digest_problem = _digest_problem(table, row, keys, personal, digest_fn)
            if digest_problem is not None:
                return checked, seq, digest_problem
            if hash_fn(row) != row["hash"]:
                return checked, seq, f"{table} seq {seq}: hash mismatch (row edited or reordered)"
        except hashchain.CanonicalError as exc:
            return checked, seq, f"{table} seq {seq}: unreadable value ({exc})"
        prev_hash = row["hash"]
        expected_seq = seq + 1
    high_water = _high_water(conn, table)
    if high_water is None:
        last = expected_seq - 1
        return (
            checked,
            last + 1,
            (
                f"meta: the high-water mark {table}.seq is missing or damaged (rows after"
                f" {table} seq {last} cannot be checked; the next write sets it again)"
            ),
        )
    if high_water > expected_seq - 1:
        last = expected_seq - 1
        return (
            checked,
            last + 1,
            (
                f"{table} seq {last + 1}: rows after seq {last} are missing"
                f" (high-water mark {high_water}; log truncated)"
            ),
        )
    return checked, None, None


def _unreadable_from(table: str, seq: int, exc: BaseException) -> str:
    read = f"seq 1..{seq - 1} read and verified" if seq > 1 else "no row could be read"
    return (
        f"{table} seq {seq}: cannot be read from here on ({_error_name(exc)}: part of the file"
        f" is damaged); {read}"
    )


@MIGRATIONS()
def m006_unpurged_rows(db: sqlite_utils.Database) -> None:
    """The rows retention has not purged yet, by ``seq`` (``purge_candidates``): each hourly
    purge looks for its rows among these (the retention window's), not from the log's first
    row (a year of rows purged long ago). A row leaves it when purged."""
    execute_script(
        db,
        "CREATE INDEX events_unpurged ON events(seq) WHERE purged_at IS NULL;"
        " CREATE INDEX audit_unpurged ON audit(seq) WHERE purged_at IS NULL;",
    )


@MIGRATIONS()
def m007_not_opened_rows(db: sqlite_utils.Database) -> None:
    """The rows saying the gate did not open for a pass (``kiosk.links.NOT_OPENED_ROWS``), by
    ``seq``: the guard's feed, each passage's page and the peers' pages look for them after a
    pass (``kiosk.queries.not_opened_sql``) at every render, which read every row after
    it (60 ms at 400,000 rows on a PC, several times that on a Pi); now only those few."""
    execute_script(db, f"CREATE INDEX events_not_opened ON events(seq) WHERE {NOT_OPENED_ROWS};")


@MIGRATIONS()
def m008_boot_runs(db: sqlite_utils.Database) -> None:
    """Where each boot's rows begin in ``events`` and ``audit`` (``dating.BOOT_RUNS_SQL``):
    the daily report's power spells found where an old boot's rows end by reading them all,
    every boot's at every report (0.6 s at 900,000 audit rows and 300 boots); now one probe
    a boot. Filled from the rows already there, then by a trigger with each boot's first."""
    execute_script(db, dating.BOOT_RUNS_SQL)


@MIGRATIONS()
def m009_unsynced_by_mono(db: sqlite_utils.Database) -> None:
    """A boot's unsynchronised rows by its monotonic clock (``mono_ns``): a registration's
    look for an earlier one (``kiosk.again.NotAgain``, in its commit's write transaction)
    found the rows of the last five minutes of a gate whose clock never synced by reading
    every row of its boot (``events_unsynced`` is by ``seq``) and sorting them: 2 to 3.6 s
    a registration at 1.6 M rows, passages queued behind it past their deadline. Now only
    the window's rows (``kiosk.queries.FIRST_UNSYNCED_SQL``)."""
    execute_script(
        db,
        "CREATE INDEX events_unsynced_mono ON events(boot_id, mono_ns) WHERE clock_synced = 0;",
    )


@MIGRATIONS()
def m010_purged_households(db: sqlite_utils.Database) -> None:
    """Rows purged before a purge left ``record.PURGED_HOUSEHOLD`` where a household was: a
    passing exit among them may have been somebody's outing (a visitor's, a guard's pass for
    nobody, flagged ``unchecked``, never was), so it is marked as having had one: whose it was
    unknown, as before, never read as no outing."""
    db.execute(
        f"UPDATE events SET household = '{record.PURGED_HOUSEHOLD}' WHERE purged_at IS NOT NULL"  # noqa: S608
        " AND household IS NULL AND direction = 'out' AND decision IN ('pass', 'manual_pass')"
        " AND flags NOT LIKE '%\"unchecked\"%'"
    )


@MIGRATIONS()
def m011_held_households(db: sqlite_utils.Database) -> None:
    """The purged rows whose household a purge kept for the quota's look-back
    (``purge_rows``' ``hold``): the next purges empty them as the look-back passes them
    (``release_held``), a few rows, never a walk of every purged one."""
    execute_script(
        db,
        "CREATE INDEX events_held ON events(ts)"
        f" WHERE purged_at IS NOT NULL AND household <> '{record.PURGED_HOUSEHOLD}';",
    )


@MIGRATIONS()
def m012_synced_times(db: sqlite_utils.Database) -> None:
    """The rows stamped on a synchronised clock, by ``ts``: where the log's known time begins
    (``kiosk.stats.before_log``, at every daily report asked for). Found without them by
    reading ``events_ts`` and ``audit_ts`` from their first row past every row stamped before
    NTP set the clock (1970, fake-hwclock's date): all of a gate's rows while its clock never
    synced."""
    execute_script(
        db,
        "CREATE INDEX events_synced_ts ON events(ts) WHERE clock_synced = 1;"
        " CREATE INDEX audit_synced_ts ON audit(ts) WHERE clock_synced = 1;",
    )


#: The audit action of a retention purge (``kiosk.retention.purge``); its ``detail.cutoff``
#: is what a purged row is checked against.
PURGE_ACTION = "retention_purge"
#: The audit action of a resident's data removed ahead of retention (``kiosk.people.forget``):
#: its ``detail`` (counts, the kinds of key, the ``purged_at`` stamp it gave the rows) holds no
#: personal data and is what the rows it emptied are checked against (``_forgotten``).
FORGET_ACTION = "person_forgotten"
#: The audit rows retention never empties: the evidence ``verify`` checks purged rows by.
KEPT_ACTIONS = (PURGE_ACTION, FORGET_ACTION)
#: ``meta``'s record of the last retention purge's run (``kiosk.retention.last_run``): a purge
#: that changed nothing writes no audit row, only this (overwritten at each run).
LAST_RUN_KEY = "retention.last_run"


def purge_coverage(conn: sqlite3.Connection, table: str) -> int:
    """The highest ``seq`` of ``table`` that some audited purge may have purged: for each
    ``retention_purge`` audit row, the last clock-synced row older than its cutoff (the rule
    ``purge_personal`` applies, recomputed from hashed, non-personal columns), or than its
    ``reach`` (the cutoff of a purge at the end of its local day) when it has one: the purges
    later that day write no row of their own (``kiosk.retention``, coalesced)."""
    audits = conn.execute(
        "SELECT seq, detail FROM audit WHERE action = ? AND detail IS NOT NULL", [PURGE_ACTION]
    ).fetchall()
    limits: list[tuple[int, str]] = []  # (rows before this seq, older than this cutoff)
    for audit_seq, detail in audits:
        try:
            found = json.loads(detail)
            cutoff = format_ts(datetime.fromisoformat(str(found.get("cutoff"))))
            # A day's purge row covers its later runs' cutoffs (``reach``), at most a day on.
            reach = format_ts(datetime.fromisoformat(str(found.get("reach") or found["cutoff"])))
        except (ValueError, TypeError, AttributeError, KeyError):
            continue
        limits.append((audit_seq if table == "audit" else 2**62, max(cutoff, reach)))
    # A purge whose seq bound and cutoff another purge's both reach adds nothing: query only
    # the others (usually just the latest; the daemon audits one purge an hour).
    through = 0
    reach = ""
    for before, cutoff in sorted(limits, reverse=True):
        if cutoff <= reach:
            continue
        reach = cutoff
        row = conn.execute(
            f"SELECT max(seq) FROM {_table_name(table)}"  # noqa: S608
            " WHERE clock_synced = 1 AND ts < ? AND seq < ?",
            [cutoff, before],
        ).fetchone()
        through = max(through, int(row[0] or 0))
    return through


def _check_purges(conn: sqlite3.Connection, table: str) -> tuple[int | None, str | None]:
    """The first purged row of ``table`` that no audited purge covers: a purge faked by
    nulling a row's personal fields and stamping ``purged_at``."""
    first = conn.execute(
        f"SELECT min(seq) FROM {_table_name(table)} WHERE purged_at IS NOT NULL",  # noqa: S608
    ).fetchone()
    if not first or first[0] is None:
        return None, None
    covered = purge_coverage(conn, table)
    stamps, problem = _forgotten(conn, table, covered)
    if problem is not None:
        return problem
    bad = conn.execute(
        f"SELECT min(seq) FROM {_table_name(table)}"  # noqa: S608
        " WHERE purged_at IS NOT NULL AND seq > ?"
        " AND purged_at NOT IN (SELECT value FROM json_each(?))",
        [covered, json.dumps(sorted(stamps))],
    ).fetchone()
    if bad and bad[0] is not None:
        seq = int(bad[0])
        return seq, (
            f"{table} seq {seq}: purged, but no audited purge covers it (audited purges"
            f" reach seq {covered}; personal fields removed outside retention)"
        )
    return None, None


def _forgotten(
    conn: sqlite3.Connection, table: str, covered: int
) -> tuple[set[str], tuple[int | None, str | None] | None]:
    """The ``purged_at`` stamps of the residents' data forgotten ahead of retention (each
    ``FORGET_ACTION`` row's), and a problem when a row of ``table`` carrying one is later than
    that forget (an audit row after its own; an event past the log's last at the time, its
    ``events_through``, when the row says it), or when more rows carry it than the row says it
    emptied (a purge faked with that stamp). Every row carrying it counts, a row a later
    retention purge reaches too: retention never stamps a purged row again, so the forget's
    rows keep its stamp for ever, and a count of only the rows past retention's reach
    (``covered``) would leave the rows retention covered as room for as many faked ones."""
    stamps: set[str] = set()
    rows = conn.execute(
        "SELECT seq, detail FROM audit WHERE action = ? AND detail IS NOT NULL", [FORGET_ACTION]
    ).fetchall()
    for audit_seq, detail in rows:
        try:
            found = json.loads(detail)
            stamp, emptied = str(found["purged_at"]), int(found["rows"][table])
            through = int(audit_seq) if table == "audit" else found.get("events_through")
        except (ValueError, TypeError, KeyError):
            continue
        stamps.add(stamp)
        bound = through if isinstance(through, int) and not isinstance(through, bool) else 2**62
        n = conn.execute(
            f"SELECT count(*), min(seq), min(CASE WHEN seq > ? THEN seq END)"  # noqa: S608
            f" FROM {_table_name(table)} WHERE purged_at = ?",
            [bound, stamp],
        ).fetchone()
        if n[2] is not None:
            seq = int(n[2])
            return stamps, (
                seq,
                f"{table} seq {seq}: purged as forgotten by audit seq {audit_seq}, but written"
                f" after that forget (personal fields removed outside retention)",
            )
        if int(n[0]) > emptied:
            seq = int(n[1])
            return stamps, (
                seq,
                f"{table} seq {seq}: purged as forgotten by audit seq {audit_seq}, which"
                f" emptied {emptied} rows of {table}, not {int(n[0])} (personal fields removed"
                " outside retention)",
            )
    return stamps, None


def compare_with_central(
    conn: sqlite3.Connection,
    kiosk_id: str,
    central: Iterable[tuple[int, str]],
    held: Callable[[], Sequence[str] | None] = lambda: None,
) -> tuple[int | None, str] | None:
    """The first row where the kiosk's file and the office's copy disagree, as ``(seq,
    problem)``; None when every row the office holds is in the file, unchanged.

    ``central`` yields the office's ``(seq, hash)`` for ``kiosk_id`` in ``seq`` order (a pulled
    SQLite copy or the fleet's PostgreSQL). Rows the office has not pulled yet are not
    compared. This catches what a local check cannot: a row edited with the chain recomputed
    (salt from ``meta``), and a tail deleted with ``meta``'s high-water mark lowered. A copy
    with no row of ``kiosk_id`` while the file has some (another gate's copy, a wrong
    ``--kiosk-id``) compares nothing: ``(None, problem)``, never a match; ``held`` then gives
    the kiosk ids the copy holds (a few), None where that tells nothing (the office's database
    holds every gate's), so that the problem says which it is (``_nothing_compared``)."""
    cursor = conn.execute(
        "SELECT seq, hash FROM events WHERE kiosk_id = ? ORDER BY seq", [kiosk_id]
    )
    local = iter(cursor)
    mine = next(local, None)
    compared = 0
    for seq, central_hash in central:
        compared += 1
        while mine is not None and mine[0] < seq:
            mine = next(local, None)
        if mine is None or mine[0] != seq:
            return seq, (
                f"events seq {seq}: in the office's copy but not in the kiosk's file"
                " (rows deleted or the log shortened)"
            )
        if mine[1] != central_hash:
            return seq, (
                f"events seq {seq}: differs from the office's copy (row rewritten; the"
                " office holds hash " + central_hash[:12] + "...)"
            )
        mine = next(local, None)
    if not compared and mine is not None:
        return None, _nothing_compared(kiosk_id, held())
    return None


#: The way on when the office holds no row of the gate: nothing it holds can be missing here.
_NOTHING_TO_LOSE = (
    "it holds nothing this log could have lost: check the log alone (verify-log without"
    " --against), then go on (a replaced Pi: the install)"
)


def _nothing_compared(kiosk_id: str, held: Sequence[str] | None) -> str:
    """``compare_with_central``'s problem for an office's copy holding no event of
    ``kiosk_id``: another gate's copy (``held``: only others'), one with no events at all
    (pulled before the gate's first event), or the office's database (None: cannot tell)."""
    head = f"the office's copy holds no events of kiosk {kiosk_id!r}: nothing was compared"
    if held:
        ids = ", ".join(repr(k) for k in held)
        return (
            f"{head} (it holds events of {ids} only: the copy of another gate; get this gate's,"
            " or --kiosk-id names the id the copy holds this gate under)"
        )
    if held is None:
        return (
            f"{head}; if the office never pulled this gate (a new gate, pulled before its first"
            f" event), {_NOTHING_TO_LOSE}; else --kiosk-id names the id the office holds it under"
        )
    return (
        f"{head} (it holds no events at all: the office never pulled this gate, or before its"
        f" first event); if it is this gate's copy, {_NOTHING_TO_LOSE}"
    )


def verify_database(db: sqlite_utils.Database | sqlite3.Connection) -> VerifyResult:
    """Check both hash chains, ``seq`` continuity and personal digests of an event-log file.

    Works on any connection (the kiosk's reader, ``kiosk verify-log``'s read-only one); it
    never writes. It reads one snapshot: a passage the running kiosk commits meanwhile is
    not half seen (its high-water mark without its row would read as a truncated log)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    with read_snapshot(conn):
        return _verify_snapshot(conn)


def _verify_snapshot(conn: sqlite3.Connection) -> VerifyResult:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = {"meta", "events", "audit"} - tables
    if missing:
        problem = f"not an event log: missing table(s) {', '.join(sorted(missing))}"
        return VerifyResult(False, None, problem, None, problems=(problem,))
    keys = digest_keys(conn)
    if keys.legacy is None and not keys.legacy_shredded:
        problem = "meta: the digest salt is missing or damaged (personal digests cannot be checked)"
        return VerifyResult(False, None, problem, "meta", problems=(problem,))
    e_count, e_seq, e_problem = _verify_table(
        conn,
        "events",
        keys,
        hashchain.EVENT_PERSONAL_FIELDS,
        hashchain.event_personal_digest,
        hashchain.event_hash,
    )
    a_count, a_seq, a_problem = _verify_table(
        conn,
        "audit",
        keys,
        hashchain.AUDIT_PERSONAL_FIELDS,
        hashchain.audit_personal_digest,
        hashchain.audit_hash,
    )
    if not e_problem:
        e_seq, e_problem = _check_purges(conn, "events")
    if not a_problem:
        a_seq, a_problem = _check_purges(conn, "audit")
    problems = tuple(p for p in (e_problem, a_problem) if p)
    if e_problem:
        return VerifyResult(False, e_seq, e_problem, "events", e_count, a_count, problems)
    if a_problem:
        return VerifyResult(False, a_seq, a_problem, "audit", e_count, a_count, problems)
    return VerifyResult(True, None, None, None, e_count, a_count, ())


def purge_personal(db: sqlite_utils.Database, older_than: datetime, purged_at: datetime) -> int:
    """Null the personal fields of events (and audit details) older than ``older_than``.

    Run it through ``EventLog.submit``. Wall time on a Pi can be wrong before NTP syncs (rows
    stamped 1970), so the cut is made in ``seq`` order: everything up to the last
    *clock-synced* event older than the cut-off, except clock-synced rows stamped after the
    cut-off: a decision held in the engine's backlog is committed after newer ones with the
    time it was decided, and the rows before it keep theirs. The rows keep their hashes;
    ``verify`` stops checking their personal digest once ``purged_at`` is set. Returns events
    purged. All in the caller's one transaction: ``kiosk.retention.purge`` cuts a big backlog
    into bounded batches instead (``purge_bounds``, ``purge_candidates``, ``purge_rows``)."""
    purged = 0
    for table, through in purge_bounds(db, older_than).items():
        count = _purge_where(db, table, "seq <= ?", [[through]], older_than, purged_at)
        if table == "events":
            purged = count
    return purged


def purge_bounds(db: sqlite_utils.Database, older_than: datetime) -> dict[str, int]:
    """The last ``seq`` of each chained table a purge with this cut-off may null (the last
    clock-synced row older than it: ``purge_personal``'s rule); a table with none is left
    out. Rows are only appended, so the bound read once holds for the whole purge."""
    bounds: dict[str, int] = {}
    for table in _CHAINED_TABLES:
        row = db.execute(
            f"SELECT max(seq) FROM {_table_name(table)} WHERE clock_synced = 1 AND ts < ?",  # noqa: S608
            [format_ts(older_than)],
        ).fetchone()
        if row and row[0] is not None:
            bounds[table] = int(row[0])
    return bounds


#: A shift's removal bars its guard through the shift and this hour after it (the handover's,
#: ``kiosk.roster``): ``Roster.barred`` reads the bar from the removal's audit detail.
HANDOVER_GRACE = timedelta(hours=1)

#: SQL (one parameter: ``_removal_kept``): an audit row is a shift's removal whose bar is still
#: ahead (its shift's end, ``HANDOVER_GRACE`` on, not passed): a purge keeps its detail, whatever
#: its cutoff (``kiosk purge --older-than 0`` on a shift two days ahead unbarred its guard).
_BARRING = (
    "action = 'roster.shift_remove' AND json_valid(detail)"
    " AND json_extract(detail, '$.ends_at') > ?"
)


def _purgeable(table: str) -> str:
    # A purge's (or a resident's forget's) own audit row holds no personal data and is the
    # evidence that later verification checks purged rows against: it is never purged.
    kept = ", ".join(f"'{a}'" for a in KEPT_ACTIONS)
    keep = f" AND action NOT IN ({kept}) AND NOT ({_BARRING})" if table == "audit" else ""
    return " AND purged_at IS NULL AND (clock_synced = 0 OR ts < ?)" + keep


def _removal_kept(table: str, now: datetime) -> list[str]:
    """``_purgeable``'s argument after the cutoff: for the audit, the removals' ends kept
    (those of shifts ending after ``now`` less ``HANDOVER_GRACE``)."""
    return [format_ts(now - HANDOVER_GRACE)] if table == "audit" else []


def purge_candidates(
    db: sqlite_utils.Database,
    table: str,
    older_than: datetime,
    after: int,
    through: int,
    limit: int,
    now: datetime,
) -> list[int]:
    """The ``seq`` of the next ``limit`` rows of ``table`` in ``(after, through]`` that a
    purge at ``now`` with this cut-off nulls, in ``seq`` order, among the rows not purged yet
    (index ``{table}_unpurged``: a year of rows purged long ago is not walked at each purge)."""
    rows = db.execute(
        f"SELECT seq FROM {_table_name(table)} INDEXED BY {table}_unpurged"  # noqa: S608
        " WHERE seq > ? AND seq <= ?" + _purgeable(table) + " ORDER BY seq LIMIT ?",
        [after, through, format_ts(older_than), *_removal_kept(table, now), limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


def purge_rows(
    db: sqlite_utils.Database,
    table: str,
    seqs: Iterable[int],
    older_than: datetime,
    purged_at: datetime,
    hold: datetime | None = None,
) -> int:
    """Null the personal fields of the rows ``seqs`` of ``table`` (``purge_candidates``),
    each checked again against the purge rule; one bounded batch of a purge. ``hold``: the
    household of a passing exit (``HELD_EXIT``) stamped at or after it is kept (the quota's
    look-back, ``kiosk.retention.purge``), the rest nulled; ``release_held`` empties it once
    the look-back has passed. Returns the rows nulled."""
    rows = sorted(seqs)
    if rows and rows[-1] - rows[0] < 2 * len(rows):
        # Dense (the usual backlog): one range statement, a few times faster than a statement
        # per row. The purgeable rows between two candidates are candidates themselves (they
        # are found in seq order), and a row never becomes purgeable later, so the range
        # nulls exactly these.
        span = [[rows[0], rows[-1]]]
        nulled = _purge_where(db, table, "seq >= ? AND seq <= ?", span, older_than, purged_at, hold)
    else:
        nulled = _purge_where(
            db, table, "seq = ?", [[s] for s in rows], older_than, purged_at, hold
        )
    if hold is not None and table == "events":
        _digest_held(db.conn, hold)
    return nulled


#: ``digest_attested``'s ``tbl`` for the digests of the households a purge kept for the quota's
#: look-back (``purge_rows``' ``hold``): keyed by the row's own key (its period's salt, kept
#: while a household of its period is held: ``shred_salts``), what ``verify`` checks a held
#: household against; dropped once it is emptied (``drop_released_digests``).
HELD_DIGESTS = "events.held"


def _held_digest(key: bytes, row: Mapping[str, Any]) -> str:
    return hashchain.personal_digest(key, row, ("household",))


def _digest_held(conn: sqlite3.Connection, hold: datetime) -> None:
    """Digest the households held from ``hold`` on that have no digest yet (index
    ``events_held``: the look-back's few rows)."""
    cursor = conn.execute(
        "SELECT seq, id, ts, household FROM events INDEXED BY events_held"  # noqa: S608
        f" WHERE purged_at IS NOT NULL AND household <> '{record.PURGED_HOUSEHOLD}'"
        f" AND {HELD_SPAN} AND NOT EXISTS"
        " (SELECT 1 FROM digest_attested d WHERE d.tbl = ? AND d.seq = events.seq)",
        [format_ts(hold), HELD_DIGESTS],
    )
    rows = [dict(zip(("seq", "id", "ts", "household"), r, strict=True)) for r in cursor]
    if not rows:
        return
    keys = digest_keys(conn, live_only=True)
    held = [
        [HELD_DIGESTS, row["seq"], _held_digest(key, row)]
        for row in rows
        if (key := keys.key("events", row)) is not None
    ]
    conn.executemany("INSERT OR REPLACE INTO digest_attested VALUES (?, ?, ?)", held)


def drop_released_digests(db: sqlite_utils.Database) -> int:
    """Drop the digests of held households emptied since (``release_held``, a resident's
    forget): none stays to test guesses of a household against while its salt lives."""
    cursor = db.execute(
        "DELETE FROM digest_attested WHERE tbl = ? AND NOT EXISTS (SELECT 1 FROM events"  # noqa: S608
        f" WHERE events.seq = digest_attested.seq AND household <> '{record.PURGED_HOUSEHOLD}')",
        [HELD_DIGESTS],
    )
    return int(cursor.rowcount)


#: SQL: an events row (or another gate's passage, ``kiosk.peers.purge``) is a passing exit
#: naming a household, whatever its role: what a purge inside the quota's look-back keeps the
#: household of (``purge_rows``' ``hold``), and only that. Not only the outings the quota
#: counts now (``kiosk.history.counted_outing`` against ``quota.roles``): the roles may change
#: within the period (a restart counting staff), and the history rebuilt then judges each
#: exit by the new ones; a carer's exit emptied while staff were not counted was no outing to
#: it, and the household went out again.
HELD_EXIT = "direction = 'out' AND decision IN ('pass', 'manual_pass') AND household <> ''"

#: SQL (one parameter: ``purge_rows``' ``hold``): an events row inside the quota's look-back,
#: as far as its stamp tells: stamped from ``hold`` on, or stamped by a clock not set yet
#: (1970, fake-hwclock's days behind, a clock running ahead), whose stamp is no time at all:
#: the history dates it by its boot (``kiosk.history``), maybe this morning, and a purge
#: that emptied its household by the stamp let the household out again after a restart.
HELD_SPAN = "(ts >= ? OR clock_synced = 0)"


def define_counted_outing(db: sqlite_utils.Database) -> None:
    """``counted_outing(flags, roles)`` (``kiosk.history.counted_outing``, ``roles`` as JSON:
    a list, or null) on ``db``'s connection, defined once for good (a function defined while
    another thread queries the connection froze every thread: ``kiosk.people._compare_keys``)."""
    try:
        db.conn.execute("SELECT counted_outing('[]', '[]')").fetchone()
    except sqlite3.OperationalError:  # not defined on this connection yet
        db.conn.create_function("counted_outing", 2, _counted_outing, deterministic=True)


def _counted_outing(flags: str | None, roles: str) -> bool:
    """A row whose ``flags`` cannot be read (``hashchain.unreadable_field``) is no outing."""
    if hashchain.unreadable_field({"flags": flags}) is not None:
        return False
    return counted_outing(json.loads(flags) if flags else (), json.loads(roles))


def _purge_where(
    db: sqlite_utils.Database,
    table: str,
    span: str,
    args: list[list[Any]],
    older_than: datetime,
    purged_at: datetime,
    hold: datetime | None = None,
) -> int:
    """Null the purgeable rows ``span`` selects, once for each parameter list of ``args``
    (``hold``: ``purge_rows``')."""
    personal = (
        hashchain.EVENT_PERSONAL_FIELDS if table == "events" else hashchain.AUDIT_PERSONAL_FIELDS
    )
    sets = record.emptied(personal)
    held: list[Any] = []
    if hold is not None and table == "events":
        kept = [p for p in personal if p != "household"]
        sets = record.emptied(tuple(kept)) + (
            f", household = CASE WHEN {HELD_SPAN} AND {HELD_EXIT} THEN household"
            f" WHEN household <> '' THEN '{record.PURGED_HOUSEHOLD}' END"
        )
        held = [format_ts(hold)]
    sql = (
        f"UPDATE {_table_name(table)} SET {sets}, purged_at = ? WHERE {span}"  # noqa: S608
        + _purgeable(table)
    )
    stamp, cutoff = format_ts(purged_at), format_ts(older_than)
    kept = _removal_kept(table, purged_at)
    rows = [[*held, stamp, *a, cutoff, *kept] for a in args]
    return int(db.conn.executemany(sql, rows).rowcount) if rows else 0


def release_held(db: sqlite_utils.Database, before: datetime) -> int:
    """Empty the households a purge kept for the quota's look-back (``purge_rows``' ``hold``)
    of the outings before ``before`` (the look-back has passed them; index ``events_held``):
    stamped before it on a set clock, or purged before it (an outing comes before its purge:
    one stamped by a clock not set yet, a year ahead, was kept a year by its stamp).
    Returns how many."""
    cut = format_ts(before)
    cursor = db.execute(
        f"UPDATE events INDEXED BY events_held SET household = '{record.PURGED_HOUSEHOLD}'"  # noqa: S608
        f" WHERE purged_at IS NOT NULL AND household <> '{record.PURGED_HOUSEHOLD}'"
        " AND ((ts < ? AND clock_synced = 1) OR purged_at < ?)",
        [cut, cut],
    )
    drop_released_digests(db)
    return int(cursor.rowcount)


def shred_salts(db: sqlite_utils.Database, now: datetime) -> int:
    """Retention (run through ``EventLog.submit`` after ``purge_personal``): delete the digest
    salt of every period none of whose rows holds personal fields any more, and the legacy
    salt once none of the rows it keys does. A purged row's digest can then no longer be
    tested against guesses of its household or name by anyone holding the file. A purge's
    own audit row (never purged, not personal) keeps its detail: its digest is attested under
    the public ``hashchain.ATTEST_KEY`` first, so it stays checkable. A salt whose remaining
    rows do not match their digests is kept (the evidence ``verify`` reports). Returns how
    many salts went."""
    conn = db.conn
    keys = digest_keys(conn, live_only=True)
    if keys.legacy_through is None:
        return 0
    through: Mapping[str, int] = keys.legacy_through
    stamp = format_ts(now)
    shredded = 0
    for period, salt in keys.periods.items():
        bounds = [period, period + "\U0010ffff"]  # every ts of that UTC day
        args = {t: [*bounds, through[t]] for t in _CHAINED_TABLES}
        if salt is not None and _shred(conn, keys, "ts >= ? AND ts < ? AND seq > ?", args):
            conn.execute(
                "UPDATE digest_salts SET salt = NULL, shredded_at = ? WHERE period = ?",
                [stamp, period],
            )
            shredded += 1
    legacy = {t: [through[t]] for t in _CHAINED_TABLES}
    if keys.legacy is not None and _shred(conn, keys, "seq <= ?", legacy):
        conn.execute("DELETE FROM meta WHERE key = 'salt'")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [_LEGACY_SHREDDED, stamp]
        )
        shredded += 1
    return shredded


def _shred(
    conn: sqlite3.Connection,
    keys: DigestKeys,
    span: str,
    args: Mapping[str, list[Any]],
) -> bool:
    """Whether the rows ``span`` selects (one key's rows) hold no personal data, with the
    audit rows that still carry their detail (a purge's own) attested; False, nothing
    written, if some row still holds personal fields or does not match its digest."""
    held = (  # a household held for the quota's look-back keeps its salt (its digest's key)
        f"SELECT 1 FROM events WHERE {span} AND (purged_at IS NULL"  # noqa: S608
        f" OR household <> '{record.PURGED_HOUSEHOLD}') LIMIT 1"
    )
    if conn.execute(held, args["events"]).fetchone():
        return False
    kept = f"SELECT * FROM audit WHERE {span} AND purged_at IS NULL"  # noqa: S608
    cursor = conn.execute(kept, args["audit"])
    names = [d[0] for d in cursor.description]
    attest = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        if row["action"] not in KEPT_ACTIONS:
            return False
        public = hashchain.audit_personal_digest(hashchain.ATTEST_KEY, row)
        found = conn.execute(
            "SELECT digest FROM digest_attested WHERE tbl = 'audit' AND seq = ?", [row["seq"]]
        ).fetchone()
        if found is not None and found[0] == public:
            continue  # attested when its day's earlier salt went
        key = keys.key("audit", row)
        if key is None or hashchain.audit_personal_digest(key, row) != row["personal_digest"]:
            return False
        attest.append(["audit", row["seq"], public])
    conn.executemany("INSERT OR REPLACE INTO digest_attested VALUES (?, ?, ?)", attest)
    return True


def waiting_for_clock(
    db: sqlite_utils.Database, older_than: datetime, after: int | None = None
) -> int:
    """Events stamped before ``older_than`` whose personal fields ``purge_personal`` kept:
    no clock-synced row after them is that old yet (at a site whose clock never
    synchronised, none ever is). The rows it keeps before its last purged one are
    clock-synced and not that old, so none of them is waiting. ``after``: the purge's
    events bound (``purge_bounds``) instead of the last purged row, so a reader can count
    them before the purge's last batch is written: a purge nulls every row before its bound
    but the clock-synced ones not that old."""
    personal = " OR ".join(f"{p} IS NOT NULL" for p in hashchain.EVENT_PERSONAL_FIELDS)
    # Only rows after the last purged one can be waiting: walk that tail by seq (``+ts``
    # keeps SQLite off the ts index, which would visit every old, purged row).
    if after is None:
        last = db.execute(
            "SELECT seq FROM events WHERE purged_at IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        after = int(last[0]) if last else 0
    row = db.execute(
        "SELECT count(*) FROM events WHERE seq > ? AND +ts < ? AND purged_at IS NULL"  # noqa: S608
        f" AND ({personal})",
        [after, format_ts(older_than)],
    ).fetchone()
    return int(row[0])


#: ``meta``'s newest time a guard vouched has passed while the clock was not synchronised
#: (``vouch_time``), ``format_ts`` text: a floor at the next start (``vouched_ts``).
VOUCHED_KEY = "clock.vouched"
#: ``meta``'s newest event and audit ``seq`` when that time was vouched for (JSON
#: ``{"events": n, "audit": m}``): a synchronised row after them supersedes the vouch.
VOUCHED_AFTER_KEY = "clock.vouched.after"
#: The audit action of a guard's word for the time (``vouch_time``).
VOUCH_ACTION = "clock.vouched"


def vouch_time(store: EventLog, clock: Clock, at: datetime, actor: str, why: str) -> bool:
    """A guard's word that ``at`` has passed, while ``clock`` is not synchronised: ``why`` is
    ``clock`` (they vouched at the console that the gate's clock reads right: ``at`` its
    reading) or ``pass_start`` (a pass's start they typed, read off a phone). Only a time
    the clock agrees with (within ``AGREE_SLACK`` of its reading: the person confirmed the
    clock) is taken, and the floor (``FlooredClock.raise_floor``) rises to the earlier of
    the two: the floor stays a time that has passed, never one a typo or a phone on another
    zone carried past real time. It stays so across a restart (``vouched_ts`` reads it);
    audited with who and when. A gate with a clock that is
    right but never synchronised (an RTC, no network) otherwise had a floor lagging all
    day after a power cut, and what the floor and the clock disagreed on went to the guard.
    False (nothing written) on a synchronised clock, one that keeps no floor, a time the
    clock disagrees with, or one not past the floor already."""
    if at.tzinfo is None:
        raise ValueError("a vouched time must be timezone-aware")
    if not isinstance(clock, FlooredClock) or clock.synced():
        return False
    now = clock.now()
    if abs(at - now) > AGREE_SLACK:
        return False
    at = min(at, now)
    floor = clock.floor()
    if floor is not None and at <= floor:
        return False
    stamp = format_ts(at)

    def keep(db: sqlite_utils.Database) -> None:
        kept = vouched_ts(db)
        if kept is not None and kept >= stamp:
            return
        after = {t: _max_seq(db, t) for t in ("events", "audit")}
        for key, value in ((VOUCHED_KEY, stamp), (VOUCHED_AFTER_KEY, json.dumps(after))):
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                " SET value = excluded.value",
                [key, value],
            )

    store.submit_audited(keep, actor, VOUCH_ACTION, lambda _: {"at": stamp, "why": why})
    clock.raise_floor(at)
    return True


def _max_seq(db: sqlite_utils.Database, table: str) -> int:
    row = db.execute(f"SELECT max(seq) FROM {table}").fetchone()  # noqa: S608 (ours)
    return int(row[0]) if row and row[0] is not None else 0


def vouched_ts(db: sqlite_utils.Database) -> str | None:
    """The newest time a guard vouched has passed (``vouch_time``, ``format_ts`` text): a
    floor at the next start while the clock is not synchronised. None when there is none,
    or a synchronised reading has been written since (an event or an audit row after the
    vouch): the network's time supersedes the guard's word, even when it reads below it. A
    vouch is not a synchronised stamp: ``newest_synced_ts`` (what a purge is dated
    against) never reads it."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [VOUCHED_KEY]).fetchone()
    if not row or not row[0]:
        return None
    after = db.execute("SELECT value FROM meta WHERE key = ?", [VOUCHED_AFTER_KEY]).fetchone()
    try:
        seqs = json.loads(after[0]) if after else {}
        bounds = {t: int(seqs.get(t, 0)) for t in ("events", "audit")}
    except (TypeError, ValueError, AttributeError):
        bounds = {"events": 0, "audit": 0}  # unreadable: any synchronised row supersedes
    for table, seq in bounds.items():
        synced = db.execute(
            f"SELECT 1 FROM {table} WHERE seq > ? AND clock_synced = 1 LIMIT 1",  # noqa: S608
            [seq],
        ).fetchone()
        if synced:
            return None
    return str(row[0])


def newest_synced_ts(db: sqlite_utils.Database) -> str | None:
    """The newest ``ts`` the log holds from a synchronised clock (``format_ts`` text): of
    the events, and the last clock-synced audit row. None when there is none. A wall clock
    earlier than this has been set back since (``kiosk.retention`` refuses to date a purge
    by it)."""
    stamps = [
        db.execute(  # the ts index, newest first: stops at the first synchronised row
            "SELECT ts FROM events WHERE clock_synced = 1 ORDER BY ts DESC LIMIT 1"
        ).fetchone(),
        db.execute(
            "SELECT ts FROM audit WHERE clock_synced = 1 ORDER BY seq DESC LIMIT 1"
        ).fetchone(),
    ]
    found = [str(row[0]) for row in stamps if row and row[0] is not None]
    # The last purge's run on a synchronised clock: a purge that changed nothing writes no
    # audit row, and its time still tells a clock set back since.
    run = db.execute("SELECT value FROM meta WHERE key = ?", [LAST_RUN_KEY]).fetchone()
    try:
        last = json.loads(run[0]) if run else None
        if isinstance(last, dict) and last.get("clock_synced") is True:
            found.append(format_ts(datetime.fromisoformat(str(last["at"]))))
    except (TypeError, ValueError, KeyError):
        pass
    return max(found) if found else None


# ---------------------------------------------------------------------------------------------
# The log

_STOP = object()


class _HeldFiles:
    """The descriptors this process holds on the database files its logs opened, one set per
    file (device, inode), closed once no log of the process holds that file any more.

    SQLite's locks on a file (POSIX ``fcntl`` locks) belong to the process, and closing *any*
    descriptor of the file drops them all (sqlite.org/howtocorrupt.html, 2.2): a file read by
    ``open()`` and closed beside SQLite's connections left them unlocked, and another
    process's connection (`sqlite3 kiosk.db`) closing after it took itself for the last one,
    checkpointed and deleted the WAL the log went on writing into. So the file is opened once
    with the log (``_FileIdentity.of``), read at an offset (``os.pread``), and closed only
    after every connection of every log of the process on it was closed (``EventLog.close``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[int, int], tuple[list[int], int]] = {}  # fds, logs holding them

    def take(self, path: Path) -> tuple[os.stat_result, int]:
        """A descriptor of the file at ``path`` kept open, and what it says of the file: the
        one already held when another log of the process holds that file (a log opened and
        closed beside it, over and over, opened one more each time, none closed until the
        last log of the file closed)."""
        st = os.stat(path)
        with self._lock:
            held = self._held.get((st.st_dev, st.st_ino))
            if held is not None:
                self._held[(st.st_dev, st.st_ino)] = (held[0], held[1] + 1)
                return st, held[0][0]
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            st = os.fstat(fd)  # the file opened: another may have been moved to the name
            fds, holders = self._held.get((st.st_dev, st.st_ino), ([], 0))
            fds.append(fd)  # one held already (that file, moved here): closed with it
            self._held[(st.st_dev, st.st_ino)] = (fds, holders + 1)
        return st, fd

    def release(self, device: int, inode: int) -> None:
        """A log's connections on the file are closed: its descriptors too, if it was the last
        log of the process holding the file."""
        with self._lock:
            fds, holders = self._held.pop((device, inode), ([], 1))
            if holders > 1:
                self._held[(device, inode)] = (fds, holders - 1)
                return
        for fd in fds:
            os.close(fd)


_HELD = _HeldFiles()


@dataclass
class _FileIdentity:
    """Which database file a log opened: the file (device, inode), the log in it (its first
    event's and audit row's ids, once it has them: rows are never deleted) and the most it
    has been seen to hold (its size; SQLite never shrinks a file it is not told to vacuum).
    ``fd`` is the file held open with the log, its header read through it (``_HeldFiles``);
    ``release`` it once the log's connections are closed."""

    device: int
    inode: int
    firsts: tuple[str | None, str | None]
    size: int
    fd: int

    @classmethod
    def of(cls, path: Path, conn: sqlite3.Connection) -> _FileIdentity:
        st, fd = _HELD.take(path)
        try:
            return cls(st.st_dev, st.st_ino, _first_ids(conn), st.st_size, fd)
        except BaseException:
            _HELD.release(st.st_dev, st.st_ino)
            raise

    def release(self) -> None:
        _HELD.release(self.device, self.inode)

    def replaced_by(
        self, path: Path, conn: sqlite3.Connection, last_seq: int, last_audit_seq: int
    ) -> str | None:
        """Why the file at ``path`` (read by ``conn`` inside its write transaction) is not
        this log any more, the newest rows this process wrote being ``last_seq`` and
        ``last_audit_seq``; None while it is."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return "the file was deleted"
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            return "another file was moved to its name"
        if st.st_size < self.size:
            return f"the file shrank from {self.size} to {st.st_size} bytes"
        if not _wal_file(self.fd):  # the file at path: its inode is the one held
            return "another database was written over it (not in WAL mode: a copy)"
        firsts = _first_ids(conn)
        if any(mine not in (None, now) for mine, now in zip(self.firsts, firsts, strict=True)):
            return "it now holds another log"
        self.firsts = (self.firsts[0] or firsts[0], self.firsts[1] or firsts[1])
        events, audits = _tail(conn, "events")[0] - 1, _tail(conn, "audit")[0] - 1
        if events < last_seq or audits < last_audit_seq:
            return (
                f"an older copy: its events end at seq {events}, this daemon wrote up to {last_seq}"
            )
        self.size = st.st_size
        return None

    def seen(self, path: Path) -> None:
        """After this process wrote (a commit may checkpoint the WAL into the file): its size."""
        try:
            st = path.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) == (self.device, self.inode):
            self.size = max(self.size, st.st_size)


def _wal_file(fd: int) -> bool:
    """Whether the file held open as ``fd`` says it is in WAL mode, as every log the writer
    opened is (header bytes 18-19): read from the file itself, as the connection's own view
    may come from its WAL, unchanged by a copy written into the file (``cp`` keeps the
    inode); through the descriptor held with the log, never one opened and closed here (that
    drops SQLite's locks: ``_HeldFiles``). A file not written yet (a new log, all in its WAL)
    says nothing either way."""
    try:
        header = os.pread(fd, 20, 0)
    except OSError:
        return True  # unreadable here: the write that follows says what is wrong
    return len(header) < 20 or header[18:20] == b"\x02\x02"


def _first_ids(conn: sqlite3.Connection) -> tuple[str | None, str | None]:
    firsts = []
    for table in _CHAINED_TABLES:
        sql = f"SELECT id FROM {_table_name(table)} ORDER BY seq LIMIT 1"  # noqa: S608
        row = conn.execute(sql).fetchone()
        firsts.append(None if row is None else str(row[0]))
    return firsts[0], firsts[1]


#: Rows a reader's iteration fetches per use of the log (``_CountedCursor.__iter__``).
ROWS_PER_USE = 256


class _CountedCursor(sqlite3.Cursor):
    """A cursor of ``_ReadConnection``: each statement and each fetch is a use of the log
    (its ``uses``), taken in the thread that reads, for as long as SQLite works on it; its
    ``close`` too, which once the log's close began leaves the statement to that close."""

    connection: _ReadConnection

    def _counted(self, step: Callable[..., T], *args: Any) -> T:
        return self.connection.used(step, *args)

    def close(self) -> None:
        with contextlib.suppress(LogClosing):  # the log's close ends it with the connection
            self._counted(super().close)

    def execute(self, sql: str, parameters: Any = (), /) -> _CountedCursor:
        self._counted(super().execute, sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _CountedCursor:
        self._counted(super().executemany, sql, seq_of_parameters)
        return self

    def fetchone(self) -> Any:
        return self._counted(super().fetchone)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._counted(super().fetchmany, self.arraysize if size is None else size)

    def fetchall(self) -> list[Any]:
        return self._counted(super().fetchall)

    def __next__(self) -> Any:
        return self._counted(super().__next__)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        """The rows, fetched ``ROWS_PER_USE`` at a time: one use each (not one per row: a
        day's thousands of rows read as fast as uncounted), none held between them."""
        while batch := self.fetchmany(ROWS_PER_USE):
            yield from batch


class _ReadConnection(sqlite3.Connection):
    """A reader's connection (``EventLog.reader``): every touch of it (a cursor made, a
    statement, a fetch, its transaction asked after or rolled back, a cursor closed, a
    function defined) is a use
    of the log's ``uses`` (``_CountedCursor``), so ``EventLog.close`` closes it under none of
    them, whichever thread reads (a web server's worker, a stream's chunk) and whatever
    became of the request that asked (cancelled at the server's end); once that close began
    each is refused (``LogClosing``), never a touch of the closed connection (a caller keeping
    the reader across statements, a stream between two fetches). Ending a read (``rollback``,
    a cursor's ``close``) is then left to the close, which ends it with the connection."""

    uses: LogUses

    def used(self, step: Callable[..., T], *args: Any) -> T:
        """``step(*args)`` as one use of the log: ``LogClosing`` once its close began."""
        self.uses.enter()
        try:
            return step(*args)
        finally:
            self.uses.leave()

    def cursor(self, factory: Any = None) -> Any:
        return self.used(super().cursor, factory or _CountedCursor)

    @property
    def in_transaction(self) -> bool:
        return bool(self.used(sqlite3.Connection.in_transaction.__get__, self))

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def rollback(self) -> None:
        with contextlib.suppress(LogClosing):  # the close ends the transaction with the connection
            self.used(super().rollback)

    def create_function(
        self, name: str, narg: int, func: Callable[..., Any] | None, *, deterministic: bool = False
    ) -> None:
        """A function defined on it (a search's ``person_key``, ``kiosk.people``)."""
        define = super().create_function
        self.used(lambda: define(name, narg, func, deterministic=deterministic))


class _Reader(sqlite_utils.Database):
    """``EventLog.reader``'s read-only connection: every statement through it (``query``,
    ``execute``, so every sqlite-utils call built on them) ends in ``ended_read``, leaving no
    transaction open whatever failed it. ``query`` reads its rows in full before it returns,
    a read failing among them in ``ended_read`` too: no statement is left open whatever the
    caller does with them (one that raised in its loop, the rows kept with its frame, pinned
    the reader's snapshot; every WAL checkpoint waited on it). A read too large to hold at
    once is ``kiosk.files.streamed_rows``, its statement ended with its block."""

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> Generator[dict[str, Any], None, None]:
        with ended_read(self.conn):
            rows = list(super().query(sql, params))
        return (row for row in rows)

    def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None
    ) -> sqlite3.Cursor:
        with ended_read(self.conn):
            return super().execute(sql, parameters)


class EventLog:
    """Append-only, hash-chained event and audit log with a single writer thread.

    ``append``/``audit``/``submit`` may be called from any thread (and their ``*_async``
    variants from the asyncio loop); each blocks only its caller until its transaction is
    committed. Never call them from inside a ``submit`` function: that runs on the writer
    thread and would wait for itself."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        kiosk_id: str,
        clock: Clock,
        synchronous: str = "FULL",
        migrations: Iterable[Migrations] = (),
        *,
        busy_timeout_ms: int = 5000,
        min_free_mb: int = 50,
        on_health: Callable[[Health], None] | None = None,
        boot_id: str | None = None,
        connecting: Callable[[Callable[[], sqlite3.Connection]], sqlite3.Connection] | None = None,
        on_migrating: Migrating | None = None,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous: expected 'FULL' or 'NORMAL'")
        _check_text("kiosk_id", kiosk_id, optional=False, max_len=64)
        for name, value, low in (
            ("busy_timeout_ms", busy_timeout_ms, 1),
            ("min_free_mb", min_free_mb, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}")
        self.path = Path(path)
        self.kiosk_id = kiosk_id
        self.clock = clock
        self.synchronous = synchronous
        self.migrations = tuple(migrations)
        self.busy_timeout_ms = busy_timeout_ms
        self.min_free_mb = min_free_mb
        self.boot_id = boot_id or read_boot_id()
        #: A change of the site's settings waits for a set clock to date it (``record_site``
        #: on a clock not set): the first row this log writes on a set clock dates it
        #: (``_date_site_changes``).
        self.site_undated = False
        self._on_health = on_health
        #: Every connection made to the file (the writer's, each reader's) is made through
        #: it: a restore's check that SQLite opened its stage's files (``Staged.connect``).
        self._connecting = connecting or (lambda open_: open_())
        #: Told ``(done, of)`` before each pending migration step ``open`` applies, and once
        #: it is over (``of, of``: all applied, or one failed), from the writer's thread: the
        #: daemon keeps systemd's start timeout off a long one (``checkpoint.notify.LongStart``).
        self._on_migrating = on_migrating
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite_utils.Database | None = None
        self._salt = b""
        self._period_salts = True
        self._reopen = False
        self._last_seq = 0
        self._last_audit_seq = 0
        self._fault: tuple[str, int] | None = None  # (error name, since mono_ns)
        self._fault_said: str | None = None  # the fault a full or failing card is, said
        self._read_fault: tuple[str, int] | None = None  # a damaged page met by a reader
        self._unreadable: set[int] = set()  # events read past, one by one (``readable_events``)
        self._failed_writes = 0
        self._lock = threading.Lock()
        self._closed = True
        self._local = threading.local()
        self._generation = 0
        #: The file the log opened (``_FileIdentity``) and, once it was replaced, why.
        self._identity: _FileIdentity | None = None
        self._replaced: str | None = None
        #: Every reader made, with the thread it was made for (``reader``).
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        #: The reads under way on those readers (``_ReadConnection``): ``close`` refuses new
        #: ones (``LogClosing``) and closes the readers once none is under way.
        self._reads = LogUses(LogClosing)

    @classmethod
    def from_config(
        cls,
        section: StoreSection,
        data_dir: str | os.PathLike[str],
        kiosk_id: str,
        clock: Clock,
        migrations: Iterable[Migrations] = (),
        on_health: Callable[[Health], None] | None = None,
        on_migrating: Migrating | None = None,
    ) -> EventLog:
        """Build from a ``kiosk.config.store.StoreSection``; relative paths go under data_dir."""
        return cls(
            section.file_in(data_dir),
            kiosk_id,
            clock,
            section.synchronous,
            migrations,
            busy_timeout_ms=section.busy_timeout_ms,
            min_free_mb=section.min_free_mb,
            on_health=on_health,
            on_migrating=on_migrating,
        )

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> EventLog:
        """Start the writer, create/migrate the schema. Raises ``StoreFault`` if unusable."""
        with self._lock:
            if not self._closed:
                return self
            self._generation += 1
            self._reads.open()
            self._thread = threading.Thread(
                target=self._writer_loop, name="kiosk-eventlog-writer", daemon=True
            )
            self._thread.start()
            self._closed = False
        try:
            self._call(self._initialise)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection. Reads are refused
        from its start (``LogClosing``) and a reader is closed under none: the close waits for
        the statements and fetches under way in any thread, however long (the daemon's stop
        gives its close a grant and leaves the log open past it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reads.close(0)  # refused from now on (``LogClosing``), waited for below
            thread = self._thread
            self._thread = None
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()
        self._reads.released.wait()
        with self._lock:
            readers, self._readers = self._readers, []
        _close_all(conn for _, conn in readers)
        identity, self._identity = self._identity, None
        if identity is not None:  # after every connection of the log: ``_HeldFiles``
            identity.release()

    def __enter__(self) -> EventLog:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public writes ----------------------------------------------------------------------

    def append(self, draft: EventDraft) -> Event:
        """Commit one event and return it; blocks the caller until it is durable.
        ``AlreadyRecorded`` when its ``unless`` found its record: nothing written."""
        return self._call(lambda: self._append_in_writer(draft))

    async def append_async(self, draft: EventDraft) -> Event:
        """``append`` for the asyncio loop: awaits the writer without blocking the loop."""
        return await asyncio.wrap_future(self._enqueue(lambda: self._append_in_writer(draft)))

    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        """Record a guard action, list or config change, or fault in the chained audit table.

        ``detail`` is treated as personal (it may name a household): covered by the row's
        ``personal_digest``, nulled by retention."""
        _check_audit(actor, action, detail)
        self._call(lambda: self._audit_in_writer(actor, action, detail))

    async def audit_async(
        self, actor: str, action: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        _check_audit(actor, action, detail)
        await asyncio.wrap_future(
            self._enqueue(lambda: self._audit_in_writer(actor, action, detail))
        )

    def submit(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn(db)`` on the writer connection inside one transaction; return its result.

        If ``fn`` raises, everything it did is rolled back and the exception is re-raised
        (a storage failure as ``StoreFault``)."""
        return self._call(lambda: self._transaction(fn))

    def submit_audited(
        self,
        fn: Callable[[sqlite_utils.Database], T],
        actor: str,
        action: str,
        detail: Callable[[T], Mapping[str, Any] | None],
        *,
        skip: Callable[[T], bool] | None = None,
    ) -> T:
        """``submit(fn)`` and the audit row saying what it did (``detail(result)``) in one
        transaction: a crash cannot leave the change without its audit row (a purge
        without one reads as tampering to ``verify``). No row when ``skip(result)``: ``fn``
        changed nothing worth a row kept for ever (a purge that found nothing to purge)."""
        _check_audit(actor, action, None)
        audited: list[int] = []

        def job(db: sqlite_utils.Database) -> T:
            result = fn(db)
            if skip is not None and skip(result):
                return result
            what = detail(result)
            _check_audit(actor, action, what)
            audited.append(int(self._insert_audit(db.conn, actor, action, what)["seq"]))
            return result

        result = self._call(lambda: self._transaction(job))
        if audited:
            self._last_audit_seq = audited[-1]
        return result

    def wipe_wal(self) -> bool:
        """Checkpoint the WAL into the database file and truncate it to zero bytes, so rows
        rewritten since (a retention purge) no longer exist in their old form anywhere.

        Runs on the writer thread and so holds up appends: it waits at most
        ``WIPE_WAIT_MS`` for readers. Returns False when a reader kept it from completing
        (the daemon's next purge, within the hour, tries again)."""
        return self._call(self._wipe_wal_in_writer)

    def _wipe_wal_in_writer(self) -> bool:
        try:
            conn = self._ensure_connection().conn
            conn.execute(f"PRAGMA busy_timeout = {min(WIPE_WAIT_MS, self.busy_timeout_ms)}")
            try:
                busy = int(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            if self._identity is not None:
                self._identity.seen(self.path)
        except sqlite3.Error as exc:
            if is_storage_error(exc):
                self._reopen = True
                raise StoreFault("store_fault", _error_name(exc), path=self.path) from exc
            raise
        return busy == 0

    # -- reads ------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest committed event ``seq`` (0 for an empty log)."""
        return self._last_seq

    @property
    def last_audit_seq(self) -> int:
        return self._last_audit_seq

    def reader(self) -> sqlite_utils.Database:
        """A read-only connection for the calling thread (cached per thread until close); a
        read through it that fails leaves it reading the log as it is (``_Reader``); every
        statement and fetch on it is a read ``close`` waits for (``_ReadConnection``), and
        once the close began none is made (``LogClosing``)."""
        if self._closed:
            raise (
                LogClosing()
                if self._reads.closed
                else StoreFault("store_fault", "event log is not open")
            )
        cached: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if cached is not None and self._local.generation == self._generation:
            return cached
        try:
            conn = self._connecting(self._read_connection)
        except sqlite3.Error as exc:
            raise StoreFault("store_fault", f"cannot open a reader ({_error_name(exc)})") from exc
        db = _Reader(conn, execute_plugins=False)
        # The web server's worker threads come and go (anyio ends one idle for 10 s): the
        # readers of threads that have ended are closed here, or each would keep its files
        # open until the kiosk stops (too many open files after weeks).
        with self._lock:
            ended = [c for t, c in self._readers if not t.is_alive()]
            self._readers = [(t, c) for t, c in self._readers if t.is_alive()]
            self._readers.append((threading.current_thread(), conn))
        _close_all(ended)
        self._local.db = db
        self._local.generation = self._generation
        return db

    def events(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Events with ``seq > after_seq`` in ``seq`` order (keyset paging), JSON decoded."""
        return [decode_event_row(r) for r in self._page("events", after_seq, limit)]

    def audits(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Audit rows with ``seq > after_seq`` in ``seq`` order, ``detail`` decoded."""
        return [decode_audit_row(r) for r in self._page("audit", after_seq, limit)]

    def readable_events(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """``events``, read past a damaged page (``is_damaged_read``): a page the card no longer
        reads back whole fails every read that crosses it, so the rows of that stretch are
        read one by one and those that cannot be are left out and remembered
        (``unreadable_seqs``), the store's health degraded (``note_read_fault``). For the
        guard's live page, whose one old unreadable row must not take the rest away; the
        office's pages and reports stop at it instead (a page with a hole is not a page)."""
        try:
            return self.events(after_seq, limit)
        except ReadFailure as exc:
            self.read_past(exc)
        return self._each_readable(range(after_seq + 1, min(after_seq + limit, self.last_seq) + 1))

    def readable_recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` events, newest first, read past a damaged page as
        ``readable_events``; no further back than ``limit`` rows plus ``MAX_SKIPPED``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise ValueError("limit: expected an integer between 1 and 10000")
        try:
            rows = self.reader().query("SELECT * FROM events ORDER BY seq DESC LIMIT ?", [limit])
            return [decode_event_row(r) for r in rows]
        except ReadFailure as exc:
            self.read_past(exc)
        last = self.last_seq
        return self._each_readable(range(last, max(0, last - limit - MAX_SKIPPED), -1), limit)

    def unreadable_seqs(self) -> list[int]:
        """The events a read had to leave out since the start (a damaged page), in order."""
        with self._lock:
            return sorted(self._unreadable)

    def read_past(self, exc: ReadFailure) -> None:
        """Go on past a read the card failed (noted: ``note_read_fault``); any other error
        (a lock, a bug) is raised again."""
        if not is_damaged_read(exc):
            raise exc
        self.note_read_fault(exc)

    def _each_readable(self, seqs: Iterable[int], want: int | None = None) -> list[dict[str, Any]]:
        """The events ``seqs`` read one by one (by the primary key: a row on a sound page
        reads even beside a damaged one), up to ``want``; the ones that fail are remembered."""
        found: list[dict[str, Any]] = []
        for seq in seqs:
            try:
                rows = list(self.reader().query("SELECT * FROM events WHERE seq = ?", [seq]))
            except ReadFailure as exc:
                self.read_past(exc)
                with self._lock:
                    if len(self._unreadable) < MAX_SKIPPED:
                        self._unreadable.add(seq)
                continue
            found += [decode_event_row(r) for r in rows]
            if want is not None and len(found) >= want:
                break
        return found

    def _page(self, table: str, after_seq: int, limit: int) -> Iterator[dict[str, Any]]:
        """Raw rows of ``table`` (``events`` or ``audit``) after ``after_seq``, checked args."""
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValueError("after_seq: expected an integer >= 0")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise ValueError("limit: expected an integer between 1 and 10000")
        return self.reader().query(
            f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 - fixed names
            [after_seq, limit],
        )

    def verify(self) -> VerifyResult:
        """Check both chains from a read-only connection (see ``verify_database``)."""
        return verify_database(self.reader())

    def health(self) -> Health:
        """``fault`` after a failed write (until one succeeds), ``degraded`` on low disk."""
        if self._closed:
            return Health("fault", "event log is not open")
        fault = self._fault
        if fault is not None:
            return Health("fault", f"last write failed: {self._fault_said or fault[0]}", fault[1])
        if _read_only(self.path):  # before a passage finds it out (a card failed while idle)
            # A connection SQLite opened there stays read-only: the next write opens afresh.
            self._reopen = True
            return Health("fault", "the file system is read-only: nothing can be recorded")
        if self._read_fault is not None:
            error, since = self._read_fault
            return Health("degraded", f"a read failed: {error}: {READ_FAULT_DETAIL}", since)
        try:
            free_mb = shutil.disk_usage(self.path.parent).free / 1_048_576
        except OSError as exc:
            return Health("degraded", f"cannot read free space: {exc.strerror or exc}")
        if free_mb < self.min_free_mb:
            return Health("degraded", f"low disk: {free_mb:.0f} MB free (< {self.min_free_mb})")
        return Health("ok", f"seq {self._last_seq}")

    def note_read_fault(self, exc: BaseException) -> None:
        """A read of the log failed on the storage (a page the card no longer reads back:
        ``SQLITE_CORRUPT``, ``SQLITE_IOERR``): ``health()`` is ``degraded`` naming it from now
        until the daemon restarts (a damaged page does not mend itself), logged once. The
        writes go on: new rows go to other pages, and a write that fails is a fault as ever."""
        if self._read_fault is not None or not is_damaged_read(exc):
            return
        error = _error_name(exc)
        self._read_fault = (error, self.clock.monotonic_ns())
        log.error("%s: a read failed (%s): %s", self.path, error, READ_FAULT_DETAIL)

    # -- writer thread ----------------------------------------------------------------------

    def _enqueue(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        if threading.current_thread() is self._thread:
            raise RuntimeError("EventLog write called from its own writer thread (deadlock)")
        # Under the lock: close() puts its stop marker under it too, so no job can land
        # behind the marker and wait forever.
        with self._lock:
            if self._closed:
                future.set_exception(StoreFault("store_fault", "event log is not open"))
                return future
            self._queue.put((job, future))
        return future

    def _call(self, job: Callable[[], T]) -> T:
        return self._enqueue(job).result()

    def _writer_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = job()
            except BaseException as exc:  # handed to the caller, never lost
                future.set_exception(exc)
            else:
                future.set_result(result)
        self._disconnect()

    def _read_connection(self) -> sqlite3.Connection:
        conn = sqlite_read_only(self.path, check_same_thread=False, factory=_ReadConnection)
        cast(_ReadConnection, conn).uses = self._reads
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        return conn

    def _connect(self) -> sqlite_utils.Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connecting(lambda: _open_connection(self.path, self.busy_timeout_ms / 1000))
        db = sqlite_utils.Database(conn, execute_plugins=False)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreFault("store_fault", f"cannot use WAL on this filesystem ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # Retention nulls personal fields: the old values must not stay readable in the
            # pages' free space (most SQLite builds do not zero it by default). The WAL is
            # wiped after each purge instead (``wipe_wal``): truncating it at every restart
            # would make each commit grow the file again, a slower fsync on the passage path.
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException:
            conn.close()
            raise
        return db

    def _disconnect(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def _initialise(self) -> None:
        try:
            db = self._connect()
            self._db = db
            tables = self._migrate(db)
            conn = db.conn
            keys = digest_keys(conn, tables=tables)
            self._salt = keys.legacy or b""
            self._period_salts = keys.legacy_through is not None
            if keys.legacy is None and not keys.legacy_shredded:
                # Without the salt the rows it keys cannot be checked: refuse rather than go
                # on with a chain nobody can verify (retention deletes it only once no row
                # needs it, and records that it did).
                raise StoreFault(
                    "store_fault",
                    f"cannot open {self.path.name} (meta salt missing; run kiosk verify-log)",
                )
            self._last_seq = _tail(conn, "events")[0] - 1
            self._last_audit_seq = _tail(conn, "audit")[0] - 1
            self._identity = _FileIdentity.of(self.path, conn)
            self._replaced = None
        except StoreFault:
            self._disconnect()
            raise
        except Exception as exc:  # sqlite3.Error, OSError, or a failing migration
            self._disconnect()
            name = _error_name(exc) or type(exc).__name__
            why = _unwritable(self.path)
            raise StoreFault(
                "store_fault",
                f"cannot open {self.path.name} ({name}{': ' if why else ''}{why})",
                path=self.path,
            ) from exc

    def _migrate(self, db: sqlite_utils.Database) -> set[str] | None:
        """Refuse a file a newer program migrated, then apply what is pending of the log's
        sets (none when it is current: then nothing more is read). The file's tables when
        nothing was applied (read once), else None."""
        sets = (MIGRATIONS, *self.migrations)
        known = _every_step(sets)
        tables = _table_names(db.conn)
        recorded = _recorded_steps(db, tables)
        _refuse_newer_schema(_newer_than(recorded or {}, known), self.path.name)
        if _all_applied(db, recorded, known):
            return tables
        # One commit for every pending migration (each set's own are savepoints in it):
        # a new database is created in one write, and an upgrade lands whole or not at all.
        # ``on_migrating`` is told before each pending step, then the end: all applied and
        # committed, or failed at step ``done`` (it said "over" of a failed one until 2026-12-07).
        steps, done = _pending_steps(recorded or {}, known), 0
        try:
            with db.atomic():
                for done, (migrations, _) in enumerate(steps):
                    self._say_migrating(done, len(steps))
                    later = [name for m, name in steps[done + 1 :] if m is migrations]
                    migrations.apply(db, stop_before=later or None)
                done = len(steps)
                for migrations in sets:  # what is left of each (the table's own upgrade)
                    migrations.apply(db)
        except BaseException:
            self._say_migrating(done, len(steps), failed=True)
            raise
        self._say_migrating(len(steps), len(steps))
        return None

    def _say_migrating(self, done: int, of: int, *, failed: bool = False) -> None:
        if self._on_migrating is None or not of:
            return
        try:
            self._on_migrating(done, of, failed=failed)
        except Exception:  # noqa: BLE001 - whoever listens never stops the migration
            log.exception("the migration's listener failed")

    def _ensure_connection(self) -> sqlite_utils.Database:
        if self._replaced is not None:  # never reopened: that would adopt the file now there
            raise LogReplaced("store_fault", self._replaced)
        if self._db is not None and not self._reopen:
            return self._db
        self._disconnect()
        self._db = self._connect()
        self._reopen = False
        return self._db

    def _transaction(self, fn: Callable[[sqlite_utils.Database], T], *, record: bool = False) -> T:
        """One write transaction on the writer connection, with fault bookkeeping.

        ``record``: the job is an event or audit row. Then *any* database error is a
        ``StoreFault``: the engine only knows "committed" or "store fault", and an unexpected
        error must end in the safe branch (no gate opening), never in an unhandled one."""
        try:
            db = self._ensure_connection()
            conn = db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._refuse_replaced_file(conn)
                recovery_seq = None
                if self._fault is not None:
                    recovery_seq = self._write_recovery_audit(conn)
                result = fn(db)
                conn.execute("COMMIT")
                if self._identity is not None:
                    self._identity.seen(self.path)
            except BaseException:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    self._reopen = True
                raise
        except BaseException as exc:
            recording_failed = record and isinstance(exc, (sqlite3.Error, ValueError))
            if is_storage_error(exc) or isinstance(exc, StoreFault) or recording_failed:
                self._record_fault(exc)
                if isinstance(exc, StoreFault):
                    raise
                name = _error_name(exc) or type(exc).__name__
                raise StoreFault("store_fault", name, path=self.path) from exc
            raise
        if self._fault is not None:
            self._fault = None
            self._failed_writes = 0
            if recovery_seq is not None:
                self._last_audit_seq = recovery_seq
            self._notify()
        return result

    def _refuse_replaced_file(self, conn: sqlite3.Connection) -> None:
        """Inside the write transaction: the file at ``path`` is still the log this one
        opened (``_FileIdentity.replaced_by``), else ``LogReplaced`` from now on. A copy put
        back under the running daemon (docs/operations.md warns of it) was written on: the
        daemon numbered its next rows after its own last ``seq`` onto the copy's chain, or
        wrote into an unlinked file nobody would read again."""
        if self._identity is None:
            return
        why = self._identity.replaced_by(self.path, conn, self._last_seq, self._last_audit_seq)
        if why is None:
            return
        self._replaced = (
            f"{self.path.name} was replaced under the running daemon ({why}): nothing more is"
            " written to it, so that its chain does not fork; check the file now there"
            " (kiosk verify-log) and restart the daemon on it (`sudo systemctl restart"
            " kiosk`; docs/operations.md, Backups)"
        )
        log.error("%s", self._replaced)
        raise LogReplaced("store_fault", self._replaced)

    def _record_fault(self, exc: BaseException) -> None:
        name = _error_name(exc) or type(exc).__name__
        if isinstance(exc, StoreFault):
            name = exc.detail or exc.reason
        if name.startswith(_REOPEN_ERRORS) or isinstance(exc, (OSError, StoreFault)):
            self._reopen = True
        self._failed_writes += 1
        card = card_fault(exc, self.path)  # said in health as the owner acts on it
        self._fault_said = card.said(with_where=False) if card is not None else None
        if self._fault is None:
            self._fault = (name, self.clock.monotonic_ns())
            self._notify()
        else:  # keep when the fault began; report the latest error
            self._fault = (name, self._fault[1])

    def _notify(self) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(self.health())
        except Exception:  # a broken listener must not take the log down
            pass

    def _stamp(self, taken: ClockReading | None = None) -> dict[str, Any]:
        """The log's fields of a row: time from ``taken`` (when the engine decided), else now."""
        when = taken if taken is not None else ClockReading.take(self.clock)
        return {
            "id": str(uuid.uuid4()),
            "kiosk_id": self.kiosk_id,
            "ts": format_ts(when.wall),
            "boot_id": self.boot_id,
            "mono_ns": when.mono_ns,
            "clock_synced": when.synced,
        }

    def _insert_audit(
        self, conn: sqlite3.Connection, actor: str, action: str, detail: Any
    ) -> dict[str, Any]:
        seq, prev_hash = _tail(conn, "audit")
        row: dict[str, Any] = {"seq": seq, **self._stamp(), "actor": actor, "action": action}
        row["detail"] = None if detail is None else dict(detail)
        row["personal_digest"] = hashchain.audit_personal_digest(self._key(conn, row), row)
        row["purged_at"] = None
        row["prev_hash"] = prev_hash
        row["hash"] = hashchain.audit_hash(row)
        stored = dict(row, detail=_json(row["detail"]), clock_synced=int(row["clock_synced"]))
        conn.execute(
            _INSERT_AUDIT,
            [stored[c] for c in _AUDIT_COLUMNS],
        )
        _set_high_water(conn, "audit", seq)
        return row

    def _key(self, conn: sqlite3.Connection, row: Mapping[str, Any]) -> bytes:
        """The digest key of a new row: its period's (``write_key``); the one salt on a file
        opened without the period-salt migration (a test's older schema)."""
        return write_key(conn, row) if self._period_salts else self._salt

    def _write_recovery_audit(self, conn: sqlite3.Connection) -> int:
        assert self._fault is not None
        error, since = self._fault
        row = self._insert_audit(
            conn,
            "system",
            "store.recovered",
            {
                "error": error,
                "failed_writes": self._failed_writes,
                "fault_for_s": round((self.clock.monotonic_ns() - since) / 1e9, 3),
            },
        )
        return int(row["seq"])

    def _append_in_writer(self, draft: EventDraft) -> Event:
        if not isinstance(draft, EventDraft):
            raise TypeError("append() takes an EventDraft")
        inserted: dict[str, Any] = {}

        def write(db: sqlite_utils.Database) -> None:
            found = None if draft.unless is None else draft.unless.found(db, draft.decided)
            if found is not None:
                raise AlreadyRecorded(found)
            conn = db.conn
            seq, prev_hash = _tail(conn, "events")
            row: dict[str, Any] = {
                "seq": seq,
                **self._stamp(draft.decided),
                **draft.values(),
                "purged_at": None,
            }
            row["personal_digest"] = hashchain.event_personal_digest(self._key(conn, row), row)
            row["prev_hash"] = prev_hash
            row["hash"] = hashchain.event_hash(row)
            stored = dict(row, clock_synced=int(row["clock_synced"]))
            stored.update({name: _json(row[name]) for name in _EVENT_JSON})
            conn.execute(
                _INSERT_EVENT,
                [stored[c] for c in _EVENT_COLUMNS],
            )
            _set_high_water(conn, "events", seq)
            inserted.update(row)
            if draft.audit is not None:
                actor, action, detail = draft.audit
                what = {**detail, "event_seq": seq, "recorded": draft.decision}
                audited.append(int(self._insert_audit(conn, actor, action, what)["seq"]))

        audited: list[int] = []
        self._transaction(write, record=True)
        self._last_seq = inserted["seq"]
        if audited:
            self._last_audit_seq = audited[-1]
        self._date_site_changes()
        inserted["reasons"] = tuple(inserted["reasons"])
        inserted["flags"] = tuple(inserted["flags"])
        return Event(**inserted)

    def _audit_in_writer(self, actor: str, action: str, detail: Mapping[str, Any] | None) -> None:
        result: dict[str, Any] = {}
        self._transaction(
            lambda db: result.update(self._insert_audit(db.conn, actor, action, detail)),
            record=True,
        )
        self._last_audit_seq = result["seq"]
        self._date_site_changes()

    def _date_site_changes(self) -> None:
        """After a row (on the writer): the first on a set clock dates the changes of the
        site's settings a start recorded on a clock not set (``date_site_changes``). Left to
        the hourly purge, a report took them from the next day until then (a boot that wrote
        nothing on a set clock has no offset in ``boot_clock``; audit rows give none). The
        row stands whatever happens here: a storage fault leaves them to the next row, a
        history that cannot be dated (damaged) to the hourly purge."""
        if not self.site_undated or not self.clock.synced():
            return
        reading = ClockReading.take(self.clock)
        try:
            self._transaction(lambda db: date_site_changes(db, reading, self.boot_id))
        except (StoreFault, sqlite3.Error):
            return
        except Exception as exc:  # noqa: BLE001 - the row is committed: never fail it now
            log.warning("site history not dated at a row on a set clock: %s", type(exc).__name__)
        self.site_undated = False
