"""Fuzz the trust folder (kiosk/passes.py ``TrustList.from_dir``, ``load_public_key``) and a
signed list bundle's signature check against it: the ``*.pub`` files an operator copies in.

A key file is fuzzed as raw bytes or as PEM armour around fuzzed DER, whose start is one of
a few real public keys (Ed25519, P-256, an SM2 key's curve), so the algorithm and curve
identifiers are mutated too. Only ``TrustListError`` may come out of ``from_dir``; a
TrustList already built keeps verifying with the keys in force whatever is dropped beside
them (the re-read's failure is its ``problem``).
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime

import atheris
from _fuzz import instrumented, run, scratch

with instrumented():
    from kiosk.passes import TrustList, TrustListError, issue_pass, public_key_pem

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

logging.disable(logging.CRITICAL)  # the re-read says why it kept the keys: every input
_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_DIR = scratch()
(_DIR / "office.pub").write_bytes(public_key_pem(_KEY.public_key()))
_TRUST = TrustList.from_dir(_DIR)
_PASS, _ = issue_pass(_KEY, "12-3", "Wang Fang", now=datetime(2026, 3, 1, tzinfo=UTC))
_DER = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
_SEEDS = [
    _KEY.public_key().public_bytes(*_DER),
    ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*_DER),
    # An SM2 key's SubjectPublicKeyInfo up to its point (curve 1.2.156.10197.1.301).
    base64.b64decode("MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE"),
]


def _key_file(fdp: atheris.FuzzedDataProvider) -> bytes:
    if fdp.ConsumeBool():
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    seed = fdp.PickValueInList(_SEEDS)
    at = fdp.ConsumeIntInRange(0, len(seed))
    der = seed[:at] + fdp.ConsumeBytes(fdp.remaining_bytes())
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n".encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mtime_ns = fdp.ConsumeIntInRange(1, 2**40)
    path = _DIR / "district.pub"
    path.write_bytes(_key_file(fdp))
    os.utime(_DIR, ns=(0, mtime_ns))  # the re-read looks at the folder's mtime
    try:
        TrustList.from_dir(_DIR)
    except TrustListError:
        pass
    if _TRUST.verify(_PASS).household != "12-3":
        raise AssertionError("the pass in force no longer verifies")
    path.unlink()


if __name__ == "__main__":
    run(one_input)
