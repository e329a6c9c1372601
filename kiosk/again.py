"""A registration recorded again: a pass for the same person (name and dwelling) or vehicle
(plate) let through by a guard in the same direction a moment before (their newest record
either way: out, in, out again is two outings), on another tablet at the same gate, is a
second passage (a resident's second outing for the quota) unless the
guard says it is meant (twins, the same person out twice; docs/screens.md).

One rule, looked at twice: by the console before it asks the engine (``earlier``, a read:
it asks the guard first), and again in the commit's own write transaction (``NotAgain``, the
draft's ``kiosk.store.EventDraft.unless``), where no other write comes between the look and
the write. Two tablets sending at the very same moment both pass the first look; the second
commit finds the first's row and writes nothing (``kiosk.store.AlreadyRecorded``), and that
guard is asked as if the registration had come a minute later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from kiosk import queries
from kiosk.clock import ClockReading
from kiosk.community import CommunityError
from kiosk.spelling import same_text
from kiosk.store import ReadFailure, error_name, is_damaged_read
from kiosk.vehicles import normalise_plate

log = logging.getLogger(__name__)

#: How long after a registration one of the same person or vehicle in the same direction is
#: asked about first: another tablet's, a minute ago.
AGAIN_WINDOW_S = 300
#: The kinds of event a registration is: a person's, a vehicle's.
KINDS = ("registration", "vehicle")


def plate_key(plate: object) -> str:
    """A plate as the plate check reads it (``kiosk.vehicles.normalise_plate``: 京A·12345 is
    京A12345); one that cannot be a plate, as typed (``same_text``)."""
    try:
        return normalise_plate(plate)
    except CommunityError:
        return same_text(str(plate or ""))


def same_one(kind: str, person: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two registrations of ``kind`` one passage: a person's name and dwelling
    (however spelled: ``same_text``), a vehicle's plate (``plate_key``)."""
    if kind == "vehicle":
        return (plate_key(person.get("plate")),)
    return tuple(same_text(str(person.get(k) or "")) for k in ("name", "unit"))


def earlier(
    log: queries.Readable,
    kind: str,
    person: Mapping[str, Any],
    direction: str,
    since: queries.Since,
    until: ClockReading | None = None,
) -> dict[str, Any] | None:
    """The newest registration of ``kind`` let through (``manual_pass``) of the same one as
    ``person`` (``same_one``) since ``since`` (one stamped before NTP stepped the clock by
    when it happened), when it went ``direction``; None when there is none, or when the newest
    went the other way: out, back in two minutes later, out again is a second outing, not
    the first recorded again. ``until``: the moment the look ends (a held record's own
    decision), after which no record of this boot counts (by its monotonic stamp; an earlier
    boot's all came before). Blocking: a read."""
    wanted = same_one(kind, person)
    for event in queries.events_of_kinds_since(log, (kind,), since, 50):
        if until is not None and _after(event, since.boot_id, until):
            continue
        found = event.get("person")
        was: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        if event.get("decision") == "manual_pass" and same_one(kind, was) == wanted:
            return event if event.get("direction") == direction else None
    return None


def _after(event: Mapping[str, Any], boot_id: str, until: ClockReading) -> bool:
    """Whether ``event`` happened after ``until``, a moment of the boot ``boot_id``."""
    return event.get("boot_id") == boot_id and int(event["mono_ns"]) > until.mono_ns


@dataclass(frozen=True)
class _Writing:
    """The writer's connection, inside the draft's transaction, as the queries read a log."""

    db: sqlite_utils.Database

    def reader(self) -> sqlite_utils.Database:
        return self.db


@dataclass(frozen=True)
class NotAgain:
    """A registration pass's condition (``kiosk.store.Unless``): written unless the log holds
    an ``earlier`` one of the same person or vehicle since ``since``, other than ``seen``, the
    record its guard was shown and said to record again over (a newer one since asks again)."""

    kind: str
    person: Mapping[str, Any] = field(repr=False)
    direction: str
    since: queries.Since
    seen: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {list(KINDS)}")

    def record_in(
        self, log: queries.Readable, until: ClockReading | None = None
    ) -> dict[str, Any] | None:
        """The record in ``log`` this one is not written over: the newest ``earlier`` one
        (until ``until``), unless it is ``seen``; None when there is none. Blocking: a read."""
        event = earlier(log, self.kind, self.person, self.direction, self.since, until)
        return None if event is None or int(event["seq"]) == self.seen else event

    def found(
        self, db: sqlite_utils.Database, until: ClockReading | None = None
    ) -> dict[str, Any] | None:
        """``record_in`` the log, on its writer's connection in the draft's transaction, up
        to ``until``, the draft's own decision: a record held through a store fault is
        looked at as the log stood when its guard decided, not as it stands at its retry.
        Past a damaged page of the log the registration is recorded unasked, as the console's
        own look lets it go ahead: a card losing a page must not keep a visitor at the gate."""
        try:
            return self.record_in(_Writing(db), until)
        except ReadFailure as exc:
            if not is_damaged_read(exc) or not db.conn.in_transaction:
                raise
            log.warning("the look for an earlier registration failed (%s)", error_name(exc))
            return None
