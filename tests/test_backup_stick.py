"""A ``--plain`` backup onto a USB stick or a share: its stage beside the archive on a file
system that reports another owner, or locks nothing; and the ``.part`` a killed one left."""

from __future__ import annotations

import errno
import fcntl
import os
from datetime import UTC, datetime

import pytest
import test_backup
from test_backup_encrypted import backup_with

from kiosk import backup

gate, usb, no_installed_kiosk = test_backup.gate, test_backup.usb, test_backup.no_installed_kiosk


def _on(stick, fd_link: str) -> bool:
    """Whether the descriptor (its ``/proc/self/fd`` link) is a file on ``stick``."""
    try:
        return os.readlink(fd_link).startswith(str(stick))
    except OSError:
        return False


def test_a_plain_backup_to_a_stick_whose_files_report_another_owner_is_written(
    gate, usb, monkeypatch, capsys
):
    """A vfat/exfat stick mounted uid=1000, an NFS share with root_squash: what the backup
    makes there reports another owner. Its own new stage was refused with a restore's words
    ("a restore makes its own folders ... run the restore again"), and no backup written."""
    data, etc, _ = gate
    real_fstat, real_lstat = os.fstat, os.lstat

    def reported(st):
        fields = list(st)
        fields[4] = os.geteuid() + 1000  # st_uid: the mount's owner, never this user
        return os.stat_result(fields)

    def fstat(fd):
        st = real_fstat(fd)
        return reported(st) if _on(usb, f"/proc/self/fd/{fd}") else st

    def lstat(path, *, dir_fd=None):
        st = real_lstat(path, dir_fd=dir_fd)
        return reported(st) if dir_fd is None and str(path).startswith(str(usb)) else st

    monkeypatch.setattr(os, "fstat", fstat)
    monkeypatch.setattr(os, "lstat", lstat)

    assert backup_with(data, etc, usb / "north.kbak", "--plain") == 0, capsys.readouterr().err

    assert backup.DB_MEMBER in test_backup.members(usb / "north.kbak")
    assert [p.name for p in usb.iterdir()] == ["north.kbak"]


@pytest.mark.parametrize("code", [errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_plain_backup_to_a_share_that_locks_nothing_is_written(gate, usb, monkeypatch, code):
    """NFS, some FUSE file systems: ``flock`` fails there. The stage is then not lockable,
    and the backup goes on unheld (the purge removes only stages over an hour old)."""
    data, etc, _ = gate
    real = fcntl.flock

    def no_locks_here(fd, how):
        if how == fcntl.LOCK_EX and _on(usb, f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        return real(fd, how)

    monkeypatch.setattr(fcntl, "flock", no_locks_here)

    assert backup_with(data, etc, usb / "north.kbak", "--plain") == 0

    assert [p.name for p in usb.iterdir()] == ["north.kbak"]


def test_the_part_a_killed_plain_backup_left_goes_with_the_next_backup(gate, usb, monkeypatch):
    """A ``--plain`` backup killed while writing left ``.north.kbak.XXXX.part`` (the log in
    clear) beside the archive, and nothing ever removed it. The next backup removes one over
    an hour old that no run holds; never a fresh one, nor one a running backup holds."""
    data, etc, _ = gate
    old = usb / ".north.kbak.k1ll3d.part"
    old.write_bytes(b"data/kiosk.db: Wang Lei 13800000000")
    held, fresh = usb / ".north.kbak.runn1n.part", usb / ".north.kbak.fr3sh0.part"
    held.write_bytes(b"a backup still writing")
    fresh.write_bytes(b"a backup just begun")
    other = usb / ".south.kbak.k1ll3d.part"
    other.write_bytes(b"another archive's")
    an_hour_ago = datetime.now(UTC).timestamp() - backup.STAGE_LEFT_S - 60
    for part in (old, held, other):
        os.utime(part, (an_hour_ago, an_hour_ago))
    holder = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert backup_with(data, etc, usb / "north.kbak", "--plain") == 0
    finally:
        os.close(holder)

    assert not old.exists()
    assert held.exists() and fresh.exists() and other.exists()


def test_the_archive_being_written_is_held(gate, usb, monkeypatch):
    """While the backup writes its ``.part``, it holds it: a purge beside it never takes it."""
    data, etc, _ = gate
    real, seen = backup._add_file, []

    def while_writing(tar, member):
        (part,) = [p for p in usb.iterdir() if p.name.endswith(".part")]
        fd = os.open(part, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        seen.append(part.name)
        return real(tar, member)

    monkeypatch.setattr(backup, "_add_file", while_writing)

    assert backup_with(data, etc, usb / "north.kbak", "--plain") == 0

    assert seen and [p.name for p in usb.iterdir()] == ["north.kbak"]
