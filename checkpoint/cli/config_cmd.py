"""``kiosk check-config FILE``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kiosk.config import KioskConfig
from kiosk.config.check import report

from .parsers import Verbs, add_verb, path_arg


def register(sub: Verbs) -> None:
    p = add_verb(sub, "check-config", check_config)
    p.add_argument("file", type=path_arg, help="the TOML config to check")
    p.add_argument(
        "--root",
        metavar="DIR",
        type=path_arg,
        help="look for the paths the config names under DIR (an install into another root)",
    )


def check_config(args: argparse.Namespace) -> int:
    """validate a config file

    Validate a kiosk TOML config. Prints every problem as `field.path: reason` and exits 2
    on error (unknown timezones, missing paths such as policy.trust_dir, a file nested too
    deeply); prints `ok` and exits 0 when valid, and names on stderr the devices it leaves
    to the emulators."""
    # The data dir a relative policy.trust_dir is under: $KIOSK_DATA, which kiosk-admin sets
    # to the daemon's (else not judged: check-config is not told it).
    data = os.environ.get("KIOSK_DATA") or None
    root = Path(args.root) if args.root else None
    return report(args.file, root, data=Path(data) if data else None, notes=_notes)


def _notes(config: KioskConfig) -> list[str]:
    """What `kiosk run` warns of in a valid config: emulated devices (fine on a bench), lanes
    it does not read."""
    from .daemon_cmd import emulated_devices, unread_lanes

    notes = []
    emulated = emulated_devices(config)
    if emulated:
        notes.append(
            f"emulated devices (not a real gate): {', '.join(emulated)}; name the real ones"
            " (systemd/kiosk.toml.example)"
        )
    lanes = unread_lanes(config)
    if lanes:
        notes.append(lanes)
    return notes
