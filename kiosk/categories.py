"""The daily report in the sub-district office's categories (统计报表), and its exports.

``community_section(db, day, tz)`` adds to ``kiosk.stats.compute_report`` what the office
counts beyond decisions and reasons:

==========================  ====================================================================
``people``                  people in / out: passages of people that ended passed (a guard's
                            decision about a passage is its end, a measure-again retry its
                            next try: ``kiosk.links``), not vehicles
``fevers``                  feverish people at the gate (events with ``fever``, each person once
                            however often refused: ``FeverishPeople``; a car's as many as its
                            occupants found feverish, ``vehicles.feverish_people``), fever
                            checks typed in by helpers for returnees
``returnees``               new (registered that day), under observation at the end of the
                            day, cleared / escalated / transferred during it
``quarantined_households``  households with a home-quarantine entry active that day
``registrations``           people registered by hand at the gate (no phone / no health code)
``vehicles``                vehicle registrations (one driver each), their passengers
                            (``occupants``: not counting the driver), plates not on the
                            resident-vehicle list
``service_requests``        opened, done, open at the end of the day, by kind
``unknown_dwellings``       guards' passes of a person without a pass under a dwelling the gate
                            did not know, kept as typed (``unknown_dwelling``: the household's
                            quarantine, quota and observation never checked)
==========================  ====================================================================

A figure that the database cannot know is ``None``, never 0: the district database holds only
the gates' events (``office.district``), so there the ledgers' figures are ``None``; a masked
plate cannot be checked against the list. Counts only: no names, households or plates.

``report_rows`` flattens a report into (category, item, value) rows and ``report_sheets``
into a workbook's sheets (the categories, by hour, by reason; and for a district report,
which gates' ledgers are in it and which are missing, and a sheet by gate): a gate's files
are ``kiosk.stats.report_file``.

A file in another language than its codes (``words``: the report's words in one language,
``ui.report_words``; the core holds no words of its own; a gate's files are
``kiosk.stats.report_file``, the district's ``office.district``) keeps every code, number
and date where it was and adds words: ``worded`` writes a sheet's header in words and
appends a column of words for each column of codes (category, item, reason);
``worded_sheets`` names the sheets in words too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from . import observation, services
from .community import has_table
from .dating import dated_source
from .days import day_bounds
from .engine import UNKNOWN_DWELLING
from .files import streamed_rows
from .links import Key, passage_key, repeats
from .lists import same_text
from .unreadable import also_checked, readable_rows
from .vehicles import feverish_people, known_plates, normalise_plate

__all__ = [
    "EXITS_ITEMS",
    "FEVER_COLUMNS",
    "UNKNOWN",
    "VALUE_COLUMNS",
    "FeverishPeople",
    "Words",
    "category_words",
    "columns_or_null",
    "changes_text",
    "changes_words",
    "community_section",
    "exits_rows",
    "item_words",
    "quarantine_lists",
    "report_rows",
    "report_sheets",
    "rule_text",
    "value_words",
    "worded",
    "worded_sheets",
]

_PASSED = ("pass", "manual_pass")

#: The events' columns ``FeverishPeople`` tells people apart by.
FEVER_COLUMNS = ("kiosk_id", "seq", "kind", "person", "pass_id", "household", "holder")


def columns_or_null(db: sqlite_utils.Database, names: Sequence[str]) -> str:
    """``names`` as a select list of the events table, ``null as NAME`` for a column it lacks
    (the district's copy holds no pass ids nor holders, an old log no ``kind``)."""
    have = {c.name for c in db.table("events").columns}
    return ", ".join(n if n in have else f"null as {n}" for n in names)


class FeverishPeople:
    """The feverish people among events carrying ``fever`` (the report's ``fevers.gate`` and
    ``fever_alarms.people``, the handover's ``fevers``): the office's 发热 counts people, not
    alarms, and a resident refused twice for a fever (a retry after a fever deny is a new
    passage) is one. Whom an event is about is what it records (``_fever_keys``): a pass by
    its id; anyone else by name and dwelling (the holder and household, else the ``person``
    typed at a registration: ``name`` with ``unit``, else ``phone``), folded as the gate's
    lists match them (``kiosk.lists.same_text``); a car's occupants found feverish
    (``vehicles.feverish_people``: the hottest so many of them) each by name and plate. What
    names nobody, or comes masked (a pull with ``logs:read``: a code or initial would merge
    people), is the event's own person or people. A pass refused at the kiosk and the same
    person registered by hand without choosing that passage are two: nothing recorded ties
    them. ``add`` takes a row with ``FEVER_COLUMNS``."""

    def __init__(self) -> None:
        self._people: set[tuple[str, ...]] = set()

    def add(self, row: Mapping[str, Any]) -> None:
        self._people.update(_fever_keys(row))

    @property
    def total(self) -> int:
        return len(self._people)


def _fever_keys(row: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Whom a row carrying ``fever`` is about, one key per person (``FeverishPeople``)."""
    event = (str(row["kiosk_id"]), str(row["seq"]))
    person = _person_of(row)
    if row["kind"] == "vehicle":
        return _occupant_keys(person, event)
    if row["pass_id"]:
        return [("pass", str(row["pass_id"]))]
    who = _clear(row["holder"]) or _clear(person.get("name"))
    where = _clear(row["household"]) or _clear(person.get("unit"))
    phone = _clear(person.get("phone"))
    if who and where:
        return [("named", same_text(who), same_text(where))]
    if who and phone:
        return [("phoned", same_text(who), "".join(c for c in phone if c.isdigit()))]
    return [("event", *event)]


def _occupant_keys(car: Mapping[str, Any], event: tuple[str, str]) -> list[tuple[str, ...]]:
    """A car's feverish occupants: the hottest ``feverish_people`` of the driver and the
    passengers, each by plate and name when both are in clear, else by the event and place."""
    riders = [(car.get("driver"), car.get("driver_temp_c"))]
    passengers = car.get("passengers")
    if isinstance(passengers, list):
        riders += [(p.get("name"), p.get("temp_c")) for p in passengers if isinstance(p, dict)]
    hottest = sorted(riders, key=lambda r: _temp(r[1]), reverse=True)
    plate = _clear(car.get("plate"))
    keys: list[tuple[str, ...]] = []
    for i in range(feverish_people("vehicle", car)):
        name = _clear(hottest[i][0]) if i < len(hottest) else None
        if plate and name:
            keys.append(("rider", normalise_plate(plate), same_text(name)))
        else:
            keys.append(("event", *event, str(i)))
    return keys


def _person_of(row: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        person = json.loads(row["person"]) if row["person"] else None
    except (TypeError, ValueError):
        person = None
    return person if isinstance(person, dict) else {}


def _clear(value: object) -> str | None:
    """A name, dwelling, phone or plate as typed, or None when empty or masked (a masked code
    or phone keeps two characters behind stars, a masked name is an initial: ``Z.``, ``张*``)."""
    if not isinstance(value, str) or not value.strip() or "*" in value:
        return None
    return None if re.fullmatch(r"\w\.", value.strip()) else value


def _temp(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _event_counts(db: sqlite_utils.Database, start: str, end: str) -> dict[str, Any]:
    cols = {c.name for c in db.table("events").columns}
    kind = "kind" if "kind" in cols else "'passage'"
    named = columns_or_null(db, ("person", "pass_id", "household", "holder"))
    fevers = FeverishPeople()
    registrations = vehicles = occupants = unknown_dwellings = 0
    plates: list[str | None] = []
    # How each passage of a person ended (``kiosk.links.passage_key``: a guard's decision
    # about one is its end, an attempt after a measure-again deny its next try): a deny the
    # guard let through is one person through, one the guard stopped after the kiosk passed
    # it nobody, a resident measured again and passed one person through.
    ends: dict[Key, tuple[str, str]] = {}
    seen: dict[Key, Key] = {}
    source, ts = dated_source(db)  # an event stamped before NTP synced: its real day
    checked = "".join(f", {c}" for c in also_checked(("kiosk_id", "flags", "reasons", "person")))
    sql = (
        f"select seq, kiosk_id, flags, direction, decision, reasons, {kind} as kind,"  # noqa: S608
        f" {named}{checked} from {source} where {ts} >= ? and {ts} < ? order by seq"
    )
    with streamed_rows(db, sql, [start, end]) as rows:  # a day's, the person's JSON too
        for row in readable_rows(rows):  # a damaged row: left out (``kiosk.unreadable``)
            reasons = json.loads(row["reasons"]) if row["reasons"] else []
            if "fever" in reasons:
                fevers.add(row)
            # The deny written after a registration (``links.repeats``) is not another.
            again = row["kind"] in ("vehicle", "registration") and repeats(row) is not None
            if row["kind"] == "vehicle":
                if not again:
                    vehicles += 1
                    car = json.loads(row["person"]) if row["person"] else {}
                    car = car if isinstance(car, dict) else {}
                    occupants += _small_int(car.get("occupants"))
                    plates.append(car.get("plate"))
                continue
            registrations += row["kind"] == "registration" and not again
            unknown_dwellings += _unknown_dwelling(row)
            ends[passage_key(row, seen)] = (row["direction"], row["decision"])
    people = {"in": 0, "out": 0}
    for direction, decision in ends.values():
        if decision in _PASSED and direction in people:
            people[direction] += 1
    return {
        "people": people,
        "fevers": fevers.total,
        "registrations": registrations,
        "vehicles": {
            "registrations": vehicles,
            "occupants": occupants,
            "unknown_plates": _unknown_plates(db, plates),
        },
        "unknown_dwellings": unknown_dwellings,
    }


def _unknown_dwelling(row: Mapping[str, Any]) -> bool:
    """A guard's pass of a person under a dwelling the gate did not know, kept as typed."""
    if row["decision"] != "manual_pass" or not row["flags"]:
        return False
    flags = json.loads(row["flags"])
    return isinstance(flags, list) and UNKNOWN_DWELLING in flags


def _small_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _unknown_plates(db: sqlite_utils.Database, plates: list[str | None]) -> int | None:
    """Plates not on the resident list; None without a list or with a masked plate."""
    if not plates:
        return 0
    known = known_plates(db)
    if not known or any(not isinstance(p, str) or "*" in p for p in plates):
        return None
    unknown = 0
    for plate in plates:
        try:
            unknown += normalise_plate(plate) not in known
        except ValueError:
            unknown += 1
    return unknown


def _quarantined_households(db: sqlite_utils.Database, day: date) -> int | None:
    lists = quarantine_lists(db, day)
    return None if lists is None else lists["office"] + lists["local"]


def quarantine_lists(db: sqlite_utils.Database, day: date) -> dict[str, int] | None:
    """The households quarantined on ``day`` by where their entry came from: ``office`` (the
    office's list bundle, alike at every gate of a compound) and ``local`` (entered at this
    gate only: by a guard, a CSV, and not on the bundle); ``office_compound``, those of
    ``office`` whose entry names this gate's compound (the rest are every compound's; the
    compound is the report's ``compound.lists_for``). ``office`` and ``local`` sum to
    ``quarantined_households``; the district counts the office's list once and sums the
    gates' own (``office.district``). None without the lists' table."""
    if not has_table(db, "list_quarantine"):
        return None
    named = "compound" in db["list_quarantine"].columns_dict
    names = "compound is not null" if named else "0"  # a table from before m004
    rows = db.execute(
        f"select distinct household, source = 'bundle', {names} from list_quarantine"  # noqa: S608
        " where from_date <= ? and until_date >= ?",
        [day.isoformat(), day.isoformat()],
    ).fetchall()
    # One household however its entries spell it (one typed full width before it was folded).
    office = {same_text(r[0]) for r in rows if r[1]}
    local = {same_text(r[0]) for r in rows if not r[1]} - office
    ours = {same_text(r[0]) for r in rows if r[1] and r[2]}
    return {"office": len(office), "local": len(local), "office_compound": len(ours)}


def community_section(db: sqlite_utils.Database, day: date, tz: ZoneInfo) -> dict[str, Any]:
    """The office's categories for local ``day`` (see the module doc)."""
    start, end = day_bounds(day, tz)
    counts = _event_counts(db, start, end)
    returnees: dict[str, int] | None = None
    returnee_fevers: int | None = None
    if has_table(db, "obs_people"):
        returnees = observation.counts_for_day(db, day, tz)
        returnee_fevers = returnees.pop("fever_checks")
    desk = has_table(db, "service_requests")
    return {
        "people": counts["people"],
        "fevers": {"gate": counts["fevers"], "returnee_checks": returnee_fevers},
        "returnees": returnees,
        "quarantined_households": _quarantined_households(db, day),
        "registrations": counts["registrations"],
        "vehicles": counts["vehicles"],
        "service_requests": services.counts_for_day(db, day, tz) if desk else None,
        "unknown_dwellings": counts["unknown_dwellings"],
    }


def report_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """(category, item, value) rows of a daily report, the header first."""
    rows: list[list[Any]] = [["category", "item", "value"]]
    rows.append(["report", "day", report.get("day")])
    # Whose day it is: the site's zone, or the zone a purged day was frozen in before the
    # site's was corrected (``kiosk.stats.frozen_report``).
    rows.append(["report", "timezone", report.get("timezone")])
    # The name a purged day's copy was frozen under when this system's zone data lacks it:
    # its figures are that clock's day, shown under ``timezone`` (``frozen_report``).
    if report.get("frozen_timezone"):
        rows.append(["report", "frozen_timezone", report["frozen_timezone"]])
    rows.append(["report", "scope", report.get("scope", "gate")])
    rows.append(["report", "gates", ", ".join(report.get("kiosks", []))])
    rows.append(["report", "events", report.get("events")])
    for decision, n in report.get("by_decision", {}).items():
        rows.append(["decisions", decision, n])
    # The passages by how they ended, as the guard's statistics count them (a deny the guard
    # overrode is one passage); absent from a report frozen before they were counted.
    passages = report.get("passages")
    if isinstance(passages, Mapping):
        rows += [["passages", k, passages.get(k)] for k in ("total", "passed", "denied")]
    # The guards' decisions by what they did (``kiosk.stats``); absent from a report frozen
    # before they were counted.
    overrides = report.get("overrides")
    rows += _category_rows({"overrides": overrides}) if isinstance(overrides, Mapping) else []
    ledgers = report.get("ledgers")
    if isinstance(ledgers, Mapping):
        reporting = [str(g.get("kiosk_id")) for g in ledgers.get("gates", [])]
        rows.append(["ledgers", "gates", ", ".join(reporting)])
        rows.append(["ledgers", "missing", ", ".join(map(str, ledgers.get("missing", [])))])
    rows += _category_rows(report.get("community") or {})
    # The day split by the staffed hours (``kiosk.stats.staffing_section``): what the kiosk
    # decided alone; absent from a report made without it (the district's).
    staffing = report.get("staffing")
    rows += _category_rows({"staffing": staffing}) if staffing else []
    # A gate's outings per household; the district writes its own, and each compound's, with
    # its compounds (``office.district``).
    if report.get("scope", "gate") == "gate":
        rows += exits_rows(report.get("exits_per_household"), report.get("timezone"))
    return rows + _downtime_rows(report.get("downtime"))


#: A figure the report holds as ``null``: written out, so a spreadsheet never sums it as 0.
UNKNOWN = "unknown"
#: ``exits_per_household``'s figures a report's file writes, a gate's and the district's.
EXITS_ITEMS = (
    "quota_enabled", "quota_exits", "period_days", "households", "exits", "max",
    "over_quota_households",
)  # fmt: skip


def exits_rows(section: object, zone: object) -> list[list[Any]]:
    """A gate's ``exits_per_household`` as rows ``exits_per_household, ITEM, VALUE``: each of
    ``EXITS_ITEMS`` (``null`` written ``UNKNOWN``), whose outings count (``quota_roles``) and
    ``quota_changes`` (``changes_text``, on the clock of ``zone``, the report's; ``none``
    for a day whose rule did not change): what the district's file writes of each compound.
    No rows without the section (a report frozen before it was counted)."""
    if not isinstance(section, Mapping):
        return []
    rows = [[k, section.get(k)] for k in EXITS_ITEMS[:3]]
    rows.append(["quota_roles", ", ".join(section.get("quota_roles") or ()) or "every role"])
    rows += [[k, section.get(k)] for k in EXITS_ITEMS[3:]]
    changes = [
        {"from": c.get("from"), "period_days": c.get("period_days")}
        | {k: c.get(f"quota_{k}") for k in ("enabled", "exits", "roles")}
        for c in section.get("quota_changes") or ()
    ]
    left_out = int(section.get("quota_changes_left_out") or 0)
    rows.append(["quota_changes", changes_text(changes, zone, left_out) if changes else "none"])
    return [["exits_per_household", k, UNKNOWN if v is None else v] for k, v in rows]


def rule_text(quota: Mapping[str, Any] | None, *, zoned: bool = True) -> str:
    """A rule as one text, ``1 every 2 days (resident, Asia/Shanghai)``; ``zoned``: with its
    ``timezone`` (a rule of ``quota_changes`` has none of its own)."""
    if not quota:
        return UNKNOWN
    if not quota.get("enabled"):
        return "off"
    roles = ", ".join(quota.get("roles") or ()) or "every role"
    when = f"{quota.get('exits')} every {quota.get('period_days')} days"
    zone = f", {quota.get('timezone')}" if zoned else ""
    return f"{when} ({roles}{zone})"


def changes_text(changes: Sequence[Mapping[str, Any]], zone: object, left_out: int) -> str:
    """The rules of a day whose quota changed as one text, each from when it came into force
    on the clock of ``zone`` (UTC, said, where the name is none this system knows):
    ``start 1 every 2 days (resident); 12:00 off``; ``left_out`` rules not listed said after
    the first. Each rule is ``from`` (None: in force when the day began) and ``rule_text``'s
    fields."""
    try:
        clock, said = ZoneInfo(str(zone)), ""
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        clock, said = ZoneInfo("UTC"), " UTC"
    parts = []
    for rule in changes:
        since = rule.get("from")
        at = "start" if since is None else datetime.fromisoformat(since).astimezone(clock)
        when = at if isinstance(at, str) else at.strftime("%H:%M") + said
        parts.append(f"{when} {rule_text(rule, zoned=False)}")
    if left_out:
        parts.insert(1, f"({left_out} more rule{'' if left_out == 1 else 's'} not listed)")
    return "; ".join(parts)


#: A restart's and a fault spell's fields, as ``kiosk.stats.downtime_section`` gives them.
_RESTART = ("from", "booted", "to", "minutes", "kind")
_SPELL = ("reason", "from", "to", "events")
#: A spell of the Pi's own under-voltage or throttling (``kiosk.stats.power_section``).
_POWER = ("condition", "from", "to", "minutes", "flaps", "dating")


def _downtime_rows(section: object) -> list[list[Any]]:
    """When the gate was down or out of order (``kiosk.stats.downtime_section``), as rows
    ``downtime, restarts.1.from, 2026-03-02T10:02:11+08:00``: absent without it."""
    if not isinstance(section, Mapping):
        return []
    totals: tuple[str, ...] = ("boots", "restarts_total", "restart_minutes", "faults_total")
    totals += ("power_total",) if "power_total" in section else ()  # a gate's own report
    rows = [["downtime", key, section.get(key)] for key in totals]
    for name, fields in (("restarts", _RESTART), ("faults", _SPELL), ("power", _POWER)):
        for i, entry in enumerate(section.get(name) or (), 1):
            rows += [["downtime", f"{name}.{i}.{key}", entry.get(key)] for key in fields]
    return rows


def _category_rows(section: Mapping[str, Any], *first: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for category, value in section.items():
        if isinstance(value, Mapping):
            for item, n in _flatten(value):
                rows.append([*first, category, item, n])
        else:
            rows.append([*first, category, "", value])
    return rows


def _flatten(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.extend(_flatten(item, name + "."))
        else:
            out.append((name, item))
    return out


def csv_file(text: str) -> bytes:
    """A report's CSV text as a file's bytes: UTF-8, with the BOM first when any of it is not
    ASCII (a gate's or compound's name in Chinese): Excel on Windows reads a CSV without one
    in the machine's code page (GBK on a Chinese Windows), which garbles it."""
    return ("\ufeff" + text if not text.isascii() else text).encode("utf-8")


def _hour_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """The 'by hour' sheet: the day's real hours with their UTC offsets (``hours``: the hour
    the autumn change repeats has two rows, the one the spring change skips none); a report
    without them (frozen before, the district's) its 24 clock hours."""
    hours = report.get("hours")
    if not isinstance(hours, list) or not hours:
        return [["hour", "events"], *([h, n] for h, n in enumerate(report.get("by_hour", [])))]
    rows: list[list[Any]] = [["hour", "events", "utc_offset"]]
    rows += ([x["hour"], x["events"], f"UTC{x['start'][-6:]}"] for x in hours)
    return rows


def report_sheets(report: Mapping[str, Any]) -> dict[str, list[list[Any]]]:
    """The daily report's workbook sheets: daily report, by hour, by reason, and by gate for a
    report of several gates (the district's, which adds its own after them)."""
    hours = _hour_rows(report)
    reasons = [["reason", "events"], *([r, n] for r, n in report.get("by_reason", {}).items())]
    sheets = {"daily report": report_rows(report), "by hour": hours, "by reason": reasons}
    gates = report.get("by_gate")
    if isinstance(gates, list):
        sheets["by gate"] = [["gate", "category", "item", "value"]]
        for gate in gates:
            sheets["by gate"] += _category_rows(gate.get("community") or {}, gate.get("kiosk_id"))
    return sheets


#: A report's words in one language (``ui.report_words``): the text of a key (``sheet.NAME``,
#: ``col.NAME``, ``col.NAME.words``, ``r.CATEGORY``, ``r.CATEGORY.ITEM``, ``k.KIND``,
#: ``reason.CODE``, ``so_far``), or None where it has none (the code is shown).
Words = Callable[[str], str | None]
#: The columns that hold codes: each gets a column of its words after the sheet's last.
CODED = ("category", "item", "reason")
#: The columns that hold a value that is a code (the district's ``compounds`` sheet,
#: ``office.district.COMPOUND_COLUMNS``), each with the report item it is: a column of its
#: words after the sheet's last too (``value_words``: 是 for ``True``), added 2026-12-08.
VALUE_COLUMNS = {"quota_enabled": "quota_enabled", "roles": "quota_roles",
                 "quota_changes": "quota_changes"}  # fmt: skip
#: Categories named by a kind and an id (``gate gate-01``, the district's): whose items they hold.
_NAMED = {"gate": "report", "compound": "exits_per_household"}


def category_words(words: Words, category: object) -> str:
    """A category in words: ``r.CATEGORY``; one named by a kind and an id, the kind's word
    and the id (``岗点 gate-01``); the code itself where there is no word."""
    text = "" if category is None else str(category)
    kind, _, name = text.partition(" ")
    if name and kind in _NAMED:
        return f"{words(f'r.{kind}') or kind} {name}"
    return words(f"r.{text}") or text


def item_words(words: Words, category: object, item: object) -> str:
    """An item in words: ``r.CATEGORY.ITEM``, else each part of a dotted item (a section
    inside a section: ``staffed.passages.passed``) by its words in the part before it, joined
    by ``·``; a number (the third restart) stays a number, a part with no word of its own
    the words of the column of that name (``col.NAME``: a compound's items are the
    ``compounds`` sheet's columns), else its code."""
    text = "" if item is None else str(item)
    whole = "" if category is None else str(category)
    kind, _, name = whole.partition(" ")
    context = _NAMED.get(kind, kind) if name else whole
    exact = words(f"r.{context}.{text}")
    if exact is not None or not text:
        return exact or ""
    out = []
    for part in text.split("."):
        if part.isdigit():
            out.append(part)
            continue
        keys = (f"r.{context}.{part}", f"r.{part}", f"k.{part}", f"col.{part}")
        out.append(next((w for w in map(words, keys) if w), part))
        context = part
    return "·".join(out)


#: The values of a report that are words of the report's own (``value_words``): the rest
#: (numbers, dates, a rule's text, ids) are shown as they are.
_WORDED_VALUES = ("none", "every role", "off", UNKNOWN)


def value_words(words: Words, item: object, value: object) -> str | None:
    """A report's value that is a code, in words (``v.CODE``): a flag (``quota_enabled``)
    yes or no, whose outings count (``quota_roles``: each role's words, ``every role``), a
    day whose rule did not change (``none``), a figure not known (``unknown``); None for any
    other value (a number, a date, a rule's text), shown as it is. The file's value column
    keeps the value as it always was; these are its words (the page, the words column)."""
    if isinstance(value, bool):
        return words("v.yes" if value else "v.no")
    if not isinstance(value, str):
        return None
    if value in _WORDED_VALUES:
        return words(f"v.{value}")
    if item == "quota_changes":
        return changes_words(words, value)
    if item not in ("quota_roles", "roles"):  # ``roles``: the compounds sheet's column
        return None
    return _roles_words(words, value)


def _roles_words(words: Words, roles: str) -> str:
    """``resident, visitor`` (``rule_text``'s roles) in words: 居民、访客."""
    if roles in _WORDED_VALUES:
        return words(f"v.{roles}") or roles
    said = [words(f"v.role.{role}") or role for role in roles.split(", ")]
    return (words("v.list") or ", ").join(said)


#: The parts of ``changes_text``: a rule from when it came into force (``start``, or the
#: time on the report's clock, `` UTC`` said where its zone is not known), and the rules
#: left out; and ``rule_text``'s rule of a day's change (no zone of its own).
_CHANGE = re.compile(r"(?P<when>start|\d\d:\d\d(?: UTC)?) (?P<rule>.+)")
_LEFT_OUT = re.compile(r"\((?P<n>\d+) more rules? not listed\)")
_RULE = re.compile(r"(?P<exits>\S+) every (?P<days>\S+) days \((?P<roles>[^()]*)\)")


def changes_words(words: Words, text: str) -> str | None:
    """A day's changed rules (``changes_text``: ``start off; 12:00 1 every 2 days
    (resident)``) in words: ``开始时 关闭；12:00 每 2 天 1 次（居民）``. None where a part is
    not one ``changes_text`` writes, or ``words`` has none for it (shown as written)."""
    if words("v.then") is None:  # no words for a day's rules (English): as written
        return None
    said = [_change_words(words, part) for part in text.split("; ")]
    if any(part is None for part in said):
        return None
    return (words("v.then") or "; ").join(part for part in said if part is not None)


def _change_words(words: Words, part: str) -> str | None:
    left = _LEFT_OUT.fullmatch(part)
    if left is not None:
        n = int(left["n"])
        template = words("v.left_out.one" if n == 1 else "v.left_out")
        return None if template is None else template.replace("{n}", str(n))
    change = _CHANGE.fullmatch(part)
    if change is None:
        return None
    when = words("v.start") if change["when"] == "start" else change["when"]
    rule = change["rule"]
    if rule in _WORDED_VALUES:
        return None if when is None else f"{when} {words(f'v.{rule}') or rule}"
    found, template = _RULE.fullmatch(rule), words("v.rule")
    if found is None or template is None or when is None:
        return None
    roles = _roles_words(words, found["roles"])
    filled = template.replace("{exits}", found["exits"]).replace("{days}", found["days"])
    return f"{when} {filled.replace('{roles}', roles)}"


def worded(rows: Sequence[Sequence[Any]], words: Words) -> list[list[Any]]:
    """A sheet's rows (the header first) in ``words``' language: the header's names in words
    and, after the last column, one column of words for each column of codes (``CODED``).
    The codes, numbers and dates stay where they were: a script reads the file as before."""
    if not rows:
        return []
    header = [str(name) for name in rows[0]]
    coded = [i for i, name in enumerate(header) if name in CODED or name in VALUE_COLUMNS]
    out = [
        [words(f"col.{name}") or name for name in header]
        + [words(f"col.{header[i]}.words") or header[i] for i in coded]
    ]
    for row in rows[1:]:
        cells = [*row, *[None] * (len(header) - len(row))]
        out.append(cells + [_cell_words(words, header, cells, i) for i in coded])
    return out


def _cell_words(words: Words, header: list[str], cells: list[Any], at: int) -> str:
    if header[at] in VALUE_COLUMNS:  # the value itself where it is no code (a number)
        said = value_words(words, VALUE_COLUMNS[header[at]], cells[at])
        return said if said is not None else "" if cells[at] is None else str(cells[at])
    if header[at] == "category":
        return category_words(words, cells[at])
    if header[at] == "item":
        category = cells[header.index("category")] if "category" in header else None
        said = item_words(words, category, cells[at])
        # A value that is a code says itself in words beside its item: 外出限额：是.
        value = (
            value_words(words, cells[at], cells[header.index("value")])
            if "value" in header
            else None
        )
        return said if value is None else f"{said}{words('v.is') or ': '}{value}"
    return words(f"reason.{cells[at]}") or str(cells[at])


def worded_sheets(
    sheets: Mapping[str, Sequence[Sequence[Any]]], words: Words
) -> dict[str, list[list[Any]]]:
    """A workbook's sheets (``report_sheets``) in ``words``' language: each named in words
    (``sheet.NAME``) and ``worded``."""
    return {words(f"sheet.{name}") or name: worded(rows, words) for name, rows in sheets.items()}
