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
from .parsers import Verbs, add_group, add_verb
from .store_args import add_store_args, load_args_config, open_store, site_config

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from kiosk.people import Person


def register(sub: Verbs) -> None:
    add_group(sub, "person", _actions, dest="person_verb")


def _actions(actions: Verbs) -> None:
    """a resident's request: show everything held about them, or forget it

    Find every row of the gate's stores that holds one person's data, named by the keys the
    office has: show it to hand the resident, or forget it ahead of retention.

    Examples:
      sudo kiosk-admin person show --name 'Li Wei' --household 3-201 --text
      sudo kiosk-admin person forget --pass-id 3f9a1c2e0b4d   # shows what would go
      sudo kiosk-admin person forget --pass-id 3f9a1c2e0b4d --yes"""
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


def _key_args(p: argparse.ArgumentParser) -> None:
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
    from kiosk.people import Person, PersonError

    try:
        return Person.of(
            pass_ids=args.pass_id,
            household=args.household,
            name=args.name,
            phones=args.phone,
            plates=args.plate,
            returnees=args.returnee,
        )
    except PersonError as exc:
        raise UsageError(str(exc)) from None


def show_run(args: argparse.Namespace) -> int:
    """every row held about one person, for the office to hand them

    Print every row of every store of the gate's database that holds the person's data, as
    JSON (or --text), and write an audit row saying it was done (the kinds of key and the
    counts, not the data). A key no store holds anyone by: exit 2.

    Examples:
      sudo kiosk-admin person show --pass-id 3f9a1c2e0b4d
      sudo kiosk-admin person show --name 'Li Wei' --household 3-201 --text"""
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
      sudo kiosk-admin person forget --name 'Li Wei' --household 3-201
      sudo kiosk-admin person forget --name 'Li Wei' --household 3-201 --yes"""
    from kiosk.people import PersonActive, PersonError, find, forget
    from kiosk.store import StoreFault

    person = _person(args)
    config = load_args_config(args)
    store = open_store(args, config, _sets())
    try:
        config = site_config(args, config, store)
        now = store.clock.now()
        if not args.yes:
            found = find(
                store.reader(), person, now.astimezone(ZoneInfo(config.site.timezone)).date()
            )
            would = {"dry_run": True, "rows": found.counts(), "passes": len(found.passes)}
            # Of rows, another's entries naming them in a note: kept, the note emptied.
            would["mentioned"] = found.mentioned()
            print(json.dumps(would | {"active": dict(found.active)}))
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
    if done.events_seqs:
        print(
            f"kiosk person: the office's copy still holds these events until its retention:"
            f" kiosk fleet forget --kiosk {store.kiosk_id} --seqs {done.events_seqs}",
            file=sys.stderr,
        )
    return 0
