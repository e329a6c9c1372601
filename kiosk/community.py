"""Shared pieces of the ledgers around the gate: returnees, household services, the compound
map and the roster (``kiosk.observation``, ``kiosk.services``, ``kiosk.compound``,
``kiosk.roster``).

Each ledger keeps its own tables (its own ``Migrations`` set) in the event log's database and
writes each change with its audit row, who made it and what changed, in one transaction
(``kiosk.auditing.audited_write``, through ``EventLog.submit_audited``). Audit
details carry ids and statuses, never names or phone numbers: the audit chain outlives the
ledgers' retention.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import sqlite_utils

from .auditing import audited_write
from .lists import same_text
from .ports import AuditedWriter
from .privacy import mask_code, mask_name, mask_phone, mask_repeated, scrub_text
from .typed import typed, unseen, visible
from .wipe import owe_wipe, wipe_removed

__all__ = [
    "CommunityError",
    "LogLike",
    "Role",
    "check_actor",
    "clean_text",
    "has_table",
    "household_is",
    "record_dict",
    "row_by_id",
    "replace_rows",
    "mask_record",
    "plain_float",
]

#: Who reads a ledger record: an admin (the manager) sees everything; a guard sees names,
#: households and plates (to recognise people at the door) but not phone numbers; the office
#: (an API token, an export) sees codes and initials only.
Role = Literal["admin", "guard", "office"]

_NAMES = ("name", "holder", "driver", "taken_by", "opened_by")
_CODES = ("household", "plate")


class CommunityError(ValueError):
    """Input a ledger cannot take; the message names the field. Nothing was changed.

    The message is one line whatever it quotes (a cell, a header: ``line 2, column E
    (residents): …``, every builder of one): a character nobody sees in it, a line break
    first, is escaped as ``kiosk.typed.visible`` spells it (``\\n``). Raw, a cell holding
    ``x⏎kiosk compound: applied 120 households`` printed a forged line of the CLI's own under
    the refusal, while nothing was applied."""

    def __init__(self, message: str) -> None:
        super().__init__(visible(message))


#: What the ledgers need of ``kiosk.store.EventLog``: reads, and writes that carry their audit
#: row (``kiosk.auditing.audited_write``) — no write without one.
LogLike = AuditedWriter


def clean_text(name: str, value: object, *, max_len: int = 120, required: bool = True) -> str:
    """Strip and bound a text field; ``""`` for an absent optional one. Typed the way a
    Chinese input method types it (full-width ``１-１０１``, an ideographic space), it is kept
    in its plain spelling ``1-101`` (``kiosk.typed.typed``). A character nobody sees (a
    zero-width space pasted from a chat, a right-to-left override, DEL, a C1 control) is
    refused as the lists refuse it: a name or household holding one looks like another on
    every screen and matches no pass at the gate."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise CommunityError(f"{name}: expected text")
    text = typed(value)
    if required and not text:
        raise CommunityError(f"{name}: required")
    if len(text) > max_len:
        raise CommunityError(f"{name}: at most {max_len} characters")
    if any(ord(ch) < 32 for ch in text):
        raise CommunityError(f"{name}: control characters are not allowed")
    if unseen(text):  # after ``typed``: every other space is a space
        raise CommunityError(
            f"{name}: must be printable text on one line (no invisible characters)"
        )
    return text


def check_actor(actor: object) -> str:
    """Every change names who made it (a guard, a helper, ``import``)."""
    return clean_text("actor", actor, max_len=64)


def plain_float(name: str, value: object) -> float:
    """A finite number (not a bool), for temperatures typed by hand."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommunityError(f"{name}: expected a number")
    return float(value)


def record_dict(record: Any, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """A ledger record's fields (a dataclass's, in order, but ``omit``) as JSON values: dates
    and times in ISO 8601, mappings as dicts. Personal ones included: mask with
    ``mask_record`` before showing."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in omit:
            continue
        value = getattr(record, f.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def row_by_id(log: LogLike, table: str, row_id: int, missing: str) -> dict[str, Any]:
    """The row of a ledger's ``table`` (a name of this package) whose ``id`` is ``row_id``;
    ``missing`` is the error when there is none."""
    query = f"select * from {table} where id = ?"  # noqa: S608 - a table name of this package
    for row in log.reader().query(query, [row_id]):
        return row
    raise CommunityError(missing)


def household_is(db: sqlite_utils.Database, table: str, household: str) -> tuple[str, list[str]]:
    """The SQL condition and its arguments for the rows of a ledger's ``table`` (a name of
    this package) about ``household`` however they spell it (``kiosk.lists.same_text``, as
    the gate matches: ``b-2-701`` is ``B-2-701``, a full-width ``Ｂ-2-701`` of a row stored
    before input was folded too), from the distinct codes of its household index."""
    key = same_text(household)
    codes = db.execute(f"select distinct household from {table}")  # noqa: S608 - ours
    found = sorted({str(c) for (c,) in codes if c is not None and same_text(str(c)) == key})
    return f"household in ({', '.join('?' * len(found))})", found


def has_table(db: sqlite_utils.Database, name: str) -> bool:
    return bool(db[name].exists())


def replace_rows(
    log: LogLike,
    table: str,
    rows: list[dict[str, Any]],
    pk: str,
    audit: tuple[str, str, dict[str, Any]],
) -> None:
    """Replace every row of ``table`` with ``rows`` and write the ``(actor, action, detail)``
    audit row of it, in one transaction (an import applied as a whole, with its row). When it
    drops a row (a plate, a household) or rewrites one of a row's values, the WAL's old page
    images still hold them: it owes a wipe in the transaction and wipes after the commit
    (``kiosk.wipe``). An import that only adds rows or writes them again as they were (their
    ``updated_at`` stamp aside) owes none: a wipe stalls the writer for nothing. A row written
    again as it was (its ``updated_at`` aside) is left as it was, its rowid and stamp too: the
    identity a resident's forget names it by (``kiosk.people._IDENTITY``) stays, so a restore
    of an archive taken before this import finds it again."""

    def write(db: sqlite_utils.Database) -> bool:
        before = _held_values(db, table)
        same = _unchanged(db, table, rows, pk)
        db.execute(
            f"delete from {table} where {pk} not in (select value from json_each(?))",  # noqa: S608
            [json.dumps(sorted(same))],
        )
        db.table(table).insert_all((r for r in rows if r[pk] not in same), pk=pk)
        dropped = bool(before - _held_values(db, table))
        if dropped:
            owe_wipe(log, db)
        return dropped

    actor, action, detail = audit
    if audited_write(log, write, actor, action, lambda _: detail):
        wipe_removed(log)


#: A ledger row's column that says when it was written, not what it holds: an import stamps
#: every row it writes, one written again as it was too.
_STAMP = "updated_at"


def _unchanged(
    db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]], pk: str
) -> set[Any]:
    """The keys of ``rows`` whose row ``table`` holds with the same values, its ``_STAMP``
    aside (a table name of this package)."""
    wanted = {r[pk]: r for r in rows}
    cursor = db.execute(f"select * from {table}")  # noqa: S608 - a table name of this package
    names = [col[0] for col in cursor.description]
    same: set[Any] = set()
    for values in cursor:
        held = dict(zip(names, values, strict=True))
        new = wanted.get(held[pk])
        if new is not None and all(
            held.get(c) == new.get(c) for c in set(held) | set(new) if c != _STAMP
        ):
            same.add(held[pk])
    return same


def _held_values(db: sqlite_utils.Database, table: str) -> set[tuple[Any, ...]]:
    """Every row of ``table`` (a name of this package) as its values but its ``_STAMP``: a
    row of before missing after a change was dropped or rewritten."""
    cursor = db.execute(f"select * from {table}")  # noqa: S608 - a table name of this package
    keep = [i for i, col in enumerate(cursor.description) if col[0] != _STAMP]
    return {tuple(row[i] for i in keep) for row in cursor}


def mask_record(record: Mapping[str, Any], role: Role) -> dict[str, Any]:
    """A ledger record (``Person.to_dict()``, ``Request.to_dict()``, ...) as ``role`` may see
    it; the input is not modified. An unknown role sees what the office sees."""
    out = dict(record)
    if role == "admin":
        return out
    for key, value in record.items():
        if value is None or value == "":
            continue
        if key == "phone":
            out[key] = mask_phone(str(value))
        elif key in ("note", "origin"):
            out[key] = _guards_text(str(value), record) if role == "guard" else "*"
        elif role != "guard" and key in _NAMES:
            out[key] = mask_name(str(value))
        elif role != "guard" and key in _CODES:
            out[key] = mask_code(str(value))
    return out


def _guards_text(text: str, record: Mapping[str, Any]) -> str:
    """A record's free text as a guard sees it: every phone- or ID-shaped number masked
    (``scrub_text``), and the record's own phone, however it is typed there (a Hong Kong
    number ``scrub_text`` does not know), masked as the field is."""
    phone = record.get("phone")
    own = {phone.strip(): "phone"} if isinstance(phone, str) and phone.strip() else {}
    return mask_repeated(scrub_text(text), own)
