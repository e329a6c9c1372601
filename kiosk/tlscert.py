"""The API's TLS certificate's lifetime, as the guard and ``/api/v1/health`` are told of it.

``scripts/install --tls`` makes a self-signed certificate for 3,650 days from the clock at
install; an operator's own may live a year or 90 days. The day it runs out, the office's pull
and collector are refused ("certificate has expired") and a screen or browser warns; a
certificate made on a clock that was ahead is refused the same way until its start. The
daemon reads its validity once at start (``checkpoint.server.certificate_validity``) and
hands the core a ``TlsCertificate``; ``Core.health`` reports it against the clock, a warning
``WARN_DAYS`` ahead (the guard's Devices page says it in words; docs/operations.md says how
to make a new one).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["WARN_DAYS", "EncryptedKey", "TlsCertificate", "tls_context"]

#: How long before the certificate runs out the Devices page and health warn.
WARN_DAYS = 30


@dataclass(frozen=True)
class TlsCertificate:
    """When the certificate the API serves is valid: from ``not_before`` until ``not_after``
    (UTC, aware)."""

    not_before: datetime
    not_after: datetime

    def state(self, now: datetime) -> str:
        """``ok``, ``expires_soon`` (fewer than ``WARN_DAYS`` days left), ``expired`` or
        ``not_yet_valid`` (made on a clock ahead of this one)."""
        if now >= self.not_after:
            return "expired"
        if now < self.not_before:
            return "not_yet_valid"
        if (self.not_after - now).days < WARN_DAYS:
            return "expires_soon"
        return "ok"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": max(0, (self.not_after - now).days),
            "state": self.state(now),
        }


class EncryptedKey(ssl.SSLError):
    """The TLS key is encrypted with a passphrase, which nothing can give the kiosk (it runs
    unattended: kiosk.service has no terminal). Its message says what to do."""

    def __str__(self) -> str:  # ssl.SSLError's own shows its arguments as a tuple
        return str(self.args[0]) if self.args else ""


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The server's TLS: the credentials' certificate and key, TLS 1.2 and up, Python's
    default ciphers; no client certificates. ``ssl.SSLError`` for files that are not a
    certificate and its key (``kiosk run`` refuses to start, ``check-config`` says so),
    ``EncryptedKey`` for a key encrypted with a passphrase: never asked for (OpenSSL's own
    "Enter PEM pass phrase:" held ``check-config`` at a terminal, and passed a key the service
    cannot open; without a terminal it said "[Errno 22] Invalid argument")."""

    def no_passphrase() -> str:
        raise EncryptedKey(
            "the key is encrypted with a passphrase, which the kiosk cannot be given: store it"
            f" unencrypted (openssl pkey -in {key_file} -out {key_file}.plain), mode 0600"
        )

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file, password=no_passphrase)
    return context
