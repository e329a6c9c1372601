"""A ``--plain`` backup onto a USB stick or a share: its stage beside the archive on a file
system that reports another owner, or locks nothing; and the ``.part`` a killed one left."""

from __future__ import annotations

import errno
import fcntl
import os

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
