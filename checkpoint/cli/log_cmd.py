"""``kiosk verify-log [--db FILE] [--against CENTRAL]``: check the event log's hash chains,
``seq``, purges, and (with ``--against``) the office's copy.

The file is found as by the other database verbs (``store_args``): ``--db``, else the
``store.path`` of ``--config`` (default ``$KIOSK_CONFIG``, which kiosk-admin sets) under the
data dir, else ``kiosk.db`` there.

Opens the file read-only (never creates, migrates or repairs it), so it is safe to run while
the daemon is writing and on a copy taken off a kiosk. ``CENTRAL`` is a pulled SQLite copy
(``kiosk pull --into FILE``: table ``pulled_events``) or the office's PostgreSQL
(``postgresql://...``: table ``fleet_events``); it too is only read.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.files import sqlite_read_only, sqlite_whole_file

from .errors import CliError, UsageError
from .parsers import Verbs, add_verb, path_arg
from .store_args import NOT_A_LOG, add_store_args, check_event_log, db_path, load_args_config

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow


def register(sub: Verbs) -> None:
    p = add_verb(sub, "verify-log", run)
    add_store_args(p)
    p.add_argument(
        "--against",
        metavar="CENTRAL",
        type=path_arg,
        help="also compare with the office's copy: a pulled SQLite file or a postgresql://"
        " DSN; names the first row where they disagree (a rewritten row, a shortened log)",
    )
    p.add_argument(
        "--kiosk-id",
        help="the kiosk's id in CENTRAL (default: the one in the file's events)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def _central_rows(central: str, kiosk_id: str) -> Iterator[tuple[int, str]]:
    """``(seq, hash)`` the office holds for ``kiosk_id``, in ``seq`` order."""
    from office.pg import is_pg_dsn

    if is_pg_dsn(central):
        from office.pg import PgError, connect

        try:
            conn: psycopg.Connection[TupleRow] | sqlite3.Connection = connect(
                central, application_name="kiosk-verify"
            )
        except PgError as exc:
            raise CliError(str(exc)) from None
        sql = "SELECT seq, hash FROM fleet_events WHERE kiosk_id = %s ORDER BY seq"
    else:
        conn = _open_read_only(Path(central), copy=True)
        sql = "SELECT seq, hash FROM pulled_events WHERE kiosk_id = ? ORDER BY seq"
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, [kiosk_id])
        except Exception as exc:  # noqa: BLE001 - sqlite3 or psycopg: not a pulled copy
            raise UsageError(f"{central}: not a pulled copy of kiosk events ({exc})") from None
        while batch := cursor.fetchmany(5000):
            for seq, hash_ in batch:
                yield int(seq), str(hash_)
    finally:
        conn.close()


def _held(central: str) -> list[str] | None:
    """A few of the kiosk ids a pulled SQLite copy holds events of; None for the office's
    database, which holds every gate's (``compare_with_central``)."""
    from office.pg import is_pg_dsn

    if is_pg_dsn(central):
        return None
    conn = _open_read_only(Path(central), copy=True)
    try:
        rows = conn.execute("SELECT DISTINCT kiosk_id FROM pulled_events LIMIT 3").fetchall()
    finally:
        conn.close()
    return [str(r[0]) for r in rows]


def _integrity(conn: sqlite3.Connection) -> list[str]:
    """SQLite's own check, in its words; one it cannot finish (a page the card no longer
    reads back: "database disk image is malformed") is said as its one finding, so that the
    chains are still walked and the first row that cannot be read is named."""
    from kiosk.store import is_damaged_read

    try:
        return [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        if not is_damaged_read(exc):
            raise
        return [f"integrity_check could not finish: {exc}"]


def _kiosk_id(conn: sqlite3.Connection, given: str | None) -> str:
    if given:
        return given
    ids = [r[0] for r in conn.execute("SELECT DISTINCT kiosk_id FROM events LIMIT 2")]
    if len(ids) != 1:
        raise UsageError("cannot tell which kiosk this file is; pass --kiosk-id")
    return str(ids[0])


def _open_read_only(path: Path, *, copy: bool = False) -> sqlite3.Connection:
    """``path`` read-only; ``copy``: the office's copy, which nothing at the gate writes: a
    WAL-mode one whose -wal is gone (as ``kiosk pull --into`` leaves it) is read as the whole
    of it (immutable), so that no -wal or -shm is made beside it and left there (the copy's
    ``rm`` would not remove them)."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except PermissionError:
        raise  # ``main``: "permission denied: FILE; ...", exit 1 (cli.md)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if header[:16] != b"SQLite format 3\x00":
        raise UsageError(f"{path}: not an SQLite database")
    whole = copy and sqlite_whole_file(path)
    try:
        conn = sqlite_read_only(path, immutable=whole)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:  # the caller names any other problem
            if _wants_its_folder(exc):
                conn.close()
                conn = _open_unwritable_folder(path)
        return conn
    except sqlite3.Error as exc:
        raise UsageError(f"{path}: cannot open: {exc}") from None


def _wants_its_folder(exc: sqlite3.DatabaseError) -> bool:
    """SQLite could not make the -shm index a WAL-mode file is read with (the folder this
    user may not write: ``SQLITE_READONLY_DIRECTORY``, ``SQLITE_CANTOPEN``; one there it may
    not write, ``SQLITE_READONLY_CANTINIT``)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CANTOPEN", "SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_CANTINIT")


def _open_unwritable_folder(path: Path) -> sqlite3.Connection:
    """A WAL-mode file wants its -shm index created beside it even to be read: on a
    read-only stick or in a folder this user cannot write, that fails. With no -wal the file
    alone is the whole log and nothing is writing it, so it is read as immutable."""
    wal = _wal_of(path)
    if wal.exists():
        raise UsageError(
            f"{path}: cannot be read where it is (its {wal.name} needs a -shm index beside it"
            f" and this folder is not writable); copy {path.name} and {wal.name} to a"
            " writable folder and verify the copy"
        )
    return sqlite_read_only(path, immutable=True)


def _wal_of(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _refuse_newer(conn: sqlite3.Connection, path: Path) -> None:
    """A log a newer version migrated gets no verdict here: a change of that version (how
    digests are keyed, a column) would be taken for an edit, a false tamper alarm."""
    import sqlite_utils

    from kiosk import accounts, ledgers, lists, stats, tokens
    from kiosk.store import MIGRATIONS, newer_schema

    every = [MIGRATIONS, lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS]
    why = newer_schema(sqlite_utils.Database(conn), [*every, stats.MIGRATIONS, *ledgers.MIGRATIONS])
    if why is not None:
        raise UsageError(
            f"{path} was written by a newer version of the program ({why}): its chains are"
            " checked by that version or a later one (this one could take that version's"
            " changes for edits)"
        )


def run(args: argparse.Namespace) -> int:
    """check the event log's hash chains and seq

    Check the event and audit hash chains, seq continuity and the personal-data digests of
    an event log. Names the first bad row. Exit 0 when intact, 1 if any row was edited,
    deleted, inserted or reordered (or the file is corrupt), 2 if the file cannot be used as
    an event log (or a newer version of the program migrated it: no verdict here).

    Examples:
      sudo kiosk-admin verify-log
      kiosk verify-log --db /media/usb/kiosk.db --against office-copy.db"""
    from kiosk.store import compare_with_central, verify_database

    path = db_path(args, load_args_config(args))
    check_event_log(path)
    conn = _open_read_only(path)
    try:
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:  # an SQLite file, damaged: not a usage error
            raise CliError(f"{path}: the database is corrupt: {exc}") from None
        if not {"events", "audit", "meta"} <= tables:
            raise UsageError(f"{path}: {NOT_A_LOG}")
        _refuse_newer(conn, path)
        try:
            integrity = _integrity(conn)
            result = verify_database(conn)
            central = None
            if args.against:
                kiosk_id = _kiosk_id(conn, args.kiosk_id)
                central = compare_with_central(
                    conn,
                    kiosk_id,
                    _central_rows(args.against, kiosk_id),
                    lambda: _held(args.against),
                )
        except sqlite3.DatabaseError as exc:
            raise CliError(f"{path}: the database is corrupt: {exc}") from None
    finally:
        conn.close()
    integrity_ok = integrity == ["ok"]
    problems = list(result.problems)
    if central is not None:
        problems.append(f"against {args.against}: {central[1]}")
    ok = result.ok and integrity_ok and central is None
    if args.json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "db": str(path),
                    "events": result.events_checked,
                    "audit": result.audit_checked,
                    "table": result.table,
                    "first_bad_seq": result.first_bad_seq,
                    "problem": result.problem,
                    "problems": problems,
                    "integrity": integrity[:10],
                    "central_first_bad_seq": central[0] if central else None,
                }
            )
        )
    else:
        if not integrity_ok:
            print(f"FAIL integrity_check: {'; '.join(integrity[:3])}", file=sys.stderr)
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        if ok:
            print(
                f"ok: {path}: {result.events_checked} events and {result.audit_checked} audit"
                " rows, chains intact" + (f", matches {args.against}" if args.against else "")
            )
    return 0 if ok else 1
