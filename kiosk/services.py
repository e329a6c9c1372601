"""Household services: what a quarantined or observed household needs brought to the door.

A request (food, medicine, parcel, rubbish, other) is opened for a household, taken by a named
helper (the one who climbs to the 7th floor when there is no lift) and marked done. Only
households that are quarantined or under observation on the day can have requests opened:
everyone else goes out for their own shopping. The caller says whether that holds
(``confined``), since it depends on the lists and the returnee ledger.

Every change is audited (request id, kind, state; never the note, which may hold a phone
number). The note is personal data: masked by role when shown, emptied by ``purge``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

import sqlite_utils

from .auditing import audited_write
from .clock import Clock, ClockReading
from .community import (
    CommunityError,
    check_actor,
    clean_text,
    has_table,
    household_is,
    record_dict,
    row_by_id,
)
from .days import day_bounds, when_or_none
from .queries import (
    Stamp,
    boot_offsets,
    clock_of,
    offset_time,
    read_clocks,
    retention_dating,
    stamps_of,
)
from .schema import sql_migrations
from .store import format_ts

if TYPE_CHECKING:
    from .community import LogLike

__all__ = ["KINDS", "MIGRATIONS", "Request", "ServiceDesk", "counts_for_day", "purge"]

Kind = Literal["food", "medicine", "parcel", "rubbish", "other"]
KINDS: tuple[Kind, ...] = get_args(Kind)
State = Literal["open", "taken", "done", "cancelled"]

MIGRATIONS = sql_migrations(
    "kiosk.services",
    m001_services="""
    CREATE TABLE service_requests (
        id INTEGER PRIMARY KEY, household TEXT, kind TEXT, note TEXT,
        state TEXT, opened_at TEXT, opened_by TEXT, taken_by TEXT, taken_at TEXT, done_at TEXT,
        purged_at TEXT
    );
    CREATE INDEX idx_service_requests_household ON service_requests (household);
    CREATE INDEX idx_service_requests_state ON service_requests (state);
    """,
    # The boot and monotonic time of each stamp written on an unsynchronised clock (JSON,
    # ``{"opened_at": [boot_id, mono_ns], ...}``): dated as an event is (``Request.stamps``).
    m002_service_clocks="ALTER TABLE service_requests ADD COLUMN clocks TEXT",
    # The daily report's questions of one day (``counts_for_day``), each on an index: every
    # request ever opened was read at each report.
    m003_day_indexes="""
    CREATE INDEX idx_service_requests_opened_at ON service_requests (opened_at);
    CREATE INDEX idx_service_requests_done_at ON service_requests (done_at);
    CREATE INDEX idx_service_requests_clocks ON service_requests (id) WHERE clocks IS NOT NULL;
    """,
)

#: The requests a day's counts can hold (opened in it, ended in it or after, still open),
#: each part on an index; ``{clocks}``: those stamped before NTP set the clock, dated after.
_DAY_SQL = (
    "select * from service_requests where opened_at >= :start and opened_at < :end"
    " union select * from service_requests where done_at >= :start and opened_at < :end"
    " union select * from service_requests where state in ('open', 'taken') and opened_at < :end"
    "{clocks}"
)

#: A request's stamps.
STAMPS = ("opened_at", "taken_at", "done_at")


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    household: str = field(repr=False)
    kind: Kind
    note: str = field(repr=False)
    state: State
    opened_at: datetime
    opened_by: str
    taken_by: str | None = None
    taken_at: datetime | None = None
    done_at: datetime | None = None
    #: ``[boot_id, mono_ns]`` of each stamp written on an unsynchronised clock
    clocks: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.state in ("open", "taken")

    def stamps(self) -> dict[str, Stamp]:
        """Each stamp it has, on both clocks (``kiosk.queries.dated_stamps`` dates them)."""
        return stamps_of(self, STAMPS, self.clocks)

    def to_dict(self) -> dict[str, Any]:
        """Every field, the personal ones too: mask with ``kiosk.privacy`` before showing."""
        return record_dict(self, omit=("clocks",))


def _request(row: Mapping[str, Any]) -> Request:
    return Request(
        id=int(row["id"]),
        household=row["household"] or "",
        kind=cast(Kind, row["kind"]),
        note=row["note"] or "",
        state=cast(State, row["state"]),
        opened_at=datetime.fromisoformat(row["opened_at"]),
        opened_by=row["opened_by"],
        taken_by=row["taken_by"],
        taken_at=when_or_none(row["taken_at"]),
        done_at=when_or_none(row["done_at"]),
        clocks=read_clocks(row.get("clocks"), STAMPS),
    )


def counts_for_day(db: sqlite_utils.Database, day: date, tz: ZoneInfo) -> dict[str, Any]:
    """Requests opened and done during the local day, and open at its end, by kind."""
    out: dict[str, Any] = {"opened": 0, "done": 0, "open_at_end": 0, "by_kind": {}}
    if not has_table(db, "service_requests"):
        return out
    start, end = day_bounds(day, tz)
    by_kind: dict[str, int] = {}
    # A copy from before the clocks were kept (m002) has none to date by.
    kept = "clocks" in db.table("service_requests").columns_dict
    unsynced = " union select * from service_requests where clocks is not null" if kept else ""
    rows = list(db.query(_DAY_SQL.format(clocks=unsynced), {"start": start, "end": end}))
    # Stamped before NTP set the clock: when its boot's synchronised clock dates it.
    clocks = [read_clocks(row.get("clocks"), STAMPS) for row in rows]
    offsets = boot_offsets(db, sorted({boot for c in clocks for boot, _ in c.values()}))
    for row, held in zip(rows, clocks, strict=True):
        for name, (boot, mono) in held.items():
            if boot in offsets and row[name]:
                row[name] = offset_time(offsets[boot], mono)
        if row["opened_at"] >= end:
            continue
        done = row["done_at"] if row["state"] == "done" else None
        ended = done or (row["done_at"] if row["state"] == "cancelled" else None)
        if row["opened_at"] >= start:
            out["opened"] += 1
            by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + 1
        if done is not None and start <= done < end:
            out["done"] += 1
        if ended is None or ended >= end:
            out["open_at_end"] += 1
    out["by_kind"] = dict(sorted(by_kind.items()))
    return out


def purge(
    db: sqlite_utils.Database,
    cutoff: datetime,
    purged_at: datetime,
    now: ClockReading | None = None,
    boot_id: str = "",
) -> int:
    """Empty the notes and households of requests closed before ``cutoff``. A close stamped
    before NTP set the clock (1970 on a Pi booted without network: older than any cutoff)
    is dated as an event is (``kiosk.queries.held_dated``), not emptied the moment the
    clock is set."""
    if not has_table(db, "service_requests"):
        return 0
    cut = format_ts(cutoff)
    closed = "state in ('done', 'cancelled') and purged_at is null"
    sql = f"select id, done_at, null from service_requests where {closed} and done_at < ?"  # noqa: S608
    if "clocks" in db.table("service_requests").columns_dict:  # a stamp's boot and mono time
        sql += " and clocks is null union select id, done_at, clocks from service_requests"
        sql += f" where {closed} and clocks is not null"
    found = db.execute(sql, [cut])
    rows = [(int(i), str(d), read_clocks(c, STAMPS).get("done_at")) for i, d, c in found]
    boots = sorted({held[0] for _, _, held in rows if held})
    dated = retention_dating(db, boots, now, boot_id)
    due = [i for i, done, held in rows if dated(done, held) < cut]
    db.execute(
        "update service_requests set note = '', household = '', purged_at = ?"
        " where id in (select value from json_each(?))",
        [format_ts(purged_at), json.dumps(due)],
    )
    return len(due)


def _none_untaken(db: sqlite_utils.Database, household: str, kind: str) -> None:
    """Refused while a request of ``kind`` for ``household`` (however spelled) is open and
    not taken yet: one of each kind waits at a time (one taken, a helper on the stairs with
    it, leaves a new one to open). Looked at in the opening's write transaction: two
    consoles, or the daemon and an admin's ``kiosk``, at the same moment open one."""
    condition, spellings = household_is(db, "service_requests", household)
    found = db.execute(
        f"select id from service_requests where state = 'open' and kind = ? and {condition}"  # noqa: S608
        " order by id desc limit 1",
        [kind, *spellings],
    ).fetchone()
    if found is not None:
        raise CommunityError(f"request #{found[0]} of this kind is still open")


class ServiceDesk:
    """Open, take, finish and cancel requests; list them for the guard console."""

    def __init__(
        self, log: LogLike, clock: Clock, tz: ZoneInfo | str, boot_id: str | None = None
    ) -> None:
        self._log = log
        self._clock = clock
        self._tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        #: this boot's id, as the log stamps its rows (``EventLog.boot_id``)
        self._boot_id = log.boot_id if boot_id is None else boot_id

    def _stamp(self, name: str, clocks: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
        """The columns a stamp ``name`` written now sets: itself, and ``clocks`` with its
        boot and monotonic time when the clock is not synchronised."""
        reading = ClockReading.take(self._clock)
        out: dict[str, Any] = {name: format_ts(reading.wall)}
        held = clock_of(reading, self._boot_id)
        if held is not None:
            kept = {k: list(v) for k, v in clocks.items()}
            out["clocks"] = json.dumps(kept | {name: held})
        return out

    def open(
        self, household: str, kind: str, actor: str, *, confined: bool, note: str = ""
    ) -> Request:
        """A new request; ``confined``: the household is quarantined or observed today.
        Refused while one of its ``kind`` for the household is open and untaken
        (``_none_untaken``)."""
        who = check_actor(actor)
        home = clean_text("household", household, max_len=40)
        if kind not in KINDS:
            raise CommunityError(f"kind: one of {', '.join(KINDS)}")
        if not confined:
            # Not naming the household: the console carries a problem in a redirect's URL.
            raise CommunityError("the household is neither quarantined nor under observation today")
        row = {
            "household": home,
            "kind": kind,
            "note": clean_text("note", note, max_len=500, required=False),
            "state": "open",
            **self._stamp("opened_at", {}),
            "opened_by": who,
        }

        def insert(db: sqlite_utils.Database) -> int | None:
            _none_untaken(db, home, kind)
            return db.table("service_requests").insert(row).last_rowid

        rid = audited_write(
            self._log,
            insert,
            who,
            "service.open",
            lambda new: {"request_id": new, "kind": kind},
        )
        assert rid is not None
        return self.get(rid)

    def take(self, request_id: int, actor: str, was: str | None = None) -> Request:
        """A helper takes the request (by name: who is on the stairs)."""
        return self._move(request_id, actor, ("open",), "taken", "taken", was)

    def done(self, request_id: int, actor: str, was: str | None = None) -> Request:
        return self._move(request_id, actor, ("open", "taken"), "done", "done", was)

    def cancel(self, request_id: int, actor: str, was: str | None = None) -> Request:
        return self._move(request_id, actor, ("open", "taken"), "cancelled", "done", was)

    def _move(
        self,
        request_id: int,
        actor: str,
        from_: tuple[State, ...],
        to: State,
        stamp: str,
        was: str | None = None,
    ) -> Request:
        """``was``: the state the helper's page showed; a request another helper's phone
        moved since (taken: someone is on the stairs with it) is not moved again unseen.
        None: not checked (a script)."""
        who = check_actor(actor)
        before = self.get(request_id)
        if before.state not in from_ or (was is not None and before.state != was):
            raise CommunityError(f"request {request_id} is {before.state}; cannot be {to}")
        changes: dict[str, Any] = {"state": to, **self._stamp(f"{stamp}_at", before.clocks)}
        # Done without being taken first: whoever did it took it. A cancel takes nothing.
        if to == "taken" or (to == "done" and before.taken_by is None):
            changes["taken_by"] = who

        def apply(db: sqlite_utils.Database) -> None:
            # Checked again on the single writer: another helper may have moved it meanwhile.
            state = _request(db.table("service_requests").get(request_id)).state
            if state != before.state:
                raise CommunityError(f"request {request_id} is {state}; cannot be {to}")
            db.table("service_requests").update(request_id, changes)

        what = {"request_id": request_id, "from": before.state, "to": to}
        audited_write(self._log, apply, who, f"service.{to}", lambda _: what)
        return self.get(request_id)

    def get(self, request_id: int) -> Request:
        missing = f"no service request {request_id}"
        return _request(row_by_id(self._log, "service_requests", request_id, missing))

    def requests(
        self, *, household: str | None = None, open_only: bool = False, limit: int = 500
    ) -> list[Request]:
        where, args = ["1 = 1"], []
        db = self._log.reader()
        if household is not None:  # however it is spelled (``same_text``): b-2-701 is B-2-701
            condition, spellings = household_is(db, "service_requests", household)
            where.append(condition)
            args.extend(spellings)
        if open_only:
            where.append("state in ('open', 'taken')")
        sql = (
            f"select * from service_requests where {' and '.join(where)}"  # noqa: S608
            f" order by id desc limit {max(1, min(int(limit), 5000))}"
        )
        return [_request(r) for r in db.query(sql, args)]

    def counts(self, day: date) -> dict[str, Any]:
        return counts_for_day(self._log.reader(), day, self._tz)
