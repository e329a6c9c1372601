"""Whom a guard's decision is about: a passage of the log, checked as the console checks it.

The one rule for a guard's decision about a recorded passage (the console's subject field,
``ui.guard.live.subject_of``, and a scenario's manual step naming a visitor,
``checkpoint.replay``): the passage must be a kiosk passage still recent enough
(``SUBJECT_MAX_AGE_H``), no guard may have decided it already, and a pass has nothing to let
through unless the gate did not open for it. ``subject_in_log`` gives the ``ManualSubject``
the engine records the decision about, or raises ``SubjectRefused`` saying why not; the
engine refuses a second decision about a passage whose first it holds and the log does not
yet (``kiosk.overrides``).
"""

from __future__ import annotations

from kiosk import dating, queries
from kiosk.clock import ClockReading
from kiosk.engine import PASS_DECISIONS, ManualSubject
from kiosk.links import not_opened
from kiosk.overrides import SubjectRefused
from kiosk.queries import Readable

#: How old a passage a guard may still decide on (it is named on the console when chosen).
SUBJECT_MAX_AGE_H = 12


def subject_in_log(
    log: Readable, seq: int, decision: str | None, now: ClockReading, boot_id: str
) -> ManualSubject:
    """The passage ``seq`` as the subject of a guard's ``decision`` (``manual_pass`` or
    ``manual_deny``; None: either), or ``SubjectRefused``. A row saying the gate did not open
    for a pass (``not_opened``) and its pass are one passage: a decision about either is
    about the pass, and a decision recorded about either decides it. Blocking: log reads."""
    event = queries.event_by_seq(log, seq)
    named = None if event is None else not_opened(event.get("flags") or ())
    if named is not None:  # the row saying the gate did not open: the passage is its pass's
        event = queries.event_by_seq(log, named)
    if event is None or event.get("kind") != "passage" or _too_old(log, event, now, boot_id):
        raise SubjectRefused("gone", seq)
    seq = int(event["seq"])
    failed = queries.not_opened_for(log, seq) if event.get("decision") in PASS_DECISIONS else None
    for about in (seq, None if failed is None else int(failed["seq"])):
        earlier = None if about is None else queries.override_of(log, about)
        if earlier is not None:
            who, what = str(earlier.get("operator")), str(earlier.get("decision"))
            raise SubjectRefused("decided", seq, who, what)
    if decision == "manual_pass" and event.get("decision") in PASS_DECISIONS and failed is None:
        raise SubjectRefused("passed", seq)
    return ManualSubject.of_event(event)


def _too_old(log: Readable, event: dict[str, object], now: ClockReading, boot_id: str) -> bool:
    """Whether a passage is past ``SUBJECT_MAX_AGE_H`` (``kiosk.dating.age_s``: one made
    before NTP stepped the clock by when it happened, not by its 1970 stamp)."""
    age = dating.age_s(queries.dated(log, [dict(event)], now, boot_id)[0], now, boot_id)
    return age is None or age > SUBJECT_MAX_AGE_H * 3600
