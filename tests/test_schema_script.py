"""``kiosk.schema.execute_script``: a migration's SQL run statement by statement in its
transaction."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from kiosk.schema import execute_script

SCRIPT = """
    CREATE TABLE t (x TEXT);
    CREATE TRIGGER t_no_delete BEFORE DELETE ON t
        BEGIN SELECT RAISE(ABORT, 'no; never'); END;
    INSERT INTO t (x) VALUES ('a;b'), ('it''s; fine');
    ;
    INSERT INTO t (x) VALUES ('last, no semicolon')
"""


def test_trigger_bodies_and_literals_with_semicolons_stay_whole():
    db = sqlite_utils.Database(sqlite3.connect(":memory:"))
    with db.atomic():
        execute_script(db, SCRIPT)
    assert [r["x"] for r in db.query("SELECT x FROM t")] == [
        "a;b",
        "it's; fine",
        "last, no semicolon",
    ]
    with pytest.raises(sqlite3.IntegrityError, match="no; never"):
        db.execute("DELETE FROM t")


def test_the_statements_run_inside_the_callers_transaction():
    db = sqlite_utils.Database(sqlite3.connect(":memory:"))
    with pytest.raises(sqlite3.OperationalError), db.atomic():
        execute_script(db, "CREATE TABLE kept (x); CREATE TABLE broken (;")
    assert not db["kept"].exists()  # rolled back with the failing statement, not committed
