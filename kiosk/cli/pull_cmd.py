"""``kiosk token new``, ``kiosk pull`` and ``kiosk purge``."""

from __future__ import annotations

import argparse

from .errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    for verb in ("token", "pull", "purge"):
        p = sub.add_parser(
            verb, help="not available yet (issue #8)", description="Not available yet."
        )
        p.set_defaults(func=_na)


def _na(args: argparse.Namespace) -> int:
    raise NotAvailable(f"kiosk {args.verb}", 8)
