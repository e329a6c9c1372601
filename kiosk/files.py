"""Reading a file the kiosk did not write itself, bounded before it is read; writing one whole.

A config, a key, a list to import or a calibration file may be anything at all by mistake or
on purpose: a log file, ``/dev/zero``, a FIFO nobody writes, a multi-gigabyte download.
``read_bounded`` reads one byte more than the limit allows and stops, so no such file is read
whole, and says why in words the caller puts behind the file's name in its own error.

``write_atomic`` replaces a file whole (a temp file beside it, fsync, rename, fsync of the
folder): a full or read-only SD card, or a power cut, leaves the old file or the new one, never
a cut-off one under the name asked for. The temp file a power cut left (``.NAME.`` and 8
characters, never read: nothing looks for that name) is removed by the file's next write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

__all__ = [
    "UnreadableFile",
    "ended_read",
    "nearest_folder",
    "read_bounded",
    "read_snapshot",
    "sqlite_read_at_rest",
    "sqlite_read_only",
    "sqlite_whole_file",
    "streamed_rows",
    "write_atomic",
]

Why = Literal["missing", "unreadable", "too_large"]

#: What ``tempfile.mkstemp`` puts after its prefix: 8 of these characters.
_TEMP_TAIL = re.compile(r"[a-z0-9_]{8}")


class UnreadableFile(Exception):
    """Why a file could not be read within its limit ("cannot read: ...", "larger than N
    bytes"); the message does not name the file (the caller's error does). ``why`` says it
    in one word, for callers that treat one case apart (a missing file with a default)."""

    def __init__(self, message: str, why: Why) -> None:
        super().__init__(message)
        self.why = why


#: What ``read_bounded`` says of a path that is neither a file nor a pipe.
NOT_A_FILE = "not a regular file nor a pipe (a device)"


def read_bounded(path: str | Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``: the whole file, or ``UnreadableFile`` when it
    cannot be opened or read, holds more than ``limit`` bytes, or is neither a regular file
    nor a pipe (``/dev/zero``, a tty: never a config). A pipe (``<(cat c.toml)``, ``/dev/stdin``
    at the end of ``|``, a FIFO) is read as its writer writes it, up to its end: opened
    without waiting (``O_NONBLOCK``; a FIFO nobody writes held the verb in ``open`` for ever),
    then read as any stdin (a FIFO with no writer: empty at once). Looked at before it is
    opened and again once open: a device put in its place meanwhile is refused too."""
    try:
        _readable(os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            _readable(os.fstat(fd).st_mode)
            os.set_blocking(fd, True)  # a pipe's writer may not have written yet
            data = handle.read(limit + 1)
    except OSError as exc:
        why: Why = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}", why) from None
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit} bytes", "too_large")
    return data


def _readable(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise UnreadableFile(NOT_A_FILE, "unreadable")


def write_atomic(
    path: str | Path,
    data: bytes,
    mode: int = 0o600,
    *,
    keep_mode: bool = True,
    group: int | None = None,
) -> None:
    """Replace ``path`` with ``data`` whole, durably. A new file gets ``mode`` whatever the
    umask; an existing one keeps its own (``keep_mode=False``: it gets ``mode`` too, for data
    that must never be readable by more than ``mode`` allows, whoever made the old file).
    ``group``: the group id the file is given (before it takes the name, so that no reader of
    that group ever finds it unreadable); None: the one the system gives a new file.
    ``OSError`` when it cannot be done: ``path`` is then as it was and no temp file is left (a
    power cut may leave a hidden ``.NAME.*`` beside it, never a cut-off ``NAME``), except for
    an ``OSError`` of the folder's fsync after the rename: ``path`` then holds ``data``, which
    a power cut may still take back to the old file. A symbolic link is written through: its
    target is replaced."""
    path = Path(os.path.realpath(path))
    try:
        if keep_mode:
            mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        pass
    _remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if group is not None:
                os.fchown(out.fileno(), -1, group)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def nearest_folder(path: Path) -> Path | None:
    """The folder of ``path`` that is there: itself if a folder, else the nearest one above it
    (None when none is: a relative path whose folders are not made yet)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return None


def _remove_leftovers(path: Path) -> None:
    """Remove the temp files an earlier ``write_atomic`` of ``path`` left when the power went
    (regular files named ``.NAME.`` and mkstemp's 8 characters). A write of the same file
    running at this moment in another process would lose its temp file and fail whole: the
    file stays as it was."""
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return  # mkstemp says why, in the caller's error
    for name in names:
        if name.startswith(prefix) and _TEMP_TAIL.fullmatch(name[len(prefix) :]):
            leftover = path.parent / name
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(leftover).st_mode):
                    os.unlink(leftover)


def sqlite_read_only(
    path: Path | str,
    *,
    check_same_thread: bool = True,
    immutable: bool = False,
    factory: type[sqlite3.Connection] = sqlite3.Connection,
) -> sqlite3.Connection:
    """A connection that can only read the SQLite database at ``path`` (``mode=ro``: it never
    creates the file nor writes; the path quoted into the URI, so a ``?`` or ``#`` in a name is
    the name's). ``immutable``: nothing writes the file (no -wal): read without its -shm index,
    in a folder this user cannot write; ``factory``: the connection's class (the event log's
    counted readers). ``sqlite3.Error`` as ``sqlite3.connect`` raises it."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread, factory=factory)


def sqlite_read_at_rest(path: Path | str) -> sqlite3.Connection:
    """``sqlite_read_only`` for a database at rest, that nothing writes while it is read (a
    stopped daemon's event log, a snapshot): one whose file is the whole of it
    (``sqlite_whole_file``) is read as immutable, so that no -wal or -shm is made beside it
    and left there; one with a -wal is read through it."""
    return sqlite_read_only(path, immutable=sqlite_whole_file(path))


def sqlite_whole_file(path: Path | str) -> bool:
    """Whether the SQLite database at ``path`` is a WAL-mode one with no -wal beside it: its
    file alone is then the whole of it (its last connection moved the WAL in and removed it),
    and a read of it that nothing writes meanwhile is made ``immutable``
    (``sqlite_read_only``). Read plainly, SQLite makes a -wal and a -shm beside it even for a
    read-only connection, and leaves them there (only a writer's close removes them). False
    for one in rollback mode (a plain read makes nothing beside it), with a -wal, or that
    cannot be read. A path that is a link is followed first: SQLite keeps the -wal beside the
    file itself, not beside the link (a log on another disk, linked into the data dir)."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    wal_mode = header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"
    return wal_mode and not os.path.exists(f"{path}-wal")


@contextlib.contextmanager
def ended_read(conn: sqlite3.Connection) -> Iterator[None]:
    """Where every read on a read-only connection kept for more reads ends (a thread's reader
    of the event log, the export helper's): however the read fails (a damaged page, an I/O
    error, interrupted), no transaction is left open that was not open before it.

    SQLite keeps the transaction a savepoint began (sqlite-utils' ``query`` runs in one) after
    SQLITE_CORRUPT, even once the savepoint is rolled back and released; left so, the
    connection's next read pins its snapshot: later commits unseen by it, and every WAL
    checkpoint (the retention's wipe of personal data among them) waiting on it, until the
    connection closes. A transaction the caller opened (one snapshot for several reads) is
    the caller's to end. The end asks the connection nothing (``rollback`` with none open
    does nothing): a reader of the event log whose close began refuses every question (a
    closed connection's transaction ended with it)."""
    opened = conn.in_transaction
    try:
        yield
    except BaseException:
        if not opened:
            conn.rollback()
        raise


class Executes(Protocol):
    """What ``streamed_rows`` reads through: a ``sqlite_utils.Database`` (a reader's ends
    its statements in ``ended_read``)."""

    def execute(self, sql: str, parameters: Any = None, /) -> sqlite3.Cursor: ...


@contextlib.contextmanager
def streamed_rows(
    db: Executes, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> Iterator[Iterator[dict[str, Any]]]:
    """The rows of ``sql`` one at a time, as dicts, for a read too large to hold at once (a
    month of passages): its statement ends with the block, however the block ends. A
    statement left open pins its read snapshot (every WAL checkpoint, the retention's wipe
    of the WAL among them, waits on it): a reader's ``query`` reads its rows in full before
    it returns instead, so that no caller can keep one open."""
    cursor = db.execute(sql, params)
    try:
        names = [d[0] for d in cursor.description or ()]
        yield (dict(zip(names, row, strict=True)) for row in cursor)
    finally:
        cursor.close()


@contextlib.contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Every read inside sees one snapshot of the file (a read transaction), however many
    statements it takes; without it each statement sees the writer's latest commit. Inside
    a transaction already, that one is used. Its end asks the connection nothing, as
    ``ended_read``'s."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.rollback()  # none open (the read's error ended it): nothing done
