"""A write the SD card refused, in the words a Pi owner acts on.

A full card once reached the operator as SQLite's name of it (``kiosk purge``:
``SQLITE_IOERR_SHMSIZE``, ``kiosk lists import --apply``: ``SQLITE_FULL``) or as a bare
``No space left on device``; the guard console said ``last write failed: SQLITE_FULL``. One
reading of the error, here, for every verb of the CLI (``checkpoint.cli.main``) and the
event log's health: ``card_fault`` finds a full, read-only or failing card anywhere in what
was raised (an ``OSError``, an ``sqlite3.Error``, either wrapped by the store or a verb), and
``CardFault.said`` says it: ``the card is full (0.4 MB free at /var/lib/kiosk)``. SQLite says
READONLY also of a file another user owns, on a card that is fine: ``other_owner`` finds
that file and its owner, for the CLI to say whom to run the verb as.

Only the standard library: the CLI reads it without loading the store.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kiosk.files import nearest_folder

#: What the card does, by SQLite's error (a prefix: ``SQLITE_IOERR_READ`` is ``SQLITE_IOERR``;
#: the first that fits wins). The shared-memory file SQLite could not grow (``SHMSIZE``) is a
#: full card: its other I/O errors are a card failing.
SQLITE_KINDS = {
    "SQLITE_IOERR_SHMSIZE": "full",
    "SQLITE_FULL": "full",
    "SQLITE_READONLY": "read_only",
    "SQLITE_IOERR": "io",
}
#: The same, by the system's error of a file the program wrote.
OS_KINDS = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read_only", errno.EIO: "io"}
#: The store's own words for a card it found read-only (``kiosk.store``'s health probe).
READ_ONLY_SAID = "the file system is read-only"


@dataclass(frozen=True)
class CardFault:
    """A card fault: ``kind`` (``full``, ``read_only``, ``io``), the folder the write was in
    (None when nothing raised named one), and its free space then (MB, None if unknown)."""

    kind: str
    where: Path | None
    free_mb: float | None
    medium: str = "the card"
    #: The folder full is SQLite's temp folder (``temp_folder``), not the log's.
    temp: bool = False

    def said(self, *, with_where: bool = True) -> str:
        """``the card is full (0.4 MB free at /var/lib/kiosk)``; without ``with_where`` (a
        report others may read) no path: ``the card is full (0.4 MB free)``. ``the disk``
        for another file system than the Pi's own (a USB stick a backup was written to)."""
        where = str(self.where) if with_where and self.where is not None else ""
        if self.kind == "full":
            free = "" if self.free_mb is None else f"{self.free_mb:.1f} MB free"
            said = " at ".join(part for part in (free, where) if part)
            what = "SQLite's temp folder" if self.temp else self.medium
            return f"{what} is full ({said})" if said else f"{what} is full"
        if self.kind == "read_only":
            return f"{self.medium} is read-only" + (f" ({where})" if where else "")
        at = f" at {where}" if where else ""
        return f"{self.medium} failed a read or write{at} (it may be failing)"


def card_fault(exc: BaseException, where: Path | None = None) -> CardFault | None:
    """The card fault ``exc`` is, or was raised from or while handling (a store's fault
    wrapping SQLite's error, a verb's error raised over either); None when none of them is
    the card's. ``where``: the file or folder written, when nothing raised names one. A
    read-only error on a card that is not mounted read-only (a file of another user) is not
    the card's."""
    kind, named = None, None
    for link in _chain(exc):
        named = named or _named_path(link)
        kind = kind or kind_of(link)
    if kind is None:
        return None
    folder = _folder(named or where)
    if kind == "read_only" and not _mounted_read_only(folder, exc):
        return None
    if kind == "full" and _sqlite_full(exc):  # its temp files' folder, maybe
        fault = temp_fault(folder)
        if fault is not None:
            return fault
    return CardFault(kind, folder, _free_mb(folder), _medium(folder))


def _sqlite_full(exc: BaseException) -> bool:
    """Whether SQLite itself said full (of the log's files or its temp files, it does not say
    which), no file the program wrote did (``ENOSPC``)."""
    links = _chain(exc)
    return not any(isinstance(link, OSError) for link in links) and any(
        isinstance(link, sqlite3.Error) and kind_of(link) == "full" for link in links
    )


#: The folders SQLite writes its temp files in (Unix), the first that is there and writable:
#: ``$SQLITE_TMPDIR``, ``$TMPDIR``, then these.
SQLITE_TEMP_FOLDERS = ("/var/tmp", "/usr/tmp", "/tmp", ".")


def temp_folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder SQLite writes its temp files in, as it chooses it (None: none it can)."""
    environ = os.environ if environ is None else environ
    named = (environ.get("SQLITE_TMPDIR"), environ.get("TMPDIR"), *SQLITE_TEMP_FOLDERS)
    for candidate in (Path(n) for n in named if n):
        if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK):
            return candidate.absolute()
    return None


def temp_fault(folder: Path | None, environ: Mapping[str, str] | None = None) -> CardFault | None:
    """SQLite's FULL of its temp folder: one on another file system than ``folder`` (the
    log's), with less free space (a full /var/tmp or tmpfs, the card with GBs free); None
    when the temp folder is on the log's own, or has more room (the log's is the full one)."""
    temp = temp_folder(environ)
    if folder is None or temp is None or _device(temp) in (None, _device(folder)):
        return None
    free_temp, free = _free_mb(temp), _free_mb(folder)
    if free_temp is None or free is None or free_temp >= free:
        return None
    return CardFault("full", temp, free_temp, _medium(temp), temp=True)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or during, each once."""
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not seen for seen in links):
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def kind_of(exc: BaseException) -> str | None:
    """The card fault ``exc`` itself says (one of ``SQLITE_KINDS``' or ``OS_KINDS``' values),
    or None: not what it was raised from."""
    if isinstance(exc, OSError):
        return OS_KINDS.get(exc.errno or 0)
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return next((k for e, k in SQLITE_KINDS.items() if name.startswith(e)), None)
    if READ_ONLY_SAID in str(exc):
        return "read_only"
    return None


def _named_path(exc: BaseException) -> Path | None:
    """The file ``exc`` names: an ``OSError``'s, a store fault's (its ``path``)."""
    named = exc.filename if isinstance(exc, OSError) else getattr(exc, "path", None)
    return Path(os.fsdecode(named)) if isinstance(named, (str, bytes, Path)) else None


def _folder(path: Path | None) -> Path | None:
    """The folder of ``path`` that is there: itself if a folder, else the nearest above."""
    return None if path is None else nearest_folder(path.absolute())


def _device(folder: Path) -> int | None:
    """The file system ``folder`` is on (its device), None if it cannot be read."""
    try:
        return os.stat(folder).st_dev
    except OSError:
        return None


def _medium(folder: Path | None) -> str:
    """``the card`` for the Pi's own file system (the root's, on its SD card) or one not
    known, ``the disk`` for another (a USB stick, a tmpfs)."""
    try:
        ours = folder is None or os.stat(folder).st_dev == os.stat("/").st_dev
    except OSError:
        ours = True
    return "the card" if ours else "the disk"


def _free_mb(folder: Path | None) -> float | None:
    if folder is None:
        return None
    try:
        return shutil.disk_usage(folder).free / 1_048_576
    except OSError:
        return None


def _mounted_read_only(folder: Path | None, exc: BaseException) -> bool:
    if any(
        isinstance(link, OSError) and link.errno == errno.EROFS or READ_ONLY_SAID in str(link)
        for link in _chain(exc)
    ):
        return True
    try:
        return folder is not None and bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@dataclass(frozen=True)
class OtherOwner:
    """A file of the log (or its folder) this user may not write: its path, owner's uid and
    mode, and its folder's owner and group (whose the kiosk's files are) and whether it is
    shared (sticky or writable by all, as /tmp: no one user's folder to give files back to)."""

    path: Path
    uid: int
    folder: Path
    folder_uid: int
    folder_gid: int
    mode: int = 0o644
    folder_shared: bool = False


def other_owner(exc: BaseException, where: Path | None = None) -> OtherOwner | None:
    """The file of the log another user owns that a read-only refusal in what ``exc`` was
    raised from (SQLite's READONLY) is of, on a card not mounted read-only; ``where``: the
    log, when nothing raised names it. None when the refusal is none, or is the card's, or
    every file of the log is this user's to write."""
    links = _chain(exc)
    if not any(kind_of(link) == "read_only" for link in links):
        return None
    named = next((p for link in links if (p := _named_path(link)) is not None), where)
    if named is None or _mounted_read_only(_folder(named), exc):
        return None
    return unwritable_part(named / "kiosk.db" if named.is_dir() else named)


def unwritable_part(db: Path) -> OtherOwner | None:
    """The first of the log ``db``, its ``-wal``, ``-shm`` and folder that is there
    and this user may not write, and its owner; None when there is none."""
    folder = db.parent
    wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
    try:
        home = folder.stat()
        shared = bool(home.st_mode & (stat.S_ISVTX | stat.S_IWOTH))
        for part in (db, wal, shm, folder):
            if part.exists() and not _may_write(part):
                st = part.stat()
                return OtherOwner(
                    part, st.st_uid, folder, home.st_uid, home.st_gid, st.st_mode, shared
                )
    except OSError:
        return None
    return None


def _may_write(path: Path) -> bool:
    """Whether this process may write ``path`` (its user's rights, as the system judges)."""
    return os.access(path, os.W_OK)
