"""An operator's `sqlite3 kiosk.db 'SELECT ...'` (docs/install.md) beside the running daemon:
another process that opens the log, reads and closes must not find itself the file's last
connection. SQLite's locks on a file are the process's (POSIX), dropped when *any* descriptor
of the file closes: the daemon reading the file outside SQLite lost its locks at each write,
the reader's close then checkpointed and deleted the WAL the daemon went on writing into, and
passages shown as recorded were gone for every other process (and after a restart)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.store import EventLog
from tests.test_store import draft

#: Another process's connection: opens the file, reads, closes (the last-connection check).
_OUTSIDE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT count(*) FROM events").fetchone()[0])
conn.close()
"""


def _outside_count(path) -> int:
    """The events another process sees, through a connection it opens and closes."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _OUTSIDE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


@pytest.fixture
def log(tmp_path, clock):
    event_log = EventLog(tmp_path / "kiosk.db", "gate-1", clock, boot_id="boot-a").open()
    yield event_log
    event_log.close()


def test_an_outside_reader_never_takes_the_wal_from_under_the_running_log(log):
    wal = log.path.with_name(log.path.name + "-wal")
    inode = wal.stat().st_ino  # the log's WAL since it opened (its migrations wrote it)
    log.append(draft())  # a write transaction of the log, ended: nothing of it runs now

    assert _outside_count(log.path) == 1
    assert wal.exists() and wal.stat().st_ino == inode  # the log's WAL, not deleted

    log.append(draft())
    assert _outside_count(log.path) == 2  # the row the gate showed as recorded is there
    log.close()
    assert _outside_count(log.path) == 2  # and after the daemon stopped


def _open_on(path) -> int:
    """How many descriptors of this process are open on ``path``."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd) == str(path))


def _target(fd: Path) -> str | None:
    try:
        return os.readlink(fd)
    except OSError:  # closed since listed
        return None


def test_a_log_closed_and_opened_again_keeps_its_locks_and_leaves_no_descriptor(log):
    """The log's own readers (the web pages') come and go in the daemon's process, and the
    log itself may be closed and opened again: SQLite's own connections, which never drop
    the others' locks; and once closed, nothing of the log holds the file open."""
    log.append(draft())
    assert len(log.events()) == 1  # a reader of the log's, in this process
    log.close()
    assert _open_on(log.path) == 0
    log.open()
    wal = log.path.with_name(log.path.name + "-wal")
    inode = wal.stat().st_ino
    log.append(draft())

    assert _outside_count(log.path) == 2
    assert wal.stat().st_ino == inode
    log.append(draft())
    assert _outside_count(log.path) == 3


def test_a_second_log_of_the_file_closing_leaves_the_first_its_locks(log, clock):
    """Two logs of one file in a process (a verb's beside the daemon's, in tests and the
    bench): the second's close must not drop the first's locks with its descriptor."""
    other = EventLog(log.path, "gate-1", clock, boot_id="boot-b").open()
    other.append(draft())
    other.close()
    wal = log.path.with_name(log.path.name + "-wal")
    inode = wal.stat().st_ino
    log.append(draft())

    assert _outside_count(log.path) == 2
    assert wal.stat().st_ino == inode


def test_logs_of_one_file_share_one_held_descriptor_however_often_opened(log, clock):
    """Each log opened on the file took a descriptor of its own, none closed until the last
    log of the file closed: a verb's log opened and closed beside the daemon's, over and
    over, left one more descriptor each time. The logs of one file share one (docs)."""
    other = EventLog(log.path, "gate-1", clock, boot_id="boot-b").open()
    other.close()
    once = _open_on(log.path)
    for _ in range(5):
        other.open()
        other.close()
    assert _open_on(log.path) == once
    log.append(draft())
    assert _outside_count(log.path) == 1  # the first log keeps its locks all along
