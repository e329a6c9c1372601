"""``kiosk token``, ``kiosk pull`` and ``kiosk purge``.

``token`` and ``purge`` work on the kiosk's own database (``--db``, default: the ``store.path``
of ``--config`` under ``--data``, else ``kiosk.db`` there: ``store_args``); they write through
``EventLog`` like the daemon, so they are safe to run beside it. ``pull`` runs in the office.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.files import sqlite_read_only

from .errors import CliError, UsageError, clock_advice
from .parsers import Verbs, add_group, add_verb, path_arg
from .store_args import (
    add_store_args,
    db_path,
    held_for_writing,
    load_args_config,
    open_store,
    pending_migrations,
    site_config,
)

if TYPE_CHECKING:
    from datetime import date

    from sqlite_utils.migrations import Migrations

    from kiosk.config import KioskConfig
    from kiosk.retention import PurgeResult
    from kiosk.store import EventLog
    from kiosk.tokens import TokenStore
    from office.pg import PgTarget


def register(sub: Verbs) -> None:
    add_group(sub, "token", _tokens, dest="token_verb")
    pull = add_verb(sub, "pull", pull_run)
    pull.add_argument("url", nargs="?", help="the kiosk's base URL, e.g. http://gate-1:8000")
    pull.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="URL",
        help="another kiosk to pull (repeatable)",
    )
    pull.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="T",
        help="bearer token: one for all kiosks, or one per URL in order"
        " (default: $KIOSK_PULL_TOKEN, which keeps it out of the process list)",
    )
    pull.add_argument(
        "--into",
        required=True,
        metavar="TARGET",
        type=path_arg,
        help="SQLite file to fill, or a postgresql:// URL (the office database)",
    )
    pull.add_argument(
        "--fields",
        metavar="NAMES",
        help="personal fields to copy unmasked, comma-separated (e.g. household; the token"
        " needs logs:personal); default: all masked",
    )
    pull.add_argument("--page", type=int, default=5000, help="events per request (1-10000)")
    pull.add_argument("--retries", type=int, default=8, help="tries per request (1-100)")
    pull.add_argument("--json", action="store_true", help="print one JSON result per kiosk")
    pull.add_argument(
        "--repin",
        metavar="KIOSK_ID",
        help="the one URL is the gate KIOSK_ID now (it moved to a new address, or was given a"
        " new site.kiosk_id): checked against the id it answers as, then pinned to it (the id's"
        " old URL released), recorded in the target and printed",
    )

    purge = add_verb(sub, "purge", purge_run)
    purge.add_argument(
        "--older-than",
        type=int,
        metavar="DAYS",
        help="purge what is older than DAYS (default: store.retention_days of --config); with"
        " the quota on, the households of passing exits inside its look-back are kept until"
        " it has passed them (households_held_from)",
    )
    purge.add_argument(
        "--trust-clock",
        action="store_true",
        help="purge although the wall clock is not synchronised (no NTP answer): only once"
        " `date -u` is checked by hand; a clock set back behind the log is refused all the same",
    )
    add_store_args(purge)


def _tokens(actions: Verbs) -> None:
    """API tokens for the office (new, list, revoke)

    Manage API bearer tokens. A new token is shown once and stored hashed.

    Examples:
      sudo kiosk-admin token new --scope logs:read --name office
      sudo kiosk-admin token list"""
    new = add_verb(actions, "new", token_new)
    new.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help="logs:read, logs:personal, stats:read or passages:peer (repeatable)",
    )
    new.add_argument("--name", help="a label for `token list` (e.g. the office's name)")
    new.add_argument(
        "--for",
        dest="peer",
        metavar="KIOSK_ID",
        help="passages:peer: the gate (its site.kiosk_id) the token is for; it pokes and says"
        " closing as that gate alone",
    )
    add_store_args(new)
    listing = add_verb(actions, "list", token_list)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_store_args(listing)
    revoke = add_verb(actions, "revoke", token_revoke)
    revoke.add_argument("id", help="the 8-character id shown by `token list`")
    add_store_args(revoke)


def _sets() -> list[Migrations]:
    """The migration sets a token or pull verb needs of the kiosk's log."""
    from kiosk import stats, tokens

    return [tokens.MIGRATIONS, stats.MIGRATIONS]


def _token_store(store: EventLog) -> TokenStore:
    from kiosk.tokens import TokenStore

    return TokenStore(store, clock=store.clock)


def token_new(args: argparse.Namespace) -> int:
    """create a token (printed once on stdout)

    Examples:
      sudo kiosk-admin token new --scope logs:read --name office   # copy it now: shown once
      sudo kiosk-admin token new --scope passages:peer --for gate-south --name gate-south"""
    from kiosk.tokens import UNBOUND_PEER, TokenError, check_peer, validate_scopes

    try:
        check_peer(validate_scopes(args.scope), args.peer)
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    store = open_store(args, load_args_config(args), _sets(), create=True)
    try:
        info, plaintext = _token_store(store).create(
            args.scope, args.name, actor="cli", peer=args.peer
        )
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    print(plaintext)
    print(
        f"token {info.id} ({', '.join(sorted(info.scopes))}) created; it is shown only once",
        file=sys.stderr,
    )
    if info.unbound_peer:
        print(f"token {info.id}: {UNBOUND_PEER}", file=sys.stderr)
    return 0


def token_list(args: argparse.Namespace) -> int:
    """list tokens (never their secrets)

    Examples:
      sudo kiosk-admin token list"""
    from kiosk.tokens import UNBOUND_PEER

    store = open_store(args, load_args_config(args), _sets(), reads_only="token list")
    try:
        tokens = _token_store(store).list()
    finally:
        store.close()
    for info in tokens:
        if args.json:
            print(json.dumps(info.as_dict()))
        else:
            state = f"revoked {info.revoked_at}" if info.revoked_at else "active"
            line = f"{info.id}  {info.name}  {','.join(sorted(info.scopes))}  {state}"
            if info.peer is not None:
                line += f"  for {info.peer}"
            elif info.unbound_peer and info.active:
                line += f"  {UNBOUND_PEER}"
            print(line)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    """revoke a token by its id

    Examples:
      sudo kiosk-admin token revoke 3f9a1c2e   # the id token list shows"""
    from kiosk.tokens import TokenError

    store = open_store(args, load_args_config(args), _sets())
    try:
        info = _token_store(store).revoke(args.id, actor="cli")
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    print(f"token {info.id} revoked at {info.revoked_at}")
    return 0


def _pull_args(args: argparse.Namespace) -> tuple[list[str], list[str], frozenset[str]]:
    """The URLs, a token for each and the fields asked for unmasked; ``UsageError``."""
    from kiosk.config.fleet import normalise_url
    from kiosk.privacy import normalise_fields

    urls = ([args.url] if args.url else []) + list(args.sources)
    if not urls:
        raise UsageError("give a kiosk URL (and/or --from URL)")
    try:
        urls = [normalise_url(u) for u in urls]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    tokens = _pull_tokens(args)
    if len(tokens) == 1:
        tokens = tokens * len(urls)
    elif len(tokens) != len(urls):
        raise UsageError(f"{len(tokens)} tokens for {len(urls)} URLs: give one, or one per URL")
    if not 1 <= args.page <= 10000:
        raise UsageError("--page must be between 1 and 10000")
    if not 1 <= args.retries <= 100:
        raise UsageError("--retries must be between 1 and 100")
    if args.repin is not None and len(urls) != 1:
        raise UsageError("--repin names the gate of one URL: give exactly one")
    try:
        fields = normalise_fields((args.fields or "").split(","))
    except ValueError as exc:
        raise UsageError(f"--fields: {exc}") from None
    return urls, tokens, fields


def pull_run(args: argparse.Namespace) -> int:
    """copy kiosks' events into a SQLite file or the office's PostgreSQL

    Incremental, resumable, idempotent pull of one or more kiosks' events into TARGET,
    verifying the hash chain across pulls.

    Examples:
      kiosk pull http://gate-1:8000 --into central.db     # the token in $KIOSK_PULL_TOKEN
      kiosk pull http://gate-1:8000 --from http://gate-2:8000 --into postgresql://office@localhost/fleet"""
    from office.pull import Progress, Puller, PullError

    urls, tokens, fields = _pull_args(args)
    target: PgTarget | Path
    if args.into.startswith(("postgresql://", "postgres://")):
        from office.pg import PgError, PgTarget

        try:
            target = PgTarget(args.into)
        except PgError as exc:
            raise CliError(str(exc)) from None
    else:
        target = Path(args.into)
        if not target.parent.is_dir():
            raise UsageError(f"no such directory: {target.parent}")
        if _is_event_log(target):
            raise UsageError(
                f"--into {target} is a kiosk's event log; pull into another file (a copy is"
                " outside retention: it must not live in the kiosk's own log)"
            )
    failed = 0
    try:
        with Puller(
            target,
            page_size=args.page,
            attempts=args.retries,
            progress=Progress(),
            fields=fields,
            tell=lambda said: print(f"kiosk pull: {said}", file=sys.stderr),
        ) as puller:
            for url, token in zip(urls, tokens, strict=True):
                try:
                    result = puller.pull(url, token, repin=args.repin)
                except PullError as exc:
                    print(f"kiosk pull: {exc}", file=sys.stderr)
                    failed += 1
                    continue
                finally:
                    for notice in puller.notices:
                        print(f"kiosk pull: {notice}", file=sys.stderr)
                    puller.notices.clear()

                if args.json:
                    print(json.dumps(result.as_dict()))
                else:
                    print(
                        f"{url}: kiosk {result.kiosk_id or '-'}: {result.inserted} new events,"
                        f" up to seq {result.last_seq}"
                    )
    except sqlite3.Error as exc:
        raise CliError(_target_problem(args.into, exc)) from None
    finally:
        if not isinstance(target, Path):
            target.close()
    if failed:
        raise CliError(f"{failed} of {len(urls)} kiosks failed (what was pulled is kept)")
    return 0


#: SQLite's primary result codes for a target another program holds, one that cannot be
#: written and a full disk (``sqlite3.Error.sqlite_errorcode`` & 0xFF).
_HELD, _READ_ONLY, _FULL = {5, 6}, {8}, {13}
_AGAIN = "run kiosk pull again: what was pulled is kept, and the pull resumes after it"


def _target_problem(into: str, exc: sqlite3.Error) -> str:
    """The target file's problem in the clerk's words, with what to do: a file held open by
    another program (a viewer, a spreadsheet: Windows' lock, here SQLite's), one that cannot be
    written, a full disk; else SQLite's own words."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _HELD:
        return (
            f"{into} is held open by another program (a viewer or a spreadsheet showing it,"
            f" another pull): close it and {_AGAIN}"
        )
    if code in _READ_ONLY:
        return (
            f"{into} cannot be written (read-only): give this account write access to it and"
            f" its folder, then {_AGAIN}"
        )
    if code in _FULL:
        return f"cannot write {into}: the disk is full; free some space, then {_AGAIN}"
    return f"cannot use {into} as a pull target: {exc}"


def _pull_tokens(args: argparse.Namespace) -> list[str]:
    """The ``--token`` values, else ``$KIOSK_PULL_TOKEN``; a usage error for none, or for one
    no request could carry (named, never repeated)."""
    from office.pull import token_problem

    tokens = list(args.token) or (
        [os.environ["KIOSK_PULL_TOKEN"]] if os.environ.get("KIOSK_PULL_TOKEN") else []
    )
    if not tokens:
        raise UsageError("--token is required (or set KIOSK_PULL_TOKEN)")
    for token in tokens:
        problem = token_problem(token)
        if problem is not None:
            where = "--token" if args.token else "KIOSK_PULL_TOKEN"
            raise UsageError(f"{where}: {problem}")
    return tokens


def _is_event_log(path: Path) -> bool:
    """Whether ``path`` is a kiosk's own event log (its events and audit tables), read-only."""

    try:
        with path.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return False
        conn = sqlite_read_only(path)
    except (OSError, sqlite3.Error):
        return False  # no file yet, or one the pull itself will name
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return {"events", "audit"} <= names


#: How long ``kiosk purge`` lets go of the file's write lock between two of its batches: a
#: daemon's passage waiting for the lock polls it at most every 100 ms (SQLite's busy
#: handler), so a shorter gap could miss it batch after batch until its store deadline.
BATCH_PAUSE_S = 0.15


def _between_batches() -> None:
    time.sleep(BATCH_PAUSE_S)


class _Batches:
    """What a purge did for good before it was cut off: the log's migrations (``migrated``),
    the days it froze, each freezing its own transaction, and the batches it committed before
    its last, each its own transaction, audited (``between`` is called after each of both)."""

    def __init__(self, migrated: list[str]) -> None:
        self.migrated = migrated
        self.frozen: list[date] = []
        self.done = self.freezing = 0
        #: The purge's result once its last transaction committed, and the step after it
        #: that began last (``kiosk.retention.purge``'s ``after``).
        self.purged: tuple[PurgeResult, str] | None = None

    def between(self) -> None:
        self.done += 1
        _between_batches()

    def froze(self, days: list[date]) -> None:
        self.frozen += days
        self.freezing = self.done  # those so far were between freezing transactions

    def after(self, result: PurgeResult, step: str) -> None:
        self.purged = (result, step)

    def cut_off(self) -> str | None:
        """What a purge cut off after them did for good; None: nothing."""
        if self.purged is not None:  # the purge's last transaction committed
            result, step = self.purged
            return (
                f"{result.done_words()}, only {step} after it failed: run it again, or the"
                " next purge does it"
            )
        done = []
        if self.migrated:
            done.append(f"the log is migrated to this version ({', '.join(self.migrated[:3])})")
        if self.frozen:
            days = sorted(set(self.frozen))
            span = str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
            done.append(f"the daily reports of {span} are frozen")
        n = self.done - self.freezing
        if n:
            those = "1 batch before it stays" if n == 1 else f"{n} batches before it stay"
            done.append(f"{those} purged (audited)")
        return f"{'; '.join(done)}: run it again to finish" if done else None


def purge_run(args: argparse.Namespace) -> int:
    """delete personal data past retention, keep daily aggregates

    Null the personal fields of events older than DAYS (after freezing the daily reports
    of those days); the hash chain keeps verifying. Without --older-than, DAYS is the
    store.retention_days of --config (what kiosk-purge.timer runs nightly). With the outing
    quota on, a cutoff inside its look-back (policy.quota.period_days days on the site's
    clock) is held back for the households of passing exits alone, which the gate's quota
    counts after a restart: they are kept until the look-back has passed them (the JSON's
    households_held_from says from when, and so does a line on stderr); names, pass ids, the
    rest of those rows, audit details and the ledgers go by DAYS. A wall clock that
    is not synchronised, or set back behind the log, purges nothing: exit 1. The log of
    --config not written yet (the daemon never started) is nothing to purge: exit 0.

    Examples:
      sudo kiosk-admin purge                  # as kiosk-purge.timer runs it nightly
      sudo kiosk-admin purge --older-than 30"""
    from kiosk.retention import MAX_DAYS

    days = args.older_than
    if days is None and not args.config:
        raise UsageError("give --older-than DAYS, or --config to purge by its store.retention_days")
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise UsageError(f"--older-than must be between 0 and {MAX_DAYS} days")
    config = load_args_config(args)
    if days is None:
        days = config.store.retention_days
    path = db_path(args, config)
    with held_for_writing(path.parent):  # before its first look: no restore swaps the log after
        return _purge(args, config, days, path)


def _purge(args: argparse.Namespace, config: KioskConfig, days: int, path: Path) -> int:
    """``purge_run`` on the log at ``path``, the data dir's lock held."""
    from kiosk.retention import ClockNotTrusted, purge
    from kiosk.store import StoreFault

    if args.config and not args.db and path.parent.is_dir() and not path.exists():
        # The config's log, before the daemon first wrote it (the timer on a new install).
        print(f"kiosk purge: no event log at {path} yet: nothing to purge", file=sys.stderr)
        return 0
    migrated = pending_migrations(path, _sets())
    store = open_store(args, config, _sets())
    batches = _Batches(migrated)
    try:
        config = site_config(args, config, store)
        result = purge(
            store,
            days,
            store.clock.now(),
            tz=config.site.timezone,
            quota_cfg=config.policy.quota,
            actor="cli",
            trust_unsynced_clock=args.trust_clock,
            between_batches=batches.between,
            froze=batches.froze,
            held_dir=path.parent,  # the stops' held decisions beside the log
            after=batches.after,
        )
    except ClockNotTrusted as exc:
        then = clock_advice(exc.reason)
        raise CliError(
            f"nothing was purged: {exc}; the nightly timer tries again tomorrow, or {then}"
        ) from None
    except Exception as exc:  # a card fault SQLite or the system said, past a step
        done = batches.cut_off()
        if done is None and not isinstance(exc, StoreFault):
            raise
        said = f"purge failed: {exc}" + (f"; {done}" if done else "")
        raise CliError(said, partial=done) from exc
    finally:
        store.close()
    print(json.dumps(result.as_dict()))
    if result.households_held_from is not None:
        print(
            f"kiosk purge: the outing quota's look-back ({config.policy.quota.period_days} days)"
            " held the cutoff back for the households of passing exits: those from"
            f" {result.households_held_from.isoformat()} are kept until it has passed them;"
            f" everything else was purged before {result.cutoff.isoformat()}",
            file=sys.stderr,
        )
    return 0
