"""``kiosk check-config FILE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.config import ConfigError, check_paths, load_config

from .parsers import Verbs, add_verb


def register(sub: Verbs) -> None:
    p = add_verb(sub, "check-config", check_config)
    p.add_argument("file", help="the TOML config to check")
    p.add_argument(
        "--root",
        metavar="DIR",
        help="look for the paths the config names under DIR (an install into another root)",
    )


def check_config(args: argparse.Namespace) -> int:
    """validate a config file

    Validate a kiosk TOML config. Prints every problem as `field.path: reason` and exits 2
    on error (unknown timezones, missing paths such as policy.trust_dir, a file nested too
    deeply); prints `ok` and exits 0 when valid."""
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return 2
    problems = check_paths(cfg, Path(args.root) if args.root else None)
    for problem in problems:
        print(f"{args.file}: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"ok: {args.file} (kiosk_id={cfg.site.kiosk_id})")
    return 0
