"""Secrets come from the environment or systemd credentials, never from the TOML file.

Lookup order for a secret named ``NAME``: the file ``$CREDENTIALS_DIRECTORY/NAME`` (systemd
``LoadCredential=``), then the environment variable ``KIOSK_NAME`` (upper-cased). Values are
never logged.
"""

from __future__ import annotations

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
                return read_bounded(candidate, MAX_SECRET_BYTES).decode("utf-8").strip()
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


#: The shortest key taken (``session_key``, ``token_pepper``): 128 random bits written as hex
#: (``openssl rand -hex 16``). scripts/install writes 32 random bytes in base64 (44
#: characters); a key anyone could type or guess would let them forge a guard's cookie, or
#: guess API tokens from a copy of the database, offline.
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
