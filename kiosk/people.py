"""A resident's right to see and to be forgotten (PIPL Art. 44-47, GDPR Art. 15 and 17).

``find(db, person, today)`` gathers every row of every store of the gate's database that holds
one person's data: the person is named by the keys the office has (``Person``: a pass id, a
household, a name, a phone number, a plate, a returnee's record id). ``show`` hands them to the
office (``kiosk person show``) with an audit row that says it was done, by which kinds of key
and how many rows, never the data. ``would_forget`` is the forget's preview (the CLI's dry run,
the console's, and what ``forget`` finds: one for every face, which a pass id given alone that
no row holds does not refuse). ``forget`` (``kiosk person forget --yes``) removes them ahead
of retention the way retention does (``kiosk.retention``): an event keeps its time, direction,
decision, reasons, temperatures and hashes, its personal fields are nulled and ``purged_at`` set;
an audit row loses its detail; the ledgers' and lists' rows are emptied or deleted as their
purges do. One ``person_forgotten`` audit row counts what went and records the ``purged_at``
stamp it gave the chained rows, so ``verify`` accounts for them (``kiosk.store._forgotten``);
the WAL is wiped after the commit (``kiosk.wipe``), so no old page image keeps the name. In
the same transaction the forget keeps its ``Record`` in ``meta`` (the rows it emptied by
their identity, never a key of the person): ``kiosk restore`` makes every forget the log it
sets aside keeps and the archive's does not again (``reapply``), so a restore never brings
the forgotten back.

Which keys select what: a household given alone is the whole household (everyone of it moved
out); with other keys it only narrows a name to that household's rows (a namesake elsewhere is
not this person). A name given without one that people of more than one household hold is
refused (``_one_household``: namesakes). A name is compared whole with the fields that hold
a name (a holder, a registration's name, a returnee's), never as a substring; a name, phone
number, plate or pass id also selects the rows whose free text (a guard's note, an audit
detail beside its holder and household) carries it, as a substring, which no household
narrows: such a row of another's is emptied as a row naming them, never its pass revoked.
The person's passes (``_passes``: given, of their own passages, issued to them at the
console) are revoked by ``forget`` (a revocation with no reason: a card they keep must not
open the gate afterwards; retention deletes it once the pass expired), the only trace left, a
pass id.

``RULES`` has one entry for every store ``kiosk.retention.STORES`` says holds personal data
(``tests/test_person.py``): a store added later without one fails there. What is
active (a quarantine in force, a returnee still observed, an open service request) is the
guard's safety: ``forget`` refuses it unless forced (``PersonActive``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from kiosk import hashchain
from kiosk.clock import Clock
from kiosk.config.policy import QuotaConfig
from kiosk.lists import FORGET_SOURCE, mark_purged, same_text, upsert_local_revocations
from kiosk.ports import Store
from kiosk.record import PURGED_HOUSEHOLD, emptied
from kiosk.stats import freeze_days
from kiosk.store import (
    FORGET_ACTION,
    KEPT_ACTIONS,
    drop_released_digests,
    format_ts,
    shred_salts,
)
from kiosk.typed import typed
from kiosk.unreadable import json_field
from kiosk.wipe import owe_wipe, wipe_removed

__all__ = [
    "FORGET_ACTION",
    "RULES",
    "SHOW_ACTION",
    "Found",
    "Person",
    "PersonActive",
    "PersonChanged",
    "PersonError",
    "Reapplied",
    "Record",
    "UnreadableForgets",
    "find",
    "forgotten_passages",
    "kept",
    "last_forget",
    "reapply",
    "forget",
    "show",
    "seq_ranges",
    "text_of",
    "would_forget",
]

#: The audit action of ``show``: the kinds of key and the rows' counts, never the data.
SHOW_ACTION = "person_shown"
_PASS_ID = re.compile(r"^[0-9a-f]{12}$")
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_MAX_TEXT = 64
_KEYS = ("pass_id", "household", "name", "phone", "plate", "returnee")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]+")
_PLATE_SEPARATORS = re.compile(r"[\s·.\-_]+")  # kiosk.vehicles.normalise_plate's


def key_of(kind: str, value: object) -> str | None:
    """How ``find`` compares a key with what the stores hold, typed as it was, the one way for
    both sides (SQL: ``person_key(kind, column)``): ``text`` (a name, a household, free
    text) as the lists and the gate's rules match them (``kiosk.lists.same_text``: NFKC, case,
    a name's dot), ``phone`` without its separators (``138 0013 8000``, ``138-0013-8000``
    are ``13800138000``), ``plate`` as the vehicle list holds it (``kiosk.vehicles``: NFKC,
    no separators, upper case). A phone kept as a number (a guard's record kept a value that
    was no text as given until ``kiosk.engine._typed_person`` made it text: older rows) is its
    digits. None for no
    text."""
    if kind == "phone" and type(value) is int and value >= 0:
        value = str(value)
    if not isinstance(value, str):
        return None
    if kind == "phone":
        return _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    if kind == "plate":
        return _PLATE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    return same_text(value)


#: The cache of ``person_key`` for the ``find`` running on this thread (none between two).
_KEYS_CACHE = threading.local()


def _person_key(kind: str, value: object) -> str | None:
    cached: Callable[[str, object], str | None] | None = getattr(_KEYS_CACHE, "key", None)
    return key_of(kind, value) if cached is None else cached(kind, value)


def _compare_keys(db: sqlite_utils.Database) -> None:
    """``person_key`` (``key_of``) on ``db``'s connection, defined once for good: a
    connection another thread is querying must never have a function defined or dropped on
    it (SQLite's connection mutex against the GIL froze every thread). Its cache of names
    and notes is ``find``'s (``_keys_cached``), on the thread running it: a connection kept
    open (the daemon's reader) keeps none of it."""
    try:
        db.conn.execute("SELECT person_key('text', '')").fetchone()
    except sqlite3.OperationalError:  # not defined on this connection yet
        db.conn.create_function("person_key", 2, _person_key, deterministic=True)


@contextlib.contextmanager
def _keys_cached() -> Iterator[None]:
    """``person_key`` cached for one ``find`` (a log repeats its names and households)."""
    before = [getattr(_KEYS_CACHE, a, None) for a in ("key", "spellings")]
    _KEYS_CACHE.key = functools.lru_cache(maxsize=4096)(key_of)
    _KEYS_CACHE.spellings = {}  # a big table's distinct values (``_Query.spelled``)
    try:
        yield
    finally:
        _KEYS_CACHE.key, _KEYS_CACHE.spellings = before


class PersonError(ValueError):
    """A key that names nobody: none given, malformed, found in no store, or a name that
    people of several households hold. Nothing done. ``code`` says which (``text``,
    ``pass_id``, ``phone``, ``plate``, ``returnee``, ``no_key``, ``namesakes``, ``nobody``,
    ``unmatched``: one of several keys finds no one, ``kind`` its kind)
    and ``params`` its figures, for a face that says it in its own words; the message is
    the command line's (it names the flag)."""

    def __init__(self, message: str, code: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class PersonChanged(Exception):
    """What ``forget`` finds in its transaction is not what was previewed (``seen``, a
    ``Found.version``): a row added, changed or gone since. Nothing done."""

    def __init__(self) -> None:
        super().__init__("the rows changed since the preview: preview again")


class PersonActive(Exception):
    """What ``forget`` would remove is still in force (the guard's safety): nothing done."""

    def __init__(self, active: Mapping[str, int]) -> None:
        what = ", ".join(f"{n} in {table}" for table, n in sorted(active.items()))
        super().__init__(
            f"still in force: {what} (a quarantine, an observation or an open request): lift"
            " or close it first, or forget it all the same with force"
        )
        self.active = dict(active)


def _text(kind: str, value: object) -> str:
    text = typed(value).strip() if isinstance(value, str) else ""
    if not text or len(text) > _MAX_TEXT or any(not ch.isprintable() for ch in text):
        raise PersonError(
            f"--{kind.replace('_', '-')}: 1 to {_MAX_TEXT} printable characters", "text", kind=kind
        )
    return text


@dataclass(frozen=True)
class Person:
    """The keys that name one person (at least one). Build with ``Person.of``: checked."""

    pass_ids: tuple[str, ...] = ()
    household: str | None = None
    name: str | None = None
    phones: tuple[str, ...] = ()
    plates: tuple[str, ...] = ()
    returnees: tuple[int, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        pass_ids: Sequence[str] = (),
        household: str | None = None,
        name: str | None = None,
        phones: Sequence[str] = (),
        plates: Sequence[str] = (),
        returnees: Sequence[int] = (),
    ) -> Person:
        """``PersonError`` for no key or a malformed one."""
        from kiosk.community import CommunityError
        from kiosk.vehicles import normalise_plate

        ids = tuple(_text("pass_id", p).lower() for p in pass_ids)
        if any(not _PASS_ID.match(p) for p in ids):
            raise PersonError(
                "--pass-id: 12 hex digits (as printed by kiosk pass verify)", "pass_id"
            )
        numbers = tuple(key_of("phone", _text("phone", p)) or "" for p in phones)
        if any(not _PHONE.match(p) for p in numbers):
            raise PersonError("--phone: 5 to 20 digits", "phone")
        try:
            cars = tuple(normalise_plate(p) for p in plates)
        except CommunityError as exc:
            raise PersonError(f"--{exc}", "plate") from None
        if any(
            isinstance(r, bool) or not isinstance(r, int) or not 1 <= r < 2**63 for r in returnees
        ):
            raise PersonError("--returnee: a returnee record's number (1 or more)", "returnee")
        person = cls(
            ids,
            None if household is None else _text("household", household),
            None if name is None else _text("name", name),
            numbers,
            cars,
            tuple(returnees),
        )
        if not person.kinds():
            raise PersonError(
                f"name the person: give at least one of --{', --'.join(_KEYS)}", "no_key"
            )
        return person

    def kinds(self) -> list[str]:
        """The kinds of key given (what the audit row says, never their values)."""
        given = (self.pass_ids, self.household, self.name, self.phones, self.plates)
        return [k for k, v in zip(_KEYS, (*given, self.returnees), strict=True) if v]

    @property
    def whole_household(self) -> bool:
        """A household given alone: everyone of it."""
        return self.kinds() == ["household"]


@dataclass(frozen=True)
class _Scope:
    """The big table a search is on (``events``, ``audit``) and its rows' filter: the values
    there are folded once each (``_Query.spelled``), never row by row."""

    db: sqlite_utils.Database
    table: str
    also: str


@dataclass
class _Query:
    """One search: the person, the passes found to be theirs, the local day (what is in
    force), the rows found so far by store (a later store's rows hang on an earlier's).
    ``scope``: on a big table (``scoped``), each comparison is resolved first against the
    distinct values the table holds, folded once each in Python, and the rows are then
    selected by those values as they are spelled: no function call a row."""

    person: Person
    passes: tuple[str, ...]
    today: date
    found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scope: _Scope | None = None

    @contextlib.contextmanager
    def scoped(self, db: sqlite_utils.Database, table: str, also: str) -> Iterator[_Query]:
        before, self.scope = self.scope, _Scope(db, table, also)
        try:
            yield self
        finally:
            self.scope = before

    def col(self, kind: str, column: str) -> str:
        """SQL: ``column`` as the person's keys of ``kind`` are compared with it."""
        return f"person_key('{kind}', {column})"

    def fold(self, kind: str, value: object) -> object:
        """A key of the person as ``col`` compares it."""
        return key_of(kind, value)

    def folded(self, kind: str, raw: object) -> object:
        """A store's value as ``fold`` gives the person's keys (``col``, in Python)."""
        return _person_key(kind, raw)

    def spelled(
        self,
        column: str,
        match: Callable[[object], bool],
        among: tuple[str, list[Any]] = ("1", []),
    ) -> tuple[str, list[Any]]:
        """SQL (scoped): ``column`` is one of the table's values (of its rows ``among``
        selects) ``match`` takes, each read once (``SELECT DISTINCT``, kept for the search)
        and matched once."""
        assert self.scope is not None
        scope = self.scope
        cache: dict[tuple[str, ...], list[Any]] = _KEYS_CACHE.spellings
        key = (scope.table, scope.also, column, among[0], json.dumps(among[1]))
        if key not in cache:
            if scope.table not in scope.db.table_names():
                return "0", []
            together = self.together(scope.table)
            columns = together if column in together and among[0] == "1" else (column,)
            # ``+``: read in the table's order, never walked down the column's own index
            # (``events_household``: a lookup of each row for ``also``, five times slower).
            sql = (
                f"SELECT DISTINCT {', '.join(f'+{c}' for c in columns)}"  # noqa: S608
                f' FROM "{scope.table}" WHERE ({among[0]}){scope.also}'
            )
            rows = scope.db.execute(sql, among[1]).fetchall()
            for i, each in enumerate(columns):
                # Text, and a whole number (a phone kept as one: ``key_of``): anything
                # else (NULL, a fraction) is no one's.
                held = {r[i] for r in rows if isinstance(r[i], str) or type(r[i]) is int}
                cache[(*key[:2], each, *key[3:])] = sorted(
                    held, key=lambda v: (type(v) is int, str(v))
                )
        raws = [raw for raw in cache[key] if match(raw)]
        if not raws:
            return "0", []
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(raws)]  # noqa: S608

    def together(self, table: str) -> tuple[str, ...]:
        """The columns of ``table`` this search compares first (``_READ_TOGETHER``): those
        a name needs, and a phone's or a plate's field when given."""
        if table != "events" or self.person.name is None:
            return ()
        name, driver, phone, plate, free = _READ_TOGETHER
        return (
            ("holder", name, driver, free)
            + (phone,) * bool(self.person.phones)
            + (plate,) * bool(self.person.plates)
        )

    def equal(
        self,
        kind: str,
        column: str,
        values: Sequence[object],
        among: tuple[str, list[Any]] = ("1", []),
    ) -> tuple[str, list[Any]]:
        """SQL: ``column`` folded is one of ``values`` (the person's keys, folded); scoped,
        looked for in the rows ``among`` selects."""
        keys = set(values)
        if self.scope is not None:
            return self.spelled(column, lambda raw: self.folded(kind, raw) in keys, among)
        if len(values) == 1:
            return f"{self.col(kind, column)} = ?", list(values)
        listed = f"{self.col(kind, column)} IN (SELECT value FROM json_each(?))"  # noqa: S608
        return listed, [json.dumps(list(values))]

    def named(self, column: str, household: str = "household") -> tuple[str, list[Any]]:
        """SQL: ``column`` is the name (narrowed to the household when one is given); each
        compared as ``key_of`` folds it."""
        p = self.person
        if p.name is None:
            return "0", []
        name, args = self.equal("text", column, [self.fold("text", p.name)])
        if p.household is None or name == "0":
            return name, args
        # Scoped: the households of the rows holding the name only (a few, not the log's).
        its, more = self.equal("text", household, [self.fold("text", p.household)], (name, args))
        return f"({name} AND ({household} IS NULL OR {its}))", args + more

    def household_is(self, column: str) -> tuple[str, list[Any]]:
        if not self.person.whole_household:
            return "0", []
        return self.equal("text", column, [self.fold("text", self.person.household)])

    def household_in_damaged(
        self, column: str, own: tuple[str, list[Any]]
    ) -> tuple[str, list[Any]]:
        """SQL (scoped): ``column``'s stored text that is not JSON (damaged: its household
        fields read as NULL, ``json_field``) holds the household forgotten whole as a JSON
        string of its own (``"3-301"``: its ``unit``, its ``household``), folded as
        ``key_of`` folds it; never inside another's (``"13-3011"``), nor in a note's words.
        Only on the rows ``own`` selects: those that could be the household's (no household
        of their own, or this one). Another household's row whose damaged note names the
        unit visited is theirs, never this one's."""
        if not self.person.whole_household:
            return "0", []
        quoted = self.fold("text", json.dumps(self.person.household, ensure_ascii=False))
        damaged = f"(CASE WHEN json_valid({column}) THEN NULL ELSE {column} END)"
        held, args = self.spelled(
            damaged, lambda raw: str(quoted) in (_person_key("text", raw) or ""), own
        )
        if held == "0":
            return held, args
        return f"(({own[0]}) AND {held})", own[1] + args

    def mentions(self, column: str) -> tuple[str, list[Any]]:
        """SQL: ``column``'s text carries a needle, each kind folded as ``key_of`` does. Not
        a household code: a short one is inside others (``1-10`` in ``11-101``); a
        household's rows are found by their household fields."""
        p = self.person
        needles = [("text", n) for n in ([p.name] if p.name else [])]
        needles += [("phone", n) for n in p.phones] + [("plate", n) for n in p.plates]
        passes = [("text", n) for n in self.passes]  # found in the stores: in clear
        if not needles and not passes:
            return "0", []
        keys = [(k, key_of(k, n) or "") for k, n in needles + passes]
        if self.scope is not None:
            return self.spelled(
                column, lambda raw: any(n in (_person_key(k, raw) or "") for k, n in keys)
            )
        sql = " OR ".join(f"instr(person_key('{k}', {column}), ?) > 0" for k, _ in keys)
        return sql, [n for _, n in keys]

    def within(
        self, column: str, values: Sequence[object], kind: str | None = None
    ) -> tuple[str, list[Any]]:
        """SQL: ``column`` is one of ``values`` (``kind``: both folded as ``key_of`` does)."""
        if not values:
            return "0", []
        if kind is not None:
            return self.equal(kind, column, [self.fold(kind, v) for v in values])
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]  # noqa: S608


def _rows(
    db: sqlite_utils.Database, table: str, parts: Sequence[tuple[str, list[Any]]], also: str = ""
) -> list[dict[str, Any]]:
    """The rows of ``table`` any of ``parts`` selects (and ``also``), with their ``rowid``."""
    if table not in db.table_names():
        return []
    where = " OR ".join(f"({sql})" for sql, _ in parts)
    args = [a for _, part in parts for a in part]
    cursor = db.execute(
        # ``also`` first: the rows it excludes (retention's, most of a long log) are never
        # folded by ``person_key``.
        f'SELECT rowid AS "_rowid", * FROM "{table}" WHERE 1{also} AND ({where})',  # noqa: S608
        args,
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def _free_text(column: str, *keys: str) -> str:
    """SQL: ``column``'s JSON without its fields ``keys`` (a name, a dwelling, a phone: each
    compared whole, never as a substring), or its text when it is no JSON."""
    paths = ", ".join(f"'$.{k}'" for k in keys)
    return f"(CASE WHEN json_valid({column}) THEN json_remove({column}, {paths}) ELSE {column} END)"


#: A registration's or a car's ``person``: the fields holding who and which dwelling, compared
#: whole (``_events``); the rest (a guard's note) is free text. Each is NULL where the stored
#: text is not JSON (``kiosk.unreadable.json_field``): such a row is found by its other
#: columns (its household, its holder) and its text (``_free_text``), never by the damaged
#: field's.
_PERSON = json_field("person", "$.{}")
#: An audit row's ``detail``: whose pass it issued, and their dwelling.
_DETAIL_HOLDER = json_field("detail", "$.holder")
_DETAIL_HOUSEHOLD = json_field("detail", "$.household")
#: The audit actions whose ``detail`` names a household as its own (the pass issued to it,
#: its quarantine, its entry in the households' list): a damaged ``detail`` of one of them
#: holding the household is the household's; any other action's names it only in passing.
_HOUSEHOLD_ACTIONS = (
    "pass_issued",
    "lists.quarantine_add",
    "lists.household_set",
    "lists.household_remove",
)
_DWELLING = f"coalesce(household, {_PERSON.format('unit')}, {_PERSON.format('resident_of')})"
_PERSON_FIELDS = ("name", "driver", "unit", "resident_of", "phone", "plate")


#: The fields of ``events`` a search by name compares first, with ``holder``, read in one pass
#: (``_Query.together``): a pass over 100,000 events is ~30 ms of a desktop, each on its own
#: one more.
_READ_TOGETHER = (
    *(_PERSON.format(k) for k in ("name", "driver", "phone", "plate")),
    _free_text("person", *_PERSON_FIELDS),
)
#: The rows of the big tables a search reads: those retention has not purged, and those whose
#: household a purge kept for the quota's look-back (``kiosk.store.purge_rows``' ``hold``).
_UNPURGED_EVENTS = f" AND (purged_at IS NULL OR household <> '{PURGED_HOUSEHOLD}')"


def _events(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    with q.scoped(db, "events", _UNPURGED_EVENTS):
        parts = [q.within("pass_id", q.passes), q.named("holder")]
        parts += [q.named(_PERSON.format(k), _DWELLING) for k in ("name", "driver")]
        parts += [q.within(_PERSON.format("phone"), q.person.phones, "phone")]
        parts += [q.within(_PERSON.format("plate"), q.person.plates, "plate")]
        parts += [q.mentions(_free_text("person", *_PERSON_FIELDS))]
        parts += [q.household_is("household"), q.household_is(_PERSON.format("unit"))]
        parts += [q.household_is(_PERSON.format("resident_of"))]
        theirs, args = q.household_is("household")
        own = (f"coalesce(household, '') = '' OR {theirs}", args)
        parts += [q.household_in_damaged("person", own)]
    return _rows(db, "events", parts, _UNPURGED_EVENTS)


def _audit(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    # Never a purge's or a forget's own row: no person's data, the evidence ``verify`` uses.
    kept = ", ".join(f"'{a}'" for a in KEPT_ACTIONS)
    also = f" AND purged_at IS NULL AND action NOT IN ({kept})"
    holder, household = _DETAIL_HOLDER, _DETAIL_HOUSEHOLD
    with q.scoped(db, "audit", also):
        parts = [q.named(holder, household)]
        parts += [q.mentions(_free_text("detail", "holder", "household"))]
        named = ", ".join(f"'{a}'" for a in _HOUSEHOLD_ACTIONS)
        own: tuple[str, list[Any]] = (f"action IN ({named})", [])
        parts += [q.household_is(household), q.household_in_damaged("detail", own)]
    return _rows(db, "audit", parts, also)


def _none(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    """A key of the digests, no person's value."""
    return []


def _theirs_or_mentioned(
    db: sqlite_utils.Database,
    table: str,
    theirs: Sequence[tuple[str, list[Any]]],
    mentioned: Sequence[tuple[str, list[Any]]],
    also: str = "",
) -> list[dict[str, Any]]:
    """The rows of ``table`` that are the person's (``theirs``: ``_theirs`` True), then those
    only mentioning them in a note (False): another's entry, whose note ``forget`` empties
    and whose row it keeps (``Rule.mentioned``)."""
    own = _rows(db, table, theirs, also)
    ids = {r["_rowid"] for r in own}
    other = [r for r in _rows(db, table, mentioned, also) if r["_rowid"] not in ids]
    return [*({**r, "_theirs": True} for r in own), *({**r, "_theirs": False} for r in other)]


def _revocations(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    return _rows(db, "list_revocations", [q.within("pass_id", q.passes), q.mentions("reason")])


def _quarantine(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    theirs = [q.household_is("household"), q.named("holder")]
    return _theirs_or_mentioned(db, "list_quarantine", theirs, [q.mentions("note")])


def _households(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    return _rows(db, "list_households", [q.household_is("household"), q.mentions("note")])


def _returnees(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    theirs = [q.within("id", q.person.returnees), q.within("phone", q.person.phones, "phone")]
    theirs += [q.named("name"), q.household_is("household")]
    mentioned = [q.mentions("note")]
    return _theirs_or_mentioned(db, "obs_people", theirs, mentioned, " AND purged_at IS NULL")


def _of_returnees(table: str) -> Callable[[sqlite_utils.Database, _Query], list[dict[str, Any]]]:
    def rows(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
        ids = [r["id"] for r in q.found.get("obs_people", []) if r.get("_theirs", True)]
        return _rows(db, table, [q.within("person_id", ids)])

    return rows


def _services(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    theirs, mentioned = [q.household_is("household")], [q.mentions("note")]
    return _theirs_or_mentioned(db, "service_requests", theirs, mentioned, " AND purged_at IS NULL")


def _by_pass_or_household(table: str) -> Callable[[sqlite_utils.Database, _Query], list[Any]]:
    def rows(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
        return _rows(db, table, [q.within("pass_id", q.passes), q.household_is("household")])

    return rows


def _peer_revocations(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    return _rows(db, "peer_revocations", [q.within("pass_id", q.passes)])


def _peer_quarantine(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    return _rows(db, "peer_quarantine", [q.household_is("household"), q.named("holder")])


def _compound(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    return _rows(db, "compound_households", [q.household_is("household")])


def _vehicles(db: sqlite_utils.Database, q: _Query) -> list[dict[str, Any]]:
    parts = [q.within("plate", q.person.plates, "plate"), q.household_is("household")]
    return _rows(db, "resident_vehicles", parts)


@dataclass(frozen=True)
class _Forget:
    """What ``forget`` does with a store's rows (``stamp``: the chained rows' ``purged_at``;
    ``whole``: a household forgotten whole)."""

    whole: bool
    stamp: str
    today: date


_Forgetting = Callable[[sqlite_utils.Database, str, list[int], _Forget], int]


def _in(ids: list[int]) -> str:
    return json.dumps(ids)


def _empty_chained(db: sqlite_utils.Database, table: str, ids: list[int], f: _Forget) -> int:
    """As retention nulls a row (``kiosk.store.purge_rows``): the personal fields, stamped."""
    personal = (
        hashchain.EVENT_PERSONAL_FIELDS if table == "events" else hashchain.AUDIT_PERSONAL_FIELDS
    )
    cursor = db.execute(
        f"UPDATE {table} SET {emptied(personal)}, purged_at = ?"  # noqa: S608
        " WHERE seq IN (SELECT value FROM json_each(?)) AND purged_at IS NULL",
        [f.stamp, _in(ids)],
    )
    if table != "events":
        return int(cursor.rowcount)
    held = db.execute(  # a household a purge kept for the quota's look-back: emptied too
        f"UPDATE events SET household = '{PURGED_HOUSEHOLD}' WHERE seq IN"  # noqa: S608
        f" (SELECT value FROM json_each(?)) AND purged_at IS NOT NULL AND household <> ''",
        [_in(ids)],
    )
    drop_released_digests(db)  # none left to test guesses of the household against
    return int(cursor.rowcount) + int(held.rowcount)


def _delete(db: sqlite_utils.Database, table: str, ids: list[int], f: _Forget) -> int:
    cursor = db.execute(
        f'DELETE FROM "{table}" WHERE rowid IN (SELECT value FROM json_each(?))',  # noqa: S608
        [_in(ids)],
    )
    return int(cursor.rowcount)


def _update(sets: str, *, delete_whole: bool = False) -> _Forgetting:
    """Empty ``sets`` of the rows (each ``?`` is the stamp); ``delete_whole``: delete them
    instead when a whole household is forgotten."""

    def run(db: sqlite_utils.Database, table: str, ids: list[int], f: _Forget) -> int:
        if delete_whole and f.whole:
            return _delete(db, table, ids, f)
        args = [f.stamp] * sets.count("?")
        cursor = db.execute(
            f'UPDATE "{table}" SET {sets}'  # noqa: S608
            " WHERE rowid IN (SELECT value FROM json_each(?))",
            [*args, _in(ids)],
        )
        return int(cursor.rowcount)

    return run


def _is_in_force(column: str) -> Callable[[Mapping[str, Any], date], bool]:
    def active(row: Mapping[str, Any], today: date) -> bool:
        return str(row.get(column) or "") >= today.isoformat()

    return active


@dataclass(frozen=True)
class Rule:
    """How one store answers for a person: ``find`` their rows; ``forget`` them (None: kept,
    ``does`` says why); ``active``: a row still in force, which ``forget`` refuses unforced."""

    find: Callable[[sqlite_utils.Database, _Query], list[dict[str, Any]]]
    forget: _Forgetting | None
    does: str
    active: Callable[[Mapping[str, Any], date], bool] | None = None
    #: A row that only mentions the person in its note (``_theirs`` False): another's
    #: entry, kept, its note emptied; never in force for the person.
    mentioned: _Forgetting | None = None


_SALTS = "a key, no person's value: deleted once its day holds no personal field (shred_salts)"
#: One rule for every store ``kiosk.retention.STORES`` says holds personal data, in the order
#: they are searched (a returnee's checks after the returnee).
RULES: Mapping[str, Rule] = {
    "events": Rule(_events, _empty_chained, "personal fields nulled, purged_at set"),
    "audit": Rule(_audit, _empty_chained, "detail nulled, purged_at set"),
    "digest_salts": Rule(_none, None, _SALTS),
    "meta": Rule(_none, None, _SALTS),
    "digest_attested": Rule(
        _none, None, "a held household's keyed digest, dropped with the household (events)"
    ),
    "list_revocations": Rule(
        _revocations,
        _update(
            "reason = '', bundle_reason = CASE WHEN bundle_reason IS NULL THEN NULL ELSE '' END"
        ),
        "reason emptied; stays revoked",
    ),
    "list_quarantine": Rule(
        _quarantine,
        _delete,
        "the person's entry deleted; another's naming them in its note: the note emptied",
        _is_in_force("until_date"),
        _update("note = ''"),
    ),
    "list_households": Rule(
        _households,
        _update("note = ''", delete_whole=True),
        "the whole household's row deleted, else the note emptied",
        _is_in_force("observation_until"),
    ),
    "obs_people": Rule(
        _returnees,
        _update("name = '', household = '', phone = '', origin = '', note = '', purged_at = ?"),
        "personal fields emptied (the id, dates and statuses stay); another returnee's"
        " naming them in its note: the note emptied",
        lambda row, _today: row.get("status") == "observing",
        _update("note = ''"),
    ),
    "obs_checks": Rule(_of_returnees("obs_checks"), _delete, "deleted"),
    "obs_acks": Rule(_of_returnees("obs_acks"), _delete, "deleted"),
    "obs_corrections": Rule(_of_returnees("obs_corrections"), _delete, "deleted"),
    "service_requests": Rule(
        _services,
        _update("household = '', note = '', purged_at = ?"),
        "household and note emptied; another household's naming them: the note emptied",
        lambda row, _today: row.get("state") not in ("done", "cancelled"),
        _update("note = ''"),
    ),
    "peer_passages": Rule(_by_pass_or_household("peer_passages"), _delete, "deleted"),
    "peer_revocations": Rule(
        _peer_revocations, None, "kept: another gate's void of the card (until its page drops it)"
    ),
    "peer_quarantine": Rule(
        _peer_quarantine,
        _delete,
        "deleted (until that gate's next page)",
        _is_in_force("until_date"),
    ),
    "compound_households": Rule(
        _compound, None, "kept: the compound map's flat, not its people (the next map import)"
    ),
    "resident_vehicles": Rule(_vehicles, _delete, "deleted (until the next vehicle import)"),
}
#: The stores whose change the daemon's lists snapshot must read again (``mark_purged``).
_LIST_TABLES = frozenset({"list_revocations", "list_quarantine", "list_households"})


@dataclass(frozen=True)
class Found:
    """A person's rows, by store (only stores with rows), and the passes found to be theirs."""

    person: Person
    rows: Mapping[str, list[dict[str, Any]]]
    passes: tuple[str, ...]
    active: Mapping[str, int]
    #: Of several keys, the pass ids given that no row here holds (``would_forget``): the
    #: forget revokes each, and a mistyped one is not told, so every face warns of each.
    unheld: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}

    @property
    def pass_only(self) -> bool:
        """No row here, only the pass id given (``would_forget``): its forget revokes it."""
        return not self.rows and bool(self.passes)

    @property
    def passes_may_remain(self) -> bool:
        """No pass id given: the passes are only those this gate's unpurged rows hold (a
        passage, a card issued at its console). A card of theirs no such row holds (issued
        longer ago than retention keeps its ``pass_issued`` row, or by the office, and not
        used here since) is not found, and its forget does not void it: every face says so,
        and that the office must give its pass id."""
        return not self.person.pass_ids

    def mentioned(self) -> dict[str, int]:
        """Of ``counts``, the rows by store that are not the person's but name them in a
        note (another's entry: ``forget`` empties its note and keeps it)."""
        out = {t: sum(r.get("_theirs") is False for r in rs) for t, rs in self.rows.items()}
        return {t: n for t, n in out.items() if n}

    def version(self) -> str:
        """What was found, as a short digest: every row (its store's row id too) and the
        passes. A row added, changed or gone since changes it (``forget``'s ``seen``)."""
        text = json.dumps([self.rows, self.passes], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        """The resident's copy: every row (JSON columns read as JSON, the rowid left out)."""
        stores = {t: [_readable(r) for r in rows] for t, rows in self.rows.items()}
        return {
            "keys": self.person.kinds(),
            "counts": self.counts(),
            "mentioned": self.mentioned(),
            "passes": list(self.passes),
            "active": dict(self.active),
            "stores": stores,
        }


def _readable(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for column, value in row.items():
        if column.startswith("_"):  # the rowid, whether the row is theirs
            continue
        if column in ("person", "detail", "reasons", "flags") and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[column] = value
    return out


def _passes(db: sqlite_utils.Database, person: Person, today: date) -> tuple[str, ...]:
    """The person's passes: those given, those of their passages (the holder is the name, or
    the household forgotten whole), those issued to them at the console. Never a pass of a
    row that only mentions them (a guard's note on another's passage): revoking that one
    would shut out someone else."""
    q = _Query(person, (), today)
    found = set(person.pass_ids)
    with q.scoped(db, "events", _UNPURGED_EVENTS):
        theirs = [q.named("holder"), q.household_is("household")]
    mine = _rows(db, "events", theirs, _UNPURGED_EVENTS)
    found |= {r["pass_id"] for r in mine if r.get("pass_id")}
    issued_rows = " AND action = 'pass_issued'"
    with q.scoped(db, "audit", issued_rows):
        issued = [q.named(_DETAIL_HOLDER, _DETAIL_HOUSEHOLD)]
        issued += [q.household_is(_DETAIL_HOUSEHOLD)]
    for row in _rows(db, "audit", issued, issued_rows):
        found |= _issued_pass(row.get("detail"))
    return tuple(sorted(found))


def _issued_pass(detail: object) -> set[str]:
    try:
        pass_id = json.loads(detail if isinstance(detail, str) else "{}").get("pass_id")
    except (ValueError, AttributeError):
        return set()
    return {pass_id} if isinstance(pass_id, str) and _PASS_ID.match(pass_id) else set()


#: Where a name is held beside its household: (table, the name's column, the household's).
_NAMED_IN = (
    ("events", "holder", "household"),
    ("events", _PERSON.format("name"), _DWELLING),
    ("events", _PERSON.format("driver"), _DWELLING),
    ("audit", _DETAIL_HOLDER, _DETAIL_HOUSEHOLD),
    ("list_quarantine", "holder", "household"),
    ("peer_quarantine", "holder", "household"),
    ("obs_people", "name", "household"),
)
_UNPURGED = ("events", "audit", "obs_people")


def _one_household(db: sqlite_utils.Database, person: Person) -> None:
    """``PersonError`` when ``person``'s name, not narrowed by a household, is held for
    people of more than one household: namesakes, each not this person (the households
    counted, never named: the office gives ``--household``)."""
    if person.name is None or person.household is not None:
        return
    tables = set(db.table_names())
    q = _Query(person, (), date.min)
    households: set[object] = set()
    for t, name_column, h in _NAMED_IN:
        if t not in tables:
            continue
        also = " AND purged_at IS NULL" if t in _UNPURGED else ""
        with q.scoped(db, t, also):
            name, args = q.equal("text", name_column, [key_of("text", person.name)])
        if name == "0":
            continue
        rows = db.execute(
            f"SELECT DISTINCT +{h} FROM {t} WHERE ({name}){also}"  # noqa: S608 (+: _Query.spelled)
            f" AND nullif(trim({h}), '') IS NOT NULL",
            args,
        ).fetchall()
        households |= {_person_key("text", r[0]) for r in rows}
    n = len(households)
    if n > 1:
        raise PersonError(
            f"--name: people of {n} households hold this name (namesakes, each not this"
            " person): give --household too, to narrow it to the person's",
            "namesakes",
            n=n,
        )


def find(db: sqlite_utils.Database, person: Person, today: date) -> Found:
    """Every row of every store holding ``person``'s data; ``today``: the site's local day
    (what is still in force). ``PersonError`` when no store holds any, or when a name given
    without a household is the name of people of more than one household (namesakes)."""
    return _found(db, person, today, revoking=False)


def would_forget(db: sqlite_utils.Database, person: Person, today: date) -> Found:
    """What ``forget`` would do, nothing changed: the one preview of every face (the CLI's dry
    run, the console's), and what ``forget`` itself finds. As ``find``, but a pass id given
    alone that no row here holds is no error: the forget revokes it (a resident first seen
    after the archive this log was restored from, forgotten on the card that died;
    ``Found.pass_only``). With other keys that find no one it is: a misspelt name must never
    read as a request done (the refusal, ``alone`` in its params, says to give the pass id
    alone)."""
    return _found(db, person, today, revoking=True)


def _found(db: sqlite_utils.Database, person: Person, today: date, *, revoking: bool) -> Found:
    _compare_keys(db)
    with _keys_cached():
        return _find(db, person, today, revoking)


def _find(db: sqlite_utils.Database, person: Person, today: date, revoking: bool) -> Found:
    _one_household(db, person)
    q = _Query(person, _passes(db, person, today), today)
    active: dict[str, int] = {}
    for table, rule in RULES.items():
        rows = rule.find(db, q)
        if rows:
            q.found[table] = rows
        if rule.active is not None and rule.forget is not None:
            n = sum(1 for r in rows if r.get("_theirs", True) and rule.active(r, today))
            if n:
                active[table] = n
    if not q.found and not (revoking and person.kinds() == ["pass_id"]):
        alone = revoking and bool(person.pass_ids)
        hint = (
            "; a resident this gate never recorded (first seen after the archive it was"
            " restored from): forget their pass_id alone, which revokes it"
        )
        raise PersonError(
            f"no store of this gate holds anyone by these keys ({', '.join(person.kinds())}):"
            " nothing to show or forget (check the spelling; a purged row names nobody"
            f"{hint if alone else ''})",
            "nobody",
            alone=alone,
        )
    unheld: tuple[str, ...] = ()
    if revoking:
        _each_key_finds(db, person, today)
        unheld = _unheld(db, person, today)
    return Found(person, q.found, q.passes, active, unheld)


def _unheld(db: sqlite_utils.Database, person: Person, today: date) -> tuple[str, ...]:
    """Of ``person``'s pass ids, when more than their one key is given, those no row here
    holds (each searched alone: ``PersonError`` ``nobody``)."""
    if len(person.pass_ids) + len(_selectors(person)) < 2:
        return ()  # a pass id alone: ``Found.pass_only`` says it
    return tuple(p for p in person.pass_ids if _finds_nobody(db, Person(pass_ids=(p,)), today))


def _finds_nobody(db: sqlite_utils.Database, alone: Person, today: date) -> bool:
    """Whether the one key ``alone`` selects no row here (``_find``'s ``nobody``)."""
    try:
        _find(db, alone, today, False)
    except PersonError as exc:
        if exc.code != "nobody":
            raise
        return True
    return False


def _selectors(person: Person) -> list[tuple[str, Person]]:
    """Each key of ``person`` but a pass id, alone, by its kind: a name with the household
    that narrows it, each phone, plate and returnee, a household given without a name."""
    one: list[tuple[str, Person]] = []
    if person.name is not None:
        one.append(("name", Person(household=person.household, name=person.name)))
    elif person.household is not None:
        one.append(("household", Person(household=person.household)))
    one += [("phone", Person(phones=(p,))) for p in person.phones]
    one += [("plate", Person(plates=(p,))) for p in person.plates]
    one += [("returnee", Person(returnees=(r,))) for r in person.returnees]
    return one


def _each_key_finds(db: sqlite_utils.Database, person: Person, today: date) -> None:
    """``PersonError`` (``unmatched``, the key's kind, never its value) when one of several
    keys, a pass id aside, finds no one while the others find rows: a name spelt otherwise
    beside a held pass id would read as a request done, her other rows kept."""
    keys = _selectors(person)
    if len(keys) + bool(person.pass_ids) < 2:
        return  # the one key: the search above is its own
    for kind, alone in keys:
        if _finds_nobody(db, alone, today):
            raise PersonError(
                f"--{kind.replace('_', '-')}: no store of this gate holds anyone by this key,"
                " though the other keys find rows: nothing forgotten (check its spelling, or"
                " leave it out)",
                "unmatched",
                kind=kind,
            )


def show(store: Store, person: Person, today: date, actor: str) -> Found:
    """``find``, and the audit row saying it was done (the kinds of key, the counts)."""
    found = find(store.reader(), person, today)
    store.audit(actor, SHOW_ACTION, {"keys": person.kinds(), "rows": found.counts()})
    return found


def text_of(found: Found) -> str:
    """The readable form of ``found`` for the resident: a heading a store, a line a row."""
    lines = [f"Data held about one person (keys: {', '.join(found.person.kinds())})", ""]
    for table, rows in found.rows.items():
        lines.append(f"{table} ({len(rows)} rows):")
        for row in rows:
            shown = _readable(row)
            parts = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in shown.items()]
            mark = "  - " if row.get("_theirs", True) else "  - (names them in a note only) "
            lines.append(mark + "; ".join(p for p in parts if not p.endswith(": null")))
        lines.append("")
    if found.passes:
        lines.append(f"passes: {', '.join(found.passes)}")
    return "\n".join(lines).rstrip() + "\n"


def seq_ranges(seqs: Iterable[int]) -> str:
    """``[1, 2, 3, 4, 9]`` as ``1-4,9``: what the gate prints and ``parse_seqs`` reads."""
    out: list[str] = []
    run: list[int] = []
    for seq in sorted(set(seqs)):
        if run and seq == run[-1] + 1:
            run.append(seq)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [seq]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def _unique_stamp(db: sqlite_utils.Database, now: datetime) -> str:
    """``now`` as a ``purged_at`` no row carries yet (``verify`` counts this forget's rows by
    it): a microsecond later while one does."""
    from datetime import timedelta

    when = now
    while True:
        stamp = format_ts(when)
        taken = db.execute(
            "SELECT 1 FROM events WHERE purged_at = ? UNION ALL"
            " SELECT 1 FROM audit WHERE purged_at = ? LIMIT 1",
            [stamp, stamp],
        ).fetchone()
        if taken is None:
            return stamp
        when += timedelta(microseconds=1)


def _revocations_of(db: sqlite_utils.Database, passes: Sequence[str]) -> tuple[str, ...]:
    """These passes' revocations as they stand (a guard's, an earlier forget's, this one's),
    each as ``<rowid>@<revoked_at>``: its number and stamp, no pass id. A forget's record names
    them, so a restore of an archive taken before any of them shuts each card again
    (``_reapply_one``), and no other card of the same stamp (one CSV import, one bundle)."""
    if not passes:
        return ()
    found = db.execute(
        "SELECT rowid, revoked_at FROM list_revocations"
        " WHERE pass_id IN (SELECT value FROM json_each(?)) ORDER BY rowid",
        [json.dumps(list(passes))],
    ).fetchall()
    return tuple(f"{r[0]}@{r[1]}" for r in found)


def _revoke(db: sqlite_utils.Database, passes: Sequence[str], now: datetime, actor: str) -> int:
    """A revocation without a reason for each pass not revoked here yet by a row of its own
    (a guard's, a sheet's, an earlier forget's), and each such row not an earlier forget's
    marked as this one's; returns how many passes it voided or marked (a card a guard had
    voided is this forget's now: not ``0`` passes voided). A pass only the office's
    bundle revokes gets one too, the office's reason kept as ``bundle_reason``
    (``upsert_local_revocations``): the bundle's row goes with the next bundle that no longer
    lists the card, and the forgotten resident's card would open the gate again."""
    if not passes:
        return 0
    held = db.execute(
        "SELECT pass_id FROM list_revocations WHERE source != 'bundle'"
        " AND pass_id IN (SELECT value FROM json_each(?))",
        [json.dumps(list(passes))],
    ).fetchall()
    mine = {str(r[0]) for r in held}
    # A card revoked here before (a guard's, a sheet's) is now a forgotten resident's too.
    marked = db.execute(
        "UPDATE list_revocations SET source = ? WHERE source != ?"
        " AND pass_id IN (SELECT value FROM json_each(?))",
        [FORGET_SOURCE, FORGET_SOURCE, json.dumps(sorted(mine))],
    ).rowcount
    rows = [
        {"pass_id": p, "reason": "", "revoked_at": now.isoformat(), "source": FORGET_SOURCE}
        | {"actor": actor}
        for p in passes
        if p not in mine
    ]
    upsert_local_revocations(db, rows)
    return len(rows) + max(marked, 0)


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` did: rows by store, passes revoked, whether the WAL was wiped."""

    rows: Mapping[str, int]
    passes_revoked: int
    salts_shredded: int
    wal_wiped: bool
    purged_at: str
    #: The events emptied, as ranges (``seq_ranges``): what the office empties in its copy
    #: (``kiosk fleet forget``). Not in the audit row: counts only there.
    events_seqs: str = ""
    #: No row here, a pass id given alone (``Found.pass_only``): only revoked. Every face
    #: says so (a card with this pass id opens the gate no more; a mistyped one is not told).
    pass_only: bool = False
    #: No pass id given (``Found.passes_may_remain``): only the passes found in this gate's
    #: rows were revoked; a card of theirs none holds still opens the gate. Every face says so.
    passes_may_remain: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": dict(self.rows),
            "passes_revoked": self.passes_revoked,
            "passes_may_remain": self.passes_may_remain,
            "salts_shredded": self.salts_shredded,
            "wal_wiped": self.wal_wiped,
            "purged_at": self.purged_at,
            "events_seqs": self.events_seqs,
        }


def forget(
    store: Store,
    person: Person,
    now: datetime,
    *,
    actor: str,
    tz: ZoneInfo | str = "UTC",
    quota_cfg: QuotaConfig | None = None,
    force: bool = False,
    seen: str | None = None,
) -> Forgotten:
    """Remove ``person``'s data from every store, ahead of retention, the way retention does
    (module docstring); one audit row with the counts. ``PersonError`` (nobody found),
    ``PersonActive`` (something still in force, unless ``force``) or ``PersonChanged`` (what
    the transaction finds is not the preview's ``seen``, a ``Found.version``; the CLI gives
    none): nothing done."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    today = now.astimezone(zone).date()
    found = would_forget(store.reader(), person, today)
    if found.active and not force:
        raise PersonActive(found.active)
    _freeze(store, zone, quota_cfg, now)
    through: list[int] = []  # the log's last event at the forget: none it empties is later

    def apply(db: sqlite_utils.Database) -> Forgotten:
        again = would_forget(db, person, today)  # in the transaction: what is there now
        if seen is not None and again.version() != seen:
            raise PersonChanged()
        stamp = _unique_stamp(db, now)
        through[:] = [int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])]
        rows = _forget_rows(db, again, _Forget(person.whole_household, stamp, today))
        revoked = _revoke(db, again.passes, now, actor)
        shut = (now.isoformat(), *_revocations_of(db, again.passes))
        _keep(db, Record.of(again, stamp, through[0], shut))  # for ``reapply``
        if revoked or _LIST_TABLES & set(rows):
            mark_purged(db, now)  # every process reads its lists snapshot again
        shredded = shred_salts(db, now)
        owe_wipe(store, db)
        seqs = seq_ranges(int(r["seq"]) for r in again.rows.get("events", []))
        return Forgotten(
            rows, revoked, shredded, False, stamp, seqs, again.pass_only, again.passes_may_remain
        )

    def detail(done: Forgotten) -> dict[str, Any]:
        counts = {"events": 0, "audit": 0, **done.rows}
        extra = {"passes_revoked": done.passes_revoked, "forced": bool(found.active)}
        extra["events_through"] = through[0] if through else 0
        return {"keys": person.kinds(), "purged_at": done.purged_at, "rows": counts, **extra}

    done = store.submit_audited(apply, actor, FORGET_ACTION, detail)
    wiped = wipe_removed(store)
    return replace(done, wal_wiped=wiped)


def _freeze(store: Store, zone: ZoneInfo, quota_cfg: QuotaConfig | None, now: datetime) -> None:
    """The complete days' reports first, as retention freezes them: a nulled household would
    otherwise drop out of a past day's counts. Only on a synchronised clock (retention's
    rule): one ahead would freeze today's half day as complete. On another, and today, the
    days not frozen yet say their household figures unknown, their outings counted
    (``kiosk.stats.unknown_outings``)."""
    clock: Clock | None = getattr(store, "clock", None)
    if clock is None or not clock.synced():
        return
    frozen: set[date] = set()
    while days := set(freeze_days(store, zone, quota_cfg, now, max_days=2)):
        if days & frozen:  # stamped on again meanwhile: the next purge's to freeze
            return
        frozen |= days


def _forget_rows(db: sqlite_utils.Database, found: Found, f: _Forget) -> dict[str, int]:
    """Each store's rule on its rows (in the caller's transaction); rows by store."""
    done: dict[str, int] = {}
    for table, rule in RULES.items():
        rows = found.rows.get(table)
        if not rows or rule.forget is None:
            continue
        key = "seq" if table in ("events", "audit") else "_rowid"
        ids = [int(r[key]) for r in rows if r.get("_theirs", True)]
        others = [int(r[key]) for r in rows if not r.get("_theirs", True)]
        n = rule.forget(db, table, ids, f) if ids else 0
        if others and rule.mentioned is not None:
            n += rule.mentioned(db, table, others, f)
        done[table] = n
    return done


# -- a forget kept, to be made again after a restore ------------------------------------------
#
# A restore (``kiosk restore``, ``kiosk.backup``) of an archive taken before a forget puts the
# person's rows back. So each forget keeps a ``Record`` in ``meta`` (``forget.record.<purged_at>``)
# that names the rows it emptied by their identity, never by a person's value: a chained row
# (``events``, ``audit``) by its ``seq`` and its ``hash`` (an older archive of the gate is a
# prefix of its chain: the same row there has the same hash; another chain's never matches),
# a list's row by the columns that name nobody and stay while the row lives (``_IDENTITY``),
# the cards it shut by their revocations' stamp. No key, no digest of a key, no length: nothing
# in the log or its archives lets a guessed name or phone be tested against a record. The
# restore carries the records of the log it sets aside into the archive's, and makes every
# forget the archive does not hold again (``reapply``): the same rows, emptied as then.

#: ``meta``'s forget records.
RECORD_PREFIX = "forget.record."
#: Of a chained row's hash, the hex digits a record keeps (64 bits: another row's never).
_HASH_KEPT = 16
_CHAINED = ("events", "audit")
#: Each store a forget empties: a row's identity, the columns that name nobody and stay as
#: long as the row (its number, the stamp it was made with; ``rowid`` where the table's key is
#: a person's own value: a household, a plate). ``tests/test_person_restore.py`` holds every
#: rule that forgets to one.
_IDENTITY: Mapping[str, tuple[str, ...]] = {
    "list_revocations": ("rowid", "revoked_at"),
    "list_quarantine": ("id", "created_at"),
    "list_households": ("rowid", "updated_at"),
    "obs_people": ("id", "created_at"),
    "obs_checks": ("id", "at"),
    "obs_acks": ("person_id", "day", "kind"),
    "obs_corrections": ("id", "at"),
    "service_requests": ("id", "opened_at"),
    "peer_passages": ("kiosk_id", "seq"),
    "peer_quarantine": ("kiosk_id", "entry_id"),
    "resident_vehicles": ("rowid", "updated_at"),
}


def _identity(table: str, row: Mapping[str, Any]) -> list[Any]:
    return [row["_rowid"] if c == "rowid" else row.get(c) for c in _IDENTITY[table]]


@dataclass(frozen=True)
class Record:
    """One forget, kept: ``chained`` the chained rows it emptied (``seq``, the hash's first
    ``_HASH_KEPT`` hex digits), ``rows`` each list store's rows (whether the row was the
    person's or only named them in a note, its ``_IDENTITY``), ``revoked`` its cards'
    revocations: the stamp of those it made, ``<rowid>@<stamp>`` of each as it stood after
    it (a guard's before it too): the set-aside log's revocations so named are its cards,
    ``whole`` a household forgotten whole (its list row deleted), ``kinds`` the kinds of key
    it was given, ``stamp`` its ``purged_at`` (its name), ``through`` the log's last event."""

    stamp: str
    through: int
    kinds: tuple[str, ...]
    whole: bool = False
    chained: Mapping[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    rows: Mapping[str, tuple[tuple[bool, tuple[Any, ...]], ...]] = field(default_factory=dict)
    revoked: tuple[str, ...] = ()

    @classmethod
    def of(cls, found: Found, stamp: str, through: int, revoked: Sequence[str]) -> Record:
        chained, rows = {}, {}
        for table, held in found.rows.items():
            if RULES[table].forget is None:
                continue
            if table in _CHAINED:
                chained[table] = tuple((int(r["seq"]), str(r["hash"])[:_HASH_KEPT]) for r in held)
            else:
                ids = (tuple(_identity(table, r)) for r in held)
                rows[table] = tuple(zip((r.get("_theirs", True) for r in held), ids, strict=True))
        person = found.person
        kinds = tuple(person.kinds())
        shut = tuple(dict.fromkeys(revoked))
        return cls(stamp, through, kinds, person.whole_household, chained, rows, shut)

    def as_json(self) -> str:
        chained = {
            t: {"seqs": seq_ranges(s for s, _ in pairs), "hashes": "".join(h for _, h in pairs)}
            for t, pairs in self.chained.items()
        }
        rows = {t: [[theirs, list(ids)] for theirs, ids in held] for t, held in self.rows.items()}
        body = {"v": 2, "at": self.stamp, "through": self.through, "kinds": list(self.kinds)}
        body |= {"whole": self.whole, "chained": chained, "rows": rows}
        return json.dumps(body | {"revoked": list(self.revoked)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record | None:
        """The record ``as_json`` wrote; None when it is not one."""
        try:
            body = json.loads(text)
            if body.get("v") != 2:
                return None
            chained = {str(t): _pairs(c) for t, c in dict(body["chained"]).items()}
            rows = {
                str(t): tuple((bool(theirs), tuple(ids)) for theirs, ids in held)
                for t, held in dict(body["rows"]).items()
                if t in _IDENTITY
            }
            return cls(
                str(body["at"]),
                int(body["through"]),
                tuple(map(str, body["kinds"])),
                bool(body["whole"]),
                {t: p for t, p in chained.items() if t in _CHAINED},
                rows,
                tuple(map(str, body["revoked"])),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def _pairs(chained: Mapping[str, str]) -> tuple[tuple[int, str], ...]:
    """A record's ``seqs`` (``seq_ranges``) and ``hashes`` as (seq, hash) pairs."""
    seqs: list[int] = []
    for part in str(chained["seqs"]).split(","):
        if part:
            lo, _, hi = part.partition("-")
            seqs += range(int(lo), int(hi or lo) + 1)
    hashes = str(chained["hashes"])
    if len(hashes) != len(seqs) * _HASH_KEPT:
        raise ValueError("a record's hashes are not its rows'")
    return tuple((s, hashes[i * _HASH_KEPT : (i + 1) * _HASH_KEPT]) for i, s in enumerate(seqs))


def _keep(db: sqlite_utils.Database, record: Record) -> None:
    """A record in ``meta`` (in the caller's transaction)."""
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [RECORD_PREFIX + record.stamp, record.as_json()],
    )


@dataclass(frozen=True)
class Kept:
    """What a log says of its forgets, for a restore to carry: its records (``meta``'s rows
    as ``as_json`` writes them) and its revocations (pass id, stamp, rowid: the cards a forget shut,
    which an archive taken before it may never have seen; in memory only)."""

    meta: Mapping[str, str]
    revoked: tuple[tuple[str, str, int], ...]

    def records(self) -> list[Record]:
        found = [Record.from_json(value) for value in self.meta.values()]
        return sorted((r for r in found if r is not None), key=lambda r: r.stamp)

    def unreadable(self, have: Iterable[str] = ()) -> int:
        """How many of its records ``Record.from_json`` cannot read (damaged, or of a newer
        format after a downgrade), those named in ``have`` (a log's ``meta`` keys: the
        archive holds that forget already) aside."""
        held = set(have)
        return sum(
            1
            for key, value in self.meta.items()
            if key not in held and Record.from_json(value) is None
        )


class UnreadableForgets(Exception):
    """``reapply`` told to refuse (``strict``): ``count`` forgets the log set aside keeps and
    the archive does not cannot be read, so they would be undone unseen; nothing done."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} of the residents' forgets this Pi's log keeps cannot be read")
        self.count = count


def kept(conn: sqlite3.Connection) -> Kept:
    """The forgets the kiosk database on ``conn`` keeps (``Kept``); none when it has none
    (``conn`` is only read)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        return Kept({}, ())
    rows = conn.execute(
        "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
        [len(RECORD_PREFIX), RECORD_PREFIX],
    ).fetchall()
    meta = {str(name): str(value) for name, value in rows}
    revoked: list[tuple[str, str, int]] = []
    if "list_revocations" in tables and meta:
        sql = "SELECT pass_id, revoked_at, rowid FROM list_revocations"
        revoked = [(str(p), str(at), int(n)) for p, at, n in conn.execute(sql)]
    return Kept(meta, tuple(revoked))


@dataclass(frozen=True)
class Reapplied:
    """What ``reapply`` did: the forgets made again, and their rows by store."""

    forgets: int
    rows: Mapping[str, int]
    passes_revoked: int
    #: The forgets the log set aside keeps and the archive does not whose record could not
    #: be read (``Kept.unreadable``): not made again, to be made by hand.
    unreadable: int = 0
    #: Of the list rows their records name, those this log does not hold by their identity
    #: (``_unfound``), by store: made after the archive, or changed or removed since.
    not_found: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"forgets": self.forgets, "rows": dict(self.rows)}
        out |= {"passes_revoked": self.passes_revoked, "unreadable": self.unreadable}
        return out | {"rows_not_found": dict(self.not_found)}


def reapply(
    store: Store, kept: Kept, now: datetime, *, actor: str, strict: bool = False
) -> Reapplied:
    """Every forget ``kept`` (a log set aside) holds that ``store``'s log (a restored archive)
    does not, made again in the order they were made, each with its own ``person_forgotten``
    row (``reapplies``: the forget's stamp) and its record, carried. A forget none of whose
    rows and cards the log holds is only carried (not counted). A record it cannot read is
    counted (``unreadable``); ``strict``: ``UnreadableForgets`` then, nothing done."""
    have = {str(r[0]) for r in store.reader().execute("SELECT key FROM meta").fetchall()}
    unread = kept.unreadable(have)
    if unread and strict:
        raise UnreadableForgets(unread)
    missing = [r for r in kept.records() if RECORD_PREFIX + r.stamp not in have]
    forgets, revoked, rows, unfound = 0, 0, Counter[str](), Counter[str]()
    for record in missing:
        done, not_found = _reapply_one(store, record, kept.revoked, now, actor)
        unfound.update(not_found)
        if done is not None:
            forgets, revoked = forgets + 1, revoked + done.passes_revoked
            rows.update(done.rows)
    if forgets:
        wipe_removed(store)
    return Reapplied(forgets, dict(rows), revoked, unread, dict(unfound))


def _matched_chained(
    db: sqlite_utils.Database, table: str, pairs: Sequence[tuple[int, str]]
) -> list[int]:
    """The seqs of ``pairs`` this log holds unpurged with the same hash: the same rows."""
    found = db.execute(
        f"SELECT t.seq FROM {table} AS t JOIN json_each(?) AS j"  # noqa: S608
        " ON t.seq = json_extract(j.value, '$[0]')"
        f" WHERE substr(t.hash, 1, {_HASH_KEPT}) = json_extract(j.value, '$[1]')"
        " AND t.purged_at IS NULL",
        [json.dumps([list(p) for p in pairs])],
    ).fetchall()
    return [int(r[0]) for r in found]


def _matched_rows(
    db: sqlite_utils.Database, table: str, ids: Iterable[tuple[Any, ...]]
) -> list[int]:
    """The rowids of the rows of ``table`` with these identities (``_IDENTITY``)."""
    if table not in db.table_names():
        return []
    where = " AND ".join(f"{c} IS ?" for c in _IDENTITY[table])
    out: list[int] = []
    for values in ids:
        row = db.execute(f'SELECT rowid FROM "{table}" WHERE {where}', list(values)).fetchone()  # noqa: S608
        if row is not None:
            out.append(int(row[0]))
    return out


def _forget_again(db: sqlite_utils.Database, record: Record, f: _Forget) -> dict[str, int]:
    """``_forget_rows`` for a record: the rows it names, each store's rule on them."""
    done: dict[str, int] = {}
    for table, pairs in record.chained.items():
        seqs = _matched_chained(db, table, pairs)
        if seqs:
            done[table] = _empty_chained(db, table, seqs, f)
    for table, held in record.rows.items():
        rule = RULES[table]
        theirs = _matched_rows(db, table, (ids for own, ids in held if own))
        others = _matched_rows(db, table, (ids for own, ids in held if not own))
        n = rule.forget(db, table, theirs, f) if theirs and rule.forget is not None else 0
        if others and rule.mentioned is not None:
            n += rule.mentioned(db, table, others, f)
        if n:
            done[table] = n
    return done


def _unfound(db: sqlite_utils.Database, record: Record) -> dict[str, int]:
    """How many of the list rows ``record`` names this log does not hold by their identity,
    by store: made after the archive, or changed (an import rewrote its note) or removed
    since; records name nobody, so the restore cannot tell which, only count them."""
    out: dict[str, int] = {}
    for table, held in record.rows.items():
        missing = len(held) - len(_matched_rows(db, table, (ids for _, ids in held)))
        if missing:
            out[table] = missing
    return out


def _reapply_one(
    store: Store,
    record: Record,
    revoked: Sequence[tuple[str, str, int]],
    now: datetime,
    actor: str,
) -> tuple[Forgotten | None, dict[str, int]]:
    """One forget made again (``reapply``), in one transaction with its audit row; and the
    list rows its record names this log does not hold (``_unfound``)."""
    today = now.date()
    through: list[int] = []
    unfound: dict[str, int] = {}

    def apply(db: sqlite_utils.Database) -> Forgotten | None:
        stamp = _unique_stamp(db, now)
        named = set(record.revoked)
        shut = sorted({p for p, at, n in revoked if at in named or f"{n}@{at}" in named})
        unfound.update(_unfound(db, record))
        rows = _forget_again(db, record, _Forget(record.whole, stamp, today))
        n = _revoke(db, shut, now, actor)
        # Its revocations here as they stand (stamped now, or the archive's own): a later
        # restore from this log finds them too.
        also = (now.isoformat(), *_revocations_of(db, shut))
        _keep(db, replace(record, revoked=tuple(dict.fromkeys((*record.revoked, *also)))))
        if not rows and not n:  # nothing of them in this log: carried only
            return None
        through[:] = [int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])]
        if n or _LIST_TABLES & set(rows):
            mark_purged(db, now)
        shredded = shred_salts(db, now)
        owe_wipe(store, db)
        return Forgotten(rows, n, shredded, False, stamp)

    def detail(done: Forgotten | None) -> dict[str, Any]:
        assert done is not None  # skipped otherwise
        counts = {"events": 0, "audit": 0, **done.rows}
        extra: dict[str, Any] = {"passes_revoked": done.passes_revoked}
        extra |= {"events_through": through[0], "rows_not_found": dict(unfound)}
        keys = {"keys": list(record.kinds), "purged_at": done.purged_at, "rows": counts}
        return keys | extra | {"forced": True, "reapplies": record.stamp}

    done = store.submit_audited(apply, actor, FORGET_ACTION, detail, skip=lambda d: d is None)
    return done, unfound


# -- the daemon's memory ---------------------------------------------------------------------


def last_forget(db: sqlite_utils.Database) -> int:
    """The audit ``seq`` of the log's last forget (0: none): where ``forgotten_passages``
    starts looking for the daemon (read before its history is loaded from the log)."""
    row = db.execute(
        "SELECT coalesce(max(seq), 0) FROM audit WHERE action = ?", [FORGET_ACTION]
    ).fetchone()
    return int(row[0])


def forgotten_passages(db: sqlite_utils.Database, after: int) -> tuple[int, list[tuple[str, str]]]:
    """The passages (``direction``, ``ts``: pass and household are nulled) every forget after
    audit seq ``after`` emptied (by this process or another: ``kiosk person forget``, a
    restore's), for the daemon's history to drop (``PassageHistory.drop_forgotten``); and the
    last forget's seq. An event stamped before NTP set the clock comes with its dated time
    too (the history holds it dated)."""
    from kiosk.dating import dated_source
    from kiosk.history import COUNTED_DECISIONS

    rows = db.execute(
        "SELECT seq, detail FROM audit WHERE action = ? AND seq > ? ORDER BY seq",
        [FORGET_ACTION, after],
    ).fetchall()
    if not rows:
        return after, []
    source, ts = dated_source(db)
    counted = json.dumps(sorted(COUNTED_DECISIONS))
    passages: list[tuple[str, str]] = []
    for _, detail in rows:
        try:
            stamp = str(json.loads(detail)["purged_at"])
        except (ValueError, TypeError, KeyError):
            continue
        for direction, *times in db.execute(
            f"SELECT direction, ts, {ts} FROM {source} WHERE purged_at = ?"  # noqa: S608
            " AND decision IN (SELECT value FROM json_each(?))",
            [stamp, counted],
        ).fetchall():
            passages += [(str(direction), str(t)) for t in set(times) if t]
    return int(rows[-1][0]), passages
