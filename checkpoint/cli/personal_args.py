"""Personal data a verb takes as an option (a holder's name, a household, a phone number),
given without the command line: the shell's history, ``ps`` (every user of the Pi) and
sudo's journal (``COMMAND=``, under ``sudo kiosk-admin``) keep an argument beyond retention
and any ``kiosk person forget``. The option given as ``-`` reads its value from stdin, a
line; at a terminal it is asked for by name, and so is one the verb asks for when left out.
One rule for every verb that takes such options (``pass issue``, ``person``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import UsageError
from .parsers import stdin

#: An option given as this reads its value from stdin.
FROM_STDIN = "-"
#: A value read from stdin is one line of at most this many characters.
MAX_LINE = 4096


def from_stdin(
    args: argparse.Namespace, options: Sequence[str], *, ask: Sequence[str] = ()
) -> None:
    """Each of ``options`` (``dest``s, read in this order) given as ``-`` replaced by a line
    of stdin (each ``-`` of a repeatable one), asked for by name when stdin is a terminal;
    each of ``ask`` left out (None) asked for the same way at a terminal, else refused as
    missing. ``UsageError`` (exit 2) for a line that is empty, missing or too long: never
    quoted back, nothing done."""
    for dest in options:
        value = getattr(args, dest)
        flag = "--" + dest.replace("_", "-")
        if isinstance(value, list):
            setattr(args, dest, [_line(flag) if v == FROM_STDIN else v for v in value])
        elif value == FROM_STDIN or (value is None and dest in ask and stdin().isatty()):
            setattr(args, dest, _line(flag))
        elif value is None and dest in ask:
            raise UsageError(
                f"{flag} is required: give it, or {flag} - to read it from stdin (a line),"
                " which no shell history or journal keeps"
            )


def given_as_text(args: argparse.Namespace, options: Sequence[str]) -> bool:
    """Whether any of ``options`` is given on the command line itself (not as ``-``)."""
    values = [getattr(args, dest) for dest in options]
    listed = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return any(v is not None and v != FROM_STDIN for v in listed)


def read_from_stdin(args: argparse.Namespace, options: Sequence[str]) -> bool:
    """Whether any of ``options`` is given as ``-``: stdin is theirs."""
    values = [getattr(args, dest) for dest in options]
    return any(v == FROM_STDIN or (isinstance(v, list) and FROM_STDIN in v) for v in values)


def _line(flag: str) -> str:
    """One line of stdin, its line break taken off; asked for by the option's name at a
    terminal."""
    source = stdin()
    if source.isatty():
        print(f"{flag.removeprefix('--')}: ", end="", file=sys.stderr, flush=True)
    line = source.readline(MAX_LINE + 2)
    value = line.rstrip("\r\n")
    if len(value) > MAX_LINE:
        raise UsageError(f"{flag} -: a line longer than {MAX_LINE} characters on stdin")
    if not value.strip():
        raise UsageError(f"{flag} -: no value on stdin (type it, then Enter)")
    return value
