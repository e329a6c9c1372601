"""``kiosk check-config FILE``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.files import UnreadableFile, read_bounded

from .parsers import Verbs, add_verb, path_arg

if TYPE_CHECKING:
    from kiosk.config import KioskConfig


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
    to the emulators.

    Examples:
      sudo kiosk-admin check-config /etc/kiosk/kiosk.toml   # before: sudo systemctl restart kiosk
      kiosk check-config systemd/kiosk.toml.example"""
    from kiosk.config.check import report

    # The data dir a relative policy.trust_dir is under: $KIOSK_DATA, which kiosk-admin sets
    # to the daemon's (else not judged: check-config is not told it).
    data = os.environ.get("KIOSK_DATA") or None
    root = Path(args.root) if args.root else None
    if _is_collector_config(args.file):
        return _check_collector(args.file)
    return report(
        args.file,
        root,
        data=Path(data) if data else None,
        notes=_notes,
        warnings=lambda config: _warnings(config, root),
    )


#: Where scripts/install keeps the credentials kiosk.service is handed, under its --root.
INSTALLED_CREDENTIALS = Path("etc/kiosk/credentials")


def _warnings(config: KioskConfig, root: Path | None) -> list[str]:
    """What ``kiosk run`` refuses that the file alone does not show: ``web.tls`` on without
    the tls_cert/tls_key credentials where the install keeps them under ``--root`` (it hands
    them to kiosk.service). A warning, not a refusal: scripts/install checks the config
    before its credentials step makes them (``--tls``). Not judged without ``--root`` (``sudo
    kiosk-admin`` hands the verb no TLS credentials), nor in a credentials folder this user
    may not look into (root's)."""
    from kiosk.secrets import TLS_CREDENTIALS, TLS_MISSING

    if not config.web.tls or root is None:
        return []
    folder = root / INSTALLED_CREDENTIALS
    if folder.is_dir() and not os.access(folder, os.X_OK):
        return []
    missing = [name for name in TLS_CREDENTIALS if not (folder / name).is_file()]
    if not missing:
        return []
    return [
        f"web.tls: {TLS_MISSING} (no {' or '.join(missing)} in {folder}): `kiosk run` refuses to"
        " start until they are there; `scripts/install --tls` makes them (a self-signed"
        " certificate), or put the certificate and its key there"
    ]


#: A collector's config (`kiosk collect --config`) is its `[[kiosks]]` to pull.
_KIOSKS_TABLE = re.compile(rb"^[ \t]*(\[\[[ \t]*kiosks[ \t]*\]\]|kiosks[ \t]*=)", re.MULTILINE)


def _is_collector_config(file: str) -> bool:
    """Whether ``file`` is the office collector's config, not a kiosk's: `check-config` said
    only `kiosks: unknown key (check its spelling ...)` of a valid one. A regular file only (a
    pipe is read once, by the kiosk check)."""
    from kiosk.config import MAX_CONFIG_BYTES

    if not os.path.isfile(file):
        return False
    try:
        return bool(_KIOSKS_TABLE.search(read_bounded(file, MAX_CONFIG_BYTES)))
    except UnreadableFile:
        return False  # the kiosk check says why


def _check_collector(file: str) -> int:
    """``file`` checked as ``kiosk collect`` loads it: `ok` or its problems (exit 2)."""
    from kiosk.config import ConfigError
    from kiosk.config.fleet import load_collector_config

    try:
        config = load_collector_config(file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        print(
            f"{file}: a collector config (`kiosk collect --config`), checked as one",
            file=sys.stderr,
        )
        return 2
    print(f"ok: {file} (collector config: {len(config.kiosks)} kiosks)")
    print("note: a collector config, for `kiosk collect --config`, not a kiosk's", file=sys.stderr)
    return 0


def _notes(config: KioskConfig) -> list[str]:
    """What `kiosk run` warns of in a valid config: emulated devices (fine on a bench), lanes
    it does not read, peers whose token is unreadable here or whose URL is plain http, peers
    without the compound's id at a gate taking the office's lists."""
    from kiosk.config.compound import id_note, peer_notes

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
    unnamed = id_note(config.compound, config.fleet.lists_url is not None)
    if unnamed:
        notes.append(unnamed)
    return notes + peer_notes(config.compound, _trust_folder(config))


def _trust_folder(config: KioskConfig) -> Path | None:
    """The trust folder as the daemon will read it (``kiosk.config.trust_dir``), when
    check-config can tell: an absolute ``policy.trust_dir``, or any under ``$KIOSK_DATA``."""
    from kiosk.config import trust_dir

    data = os.environ.get("KIOSK_DATA")
    named = config.policy.trust_dir
    if not data and not (named is not None and Path(named).is_absolute()):
        return None  # relative to a data dir this check is not told
    return trust_dir(config, Path(data or "/"))
