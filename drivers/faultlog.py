"""One log line per change of a device's state, never one per retry or per frame.

A camera whose library cannot load fails the same way 15 times a second, a scanner that is
unplugged fails at every reconnect: logging each attempt (worse, with a traceback) fills the
journal (~1 GB a day) and hides the one line that says what happened. ``StateLog`` logs a
fault when its *cause* changes and the recovery once; repeats go to debug.

A device that *flaps* (a loose USB cable: lost and back every few seconds, for weeks) changes
state all the time: at most ``FLAP_LINES`` changes are logged per ``FLAP_WINDOW_S``, the first
of them in full; the rest go to debug and are counted. Once the hour is over the next change,
or ``settle()`` (each driver's ``health()``, polled by the runner), says the state then and
how many changes were not logged, so the journal's last word on the device is its state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kiosk.clock import Clock

#: Changes of state logged in full per ``FLAP_WINDOW_S``; the rest are counted.
FLAP_LINES = 6
FLAP_WINDOW_S = 3600


def describe(exc: BaseException) -> str:
    """``TypeName: message``: a library's own error type tells a reader what failed."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StateLog:
    """Logs ``name``'s faults and recoveries once per change, at most ``FLAP_LINES`` an hour.

    ``clock`` (its monotonic time) times the hour; without one, the process's."""

    def __init__(self, logger: logging.Logger, name: str, clock: Clock | None = None) -> None:
        self._log = logger
        self._name = name
        self._now: Callable[[], int] = clock.monotonic_ns if clock else time.monotonic_ns
        self._cause: str | None = None
        self._state = ""  # what the last change said: the cause's message, or the recovery
        self._window_ns: int | None = None
        self._told = 0  # changes logged since the window began
        self._untold = 0  # changes counted, not logged, since the window began
        self.lines = 0
        #: A driver's own thread changes the state while the runner's asks ``settle()``.
        self._lock = threading.Lock()

    @property
    def cause(self) -> str | None:
        """The fault last logged, or None while the device is fine."""
        return self._cause

    def fault(
        self, cause: str, message: str | None = None, exc: BaseException | None = None
    ) -> bool:
        """Log ``message`` (default ``cause``) if ``cause`` differs from the last; True if logged.

        The traceback, when there is one, goes to debug: it helps a developer, not a guard."""
        with self._lock:
            if cause == self._cause:
                self._log.debug("%s: still %s", self._name, cause)
                return False
            self._cause = cause
            logged = self._change(logging.WARNING, message or cause)
        if exc is not None:
            self._log.debug("%s: %s", self._name, cause, exc_info=exc)
        return logged

    def recovered(self, message: str = "recovered") -> None:
        """Log the recovery once, if a fault was logged."""
        with self._lock:
            if self._cause is None:
                return
            self._cause = None
            self._change(logging.INFO, message)

    def settle(self) -> None:
        """After an hour in which changes went unlogged, one line with the state now."""
        with self._lock:
            if self._untold and self._window_over(self._now()):
                level = logging.INFO if self._cause is None else logging.WARNING
                self._change(level, self._state, summary_only=True)

    def _window_over(self, now: int) -> bool:
        return self._window_ns is None or now - self._window_ns >= FLAP_WINDOW_S * 1_000_000_000

    def _change(self, level: int, text: str, *, summary_only: bool = False) -> bool:
        now = self._now()
        if not summary_only:
            self._state = text
        if self._window_over(now):
            if self._untold:
                minutes = (now - (self._window_ns or now)) // 60_000_000_000
                text += f" ({self._untold} changes not logged over the last {minutes} min)"
            self._window_ns, self._told, self._untold = now, 0, 0
        if self._told >= FLAP_LINES:
            self._untold += 1
            self._log.debug("%s: %s", self._name, text)
            return False
        self._told += 1
        if self._told == FLAP_LINES and not summary_only:
            text += "; changing often: further changes this hour are counted, not logged"
        self.lines += 1
        self._log.log(level, "%s: %s", self._name, text)
        return True
