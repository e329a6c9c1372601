"""What ``kiosk purge`` (and every verb) says when it cannot finish.

After its last transaction committed, the rows are purged and audited, so "nothing was
changed" would be a lie (it was said until 2026-12-07): it says what was done, which step
after it failed, and exits 1. SQLite's READONLY of a file of the log another user owns (run
as pi, not the kiosk's user; a file a restore left root's) said "could not be written ...
check the card": it names the file's owner and the user to run it as."""

from __future__ import annotations

import errno
import os
import re
import sqlite3

import pytest
from test_store_full import draft

import checkpoint.cli
from checkpoint.cli import INSTALLED_KIOSK, main
from checkpoint.cli.pull_cmd import _sets
from kiosk import cardfault, retention, store
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
    said = "the purge itself is done and audited (emptied: events 3, digest salts shredded 2)"
    assert said in err
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


class _ReadOnly(sqlite3.Connection):
    """A real connection whose writes SQLite refuses as it does a file another user owns."""

    def execute(self, sql, *args):  # type: ignore[no-untyped-def]
        if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            exc = sqlite3.OperationalError("attempt to write a readonly database")
            exc.sqlite_errorname, exc.sqlite_errorcode = "SQLITE_READONLY", 8  # type: ignore[attr-defined]
            raise exc
        return super().execute(sql, *args)


def read_only_for(monkeypatch, uid: int) -> None:
    """Writes refused as SQLite refuses them, and this process (root) taken for user 4321 (pi)
    held to the modes: a file of ``uid`` is not its to write."""
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    monkeypatch.setattr(
        store,
        "_open_connection",
        lambda p, t: sqlite3.connect(str(p), timeout=t, factory=_ReadOnly),
    )
    monkeypatch.setattr(
        cardfault, "_may_write", lambda path: os.lstat(path).st_uid != uid, raising=False
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="root, to give the files to another user")
@pytest.mark.parametrize(
    ("owner", "run"),
    [
        ("nobody", f"`sudo -u nobody {INSTALLED_KIOSK} purge ...`"),
        ("kiosk", "`sudo kiosk-admin purge ...`"),
    ],
)
def test_a_log_of_another_user_names_its_owner_and_whom_to_run_it_as(
    tmp_path, clock, capsys, monkeypatch, owner, run
):
    """Run as another user than the one owning the data dir and its log (pi, not kiosk): the
    installed service's user, kiosk, is the one kiosk-admin runs verbs as."""
    import checkpoint.cli

    (tmp_path / "data").mkdir()
    db = a_log(tmp_path / "data", clock)
    for path in (db.parent, *db.parent.iterdir()):
        os.chown(path, 65534, 65534)
    read_only_for(monkeypatch, 65534)
    named = checkpoint.cli._user_name
    monkeypatch.setattr(
        checkpoint.cli, "_user_name", lambda uid: owner if uid == 65534 else named(uid)
    )

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"kiosk purge: {db} is {owner}'s (uid 65534) and this command"), err
    assert f" runs as uid 4321, which may not write it (SQLITE_READONLY): run it as {owner}:" in err
    assert run in err and err.endswith("; nothing was changed\n")
    assert "could not be written" not in err and "the card" not in err
    assert names_left(db) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="root, to give the files to another user")
def test_a_file_left_another_users_beside_the_log_is_given_back(
    tmp_path, clock, capsys, monkeypatch
):
    """A restore or a verb run as root left the log root's in the kiosk user's folder."""
    (tmp_path / "data").mkdir()
    db = a_log(tmp_path / "data", clock)
    os.chown(db.parent, 65534, 65534)
    read_only_for(monkeypatch, 0)

    assert main(["token", "new", "--scope", "logs:read", "--db", str(db)]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"kiosk token: {db} is root's (uid 0), not nobody's, who owns {db.parent}" in err
    assert f"give it back (`sudo chown -R nobody:nogroup {db.parent}`)" in err
    assert f"then run it as nobody: `sudo -u nobody {INSTALLED_KIOSK} token ...`" in err
    assert "could not be written" not in err


@pytest.fixture
def synced_cli_clock(clock, monkeypatch):
    """The CLI's clock synchronised, a day after the log's passages."""
    from datetime import timedelta

    from drivers import clocksync
    from kiosk.clock import FakeClock

    later = FakeClock(start=clock.now() + timedelta(days=1))
    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: later)


def purge_rows(db) -> int:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT count(*) FROM audit WHERE action = ?"
        return int(conn.execute(sql, [retention.PURGE_ACTION]).fetchone()[0])
    finally:
        conn.close()


@pytest.mark.usefixtures("synced_cli_clock")
def test_a_purge_that_changed_nothing_is_not_said_audited(tmp_path, clock, capsys, monkeypatch):
    """A purge with nothing left to empty writes no audit row, yet its failing step after
    said 'the purge itself is done and audited (0 events' ...)'."""
    db = a_log(tmp_path, clock)
    assert main(["purge", "--older-than", "0", "--db", str(db)]) == 0
    rows = purge_rows(db)
    capsys.readouterr()
    monkeypatch.setattr(retention, "purge_held", locked)

    assert main(["purge", "--older-than", "0", "--db", str(db)]) == 1

    err = capsys.readouterr().err
    assert purge_rows(db) == rows
    assert "audited" not in err
    assert "the purge itself is done (there was nothing more to empty: no audit row)" in err


def test_a_purge_is_said_by_every_store_it_emptied_and_how_it_was_audited(clock):
    """Only the events were counted ('N events' personal fields emptied'), whatever else
    went; and a run the day's purge row covers was said audited though its counts wait for
    the next row."""
    from dataclasses import replace

    done = retention.PurgeResult(
        clock.now(),
        0,
        (),
        {"visitors": 2},
        quarantine_entries_purged=1,
        household_observations_purged=1,
        revocations_purged=3,
        revocation_reasons_purged=1,
    )
    emptied = (
        "visitors rows 2, ended quarantine entries 1, ended household observations 1,"
        " expired revocations 3, revocations' reasons 1"
    )
    assert done.done_words() == f"the purge itself is done and audited (emptied: {emptied})"
    pending = replace(done, audit=retention.PENDING).done_words()
    assert "audited" not in pending and emptied in pending
    assert "the day's purge row covers it, its counts are written with the next" in pending
    unchanged = replace(done, audit=retention.UNCHANGED).done_words()
    assert unchanged == "the purge itself is done (there was nothing more to empty: no audit row)"


@pytest.mark.skipif(os.geteuid() != 0, reason="root, to give the files to another user")
@pytest.mark.parametrize("folder", ["shared", "root's"])
def test_a_log_in_a_folder_no_kiosk_user_owns_is_never_given_away(
    tmp_path, clock, capsys, monkeypatch, folder
):
    """A log of nobody's in /tmp (sticky, everyone's) or in a folder of root's: it said to
    give it back with `sudo chown -R root:root /tmp`-like words and to run
    `sudo -u root kiosk ...`. It says to run it as the file's owner, by the program's full
    path (kiosk is not on sudo's path)."""
    (tmp_path / "data").mkdir(mode=0o1777 if folder == "shared" else 0o755)
    (tmp_path / "data").chmod(0o1777 if folder == "shared" else 0o755)
    db = a_log(tmp_path / "data", clock)
    for path in db.parent.iterdir():
        os.chown(path, 65534, 65534)
    read_only_for(monkeypatch, 65534)

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert "chown" not in err and "sudo -u root" not in err, err
    assert f"kiosk purge: {db} is nobody's (uid 65534) and this command runs as uid 4321" in err
    assert f"run it as nobody: `sudo -u nobody {INSTALLED_KIOSK} purge ...`" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="root, to give the files to another user")
def test_a_user_with_no_name_is_said_as_a_shell_takes_it(tmp_path, clock, capsys, monkeypatch):
    """`sudo -u #4242 kiosk purge ...`: in a shell '#' starts a comment."""
    (tmp_path / "data").mkdir()
    db = a_log(tmp_path / "data", clock)
    for path in (db.parent, *db.parent.iterdir()):
        os.chown(path, 4242, 4242)
    read_only_for(monkeypatch, 4242)
    named = checkpoint.cli._user_name
    monkeypatch.setattr(
        checkpoint.cli, "_user_name", lambda uid: "#4242" if uid == 4242 else named(uid)
    )

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert f"kiosk purge: {db} is uid 4242's and this command runs as uid 4321" in err, err
    assert f"run it as uid 4242: `sudo -u '#4242' {INSTALLED_KIOSK} purge ...`" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="root, to give the files to another user")
@pytest.mark.parametrize("mode", [0o444, 0o644], ids=["mode", "immutable"])
def test_a_log_of_this_user_it_may_not_write_is_said_read_only(
    tmp_path, clock, capsys, monkeypatch, mode
):
    """The file is this command's user's (mode 0444, or chattr +i): it said "is X's and this
    command runs as X ... run it as X". It says the file is read-only, and how."""
    (tmp_path / "data").mkdir()
    db = a_log(tmp_path / "data", clock)
    for path in (db.parent, *db.parent.iterdir()):
        os.chown(path, 4321, 4321)
    db.chmod(mode)
    read_only_for(monkeypatch, -1)
    monkeypatch.setattr(cardfault, "_may_write", lambda path: path != db)

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert f"kiosk purge: {db} is this command's user's, uid 4321, but read-only: " in err, err
    if mode == 0o444:
        assert f"its mode (0444) has no write bit: `chmod u+w {db}`" in err
    else:
        assert f"it is marked immutable or append-only (`lsattr {db}`):" in err
    assert "sudo -u" not in err and err.endswith("then run it again; nothing was changed\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="root, as the verb was run")
@pytest.mark.parametrize("held", ["read_only_mount", "immutable", "neither"])
def test_root_refused_a_file_of_mode_0444_is_told_what_held_it_not_chmod(
    tmp_path, clock, capsys, monkeypatch, held
):
    """Run as root on a 0444 log of root's that SQLite could not write, it said "its mode
    (0444) has no write bit: `chmod u+w ...`": no mode holds root back. It says what did (a
    read-only mount of the file, an immutable or append-only mark), or that neither is seen."""
    (tmp_path / "data").mkdir()
    db = a_log(tmp_path / "data", clock)
    db.chmod(0o444)
    read_only_for(monkeypatch, -1)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cardfault, "_may_write", lambda path: path != db)
    real_statvfs = os.statvfs

    class ReadOnly:
        f_flag = os.ST_RDONLY

    def statvfs(path):  # the file bind-mounted read-only, its folder not
        return (
            ReadOnly() if held == "read_only_mount" and str(path) == str(db) else real_statvfs(path)
        )

    monkeypatch.setattr(os, "statvfs", statvfs)
    marks = {"immutable"} if held == "immutable" else set()
    monkeypatch.setattr(checkpoint.cli, "_marks", lambda path: marks)

    assert main([*PURGE, str(db)]) == 1

    err = capsys.readouterr().err
    assert "chmod" not in err, err
    assert f"kiosk purge: {db} is this command's user's, root (uid 0), but read-only: " in err
    if held == "read_only_mount":
        assert f"it is on a read-only mount (`findmnt -T {db}`)" in err
    elif held == "immutable":
        assert f"it is marked immutable (`lsattr {db}`): `sudo chattr -i -a {db}`" in err
    else:
        assert "no mode holds root back, and it is on no read-only mount nor marked" in err
