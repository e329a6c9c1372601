"""A gate's backup in one archive, taken from the running kiosk; and its restore onto a Pi.

Why SQLite's online backup API (``Connection.backup``) and not a file copy: a copy of
``kiosk.db`` taken while the daemon writes is a mix of two moments (and without its ``-wal``,
missing the last commits), which is why docs/operations.md said to stop the daemon first. The
backup API copies one consistent snapshot, a few hundred pages a step from a read-only
connection: in WAL mode a reader never holds up the daemon's writer, so the gate goes on
deciding while its backup is taken.

The archive (an uncompressed tar, mode 0600: it holds names, phone numbers, the issuing key and
the credentials) holds ``data/kiosk.db`` (the lists, tokens, guard accounts, ledgers and the
event log), ``data/trust/``, ``data/keys/``, ``data/calibration.json``, ``etc/`` (the config
folder, ``/etc/kiosk``) and last ``MANIFEST.json``: which kiosk and which log (``origin``, its
first event's id) it is, the schema, the ``seq`` range and chain head, when it was taken, and
each member's size, mode and SHA-256, checked again at restore.

A restore is judged before anything is moved (``judge_restore``): the archive whole and
unchanged, its log's chains intact and as its manifest says; an archive of another gate, or of
another log than the one on this Pi, only when told (``as_this_gate``); never one that takes
this Pi's own log back to an earlier ``seq``, of its events or its audit: the office has pulled
(or will) the events since, and its pull must never see the log of a gate going backwards; the
audit rows since would be lost but in the log set aside, and their ``seq``s written again with
other content (docs/operations.md, Backups).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import hashlib
import hmac
import json
import os
import pwd
import re
import shutil
import sqlite3
import stat
import struct
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kiosk.files import sqlite_read_at_rest, sqlite_read_only
from kiosk.store import format_ts, verify_database

FORMAT = "kiosk-backup"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
DB_MEMBER = "data/kiosk.db"
#: Said with every archive made (stderr) and kept in its manifest.
PERSONAL_DATA_WARNING = (
    "this archive holds personal data (residents' names, phone numbers, households, passages),"
    " the issuing key and the kiosk's credentials: keep it encrypted and locked away (the"
    " office safe), never on the kiosk's own card, and delete it once a newer one is kept;"
    " no retention purge ever reaches it"
)
#: Pages a backup step copies (4 MB at SQLite's 4 KiB pages) and the pause between steps.
PAGES_PER_STEP = 1024
STEP_PAUSE_S = 0.005
#: Bounds of an archive read before it is trusted (a USB stick's file may be anything).
MAX_MEMBERS = 1000
MAX_MANIFEST_BYTES = 1_048_576
MAX_SMALL_FILE_BYTES = 16 * 1_048_576
_NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_MEMBER = re.compile(
    rf"(data/kiosk\.db|data/calibration\.json|data/(trust|keys)/{_NAME}|etc/{_NAME}(/{_NAME})?)"
)
#: The top-level names in the data dir an archive brings (``_MEMBER``'s ``data/`` ones).
ARCHIVE_DATA_NAMES = ("kiosk.db", "calibration.json", "trust", "keys")
_CHUNK = 1_048_576


class BackupError(Exception):
    """A backup or restore that cannot be done; nothing was changed (the message says why).
    ``path``: the file it was writing when the storage failed, as the store's faults carry
    it (``kiosk.cardfault`` names its card and free space), else None."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class LogFacts:
    """What a kiosk database says of itself, for the manifest and the restore's judgement."""

    kiosk_id: str | None
    origin: str | None
    first_seq: int | None
    last_seq: int
    head: str | None
    audit_last_seq: int
    schema: dict[str, list[str]]
    verified: bool
    problem: str | None = None
    #: The first audit row's id: which audit chain it is (as ``origin`` is the events').
    audit_origin: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "kiosk_id": self.kiosk_id,
            "origin": self.origin,
            "schema": self.schema,
            "seq": {"first": self.first_seq, "last": self.last_seq},
            "audit_last_seq": self.audit_last_seq,
            "chain_head": self.head,
        }


@dataclass(frozen=True)
class Member:
    """A file put into the archive: its name there and where it is read from."""

    name: str
    source: Path


# -- taking a backup -------------------------------------------------------------------------


def snapshot_database(
    source: Path,
    target: Path,
    *,
    pages: int = PAGES_PER_STEP,
    pause_s: float = STEP_PAUSE_S,
    progress: Callable[[int, int, int], object] | None = None,
) -> None:
    """One consistent copy of ``source`` (a kiosk's database, its daemon running or not) at
    ``target``, with SQLite's online backup, ``pages`` at a time (``progress`` called after
    each step, as by ``sqlite3.Connection.backup``). ``source`` is opened read-only: nothing
    of the daemon's is written.

    The copy reads one snapshot, the read transaction held on ``source`` from its first step
    to its last: left to itself, SQLite starts a backup over at any commit of another
    connection between two steps, and a gate that commits more often than its copy takes
    (a busy morning, the peers' polls) was never backed up. In WAL mode a reader never holds
    up the writer: the daemon commits on meanwhile, into its WAL."""
    try:
        src = sqlite_read_only(source)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from None
    try:
        src.isolation_level = None  # the transaction is this function's, said below
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot, taken
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=pages, sleep=pause_s, progress=progress)
            # A single file that opens anywhere: not WAL, whose -wal would have to travel too.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            raise BackupError(
                f"cannot write the copy in {target.parent}: no space left", path=target
            ) from None
        raise BackupError(f"cannot copy {source} to {target.parent}: {exc}", path=target) from None
    finally:
        src.close()


def describe_log(path: Path, *, staged: Staged | None = None) -> LogFacts:
    """The facts of the kiosk database at ``path`` (read-only), its chains verified.
    ``staged``: the held stage ``path`` is in, whose very file is read (``Staged.reading``)."""
    with staged.reading(path.name) if staged is not None else reading(path) as conn:
        try:
            result = verify_database(conn)
            newest = _one(conn, "SELECT kiosk_id, seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            first = _one(conn, "SELECT id, seq FROM events ORDER BY seq LIMIT 1")
            audit = _one(conn, "SELECT kiosk_id, seq FROM audit ORDER BY seq DESC LIMIT 1")
            audit_first = _one(conn, "SELECT id FROM audit ORDER BY seq LIMIT 1")
            schema: dict[str, list[str]] = {}
            for name, step in conn.execute(
                "SELECT migration_set, name FROM _sqlite_migrations ORDER BY applied_at, rowid"
            ):
                schema.setdefault(str(name), []).append(str(step))
        except sqlite3.Error as exc:
            raise BackupError(f"{path}: not a readable kiosk database: {exc}") from None
    owner = newest[0] if newest else audit[0] if audit else None
    return LogFacts(
        kiosk_id=None if owner is None else str(owner),
        origin=None if first is None else str(first[0]),
        first_seq=None if first is None else int(first[1]),
        last_seq=int(newest[1]) if newest else 0,
        head=None if newest is None else str(newest[2]),
        audit_last_seq=int(audit[1]) if audit else 0,
        schema=schema,
        verified=result.ok,
        problem=result.problem,
        audit_origin=None if audit_first is None else str(audit_first[0]),
    )


def reading(path: Path) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    """The SQLite database at ``path`` open read-only (``kiosk.files.sqlite_read_only``),
    closed after; ``BackupError`` when it cannot be opened. Only a log at rest is read so (a
    stopped daemon's, a snapshot): nothing is made beside it (``sqlite_read_at_rest``; a
    restore refused after it read this Pi's log left its -wal and -shm in the data dir)."""
    return _opened(lambda: sqlite_read_at_rest(path), path)


@contextmanager
def _opened(connect: Callable[[], sqlite3.Connection], shown: Path) -> Iterator[sqlite3.Connection]:
    """The connection ``connect`` opens, closed after; ``BackupError`` naming ``shown`` when
    it cannot be opened."""
    try:
        conn = connect()
    except sqlite3.Error as exc:
        raise BackupError(f"{shown}: cannot open: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()


def _one(conn: sqlite3.Connection, sql: str) -> tuple[Any, ...] | None:
    row = conn.execute(sql).fetchone()
    return None if row is None else tuple(row)


def data_members(data: Path, snapshot: Path, trust: Path) -> list[Member]:
    """The data dir's part of the archive: the database's snapshot, the trust folder, the
    issuing keys and the calibration (those that are there)."""
    members = [Member(DB_MEMBER, snapshot)]
    for folder, name in ((trust, "trust"), (data / "keys", "keys")):
        members += [Member(f"data/{name}/{p.name}", p) for p in _files_in(folder)]
    calibration = data / "calibration.json"
    if calibration.is_file():
        members.append(Member("data/calibration.json", calibration))
    return members


def etc_members(etc: Path) -> list[Member]:
    """The config folder's files (one level of folders: ``credentials/``), none of the
    ``before-restore-*`` folders a restore left."""
    members = []
    for path in _files_in(etc, folders=True):
        relative = path.relative_to(etc)
        if not relative.parts[0].startswith("before-restore-"):
            members.append(Member(f"etc/{relative.as_posix()}", path))
    return members


def _files_in(folder: Path, *, folders: bool = False) -> list[Path]:
    try:
        paths = sorted(folder.iterdir())
    except OSError:  # not there, or not this user's to list (root's credentials folder)
        return []
    found = []
    for path in paths:
        if path.is_symlink():
            continue
        if path.is_file() and _MEMBER.fullmatch(f"etc/{path.name}"):
            found.append(path)
        elif folders and path.is_dir():
            found += _files_in(path)
    return found


def build_manifest(facts: LogFacts, created_at: datetime, version: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": format_ts(created_at),
        "program_version": version,
        **facts.summary(),
        "warning": PERSONAL_DATA_WARNING,
        "files": [],
    }


def write_archive(
    target: Path,
    members: Iterable[Member],
    manifest: dict[str, Any],
    passphrase: bytes | None = None,
) -> None:
    """The archive at ``target``, mode 0600, whole or not at all: written to a hidden temp
    file beside it, synced, renamed; sealed with ``passphrase`` (below), None: plain. A full
    disk (or any failure) removes the temp file and leaves what was at ``target`` before;
    ``BackupError`` says why (also a passphrase ``passphrase_too_short`` refuses)."""
    short = None if passphrase is None else passphrase_too_short(passphrase)
    if short is not None:
        raise BackupError(short)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        hold(fd)  # a purge beside it (``remove_parts``) never takes it
        with os.fdopen(fd, "wb") as raw:
            sink = None if passphrase is None else Encrypting(raw, passphrase)
            into: Any = raw if sink is None else sink
            with tarfile.open(fileobj=into, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for member in members:
                    manifest["files"].append(_add_file(tar, member))
                body = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
                _add_bytes(tar, MANIFEST, body)
            if sink is not None:
                sink.finish()
            raw.flush()
            os.fsync(raw.fileno())
            os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BackupError(
                f"cannot write {target}: {exc.strerror or exc}; nothing kept"
            ) from None
        raise
    _sync_folder(target.parent)


def _add_file(tar: tarfile.TarFile, member: Member) -> dict[str, Any]:
    """Adds ``member`` as it is read now (hashed as it is read) and says it for the manifest."""
    with open(member.source, "rb") as handle:
        st = os.fstat(handle.fileno())
        info = tarfile.TarInfo(member.name)
        info.size, info.mode, info.mtime = st.st_size, 0o600, int(st.st_mtime)
        digest = hashlib.sha256()
        tar.addfile(info, _Hashing(handle, digest, st.st_size))
    return {
        "name": member.name,
        "size": st.st_size,
        "mode": st.st_mode & 0o777,
        "owner": _name_of(pwd.getpwuid, st.st_uid),
        "group": _name_of(grp.getgrgid, st.st_gid),
        "sha256": digest.hexdigest(),
    }


def _name_of(lookup: Callable[[int], Any], number: int) -> str | None:
    try:
        return str(lookup(number)[0])
    except KeyError:  # a number with no name here
        return None


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


class _Hashing:
    """A file read by ``tarfile`` that hashes what it gives and gives no more than ``size``
    (a file that grew since its size was taken would make a tar member longer than said)."""

    def __init__(self, handle: IO[bytes], digest: Any, size: int) -> None:
        self._handle, self._digest, self._left = handle, digest, size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._handle.read(n)
        if len(data) < n:
            raise BackupError(f"{self._handle.name}: shrank while it was read")
        self._left -= len(data)
        self._digest.update(data)
        return data


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading an archive ----------------------------------------------------------------------


@dataclass
class Archive:
    """An archive opened and checked for shape: its manifest and members by name."""

    path: Path
    manifest: dict[str, Any]
    members: dict[str, tarfile.TarInfo]
    tar: tarfile.TarFile = field(repr=False)

    @property
    def kiosk_id(self) -> str | None:
        value = self.manifest.get("kiosk_id")
        return value if isinstance(value, str) else None

    def close(self) -> None:
        self.tar.close()


@contextmanager
def open_archive(path: Path, passphrase: bytes | None = None) -> Iterator[Archive]:
    """``path`` read as a kiosk backup, plain or sealed (``passphrase``); ``BackupError`` for
    anything else (not a tar, a wrong passphrase, a sealed chunk altered, a member that is a
    link or named outside the archive's places, too many, a manifest that does not list
    exactly its members)."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file (a kiosk backup is one file)")
    sealed = None
    try:
        if is_encrypted(path):
            if passphrase is None:
                raise BackupError(f"{path}: encrypted; give its passphrase (--passphrase-file)")
            sealed = Decrypting(open(path, "rb"), passphrase)  # noqa: SIM115 (closed below)
        source: Any = sealed  # read, seek, tell: the file tarfile asks for
        tar = tarfile.open(path, "r:", fileobj=source)  # noqa: SIM115 (closed below)
    except BaseException as exc:
        if sealed is not None:
            sealed.close()
        if isinstance(exc, tarfile.TarError | OSError):
            raise BackupError(f"{path}: not a kiosk backup (not a tar archive: {exc})") from None
        raise
    try:
        yield _checked(path, tar)
    except tarfile.TarError as exc:
        raise BackupError(f"{path}: damaged archive: {exc}") from None
    finally:
        tar.close()
        if sealed is not None:
            sealed.close()


def _checked(path: Path, tar: tarfile.TarFile) -> Archive:
    members: dict[str, tarfile.TarInfo] = {}
    for count, info in enumerate(tar, 1):
        if count > MAX_MEMBERS:
            raise BackupError(f"{path}: more than {MAX_MEMBERS} files: not a kiosk backup")
        name = info.name
        if not info.isreg() or not (name == MANIFEST or _MEMBER.fullmatch(name)):
            raise BackupError(f"{path}: {name[:100]!r} is not a file a kiosk backup holds")
        if name in members:
            raise BackupError(f"{path}: {name} twice")
        if name not in (DB_MEMBER, MANIFEST) and info.size > MAX_SMALL_FILE_BYTES:
            raise BackupError(f"{path}: {name} of {info.size} bytes: no key or config is")
        members[name] = info
    manifest = _manifest(path, tar, members.pop(MANIFEST, None))
    entries = manifest["files"]
    listed = {entry.get("name") for entry in entries if isinstance(entry, dict)}
    if len(listed) != len(entries) or listed != set(members) or DB_MEMBER not in members:
        raise BackupError(f"{path}: its files are not those its manifest lists (cut or altered)")
    return Archive(path, manifest, members, tar)


def _manifest(path: Path, tar: tarfile.TarFile, info: tarfile.TarInfo | None) -> dict[str, Any]:
    if info is None or info.size > MAX_MANIFEST_BYTES:
        raise BackupError(f"{path}: no {MANIFEST} (cut short, or not a kiosk backup)")
    handle = tar.extractfile(info)
    try:
        manifest = json.loads(handle.read() if handle else b"")
    except ValueError:
        raise BackupError(f"{path}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a kiosk backup ({MANIFEST} of another kind)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path}: a kiosk backup of format {manifest.get('format_version')!r}; this"
            f" program reads format {FORMAT_VERSION} (restore it with the version that made it)"
        )
    if not isinstance(manifest.get("files"), list):
        raise BackupError(f"{path}: {MANIFEST} lists no files")
    return manifest


@dataclass(frozen=True)
class Placed:
    """How a file was when it was backed up: its mode, and its owner's and group's names
    (``/etc/kiosk/kiosk.toml`` is ``root:kiosk`` 0640: the service reads it by its group)."""

    mode: int
    owner: str | None
    group: str | None


def extract_all(
    archive: Archive, stages: Mapping[str, Path | None]
) -> dict[str, dict[Path, Placed]]:
    """Every member written under the stage of its top folder (``data``, ``etc``; None: not
    restored) and checked; how each was at backup, by its path in the stage. Written through
    the stage's descriptor, opened once (a folder of this user's, never a link) and its
    folders' (made there, 0700 for keys, else 0750): a stage swapped for a link meanwhile
    has no file made where it points, and is refused after (``NotOurFolder``)."""
    placed: dict[str, dict[Path, Placed]] = {top: {} for top in stages}
    for top, stage in stages.items():
        if stage is None:
            continue
        with _folder_fd(stage, ours=True) as fd:
            for name in sorted(n for n in archive.members if n.partition("/")[0] == top):
                rest = name.partition("/")[2]
                placed[top][stage / rest] = _extract(archive, name, (stage, fd), rest)
            here = os.lstat(stage)
            if (here.st_dev, here.st_ino) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                raise NotOurFolder(
                    f"{stage} is not a folder of this user's (it was replaced while the"
                    f" archive's files were written into it): {_MAKES_ITS_OWN}"
                )
    return placed


def _extract(archive: Archive, name: str, stage: tuple[Path, int], target: str) -> Placed:
    """Member ``name`` written to ``target``, a path in ``stage`` (its path and descriptor),
    mode 0600, synced, a new file never through a link, and checked against the manifest's
    SHA-256; how it was at backup is returned. ``BackupError`` if it differs."""
    entry = next(e for e in archive.manifest["files"] if e.get("name") == name)
    info = archive.members[name]
    source = archive.tar.extractfile(info)
    if source is None:
        raise BackupError(f"{archive.path}: {name} cannot be read")
    digest = hashlib.sha256()
    within, leaf = Path(target).parent, Path(target).name
    _make_parents(target, stage[1], 0o700 if within.name in _PRIVATE else 0o750)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with _path_fd(*stage, within, no_link=True) as into:
        fd = os.open(leaf, flags, 0o600, dir_fd=into)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != entry.get("sha256") or info.size != entry.get("size"):
        raise BackupError(f"{archive.path}: {name} is not the file backed up (altered or damaged)")
    mode = entry.get("mode")
    owner, group = entry.get("owner"), entry.get("group")
    return Placed(
        mode & 0o777 if isinstance(mode, int) and not isinstance(mode, bool) else 0o600,
        owner if isinstance(owner, str) else None,
        group if isinstance(group, str) else None,
    )


#: The folders an archive's files are staged in 0700 (keys): the others 0750.
_PRIVATE = ("keys", "credentials")


# -- judging a restore -----------------------------------------------------------------------


def judge_restore(
    manifest: Mapping[str, Any],
    restored: LogFacts,
    current: LogFacts | None,
    this_gate: str | None,
    *,
    as_this_gate: bool,
) -> int:
    """Whether the archive's log (``restored``, its chains checked) may replace this Pi's
    (``current``, None when there is none or it is empty) on the gate configured here
    (``this_gate``); ``BackupError`` saying why not. Nothing has been moved yet. Returns
    how many audit rows of this Pi's the restored log does not hold (those of another log
    it replaces: this Pi's own never go, ``_backwards``), to be said kept aside."""
    if not restored.verified:
        raise BackupError(f"the archive's event log does not verify: {restored.problem}")
    seq = manifest.get("seq")
    last = seq.get("last") if isinstance(seq, dict) else None
    named = (
        manifest.get("origin"),
        last,
        manifest.get("chain_head"),
        manifest.get("audit_last_seq"),
    )
    if named != (restored.origin, restored.last_seq, restored.head, restored.audit_last_seq):
        raise BackupError("the archive's event log is not the one its manifest names")
    other = current.kiosk_id if current is not None and current.kiosk_id else this_gate
    if other is not None and restored.kiosk_id not in (None, other) and not as_this_gate:
        raise BackupError(
            f"the archive is of kiosk {restored.kiosk_id!r} and this is {other!r}: restore"
            " another gate's backup here only to make this Pi that gate (--as-this-gate), never"
            " while that gate runs too (two gates, one log)"
        )
    if current is None:
        return 0
    if same_log(restored, current):
        _backwards(restored, current)
        return 0
    if current.last_seq and not as_this_gate:
        raise BackupError(
            f"this Pi holds another event log (origin {current.origin}, seq up to"
            f" {current.last_seq}) than the archive's ({restored.origin}): replacing it is"
            " done only when told (--as-this-gate); it is kept aside either way"
        )
    return current.audit_last_seq


def same_log(restored: LogFacts, current: LogFacts) -> bool:
    """Whether the two are one log: the same first event, or the same first audit row (a
    log with no events yet, its audit begun: tokens made, a daemon started)."""
    return any(
        mine is not None and mine == theirs
        for mine, theirs in (
            (current.origin, restored.origin),
            (current.audit_origin, restored.audit_origin),
        )
    )


def _backwards(restored: LogFacts, current: LogFacts) -> None:
    """``BackupError`` when the archive's log, this Pi's own, ends before it in its events or
    its audit (``--as-this-gate`` or not): never taken back. The office pulls the events and
    must never see them go backwards; the audit rows since (who exported personal data, who
    changed what) would be left only in the log set aside, which retention deletes, and the
    next ones numbered with their seqs."""
    events = current.last_seq - restored.last_seq
    audits = current.audit_last_seq - restored.audit_last_seq
    lost: list[str] = []
    why: list[str] = []
    if events > 0:
        lost.append("1 event" if events == 1 else f"{events} events")
        why.append(
            "the office, which has pulled or will pull the events since, would see it go backwards"
        )
    if audits > 0:
        lost.append("1 audit row" if audits == 1 else f"{audits} audit rows")
        why.append(
            "the audit rows since (who exported personal data, who changed what) would be"
            " kept only in the log set aside, which retention deletes, and the next would be"
            " numbered with their seqs"
        )
    if not lost:
        return
    raise BackupError(
        f"the archive's log ends at seq {restored.last_seq} and audit seq"
        f" {restored.audit_last_seq}, this Pi's same log at seq {current.last_seq} and audit"
        f" seq {current.audit_last_seq}: restoring it would take the gate's log back"
        f" ({' and '.join(lost)}): {'; '.join(why)}. Keep this Pi's log (docs/operations.md,"
        " Backups)"
    )


def put_aside(folder: Path, names: Iterable[str], stamp: str) -> Path | None:
    """Moves each of ``names`` (paths under ``folder``: ``trust``, ``credentials/tls_key``)
    that is there into ``folder/before-restore-STAMP`` (made 0700, never one there already:
    ``NotOurFolder``), at the same path; that folder, or None when there was nothing to keep."""
    present = [name for name in names if os.path.lexists(folder / name)]
    if not present:
        return None
    aside = folder / f"before-restore-{stamp}"
    with _folder_fd(folder) as there:
        try:
            os.mkdir(aside.name, 0o700, dir_fd=there)  # never through a link planted there
        except FileExistsError:
            raise NotOurFolder(f"{aside} is there already: {_MAKES_ITS_OWN}") from None
        with _folder_fd(aside, dir_fd=there, ours=True) as kept:
            for name in present:
                _make_parents(name, kept)
                _move(name, (folder, there), (aside, kept))  # never through a link in its folders
    _sync_folder(folder)
    return aside


class NotOurFolder(BackupError):
    """A folder a restore makes or moves files through is a link, no folder, or another
    user's: the data dir is the service's user's, and one it put there would have root
    move this Pi's files, or give a folder away, where it points."""


class NoProc(BackupError):
    """``/proc`` is not mounted (a rescue shell's chroot): a restore cannot reach its stage
    by the descriptor it holds, nor check what SQLite opened (``Staged.connect``)."""


_MAKES_ITS_OWN = (
    "a restore makes its own folders, and moves nothing through one it did not make"
    " (a link, or a folder another user put there); remove it, then run the restore again"
)


def our_folder(path: Path) -> None:
    """``NotOurFolder`` unless ``path`` is a folder (not a link to one) of this user's."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise NotOurFolder(f"{path} cannot be looked at ({exc.strerror})") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise NotOurFolder(f"{path} is not a folder of this user's: {_MAKES_ITS_OWN}")


@contextmanager
def _folder_fd(
    path: Path, *, dir_fd: int | None = None, no_link: bool = False, ours: bool = False
) -> Iterator[int]:
    """``path`` (its name in ``dir_fd``) opened as a folder for moves relative to it: nothing
    put in its place meanwhile counts. With ``no_link`` never through a link, with ``ours``
    neither, and a folder of this user's; else ``NotOurFolder``."""
    no_link = no_link or ours
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if no_link else 0)
    try:
        fd = os.open(path if dir_fd is None else path.name, flags, dir_fd=dir_fd)
    except OSError:
        if not no_link:
            raise
        raise NotOurFolder(f"{path} is not a folder of this user's: {_MAKES_ITS_OWN}") from None
    try:
        if ours and os.fstat(fd).st_uid != os.geteuid():
            raise NotOurFolder(f"{path} is not a folder of this user's: {_MAKES_ITS_OWN}")
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _path_fd(folder: Path, fd: int, within: Path, **how: bool) -> Iterator[int]:
    """Folder ``within`` of ``folder`` (open as ``fd``) opened a step at a time (``how``: as
    ``_folder_fd``), never through a link where ``how`` says so."""
    with contextlib.ExitStack() as steps:
        for step in reversed([within, *within.parents[:-1]]) if within.parts else ():
            fd = steps.enter_context(_folder_fd(folder / step, dir_fd=fd, **how))
        yield fd


def replaced_in_data(member_names: Iterable[str], db_name: str) -> list[str]:
    """What a restore puts aside in the data dir: the database with its ``-wal``/``-shm``
    always, and the trust list, keys and calibration the archive brings (one without keys
    leaves this Pi's issuing key where it is)."""
    names = [db_name, f"{db_name}-wal", f"{db_name}-shm"]
    for name in sorted(member_names):
        top = name.split("/")[1] if name.startswith("data/") else None
        if top is not None and top != "kiosk.db" and top not in names:
            names.append(top)
    return names


#: In the data dir while a restore's files and this Pi's change places: what moves where
#: (``Swap``s), written and synced before the first move, removed once the last is done. A
#: restore cut off between (a power cut, a kill) leaves it: the daemon refuses to start on
#: it (``restore_cut_off``), and the next ``kiosk restore`` (or ``--undo``) puts this Pi's
#: files back (``undo_restore``) before anything else. Without it, the cut left a data dir
#: with no kiosk.db, on which the daemon began a new, empty log under the restored id.
RESTORE_MARKER = "restore-in-progress.json"
#: The hidden folders a restore stages the archive's files in (data dir, config folder).
RESTORE_STAGE_PREFIX = ".restore-"
#: The hidden folder ``kiosk backup`` copies the database into before it goes into the
#: archive: the data dir when the archive is sealed, the archive's folder when ``--plain``.
BACKUP_STAGE_PREFIX = ".kiosk-backup-"
#: A stage folder older than this, that no run holds (``held_stage``), is one a killed backup
#: or restore left (files in clear).
STAGE_LEFT_S = 3600


@dataclass(frozen=True)
class Swap:
    """One folder's part of a restore: ``names`` of ``folder`` put aside into ``aside``,
    the archive's ``files`` (paths under ``stage``, made in ``folder``: one file system)
    moved to the same place, and the folders above them ``folder`` did not have (``made``:
    what an undo removes once empty again, and nothing else)."""

    folder: Path
    stage: Path
    names: tuple[str, ...]
    stamp: str
    files: tuple[str, ...] = ()
    made: tuple[str, ...] = ()

    @property
    def aside(self) -> Path:
        return self.folder / f"before-restore-{self.stamp}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder.absolute()),  # an undo run from another folder
            "stage": self.stage.name,
            "names": list(self.names),
            "stamp": self.stamp,
            "files": list(self.files),
            "made": list(self.made),
        }

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Swap:
        """A swap as ``RESTORE_MARKER`` says it; ``BackupError`` for a stage, a stamp or a
        path that no restore writes (absolute, ``..``: never a move outside its folder)."""
        folder = Path(entry["folder"])
        stage, stamp = str(entry["stage"]), str(entry["stamp"])
        names = tuple(str(n) for n in entry["names"])
        files = tuple(str(f) for f in entry["files"])
        made = tuple(str(f) for f in entry.get("made", ()))  # none in an older restore's
        if not stage.startswith(RESTORE_STAGE_PREFIX) or "/" in stage:
            raise BackupError(f"{RESTORE_MARKER}: names no restore's stage ({stage[:60]!r})")
        if not SET_ASIDE.fullmatch(f"before-restore-{stamp}"):
            raise BackupError(f"{RESTORE_MARKER}: no restore's time ({stamp[:60]!r})")
        for path in names + files + made:
            if Path(path).is_absolute() or ".." in Path(path).parts or not path.strip("./"):
                raise BackupError(f"{RESTORE_MARKER}: {path[:60]!r} is no path a restore moves")
        return cls(folder, folder / stage, names, stamp, files, made)


def swap_all(data: Path, swaps: Iterable[Swap]) -> list[Path | None]:
    """Each swap's files put aside and the archive's moved in (``swap_in``), as one step:
    ``RESTORE_MARKER`` first, in ``data``, so a restore cut off part way is undone by the
    next (``undo_restore``); a failure here undoes them all at once. The folders put aside
    (None: nothing was there); the stages, emptied, removed."""
    swaps = [replace(s, files=tuple(_files_under(s.stage))) for s in swaps]
    swaps = [replace(s, made=_not_there(s.folder, s.files)) for s in swaps]
    marker = data / RESTORE_MARKER
    for swap in swaps:  # refused before anything moves
        our_folder(swap.stage)
        if os.path.lexists(swap.aside):
            raise NotOurFolder(f"{swap.aside} is there already: {_MAKES_ITS_OWN}")
    for swap in swaps:
        _sync_tree(swap.stage)  # the archive's files there before the marker says they are
    _write_synced(marker, json.dumps({"swaps": [s.as_dict() for s in swaps]}).encode())
    try:
        asides = [swap_in(swap) for swap in swaps]
    except BaseException:
        _undo(data, swaps)
        raise
    marker.unlink()
    _sync_folder(data)
    for swap in swaps:
        shutil.rmtree(swap.stage, ignore_errors=True)
    return asides


def _not_there(folder: Path, files: Iterable[str]) -> tuple[str, ...]:
    """The folders above ``files`` that ``folder`` does not have: the move-in makes them."""
    above = sorted({p for f in files for p in Path(f).parents} - {Path(".")})
    with _folder_fd(folder) as there:
        return tuple(str(p) for p in above if not _lexists(str(p), there))


def swap_in(swap: Swap) -> Path | None:
    """``swap.names`` put aside (``put_aside``) and the staged files moved in, each by its
    folders' descriptors, never through a link (``NotOurFolder``); the folders the move-in
    made given their mode and owner as staged. The folder put aside, or None. Only under
    ``swap_all``, whose marker undoes a part done."""
    aside = put_aside(swap.folder, swap.names, swap.stamp)
    with (
        _folder_fd(swap.folder) as there,
        _folder_fd(swap.stage, dir_fd=there, ours=True) as stage,
    ):
        for name in swap.files:
            _make_parents(name, there)
            within, leaf = Path(name).parent, Path(name).name
            with (
                _path_fd(swap.stage, stage, within) as out,
                _path_fd(swap.folder, there, within, ours=True) as into,
            ):
                os.replace(leaf, leaf, src_dir_fd=out, dst_dir_fd=into)
        for folder in sorted({p for f in swap.files for p in Path(f).parents} - {Path(".")}):
            with (
                _path_fd(swap.stage, stage, folder) as staged,
                _path_fd(swap.folder, there, folder, no_link=True) as made,
            ):
                st = os.fstat(staged)  # the service's user's, mode 0700 for keys/
                os.chmod(made, stat.S_IMODE(st.st_mode))
                os.fchown(made, st.st_uid, st.st_gid)
    _sync_folder(swap.folder)
    return aside


def restore_cut_off(data: Path) -> str | None:
    """Why nothing may open or begin the log in ``data``: a restore was cut off there part
    way (``RESTORE_MARKER``), its files and this Pi's half changed; None when none was."""
    if not os.path.lexists(data / RESTORE_MARKER):
        return None
    return (
        f"a restore into {data} was cut off part way ({RESTORE_MARKER} is there): this Pi's"
        " files and the archive's are half changed places. Put this Pi's back with `sudo"
        f" /opt/kiosk/current/venv/bin/kiosk restore --undo --data {data}` (or run the restore"
        " again), then start the kiosk (docs/operations.md, Backups)"
    )


def undo_restore(data: Path, etc: Path) -> bool:
    """A restore cut off in ``data`` (``RESTORE_MARKER``) undone: the archive's files moved
    in go back to their stage, this Pi's come back from ``before-restore-*``, the marker and
    the stages go. Safe to run again if cut off itself. Whether there was one. Only a marker
    this user wrote (the data dir is the service's user's: one it wrote would have root move
    files at its word), naming only ``data`` and the config folder ``etc``."""
    marker = data / RESTORE_MARKER
    if not os.path.lexists(marker):
        return False
    try:
        with _folder_fd(data) as there:
            swaps = [Swap.of(entry) for entry in _said(data, there, ours=True)["swaps"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{marker}: cannot be read ({exc})") from None
    ours = {data.resolve(), etc.resolve()}
    if any(swap.folder.resolve() not in ours for swap in swaps):
        raise BackupError(f"{marker}: names a folder that is neither {data} nor {etc}")
    _undo(data, swaps)
    return True


def _said(folder: Path, there: int, *, ours: bool) -> Any:
    """What ``RESTORE_MARKER`` in ``folder`` (open as ``there``) says, read once from the
    file opened by the folder's descriptor (never through a link, never a FIFO's wait):
    ``BackupError`` unless a file, and with ``ours`` one this user wrote."""
    marker = folder / RESTORE_MARKER
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(RESTORE_MARKER, flags, dir_fd=there)
    except OSError as exc:
        raise BackupError(f"{marker}: not written by this user ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as said:
        st = os.fstat(said.fileno())
        if not stat.S_ISREG(st.st_mode) or (ours and st.st_uid != os.geteuid()):
            raise BackupError(f"{marker}: not written by this user (a restore runs as root)")
        return json.loads(said.read(MAX_MANIFEST_BYTES))


def _undo(data: Path, swaps: list[Swap]) -> None:
    """Each swap undone, last first; then the marker, then the stages (never a stage while
    the marker names it: a second undo finds the archive's files there, not this Pi's).
    A stage or a folder set aside that is not a real folder of this user's is refused
    before anything moves (``NotOurFolder``): the data dir is the service's user's."""
    for swap in swaps:
        for folder in (swap.stage, swap.aside):
            if os.path.lexists(folder):
                our_folder(folder)
    for swap in reversed(swaps):
        with _folder_fd(swap.folder) as there:
            _undo_one(swap, there)
        _sync_folder(swap.folder)
    (data / RESTORE_MARKER).unlink(missing_ok=True)
    _sync_folder(data)
    for swap in swaps:
        shutil.rmtree(swap.stage, ignore_errors=True)  # never through a link


def _undo_one(swap: Swap, there: int) -> None:
    """The archive's files moved in (``swap.files``) back to the stage, this Pi's back from
    the folder set aside, that folder removed: each by the folders' descriptors, never
    through a link (``NotOurFolder``)."""
    if swap.files:
        with contextlib.suppress(FileExistsError):
            os.mkdir(swap.stage.name, 0o700, dir_fd=there)
        with _folder_fd(swap.stage, dir_fd=there, ours=True) as stage:
            for name in reversed(swap.files):  # the archive's, moved in: back to the stage
                if _lexists(name, there) and not _lexists(name, stage):
                    _make_parents(name, stage)
                    _move(name, (swap.folder, there), (swap.stage, stage))
    _remove_made(swap, there)
    if not _lexists(swap.aside.name, there):
        return
    with _folder_fd(swap.aside, dir_fd=there, ours=True) as kept:
        for name in swap.names:
            if _lexists(name, kept):
                _remove_empty(swap.folder / name)
                _move(name, (swap.aside, kept), (swap.folder, there))
    shutil.rmtree(swap.aside.name, dir_fd=there)


def _remove_made(swap: Swap, there: int) -> None:
    """The folders the move-in made (``swap.made``) removed, deepest first, each one empty
    again: one holding anything the archive did not bring is left as it is."""
    for made in sorted(map(Path, swap.made), key=lambda p: len(p.parts), reverse=True):
        if _lexists(str(made), there):
            with (
                _path_fd(swap.folder, there, made.parent, no_link=True) as above,
                contextlib.suppress(OSError),  # not empty, or no folder: none the restore made
            ):
                os.rmdir(made.name, dir_fd=above)


def _move(name: str, source: tuple[Path, int], target: tuple[Path, int]) -> None:
    """``name`` (a path under both folders, each as its path and descriptor) moved from
    ``source`` to ``target``, through no link on either side."""
    within, leaf = Path(name).parent, Path(name).name
    with (
        _path_fd(*source, within, no_link=True) as out,
        _path_fd(*target, within, no_link=True) as into,
    ):
        os.replace(leaf, leaf, src_dir_fd=out, dst_dir_fd=into)


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def _make_parents(name: str, dir_fd: int, mode: int = 0o700) -> None:
    """The folders above ``name`` made (``mode``) in ``dir_fd``'s folder, one of this user's,
    at any depth: each in the one above by its descriptor, never through a link
    (``NotOurFolder``: one there already that is a link or no folder). Made by their paths
    from ``dir_fd``, ``a/b`` went through a link put at ``a``."""
    with contextlib.ExitStack() as steps:
        fd, within = dir_fd, Path()
        for part in Path(name).parent.parts:
            within /= part
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, mode, dir_fd=fd)
            fd = steps.enter_context(_folder_fd(within, dir_fd=fd, no_link=True))


#: What ``flock`` fails with where a file system locks nothing (NFS, some FUSE ones).
_NOT_LOCKABLE = (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP)


def hold(fd: int) -> None:
    """An exclusive lock on ``fd`` (the system lets go when the run ends however it ends);
    none where the file system locks nothing: the run goes on unheld, and a purge then takes
    what it left only once ``STAGE_LEFT_S`` old, as it does a killed run's."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in _NOT_LOCKABLE:
            raise


@dataclass(frozen=True)
class Staged:
    """A stage a run holds (``held_stage``): its path, and the descriptor it was opened by
    when made. What takes a file only by its path (SQLite: the restore's description of the
    staged log, its forgets made again) is given the held descriptor's (``sqlite_path``),
    and each connection is checked once open to hold only the stage's files (``connect``):
    the stage is in the data dir, whose user may put a link in its place (``NotOurFolder``)."""

    path: Path
    fd: int

    def check(self) -> None:
        """``NotOurFolder`` unless the stage's path is still the folder held, no link."""
        try:
            same = os.path.samestat(os.lstat(self.path), os.fstat(self.fd))
        except OSError:
            same = False
        if not same:
            raise NotOurFolder(
                f"{self.path} is not a folder of this user's (it was replaced after the"
                f" archive's files were written into it): {_MAKES_ITS_OWN}"
            )

    def file(self, name: str) -> Path:
        """The path of file ``name`` in the stage, once the stage's path is the folder held
        and ``name`` a file there (no link)."""
        self.check()
        if not stat.S_ISREG(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode):
            raise NotOurFolder(f"{self.path / name} is not a file of this user's staged there")
        return self.path / name

    def rename(self, name: str, to: str) -> None:
        """File ``name`` of the stage (with the -wal and -shm SQLite left beside it) renamed
        ``to``, a path in the stage, its folders made (0750): each by the stage's
        descriptor, never through a link (``NotOurFolder``). The log is staged as the
        archive names it, ``kiosk.db``; it goes where the config's ``store.path`` says."""
        self.file(name)
        if to == name:
            return
        _make_parents(to, self.fd, 0o750)
        with _path_fd(self.path, self.fd, Path(to).parent, no_link=True) as into:
            for suffix in ("", "-wal", "-shm"):
                if _lexists(name + suffix, self.fd):
                    leaf = Path(to).name + suffix
                    os.replace(name + suffix, leaf, src_dir_fd=self.fd, dst_dir_fd=into)

    def sqlite_path(self, name: str) -> Path:
        """The path SQLite is given for file ``name`` of the stage: through the descriptor
        the stage is held by (``/proc/self/fd/FD/NAME``), which reaches the folder held
        wherever its name now points (SQLite reads the link to the folder's own place), and
        so do the -wal and -shm it names after it. ``NoProc`` where ``/proc`` is missing."""
        self.file(name)
        held = Path(_FDS) / str(self.fd)
        try:
            same = os.path.samestat(os.stat(held), os.fstat(self.fd))
        except OSError:
            same = False
        if not same:
            raise NoProc(
                f"{_FDS} is not there (/proc is not mounted): the restore cannot check its"
                " stage. Mount it (sudo mount -t proc proc /proc), then run the restore"
                " again"
            )
        return held / name

    def connect(self, name: str, open_: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
        """The connection ``open_`` makes to the staged database ``name``
        (``sqlite_path``), checked once it read the database (its -wal and -shm opened) and
        before anything is written: every file it opened is ``name``, its -wal or -shm of
        the folder held, else ``NotOurFolder`` (a link put in the stage's place as SQLite
        opened it). Each connection is checked: one made later is as open to a swap."""
        before = _descriptors()
        conn = open_()
        try:
            self._opened(name, before)  # the database: before its -wal and -shm are made
            sqlite3.Connection.execute(conn, "SELECT count(*) FROM sqlite_master").fetchall()
            self._opened(name, before)  # and those
        except BaseException:
            conn.close()
            raise
        return conn

    def _opened(self, name: str, before: dict[int, tuple[int, int]]) -> None:
        opened = {ident for fd, ident in _descriptors().items() if before.get(fd) != ident}
        if not opened <= self._idents(name, f"{name}-wal", f"{name}-shm"):
            raise NotOurFolder(
                f"{self.path / name} is not the file staged there (a link was put in the"
                f" stage's place as it was opened): {_MAKES_ITS_OWN}"
            )

    def _idents(self, *names: str) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        for name in names:
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    found.add((st.st_dev, st.st_ino))
        return found

    def reading(self, name: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The staged SQLite database ``name`` open read-only (immutable, no -wal or -shm
        made beside it, none there), checked to be the stage's (``connect``)."""
        path = self.sqlite_path(name)
        return _opened(
            lambda: self.connect(name, lambda: sqlite_read_only(path, immutable=True)),
            self.path / name,
        )


#: Where this process's descriptors are found (procfs; a test's stand-in for none).
_FDS = "/proc/self/fd"


def _descriptors() -> dict[int, tuple[int, int]]:
    """This process's open descriptors: the device and inode of the file each is open on."""
    found: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for fd in os.listdir(_FDS):
            with contextlib.suppress(OSError, ValueError):
                st = os.stat(f"{_FDS}/{fd}")
                found[int(fd)] = (st.st_dev, st.st_ino)
    return found


@contextmanager
def held_stage(
    folder: Path, prefix: str, *, keep: Callable[[], bool] = bool, ours: bool = True
) -> Iterator[Staged]:
    """A new hidden stage folder (0700, named ``prefix`` and a random part) in ``folder``,
    held by this run while it is used (``hold``). ``remove_stages`` never removes a held
    stage: a stage's time stops when its last file is made, and a backup verifying a big
    log (or a clock stepped forward by NTP) was an hour "old" and removed under the run.
    ``ours``: a folder of this user's, else ``NotOurFolder`` (a restore's); a backup's
    (``ours=False``) only no link: on a vfat stick or an NFS share (root_squash) what it
    makes reports another owner. Removed at the end unless ``keep()`` says it is needed (a
    restore's way back). Yielded with the descriptor it is held by (``Staged``)."""
    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    try:
        with contextlib.ExitStack() as held:
            try:
                fd = held.enter_context(_folder_fd(stage, no_link=True, ours=ours))
            except NotOurFolder:
                if ours:
                    raise
                raise BackupError(
                    f"{stage}: a link was put in place of the backup's own folder;"
                    " run the backup again"
                ) from None
            hold(fd)
            yield Staged(stage, fd)
    finally:
        if not keep():
            shutil.rmtree(stage, ignore_errors=True)


def remove_stages(folder: Path, prefix: str, older_than_s: float, now_s: float) -> list[str]:
    """The hidden stage folders (``prefix``: a backup's, a restore's) a killed run left in
    ``folder``, older than ``older_than_s`` by their time (``now_s``: the file system's
    clock), removed: each a copy in clear of the log, or of the keys. Never one a run still
    holds (``held_stage``), nor one a ``RESTORE_MARKER`` names (the way back of a restore cut
    off). Their names."""
    removed: list[str] = []
    with contextlib.suppress(OSError), _folder_fd(folder) as there:
        named: set[str] = set()
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, BackupError):
            said = _said(folder, there, ours=False)  # a stage kept by mistake is no harm
            named = {Swap.of(entry).stage.name for entry in said["swaps"]}
        with os.scandir(there) as listed:
            stages = sorted(
                (e for e in listed if e.name.startswith(prefix) and e.name not in named),
                key=lambda e: e.name,
            )
        for left in stages:
            st = left.stat(follow_symlinks=False)
            old = stat.S_ISDIR(st.st_mode) and now_s - st.st_mtime > older_than_s
            if old and _removed_unless_held(left.name, there):
                removed.append(left.name)
    return removed


def remove_parts(target: Path, older_than_s: float, now_s: float) -> list[str]:
    """The ``.part`` files beside ``target`` (``.NAME.XXXX.part``) a killed ``write_archive``
    of it left, older than ``older_than_s`` (``now_s``: the file system's clock), removed:
    a plain one is the log in clear. Never one a backup still writes (held). Their names."""
    removed: list[str] = []
    with contextlib.suppress(OSError), _folder_fd(target.parent) as there:
        with os.scandir(there) as listed:
            parts = sorted(
                e.name
                for e in listed
                if e.name.startswith(f".{target.name}.") and e.name.endswith(".part")
            )
        for name in parts:
            st = os.lstat(name, dir_fd=there)
            old = stat.S_ISREG(st.st_mode) and now_s - st.st_mtime > older_than_s
            if old and _removed_unless_held(name, there):
                removed.append(name)
    return removed


def _removed_unless_held(name: str, there: int) -> bool:
    """Stage ``name`` (or ``.part`` file) of the folder open as ``there`` removed, unless a
    run holds its lock (``held_stage``, ``write_archive``): never waited for. Whether it was
    removed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=there)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: a backup or restore running on it
        os.close(fd)
        return False
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            shutil.rmtree(name, dir_fd=there, ignore_errors=True)
        else:
            os.unlink(name, dir_fd=there)
    finally:
        os.close(fd)
    return True


def _files_under(stage: Path) -> list[str]:
    return [str(p.relative_to(stage)) for p in sorted(stage.rglob("*")) if not p.is_dir()]


def _sync_tree(folder: Path) -> None:
    for path in [folder, *sorted(folder.rglob("*"))]:
        if path.is_dir():
            _sync_folder(path)


def _write_synced(path: Path, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    _sync_folder(path.parent)


def _remove_empty(path: Path) -> None:
    """A folder the move-in made (``trust/``), empty again: the one set aside goes back. A
    link there is none the move-in made: ``NotOurFolder``."""
    if path.is_symlink():
        raise NotOurFolder(f"{path} is not a folder of this user's: {_MAKES_ITS_OWN}")
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


# -- the archive encrypted -------------------------------------------------------------------
#
# An encrypted archive is the same tar, sealed with a passphrase: a header (``ENCRYPTED_MAGIC``,
# the format's version, scrypt's log2 N, r and p, a random 16-byte salt, a 16-byte check of
# the passphrase, an 8-byte random nonce prefix), then the tar in chunks of
# ``ENCRYPTED_CHUNK`` bytes each sealed with AES-256-GCM (its 16-byte tag after it). The key
# and the check are scrypt's 64 bytes of the passphrase and the salt. Chunk ``i``'s nonce is
# the prefix and ``i``; its associated data the header and whether it is the last: a chunk
# altered, moved or dropped, an archive cut short (even at a chunk's end) or a header changed
# fail their tag. The last chunk holds 0 to ``ENCRYPTED_CHUNK`` bytes, so the chunks' places
# follow from the file's size: the reader decrypts the one it reads, never the whole.
#
# The seam for tests: ``KDF`` is what an archive is written with (tests set a cheap one); a
# reader takes the archive's own from its header, refused beyond ``MAX_KDF_BYTES``.

ENCRYPTED_MAGIC = b"kiosk-backup-sealed\n"
_SEAL_VERSION = 1
_HEADER = struct.Struct(">BBBB16s16s8s")
ENCRYPTED_HEADER_SIZE = len(ENCRYPTED_MAGIC) + _HEADER.size
ENCRYPTED_CHUNK = 65_536
_TAG = 16
#: scrypt's memory (128 * r * N bytes) an archive's header may ask of a Pi: 256 MiB.
MAX_KDF_BYTES = 256 * 1_048_576
MAX_PASSPHRASE_BYTES = 4096
#: The shortest passphrase a new archive is sealed with, in characters (UTF-8 decoded: a
#: Chinese phrase counts its characters, not its bytes). scrypt makes each guess dear (a
#: second of a Pi 4, less of a desktop), but a lost stick gives its finder all the time he
#: wants: a word, a date or the gate's name is among the first million guesses (days of a
#: few cores). 12 characters is three or four words (`east gate winter lamp`). Only for
#: sealing: an archive sealed before this rule with a shorter one still opens
#: (``open_archive`` takes any).
MIN_PASSPHRASE_CHARS = 12
#: And this many different characters, white space not counted: twelve spaces, or one or two
#: characters over and over, are the first a guessing tool tries.
MIN_PASSPHRASE_DISTINCT = 5
_ADVICE = (
    " (a lost stick may be guessed at for ever): take three or four words, or a line from a"
    " password manager"
)


def passphrase_too_short(passphrase: bytes) -> str | None:
    """Why ``passphrase`` may not seal a new archive (shorter than ``MIN_PASSPHRASE_CHARS``, or
    fewer than ``MIN_PASSPHRASE_DISTINCT`` different characters), in words that do not repeat
    it; None when it may."""
    text = passphrase.decode("utf-8", "replace")
    if len(text) < MIN_PASSPHRASE_CHARS:
        return (
            f"the passphrase is {len(text)} characters, fewer than the {MIN_PASSPHRASE_CHARS}"
            f" an archive is sealed with{_ADVICE}"
        )
    distinct = len({c for c in text if not c.isspace()})
    if distinct < MIN_PASSPHRASE_DISTINCT:
        return (
            f"the passphrase has {distinct} different characters (spaces not counted), fewer"
            f" than the {MIN_PASSPHRASE_DISTINCT} an archive is sealed with{_ADVICE}"
        )
    return None


@dataclass(frozen=True)
class Kdf:
    """scrypt's cost: N = 2**log_n, r, p."""

    log_n: int
    r: int
    p: int


#: What archives are written with: 128 MiB and about a second on a Pi 4 per guess.
KDF = Kdf(log_n=17, r=8, p=1)


@dataclass(frozen=True)
class SealHeader:
    kdf: Kdf
    salt: bytes
    check: bytes
    prefix: bytes
    raw: bytes


def is_encrypted(path: Path) -> bool:
    """Whether the file at ``path`` is an archive sealed with a passphrase."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(ENCRYPTED_MAGIC)) == ENCRYPTED_MAGIC
    except OSError:
        return False


def _parse_header(raw: bytes, where: object) -> SealHeader:
    if len(raw) != ENCRYPTED_HEADER_SIZE or not raw.startswith(ENCRYPTED_MAGIC):
        raise BackupError(f"{where}: not an encrypted kiosk backup (cut short?)")
    version, log_n, r, p, salt, check, prefix = _HEADER.unpack(raw[len(ENCRYPTED_MAGIC) :])
    if version != _SEAL_VERSION:
        raise BackupError(f"{where}: encrypted with format {version}; this program reads 1")
    kdf = Kdf(log_n, r, p)
    if not (1 <= log_n < 32 and r >= 1 and 1 <= p <= 4) or 128 * r << log_n > MAX_KDF_BYTES:
        raise BackupError(
            f"{where}: its header asks scrypt for N=2**{log_n}, r={r}, p={p}: more than a Pi"
            " gives (altered, or not a kiosk backup)"
        )
    return SealHeader(kdf, salt, check, prefix, raw)


def _derive(passphrase: bytes, salt: bytes, kdf: Kdf) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    out = Scrypt(salt=salt, length=64, n=1 << kdf.log_n, r=kdf.r, p=kdf.p).derive(passphrase)
    return out[:32], out[32:48]


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


class Encrypting:
    """A file ``tarfile`` writes into (``w|``), sealing it chunk by chunk into ``raw``; its
    ``finish`` seals the last chunk. Holds one chunk."""

    def __init__(self, raw: IO[bytes], passphrase: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, prefix = os.urandom(16), os.urandom(8)
        key, check = _derive(passphrase, salt, KDF)
        head = _HEADER.pack(_SEAL_VERSION, KDF.log_n, KDF.r, KDF.p, salt, check, prefix)
        self._header = ENCRYPTED_MAGIC + head
        self._raw, self._aead, self._prefix = raw, AESGCM(key), prefix
        self._buffer, self._index = bytearray(), 0
        raw.write(self._header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > ENCRYPTED_CHUNK:
            self._seal(bytes(self._buffer[:ENCRYPTED_CHUNK]), last=False)
            del self._buffer[:ENCRYPTED_CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._index)
        self._raw.write(self._aead.encrypt(nonce, chunk, self._header + bytes([last])))
        self._index += 1

    def finish(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()


class Decrypting:
    """An encrypted archive read as its tar (``read``, ``seek``, ``tell``: what ``tarfile``
    asks), a chunk decrypted when it is read. A wrong passphrase is told by the header's
    check; a chunk that fails its tag raises ``BackupError`` (altered); the last chunk is
    checked at once (cut short)."""

    def __init__(self, raw: IO[bytes], passphrase: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._raw = raw
        self.name = getattr(raw, "name", "archive")
        try:
            self._head = _parse_header(raw.read(ENCRYPTED_HEADER_SIZE), self.name)
            key, check = _derive(passphrase, self._head.salt, self._head.kdf)
            if not hmac.compare_digest(check, self._head.check):
                raise BackupError(f"{self.name}: wrong passphrase (the archive is not opened)")
            body = os.fstat(raw.fileno()).st_size - ENCRYPTED_HEADER_SIZE
            if body < _TAG:
                raise BackupError(f"{self.name}: altered or cut short (no sealed content)")
            self._aead = AESGCM(key)
            self._count = (body - _TAG) // (ENCRYPTED_CHUNK + _TAG) + 1
            last_len = body - (self._count - 1) * (ENCRYPTED_CHUNK + _TAG) - _TAG
            self._size = (self._count - 1) * ENCRYPTED_CHUNK + last_len
            self._pos, self._cached = 0, (-1, b"")
            self._chunk(self._count - 1)
        except BaseException:
            raw.close()
            raise

    def _chunk(self, index: int) -> bytes:
        if self._cached[0] == index:
            return self._cached[1]
        from cryptography.exceptions import InvalidTag

        self._raw.seek(ENCRYPTED_HEADER_SIZE + index * (ENCRYPTED_CHUNK + _TAG))
        sealed = self._raw.read(ENCRYPTED_CHUNK + _TAG)
        last = index == self._count - 1
        try:
            plain = self._aead.decrypt(
                _nonce(self._head.prefix, index), sealed, self._head.raw + bytes([last])
            )
        except InvalidTag:
            raise BackupError(
                f"{self.name}: altered, damaged or cut short (its chunk {index} fails its check)"
            ) from None
        self._cached = (index, plain)
        return plain

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        out = bytearray()
        while self._pos < end:
            index, offset = divmod(self._pos, ENCRYPTED_CHUNK)
            piece = self._chunk(index)[offset : offset + end - self._pos]
            out += piece
            self._pos += len(piece)
        return bytes(out)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._raw.close()


# -- what a restore set aside, under retention -----------------------------------------------

SET_ASIDE = re.compile(r"before-restore-(\d{8}T\d{6}Z)")
#: In a set-aside folder: when a purge first saw it (its trusted clock), ISO 8601.
SEEN_FILE = ".purge-first-seen"


def purge_set_aside(data: Path, cutoff: datetime, now: datetime) -> list[str]:
    """Removes the ``before-restore-<UTC>`` folders a restore left in the data dir ``data``
    (this Pi's old log, whole: residents' names and phones; its keys) set aside before
    ``cutoff`` (the retention purge's, ``now`` its clock, checked); their names. The time in
    a folder's name is the restore's clock, perhaps not yet set by NTP (a new card's): a
    folder is dated no earlier than the first purge that saw it (``SEEN_FILE``), or it would
    go at the first purge, the operator's way back with it. A folder named otherwise is
    left, and one that cannot be removed now is left for the next purge. The stages a killed
    run left go too, once ``STAGE_LEFT_S`` old (``remove_stages``): a restore's ``.restore-*``
    (the archive's log and keys in clear), a sealed backup's ``.kiosk-backup-*`` (the whole
    log in clear)."""
    removed = [
        name
        for prefix in (RESTORE_STAGE_PREFIX, BACKUP_STAGE_PREFIX)
        for name in remove_stages(data, prefix, STAGE_LEFT_S, now.timestamp())
    ]
    try:
        paths = sorted(data.iterdir())
    except OSError:
        return []
    for path in paths:
        found = SET_ASIDE.fullmatch(path.name)
        if found is None or path.is_symlink() or not path.is_dir():
            continue
        try:
            named = datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:  # digits no date: not a restore's
            continue
        if max(named, _first_seen(path, now)) < cutoff:
            try:
                shutil.rmtree(path)
            except OSError:
                continue
            removed.append(path.name)
    if removed:
        _sync_folder(data)
    return removed


def _first_seen(folder: Path, now: datetime) -> datetime:
    """When a purge first saw ``folder``: read from its ``SEEN_FILE``, else ``now``, written
    there (a folder it cannot write in is seen now at every purge: never removed early)."""
    seen = folder / SEEN_FILE
    try:
        when = datetime.fromisoformat(seen.read_text(encoding="ascii")[:64].strip())
        if when.tzinfo is not None:
            return when
    except (OSError, ValueError):
        pass
    try:
        fd = os.open(seen, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(now.astimezone(UTC).isoformat() + "\n")
    except OSError:
        pass
    return now
