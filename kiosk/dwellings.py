"""The dwellings the gate knows, and what it makes of one a guard types for a person without a
pass (the live page's manual pass, ``POST /guard/manual``) or a resident registered by hand
(the registration page, ``POST /guard/register/person``).

A dwelling typed otherwise than its list spells it (``D404`` or ``D 404`` for the quarantine
list's ``D-404``) matched nothing: the pass was not held, and its outing was charged to a
household nobody has. Now:

* a dwelling matches a known one as the gate matches households everywhere (``same_text``:
  case, width and outer spaces aside); the separators are never stripped to make it match
  (``1-101`` and ``11-01`` may be two homes);
* one that matches no dwelling the gate knows is asked about before anything is recorded
  (``Verdict.ask``), offering those that differ from it only by separators, spaces, case,
  leading zeros or the words a dwelling is said with (栋, 单元, 室, a direction: ``loose_keys``;
  ``Verdict.near``: "did you mean D-404?" for ``D-0404`` or ``D栋404``); confirmed as typed,
  the record carries the flag ``unknown_dwelling`` (``kiosk.engine.UNKNOWN_DWELLING``), so
  it shows it was never checked (the live feed's badge, the daily report's
  ``unknown_dwellings``).

The gate knows a dwelling from the compound map, the households list, the quarantine list
(its own and the compound's other gates'), the returnee ledger and the passes issued at its
console, every one of them (``GateDwellings``, ``issued_households``): read once per change
of them and kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .compound import CompoundMap
from .lists import Lists
from .observation import ObservationLedger
from .spelling import same_text
from .unreadable import json_field

__all__ = ["Dwellings", "GateDwellings", "Verdict", "loose_keys"]


#: What a dwelling may be typed with that its list's spelling lacks: the marks of a building,
#: unit, room or number (``D栋404``, ``3号楼2单元101室``) and the direction the person goes
#: (``D-404出``, ``D-404 out``; ``in``/``out`` as a word of their own, not inside one).
_LOOSE_WORDS = re.compile(r"单元|[栋幢室号楼出进入]|(?<![^\W\d_])(?:in|out)(?![^\W\d_])")
_DIGIT_RUN = re.compile(r"\d+")


def loose_keys(text: str) -> tuple[str, ...]:
    """``text`` as ``same_text`` folds it, its letters and digits alone, without the words of
    ``_LOOSE_WORDS`` and each run of digits without its leading zeros, as typed (``D-0404``:
    ``d404``) and once the separators are gone (``11-01``: ``1101``, as ``1-101``'s):
    ``D404``, ``D 404``, ``d-404``, ``Ｄ－４０４``, ``D-0404``, ``D栋404``, ``D-404室`` and
    ``D-404出`` share a key. Only ever used to offer a listed spelling, never to match one
    (``1-101`` and ``11-01`` may be two homes: the guard picks)."""
    words = _LOOSE_WORDS.sub(" ", same_text(text))
    keys = (_alnum(_unpadded(words)), _unpadded(_alnum(words)))
    return tuple(k for i, k in enumerate(keys) if k and k not in keys[:i])


def _alnum(text: str) -> str:
    return "".join(char for char in text if char.isalnum())


def _unpadded(text: str) -> str:
    return _DIGIT_RUN.sub(lambda run: run.group().lstrip("0") or "0", text)


class Verdict(NamedTuple):
    """What the gate makes of a dwelling typed (``Dwellings.verdict``)."""

    #: It is one the gate knows (``same_text``).
    known: bool
    #: The known spellings it differs from only by separators, spaces, case, leading zeros or
    #: the words a dwelling is said with (``loose_keys``), in the order the gate knows them:
    #: offered, never taken in its place.
    near: tuple[str, ...] = ()
    #: The guard confirmed this dwelling as typed (the form's ``unknown_dwelling``).
    confirmed: bool = False

    @property
    def ask(self) -> bool:
        """Whether the guard is asked before anything is recorded: unknown, not confirmed."""
        return not self.known and not self.confirmed


@dataclass(frozen=True)
class Dwellings:
    """The dwellings the gate knows, one spelling each (the first source's), by key."""

    spellings: Mapping[str, str] = field(default_factory=dict)
    _by_loose: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, households: Iterable[str]) -> Dwellings:
        spellings: dict[str, str] = {}
        for household in households:
            if household and household.strip():
                spellings.setdefault(same_text(household), household)
        by_loose: dict[str, list[str]] = {}
        for spelling in spellings.values():
            for key in loose_keys(spelling):
                by_loose.setdefault(key, []).append(spelling)
        return cls(spellings, {k: tuple(v) for k, v in by_loose.items()})

    def knows(self, typed: str) -> bool:
        return same_text(typed) in self.spellings

    def near(self, typed: str) -> tuple[str, ...]:
        """The known spellings ``typed`` differs from only as ``loose_keys`` folds it, in the
        order the gate knows them."""
        key = same_text(typed)
        found = {s for k in loose_keys(typed) for s in self._by_loose.get(k, ())}
        if not found:
            return ()
        return tuple(s for s in self.spellings.values() if s in found and same_text(s) != key)

    def verdict(self, typed: str, confirmed: object = None) -> Verdict:
        """What ``typed`` is to the gate; ``confirmed``: the dwelling the guard confirmed
        as typed on the question (``unknown_dwelling``), if any."""
        if self.knows(typed):
            return Verdict(known=True)
        said = same_text(confirmed) == same_text(typed) if isinstance(confirmed, str) else False
        return Verdict(known=False, near=self.near(typed), confirmed=said)

    def listed(self) -> tuple[str, ...]:
        """Every spelling, in the order the gate knows them."""
        return tuple(self.spellings.values())


class _Readable(Protocol):
    def reader(self) -> Any: ...


class _HasLists(Protocol):
    @property
    def current(self) -> Lists: ...


def issued_version(log: _Readable) -> int:
    """Which passes issued at the console are on record: the newest ``pass_issued`` audit
    row's ``seq`` (0 before any), one read of the index ``audit_action``."""
    found = log.reader().execute("select max(seq) from audit where action = 'pass_issued'")
    return int(found.fetchone()[0] or 0)


#: The most households of passes issued at the console the gate reads (the newest issued
#: first): far more than a compound's dwellings, a bound on one read of the audit log.
ISSUED_HOUSEHOLDS_MAX = 100_000


def issued_households(log: _Readable) -> list[str]:
    """The households of every pass issued at the console, each once, the most recently
    issued first, as their issue rows name them (a row retention purged names none; one
    whose detail is not JSON is skipped): all of them, not the newest 2,000 passes'
    (``issued_passes``), whose dwellings the gate did not know before. One read of the index
    ``audit_action``, up to ``ISSUED_HOUSEHOLDS_MAX``."""
    household = json_field("detail", "$.household")
    found = log.reader().execute(
        f"select {household} as household from audit"  # noqa: S608 (constants only)
        f" where action = 'pass_issued' and typeof({household}) = 'text'"
        f" and trim({household}) != '' group by household order by max(seq) desc limit ?",
        [ISSUED_HOUSEHOLDS_MAX],
    )
    return [str(row[0]) for row in found]


@dataclass
class GateDwellings:
    """The dwellings the gate knows (``Dwellings``), read from their sources once per change
    of them (the map's version, the lists and the returnee ledger in force, the newest pass
    issued) and kept: a manual pass reads two indexed numbers, not the map. Blocking."""

    log: _Readable
    lists: _HasLists
    compound: CompoundMap
    observation: ObservationLedger
    _kept: tuple[tuple[object, ...], Dwellings] | None = field(default=None, repr=False)

    def current(self) -> Dwellings:
        lists = self.lists.current
        key = (
            self.compound.version(),
            issued_version(self.log),
            lists,
            self.observation.current,
        )
        kept = self._kept
        if kept is not None and _same_key(kept[0], key):
            return kept[1]
        built = Dwellings.of(self._households(lists))
        self._kept = (key, built)
        return built

    def _households(self, lists: Lists) -> list[str]:
        return [
            *(d.household for d in self.compound.dwellings()),
            *(h.household for h in lists.merged_households()),
            *(q.household for q in (*lists.quarantine, *lists.peer_quarantine)),
            *(p.household for p in self.observation.people()),
            *issued_households(self.log),
        ]


def _same_key(kept: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """The numbers equal, the snapshots the very same objects (a snapshot is rebuilt at
    every change, and an equal one is no change)."""
    return kept[:2] == now[:2] and all(a is b for a, b in zip(kept[2:], now[2:], strict=True))
