"""The data dir's lock, the rest of it: what a refused ``kiosk restore`` leaves (nothing), the
verbs that write in the data dir besides the event log's and calibrate's (``keys new``, a
``backup``), the purge's first look at the log, and a file system whose ``flock`` locks
nothing (some NFS and FUSE mounts)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    make_gate,
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)
from test_person_restore import cli_clock  # noqa: F401  the verbs' clock, the test's
from test_restore_lock import UNDER_WAY, _forget, _gate, _naming, _purge, _sha
from test_restore_refused_as_left import (
    Gate,
    _altered,
    _another_gate,
    _no_backup,
    _unreadable_log,
    as_left,
    changed,
)

from checkpoint.cli import backup_cmd, daemon_cmd, main, pull_cmd
from checkpoint.cli.daemon_cmd import LOCK_FILE, hold_data_dir, lock_folder
from checkpoint.volume import data_volume

WRITING = "is writing in"


def _never_run_gate(root: Path, clock, kiosk_id: str) -> Gate:
    """A gate's folders on which no daemon ran yet (a fresh install): no ``kiosk.lock``."""
    data, etc, log = make_gate(root, clock, kiosk_id)
    log.close()
    assert not (data / LOCK_FILE).exists()
    return Gate(data, etc, log)


def _writer_holds(north, new, archive) -> list[str]:
    """A ``person forget`` writing the log of the new Pi while the restore begins."""
    held = lock_folder(new.data, exclusive=False)
    assert held is not None
    new.held = held
    return ["--as-this-gate"]


@pytest.mark.parametrize(
    ("refusal", "code", "said"),
    [
        (_another_gate, 2, "gate-north"),
        (_altered, 2, "is not the file backed up"),
        (_no_backup, 2, "not a kiosk backup"),
        (_unreadable_log, 1, "forgets this Pi's log keeps cannot be read"),
        (_writer_holds, 1, WRITING),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_refused_restore_makes_no_lock_file_where_there_was_none(
    tmp_path, clock, capsys, refusal, code, said
):
    """A restore refused on a Pi no daemon ran on yet left ``kiosk.lock`` in its data dir, a
    file that was not there: the data dir as it found it now, that file too."""
    north = _never_run_gate(tmp_path / "north", clock, "gate-north")
    archive = tmp_path / "north.kbak"
    assert run_backup(north.data, north.etc, archive) == 0
    new = _never_run_gate(tmp_path / "new", clock, "gate-1")
    extra = refusal(north, new, archive)
    before = as_left(new.data), as_left(new.etc)
    capsys.readouterr()
    try:
        assert run_restore(new.data, new.etc, archive, *extra) == code
    finally:
        if getattr(new, "held", None) is not None:
            os.close(new.held)
    err = capsys.readouterr().err
    assert said in err and "nothing was changed" in err, err
    assert changed(before[0], new.data) == set() and changed(before[1], new.etc) == set()


def test_a_refused_drill_leaves_no_folder_behind(tmp_path, capsys):
    """``kiosk restore bad.kbak --data ./drill --config ./drill/etc/kiosk.toml``, refused, left
    ``drill/``, ``drill/etc/`` and ``drill/kiosk.lock``; a typo'd ``--undo`` likewise."""
    bad = tmp_path / "bad.kbak"
    bad.write_text("not an archive")
    drill = tmp_path / "spare" / "drill"
    assert run_restore(drill, drill / "etc", bad) == 2
    assert "nothing was changed" in capsys.readouterr().err
    typo = tmp_path / "typo"
    undo = ["restore", "--undo", "--data", str(typo), "--config", str(typo / "etc" / "k.toml")]
    assert main(undo) == 0
    assert "nothing to undo" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.kbak"]


@pytest.mark.parametrize("under", ["keys", "keys/office", "trust"])
def test_keys_new_in_the_data_dir_is_refused_while_a_restore_holds_it(
    tmp_path, clock, capsys, under
):
    """``kiosk keys new --dir DATA/keys`` during a restore said done, exit 0, and the restore
    then set the keys folder aside for the archive's: the new key gone from where the gate and
    the office look for it. It holds the data dir's lock as the other writers do."""
    data, _etc = _gate(tmp_path, clock)
    folder = data / under
    new = ["keys", "new", "--dir", str(folder), "--name", "office-2027"]
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert main(new) == 1
        err = capsys.readouterr().err
        assert main(["keys", "new", "--dir", str(tmp_path / "office"), "--name", "o"]) == 0
    assert f"kiosk keys: {UNDER_WAY} {data}: try again" in err and "nothing was changed" in err
    assert not (folder / "office-2027.key").exists()
    assert main(new) == 0  # the restore over: it goes on
    assert (folder / "office-2027.key").is_file() and (folder / "office-2027.pub").is_file()


def test_a_backup_is_refused_while_a_restore_holds_the_data_dir(tmp_path, clock, capsys):
    """A backup taken while a restore swaps the data dir's files took this Pi's keys with the
    archive's log (or none of either): it is refused, no archive written."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert run_backup(data, etc, archive) == 1
        err = capsys.readouterr().err
    assert f"kiosk backup: {UNDER_WAY} {data}" in err, err
    assert not archive.exists()
    assert run_backup(data, etc, archive) == 0


def test_a_restore_is_refused_while_the_purge_looks_at_the_log(
    tmp_path, clock, capsys, monkeypatch
):
    """The purge read the log (its pending migrations, whether it is there) before it took
    the data dir's lock: a restore between the two went through, and the purge acted on the
    restored log with the view of the one it set aside. It holds the lock from before it
    looks: the restore is refused, and the purge goes on."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    before = _sha(data / "kiosk.db")
    real = pull_cmd.pending_migrations
    restores = []

    def looked(*args, **kwargs):
        restores.append(run_restore(data, etc, archive))
        restores.append(capsys.readouterr().err)
        return real(*args, **kwargs)

    monkeypatch.setattr(pull_cmd, "pending_migrations", looked)
    capsys.readouterr()
    assert _purge(data / "kiosk.db") == 0, capsys.readouterr().err
    code, err = restores
    assert code == 1 and f"{WRITING} {data}: try again when it has finished" in err, err
    assert not list(data.glob("before-restore-*"))
    assert _sha(data / "kiosk.db") != before  # purged: the log it looked at, not set aside


@pytest.mark.usefixtures("cli_clock")
def test_the_purge_of_a_log_not_there_yet_waits_for_the_restore(tmp_path, clock, capsys):
    """The timer's purge on a new install (no log yet) while a technician restores one said
    `nothing to purge`, exit 0; it is refused as any purge is during a restore."""
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-1"\n')
    purge = ["purge", "--trust-clock", "--config", str(config), "--data", str(data)]
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert main(purge) == 1
        assert UNDER_WAY in capsys.readouterr().err
    assert main(purge) == 0
    assert "nothing to purge" in capsys.readouterr().err


def _no_flock_under(monkeypatch, folder: Path, code: int) -> None:
    """``flock`` failing with ``code`` on every file and folder under ``folder`` (as on an NFS
    mount without lockd, or a FUSE one)."""
    real = fcntl.flock
    inside = os.path.realpath(folder)

    def no_locks_here(fd, how):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path == inside or path.startswith(inside + "/"):
            raise OSError(code, os.strerror(code))
        return real(fd, how)

    monkeypatch.setattr(fcntl, "flock", no_locks_here)


@pytest.mark.parametrize(
    "code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL], ids=errno.errorcode.get
)
def test_a_restore_onto_a_file_system_without_locks_is_refused_naming_it(
    tmp_path, clock, capsys, monkeypatch, code
):
    """There the data dir's lock did nothing: a restore went on with the daemon and the
    maintenance verbs free to write under it, unsaid. It is refused, naming the file system,
    and changes nothing (no lock file either)."""
    north = _never_run_gate(tmp_path / "north", clock, "gate-north")
    archive = tmp_path / "north.kbak"
    assert run_backup(north.data, north.etc, archive) == 0
    new = _never_run_gate(tmp_path / "new", clock, "gate-1")
    before = as_left(new.data)
    _no_flock_under(monkeypatch, new.data, code)
    capsys.readouterr()

    assert run_restore(new.data, new.etc, archive, "--as-this-gate") == 1

    err = capsys.readouterr().err
    volume = data_volume(new.data)
    assert volume is not None
    assert f"cannot lock the data dir {new.data}: its file system ({volume.fs_type}," in err, err
    assert "does not lock files" in err and "nothing was changed" in err, err
    assert changed(before, new.data) == set()


@pytest.mark.usefixtures("cli_clock")
def test_a_verb_on_a_file_system_without_locks_goes_on(tmp_path, clock, capsys, monkeypatch):
    """No restore can hold such a data dir (it is refused there), so a verb that writes in it
    has no restore to wait for: `person forget` and `keys new` go on, as before."""
    data, _etc = _gate(tmp_path, clock)
    _no_flock_under(monkeypatch, data, errno.ENOLCK)
    assert _forget(data / "kiosk.db") == 0, capsys.readouterr().err
    assert _naming(data / "kiosk.db") == 0
    assert main(["keys", "new", "--dir", str(data / "keys"), "--name", "office-2027"]) == 0


def test_the_daemon_takes_again_a_lock_file_removed_as_it_took_it(tmp_path, monkeypatch):
    """A refused restore removes the lock file it made, holding it: a daemon that opened that
    file just before would hold a lock on a file no longer there, and a second daemon would
    make and take another. The daemon's lock is on the file at ``kiosk.lock``, whatever."""
    data = tmp_path / "data"
    data.mkdir()
    real = daemon_cmd._lock_file
    opened = []

    def removed_as_taken(path):
        fd = real(path)
        if not opened:
            os.unlink(path)  # the refused restore's, removed
        opened.append(fd)
        return fd

    monkeypatch.setattr(daemon_cmd, "_lock_file", removed_as_taken)
    fd = hold_data_dir(data)
    try:
        assert len(opened) == 2
        assert os.fstat(fd.file).st_ino == (data / LOCK_FILE).stat().st_ino
    finally:
        fd.close()


def test_a_daemons_lock_file_made_as_the_restore_looked_is_never_removed(
    tmp_path, clock, capsys, monkeypatch
):
    """The daemon starts between the restore's look for ``kiosk.lock`` (none) and its open of
    it: the restore, refused, removes only a lock file it held, never the daemon's. (A daemon
    now also holds the data dir's folder lock, which the restore holds first, so this is one
    that took its lock file alone, as a daemon from before that did.)"""
    new = _never_run_gate(tmp_path / "new", clock, "gate-1")
    archive = tmp_path / "new.kbak"
    assert run_backup(new.data, new.etc, archive) == 0
    real = backup_cmd._lock_file
    daemon = []

    def daemon_first(path):
        if not daemon:
            daemon.append(daemon_cmd._hold_lock_file(new.data, None))
        return real(path)

    monkeypatch.setattr(backup_cmd, "_lock_file", daemon_first)
    capsys.readouterr()
    try:
        assert run_restore(new.data, new.etc, archive) == 1
        assert f"the kiosk daemon (pid {os.getpid()}) runs on" in capsys.readouterr().err
        assert (new.data / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        os.close(daemon[0])
