"""Errors a verb raises to end with one line on stderr and an exit code of docs/cli.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

from kiosk.files import nearest_folder, write_atomic
from kiosk.typed import visible

#: The longest word (a path, a value) an error message quotes whole, and the longest message.
MAX_QUOTED = 200
MAX_MESSAGE = 2000
_LONG_WORD = re.compile(rf"\S{{{MAX_QUOTED + 1},}}")


def bounded(message: str) -> str:
    """``message`` as the CLI prints it: an argument it quotes whole (a 100 KB ``--host``, a
    pasted file instead of a name) is cut to its start and its length, and the line to
    ``MAX_MESSAGE`` characters keeping its end (what to do): a 100 KB argument made a
    100-300 KB line on stderr, into the journal and the operator's terminal. A character
    nobody sees (a terminal escape, a right-to-left override, a C1 control: a sheet's cell
    or a file name quoted) is printed escaped, ``\\x1b``: raw, it would retitle, recolour or
    hide the operator's terminal."""
    message = visible(message, keep="\n\t")  # a line break and a tab are a message's own
    message = _LONG_WORD.sub(_cut, message)
    if len(message) > MAX_MESSAGE:
        message = f"{message[: MAX_MESSAGE - 500]}...{message[-400:]}"
    return message


def _cut(word: re.Match[str]) -> str:
    """A long word's start, its length, and its closing quote or colon."""
    text = word.group()
    end = re.search(r"\W{0,3}$", text)
    return f"{text[:60]}...[{len(text)} characters]{end.group() if end else ''}"


class CliError(Exception):
    """A verb's error, exit 1. ``partial``: what the verb had done for good (committed)
    before it failed, said instead of "nothing was changed" of a card fault (a batched
    purge's batches, a restore cut off part way); None: nothing was."""

    exit_code = 1

    def __init__(self, *args: object, partial: str | None = None) -> None:
        super().__init__(*args)
        self.partial = partial


class UsageError(CliError):
    """Bad input: usage, config, payload. Exit 2."""

    exit_code = 2


class Interrupted(CliError):
    """Ctrl-C, said with what was undone. Exit 130."""

    exit_code = 130


def clock_advice(reason: str) -> str:
    """What the operator does about a purge the clock could not date (``kiosk.retention.
    ClockNotTrusted``'s ``reason``): the gate's log and the office's copy say the same."""
    if reason == "unsynchronised":
        return "check `date -u` and run again with --trust-clock to purge now"
    return "set the clock right"


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path``; a failure is a ``CliError`` naming the file. The file is
    made 0600 whatever the umask, also over an existing file of a looser mode: what the CLI
    writes (pass cards, the batch manifest) holds names, households and payloads that open
    the gate. The file is replaced whole (``write_atomic``): a full card or a power cut leaves
    what was there, never a cut-off card under its name."""
    try:
        write_atomic(path, data, keep_mode=False)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


#: Set to 1 by a root caller that chowns what the verb writes to the service's user after it.
CHOWNS_AFTER = "KIOSK_CHOWNS_AFTER"


def refuse_root_over(folder: Path, verb: str) -> None:
    """Refuse a verb run as root (plain ``sudo kiosk VERB``) that would write into ``folder``
    when another user (the service's, ``kiosk``) owns it: what it made there (``kiosk.lock``,
    ``kiosk.db`` and its ``-wal``/``-shm``, a backup) was left root's, and the service could
    not open it afterwards. Said before anything is written, with the way that leaves the
    files the service's: ``sudo kiosk-admin VERB``. Root in a folder of its own (a bench, a
    container) is not refused, nor a caller that gives what it made to the service's user
    itself and says so (``KIOSK_CHOWNS_AFTER=1``: ``scripts/install`` making the issuing key)."""
    if os.geteuid() != 0 or os.environ.get(CHOWNS_AFTER) == "1":
        return
    owner = _owner(folder)
    if owner is None or owner == 0:
        return
    raise CliError(
        f"run as root on {folder} (owner uid {owner}): the files it would write there would be"
        " left root's, and the kiosk's service could not open them. Run it as the kiosk's user:"
        f" `sudo kiosk-admin {verb} ...`"
    )


def made_in(folder: Path) -> Path:
    """The folder a verb that makes ``folder`` (with its parents) writes into first: itself,
    or the nearest folder above it that is there. So ``refuse_root_over`` judges
    /var/lib/kiosk for ``keys new --dir /var/lib/kiosk/keys2``, which would be made root's."""
    return nearest_folder(folder) or folder


def _owner(folder: Path) -> int | None:
    """The uid owning ``folder``; None when it is not there (yet)."""
    try:
        return folder.stat().st_uid
    except OSError:
        return None
