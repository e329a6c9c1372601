"""One log line per change of a device's state, never one per retry or per frame.

A camera whose library cannot load fails the same way 15 times a second, a scanner that is
unplugged fails at every reconnect: logging each attempt (worse, with a traceback) fills the
journal (~1 GB a day) and hides the one line that says what happened. ``StateLog`` logs a
fault when its *cause* changes and the recovery once; repeats go to debug.

A device that *flaps* (a loose USB cable: lost and back every few seconds, for weeks) is held
to ``kiosk.logs.FlapLimit``: at most ``FLAP_LINES`` changes an hour, the rest counted and
said, with the state then, once the hour is over (``settle()``, from each driver's
``health()``, which the runner polls).

What a reader rejects (a line or a frame it cannot use) is no change of state, but it can
come many times a second for hours (a scanner on a noisy line, a camera whose driver hands
over broken frames): ``RejectionLog`` says each reason at once, then at most once every
``REJECTED_LOG_EVERY_S`` with how many like it were not logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from kiosk.clock import Clock
from kiosk.logs import FLAP_LINES, FlapLimit, OncePerInterval

__all__ = [
    "FLAP_LINES",
    "REJECTED_LOG_EVERY_S",
    "RejectionLog",
    "StateLog",
    "describe",
    "open_error",
]

#: A reader's rejections of one reason are logged at most this often (the rest counted).
REJECTED_LOG_EVERY_S = 60.0


def describe(exc: BaseException) -> str:
    """``TypeName: message``: a library's own error type tells a reader what failed."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_error(device: str, exc: OSError, hints: Mapping[int, str]) -> str:
    """Why ``device`` cannot be opened: what ``exc``'s errno means there and its fix, from the
    driver's ``hints``, else the operating system's own words."""
    return f"cannot open {device}: {hints.get(exc.errno or 0) or exc.strerror or describe(exc)}"


class StateLog:
    """Logs ``name``'s faults and recoveries once per change, at most ``FLAP_LINES`` an hour.

    ``clock`` (its monotonic time) times the hour; without one, the process's."""

    def __init__(self, logger: logging.Logger, name: str, clock: Clock | None = None) -> None:
        self._log = logger
        self._name = name
        self._cause: str | None = None
        self._state = ""  # what the last change said: the fault's message, or the recovery
        self._limit = FlapLimit(clock.monotonic_ns if clock else time.monotonic_ns)
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
            line = self._limit.settled(self._state)
            if line is not None:
                level = logging.INFO if self._cause is None else logging.WARNING
                self._emit(level, line)

    def _change(self, level: int, text: str) -> bool:
        self._state = text
        line = self._limit.change(text)
        if line is None:
            self._log.debug("%s: %s", self._name, text)
            return False
        self._emit(level, line)
        return True

    def _emit(self, level: int, line: str) -> None:
        self.lines += 1
        self._log.log(level, "%s: %s", self._name, line)


class RejectionLog:
    """A reader's "code rejected" lines: each reason at once, then at most once every
    ``REJECTED_LOG_EVERY_S``, saying how many like it were not logged since (those go to
    debug). ``clock`` (its monotonic time) times it; without one, the process's."""

    def __init__(self, logger: logging.Logger, name: str, clock: Clock | None = None) -> None:
        self._log = logger
        self._name = name
        self._now_ns = clock.monotonic_ns if clock else time.monotonic_ns
        self._every = OncePerInterval(REJECTED_LOG_EVERY_S)
        self._lock = threading.Lock()

    def rejected(self, reason: str) -> None:
        with self._lock:
            untold = self._every.due(self._now_ns() / 1e9, reason)
        if untold is None:
            self._log.debug("%s: code rejected (%s)", self._name, reason)
            return
        more = f"; {untold} more like it not logged since the last" if untold else ""
        self._log.info("%s: code rejected (%s)%s", self._name, reason, more)
