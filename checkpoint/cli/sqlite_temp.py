"""Where SQLite writes its temp files: a folder in the kiosk's data dir (``sqlite-tmp``).

SQLite sorts and builds what a query needs in temp files, in ``$SQLITE_TMPDIR``, else
``$TMPDIR``, else /var/tmp: on a Pi another folder than the data dir, whose free space is the
one the kiosk checks and says (a full /var/tmp read as "the card is full (69282 MB free)").
The units point SQLite at the data dir's ``sqlite-tmp`` (``Environment=SQLITE_TMPDIR``), and
the ``kiosk`` command does for itself (``keep_sqlite_temp_in_data_dir``) before it opens the
log: the variable for the processes it starts, and SQLite's own setting for this one
(``PRAGMA temp_store_directory``: SQLite read the variable once, when ``sqlite3`` was
imported, before the command knew its data dir). A ``SQLITE_TMPDIR`` already set is left as
it is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
from collections.abc import MutableMapping
from pathlib import Path

#: The folder of SQLite's temp files, in the data dir.
FOLDER = "sqlite-tmp"
#: The variable SQLite reads.
VARIABLE = "SQLITE_TMPDIR"


def data_dir_of(args: argparse.Namespace, environ: MutableMapping[str, str]) -> Path | None:
    """The data dir a verb works in: ``--data``, the folder of ``--db``, else $KIOSK_DATA;
    None when none is given."""
    data, db = getattr(args, "data", None), getattr(args, "db", None)
    if isinstance(data, (str, Path)) and str(data):
        return Path(data)
    if isinstance(db, (str, Path)) and str(db):
        return Path(db).parent
    named = environ.get("KIOSK_DATA")
    return Path(named) if named else None


def temp_in_data_dir(
    args: argparse.Namespace, environ: MutableMapping[str, str] | None = None
) -> Path | None:
    """Set ``SQLITE_TMPDIR`` in ``environ`` (the process's) to the data dir's ``sqlite-tmp``,
    made if missing (this user's, or, made by root, the data dir's owner's): the folder, or
    None when ``SQLITE_TMPDIR`` is set already, no data dir is known or the folder cannot be
    made there (SQLite's own choice stays)."""
    environ = os.environ if environ is None else environ
    data = data_dir_of(args, environ)
    if environ.get(VARIABLE) or data is None or not data.is_dir():
        return None
    folder = data / FOLDER
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        home, made = data.stat(), folder.stat()
        if os.geteuid() == 0 and (made.st_uid, made.st_gid) != (home.st_uid, home.st_gid):
            os.chown(folder, home.st_uid, home.st_gid)  # sudo kiosk ...: the kiosk's folder
    except OSError:
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return None
    environ[VARIABLE] = str(folder)
    return folder


def use_for_sqlite(folder: Path | None) -> None:
    """SQLite's temp files in ``folder`` for every connection of this process (None: its
    own choice again). Only before any other connection works: a process-wide setting."""
    quoted = "" if folder is None else str(folder).replace("'", "''")
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"PRAGMA temp_store_directory = '{quoted}'")


def keep_sqlite_temp_in_data_dir(args: argparse.Namespace) -> None:
    """The ``kiosk`` command's SQLite temp files in its data dir (``temp_in_data_dir``), for
    this process and those it starts; a folder SQLite refuses leaves its own choice."""
    folder = temp_in_data_dir(args)
    if folder is not None:
        with contextlib.suppress(sqlite3.Error):
            use_for_sqlite(folder)
