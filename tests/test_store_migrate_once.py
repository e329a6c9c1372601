"""Opening a log whose migrations are all applied reads its migrations table once (and its
form): the daemon's ~11 sets are not each re-checked (each read the table and its form twice)
at every start, nor at every core a test builds. A log with something pending, or with a
migrations table of an older form, migrates as before."""

from __future__ import annotations

import sqlite3

import pytest

from kiosk import accounts, lists, stats, tokens
from kiosk import store as store_mod
from kiosk.store import EventLog

SETS = (lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS, stats.MIGRATIONS)


def _traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the writer's connections run from now on."""
    seen: list[str] = []
    real = store_mod._open_connection

    def connect(path, timeout_s):
        conn = real(path, timeout_s)
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(store_mod, "_open_connection", connect)
    return seen


def _applied(path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    finally:
        conn.close()


def test_reopening_a_current_log_reads_its_migrations_table_once(tmp_path, clock, monkeypatch):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", clock, migrations=SETS).open().close()
    before = _applied(path)
    seen = _traced(monkeypatch)
    log = EventLog(path, "gate-1", clock, migrations=SETS).open()
    try:
        assert log.submit(lambda db: db["api_tokens"].exists())
    finally:
        log.close()
    reads = [s for s in seen if "_sqlite_migrations" in s and "sqlite_master" not in s]
    assert len(reads) <= 2, reads  # its rows, and its form (keyed by id)
    assert _applied(path) == before


def test_a_set_with_a_step_pending_is_applied_on_a_current_log(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", clock, migrations=SETS[:2]).open().close()
    EventLog(path, "gate-1", clock, migrations=SETS).open().close()
    sets = {row[0] for row in _applied(path)}
    assert {m.name for m in SETS} <= sets


def test_a_migrations_table_without_its_id_key_is_rebuilt_even_with_nothing_pending(
    tmp_path, clock
):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", clock, migrations=SETS).open().close()
    before = _applied(path)
    conn = sqlite3.connect(path)
    with conn:  # the table as an earlier sqlite-utils kept it: no integer key
        conn.execute("DROP INDEX IF EXISTS idx__sqlite_migrations_migration_set_name")
        conn.execute("ALTER TABLE _sqlite_migrations RENAME TO old_migrations")
        conn.execute(
            "CREATE TABLE _sqlite_migrations (migration_set TEXT, name TEXT, applied_at TEXT)"
        )
        conn.execute(
            "INSERT INTO _sqlite_migrations"
            " SELECT migration_set, name, applied_at FROM old_migrations"
        )
        conn.execute("DROP TABLE old_migrations")
    conn.close()
    EventLog(path, "gate-1", clock, migrations=SETS).open().close()
    conn = sqlite3.connect(path)
    try:
        pks = [r[1] for r in conn.execute("PRAGMA table_info(_sqlite_migrations)") if r[5]]
    finally:
        conn.close()
    assert pks == ["id"]
    assert sorted(_applied(path)) == sorted(before)


def test_opening_a_current_log_asks_its_schema_once(tmp_path, clock, monkeypatch):
    """Each opening (every core built, every verb, the daemon's start) asked SQLite's schema
    ~40 times: three times a set to name the migrations it has (on an empty database), three
    more to find the migrations table, three for its form, once more for the digest salts.
    Now once, on the log (the sets' migrations are named without a query)."""
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", clock, migrations=SETS).open().close()
    seen: list[str] = []
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    log = EventLog(path, "gate-1", clock, migrations=SETS).open()
    log.close()
    assert sum("sqlite_master" in s for s in seen) == 1, seen
