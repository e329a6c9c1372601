"""Migration sets written as SQL: a module's tables stated once, in the database's own terms."""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

#: Every migration set this program has, by name (each module's ``MIGRATIONS``; the daemon opens
#: its log with all of them, a maintenance verb with those it uses). A log that records a set
#: not named here was written by a later version, which keeps that set's tables in step with
#: the events: this one must not write events they would never hear of.
PROGRAM_SETS = frozenset(
    {
        "kiosk.events",
        "kiosk.lists",
        "kiosk.tokens",
        "kiosk.accounts",
        "kiosk.stats",
        "kiosk.observation",
        "kiosk.services",
        "kiosk.compound",
        "kiosk.vehicles",
        "kiosk.roster",
        "kiosk.peers",
    }
)


def sql_migrations(set_name: str, **steps: str) -> Migrations:
    """The migration set ``set_name`` with one migration a keyword, in order: its name is the
    keyword (recorded in each database, so never rename one), its body SQL statements split
    at ``;`` (plain DDL: no trigger bodies or string literals holding one)."""
    migrations = Migrations(set_name)
    for name, sql in steps.items():
        _add_step(migrations, name, sql)
    return migrations


def _add_step(migrations: Migrations, name: str, sql: str) -> None:
    statements = [s.strip() for s in sql.split(";") if s.strip()]

    # One ``execute`` a statement keeps the step inside the migration's transaction;
    # ``executescript`` would commit first, so a failing step could leave half a schema.
    @migrations(name=name)
    def run(db: Database) -> None:
        for statement in statements:
            db.execute(statement)


def execute_script(db: Database, sql: str) -> None:
    """Run the statements of ``sql`` one ``execute`` each, inside the caller's transaction
    (``sqlite3.executescript`` would commit first). A statement ends at the ``;`` that
    completes it (``sqlite3.complete_statement``: trigger bodies and string literals stay
    whole). Checking only at each ``;`` keeps this linear in the script's length, where
    sqlite_utils' ``executescript`` in a transaction re-joins and re-checks the statement at
    every character (milliseconds a schema, at each new database)."""
    *pieces, tail = sql.split(";")
    statement = ""
    for piece in pieces:
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \t\r\n;"):
                db.execute(statement.strip())
            statement = ""
    if (statement + tail).strip():
        db.execute((statement + tail).strip())
