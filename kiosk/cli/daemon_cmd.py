"""``kiosk demo`` and ``kiosk run``."""

from __future__ import annotations

import argparse

from .errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    for verb in ("demo", "run"):
        p = sub.add_parser(
            verb, help="not available yet (issue #2)", description="Not available yet."
        )
        p.set_defaults(func=_na)


def _na(args: argparse.Namespace) -> int:
    raise NotAvailable(f"kiosk {args.verb}", 2)
