"""Shifts per gate, who is on duty, and the handover between two guards.

A shift is a guard at a gate (the gate is the kiosk id) from ``starts_at`` to ``ends_at``.
``on_duty(gate)`` is who holds a shift now: the console shows it.

At handover the outgoing guard opens a handover to the incoming one. Its summary covers the
time since the outgoing guard's shift began (or since the last handover at that gate, if that
is later or was opened just before the shift, by a guard handing over early): open alarms,
feverish people, quarantine returns and breach attempts, the guards' overrides, new
returnees, registrations, vehicles and open service requests; counts, not names, so the
record can stay after a purge. Both guards acknowledge it (each by name, in either order);
only then is it complete. Every step is audited.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import sqlite_utils

from .accounts import ACCOUNT_SINCE
from .auditing import audited_write
from .categories import FEVER_COLUMNS, FeverishPeople, columns_or_null
from .clock import Clock, ClockReading
from .community import CommunityError, check_actor, clean_text, has_table, record_dict, row_by_id
from .dating import dated_source
from .days import FIRST_DAY, LAST_DAY, day_start, span_on
from .files import streamed_rows
from .links import (
    OVERRIDES,
    OVERRIDING,
    REPEATS_ROWS,
    decision_before,
    guard_decision,
    overridden,
)
from .observation import registered_between
from .queries import Stamp, clock_of, dated_stamps, read_clocks, stamps_of
from .schema import sql_migrations
from .store import HANDOVER_GRACE, StoreFault, format_ts

if TYPE_CHECKING:
    from .community import LogLike

__all__ = [
    "CLOCK_NOT_SET",
    "HANDOVER_GRACE",
    "MIGRATIONS",
    "Handover",
    "Roster",
    "Shift",
    "ShiftGone",
    "ShiftOutOfReach",
    "ShiftMark",
    "UnreadableRow",
    "barred_from",
    "session_end",
    "staffed_stretches",
    "summary_since",
]

_logger = logging.getLogger(__name__)

MAX_SHIFT = timedelta(hours=24)
#: The earliest a shift starts (``Roster.add_shift``): the first of the days a person may type
#: (``kiosk.days.FIRST_DAY``), in UTC.
FIRST_SHIFT = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
#: How long the log keeps a removal's detail when the roster is not told
#: (``kiosk.config.store``'s default ``retention_days``).
DEFAULT_RETENTION = timedelta(days=30)
#: Removals' rows that cannot be read remembered as logged (``Roster._readable``).
UNREADABLE_KEPT = 1000
#: How long after the end of a shift its guard may still open the handover (the incoming
#: guard arrives at the shift change, not before it): ``kiosk.store.HANDOVER_GRACE``, whose
#: retention purge keeps a removal's detail as long as it bars.
#: A guard signing in this long before a shift (or a span of staffed hours) begins is signed
#: in for it: the night guard arriving at 19:50 for 20:00.
SIGN_IN_LEAD = timedelta(hours=1)
#: The longest a guard's session lasts, whatever the roster and the hours say.
SESSION_CAP = MAX_SHIFT
#: A handover asked for while the clock is not synchronised and no shift covers what it says
#: (a Pi without a battery-backed clock reads 1970 until NTP answers): not "off duty".
CLOCK_NOT_SET = (
    "the clock is not set yet (no network time since the start), so the shifts cannot be"
    " told: open the handover once it is set"
)

#: The index of a guard's removals (``Roster.barred``, ``_ROSTER_OF``): only rows whose detail
#: is JSON, which a read of them asks for too (``json_valid`` first: one that is not names no
#: guard and bars nobody, never a "malformed JSON" on every request of a guard's console).
_REMOVALS_INDEX = """
    CREATE INDEX audit_shift_removals ON audit (
        json_extract(detail, '$.guard'), json_extract(detail, '$.ends_at')
    ) WHERE action = 'roster.shift_remove' AND json_valid(detail)
    """

MIGRATIONS = sql_migrations(
    "kiosk.roster",
    m001_roster="""
    CREATE TABLE roster_shifts (
        id INTEGER PRIMARY KEY, gate TEXT, guard TEXT, starts_at TEXT, ends_at TEXT,
        created_by TEXT
    );
    CREATE INDEX idx_roster_shifts_gate_starts_at ON roster_shifts (gate, starts_at);
    CREATE TABLE handovers (
        id INTEGER PRIMARY KEY, gate TEXT, outgoing TEXT, incoming TEXT, since TEXT,
        opened_at TEXT, summary TEXT, outgoing_ack_at TEXT, incoming_ack_at TEXT
    );
    CREATE INDEX idx_handovers_gate_opened_at ON handovers (gate, opened_at);
    """,
    # The boot and monotonic time of each stamp written on an unsynchronised clock (JSON,
    # ``{"opened_at": [boot_id, mono_ns], ...}``): dated as an event is (``Handover.stamps``).
    m002_handover_clocks="ALTER TABLE handovers ADD COLUMN clocks TEXT",
    # A guard's shift removals by the end of the shift: every request of a guard's console
    # reads those that may bar it (``Roster.barred``), not every removal ever made. Only rows
    # whose detail is JSON (``_REMOVALS_INDEX``): one edited by hand into anything else
    # failed this migration, so a log holding one did not open.
    m003_shift_removals=_REMOVALS_INDEX,
    # The index as m003 made it before it held only JSON rows, made again: with it, a
    # removal's detail edited by hand (a personal field) into text that is not JSON was
    # refused by the store ("malformed JSON") instead of being skipped.
    m004_shift_removals_json=f"DROP INDEX IF EXISTS audit_shift_removals; {_REMOVALS_INDEX}",
)

#: A handover's stamps, in the order it gets them.
STAMPS = ("since", "opened_at", "outgoing_ack_at", "incoming_ack_at")
#: A shift as a guard's session was tied to it at sign-in (``Shift.mark``): its id, start
#: and end (Unix seconds). The roster holding another under that id with no removal on
#: record (its times changed in place) takes it off as a removal does (``Roster.barred``).
ShiftMark = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Shift:
    id: int
    gate: str
    guard: str
    starts_at: datetime
    ends_at: datetime

    def covers(self, when: datetime) -> bool:
        return self.starts_at <= when < self.ends_at

    @property
    def mark(self) -> ShiftMark:
        return (self.id, int(self.starts_at.timestamp()), int(self.ends_at.timestamp()))

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


@dataclass(frozen=True, slots=True)
class ShiftGone:
    """A shift of a guard taken off the roster that bars a sign-in (``Roster.barred``): its
    ``mark``, and who removed it and when (its ``roster.shift_remove`` audit row; both None
    when no row says: its times changed in place). ``ends``: when the sign-in may act no
    longer, at the start of the shift's span and the handover's hour after it that the
    guard's shifts on the roster do not hold (a later back-to-back shift removed: the end
    of the one under way's handover hour); the sign-in's moment when that is now: refused,
    or over. ``until``: when that stretch ends (``barred_from``; the removed shifts' that
    follow on joined): from then the guard signs in again (the lead of her next shift, or
    the end of the removed one's handover hour). ``account``: the account of the guard's
    name it bars (``kiosk.accounts.ACCOUNT_SINCE`` when it was found: a bar kept through a
    roster fault is not a later account's of that name); None when not known."""

    mark: ShiftMark
    by: str | None
    at: datetime | None
    ends: datetime
    until: datetime
    account: int | None = None


@dataclass(frozen=True, slots=True)
class Handover:
    id: int
    gate: str
    outgoing: str
    incoming: str
    since: datetime
    opened_at: datetime
    summary: Mapping[str, int]
    outgoing_ack_at: datetime | None
    incoming_ack_at: datetime | None
    #: ``[boot_id, mono_ns]`` of each stamp written on an unsynchronised clock
    clocks: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.outgoing_ack_at is not None and self.incoming_ack_at is not None

    def stamps(self) -> dict[str, Stamp]:
        """Each stamp it has, on both clocks (``kiosk.queries.dated_stamps`` dates them): one
        without its clocks (synchronised when written, a shift's start, a row from before
        they were kept) is taken as it reads."""
        return stamps_of(self, STAMPS, self.clocks)

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, omit=("clocks",)) | {"complete": self.complete}


class UnreadableRow(CommunityError):
    """A row of the roster's tables that cannot be read (edited by hand: a time that is no
    time, a field missing): ``kind`` (``shift``, ``handover``) and ``row_id`` (None when its
    id is no number) say which, never what it holds."""

    def __init__(self, kind: str, row_id: int | None) -> None:
        self.kind, self.row_id = kind, row_id
        said = "?" if row_id is None else row_id
        super().__init__(
            f"{kind} {said} cannot be read (a row edited by hand): fix it in the store"
        )


class ShiftOutOfReach(CommunityError):
    """A stored shift dated outside the days a shift is rostered (``Roster.add_shift``:
    before ``FIRST_SHIFT``, or ending further ahead than the log keeps a removal): a row from
    before that rule, or edited by hand. ``row_id`` says which; the page names it to an admin
    when it does not list it (``Roster.unshown_shifts``, ``Roster.listed_shifts``)."""

    def __init__(self, shift: Shift, days: int) -> None:
        self.kind, self.row_id = "shift", shift.id
        when = f"{shift.starts_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        super().__init__(
            f"shift {shift.id} ({shift.guard}, {when}) is outside the days a shift is"
            f" rostered ({FIRST_DAY} to {days} days ahead): the page does not show it"
        )


def _text(value: Any) -> str:
    """A stored text field; ``ValueError`` for one missing or not text."""
    if not isinstance(value, str) or not value:
        raise ValueError("a field missing")
    return value


_Row = TypeVar("_Row")


def _read_row(kind: str, r: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], _Row]) -> _Row:
    """``parse(r)``; ``UnreadableRow`` naming the row when its values are not what was
    written."""
    try:
        return parse(r)
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        row_id = r.get("id")
        raise UnreadableRow(kind, row_id if isinstance(row_id, int) else None) from None


def _shift_of(r: Mapping[str, Any]) -> Shift:
    starts, ends = _aware(r["starts_at"]), _aware(r["ends_at"])
    if not timedelta(0) < ends - starts <= MAX_SHIFT:  # as ``Roster.add_shift`` writes one
        raise ValueError("a shift ends after it starts, within MAX_SHIFT")
    return Shift(int(r["id"]), _text(r["gate"]), _text(r["guard"]), starts, ends)


def _shift(r: Mapping[str, Any]) -> Shift:
    """A ``roster_shifts`` row; ``UnreadableRow`` for one that is not a shift."""
    return _read_row("shift", r, _shift_of)


def _summary(text: Any) -> dict[str, int]:
    found = json.loads(text)
    if not isinstance(found, dict):
        raise ValueError("a summary is a JSON object")
    return found


def _handover_of(r: Mapping[str, Any]) -> Handover:
    acks = [None if not r[k] else _aware(r[k]) for k in ("outgoing_ack_at", "incoming_ack_at")]
    return Handover(
        int(r["id"]),
        _text(r["gate"]),
        _text(r["outgoing"]),
        _text(r["incoming"]),
        _aware(r["since"]),
        _aware(r["opened_at"]),
        _summary(r["summary"]),
        acks[0],
        acks[1],
        read_clocks(r.get("clocks"), STAMPS),
    )


def _handover(r: Mapping[str, Any]) -> Handover:
    """A ``handovers`` row; ``UnreadableRow`` for one that is not a handover."""
    return _read_row("handover", r, _handover_of)


#: A row's kind, but none for the deny written after a registration (``links.repeats``).
_ONCE = f"(case when {REPEATS_ROWS} then null else kind end)"


def _count(db: sqlite_utils.Database, table: str, where: str, args: list[Any]) -> int:
    if not (has_table(db, table) or table in db.view_names()):
        return 0
    sql = f"select count(*) from [{table}] where {where}"  # noqa: S608 - module constants
    return int(db.execute(sql, args).fetchone()[0])


def _feverish(db: sqlite_utils.Database, events: str, window: str, args: list[Any]) -> int:
    """Feverish people in the window, as the daily report counts them
    (``categories.FeverishPeople``: each person once however often refused, a car's feverish
    occupants each)."""
    sql = (
        f"select {columns_or_null(db, FEVER_COLUMNS)} from {events} where {window}"  # noqa: S608
        " and reasons like '%\"fever\"%' order by seq"
    )
    people = FeverishPeople()
    with streamed_rows(db, sql, args) as rows:  # a shift's, or days' (a handover missed)
        for row in rows:
            people.add(row)
    return people.total


#: The kiosk stopped a resident of a quarantined household (the ``quarantine_breach`` alarm):
#: not one who said "coming home" on the screen (``direction_unverified``: a return the
#: guard looks at, ``quarantine_return``).
_BREACH = (
    "decision = 'deny' and reasons like '%\"quarantined\"%'"
    " and coalesce(flags, '') not like '%\"direction_unverified\"%'"
)


def _overrides(db: sqlite_utils.Database, events: str, window: str, args: list[Any]) -> int:
    """The guards' decisions in the window that overrode the kiosk's (``links.OVERRIDING``: a
    deny let through, a pass stopped), each told by the passage's decision just before it, as
    the day report tells them (``links.decision_before``: a pass the gate did not open for is
    a deny by then)."""
    sql = (
        f"select kiosk_id, seq, decision, flags from {events} where {window}"  # noqa: S608
        f" and decision like 'manual%' and flags like '%{OVERRIDES}%'"
    )
    found = 0
    with streamed_rows(db, sql, args) as rows:
        for row in rows:
            about = overridden(_decoded(row["flags"]))
            if about is None:
                continue
            before = decision_before(db, str(row["kiosk_id"]), about, int(row["seq"]))
            found += guard_decision(row["decision"], before) in OVERRIDING
    return found


#: Passed going in: someone came through the gate into the compound.
_CAME_IN = "direction = 'in' and decision in ('pass', 'manual_pass')"


def _decoded(text: str | None) -> list[str]:
    return json.loads(text) if text else []


def _quarantined(flags: list[str], reasons: list[str]) -> bool:
    return "quarantine" in flags or "quarantined" in reasons


def _quarantine_returns(
    db: sqlite_utils.Database, events: str, window: str, args: list[Any]
) -> int:
    """Residents of a quarantined household who came home: passages in that passed, flagged
    ``quarantine`` themselves or a guard's pass over a passage the kiosk flagged or stopped as
    quarantined (``overrides:<seq>``; the kiosk's deny and the guard's pass are one return,
    and a guard's word on a passage that had already passed in is no second one). A deny (a
    fever, a refused registration) or a way out is not a return."""
    if not has_table(db, "events"):
        return 0
    sql = f"select flags, reasons from {events} where {window} and {_CAME_IN}"  # noqa: S608
    with streamed_rows(db, sql, args) as rows:  # a shift's, or days' (a handover missed)
        return sum(_returned(db, row) for row in rows)


def _returned(db: sqlite_utils.Database, row: dict[str, Any]) -> bool:
    """Whether the passage ``row`` (its ``flags`` and ``reasons``) is a return
    (``_quarantine_returns``)."""
    flags, reasons = _decoded(row["flags"]), _decoded(row["reasons"])
    over = [f.split(":", 1)[1] for f in flags if f.startswith("overrides:")]
    base = None
    if over and over[0].isdigit():
        base = db.execute(
            f"select flags, reasons, {_CAME_IN} from events where seq = ?",  # noqa: S608
            [int(over[0])],
        ).fetchone()
    if base is not None and base[2]:
        return False  # the passage it is about came in already: counted there
    return _quarantined(flags, reasons) or (
        base is not None and _quarantined(_decoded(base[0]), _decoded(base[1]))
    )


def staffed_stretches(
    windows: Iterable[tuple[time, time]], tz: ZoneInfo, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The spans of staffed hours (local times of day, one may cross midnight) as UTC
    stretches, from the day before ``now``'s local day to two days after it. Each span is one
    guard's stretch (08:00-20:00 and 20:00-08:00 are a day and a night shift, not one of 24
    hours); only spans meeting at midnight are one (20:00-00:00 and 00:00-08:00, as hours were
    written before a span could cross midnight)."""
    today = now.astimezone(tz).date()
    out: list[tuple[datetime, datetime]] = []
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        out.extend(span_on(day, span, tz) for span in windows)
    joined: list[tuple[datetime, datetime]] = []
    for begins_at, ends_at in sorted(out):
        midnight = begins_at == day_start(begins_at.astimezone(tz).date(), tz)
        if joined and midnight and joined[-1][1] == begins_at:
            joined[-1] = (joined[-1][0], ends_at)
        else:
            joined.append((begins_at, ends_at))
    return joined


def _held(
    stretches: Iterable[tuple[datetime, datetime]], now: datetime, *, join: bool
) -> list[tuple[datetime, datetime]]:
    """The stretches that hold ``now`` or begin within ``SIGN_IN_LEAD`` of it (at 19:50 the
    day's span still holds and the night's begins: the guard signing in is the night's),
    with ``join`` carried on through those that begin before the latest end (one guard's
    back-to-back shifts)."""
    held: list[tuple[datetime, datetime]] = []
    for start, stop in sorted(stretches):
        end = max((s for _, s in held), default=None)
        if start - SIGN_IN_LEAD <= now < stop or (join and end is not None and start <= end):
            held.append((start, stop))
    return held


def _stretch_end(
    stretches: Iterable[tuple[datetime, datetime]], now: datetime, *, join: bool
) -> datetime | None:
    """The latest end of the stretches ``_held`` at ``now``; None when there is none."""
    return max((stop for _, stop in _held(stretches, now, join=join)), default=None)


def _times(mark: ShiftMark) -> tuple[datetime, datetime]:
    """A shift's start and end as its ``mark`` says them."""
    return datetime.fromtimestamp(mark[1], UTC), datetime.fromtimestamp(mark[2], UTC)


def barred_from(
    removed: tuple[datetime, datetime],
    standing: Iterable[tuple[datetime, datetime]],
    since: datetime | None = None,
) -> tuple[datetime, datetime] | None:
    """The first stretch (from ``since``, else its start) of a removed shift's span and the
    handover's hour after it (``removed``: its start and end) that none of the guard's
    ``standing`` shifts holds, as its first moment and its end: from then to then a sign-in of
    that guard may not act. A shift holds its ``SIGN_IN_LEAD`` before it (the guard signing
    in for it: swapped onto the evening, she signs in at 17:00 for 17:30), itself and the
    handover's hour after it (its later back-to-back shift removed, the one under way's hour
    holds first); the stretch ends where the next standing shift's lead begins, else with
    the removed span. None when they hold all of it. One guard's shifts never overlap
    (``Roster.add_shift``), so the holds in order of start are in order of end too."""
    start, end = removed
    stop = end + HANDOVER_GRACE
    holds = sorted((begins - SIGN_IN_LEAD, ends + HANDOVER_GRACE) for begins, ends in standing)
    at = start if since is None else max(start, since)
    for opens, closes in holds:
        if opens <= at < closes:
            at = closes
    if at >= stop:
        return None
    return at, min([opens for opens, _ in holds if opens > at] + [stop])


#: Shifts at a gate overlapping a span (``_overlapping``), by the roster's gate and start:
#: those starting from ``MAX_SHIFT`` before the span (no shift is longer: one starting
#: earlier has ended by then) to its end, not a scan of the roster's whole history (never
#: purged: staff records).
_OVERLAPPING = "gate = ? and starts_at >= ? and starts_at < ? and ends_at > ?"


def _overlapping(gate: str, start: datetime, end: datetime) -> list[str]:
    """The arguments of ``_OVERLAPPING`` for the shifts at ``gate`` overlapping
    ``[start, end)``."""
    return [gate, format_ts(start - MAX_SHIFT), format_ts(end), format_ts(start)]


#: A guard's removals (audit rows, the newest first) made since her account began (its
#: ``ACCOUNT_SINCE``, the ``account`` row: what was removed before was another account's of
#: that name) and shifts around a sign-in's lifetime, and (``_MARKED``) the shifts of its ids
#: as they are now: one read (``Roster.barred``), by the indexes ``audit_shift_removals``
#: (``m003_shift_removals``: the guard's removals of shifts not over an hour ago, not every
#: removal ever made), ``audit_action`` (the names' removals), the roster's gate and start
#: (``_OVERLAPPING``), and its ids.
_ROSTER_OF = (
    "select * from (select 'removed', actor, ts, json_extract(detail, '$.shift_id'),"  # noqa: S608
    " json_extract(detail, '$.starts_at'), json_extract(detail, '$.ends_at'), ?"
    " from audit where action = 'roster.shift_remove' and json_valid(detail)"
    " and json_extract(detail, '$.gate') = ? and json_extract(detail, '$.guard') = ?"
    " and json_extract(detail, '$.ends_at') > ? and json_extract(detail, '$.starts_at') < ?"
    # ``+seq``: the guard's removals by their index, then those of her account kept.
    f" and +seq > {ACCOUNT_SINCE} order by seq desc limit 100)"
    f" union all select 'account', null, null, {ACCOUNT_SINCE}, null, null, null"
    " union all select 'standing', null, null, id, starts_at, ends_at, guard"
    f" from roster_shifts where guard = ? and {_OVERLAPPING}"
)
_MARKED = (
    " union all select 'marked', null, null, id, starts_at, ends_at, guard"
    " from roster_shifts where id in ({})"
)


#: A stored time as ``format_ts`` writes it begins with its date (``_TIMELESS``).
_DATED = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*'"
#: A gate's shifts whose times are no times (``Roster.timeless_shifts``).
_TIMELESS = (
    "select * from roster_shifts where gate = ? and not"  # noqa: S608 - module constants
    f" (coalesce(starts_at, '') glob {_DATED} and coalesce(ends_at, '') glob {_DATED})"
    " order by id limit ?"
)
#: The most of them the roster's page names.
TIMELESS_SHOWN = 50
#: A gate's dated shifts that may be outside the days a shift is rostered
#: (``Roster.unshown_shifts``): its arguments the gate and bounds of the start a day inside
#: those days (a stored time's offset; the later less ``MAX_SHIFT``, no shift is longer),
#: each row then judged as read. By the roster's gate and start: two ranges of the index,
#: not the roster's whole history.
_UNSHOWN = (
    "select * from roster_shifts where gate = ?"  # noqa: S608 - module constants
    f" and starts_at glob {_DATED} and ends_at glob {_DATED}"
    " and (starts_at < ? or starts_at > ?) order by id limit ?"
)


#: The roster's page lists a gate's shifts from a day back (``FIRST_SHIFT`` at the earliest)
#: to those starting a day before ``kiosk.days.LAST_DAY`` (the last day a form sends back: its
#: Remove button's), at most this many by start (``Roster.listed_shifts``); it says how many
#: more there are.
SHIFTS_LISTED = 200
_LISTED_BACK = timedelta(hours=24)
_LISTED_END = datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, tzinfo=UTC) - MAX_SHIFT


#: Later than any shift a row can hold that is read (``_aware``): no bound.
_LAST_TIME = datetime(9999, 12, 1, tzinfo=UTC)

#: How far from a stored time the roster reckons (a handover's hour, a site's offset, a
#: day's start): a time nearer the calendar's edge than this is no time of the roster's.
_REACH = timedelta(days=1)


def _aware(value: Any) -> datetime:
    """A stored time as written (ISO 8601 with its offset); ``ValueError`` for anything else,
    ``OverflowError`` for one at the calendar's edge (9999-12-31, 0001-01-01: a row edited
    by hand) whose UTC time, or a day either side of it, is no date: read, it would fail
    later, on the roster's page, a sign-in, a handover's stamps."""
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError("a stored time without its offset")
    utc = when.astimezone(UTC)
    _ = (utc - _REACH, utc + _REACH)  # OverflowError at the calendar's edge
    return when


def _row_times(
    shift_id: Any, starts: Any, ends: Any, stamp: Any
) -> tuple[tuple[datetime, datetime], ShiftMark, datetime | None]:
    """A roster row's shift times, mark and stamp (a removal's time; None: none) for
    ``Roster.barred``. ``StoreFault`` for a row whose values are not (a removal's audit row
    edited by hand: its detail is a personal field, so rewritable): read as a roster that
    cannot be read, the last answer standing, never a server error on every request of the
    guard's console, nor a bar lifted."""
    try:
        times = (_aware(starts), _aware(ends))
        mark = (int(shift_id), int(times[0].timestamp()), int(times[1].timestamp()))
        return times, mark, None if stamp is None else _aware(stamp)
    except (TypeError, ValueError, OverflowError):
        raise StoreFault("store_fault", "a row of the roster cannot be read") from None


def _removal(shift: Shift) -> dict[str, Any]:
    """A shift removal's audit detail: the shift, whose and when (``Roster.barred``)."""
    return {
        "shift_id": shift.id,
        "gate": shift.gate,
        "guard": shift.guard,
        "starts_at": format_ts(shift.starts_at),
        "ends_at": format_ts(shift.ends_at),
    }


def _newest_first(at: datetime | None) -> tuple[bool, float]:
    """A removal's order among those of one stretch: the newest first, one whose time no row
    says (a shift changed in place) after those named."""
    return (at is None, 0.0 if at is None else -at.timestamp())


def _first_bar(
    removed: Mapping[ShiftMark, tuple[str | None, datetime | None]],
    standing: list[tuple[datetime, datetime]],
    now: datetime,
    until: datetime,
) -> ShiftGone | None:
    """Of the ``removed`` shifts (each with who removed it and when), the one whose stretch
    (``barred_from``, the guard's ``standing`` shifts holding the rest) comes first from
    ``now``, when it begins before ``until``; its ``until`` runs on through the stretches of
    the others that begin by its end (back-to-back shifts removed: one stretch). Of those
    whose stretches are the same (a shift removed, rostered again and removed again: a new
    id), the newest removal is the one named: the one that stands, not the one undone."""
    found = sorted(
        (span, _newest_first(removed[mark][1]), mark)
        for mark in removed
        if (span := barred_from(_times(mark), standing, now)) is not None
    )
    if not found or found[0][0][0] >= until:
        return None
    (at, ends), _, mark = found[0]
    for (begins, stops), _, _ in found[1:]:
        if begins <= ends:
            ends = max(ends, stops)
    by, when = removed[mark]
    return ShiftGone(mark, by, when, at, ends)


def session_end(
    shifts: Iterable[tuple[datetime, datetime]],
    staffed: Iterable[tuple[datetime, datetime]],
    now: datetime,
) -> datetime | None:
    """When the session of a guard signing in at ``now`` ends: at the end of the guard's
    stretch of ``shifts`` (the roster's: this guard's, so back-to-back ones are one), else of
    the ``staffed`` hours' span (``staffed_stretches``: whoever is on duty, so spans that
    follow one another are another guard's), and ``HANDOVER_GRACE`` after it (the
    handover), never more than ``SESSION_CAP`` from ``now``; None when neither holds ``now``
    (the caller's ``web.session_hours`` applies)."""
    end = _stretch_end(shifts, now, join=True) or _stretch_end(staffed, now, join=False)
    return None if end is None else min(end + HANDOVER_GRACE, now + SESSION_CAP)


def summary_since(
    db: sqlite_utils.Database, gate: str, since: datetime, until: datetime, open_alarms: int
) -> dict[str, int]:
    """What happened at ``gate`` in ``[since, until)`` and what is still open at ``until``.
    A window that starts after it ends (a clock stepped back) is refused, not counted as
    zero of everything."""
    if since > until:
        raise ValueError(f"the window starts after it ends: {since} > {until}")
    lo, hi = format_ts(since), format_ts(until)
    events, ts = dated_source(db)  # an event stamped before NTP synced: when it happened
    window = f"kiosk_id = ? and {ts} >= ? and {ts} < ?"
    args: list[Any] = [gate, lo, hi]
    return {
        "open_alarms": open_alarms,
        "fevers": _feverish(db, events, window, args),
        "quarantine_returns": _quarantine_returns(db, events, window, args),
        "quarantine_breaches": _count(db, events, f"{window} and {_BREACH}", args),
        "overrides": _overrides(db, events, window, args),
        "new_returnees": registered_between(db, lo, hi),
        # The deny written after a registration (``links.repeats``) is not another.
        "registrations": _count(db, events, f"{window} and {_ONCE} = 'registration'", args),
        "vehicles": _count(db, events, f"{window} and {_ONCE} = 'vehicle'", args),
        "open_requests": _count(
            db, "service_requests", "state in ('open', 'taken') and opened_at < ?", [hi]
        ),
    }


#: How many of a gate's newest handovers one waiting to be signed is looked for among: one
#: left unsigned further back (a guard who never signed) does not block every later one.
WAITING_AMONG = 10


def _none_waiting(db: sqlite_utils.Database, gate: str, outgoing: str, incoming: str) -> None:
    """Refused while a handover at ``gate`` from ``outgoing`` to ``incoming`` (among its
    ``WAITING_AMONG`` newest) waits to be signed by both: one at a time. Looked at in the
    opening's write transaction: two consoles, or the daemon and an admin's ``kiosk``, at
    the same moment open one."""
    found = db.execute(
        "select id from (select * from handovers where gate = ? order by id desc limit ?)"
        " where outgoing = ? and incoming = ?"
        " and (outgoing_ack_at is null or incoming_ack_at is null) order by id desc limit 1",
        [gate, WAITING_AMONG, outgoing, incoming],
    ).fetchone()
    if found is not None:
        raise CommunityError(f"handover {found[0]} is waiting to be signed")


class Roster:
    """Shifts and handovers on the event log's database."""

    #: Bumped by each shift added or removed here (the console's; the roster's only writer
    #: in the daemon): a guard's session is asked whether the roster lengthens it again only
    #: after a change, or near its end (``ui.auth.GuardAuth.current``).
    changes: int = 0

    def __init__(
        self,
        log: LogLike,
        clock: Clock,
        *,
        open_alarms: Callable[[], Sized] | None = None,
        boot_id: str | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._log = log
        self._clock = clock
        #: how long the log keeps a removal's detail (``store.retention_days``: ``reach``)
        self._retention = retention
        self._open_alarms = open_alarms
        #: this boot's id, as the log stamps its rows (``EventLog.boot_id``)
        self._boot_id = log.boot_id if boot_id is None else boot_id
        #: removals' rows that cannot be read, already logged (``_readable``)
        self._unreadable: set[str] = set()
        #: How many shifts were added or removed through this roster (``changes``).
        self._changes = itertools.count(1)

    def _read_clock(self) -> tuple[ClockReading, list[Any] | None]:
        """The clock now, and what a stamp written now keeps beside it (``clock_of``)."""
        reading = ClockReading.take(self._clock)
        return reading, clock_of(reading, self._boot_id)

    # -- shifts -----------------------------------------------------------------------------

    def add_shift(
        self, gate: str, guard: str, starts_at: datetime, ends_at: datetime, actor: str
    ) -> Shift:
        who = check_actor(actor)
        row = {
            "gate": clean_text("gate", gate, max_len=64),
            "guard": clean_text("guard", guard, max_len=64),
            "created_by": who,
        }
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise CommunityError("shift times need a time zone")
        # In UTC: two local times of one zone subtract as wall-clock times, an hour off
        # across a daylight-saving change.
        starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
        if not timedelta(0) < ends_at - starts_at <= MAX_SHIFT:
            raise CommunityError("a shift ends after it starts, within 24 hours")
        self._within_reach(starts_at, ends_at)
        row |= {"starts_at": format_ts(starts_at), "ends_at": format_ts(ends_at)}

        def add(db: sqlite_utils.Database) -> int | None:
            # Looked for on the single writer: a double tap's other request (another
            # manager's tablet) may have added it meanwhile.
            clash = db.execute(
                "select id from roster_shifts where gate = ? and guard = ? and starts_at < ?"
                " and ends_at > ? order by starts_at, id limit 1",
                [row["gate"], row["guard"], row["ends_at"], row["starts_at"]],
            ).fetchone()
            if clash is not None:
                raise CommunityError(f"{row['guard']} already has shift {clash[0]} then")
            return db.table("roster_shifts").insert(row).last_rowid

        sid = audited_write(
            self._log,
            add,
            who,
            "roster.shift_add",
            lambda new: {"shift_id": new, "gate": row["gate"]},
        )
        assert sid is not None
        self.changes = next(self._changes)
        return self.shift(sid)

    def reach(self) -> datetime | None:
        """The latest a shift rostered now may end: its handover's hour over before the log's
        retention could empty the detail of a removal of it made from now on (the purge nulls
        a removal's detail ``store.retention_days`` after it was made; a shift removed and
        then forgotten would bar its guard no longer while it was still to come). None on a
        clock not synchronised (a Pi booted without network reads 1970; the purge waits for
        the clock too): what is ahead is not known."""
        if not self._clock.synced():
            return None
        return self._clock.now() + self._retention - HANDOVER_GRACE

    def _within_reach(self, starts_at: datetime, ends_at: datetime) -> None:
        """Refused (``CommunityError``): a shift starting before ``FIRST_SHIFT`` (a year the
        roster's page never shows: 0001-01-01 typed or sent), or ending after ``reach``."""
        if starts_at < FIRST_SHIFT:
            raise CommunityError(f"a shift starts on {FIRST_DAY} or later")
        late = self.reach()
        if late is not None and ends_at > late:
            raise CommunityError(
                f"a shift is rostered at most {self._retention.days} days ahead, its"
                " handover's hour included: the log keeps a removal no longer"
            )

    def unshown_shifts(self, gate: str) -> list[UnreadableRow | ShiftOutOfReach]:
        """The stored shifts of ``gate`` dated outside the days a shift is rostered now
        (``_within_reach``; rows from before that rule, or edited by hand): the roster's page
        names those it does not list (``ShiftOutOfReach``; one whose time is
        at the calendar's edge, 0001-01-01, as a row that cannot be read: ``_skipped``). At
        most ``TIMELESS_SHOWN``; the rows whose times are no times are ``timeless_shifts``'."""
        late = self.reach() or _LAST_TIME  # a clock not synchronised: the early ones
        loose = [gate, format_ts(FIRST_SHIFT + _REACH), format_ts(late - MAX_SHIFT - _REACH)]
        rows = self._log.reader().query(_UNSHOWN, [*loose, TIMELESS_SHOWN])
        read, bad = self._skipped(rows, _shift)
        days = self._retention.days
        out: list[UnreadableRow | ShiftOutOfReach] = [
            ShiftOutOfReach(s, days) for s in read if s.starts_at < FIRST_SHIFT or s.ends_at > late
        ]
        return [*bad, *out]

    def shift_ended(self, shift: Shift) -> bool:
        """Whether ``shift`` is over by the clock: then it is the record of who was on duty (a
        handover's window starts at it, a guard's session was ended by it) and stays. The
        core's clock, not synchronised, never reads before the newest time known to have
        passed (``kiosk.clock.FlooredClock``): a Pi's clock left at its last shutdown does not
        make a past shift look to come."""
        return shift.ends_at <= self._clock.now()

    def remove_shift(
        self,
        shift_id: int,
        actor: str,
        *,
        gate: str | None = None,
        showed: tuple[str, datetime, datetime] | None = None,
    ) -> Shift:
        """Remove a shift not over yet (a wrong guard or day rostered, a swap of guards); one
        that has ended is refused (``shift_ended``); returns the shift removed. ``gate``: only a
        shift of that gate (the console's own). ``showed``: the guard, start and end the page
        showed for it; refused when the shift of that id is another now (SQLite gives a removed
        shift's id to the next one added: another tablet's replacement). Looked up and removed
        on the single writer: a second tablet's removal of the same shift finds it gone."""
        who = check_actor(actor)
        missing = f"no shift {shift_id}" if gate is None else f"no shift {shift_id} at {gate}"

        def remove(db: sqlite_utils.Database) -> Shift:
            rows = list(db.query("select * from roster_shifts where id = ?", [shift_id]))
            shift = _shift(rows[0]) if rows else None
            if shift is None or gate not in (None, shift.gate):
                raise CommunityError(missing)
            if showed is not None and showed != (shift.guard, shift.starts_at, shift.ends_at):
                raise CommunityError(
                    f"shift {shift_id} is not the one your page showed: nothing was removed"
                )
            if self.shift_ended(shift):
                raise CommunityError(
                    f"shift {shift_id} has ended: it stays, the record of who was on duty"
                )
            db.table("roster_shifts").delete(shift_id)
            return shift

        # Whose shift and when: a guard taken off a shift does not sign in again during it
        # without an admin (``barred``).
        removed = audited_write(self._log, remove, who, "roster.shift_remove", _removal)
        self.changes = next(self._changes)
        return removed

    def shift(self, shift_id: int) -> Shift:
        return _shift(row_by_id(self._log, "roster_shifts", shift_id, f"no shift {shift_id}"))

    def shifts(
        self, gate: str, start: datetime, end: datetime, guard: str | None = None
    ) -> list[Shift]:
        """Shifts at ``gate`` overlapping ``[start, end)``, by start; only ``guard``'s if
        given."""
        return self.read_shifts(gate, start, end, guard)[0]

    def read_shifts(
        self,
        gate: str,
        start: datetime,
        end: datetime,
        guard: str | None = None,
    ) -> tuple[list[Shift], list[UnreadableRow]]:
        """``shifts``, and the rows among them that cannot be read (edited by hand): skipped,
        each logged once by its id (``_skipped``), for the roster's page to name."""
        mine, args = ("", []) if guard is None else (" and guard = ?", [guard])
        rows = self._log.reader().query(
            f"select * from roster_shifts where {_OVERLAPPING}{mine} order by starts_at, id",  # noqa: S608
            [*_overlapping(gate, start, end), *args],
        )
        return self._skipped(rows, _shift)

    def listed_shifts(
        self, gate: str, now: datetime
    ) -> tuple[list[Shift], list[UnreadableRow], int]:
        """The shifts of ``gate`` the roster's page lists at ``now``: every one from a day back
        (``_LISTED_END``: a shift stored further ahead than ``reach`` before that rule too, so
        its Remove button too), the first ``SHIFTS_LISTED`` shifts by start; the rows among
        them all that cannot be read, apart (the page names them); and how many more shifts
        there are, rows that cannot be read not counted among them. Until this a row stored
        beyond ``reach`` was only named, with no Remove button, and the count of those not
        listed took in rows that cannot be read (which the page never shows)."""
        start = max(now - _LISTED_BACK, FIRST_SHIFT)
        shifts, bad = self.read_shifts(gate, start, _LISTED_END)
        return shifts[:SHIFTS_LISTED], bad, max(0, len(shifts) - SHIFTS_LISTED)

    def stretch(self, gate: str, guard: str, now: datetime) -> list[Shift]:
        """``guard``'s shifts at ``gate`` around ``now`` (for ``session_end``), by start: one
        read of that guard's rows only."""
        return self.shifts(gate, now - MAX_SHIFT, now + SESSION_CAP + SIGN_IN_LEAD, guard)

    def barred(
        self,
        gate: str,
        guard: str,
        now: datetime,
        until: datetime,
        marks: Iterable[ShiftMark] = (),
    ) -> ShiftGone | None:
        """The first shift of ``guard`` at ``gate`` taken off the roster whose span and
        handover hour bars a sign-in acting from ``now`` to ``until`` (``barred_from``: the
        guard's shifts on the roster now hold none of it from then), with who removed it and
        when (its ``roster.shift_remove`` audit row), as ``ends`` when the sign-in may act no
        longer (``now``: refused, or over) and as ``until`` when the guard may sign in again
        (the stretch's end, the removed shifts that follow on it joined). Taken off: removed,
        or one of ``marks`` (a sign-in's shifts as they were when it was made) no longer on
        the roster as it was with no removal to say so (changed in place: by and at None). A
        guard taken off a shift does not act during it without an admin (who rosters a
        shift); a shift removed another day (a wrong day rostered) bars nothing outside its
        own span; one moved by removing and adding it again bars nothing the new one holds.
        A removal recorded before the evening of 2026-12-07 names no guard and bars none;
        one the audit recorded before the guard's account was added after her name was last
        removed (``ACCOUNT_SINCE``: its ``seq``, no clock's reading; the name given to a new
        volunteer) was another account's, or nobody's now, and bars none. The bar found
        names the account it bars (``account``).
        A removal's row whose times are no times is skipped (``_readable``: logged once), the
        others judged: ``StoreFault`` when they bar nothing (the last answer stands), and for
        a shift's row whose times are no times (``_row_times``).
        Blocking: one read (``_ROSTER_OF``; each request of a guard's console makes it)."""
        marks = list(marks)
        ids = sorted({m[0] for m in marks})
        sql = _ROSTER_OF + _MARKED.format(",".join("?" * len(ids))) if ids else _ROSTER_OF
        args: list[Any] = [guard, gate, guard, format_ts(now - HANDOVER_GRACE)]
        args += [format_ts(until + MAX_SHIFT), guard, guard, guard]
        args += [*_overlapping(gate, now - MAX_SHIFT, until + 3 * MAX_SHIFT), *ids]
        removed: dict[ShiftMark, tuple[str | None, datetime | None]] = {}
        standing: list[tuple[datetime, datetime]] = []
        held: dict[int, ShiftMark] = {}
        skipped, account = False, None
        for kind, actor, ts, shift_id, starts, ends, who in self._log.reader().execute(sql, args):
            if kind == "account":
                account = int(shift_id)
                continue
            if kind == "removed" and not self._readable(shift_id, starts, ends, ts):
                skipped = True
                continue
            times, mark, at = _row_times(shift_id, starts, ends, ts)
            if kind == "removed":  # the newest first: its latest removal says who
                removed.setdefault(mark, (str(actor), at))
            elif kind == "standing":
                standing.append(times)
            elif who == guard:
                held[mark[0]] = mark
        for mark in marks:
            if held.get(mark[0]) != mark and mark not in removed:
                removed[mark] = (None, None)
        found = _first_bar(removed, standing, now, until) if removed else None
        if found is None and skipped:  # what the row skipped said is not known: not "no bar"
            raise StoreFault("store_fault", "a row of the roster cannot be read")
        return None if found is None else dataclasses.replace(found, account=account)

    def _readable(self, shift_id: Any, starts: Any, ends: Any, stamp: Any) -> bool:
        """Whether a removal's audit row says a shift and a time (``_row_times``); one that
        does not (its detail edited by hand: a personal field, so rewritable) is logged the
        first time it is met, by its shift id alone, and bars nothing: one such row does not
        turn off the guard's other removals (``barred``)."""
        try:
            _row_times(shift_id, starts, ends, stamp)
        except StoreFault:
            said = shift_id if isinstance(shift_id, int) else "?"
            self._logged_once(
                repr((shift_id, starts, ends, stamp)),
                "roster: the removal of shift %s cannot be read; it is skipped",
                said,
            )
            return False
        return True

    def on_duty(self, gate: str, when: datetime | None = None) -> list[Shift]:
        at = when or self._clock.now()
        return [s for s in self.shifts(gate, at, at + timedelta(microseconds=1)) if s.covers(at)]

    # -- handover ---------------------------------------------------------------------------

    def open_handover(
        self, gate: str, outgoing: str, incoming: str, *, gate_alarms: int = 0
    ) -> Handover:
        """The summary since the outgoing guard's shift began; the outgoing guard opens it.
        ``gate_alarms``: the alarms open on the guard console now (fevers, quarantine,
        passes, devices), counted in ``open_alarms`` with the returnee ledger's. Refused
        while one between the same two guards at ``gate`` waits to be signed
        (``_none_waiting``)."""
        out_guard = check_actor(outgoing)
        in_guard = clean_text("incoming", incoming, max_len=64)
        if out_guard == in_guard:
            raise CommunityError("a handover is between two guards")
        reading, unset = self._read_clock()
        now = reading.wall
        mine = [
            s
            for s in self.shifts(gate, now - HANDOVER_GRACE, now + timedelta(microseconds=1))
            if s.guard == out_guard and s.starts_at <= now < s.ends_at + HANDOVER_GRACE
        ]
        if not mine and not self._clock.synced():  # 1970 on a Pi booted without network
            raise CommunityError(CLOCK_NOT_SET)
        if not mine:
            raise CommunityError(f"{out_guard} is not on duty at {gate}")
        began = self._stretch_start(gate, mine[-1])
        since, since_clock, stepped_back = self._window_start(gate, began, reading)
        clocks = {"opened_at": unset} if unset else {}
        if since_clock is not None:
            clocks["since"] = since_clock
        alarms = len(self._open_alarms()) if self._open_alarms is not None else 0
        alarms += max(0, int(gate_alarms))
        summary = summary_since(self._log.reader(), gate, since, now, alarms)
        if stepped_back:
            summary["clock_stepped_back"] = 1
        row = {
            "gate": gate,
            "outgoing": out_guard,
            "incoming": in_guard,
            "since": format_ts(since),
            "opened_at": format_ts(now),
            "summary": json.dumps(summary),
            "clocks": json.dumps(clocks) if clocks else None,
        }

        def insert(db: sqlite_utils.Database) -> int | None:
            _none_waiting(db, gate, out_guard, in_guard)
            return db.table("handovers").insert(row).last_rowid

        hid = audited_write(
            self._log,
            insert,
            out_guard,
            "handover.open",
            lambda new: {"handover_id": new, "gate": gate, **summary},
        )
        assert hid is not None
        return self.handover(hid)

    def _stretch_start(self, gate: str, shift: Shift) -> datetime:
        """When ``shift``'s guard came on duty: its start, or that of the guard's shift that
        ends as it starts, and so on (a night rostered as two calendar days, 20:00-24:00 and
        00:00-08:00, is one stretch at the gate), at most seven shifts back."""
        start = shift.starts_at
        for _ in range(7):
            before = [
                s
                for s in self.shifts(gate, start - timedelta(microseconds=1), start)
                if s.guard == shift.guard and s.ends_at == start
            ]
            if not before:
                break
            start = before[0].starts_at
        return start

    def _window_start(
        self, gate: str, shift_start: datetime, now: ClockReading
    ) -> tuple[datetime, list[Any] | None, bool]:
        """Where a handover's summary starts: the shift's start, or the last handover at the
        gate if later or opened up to ``HANDOVER_GRACE`` before it (the incoming guard came
        early: what happened between that handover and the shift change is in no other
        summary). A handover stamped after ``now`` (the clock stepped back since: a Pi
        has no RTC) would start the window in the future and count nothing: it is skipped,
        and the True returned says the counts may include what it already covered. Newest
        is by id (the order they were opened in), not by the stamps a step reorders. On a
        synchronised clock a handover opened before NTP set it is where its boot's clocks
        date it (``dated_stamps``); the window then starts there, else (still not dated) at
        its stamp, whose clocks are returned for the new handover's ``since``."""
        rows = list(
            self._log.reader().query(
                "select * from handovers where gate = ? order by id desc limit 50", [gate]
            )
        )
        opened = self._skipped(rows, _handover)[0]
        stamps = [h.stamps()["opened_at"] for h in opened]
        dated = dated_stamps(self._log, stamps, now, self._boot_id) if now.synced else []
        stepped_back = False
        for i, handover in enumerate(opened):
            when, how = dated[i] if dated else (stamps[i].ts, "clock")
            at = datetime.fromisoformat(when)
            if at <= now.wall:
                if shift_start - HANDOVER_GRACE > at:
                    return shift_start, None, stepped_back
                clock = handover.clocks.get("opened_at") if how != "boot" else None
                return at, list(clock) if clock else None, stepped_back
            stepped_back = True
        return shift_start, None, stepped_back

    def acknowledge(self, handover_id: int, guard: str) -> Handover:
        """One of the two guards signs the handover; each signs once."""
        who = check_actor(guard)
        before = self.handover(handover_id)
        column = {before.outgoing: "outgoing_ack_at", before.incoming: "incoming_ack_at"}.get(who)
        if column is None:
            raise CommunityError(f"{who} is not part of handover {handover_id}")
        if getattr(before, column) is not None:
            raise CommunityError(f"{who} has already acknowledged handover {handover_id}")
        reading, unset = self._read_clock()
        stamp = format_ts(reading.wall)

        def sign(db: sqlite_utils.Database) -> Handover:
            # Checked again on the single writer: a double tap's other request may have
            # signed it meanwhile (each signs once: one row, one stamp).
            if db.table("handovers").get(handover_id)[column] is not None:
                raise CommunityError(f"{who} has already acknowledged handover {handover_id}")
            change: dict[str, Any] = {column: stamp}
            if unset:
                held = {k: list(v) for k, v in before.clocks.items()}
                change["clocks"] = json.dumps(held | {column: unset})
            db.table("handovers").update(handover_id, change)
            return _handover(db.table("handovers").get(handover_id))

        return audited_write(
            self._log,
            sign,
            who,
            "handover.ack",
            lambda after: {
                "handover_id": handover_id,
                "side": column[:8],
                "complete": after.complete,
            },
        )

    def handover(self, handover_id: int) -> Handover:
        missing = f"no handover {handover_id}"
        return _handover(row_by_id(self._log, "handovers", handover_id, missing))

    def handovers(self, gate: str, limit: int = 20) -> list[Handover]:
        """The newest first, in the order they were opened (by id: a clock stepped back or
        not set yet stamps a newer one earlier)."""
        return self.read_handovers(gate, limit)[0]

    def timeless_shifts(self, gate: str) -> list[UnreadableRow]:
        """The rows of ``gate``'s roster whose times a hand edit left no time (empty, not
        ISO 8601): no read by time finds them (``_OVERLAPPING``), so the roster's page names
        them from here, each logged once (``_skipped``). At most ``TIMELESS_SHOWN``."""
        rows = self._log.reader().query(_TIMELESS, [gate, TIMELESS_SHOWN])
        return self._skipped(rows, _shift)[1]

    def read_handovers(
        self, gate: str, limit: int = 20
    ) -> tuple[list[Handover], list[UnreadableRow]]:
        """``handovers``, and the rows among them that cannot be read (``read_shifts``)."""
        rows = self._log.reader().query(
            "select * from handovers where gate = ? order by id desc limit ?",
            [gate, max(1, min(int(limit), 500))],
        )
        return self._skipped(rows, _handover)

    def _skipped(
        self, rows: Iterable[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], _Row]
    ) -> tuple[list[_Row], list[UnreadableRow]]:
        """Each of ``rows`` read by ``parse``, and those that cannot be (``UnreadableRow``):
        one row edited by hand takes neither the roster's page nor a sign-in down. Each is
        logged the first time it is met, by its kind and id alone (``_logged_once``)."""
        read: list[_Row] = []
        bad: list[UnreadableRow] = []
        for row in rows:
            try:
                read.append(parse(row))
            except UnreadableRow as exc:
                bad.append(exc)
                said = "?" if exc.row_id is None else exc.row_id
                self._logged_once(
                    repr((exc.kind, exc.row_id)),
                    "roster: %s row %s cannot be read; it is skipped",
                    exc.kind,
                    said,
                )
        return read, bad

    def _logged_once(self, key: str, message: str, *args: Any) -> None:
        """Log ``message`` the first time ``key`` (a row that cannot be read) is met, of the
        last ``UNREADABLE_KEPT``."""
        if key in self._unreadable:
            return
        if len(self._unreadable) >= UNREADABLE_KEPT:
            self._unreadable.clear()
        self._unreadable.add(key)
        _logger.warning(message, *args)
