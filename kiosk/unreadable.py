"""A stored event whose fields cannot be read (an SD card's bit rot, a hand edit): left out.

The one way the reports read the event log's rows forgivingly (``kiosk.stats``,
``kiosk.categories``, ``kiosk.links.decision_before``, and through them ``/api/v1/stats``,
the guard's statistics and exports, ``kiosk report`` and the freeze before each retention
purge): a row one of whose fields does not read as the record types it
(``kiosk.hashchain.unreadable_field``, the check ``kiosk verify-log`` names as an
"unreadable value") is counted by the caller (``unreadable_rows`` of the day's report) and
logged once by its ``seq`` and the field's name, never its values (they may be a person's).
A damaged row never counts as a pass: one whose decision let someone through is left out of
every figure. A damaged deny is kept, what its damaged fields said read as nothing (no
reasons, no flags, no temperature, nobody: ``NOTHING``), so that it still ends its passage
as denied: left out, the pass before it (a gate that did not open, ``not_opened``) stood as
the passage's end, a pass and a household's outing in the report. Besides the ``CHECKED``
fields, a ``ts`` that is no time and a ``decision`` the log never records are damage
(``damaged_fields``): such a decision reads as ``deny``, such a time as the time of the row
before it; the day's figures find such a row on the day of the row before it in the log
(``undated_sql``: its text sorts into no day, or another).

The one way a JSON field of a row read back is decoded (``decode_json``: the log's readers,
``kiosk.store.decode_event_row`` and ``decode_audit_row``, and the office's export,
``kiosk.export.iter_events``): stored text that is not JSON does not raise. The row names the
field in ``unreadable``; the export passes the text on unchanged (the office loses nothing and
its pull stops at the row, naming its seq: its hash no longer verifies), every other reader
reads it as nothing (``EMPTY``), never as the text (a flag's name found in damaged text is no
flag).

The one way SQL reads a field of a stored JSON column (``json_field``): SQLite's
``json_extract`` refuses text that is not JSON with ``malformed JSON``, and the whole query
with it (every search, every report that reads the column); ``json_field`` reads such a row's
field as NULL instead.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

from kiosk.dating import CLOCK_DATED, CLOCK_DATED_COLUMNS
from kiosk.hashchain import unreadable_field
from kiosk.record import DECISIONS, PASS_DECISIONS

__all__ = [
    "A_TIME",
    "CHECKED",
    "EMPTY",
    "NOTHING",
    "UNREADABLE",
    "a_time",
    "also_checked",
    "damaged_fields",
    "decode_json",
    "json_field",
    "readable_rows",
    "undated_args",
    "undated_sql",
]

log = logging.getLogger(__name__)

#: The rows told about already in this process, by (kiosk_id, seq): each is logged once.
_TOLD: set[tuple[str, int]] = set()
#: How many rows are remembered as told (past it, the memory starts again).
MAX_TOLD = 1000
_LOCK = threading.Lock()

Row = TypeVar("Row", bound=Mapping[str, Any])

#: The typed fields of an events row a report's figures read (``kiosk.record``'s kinds), in
#: every events table the reports read (the gate's log, the district's day in memory): each
#: read of a day's rows selects them all (``also_checked``), so each leaves out the same rows.
CHECKED = ("reasons", "flags", "temp_c", "person")


#: What a damaged field of a deny kept in the figures reads as: nothing it said.
NOTHING: dict[str, Any] = {"reasons": "[]", "flags": "[]", "temp_c": None, "person": None}


#: The field a row read back carries when some of its JSON fields' stored text is not JSON:
#: their names, in the row's order (absent when every one could be read).
UNREADABLE = "unreadable"

#: What a JSON field whose text cannot be read reads as, for every reader but the export.
EMPTY: dict[str, Any] = {"reasons": [], "flags": [], "person": None, "detail": {}}


def decode_json(
    row: dict[str, Any], names: Iterable[str], keep_text: bool = False
) -> dict[str, Any]:
    """``row`` with its fields ``names`` that hold text decoded from JSON, in place. A field
    whose text is not JSON (bit rot, a hand edit) is named in ``row[UNREADABLE]`` and reads as
    ``EMPTY`` (its text kept as it is when ``keep_text``); it never raises."""
    damaged: list[str] = []
    for name in names:
        text = row.get(name)
        if not isinstance(text, str):
            continue
        try:
            row[name] = json.loads(text)
        except ValueError:
            damaged.append(name)
            if not keep_text:  # a copy: the reader may add to it
                row[name] = copy.copy(EMPTY.get(name))
    if damaged:
        row[UNREADABLE] = damaged
    return row


def json_field(column: str, path: str) -> str:
    """SQL: the value at ``path`` (``'$.name'``) of the JSON text in ``column``, NULL where the
    stored text is not JSON (a damaged card, a hand edit): ``json_extract`` on such text
    raises ``malformed JSON`` and fails the query, whatever row it was after. ``column`` and
    ``path`` are the caller's constants, never a user's text."""
    return f"json_extract(CASE WHEN json_valid({column}) THEN {column} END, '{path}')"


def also_checked(picked: Collection[str]) -> list[str]:
    """The columns a query of the events must select besides those it ``picked`` (by name),
    for ``readable_rows``: the ``CHECKED`` ones it looks at, ``decision`` (a damaged pass is
    left out, a deny kept), and ``kiosk_id``, which with ``seq`` names the row it tells of."""
    return [name for name in ("kiosk_id", "decision", *CHECKED) if name not in picked]


def damaged_fields(row: Mapping[str, Any]) -> list[str]:
    """The fields of a stored ``events`` row (whole or in part, as stored or read back) that
    cannot be read: those its reader named (``UNREADABLE``), a ``CHECKED`` one that does not
    read as the record types it (``unreadable_field``), a ``ts`` that is no time, a
    ``decision`` the log never records (``DECISIONS``)."""
    damaged = list(row.get(UNREADABLE) or ())
    fields = {name: row[name] for name in CHECKED if name in row and name not in damaged}
    while (field := unreadable_field(fields)) is not None:
        damaged.append(field)
        del fields[field]
    if "ts" in row and not _a_time(row["ts"]):
        damaged.append("ts")
    if "decision" in row and row["decision"] not in DECISIONS:
        damaged.append("decision")
    return damaged


def _a_time(value: Any) -> bool:
    """Whether a stored ``ts`` reads as a time."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def readable_rows(
    rows: Iterable[Row], skipped: list[int] | None = None, since: str | None = None
) -> Iterator[Row]:
    """``rows`` (stored ``events`` rows, whole or in part, in ``seq`` order), those with a
    field that cannot be read (``damaged_fields``) put into ``skipped`` (their ``seq``) and
    logged once (``told``): a pass among them left out, a deny kept with its damaged fields
    read as ``NOTHING`` (a decision as ``deny``: a damaged one never counts as a pass; a
    time as the row's before it, else ``since``) and named in ``UNREADABLE``."""
    last = since
    for row in rows:
        damaged = damaged_fields(row)
        if not damaged:
            last = row.get("ts", last)
            yield row
            continue
        seq = row.get("seq")
        if skipped is not None and isinstance(seq, int):
            skipped.append(seq)
        told(str(row.get("kiosk_id") or ""), seq, damaged[0])
        if "decision" in row and row["decision"] not in PASS_DECISIONS:
            yield cast(Row, {**row, **_read_as(damaged, last, row), UNREADABLE: damaged})


def _read_as(damaged: list[str], last: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``damaged`` fields of a deny kept read as (``readable_rows``)."""
    out = {name: NOTHING[name] for name in damaged if name in NOTHING}
    if "decision" in damaged:
        out["decision"] = "deny"
    if "ts" in damaged:
        out["ts"] = last if last is not None else row["ts"]
    return out


#: What every stored time's text begins with (``YYYY-MM-DD?HH:MM``), as a GLOB: a ``ts``
#: that does not is no time, and may sort into another day or none (null, a word, a number,
#: hour 99). The GLOB lets a search use the ``ts`` index; ``a_time`` also asks SQLite to read
#: it as a time, which one that only looks like one (hour 29, day 35, month 18) is not.
A_TIME = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]?[0-2][0-9]:[0-5][0-9]*"


def a_time(ts: str) -> str:
    """SQL: ``ts`` is a time (``A_TIME``'s form, and a date and hour that are one)."""
    return f"({ts} glob '{A_TIME}' and julianday({ts}) is not null)"


def undated_sql(source: str, ts: str, picked: str, only: str = "") -> str:
    """SQL: the rows of a day (``undated_args``) in ``source`` (the events, or their dated
    view: its time ``ts``) whose time is no time (``a_time``), each of the day of the row
    before it in the log (of the first row after it when none is before it): those from the
    day's first row (by time) to the next day's first (``only``: a further condition on
    each). A search of the ``ts`` index and of the day's span of ``seq``, never a walk of
    every row: of the dated view, each of its parts searched on its own (``kiosk.dating``),
    as SQLite takes no bound from a subquery into a view of two parts."""
    timed = a_time(ts)
    rows = f"from {source} where {timed} and {ts}"  # noqa: S608
    first = _first_dated(source)
    span = (
        f"seq > (case when exists (select 1 {rows} < ?) then {first} else 0 end)"
        f" and seq < coalesce({first}, {2**63 - 1}) and exists (select 1 {rows} >= ? and {ts} < ?)"
    )
    parts = [source]
    if source == "dated_events":
        clock_dated = f"select {CLOCK_DATED_COLUMNS} from events where {CLOCK_DATED}"  # noqa: S608
        parts = [f"({clock_dated})", "redated_events"]
    where = f"where {span} and not coalesce({timed}, 0){only}"
    return " union all ".join(f"select {picked} from {part} {where}" for part in parts)  # noqa: S608


def undated_args(source: str, start: str, end: str, only: Iterable[object] = ()) -> list[object]:
    """``undated_sql``'s parameters for the day ``[start, end)`` (``only``: its condition's)."""
    taken = 2 if source == "dated_events" else 1
    each = [start, *[start] * taken, *[end] * taken, start, end, *only]
    return each * taken


def _first_dated(source: str) -> str:
    """SQL: the ``seq`` of the first row (by time) of ``source`` dated at or after a time (a
    parameter for each part of ``source``); of the dated view, the first of each of its parts
    (``kiosk.dating``), each down an index: the view's own order by time walks every row
    after it."""
    parts = [f"select seq, ts as t from events where {a_time('ts')} and ts >= ?"]  # noqa: S608
    if source == "dated_events":
        parts[0] += f" and ({CLOCK_DATED})"
        dated = f"from redated_events where {a_time('dated_ts')}"  # noqa: S608
        parts.append(f"select seq, dated_ts as t {dated} and dated_ts >= ?")
    each = " union all ".join(f"select * from ({p} order by t, seq limit 1)" for p in parts)  # noqa: S608
    return f"(select seq from ({each}) order by t, seq limit 1)"  # noqa: S608


def told(kiosk_id: str, seq: Any, field: str) -> None:
    """Log, once for each row, that event ``seq`` was left out for its ``field``."""
    key = (kiosk_id, seq if isinstance(seq, int) else -1)
    with _LOCK:
        if key in _TOLD:
            return
        if len(_TOLD) >= MAX_TOLD:
            _TOLD.clear()
        _TOLD.add(key)
    log.warning(
        "event seq %s: its %s cannot be read (damaged); a pass left out of the figures, a"
        " deny counted without it"
        " (kiosk verify-log names the row)",
        seq,
        field,
    )
