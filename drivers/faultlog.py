"""One log line per change of a device's state, never one per retry or per frame.

A camera whose library cannot load fails the same way 15 times a second, a scanner that is
unplugged fails at every reconnect: logging each attempt (worse, with a traceback) fills the
journal (~1 GB a day) and hides the one line that says what happened. ``StateLog`` logs a
fault when its *cause* changes and the recovery once; repeats go to debug.
"""

from __future__ import annotations

import logging


def describe(exc: BaseException) -> str:
    """``TypeName: message``: a library's own error type tells a reader what failed."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StateLog:
    """Logs ``name``'s faults and recoveries once per change."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self._log = logger
        self._name = name
        self._cause: str | None = None
        self.lines = 0

    @property
    def cause(self) -> str | None:
        """The fault last logged, or None while the device is fine."""
        return self._cause

    def fault(
        self, cause: str, message: str | None = None, exc: BaseException | None = None
    ) -> bool:
        """Log ``message`` (default ``cause``) if ``cause`` differs from the last; True if logged.

        The traceback, when there is one, goes to debug: it helps a developer, not a guard."""
        if cause == self._cause:
            self._log.debug("%s: still %s", self._name, cause)
            return False
        self._cause = cause
        self.lines += 1
        self._log.warning("%s: %s", self._name, message or cause)
        if exc is not None:
            self._log.debug("%s: %s", self._name, cause, exc_info=exc)
        return True

    def recovered(self, message: str = "recovered") -> None:
        """Log the recovery once, if a fault was logged."""
        if self._cause is None:
            return
        self._cause = None
        self.lines += 1
        self._log.info("%s: %s", self._name, message)
