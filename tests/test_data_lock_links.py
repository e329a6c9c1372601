"""The data dir's lock where links and other programs meet it: a ``kiosk.lock`` that is a
symbolic link (kept off a read-only card, in /run/kiosk), a ``keys/`` folder that is one, a
refused drill's folders removed while a verb looks for them, a data dir's folder lock that
fails for another reason than a file system without locks, and an unrelated program's lock
on a folder above ``keys new --dir``."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest
from test_backup import (  # no_installed_kiosk: autouse here too
    no_installed_kiosk,  # noqa: F401
    run_backup,
    run_restore,
)
from test_data_lock import _never_run_gate
from test_restore_lock import UNDER_WAY, _gate
from test_restore_refused_as_left import as_left, changed

from checkpoint.cli import backup_cmd, main
from checkpoint.cli.daemon_cmd import LOCK_FILE, hold_data_dir, lock_folder


def _linked_lock(data: Path, run: Path, *, there: bool) -> Path:
    """``DATA/kiosk.lock`` made a link to ``run/kiosk.lock`` (the file there or not yet)."""
    run.mkdir(exist_ok=True)
    target = run / LOCK_FILE
    if there:
        target.write_text("")
    (data / LOCK_FILE).symlink_to(target)
    return target


@pytest.mark.parametrize("there", [True, False], ids=["target there", "target not yet"])
def test_the_daemon_starts_on_a_lock_file_that_is_a_link(tmp_path, there):
    """``kiosk.lock`` a link to /run/kiosk/kiosk.lock: the daemon compared the link's own
    file with the one it had opened, never the same, and ended `removed and made again as it
    is taken`, exit 1, restarted by systemd for ever: the gate dark. It starts, its lock on
    the file the link leads to, the link left as it was."""
    data = tmp_path / "data"
    data.mkdir()
    target = _linked_lock(data, tmp_path / "run", there=there)
    fd = hold_data_dir(data)
    try:
        assert os.path.samestat(os.fstat(fd.file), target.stat())
        assert (data / LOCK_FILE).is_symlink() and target.read_text() == f"{os.getpid()}\n"
    finally:
        fd.close()


def test_a_restore_through_a_linked_lock_file_goes_on_and_leaves_the_link(tmp_path, clock, capsys):
    """The restore took the same wrong turn (`removed and made again`, exit 1, whatever the
    archive): refused for what is wrong with the archive, it says that; with a good one it
    goes through; the link and the daemon's file stay as they were, and the daemon starts."""
    data, etc = _gate(tmp_path, clock)
    archive = tmp_path / "north.kbak"
    assert run_backup(data, etc, archive) == 0
    target = _linked_lock(data, tmp_path / "run", there=True)
    target.write_text("4242\n")  # the pid a stopped daemon left
    bad = tmp_path / "bad.kbak"
    bad.write_text("not an archive")
    capsys.readouterr()
    assert run_restore(data, etc, bad) == 2
    err = capsys.readouterr().err
    assert "not a kiosk backup" in err and "removed and made again" not in err, err
    assert run_restore(data, etc, archive) == 0, capsys.readouterr().err
    assert os.readlink(data / LOCK_FILE) == str(target) and target.read_text() == "4242\n"
    hold_data_dir(data).close()


def test_a_restore_makes_no_file_through_a_link_to_none(tmp_path, clock, capsys):
    """``kiosk.lock`` a link to a file that is not there: a restore as root made a file
    wherever the data dir's user pointed it. It makes nothing through the link: no file at
    the link's end, the link left; it goes on under the data dir's own lock (which keeps a
    daemon out), as /run/kiosk is gone each time kiosk.service is stopped."""
    new = _never_run_gate(tmp_path / "new", clock, "gate-1")
    archive = tmp_path / "new.kbak"
    assert run_backup(new.data, new.etc, archive) == 0
    target = _linked_lock(new.data, tmp_path / "elsewhere", there=False)
    capsys.readouterr()
    assert run_restore(new.data, new.etc, archive) == 0, capsys.readouterr().err
    assert not os.path.lexists(target)
    assert os.readlink(new.data / LOCK_FILE) == str(target)


def test_keys_new_through_a_linked_keys_folder_is_refused_under_a_restore(tmp_path, clock, capsys):
    """``DATA/keys`` a link to a folder elsewhere: ``keys new --dir DATA/keys`` locked only
    the folders above where the link leads, never the data dir, and made its key under a
    restore, which then set ``keys`` aside with the archive's in its place."""
    data, _etc = _gate(tmp_path, clock)
    outside = tmp_path / "srv-keys"
    (data / "keys").rename(outside)
    (data / "keys").symlink_to(outside)
    new = ["keys", "new", "--dir", str(data / "keys"), "--name", "office-2027"]
    with backup_cmd._stopped(data):
        capsys.readouterr()
        assert main(new) == 1
        err = capsys.readouterr().err
    assert f"kiosk keys: {UNDER_WAY} {data}: try again" in err, err
    assert not (outside / "office-2027.key").exists()
    assert main(new) == 0  # the restore over: it goes on
    assert (outside / "office-2027.key").is_file()


def test_a_verb_writing_in_a_refused_drills_folder_keeps_it(tmp_path, monkeypatch, capsys):
    """A refused restore removes the folders it made while it still holds the data dir (its
    lock file removed first: the drill's folder is no data dir then). A ``keys new`` into one
    of them meanwhile goes on, as it goes on under any lock on a folder that is no data dir
    (an installer's on ``/``, which stopped every first install at its issuing key): its key
    is written, and the folder holding it is kept; the empty ones are removed."""
    drill = tmp_path / "drill"
    bad = tmp_path / "bad.kbak"
    bad.write_text("not an archive")
    real, said = backup_cmd._unmade, []

    def keys_new_first(made):
        said.append(main(["keys", "new", "--dir", str(drill / "keys"), "--name", "k"]))
        real(made)

    monkeypatch.setattr(backup_cmd, "_unmade", keys_new_first)
    assert run_restore(drill, drill / "etc", bad) == 2
    assert said == [0], capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.kbak", "drill"]
    assert sorted(p.name for p in drill.iterdir()) == ["keys"]
    assert (drill / "keys" / "k.key").is_file()


@pytest.mark.parametrize("exclusive", [True, False], ids=["restore", "verb"])
def test_the_folder_lock_is_on_the_folder_at_the_path(tmp_path, monkeypatch, exclusive):
    """The data dir removed and made again between its open and its lock (a refused drill's,
    as above): the lock was held on the removed folder, and a restore or a verb on the new
    one went on beside it. It is taken again on the folder there."""
    data = tmp_path / "data"
    data.mkdir()
    real, swapped = fcntl.flock, []

    def swap_first(fd, how):
        if not swapped and os.readlink(f"/proc/self/fd/{fd}") == str(data):
            swapped.append(data.rename(tmp_path / "removed"))
            data.mkdir()
        return real(fd, how)

    monkeypatch.setattr(fcntl, "flock", swap_first)
    fd = lock_folder(data, exclusive=exclusive)
    assert fd is not None and swapped
    try:
        assert os.path.samestat(os.fstat(fd), data.stat())
    finally:
        os.close(fd)


def _failing_on(monkeypatch, folder: Path, code: int, *, open_: bool) -> None:
    """The data dir's folder failing with ``code``: its ``flock`` (a security module's
    denial, EPERM, ENOSYS), or its open (``open_``); ``kiosk.lock`` locks as ever."""
    inside = os.path.realpath(folder)
    real_flock, real_open = fcntl.flock, os.open

    def flock(fd, how):
        if os.readlink(f"/proc/self/fd/{fd}") == inside:
            raise OSError(code, os.strerror(code))
        return real_flock(fd, how)

    def opening(path, flags, *args, **kwargs):
        if flags & os.O_DIRECTORY and os.path.realpath(path) == inside:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    if open_:
        monkeypatch.setattr(os, "open", opening)
    else:
        monkeypatch.setattr(fcntl, "flock", flock)


@pytest.mark.parametrize(
    ("code", "open_"),
    [
        (errno.EACCES, False),
        (errno.EPERM, False),
        (errno.ENOSYS, False),
        (errno.EACCES, True),
    ],
    ids=["flock EACCES", "flock EPERM", "flock ENOSYS", "open EACCES"],
)
def test_a_restore_whose_folder_lock_fails_otherwise_is_refused(
    tmp_path, clock, capsys, monkeypatch, code, open_
):
    """The data dir's folder lock failing with an error outside a file system's "no locks"
    ones, or the folder not opened: the restore went on without it, unsaid, the verbs free
    to write under it. It is refused, saying so, and changes nothing."""
    north = _never_run_gate(tmp_path / "north", clock, "gate-north")
    archive = tmp_path / "north.kbak"
    assert run_backup(north.data, north.etc, archive) == 0
    new = _never_run_gate(tmp_path / "new", clock, "gate-1")
    before = as_left(new.data), as_left(new.etc)
    _failing_on(monkeypatch, new.data, code, open_=open_)
    capsys.readouterr()
    assert run_restore(new.data, new.etc, archive, "--as-this-gate") == 1
    err = capsys.readouterr().err
    step = "open" if open_ else "flock"
    assert f"cannot lock the data dir {new.data} ({step}: {os.strerror(code)})" in err, err
    assert "nothing was changed" in err, err
    assert changed(before[0], new.data) == set() and changed(before[1], new.etc) == set()


@pytest.mark.parametrize("above", ["share", "root"])
def test_keys_new_goes_on_under_another_programs_lock_above_it(tmp_path, capsys, above):
    """An exclusive ``flock`` another program holds on a folder above ``--dir`` that is no data
    dir: a shared folder's, or the target's root the installer holds while it runs ``kiosk keys
    new`` for the issuing key (every first install failed there: "a restore is under way",
    then "locked by another program"). The key is made; a data dir's lock is still kept."""
    share = tmp_path / "share"
    share.mkdir()
    new = ["keys", "new", "--dir", str(share / "office" / "keys"), "--name", "office-2027"]
    other = os.open(share if above == "share" else tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        capsys.readouterr()
        assert main(new) == 0, capsys.readouterr().err
    finally:
        os.close(other)
    assert (share / "office" / "keys" / "office-2027.key").is_file()
