"""Time as an injected dependency.

The core never calls ``time.time()``, ``time.monotonic()`` or ``sleep``: it asks a ``Clock``.
Production uses ``SystemClock``; tests, replay and the benchmark use ``FakeClock`` and move
time forward explicitly, so nothing in a unit test waits for real.

A Raspberry Pi has no battery-backed clock: wall time (``now()``) can jump when NTP syncs.
Ordering and durations therefore use ``monotonic_ns()``; wall time is only recorded.
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

#: systemd-timesyncd touches this file once the clock has been synchronised.
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
#: Whichever NTP client disciplines the clock (timesyncd, chrony, ntpd, a GPS daemon) keeps
#: the kernel's maximum error (``adjtimex``) below 16 s while it is synchronised; the kernel
#: grows it past that on its own when nobody does (``timedatectl``'s "synchronized" is this).
KERNEL_MAX_ERROR_US = 16_000_000


class _Timex(ctypes.Structure):
    """The head of the kernel's ``struct timex`` (ctypes lays it out per platform), then room
    for the rest, which the call fills and nothing here reads."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("rest", ctypes.c_char * 256),
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
    except OSError:
        return None


def _kernel_max_error_us() -> int | None:
    """The kernel's maximum clock error in microseconds (a read-only ``ntp_adjtime``: one
    system call), or None where the call is missing or fails (not Linux)."""
    libc = _libc()
    adjtime = getattr(libc, "ntp_adjtime", None) if libc is not None else None
    if adjtime is None:
        return None
    timex = _Timex()  # modes 0: read only
    if adjtime(ctypes.byref(timex)) < 0:
        return None
    return int(timex.maxerror)


def kernel_clock_synced(max_error_us: Callable[[], int | None] = _kernel_max_error_us) -> bool:
    """Whether the kernel holds the clock synchronised, whoever synchronised it."""
    return kernel_clock_verdict(max_error_us) is True


def kernel_clock_verdict(
    max_error_us: Callable[[], int | None] = _kernel_max_error_us,
) -> bool | None:
    """The kernel's verdict on its clock: synchronised or not, or None where it cannot be
    asked. Setting the clock by hand (``date -s``, settimeofday) makes it unsynchronised."""
    error = max_error_us()
    return None if error is None else 0 <= error < KERNEL_MAX_ERROR_US


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


class SystemClock:
    """The machine's clock. Synchronised: the kernel's own verdict (``timedatectl``'s, set by
    whichever NTP client runs: timesyncd, chrony, ntpd); timesyncd's flag file only where the
    kernel cannot be asked. The flag stays for the rest of the boot once timesyncd has
    synchronised, so it would vouch for a clock set by hand afterwards."""

    def __init__(
        self,
        timesync_flag: Path = TIMESYNC_FLAG,
        assume_synced: bool = False,
        kernel_synced: Callable[[], bool | None] = kernel_clock_verdict,
    ) -> None:
        self._flag = timesync_flag
        self._assume_synced = assume_synced
        self._kernel_synced = kernel_synced

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def synced(self) -> bool:
        if self._assume_synced:
            return True
        kernel = self._kernel_synced()
        return self._flag.exists() if kernel is None else kernel


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
    (opening at 08:30, a visitor after closing) looks the same whenever it is run.
    """

    def __init__(self, start: datetime, base: Clock | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock start must be timezone-aware")
        self._base = base or SystemClock()
        self._offset = start - self._base.now()

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def monotonic_ns(self) -> int:
        return self._base.monotonic_ns()

    def synced(self) -> bool:
        return self._base.synced()

    def jump(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)
