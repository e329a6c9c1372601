"""People under observation (returnees, 一人一策): one record per person, a daily temperature.

Everyone back from elsewhere is registered (name, household, phone, origin, date back) and
observed at home for ``days`` days (14 by default, the day back counting as day 1) with one
temperature check a day, then cleared, escalated (to the clinic) or transferred (to central
quarantine) by the compound manager. Nobody leaves observation by the calendar alone: a
person whose period is over stays ``observing`` and is listed as due for clearing.

A day's check comes from either side of the door:

* **the gate**: any decided passage whose pass names the person (same household, same holder
  name as on the pass) and carries a body temperature counts for that local day;
* **a helper** at the door, who types the reading in (``record_temperature``).

Alarms (``alarms``): a past day of the period with no check, today's check once ``check_due``
(local time) has passed without one, and any reading at or above ``fever_threshold_c``. An
alarm stays open until acknowledged (``acknowledge``) or the person leaves ``observing``.

Status history is kept (``obs_status``), so the daily report counts a past day as it was. The
ledger also gives ``decide`` a snapshot of who is observed (``snapshot``), so a site can keep
observed people in (``policy.observation_blocks``). Personal fields (name, phone, origin,
note) are masked by role in every output (``kiosk.privacy``) and purged with the rest
(``purge``); audit rows carry the record id and the status only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

import sqlite_utils

from .auditing import audited_write
from .clock import Clock, ClockReading
from .community import (
    CommunityError,
    LogLike,
    check_actor,
    clean_text,
    has_table,
    household_is,
    plain_float,
    record_dict,
    row_by_id,
)
from .dating import dated_source
from .days import day_bounds
from .links import judged_fever
from .lists import same_text
from .queries import boot_offsets, clock_of, offset_time, read_clocks
from .schema import sql_migrations
from .snapshots import LatestRead
from .store import format_ts

__all__ = [
    "CHECK_CLOCK_NOT_SET",
    "CLOCK_NOT_SET",
    "DEFAULT_DAYS",
    "MIGRATIONS",
    "STATUSES",
    "Alarm",
    "Check",
    "Correction",
    "ObservationLedger",
    "ObservationSnapshot",
    "Person",
    "counts_for_day",
    "purge",
    "registered_between",
]

Status = Literal["observing", "cleared", "escalated", "transferred"]
STATUSES: tuple[Status, ...] = get_args(Status)
AlarmKind = Literal["missed_check", "fever"]
Source = Literal["gate", "helper"]

DEFAULT_DAYS = 14
MAX_DAYS = 60
#: A day back further back than this is a typo (``0001-01-01``), not a returnee to observe.
MAX_DAYS_BACK = 30
#: What a correction may change, by the names its audit row gives them.
CORRECTED = ("name", "household", "date_back", "until")
#: A hand-typed reading outside this range is a typo, not a temperature.
HAND_MIN_C = 34.0
HAND_MAX_C = 43.0

#: A returnee registered, back on a day after what a clock not synchronised reads.
CLOCK_NOT_SET = (
    "the clock is not set yet (no network time since the start), so today cannot be told and"
    " the day back cannot be checked: register the returnee once it is set"
)
#: A helper's reading typed in while the clock is not synchronised: the day it is for cannot
#: be told (the last shutdown's day after a power cut would take it, and hide that day's
#: missing check).
CHECK_CLOCK_NOT_SET = (
    "the clock is not set yet (no network time since the start), so today cannot be told:"
    " note the reading and its time, and type it in once the clock is set"
)

MIGRATIONS = sql_migrations(
    "kiosk.observation",
    m001_observation="""
    CREATE TABLE obs_people (
        id INTEGER PRIMARY KEY,
        name TEXT, household TEXT, phone TEXT, origin TEXT, note TEXT,
        date_back TEXT, observation_until TEXT, status TEXT,
        created_at TEXT, actor TEXT, purged_at TEXT
    );
    CREATE INDEX idx_obs_people_household ON obs_people (household);
    CREATE TABLE obs_status (
        id INTEGER PRIMARY KEY, person_id INTEGER, status TEXT, at TEXT, actor TEXT
    );
    CREATE INDEX idx_obs_status_person_id ON obs_status (person_id);
    CREATE TABLE obs_checks (
        id INTEGER PRIMARY KEY, person_id INTEGER, day TEXT, at TEXT, temp_c REAL,
        fever INTEGER, actor TEXT
    );
    CREATE INDEX idx_obs_checks_person_id_day ON obs_checks (person_id, day);
    CREATE TABLE obs_acks (
        person_id INTEGER, day TEXT, kind TEXT, at TEXT, actor TEXT,
        PRIMARY KEY (person_id, day, kind)
    );
    """,
    # The daily report's questions of one day (``counts_for_day``), each on an index: a
    # year's returnees and their checks were read at each report.
    m002_day_indexes="""
    CREATE INDEX obs_people_created_at ON obs_people (created_at);
    CREATE INDEX obs_people_until ON obs_people (observation_until);
    CREATE INDEX obs_status_at ON obs_status (at);
    CREATE INDEX obs_checks_fever_day ON obs_checks (day) WHERE fever = 1;
    """,
    # The boot and monotonic time of a registration written on an unsynchronised clock (JSON,
    # ``{"created_at": [boot_id, mono_ns]}``): dated as an event is (``counts_for_day``).
    m003_obs_clocks="""
    ALTER TABLE obs_people ADD COLUMN clocks TEXT;
    CREATE INDEX obs_people_clocks ON obs_people (id) WHERE clocks IS NOT NULL;
    """,
    # The same for a status change (``{"at": [boot_id, mono_ns]}``): a clearing done on a
    # clock reading 1970 is counted on the day it was done and ordered after what came before.
    m004_obs_status_clocks="""
    ALTER TABLE obs_status ADD COLUMN clocks TEXT;
    CREATE INDEX obs_status_clocks ON obs_status (id) WHERE clocks IS NOT NULL;
    """,
    # A registration corrected (``correct``): one row per correction holding what the record
    # said before it, as ``obs_status`` keeps the statuses it had.
    m005_obs_corrections="""
    CREATE TABLE obs_corrections (
        id INTEGER PRIMARY KEY, person_id INTEGER, at TEXT, actor TEXT,
        name TEXT, household TEXT, date_back TEXT, observation_until TEXT
    );
    CREATE INDEX idx_obs_corrections_person_id ON obs_corrections (person_id);
    """,
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str = field(repr=False)
    household: str = field(repr=False)
    phone: str = field(repr=False)
    origin: str = field(repr=False)
    date_back: date
    observation_until: date
    status: Status
    note: str = field(default="", repr=False)
    created_at: datetime | None = None

    def period(self, until: date) -> Iterable[date]:
        """The days of the observation period up to ``until`` (inclusive)."""
        day = self.date_back
        while day <= min(until, self.observation_until):
            yield day
            day += timedelta(days=1)

    def to_dict(self) -> dict[str, Any]:
        """Every field, personal ones included: mask with ``kiosk.privacy`` before showing."""
        return record_dict(self, omit=("created_at",))

    def corrected_fields(self) -> dict[str, str]:
        """What a correction changes (``ObservationLedger.correct``), as stored."""
        return {
            "name": self.name,
            "household": self.household,
            "date_back": self.date_back.isoformat(),
            "observation_until": self.observation_until.isoformat(),
        }

    def version(self) -> str:
        """The version of what a correction changes, as a page shows it: the manager's
        correction form carries it (``seen``), and a correction of a record corrected since
        is refused (``ObservationLedger.correct``)."""
        shown = json.dumps(list(self.corrected_fields().values()), ensure_ascii=False)
        return hashlib.sha256(shown.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Check:
    person_id: int
    day: date
    at: datetime
    temp_c: float
    source: Source
    fever: bool


@dataclass(frozen=True, slots=True)
class Correction:
    """A registration corrected: what the record said before (``correct``), who changed it."""

    person_id: int
    at: datetime
    actor: str
    name: str = field(repr=False)
    household: str = field(repr=False)
    date_back: date
    observation_until: date


@dataclass(frozen=True, slots=True)
class Alarm:
    person_id: int
    day: date
    kind: AlarmKind
    household: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


def _key(household: str, holder: str) -> tuple[str, str]:
    return same_text(household), same_text(holder)


@dataclass(frozen=True)
class ObservationSnapshot:
    """Who is under observation, for ``decide``: immutable, dictionary lookups only."""

    periods: Mapping[tuple[str, str], tuple[tuple[date, date], ...]] = field(default_factory=dict)

    def observing(self, household: str, holder: str | None, day: date) -> bool:
        if holder is None:
            return False
        spans = self.periods.get(_key(household, holder), ())
        return any(start <= day <= end for start, end in spans)

    def observing_anyone(self, household: str, day: date) -> bool:
        """Whether a returnee of ``household`` (however spelled) is under observation on
        ``day``: for a person of it the guard cannot name (a manual pass without a pass)."""
        key = same_text(household)
        return any(
            start <= day <= end
            for (h, _holder), spans in self.periods.items()
            if h == key
            for start, end in spans
        )


# --------------------------------------------------------------------------- reading rows


def _person(row: Mapping[str, Any]) -> Person:
    created = row.get("created_at")
    return Person(
        id=int(row["id"]),
        name=row["name"] or "",
        household=row["household"] or "",
        phone=row["phone"] or "",
        origin=row["origin"] or "",
        date_back=date.fromisoformat(row["date_back"]),
        observation_until=date.fromisoformat(row["observation_until"]),
        status=cast(Status, row["status"]),
        note=row["note"] or "",
        created_at=datetime.fromisoformat(created) if created else None,
    )


_LATEST_SQL = (
    "select at, id, status from obs_status where person_id = ? and at < ?"
    " order by at desc, id desc limit 1"
)
#: The same, of the changes stamped on a synchronised clock (the others are ``Dated``).
_LATEST_KEPT_SQL = _LATEST_SQL.replace(" order by", " and clocks is null order by")
_CHANGED_SQL = (
    "select status, person_id from obs_status where at >= ? and at < ? and status != 'observing'"
)
_CHANGED_KEPT_SQL = _CHANGED_SQL + " and clocks is null"

#: A status change stamped before NTP set the clock: ``(dated at, id, status)`` by person.
Dated = dict[int, list[tuple[str, int, Status]]]


def _dated_changes(db: sqlite_utils.Database) -> Dated:
    """The status changes kept with their clocks (written unsynchronised), each at the time
    its boot's synchronised clock dates it to, or as stamped while it cannot be dated yet."""
    if "clocks" not in db.table("obs_status").columns_dict:  # a copy from before m004
        return {}
    rows = list(
        db.query(
            "select id, person_id, status, at, clocks from obs_status where clocks is not null"
        )
    )
    held = [read_clocks(r["clocks"], ("at",)).get("at") for r in rows]
    offsets = boot_offsets(db, sorted({h[0] for h in held if h is not None}))
    out: Dated = {}
    for row, clock in zip(rows, held, strict=True):
        when = str(row["at"])
        if clock is not None and clock[0] in offsets:
            when = offset_time(offsets[clock[0]], clock[1])
        change = (when, int(row["id"]), cast(Status, row["status"]))
        out.setdefault(int(row["person_id"]), []).append(change)
    return out


def _status_as_of(
    db: sqlite_utils.Database, person_id: int, before: str, dated: Dated
) -> Status | None:
    """The person's status just before ``before``: the latest change by its dated time."""
    sql = _LATEST_KEPT_SQL if dated else _LATEST_SQL
    rows = db.query(sql, [person_id, before])
    changes = [(str(r["at"]), int(r["id"]), cast(Status, r["status"])) for r in rows]
    changes += [c for c in dated.get(person_id, ()) if c[0] < before]
    return max(changes)[2] if changes else None


def _changed_between(
    db: sqlite_utils.Database, start: str, end: str, dated: Dated
) -> dict[str, set[int]]:
    """Who was cleared, escalated or transferred in ``[start, end)``, by status."""
    out: dict[str, set[int]] = {}
    for row in db.query(_CHANGED_KEPT_SQL if dated else _CHANGED_SQL, [start, end]):
        out.setdefault(str(row["status"]), set()).add(int(row["person_id"]))
    for person_id, changes in dated.items():
        for when, _, status in changes:
            if start <= when < end and status != "observing":
                out.setdefault(status, set()).add(person_id)
    return out


def registered_between(db: sqlite_utils.Database, start: str, end: str) -> int:
    """People registered in ``[start, end)`` (``format_ts`` times): by their stamp, or,
    stamped before NTP set the clock, when their boot's synchronised clock dates it
    (``kiosk.dating``)."""
    if not has_table(db, "obs_people"):
        return 0
    # A copy from before the clocks were kept (m003) has none to date by.
    if "clocks" not in db.table("obs_people").columns_dict:
        found = db.execute(
            "select count(*) from obs_people where created_at >= ? and created_at < ?",
            [start, end],
        )
        return int(found.fetchone()[0])
    found = db.execute(
        "select count(*) from obs_people where created_at >= ? and created_at < ?"
        " and clocks is null",
        [start, end],
    )
    count = int(found.fetchone()[0])
    rows = list(db.query("select created_at, clocks from obs_people where clocks is not null"))
    held = [read_clocks(r["clocks"], ("created_at",)).get("created_at") for r in rows]
    offsets = boot_offsets(db, sorted({h[0] for h in held if h is not None}))
    for row, clock in zip(rows, held, strict=True):
        when = str(row["created_at"])
        if clock is not None and clock[0] in offsets:
            when = offset_time(offsets[clock[0]], clock[1])
        count += start <= when < end
    return count


def counts_for_day(db: sqlite_utils.Database, day: date, tz: ZoneInfo) -> dict[str, int]:
    """Returnees for the daily report: new (registered that day), under observation at the
    end of the day, cleared / escalated / transferred during it, and fevers among the
    helpers' checks that day (the gate's readings are counted with the gate). No names."""
    out = {"new": 0, "observing": 0, "cleared": 0, "escalated": 0, "transferred": 0}
    out["fever_checks"] = 0
    if not has_table(db, "obs_people"):
        return out
    start, end = day_bounds(day, tz)
    out["new"] = registered_between(db, start, end)
    # Those whose observation reaches the day, read from the day on (``obs_people_until``).
    observed = db.query(
        "select id from obs_people where observation_until >= :day and date_back <= :day"
        " and created_at < :end",
        {"day": day.isoformat(), "end": end},
    )
    # A change stamped before NTP set the clock counts when its boot's clocks date it.
    dated = _dated_changes(db)
    for row in observed:
        if _status_as_of(db, int(row["id"]), end, dated) == "observing":
            out["observing"] += 1
    # People, not changes: cleared, put back by mistake and cleared again is one clearing.
    for status, people in _changed_between(db, start, end, dated).items():
        out[status] = len(people)
    fevers = db.execute(
        "select count(*) from obs_checks where day = ? and fever = 1", [day.isoformat()]
    ).fetchone()
    out["fever_checks"] = int(fevers[0])
    return out


def purge(db: sqlite_utils.Database, cutoff: date, purged_at: datetime) -> int:
    """Forget the people whose observation ended before ``cutoff`` and who are no longer
    observed: their checks and the alarms closed for them are deleted, their personal fields
    emptied (the id, dates and status stay for the reports). Run through
    ``EventLog.submit``. Returns people purged."""
    if not has_table(db, "obs_people"):
        return 0
    ids = [
        int(r["id"])
        for r in db.query(
            "select id from obs_people where observation_until < ? and status != 'observing'"
            " and purged_at is null",
            [cutoff.isoformat()],
        )
    ]
    for person_id in ids:
        db.execute("delete from obs_checks where person_id = ?", [person_id])
        db.execute("delete from obs_acks where person_id = ?", [person_id])  # fevers closed
        if has_table(db, "obs_corrections"):  # the names and households it had before
            db.execute("delete from obs_corrections where person_id = ?", [person_id])
        db.execute(
            "update obs_people set name = '', household = '', phone = '', origin = '', note = '',"
            " purged_at = ?"
            " where id = ?",
            [_stamp(purged_at), person_id],
        )
    return len(ids)


# --------------------------------------------------------------------------- the ledger


def _closed_by(db: sqlite_utils.Database, person_id: int, day: date, kind: str) -> str | None:
    """Who closed returnee ``person_id``'s ``kind`` alarm of ``day``, as a refusal's words;
    None while it is not closed."""
    found = db.execute(
        "SELECT actor FROM obs_acks WHERE person_id = ? AND day = ? AND kind = ?",
        [person_id, day.isoformat(), kind],
    ).fetchone()
    if found is None:
        return None
    return f"the {kind} alarm of person {person_id} on {day} was already closed by {found[0]}"


def _not_observed_yet(
    db: sqlite_utils.Database, name: str, household: str, but: int | None = None
) -> None:
    """Refused when someone observed now (other than ``but``) has this name and household,
    however either is spelled (as the gate matches a pass's holder, ``same_text``: Ｗａｎｇ
    Ｆａｎｇ is Wang Fang, 尼格买提•热合曼 with a bullet for the dot 尼格买提·热合曼). Looked
    at in the write transaction that registers or corrects (two consoles, or the daemon and
    an admin's ``kiosk`` at the same moment: the second finds the first's row)."""
    condition, spellings = household_is(db, "obs_people", household)
    found = db.execute(
        f"select id, name from obs_people where status = 'observing' and {condition}",  # noqa: S608
        spellings,
    )
    key = same_text(name)
    for person_id, other in found:
        if person_id != but and same_text(str(other or "")) == key:
            raise CommunityError(f"already observed as #{person_id}")


class ObservationLedger:
    """The returnee ledger on the event log's database. Thread-safe as the log is."""

    def __init__(
        self,
        log: LogLike,
        clock: Clock,
        tz: ZoneInfo | str,
        *,
        fever_threshold_c: float = 37.3,
        check_due: time = time(20, 0),
        on_change: Callable[[ObservationSnapshot], None] | None = None,
    ) -> None:
        self._log = log
        self._clock = clock
        self._tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.fever_threshold_c = fever_threshold_c
        self.check_due = check_due
        self._on_change = on_change
        #: this boot's id, as the log stamps its rows (``EventLog.boot_id``)
        self._boot_id = log.boot_id
        # Changes come from several threads: a snapshot read before another change committed
        # must not replace the one read after it.
        self._snapshots = LatestRead(ObservationSnapshot())

    @property
    def current(self) -> ObservationSnapshot:
        """The latest snapshot (``load()`` at start, rebuilt after every change): what the
        engine's ``PolicyState`` carries as ``observing``."""
        return self._snapshots.current

    def load(self) -> ObservationSnapshot:
        """Read who is observed and put it in force, unless a later read already is."""
        return self._snapshots.load(self.snapshot)

    # -- changes ----------------------------------------------------------------------------

    def register(
        self,
        *,
        name: str,
        household: str,
        phone: str,
        origin: str,
        date_back: date | str,
        actor: str,
        days: int = DEFAULT_DAYS,
        note: str = "",
    ) -> Person:
        """A returnee, observed from ``date_back`` for ``days`` days (day back = day 1)."""
        who = check_actor(actor)
        back = _as_date("date_back", date_back)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise CommunityError(f"days: a whole number from 1 to {MAX_DAYS}")
        reading = ClockReading.take(self._clock)
        now = reading.wall
        self._check_back(back, reading)
        row = {
            "name": clean_text("name", name, max_len=60),
            "household": clean_text("household", household, max_len=40),
            "phone": clean_text("phone", phone, max_len=20, required=False),
            "origin": clean_text("origin", origin, max_len=60),
            "note": clean_text("note", note, max_len=500, required=False),
            "date_back": back.isoformat(),
            "observation_until": (back + timedelta(days=days - 1)).isoformat(),
            "status": "observing",
            "created_at": _stamp(now),
            "actor": who,
        }
        held = clock_of(reading, self._boot_id)
        if held is not None:  # dated once its boot's clock is (``counts_for_day``)
            row["clocks"] = json.dumps({"created_at": held})

        def apply(db: sqlite_utils.Database) -> int:
            _not_observed_yet(db, row["name"], row["household"])
            person_id = db.table("obs_people").insert(row).last_rowid
            assert person_id is not None
            self._status_row(db, person_id, "observing", reading, who)
            return person_id

        person_id = audited_write(
            self._log,
            apply,
            who,
            "observation.register",
            lambda pid: {"person_id": pid, "days": days, **_dates(row)},
        )
        return self._changed(person_id)

    def correct(
        self,
        person_id: int,
        *,
        name: str,
        household: str,
        date_back: date | str,
        until: date | str,
        actor: str,
        seen: str | None = None,
    ) -> Person:
        """A registration typed wrong, put right by the manager: its name, household, day back
        and last day of observation become these (the gate matches, the alarms and the report
        count by them; it stays one registration, made when it was). What the record said
        before is kept, one ``obs_corrections`` row per correction (``corrections``).
        ``seen``: the version of the record the manager's page showed (``Person.version``);
        when another correction changed it since, nothing is changed and the error says what
        it is now. None: not checked (a script)."""
        who = check_actor(actor)
        before = self.person(person_id)
        if before.name == "" and before.household == "":
            raise CommunityError(f"person {person_id} was forgotten; nothing to correct")
        if seen is not None and seen != before.version():
            raise CommunityError(_changed_since(before))
        new = self._corrected(before, name, household, date_back, until)
        old = before.corrected_fields()
        fields = [f for f in CORRECTED if new[_COLUMN.get(f, f)] != old[_COLUMN.get(f, f)]]
        if not fields:
            raise CommunityError(f"person {person_id}: nothing to correct")
        row = {"person_id": person_id, "at": _stamp(self._clock.now()), "actor": who, **old}

        def apply(db: sqlite_utils.Database) -> None:
            # Checked again on the single writer: another manager's correction meanwhile.
            current = {k: db.table("obs_people").get(person_id)[k] for k in old}
            if current != old:
                raise CommunityError(f"person {person_id} was changed meanwhile; not changed")
            _not_observed_yet(db, new["name"], new["household"], but=person_id)
            db.table("obs_corrections").insert(row)
            db.table("obs_people").update(person_id, new)

        what = {"person_id": person_id, "fields": fields, **_dates(new)}
        audited_write(self._log, apply, who, "observation.correct", lambda _: what)
        return self._changed(person_id)

    def _corrected(
        self, before: Person, name: str, household: str, date_back: date | str, until: date | str
    ) -> dict[str, str]:
        """A correction's values, checked as a registration's are; the day back's limits
        (``_check_back``) only when it changes: one left as it was is no new typing, and a
        60-day observation is corrected after its 30th day too."""
        back, last = _as_date("date_back", date_back), _as_date("until", until)
        if back != before.date_back:
            self._check_back(back, ClockReading.take(self._clock))
        if last < back:
            raise CommunityError("until: before the day back")
        if (last - back).days + 1 > MAX_DAYS:
            raise CommunityError(f"until: at most {MAX_DAYS} days from the day back")
        return {
            "name": clean_text("name", name, max_len=60),
            "household": clean_text("household", household, max_len=40),
            "date_back": back.isoformat(),
            "observation_until": last.isoformat(),
        }

    def set_status(self, person_id: int, status: str, actor: str, was: str | None = None) -> Person:
        """Clear, escalate or transfer (or put back under observation). ``was``: the status
        the manager's page showed; when it is no longer the person's (another manager's
        tablet changed it since: an escalation to the clinic), nothing is changed and the
        error says what it is now. None: not checked (a script)."""
        who = check_actor(actor)
        if status not in STATUSES:
            raise CommunityError(f"status: one of {', '.join(STATUSES)}")
        before = self.person(person_id)
        if was is not None and before.status != was:
            raise CommunityError(f"person {person_id} is now {before.status}; not changed")
        if before.status == status:
            raise CommunityError(f"person {person_id} is already {status}")
        # Kept with its clocks when the clock is not set (dated by them, ``counts_for_day``).
        reading = ClockReading.take(self._clock)

        def apply(db: sqlite_utils.Database) -> None:
            # Checked again on the single writer: another manager may have changed it meanwhile.
            current = db.table("obs_people").get(person_id)["status"]
            if current != before.status:
                raise CommunityError(f"person {person_id} is now {current}; not changed")
            db.table("obs_people").update(person_id, {"status": status})
            self._status_row(db, person_id, status, reading, who)

        what = {"person_id": person_id, "from": before.status, "to": status}
        audited_write(self._log, apply, who, "observation.status", lambda _: what)
        return self._changed(person_id)

    def record_temperature(
        self, person_id: int, temp_c: object, actor: str, at: datetime | None = None
    ) -> Check:
        """A reading taken at the door by a helper (the gate's come from the event log)."""
        who = check_actor(actor)
        value = plain_float("temp_c", temp_c)
        if not HAND_MIN_C <= value <= HAND_MAX_C:
            raise CommunityError(f"temp_c: {value} is outside {HAND_MIN_C}-{HAND_MAX_C} °C")
        person = self.person(person_id)
        if at is None and not self._clock.synced():
            raise CommunityError(CHECK_CLOCK_NOT_SET)
        when = at or self._clock.now()
        if when.tzinfo is None:
            raise CommunityError("at: needs a time zone")
        day = self._today(when)
        if day not in set(person.period(day)):
            raise CommunityError(f"{day}: outside the observation period of person {person_id}")
        temp = round(value, 2)
        fever = value >= self.fever_threshold_c
        row = {
            "person_id": person_id,
            "day": day.isoformat(),
            "at": _stamp(when),
            "temp_c": temp,
            "fever": int(fever),
            "actor": who,
        }
        what = {"person_id": person_id, "day": row["day"], "fever": fever}
        audited_write(
            self._log,
            lambda db: db.table("obs_checks").insert(row),
            who,
            "observation.check",
            lambda _: what,
        )
        return Check(person_id, day, when, temp, "helper", fever)

    def acknowledge(self, person_id: int, day: date | str, kind: str, actor: str) -> None:
        """Close an alarm (the guard phoned, the clinic was told)."""
        who = check_actor(actor)
        the_day = _as_date("day", day)
        if kind not in get_args(AlarmKind):
            raise CommunityError("kind: missed_check or fever")
        closed = _closed_by(self._log.reader(), person_id, the_day, kind)
        if closed is not None:  # another guard's tablet closed it first: say who
            raise CommunityError(closed)
        open_now = {(a.person_id, a.day, a.kind) for a in self.alarms()}
        if (person_id, the_day, kind) not in open_now:
            raise CommunityError(f"no open {kind} alarm for person {person_id} on {the_day}")
        row = {
            "person_id": person_id,
            "day": the_day.isoformat(),
            "kind": kind,
            "at": _stamp(self._clock.now()),
            "actor": who,
        }
        what = {k: row[k] for k in ("person_id", "day", "kind")}

        def close(db: sqlite_utils.Database) -> None:
            # Checked again on the single writer: a second tap, or another guard, may have
            # closed it meanwhile (one close, one row, its guard's name kept).
            closed = _closed_by(db, person_id, the_day, kind)
            if closed is not None:
                raise CommunityError(closed)
            db.table("obs_acks").insert(row, replace=True)

        audited_write(self._log, close, who, "observation.ack", lambda _: what)

    # -- reading ----------------------------------------------------------------------------

    def person(self, person_id: int) -> Person:
        missing = f"no person {person_id} in the ledger"
        return _person(row_by_id(self._log, "obs_people", person_id, missing))

    def people(self, *, status: str | None = None, household: str | None = None) -> list[Person]:
        where, args = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        db = self._log.reader()
        if household is not None:  # however it is spelled (``same_text``): b-2-701 is B-2-701
            condition, spellings = household_is(db, "obs_people", household)
            where.append(condition)
            args.extend(spellings)
        sql = f"select * from obs_people where {' and '.join(where)} order by id"  # noqa: S608
        return [_person(r) for r in db.query(sql, args)]

    def corrections(self, person_id: int) -> list[Correction]:
        """What the record said before each correction, oldest first."""
        db = self._log.reader()
        if not has_table(db, "obs_corrections"):
            return []
        rows = db.query(
            "select * from obs_corrections where person_id = ? order by id", [person_id]
        )
        return [
            Correction(
                person_id,
                datetime.fromisoformat(r["at"]),
                r["actor"],
                r["name"] or "",
                r["household"] or "",
                date.fromisoformat(r["date_back"]),
                date.fromisoformat(r["observation_until"]),
            )
            for r in rows
        ]

    def checks(self, person_id: int) -> list[Check]:
        """Every check of the period: the helper's entries and the gate's readings."""
        person = self.person(person_id)
        db = self._log.reader()
        out = [
            Check(
                person_id,
                date.fromisoformat(r["day"]),
                datetime.fromisoformat(r["at"]),
                float(r["temp_c"]),
                "helper",
                self._helper_fever(r),
            )
            for r in db.query("select * from obs_checks where person_id = ?", [person_id])
        ]
        out.extend(self._gate_checks(db, person))
        return sorted(out, key=lambda c: c.at)

    def _gate_checks(self, db: sqlite_utils.Database, person: Person) -> list[Check]:
        if not has_table(db, "events") or not person.name:
            return []
        start, _ = day_bounds(person.date_back, self._tz)
        _, end = day_bounds(person.observation_until, self._tz)
        # The pass may spell the household otherwise than the registration (another case, a
        # full-width ３－２－７０１): every spelling the log holds that the gate's rule takes
        # for it (``same_text``, as the observation snapshot matches), among the period's
        # readings (the ``ts`` index) and those stamped on a clock not set (dated below).
        key = same_text(person.household)
        codes = db.execute(
            "select household from events where ts >= ? and ts < ? and temp_c is not null"
            " union select household from events where clock_synced = 0 and temp_c is not null",
            [start, end],
        )
        found = {str(c) for (c,) in codes if c is not None and same_text(str(c)) == key}
        spellings = sorted({person.household, *found})
        marks = ", ".join("?" * len(spellings))
        # When the reading happened: one stamped before NTP stepped the clock, dated by its
        # boot's synchronised clock (``kiosk.dating``), as the daily report counts it.
        events, ts = dated_source(db)
        rows = db.query(
            f"select seq, {ts} as ts, household, holder, temp_c, temp_object_c, reasons, flags"  # noqa: S608
            f" from {events}"
            f" where household in ({marks}) and temp_c is not null and holder is not null"
            f" and {ts} >= ? and {ts} < ? order by seq",
            [*spellings, start, end],
        )
        name = same_text(person.name)
        checks, fevers = [], set[int]()
        for r in rows:
            if same_text(r["holder"]) != name:
                continue
            when = datetime.fromisoformat(r["ts"])
            # As the gate decided it then (``judged_fever``), not by today's threshold.
            fever = judged_fever(r, fevers)
            if fever:
                fevers.add(int(r["seq"]))
            checks.append(
                Check(person.id, self._today(when), when, float(r["temp_c"]), "gate", fever)
            )
        return checks

    def _helper_fever(self, row: Mapping[str, Any]) -> bool:
        """A helper's reading as it was judged when typed in (``obs_checks.fever``, by the
        threshold then); today's threshold only for a row that holds no verdict."""
        if row["fever"] is not None:
            return bool(row["fever"])
        return float(row["temp_c"]) >= self.fever_threshold_c

    def alarms(self, now: datetime | None = None) -> list[Alarm]:
        """Open alarms of everyone under observation, oldest first."""
        when = now or self._clock.now()
        today = self._today(when)
        due = when.astimezone(self._tz).time() >= self.check_due
        db = self._log.reader()
        acked = {  # of those observed: not every ack ever written
            (int(r["person_id"]), r["day"], r["kind"])
            for r in db.query(
                "select person_id, day, kind from obs_acks where person_id in"
                " (select id from obs_people where status = 'observing')"
            )
        }
        out: list[Alarm] = []
        for person in self.people(status="observing"):
            checks = self.checks(person.id)
            checked = {c.day for c in checks}
            for day in person.period(today):
                if day not in checked and (day < today or due):
                    out.append(Alarm(person.id, day, "missed_check", person.household))
            for day in sorted({c.day for c in checks if c.fever}):
                out.append(Alarm(person.id, day, "fever", person.household))
        open_ = [a for a in out if (a.person_id, a.day.isoformat(), a.kind) not in acked]
        return sorted(open_, key=lambda a: (a.day, a.person_id, a.kind))

    def due_for_clearing(self, today: date | None = None) -> list[Person]:
        """Still ``observing`` though the period is over: the manager's to-do."""
        day = today or self._today(self._clock.now())
        return [p for p in self.people(status="observing") if p.observation_until < day]

    def snapshot(self) -> ObservationSnapshot:
        periods: dict[tuple[str, str], list[tuple[date, date]]] = {}
        for p in self.people(status="observing"):
            if p.name:
                span = (p.date_back, p.observation_until)
                periods.setdefault(_key(p.household, p.name), []).append(span)
        return ObservationSnapshot({k: tuple(v) for k, v in periods.items()})

    def counts(self, day: date) -> dict[str, int]:
        return counts_for_day(self._log.reader(), day, self._tz)

    # -- helpers ----------------------------------------------------------------------------

    def _today(self, when: datetime) -> date:
        return when.astimezone(self._tz).date()

    def _check_back(self, back: date, reading: ClockReading) -> None:
        """A day back no later than today, nor more than ``MAX_DAYS_BACK`` days before it."""
        today = self._today(reading.wall)
        if back > today:
            # On a clock NTP has not set (1970 on a Pi booted without network, the last
            # shutdown's time after a power cut) the day back is not what is wrong.
            raise CommunityError(
                "date_back: lies in the future" if reading.synced else CLOCK_NOT_SET
            )
        if back < today - timedelta(days=MAX_DAYS_BACK):
            raise CommunityError(f"date_back: more than {MAX_DAYS_BACK} days ago")

    def _status_row(
        self,
        db: sqlite_utils.Database,
        person_id: int,
        status: str,
        reading: ClockReading,
        actor: str,
    ) -> None:
        row = {"person_id": person_id, "status": status, "at": _stamp(reading.wall)}
        held = clock_of(reading, self._boot_id)
        if held is not None:
            row["clocks"] = json.dumps({"at": held})
        db.table("obs_status").insert(row | {"actor": actor})

    def _changed(self, person_id: int) -> Person:
        current = self.load()
        if self._on_change is not None:
            self._on_change(current)
        return self.person(person_id)


def _changed_since(person: Person) -> str:
    """A correction from a page drawn before the record was corrected again: what it is now."""
    return (
        f"person {person.id} changed since the page was drawn: it is now name {person.name},"
        f" household {person.household}, back {person.date_back.isoformat()},"
        f" until {person.observation_until.isoformat()}; not changed"
    )


def _stamp(when: datetime) -> str:
    """The event log's fixed-width UTC form, so ledger times compare with ``day_bounds``."""
    return format_ts(when)


def _as_date(name: str, value: date | str) -> date:
    if isinstance(value, datetime):
        raise CommunityError(f"{name}: a date, not a time")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(clean_text(name, value, max_len=10))
    except ValueError:
        raise CommunityError(f"{name}: expected YYYY-MM-DD") from None


#: A corrected field's column, where its name is not the column's.
_COLUMN = {"until": "observation_until"}


def _dates(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"date_back": row["date_back"], "until": row["observation_until"]}
