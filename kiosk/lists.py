"""Revocations, home quarantine and the household ledger, with how fresh they are.

The kiosk decides offline, so what it knows about lost cards and quarantined homes is only as
good as its last update. Three ways in, all through ``ListStore``:

* a **signed bundle** from the office (JSON signed with an issuer key on the trust list,
  versioned: an older or equal version is never applied; applied in one transaction, so the
  kiosk never decides on half a bundle);
* a **CSV** import (all rows checked first; one bad row and nothing is applied);
* **guard edits** on the guard screen.

Every change is written through the event log's single writer (``EventLog.submit``) and
recorded with who made it (``EventLog.audit``). ``Lists`` is an immutable snapshot:
``decide`` reads it without locks while a new one is being built.

Bundle rows and local rows (guard, CSV) live side by side: a new bundle replaces the rows of
the previous bundle, never local ones. On a clash a local revocation stays (a card a guard
revoked stays revoked), while a bundle's household record replaces a local one (the office
ledger is the authority on who lives where).

Dates (quarantine, observation) are local calendar dates of the site, both ends inclusive.
"""

from __future__ import annotations

import base64
import copy
import csv
import dataclasses
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlite_utils.db import NotFoundError

from .auditing import audited_write
from .clock import Clock, ClockReading
from .config.problems import reason
from .days import FIRST_DAY, LAST_DAY
from .files import read_snapshot
from .pass_format import MAX_VALID_HOURS
from .passes import PassError, TrustList, key_id_of
from .ports import AuditedWriter
from .queries import clock_of, read_clocks, retention_dating
from .schema import sql_migrations
from .snapshots import LatestRead
from .spelling import same_text
from .typed import typed
from .unreadable import json_field
from .wipe import owe_wipe, wipe_if_owed

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_COMPOUNDS",
    "COMPOUND_PATTERN",
    "MIGRATIONS",
    "BundleError",
    "Freshness",
    "age_since",
    "stamp_ahead",
    "Household",
    "ImportResult",
    "ListError",
    "ListStore",
    "Lists",
    "QuarantineEntry",
    "Revocation",
    "same_text",
    "sign_bundle",
]

T = TypeVar("T")
Source = Literal["empty", "bundle", "csv", "guard"]

#: The source of a revocation a forget made (``kiosk.people``): the card's resident was
#: forgotten, so a deny of the card records its pass id alone (``kiosk.engine``). Shared
#: with the other gates as a guard's revocation is (``kiosk.peers``).
FORGET_SOURCE = "forget"
#: The sources of a revocation made at this gate by hand: its guards' and its forgets'.
GATE_SOURCES = ("guard", FORGET_SOURCE)
CsvKind = Literal["revocations", "quarantine", "households"]

BUNDLE_FORMAT = "kiosk-lists/1"
#: A bundle whose quarantine and household entries may name their compound (``compound``);
#: only gates of this release read it, the office serves it to a gate that names its compound.
BUNDLE_FORMAT_COMPOUNDS = "kiosk-lists/2"
_SIGNED_PREFIX = (BUNDLE_FORMAT + "\n").encode("ascii")
_PASS_ID = re.compile(r"^[0-9a-f]{12}$")
#: A list date: year, month, day (2026-03-01, or 2026/3/1 as Excel in Chinese writes it to CSV).
_DATE = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")
#: A list date as a clerk types it in Chinese: 2026年12月5日 (the 日 sometimes left off).
_CN_DATE = re.compile(r"^(\d{4}) ?(年) ?(\d{1,2}) ?月 ?(\d{1,2}) ?日?$")


class _AlreadyApplied(Exception):
    """A bundle of the version already applied: nothing to write, nothing to audit."""


class ListError(ValueError):
    """Input that cannot go on a list; the message names the row/field. Nothing was applied."""


class ListChanged(ListError):
    """A guard's removal of an entry that changed since the guard's page showed it (another
    guard's tablet, the office's list, a purge; or another entry under the number that page
    showed): nothing is removed, and the message says what the entry is now."""


class BundleError(ListError):
    """A bundle that is not signed by a trusted key, is malformed, or is not newer."""


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class Revocation:
    pass_id: str
    reason: str = ""
    revoked_at: datetime | None = None
    source: str = "guard"
    #: The guard's name at a peer gate (``Lists.peer_revocations``); None here.
    actor: str | None = None
    #: A peer gate's revocation a forget made there (its page's ``forgotten``,
    #: ``kiosk.peers``): the card's resident was forgotten. Here, ``source`` says it.
    forgotten: bool = False


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """Home quarantine of a whole household (``holder`` None) or of one person in it."""

    household: str
    holder: str | None
    from_date: date
    until_date: date
    note: str = ""
    source: str = "guard"
    id: int | None = None

    def active_on(self, day: date) -> bool:
        return self.from_date <= day <= self.until_date

    def covers(self, household: str, holder: str | None) -> bool:
        if same_text(household) != same_text(self.household):
            return False
        if self.holder is None:
            return True
        return holder is not None and _same_person(holder, self.holder)


@dataclass(frozen=True, slots=True)
class Household:
    """One line of the ledger. ``observation_until``: a returnee under observation."""

    household: str
    residents: int | None = None
    observation_until: date | None = None
    note: str = ""
    source: str = "guard"

    def under_observation(self, day: date) -> bool:
        return self.observation_until is not None and day <= self.observation_until


def merged_household(entries: Iterable[Household]) -> Household:
    """One entry for entries of the households list sharing a key (``same_text``: spellings
    an earlier release told apart), each field on the side that holds more people back,
    whatever order the list holds them in: the latest ``observation_until`` (a date over
    none), the most ``residents``, every note; the spelling and source of the entry holding
    that observation (the first spelling of them in sorted order)."""
    ordered = sorted(
        entries, key=lambda h: (-(h.observation_until or date.min).toordinal(), h.household)
    )
    if len(ordered) == 1:
        return ordered[0]
    counts = [h.residents for h in ordered if h.residents is not None]
    notes = sorted({h.note for h in ordered if h.note})
    return dataclasses.replace(
        ordered[0], residents=max(counts) if counts else None, note="; ".join(notes)
    )


def stamp_ahead(since: datetime | None, now: datetime) -> bool:
    """``since`` is after ``now``: the clock stepped back since it was stamped."""
    return since is not None and since > now


def age_since(since: datetime | None, now: datetime) -> timedelta | None:
    """``now - since``; None when never stamped, or stamped after ``now`` (``stamp_ahead``):
    not a negative age, which no ``stale_after_h`` would ever call stale."""
    return None if since is None or stamp_ahead(since, now) else now - since


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current the lists are, for both screens: last change, and the last bundle."""

    updated_at: datetime | None = None
    source: Source = "empty"
    bundle_version: int = 0
    bundle_issued_at: datetime | None = None
    bundle_issuer: str | None = None
    #: The compound whose entries of the bundle are in force (``BundlePayload.for_compound``);
    #: None: every entry.
    bundle_compound: str | None = None
    #: When the office last confirmed the lists unchanged (list sync: a 304 or the same
    #: bundle version); kept in memory, so quiet days are not shown as stale lists.
    confirmed_at: datetime | None = None
    #: When the last bundle from the office was applied (None: none ever was, or a database
    #: from before this was kept, whose ``updated_at`` says it while the bundle was the last
    #: change).
    bundle_applied_at: datetime | None = None

    def synced_at(self) -> datetime | None:
        """The gate's last confirmed sync: when it last heard from where its lists come from,
        which is what their age counts from. For lists from the office, a bundle applied or
        the office's confirmation, whichever is later (a guard's or a CSV's change on the gate
        tells nothing of the office's lists); for lists never sent by the office (guard, CSV),
        their last change or confirmation. A database from before ``bundle_applied_at`` was
        kept, not confirmed since the start: their last change, as then."""
        if self.bundle_version == 0 or (
            self.bundle_applied_at is None and self.confirmed_at is None
        ):
            known = [self.updated_at, self.confirmed_at]
        else:
            known = [self.bundle_applied_at, self.confirmed_at]
        stamps = [t for t in known if t is not None]
        return max(stamps) if stamps else None

    def _since(self) -> datetime | None:
        return self.synced_at()

    def stamp_ahead(self, now: datetime) -> bool:
        """The lists' stamp is after ``now``: the clock stepped back since they were stamped
        (a Pi has no RTC), or a clock running ahead stamped them. Their age is then unknown."""
        return stamp_ahead(self._since(), now)

    def age(self, now: datetime) -> timedelta | None:
        """Since the gate's last confirmed sync (``synced_at``, ``age_since``)."""
        return age_since(self._since(), now)

    def is_stale(self, now: datetime, stale_after_h: float) -> bool:
        """No confirmed sync (``synced_at``) within ``stale_after_h`` hours of ``now``: the
        office may have changed the lists since without this gate knowing. Never updated
        counts as stale: an empty revocation list is not good news; nor does a stamp after
        ``now`` count as fresh (``stamp_ahead``)."""
        age = self.age(now)
        return age is None or age > timedelta(hours=stale_after_h)

    def to_dict(self, now: datetime, stale_after_h: float) -> dict[str, Any]:
        age = self.age(now)
        return {
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "age_s": None if age is None else round(age.total_seconds()),
            "stale": self.is_stale(now, stale_after_h),
            "stamp_ahead": self.stamp_ahead(now),
            "source": self.source,
            "bundle_version": self.bundle_version,
            "bundle_issued_at": self.bundle_issued_at.isoformat()
            if self.bundle_issued_at
            else None,
            "bundle_issuer": self.bundle_issuer,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "bundle_applied_at": self.bundle_applied_at.isoformat()
            if self.bundle_applied_at
            else None,
        }


def _household_entry(db: sqlite_utils.Database, household: str) -> dict[str, Any] | None:
    """The households list's row for ``household`` as it holds it (``same_text``: the list's
    ``B-202`` for a guard's ``b-202``, an entry edited and not a second one beside it), or
    None. ``ListError`` when several rows spell it (``Lists.households_sharing_a_key``): the
    gate holds them merged, so an edit of one of them would not say what the gate enforces
    (an observation lifted on one spelling, still in force on the other); the admin merges
    them first (docs/operations.md, *Upgrading past 2026-12's household key*)."""
    key = same_text(household)
    rows = [r for r in db["list_households"].rows if same_text(str(r["household"])) == key]
    if len(rows) > 1:
        raise ListError(
            f"{len(rows)} entries are spellings of household {household}: merge them first"
            " (keep one, remove the others)"
        )
    return rows[0] if rows else None


def _same_person(a: str, b: str) -> bool:
    return same_text(a) == same_text(b)


def _same_subject(row: Mapping[str, Any], household: str, holder: str | None) -> bool:
    """Whether quarantine ``row`` is of the same subject: the household as a whole (no
    holder) or the same person in it, matched as the gate matches (``same_text``)."""
    if same_text(str(row["household"])) != same_text(household):
        return False
    theirs = row["holder"]
    if theirs is None or holder is None:
        return theirs is None and holder is None
    return _same_person(str(theirs), holder)


def _already_quarantined(household: str, person: bool, held: Mapping[str, Any]) -> None:
    """``ListError``: that subject's quarantine is on the list already (``held``)."""
    start, end, by = held["from_date"], held["until_date"], held["actor"] or held["source"]
    if person:
        raise ListError(
            f"that person of household {household} is already quarantined from {start} until"
            f" {end} (by {by}); it stays so: to change its days, end it first"
        )
    raise ListError(
        f"household {household} is already quarantined from {start} until {end} (by {by});"
        " it stays so: to change its days, end it first"
    )


def _quarantine_of(
    db: sqlite_utils.Database, household: str, holder: str | None, days: tuple[str, str]
) -> list[dict[str, Any]]:
    """The quarantine entries of that subject (``_same_subject``) whose days (ISO dates, both
    ends inclusive) overlap ``days``: one quarantine, however many entries say it."""
    first, last = days
    return [
        row
        for row in db["list_quarantine"].rows_where(order_by="id")
        if _same_subject(row, household, holder)
        and str(row["from_date"]) <= last
        and first <= str(row["until_date"])
    ]


@dataclass(frozen=True)
class Lists:
    """Immutable snapshot read by ``decide``; lookups are dictionary hits."""

    revocations: Mapping[str, Revocation] = field(default_factory=dict)
    quarantine: tuple[QuarantineEntry, ...] = ()
    households: Mapping[str, Household] = field(default_factory=dict)
    freshness: Freshness = field(default_factory=Freshness)
    _quarantine_by_household: Mapping[str, tuple[QuarantineEntry, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _households_by_key: Mapping[str, Household] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: ``households_sharing_a_key``, counted once from the grouping the index is built by.
    _shared_keys: int = field(default=0, repr=False, compare=False)
    #: The compound's other gates' guards' revocations held here (``kiosk.peers``), by pass
    #: id, ``source`` the gate's kiosk id: refused as the lists' own are; lifted only by a
    #: restore at that gate (its next page), never by an edit here.
    peer_revocations: Mapping[str, Revocation] = field(default_factory=dict)
    #: The compound's other gates' guards' quarantine entries held here (``kiosk.peers``),
    #: ``source`` the gate's kiosk id, ``id`` None: in force as the lists' own are (a resident
    #: quarantined at one gate does not go out by another); lifted only at that gate.
    peer_quarantine: tuple[QuarantineEntry, ...] = ()

    def __post_init__(self) -> None:
        # Keyed by ``same_text``: the lists' spelling of a household need not be the pass's.
        index: dict[str, list[QuarantineEntry]] = {}
        for entry in (*self.quarantine, *self.peer_quarantine):
            index.setdefault(same_text(entry.household), []).append(entry)
        object.__setattr__(
            self, "_quarantine_by_household", {k: tuple(v) for k, v in index.items()}
        )
        by_key: dict[str, list[Household]] = {}
        for h in self.households.values():
            by_key.setdefault(same_text(h.household), []).append(h)
        households = {k: merged_household(hs) for k, hs in by_key.items()}
        object.__setattr__(self, "_households_by_key", households)
        shared = sum(len(hs) for hs in by_key.values() if len(hs) > 1)
        object.__setattr__(self, "_shared_keys", shared)

    @classmethod
    def build(
        cls,
        revocations: Iterable[Revocation] = (),
        quarantine: Iterable[QuarantineEntry] = (),
        households: Iterable[Household] = (),
        freshness: Freshness | None = None,
        peer_revocations: Iterable[Revocation] = (),
        peer_quarantine: Iterable[QuarantineEntry] = (),
    ) -> Lists:
        return cls(
            {r.pass_id: r for r in revocations},
            tuple(quarantine),
            {h.household: h for h in households},
            freshness or Freshness(),
            peer_revocations=_first_gate_each(peer_revocations),
            peer_quarantine=tuple(peer_quarantine),
        )

    def peer_quarantine_of(
        self, household: str, holder: str | None, start: date, end: date, *, within: bool = False
    ) -> QuarantineEntry | None:
        """Another gate's entry of that subject (the household as a whole, or that person in
        it) whose days overlap ``start`` to ``end`` (``within``: hold them all), if any."""
        for entry in self.peer_quarantine:
            row = {"household": entry.household, "holder": entry.holder}
            if within:
                found = entry.from_date <= start and end <= entry.until_date
            else:
                found = entry.from_date <= end and start <= entry.until_date
            if found and _same_subject(row, household, holder):
                return entry
        return None

    @property
    def revoked(self) -> frozenset[str]:
        return frozenset(self.revocations) | frozenset(self.peer_revocations)

    def with_freshness(self, freshness: Freshness) -> Lists:
        """The same lists (indexes shared, not rebuilt) with another ``freshness``."""
        other = copy.copy(self)
        object.__setattr__(other, "freshness", freshness)
        return other

    def is_forgotten(self, pass_id: str) -> bool:
        """Whether a forget revoked ``pass_id``, here (its revocation's ``source``
        ``FORGET_SOURCE``) or at another gate of the compound (its signed page said so), even
        a card this gate's guard, a sheet or the office had voided: a deny of the card never
        records its holder (``kiosk.engine``), the resident being forgotten. Whether it keeps
        the household is ``voided_here``'s to say."""
        here = self.revocations.get(pass_id)
        if here is not None and here.source == FORGET_SOURCE:
            return True
        there = self.peer_revocations.get(pass_id)
        return there is not None and there.forgotten

    def voided_here(self, pass_id: str) -> bool:
        """Whether this gate holds its own revocation of ``pass_id`` that no forget made (a
        guard's, a sheet's, the office's bundle's): another gate's mark that a forget made it
        hides the holder of its deny but never the household (a stolen card's, say), so a
        peer cannot blank what this gate's own void records."""
        here = self.revocations.get(pass_id)
        return here is not None and here.source != FORGET_SOURCE

    def is_revoked(self, pass_id: str) -> bool:
        """Revoked by the office, a guard or sheet here, or a guard at another gate of the
        compound (docs/passes.md, "Voided at one gate, refused at all")."""
        return pass_id in self.revocations or pass_id in self.peer_revocations

    def quarantine_for(
        self, household: str, holder: str | None, day: date
    ) -> QuarantineEntry | None:
        """The active entry covering this person on ``day`` (a local date), if any."""
        for entry in self._quarantine_by_household.get(same_text(household), ()):
            if entry.active_on(day) and entry.covers(household, holder):
                return entry
        return None

    def quarantine_unconfirmed(
        self, household: str, holder: str | None, day: date, since: date | None
    ) -> QuarantineEntry | None:
        """An entry covering this person that is over on ``day`` (a local date) but lasted
        until ``since`` or later: it ended after the lists were last confirmed on ``since``
        (None: never), so a list the gate never received may have extended it."""
        for entry in self._quarantine_by_household.get(same_text(household), ()):
            ended = entry.until_date < day and (since is None or entry.until_date >= since)
            if ended and entry.covers(household, holder):
                return entry
        return None

    def quarantine_after(self, household: str, holder: str | None, day: date) -> bool:
        """An entry covering this person starts after ``day`` (a local date)."""
        return any(
            entry.from_date > day and entry.covers(household, holder)
            for entry in self._quarantine_by_household.get(same_text(household), ())
        )

    def households_sharing_a_key(self) -> int:
        """How many entries of the households list share their key (``same_text``) with
        another: two spellings an earlier release told apart (``3号楼 701`` and ``3号楼701``
        before spaces beside a Chinese character were ignored) are one household now, held
        as one strictly merged entry (``merged_household``) until the admin merges them.
        Counted, never named: a household is personal data. Counted once, as the lists are
        built (``core.health`` asks on every ``/health``, alarm and screen banner)."""
        return self._shared_keys

    def merged_households(self) -> tuple[Household, ...]:
        """The households list as the gate holds it: one entry a household however spelled
        (``merged_household``), by key. Every reader of the list's meaning reads this (or
        ``under_observation``); ``households`` is the list as stored, for its editors."""
        return tuple(self._households_by_key[k] for k in sorted(self._households_by_key))

    def under_observation(self, household: str, day: date) -> bool:
        h = self._households_by_key.get(same_text(household))
        return h is not None and h.under_observation(day)

    def counts(self) -> dict[str, int]:
        return {
            "revocations": len(self.revocations),
            "quarantine": len(self.quarantine),
            "households": len(self.households),
        }


# --------------------------------------------------------------------------- validation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RevocationIn(_Strict):
    pass_id: str = Field(min_length=12, max_length=12)
    reason: str = Field(default="", max_length=200)

    @field_validator("pass_id", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return typed(v).lower() if isinstance(v, str) else v

    @field_validator("pass_id")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _PASS_ID.match(v):
            raise ValueError("must be 12 hex digits (as printed by kiosk pass verify)")
        return v


def _one_line(v: Any) -> Any:
    """A household code or a name as a pass carries it: printable text on one line (an
    invisible character would make an entry no pass can match), in its plain spelling
    (``kiosk.typed.typed``: full-width ``１-１０１`` is ``1-101``)."""
    if not isinstance(v, str):
        return v
    v = typed(v)
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in v):
        raise ValueError("must be printable text on one line (no invisible characters)")
    return v


def _list_date(v: Any) -> Any:
    """A date as text, year first; never a number (pydantic would read it as seconds since
    1970)."""
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    # Width-folded first: a Chinese input method types ２０２６－１２－０１.
    text = typed(v) if isinstance(v, str) else ""
    match = _DATE.match(text) or _CN_DATE.match(text)
    if match is None:
        midnight = _midnight(v)
        if midnight is not None:  # 2026-03-01T00:00:00, as some office tools write a date
            return midnight
        raise ValueError("expected a date such as 2026-03-01 (or 2026/3/1, 2026年3月1日)")
    year, _sep, month, day = match.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"{text} is not a calendar date") from None


def _midnight(v: Any) -> date | None:
    """The date of an ISO 8601 midnight (text or ``datetime``) without an offset, else None."""
    try:
        when = v if isinstance(v, datetime) else datetime.fromisoformat(v.strip())
    except (AttributeError, TypeError, ValueError):
        return None
    if when.tzinfo is not None or when.time() != datetime.min.time():
        return None
    return when.date()


#: A compound's id as a gate configures it (``[compound] id``) and the office's list names it.
COMPOUND_PATTERN = r"^[A-Za-z0-9._-]+$"
CompoundId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=COMPOUND_PATTERN)
]
#: The most compounds one office's lists declare.
MAX_COMPOUNDS = 1000


def _on_the_days(v: date) -> date:
    """``v``, one of the days a person may type (``kiosk.days.FIRST_DAY``..``LAST_DAY``):
    every day of a list, however it came (a guard's form, a sheet, the office's bundle)."""
    if not FIRST_DAY <= v <= LAST_DAY:
        raise ValueError(f"{v} is outside {FIRST_DAY}..{LAST_DAY}")
    return v


class QuarantineIn(_Strict):
    household: str = Field(min_length=1, max_length=64)
    compound: CompoundId | None = None
    """The compound whose household this is (office bundles only, ``BUNDLE_FORMAT_COMPOUNDS``);
    none: every gate's."""
    holder: str | None = Field(default=None, max_length=64)
    from_: date = Field(alias="from")
    until: date
    note: str = Field(default="", max_length=200)

    @field_validator("holder", mode="before")
    @classmethod
    def _blank_is_household(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else _one_line(v)

    @field_validator("household", mode="before")
    @classmethod
    def _household_text(cls, v: Any) -> Any:
        return _one_line(v)

    @field_validator("from_", "until", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> Any:
        return _list_date(v)

    @field_validator("from_", "until")
    @classmethod
    def _within_days(cls, v: date) -> date:
        """A year typed wrong (``9999-12-31``: confined for good) is refused, not kept."""
        return _on_the_days(v)

    @model_validator(mode="after")
    def _order(self) -> QuarantineIn:
        if self.until < self.from_:
            raise ValueError("until is before from")
        return self


class HouseholdIn(_Strict):
    household: str = Field(min_length=1, max_length=64)
    compound: CompoundId | None = None
    """As ``QuarantineIn.compound``."""
    residents: int | None = Field(default=None, ge=0, le=100)
    observation_until: date | None = None
    note: str = Field(default="", max_length=200)

    @field_validator("residents", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("observation_until", mode="before")
    @classmethod
    def _date_or_none(cls, v: Any) -> Any:
        return None if v is None or (isinstance(v, str) and not v.strip()) else _list_date(v)

    @field_validator("observation_until")
    @classmethod
    def _within_days(cls, v: date | None) -> date | None:
        """A year typed wrong (``0206-03-16`` for 2026, ``9999-12-31``: observed for good) is
        refused as a quarantine's is, not kept."""
        return None if v is None else _on_the_days(v)

    @field_validator("household", mode="before")
    @classmethod
    def _household_text(cls, v: Any) -> Any:
        return _one_line(v)


class BundlePayload(_Strict):
    format: Literal["kiosk-lists/1", "kiosk-lists/2"]
    version: int = Field(ge=1, le=2**53)
    issued_at: datetime
    revocations: list[RevocationIn] = Field(default_factory=list, max_length=200_000)
    quarantine: list[QuarantineIn] = Field(default_factory=list, max_length=200_000)
    households: list[HouseholdIn] = Field(default_factory=list, max_length=200_000)
    compounds: list[CompoundId] | None = Field(default=None, max_length=MAX_COMPOUNDS)
    """Every compound of the office (``BUNDLE_FORMAT_COMPOUNDS``): an entry naming another is
    a mistyped one, and a gate whose id is not among them a mistyped gate."""

    @field_validator("issued_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must include a UTC offset")
        return v

    @model_validator(mode="after")
    def _compounds_in_their_format(self) -> BundlePayload:
        """Entries name a compound only in ``BUNDLE_FORMAT_COMPOUNDS`` (a gate reading the
        first format as before applies every entry, whoever's it is), and only one of the
        compounds declared, when they are."""
        named = self.named_compounds()
        if self.format != BUNDLE_FORMAT_COMPOUNDS and (named or self.compounds is not None):
            where = f"{named[0][0]}[{named[0][1]}].compound" if named else "compounds"
            raise ValueError(
                f"bundle {where}: only a {BUNDLE_FORMAT_COMPOUNDS} bundle names compounds"
            )
        if self.compounds is not None:
            declared = {same_text(c) for c in self.compounds}
            for name, i, compound in named:
                if same_text(compound) not in declared:
                    raise ValueError(
                        f"bundle {name}[{i}].compound: {compound} is not one of the office's"
                        f" compounds ({', '.join(self.compounds)})"
                    )
        return self

    def knows(self, compound: str) -> bool:
        """Whether ``compound`` is one of the compounds the office declares (or declares
        none)."""
        return self.compounds is None or same_text(compound) in {
            same_text(c) for c in self.compounds
        }

    def named_compounds(self) -> list[tuple[str, int, str]]:
        """``(list, index, compound)`` of each entry that names its compound."""
        named = [
            ("quarantine", i, q.compound)
            for i, q in enumerate(self.quarantine)
            if q.compound is not None
        ]
        return named + [
            ("households", i, h.compound)
            for i, h in enumerate(self.households)
            if h.compound is not None
        ]

    def for_compound(self, compound: str | None) -> tuple[BundlePayload, str]:
        """The entries a gate of ``compound`` applies, and the scope they were chosen for
        (``""``: every entry). An entry naming no compound is every gate's; one naming
        another compound is left out. A gate that does not know its compound (``None``), or
        a bundle of the first format, applies every entry, as before; so does one whose
        compound is not one the office declares (a mistyped id: denying another compound's
        household is the lesser harm than letting its own quarantined out)."""
        if compound is None or self.format != BUNDLE_FORMAT_COMPOUNDS or not self.knows(compound):
            return self, ""
        ours = same_text(compound)

        def keep(row: QuarantineIn | HouseholdIn) -> bool:
            return row.compound is None or same_text(row.compound) == ours

        chosen = {
            "quarantine": [q for q in self.quarantine if keep(q)],
            "households": [h for h in self.households if keep(h)],
        }
        return self.model_copy(update=chosen), ours


#: A value's problem where a cell or a form field says it otherwise than a config key: a
#: cell is text whatever it holds, a column left out is not a key to write.
_CELL_WORDS = {
    "missing": "required",
    "extra_forbidden": "not a column of this list",
    "string_type": "should be text",
    **dict.fromkeys(("int_type", "int_parsing"), "should be a whole number"),
    "int_from_float": "should be a whole number (no fraction)",
    **dict.fromkeys(
        ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"),
        "expected a date such as 2026-03-01 (or 2026/3/1, 2026年3月1日)",
    ),
}


def value_problem(err: ErrorDetails) -> str:
    """One value's problem (a list import's cell, a list edit's field) in the gate's words,
    never pydantic's (``Value error, ...``, ``Input should be a valid string``, ``Field
    required``): a validator's own sentence as it is, a bound or a length as a config's key
    says it (``kiosk.config.problems.reason``), a type or an absence as ``_CELL_WORDS``."""
    if err["type"] in _CELL_WORDS:
        return _CELL_WORDS[err["type"]]
    return reason(err)


def _problems(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        loc = loc.replace("from_", "from")
        parts.append(f"{prefix}{loc}: {value_problem(err)}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- bundles


def sign_bundle(private_key: Ed25519PrivateKey, payload: Mapping[str, Any]) -> str:
    """Sign a bundle payload (office tooling and tests). The payload text is carried verbatim,
    so the kiosk verifies exactly the bytes that were signed (no JSON canonicalisation)."""
    text = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":"), default=str)
    signature = private_key.sign(_SIGNED_PREFIX + text.encode("utf-8"))
    return json.dumps(
        {
            "key_id": key_id_of(private_key.public_key()),
            "payload": text,
            "signature": base64.b64encode(signature).decode("ascii"),
        },
        ensure_ascii=False,
    )


#: The most an envelope may hold outside its strings: its braces, colons, commas and blanks
#: (~40 characters when indented). Checked before it is parsed: text built of containers
#: costs a Python object of ~50 bytes per 2-3 bytes (a 64 MiB answer took 1.7 GB and 5.6 s),
#: and until the signature is checked the answer may come from anyone on the LAN.
MAX_ENVELOPE_SKELETON = 256
_STRINGS = json.JSONDecoder()


def _outside_strings(text: str, limit: int) -> int:
    """How many characters of ``text`` stand outside its JSON strings, counted until past
    ``limit``: each string is skipped by the C scanner, nothing else is built."""
    outside = pos = 0
    while outside <= limit:
        quote = text.find('"', pos)
        if quote < 0:
            return outside + len(text) - pos
        outside += quote - pos
        try:
            _, pos = _STRINGS.raw_decode(text, quote)
        except ValueError:  # an unterminated string: the rest is not one
            return outside + len(text) - quote
    return outside


def open_bundle(text: str | bytes, trust: TrustList) -> tuple[BundlePayload, str]:
    """Verify and parse a signed bundle; returns (payload, issuer name)."""
    try:
        text = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        raise BundleError("bundle is not JSON") from None
    if _outside_strings(text, MAX_ENVELOPE_SKELETON) > MAX_ENVELOPE_SKELETON:
        raise BundleError("bundle must be an object with key_id, payload and signature")
    try:
        envelope = json.loads(text)
    except (ValueError, TypeError):
        raise BundleError("bundle is not JSON") from None
    if not isinstance(envelope, dict) or set(envelope) != {"key_id", "payload", "signature"}:
        raise BundleError("bundle must be an object with key_id, payload and signature")
    key_id, payload_text, sig_text = envelope["key_id"], envelope["payload"], envelope["signature"]
    if not all(isinstance(v, str) for v in (key_id, payload_text, sig_text)):
        raise BundleError("bundle key_id, payload and signature must be strings")
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except ValueError:
        raise BundleError("bundle signature is not base64") from None
    try:
        signed = _SIGNED_PREFIX + payload_text.encode("utf-8")
    except UnicodeEncodeError:  # JSON can escape a lone surrogate ("\ud800"): no text, no bytes
        raise BundleError("bundle payload is not text (an escaped lone surrogate)") from None
    try:
        issuer = trust.verify_detached(key_id, signed, signature)
    except PassError as exc:
        what = "unknown key" if exc.reason == "pass_unknown_key" else "bad signature"
        raise BundleError(f"bundle not trusted: {what} (key id {key_id[:16]!r})") from None
    try:
        payload = BundlePayload.model_validate_json(payload_text)
    except ValidationError as exc:
        raise BundleError("bundle payload: " + _problems(exc)) from None
    return payload, issuer


def _csv_records(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and records of CSV text; the csv module's own refusal (an unquoted line
    end inside a field, a field past its size limit, a stray quote: ``strict``, or a quote
    never closed swallows every row after it) is a ``ListError`` naming the line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    header: list[str] | None = None
    records: list[dict[str, Any]] = []
    try:
        header = list(reader.fieldnames or ())
        records.extend(reader)
    except csv.Error as exc:  # the record after the header and the records read
        line = len(records) + (1 if header is None else 2)
        raise ListError(f"line {line}: {exc}; nothing imported") from None
    return header, records


@dataclass(frozen=True)
class ImportResult:
    applied: bool
    source: str
    counts: dict[str, int]
    message: str
    #: What the gate's operator must hear of a bundle applied (a compound the office does
    #: not know), or None.
    warning: str | None = None


# --------------------------------------------------------------------------- persistence

MIGRATIONS = sql_migrations(
    "kiosk.lists",
    m001_lists="""
    CREATE TABLE list_revocations (
        pass_id TEXT PRIMARY KEY, reason TEXT, revoked_at TEXT, source TEXT, actor TEXT
    );
    CREATE TABLE list_quarantine (
        id INTEGER PRIMARY KEY, household TEXT, holder TEXT, from_date TEXT,
        until_date TEXT, note TEXT, source TEXT, actor TEXT, created_at TEXT
    );
    CREATE INDEX idx_list_quarantine_household ON list_quarantine (household);
    CREATE TABLE list_households (
        household TEXT PRIMARY KEY, residents INTEGER, observation_until TEXT, note TEXT,
        source TEXT, actor TEXT, updated_at TEXT
    );
    CREATE TABLE list_meta (key TEXT PRIMARY KEY, value TEXT);
    """,
    # The office's reason when a local (guard, CSV) revocation row also stands for the bundle's
    # revocation of that pass; NULL when the bundle does not revoke it.
    m002_bundle_reason="ALTER TABLE list_revocations ADD COLUMN bundle_reason TEXT",
    # Retention of a revocation (``purge_revocations``): the revoked pass's own expiry when
    # known, and the moment the revocation may go (set by the first purge that sees it).
    m003_revocation_retention="""
    ALTER TABLE list_revocations ADD COLUMN pass_valid_until TEXT;
    ALTER TABLE list_revocations ADD COLUMN keep_until TEXT
    """,
    # The compound an office entry names (``QuarantineIn.compound``): the district counts each
    # compound's entries once (``kiosk.categories.quarantine_lists``). NULL: every gate's.
    m004_quarantine_compound="ALTER TABLE list_quarantine ADD COLUMN compound TEXT",
    # A guard's or CSV revocation written while the clock was not synchronised: its boot and
    # monotonic time (JSON, ``{"revoked_at": [boot_id, mono_ns]}``), so that retention dates
    # it as an event is (``purge_revocations``), not by the 1970 the clock said.
    m005_revocation_clocks="ALTER TABLE list_revocations ADD COLUMN clocks TEXT",
)

#: How long a revocation outlives its pass's expiry: a kiosk whose clock is behind (a Pi
#: booted without network restores the time it was shut down at, weeks back after weeks
#: off) still sees an expired pass as valid, and only the revocation refuses it then.
REVOCATION_MARGIN = timedelta(days=30)
#: The longest a pass can be valid (``kiosk.passes.MAX_VALID_HOURS``, about 7.5 years): the
#: bound on the expiry of a revoked pass nobody told the kiosk the expiry of.
LONGEST_PASS = timedelta(hours=MAX_VALID_HOURS)


def purge_revocations(
    db: sqlite_utils.Database,
    cutoff: datetime,
    now: datetime,
    reading: ClockReading | None = None,
    boot_id: str = "",
) -> tuple[int, int]:
    """Retention (run through ``EventLog.submit``, before the audit details are purged):
    a revocation holds a pass id and a free-text reason. The reason goes with the retention
    window (revoked before ``cutoff``: ``reason`` and an office's ``bundle_reason`` emptied;
    refusing the pass needs only its id). The row itself is needed as long as the revoked pass
    could be presented: until the pass's expiry plus ``REVOCATION_MARGIN``. The expiry is the
    one recorded on the row (``pass_valid_until``), else the issue record of a pass issued at
    this console (audit ``pass_issued``, still there), else unknown: then it was issued before
    the first purge that saw its revocation (at ``now``, a clock retention trusts), so it
    expires at most ``LONGEST_PASS`` after it. ``keep_until`` (UTC text) is set once, at that
    first purge. A few statements whatever the list's length: the purge holds the writer.
    A revocation written before NTP set the clock is dated by its boot's synchronised clock
    (``kiosk.queries.held_dated``; ``reading``: the log's clock now, ``boot_id``: this boot's).
    Returns (revocations deleted, reasons emptied)."""
    if not db["list_revocations"].exists():
        return 0, 0
    dated = _Revoked(db, reading, boot_id)
    emptied = _empty_old_reasons(db, cutoff, dated)
    if "keep_until" not in {c.name for c in db["list_revocations"].columns}:
        return 0, emptied  # opened without this version's lists migrations
    _set_keep_until(db, now)
    due = db.execute(
        f"SELECT pass_id, revoked_at, {dated.clocks} FROM list_revocations WHERE keep_until <= ?",  # noqa: S608
        [_utc_text(now)],
    ).fetchall()
    gone = [[pass_id] for pass_id, at, held in due if _gone_by(dated.at(at, held), cutoff)]
    db.conn.executemany("DELETE FROM list_revocations WHERE pass_id = ?", gone)
    return len(gone), emptied


#: The boot a revocation was made in before NTP set the clock (its ``clocks``), NULL where
#: the stored text is not JSON (``kiosk.unreadable.json_field``: dated by its ``revoked_at``,
#: never the nightly purge's ``malformed JSON``).
_REVOKED_BOOT = json_field("clocks", "$.revoked_at[0]")


class _Revoked:
    """When revocations were made: ``revoked_at``, or, for one written before NTP set the
    clock (its ``clocks``), the time its boot's synchronised clock gives it."""

    def __init__(self, db: sqlite_utils.Database, now: ClockReading | None, boot_id: str):
        kept = "clocks" in {c.name for c in db["list_revocations"].columns}
        #: The column to select beside ``revoked_at`` (NULL: a log before m005).
        self.clocks = "clocks" if kept else "NULL"
        boots = (
            db.execute(
                f"SELECT DISTINCT {_REVOKED_BOOT} FROM list_revocations"  # noqa: S608
                " WHERE clocks IS NOT NULL"
            ).fetchall()
            if kept
            else []
        )
        held = sorted(str(b) for (b,) in boots if b is not None)
        # A boot never dated (ended before NTP answered): no earlier than it can have been.
        self._dated = retention_dating(db, held, now, boot_id)

    def at(self, revoked_at: object, clocks: str | None) -> object:
        held = read_clocks(clocks, ("revoked_at",)).get("revoked_at")
        if held is None or not isinstance(revoked_at, str):
            return revoked_at
        return self._dated(revoked_at, held)


def _empty_old_reasons(db: sqlite_utils.Database, cutoff: datetime, dated: _Revoked) -> int:
    # The date text first (whatever its offset, a moment's local date is at most a day after
    # its UTC date), then the moment itself; one written on a clock not set, by its dating.
    day_after = (cutoff.astimezone(UTC) + timedelta(days=1)).date().isoformat()
    rows = db.execute(
        f"SELECT pass_id, revoked_at, {dated.clocks} FROM list_revocations"  # noqa: S608
        f" WHERE (substr(revoked_at, 1, 10) <= ? OR {dated.clocks} IS NOT NULL)"
        " AND (reason != '' OR bundle_reason != '')",
        [day_after],
    ).fetchall()
    old = [[pass_id] for pass_id, at, held in rows if _gone_by(dated.at(at, held), cutoff)]
    db.conn.executemany(
        "UPDATE list_revocations SET reason = '', bundle_reason ="
        " CASE WHEN bundle_reason IS NULL THEN NULL ELSE '' END WHERE pass_id = ?",
        old,
    )
    return len(old)


def _set_keep_until(db: sqlite_utils.Database, now: datetime) -> None:
    """``keep_until`` of the revocations that have none yet: by the expiry on the row, else
    by the issue record, else the longest a pass issued before ``now`` can live."""
    if db.execute("SELECT 1 FROM list_revocations WHERE keep_until IS NULL").fetchone() is None:
        return
    own = db.execute(
        "SELECT pass_id, pass_valid_until FROM list_revocations"
        " WHERE keep_until IS NULL AND pass_valid_until IS NOT NULL"
    ).fetchall()
    known = [(pass_id, _instant(text)) for pass_id, text in own] + _issued_expiries(db)
    db.conn.executemany(  # the first known expiry of a pass wins: the row's own, then issued
        "UPDATE list_revocations SET keep_until = ?, pass_valid_until ="
        " coalesce(pass_valid_until, ?) WHERE pass_id = ? AND keep_until IS NULL",
        [
            [_utc_text(expiry + REVOCATION_MARGIN), expiry.isoformat(), pass_id]
            for pass_id, expiry in known
            if expiry is not None
        ],
    )
    db.execute(
        "UPDATE list_revocations SET keep_until = ? WHERE keep_until IS NULL",
        [_utc_text(now + LONGEST_PASS + REVOCATION_MARGIN)],
    )


#: The ``lists.bundle`` audit detail naming the passages (``seq``) that passed on a pass
#: the bundle revokes anew, after the gate's last confirmed sync before it
#: (``kiosk.alarms``: a guard's card each).
REVOKED_PASSED = "revoked_passed"
#: The most such passages one bundle names (the newest kept).
REVOKED_PASSED_MAX = 50


def _passed_before_revoked(
    db: sqlite_utils.Database, payload: BundlePayload, last_sync: datetime | None
) -> list[int]:
    """The passages that passed (the kiosk's or a guard's pass) on a pass ``payload`` revokes
    and the lists in force (read before the bundle is written) do not, since ``last_sync``:
    the office may have revoked it before (a lost card), and the gate could not know. None
    before a first sync."""
    revoked = [r.pass_id for r in payload.revocations]
    if last_sync is None or not revoked:
        return []
    rows = db.execute(
        "SELECT seq FROM events WHERE pass_id IN (SELECT value FROM json_each(?))"
        " AND pass_id NOT IN (SELECT pass_id FROM list_revocations)"
        " AND decision IN ('pass', 'manual_pass') AND ts >= ? ORDER BY seq DESC LIMIT ?",
        [json.dumps(revoked), _utc_text(last_sync), REVOKED_PASSED_MAX],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _first_gate_each(revocations: Iterable[Revocation]) -> dict[str, Revocation]:
    """The peers' revocations by pass id, each as the first gate that holds it, marked
    ``forgotten`` when a forget made any gate's of that card: the mark never yields to
    another gate's guard's void of it."""
    held = list(revocations)
    forgotten = {r.pass_id for r in held if r.forgotten}
    out = {r.pass_id: r for r in reversed(held)}
    return {
        p: dataclasses.replace(r, forgotten=True) if p in forgotten else r for p, r in out.items()
    }


def _peer_revocations(db: sqlite_utils.Database, tables: frozenset[str]) -> list[Revocation]:
    """The peers' guards' revocations (``kiosk.peers``' table ``peer_revocations``; none in a
    log without it), by gate and pass id; ``forgotten`` when that gate's page said a forget
    made it (a log without the column: none)."""
    if "peer_revocations" not in tables:
        return []
    columns = {c[1] for c in db.execute("PRAGMA table_info(peer_revocations)").fetchall()}
    mark = "forgotten" if "forgotten" in columns else "0"
    rows = db.execute(
        f"SELECT kiosk_id, pass_id, revoked_at, actor, {mark} FROM peer_revocations"  # noqa: S608
        " ORDER BY kiosk_id, pass_id"
    ).fetchall()
    return [
        Revocation(str(p), "", _instant(r), str(k), str(a) if a else None, bool(f))
        for k, p, r, a, f in rows
    ]


def _peer_quarantine(db: sqlite_utils.Database, tables: frozenset[str]) -> list[QuarantineEntry]:
    """The peers' guards' quarantine entries (``kiosk.peers``' table ``peer_quarantine``; none
    in a log without it), ``source`` the gate's kiosk id, ``note`` the guard's name there; an
    entry whose days are not dates (never written so) is left out."""
    if "peer_quarantine" not in tables:
        return []
    rows = db.execute(
        "SELECT kiosk_id, household, holder, from_date, until_date, actor FROM peer_quarantine"
        " ORDER BY kiosk_id, entry_id"
    ).fetchall()
    out = []
    for kiosk_id, household, holder, start, end, actor in rows:
        first, last = _date(start), _date(end)
        if first is not None and last is not None:
            out.append(QuarantineEntry(household, holder, first, last, actor or "", kiosk_id))
    return out


def _utc_text(when: datetime) -> str:
    """A moment as fixed-width UTC text, which sorts as the moments do."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(text: object) -> datetime | None:
    """An aware ISO 8601 moment from a list row, else None (missing, unreadable, naive)."""
    try:
        when = datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def _gone_by(text: object, moment: datetime) -> bool:
    when = _instant(text)
    return when is not None and when <= moment


def _issued_expiries(db: sqlite_utils.Database) -> list[tuple[str, datetime | None]]:
    """(pass id, expiry) of the passes issued at the guard console, as their issue records
    (audit ``pass_issued``) state them while retention has not purged those."""
    if not db["audit"].exists():
        return []
    rows = db.execute(
        "SELECT json_extract(detail, '$.pass_id'), json_extract(detail, '$.valid_until')"
        " FROM audit WHERE action = 'pass_issued' AND json_valid(detail) ORDER BY seq DESC"
    ).fetchall()
    return [(str(pass_id), _instant(until)) for pass_id, until in rows if pass_id]


def mark_purged(db: sqlite_utils.Database, now: datetime) -> None:
    """Retention removed list rows or fields (in the caller's transaction): say so in
    ``list_meta``, so every process's snapshot is read again (``ListStore.reload_if_changed``).
    A snapshot still holding them would put a purged value back: an import completes the
    columns its file lacks from the snapshot in force (``kiosk.listimport``)."""
    _set_meta(db, {RETENTION_KEY: now.isoformat()})


def purge_ended_quarantine(db: sqlite_utils.Database, before: date) -> int:
    """Retention (run through ``EventLog.submit``): delete the quarantine entries that ended
    before ``before`` (a local date). They name a household and a holder with a health
    status, and no decision needs them any more. Returns how many went."""
    if not db["list_quarantine"].exists():
        return 0
    cursor = db.execute("DELETE FROM list_quarantine WHERE until_date < ?", [before.isoformat()])
    return int(cursor.rowcount)


def purge_ended_observation(db: sqlite_utils.Database, before: date) -> int:
    """Retention (run through ``EventLog.submit``): empty the household ledger's
    ``observation_until`` where the observation ended before ``before`` (a local date): a
    health status no decision needs any more. The household, its residents and note stay.
    Returns how many observations went."""
    if not db["list_households"].exists():
        return 0
    cursor = db.execute(
        "UPDATE list_households SET observation_until = NULL WHERE observation_until < ?",
        [before.isoformat()],
    )
    return int(cursor.rowcount)


#: The personal values of each list's rows (``_personal_values``).
_PERSONAL_COLUMNS = {
    "list_revocations": "pass_id, reason, bundle_reason",
    "list_quarantine": "household, holder, from_date, until_date, note",
    "list_households": "household, observation_until, note",
}


#: A household row's values and where it came from: an import writes a row again unless the
#: sheet's row holds them already (its actor and stamp aside; a guard's or a bundle's row
#: becomes the sheet's, as before).
_HOUSEHOLD_VALUES = ("residents", "observation_until", "note", "source")


def _changed_households(
    db: sqlite_utils.Database, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of a household import that are new or change a row's values: one written
    again as it was keeps its row, stamp and actor (its ``updated_at`` says when it last
    changed, and a resident's forget names it by it: ``kiosk.people._IDENTITY``)."""
    held = {
        str(r[0]): tuple(r[1:])
        for r in db.execute(
            "SELECT household, residents, observation_until, note, source FROM list_households"
        ).fetchall()
    }
    return [r for r in rows if held.get(r["household"]) != tuple(r[c] for c in _HOUSEHOLD_VALUES)]


def _personal_values(db: sqlite_utils.Database) -> set[tuple[str, tuple[Any, ...]]]:
    """Every list row's personal values, by table: a change that drops one (a quarantine the
    office lifted, a note rewritten) leaves it in the WAL's old frames (``kiosk.wipe``)."""
    return {
        (table, tuple(row))
        for table, columns in _PERSONAL_COLUMNS.items()
        for row in db.execute(f"SELECT {columns} FROM {table}")  # noqa: S608 - ours
    }


def _drops_personal(table: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether ``after`` written over ``before`` (a row of ``table``; None: an entry added)
    drops a personal value it held (``_PERSONAL_COLUMNS``): its old page images keep it. A
    value written as it was, or given where there was none, drops nothing."""
    if before is None:
        return False
    columns = _PERSONAL_COLUMNS[table].split(", ")
    return any(before[c] not in (None, "", after.get(c)) for c in columns)


#: The ``list_meta`` key a retention purge that changed the lists stamps (``mark_purged``).
RETENTION_KEY = "retention_purged_at"

#: The audit action of a guard's removal, by table.
_DELETE_ACTIONS = {
    "list_revocations": "lists.unrevoke",
    "list_quarantine": "lists.quarantine_remove",
    "list_households": "lists.household_remove",
}


#: The columns of each list (as ``kiosk.queries.list_rows`` names them) that a guard's page
#: shows of an entry, and the table they are in: ``entry_version``.
_SEEN_COLUMNS = {
    "quarantine": (
        "list_quarantine",
        ("id", "household", "holder", "from_date", "until_date", "note", "source", "actor",
         "created_at"),
    ),
    "revocations": ("list_revocations", ("pass_id", "reason", "revoked_at", "source", "actor")),
    "households": (
        "list_households",
        ("household", "residents", "observation_until", "note", "source", "actor", "updated_at"),
    ),
}  # fmt: skip
_SEEN_LISTS = {table: name for name, (table, _) in _SEEN_COLUMNS.items()}


#: The ``seen`` of a form whose page showed no such entry (the households' add form): the
#: change is refused (``ListChanged``) if one was written since.
NEW_ENTRY = "new"


def entry_version(which: str, row: Mapping[str, Any]) -> str:
    """The version of an entry of list ``which`` (``quarantine``, ``revocations``,
    ``households``) as stored (a row of ``kiosk.queries.list_rows``): a page's removal form
    carries it (``seen``), and the removal is refused (``ListChanged``) unless the entry is
    still the one the page showed. Two guards at one gate: one's page may show an entry the
    other lifted and set again since, or whose number now names another household's."""
    _, columns = _SEEN_COLUMNS[which]
    shown = json.dumps([row.get(c) for c in columns], default=str, ensure_ascii=False)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def _changed(table: str, key: str | int, row: Mapping[str, Any]) -> str:
    """What an entry changed since a page showed it is now (no holder's name, no reason)."""
    actor = row.get("actor") or row.get("source") or "?"
    if table == "list_quarantine":
        return (
            f"quarantine entry {key} changed since the page was drawn: it is now household"
            f" {row.get('household')} until {row.get('until_date')}, set by {actor};"
            " nothing removed"
        )
    if table == "list_revocations":
        return (
            f"the revocation of pass {key} changed since the page was drawn: it is now by"
            f" {actor}; it stays revoked"
        )
    return (
        f"household {key} changed since the page was drawn: it is now set by {actor};"
        " it stays in the ledger"
    )


def _iso(d: date | datetime | None) -> str | None:
    return None if d is None else d.isoformat()


def _date(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def _guards_revocations(lists: Lists) -> frozenset[tuple[str, datetime | None, bool]]:
    """The revocations of ``lists`` the other gates hold as this gate's own (``GATE_SOURCES``:
    a guard's, a forget's; ``kiosk.peers``' page), each by its pass, stamp and whether a
    forget made it (a guard's void a forget marks keeps its stamp: news for the peers too)."""
    rows = lists.revocations.values()
    return frozenset(
        (r.pass_id, r.revoked_at, r.source == FORGET_SOURCE)
        for r in rows
        if r.source in GATE_SOURCES
    )


def upsert_local_revocations(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> int:
    """Guard, forget or CSV revocations over whatever rows are there; a bundle's row a local one
    replaces leaves its reason in ``bundle_reason`` (the office's revocation still stands).
    A forget's row stays as it is (no reason, its mark, its stamp: the forget's record names
    it so): a sheet voiding the card again would put the holder's name back into its denies
    (until 2026-12-07 it did). Returns how many rows were left so."""
    table = db.table("list_revocations")
    kept = 0
    for row in rows:
        try:
            before = table.get(row["pass_id"])
        except NotFoundError:
            before = None
        if before is not None and before["source"] == FORGET_SOURCE:
            kept += 1
            continue
        office = before["reason"] if before and before["source"] == "bundle" else None
        if before is not None and before["source"] != "bundle":
            office = before["bundle_reason"]
        table.upsert(row | {"bundle_reason": office}, pk="pass_id")
    return kept


def _set_meta(db: sqlite_utils.Database, values: Mapping[str, Any]) -> None:
    db.table("list_meta").upsert_all(
        [{"key": k, "value": None if v is None else str(v)} for k, v in values.items()], pk="key"
    )


def _meta(db: sqlite_utils.Database, tables: frozenset[str] | None = None) -> dict[str, str]:
    if "list_meta" not in (_table_names(db) if tables is None else tables):
        return {}
    return {r["key"]: r["value"] for r in _all_rows(db, "SELECT * FROM list_meta")}


def _table_names(db: sqlite_utils.Database) -> frozenset[str]:
    """The log's tables in one query (sqlite_utils' ``db[name]`` and ``.exists()`` each ask
    sqlite_master again: a load asked it ~30 times)."""
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return frozenset(str(r[0]) for r in rows)


def _all_rows(db: sqlite_utils.Database, sql: str) -> list[dict[str, Any]]:
    """The rows ``sql`` selects as dicts (``db[table].rows`` without its sqlite_master
    look-ups)."""
    cursor = db.execute(sql)
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _freshness(meta: Mapping[str, str]) -> Freshness:
    """What ``list_meta`` says of the lists it stamps (their last change, source, bundle)."""
    updated = meta.get("updated_at")
    issued = meta.get("bundle_issued_at")
    applied = meta.get("bundle_applied_at")
    if applied is None and meta.get("source") == "bundle":
        applied = updated
    return Freshness(
        updated_at=datetime.fromisoformat(updated) if updated else None,
        source=meta.get("source", "empty"),  # type: ignore[arg-type]
        bundle_version=int(meta.get("bundle_version") or 0),
        bundle_issued_at=datetime.fromisoformat(issued) if issued else None,
        bundle_issuer=meta.get("bundle_issuer"),
        bundle_compound=meta.get("bundle_compound") or None,
        bundle_applied_at=datetime.fromisoformat(applied) if applied else None,
    )


class ListStore:
    """Loads ``Lists`` snapshots and applies changes through the event log's writer, each
    with its audit row in the same transaction (``kiosk.auditing.audited_write``).

    ``current`` is always a complete snapshot; after every change a new one is built from
    the database and handed to ``on_change`` (the engine swaps it in between passages).
    """

    def __init__(
        self,
        store: AuditedWriter,
        clock: Clock,
        on_change: Callable[[Lists], None] | None = None,
        passed: Callable[[datetime], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        #: Told a time known to have passed, while the clock is not synchronised: the issue
        #: time of each bundle the office signed (``kiosk.clock.FlooredClock.raise_floor``).
        self._passed = passed
        # Loads run on several threads (the list sync, the guard console): the latest read
        # wins, and the office's confirmation is applied to it under the same lock.
        self._confirmed_at: datetime | None = None
        #: ``list_meta``'s ``RETENTION_KEY`` as the last load read it (``reload_if_changed``).
        self._purged_seen: str | None = None
        self._snapshots = LatestRead(Lists(), adopt=self._as_confirmed, on_load=on_change)
        #: Told after a guard's revocation or its lift is written (``watch_revocations``).
        self._revocation_watchers: list[Callable[[], None]] = []

    def watch_revocations(self, told: Callable[[], None]) -> None:
        """``told()`` after each guard's revocation or lift written here, and after a reload
        that finds this gate's guards' revocations changed by another writer (a forget's:
        ``reload_if_changed``), on the thread that made it or read it (it must not block):
        the compound's other gates are told at once
        (``checkpoint.peers.PeerSync.revocation_news``)."""
        self._revocation_watchers.append(told)

    def _revocations_changed(self) -> None:
        for told in list(self._revocation_watchers):
            try:
                told()
            except Exception:  # noqa: BLE001 - the edit is written; the peers' poll brings it
                log.exception("lists: telling the other gates of a revocation failed")

    @property
    def current(self) -> Lists:
        return self._snapshots.current

    def load(self) -> Lists:
        """Read the whole lists from the database into a fresh snapshot and put it in force,
        unless a load that started later (on another thread) already put a newer one in
        force: then that one stays and is returned. The lists are read in one read
        transaction, so a bundle applied meanwhile is either wholly in or wholly out."""
        return self._snapshots.load(self._read_in_one_transaction)

    def reload_if_changed(self) -> bool:
        """Load the lists again when the database holds a change the snapshot in force does
        not (another process wrote it: ``kiosk lists import --apply`` beside the daemon);
        True when it did. Every change stamps ``list_meta``, so comparing it is enough; a
        retention purge that deleted or emptied list rows stamps ``RETENTION_KEY`` there
        (``mark_purged``), so the rows it removed leave the snapshot too."""

        def stamp(f: Freshness) -> tuple[object, ...]:  # what every change writes anew
            return (f.updated_at, f.source, f.bundle_version)

        meta = _meta(self._store.reader())
        purged = meta.get(RETENTION_KEY)
        if stamp(_freshness(meta)) == stamp(self.current.freshness) and purged == self._purged_seen:
            return False
        before = _guards_revocations(self.current)
        if _guards_revocations(self.load()) != before:
            # Another process's void (``kiosk person forget`` beside the daemon, the console's
            # forget through its own writer): news for the other gates as a guard's here is.
            self._revocations_changed()
        return True

    def _read_in_one_transaction(self) -> Lists:
        db = self._store.reader()
        with read_snapshot(db.conn):
            tables = _table_names(db)
            self._purged_seen = _meta(db, tables).get(RETENTION_KEY)
            return self._read(db, tables)

    def _as_confirmed(self, lists: Lists) -> Lists:
        """A freshly read snapshot counts its freshness from the office's last confirmation
        (run under the snapshot lock, as ``confirm`` is)."""
        if self._confirmed_at is None:
            return lists
        return lists.with_freshness(
            dataclasses.replace(lists.freshness, confirmed_at=self._confirmed_at)
        )

    @staticmethod
    def _read(db: sqlite_utils.Database, tables: frozenset[str]) -> Lists:
        if "list_meta" not in tables:
            raise ListError("lists tables missing: open the EventLog with lists.MIGRATIONS")
        meta = _meta(db, tables)
        revocations = [
            Revocation(
                r["pass_id"],
                r["reason"] or "",
                datetime.fromisoformat(r["revoked_at"]) if r["revoked_at"] else None,
                r["source"],
            )
            for r in _all_rows(db, "SELECT * FROM list_revocations")
        ]
        quarantine = [
            QuarantineEntry(
                r["household"],
                r["holder"],
                date.fromisoformat(r["from_date"]),
                date.fromisoformat(r["until_date"]),
                r["note"] or "",
                r["source"],
                r["id"],
            )
            for r in _all_rows(db, "SELECT * FROM list_quarantine ORDER BY id")
        ]
        households = [
            Household(
                r["household"],
                r["residents"],
                _date(r["observation_until"]),
                r["note"] or "",
                r["source"],
            )
            for r in _all_rows(db, "SELECT * FROM list_households")
        ]
        return Lists.build(
            revocations,
            quarantine,
            households,
            _freshness(meta),
            _peer_revocations(db, tables),
            _peer_quarantine(db, tables),
        )

    def confirm(self, at: datetime) -> Lists:
        """The office confirmed the lists in force unchanged at ``at`` (``office.listsync``):
        their freshness counts from then. Nothing is written. An earlier confirmation is
        kept, unless it is stamped after the clock's now (the clock stepped back since)."""

        def confirmed(lists: Lists) -> Lists:
            last = self._confirmed_at
            if last is not None and at <= last <= self._clock.now():
                return lists
            self._confirmed_at = at
            return lists.with_freshness(dataclasses.replace(lists.freshness, confirmed_at=at))

        return self._snapshots.amend(confirmed)

    # -- guard edits ------------------------------------------------------------------------

    def revoke(self, pass_id: str, reason: str, actor: str) -> Lists:
        """A guard's revocation of ``pass_id``. One a guard (or a sheet) already made stands:
        another guard's revocation from a page drawn before it (two tablets at one gate)
        would write over its reason and who made it (``ListError``; to say it anew, lift it
        first). One only the office's bundle makes gets the guard's beside it."""
        row = self._validate(RevocationIn, {"pass_id": pass_id, "reason": reason})
        elsewhere = self.current.peer_revocations.get(row.pass_id)
        if elsewhere is not None:
            # One void a card: a second here would stay when that gate restores it (the
            # resident still refused here after "the" restore).
            raise ListError(
                f"pass {row.pass_id} is already voided at gate {elsewhere.source} by"
                f" {elsewhere.actor or 'a guard'}; it stays so here too (only a guard there"
                " restores it)"
            )

        def apply(db: sqlite_utils.Database, now: datetime) -> None:
            before = next(db["list_revocations"].rows_where("pass_id = ?", [row.pass_id]), None)
            if before is not None and before["source"] == FORGET_SOURCE:
                raise ListError(
                    f"pass {row.pass_id} is already revoked by a resident's forget; it stays so"
                    " (its holder was forgotten: a deny of the card names nobody)"
                )
            if before is not None and before["source"] != "bundle":
                who = before["actor"] or before["source"]
                raise ListError(f"pass {row.pass_id} is already revoked by {who}; it stays so")
            held = self._held_clock()
            upsert_local_revocations(db, [self._revocation_row(row, "guard", actor, now, held)])

        lists = self._guard_edit(apply, actor, "lists.revoke", {"pass_id": row.pass_id})
        self._revocations_changed()
        return lists

    def unrevoke(self, pass_id: str, actor: str, seen: str | None = None) -> Lists:
        """Lift a local revocation; one the office's bundle also makes stays (only the office
        lifts its own: ``ListError``). ``seen``: the version of the revocation as the guard's
        page showed it (``entry_version``), else ``ListChanged``."""
        row = self._validate(RevocationIn, {"pass_id": pass_id})
        missing = f"pass {row.pass_id} is not revoked"
        elsewhere = self.current.peer_revocations.get(row.pass_id)
        if elsewhere is not None and row.pass_id not in self.current.revocations:
            raise ListError(
                f"pass {row.pass_id} was voided at gate {elsewhere.source}; only a guard there"
                " restores it"
            )
        if elsewhere is not None:
            # Voided here and there before either knew of the other: lifting this one alone
            # would leave the card refused, the guard told it is restored.
            raise ListError(
                f"pass {row.pass_id} is voided at gate {elsewhere.source} too, by"
                f" {elsewhere.actor or 'a guard'}: it stays refused until a guard there restores"
                " it; restore it here after that"
            )

        def office_keeps(found: Mapping[str, Any]) -> str | None:
            if found.get("source") == "bundle" or found.get("bundle_reason") is not None:
                return f"pass {row.pass_id} is revoked by the office's list; it stays revoked"
            return None

        lists = self._guard_delete(
            "list_revocations", "pass_id", row.pass_id, missing, actor, office_keeps, seen
        )
        self._revocations_changed()
        return lists

    def add_quarantine(
        self,
        household: str,
        holder: str | None,
        from_date: date | str,
        until_date: date | str,
        actor: str,
        note: str = "",
    ) -> Lists:
        quarantine = {"household": household, "holder": holder, "note": note}
        row = self._validate(QuarantineIn, quarantine | {"from": from_date, "until": until_date})
        there = self.current.peer_quarantine_of(
            row.household, row.holder, row.from_, row.until, within=True
        )
        if there is not None:
            # In force here already: a second entry here would stay when that gate lifts it.
            raise ListError(
                f"household {row.household} is already quarantined at gate {there.source} by"
                f" {there.note or 'a guard'} from {there.from_date} until"
                f" {there.until_date}; it stays so here too (only a guard there lifts it)"
            )

        def apply(db: sqlite_utils.Database, now: datetime) -> None:
            days = (row.from_.isoformat(), row.until.isoformat())
            # The other tablet's entry holding these days already (its page drawn before this
            # one was added): one entry a quarantine. One that says more days (extended) is
            # added: a lift ends both (``remove_quarantine``).
            held = [
                r
                for r in _quarantine_of(db, row.household, row.holder, days)
                if str(r["from_date"]) <= days[0] and days[1] <= str(r["until_date"])
            ]
            if held:
                _already_quarantined(row.household, row.holder is not None, held[0])
            db.table("list_quarantine").insert(self._quarantine_row(row, "guard", actor, now))

        detail = {"household": row.household, "person": row.holder is not None}
        detail |= {"from": row.from_.isoformat(), "until": row.until.isoformat()}
        lists = self._guard_edit(apply, actor, "lists.quarantine_add", detail)
        self._revocations_changed()  # news for the other gates: it is in force there too
        return lists

    def remove_quarantine(self, entry_id: int, actor: str, seen: str | None = None) -> Lists:
        """Lift quarantine entry ``entry_id``; ``seen`` as ``unrevoke``'s (an entry's number
        is used again once the highest is lifted: only the version says it is the same)."""
        missing = f"no quarantine entry {entry_id}"

        def also(db: sqlite_utils.Database, found: Mapping[str, Any]) -> dict[str, Any]:
            # Its other entries (two tablets, a sheet on top of a guard's entry): the guard
            # lifts the quarantine, not one of its rows, or the resident is still stopped.
            days = (str(found["from_date"]), str(found["until_date"]))
            same = _quarantine_of(db, str(found["household"]), found["holder"], days)
            more = [int(r["id"]) for r in same if r["id"] != found["id"]]
            for other in more:
                db.table("list_quarantine").delete(other)
            return {"also": more} if more else {}

        def elsewhere(found: Mapping[str, Any]) -> str | None:
            # Added here and at another gate before either knew: lifting this one alone would
            # leave the resident stopped, the guard told the quarantine is lifted.
            start, end = _date(found["from_date"]), _date(found["until_date"])
            household, holder = str(found["household"]), found["holder"]
            there = (
                self.current.peer_quarantine_of(household, holder, start, end)
                if start is not None and end is not None
                else None
            )
            if there is None:
                return None
            return (
                f"household {household} is quarantined at gate {there.source} too, by"
                f" {there.note or 'a guard'}: it stays in force until a guard there lifts it;"
                " lift it here after that"
            )

        lists = self._guard_delete(
            "list_quarantine", "id", entry_id, missing, actor, elsewhere, seen, also
        )
        self._revocations_changed()  # lifted at the other gates too, at their next ask
        return lists

    def set_household(
        self,
        household: str,
        actor: str,
        residents: int | None = None,
        observation_until: date | str | None = None,
        note: str = "",
        seen: str | None = None,
    ) -> Lists:
        """A guard's entry for ``household``, in place of the one there (matched as the gate
        matches). ``seen``: the version of that entry as the guard's page showed it
        (``entry_version``), or ``NEW_ENTRY`` when it showed none; else ``ListChanged``, so
        another guard's entry (an observation set for a returnee) is not replaced unseen.
        None: not checked (a script)."""
        entry = {"household": household, "residents": residents, "note": note}
        row = self._validate(HouseholdIn, entry | {"observation_until": observation_until})

        def apply(db: sqlite_utils.Database, now: datetime) -> None:
            record = self._household_row(row, "guard", actor, now)
            before = _household_entry(db, row.household)
            record["household"] = before["household"] if before else row.household
            if seen is not None:
                if before is None and seen != NEW_ENTRY:
                    raise ListError(f"household {row.household!r} is not in the ledger")
                if before is not None and seen != entry_version("households", before):
                    raise ListChanged(_changed("list_households", before["household"], before))
            db.table("list_households").upsert(record, pk="household")
            if _drops_personal("list_households", before, record):
                owe_wipe(self._store, db)  # its note or observation date as they were

        detail = {"household": row.household, "observation_until": _iso(row.observation_until)}
        return self._guard_edit(apply, actor, "lists.household_set", detail)

    def household_entry(self, household: str) -> dict[str, Any] | None:
        """The households list's entry for ``household`` as stored (a row of
        ``kiosk.queries.list_rows``: its ``entry_version`` is what a form carries), matched
        as the gate matches (``same_text``); None when there is none; ``ListError`` when
        several spell it (``_household_entry``: merged first, then edited)."""
        return _household_entry(self._store.reader(), household)

    def remove_household(self, household: str, actor: str, seen: str | None = None) -> Lists:
        """Take ``household`` off the ledger; ``seen`` as ``unrevoke``'s."""
        household = typed(household) if isinstance(household, str) else household
        missing = f"household {household!r} is not in the ledger"
        return self._guard_delete(
            "list_households", "household", household, missing, actor, seen=seen
        )

    # -- imports ----------------------------------------------------------------------------

    def import_bundle(
        self, text: str | bytes, trust: TrustList, actor: str, compound: str | None = None
    ) -> ImportResult:
        """Verify, then apply atomically; an older or equal version is refused/ignored.
        ``compound``: this gate's (``[compound] id``), whose entries alone it applies of a
        bundle naming compounds (``BundlePayload.for_compound``); the same version chosen for
        another compound (the id changed, or the first format came before) applies again."""
        opened, issuer = open_bundle(text, trust)
        if self._passed is not None and not self._clock.synced():
            # Signed by the office: its issue time has passed, whatever this clock says.
            self._passed(opened.issued_at)
        payload, scope = opened.for_compound(compound)
        warning = None
        if compound is not None and not opened.knows(compound):
            declared = ", ".join(opened.compounds or ())
            warning = (
                f"this gate's compound {compound} ([compound] id) is not one of the office's"
                f" compounds ({declared}): every entry of the office's lists applies here"
            )
        now = self._clock.now()
        counts = {
            "revocations": len(payload.revocations),
            "quarantine": len(payload.quarantine),
            "households": len(payload.households),
        }

        last_sync = self.current.freshness.synced_at()

        def apply(db: sqlite_utils.Database) -> list[int]:
            meta = _meta(db)
            applied = int(meta.get("bundle_version") or 0)
            if payload.version < applied:
                raise BundleError(
                    f"bundle version {payload.version} is older than the applied version"
                    f" {applied}; not applied"
                )
            if payload.version == applied and (meta.get("bundle_compound") or "") == scope:
                raise _AlreadyApplied
            passed = _passed_before_revoked(db, payload, last_sync)
            self._write_bundle(db, payload, actor, now)
            _set_meta(
                db,
                {
                    "updated_at": now.isoformat(),
                    "bundle_applied_at": now.isoformat(),
                    "source": "bundle",
                    "bundle_version": payload.version,
                    "bundle_issued_at": payload.issued_at.isoformat(),
                    "bundle_issuer": issuer,
                    "bundle_compound": scope,
                },
            )
            return passed

        what = {"version": payload.version, "issuer": issuer, **counts}

        def note(passed: list[int]) -> dict[str, Any]:
            return what | ({REVOKED_PASSED: passed} if passed else {})

        if scope:
            what["compound"] = scope
        if warning is not None:
            what["compound_unknown"] = compound
        try:
            audited_write(self._store, apply, actor, "lists.bundle", note)
        except _AlreadyApplied:
            return ImportResult(
                False, "bundle", counts, f"bundle version {payload.version} already applied"
            )
        wipe_if_owed(self._store)  # the old frames of what the office lifted
        self.load()
        done = f"applied bundle version {payload.version} from {issuer}"
        return ImportResult(True, "bundle", counts, done, warning)

    def _write_bundle(
        self, db: sqlite_utils.Database, payload: BundlePayload, actor: str, now: datetime
    ) -> None:
        """The bundle's rows in place of the previous bundle's (local rows stay). One that drops
        a personal value (an entry the office lifted, a note rewritten) owes a WAL wipe."""
        before = _personal_values(db)
        for table in ("list_revocations", "list_quarantine", "list_households"):
            db.execute(f"DELETE FROM [{table}] WHERE source = 'bundle'")  # noqa: S608
        # A local revocation's row stays (see module doc) and notes the bundle's too, so
        # lifting the local one does not lift the office's.
        db.execute("UPDATE list_revocations SET bundle_reason = NULL")
        db.table("list_revocations").insert_all(
            (
                self._revocation_row(r, "bundle", actor, payload.issued_at)
                for r in payload.revocations
            ),
            pk="pass_id",
            ignore=True,
        )
        db.conn.executemany(
            "UPDATE list_revocations SET bundle_reason = ?"
            " WHERE pass_id = ? AND source != 'bundle'",
            [(r.reason, r.pass_id) for r in payload.revocations],
        )
        db.table("list_quarantine").insert_all(
            self._quarantine_row(q, "bundle", actor, now) for q in payload.quarantine
        )
        db.table("list_households").upsert_all(
            (self._household_row(h, "bundle", actor, now) for h in payload.households),
            pk="household",
        )
        if before - _personal_values(db):
            owe_wipe(self._store, db)

    def import_csv(self, kind: CsvKind, text: str, actor: str) -> ImportResult:
        """Add rows from CSV text with a header line. All rows are checked before any is
        applied; errors name the line number (the header is line 1)."""
        models: dict[str, type[_Strict]] = {
            "revocations": RevocationIn,
            "quarantine": QuarantineIn,
            "households": HouseholdIn,
        }
        if kind not in models:
            raise ListError(f"unknown list {kind!r}; choose revocations, quarantine or households")
        model = models[kind]
        columns, records = _csv_records(text)
        # ``compound`` is the office's: a gate's own rows are its own compound's.
        expected = {(f.alias or name) for name, f in model.model_fields.items()} - {"compound"}
        header = set(columns)
        required = {(f.alias or name) for name, f in model.model_fields.items() if f.is_required()}
        if not header:
            raise ListError("CSV is empty (a header line is required)")
        if unknown := header - expected:
            raise ListError(f"CSV has unknown columns: {', '.join(sorted(unknown))}")
        if missing := required - header:
            raise ListError(f"CSV lacks columns: {', '.join(sorted(missing))}")
        rows: list[Any] = []
        errors: list[str] = []
        for line, raw in enumerate(records, start=2):
            if None in raw:
                errors.append(f"line {line}: more fields than the header")
                continue
            values = {k: v for k, v in raw.items() if v is not None}
            try:
                rows.append(model.model_validate(values))
            except ValidationError as exc:
                errors.append(_problems(exc, prefix=f"line {line}: "))
        if errors:
            more = f" (and {len(errors) - 3} more lines)" if len(errors) > 3 else ""
            raise ListError("; ".join(errors[:3]) + more + "; nothing imported")
        if not rows:
            raise ListError("CSV has no rows")
        now = self._clock.now()

        forgotten: list[int] = []  # of the revocations, cards a forget revoked: kept so

        def apply(db: sqlite_utils.Database) -> None:
            before = _personal_values(db)  # a row rewritten: its old note, reason, date
            if kind == "revocations":
                held = self._held_clock()
                forgotten[:] = [upsert_local_revocations(
                    db, [self._revocation_row(r, "csv", actor, now, held) for r in rows]
                )]  # fmt: skip
            elif kind == "quarantine":
                db.table("list_quarantine").insert_all(
                    self._quarantine_row(q, "csv", actor, now) for q in rows
                )
            else:
                # A household named twice: its last row, as an upsert of them all would end.
                each = (self._household_row(h, "csv", actor, now) for h in rows)
                written = list({r["household"]: r for r in each}.values())
                db.table("list_households").upsert_all(
                    _changed_households(db, written), pk="household"
                )
            _set_meta(db, {"updated_at": now.isoformat(), "source": "csv"})
            if before - _personal_values(db):
                owe_wipe(self._store, db)

        what = {"list": kind, "rows": len(rows)}
        audited_write(self._store, apply, actor, "lists.csv", lambda _: what)
        wipe_if_owed(self._store)
        self.load()
        message = f"imported {len(rows)} {kind} rows"
        if forgotten and forgotten[0]:
            message += (
                f"; {forgotten[0]} of them already revoked by a resident's forget, left as the"
                " forget wrote them (no reason: a deny of such a card names nobody)"
            )
        return ImportResult(True, "csv", {kind: len(rows)}, message)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _validate(model: type[_Strict], values: dict[str, Any]) -> Any:
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise ListError(_problems(exc)) from None

    # A row's columns: the entry's own, then where it came from, who and when.

    @staticmethod
    def _revocation_row(
        r: RevocationIn, source: str, actor: str, at: datetime, clocks: str | None = None
    ) -> dict[str, Any]:
        """``clocks``: ``_held_clock`` of a local revocation (a bundle's is the office's)."""
        entry = {"pass_id": r.pass_id, "reason": r.reason, "clocks": clocks}
        return entry | {"source": source, "actor": actor, "revoked_at": at.isoformat()}

    def _held_clock(self) -> str | None:
        """A revocation's ``clocks`` written now: its boot and monotonic time while the clock
        is not synchronised (retention dates it by them), else None."""
        held = clock_of(ClockReading.take(self._clock), self._store.boot_id)
        return None if held is None else json.dumps({"revoked_at": held})

    @staticmethod
    def _quarantine_row(q: QuarantineIn, source: str, actor: str, at: datetime) -> dict[str, Any]:
        entry = {"household": q.household, "holder": q.holder, "note": q.note}
        entry |= {"compound": q.compound}
        entry |= {"from_date": q.from_.isoformat(), "until_date": q.until.isoformat()}
        return entry | {"source": source, "actor": actor, "created_at": at.isoformat()}

    @staticmethod
    def _household_row(h: HouseholdIn, source: str, actor: str, at: datetime) -> dict[str, Any]:
        entry = {"household": h.household, "residents": h.residents, "note": h.note}
        entry["observation_until"] = _iso(h.observation_until)
        return entry | {"source": source, "actor": actor, "updated_at": at.isoformat()}

    def _guard_delete(
        self,
        table: str,
        pk: str,
        key: str | int,
        missing: str,
        actor: str,
        refuse: Callable[[Mapping[str, Any]], str | None] | None = None,
        seen: str | None = None,
        also: Callable[[sqlite_utils.Database, Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> Lists:
        """A guard's removal of the row of ``table`` whose primary key ``pk`` is ``key``,
        audited as ``_DELETE_ACTIONS[table]`` with that key; ``missing`` is the error when
        there is none, ``refuse(row)`` the one when that row must stay, ``ListChanged`` when
        ``seen`` (its ``entry_version`` as a page showed it) is not the row's now. Checked
        in the removal's transaction: no other change can come between. ``also(db, row)``:
        more removed with it, in the same transaction, said in its audit row."""

        def apply(db: sqlite_utils.Database, now: datetime) -> dict[str, Any]:
            try:
                found = db.table(table).get(key)
            except NotFoundError:
                raise ListError(missing) from None
            if seen is not None and seen != entry_version(_SEEN_LISTS[table], found):
                raise ListChanged(_changed(table, key, found))
            why = refuse(found) if refuse is not None else None
            if why is not None:
                raise ListError(why)
            db.table(table).delete(key)
            owe_wipe(self._store, db)  # the entry's personal values, in the WAL's old frames
            return also(db, found) if also is not None else {}

        return self._guard_edit(apply, actor, _DELETE_ACTIONS[table], {pk: key})

    def _guard_edit(
        self,
        apply: Callable[[sqlite_utils.Database, datetime], Any],
        actor: str,
        action: str,
        detail: dict[str, Any],
    ) -> Lists:
        """Apply a guard's edit at the clock's now, stamp the lists as the guard's, audit it.
        An ``apply`` that removes or rewrites personal data (an entry, or what it said) owes
        a wipe in its transaction (``owe_wipe``): the old page images the WAL keeps are wiped
        after the commit (``kiosk.wipe``). One that only adds owes none: a wipe checkpoints
        the whole WAL on the writer."""
        now = self._clock.now()
        if not isinstance(actor, str) or not actor.strip():
            raise ListError("every list change needs the name of who made it")

        def write(db: sqlite_utils.Database) -> Any:
            more = apply(db, now)
            _set_meta(db, {"updated_at": now.isoformat(), "source": "guard"})
            return more

        def said(more: Any) -> dict[str, Any]:  # what the edit did beyond ``detail``
            return detail | more if isinstance(more, dict) else detail

        audited_write(self._store, write, actor, action, said)
        wipe_if_owed(self._store)
        return self.load()
