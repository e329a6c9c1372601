"""Secrets come from the environment or systemd credentials, never from the TOML file.

Lookup order for a secret named ``NAME``: the file ``$CREDENTIALS_DIRECTORY/NAME`` (systemd
``LoadCredential=``), then the environment variable ``KIOSK_NAME`` (upper-cased). Values are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from kiosk.files import UnreadableFile, read_bounded

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
    """The secret ``name`` that is a key (see ``MIN_KEY_CHARS``); None when unset.
    ``SecretError`` for one too short to be a key, naming it and how to make one."""
    secret = get_secret(name, environ)
    if secret and len(secret) < MIN_KEY_CHARS:
        raise SecretError(
            f"credential {name} is too short ({len(secret)} characters, at least"
            f" {MIN_KEY_CHARS}): {MAKE_A_KEY}"
        )
    return secret


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
