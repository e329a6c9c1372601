"""Whether the machine's wall clock is synchronised (``kiosk.clock.ClockSync``), and a fake.

A Raspberry Pi has no battery-backed clock: it boots at the time saved at the last shutdown
(systemd-timesyncd's ``/var/lib/systemd/timesync/clock``, or fake-hwclock's) or, on a fresh
image, near 1970, until NTP steps it. Raspberry Pi OS Bookworm keeps time with
systemd-timesyncd; a site may run chrony or ntpd instead (a GPS or RTC hat).

How this reads it, as ``timedatectl``'s "System clock synchronized" does: the kernel's
maximum clock error (``ntp_adjtime`` read-only, one system call). Whichever NTP client
disciplines the clock keeps it below 16 s while it is synchronised; the kernel grows it past
that on its own when nobody does (about 9 hours without NTP), and setting the clock by hand
(``date -s``: settimeofday) sets it to 16 s and ``STA_UNSYNC`` at once. timesyncd's flag file
``/run/systemd/timesync/synchronized`` is read only where the kernel cannot be asked (not
Linux): it stays for the rest of the boot once timesyncd synchronised, so it would vouch for a
clock set by hand afterwards.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.clock import SystemClock

__all__ = [
    "KERNEL_MAX_ERROR_US",
    "TIMESYNC_FLAG",
    "FakeClockSync",
    "KernelClockSync",
    "kernel_clock_synced",
    "kernel_clock_verdict",
    "system_clock",
]

#: systemd-timesyncd touches this file once the clock has been synchronised.
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
#: The kernel's maximum error at which it calls its clock unsynchronised (``NTP_PHASE_LIMIT``).
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


def kernel_clock_verdict(
    max_error_us: Callable[[], int | None] = _kernel_max_error_us,
) -> bool | None:
    """The kernel's verdict on its clock: synchronised or not, or None where it cannot be
    asked. Setting the clock by hand (``date -s``, settimeofday) makes it unsynchronised."""
    error = max_error_us()
    return None if error is None else 0 <= error < KERNEL_MAX_ERROR_US


def kernel_clock_synced(max_error_us: Callable[[], int | None] = _kernel_max_error_us) -> bool:
    """Whether the kernel holds the clock synchronised, whoever synchronised it."""
    return kernel_clock_verdict(max_error_us) is True


class KernelClockSync:
    """The machine's answer: the kernel's verdict; timesyncd's flag where there is none."""

    def __init__(
        self,
        timesync_flag: Path = TIMESYNC_FLAG,
        kernel: Callable[[], bool | None] = kernel_clock_verdict,
    ) -> None:
        self._flag = timesync_flag
        self._kernel = kernel

    def synced(self) -> bool:
        verdict = self._kernel()
        return self._flag.exists() if verdict is None else verdict


@dataclass
class FakeClockSync:
    """A synchronisation state the test sets (``is_synced``); ``reads`` counts the questions."""

    is_synced: bool = False
    reads: int = 0

    def synced(self) -> bool:
        self.reads += 1
        return self.is_synced


def system_clock(*, assume_synced: bool = False) -> SystemClock:
    """The machine's clock, synchronised as the kernel says (``assume_synced``: a bench or
    an operator vouches for it)."""
    return SystemClock(KernelClockSync(), assume_synced=assume_synced)
