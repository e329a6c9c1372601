"""The kiosk database for maintenance verbs (``token``, ``purge``, ``guard``, ``verify-log``):
where it is and how the verbs that write open it — through ``EventLog``, like the daemon, so
they are safe beside it (``verify-log`` only reads it, read-only).

Whose name a verb writes into the log is the log's own. A verb run by hand without
``--config`` (no ``kiosk-admin``, so no ``$KIOSK_CONFIG``) takes the kiosk_id of the log's
newest event (else audit row) instead of the default site's ``gate-1``; a config naming
another kiosk than the log's events is refused, as the daemon refuses to start on such a log
(``checkpoint.app``). Likewise the settings the log's local days are cut by (the site's
timezone, the outing quota): the daemon records them in the log, and a verb without a config
reads them there (``site_config``)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.files import sqlite_read_only

from .errors import CliError, UsageError, refuse_root_over
from .parsers import path_arg

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from kiosk.config import KioskConfig
    from kiosk.store import EventLog

    from .held_log import FolderHold


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="FILE",
        type=path_arg,
        help="the kiosk's database (default: $KIOSK_DATA/kiosk.db, else ./data/kiosk.db;"
        " with --config, its store.path under the data dir)",
    )
    add_config_arg(
        p,
        "kiosk config (for store.path, site; default: $KIOSK_CONFIG, which kiosk-admin"
        " sets to the daemon's). One naming another kiosk than the log's is refused; without"
        " one, the log's own kiosk_id is written",
    )
    p.add_argument(
        "--data", metavar="DIR", type=path_arg, help="data dir (default: $KIOSK_DATA, else ./data)"
    )


def add_config_arg(p: argparse.ArgumentParser, help: str) -> None:
    """``--config FILE``: this Pi's kiosk config, by default ``$KIOSK_CONFIG`` (which
    kiosk-admin sets to the daemon's); ``help`` says what the verb takes from it."""
    p.add_argument(
        "--config",
        metavar="FILE",
        type=path_arg,
        default=os.environ.get("KIOSK_CONFIG") or None,
        help=help,
    )


#: Where the installer puts the daemon's config (docs/operations.md), for the messages.
INSTALLED_CONFIG = "/etc/kiosk/kiosk.toml"


def load_args_config(args: argparse.Namespace) -> KioskConfig:
    return load_verb_config(args.config)


def load_verb_config(path: str | None) -> KioskConfig:
    """The config a maintenance verb is given (None: the defaults); a bad one is a
    ``UsageError``. One this user may not read (the daemon's /etc/kiosk/kiosk.toml, root:kiosk
    0640, from the pi user's shell) is a ``PermissionError``: ``main`` says to run the verb as
    ``sudo kiosk-admin``, as for the kiosk's other files (exit 1)."""
    from kiosk.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        if path is not None and os.path.isfile(path) and not os.access(path, os.R_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path) from None
        raise UsageError(str(exc)) from None


def db_path(args: argparse.Namespace, config: KioskConfig) -> Path:
    data = Path(args.data or os.environ.get("KIOSK_DATA") or "data")
    if args.db:
        return Path(args.db)
    if args.config:
        return config.store.file_in(data)
    return data / "kiosk.db"


def _refuse_under_older_daemon(path: Path, migrations: list[Migrations]) -> None:
    """A verb that would migrate the log while a daemon holds it (``kiosk.lock`` beside it):
    that daemon is an older version (its own migrations are all in the file), and would write
    on in the schema it knows into the one this verb leaves (an update between its switch and
    its restart, the new checkout's ``kiosk`` run by hand). Refused, naming what would change;
    nothing is written. A daemon of this version has nothing left to migrate: not refused."""
    from .daemon_cmd import LOCK_FILE, lock_holder

    pending = pending_migrations(path, migrations)
    if not pending:
        return
    try:
        fd = os.open(path.parent / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # no daemon ever ran here, or not ours to look at
    try:
        owner = lock_holder(fd, exclusive=False)
    except OSError:
        return  # a file system without locks: the daemon could not lock it either
    finally:
        os.close(fd)
    if owner is not None:
        raise CliError(
            f"{path} is open in the kiosk daemon (pid {owner}) of an older version: this one"
            f" would migrate it ({', '.join(pending[:3])}) under that daemon, which would write"
            " on in the schema it knows. Let the update restart the daemon on this version"
            " first, or stop it (`sudo systemctl stop kiosk`)"
        )


def _refuse_older_log(path: Path, migrations: list[Migrations], verb: str) -> None:
    """A verb that only reads, on a log an older version wrote: migrating it to read it would
    leave a schema that version refuses, so going back to it (docs/install.md, Going back)
    would be cut off by a look. The verb says so and changes nothing; the daemon of this
    version migrates the log when it starts (the update restarts it)."""
    pending = pending_migrations(path, migrations, older_only=True)
    if pending:
        raise CliError(
            f"{path} was written by an older version of the program (this one would migrate"
            f" it: {', '.join(pending[:3])}): `kiosk {verb}` only reads and leaves it as it"
            " is, so that the older version can still open it. The daemon of this version"
            " (`kiosk run`, restarted by the update) migrates it when it starts: run the verb"
            " again after that, or read a copy with the older version's `kiosk`"
        )


def pending_migrations(
    path: Path, migrations: list[Migrations], *, older_only: bool = False
) -> list[str]:
    """``SET NAME`` of each migration opening ``path`` with ``migrations`` would make (the
    event log's own first); nothing for a file that is not there yet. Reads only.

    ``older_only``: only those that show an older version wrote the file: the rest of a set
    the file records, or a whole set once a daemon wrote the file (it opens it with every set
    it has: ``recorded_site``). A set no verb that wrote the file needed is no such sign."""
    import sqlite3

    import sqlite_utils

    from kiosk.store import MIGRATIONS, recorded_site

    if not path.is_file() or not path.stat().st_size:
        return []
    try:
        conn = sqlite_read_only(path)
    except sqlite3.Error:
        return []
    try:
        db = sqlite_utils.Database(conn)
        sets = [MIGRATIONS, *migrations]
        if older_only and recorded_site(db) is None:
            sets = [MIGRATIONS, *(m for m in migrations if any(m.applied(db)))]
        return [f"{m.name} {p.name}" for m in sets for p in m.pending(db)]
    except sqlite3.Error:
        return []  # the open that follows says what is wrong with the file
    finally:
        conn.close()


def open_store(
    args: argparse.Namespace,
    config: KioskConfig,
    migrations: Iterable[Migrations],
    *,
    create: bool = False,
    reads_only: str | None = None,
) -> EventLog:
    """The kiosk's event log, open for the verb. Only a verb that adds (``create``: a token,
    an account, an applied import) may begin a new log; any other verb pointed where there is
    none says so (exit 2) and leaves no empty log behind to be taken for the kiosk's. A verb
    that only reads (``reads_only``: its name) never migrates the log (``_refuse_older_log``).

    Any other verb writes: it holds the data dir's lock shared (``daemon_cmd.lock_folder``)
    until the log is closed, beside the daemon and other verbs, and is refused while a
    restore holds it (exit 1, nothing written): a forget made under a restore was undone by
    the archive's log the restore put back after it."""
    from .held_log import FolderHold

    path = db_path(args, config)
    refuse_root_over(path.parent, getattr(args, "verb", None) or "VERB")
    hold = FolderHold(None if reads_only is not None else _hold_for_writing(path.parent))
    try:
        return _open_store(args, config, path, list(migrations), hold, create, reads_only)
    except BaseException:
        hold.release()
        raise


@contextlib.contextmanager
def held_for_writing(data: Path) -> Iterator[None]:
    """The data dir's lock held shared while a verb writes a file of it other than through
    ``open_store`` (``kiosk calibrate``'s calibration.json, ``kiosk backup``'s stage, the
    purge's look at the log before it opens it): refused during a restore, which would put
    the archive's file back over what the verb wrote (``_hold_for_writing``)."""
    from .held_log import FolderHold

    hold = FolderHold(_hold_for_writing(data))
    try:
        yield
    finally:
        hold.release()


@contextlib.contextmanager
def held_for_writing_in(folder: Path) -> Iterator[None]:
    """The data dir's lock held shared for a verb that writes in ``folder``, which may be in
    a data dir it is not told of (``kiosk keys new --dir /var/lib/kiosk/keys``): ``folder``
    and each folder above it that is there, held as ``held_for_writing`` holds the data dir,
    so that whichever of them is a data dir is held: those above the path as given (links in
    it not followed: ``DATA/keys`` a link to a folder elsewhere, which a restore sets aside
    with the key just made through it) and those above where it leads. Refused while a
    restore holds one: it would set the keys folder aside for the archive's, the new key
    with it. A folder that is no data dir (no lock file, no log in it) held by another
    program is passed over, not refused: the installer holds the target's root (``/``) while
    it runs ``kiosk keys new`` (every first install failed at its issuing key, since bf445250),
    and any program may lock a folder of its own above ``--dir``."""
    given, real = folder.absolute(), Path(os.path.realpath(folder))
    held: list[Path] = []
    with contextlib.ExitStack() as holds:
        for above in (given, *given.parents, real, *real.parents):
            if above not in held and above.is_dir():
                held.append(above)
                try:
                    holds.enter_context(held_for_writing(above))
                except CliError:
                    if _is_data_dir(above):
                        raise
        yield


def _hold_for_writing(data: Path) -> int | None:
    """The data dir's lock, shared, for a verb that writes; refused during a restore, and
    while another program holds the folder locked (``flock``: as a restore would)."""
    from .daemon_cmd import lock_folder

    try:
        return lock_folder(data, exclusive=False)
    except BlockingIOError:
        raise CliError(
            f"{_holder(data)}: try again when it has finished; nothing was changed"
        ) from None


def _is_data_dir(folder: Path) -> bool:
    """``folder`` holds a kiosk's lock file or its log (a link counts: it is there)."""
    from .daemon_cmd import LOCK_FILE

    return any(os.path.lexists(folder / name) for name in (LOCK_FILE, "kiosk.db"))


def _holder(folder: Path) -> str:
    """Who holds ``folder`` locked against a verb that writes: a restore where it is a data
    dir (its lock file or its log there), else another program: a restore too as it begins
    or ends (its lock file not made yet, or removed again), which the verb cannot tell."""
    if _is_data_dir(folder):
        return f"a restore is under way in {folder}"
    return (
        f"{folder} is locked by another program (an exclusive flock on the folder: a restore's"
        " as it begins or ends, or another's)"
    )


def _open_store(
    args: argparse.Namespace,
    config: KioskConfig,
    path: Path,
    migrations: list[Migrations],
    hold: FolderHold,
    create: bool,
    reads_only: str | None,
) -> EventLog:
    from drivers import clocksync
    from kiosk.backup import restore_cut_off
    from kiosk.store import StoreFault

    from .held_log import HeldLog

    if (cut := restore_cut_off(path.parent)) is not None:  # no log begun on a half restore
        raise UsageError(cut)
    check_event_log(path, create=create and reads_only is None)
    if path.is_file() and path.stat().st_size and _event_tables(path) is False:
        raise UsageError(f"{path}: {NOT_A_LOG}")
    if reads_only is not None:
        _refuse_older_log(path, migrations, reads_only)
    _refuse_under_older_daemon(path, migrations)
    log = HeldLog(
        path,
        config.site.kiosk_id,
        clocksync.system_clock(),
        config.store.synchronous,
        migrations=list(migrations),
    )
    log.hold = hold
    try:
        log.open()
        owner = _newest_kiosk_id(log, _NEWEST_EVENT)
        if owner is None and not args.config:
            owner = _newest_kiosk_id(log, _NEWEST_AUDIT)
    except StoreFault as exc:
        log.close()
        raise CliError(f"cannot open {path}: {exc}") from None
    if owner is not None and owner != log.kiosk_id:
        if args.config:  # as the daemon checks it: against the log's events
            log.close()
            raise UsageError(
                f"{path} is the event log of kiosk {owner!r}, and site.kiosk_id of"
                f" {args.config} is {config.site.kiosk_id!r}: name that kiosk's config with"
                f" --config FILE or $KIOSK_CONFIG (the daemon's is {INSTALLED_CONFIG}, which"
                " `sudo kiosk-admin` uses)"
            )
        log.kiosk_id = owner
    return log


_SQLITE_HEADER = b"SQLite format 3\x00"
NOT_A_LOG = "not a kiosk event log (no events/audit/meta tables)"


def check_event_log(path: Path, *, create: bool = False) -> None:
    """The one rule of every verb on the kiosk's database (``verify-log`` too), so that one
    bad file gets one answer: a file that is not an event log is bad input (exit 2), and
    nothing is written into it. Only a verb that adds (``create``) may begin a log where there
    is none, or in an empty file; any other verb pointed there (a typo in ``--db``, a 0-byte
    file) said nothing and made one: it says ``no event log at FILE``. A file that is not an
    SQLite database was SQLITE_NOTADB, exit 1, for these verbs and exit 2 for verify-log."""
    if not path.parent.is_dir():
        raise UsageError(
            f"no such directory for the database: {path.parent}; name the kiosk's with"
            " --data DIR or --db FILE (sudo kiosk-admin uses the daemon's)"
        )
    if path.exists() and not path.is_file():  # `--db /`, a folder, a device
        raise UsageError(f"{path}: not a file; the kiosk's event log is a file (--db FILE)")
    try:
        with path.open("rb") as f:
            header: bytes | None = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        header = None
    except PermissionError:
        raise  # main: run it as the kiosk's user
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not header:
        if create:
            return
        raise UsageError(
            f"no event log at {path} ({'no such file' if header is None else 'an empty file'}):"
            " name the kiosk's with --data DIR or --db FILE, or its config with --config FILE"
            f" or $KIOSK_CONFIG (the daemon's is {INSTALLED_CONFIG}, which `sudo kiosk-admin`"
            " uses)"
        )
    if header != _SQLITE_HEADER:
        raise UsageError(f"{path}: not an event log (not an SQLite database)")


def _event_tables(path: Path) -> bool | None:
    """Whether the SQLite file at ``path`` has an event log's tables, read without writing;
    None if it cannot be told so (the opener then says what is wrong)."""
    import sqlite3

    try:
        conn = sqlite_read_only(path)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {row[0] for row in rows}
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return {"events", "audit", "meta"} <= tables


def site_config(args: argparse.Namespace, config: KioskConfig, store: EventLog) -> KioskConfig:
    """The settings the log's local days and reports are cut by: those of the config named
    (``--config``, ``$KIOSK_CONFIG``), or without one those its daemon recorded in the log
    (the site's timezone, outing quota and staffed hours), not the defaults; a log no daemon
    recorded a site in keeps the defaults, and one recorded before the staffed hours were
    (``hours_unknown``) the default hours."""
    from pydantic import ValidationError

    from kiosk.config.policy import HoursConfig, QuotaConfig
    from kiosk.config.site import SiteConfig
    from kiosk.store import recorded_site

    recorded = None if args.config else recorded_site(store.reader())
    if recorded is None:
        return config
    policy = config.policy
    try:
        site = SiteConfig.model_validate(
            {**config.site.model_dump(), "timezone": recorded.get("timezone")}
        )
        update: dict[str, object] = {
            "quota": QuotaConfig.model_validate_json(json.dumps(recorded.get("quota")))
        }
        if "hours" in recorded:
            update["hours"] = HoursConfig.model_validate_json(json.dumps(recorded["hours"]))
    except ValidationError:
        raise CliError(
            f"{store.path}: the site settings its daemon recorded are damaged; name the kiosk's"
            f" config with --config FILE or $KIOSK_CONFIG (the daemon's is {INSTALLED_CONFIG})"
        ) from None
    return config.model_copy(update={"site": site, "policy": policy.model_copy(update=update)})


def hours_unknown(args: argparse.Namespace, store: EventLog) -> bool:
    """Whether the staffed hours a report of the log is cut by are unknown: no config named,
    and its daemon recorded the site before it recorded the hours (a release before
    2026-12-07), so ``site_config``'s are the defaults, not the gate's."""
    from kiosk.store import recorded_site

    recorded = None if args.config else recorded_site(store.reader())
    return recorded is not None and "hours" not in recorded


def _newest_kiosk_id(store: EventLog, newest: str) -> str | None:
    """The kiosk_id the log was written under, by its newest event (``_NEWEST_EVENT``, what
    the daemon checks) or audit row; None when there is none."""
    row = store.reader().execute(newest).fetchone()
    return None if row is None else str(row[0])


_NEWEST_EVENT = "SELECT kiosk_id FROM events ORDER BY seq DESC LIMIT 1"
_NEWEST_AUDIT = "SELECT kiosk_id FROM audit ORDER BY seq DESC LIMIT 1"
