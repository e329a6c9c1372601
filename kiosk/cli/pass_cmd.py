"""``kiosk keys new`` and ``kiosk pass issue|verify``."""

from __future__ import annotations

import argparse

from .errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    for verb in ("keys", "pass"):
        p = sub.add_parser(
            verb, help="not available yet (issue #5)", description="Not available yet."
        )
        p.set_defaults(func=_na)


def _na(args: argparse.Namespace) -> int:
    raise NotAvailable(f"kiosk {args.verb}", 5)
