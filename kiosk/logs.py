"""Structured log lines on stderr (journald stores them; `journalctl -o cat` reads them).

One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and any ``extra=`` fields.
Personal data (names, phone or ID numbers, households, pass ids) is never passed to a logger;
as a second line of defence, numbers that look like phone or ID numbers (however they are
written, and inside ``extra=`` values too) are masked here.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kiosk.privacy import scrub_text

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Mainland mobile numbers (11 digits starting 1) and 15/18-character resident ID numbers.
_PERSONAL_NUMBER = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|\d{17}[\dXx]|\d{15})(?!\d)")


def redact(text: str) -> str:
    """Phone- and ID-shaped numbers masked: unbroken ones here, then any written with
    spaces, dashes or full-width digits by ``kiosk.privacy.scrub_text``."""
    text = _PERSONAL_NUMBER.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 3), text)
    return scrub_text(text)


def _redact_value(value: Any) -> Any:
    """``redact`` on every string of an ``extra=`` value (numbers stay numbers)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return value


#: Changes of one thing's state logged in full per ``FLAP_WINDOW_S`` (``FlapLimit``).
FLAP_LINES = 6
FLAP_WINDOW_S = 3600


class FlapLimit:
    """Which changes of one thing's state (a device's fault, its recovery) are logged.

    A device that *flaps* (a loose cable: lost and back every few seconds, for weeks) changes
    state all the time: at most ``FLAP_LINES`` changes are logged per ``FLAP_WINDOW_S``, the
    first in full; the rest are counted. Once the hour is over the next change, or
    ``settled`` (asked often: a driver's ``health()``, the engine's tick), says the state
    then and how many changes were not logged, so the journal's last word is the state.
    ``now`` is a monotonic clock in nanoseconds."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._window_ns: int | None = None
        self._told = 0  # changes logged since the window began
        self._untold = 0  # changes counted, not logged, since then

    def change(self, text: str) -> str | None:
        """The line to log for a change said as ``text``, or None: counted, not logged."""
        line = self._new_window(text)
        if self._told >= FLAP_LINES:
            self._untold += 1
            return None
        self._told += 1
        if self._told == FLAP_LINES:
            line += "; changing often: further changes this hour are counted, not logged"
        return line

    def settled(self, state: str) -> str | None:
        """After an hour in which changes went unlogged, the line saying ``state`` (the
        thing's state now) with their count; else None."""
        if not self._untold or not self._window_over(self._now()):
            return None
        line = self._new_window(state)
        self._told = 1
        return line

    def _window_over(self, now: int) -> bool:
        return self._window_ns is None or now - self._window_ns >= FLAP_WINDOW_S * 1_000_000_000

    def _new_window(self, text: str) -> str:
        """``text``, and a new window begun (with the count of the last one's unlogged
        changes behind ``text``) if the last one is over."""
        now = self._now()
        if not self._window_over(now):
            return text
        if self._untold:
            minutes = (now - (self._window_ns or now)) // 60_000_000_000
            text += f" ({self._untold} changes not logged over the last {minutes} min)"
        self._window_ns, self._told, self._untold = now, 0, 0
        return text


class OncePerInterval:
    """Lines anyone can cause at will (a script on the LAN: a refused host, an accept error,
    a malformed request): of each kind, one is logged per ``every_s`` and the ones between
    are counted, so the next one logged can say how many were not. ``now`` is a monotonic
    clock in seconds, passed in by the caller."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._untold: dict[str, int] = {}

    def due(self, now: float, kind: str = "") -> int | None:
        """``None``: one of ``kind`` was logged less than ``every_s`` ago, this one is counted,
        not logged. Else log it now: how many were not since the last one logged (0: none)."""
        last = self._last.get(kind)
        if last is not None and now - last < self.every_s:
            self._untold[kind] = self._untold.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._untold.pop(kind, 0)


class RepeatedFailure:
    """A task run again and again on a timer (the engine's tick, the daemon's list check)
    that keeps failing the same way: its traceback is logged once per kind of error (the
    exception's type) and its recovery once; the repeats go to debug. Without it a failing
    card or a bug wrote a traceback per run, thousands an hour in the journal on the card."""

    def __init__(self, logger: logging.Logger, failed: str, working: str) -> None:
        self._log = logger
        self._failed = failed
        self._working = working
        self._cause: str | None = None

    def failed(self, exc: BaseException) -> None:
        """Call in the ``except`` block of a run that failed with ``exc``."""
        cause = type(exc).__name__
        if cause == self._cause:
            self._log.debug("%s again: %s", self._failed, cause)
            return
        self._cause = cause
        self._log.error("%s (said again only if it fails otherwise)", self._failed, exc_info=exc)

    def worked(self) -> None:
        """Call after a run that did not fail: says so once after failures."""
        if self._cause is not None:
            self._cause = None
            self._log.info("%s", self._working)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "color_message" and not key.startswith("_"):
                line[key] = _redact_value(value)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would print client addresses and query strings per request.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx says every request at INFO: a peer poll every 10 s was ~8,600 journal lines a day
    # per peer on the card, saying nothing a failure does not. Debugging shows them.
    quiet = root.level > logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.WARNING if quiet else logging.NOTSET)
