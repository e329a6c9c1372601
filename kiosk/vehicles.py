"""The resident-vehicle list (管好车): which plates belong to the compound's households.

The list comes as a spreadsheet (columns ``plate``, ``household``, optional ``note``) and is
imported like the map: checked, shown as a diff, then applied as a whole (``plan_import``,
``apply``; audited). At a vehicle registration the guard console asks ``check(plate)``: a
plate not on the list is flagged for the guard (a visitor's or a stranger's car). The daily
report counts vehicle registrations and how many plates were unknown.

Plates are compared normalised (NFKC, upper case, no spaces, dots or dashes), so ``京A·12345``,
``京a 12345`` and the full-width ``京Ａ１２３４５`` are the same car. Plates and households are
personal data (masked by role).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .clock import Clock
from .community import CommunityError, LogLike, check_actor, clean_text, has_table, replace_rows
from .headers import HEADERS, Column, refuse_at
from .sheets import Diff, Layout, diff_rows, read_table
from .store import format_ts

__all__ = [
    "MIGRATIONS",
    "VehicleList",
    "VehiclePlan",
    "feverish_people",
    "known_plates",
    "normalise_plate",
]

_SEPARATORS = re.compile(r"[\s·.\-_]+")
_PLATE = re.compile(r"^[0-9A-Z\u3400-\u9fff]{4,10}$")

MIGRATIONS = Migrations("kiosk.vehicles")


@MIGRATIONS()
def m001_vehicles(db: sqlite_utils.Database) -> None:
    db.table("resident_vehicles").create(
        {"plate": str, "household": str, "note": str, "updated_at": str}, pk="plate"
    )


def normalise_plate(text: object) -> str:
    # NFKC first: a Chinese input method in full-width mode types 京Ａ１２３４５.
    plate = unicodedata.normalize("NFKC", clean_text("plate", text, max_len=20))
    plate = _SEPARATORS.sub("", plate).upper()
    if not _PLATE.match(plate):
        raise CommunityError("plate: 4 to 10 letters, digits or a province character")
    return plate


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def feverish_people(kind: object, person: object) -> int:
    """How many feverish people an event carrying ``fever`` is about: one, or for a vehicle
    its occupants (driver and passengers) the guard's form found at or above the threshold,
    ``person.feverish`` (a count: kept when the person is masked), at least one and at most
    the driver plus ``person.occupants``. A vehicle recorded without the count (before it was
    kept, or by another client) counts one."""
    if kind != "vehicle" or not isinstance(person, Mapping):
        return 1
    feverish = _count(person.get("feverish"))
    if feverish is None:
        return 1
    passengers = _count(person.get("occupants"))
    most = 1 + passengers if passengers is not None else feverish
    return max(1, min(feverish, most))


@dataclass(frozen=True)
class VehiclePlan:
    rows: Mapping[str, Mapping[str, str]]
    diff: Diff = field(default_factory=Diff)
    layout: Layout = field(default_factory=Layout)  # the file's header line, lines skipped


def known_plates(db: sqlite_utils.Database) -> dict[str, str]:
    """Plate → household of every resident vehicle (empty when there is no list)."""
    if not has_table(db, "resident_vehicles"):
        return {}
    return {r["plate"]: r["household"] for r in db.query("select * from resident_vehicles")}


def _checked(
    at: tuple[int, Sequence[Column]], field: str, value: str, read: Callable[[str], str]
) -> str:
    """``value`` as ``read`` takes it; refused naming its line and its column as the clerk
    headed it, with its letter (``kiosk.headers.refuse_at``)."""
    try:
        return read(value)
    except CommunityError as exc:
        refuse_at(at[0], field, at[1], str(exc).removeprefix(f"{field}: "))


class VehicleList:
    def __init__(self, log: LogLike, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    def plan_import(self, data: bytes, filename: str) -> VehiclePlan:
        columns = ("plate", "household", "note")
        table = read_table(data, filename, columns[:2], columns[:2], columns=HEADERS["vehicles"])
        if unknown := [c for c in table.header if c not in columns]:
            raise CommunityError(f"unknown columns: {', '.join(unknown)}")
        rows: dict[str, dict[str, str]] = {}
        lines: dict[str, tuple[int, str]] = {}  # normalised plate -> its first line, as typed
        for line, raw in table.numbered():
            at = (line, table.layout.columns)  # a value refused names its column (车牌号)
            plate = _checked(at, "plate", raw["plate"], normalise_plate)
            household = _checked(
                at, "household", raw["household"], partial(clean_text, "household", max_len=40)
            )
            note = partial(clean_text, "note", max_len=200, required=False)
            row = {"household": household, "note": _checked(at, "note", raw.get("note", ""), note)}
            if plate in rows:
                before, spelled = lines[plate]
                typed_here = str(raw["plate"]).strip()
                raise CommunityError(
                    f"line {line}: plate {typed_here} is {spelled} of line {before}"
                    " (plates are compared without spaces, dots or dashes): listed twice"
                )
            lines[plate] = (line, str(raw["plate"]).strip())
            rows[plate] = row
        if not rows:
            raise CommunityError("the vehicle list has no rows")
        current = {
            r["plate"]: {"household": r["household"], "note": r["note"] or ""}
            for r in self._log.reader().query("select * from resident_vehicles")
        }
        return VehiclePlan(rows, diff_rows(current, rows, replace=True), table.layout)

    def apply(self, plan: VehiclePlan, actor: str) -> dict[str, int]:
        who = check_actor(actor)
        stamp = format_ts(self._clock.now())
        rows: list[dict[str, Any]] = [
            {"plate": p, **r, "updated_at": stamp} for p, r in plan.rows.items()
        ]
        counts = plan.diff.counts()
        what = {"vehicles": len(rows), **counts}
        replace_rows(self._log, "resident_vehicles", rows, "plate", (who, "vehicles.import", what))
        return counts

    def listed(self) -> bool:
        """Whether a resident-vehicle list was ever imported (else no plate can be judged)."""
        rows = self._log.reader().execute("select 1 from resident_vehicles limit 1").fetchall()
        return bool(rows)

    def check(self, plate: str) -> str | None:
        """The household a plate belongs to, or None: an unknown plate, flag it."""
        normal = normalise_plate(plate)
        rows = list(
            self._log.reader().query(
                "select household from resident_vehicles where plate = ?", [normal]
            )
        )
        return str(rows[0]["household"]) if rows else None
