"""``kiosk guard``: accounts for the guard console."""

from __future__ import annotations

import argparse

from .errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("guard", help="not available yet (issue #7)", description="Not available yet.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailable("kiosk guard", 7)
