"""Guards' decisions about a passage the engine has taken but the log does not hold yet.

A decision about a recorded passage (``ManualSubject``) is checked against the log
(``kiosk.subjects.subject_in_log``: no guard decided it already), then queued to the engine,
which commits it later. Between the two a second decision about the same passage, from
another console or a scenario's guard step, would pass the same check: ``Overrides`` is
the one place both go through (``Engine.manual``), and it refuses the second as
``SubjectRefused("decided")``, naming who has it. The passage is held while the decision's
record is not in the log: while it is queued and committed, and while it waits in the
engine's backlog (a store fault, a commit past its deadline), however long. From the
commit of its record it stands ``CLAIM_S`` more, while a check that read the log before
the commit may still be on its way, then the log answers. It is let go at once only when
nothing was decided after all: the decision failing to queue (``Engine.manual`` takes it
last, once its input is checked), or its record lost from a full backlog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

#: How long a decision stands here once its record is committed (the log answers after).
CLAIM_S = 30
#: The most decisions held (the oldest go first; the log answers for them).
KEPT = 500

Refusal = Literal["gone", "decided", "passed"]
#: A hold's release: the monotonic time its record was committed, or None (nothing decided).
Release = Callable[[int | None], None]


class SubjectRefused(ValueError):
    """A passage no guard may decide about now. ``why``: ``gone`` (no such recent kiosk
    passage), ``decided`` (``who`` decided it already, as ``decision``), ``passed`` (a manual
    pass about a passage the kiosk let through: nothing to let through)."""

    def __init__(self, why: Refusal, seq: int, who: str = "", decision: str = "") -> None:
        self.why, self.seq, self.who, self.decision = why, seq, who, decision
        words = {
            "gone": f"passage {seq} is no recent kiosk passage",
            "decided": f"{who} has already decided passage {seq} ({decision})",
            "passed": f"passage {seq} was let through already: nothing to let through",
        }
        super().__init__(words[why])


class _Held:
    def __init__(self, who: str, decision: str) -> None:
        self.who, self.decision = who, decision
        #: When it lapses (monotonic ns); None while its record is not committed.
        self.until_ns: int | None = None


class Overrides:
    """The decisions about passages taken and not yet answered for by the log. Not
    thread-safe: the engine's one driver calls it (``Engine.manual``, its commits)."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}

    def take(self, seq: int, who: str, decision: str, now_ns: int) -> Release:
        """Take passage ``seq`` for ``who``'s ``decision``, or ``SubjectRefused`` naming who
        has it. Returns its release: with the monotonic time its record was committed (it
        stands ``CLAIM_S`` more), or None when nothing was decided (it goes at once)."""
        held = self._held.get(seq)
        if held is not None and (held.until_ns is None or now_ns < held.until_ns):
            raise SubjectRefused("decided", seq, held.who, held.decision)
        mine = self._held[seq] = _Held(who, decision)
        while len(self._held) > KEPT:
            del self._held[next(iter(self._held))]

        def release(over_ns: int | None) -> None:
            if self._held.get(seq) is not mine:
                return  # lapsed, and taken since by another decision
            if over_ns is None:
                del self._held[seq]
            else:
                mine.until_ns = over_ns + CLAIM_S * 1_000_000_000

        return release
