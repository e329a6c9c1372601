"""``python -m kiosk.config.check FILE [--root DIR] [--made DIR ...]``: ``kiosk check-config``
needing nothing but pydantic. scripts/install runs it from the checkout to check the config
as the daemon will load it before any step acts on it, when no venv with the rest exists yet
(a dry run, a first install)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

from . import KioskConfig, check_file

#: What the machine shows of a valid config: its problems, then its warnings.
Machine = tuple[Iterable[str], Iterable[str]]


def report(
    file: str,
    root: Path | None = None,
    made: Collection[str] = (),
    data: Path | None = None,
    notes: Callable[[KioskConfig], Iterable[str]] = lambda _config: (),
    machine: Callable[[KioskConfig], Machine] = lambda _config: ((), ()),
) -> int:
    """Print ``check_file``'s verdict as ``kiosk check-config`` does: every problem on stderr
    (exit 2), or ``ok``, then warnings and ``notes`` of the config on stderr (exit 0).
    ``machine``: what only the machine shows and ``kiosk run`` refuses (its credentials),
    as problems (exit 2) and warnings (what this check cannot see to the end, or the
    installer makes after checking the config: said, not refused). The file is read once
    (it may be a pipe)."""
    config, problems = check_file(file, root, made, data)
    found, warnings = machine(config) if config is not None else ((), ())
    for problem in [*problems, *(f"{file}: {p}" for p in found)]:
        print(problem, file=sys.stderr)
    if config is None or found:
        return 2
    print(f"ok: {file} (kiosk_id={config.site.kiosk_id})")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for note in notes(config):
        print(f"note: {note}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.config.check", description=__doc__)
    parser.add_argument("file", help="the TOML config to check")
    parser.add_argument("--root", metavar="DIR", help="look for the paths it names under DIR")
    parser.add_argument(
        "--made",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder the installer makes before the daemon runs: taken as existing",
    )
    args = parser.parse_args(argv)
    return report(args.file, Path(args.root) if args.root else None, args.made)


if __name__ == "__main__":
    sys.exit(main())
