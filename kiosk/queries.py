"""Read-only questions the faces ask of the event log: newest events, a day's rows, the latest
kiosk reading, registrations, acknowledgements in the audit log, list tables, metric counts.

Every SQL statement the guard console and the API need lives here (``ui/`` holds none), each
one a function of a reader (``EventLog.reader()``: a read-only connection per thread, so a
page never waits on the writer) and plain arguments. Limits are bounded here, whatever the
caller passes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Protocol

import sqlite_utils

from kiosk.clock import ClockReading
from kiosk.dating import dated_source, dated_ts_sql, retention_offsets
from kiosk.firsts import firsts
from kiosk.links import NOT_OPENED_ROWS, judged_fever, not_opened, overridden
from kiosk.store import (
    FORM_ONCE_ROWS,
    FORM_ONCE_SQL,
    StoreFault,
    decode_event_row,
    format_ts,
)
from kiosk.typed import typed
from kiosk.unreadable import a_time, decode_json, json_field, undated_args, undated_sql

#: Where the boots' offsets count milliseconds from (``kiosk.dating``).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The most rows any one question returns.
MAX_ROWS = 10_000
#: The list tables (``kiosk.lists``) as the guard's list page shows them, with their order.
LIST_TABLES = {
    "quarantine": ("list_quarantine", "id desc"),
    "revocations": ("list_revocations", "revoked_at desc"),
    "households": ("list_households", "household"),
}


class Readable(Protocol):
    """What the questions need of the event log: a read-only connection."""

    def reader(self) -> sqlite_utils.Database: ...


def _limit(n: int) -> int:
    return max(1, min(int(n), MAX_ROWS))


def _rows(log: Readable, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    return log.reader().query(sql, params)


def recent_events(log: Readable, limit: int = 50) -> list[dict[str, Any]]:
    """The newest events, newest first, JSON fields decoded."""
    rows = _rows(log, "SELECT * FROM events ORDER BY seq DESC LIMIT ?", [_limit(limit)])
    return [decode_event_row(r) for r in rows]


#: The dated time of the unsynchronised events whose ``seq`` is in the JSON list ``?``: each
#: by its primary key, its boot's offset by the boot's (``kiosk.dating``); null for one its
#: boot has not dated (yet). Never a scan of the log, however long.
DATED_ROWS_SQL = f"""
SELECT seq, CASE WHEN offset_ms IS NOT NULL
    THEN {dated_ts_sql("offset_ms + mono_ns / 1000000")} END AS dated_ts
FROM (
    SELECT e.seq, e.mono_ns, (
        SELECT b.offset_ms FROM boot_clock b WHERE b.boot_id = e.boot_id AND b.seq > e.seq
    ) AS offset_ms
    FROM events e
    WHERE e.seq IN (SELECT value FROM json_each(?)) AND e.clock_synced = 0
)
"""  # noqa: S608 - module constants


def dated(
    log: Readable,
    events: list[dict[str, Any]],
    now: ClockReading | None = None,
    boot_id: str = "",
) -> list[dict[str, Any]]:
    """``events`` (decoded rows a page shows) with the time the reports give them, as the
    view ``dated_events`` does: ``dated_ts`` (``ts``; for one stamped before NTP stepped the
    clock, the time its boot's synchronised clock dates it to) and ``dating`` (``clock``,
    ``boot``, or ``unsynced``: its boot has not synchronised, ``ts`` is all there is). One
    query for the unsynchronised rows among them (none when there are none); its cost is
    that of the rows given, not of the log. With ``now`` (the clock read now) synchronised,
    a row of this boot (``boot_id``) no synchronised event has dated yet (NTP answered,
    nobody passed since) is dated by it, as its boot's next event will date it."""
    unsynced = [int(e["seq"]) for e in events if e.get("clock_synced") is False][:MAX_ROWS]
    found: dict[int, str | None] = {}
    if unsynced:
        rows = _rows(log, DATED_ROWS_SQL, [json.dumps(unsynced)])
        found = {int(r["seq"]): r["dated_ts"] for r in rows}
    out = []
    for event in events:
        when = found.get(int(event["seq"])) or _dated_by_now(event, now, boot_id)
        if event.get("clock_synced") is not False:
            out.append(event | {"dated_ts": event.get("ts"), "dating": "clock"})
        else:
            dating = "unsynced" if when is None else "boot"
            out.append(event | {"dated_ts": when or event.get("ts"), "dating": dating})
    return out


def dated_times(
    log: Readable, seqs: list[int], now: ClockReading | None = None, boot_id: str = ""
) -> dict[int, str]:
    """The dated times (``dated``) of the events ``seqs`` that something dated: those
    stamped before NTP stepped the clock, by their keys (at most ``MAX_ROWS``)."""
    wanted = json.dumps(sorted({int(s) for s in seqs})[:MAX_ROWS])
    rows = _rows(
        log,
        "SELECT seq, ts, boot_id, mono_ns, clock_synced FROM events"
        " WHERE seq IN (SELECT value FROM json_each(?))",
        [wanted],
    )
    events = [decode_event_row(r) for r in rows]
    return {
        int(e["seq"]): str(e["dated_ts"])
        for e in dated(log, events, now, boot_id)
        if e["dating"] == "boot"
    }


def _dated_by_now(event: dict[str, Any], now: ClockReading | None, boot_id: str) -> str | None:
    """An unsynchronised row of this boot dated by the clock read ``now``, if synchronised."""
    mono = event.get("mono_ns")
    if now is None or not now.synced or event.get("boot_id") != boot_id:
        return None
    if event.get("clock_synced") is not False or not isinstance(mono, int):
        return None
    return format_ts(now.wall_at(mono))


def events_of_kinds_since(
    log: Readable, kinds: tuple[str, ...], since: str | Since, limit: int = 50
) -> list[dict[str, Any]]:
    """Events of the given ``kind``\\s (e.g. registrations) at or after ``since`` (an ISO
    timestamp prefix), newest first, decoded. Reads the rows from the first stamped since
    then (``_SINCE``), not the whole log: with fewer than ``limit`` of those kinds in the
    window (most days) a walk down ``seq`` went on to the log's first row. A ``Since``: with
    those stamped before NTP stepped the clock that happened since
    (``first_seq_happened_since``'s rule and cost)."""
    marks = ", ".join("?" for _ in kinds) or "NULL"
    sql = (
        f"SELECT * FROM events WHERE {_SINCE} AND kind IN ({marks}) AND ts >= ? "  # noqa: S608
        "ORDER BY seq DESC LIMIT ?"
    )
    stamp = since if isinstance(since, str) else since.ts
    params = [stamp, *kinds, stamp, _limit(limit)]
    rows = {int(r["seq"]): r for r in _rows(log, sql, params)}
    if not isinstance(since, str):
        rows |= {int(r["seq"]): r for r in _kinds_unsynced(log, kinds, since, _limit(limit))}
    newest = sorted(rows, reverse=True)[: _limit(limit)]
    return [decode_event_row(rows[seq]) for seq in newest]


def _kinds_unsynced(
    log: Readable, kinds: tuple[str, ...], since: Since, limit: int
) -> Iterator[dict[str, Any]]:
    """The newest ``limit`` rows of each boot of ``_UNSYNCED_BOOTS`` of the ``kinds`` that
    happened since: per boot, the first since on one index, then the rows from it on another
    (``_KINDS_UNSYNCED_SQL``), both bounded by the window, not by the boot's run."""
    db = log.reader()
    for boot in list(db.query(_UNSYNCED_BOOTS, since.args(first_seq_since(log, since.ts)))):
        args = {"boot": boot["boot_id"], "mono": boot["mono"]}
        start = next(iter(db.query(_BOOT_FIRST_SQL, args)), {}).get("s")
        if start is not None:
            wanted = {"from": start, "kinds": json.dumps(list(kinds)), "limit": limit}
            yield from db.query(_KINDS_UNSYNCED_SQL, args | wanted)


#: The first ``seq`` stamped at or after a time, read from the rows stamped since on
#: ``events_ts``. Without the index named, SQLite answers ``min(seq)`` by walking ``seq`` up
#: from the log's first row to the first stamped since: a year of rows for "today".
_FIRST_SINCE = "SELECT min(seq) FROM events INDEXED BY events_ts WHERE ts >= ?"
#: Rows from the first one stamped at or after a time: every row stamped since is among
#: them, whatever order the clock stamped them in.
_SINCE = f"seq >= ({_FIRST_SINCE})"


class TooManyRows(ValueError):
    """More rows than a read returns at once (``event_rows_between``): ``count`` of them,
    the most ``limit``."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} rows, more than {limit}")
        self.count, self.limit = count, limit


def event_rows_between(log: Readable, start: str, end: str) -> list[dict[str, Any]]:
    """The stored rows (JSON fields as text) dated in ``[start, end)``, in ``seq`` order, with
    ``ts`` the dated time: an event stamped before NTP synced at the time its boot's clock
    gave it (``kiosk.dating``), and one whose time is no time on the day of the row before
    it (``kiosk.unreadable.undated_sql``), as the day's report counts them. ``TooManyRows``
    (how many) when there are more than ``MAX_ROWS * 10``: never some of them, as if they
    were all."""
    db = log.reader()
    source, ts = dated_source(db)
    limit = MAX_ROWS * 10
    where = f"FROM {source} WHERE {ts} >= ? AND {ts} < ? AND {a_time(ts)}"
    day = f"SELECT * {where} UNION ALL {undated_sql(source, ts, '*')}"  # noqa: S608
    args = [start, end, *undated_args(source, start, end)]
    rows = [dict(r, ts=r[ts]) for r in db.query(f"{day} ORDER BY seq LIMIT ?", [*args, limit + 1])]
    if len(rows) > limit:
        count = db.execute(f"SELECT count(*) FROM ({day})", args).fetchone()[0]  # noqa: S608
        raise TooManyRows(int(count), limit)
    return rows


def first_seq_since(log: Readable, since: str) -> int | None:
    """The first ``seq`` at or after the timestamp ``since``; None when there is none."""
    rows = list(_rows(log, _FIRST_SINCE, [since]))
    first = next(iter(rows[0].values())) if rows else None
    return int(first) if first is not None else None


@dataclass(frozen=True)
class Since:
    """A moment to read the log back from, on both clocks a row carries: ``ts`` on the wall
    clock (the log's text form, a prefix does) and ``ms`` (the same, in milliseconds since
    the epoch); for the rows of this boot (``boot_id``: the log's), ``mono_ns`` on its
    monotonic clock, right whatever the wall clock said when they were stamped."""

    ts: str
    ms: int
    boot_id: str
    mono_ns: int

    @classmethod
    def ago(cls, now: ClockReading, seconds: float, boot_id: str) -> Since:
        wall = now.wall - timedelta(seconds=seconds)
        mono = now.mono_ns - int(seconds * 1e9)
        return cls(format_ts(wall)[:19], int(wall.timestamp() * 1000), boot_id, mono)

    def args(self, first: int | None) -> dict[str, Any]:
        """The parameters of ``_UNSYNCED_BOOTS``; ``first``: the first ``seq`` stamped since."""
        return {"mono": self.mono_ns, "boot": self.boot_id, "ms": self.ms, "first": first}


#: ``{t}`` (events or audit) stamped before NTP stepped the clock that happened at or after
#: the moment (``Since``: :mono, :boot, :ms): by this boot's monotonic clock, an earlier
#: boot's by its offset (``kiosk.dating``).
_HAPPENED_UNSYNCED = """{t}.clock_synced = 0 AND (
    ({t}.boot_id = :boot AND {t}.mono_ns >= :mono) OR EXISTS (
        SELECT 1 FROM boot_clock b
        WHERE b.boot_id = {t}.boot_id AND b.offset_ms + {t}.mono_ns / 1000000 >= :ms
    ))"""


#: Each boot whose unsynchronised events may have happened since (``_HAPPENED_UNSYNCED``):
#: this boot (:boot) and those first synchronised at or after ``seq`` :first, with the
#: ``mono_ns`` from which they did: this boot's :mono, a boot's own dated by its offset
#: (``offset_ms + mono_ns / 1e6 >= :ms``), the earlier of the two when both apply.
_UNSYNCED_BOOTS = """
SELECT boot_id, min(mono) AS mono FROM (
    SELECT :boot AS boot_id, :mono AS mono
    UNION ALL SELECT boot_id, (:ms - offset_ms) * 1000000 FROM boot_clock
    WHERE seq >= :first OR boot_id = :boot
) GROUP BY boot_id
"""
#: The first of those events (``_UNSYNCED_BOOTS``), read from each boot's rows since its
#: ``mono_ns`` on ``events_unsynced_mono``: only the window's rows, never a boot's whole run
#: (an offline gate's weeks of rows, 1.6 M, read at each registration's look).
FIRST_UNSYNCED_SQL = f"""
SELECT min(e.seq) AS s FROM ({_UNSYNCED_BOOTS}) w
CROSS JOIN events e INDEXED BY events_unsynced_mono
WHERE e.clock_synced = 0 AND e.boot_id = w.boot_id AND e.mono_ns >= w.mono
"""  # noqa: S608 - module constants
#: The first of one boot's (:boot) events since its ``mono_ns`` :mono (``events_unsynced_mono``).
_BOOT_FIRST_SQL = """
SELECT min(seq) AS s FROM events INDEXED BY events_unsynced_mono
WHERE clock_synced = 0 AND boot_id = :boot AND mono_ns >= :mono
"""
#: The newest :limit of one boot's (:boot) events since ``mono_ns`` :mono of the kinds in
#: the JSON list :kinds, read down ``events_unsynced`` from the newest to ``seq`` :from (the
#: first since, ``_BOOT_FIRST_SQL``): no more rows than the window's, nothing sorted.
_KINDS_UNSYNCED_SQL = """
SELECT * FROM events INDEXED BY events_unsynced
WHERE clock_synced = 0 AND boot_id = :boot AND seq >= :from AND mono_ns >= :mono
    AND kind IN (SELECT value FROM json_each(:kinds))
ORDER BY seq DESC LIMIT :limit
"""
#: Audit rows of one :action at or after :ts, or stamped before NTP stepped the clock and
#: written since (``_HAPPENED_UNSYNCED``), oldest first.
_AUDITS_SINCE_SQL = f"""
SELECT actor, ts, detail FROM audit WHERE action = :action AND (
    audit.ts >= :ts OR {_HAPPENED_UNSYNCED.format(t="audit")}
) ORDER BY seq LIMIT :limit
"""  # noqa: S608 - module constants


def first_seq_happened_since(log: Readable, since: Since) -> int | None:
    """The first ``seq`` of an event that happened at or after ``since``: stamped since, or
    stamped before NTP stepped the clock and made since (``_HAPPENED_UNSYNCED``). Reads the
    ``ts`` index and the unsynchronised events of this boot and of the boots synchronised
    since (index ``events_unsynced``), never the whole log."""
    first = first_seq_since(log, since.ts)
    args = since.args(first)
    # An earlier boot's event made since was dated by a synchronised event stamped since:
    # a boot whose first such event is ``first`` or later.
    rows = list(log.reader().query(FIRST_UNSYNCED_SQL, args))
    early = rows[0]["s"] if rows else None
    found = [int(s) for s in (first, early) if s is not None]
    return min(found, default=None)


def head_seq(log: Readable) -> int:
    """The highest committed ``seq`` as a reader sees it (0 for an empty log)."""
    rows = list(_rows(log, "SELECT max(seq) AS s FROM events", []))
    return int(rows[0]["s"] or 0) if rows else 0


@dataclass(frozen=True)
class Measured:
    """The latest event that carries the kiosk's own reading (object and ambient)."""

    seq: int
    ts: str
    temp_c: float | None
    temp_object_c: float
    temp_ambient_c: float


#: How many of the latest events ``last_measured`` looks through: a clinical reading is taken
#: right after the kiosk's, and a gate without a thermometer has none in its whole log (the
#: calibration page walked a year of rows at each view).
MEASURED_WITHIN = 5000


def last_measured(log: Readable) -> Measured | None:
    """The latest event with a kiosk reading among the last ``MEASURED_WITHIN``: the pair a
    clinical reading goes with. None when there is none there."""
    rows = list(
        _rows(
            log,
            "SELECT seq, ts, temp_c, temp_object_c, temp_ambient_c FROM events "
            "WHERE seq > (SELECT coalesce(max(seq), 0) FROM events) - ? "
            "AND temp_object_c IS NOT NULL AND temp_ambient_c IS NOT NULL "
            "ORDER BY seq DESC LIMIT 1",
            [MEASURED_WITHIN],
        )
    )
    return measured_in(rows)


def measured_in(events: Iterable[Mapping[str, Any]]) -> Measured | None:
    """The first of ``events`` (newest first) with a kiosk reading, as ``last_measured``."""
    for r in events:
        if r["temp_object_c"] is not None and r["temp_ambient_c"] is not None:
            return Measured(
                int(r["seq"]), str(r["ts"]), r["temp_c"], r["temp_object_c"], r["temp_ambient_c"]
            )
    return None


@dataclass(frozen=True)
class Stamp:
    """When a record other than an event was written, on both clocks a row carries (an
    audit row's ``ts``, ``boot_id``, ``mono_ns``, ``clock_synced``): ``dated_stamps`` dates
    it as ``dated`` dates an event."""

    ts: str
    boot_id: str
    mono_ns: int
    synced: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Stamp | None:
        """The stamp of a row with those columns (``mono_ns`` an integer), else None."""
        mono = row.get("mono_ns")
        if not isinstance(mono, int) or isinstance(mono, bool) or row.get("ts") is None:
            return None
        return cls(
            str(row["ts"]), str(row.get("boot_id") or ""), mono, bool(row.get("clock_synced"))
        )


def clock_of(reading: ClockReading, boot_id: str) -> list[Any] | None:
    """What a ledger keeps beside a stamp written at ``reading`` (a ``clocks`` column): its
    ``[boot_id, mono_ns]`` when the clock was not synchronised, else None (the stamp is
    right as it reads)."""
    return None if reading.synced else [boot_id, reading.mono_ns]


def read_clocks(text: str | None, names: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """A ``clocks`` column: each of ``names`` stamped unsynchronised, ``[boot_id, mono_ns]``
    (none: none kept, or a row from before they were)."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        str(k): (str(v[0]), int(v[1]))
        for k, v in found.items()
        if k in names and isinstance(v, list) and len(v) == 2 and isinstance(v[1], int)
    }


def stamps_of(
    record: object, names: tuple[str, ...], clocks: Mapping[str, tuple[str, int]]
) -> dict[str, Stamp]:
    """The stamps ``names`` a record has (its datetime attributes), on both clocks: one
    without its clocks kept (synchronised when written) is taken as it reads."""
    out = {}
    for name in names:
        when = getattr(record, name)
        if when is None:
            continue
        boot, mono = clocks.get(name, ("", 0))
        out[name] = Stamp(format_ts(when), boot, mono, name not in clocks)
    return out


#: The offsets of the boots (``kiosk.dating``) whose ids are in the JSON list ``?``.
_BOOT_OFFSETS_SQL = (
    "SELECT boot_id, offset_ms FROM boot_clock WHERE boot_id IN (SELECT value FROM json_each(?))"
)


def boot_offsets(db: sqlite_utils.Database, boots: list[str]) -> dict[str, int]:
    """The offsets (``kiosk.dating``: wall less monotonic milliseconds) of those of ``boots``
    that recorded a synchronised event."""
    if not boots:
        return {}
    try:
        rows = list(db.query(_BOOT_OFFSETS_SQL, [json.dumps(boots[:MAX_ROWS])]))
    except sqlite3.OperationalError:  # a log of a version before the boots' offsets
        return {}
    return {str(r["boot_id"]): int(r["offset_ms"]) for r in rows}


def offset_time(offset_ms: int, mono_ns: int) -> str:
    """The time a boot's offset dates a monotonic reading of that boot to, as ``ts`` reads."""
    return format_ts(EPOCH + timedelta(milliseconds=offset_ms + mono_ns // 1_000_000))


def held_dated(
    ts: str,
    held: tuple[str, int] | None,
    offsets: Mapping[str, int],
    now: ClockReading | None,
    boot_id: str,
) -> str:
    """When a ledger's stamp ``ts`` happened, as ``ts`` reads: itself when written on a
    synchronised clock (``held`` None, its ``clocks`` entry); else at its boot's offset
    (``offsets``: an event of that boot was since recorded on a synchronised clock), or, for
    this boot (``boot_id``) with ``now`` synchronised, by the monotonic time since; a boot
    never dated leaves ``ts`` as its clock said. Retention dates by it what was written
    before NTP set the clock (1970 on a Pi booted without network: older than any cutoff)."""
    if held is None:
        return ts
    boot, mono_ns = held
    if boot in offsets:
        return offset_time(offsets[boot], mono_ns)
    if now is not None and now.synced and boot == boot_id:
        return format_ts(now.wall_at(mono_ns))
    return ts


def retention_dating(
    db: sqlite_utils.Database, boots: list[str], now: ClockReading | None, boot_id: str
) -> Callable[[str, tuple[str, int] | None], str]:
    """How retention dates a ledger's stamps (``held_dated``), those of ``boots`` written
    before NTP set the clock by their boots' offsets, a boot never dated by the bound
    ``kiosk.dating.retention_offsets`` gives it (``now``: the log's clock read now,
    ``boot_id``: this boot's)."""
    offsets = retention_offsets(db, boots, boot_offsets(db, boots), now, boot_id)

    def dated(ts: str, held: tuple[str, int] | None) -> str:
        return held_dated(ts, held, offsets, now, boot_id)

    return dated


def dated_stamps(
    log: Readable,
    stamps: list[Stamp],
    now: ClockReading | None = None,
    boot_id: str = "",
) -> list[tuple[str, str]]:
    """``(dated_ts, dating)`` of each stamp, as ``dated`` gives an event's: ``ts`` and
    ``clock`` when its clock was synchronised; one written before NTP stepped the clock at
    its boot's offset (``boot``: the boot recorded a synchronised event since) or, for this
    boot (``boot_id``) with ``now`` synchronised, by the monotonic time since; else ``ts``
    and ``unsynced`` (what a clock never set said: to be shown as such). One query for the
    boots of the unsynchronised ones."""
    boots = sorted({s.boot_id for s in stamps if not s.synced})
    offsets = boot_offsets(log.reader(), boots)
    out: list[tuple[str, str]] = []
    for stamp in stamps:
        if stamp.synced:
            out.append((stamp.ts, "clock"))
        elif stamp.boot_id in offsets:
            out.append((offset_time(offsets[stamp.boot_id], stamp.mono_ns), "boot"))
        elif now is not None and now.synced and stamp.boot_id == boot_id:
            out.append((format_ts(now.wall_at(stamp.mono_ns)), "boot"))
        else:
            out.append((stamp.ts, "unsynced"))
    return out


@dataclass(frozen=True)
class AuditNote:
    actor: str
    ts: str
    detail: dict[str, Any]
    #: the row's clocks, for ``dated_stamps`` (None: not read)
    stamp: Stamp | None = None


def audits_since(
    log: Readable, action: str, since: str | Since, limit: int = 1000
) -> list[AuditNote]:
    """Audit rows of one ``action`` at or after ``since``, oldest first, detail decoded. A
    ``Since``: also those stamped before NTP stepped the clock that were written since
    (``_HAPPENED_UNSYNCED``), as ``first_seq_happened_since`` reads events."""
    if isinstance(since, str):
        since = Since(since, 2**62, "", 2**62)  # by the stamp alone
    args = {"action": action, "ts": since.ts, "limit": _limit(limit)}
    args |= {"mono": since.mono_ns, "boot": since.boot_id, "ms": since.ms}
    return _audit_notes(log.reader().query(_AUDITS_SINCE_SQL, args))


def audits_after(
    log: Readable, action: str, after_seq: int, limit: int = 1000
) -> list[tuple[int, AuditNote]]:
    """Audit rows of one ``action`` after the audit ``seq`` ``after_seq``, oldest first, each
    with its ``seq``, its detail decoded and its clocks (``AuditNote.stamp``)."""
    rows = list(
        _rows(
            log,
            "SELECT seq, actor, ts, detail, boot_id, mono_ns, clock_synced FROM audit"
            " WHERE action = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            [action, int(after_seq), _limit(limit)],
        )
    )
    return list(zip((int(r["seq"]) for r in rows), _audit_notes(iter(rows)), strict=True))


def _audit_notes(rows: Iterator[dict[str, Any]]) -> list[AuditNote]:
    """Audit rows with their ``detail`` decoded (``kiosk.unreadable.decode_json``): one that
    cannot be read, or that is no object (a hand edit), is empty."""
    out = []
    for row in rows:
        detail = decode_json(dict(row), ("detail",))["detail"]
        if not isinstance(detail, dict):
            detail = {}
        note = AuditNote(str(row["actor"]), str(row["ts"]), detail, Stamp.of(row))
        out.append(note)
    return out


def list_rows(log: Readable, limit: int = 500) -> dict[str, list[dict[str, Any]]]:
    """The three lists as stored (``quarantine``, ``revocations``, ``households``)."""
    db = log.reader()
    return {
        name: list(db[table].rows_where(order_by=order, limit=_limit(limit)))
        for name, (table, order) in LIST_TABLES.items()
    }


#: The log's head and the decisions by reason (``decision_tally``, kept with each commit),
#: in one statement: one snapshot, so the head is the last event the counts include.
_TALLY_SQL = (
    "SELECT 1 AS head, '' AS decision, '' AS reason, coalesce(max(seq), 0) AS n FROM events"
    " UNION ALL SELECT 0, decision, reason, n FROM decision_tally"
)


def decision_counts(log: Readable) -> tuple[int, list[tuple[str, str, int]]]:
    """``(head seq, [(decision, reason, count), ...])`` over the whole log up to the head: the
    tally the log keeps with each commit (``kiosk.store``'s ``decision_tally``), a few rows
    however long the log (the metrics' counts, from the first scrape after a restart)."""
    head = 0
    counts = []
    for r in _rows(log, _TALLY_SQL, []):
        if r["head"]:
            head = int(r["n"])
        else:
            counts.append((str(r["decision"]), str(r["reason"]), int(r["n"])))
    return head, counts


def event_by_seq(log: Readable, seq: int) -> dict[str, Any] | None:
    """One event by its ``seq``, decoded; None when there is none."""
    if isinstance(seq, bool) or not 0 < int(seq) < 2**63:
        return None
    rows = list(_rows(log, "SELECT * FROM events WHERE seq = ?", [int(seq)]))
    return decode_event_row(rows[0]) if rows else None


def last_audit_seq(log: Readable, action: str) -> int:
    """The audit ``seq`` of the latest row of ``action`` (0: none)."""
    rows = _rows(log, "SELECT coalesce(max(seq), 0) AS seq FROM audit WHERE action = ?", [action])
    return int(next(rows)["seq"])


def purged_seqs(log: Readable, seqs: Iterable[int]) -> set[int]:
    """Which of the events ``seqs`` retention has purged (their personal fields nulled)."""
    wanted = json.dumps(sorted({int(s) for s in seqs}))
    rows = _rows(
        log,
        "SELECT seq FROM events WHERE purged_at IS NOT NULL"
        " AND seq IN (SELECT value FROM json_each(?))",
        [wanted],
    )
    return {int(row["seq"]) for row in rows}


def override_of(log: Readable, seq: int) -> dict[str, Any] | None:
    """The guard's decision about the passage ``seq`` (the first event after it flagged
    ``overrides:<seq>``), decoded; None when no guard has decided it."""
    if isinstance(seq, bool) or not 0 < int(seq) < 2**63:
        return None
    rows = _rows(
        log,
        "SELECT * FROM events WHERE seq > ? AND flags LIKE ? ORDER BY seq LIMIT 1",
        [int(seq), f'%"overrides:{int(seq)}"%'],
    )
    found = next(rows, None)
    return decode_event_row(found) if found else None


def not_opened_sql(households: int = 0, limited: bool = False) -> str:
    """The rows after seq ? saying the gate did not open for a pass (``kiosk.links``), in
    seq order; of ``households`` households when not 0 (``?`` each), the first ``?`` when
    ``limited``. A search of an index (``events_not_opened``: ``kiosk.store``'s
    ``m007_not_opened_rows``; or the household's), never a walk of every row after it."""
    some = f" AND household IN ({', '.join('?' * households)})" if households else ""
    limit = " LIMIT ?" if limited else ""
    return f"SELECT * FROM events WHERE seq > ? AND {NOT_OPENED_ROWS}{some} ORDER BY seq{limit}"  # noqa: S608


def not_opened_after(
    db: sqlite_utils.Database,
    after: int,
    households: Sequence[str] = (),
    limit: int | None = None,
) -> dict[int, dict[str, Any]]:
    """The passes that rows after seq ``after`` say the gate did not open for (the one query
    for them, ``not_opened_sql``), each with the first such row (raw): only the rows of
    ``households`` when given, only the first ``limit`` rows when given. Nobody went
    through on those passes."""
    args: list[Any] = [int(after), *households] + ([] if limit is None else [limit])
    found: dict[int, dict[str, Any]] = {}
    for row in db.query(not_opened_sql(len(households), limit is not None), args):
        flags = decode_json({"flags": row["flags"]}, ("flags",))["flags"]  # damaged: none
        seq = not_opened(flags if isinstance(flags, list) else ())
        if seq is not None:
            found.setdefault(seq, row)
    return found


def not_opened_for(log: Readable, seq: int) -> dict[str, Any] | None:
    """The row saying the gate did not open for the pass ``seq`` (the first event after it,
    a ``deny`` flagged ``not_opened:<seq>``: ``kiosk.links``), decoded; None when the gate
    opened for it (or it is no pass)."""
    if isinstance(seq, bool) or not 0 < int(seq) < 2**63:
        return None
    found = not_opened_after(log.reader(), int(seq)).get(int(seq))
    return decode_event_row(found) if found else None


def not_let_through(log: Readable, events: Iterable[Mapping[str, Any]]) -> set[int]:
    """The ``seq`` of each pass among ``events`` the gate did not open for (a later row
    names it: ``not_opened:<seq>``, ``kiosk.links``; ``not_opened_for`` for one): nobody was
    let through on it. One query, from the first of them on (none without a pass)."""
    passes = {int(e["seq"]) for e in events if e.get("decision") == "pass" and e.get("seq")}
    if not passes:
        return set()
    return passes & set(not_opened_after(log.reader(), min(passes)))


def fevers_decided(log: Readable, events: Iterable[Mapping[str, Any]]) -> set[int]:
    """The ``seq`` of each row a guard's decision among ``events`` is about
    (``overrides:<seq>``) that the gate judged a fever (``kiosk.links.judged_fever``): a
    decision carrying that row's reading is judged one too. Such a row among ``events`` is
    read there, the others in one query by their ``seq`` (none when no decision is about a
    row elsewhere)."""
    rows = list(events)
    about = {s for e in rows if (s := overridden(e.get("flags") or ())) is not None}
    found = [e for e in rows if e.get("seq") in about]
    elsewhere = about - {int(e["seq"]) for e in found}
    if elsewhere:
        found += _rows(
            log,
            "SELECT seq, reasons, flags, temp_object_c FROM events"
            " WHERE seq IN (SELECT value FROM json_each(?))",
            [json.dumps(sorted(elsewhere))],
        )
    return {int(r["seq"]) for r in found if judged_fever(r)}


#: The audit row of a decision made from the guard's form whose one-time token is ``?``.
FORM_ACTED_SQL = f"SELECT action FROM audit WHERE {FORM_ONCE_ROWS} AND {FORM_ONCE_SQL} = ? LIMIT 1"  # noqa: S608


def form_acted(log: Readable, token: str) -> str | None:
    """The action a decision made from the guard's form ``token`` (its ``once`` field)
    recorded, or None when none is on record: one probe of the index ``audit_form_once``.
    ``StoreFault`` when the log cannot be read."""
    try:
        rows = list(_rows(log, FORM_ACTED_SQL, [token]))
    except sqlite3.Error as exc:
        raise StoreFault(
            "store_fault", f"cannot read the audit log ({type(exc).__name__})"
        ) from exc
    return str(rows[0]["action"]) if rows else None


def last_passage(log: Readable) -> dict[str, Any] | None:
    """The newest kiosk passage (``kind = 'passage'``, not a guard's entry), decoded."""
    rows = list(
        _rows(log, "SELECT * FROM events WHERE kind = 'passage' ORDER BY seq DESC LIMIT 1", [])
    )
    return decode_event_row(rows[0]) if rows else None


def _like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_text(text: str) -> str:
    """What a visitor search for ``text`` looks for: read as typed (``kiosk.typed``: a
    full-width ``１３８０`` and a circled ``⑬`` are digits, ``1380`` and ``13``), bounded. A
    caller deciding anything by its digits decides it on this, not on ``text``."""
    return typed(text[:200])[:40]


#: A registration's name and phone (``past_visitors``), NULL where its stored person is not
#: JSON (``kiosk.unreadable.json_field``): such a row is nobody's by name or phone, never the
#: search's ``malformed JSON``.
_VISITOR_NAME = json_field("person", "$.name")
_VISITOR_PHONE = json_field("person", "$.phone")


def past_visitors(
    log: Readable, text: str, limit: int = 20, *, since: str | Since = ""
) -> list[dict[str, Any]]:
    """Earlier registrations of people (``kind = 'registration'``) whose name contains
    ``text``, or, when ``text`` is 3 to 11 digits, whose phone number ends with it; newest
    first, one per name and phone (the latest), decoded. Purged records (no person) are
    not found. ``text`` is read as typed by a Chinese input method too (``kiosk.typed``:
    full-width ``１３８０`` is ``1380``), as the record keeps it. ``since`` (the retention
    cutoff, as ``ts`` or a ``Since``, which counts those stamped before NTP stepped the
    clock by when they happened): only the rows from the first since then are read, those
    that can still hold a person (a year of purged rows would be walked for each search)."""
    wanted = search_text(text)
    if not wanted:
        return []
    if isinstance(since, Since):
        first = first_seq_happened_since(log, since)
    else:
        first = first_seq_since(log, since)
    if first is None:  # nothing since the cutoff: no record holds a person any more
        return []
    digits = wanted if wanted.isdigit() and 3 <= len(wanted) <= 11 else ""
    sql = (
        "SELECT * FROM events WHERE seq >= ? AND kind = 'registration'"  # noqa: S608
        f" AND person IS NOT NULL AND ({_VISITOR_NAME} LIKE ? ESCAPE '\\' OR (? != '' AND "
        f"replace(replace({_VISITOR_PHONE}, ' ', ''), '-', '') LIKE ? ESCAPE '\\')"
        ") ORDER BY seq DESC LIMIT ?"
    )
    params: list[Any] = [first, f"%{_like(wanted)}%", digits, f"%{_like(digits)}"]
    params.append(_limit(limit * 10))
    events = (decode_event_row(row) for row in _rows(log, sql, params))
    return list(islice(firsts(events, _name_and_phone), _limit(limit)))


def _name_and_phone(event: dict[str, Any]) -> tuple[str, str]:
    found = event.get("person")
    person: dict[str, Any] = found if isinstance(found, dict) else {}
    return (str(person.get("name") or ""), str(person.get("phone") or ""))


def issued_passes(log: Readable, limit: int = 2000) -> list[AuditNote]:
    """The passes issued at the guard console (audit rows ``pass_issued`` with the pass's
    fields), newest first. Rows whose detail retention purged have no holder any more."""
    rows = _rows(
        log,
        "SELECT actor, ts, boot_id, mono_ns, clock_synced, detail FROM audit"
        " WHERE action = 'pass_issued' "
        "ORDER BY seq DESC LIMIT ?",
        [_limit(limit)],
    )
    return [n for n in _audit_notes(rows) if isinstance(n.detail, dict) and n.detail.get("pass_id")]


def revoked_pass_ids(log: Readable) -> dict[str, str]:
    """Pass id → when it was revoked, for every pass on the revocation list."""
    rows = _rows(log, "SELECT pass_id, revoked_at FROM list_revocations", [])
    return {str(r["pass_id"]): str(r["revoked_at"] or "") for r in rows}
