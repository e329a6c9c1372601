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
    # to the daemon's (else not judged: check-config is not told it); under --root, the
    # install's there (``trust_said``), never this shell's.
    root = Path(args.root) if args.root else None
    data = None if root else os.environ.get("KIOSK_DATA") or None
    if _is_collector_config(args.file):
        return _check_collector(args.file)
    return report(
        args.file,
        root,
        data=Path(data) if data else None,
        notes=_notes,
        machine=lambda config: _joined(
            tls_said(config, root), credentials_said(root), trust_said(config, root)
        ),
    )


def _joined(*said: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """The problems and warnings of each check, a warning two checks share said once (a
    credentials folder this user may not look into)."""
    warnings = [w for _, warned in said for w in warned]
    return [p for found, _ in said for p in found], list(dict.fromkeys(warnings))


def trust_said(config: KioskConfig, root: Path | None) -> tuple[list[str], list[str]]:
    """What ``kiosk run`` refuses of the trust folder, as problems and warnings: a
    pass-checking kiosk trusting no key (``daemon_cmd.no_trusted_key_in``, exit 2 there too), a
    key file that is not one. A warning instead where this user may not read the folder, and
    under ``--root`` for no key: scripts/install checks the config before it makes the key."""
    from kiosk.passes import TrustList, TrustListError, key_files

    from .daemon_cmd import no_trusted_key_in

    folder = _trust_folder(config, root)
    if config.policy.mode == "temperature_only" or folder is None:
        return [], []
    if not os.path.lexists(folder):
        return _no_trust_folder(config, folder, root)
    if not folder.is_dir():
        return [], []  # kiosk run's to say (a file where the folder would be)
    if not os.access(folder, os.R_OK | os.X_OK):
        return [], [
            f"policy.trust_dir: {folder} cannot be read as this user, so its keys are not"
            " checked: check the config as root (sudo kiosk check-config ...)"
        ]
    try:
        if not key_files(folder):
            said = f"policy: {no_trusted_key_in(folder)}"
            # Only the folder the install's trust step copies the issuer's key into is filled
            # after this check; any other stays empty, and kiosk run refuses it (exit 2).
            return ([], [said]) if _filled(folder, root) else ([said], [])
        TrustList.from_dir(folder)
    except TrustListError as exc:
        return [f"policy.trust_dir: {exc}"], []
    return [], []


def _filled(folder: Path, root: Path | None) -> bool:
    """Whether ``folder`` is the one the install's trust step copies the issuer's key into
    after this check (under ``--root``): any other stays as it is, and kiosk run refuses it
    without a key (exit 2)."""
    return root is not None and folder == root / INSTALLED_DATA / "trust"


def _no_trust_folder(
    config: KioskConfig, folder: Path, root: Path | None
) -> tuple[list[str], list[str]]:
    """A pass-checking kiosk's trust folder that is not there, as ``kiosk run`` will take it.
    The default one (``trust`` under the data dir) it makes, empty, and then refuses to start
    for want of a key: a problem, a warning for the one the install fills. A relative one the
    config names it refuses at once (``kiosk.config.check_paths``, which says it where the
    data dir is known: here too under ``--root``); an absolute one is check_paths's to say.
    It was passed over under ``--root``."""
    from kiosk.config import trust_dir_missing

    from .daemon_cmd import no_trusted_key_in

    named = config.policy.trust_dir
    if named is not None:
        relative = not Path(named).is_absolute()
        return ([trust_dir_missing(named, folder)] if relative and root else []), []
    said = (
        f"policy: {folder} does not exist: kiosk run makes it, empty, and then refuses to"
        f" start: {no_trusted_key_in(folder)}"
    )
    return ([], [said]) if _filled(folder, root) else ([said], [])


#: Where scripts/install keeps the credentials kiosk.service is handed, under its --root.
INSTALLED_CREDENTIALS = Path("etc/kiosk/credentials")
#: The data dir scripts/install makes (kiosk.service's --data), under its --root: a relative
#: policy.trust_dir is under it, and its trust step copies the issuer's key into its trust/.
INSTALLED_DATA = Path("var/lib/kiosk")
#: The root of this machine's install: its credentials, when nothing else names them.
INSTALLED_ROOT = Path("/")


def tls_said(config: KioskConfig, root: Path | None) -> tuple[list[str], list[str]]:
    """What ``kiosk run`` refuses of ``web.tls`` that the file alone does not show, as
    problems and warnings: the tls_cert/tls_key credentials missing, or not a certificate
    and its key (``kiosk.tlscert.tls_context``, as the server loads them), where they are
    looked for (``_tls_files``). A warning instead where this user may not read them (run it
    as root), and for missing ones under ``--root``: scripts/install checks the config before
    its credentials step makes them (``--tls``)."""
    from kiosk.secrets import TLS_MISSING

    files = _tls_files(root) if config.web.tls else None
    if files is None:
        return [], []
    hidden = sorted({p.parent for p in files.values() if not _may_look(p.parent)})
    unread = [n for n, p in files.items() if _may_look(p.parent) and p.is_file()]
    unread = [str(files[n]) for n in unread if not os.access(files[n], os.R_OK)]
    if hidden or unread:
        warned = [_hidden(folder) for folder in hidden]
        if unread:
            warned.append(
                f"web.tls: the tls_cert/tls_key credentials ({', '.join(unread)}) {_UNREAD}"
            )
        return [], warned
    if missing := [f"{n} at {p}" for n, p in files.items() if not p.is_file()]:
        said = (
            f"web.tls: {TLS_MISSING} (no {' or '.join(missing)}): `kiosk run` refuses to start"
            " until they are there; `scripts/install --tls` makes them (a self-signed"
            " certificate), or put the certificate and its key there"
        )
        return ([], [said]) if root is not None else ([said], [])
    return _not_a_pair(files), []


#: What check-config says of credentials this user may not read (run it as root).
_AS_ROOT = "check the config as root (sudo kiosk check-config ...)"
_UNREAD = f"cannot be read as this user, so they are not checked: {_AS_ROOT}"


def _hidden(folder: Path) -> str:
    """A credentials folder this user may not look into (root's 0700 one)."""
    return f"the credentials ({folder}/) {_UNREAD}"


def credentials_said(root: Path | None) -> tuple[list[str], list[str]]:
    """What ``kiosk run`` refuses of the credentials it reads as it starts
    (``kiosk.credentials``: a bad guard_users line, a short or empty key, one not text), in
    its words, where it will be handed them (``_credentials_handed``): problems. Warnings for
    those this user may not read, and for one ``systemd-creds`` encrypted (decrypted only for a
    ``LoadCredentialEncrypted=`` line, which the shipped unit has not: ``_unseen``): not
    checked, never refused."""
    from kiosk.credentials import CREDENTIAL_CHECKS, credential_problems, credential_warnings

    handed = _credentials_handed(root)
    if handed is None:
        return [], []
    environ, folder = handed
    if folder is not None and not _may_look(folder):
        return [], [_hidden(folder)]
    names, warnings = [], []
    for name in CREDENTIAL_CHECKS:
        path = None if folder is None else folder / name
        unseen = None if path is None else _unseen(path)
        if unseen is None:
            names.append(name)
        else:
            warnings.append(f"credential {name} ({path}) {unseen}")
    warnings += credential_warnings(environ, tuple(names))
    return credential_problems(environ, tuple(names)), warnings


def _credentials_handed(root: Path | None) -> tuple[dict[str, str], Path | None] | None:
    """The environment ``kiosk run`` will read its credentials from (``kiosk.secrets``) and
    their folder: under ``--root``, the install's folder kiosk.service is handed them from
    (none yet: its credentials step makes them); else this environment when it hands any
    (``$CREDENTIALS_DIRECTORY``: ``sudo kiosk-admin``; ``KIOSK_NAME``), else this machine's
    install's folder. None (left to ``kiosk run``): neither handed, and no such folder."""
    from kiosk.credentials import CREDENTIAL_CHECKS

    folder = (root or INSTALLED_ROOT) / INSTALLED_CREDENTIALS
    if root is None:
        named = [f"KIOSK_{name.upper()}" for name in CREDENTIAL_CHECKS]
        given = os.environ.get("CREDENTIALS_DIRECTORY")
        if given or any(name in os.environ for name in named):
            return dict(os.environ), Path(given) if given else None
    if not os.path.lexists(folder):
        return None
    return {"CREDENTIALS_DIRECTORY": str(folder)}, folder


def _unseen(path: Path) -> str | None:
    """Why the credential file ``path`` is not checked here, else None (checked: absent, or
    read as ``kiosk run`` reads it)."""
    from kiosk.secrets import MAX_SECRET_BYTES, sealed_by_systemd

    if not path.is_file():
        return None
    if not os.access(path, os.R_OK):
        return f"cannot be read as this user, so it is not checked: {_AS_ROOT}"
    try:
        data = read_bounded(path, MAX_SECRET_BYTES)
    except UnreadableFile:
        return None  # kiosk run's refusal says why
    if sealed_by_systemd(data):
        return (
            "is encrypted (systemd-creds), so it is not checked: the shipped kiosk.service and"
            " kiosk-admin hand it as it is (LoadCredential= does not decrypt), and kiosk run"
            " refuses it: write it in plain (a LoadCredentialEncrypted= line of your own, sudo"
            " systemctl edit kiosk, decrypts it for the daemon alone)"
        )
    return None


def _tls_files(root: Path | None) -> dict[str, Path] | None:
    """Where the TLS credentials are looked for: under ``--root``, where the install keeps
    them; else where ``kiosk run`` takes them when it is handed either (``KIOSK_TLS_*``,
    ``$CREDENTIALS_DIRECTORY``, where the other is looked for), else in this machine's
    install's folder (kiosk.service is handed them from there; ``sudo kiosk-admin``, none).
    None (left to ``kiosk run``): neither handed, and no such folder."""
    from kiosk.secrets import TLS_CREDENTIALS, secret_path

    folder = (root or INSTALLED_ROOT) / INSTALLED_CREDENTIALS
    files = {name: folder / name for name in TLS_CREDENTIALS}
    if root is not None:
        return files
    named = {name: secret_path(name) or os.environ.get(f"KIOSK_{name.upper()}") for name in files}
    if any(named.values()):
        there = Path(os.environ.get("CREDENTIALS_DIRECTORY") or folder)
        return {name: Path(named[name] or there / name) for name in files}
    return files if os.path.lexists(folder) else None


def _may_look(folder: Path) -> bool:
    return not folder.is_dir() or os.access(folder, os.X_OK)


def _not_a_pair(files: dict[str, Path]) -> list[str]:
    """The server's TLS context made of the two files: ``kiosk run``'s words when it cannot."""
    import ssl

    from kiosk.secrets import TLS_NOT_A_PAIR
    from kiosk.tlscert import EncryptedKey, tls_context

    try:
        tls_context(str(files["tls_cert"]), str(files["tls_key"]))
    except EncryptedKey as exc:
        return [f"web.tls: {files['tls_key']}: {exc}"]
    except (ssl.SSLError, OSError) as exc:
        return [f"web.tls: {TLS_NOT_A_PAIR} ({files['tls_cert']}, {files['tls_key']}: {exc})"]
    return []


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


def _trust_folder(config: KioskConfig, root: Path | None = None) -> Path | None:
    """The trust folder as the daemon will read it (``kiosk.config.trust_dir``), when
    check-config can tell: an absolute ``policy.trust_dir`` (under ``root`` when given), a
    relative one (the default ``trust``) under the install's data dir under ``root``
    (``INSTALLED_DATA``, as the credentials are looked for there), else under
    ``$KIOSK_DATA``."""
    from kiosk.config import trust_dir

    data = os.environ.get("KIOSK_DATA")
    named = config.policy.trust_dir
    if named is not None and Path(named).is_absolute():
        return root / named.lstrip("/") if root is not None else Path(named)
    if root is not None:
        return trust_dir(config, root / INSTALLED_DATA)
    if not data:
        return None  # relative to a data dir this check is not told
    return trust_dir(config, Path(data))
