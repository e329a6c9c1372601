"""Tamper evidence beyond the local file (issue 15, finding 10).

Three ways someone who can read and write the kiosk's file hides what happened, each checked
with ``kiosk verify-log`` as an operator runs it:

* a faked purge (personal fields nulled, ``purged_at`` set) of a row no audited purge covers;
* the tail deleted and ``meta``'s high-water mark lowered to match (the local chain is whole);
* a row edited and every digest and hash after it recomputed with the salts in the file.

The last two pass a local check by construction; ``--against`` the office's pulled copy names
the first row where the two disagree."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from support import need

from checkpoint.cli import main
from kiosk import hashchain, retention, store
from kiosk.store import EventDraft, EventLog
from office.pull import SqliteTarget, write_page

TRIGGERS = (
    "events_append_only_delete",
    "events_append_only_update",
    "audit_append_only_delete",
    "audit_append_only_update",
)


def shell(path, *statements, params=()) -> None:
    """Edit the file behind the log's back, as someone with a shell could."""
    conn = sqlite3.connect(path)
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for sql in statements:
        conn.execute(sql, params)
    conn.commit()
    conn.close()


@pytest.fixture
def kiosk_db(tmp_path, clock):
    """40 days of a gate, a retention purge at 30 days, and 10 recent events."""
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock) as log:
        for i in range(20):
            log.append(
                EventDraft(
                    direction="out" if i % 2 else "in",
                    decision="pass",
                    pass_id=f"P-{i}",
                    household="B1-101",
                    holder=f"Resident {i}",
                    temp_c=36.4,
                )
            )
            clock.advance(4 * 86400 if i < 10 else 3600)
        retention.purge(log, 30, clock.now())
    return path


@pytest.fixture
def central(tmp_path, kiosk_db):
    """The office's copy, as ``kiosk pull --into FILE`` keeps it."""
    path = tmp_path / "office.db"
    conn = SqliteTarget(path).conn
    with EventLog(kiosk_db, "gate-1", None) as log:  # type: ignore[arg-type]
        rows = log.events(limit=1000)
    write_page(conn, "http://gate-1:8000", "gate-1", rows)
    conn.close()
    return path


def verify(*args: str) -> int:
    return main(["verify-log", *args])


def test_an_audited_purge_verifies_and_a_faked_one_is_named(kiosk_db, capsys):
    assert verify("--db", str(kiosk_db)) == 0
    conn = sqlite3.connect(kiosk_db)
    purged = conn.execute("SELECT count(*) FROM events WHERE purged_at IS NOT NULL").fetchone()
    assert purged[0] > 0  # the retention purge covered the old rows
    conn.close()
    # A row from three days ago "purged" by hand: the personal digest is no longer checked
    # once purged_at is set, and the chain does not cover personal fields. The audit does.
    shell(
        kiosk_db,
        "UPDATE events SET pass_id = NULL, household = NULL, holder = NULL, person = NULL,"
        " purged_at = '2026-04-10T00:00:00.000000Z' WHERE seq = 17",
    )
    capsys.readouterr()
    assert verify("--db", str(kiosk_db)) == 1
    err = capsys.readouterr().err
    assert "events seq 17: purged, but no audited purge covers it" in err


def test_a_shortened_log_with_a_lowered_high_water_mark_is_caught_against_the_office(
    kiosk_db, central, capsys
):
    shell(
        kiosk_db,
        "DELETE FROM events WHERE seq > 15",
        "UPDATE meta SET value = '15' WHERE key = 'events.seq'",
    )
    assert verify("--db", str(kiosk_db)) == 0  # locally consistent: nothing to see
    capsys.readouterr()
    assert verify("--db", str(kiosk_db), "--against", str(central)) == 1
    err = capsys.readouterr().err
    assert "events seq 16: in the office's copy but not in the kiosk's file" in err


def recompute_chain_from(path, seq: int) -> None:
    """Rewrite every digest and hash from ``seq`` on, with the salts in the file."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    keys = store.digest_keys(conn)
    prev = conn.execute("SELECT hash FROM events WHERE seq = ?", [seq - 1]).fetchone()[0]
    for stored in conn.execute("SELECT * FROM events WHERE seq >= ? ORDER BY seq", [seq]):
        row = dict(stored)
        for name in ("reasons", "flags", "person"):
            row[name] = json.loads(row[name]) if row[name] is not None else None
        row["clock_synced"] = bool(row["clock_synced"])
        row["prev_hash"] = prev
        if row["purged_at"] is None:
            row["personal_digest"] = hashchain.event_personal_digest(keys.key("events", row), row)
        row["hash"] = prev = hashchain.event_hash(row)
        conn.execute(
            "UPDATE events SET prev_hash = ?, personal_digest = ?, hash = ? WHERE seq = ?",
            [row["prev_hash"], row["personal_digest"], row["hash"], row["seq"]],
        )
    conn.commit()
    conn.close()


def test_a_row_rewritten_with_its_chain_recomputed_is_named_against_the_office(
    kiosk_db, central, capsys
):
    shell(kiosk_db, "UPDATE events SET decision = 'deny', reasons = '[\"fever\"]' WHERE seq = 14")
    assert verify("--db", str(kiosk_db)) == 1  # edited alone: the local chain sees it
    recompute_chain_from(kiosk_db, 14)
    assert verify("--db", str(kiosk_db)) == 0  # the salt is in the file: locally invisible
    capsys.readouterr()
    assert verify("--db", str(kiosk_db), "--against", str(central), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["central_first_bad_seq"] == 14
    assert any("events seq 14: differs from the office's copy" in p for p in report["problems"])


def test_an_untouched_log_matches_the_office_and_newer_rows_are_not_compared(
    kiosk_db, central, clock, capsys
):
    with EventLog(kiosk_db, "gate-1", clock) as log:
        log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
    capsys.readouterr()
    assert verify("--db", str(kiosk_db), "--against", str(central)) == 0
    assert "matches" in capsys.readouterr().out


def test_against_something_that_is_not_a_pulled_copy_is_bad_input(kiosk_db, tmp_path, capsys):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    assert verify("--db", str(kiosk_db), "--against", str(other)) == 2
    assert "not a pulled copy" in capsys.readouterr().err


def test_a_purge_keeps_its_own_audit_row_as_evidence(kiosk_db, clock):
    with EventLog(kiosk_db, "gate-1", clock) as log:
        clock.advance(60 * 86400)
        retention.purge(log, 30, clock.now())
        purges = [a for a in log.audits(limit=100) if a["action"] == "retention_purge"]
        assert len(purges) == 2 and all(a["detail"] for a in purges)
        assert log.verify().ok


def _a_log_and_another_gates_copy(tmp_path, clock, passages: int):
    """gate-1's log of ``passages`` passages, and the office's copy of the same rows pulled
    from gate-south (none of gate-1's)."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:
        for _ in range(passages):
            log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
        rows = [dict(r, kiosk_id="gate-south") for r in log.events(limit=10)]
    south = tmp_path / "south.db"
    conn = SqliteTarget(south).conn
    write_page(conn, "http://gate-south:8000", "gate-south", rows)
    conn.close()
    return db, south


def test_an_office_copy_of_another_gate_is_no_match(tmp_path, clock, capsys):
    """A copy the office pulled from gate-south, checked against gate-1's log: "ok ... matches"
    (exit 0, --json ok) though not one row was compared (the office's rows of this kiosk id
    only are read). No row of this gate's there: a failure that says so."""
    db, south = _a_log_and_another_gates_copy(tmp_path, clock, 3)

    assert verify("--db", str(db), "--against", str(south)) == 1
    out, err = capsys.readouterr()
    assert "matches" not in out
    assert "holds no events of kiosk 'gate-1'" in err, err
    assert verify("--db", str(db), "--against", str(south), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["central_first_bad_seq"] is None


def test_an_empty_log_against_an_empty_copy_is_no_failure(tmp_path, clock, capsys):
    """Nothing on either side (a gate that never recorded): nothing the office holds is
    missing here."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:
        log.audit("cli:ali", "guard.add", {"name": "ali"})
    office = tmp_path / "office.db"
    SqliteTarget(office).conn.close()
    assert verify("--db", str(db), "--against", str(office), "--kiosk-id", "gate-1") == 0


def _on_a_stick_of_roots(tmp_path):
    """A folder this process may read and not write (a USB stick mounted by root, seen by
    user kiosk), and the command prefix that holds root to its modes."""
    stick = tmp_path / "stick"
    stick.mkdir()
    if os.geteuid() != 0:
        return stick, [], lambda: stick.chmod(0o555)
    setpriv = shutil.which("setpriv")
    need(setpriv is not None, "setpriv (util-linux) to drop root's file-access override")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]

    def lock() -> None:
        for path in (*stick.iterdir(), stick):
            os.chown(path, 65534, 65534)
        stick.chmod(0o755)

    return stick, prefix, lock


@pytest.mark.slow  # integration: a process held to the file modes (CI runs it)
def test_a_pulled_copy_in_a_folder_this_user_cannot_write_is_read(tmp_path, clock):
    """The office's copy (WAL mode, as ``kiosk pull --into`` leaves it) on a stick kiosk-admin's
    user may read and not write: "not a pulled copy of kiosk events (attempt to write a
    readonly database)", exit 2 (SQLite wanted its -shm beside it). It is read as it is; one
    that cannot be read at all is "permission denied: FILE", exit 1, as cli.md says."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:
        for _ in range(3):
            log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
        rows = log.events(limit=10)
    stick, prefix, lock = _on_a_stick_of_roots(tmp_path)
    copy = stick / "office.db"
    conn = SqliteTarget(copy).conn
    write_page(conn, "http://gate-1:8000", "gate-1", rows)
    conn.close()
    mode = sqlite3.connect(copy)
    assert mode.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    mode.close()
    assert sorted(p.name for p in stick.iterdir()) == ["office.db"]
    copy.chmod(0o644)  # a stick's files anyone may read
    lock()

    def run() -> subprocess.CompletedProcess[str]:
        argv = ["verify-log", "--db", str(db), "--against", str(copy)]
        return subprocess.run(
            [*prefix, sys.executable, "-m", "checkpoint", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = run()
    assert done.returncode == 0, done.stderr
    assert f"matches {copy}" in done.stdout
    assert sorted(p.name for p in stick.iterdir()) == ["office.db"]  # nothing made there

    copy.chmod(0o600)
    done = run()
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"kiosk verify-log: permission denied: {copy}"), done.stderr


def test_a_copy_pulled_before_the_gates_first_event_says_what_to_do(tmp_path, clock, capsys):
    """A new gate the office pulled once before its first passage (its copy holds no row at
    all), restored after its card died, checked as operations.md says: exit 1 saying only
    "nothing was compared", and the procedure's one failure path gave up the archive's log for
    a new empty one. The line now tells such a copy from another gate's and says the way on:
    the log's own check, then the install."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:
        for _ in range(3):
            log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
    office = tmp_path / "office.db"
    SqliteTarget(office).conn.close()

    assert verify("--db", str(db), "--against", str(office)) == 1  # compared nothing: no pass
    out, err = capsys.readouterr()
    assert "matches" not in out
    assert "holds no events at all" in err, err
    assert "never pulled this gate" in err and "without --against" in err, err
    assert "another gate" not in err, err


def test_another_gates_copy_is_named_as_such(tmp_path, clock, capsys):
    """Rows of other kiosk ids only: the copy of another gate, named, never the "office has
    never pulled this gate" way on (the log alone would then pass on a wrong copy)."""
    db, south = _a_log_and_another_gates_copy(tmp_path, clock, 1)

    assert verify("--db", str(db), "--against", str(south)) == 1
    err = capsys.readouterr().err
    assert "it holds events of 'gate-south' only: the copy of another gate" in err, err
    assert "never pulled" not in err and "without --against" not in err, err


def test_the_check_leaves_nothing_beside_the_offices_copy(tmp_path, clock):
    """verify-log --against a WAL-mode copy (as kiosk pull --into leaves it) in a folder this
    user may write left office-copy.db-wal and -shm behind, which the procedure's `rm` of the
    copy did not remove. It is read as it is (immutable: nothing at the gate writes it)."""
    db = tmp_path / "kiosk.db"
    with EventLog(db, "gate-1", clock) as log:
        log.append(EventDraft(direction="in", decision="pass", temp_c=36.5))
        rows = log.events(limit=10)
    folder = tmp_path / "lib"
    folder.mkdir()
    office = folder / "office-copy.db"
    conn = SqliteTarget(office).conn
    write_page(conn, "http://gate-1:8000", "gate-1", rows)
    conn.close()
    assert office.read_bytes()[18:20] == b"\x02\x02"  # WAL mode, its -wal gone with the pull
    assert sorted(p.name for p in folder.iterdir()) == ["office-copy.db"]

    assert verify("--db", str(db), "--against", str(office)) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["office-copy.db"]
