"""What ``kiosk purge`` says when it fails after its last transaction committed: the rows are
purged and audited then, so "nothing was changed" would be a lie (it was said until
2026-12-07). It says what was done, which step after it failed, and exits 1."""

from __future__ import annotations

import errno
import re
import sqlite3

import pytest
from test_store_full import draft

from checkpoint.cli import main
from checkpoint.cli.pull_cmd import _sets
from kiosk import retention
from kiosk.store import EventLog, StoreFault

PURGE = ["purge", "--older-than", "0", "--trust-clock", "--db"]


def a_log(tmp_path, clock):
    """A log as the verbs leave it (nothing to migrate), of three passages with names."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock, migrations=_sets()) as log:
        for _ in range(3):
            log.append(draft(person={"name": "Wang Lei", "phone": "13800138000"}))
    return db


def names_left(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE person IS NOT NULL").fetchone()[0]
    finally:
        conn.close()


def locked(*_args, **_kwargs):
    cause = sqlite3.OperationalError("database is locked")
    cause.sqlite_errorname = "SQLITE_BUSY"
    raise StoreFault("store_fault", "SQLITE_BUSY") from cause


def card_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", [locked, card_full], ids=["locked", "card-full"])
def test_a_purge_failing_after_its_last_commit_says_what_it_did(
    tmp_path, clock, capsys, monkeypatch, failing
):
    """The held decisions' files (``purge_held``) fail after the rows were purged."""
    db = a_log(tmp_path, clock)
    monkeypatch.setattr(retention, "purge_held", failing)

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert names_left(db) == 0  # purged, for good
    assert err.count("\n") == 1, err
    assert "nothing was changed" not in err and "nothing was purged" not in err
    assert "the purge itself is done and audited (3 events' personal fields emptied)" in err
    assert "only the held decisions' files (held-events-*.ndjson) after it failed" in err
    if failing is card_full:
        assert re.match(r"kiosk purge: the (card|disk) is full \(", err), err
    else:
        assert err.startswith("kiosk purge: purge failed: store_fault: SQLITE_BUSY; "), err


def test_the_wal_wipe_failing_after_the_commit_is_named(tmp_path, clock, capsys, monkeypatch):
    db = a_log(tmp_path, clock)
    monkeypatch.setattr(EventLog, "wipe_wal", locked)

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert names_left(db) == 0
    assert "the purge itself is done and audited" in err
    assert "only the WAL's wipe (the purged rows' old forms) after it failed" in err
