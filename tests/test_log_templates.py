"""The unit suite's template logs (``tests/log_templates.py``) make what migrating makes."""

from __future__ import annotations

import sqlite3

from sqlite_utils.migrations import Migrations

from kiosk import store
from kiosk.store import EventLog


def schema_of(path) -> dict[str, object]:
    """What a log's migrations made: its schema, the migrations recorded, its meta keys."""
    conn = sqlite3.connect(path)
    try:
        return {
            "schema": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
            "applied": conn.execute(
                "SELECT migration_set, name FROM _sqlite_migrations ORDER BY id"
            ).fetchall(),
            "meta": sorted(conn.execute("SELECT key FROM meta")),
            "user_version": conn.execute("PRAGMA user_version").fetchone(),
        }
    finally:
        conn.close()


def daemon_sets():
    from kiosk import accounts, ledgers, lists, peers, stats, tokens

    return [
        lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS, stats.MIGRATIONS,
        *ledgers.MIGRATIONS, peers.MIGRATIONS,
    ]  # fmt: skip


def test_a_log_started_from_the_template_is_the_log_its_migrations_make(
    tmp_path, clock, monkeypatch, _new_event_logs_start_from_a_template
):
    templates = _new_event_logs_start_from_a_template
    copied = templates.copied
    EventLog(tmp_path / "copied.db", "gate-1", clock, migrations=daemon_sets()).open().close()
    assert templates.copied == copied + 1
    real = store._open_connection
    monkeypatch.setattr(store, "_open_connection", lambda *a: real(*a))  # migrates for real
    EventLog(tmp_path / "migrated.db", "gate-1", clock, migrations=daemon_sets()).open().close()
    assert templates.copied == copied + 1
    assert schema_of(tmp_path / "copied.db") == schema_of(tmp_path / "migrated.db")


def test_a_log_is_only_copied_when_new_and_of_the_programs_own_sets(
    tmp_path, clock, _new_event_logs_start_from_a_template
):
    templates = _new_event_logs_start_from_a_template
    copied = templates.copied
    own = Migrations("kiosk.lists")
    calls: list[str] = []

    @own()
    def m001(db) -> None:
        calls.append("m001")

    EventLog(tmp_path / "own.db", "gate-1", clock, migrations=[own]).open().close()
    assert calls == ["m001"] and templates.copied == copied
    path = tmp_path / "again.db"
    EventLog(path, "gate-1", clock).open().close()
    EventLog(path, "gate-1", clock).open().close()  # an existing log is opened as it is
    assert templates.copied == copied + 1
