"""A change and its audit row, in one transaction, wherever the change is asked for.

A ledger (returnees, service requests, the roster and handovers, the compound map, the
resident vehicles, the lists) writes each change with ``audited_write(log, fn, actor, action,
detail)``: ``fn`` makes the change and the row saying who made it, what changed and from what
to what is inserted in the same write transaction (``EventLog.submit_audited``). If the row
cannot be written (the disk is full, the process dies before the commit) the change is rolled
back with it: no change is ever on record without its row, and no row without its change.

A caller that audits its requests itself — the guard console's route class
(``ui.guard.deps.audited_route``) — runs each request inside ``auditing_request(detail)``:
the row of a change made for the request then also carries the request's own detail
(``detail()``, what the route noted) and ``outcome: ok``, and the request learns which rows
were written (``RequestAudit.written``), so it never writes a second row for the same change.

A row the storage cannot take at all (a full or read-only card) while what it records must go
ahead — a guard signing in to take the gate over by hand during that very outage — waits in
``HeldRows``: in memory, in order, bounded, each with the moment it happened (``held_at`` in
its detail; the row's own ``ts`` is when it was written), and is written once the storage
works again. A restart before then loses it, and says so in the log (``HeldRows.close``).
Rows due now that must come after the held ones go through ``HeldRows.write`` in one thread:
each is written or held there, by its write's own outcome, so a caller cancelled meanwhile (a
stop) neither loses one nor holds one whose write went through (written twice).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlite_utils

from .ports import AuditedWriter
from .store import StoreFault, format_ts

__all__ = ["Change", "HeldRows", "RequestAudit", "audited_write", "auditing_request"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``(actor, action, detail)`` of one change.
Change = tuple[str, str, dict[str, Any]]


@dataclass
class RequestAudit:
    """One audited request: ``detail()`` is what the request itself says (read when a change
    is written); ``written`` the rows of the changes made for it, in order."""

    detail: Callable[[], Mapping[str, Any]]
    written: list[Change] = field(default_factory=list)


_REQUEST: ContextVar[RequestAudit | None] = ContextVar("kiosk_audit_request", default=None)


def audited_write(
    log: AuditedWriter,
    fn: Callable[[sqlite_utils.Database], T],
    actor: str,
    action: str,
    detail: Callable[[T], Mapping[str, Any]],
) -> T:
    """Run ``fn(db)`` and insert its audit row (``actor``, ``action``, ``detail(result)``) in
    one write transaction; return ``fn``'s result. Inside ``auditing_request`` (in this
    context or the one a worker thread copied from it) the row also carries the request's
    detail and ``outcome: ok``, and is recorded as written for the request."""
    request = _REQUEST.get()
    extra: dict[str, Any] = {} if request is None else {**request.detail(), "outcome": "ok"}
    rows: list[dict[str, Any]] = []

    def row(result: T) -> dict[str, Any]:
        rows.append({**extra, **detail(result)})
        return rows[-1]

    result = log.submit_audited(fn, actor, action, row)
    if request is not None:
        request.written.append((actor, action, rows[-1]))
    return result


@contextlib.contextmanager
def auditing_request(detail: Callable[[], Mapping[str, Any]]) -> Iterator[RequestAudit]:
    """Changes written inside the block (and in threads started from it, which copy the
    context) carry ``detail()`` and are listed in the yielded ``RequestAudit``."""
    request = RequestAudit(detail)
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)


class AuditWriter(Protocol):
    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append one row to the chained audit table; ``StoreFault`` when it cannot."""
        ...


class HeldRows:
    """Audit rows the storage could not take, waiting in memory to be written, oldest first.

    At most ``max_rows``; a row that is not ``essential`` (a refusal: a failed sign-in) leaves
    the last ``reserve`` places free, so refusals (which anyone can cause) never crowd out the
    rows of what was let go ahead (a guard's sign-in). A row with no room is not kept: a
    refusal is counted (``dropped``; written as one ``audit.held_rows_lost`` row after the held
    ones), an essential one is refused (``hold`` answers False: the caller does not go ahead).
    Thread-safe; one flush at a time."""

    def __init__(self, *, max_rows: int = 200, reserve: int = 50) -> None:
        self._rows: deque[Change] = deque()
        self._max, self._reserve = max_rows, min(reserve, max_rows)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self.dropped = 0
        #: Rows handed to ``write`` it has not written or held yet (a write under way).
        self._taken = 0

    def __len__(self) -> int:
        return len(self._rows)

    def hold(
        self,
        actor: str,
        action: str,
        detail: Mapping[str, Any],
        at: datetime,
        *,
        essential: bool,
        taken: int = 0,
    ) -> bool:
        """Keep the row (``detail`` plus ``held_at``: ``at``) if there is room for it.
        ``taken``: the rows of a ``write`` this settles, counted down with it (``write``'s)."""
        room = self._max if essential else self._max - self._reserve
        with self._lock:
            self._taken -= taken
            if len(self._rows) >= room:
                if not essential:
                    self.dropped += 1
                full = True
            else:
                self._rows.append((actor, action, {**detail, "held_at": format_ts(at)}))
                full = False
            held = len(self._rows)
        if full:
            log.error(
                "audit row %s not kept: %d row(s) already held in memory while the storage fails",
                action,
                held,
            )
            return False
        log.warning(
            "audit row %s held in memory (%d held): the storage failed; written once it works"
            " again, a restart before then loses it",
            action,
            held,
        )
        return True

    def flush(self, writer: AuditWriter) -> int:
        """Write the held rows in order; stop at the first the storage refuses (kept for the
        next try). Returns how many were written. Blocking (database writes): a caller tries
        it before writing a row of its own, so the rows keep their order once it works."""
        if not self._rows and not self.dropped:
            return 0
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing them
        try:
            return self._write(writer)
        finally:
            self._flushing.release()

    def _write(self, writer: AuditWriter) -> int:
        written = 0
        try:
            while self._rows:
                actor, action, detail = self._rows[0]
                writer.audit(actor, action, detail)
                with self._lock:
                    self._rows.popleft()
                written += 1
            if self.dropped:
                with self._lock:
                    lost, self.dropped = self.dropped, 0
                try:
                    writer.audit("system", "audit.held_rows_lost", {"rows": lost})
                except StoreFault:
                    with self._lock:
                        self.dropped += lost
                    raise
        except StoreFault as exc:
            log.debug("held audit rows: the storage still fails (%s)", exc.detail or exc)
        if written:
            log.warning("held audit rows: %d written, %d still held", written, len(self._rows))
        return written

    def write(self, writer: AuditWriter, rows: Sequence[Change], at: datetime) -> int:
        """The held rows (``flush``), then each of ``rows`` written, or held (not essential,
        ``held_at``: ``at``) while rows are still held before it or when the storage refuses
        it; returns how many of ``rows`` were written. Blocking: run whole in one thread, so
        the write and the hold of a row are decided there, by that write's own outcome: a
        caller cancelled meanwhile (a stop) neither loses a row nor holds one whose write
        went through. ``unwritten`` counts the rows it has neither written nor held yet."""
        with self._lock:
            self._taken += len(rows)
        written = settled = 0
        try:
            self.flush(writer)
            for actor, action, detail in rows:
                if not self._rows:  # else it waits behind them (a flush stopped partway)
                    try:
                        writer.audit(actor, action, detail)
                    except StoreFault:
                        pass
                    else:
                        with self._lock:
                            self._taken -= 1
                        settled += 1
                        written += 1
                        continue
                settled += 1  # counted down by the hold, under its lock
                self.hold(actor, action, detail, at, essential=False, taken=1)
        finally:
            with self._lock:  # a bug's exception: the rows not settled are not counted
                self._taken -= len(rows) - settled
        return written

    def unwritten(self) -> int:
        """Rows not written yet: held, or in a ``write`` or ``flush`` still under way (a
        storage that does not answer); the rows not kept are ``dropped``."""
        with self._lock:
            return len(self._rows) + self._taken

    def close(self, writer: AuditWriter | None = None) -> None:
        """At a stop: one last try (with ``writer``), then say in the log what is lost."""
        if writer is not None:
            self.flush(writer)
        left = self.unwritten()
        if left or self.dropped:
            log.error(
                "stopping: %d audit row(s) held in memory were not written (the storage"
                " failed); %d more were not kept",
                left,
                self.dropped,
            )
