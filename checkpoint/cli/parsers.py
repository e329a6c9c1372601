"""How a verb is declared: its parser, the function behind it, and its help.

A verb is run by a function, and a verb made of actions (``kiosk pass issue``) is declared by
one; that function's docstring is the verb's help, as in click. Its first paragraph is the
one line ``kiosk --help`` lists the verb with; the rest, if any, is the description that
``kiosk VERB --help`` prints. So what a verb does is written once, beside the code that does
it. Line breaks and indentation are folded, as argparse prints any help text. A last
paragraph that begins ``Examples:`` is printed after the options as it is written, one command
a line (``kiosk run --help``: how the Pi's owner types it).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeAlias

#: What ``register()`` receives: the verbs (or a group's actions) of a parser. (Generic only
#: to the type checker: argparse's class cannot be subscripted at run time.)
Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_verb(
    verbs: Verbs,
    name: str,
    run: Callable[[argparse.Namespace], Any],
    *,
    examples: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """The parser of verb ``name``, which ``run`` carries out; helped by ``run``'s docstring.

    ``examples`` (command lines) stand for the docstring's when ``run`` carries out several
    verbs (``kiosk lists import``, ``kiosk vehicles import``): each verb shows its own."""
    help, description, examples_of_run = _help_of(run)
    examples_text = "\n".join(["examples:", *(f"  {line}" for line in examples)])
    examples_shown = examples_text if examples else examples_of_run
    parser: argparse.ArgumentParser = verbs.add_parser(
        name,
        help=help,
        description=description,
        epilog=examples_shown,
        formatter_class=_KeepExamples,
    )
    parser.set_defaults(func=run)
    return parser


def add_group(
    verbs: Verbs,
    name: str,
    declare: Callable[[Verbs], None],
    *,
    dest: str = "action",
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    """Verb ``name``, made of the actions ``declare`` adds; helped by ``declare``'s docstring.

    One action is required, named ``ACTION`` in the usage line and stored in ``args.<dest>``.
    Options of the group itself (``kiosk calibrate --data DIR add``) come from ``parents``."""
    help, description, examples = _help_of(declare)
    group = verbs.add_parser(
        name,
        help=help,
        description=description,
        parents=list(parents),
        epilog=examples,
        formatter_class=_KeepExamples,
    )
    declare(group.add_subparsers(dest=dest, metavar="ACTION", required=True))


#: How the paragraph of examples begins in a verb's docstring and its help.
EXAMPLES = "Examples:"


def _help_of(function: Callable[..., Any]) -> tuple[str, str | None, str | None]:
    """The one line, the description and the examples (as written) of a verb's docstring."""
    doc = inspect.getdoc(function)
    if not doc:
        raise TypeError(f"{function.__qualname__} needs a docstring: it is the verb's help")
    summary, _, rest = doc.partition("\n\n")
    if rest.startswith(EXAMPLES):
        rest, examples = "", rest
    else:
        rest, _, tail = rest.partition(f"\n\n{EXAMPLES}")
        examples = f"{EXAMPLES}{tail}" if tail else ""
    examples = "examples:" + examples[len(EXAMPLES) :] if examples else ""
    return " ".join(summary.split()), " ".join(rest.split()) or None, examples or None


class _KeepExamples(argparse.HelpFormatter):
    """argparse's help, but the examples keep their lines (one command each)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


#: Set by ``kiosk-admin`` (scripts/install) to the folder it was run in: the verb itself runs
#: in the daemon's /var/lib/kiosk, as user kiosk.
ADMIN_CWD = "KIOSK_ADMIN_CWD"
#: Linux's longest path.
PATH_MAX = 4096


def path_arg(text: str) -> str:
    """The ``type`` of every argument that names a file or folder. An empty one (``--db
    "$UNSET"``) is bad input (exit 2), never taken as absent: ``--db ''`` fell back to the
    default database and ``keys new --dir ''`` wrote the key pair into the current folder.

    Under ``sudo kiosk-admin`` a relative path means the operator's folder (``$KIOSK_ADMIN_CWD``),
    not /var/lib/kiosk where the verb runs: ``sudo kiosk-admin lists import ./x.csv`` read
    /var/lib/kiosk/x.csv and ``report --xlsx r.xlsx`` wrote the report there. A URL
    (``--into postgresql://...``) is left as it is."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (a shell variable that is not set?)")
    if len(text) > PATH_MAX:  # not quoted back: a pasted file instead of its name
        raise argparse.ArgumentTypeError(
            f"a path of {len(text)} characters: longer than any file's ({PATH_MAX})"
        )
    admin_cwd = os.environ.get(ADMIN_CWD, "")
    if admin_cwd.startswith("/") and not text.startswith("/") and "://" not in text:
        return os.path.join(admin_cwd, text)
    return text


def stdin_or_path(text: str) -> str:
    """The ``type`` of an argument naming a file or ``-`` (stdin): ``-`` as it is, a file as
    ``path_arg`` takes it. Under ``sudo kiosk-admin`` ``path_arg`` makes a relative ``-`` the
    operator's folder's file named "-"."""
    return text if text == "-" else path_arg(text)


def stdin() -> TextIO:
    """The verb's stdin: ``sys.stdin``, or when the process was started without one (fd 0
    closed: cron, nohup, ``<&-``; Python's ``sys.stdin`` is then None) an empty one that is
    no terminal: a verb reading a value there says it got none (exit 2), never a traceback."""
    if sys.stdin is None:
        return _no_stdin()
    return sys.stdin


@functools.cache
def _no_stdin() -> TextIO:
    """One empty stdin for the process, kept: a wrapper made per call and dropped while its
    ``.buffer`` is read (``stdin().buffer.read()``) closes that buffer under the read."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8")


def path_of(text: str) -> Path:
    """``path_arg`` for the verbs that take a ``Path``."""
    return Path(path_arg(text))
