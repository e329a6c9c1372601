"""``kiosk replay SCENARIO [--db FILE]``: a scenario through the real engine in virtual time."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .errors import CliError, UsageError
from .parsers import Verbs, add_verb, path_arg


def _scenario(text: str) -> str:
    """A scenario file (``path_arg``), or a bare shipped name (``fever``) as it is."""
    return text if text.isidentifier() else path_arg(text)


def register(sub: Verbs) -> None:
    p = add_verb(sub, "replay", run)
    p.add_argument(
        "scenario",
        metavar="SCENARIO",
        nargs="?",
        type=path_arg,
        help="scenario file, or a shipped name",
    )
    p.add_argument(
        "--db",
        metavar="FILE",
        type=path_arg,
        help="keep the event log in this new SQLite file (default: a temporary file)",
    )
    p.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")


def run(args: argparse.Namespace) -> int:
    """replay a scenario through the real engine on fake devices (virtual time)

    Run a scenario file (TOML; see docs/scenarios.md) through the real engine on fake
    devices in virtual time, with no real waiting. Prints one JSON line per decision and
    checks the scenario's expectations: exit 1 if one fails, 2 if the scenario is malformed.
    A bare name (e.g. 'fever') runs a shipped scenario.

    Examples:
      kiosk replay --list
      kiosk replay fever
      kiosk replay my-gate.toml"""
    from checkpoint.replay import (
        ScenarioError,
        format_record,
        load_scenario,
        replay,
        shipped_scenarios,
    )
    from kiosk.store import StoreFault

    if args.list:
        for path in shipped_scenarios():
            print(path.stem)
        return 0
    if not args.scenario:
        raise UsageError("a SCENARIO file or name is required (see --list)")
    if args.db is not None:
        _check_new_db(args.db)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    except RecursionError:  # tomllib on absurdly nested TOML
        raise UsageError(f"{args.scenario}: TOML nested too deeply") from None

    def emit(rec: dict[str, Any]) -> None:
        print(format_record(rec), flush=True)

    try:
        result = replay(scenario, db_path=args.db, on_decision=emit)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    except BrokenPipeError:
        raise  # `kiosk replay demo | head`: main() ends it quietly
    except (OSError, StoreFault) as exc:
        raise CliError(f"cannot run the scenario: {exc}") from None
    met = result.expectations - len(result.failures)
    print(
        f"replay {scenario.name}: {len(result.decisions)} decisions,"
        f" {met}/{result.expectations} expectations met",
        file=sys.stderr,
    )
    if result.failures:
        for failure in result.failures:
            print(f"  expectation failed: {failure}", file=sys.stderr)
        raise CliError(f"{len(result.failures)} expectation(s) failed in {scenario.name}")
    return 0


def _check_new_db(db: str) -> None:
    """``--db``: a new file in an existing folder. A replay's passages are simulated: never
    into a real event log, nor on top of another replay (its expectations assume a fresh
    log); and a mistyped folder is named, not made."""
    if not db:
        raise UsageError("--db needs a file name")
    if os.path.lexists(db):
        raise UsageError(f"--db {db} exists; a replay writes a new event log file")
    folder = os.path.dirname(db) or "."
    if not os.path.lexists(folder):
        raise UsageError(f"--db {db}: no such directory: {folder}")
