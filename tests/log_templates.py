"""Pre-migrated event logs for the test process (installed by ``tests/conftest.py``).

Every core a test builds opens a new event log, and a new log runs every migration of its
sets: ~5 ms of the writer's CPU each, ~2,000 times a unit-suite run. Here the first log of
each combination of the program's migration sets is migrated for real, in the session's temp
directory, checkpointed into one file and kept; every later *new* log of the same sets starts
as a copy of those bytes, and ``EventLog._initialise`` then runs on it as on any log (checks
the schema is not newer, applies what is pending: nothing, reads the salts and the tails).

Only what the real migrations would have made is copied, so only when nothing in the test
can make them differ: every set is one of the program's own (``kiosk.*.MIGRATIONS``) with the
steps it had when the session started (a test's own or patched set runs for real), the
connection factory is the real one (a test making the disk fail meets it on creation too),
and nothing is at the path yet (no log, WAL or journal). Anything else, or a copy that fails,
is the real path. The copies share the template's legacy salt (``meta``'s ``salt``), which
keys no row of a new log: its rows are keyed by their period's salts, made as they are
written.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The program's migration sets at the session's start: by identity, each with its steps.
_Steps = tuple[tuple[str, Callable[..., Any]], ...]


def _steps(migrations: Any) -> _Steps:
    return tuple((m.name, m.fn) for m in migrations._migrations)


def program_sets() -> dict[int, tuple[Any, _Steps]]:
    """Every ``MIGRATIONS`` of a ``kiosk`` module (a set, or a tuple of them), by ``id``."""
    import kiosk

    found: dict[int, tuple[Any, _Steps]] = {}
    for module in pkgutil.iter_modules(kiosk.__path__):
        sets = getattr(importlib.import_module(f"kiosk.{module.name}"), "MIGRATIONS", ())
        for s in sets if isinstance(sets, tuple) else (sets,):
            found[id(s)] = (s, _steps(s))
    return found


class LogTemplates:
    """The template logs of one test process, made in ``directory`` as first needed."""

    def __init__(self, directory: Path) -> None:
        from kiosk import store

        self.directory = directory
        self._store = store
        self._connect = store._open_connection
        self._program = program_sets()
        self._bytes: dict[tuple[int, ...], bytes] = {}
        self._lock = threading.Lock()
        self.copied = 0

    def key(self, log: Any) -> tuple[int, ...] | None:
        """The log's sets (the events' first, as ``_initialise`` applies them) when a copy of
        a template is what migrating it would make; None when it must migrate for real."""
        if self._store._open_connection is not self._connect:
            return None
        if log.path.parent == self.directory:
            return None  # a template being made
        sets = (self._store.MIGRATIONS, *log.migrations)
        for s in sets:
            known = self._program.get(id(s))
            if known is None or known[0] is not s or _steps(s) != known[1]:
                return None
        return tuple(id(s) for s in sets)

    def template(self, key: tuple[int, ...], log: Any) -> bytes:
        """The template of ``key``'s sets: made for real the first time, one file, no WAL."""
        with self._lock:
            if key not in self._bytes:
                path = self.directory / f"template-{len(self._bytes)}.db"
                made = self._store.EventLog(
                    path, "template", log.clock, migrations=log.migrations, boot_id="template"
                )
                made.open().close()
                conn = sqlite3.connect(path)
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.close()
                self._bytes[key] = path.read_bytes()
            return self._bytes[key]

    def copy_into(self, log: Any) -> None:
        """Put the template of ``log``'s sets at its path if it is new and may start as one."""
        key = self.key(log)
        if key is None:
            return
        path = Path(log.path)
        parts = [path, *(path.with_name(path.name + s) for s in ("-wal", "-journal", "-shm"))]
        if any(os.path.lexists(p) for p in parts):
            return
        try:
            data = self.template(key, log)
        except Exception:  # noqa: BLE001 - whatever it was, the real path meets it too
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The mode SQLite gives a database it creates (under the umask, as it does).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # the real path meets and reports what refused it
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError:
            path.unlink(missing_ok=True)
            return
        self.copied += 1

    def install(self, patch: Any) -> None:
        """Start every new log of ``kiosk.store.EventLog`` from its template, if it may."""
        real = self._store.EventLog._initialise

        def initialise(log: Any) -> None:
            self.copy_into(log)
            real(log)

        patch.setattr(self._store.EventLog, "_initialise", initialise)
