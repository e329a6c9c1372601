"""The kiosk database for maintenance verbs (``token``, ``purge``, ``guard``, ``verify-log``):
where it is and how the verbs that write open it — through ``EventLog``, like the daemon, so
they are safe beside it (``verify-log`` only reads it, read-only)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CliError, UsageError

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from kiosk.config import KioskConfig
    from kiosk.store import EventLog


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="FILE",
        help="the kiosk's database (default: $KIOSK_DATA/kiosk.db, else ./data/kiosk.db;"
        " with --config, its store.path under the data dir)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("KIOSK_CONFIG") or None,
        help="kiosk config (for store.path, site; default: $KIOSK_CONFIG, which kiosk-admin"
        " sets to the daemon's)",
    )
    p.add_argument("--data", metavar="DIR", help="data dir (default: $KIOSK_DATA, else ./data)")


def load_args_config(args: argparse.Namespace) -> KioskConfig:
    from kiosk.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def db_path(args: argparse.Namespace, config: KioskConfig) -> Path:
    data = Path(args.data or os.environ.get("KIOSK_DATA") or "data")
    if args.db:
        return Path(args.db)
    if args.config:
        path = Path(config.store.path)
        return path if path.is_absolute() else data / path
    return data / "kiosk.db"


def open_store(
    args: argparse.Namespace, config: KioskConfig, migrations: Iterable[Migrations]
) -> EventLog:
    from kiosk.clock import SystemClock
    from kiosk.store import EventLog, StoreFault

    path = db_path(args, config)
    if not path.parent.is_dir():
        raise UsageError(
            f"no such directory for the database: {path.parent}; name the kiosk's with"
            " --data DIR or --db FILE (sudo kiosk-admin uses the daemon's)"
        )
    log = EventLog(
        path,
        config.site.kiosk_id,
        SystemClock(),
        config.store.synchronous,
        migrations=list(migrations),
    )
    try:
        return log.open()
    except StoreFault as exc:
        raise CliError(f"cannot open {path}: {exc}") from None
