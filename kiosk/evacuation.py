"""Evacuation: a guard holds the gate open for everyone (a fire, a medical emergency).

A guard's action on the console, recorded as the guard's manual pass with the flag
``evacuation`` (who, when, why; its audit row in the same commit) and carried out even when
the event log cannot take it: a fire does not wait for a disk. The relay is held released
until the guard ends it or ``minutes`` have passed (at most ``MAX_MIN``: an evacuation
forgotten does not leave the gate open for the night). While it lasts both screens say so,
the kiosk screen tells people to pass without stopping, and every decision the kiosk still
makes (a code read in passing) carries the flag, so the evacuation's count is in the log.
A daemon that restarts during one commands the gate locked like any start: the guard starts
it again.

Two tablets at one gate: a start sent while one is under way (a form drawn before it) only
ever holds the gate open longer (``held_open``): the evacuation under way stays, and who
started it, until the later of the two ends; a fire is never cut short, and a guard who
needs more time never has to end it (the gate locked) to start it again. Its cause is the
graver of the two (``graver``: a fire during a medical emergency makes it a fire's, on every
screen and on the end's record; a stale "medical" sent during a fire leaves it a fire's). An
end names the evacuation its page showed (``Evacuation.version``) and ends no other
(``Changed``); a page drawn before it was started again shows the same evacuation
(``Evacuation.same_as``), its end or cause since moved: the console asks again. A start
names what its page showed under way too (``version_of``), looked at again as the engine
starts it (``Moved``): two tablets confirming a start while a passage was being committed
start one evacuation, the second guard asked again. Two guards ending it at the same instant end
it once: the first end is claimed as its row is written (``Ending``), and the second writes
nothing and is told who ended it (``AlreadyEnded``), as is a later end sent from a page drawn
before it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: The flag on the evacuation's own record and on every decision made while it lasts.
FLAG = "evacuation"
#: Why the gate is held open: what the kiosk screen may say (the guard's words stay private).
#: Gravest first: a start during an evacuation of a lesser cause makes it this one's.
CAUSES = ("fire", "medical", "other")
#: The longest a guard may hold the gate open at once; the default offered on the console.
MAX_MIN = 60
DEFAULT_MIN = 15


@dataclass(frozen=True)
class Evacuation:
    """One evacuation under way: its cause, when it ends on its own, the guard who started it
    and when (monotonic), and the guard who last started it again (``held_open``), if any."""

    cause: str
    until_ns: int
    by: str = ""
    since_ns: int = 0
    again_by: str = ""

    @property
    def version(self) -> str:
        """Which evacuation, ending when, for what cause, a page showed: its forms carry it. A
        start sent with another one is asked again; an end is refused (``Changed``) once
        another one is under way, or this one held open longer or made graver (the console
        then asks again, ``same_as``: the guard did not see what it is now)."""
        return f"{self.since_ns:x}-{self.until_ns:x}-{self.cause}"

    def same_as(self, seen: object) -> bool:
        """Whether ``seen`` (the ``version`` a page showed) is this evacuation: started then,
        whether or not it was started again since (held open longer, made graver)."""
        return _started(seen) == self.since_ns

    def view(self, now_ns: int) -> dict[str, object]:
        """What the screens are told: the cause and the seconds left (no personal data)."""
        return {"cause": self.cause, "ends_in_s": max(0, (self.until_ns - now_ns) // 10**9)}


def _started(version: object) -> int | None:
    """When the evacuation a ``version`` names was started (its ``since_ns``); None for text
    that names none."""
    if not isinstance(version, str):
        return None
    try:
        return int(version.split("-")[0], 16)
    except ValueError:
        return None


@dataclass(frozen=True, eq=False)
class Ending:
    """A guard's end (``by``) of the evacuation started at ``since_ns``: claimed while its row
    is written (``at_ns`` None), then done (``at_ns``, monotonic). An evacuation is ended
    once: another end of it is refused (``AlreadyEnded``), whoever sends it. Equal only to
    itself: a guard's claim is the one it was handed."""

    since_ns: int
    by: str
    at_ns: int | None = None

    def of(self, seen: object) -> bool:
        """Whether ``seen`` (the ``version`` a page showed) names the evacuation this ends."""
        return _started(seen) == self.since_ns


class AlreadyEnded(ValueError):
    """An end of an evacuation another guard has ended, or is ending (its row being written):
    nothing is written, nothing ends; ``ending`` says who, and whether it is over."""

    def __init__(self, ending: Ending) -> None:
        super().__init__("the evacuation was ended by another guard")
        self.ending = ending


def held_open(
    under_way: Evacuation | None, cause: str, minutes: int, by: str, now_ns: int
) -> Evacuation:
    """The evacuation once a guard (``by``) has started one (``cause``, ``minutes``) at
    ``now_ns``: a new one, or the one under way, who started it kept, held open until the
    later of its end and this one's (a start never shortens it), for the graver cause, started
    again by ``by``."""
    until_ns = now_ns + minutes * 60 * 10**9
    if under_way is None:
        return Evacuation(cause, until_ns, by, now_ns)
    return replace(
        under_way,
        cause=graver(under_way.cause, cause),
        until_ns=max(under_way.until_ns, until_ns),
        again_by=by,
    )


def graver(cause: str, other: str) -> str:
    """The graver of two causes (``CAUSES``, gravest first): an evacuation's once both have
    started it."""
    return min(cause, other, key=CAUSES.index)


class Changed(ValueError):
    """An end asked of an evacuation that is no longer the one under way (its page drawn
    before another one started, or before it was held open longer): nothing ends."""

    def __init__(self, under_way: Evacuation) -> None:
        super().__init__("the evacuation under way is not the one shown")
        self.under_way = under_way


#: What a page shows under way when no evacuation is (``version_of``).
NONE = "none"


def version_of(held: Evacuation | None) -> str:
    """What a page showed under way, as its forms carry it (``seen``): the evacuation's
    ``version``, or ``NONE``."""
    return NONE if held is None else held.version


class Moved(Exception):  # noqa: N818 - a refusal, as Changed
    """A start confirmed over what a page showed under way (``seen``) that is no longer what
    is under way as the engine starts it: another tablet's start, waiting with it while a
    passage was committed, went first (or the one shown ended). Nothing is started nor
    recorded; the guard is asked again. ``under_way``: the evacuation now, or None."""

    def __init__(self, under_way: Evacuation | None) -> None:
        super().__init__("the evacuation under way is not the one the start was confirmed over")
        self.under_way = under_way


def checked(cause: object, minutes: object) -> tuple[str, int]:
    """``(cause, minutes)`` for an evacuation, or ``ValueError`` naming what is wrong."""
    if cause not in CAUSES:
        raise ValueError(f"evacuation cause: one of {', '.join(CAUSES)}")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MIN:
        raise ValueError(f"evacuation minutes: a whole number from 1 to {MAX_MIN}")
    return str(cause), minutes
