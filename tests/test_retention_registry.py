"""Every table that is kept is under a retention rule, and docs/privacy.md says which.

The gate's database grew tables with each session (returnees, service requests, vehicles,
peers' passages, ...), and the privacy document's table of stores fell behind: ``obs_acks``,
``peer_cursors``, ``boot_clock`` and others were in no row of it. ``kiosk.retention.STORES``
(the gate) and ``office.retention.STORES`` (the office's copy) declare each table's personal
data and what prunes it; a table the program creates without an entry fails here, and so does
an entry docs/privacy.md's table has no row for."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from kiosk import accounts, ledgers, lists, peers, stats, tokens
from kiosk.clock import FakeClock
from kiosk.retention import STORES
from kiosk.schema import PROGRAM_SETS
from kiosk.store import EventLog
from office import pg, pull
from office.retention import STORES as OFFICE_STORES

DOC = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"


def _tables(conn: sqlite3.Connection) -> set[str]:
    names = {t for (t,) in conn.execute("select name from sqlite_master where type = 'table'")}
    return {t for t in names if not t.startswith(("sqlite_", "_"))}


def _documented() -> set[str]:
    """The table names in the first column of privacy.md's table of stores."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Where personal data lives", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| where"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_every_table_of_the_gates_database_has_a_retention_rule(tmp_path):
    sets = [lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS, stats.MIGRATIONS]
    sets += [*ledgers.MIGRATIONS, peers.MIGRATIONS]
    assert {s.name for s in sets} | {"kiosk.events"} == PROGRAM_SETS  # a new set joins here
    with EventLog(tmp_path / "kiosk.db", "gate-1", FakeClock(), migrations=sets):
        pass
    conn = sqlite3.connect(tmp_path / "kiosk.db")
    try:
        assert _tables(conn) == set(STORES)
    finally:
        conn.close()


def test_every_table_of_the_offices_copy_has_a_retention_rule():
    conn = sqlite3.connect(":memory:")
    conn.executescript(pull.SCHEMA)
    in_pg = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", pg.SCHEMA))
    assert _tables(conn) | in_pg == set(OFFICE_STORES)


def test_privacy_md_has_a_row_for_every_store():
    assert set(STORES) | set(OFFICE_STORES) <= _documented()
