"""``kiosk person show`` and ``kiosk person forget``: a resident's right to see and to be
forgotten (``kiosk.people``; docs/privacy.md, "A resident's request").

Both work on the kiosk's own database (``--db`` / ``--config`` / ``--data``, as ``kiosk
purge``), through ``EventLog`` like the daemon, so they are safe beside it. ``show`` prints every
row that holds the person's data (JSON, or ``--text``) and audits that it was done (the kinds of
key and the counts). ``forget`` without ``--yes`` prints what would go and changes nothing;
with it, removes it and prints the counts. Neither logs a value of a key.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .errors import CliError, UsageError
from .parsers import Verbs, add_group, add_verb, stdin, stdin_or_path
from .personal_args import FROM_STDIN, from_stdin, given_as_text, read_from_stdin
from .store_args import add_store_args, load_args_config, open_store, site_config

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from kiosk.people import Found, Person


def register(sub: Verbs) -> None:
    add_group(sub, "person", _actions, dest="person_verb")


def _actions(actions: Verbs) -> None:
    """a resident's request: show everything held about them, or forget it

    Find every row of the gate's stores that holds one person's data, named by the keys the
    office has: show it to hand the resident, or forget it ahead of retention.

    The keys are given in --keys-file (- for stdin: typed at the prompt, or < a file): keys on
    the command line stay in sudo's journal and the shell's history, which no forget reaches.

    Examples:
      sudo kiosk-admin person show --keys-file - --text   # type name=Li Wei, household=3-201
      sudo kiosk-admin person forget --keys-file -   # the same keys: shows what would go
      sudo kiosk-admin person forget --keys-file - --yes   # and forgets it"""
    show = add_verb(actions, "show", show_run)
    _key_args(show)
    show.add_argument("--text", action="store_true", help="a readable text form, not JSON")
    _common(show)
    forget = add_verb(actions, "forget", forget_run)
    _key_args(forget)
    forget.add_argument("--yes", action="store_true", help="forget it (without: only say what)")
    forget.add_argument(
        "--force",
        action="store_true",
        help="forget also what is still in force: a quarantine entry, an observed returnee, an"
        " open service request (the guard's safety: refused without it)",
    )
    _common(forget)


#: A keys file (``--keys-file``) is read no further than this: one person's few keys.
MAX_KEYS_FILE = 16 * 1024
#: The keys a keys file names, as its option's ``dest``, and whether it may be repeated.
FILE_KEYS = {
    "pass_id": True,
    "household": False,
    "name": False,
    "phone": True,
    "plate": True,
    "returnee": True,
}
#: The options whose value names the person: given on the command line, it is in the journal.
ARGV_KEYS = ("pass_id", "household", "name", "phone", "plate")
ARGV_WARNING = (
    "kiosk person: the keys given as arguments are in sudo's journal (COMMAND=) and the"
    " shell's history, which neither retention nor a forget reaches: give them in"
    " --keys-file (- for stdin) instead (docs/privacy.md, A resident's request)"
)


def _key_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keys-file",
        metavar="FILE",
        type=stdin_or_path,
        help="the keys from FILE, or - for stdin: key=value lines (name, household, phone,"
        " plate, pass_id, returnee; a repeatable key on a line each) or a JSON object of them;"
        f" at most {MAX_KEYS_FILE} bytes. Unlike the options below, never in the journal or"
        " the shell's history",
    )
    p.add_argument(
        "--pass-id", action="append", default=[], metavar="ID", help="a pass id (repeatable)"
    )
    p.add_argument(
        "--household",
        metavar="H",
        help="the household: alone, everyone of it; with other keys, narrows --name to it",
    )
    p.add_argument("--name", help="the person's name, as the pass or the guard wrote it")
    p.add_argument(
        "--phone", action="append", default=[], metavar="NUMBER", help="a phone number (repeatable)"
    )
    p.add_argument(
        "--plate", action="append", default=[], metavar="PLATE", help="a car's plate (repeatable)"
    )
    p.add_argument(
        "--returnee",
        action="append",
        default=[],
        type=int,
        metavar="N",
        help="a returnee record's number, as the console shows it (repeatable)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default="cli", help="who asks (for the audit; default: cli)")
    add_store_args(p)


def _sets() -> list[Migrations]:
    from kiosk import accounts, ledgers, lists, peers, stats, tokens

    sets = [lists.MIGRATIONS, tokens.MIGRATIONS, accounts.MIGRATIONS, stats.MIGRATIONS]
    return [*sets, *ledgers.MIGRATIONS, peers.MIGRATIONS]


def _person(args: argparse.Namespace) -> Person:
    """The person the keys name: the options' and ``--keys-file``'s together (a key that
    takes one value given in both is refused). Keys given as options are warned of."""
    from kiosk.people import Person, PersonError

    if given_as_text(args, ARGV_KEYS):
        print(ARGV_WARNING, file=sys.stderr)
    if args.keys_file == FROM_STDIN and read_from_stdin(args, ARGV_KEYS):
        raise UsageError("--keys-file - reads stdin: give every key there, none as -")
    from_stdin(args, ARGV_KEYS)
    keys: dict[str, list[str | int]] = {
        key: list(getattr(args, key)) if many else _one(getattr(args, key))
        for key, many in FILE_KEYS.items()
    }
    if args.keys_file is not None:
        for key, values in keys_of_file(_read_keys(args.keys_file)).items():
            if not FILE_KEYS[key] and keys[key]:
                raise UsageError(f"--keys-file: {key} is given on the command line too")
            keys[key].extend(values)
    try:
        return Person.of(
            pass_ids=[str(v) for v in keys["pass_id"]],
            household=_single(keys["household"]),
            name=_single(keys["name"]),
            phones=[str(v) for v in keys["phone"]],
            plates=[str(v) for v in keys["plate"]],
            returnees=[int(v) for v in keys["returnee"]],
        )
    except PersonError as exc:
        raise UsageError(str(exc)) from None


def _one(value: str | None) -> list[str | int]:
    return [] if value is None else [value]


def _single(values: list[str | int]) -> str | None:
    return str(values[0]) if values else None


def _read_keys(source: str) -> bytes:
    """The keys file's bytes (``-``: stdin, asked for at a terminal), bounded."""
    from kiosk.files import UnreadableFile, read_bounded

    if source != "-":
        try:
            return read_bounded(source, MAX_KEYS_FILE)
        except UnreadableFile as exc:
            raise UsageError(f"--keys-file {source}: {exc}") from None
    fed = stdin()
    if fed.isatty():
        print("the keys, one key=value a line (name, household, phone, plate, pass_id,"
              " returnee), then Ctrl-D:", file=sys.stderr)  # fmt: skip
    raw = fed.buffer.read(MAX_KEYS_FILE + 1)
    if len(raw) > MAX_KEYS_FILE:
        raise UsageError(f"--keys-file -: larger than {MAX_KEYS_FILE} bytes")
    return raw


def keys_of_file(raw: bytes) -> dict[str, list[str | int]]:
    """A keys file's keys: a JSON object (``{"name": "Li Wei", "phone": ["139..."]}``) or
    ``key=value`` lines (blank lines and ``#`` comments skipped, ``pass-id`` as ``pass_id``).
    ``UsageError`` naming the line or key that is wrong, never a value (the person's data)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError("--keys-file: not UTF-8 text") from None
    pairs = _json_pairs(text) if text.lstrip().startswith("{") else _line_pairs(text)
    keys: dict[str, list[str | int]] = {}
    for where, raw_key, value in pairs:
        key = raw_key.strip().lower().replace("-", "_")
        if key not in FILE_KEYS:
            raise UsageError(f"--keys-file: {where}: not a key; known: {', '.join(FILE_KEYS)}")
        if key == "returnee":
            value = _returnee(where, value)
        elif not isinstance(value, str) or not value.strip():
            raise UsageError(f"--keys-file: {where}: {key} needs text")
        if not FILE_KEYS[key] and key in keys:
            raise UsageError(f"--keys-file: {where}: {key} is given twice (one value)")
        keys.setdefault(key, []).append(value.strip() if isinstance(value, str) else value)
    if not keys:
        raise UsageError("--keys-file: no key in it")
    return keys


#: The most digits a returnee record's number is read with: a row id (``Person.of`` holds
#: it to SQLite's integers), never thousands (Python refuses to read those as a number).
MAX_RETURNEE_DIGITS = 19


def _returnee(where: str, value: object) -> int:
    digits = value.strip() if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= MAX_RETURNEE_DIGITS:
        return int(digits)
    if type(value) is int:
        return value
    raise UsageError(f"--keys-file: {where}: returnee needs a record's number")


def _line_pairs(text: str) -> list[tuple[str, str, object]]:
    pairs: list[tuple[str, str, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UsageError(f"--keys-file: line {number}: not key=value (or a JSON object)")
        pairs.append((f"line {number}", key, value))
    return pairs


class _GivenTwice(ValueError):
    def __init__(self, number: int, key: str) -> None:
        super().__init__(number)
        self.number, self.key = number, key


def _once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object's keys, refused when one is given twice (``json`` would keep the last
    unsaid): several values of a key are a list."""
    found: dict[str, object] = {}
    for number, (key, value) in enumerate(pairs, 1):
        if key in found:
            raise _GivenTwice(number, key.strip().lower().replace("-", "_"))
        found[key] = value
    return found


def _json_pairs(text: str) -> list[tuple[str, str, object]]:
    try:
        found = json.loads(text, object_pairs_hook=_once_each)
    except _GivenTwice as twice:  # a known key is named; anything else by its place only
        said = twice.key if twice.key in FILE_KEYS else "a key"
        raise UsageError(f"--keys-file: key {twice.number}: {said} is given twice") from None
    except ValueError as exc:  # its position only: the message quotes no text
        where = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "it"
        raise UsageError(f"--keys-file: not JSON at {where}") from None
    if not isinstance(found, dict):
        raise UsageError("--keys-file: JSON, but not an object of keys")
    pairs: list[tuple[str, str, object]] = []
    for number, (key, value) in enumerate(found.items(), 1):
        # Named by its place: a value typed where its key belongs is not said back.
        for one in value if isinstance(value, list) else [value]:
            pairs.append((f"key {number}", str(key), one))
    return pairs


def show_run(args: argparse.Namespace) -> int:
    """every row held about one person, for the office to hand them

    Print every row of every store of the gate's database that holds the person's data, as
    JSON (or --text), and write an audit row saying it was done (the kinds of key and the
    counts, not the data). A key no store holds anyone by: exit 2.

    Examples:
      sudo kiosk-admin person show --keys-file -   # type pass_id=3f9a1c2e0b4d, Ctrl-D
      sudo kiosk-admin person show --keys-file - --text   # name=Li Wei, household=3-201"""
    from kiosk.people import PersonError, show, text_of

    person = _person(args)
    store = open_store(args, load_args_config(args), _sets())
    try:
        config = site_config(args, load_args_config(args), store)
        today = store.clock.now().astimezone(ZoneInfo(config.site.timezone)).date()
        found = show(store, person, today, args.actor)
    except PersonError as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.Error as exc:  # a damaged page: a line, not a traceback
        raise CliError(f"show failed, nothing shown: the database: {exc}") from None
    finally:
        store.close()
    if args.text:
        print(text_of(found), end="")
    else:
        print(json.dumps(found.as_dict(), ensure_ascii=False, default=str))
    return 0


def forget_run(args: argparse.Namespace) -> int:
    """forget one person ahead of retention (dry run without --yes)

    Remove the person's data from every store the way retention does: events keep their time,
    decision, temperatures and hashes (verify-log still passes), the ledgers' and lists' rows
    are emptied or deleted, the person's passes revoked without a reason, the WAL wiped; one
    audit row with the counts. Without --yes it prints what would go and changes nothing.
    Something still in force (a quarantine, an observed returnee, an open request) is refused
    without --force: exit 1, nothing changed.

    Examples:
      sudo kiosk-admin person forget --keys-file -   # type name=Li Wei, household=3-201
      sudo kiosk-admin person forget --keys-file - --yes   # the same keys, then Ctrl-D"""
    from kiosk.people import PersonActive, PersonError, forget, would_forget
    from kiosk.store import StoreFault

    person = _person(args)
    config = load_args_config(args)
    store = open_store(args, config, _sets())
    try:
        config = site_config(args, config, store)
        now = store.clock.now()
        if not args.yes:
            today = now.astimezone(ZoneInfo(config.site.timezone)).date()
            found = would_forget(store.reader(), person, today)  # the console's preview too
            would = {"dry_run": True, "rows": found.counts(), "passes": len(found.passes)}
            # Of rows, another's entries naming them in a note: kept, the note emptied.
            would["mentioned"] = found.mentioned()
            would |= {"pass_only": found.pass_only, "unheld": list(found.unheld)}
            would["passes_may_remain"] = found.passes_may_remain
            print(json.dumps(would | {"active": dict(found.active)}))
            _warn_unheld(found)
            if found.passes_may_remain:
                _warn_passes_may_remain(len(found.passes), done=False)
            return 0
        done = forget(
            store,
            person,
            now,
            actor=args.actor,
            tz=config.site.timezone,
            quota_cfg=config.policy.quota,
            force=args.force,
        )
    except PersonError as exc:
        raise UsageError(str(exc)) from None
    except PersonActive as exc:
        raise CliError(f"nothing was forgotten: {exc} (--force)") from None
    except (StoreFault, sqlite3.Error) as exc:  # sqlite3: a damaged page read
        raise CliError(f"forget failed, nothing was forgotten: {exc}") from None
    finally:
        store.close()
    print(json.dumps(done.as_dict()))
    if done.passes_may_remain:
        _warn_passes_may_remain(done.passes_revoked, done=True)
    if done.pass_only:  # a pass id given alone that no row here holds
        print(
            f"kiosk person: no rows here; pass revoked ({done.passes_revoked} new revocation"
            f"{'' if done.passes_revoked == 1 else 's'}): a card with this pass id opens this"
            " gate no more (no row here holds it, so a mistyped one is not told: check it"
            " against the request)",
            file=sys.stderr,
        )
    if done.events_seqs:
        print(
            f"kiosk person: the office's copy still holds these events until its retention:"
            f" kiosk fleet forget --kiosk {store.kiosk_id} --seqs {done.events_seqs}",
            file=sys.stderr,
        )
    return 0


def _warn_passes_may_remain(n: int, *, done: bool) -> None:
    """On stderr, when no pass id was given: only the passes found in this gate's rows are
    voided (``n``: those the forget voids or voided); a card of theirs none holds still opens
    the gate, and the office must give its pass id."""
    if done:
        what = (
            f"{n} pass{'' if n == 1 else 'es'} found in this gate's rows voided or already voided"
        )
    else:
        what = (
            f"only the {n} pass{'' if n == 1 else 'es'} found in this gate's rows would be voided"
        )
    print(
        f"kiosk person: no pass id was given: {what}. A card of theirs that no row here holds"
        " (issued longer ago than retention keeps its record, or by the office, and not used"
        " here since) was not found and STILL OPENS THE GATE: get its pass id from the office's"
        " records and forget it too (--keys-file with pass_id=..., or --pass-id)",
        file=sys.stderr,
    )


def _warn_unheld(found: Found) -> None:
    """The dry run's warning on stderr for each pass id given that no row here holds: the
    forget only revokes it, and a mistyped one is not told."""
    unheld = found.passes if found.pass_only else found.unheld
    for pass_id in unheld:
        print(
            f"kiosk person: no row here holds pass id {pass_id}: the forget only revokes it"
            " (a card with this pass id opens this gate no more; a mistyped one is not told:"
            " check it against the request)",
            file=sys.stderr,
        )
