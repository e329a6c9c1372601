"""Personal data removed before its retention is up: gone from the disk, not only from the table.

The event log zeroes what a delete frees in its pages (``PRAGMA secure_delete``), but in WAL
mode every change goes to ``kiosk.db-wal`` first, and the WAL keeps the page images from before
it (the quarantine entry with its holder's name and note, as it was) until a checkpoint copies
the newest page into ``kiosk.db`` *and* the WAL is truncated: a checkpoint alone rewinds the WAL
but leaves its old frames in the file until later commits happen to write over them. Retention
wipes it after each purge (``EventLog.wipe_wal``). A removal ahead of retention does it right
after its commit — a guard lifting a quarantine early, taking a household off the ledger or
lifting a revocation (its reason goes), an import of the vehicle list or the compound map
that drops or rewrites a row (the plates and households it drops; not one that only adds rows
or writes them again as they were: ``kiosk.community.replace_rows``), a peer's passages
dropped because its gate did not open for them, trimmed past the look-back or held of a log
the peer started again (their pass ids and households):

* ``owe_wipe(store, db)`` in the removing transaction records that a wipe is owed (the ``meta``
  row retention keeps, ``WIPE_OWED_KEY``): a process that dies before its wipe leaves it to the
  next purge, which does a wipe owed whether or not it removes anything itself;
* ``wipe_removed(store)`` after the commit checkpoints and truncates the WAL (on the writer, at
  most ``kiosk.store.WIPE_WAIT_MS`` for a reader) and settles the debt. A reader that held the
  wipe up, or a storage fault, leaves the debt to the next purge (the daemon's, within the
  hour); the removal stands either way.

A store without a WAL to wipe (not ``kiosk.store.EventLog``) takes neither: nothing is owed.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

import sqlite_utils

from .clock import Clock
from .store import StoreFault, format_ts

__all__ = [
    "WIPE_OWED_FIRST_KEY",
    "WIPE_OWED_KEY",
    "WalWiper",
    "owe_wipe",
    "owe_wipe_at",
    "owed_for",
    "owed_since",
    "settle_wipe",
    "wipe_if_owed",
    "wipe_removed",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The ``meta`` key present while a WAL wipe is owed: set in the transaction of a purge or a
#: removal that removed anything, deleted once a wipe completed. A wipe a reader held up (a
#: long export) is so tried again by the next purge, even one that finds nothing new to remove
#: (``kiosk.retention``).
WIPE_OWED_KEY = "retention.wal_wipe_owed"
#: The ``meta`` key of when the debt (``WIPE_OWED_KEY``) was first owed, by a synchronised
#: clock, kept while one is: the debt's own date is the latest removal's (a wipe starting
#: after it settles it), so a wipe a reader held up every hour, owed anew by each purge,
#: said nothing of how long it had been owed. Owed ``kiosk.retention.OVERDUE_AFTER``, it is
#: the ``wipe_failed`` card (``kiosk.retention.overdue``). Added 2026-12-07.
WIPE_OWED_FIRST_KEY = "retention.wal_wipe_owed_first"


@runtime_checkable
class WalWiper(Protocol):
    """What a removal needs of the event log to wipe its WAL (``kiosk.store.EventLog``)."""

    clock: Clock

    def wipe_wal(self) -> bool:
        """Checkpoint and truncate the WAL; False when a reader kept it from completing."""
        ...

    def submit(self, fn: Callable[[sqlite_utils.Database], T]) -> T: ...

    def reader(self) -> sqlite_utils.Database: ...


def owe_wipe(store: object, db: sqlite_utils.Database) -> None:
    """In the transaction that removes personal data from ``store``'s database: a WAL wipe is
    owed (``wipe_removed`` after the commit settles it)."""
    if isinstance(store, WalWiper):
        owe_wipe_at(db, store.clock.now(), dated=store.clock.synced())


def owe_wipe_at(db: sqlite_utils.Database, now: datetime, *, dated: bool = True) -> None:
    """Record in the transaction that removed something that a WAL wipe is owed, since
    ``now`` (a later debt replaces an earlier one: one wipe after it settles both), and,
    ``dated`` (``now`` by a synchronised clock, or a purge's), when it was first owed
    (``WIPE_OWED_FIRST_KEY``) if it was not owed already: a clock NTP has not set leaves
    that to the next purge."""
    stamp = format_ts(now)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [WIPE_OWED_KEY, stamp])
    if dated:
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", [WIPE_OWED_FIRST_KEY, stamp]
        )


def owed_since(db: sqlite_utils.Database) -> str | None:
    """The debt a wipe starting now settles (its ``meta`` value), None when none is owed."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [WIPE_OWED_KEY]).fetchone()
    return None if row is None else str(row[0])


def settle_wipe(db: sqlite_utils.Database, since: str) -> None:
    """The wipe that found the debt ``since`` (``owed_since`` before it began) is done. Only
    that debt: a removal committed while it ran (another thread's) owes its own, settled by
    the next wipe, never by this one."""
    db.execute("DELETE FROM meta WHERE key = ? AND value = ?", [WIPE_OWED_KEY, since])
    left = owed_since(db)  # a removal's since the wipe began: owed from then
    if left is None:
        db.execute("DELETE FROM meta WHERE key = ?", [WIPE_OWED_FIRST_KEY])
    else:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", [left, WIPE_OWED_FIRST_KEY])


def owed_for(db: sqlite_utils.Database | sqlite3.Connection, now: datetime) -> float | None:
    """How many seconds, by the wall clock ``now``, a WAL wipe has been owed
    (``WIPE_OWED_FIRST_KEY``); None when none is, or its first date is not known yet. A
    clock behind that date (set back, not set yet) reads it as owed from now: never early."""
    if db.execute("SELECT 1 FROM meta WHERE key = ?", [WIPE_OWED_KEY]).fetchone() is None:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = ?", [WIPE_OWED_FIRST_KEY]).fetchone()
    try:
        first = datetime.fromisoformat(str(row[0]).replace("Z", "+00:00")) if row else None
    except ValueError:
        return None
    if first is None or first.tzinfo is None:
        return None
    return max(0.0, (now - first).total_seconds())


def wipe_removed(store: object) -> bool:
    """After a removal committed (``owe_wipe`` in its transaction): the WAL checkpointed into
    the file and truncated, so the removed rows' old page images are gone. True when done;
    False when it waits for the next purge (a reader held it up, the storage failed: said in
    the log, without what was removed), or ``store`` has no WAL to wipe."""
    if not isinstance(store, WalWiper):
        return False
    try:
        since = owed_since(store.reader())
        if store.wipe_wal():
            if since is not None:
                store.submit(lambda db: settle_wipe(db, since))
            return True
        log.info("a removal's old rows wait in the WAL for the next purge: a reader held it")
    except (StoreFault, sqlite3.Error) as exc:
        why = (exc.detail or exc.reason) if isinstance(exc, StoreFault) else type(exc).__name__
        log.warning("the WAL was not wiped after a removal (%s); the next purge wipes it", why)
    return False


def wipe_if_owed(store: object) -> bool:
    """``wipe_removed`` when a wipe is owed (a change that may have removed something
    recorded it: ``owe_wipe``); False when none is, or it waits for the next purge."""
    if not isinstance(store, WalWiper):
        return False
    return owed_since(store.reader()) is not None and wipe_removed(store)
