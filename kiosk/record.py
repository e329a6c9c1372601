"""The event record, defined once: every field of an ``events`` row (and of an ``audit`` row).

Everything that lists the record's fields is derived from ``EVENT`` (and ``AUDIT``) below:

* the event log's SQLite tables and its INSERT (``kiosk.store``), the hash chain's field sets
  and value kinds (``kiosk.hashchain``), the ``EventDraft`` the engine fills in
  (``DRAFT_FIELDS``) and the committed ``Event`` (``STORED_ORDER``; ``tests/test_record.py``
  checks both classes against this table);
* what ``/api/v1/events`` and the pull send (``EVENT_COLUMNS``, ``JSON_FIELDS``), the
  office's PostgreSQL ``fleet_events`` (``PG_TYPES``);
* the decision message's event part (``DECISION_FIELDS``) and replay's decision record
  (``REPLAY_FIELDS``).

The guard console's day export (``ui.guard.display.EXPORT_COLUMNS``) is not a listing of the
record: it is the office's own sheet, derived from a row (local time, words in the viewer's
language, masked by role, the person's name, phone, plate and occupants unpacked from
``person``, the UTC offset) and its columns keep their places whatever the record becomes. It
is defined there, once.

Adding a field: add a ``Column`` here (with ``since`` = the schema version that adds it) and a
migration in ``kiosk.store`` that adds the column to existing databases; ``m001`` creates only
the version-1 columns, so a database created today and one migrated later end up the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a value is held: ``list``/``json`` are JSON text in SQLite, ``bool`` is 0/1 there.
Kind = Literal["text", "int", "float", "bool", "list", "json"]
#: Who sets a field: the log's stamp when it commits, the engine's draft, the hash chain, or
#: retention (``purged_at``). Chain and retention fields are outside the row's hash.
SetBy = Literal["log", "engine", "chain", "retention"]


@dataclass(frozen=True)
class Column:
    """One field of the record, and how each place that holds it types it."""

    name: str
    kind: Kind
    set_by: SetBy
    sqlite: str
    pg: str = ""
    #: Personal data: covered by ``personal_digest`` only, nulled by retention, masked.
    personal: bool = False
    #: Part of the decision message the engine publishes (screens, guard console, replay).
    in_decision: bool = False
    since: int = 1

    @property
    def hashed(self) -> bool:
        """Covered directly by the row's ``hash`` (personal fields only via their digest)."""
        return not self.personal and self.set_by in ("log", "engine")


def _text(
    name: str, set_by: SetBy, sqlite: str = "TEXT NOT NULL", pg: str = "text", **kw: bool
) -> Column:
    return Column(name, "text", set_by, sqlite, pg, **kw)


def _temp(name: str, **kw: bool) -> Column:
    return Column(name, "float", "engine", "REAL", "double precision", **kw)


#: The event record: the interface's fields in its order, then this project's additions.
EVENT: tuple[Column, ...] = (
    Column("seq", "int", "log", "INTEGER PRIMARY KEY", "bigint NOT NULL", in_decision=True),
    _text("id", "log", pg="text NOT NULL", in_decision=True),
    _text("kiosk_id", "log", pg="text NOT NULL"),
    _text("ts", "log", pg='text COLLATE "C" NOT NULL', in_decision=True),
    _text("boot_id", "log"),
    Column("mono_ns", "int", "log", "INTEGER NOT NULL", "bigint"),
    Column("clock_synced", "bool", "log", "INTEGER NOT NULL", "boolean"),
    _text("direction", "engine", in_decision=True),
    _text("pass_id", "engine", "TEXT", personal=True, in_decision=True),
    _text("household", "engine", "TEXT", personal=True, in_decision=True),
    _text("decision", "engine", pg="text NOT NULL", in_decision=True),
    Column(
        "reasons",
        "list",
        "engine",
        "TEXT NOT NULL",
        "jsonb NOT NULL",
        in_decision=True,
    ),
    _temp("temp_c", in_decision=True),
    _temp("temp_object_c"),
    _temp("temp_ambient_c"),
    Column("latency_ms", "float", "engine", "REAL", "double precision", in_decision=True),
    _text("operator", "engine", "TEXT", in_decision=True),
    _text("prev_hash", "chain", pg="text NOT NULL"),
    _text("hash", "chain", pg="text NOT NULL"),
    _text("kind", "engine", in_decision=True),
    Column("flags", "list", "engine", "TEXT NOT NULL", "jsonb", in_decision=True),
    _text("holder", "engine", "TEXT", personal=True),
    Column("person", "json", "engine", "TEXT", "jsonb", personal=True),
    _text("personal_digest", "chain"),
    _text("purged_at", "retention", "TEXT"),
)

#: The audit record (guard actions, list and config changes, store recoveries).
AUDIT: tuple[Column, ...] = (
    Column("seq", "int", "log", "INTEGER PRIMARY KEY"),
    _text("id", "log"),
    _text("kiosk_id", "log"),
    _text("ts", "log"),
    _text("boot_id", "log"),
    Column("mono_ns", "int", "log", "INTEGER NOT NULL"),
    Column("clock_synced", "bool", "log", "INTEGER NOT NULL"),
    _text("actor", "engine"),
    _text("action", "engine"),
    # The detail may name residents (a list change, a manual registration): personal.
    Column("detail", "json", "engine", "TEXT", personal=True),
    _text("personal_digest", "chain"),
    _text("purged_at", "retention", "TEXT"),
    _text("prev_hash", "chain"),
    _text("hash", "chain"),
)

#: Where the chain's own columns and the purge stamp sit in a stored row: last, in this order.
_TRAILER = ("personal_digest", "purged_at", "prev_hash", "hash")


def names(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns)


def stored_order(columns: tuple[Column, ...]) -> tuple[str, ...]:
    """Column order of the SQLite table (and of ``Event``): the record's own fields, then the
    digest, purge stamp and chain links."""
    own = tuple(c.name for c in columns if c.name not in _TRAILER)
    return own + tuple(n for n in _TRAILER if n in names(columns))


def by_name(columns: tuple[Column, ...]) -> dict[str, Column]:
    return {c.name: c for c in columns}


#: Event fields in record order: the store's INSERT, ``/api/v1/events``, the pull.
#: The decisions that let a person through (the kiosk's and the guard's).
PASS_DECISIONS = frozenset({"pass", "manual_pass"})
#: Every decision an event records (the log refuses any other; one read back otherwise was
#: damaged: ``kiosk.unreadable``).
DECISIONS = frozenset({*PASS_DECISIONS, "deny", "manual_deny"})

EVENT_COLUMNS = names(EVENT)
AUDIT_COLUMNS = names(AUDIT)
#: Personal event fields (nulled by retention, masked by role).
EVENT_PERSONAL_FIELDS = tuple(c.name for c in EVENT if c.personal)
AUDIT_PERSONAL_FIELDS = tuple(c.name for c in AUDIT if c.personal)
#: Fields covered directly by the row hash, in record order.
EVENT_HASHED_FIELDS = tuple(c.name for c in EVENT if c.hashed)
AUDIT_HASHED_FIELDS = tuple(c.name for c in AUDIT if c.hashed)
#: What the engine's ``EventDraft`` carries (the log stamps the rest).
DRAFT_FIELDS = tuple(c.name for c in EVENT if c.set_by == "engine")
#: Fields held as JSON text in SQLite (lists and objects).
JSON_FIELDS = frozenset(c.name for c in EVENT + AUDIT if c.kind in ("list", "json"))
#: The ``household`` a purge (retention, a resident's forget, at the gate or the office) leaves
#: on a row that had one: none any more, but known to have had one, so an emptied passing
#: exit is still somebody's outing (``kiosk.stats.purged_outing``); a row that never had one
#: (a visitor's pass, a guard's pass for nobody) keeps null and is never an outing.
PURGED_HOUSEHOLD = ""


def emptied(personal: tuple[str, ...]) -> str:
    """The SQL ``SET`` list that empties ``personal`` fields as every purge does: null, but a
    household there is ``PURGED_HOUSEHOLD`` (the one marker that it had one)."""
    return ", ".join(
        f"{p} = CASE WHEN {p} <> '' THEN '{PURGED_HOUSEHOLD}' END"
        if p == "household"
        else f"{p} = NULL"
        for p in personal
    )


#: Columns of fleet_events in PostgreSQL, typed.
PG_TYPES = {c.name: c.pg for c in EVENT}
#: The event part of the engine's decision message, in record order.
DECISION_FIELDS = tuple(c.name for c in EVENT if c.in_decision)
#: What the decision message adds about the outcome (not stored: derived from the decision).
OUTCOME_FIELDS = ("needs_guard", "alarm", "committed")
#: Replay's decision record: the decision's non-personal fields that a second run repeats
#: (``seq`` and what the engine decided; not ``id``/``ts``), then the outcome.
REPLAY_FIELDS = (
    tuple(
        c.name
        for c in EVENT
        if c.in_decision and not c.personal and (c.set_by == "engine" or c.name == "seq")
    )
    + OUTCOME_FIELDS
)


def sqlite_columns(columns: tuple[Column, ...], since: int = 1) -> str:
    """The body of a ``CREATE TABLE``: the columns of schema version ``since``, stored order."""
    cols = by_name(columns)
    return ",\n".join(
        f"{name} {cols[name].sqlite}" for name in stored_order(columns) if cols[name].since <= since
    )
