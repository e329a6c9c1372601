"""The ``kiosk`` command. Each verb group lives in its own module with a ``register()``; a
verb's help is the docstring of the function that runs it (``parsers.add_verb``).

Exit codes (docs/cli.md): 0 ok, 1 failure at run time, 2 bad input. A user mistake is one clear
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import select
import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from kiosk.secrets import SecretError

from . import (
    backup_cmd,
    bench_cmd,
    calibrate_cmd,
    community_cmd,
    config_cmd,
    daemon_cmd,
    fleet_cmd,
    guard_cmd,
    log_cmd,
    pass_cmd,
    person_cmd,
    pull_cmd,
    replay_cmd,
    scan_cmd,
    scanner_cmd,
)
from .errors import CliError, Interrupted, bounded
from .parsers import ADMIN_CWD
from .sqlite_temp import keep_sqlite_temp_in_data_dir

#: In docs/cli.md order; tests check each has --help and is documented there and in the README.
VERB_MODULES = (
    daemon_cmd,  # demo, run
    config_cmd,  # check-config
    pass_cmd,  # keys, pass
    scan_cmd,  # scan
    replay_cmd,  # replay
    pull_cmd,  # token, pull, purge
    log_cmd,  # verify-log
    backup_cmd,  # backup, restore
    calibrate_cmd,  # calibrate
    fleet_cmd,  # collect
    guard_cmd,  # guard (accounts for the guard console)
    community_cmd,  # report, lists/vehicles/compound import
    person_cmd,  # person show/forget (a resident's request)
    bench_cmd,  # bench
    scanner_cmd,  # scanner setup (GM65 serial set-up)
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kiosk",
        description="Edge checkpoint kiosk: temperature and signed pass, decided at the gate.",
    )
    from kiosk import __version__

    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in VERB_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _escape_what_stdout_cannot_show()
    parser = build_parser()
    args = parser.parse_args(argv)
    # The program's own process (the ``kiosk`` command, ``python -m checkpoint``): ``kiosk
    # run`` and ``kiosk demo`` may end it once stopped (``ExitAfterStop``); a caller of
    # ``main(argv)`` in a process of its own (a test, a script) is never ended by them.
    args.owns_process = argv is None
    if args.owns_process:  # before the first connection: a process-wide setting
        keep_sqlite_temp_in_data_dir(args)
    try:
        code = _run(args)
    except CliError as exc:
        _say(args.verb, str(exc))
        return exc.exit_code
    except SecretError as exc:  # a credential any verb may read (kiosk-admin passes them)
        _say(args.verb, str(exc))
        return 1
    except BrokenPipeError as exc:
        if not _stdout_gone():
            _say(args.verb, str(exc.strerror or exc))
            return 1
        return 141  # `kiosk ... | head`: nobody reads on; said by the status only, as cat does
    except PermissionError as exc:  # the kiosk's files, by someone who is not its user
        _say(args.verb, _denied(exc, args.verb))
        return 1
    except OSError as exc:  # the file system's answer: a full or read-only card, an I/O error
        where = f"{exc.filename}: " if exc.filename else ""
        _say(args.verb, f"{where}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except UnicodeEncodeError as exc:
        if "surrogates" not in exc.reason:
            raise
        # Bytes of argv, stdin or a file name that are not UTF-8 reach Python as lone
        # surrogates, and fail where they are first encoded: bad input, not a crash.
        _say(
            args.verb,
            "an argument or input is not UTF-8 text (typed or saved in another encoding?)",
        )
        return 2
    except Exception as exc:
        if not _is_store_fault(exc):
            raise
        if _is_store_fault(exc, "NewerSchema"):
            # Installed back over a later version's log: the card is fine, the version is not.
            _say(args.verb, f"{getattr(exc, 'detail', exc)} (docs/install.md, Going back)")
            return 1
        # A write the kiosk's database refused (a full or read-only card): the operator's
        # next step is the card, not a traceback.
        _say(
            args.verb,
            f"the kiosk's database could not be written ({getattr(exc, 'detail', '') or exc}):"
            " check the card (`df -h`, `dmesg`), and run it as the kiosk's user"
            " (`sudo kiosk-admin`)",
        )
        return 1
    return int(code or 0)


def _run(args: argparse.Namespace) -> int | None:
    """The verb, a write the card refused said in the card's words (``_card_said``)."""
    try:
        return args.func(args)  # type: ignore[no-any-return]
    except Exception as exc:
        said = None if isinstance(exc, Interrupted) else _card_said(exc, args)
        said = said or _owner_said(exc, args)
        if said is None:
            raise
        raise CliError(said) from exc


#: What the operator does about each kind of card fault (``kiosk.cardfault``).
_CARD_FIX = {
    "full": "free space (`df -h`, `sudo journalctl --vacuum-size=50M`; delete nothing in the"
    " kiosk's data dir) and run it again",
    "read_only": "the system turned it read-only after an error: docs/operations.md, The SD"
    " card is failing",
    "io": "check `dmesg`: docs/operations.md, The SD card is failing",
}
#: What the operator does about SQLite's temp folder full (``kiosk.cardfault.temp_fault``).
_TEMP_FIX = (
    "free space there, or unset SQLITE_TMPDIR (the kiosk then keeps SQLite's temp"
    " files in its data dir: docs/operations.md), and run it again"
)
#: The same of another disk than the Pi's own: ``{another}`` where the verb wrote to one it
#: was given (``_GIVEN``: a USB stick a backup was written to), never of its own data dir.
_DISK_FIX = {
    "full": "free space on it (`df -h`){another}, and run it again",
    "read_only": "it was mounted read-only, or turned so after an error: check `dmesg`",
    "io": "check `dmesg`{another}",
}
#: The options naming what a verb writes, in the order one is taken as where it wrote.
_WRITTEN = ("into", "out", "dir", "db", "data")
#: Of those, the ones naming a place to write to, not the kiosk's own files.
_GIVEN = ("into", "out", "dir")


def _card_said(exc: BaseException, args: argparse.Namespace) -> str | None:
    """A write the card refused, full, read-only or failing, anywhere in what ``exc`` was
    raised from (``SQLITE_FULL``, ``SQLITE_IOERR_SHMSIZE``, ``No space left on device``), in
    the words a Pi owner acts on: ``the card is full (0.4 MB free at /var/lib/kiosk): free
    space ..., nothing was changed``, or what the verb had done for good (a ``CliError``'s
    ``partial``: a batched purge, a restore cut off). None when it is not the card's."""
    from kiosk.cardfault import card_fault

    named = ((o, getattr(args, o, None)) for o in _WRITTEN)
    option, where = next(
        ((o, Path(v)) for o, v in named if isinstance(v, (str, Path)) and v), (None, None)
    )
    fault = card_fault(exc, where)
    if fault is None:
        return None
    another = " or give another" if option in _GIVEN else ""
    fix = _CARD_FIX[fault.kind]
    if fault.temp:
        fix = _TEMP_FIX
    elif fault.medium != "the card":
        fix = _DISK_FIX[fault.kind].format(another=another)
    return f"{fault.said()}: {fix}; {getattr(exc, 'partial', None) or 'nothing was changed'}"


def _owner_said(exc: BaseException, args: argparse.Namespace) -> str | None:
    """SQLite's READONLY of a log whose file another user owns, on a card that is fine (a
    verb run as pi, not the kiosk's user; a file a restore or plain ``sudo`` left root's):
    whose the file is, and as whom to run the verb (``_run_as``), or, in a data dir a user
    owns (not root's, not shared as /tmp), to give the file back first; a file this user owns
    but may not write, that it is read-only. None otherwise."""
    from kiosk.cardfault import other_owner

    db = getattr(args, "db", None)
    found = other_owner(exc, Path(db) if isinstance(db, (str, Path)) and db else None)
    if found is None:
        return None
    me, done = os.geteuid(), getattr(exc, "partial", None) or "nothing was changed"
    if found.uid == me:
        return f"{_read_only_said(found.path, found.mode, me)}, then run it again; {done}"
    whose = f"{found.path} is {_owners(found.uid)}"
    given_back = found.folder_uid not in (0, found.uid) and not found.folder_shared
    if not given_back:
        return (
            f"{whose} and this command runs as {_user_said(me)}, which may not write it"
            f" (SQLITE_READONLY): run it as {_user_named(found.uid)}:"
            f" {_run_as(found.uid, args.verb)}; {done}"
        )
    home, group = _user_named(found.folder_uid), _group_name(found.folder_gid)
    then = (
        "run it again"
        if me == found.folder_uid
        else f"run it as {home}: {_run_as(found.folder_uid, args.verb)}"
    )
    return (
        f"{whose}, not {home}'s, who owns {found.folder} (SQLITE_READONLY: left so by a verb"
        f" or a restore run as {_user_named(found.uid)}): give it back (`sudo chown -R"
        f" {shlex.quote(home)}:{shlex.quote(group)} {shlex.quote(str(found.folder))}`),"
        f" then {then}; {done}"
    )


def _read_only_said(path: Path, mode: int, me: int) -> str:
    """A file this user owns and may not write: its mode has no write bit for it, or it is
    marked immutable (or append-only), which no mode overrides."""
    quoted = shlex.quote(str(path))
    if me == 0:  # no mode holds root back: what did
        why = _what_held_root(path, quoted)
    elif not mode & stat.S_IWUSR:
        why = f"its mode ({stat.S_IMODE(mode):04o}) has no write bit: `chmod u+w {quoted}`"
    else:
        why = (
            f"it is marked immutable or append-only (`lsattr {quoted}`):"
            f" `sudo chattr -i -a {quoted}`"
        )
    return f"{path} is this command's user's, {_user_said(me)}, but read-only: {why}"


def _what_held_root(path: Path, quoted: str) -> str:
    """Why root may not write ``path``, its mode being none of it: a read-only mount of the
    file (a bind mount; its folder's is the card's, said before), an immutable or
    append-only mark (``_marks``), or neither seen."""
    try:
        mounted_ro = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        mounted_ro = False
    if mounted_ro:
        return f"it is on a read-only mount (`findmnt -T {quoted}`): mount it read-write"
    if marks := _marks(path):
        return (
            f"it is marked {' and '.join(sorted(marks))} (`lsattr {quoted}`):"
            f" `sudo chattr -i -a {quoted}`"
        )
    return (
        "no mode holds root back, and it is on no read-only mount nor marked immutable:"
        f" check `findmnt -T {quoted}` and `lsattr {quoted}` (a network share mapping root to"
        " nobody, a security module's policy)"
    )


#: ``FS_IOC_GETFLAGS`` and the flags of ``chattr +i`` and ``+a`` (linux/fs.h).
_GETFLAGS, _IMMUTABLE, _APPEND = 0x80086601, 0x10, 0x20


def _marks(path: Path) -> set[str]:
    """The marks on ``path`` that keep even root from writing it (``lsattr``'s ``i`` and
    ``a``); none when the file system keeps no such flags or they cannot be read."""
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return set()
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, _GETFLAGS, bytes(8)))[0]
    except OSError:
        return set()
    finally:
        os.close(fd)
    return {w for bit, w in ((_IMMUTABLE, "immutable"), (_APPEND, "append-only")) if flags & bit}


#: The kiosk command as the install names it (not on sudo's path: kiosk-admin is, and runs
#: it as the service's user, kiosk).
INSTALLED_KIOSK = "/opt/kiosk/current/venv/bin/kiosk"


def _run_as(uid: int, verb: str) -> str:
    """The command that runs ``verb`` as user ``uid``, as a shell takes it: ``sudo kiosk-admin``
    for kiosk, else the kiosk program by its full path (``sudo`` does not find it by name),
    the user quoted (a uid with no name is ``'#4242'``: a bare ``#`` starts a comment)."""
    program = sys.argv[0] if Path(sys.argv[0]).name == "kiosk" else INSTALLED_KIOSK
    program = shlex.quote(os.path.abspath(program))
    if _user_name(uid) == "kiosk":  # the installed service's user: kiosk-admin runs verbs as it
        return f"`sudo kiosk-admin {verb} ...`"
    if uid == 0:
        return f"`sudo {program} {verb} ...`"
    return f"`sudo -u {shlex.quote(_user_name(uid))} {program} {verb} ...`"


def _user_name(uid: int) -> str:
    """User ``uid``'s name, or ``#uid`` (as ``sudo -u`` takes a user with none)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _user_named(uid: int) -> str:
    """User ``uid`` in words: its name, or ``uid N`` for one with none."""
    name = _user_name(uid)
    return f"uid {uid}" if name.startswith("#") else name


def _owners(uid: int) -> str:
    """Whose a file is: ``NAME's (uid N)``, or ``uid N's`` for a user with no name."""
    name = _user_name(uid)
    return f"uid {uid}'s" if name.startswith("#") else f"{name}'s (uid {uid})"


def _user_said(uid: int) -> str:
    name = _user_name(uid)
    return f"uid {uid}" if name.startswith("#") else f"{name} (uid {uid})"


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _say(verb: str, message: str) -> None:
    """A verb's error: one line on stderr, ``kiosk VERB: message``, bounded."""
    print(bounded(f"kiosk {verb}: {message}"), file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors (``invalid choice: '...'``, every verb's: its
    subparsers are of this class) quote no more than ``bounded`` lets through."""

    def error(self, message: str) -> NoReturn:
        super().error(bounded(message))


def _denied(exc: PermissionError, verb: str) -> str:
    """What a refused file means: the kiosk's own files are its user's, so run the verb as
    ``sudo kiosk-admin``; under kiosk-admin (user kiosk), the operator's file is not kiosk's."""
    what = f"permission denied: {exc.filename or exc.strerror}; "
    if os.environ.get(ADMIN_CWD):
        return what + (
            "kiosk-admin runs the verb as user kiosk, which may not use that file or folder:"
            " give one it may read or write (e.g. under /tmp)"
        )
    return what + f"the kiosk's files are its user's: run it as `sudo kiosk-admin {verb} ...`"


def _escape_what_stdout_cannot_show() -> None:
    """On a terminal of another encoding than UTF-8 (a Pi set to an ISO-8859-1 locale), a
    character it cannot show (a resident's Chinese name) is printed escaped, as stderr's are
    (``\\u738b``, which JSON reads back), instead of ending the verb in a traceback."""
    stdout = sys.stdout
    encoding = (getattr(stdout, "encoding", None) or "utf-8").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8") and isinstance(stdout, io.TextIOWrapper):
        with contextlib.suppress(ValueError):  # a closed stdout: nothing is printed anyway
            stdout.reconfigure(errors="backslashreplace")


def _stdout_gone() -> bool:
    """Whether stdout's reader went away (a broken pipe there, not one of a socket or a
    file). If so stdout is pointed at /dev/null: what is still buffered for it must not
    fail again when the interpreter flushes it at exit."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # closed, or not a file (a test's)
        fd = -1
    try:
        sys.stdout.flush()
        if fd < 0:
            return False
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR: the write end of a pipe nobody reads
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except BrokenPipeError:
        gone = True
    except (OSError, ValueError):
        return False
    if gone and fd >= 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return gone


def _is_store_fault(exc: BaseException, kind: str = "StoreFault") -> bool:
    """``kiosk.store.StoreFault`` (or its subclass ``kind``), without importing the store for
    verbs that never open it."""
    store = sys.modules.get("kiosk.store")
    return store is not None and isinstance(exc, getattr(store, kind))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
