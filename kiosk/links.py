"""Which passage a row of the event log belongs to: the flags that tie it to an earlier row.

A passage is one person at the gate, from their first attempt to how it ended. It can take
more than one row, each tied to the row before by an additive flag naming that row's ``seq``:

``overrides:<seq>``  a guard's decision about a passage (``kiosk.engine.Engine.manual``): the
                     passage's end (a deny let through is one passage, passed).
``retries:<seq>``    the kiosk's decision on an attempt that tries a passage again: the same
                     pass, the same way, within ``engine.retry_window_s`` of a deny whose
                     every reason only asked the person to measure again
                     (``MEASURE_AGAIN_REASONS``, below the fever threshold:
                     ``measure_again``). Its outcome is the passage's.
``not_opened:<seq>`` the kiosk's record that the gate did not open for its pass ``seq``
                     (a deny; ``Engine``): the relay did not obey the open command
                     (``gate_fault``), or the pass's commit landed after its deadline and
                     the screen had denied it (the deny shown, ``store_fault``). Nobody went
                     through on that pass. The passage's end, denied; no household's outing.

``same_as:<seq>``    a guard's registration held for the log by a store fault, as the screen
                     showed it (a deny with ``on_store_fault = "deny"``), whose commit the
                     log refused: ``seq`` (another tablet's) records that one already
                     (``kiosk.again``). Its own passage, ended denied.

``repeats`` is the one rule a registration or vehicle row is counted by: one naming an earlier
record (``not_opened:<seq>``, ``same_as:<seq>``) is the deny written after that record, the
same registration, counted once (``kiosk.categories``, the handover, ``kiosk.roster``).

``passage_key`` is the one rule the reports count passages by (``kiosk.stats``,
``kiosk.categories``, and through them the guard's statistics, ``kiosk report``,
``/api/v1/stats`` and the district report). ``guard_decision`` is the one rule they and the
handover (``kiosk.roster``) tell a guard's decisions apart by: which changed the kiosk's,
about the passage's decision just before the guard's (``decision_before``, by the same links:
a pass the gate did not open for is a deny by then).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import sqlite_utils

from kiosk.typed import whole_number
from kiosk.unreadable import also_checked, decode_json, readable_rows

__all__ = [
    "MEASURE_AGAIN_REASONS",
    "GUARD_DECISIONS",
    "OVERRIDING",
    "Key",
    "NOT_OPENED",
    "NOT_OPENED_ROWS",
    "OVERRIDES",
    "REPEATS_ROWS",
    "RETRIES",
    "SAME_AS",
    "measure_again",
    "not_opened",
    "overridden",
    "guard_decision",
    "decision_before",
    "passage_key",
    "repeats",
    "retried",
]

OVERRIDES = "overrides:"
RETRIES = "retries:"
NOT_OPENED = "not_opened:"
SAME_AS = "same_as:"
#: The SQL condition on an ``events`` row that names a pass the gate did not open for (read
#: the seq with ``not_opened`` from its flags).
NOT_OPENED_ROWS = f"decision = 'deny' AND flags LIKE '%{NOT_OPENED}%'"

#: A deny for these reasons only asks the person to measure again (the screen says so): no
#: reading (``no_temperature``: no wrist held up in time) or one that cannot be a body's
#: (``temp_implausible``: a glove, hair, a view not filled). A fever never is one.
MEASURE_AGAIN_REASONS = frozenset({"no_temperature", "temp_implausible"})

#: A passage by its first row: (kiosk_id, seq).
Key = tuple[str, int]


def _linked(flags: Iterable[str], prefix: str) -> int | None:
    for flag in flags:
        seq = flag.removeprefix(prefix)
        if seq != flag and (number := whole_number(seq)) is not None:
            return number
    return None


def overridden(flags: Iterable[str]) -> int | None:
    """The ``seq`` a guard's decision is about (its ``overrides:<seq>`` flag), or None."""
    return _linked(flags, OVERRIDES)


def retried(flags: Iterable[str]) -> int | None:
    """The ``seq`` of the attempt a kiosk decision tries again (``retries:<seq>``), or None."""
    return _linked(flags, RETRIES)


def not_opened(flags: Iterable[str]) -> int | None:
    """The ``seq`` of the pass a row says the gate did not open for (``not_opened:<seq>``),
    or None."""
    return _linked(flags, NOT_OPENED)


def repeats(row: Mapping[str, Any]) -> int | None:
    """The ``seq`` of the earlier record an events row is the deny written after (its
    ``not_opened:<seq>`` or ``same_as:<seq>``): a registration or vehicle row that names one
    is that registration again, not another; None for a row that names none."""
    flags = _flags(row)
    earlier = not_opened(flags)
    return _linked(flags, SAME_AS) if earlier is None else earlier


#: ``repeats``, as SQL: the rows that name an earlier record they repeat.
REPEATS_ROWS = f"(flags like '%{NOT_OPENED}%' or flags like '%{SAME_AS}%')"


def measure_again(
    decision: str, reasons: Iterable[str], temp_c: float | None, fever_threshold_c: float
) -> bool:
    """Whether a kiosk decision is a deny that only asked its person to measure again: every
    reason in ``MEASURE_AGAIN_REASONS``, and no reading at or above the fever threshold (a
    hot reading the thermometry could not trust is no retry to fold away)."""
    codes = set(reasons)
    return (
        decision == "deny"
        and bool(codes)
        and codes <= MEASURE_AGAIN_REASONS
        and (temp_c is None or temp_c < fever_threshold_c)
    )


#: What a guard's decision did (``guard_decision``), in the order the report lists them.
GUARD_DECISIONS = (
    "registrations",
    "confirmed_denies",
    "let_through_over_a_deny",
    "stopped_over_a_pass",
    "confirmed_passes",
)
#: The guard's decisions that overrode the kiosk's: the other way than the kiosk decided.
OVERRIDING = ("let_through_over_a_deny", "stopped_over_a_pass")


def guard_decision(decision: str, about: str | None) -> str:
    """What a guard's decision (``manual_pass``, ``manual_deny``) did, ``about`` the decision
    of the row it names (``overrides:<seq>``; None: it names none): ``registrations`` about
    no passage (a person or a vehicle registered by hand, a person without a pass let through
    or refused on the guard's word), else ``confirmed_denies`` (a deny kept: a fever
    confirmed), ``let_through_over_a_deny``, ``stopped_over_a_pass`` (a fever found by hand)
    or ``confirmed_passes``. A passage's decision is its last row's: a retry's, a
    ``not_opened`` deny's."""
    if about is None:
        return "registrations"
    denied = about not in ("pass", "manual_pass")
    if decision == "manual_pass":
        return "let_through_over_a_deny" if denied else "confirmed_passes"
    return "confirmed_denies" if denied else "stopped_over_a_pass"


def _flags(row: Mapping[str, Any], column: str = "flags") -> list[str]:
    """A row's JSON list ``column`` (``flags``, ``reasons``): none where it has no such
    column (a row read in part, the feed's as a test draws it), nor where its stored text is
    not JSON (a damaged card: ``kiosk.unreadable.decode_json``, the row's other readers
    count and say it)."""
    flags = row.get(column)
    if not flags:
        return []
    decoded = decode_json({column: flags}, [column])[column]
    return [str(f) for f in decoded] if isinstance(decoded, list) else []


def judged_fever(row: Mapping[str, Any], fevers: Iterable[int] = ()) -> bool:
    """Whether the gate judged an events row's reading a fever when it decided, by the
    threshold in force then: ``fever`` among its ``reasons`` (the kiosk's fever deny, a fever
    a guard found by hand), or a guard's decision about a row so judged (``fevers``: their
    seqs) carrying that row's reading (the kiosk's, with its ``temp_object_c``; not one the
    guard measured by hand). Never today's threshold again: a reading read as normal when it
    was taken stays normal after the threshold is lowered, a fever stays one when raised."""
    if "fever" in _flags(row, "reasons"):
        return True
    about = overridden(_flags(row))
    return about is not None and about in set(fevers) and row.get("temp_object_c") is not None


def passage_key(row: Mapping[str, Any], seen: MutableMapping[Key, Key]) -> Key:
    """The passage an events row belongs to, by kiosk and seq of its first row. ``seen`` maps
    every row read so far (the day's, in ``seq`` order) to its passage, and gets this row:
    a row naming one of them (``overrides:<seq>``, ``retries:<seq>``, ``not_opened:<seq>``)
    is of that row's passage, else it starts its own (one about a row of another day too)."""
    kiosk, seq = str(row["kiosk_id"]), int(row["seq"])
    flags = _flags(row)
    earlier = overridden(flags)
    if earlier is None:
        earlier = retried(flags)
    if earlier is None:
        earlier = not_opened(flags)
    key = (kiosk, seq) if earlier is None else seen.get((kiosk, earlier), (kiosk, seq))
    seen[(kiosk, seq)] = key
    return key


#: A row that ties itself to an earlier one (``passage_key``'s links), as SQL.
_LINKED_ROWS = " or ".join(f"flags like '%{p}%'" for p in (OVERRIDES, RETRIES, NOT_OPENED))


def decision_before(db: sqlite_utils.Database, kiosk_id: str, about: int, seq: int) -> str:
    """The decision of the passage a guard's row ``seq`` is about (its ``overrides:<about>``)
    just before it: the passage's last row before ``seq`` (``passage_key``: a retry's, a
    ``not_opened`` deny's, an earlier guard's), what the day report reads off its passages
    and the handover reads here, so both tell the guard's decision alike
    (``guard_decision``). A row the database does not hold (the district's copy of a day,
    a purged one) is about a deny: what the kiosk sends to the guard."""
    checked = "".join(f", {c}" for c in also_checked(("kiosk_id",)))
    sql = (
        f"select kiosk_id, seq, decision{checked} from events"  # noqa: S608
        f" where kiosk_id = ? and seq >= ? and seq < ? and (seq = ? or {_LINKED_ROWS})"
        " order by seq"
    )
    seen: dict[Key, Key] = {}
    decision = None
    for row in readable_rows(db.query(sql, [kiosk_id, about, seq, about])):
        if int(row["seq"]) == about:
            seen[(str(kiosk_id), about)] = (str(kiosk_id), about)
            decision = str(row["decision"])
        elif passage_key(row, seen) == (str(kiosk_id), about):
            decision = str(row["decision"])
    return "deny" if decision is None else decision
