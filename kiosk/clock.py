"""Time as an injected dependency.

The core never calls ``time.time()``, ``time.monotonic()`` or ``sleep``: it asks a ``Clock``.
Production uses ``SystemClock``; tests, replay and the benchmark use ``FakeClock`` and move
time forward explicitly, so nothing in a unit test waits for real.

A Raspberry Pi has no battery-backed clock: wall time (``now()``) can jump when NTP syncs.
Ordering and durations therefore use ``monotonic_ns()``; wall time is only recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: How far two readings of the time now a person compares (a phone or a watch, read to the
#: minute) may lie apart and still agree: a pass's typed start (``kiosk.passes.START_SLACK``)
#: and a guard's word for the clock (``kiosk.store.vouch_time``).
AGREE_SLACK = timedelta(minutes=10)


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time, timezone-aware UTC."""

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds; only differences are meaningful."""

    def synced(self) -> bool:
        """True when wall time is known to be synchronised (NTP/RTC)."""


@dataclass(frozen=True)
class ClockReading:
    """A clock read once: wall time, monotonic time and whether wall time was synchronised,
    all of the same moment (an event's ``ts``, ``mono_ns`` and ``clock_synced``)."""

    wall: datetime
    mono_ns: int
    synced: bool

    def __post_init__(self) -> None:
        if not isinstance(self.wall, datetime) or self.wall.tzinfo is None:
            raise ValueError("ClockReading wall time must be a timezone-aware datetime")
        if isinstance(self.mono_ns, bool) or not isinstance(self.mono_ns, int):
            raise ValueError("ClockReading mono_ns must be an int")
        if not isinstance(self.synced, bool):
            raise ValueError("ClockReading synced must be a bool")

    @classmethod
    def take(cls, clock: Clock) -> ClockReading:
        return cls(clock.now(), int(clock.monotonic_ns()), bool(clock.synced()))

    def wall_at(self, mono_ns: int) -> datetime:
        """The wall time of an earlier moment of this boot, known by its monotonic reading:
        this reading's wall time less the monotonic time gone since (right once the wall
        clock is synchronised, whatever it said then)."""
        return self.wall - timedelta(microseconds=(self.mono_ns - mono_ns) // 1000)


class ClockSync(Protocol):
    """Whether the machine's wall clock is synchronised: a platform read, in ``drivers``
    (``drivers.clocksync.KernelClockSync``, the kernel's verdict as ``timedatectl`` reads
    it; ``FakeClockSync`` beside it)."""

    def synced(self) -> bool: ...


class SystemClock:
    """The machine's clock; ``sync`` says whether its wall time is synchronised
    (``assume_synced``: a bench or an operator vouches for it)."""

    def __init__(self, sync: ClockSync, assume_synced: bool = False) -> None:
        self._sync = sync
        self._assume_synced = assume_synced

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def synced(self) -> bool:
        return self._assume_synced or self._sync.synced()


class FlooredClock:
    """A clock that, while not synchronised, never reads earlier than a time known to have
    passed: the newest synchronised stamp the event log holds (``raise_floor``, at start) or
    the last synchronised reading, plus the monotonic time since.

    A Pi without a battery-backed clock, without network and with the saved clock lost (a
    read-only root, a fresh card with the old data partition) boots at 1970 or at its image's
    date. On that clock a pass issued yesterday was "not yet valid", a visitor's pass that
    expired last week was valid, and an outing this morning lay decades ahead, outside the
    quota's window. Time cannot have gone backwards, so the floor is a truer "now" than the
    clock; it is still a lower bound (the time the Pi was off is not in it), and events say
    ``clock_synced`` false. A synchronised clock is read as it is, even below the floor (a
    stamp of the log's from a clock that was wrong). An unsynchronised clock that reads
    *ahead* of the floor is read as it is too: it may be right (an RTC, the Pi was off) or
    fast; what needs the truth asks ``earliest`` as well.
    """

    def __init__(self, base: Clock) -> None:
        self._base = base
        self._floor: tuple[datetime, int] | None = None  # a wall time, and monotonic ns then

    def raise_floor(self, wall: datetime) -> None:
        """``wall`` has passed (a synchronised stamp): never read earlier while unsynced."""
        if wall.tzinfo is None:
            raise ValueError("a floor must be timezone-aware")
        mono = self._base.monotonic_ns()
        floor = self._floor
        if floor is None or wall > floor[0] + timedelta(microseconds=(mono - floor[1]) // 1000):
            self._floor = (wall, mono)

    def now(self) -> datetime:
        wall, mono = self._base.now(), self._base.monotonic_ns()
        if self._base.synced():
            self._floor = (wall, mono)
            return wall
        floor = self._floor
        if floor is None:
            return wall
        return max(wall, floor[0] + timedelta(microseconds=(mono - floor[1]) // 1000))

    def floor(self) -> datetime | None:
        """The newest time known to have passed (the floor plus the monotonic time since),
        None when nothing is known. Real time is no earlier, whatever the clock reads: an
        unsynchronised clock may be behind it (read as the floor) or ahead of it (a fast
        fake-hwclock, a hand mis-set that got saved: read as it is, ``earliest``)."""
        floor = self._floor
        if floor is None:
            return None
        return floor[0] + timedelta(microseconds=(self._base.monotonic_ns() - floor[1]) // 1000)

    def monotonic_ns(self) -> int:
        return self._base.monotonic_ns()

    def synced(self) -> bool:
        return self._base.synced()


def known_passed(clock: Clock) -> datetime | None:
    """While ``clock`` is not synchronised, the newest time known to have passed
    (``FlooredClock.floor``), if it keeps one; else None (a synchronised clock is the time)."""
    if isinstance(clock, FlooredClock) and not clock.synced():
        return clock.floor()
    return None


def earliest(clock: Clock, now: datetime | None = None) -> datetime:
    """The earliest real time can be by what ``clock`` knows: its reading ``now`` (read
    again when not given) or, while it is not synchronised, the newest time known to have
    passed (``known_passed``) when that is earlier: a clock that reads ahead of the floor may
    be right or fast, and nothing tells which until NTP answers. The quota's look-back is
    loaded from it, and the policy judges by it as well as by the clock."""
    now = clock.now() if now is None else now
    floor = known_passed(clock)
    return now if floor is None else min(now, floor)


@dataclass
class FakeClock:
    """A clock that only moves when told to. Wall and monotonic time advance together."""

    start: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    mono_ns: int = 1_000_000_000
    is_synced: bool = True

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware")
        self._wall = self.start

    def now(self) -> datetime:
        return self._wall

    def monotonic_ns(self) -> int:
        return self.mono_ns

    def synced(self) -> bool:
        return self.is_synced

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.mono_ns += int(seconds * 1e9)
        self._wall = self._wall + timedelta(seconds=seconds)

    def set_wall(self, wall: datetime) -> None:
        """Jump wall time only (an NTP step); monotonic time is unaffected."""
        self._wall = wall


class ShiftedClock:
    """Real time, shown from a chosen starting wall time: the live demo's clock.

    Monotonic time is the machine's; wall time starts at ``start`` and runs at real speed, and
    ``jump()`` steps it as an NTP correction would. The demo uses it so that its scripted day
    (opening at 08:30, a visitor after closing) looks the same whenever it is run. Its time is
    virtual, the scripted day's, not the host's: it reports itself synchronised whatever the
    host's clock is (on a host without network time the console would otherwise ask for the
    phone's time, December, while the demo gate reads March: every demo pass not yet valid).
    """

    def __init__(self, start: datetime, base: Clock) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock start must be timezone-aware")
        self._base = base
        self._offset = start - self._base.now()

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def monotonic_ns(self) -> int:
        return self._base.monotonic_ns()

    def synced(self) -> bool:
        return True

    def jump(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)
