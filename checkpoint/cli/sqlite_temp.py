"""Where SQLite writes its temp files: a folder in the kiosk's data dir (``sqlite-tmp``).

SQLite sorts and builds what a query needs in temp files, in ``$SQLITE_TMPDIR``, else
``$TMPDIR``, else /var/tmp: on a Pi another folder than the data dir, whose free space is the
one the kiosk checks and says (a full /var/tmp read as "the card is full (69282 MB free)").
The units point SQLite at the data dir's ``sqlite-tmp`` (``Environment=SQLITE_TMPDIR``; systemd
makes it, ``StateDirectory``, and so does scripts/install), and the ``kiosk`` command does for
itself (``keep_sqlite_temp_in_data_dir``) before it opens the log: the variable for the
processes it starts, and SQLite's own setting for this one (``PRAGMA temp_store_directory``:
SQLite read the variable once, when ``sqlite3`` was imported, before the command knew its
data dir). A ``SQLITE_TMPDIR`` already set is left as it is.

The command never makes, chowns or chmods that folder: it uses it only when its data dir is
named (``--data`` or $KIOSK_DATA, never ``--db``'s folder: a USB stick's) and the folder is
there already as a real directory, not a symlink (``sudo kiosk ...`` must not write where a
link planted in the service account's folder points). Otherwise SQLite's own choice stands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import stat
from collections.abc import MutableMapping
from pathlib import Path

#: The folder of SQLite's temp files, in the data dir.
FOLDER = "sqlite-tmp"
#: The variable SQLite reads.
VARIABLE = "SQLITE_TMPDIR"


def data_dir_of(args: argparse.Namespace, environ: MutableMapping[str, str]) -> Path | None:
    """The data dir a verb names: ``--data``, else $KIOSK_DATA; None when neither is given
    (``--db``'s folder is not one: a copy of the log on a USB stick)."""
    data = getattr(args, "data", None)
    if isinstance(data, (str, Path)) and str(data):
        return Path(data)
    named = environ.get("KIOSK_DATA")
    return Path(named) if named else None


def real_folder(folder: Path) -> bool:
    """``folder`` is a directory of its own (not a symlink to one) this user may write in."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        os.close(os.open(folder, flags))
    except OSError:  # missing, a symlink (ELOOP, ENOTDIR), not readable
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def temp_in_data_dir(
    args: argparse.Namespace, environ: MutableMapping[str, str] | None = None
) -> Path | None:
    """Set ``SQLITE_TMPDIR`` in ``environ`` (the process's) to the data dir's ``sqlite-tmp``:
    the folder, or None when ``SQLITE_TMPDIR`` is set already, no data dir is named or the
    folder is not there as a real directory this user may write in (SQLite's own choice
    stays). Nothing is made, chowned or chmodded."""
    environ = os.environ if environ is None else environ
    data = data_dir_of(args, environ)
    if environ.get(VARIABLE) or data is None:
        return None
    folder = data / FOLDER
    if not real_folder(folder):
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
