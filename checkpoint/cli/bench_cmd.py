"""``kiosk bench [--json]``."""

from __future__ import annotations

import argparse
import json

from checkpoint.bench import OPT_IN, SECTIONS, failed_sections, run_all

from .errors import UsageError
from .parsers import Verbs, add_verb


def register(sub: Verbs) -> None:
    p = add_verb(sub, "bench", bench)
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (fields: docs/bench.md)"
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument(
        "--only",
        action="append",
        metavar="SECTION[,SECTION]",
        help=f"run only these (comma-separated or repeated): {', '.join(SECTIONS)}",
    )


def bench(args: argparse.Namespace) -> int:
    """measure how fast this machine decodes, decides and stores (medians)

    Run the benchmarks (decode, thermo, decide, loop, idle, store, pull, edge, memory; fleet
    only when named with --only) and print medians and same-run ratios. A section that cannot
    run here says so ({"available": false, "reason": ...}); one that fails says
    "failed: ..." there, the others still print, and the exit code is 1.

    Examples:
      kiosk bench --quick                 # a short run: is this Pi fast enough?
      kiosk bench --only decide,store --json"""
    only = [name.strip() for value in args.only or [] for name in value.split(",") if name.strip()]
    if args.only is not None and not only:  # `--only "$EMPTY"`: some were meant, not all
        raise UsageError(f"--only names no section; choose from {', '.join((*SECTIONS, *OPT_IN))}")
    for name in only:
        if name not in (*SECTIONS, *OPT_IN):
            raise UsageError(
                f"unknown section {name!r}; choose from {', '.join((*SECTIONS, *OPT_IN))}"
            )
    result = run_all(quick=args.quick, only=only or None)
    if args.json:
        print(json.dumps(result, sort_keys=False))
    else:
        for name, value in result.items():
            print(f"{name}: {json.dumps(value)}")
    return 1 if failed_sections(result) else 0
