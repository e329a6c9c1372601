"""Secrets come from the environment or systemd credentials, never from the TOML file.

Lookup order for a secret named ``NAME``: the file ``$CREDENTIALS_DIRECTORY/NAME`` (systemd
``LoadCredential=``), then the environment variable ``KIOSK_NAME`` (upper-cased). Values are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from kiosk.files import UnreadableFile, read_bounded, write_atomic

#: A credential is read no further than this (the guard accounts file, a certificate chain).
MAX_SECRET_BYTES = 1024 * 1024


class SecretError(ValueError):
    """A secret that is set but cannot be used (not text, too short); names the secret, never
    its value."""


def get_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret ``name``, stripped; None when unset. ``SecretError`` for a credential file
    (or variable) that is not UTF-8 text."""
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / name
        if candidate.is_file():
            try:
                data = read_bounded(candidate, MAX_SECRET_BYTES)
                if sealed_by_systemd(data):  # LoadCredential= hands it as it is
                    raise SecretError(f"credential {name} ({candidate}) {HANDED_SEALED}")
                return data.decode("utf-8").strip()
            except UnreadableFile as exc:
                raise SecretError(f"credential {name} ({candidate}): {exc}") from None
            except UnicodeDecodeError:
                raise SecretError(
                    f"credential {name} ({candidate}) is not UTF-8 text; write it again"
                ) from None
    value = env.get("KIOSK_" + name.upper())
    if value and not value.isascii():
        try:
            value.encode("utf-8")  # os.environ hands undecodable bytes over as surrogates
        except UnicodeEncodeError:
            raise SecretError(f"KIOSK_{name.upper()} is not UTF-8 text; set it again") from None
    return value if value else None


#: The shortest key taken (``session_key``; a shorter ``token_pepper`` is only warned of:
#: ``kiosk.tokens.short_pepper``): 128 random bits written as hex (``openssl rand -hex 16``).
#: scripts/install writes 32 random bytes in base64 (44 characters); a key anyone could type
#: or guess would let them forge a guard's cookie offline.
MIN_KEY_CHARS = 32


#: How to make a key the kiosk takes (what scripts/install does).
MAKE_A_KEY = "make one with: head -c 32 /dev/urandom | base64"


def get_key(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret ``name`` that is a key (see ``MIN_KEY_CHARS``); None when unset, or set
    and empty (a credential file cut short: the daemon signs with the key it keeps,
    ``kept_key``, and says so at each start and in check-config: ``empty_key``).
    ``SecretError`` for one too short to be a key, naming it and how to make one."""
    secret = get_secret(name, environ)
    if secret and len(secret) < MIN_KEY_CHARS:
        raise SecretError(
            f"credential {name} is too short ({len(secret)} characters, at least"
            f" {MIN_KEY_CHARS}): {MAKE_A_KEY}"
        )
    return secret or None


def empty_key(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The warning for the key credential ``name`` set but empty (a file cut short), else
    None. Not refused: nothing is unsafe to run with, the daemon signing with the key it
    keeps in its data dir (``kept_key``) as without the credential."""
    if get_secret(name, environ) != "":
        return None
    return (
        f"credential {name} is empty (cut short?): not taken, the key kept in the data dir"
        f" signs instead; {MAKE_A_KEY}, and restart kiosk"
    )


#: The shortest ``screen_key`` taken (docs/network.md): a shorter one is ignored (the kiosk's
#: routes stay closed to screens elsewhere), said at each start and by check-config.
MIN_SCREEN_KEY_CHARS = 16


def screen_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``screen_key`` secret a screen elsewhere pairs with; None when unset or too short
    (``short_screen_key`` says so)."""
    secret = get_secret("screen_key", environ)
    return secret if secret and len(secret) >= MIN_SCREEN_KEY_CHARS else None


def short_screen_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The warning for a ``screen_key`` set but shorter than ``MIN_SCREEN_KEY_CHARS`` (or
    empty), else None. Not taken: a key one could guess would show the camera's preview (the
    residents' pass codes) to anyone on the LAN. Not refused either: the gate and its own
    screen work without it, and a remote screen's key is no reason to stop the gate."""
    secret = get_secret("screen_key", environ)
    if secret is None or len(secret) >= MIN_SCREEN_KEY_CHARS:
        return None
    return (
        f"credential screen_key is too short ({len(secret)} characters, at least"
        f" {MIN_SCREEN_KEY_CHARS}): ignored, so no screen on another machine can pair"
        " (POST /kiosk/pair) or show the kiosk's routes: they answer 403 (the screen at"
        f" web.screen_addresses is not affected); {MAKE_A_KEY}, and restart kiosk"
    )


def kept_key(folder: Path, name: str) -> str | None:
    """The key the daemon keeps for itself in ``folder`` (its data dir) as the file ``name``,
    for a key credential it is not handed (a hand-made unit, ``kiosk run`` by hand): made
    once, 32 random bytes in base64 as scripts/install makes the credential, written whole,
    0600 (the service user's alone), and read again at every start, so that what it signs
    outlives a restart. One there that is no key (cut short, not text) is made again. None,
    warned in the journal, when it can be neither read nor written (a read-only card): the
    caller signs with a key of its process. The key is never logged."""
    path = folder / name
    kept = _kept_text(path)
    if kept is not None and len(kept) >= MIN_KEY_CHARS:
        return kept
    made = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    try:
        if path.is_symlink():  # written through, the key would land where the link points
            path.unlink()
        write_atomic(path, made.encode("ascii") + b"\n", 0o600, keep_mode=False)
    except OSError as exc:
        _log.warning(
            f"{path} cannot be written ({exc.strerror or exc}): guards sign in again after"
            f" each restart; hand the daemon a {name} credential ({MAKE_A_KEY})"
        )
        return None
    return made


_log = logging.getLogger("kiosk.secrets")


def _not_kept_safely(st: os.stat_result) -> str | None:
    """Why a kept key file (its ``fstat``) is not one to sign with, else None: not a regular
    file, not this user's, or open to others (its group, anyone): whoever could write it
    could forge a guard's cookie, whoever could read it too."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is not this user's (owner uid {st.st_uid})"
    if st.st_mode & 0o077:
        return f"is open to others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _kept_text(path: Path) -> str | None:
    """The text of the kept key file ``path``, None when there is none to take (missing,
    not text, a symlink, not a regular file, not this user's, open to others: each but
    missing warned in the journal, never with the key). Opened without following a symlink
    nor waiting on a FIFO, and judged on what was opened (``fstat``)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    why: str | None
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "is a symbolic link" if os.path.islink(path) else f"cannot be read ({exc})"
    else:
        with os.fdopen(fd, "rb") as file:
            try:
                why = _not_kept_safely(os.fstat(file.fileno()))
                data = b"" if why else file.read(MAX_SECRET_BYTES + 1)
            except OSError as exc:
                why = f"cannot be read ({exc.strerror or exc})"
            if why is None and len(data) > MAX_SECRET_BYTES:
                why = "is too large to be a key"
        if why is None:
            try:
                return data.decode("utf-8").strip()
            except UnicodeDecodeError:
                return None
    _log.warning(f"{path} {why}: not taken; making a new one (guards sign in again)")
    return None


#: The credentials the API serves ``web.tls`` with (a PEM certificate and its key), and what
#: ``kiosk run`` and ``kiosk check-config`` say when one is missing.
TLS_CREDENTIALS = ("tls_cert", "tls_key")
TLS_MISSING = "web.tls is on but the tls_cert/tls_key credentials are missing"
#: And when the two are not a PEM certificate and its private key (``kiosk.tlscert``).
TLS_NOT_A_PAIR = "the tls_cert/tls_key credentials are not a certificate and its key"


def secret_path(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """A secret that is a file (a TLS certificate): ``$CREDENTIALS_DIRECTORY/NAME``, else the
    path in ``KIOSK_NAME``; None when neither names an existing file."""
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        return Path(cred_dir) / name
    value = env.get("KIOSK_" + name.upper())
    return Path(value) if value and Path(value).is_file() else None


#: A credential ``systemd-creds encrypt`` made, where the service is handed it: kiosk.service
#: and kiosk-admin load each with ``LoadCredential=``, which hands it as it is (only
#: ``LoadCredentialEncrypted=`` decrypts, systemd.exec(5)); read so, it is no credential.
HANDED_SEALED = (
    "is encrypted (systemd-creds) and was handed as it is (kiosk.service and kiosk-admin load"
    " it with LoadCredential=, which does not decrypt): write it in plain (root's, 0600)"
)


#: What a credential ``systemd-creds encrypt`` made begins with: the id of the key it was
#: sealed with (the host's, the TPM's, both, scoped, null: systemd's ``creds-util.h``).
_SEALED_BY = frozenset(
    bytes.fromhex(key)
    for key in (
        "5a1c6a86df9d4096b1d5a65e0862f19a",
        "55b9ed1d38594d43a8319d2ebb332ac6",
        "0c7cc07b117645919c4b0bea08bc20fe",
        "faf7eb9341e3412ca1a436f95a29362f",
        "93a894094874449090caf2fc93cab553",
        "ef4ac13679a9480ea7db68897f9f165d",
        "af4950a849134eb1a73846304ff30c05",
        "adbc4ca3efb64201ba881b6f2e4095ea",
        "058469daf6f54324800549da0f8ea2fb",
    )
)


def sealed_by_systemd(data: bytes) -> bool:
    """Whether ``data`` is a credential ``systemd-creds encrypt`` made (binary, or base64 as
    it writes them by default): systemd hands the service it decrypted only through
    ``LoadCredentialEncrypted=``; read as it is, it is neither text nor a key."""
    if data[:16] in _SEALED_BY:
        return True
    text = b"".join(data[:64].split())[:24]
    try:
        return base64.b64decode(text, validate=True)[:16] in _SEALED_BY
    except (binascii.Error, ValueError):
        return False
