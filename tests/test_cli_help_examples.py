"""Every verb and action of ``kiosk`` shows, after its options, an ``Examples:`` paragraph a Pi's
owner or the office's clerk can type, and every one of those lines is a command the parser takes,
so an example can never rot (a renamed flag fails here, not at a volunteer's shell)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from checkpoint.cli import build_parser
from checkpoint.cli.parsers import _help_of

PARSER = build_parser()


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)] if path else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(PARSER)
IDS = [" ".join(path) for path, _ in COMMANDS]
PREFIXES = ("sudo kiosk-admin ", "kiosk ")


def _example_lines(parser: argparse.ArgumentParser) -> list[str]:
    """The commands of a parser's examples: its lines but the heading, without comments."""
    lines = (parser.epilog or "").splitlines()[1:]
    return [line.partition("#")[0].strip() for line in lines if line.partition("#")[0].strip()]


def _argv(line: str) -> list[str] | None:
    """The arguments a ``kiosk`` example line passes to the parser (None: another program's)."""
    for prefix in PREFIXES:
        if line.startswith(prefix):
            return shlex.split(line)[len(prefix.split()) :]
    return None


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_verb_and_action_has_examples_of_itself(path, parser):
    commands = [argv for argv in map(_argv, _example_lines(parser)) if argv is not None]
    assert 1 <= len(commands) <= 3, f"`kiosk {' '.join(path)} --help`: {len(commands)} examples"
    # An action's examples show that action, a verb's that verb (with any of its actions).
    assert all(argv[: len(path)] == list(path) for argv in commands), commands


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_example_line_parses(path, parser):
    for line in _example_lines(parser):
        argv = _argv(line)
        if argv is None:  # systemctl and the like, beside the verb
            continue
        try:
            PARSER.parse_args(argv)
        except SystemExit:
            pytest.fail(f"`kiosk {' '.join(path)} --help` shows {line!r}, which does not parse")


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_example_that_touches_the_data_dir_is_run_as_its_user(path, parser):
    """A verb that opens the kiosk's database (``--db``/``--data``), shown with plain ``kiosk``,
    would be typed by root or pi and refused; the examples show ``sudo kiosk-admin``."""
    options = {o for a in parser._actions for o in a.option_strings}
    # replay's --db and demo's --data are folders of their own, not the kiosk's
    store = {"--db", "--data"} <= options or path[0] == "calibrate"
    for line in _example_lines(parser):
        if store and line.startswith("kiosk ") and not {"--db", "--data"} & set(line.split()):
            pytest.fail(f"`kiosk {' '.join(path)}`: {line!r} (run as `sudo kiosk-admin`)")
        # The daemon's config (root:kiosk 0640) and data dir (kiosk, 0750): not the user pi's.
        if line.startswith("kiosk ") and (
            "/etc/kiosk/kiosk.toml" in line or "/var/lib/kiosk" in line
        ):
            pytest.fail(f"`kiosk {' '.join(path)}`: {line!r} reads the kiosk's own files")


def test_the_example_reader_sees_commands_comments_and_other_programs():
    parser = argparse.ArgumentParser(
        epilog="examples:\n  kiosk demo   # a comment\n  # only a comment\n"
        "  sudo systemctl stop kiosk",
    )
    lines = _example_lines(parser)
    assert lines == ["kiosk demo", "sudo systemctl stop kiosk"]
    assert [_argv(line) for line in lines] == [["demo"], None]
    assert _argv("sudo kiosk-admin guard list") == ["guard", "list"]


def test_a_docstring_without_examples_gives_none():
    def verb(args: argparse.Namespace) -> None:
        """do a thing

        More of it."""

    assert _help_of(verb)[2] is None


# -- the documents' command lines: the same check ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
VERBS = {path[0] for path, _ in COMMANDS}
_COMMAND = re.compile(r"^(?:\$ )?(?:sudo )?(?:[A-Z_]+=\S+ )*(?:kiosk-admin|kiosk) (?P<args>.*)$")


def _document_commands(text: str) -> list[list[str]]:
    """The ``kiosk``/``kiosk-admin`` command lines of a document's fenced blocks (not a usage
    block, ``[-h]``), as the parser would take them: ``\\``-continued lines joined, comments
    cut, and an optional ``[...]`` both left out and put in (``a | b`` inside: left out)."""
    found = []
    for block in re.findall(r"^[ \t]*```[\w-]*\n(.*?)^[ \t]*```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            match = _COMMAND.match(line.strip())
            if match is None or "[-h]" in line:
                continue
            args = match["args"].partition(" #")[0].strip()
            if not args or args.split()[0] not in VERBS and not args.startswith("--"):
                continue  # prose in a block (a diagram's "kiosk  devices ...")
            if re.search(r"[|<>]|\$\(|\.\.\.(?!\S)", re.sub(r"\[[^\]]*\]", "", args)):
                continue  # a pipe, a redirection or an elision: shell, not the parser's
            bare = re.sub(r"\s*\[[^\]]*\]", "", args)
            found.append(shlex.split(bare))
            full = re.sub(r"\[([^\]|]*)\]", r"\1", args)
            if "[" not in full and full != bare:
                found.append(shlex.split(full))
    return found


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_line_a_document_shows_parses(doc):
    """docs/cli.md names every verb, action and flag (tests/test_docs.py); the command lines
    the documents show an operator are checked as the help's examples are: each parses."""
    for argv in _document_commands(doc.read_text(encoding="utf-8")):
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                PARSER.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc.name} shows `kiosk {shlex.join(argv)}`, which does not parse")


def test_the_document_reader_takes_commands_and_leaves_shell_and_prose():
    text = (
        "```\nkiosk pull [-h] --into TARGET\n"  # a usage block
        "sudo kiosk-admin report --day 2026-03-02 [--xlsx r.xlsx]   # a comment\n"
        "kiosk pass issue --key k.key \\\n    --household 1 --holder A\n"
        "kiosk scan a.png | jq .\nkiosk        devices · engine\n```\n"
        "kiosk bench --json\n"  # outside a block
    )
    assert _document_commands(text) == [
        ["report", "--day", "2026-03-02"],
        ["report", "--day", "2026-03-02", "--xlsx", "r.xlsx"],
        ["pass", "issue", "--key", "k.key", "--household", "1", "--holder", "A"],
    ]
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        PARSER.parse_args(["report", "--days", "2026-03-02"])  # what a stale line would be
