"""When each device's standing fault began, as the health reports say it (``fault_since``),
kept across a daemon restart.

The guard's alarm desk tells one fault from the next by its start (``kiosk.alarms.Alarm.since``):
a card a guard closed stays closed while its fault stands since before the close. The starts
are kept in the log's ``meta`` table (``FAULT_SINCE_KEY``), written on the log's writer
thread whenever they change (never waited for: a health report is asked on the loop too),
and read back by the first report after a start: a fault still standing keeps its start (the
same incident, the guard's close of it read back still closing it), one that cleared while
the daemon was down is gone (it comes back as a new incident).

A fault the engine holds is dated by the engine's raise (``Engine.fault_began``): one that
cleared and came back between two reports (the health loop polls every ``idle_probe_s``) has
a new start though both reports saw it standing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Protocol

from sqlite_utils import Database

from kiosk.clock import Clock, ClockReading

log = logging.getLogger(__name__)

#: The ``meta`` key of the starts: JSON ``{device: since}``.
FAULT_SINCE_KEY = "faults.since"


class StartsStore(Protocol):
    """The event log as the starts are kept in it."""

    def reader(self) -> Database: ...

    def submit_later(self, fn: Callable[[Database], None]) -> Future[None]: ...


def read_starts(store: StartsStore) -> dict[str, str] | None:
    """The starts kept (``FAULT_SINCE_KEY``): none when none were kept or the value is
    damaged (every standing fault is then a new incident, the safe side); None when the log
    refused the read (a busy or failing card, said by the log itself): to be read again."""
    try:
        row = (
            store.reader()
            .execute("SELECT value FROM meta WHERE key = ?", [FAULT_SINCE_KEY])
            .fetchone()
        )
    except Exception as exc:  # noqa: BLE001 - read again at the next report
        log.debug("the faults' starts not read back yet: %s", type(exc).__name__)
        return None
    try:
        kept = json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        log.warning("the faults' starts kept in the log are damaged: none taken")
        return {}
    if not isinstance(kept, dict):
        return {}
    return {str(k): v for k, v in kept.items() if isinstance(v, str) and v}


def _write_starts(starts: Mapping[str, str]) -> Callable[[Database], None]:
    text = json.dumps(dict(sorted(starts.items())))

    def write(db: Database) -> None:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [FAULT_SINCE_KEY, text]
        )

    return write


class FaultStarts:
    """The starts of the faults standing now, safe to ask from several threads at once (the
    console's pages, the health loop): each new fault is dated once, by the first report
    that has it."""

    def __init__(self, store: StartsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        #: device -> its start.
        self._since: dict[str, str] = {}
        #: Until the kept starts are read back (a read the log refused is tried again at the
        #: next report; nothing is written over them meanwhile): the devices failing at
        #: every report so far, whose kept start still stands. None once read back.
        self._unread: set[str] | None = None
        self._reading = True
        #: device -> the engine's raise of its fault (monotonic), as the last report saw it.
        self._raised: dict[str, int] = {}
        #: What the log was last handed to keep.
        self._kept: dict[str, str] | None = None

    def began(self, failing: Iterable[str], raised: Mapping[str, int]) -> dict[str, str]:
        """When each device of ``failing`` began failing (``raised``: the engine's raise of
        each fault it holds, monotonic): its known start, the start kept before a restart, or
        this report's time for a new one (the engine's raise, when it holds it); a new start
        too when the engine raised it again since the last report (gone and back between
        two reports). Kept in the log when they changed."""
        with self._lock:
            now = ClockReading.take(self._clock)
            failing = set(failing)
            if self._reading:
                self._read_back(failing)
            began: dict[str, str] = {}
            for device in sorted(failing):
                stamp, seen = raised.get(device), self._raised.get(device)
                known = self._since.get(device)
                if known is None or (stamp is not None and seen is not None and stamp != seen):
                    at = now.wall_at(stamp) if stamp is not None else now.wall
                    known = min(at, now.wall).isoformat()
                began[device] = known
            self._since = began
            self._raised = {d: s for d, s in raised.items() if d in began}
            if not self._reading and began != self._kept:
                self._keep(began)
            return dict(began)

    def _read_back(self, failing: set[str]) -> None:
        """Take the starts kept before the start, once the log gives them: those of the
        devices failing at every report since (one seen not failing cleared meanwhile)."""
        standing = failing if self._unread is None else self._unread & failing
        kept = read_starts(self._store)
        if kept is None:
            self._unread = standing
            return
        self._since.update((d, kept[d]) for d in standing if d in kept)
        self._kept, self._unread, self._reading = kept, None, False

    def _keep(self, began: dict[str, str]) -> None:
        """Hand the log ``began`` to keep (call with ``_lock`` held, so the writes keep the
        reports' order). One not taken (the log closed) is handed again by the next report;
        one the storage refused is said, and the next change writes them all (a failing
        card is the store's fault, whose end is such a change)."""
        try:
            done = self._store.submit_later(_write_starts(began))
        except Exception as exc:  # noqa: BLE001 - the starts stay in memory meanwhile
            log.warning("the faults' starts could not be kept: %s", type(exc).__name__)
            self._kept = None
            return
        self._kept = dict(began)
        done.add_done_callback(self._said)

    @staticmethod
    def _said(done: Future[None]) -> None:
        exc = done.exception()
        if exc is not None:
            log.warning("the faults' starts could not be kept: %s", type(exc).__name__)
