"""The compound map (平面图): buildings → units → floors → households, and who is where.

The manager already has the compound as a spreadsheet; ``plan_import`` reads it (CSV or
.xlsx, columns ``building``, ``unit``, ``floor``, ``household``, optional ``residents``),
checks every row and says what would change; ``apply`` replaces the map with it in one
transaction and audits the counts. A household code is unique across the compound (the same
code the passes and lists use).

``statuses(db, day, lists, quota_used)`` marks every household for one local day:

* ``quarantined``: a home-quarantine entry (household or a person in it) is active;
* ``observing``: a returnee of the household is under observation (the returnee ledger), or
  the household ledger says so (``Lists.households[...].observation_until``);
* ``quota_used``: a resident going out now would be denied ``quota_exceeded``: the caller
  hands in ``kiosk.policy.quota_used`` (the gate's own rule on the gate's passage history:
  the rolling period, exempt roles left out, nothing while the quota is off);
* ``open_request``: a household service request is open.

``grid`` lays that out per building for the guard console (floors top down, as drawn).
The map holds no names; household codes are personal data in exports (masked by role).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlite_utils

from .clock import Clock
from .community import CommunityError, check_actor, clean_text, has_table, record_dict, replace_rows
from .dating import dated_source
from .headers import HEADERS, Column, refuse_at
from .lists import Lists, same_text
from .schema import sql_migrations
from .sheets import Diff, Layout, Table, diff_rows, read_table
from .store import format_ts

if TYPE_CHECKING:
    from .community import LogLike

__all__ = [
    "MIGRATIONS",
    "STATUSES",
    "CompoundMap",
    "Dwelling",
    "ImportPlan",
    "marks_of",
    "quarantined",
    "statuses",
]

STATUSES = ("quarantined", "observing", "quota_used", "open_request")
COLUMNS = ("building", "unit", "floor", "household", "residents")
MAX_FLOOR = 200

MIGRATIONS = sql_migrations(
    "kiosk.compound",
    m001_compound="""
    CREATE TABLE compound_households (
        household TEXT PRIMARY KEY, building TEXT, unit TEXT, floor INTEGER,
        residents INTEGER, updated_at TEXT
    );
    CREATE INDEX idx_compound_households_building_unit_floor
        ON compound_households (building, unit, floor);
    """,
)


@dataclass(frozen=True, slots=True)
class Dwelling:
    household: str
    building: str
    unit: str
    floor: int
    residents: int | None = None

    def row(self) -> dict[str, Any]:
        """The columns besides the key (``household``)."""
        return record_dict(self, omit=("household",))


@dataclass(frozen=True)
class ImportPlan:
    """A checked import not applied yet: the new map and what it changes."""

    dwellings: tuple[Dwelling, ...]
    diff: Diff = field(default_factory=Diff)
    layout: Layout = field(default_factory=Layout)  # the file's header line, lines skipped


def _int(field: str, text: str, at: tuple[int, Sequence[Column]], low: int, high: int) -> int:
    line, columns = at
    try:
        value = int(text)
    except ValueError:
        refuse_at(line, field, columns, f"{text!r} is not a whole number")
    if not low <= value <= high:
        refuse_at(line, field, columns, f"must be {low} to {high}")
    return value


def _text(field: str, row: Mapping[str, str], at: tuple[int, Sequence[Column]], **how: Any) -> str:
    try:
        return clean_text(field, row.get(field, ""), **how)  # "household: required"
    except CommunityError as exc:
        refuse_at(at[0], field, at[1], str(exc).removeprefix(f"{field}: "))


def _dwelling(row: Mapping[str, str], line: int, columns: Sequence[Column] = ()) -> Dwelling:
    """A row of the map; a value refused names its column as the clerk headed it (楼层)."""
    at = (line, columns)
    household = _text("household", row, at, max_len=40)
    building = _text("building", row, at, max_len=40)
    unit = _text("unit", row, at, max_len=20, required=False)
    floor = _int("floor", row.get("floor", ""), at, -5, MAX_FLOOR)
    residents_text = row.get("residents", "")
    residents = _int("residents", residents_text, at, 0, 99) if residents_text else None
    return Dwelling(household, building, unit, floor, residents)


def parse_map(table: Table) -> tuple[Dwelling, ...]:
    """Every row checked; the first problem (by line) is the error, nothing is kept."""
    if unknown := [c for c in table.header if c not in COLUMNS]:
        raise CommunityError(f"unknown columns: {', '.join(unknown)}")
    seen: dict[str, tuple[int, str]] = {}  # same_text: as the lists and the marks match it
    out = []
    for line, row in table.numbered():
        dwelling = _dwelling(row, line, table.layout.columns)
        code = dwelling.household
        if (first := seen.get(same_text(code))) is not None:
            before, spelled = first
            if spelled == code:
                raise CommunityError(f"line {line}: household {code} is already on line {before}")
            raise CommunityError(
                f"line {line}: household {code} is household {spelled} of line {before}"
                " (households are matched without case or width): one of them is a mistake"
            )
        seen[same_text(code)] = (line, code)
        out.append(dwelling)
    if not out:
        raise CommunityError("the map has no households")
    return tuple(out)


def _dwellings(db: sqlite_utils.Database) -> list[Dwelling]:
    if not has_table(db, "compound_households"):
        return []
    return [
        Dwelling(r["household"], r["building"], r["unit"] or "", int(r["floor"]), r["residents"])
        for r in db.query("select * from compound_households order by building, unit, floor")
    ]


def marks_of(marks: Mapping[str, tuple[str, ...]], household: str) -> tuple[str, ...]:
    """The statuses ``marks`` (``statuses``) holds for ``household`` however it was typed
    (``kiosk.lists.same_text``: full-width ``１-１０１`` is the map's ``1-101``)."""
    key = same_text(household)
    found = {s for h, m in marks.items() if same_text(h) == key for s in m}
    return tuple(s for s in STATUSES if s in found)


def quarantined(lists: Lists, day: date) -> set[str]:
    """The households with a home-quarantine entry (the household or a person in it) active on
    local ``day``, spelled as the list has them: the ``quarantined`` mark (the map, the
    service desk, the registration form)."""
    return {entry.household for entry in lists.quarantine if entry.active_on(day)}


def statuses(
    db: sqlite_utils.Database, day: date, lists: Lists, quota_used: Collection[str] = ()
) -> dict[str, tuple[str, ...]]:
    """Household → its statuses on local ``day`` (only households that have one);
    ``quota_used``: the households whose quota is used up now (``kiosk.policy.quota_used``)."""
    marks: dict[str, set[str]] = {}

    def mark(household: str, status: str) -> None:
        marks.setdefault(household, set()).add(status)

    for quarantined_household in quarantined(lists, day):
        mark(quarantined_household, "quarantined")
    # One mark a household however the list spells it: the stored entries would mark each
    # observed spelling of a household the map lacks (on the map, ``_as_on_map`` folds them).
    for household in lists.merged_households():
        if household.under_observation(day):
            mark(household.household, "observing")
    if has_table(db, "obs_people"):
        for r in db.query(
            "select household from obs_people where status = 'observing'"
            " and date_back <= ? and observation_until >= ?",
            [day.isoformat(), day.isoformat()],
        ):
            mark(r["household"], "observing")
    if has_table(db, "service_requests"):
        for r in db.query(
            "select distinct household from service_requests where state in ('open', 'taken')"
        ):
            mark(r["household"], "open_request")
    for household_code in quota_used:
        mark(household_code, "quota_used")
    return _as_on_map(db, {h: tuple(s for s in STATUSES if s in m) for h, m in marks.items()})


def _as_on_map(
    db: sqlite_utils.Database, marks: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """The marks under the map's spelling of each household: a list may write it otherwise
    (full width, another case: ``kiosk.lists.same_text``), and the map, the console's pages
    and the service desk look households up as the map has them."""
    spelled: dict[str, str] = {}
    if has_table(db, "compound_households"):
        for r in db.query("select household from compound_households"):
            spelled[same_text(r["household"])] = r["household"]
    merged: dict[str, set[str]] = {}
    for household, found in marks.items():
        merged.setdefault(spelled.get(same_text(household), household), set()).update(found)
    return {h: tuple(s for s in STATUSES if s in m) for h, m in sorted(merged.items())}


class CompoundMap:
    """The map on the event log's database: import (plan, then apply), read, lay out."""

    def __init__(self, log: LogLike, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    def dwellings(self) -> list[Dwelling]:
        return _dwellings(self._log.reader())

    def version(self) -> int:
        """Which map is in force: the ``seq`` of its import's audit row (every change of the
        map is one, ``apply``), 0 before any. One indexed read: what a copy of the map kept
        in memory (the console's dwellings to pick from) is checked against."""
        found = self._log.reader().execute(
            "select max(seq) from audit where action = 'compound.import'"
        )
        return int(found.fetchone()[0] or 0)

    def row_ids(self) -> dict[str, int]:
        """Household → its row on the map: how the console addresses a household (a code
        is personal data and stays out of URLs)."""
        db = self._log.reader()
        if not has_table(db, "compound_households"):
            return {}
        rows = db.query("select rowid, household from compound_households")
        return {str(r["household"]): int(r["rowid"]) for r in rows}

    def lacking(self, households: Iterable[str]) -> list[str]:
        """Those of ``households`` not on the map, however either spells them
        (``lists.same_text``), sorted: a list entry for one is likely a typo (``9-999`` for
        ``9-909``). No map (or an empty one): none, there is nothing to check them by."""
        db = self._log.reader()
        if not has_table(db, "compound_households"):
            return []
        codes = db.execute("select household from compound_households").fetchall()
        known = {same_text(str(h)) for (h,) in codes}
        return sorted({h for h in households if known and same_text(h) not in known})

    def household_at(self, row: int) -> str | None:
        """The household on map row ``row``, if there is one."""
        return next((h for h, i in self.row_ids().items() if i == row), None)

    def passages(self, household: str, limit: int = 50) -> list[dict[str, Any]]:
        """The household's latest passages at the gate, newest first, however its passes
        spell it (``lists.same_text``: rows written before input was folded keep a
        full-width ``５－７０２``)."""
        db = self._log.reader()
        if not has_table(db, "events"):
            return []
        key = same_text(household)
        # The distinct codes come from the household index, not the table.
        codes = db.execute("select distinct household from events where household is not null")
        spellings = sorted({str(c) for (c,) in codes if same_text(str(c)) == key} | {household})
        # ``ts``: when it happened (one stamped before NTP stepped the clock, dated by its
        # boot's synchronised clock: ``kiosk.dating``), as the day's export shows it;
        # ``stamped`` and the clocks: what it was stamped with (``kiosk.queries.dated``).
        events, ts = dated_source(db)
        cols = f"seq, {ts} as ts, ts as stamped, boot_id, mono_ns, clock_synced"
        return list(
            db.query(
                f"select {cols}, direction, decision, reasons, temp_c from {events}"  # noqa: S608
                " where household in (select value from json_each(?)) order by seq desc limit ?",
                [json.dumps(spellings), max(1, min(int(limit), 500))],
            )
        )

    def plan_import(self, data: bytes, filename: str) -> ImportPlan:
        """Read and check the file; say what applying it would change."""
        required, texts = ("building", "floor", "household"), ("building", "unit", "household")
        table = read_table(data, filename, required, texts, columns=HEADERS["compound"])
        new = parse_map(table)
        current = {d.household: d.row() for d in self.dwellings()}
        diff = diff_rows(current, {d.household: d.row() for d in new}, replace=True)
        return ImportPlan(new, diff, table.layout)

    def apply(self, plan: ImportPlan, actor: str) -> dict[str, int]:
        """Replace the map with the plan's, in one transaction; audited with the counts."""
        who = check_actor(actor)
        stamp = format_ts(self._clock.now())
        rows = [{"household": d.household, **d.row(), "updated_at": stamp} for d in plan.dwellings]
        counts = plan.diff.counts()
        what = {"households": len(rows), **counts}
        replace_rows(
            self._log, "compound_households", rows, "household", (who, "compound.import", what)
        )
        return counts

    def grid(self, marks: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        """Buildings, each with its units and floors (top floor first), each floor with its
        households and their statuses: what the console draws."""
        buildings: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}
        for d in self.dwellings():
            floors = buildings.setdefault(d.building, {}).setdefault(d.unit, {})
            floors.setdefault(d.floor, []).append(
                {"household": d.household, "statuses": list(marks.get(d.household, ()))}
            )
        return [
            {
                "building": building,
                "units": [
                    {
                        "unit": unit,
                        "floors": [
                            {"floor": f, "households": sorted(hs, key=lambda h: h["household"])}
                            for f, hs in sorted(floors.items(), reverse=True)
                        ],
                    }
                    for unit, floors in sorted(units.items())
                ],
            }
            for building, units in sorted(buildings.items())
        ]
