"""``kiosk guard``: accounts for the guard console.

``guard add NAME --role guard|admin`` stores a scrypt-hashed account in the kiosk's database;
``guard hash NAME --role ...`` prints a ``name:role:hash`` line for the ``guard_users``
credentials file instead (accounts that live outside the database, e.g. systemd
``LoadCredential=``); ``guard list`` and ``guard remove NAME`` manage the stored accounts.
The password is asked twice on a terminal, or read as the first line of stdin
(``--password-stdin``, or whenever stdin is not a terminal). It is never an argument, so it
cannot end up in the shell history or the process list.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING, TextIO

from .errors import CliError, UsageError
from .parsers import Verbs, add_group, add_verb
from .parsers import stdin as verb_stdin
from .store_args import add_store_args, load_args_config, open_store

if TYPE_CHECKING:
    from kiosk.store import EventLog

MIN_PASSWORD = 8
#: Read no more of stdin than this: an account takes at most 1024 characters.
_READ_LIMIT = 4096


def register(sub: Verbs) -> None:
    add_group(sub, "guard", _actions, dest="guard_verb")


def _actions(actions: Verbs) -> None:
    """guard console accounts: add, hash, list, remove

    Accounts for the guard console (scrypt-hashed passwords, roles guard/admin).

    Examples:
      sudo kiosk-admin guard add ali --role guard
      sudo kiosk-admin guard list"""
    add = add_verb(actions, "add", add_run)
    _account_args(add)
    add_store_args(add)

    _account_args(add_verb(actions, "hash", hash_run))

    add_store_args(add_verb(actions, "list", list_run))

    remove = add_verb(actions, "remove", remove_run)
    remove.add_argument("name")
    add_store_args(remove)


def _account_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="sign-in name: 1-64 letters, digits, '.', '_' or '-'")
    p.add_argument("--role", choices=("guard", "admin"), default="guard", help="default: guard")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (also when stdin is not a tty)",
    )


def read_password(args: argparse.Namespace, stdin: TextIO | None = None) -> str:
    stdin = stdin or verb_stdin()
    try:
        if args.password_stdin or not stdin.isatty():
            password: str = stdin.readline(_READ_LIMIT).rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                raise UsageError("the two passwords differ")
        password.encode("utf-8")  # undecodable bytes come as lone surrogates
    except UnicodeError:
        raise UsageError("the password is not UTF-8 text (a file in another encoding?)") from None
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"password too short (at least {MIN_PASSWORD} characters)")
    return password


def _checked_name_role(args: argparse.Namespace) -> None:
    from kiosk.accounts import AccountError, validate_name, validate_role

    try:
        validate_name(args.name)
        validate_role(args.role)
    except AccountError as exc:
        raise UsageError(str(exc)) from None


def _hash(password: str) -> str:
    from kiosk.accounts import AccountError, hash_password

    try:
        return hash_password(password)
    except AccountError as exc:  # e.g. longer than an account takes
        raise UsageError(str(exc)) from None


def hash_run(args: argparse.Namespace) -> int:
    """print a 'name:role:hash' line for the guard_users credentials file

    Examples:
      kiosk guard hash ali --role guard   # the line for /etc/kiosk/credentials/guard_users"""
    from kiosk.accounts import credentials_line

    _checked_name_role(args)
    password = read_password(args)
    print(credentials_line(args.name, args.role, _hash(password)))
    return 0


def _open_store(
    args: argparse.Namespace, *, create: bool = False, reads_only: str | None = None
) -> EventLog:
    from kiosk import accounts

    config = load_args_config(args)
    return open_store(args, config, [accounts.MIGRATIONS], create=create, reads_only=reads_only)


def _actor() -> str:
    try:
        return "cli:" + (os.environ.get("SUDO_USER") or getpass.getuser())[:60]
    except (KeyError, OSError):
        return "cli"


def add_run(args: argparse.Namespace) -> int:
    """create or reset an account in the kiosk's database

    Examples:
      sudo kiosk-admin guard add ali                  # asks the password twice
      sudo kiosk-admin guard add mona --role admin"""
    from kiosk.accounts import AccountError, AccountStore

    _checked_name_role(args)
    hashed = _hash(read_password(args))
    store = _open_store(args, create=True)
    try:
        AccountStore(store, now=store.clock.now).add(args.name, args.role, hashed, actor=_actor())
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    print(f"account {args.name} ({args.role}) saved", file=sys.stderr)
    return 0


def list_run(args: argparse.Namespace) -> int:
    """list the accounts (names and roles only)

    Examples:
      sudo kiosk-admin guard list"""
    from kiosk.accounts import AccountError, AccountStore
    from kiosk.secrets import get_secret

    store = _open_store(args, reads_only="guard list")
    try:
        try:
            accounts = AccountStore(store, get_secret("guard_users")).names()
        except AccountError as exc:
            raise CliError(str(exc)) from None
    finally:
        store.close()
    for account in accounts:
        print(f"{account.name}\t{account.role}\t{account.source}")
    return 0


def remove_run(args: argparse.Namespace) -> int:
    """disable a stored account

    Examples:
      sudo kiosk-admin guard remove ali"""
    from kiosk.accounts import AccountStore

    store = _open_store(args)
    try:
        removed = AccountStore(store).disable(args.name, actor=_actor())
    finally:
        store.close()
    if not removed:
        raise CliError(f"no stored account named {args.name}")
    print(f"account {args.name} disabled", file=sys.stderr)
    return 0
