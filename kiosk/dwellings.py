"""The dwellings the gate knows, and what it makes of one a guard types for a person without a
pass (the live page's manual pass, ``POST /guard/manual``).

A dwelling typed otherwise than its list spells it (``D404`` or ``D 404`` for the quarantine
list's ``D-404``) matched nothing: the pass was not held, and its outing was charged to a
household nobody has. Now:

* a dwelling matches a known one as the gate matches households everywhere (``same_text``:
  case, width and outer spaces aside); the separators are never stripped to make it match
  (``1-101`` and ``11-01`` may be two homes);
* one that matches no dwelling the gate knows is asked about before anything is recorded
  (``Verdict.ask``), offering those that differ from it only by separators, spaces or case
  (``Verdict.near``: "did you mean D-404?"); confirmed as typed, the record carries the flag
  ``unknown_dwelling`` (``kiosk.engine.UNKNOWN_DWELLING``), so it shows it was never checked.

The gate knows a dwelling from the compound map, the households list, the quarantine list
(its own and the compound's other gates'), the returnee ledger and the passes issued at its
console (``GateDwellings``): read once per change of them and kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .compound import CompoundMap
from .lists import Lists
from .observation import ObservationLedger
from .queries import issued_passes
from .spelling import same_text

__all__ = ["Dwellings", "GateDwellings", "Verdict", "loose_key"]


def loose_key(text: str) -> str:
    """``text`` as ``same_text`` folds it, its letters and digits alone: ``D404``, ``D 404``,
    ``d-404`` and ``Ｄ－４０４`` are one key. Only ever used to offer a listed spelling, never
    to match one."""
    return "".join(char for char in same_text(text) if char.isalnum())


class Verdict(NamedTuple):
    """What the gate makes of a dwelling typed (``Dwellings.verdict``)."""

    #: It is one the gate knows (``same_text``).
    known: bool
    #: The known spellings it differs from only by separators, spaces or case (``loose_key``),
    #: in the order the gate knows them: offered, never taken in its place.
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
            by_loose.setdefault(loose_key(spelling), []).append(spelling)
        return cls(spellings, {k: tuple(v) for k, v in by_loose.items() if k})

    def knows(self, typed: str) -> bool:
        return same_text(typed) in self.spellings

    def near(self, typed: str) -> tuple[str, ...]:
        """The known spellings ``typed`` differs from only by separators, spaces or case."""
        key = same_text(typed)
        found = self._by_loose.get(loose_key(typed), ())
        return tuple(s for s in found if same_text(s) != key)

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


def issued_households(log: _Readable) -> list[str]:
    """The households of the passes issued at the console, as their issue rows name them
    (a row retention purged names none)."""
    found = (note.detail.get("household") for note in issued_passes(log))
    return [h for h in found if isinstance(h, str) and h]


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
