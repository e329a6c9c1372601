"""``kiosk calibrate``."""

from __future__ import annotations

import argparse

from .errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="not available yet (issue #3)", description="Not available yet."
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailable("kiosk calibrate", 3)
