"""``kiosk backup --into FILE`` and ``kiosk restore FILE``: a gate's database, config, trust
list and issuing keys in one archive, taken while the kiosk runs, and put back onto a stopped
(or a new) Pi. The archive's making and checking is ``kiosk.backup``; here: where the files
are, who may write them, and the data dir's lock.

A backup runs as the kiosk's user (``sudo kiosk-admin backup``: the credentials it may not
read in /etc/kiosk/credentials are those kiosk-admin hands it, ``$CREDENTIALS_DIRECTORY``) or
as root. A restore writes /etc/kiosk, so it runs as root; what it puts in the data dir is
given to the data dir's owner (the service's user), as the installer does."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import grp
import json
import os
import pwd
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.files import sqlite_read_at_rest

from .errors import CliError, UsageError
from .parsers import Verbs, add_verb, path_arg, path_of, stdin, stdin_or_path
from .store_args import (
    INSTALLED_CONFIG,
    NOT_A_LOG,
    _event_tables,
    add_config_arg,
    add_store_args,
    check_event_log,
    db_path,
    held_for_writing,
    load_verb_config,
)

if TYPE_CHECKING:
    from kiosk.backup import Archive, LogFacts, Member, Placed, Staged
    from kiosk.config import KioskConfig
    from kiosk.people import Kept


def register(sub: Verbs) -> None:
    p = add_verb(sub, "backup", backup_run)
    p.add_argument(
        "--into",
        metavar="FILE",
        type=path_of,
        required=True,
        help="the archive to write (mode 0600; never in the data dir: a USB stick, another"
        " machine's share)",
    )
    sealing = p.add_mutually_exclusive_group()
    _passphrase_arg(sealing, "the passphrase the archive is encrypted with")
    sealing.add_argument(
        "--plain",
        action="store_true",
        help="write the archive NOT encrypted: a plain tar anyone who holds the file reads"
        " (residents' names and phones, the issuing key, the credentials)",
    )
    add_store_args(p)
    p = add_verb(sub, "restore", restore_run)
    p.add_argument(
        "archive", metavar="FILE", type=path_of, nargs="?", help="an archive of kiosk backup"
    )
    p.add_argument(
        "--undo",
        action="store_true",
        help="only put this Pi's files back after a restore cut off part way (a power cut,"
        " a kill: the kiosk refuses to start until then); a restore run again does it first",
    )
    _passphrase_arg(p, "the passphrase of an encrypted archive (a plain one needs none)")
    add_config_arg(
        p,
        "this Pi's config: its site.kiosk_id is the gate this Pi is, its folder where the"
        " archive's config goes (default: $KIOSK_CONFIG, else /etc/kiosk/kiosk.toml)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        type=path_arg,
        help="the data dir the archive's database (as the file the config's store.path names,"
        " kiosk.db by default), trust list and keys go into"
        " (default: $KIOSK_DATA, else /var/lib/kiosk when it is there, else ./data)",
    )
    p.add_argument(
        "--as-this-gate",
        action="store_true",
        help="restore an archive of another gate, or of another log than this Pi's, making"
        " this Pi that gate (a replaced Pi whose fresh install has its own kiosk id)",
    )
    p.add_argument(
        "--without-forgets",
        action="store_true",
        help="go on when this Pi's log cannot be read for the residents' forgets it keeps"
        " (a damaged card): those made since the archive are then made again by hand, from"
        " the office's list of requests, before the kiosk starts",
    )


def _passphrase_arg(p: Any, what: str) -> None:
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        type=stdin_or_path,
        help=f"{what}: its first line, from FILE or - for stdin (default: asked at the"
        " terminal; never on the command line)",
    )
    # Taken only to be refused (argparse would read ``--passphrase X`` as ``--passphrase-file``
    # and quote X, the passphrase, in its error): on a command line it is in ps and history.
    p.add_argument("--passphrase", help=argparse.SUPPRESS)


def passphrase_of(args: argparse.Namespace, *, confirm: bool) -> bytes | None:
    """The passphrase from ``--passphrase-file`` (a file, ``-``: stdin), else asked at the
    terminal (twice with ``confirm``), else None (no terminal: the caller says what to do).
    Its first line, without its line break; never printed, never logged. ``confirm`` (a new
    archive is sealed with it): one shorter than ``kiosk.backup.MIN_PASSPHRASE_CHARS`` is
    refused, at the terminal before it is asked again."""
    from kiosk.backup import MAX_PASSPHRASE_BYTES

    if args.passphrase is not None:
        raise UsageError(
            "a passphrase is never given on the command line (ps, the shell's history): use"
            " --passphrase-file FILE (- for stdin), or the terminal's prompt"
        )
    source = args.passphrase_file
    if source is None:
        if not stdin().isatty():
            return None
        import getpass

        first = getpass.getpass("Passphrase: ")
        if confirm:
            _long_enough(first.encode())
        if confirm and getpass.getpass("Again: ") != first:
            raise UsageError("the two passphrases differ; nothing written")
        raw = first.encode()
    elif source == "-":
        raw = stdin().buffer.read(MAX_PASSPHRASE_BYTES + 1)
    else:
        try:
            with open(source, "rb") as handle:
                raw = handle.read(MAX_PASSPHRASE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"--passphrase-file {source}: {exc.strerror or exc}") from None
    phrase = raw.split(b"\n", 1)[0].removesuffix(b"\r")
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise UsageError(f"the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")
    if not phrase:
        raise UsageError("the passphrase is empty")
    if confirm:
        _long_enough(phrase)
    return phrase


def _long_enough(phrase: bytes) -> None:
    """A new archive's passphrase, refused when short (``kiosk.backup.passphrase_too_short``)."""
    from kiosk.backup import passphrase_too_short

    short = passphrase_too_short(phrase) if phrase else None
    if short is not None:
        raise UsageError(f"{short}; nothing written")


#: The kiosk command as root runs it (not on sudo's path: kiosk-admin is).
_ROOT = "sudo /opt/kiosk/current/venv/bin/kiosk VERB ..."
#: The installed kiosk's data dir (docs/install.md).
INSTALLED_DATA = "/var/lib/kiosk"


def _installed(args: argparse.Namespace) -> None:
    """Plain ``sudo kiosk backup`` (no kiosk-admin, so no $KIOSK_CONFIG, $KIOSK_DATA) means
    the installed kiosk's config and data dir, when they are there, not ./data."""
    if args.config is None and os.path.isfile(INSTALLED_CONFIG):
        args.config = INSTALLED_CONFIG
    if args.data is None and not os.environ.get("KIOSK_DATA") and os.path.isdir(INSTALLED_DATA):
        args.data = INSTALLED_DATA


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data or os.environ.get("KIOSK_DATA") or "data")


def _now() -> datetime:
    return datetime.now(UTC)


def backup_run(args: argparse.Namespace) -> int:
    """a consistent archive of the running kiosk: database, config, trust, keys

    One archive (mode 0600) of the kiosk's database (its event log, lists, tokens, guard
    accounts, ledgers), the config folder (/etc/kiosk with its credentials: as root), the trust
    list, the issuing keys and the calibration, with a manifest (kiosk id, the log's origin,
    schema, seq range, chain head, when). The database is copied with SQLite's online backup
    while the daemon runs on: no stop. It holds personal data and the keys that open the
    gate: keep it encrypted, off the kiosk's card. Without --config/--data (and no
    $KIOSK_CONFIG/$KIOSK_DATA), the installed kiosk's: /etc/kiosk/kiosk.toml, /var/lib/kiosk.

    Examples:
      sudo kiosk-admin backup --into /tmp/gate-north.kbak   # then copy it off the card
      sudo /opt/kiosk/current/venv/bin/kiosk backup --into /media/usb/gate-north.kbak"""
    from kiosk.backup import PERSONAL_DATA_WARNING

    _installed(args)
    config = load_verb_config(args.config)
    data, db = _data_dir(args), db_path(args, config)
    target = _checked_target(args.into, data)
    check_event_log(db)
    if _event_tables(db) is False:
        raise UsageError(f"{db}: {NOT_A_LOG}")
    etc = Path(args.config).parent if args.config else None
    passphrase = None if args.plain else passphrase_of(args, confirm=True)
    if passphrase is None and not args.plain:
        raise UsageError(
            "the archive is encrypted: give its passphrase with --passphrase-file FILE (- for"
            " stdin), or run it at a terminal to be asked; --plain writes it NOT encrypted"
        )
    with held_for_writing(data):  # never under a restore: its files all of one Pi's
        facts, members, manifest = _archived(db, data, etc, config, target, passphrase)
    if not facts.verified:
        _warn(f"the log does not verify ({facts.problem}): backed up as it is; kiosk verify-log")
    print(json.dumps({k: v for k, v in manifest.items() if k != "warning"}, ensure_ascii=False))
    sealed = "encrypted (AES-256-GCM, its key from the passphrase by scrypt)"
    if passphrase is None:
        sealed = "NOT encrypted (--plain): anyone who holds the file reads it all"
    _warn(f"wrote {target} ({len(members)} files), {sealed}. WARNING: {PERSONAL_DATA_WARNING}")
    return 0


def _archived(
    db: Path,
    data: Path,
    etc: Path | None,
    config: KioskConfig,
    target: Path,
    passphrase: bytes | None,
) -> tuple[LogFacts, list[Member], dict[str, Any]]:
    """The archive written at ``target``: the log's copy (staged: ``_stage_folder``) with the
    data dir's and the config folder's files; the log's facts, the members and the manifest."""
    from kiosk import __version__
    from kiosk.backup import (
        BACKUP_STAGE_PREFIX,
        BackupError,
        build_manifest,
        data_members,
        describe_log,
        etc_members,
        held_stage,
        snapshot_database,
        write_archive,
    )
    from kiosk.config import trust_dir

    stage_in = _stage_folder(db, target, sealed=passphrase is not None)
    try:
        with held_stage(stage_in, BACKUP_STAGE_PREFIX, ours=False) as held:
            snapshot = held.path / "kiosk.db"
            with _no_root_files_beside(db):
                snapshot_database(db, snapshot)
            os.chmod(snapshot, db.stat().st_mode & 0o777)  # restored with the log's own mode
            facts = describe_log(snapshot)
            members = data_members(data, snapshot, trust_dir(config, data))
            members += _with_credentials(etc_members(etc) if etc else [], etc)
            members = _readable(members)
            manifest = build_manifest(facts, _now(), __version__)
            write_archive(target, members, manifest, passphrase)
    except BackupError as exc:
        raise CliError(f"{exc}; nothing kept") from None
    except PermissionError:
        raise  # main: whose file it is, and what to run it as
    except OSError as exc:  # the staged copy on a full or read-only target
        raise CliError(
            f"cannot write in {stage_in} or beside {target}: {exc.strerror or exc}; nothing kept"
        ) from None
    return facts, members, manifest


def _stage_folder(db: Path, target: Path, *, sealed: bool) -> Path:
    """Where the database's copy is made before it goes into the archive. Sealed: beside the
    log, on the kiosk's own card, which holds the log in clear anyway; beside the archive (a
    USB stick) the copy, deleted once sealed, stayed in the stick's free space, readable by
    any undelete tool: the whole log in clear next to its encrypted archive. Plain: beside
    the archive (the card needs no room for a copy). Stage folders a killed backup left there
    are removed first (and, in the data dir, by the retention purge: ``purge_set_aside``),
    and the ``.part`` files of ``target`` one killed while writing left beside it."""
    from kiosk.backup import BACKUP_STAGE_PREFIX, STAGE_LEFT_S, remove_parts, remove_stages

    folder = db.parent if sealed else target.parent
    remove_stages(folder, BACKUP_STAGE_PREFIX, STAGE_LEFT_S, time.time())
    remove_parts(target, STAGE_LEFT_S, time.time())
    return folder


def _warn(message: str) -> None:
    print(f"kiosk backup: {message}", file=sys.stderr)


def _checked_target(target: Path, data: Path) -> Path:
    """The archive's path, refused inside the data dir (a backup on the card it backs up dies
    with it, and the data dir's files are the service's); one on the data dir's card is
    written, said to be no backup of the card."""
    if target.is_dir() or str(target).endswith("/"):
        raise UsageError(f"{target}: a folder; name the archive's file (--into FILE)")
    folder = target.parent.resolve()
    if not folder.is_dir():
        raise UsageError(f"no such directory for the archive: {target.parent}")
    inside = data.resolve()
    if folder == inside or inside in folder.parents:
        raise UsageError(
            f"{target} is in the kiosk's data dir {data}: a backup on the card it backs up dies"
            " with it; write it to a USB stick or another machine (--into /media/usb/...)"
        )
    try:
        same_card = folder.stat().st_dev == inside.stat().st_dev
    except OSError:
        same_card = False
    if same_card:
        _warn(f"{target} is on the kiosk's own card: copy it off, it is no backup of the card")
    return folder / target.name


def _with_credentials(members: list[Member], etc: Path | None) -> list[Member]:
    """The config folder's files, its credentials this user may not read (root's 0600, run
    by ``sudo kiosk-admin``) taken from those systemd handed the verb instead
    (``$CREDENTIALS_DIRECTORY``, kiosk-admin's ``LoadCredential=``): the same files."""
    from kiosk.backup import Member

    folder = etc / "credentials" if etc is not None else None
    if folder is not None and folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
        _warn(
            f"{folder} is root's: only the credentials kiosk-admin hands the verb are in the"
            f" archive, not a TLS certificate or key (for those, run it as root: {_ROOT})"
        )
    handed = os.environ.get("CREDENTIALS_DIRECTORY")
    if not handed or not os.path.isdir(handed):
        return members
    by_name = {m.name: m for m in members if os.access(m.source, os.R_OK)}
    for path in sorted(Path(handed).iterdir()):
        name = f"etc/credentials/{path.name}"
        if name not in by_name and path.is_file() and os.access(path, os.R_OK):
            by_name[name] = Member(name, path)
    kept = [m for m in members if m.name not in by_name] + list(by_name.values())
    return sorted(kept, key=lambda m: m.name)


def _readable(members: list[Member]) -> list[Member]:
    """The members this user may read; each left out is said (the credentials, root's). The
    backup's copy of the event log gone or unreadable is ``BackupError``: an archive without
    the log is no backup."""
    from kiosk.backup import DB_MEMBER, BackupError

    kept = []
    for member in members:
        if os.access(member.source, os.R_OK):
            kept.append(member)
        elif member.name == DB_MEMBER:
            raise BackupError(
                f"the backup's copy of the event log ({member.source}) is gone or cannot be"
                " read: removed under the backup? Run it again"
            )
        else:
            _warn(f"left out {member.source}: not readable by this user (run it as root: {_ROOT})")
    return kept


@contextmanager
def _no_root_files_beside(db: Path) -> Iterator[None]:
    """Run as root on the service's database: a ``-wal``/``-shm`` SQLite makes beside it
    for the copy's read is given to the database's owner, never left root's."""
    beside = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
    there = {path for path in beside if path.exists()}
    try:
        yield
    finally:
        if os.geteuid() == 0:
            st = db.stat()
            for path in beside:
                if path not in there and path.exists():
                    os.chown(path, st.st_uid, st.st_gid)


# -- restore ---------------------------------------------------------------------------------


def restore_run(args: argparse.Namespace) -> int:
    """put a backup back onto a stopped kiosk (refused while its daemon runs)

    Checks the archive whole (each file's SHA-256, the log's chains, the manifest), refuses
    one of another gate or of another log than this Pi's unless --as-this-gate, and never
    takes this Pi's own log back to an earlier seq, of its events or of its audit. What it
    replaces is kept aside in before-restore-UTC folders of the data dir and of the config
    folder. The log goes to the file the config's store.path names, where the daemon opens
    it. Then check the log against the office's copy before the kiosk decides again
    (docs/operations.md, Backups).
    A restore cut off part way (a power cut, a kill) is undone by the next, first, or by
    --undo alone; until then the kiosk refuses to start.

    Examples:
      sudo systemctl stop kiosk
      sudo /opt/kiosk/current/venv/bin/kiosk restore /media/usb/gate-north.kbak
      # a drill on any machine: restore into spare folders, then verify-log them
      kiosk restore gate-north.kbak --data ./drill --config ./drill/etc/kiosk.toml
      # after a restore cut off part way: this Pi's files back as they were
      sudo /opt/kiosk/current/venv/bin/kiosk restore --undo"""
    from kiosk.backup import is_encrypted

    if args.undo == (args.archive is not None):
        raise UsageError("name the archive to restore (FILE), or --undo alone")
    sealed = args.archive is not None and is_encrypted(args.archive)
    passphrase = passphrase_of(args, confirm=False) if sealed else None
    if passphrase is None and sealed:
        raise UsageError(
            f"{args.archive} is encrypted: give its passphrase with --passphrase-file FILE (-"
            " for stdin), or run it at a terminal to be asked; nothing was changed"
        )
    _installed(args)
    data = _data_dir(args)
    config_file = Path(args.config or INSTALLED_CONFIG)
    run = _Run(_folders_made(data, config_file.parent))
    with _stopped(data, run):
        run.changed = _undo_cut_off(data, config_file.parent)
        if args.undo:
            if not run.changed:
                print(f"kiosk restore: no restore was cut off in {data}: nothing to undo")
            return 0
        restored, db = _restore_from(args.archive, passphrase, data, config_file, args)
        run.changed = True
    print(json.dumps(restored, ensure_ascii=False))
    _said_after(restored, data, config_file, db)
    return 0


def _said_after(restored: dict[str, Any], data: Path, config_file: Path, db: Path) -> None:
    """What a restore that went through says on stderr: the forgets made again, the rows
    and forgets left to do by hand, and what to do before the kiosk decides again (for a
    drill, its own check: ``_drill``). ``db``: the restored log, where ``store.path`` put it."""
    again = restored["forgets_reapplied"]
    if again["forgets"]:
        rows = sum(again["rows"].values())
        print(
            f"kiosk restore: forgets made since the archive, made again: {again['forgets']}"
            f" ({rows} rows emptied, {again['passes_revoked']} passes revoked; audited); the"
            " log set aside in before-restore-UTC/ still holds them whole: it is the way back",
            file=sys.stderr,
        )
    if unfound := sum(again["rows_not_found"].values()):
        print(
            f"kiosk restore: {_rows_said(unfound)} a forget emptied"
            f" {'is' if unfound == 1 else 'are'} not in the archive as"
            f" {'it was' if unfound == 1 else 'they were'} (made since, or changed or removed"
            f" since: {', '.join(sorted(again['rows_not_found']))}); a resident's name may be"
            f" back in them: {_BY_HAND}",
            file=sys.stderr,
        )
    drill = _drill(data, config_file)
    if by_hand := restored["forgets_by_hand"]:
        forget = f"kiosk person forget --db {shlex.quote(str(db))}"
        _say_by_hand(
            by_hand, again["forgets"], forget if drill else "sudo kiosk-admin person forget"
        )
    then = (
        ". Before it decides again: check the log against the office's copy (sudo kiosk-admin"
        " verify-log --against ...; one the office never pulled this gate into: verify-log"
        " alone); then, on a replaced Pi, run scripts/install again from its"
        " checkout (it acts on the restored config, enables and starts the services: reboot if"
        " it says so), else start it (sudo systemctl start kiosk kiosk-screen kiosk-purge.timer)"
    )
    if drill:  # no service runs on these folders: the drill's own check
        then = (
            f" in a drill's folders ({data}: not the installed kiosk's, no service starts on"
            f" them). Check it: kiosk verify-log --db {shlex.quote(str(db))} (--against the"
            " office's copy too)"
        )
    print(
        f"kiosk restore: restored kiosk {restored['kiosk_id']!r}, events seq up to"
        f" {restored['seq']['last']}{then}",
        file=sys.stderr,
    )
    if not drill and _serves_tls(config_file):
        print(f"kiosk restore: {TLS_AGAIN}", file=sys.stderr)


def _drill(data: Path, config_file: Path) -> bool:
    """Whether the restore went into other folders than the installed kiosk's (the data dir
    and config ``kiosk.service`` runs on): a drill, which no service starts."""
    here = (data.resolve(), config_file.resolve())
    return here != (Path(INSTALLED_DATA).resolve(), Path(INSTALLED_CONFIG).resolve())


def _say_by_hand(by_hand: dict[str, Any], made_again: int, forget: str) -> None:
    """The forgets since the archive this restore could not make again (``_forgets_by_hand``),
    said with the archive's date as the site's clock read it (``_site_time``) and what to do
    before the kiosk starts."""
    since = _site_time(by_hand["since"], by_hand.get("timezone"))
    others = " (but those made again above)" if made_again else ""
    print(
        f"kiosk restore: {_NOT_ITS_OWN[by_hand['why']]}: forgets made at this gate since the"
        f" archive was taken ({since}) are not on this card{others}: get the office's list of"
        f" requests since {since} and forget each resident on it again ({forget} --keys-file -"
        " --yes, the keys typed at its prompt) before the kiosk starts",
        file=sys.stderr,
    )


def _site_time(stamp: str, zone: str | None) -> str:
    """``stamp`` (a UTC ISO time: the archive's ``created_at``) as the site's clock read it,
    with its offset and ``zone`` (``2026-03-01 22:30 UTC-10:00 (Pacific/Honolulu)``): the
    office's requests are dated by the site's day, and a UTC date is a day off west (or east)
    of UTC in the evening. As it is when it cannot be read, or no zone is known."""
    from kiosk.days import as_zone, offset_text

    try:
        when, tz = datetime.fromisoformat(stamp), as_zone(zone or "")
    except (ValueError, KeyError, OSError):
        return stamp
    if when.tzinfo is None:
        return stamp
    local = when.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {offset_text(local)} ({zone})"


def _restore_from(
    path: Path, passphrase: bytes | None, data: Path, config_file: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], Path]:
    """The archive at ``path`` restored (``_restore``) and where its log now is, its refusals
    said: "nothing was changed" only when nothing was, else the restore cut off part way and
    its undo. This Pi's log is the one its config in place names (``_log_in_use``)."""
    from kiosk.backup import BackupError, NoProc, NotOurFolder, open_archive, restore_cut_off

    in_use = _log_in_use(config_file, data)
    try:
        with open_archive(path, passphrase) as archive:
            return _restore(archive, data, in_use, config_file, args)
    except NotOurFolder as exc:  # not the archive's fault
        raise _not_ours(exc, data) from None
    except NoProc as exc:  # nor this
        raise CliError(f"{exc}; nothing was changed") from None
    except BackupError as exc:
        raise UsageError(f"{exc}; nothing was changed") from None
    except Exception as exc:  # the card failing under the swap and its undo
        if (cut := restore_cut_off(data)) is None:
            raise
        raise CliError(f"{exc}; {cut}", partial=cut) from exc


#: After a restore of a gate that serves over TLS: kiosk.service is handed the certificate's
#: credentials by the drop-in scripts/install writes, not by the restored files alone; the
#: install run of the procedure, after the check, writes it (a plain run: the config says
#: web.tls). An archive taken without root has no key: that run makes a new pair.
TLS_AGAIN = (
    "web.tls is on: on a replaced Pi that install run, after the check, hands kiosk.service the"
    " archive's certificate (kiosk.service does not start without it); an archive taken"
    " without root holds no key: it then makes a new certificate, for the names given as"
    " scripts/install --tls --tls-name NAME (those the office and the guards use): give the"
    " office and the other gates its tls_cert"
)


def _serves_tls(config_file: Path) -> bool:
    """Whether the config now in place (the archive's) turns ``web.tls`` on; a config that
    does not load is said by ``kiosk run`` and check-config, not here."""
    from kiosk.config import ConfigError, load_config

    try:
        return load_config(str(config_file)).web.tls
    except (ConfigError, OSError):
        return False


def _not_ours(refused: Exception, data: Path) -> CliError:
    """A restore refused on a folder it did not make: nothing changed, or, refused after its
    first rename, cut off (its marker left: how to undo it)."""
    from kiosk.backup import restore_cut_off

    return CliError(f"{refused}; {restore_cut_off(data) or 'nothing was changed'}")


def _undo_cut_off(data: Path, etc: Path) -> bool:
    """Before anything else: a restore cut off part way in ``data`` undone (this Pi's files
    put back, ``kiosk.backup.undo_restore``), and the stages restores killed before their
    swap left (the archive's files in clear) removed: the data dir's lock is held, so none
    is a running restore's. Whether one was undone."""
    from kiosk.backup import (
        RESTORE_STAGE_PREFIX,
        BackupError,
        remove_stages,
        restore_cut_off,
        undo_restore,
    )

    try:
        undone = undo_restore(data, etc)
    except (BackupError, OSError) as exc:
        raise CliError(
            f"a restore into {data} was cut off part way and cannot be undone ({exc});"
            " nothing else was changed: docs/operations.md, Backups",
            partial=restore_cut_off(data),
        ) from None
    left = [
        name
        for folder in (data, etc)
        for name in remove_stages(folder, RESTORE_STAGE_PREFIX, 0, time.time())
    ]
    if undone:
        print(
            f"kiosk restore: a restore into {data} cut off part way is undone: this Pi's"
            " files are back where they were",
            file=sys.stderr,
        )
    if left:
        print(
            f"kiosk restore: removed {len(left)} stage folder(s) a killed restore left (the"
            " archive's files in clear)",
            file=sys.stderr,
        )
    return undone


def _audit_aside(rows: int, kept: Path) -> None:
    """Says the audit rows of the log a restore replaced (another log's: this Pi's own are
    never taken back) and where they are kept."""
    print(
        f"kiosk restore: {'1 audit row' if rows == 1 else f'{rows} audit rows'} (seq up to"
        f" {rows}) of this Pi's log {'is' if rows == 1 else 'are'} not in the restored one (it"
        f" was another log): kept in {kept}, which the retention purge removes once"
        " store.retention_days old; copy it off first if they must be kept longer",
        file=sys.stderr,
    )


def _rows_said(n: int) -> str:
    return "1 list row" if n == 1 else f"{n} list rows"


class _Run:
    """What a restore run changed: nothing (``changed`` False) until it undoes one cut off
    part way, or puts an archive in place; ``made``: the folders it made (``_folders_made``),
    removed again when it changed nothing."""

    changed = False

    def __init__(self, made: list[Path] | None = None) -> None:
        self.made = made or []


@contextmanager
def _stopped(data: Path, run: _Run | None = None) -> Iterator[None]:
    """The data dir's lock held for the restore. The data dir itself (``lock_folder``),
    exclusive: refused while a maintenance verb writes in it, and none writes until the
    restore is over (``store_args.held_for_writing``); refused where it cannot be locked.
    Then its lock file, as the daemon takes it: refused while a daemon holds it, and no
    daemon starts on the files half put back. A lock file made here as root is the data
    dir's owner's (the daemon opens it for writing). A run that ``changed`` nothing
    (``run``: refused, or nothing to undo) removes the lock file it made and then the folders
    it made (``run.made``, while empty), the data dir still held: a verb that writes in one
    is refused meanwhile, and finds none after."""
    from .daemon_cmd import lock_folder

    run = run or _Run()
    try:
        folder = lock_folder(data, exclusive=True)
    except BlockingIOError:  # the daemon, or a verb that writes: the folders are its too now
        raise CliError(_held_by_another(data)) from None
    except CliError:
        _unmade(run.made)
        raise
    try:
        with _lock_file_held(data, run):
            yield
    finally:
        if not run.changed:
            _unmade(run.made)
        if folder is not None:
            os.close(folder)


def _held_by_another(data: Path) -> str:
    """Why a restore is refused whose data dir another holds: the daemon (its ``kiosk.lock``
    held, its pid in it), else a maintenance verb that writes."""
    from .daemon_cmd import LOCK_FILE, lock_holder

    owner = None
    with contextlib.suppress(OSError):  # no lock file (a link to none): no daemon's
        fd = os.open(data / LOCK_FILE, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            owner = lock_holder(fd, exclusive=False)
        finally:
            os.close(fd)
    if owner is not None:
        return _daemon_runs(owner, data)
    return (
        "a maintenance command (kiosk person forget, purge, token, guard, an import,"
        " calibrate, keys new, a backup) or the kiosk daemon (its lock file gone: stop it,"
        f" sudo systemctl stop kiosk) is writing in {data}: try again when it has"
        " finished; nothing was changed"
    )


def _daemon_runs(owner: str, data: Path) -> str:
    return (
        f"the kiosk daemon (pid {owner}) runs on {data}: a restore under it would be"
        " written over or forked; stop it first (sudo systemctl stop kiosk)"
    )


@contextmanager
def _lock_file_held(data: Path, run: _Run) -> Iterator[None]:
    """``DATA/kiosk.lock`` taken for ``_stopped``; the one made here removed unless ``run``
    changed something (or was cut off: its marker there, which the daemon refuses). A link
    to no file (``/run/kiosk/kiosk.lock``: systemd removes /run/kiosk each time kiosk.service
    stops) is left so: the data dir's own lock, held exclusive, keeps a daemon out (it holds
    that shared for its life), and nothing is made through the link."""
    from kiosk.backup import RESTORE_MARKER

    from .daemon_cmd import LOCK_FILE, locked_file, unlockable

    path = data / LOCK_FILE
    if path.is_symlink() and not path.exists():
        yield
        return
    made = not os.path.lexists(path)
    try:
        fd, owner = locked_file(path, _lock_file)
    except OSError as exc:  # flock on a file system that locks nothing
        if exc.filename is not None:
            raise
        if made:
            path.unlink(missing_ok=True)
        raise CliError(unlockable(data, exc)) from None
    made = made and _is_the_file_at(fd, path)  # not one a link planted meanwhile leads to
    try:
        if owner is not None:
            raise CliError(_daemon_runs(owner, data))
        if made and os.geteuid() == 0:
            st = data.stat()
            os.fchown(fd, st.st_uid, st.st_gid)
        yield
    finally:
        held = owner is None  # a daemon's lock file, made as this looked, is never removed
        if made and held and not run.changed and not os.path.lexists(data / RESTORE_MARKER):
            path.unlink(missing_ok=True)
        os.close(fd)


def _lock_file(path: Path) -> int:
    """``DATA/kiosk.lock`` opened for the restore's lock: made where it is not, never through a
    symbolic link (as root that made a file wherever the data dir's user pointed it); a link
    to a lock file that is there (one kept off a read-only card, in /run/kiosk) is followed,
    as the daemon follows it (a link to none: ``_lock_file_held`` takes no lock file)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:  # its file removed since the restore looked
        raise CliError(
            f"{path} is a symbolic link whose file was removed as the restore began: try"
            " again; nothing was changed"
        ) from None


def _is_the_file_at(fd: int, path: Path) -> bool:
    """Whether ``fd`` is the file at ``path`` itself (not one a link there leads to)."""
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False


def _folders_made(*folders: Path) -> list[Path]:
    """``folders`` made where they are not (a drill's spare folders; an install has them),
    with the folders above them: those made, the outermost first."""
    made: list[Path] = []
    for folder in folders:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        made += [p for p in reversed(missing) if p not in made]
    return made


def _unmade(folders: list[Path]) -> None:
    """The folders ``_folders_made`` made removed again, innermost first, each only while
    empty: a restore that changed nothing leaves no drill's folder behind."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _restore(
    archive: Archive, data: Path, db: Path, config_file: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], Path]:
    """The archive's files put in place of this Pi's, its log where the config in place
    after it names (``_log_after``); every check against ``db``, the log in use now."""
    from kiosk.backup import (
        Swap,
        describe_log,
        extract_all,
        judge_restore,
        swap_all,
    )

    etc = config_file.parent
    etc_names = sorted(n.removeprefix("etc/") for n in archive.members if n.startswith("etc/"))
    if etc_names and not os.access(etc, os.W_OK):
        raise CliError(
            f"the config folder {etc} is not writable by this user: run it as root"
            f" ({_ROOT.replace('VERB', 'restore')}); the data dir's files are given to its owner"
        )
    _room_for(archive, data)
    forgets = _forgets_of(db, go_on=args.without_forgets)
    had_log = _has_log(db)
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    with _staged(data, data) as data_stage, _staged(etc if etc_names else None, data) as etc_stage:
        assert data_stage is not None
        etc_path = etc_stage.path if etc_stage is not None else None
        placed = extract_all(archive, {"data": data_stage.path, "etc": etc_path})
        target = _log_after(etc_path, config_file, db, data)
        staged_db = data_stage.path / "kiosk.db"  # opened only by its stage's checks
        restored = describe_log(staged_db, staged=data_stage)
        _refuse_newer_schema(data_stage)
        current = _current(db)
        taken = judge_restore(
            archive.manifest,
            restored,
            current,
            _configured_gate(config_file),
            as_this_gate=args.as_this_gate,
        )
        again = _forget_again(
            data_stage, restored, forgets, config_file, go_on=args.without_forgets
        )
        if again["forgets"]:
            restored = describe_log(staged_db, staged=data_stage)
        data_stage.rename("kiosk.db", target)
        placed["data"][data_stage.path / target] = placed["data"].pop(staged_db)
        _own(data_stage.path, data, placed["data"], as_was=False)
        if etc_path is not None:
            _own(etc_path, etc, placed["etc"], as_was=True)
        swaps = [Swap(etc, etc_path, tuple(etc_names), stamp)] if etc_path else []
        aside_names = _set_aside(archive.members, target, _under(db, data))
        swaps.append(Swap(data, data_stage.path, aside_names, stamp))
        with _uninterrupted():
            aside = swap_all(data, swaps)[-1]
        if aside is not None and os.geteuid() == 0:  # the service's user may clear it
            os.chown(aside, data.stat().st_uid, data.stat().st_gid, follow_symlinks=False)
    if taken and aside is not None:  # a log in use outside the data dir stays where it is
        _audit_aside(taken, aside / inside if (inside := _under(db, data)) else db)
    by_hand = _forgets_by_hand(
        archive.manifest, restored, current, had_log=had_log, zone=_site_zone(config_file)
    )
    summary = restored.summary() | {"forgets_reapplied": again, "forgets_by_hand": by_hand}
    return summary, data / target


def _log_in_use(config_file: Path, data: Path) -> Path:
    """This Pi's event log, the file its daemon opens: the ``store.path`` of the config in
    place (a plain name in the data dir, ``_log_name``), ``DATA/kiosk.db`` without one. A
    config there that does not load stops the restore (exit 2), nothing changed: which file
    is this Pi's log is not known (the message says how to go on without it)."""
    from kiosk.config.store import StoreSection

    config = _config_read(config_file, "this Pi's config", data=data)
    store = config.store if config is not None else StoreSection()
    return data / _log_name(store.path, data, f"this Pi's config {config_file}")


def _log_after(etc_stage: Path | None, config_file: Path, in_use: Path, data: Path) -> str:
    """The name in the data dir the restored log goes to: the file the daemon will open,
    named by the config in place after the restore (the archive's, staged in ``etc_stage``,
    when it brings one; else this Pi's, whose log is ``in_use``), checked by ``_log_name``."""
    shown = f"etc/{config_file.name}"  # the archive's name for it, not its stage's path
    staged = etc_stage / config_file.name if etc_stage is not None else None
    config = _config_read(staged, "the archive's config", shown) if staged is not None else None
    if config is None:
        return in_use.name
    return _log_name(config.store.path, data, f"the archive's config {shown}")


def _log_name(store_path: str, data: Path, whose: str) -> str:
    """``store.path`` as the plain file name in the data dir a restore puts the log in. One
    with a folder part (a link swapped in for its folder, a folder the archive brings), an
    absolute one, a name the kiosk uses for another file (the archive's, the restore's
    marker, stages and folders set aside, the lock, SQLite's side files and temp folder, the
    held decisions; any hidden one) or an existing folder is refused (exit 2), nothing changed."""
    from kiosk.backup import ARCHIVE_DATA_NAMES, RESTORE_MARKER
    from kiosk.standby import HELD_PREFIX

    from . import sqlite_temp
    from .daemon_cmd import LOCK_FILE

    path = Path(store_path)
    if path.is_absolute():
        why = (
            f"puts the event log at {path}, outside the data dir {data}"
            if _under(path, data) is None
            else "is an absolute path"
        )
    elif store_path in (".", "..") or path.name != store_path:
        why = "has a folder part"
    elif (
        store_path
        in {*ARCHIVE_DATA_NAMES, RESTORE_MARKER, LOCK_FILE, sqlite_temp.FOLDER} - {"kiosk.db"}
        or store_path.startswith((".", "before-restore-", HELD_PREFIX))
        or store_path.endswith(("-wal", "-shm", "-journal"))
    ):
        why = "is a name the kiosk uses for another of its files"
    elif os.path.isdir(data / store_path):
        why = f"is a folder in the data dir {data}"
    else:
        return store_path
    raise UsageError(
        f"{whose} sets store.path = {store_path!r}, which {why}: a restore puts the event log"
        " only in a plain file name directly in the data dir, one the kiosk uses for nothing"
        " else (a restore moves files within the data dir and the config folder only); restore"
        " such a gate by hand as docs/operations.md, Backups, says; nothing was changed"
    )


def _under(path: Path, data: Path) -> str | None:
    """``path`` as a path under the data dir (``events.db``, ``logs/kiosk.db``), None when it
    is not in it (its folders' links followed: a data dir reached by a link holds it)."""
    inside = os.path.relpath(
        os.path.join(os.path.realpath(path.parent), path.name), os.path.realpath(data)
    )
    return None if inside == "." or Path(inside).parts[0] == ".." else inside


def _set_aside(members: Iterable[str], target: str, in_use: str | None) -> tuple[str, ...]:
    """What the restore keeps aside in the data dir (``replaced_in_data``): what the archive
    brings, the restored log's place, and the log in use when the config after names
    another file (the daemon will not open it again; there the retention purge removes it)."""
    from kiosk.backup import replaced_in_data

    names = replaced_in_data(members, target)
    if in_use is not None and in_use != target:
        names += [in_use + suffix for suffix in ("", "-wal", "-shm")]
    return tuple(names)


def _config_read(
    config_file: Path, whose: str, shown: str | None = None, *, data: Path | None = None
) -> KioskConfig | None:
    """The config at ``config_file``, None when there is none; one there that cannot be
    read or does not load refuses the restore (exit 2): where the event log is
    (``store.path``) is not known. ``whose`` and ``shown`` (its path, else another name for
    it) name it; with ``data`` (this Pi's config) the message says the way on: that config
    moved aside, this Pi's log is the default one."""
    if not os.path.lexists(config_file):
        return None
    try:
        return load_verb_config(str(config_file))
    except (UsageError, PermissionError) as exc:
        shown = shown or str(config_file)
        why = str(exc).replace(str(config_file), shown)
        way = (
            f"; to restore anyway, move it aside (sudo mv {config_file} {config_file}.broken)"
            f" and run the restore again: this Pi's log is then taken to be {data / 'kiosk.db'}"
            " (the default), and the archive's config, when it brings one, takes its place"
            if data is not None
            else ""
        )
        raise UsageError(
            f"{whose} {shown} cannot be read ({why}): it says where the kiosk's event log is"
            f" (store.path); nothing was changed{way}"
        ) from None


#: Why a restore cannot make again the forgets since the archive (``_forgets_by_hand``).
_NOT_ITS_OWN = {
    "no_log": "this Pi had no log (a new card)",
    "another_log": "this Pi's log was another log than the archive's (a new card's install,"
    " or another gate's)",
    "unreadable_log": "this Pi's log could not be read to tell whether it was the archive's",
}


def _forgets_by_hand(
    manifest: dict[str, Any],
    restored: LogFacts,
    current: LogFacts | None,
    *,
    had_log: bool,
    zone: str | None,
) -> dict[str, str | None] | None:
    """The forgets made at this gate since the archive that this restore cannot know of, to
    be made again by hand: all of them, unless the log it replaces is the archive's own (its
    forgets since are made again, ``_forget_again``, or the restore refused as going
    backwards). A new card after the old one died holds none of them: ``{"since": the
    archive's created_at (UTC), "timezone": ``zone``, the site's (None: its config could not
    be read), "why": no_log | another_log | unreadable_log}``; None when none."""
    from kiosk.backup import same_log

    if current is not None and same_log(restored, current):
        return None
    since = manifest.get("created_at")
    why = "another_log" if current is not None else "unreadable_log" if had_log else "no_log"
    return {"since": since if isinstance(since, str) else "unknown", "timezone": zone, "why": why}


def _has_log(db: Path) -> bool:
    """Whether this Pi has a log file with anything in it (read or not)."""
    return db.is_file() and db.stat().st_size > 0


#: What the operator does when the forgets of the log set aside are not made again.
_BY_HAND = (
    "forget again by hand, before the kiosk starts, every resident on the office's list of"
    " requests since the archive was taken (sudo kiosk-admin person forget --keys-file -"
    " --yes, the keys typed at its prompt)"
)


def _forgets_of(db: Path, *, go_on: bool) -> Kept | None:
    """The forgets this Pi's log keeps (``kiosk.people.kept``: their records, the cards
    revoked), read before it is set aside; None when there is no log to read. A log that
    cannot be read stops the restore, nothing changed (a resident's forget undone unseen is
    worse than a restore that asks), unless ``go_on`` (``--without-forgets``): then said."""
    import sqlite3

    from kiosk.people import kept

    if not _has_log(db):
        return None
    try:
        with _no_root_files_beside(db):
            conn = sqlite_read_at_rest(db)  # the daemon stopped: nothing made beside it
            try:
                return kept(conn)
            finally:
                conn.close()
    except sqlite3.Error as exc:
        said = (
            f"the residents' forgets this Pi's log keeps cannot be read ({exc}), so those made"
            " since the archive would not be made again"
        )
        if not go_on:
            raise CliError(
                f"{said}: nothing was changed. Copy the log off and repair it if it can be,"
                f" or restore with --without-forgets and {_BY_HAND}"
            ) from None
        print(f"kiosk restore: {said} (--without-forgets): {_BY_HAND}", file=sys.stderr)
        return None


def _forget_again(
    staged: Staged, restored: LogFacts, forgets: Kept | None, config_file: Path, *, go_on: bool
) -> dict[str, Any]:
    """Every forget this Pi's log keeps that the archive's does not, made again on the
    staged log before it is put in place (``kiosk.people.reapply``): a restore never brings
    back a resident forgotten since the archive was taken. One whose record cannot be read
    (damaged, of a newer format after a downgrade) stops the restore as a log that cannot
    be read does, unless ``go_on`` (``--without-forgets``): the others made, that one said.
    The log is opened by the stage's descriptor (SQLite takes no descriptor: its path in
    ``/proc/self/fd``), and each of its connections, the writer's and every reader's, is
    checked to hold only the stage's files before it writes or is read (``Staged.connect``)."""
    import sqlite3

    from drivers import clocksync
    from kiosk.backup import BackupError
    from kiosk.people import Reapplied, UnreadableForgets, reapply
    from kiosk.store import EventLog, StoreFault

    from .person_cmd import _sets

    if forgets is None or not forgets.meta:
        return Reapplied(0, {}, 0).as_dict()
    kiosk_id = restored.kiosk_id or _configured_gate(config_file) or "kiosk"
    log = EventLog(
        staged.sqlite_path("kiosk.db"),
        kiosk_id,
        clocksync.system_clock(),
        migrations=_sets(),
        connecting=functools.partial(staged.connect, "kiosk.db"),
    )
    try:
        log.open()
        done = reapply(log, forgets, log.clock.now(), actor="restore", strict=not go_on)
    except UnreadableForgets as exc:
        raise CliError(
            f"{exc}, so they would not be made again: nothing was changed. Restore with"
            f" --without-forgets and {_BY_HAND}"
        ) from None
    except (StoreFault, sqlite3.Error) as exc:
        if isinstance(exc.__cause__, BackupError):  # its writer's file not the stage's
            raise exc.__cause__ from None
        raise CliError(
            f"the forgets made since the archive could not be made again ({exc}): nothing was"
            " changed"
        ) from None
    finally:
        log.close()
    if done.unreadable:
        print(
            f"kiosk restore: {done.unreadable} of the residents' forgets this Pi's log keeps"
            f" cannot be read, not made again (--without-forgets): {_BY_HAND}",
            file=sys.stderr,
        )
    return done.as_dict()


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C or a stop (SIGTERM) held off while this Pi's files and the archive's change
    places (a few renames): never a data dir left between the two."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _room_for(archive: Archive, data: Path) -> None:
    """The card holds the archive's files beside what they replace (kept aside), with the
    room the daemon keeps free: else refused before anything is written."""
    needed = sum(info.size for info in archive.members.values()) + 64 * 1_048_576
    free = shutil.disk_usage(data).free
    if free < needed:
        raise CliError(
            f"{data}: {free // 1_048_576} MB free, the restore needs {needed // 1_048_576} MB"
            " (the archive's files beside those kept aside): free space first (df -h)"
        )


@contextmanager
def _staged(folder: Path | None, data: Path) -> Iterator[Staged | None]:
    """A hidden folder in ``folder`` (one file system with what it replaces) for the
    archive's files, held by this restore while it runs (no purge removes it under the run:
    ``kiosk.backup.held_stage``) and removed with whatever is left in it, unless a restore's
    marker in ``data`` still names it (a swap not undone: its way back); None for no folder."""
    from kiosk.backup import RESTORE_MARKER, RESTORE_STAGE_PREFIX, held_stage

    if folder is None:
        yield None
        return
    with held_stage(
        folder, RESTORE_STAGE_PREFIX, keep=lambda: os.path.lexists(data / RESTORE_MARKER)
    ) as stage:
        yield stage


def _own(stage: Path, folder: Path, placed: dict[Path, Placed], *, as_was: bool) -> None:
    """The staged files get their modes at backup and, run as root, an owner: ``folder``'s
    (the data dir's: the service's user), or with ``as_was`` (the config folder) the owner
    and group they had, by name, else those of the file they replace, else ``folder``'s.
    Walked by the folders' descriptors: never through a link put in the stage's place
    (``NotOurFolder``; the stage itself stays root's, and no other user enters it)."""
    from kiosk.backup import our_folder

    our_folder(stage)
    for top, dirs, files, top_fd in os.fwalk(stage, follow_symlinks=False):
        for name in dirs + files:
            path = Path(top) / name
            was = placed.get(path)
            if was is not None:
                os.chmod(name, was.mode, dir_fd=top_fd)  # a file extract made, in root's stage
            if os.geteuid() != 0:
                continue
            there = folder / path.relative_to(stage)
            st = (there if as_was and there.exists() else folder).stat()
            uid, gid = st.st_uid, st.st_gid
            if as_was and was is not None:
                uid = _number(pwd.getpwnam, was.owner, uid)
                gid = _number(grp.getgrnam, was.group, gid)
            os.chown(name, uid, gid, dir_fd=top_fd, follow_symlinks=False)


def _number(lookup: Callable[[str], Any], name: str | None, otherwise: int) -> int:
    """The id of user or group ``name`` on this Pi; ``otherwise`` when it has none here."""
    if name is None:
        return otherwise
    try:
        return int(lookup(name)[2])
    except KeyError:
        return otherwise


def _refuse_newer_schema(staged: Staged) -> None:
    """An archive of a gate on a newer version than this Pi's (a new card flashed with an
    older release): the daemon here would refuse its log at start, the gate dark, with this
    Pi's own files already set aside. Said before anything moves (the staged log read as
    its stage's: ``Staged.reading``)."""

    import sqlite_utils

    from kiosk import accounts, ledgers, lists, peers, stats, tokens
    from kiosk.store import MIGRATIONS, newer_schema

    known = [
        MIGRATIONS,
        lists.MIGRATIONS,
        tokens.MIGRATIONS,
        accounts.MIGRATIONS,
        stats.MIGRATIONS,
        *ledgers.MIGRATIONS,
        peers.MIGRATIONS,
    ]
    with staged.reading("kiosk.db") as conn:
        why = newer_schema(sqlite_utils.Database(conn), known)
    if why is not None:
        raise UsageError(
            f"the archive was made by a newer version of the program ({why}): install that"
            " version here first (scripts/install from its checkout), then restore it;"
            " nothing was changed"
        )


def _current(db: Path) -> LogFacts | None:
    """This Pi's log as it is, None when there is none (a new install's is empty)."""
    from kiosk.backup import BackupError, describe_log

    if not _has_log(db):
        return None
    try:
        with _no_root_files_beside(db):
            return describe_log(db)
    except BackupError as exc:
        print(f"kiosk restore: this Pi's log cannot be read ({exc}): kept aside", file=sys.stderr)
        return None


def _configured_gate(config_file: Path) -> str | None:
    """The kiosk id of the config on this Pi (a fresh install's), None without one."""
    config = _config_on(config_file)
    return None if config is None else config.site.kiosk_id


def _site_zone(config_file: Path) -> str | None:
    """The site's time zone (``site.timezone``) of the config now in place (the archive's, or
    this Pi's), None when there is none that loads."""
    config = _config_on(config_file)
    return None if config is None else config.site.timezone


def _config_on(config_file: Path) -> KioskConfig | None:
    """The config at ``config_file``, None without one (or one that does not load: said by
    ``kiosk run`` and check-config, not here)."""
    if not config_file.is_file():
        return None
    try:
        return load_verb_config(str(config_file))
    except (UsageError, PermissionError):
        return None
