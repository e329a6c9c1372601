"""Fuzz a scanned code's text on its way to a pass: the scanner hygiene
(``drivers.codes.check_payload``), Base45 and ``TrustList.verify`` (kiosk/passes.py).

Three kinds of input, chosen by the first byte:

* raw bytes as a scanner delivers them: hygiene, then verify; only ``PassError`` may come
  out of ``_verify`` itself (``verify`` would hide anything else as ``pass_malformed``);
* a record signed with the trusted key (the fuzzer cannot forge a signature, so it is given
  the key): whatever is accepted must be exactly the text ``encode_pass`` writes for it;
* an issued pass with one character changed: it must never verify.
"""

from __future__ import annotations

from datetime import UTC, datetime

import atheris
from _fuzz import instrumented, run

with instrumented():
    from drivers.codes import check_payload
    from kiosk import base45
    from kiosk.passes import (
        PREFIX,
        PassError,
        TrustList,
        _signed_message,
        encode_pass,
        issue_pass,
        key_id_of,
    )

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_TRUST = TrustList([("issuer", _KEY.public_key())])
_KEY_ID = bytes.fromhex(key_id_of(_KEY.public_key()))
_ISSUED, _ = issue_pass(
    _KEY, "12-3", "Wang Fang", "resident", 30, datetime(2026, 3, 1, tzinfo=UTC), ("escort",)
)


def _raw(data: bytes) -> None:
    text, _reason = check_payload(data, 512)
    for payload in (data, text):
        try:
            _TRUST._verify(payload)
        except PassError:
            pass


def _signed(body: bytes) -> None:
    body = _KEY_ID + body[2:] if len(body) >= 2 else _KEY_ID + body
    record = body + _KEY.sign(_signed_message(body))
    text = PREFIX + base45.encode(record)
    try:
        pass_ = _TRUST._verify(text)
    except PassError:
        return
    again = encode_pass(_KEY, pass_)
    if again != text:
        raise AssertionError(f"accepted a non-canonical pass: {text!r} re-encodes as {again!r}")


def _changed(fdp: atheris.FuzzedDataProvider) -> None:
    at = fdp.ConsumeIntInRange(0, len(_ISSUED) - 1)
    char = chr(fdp.ConsumeIntInRange(0, 0x7F))
    text = _ISSUED[:at] + char + _ISSUED[at + 1 :]
    if text == _ISSUED:
        return
    try:
        pass_ = _TRUST._verify(text)
    except PassError:
        return
    raise AssertionError(f"a changed pass verified: {text!r} as {pass_}")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        prefix = PREFIX.encode() if fdp.ConsumeBool() else b""  # past the first check
        _raw(prefix + fdp.ConsumeBytes(fdp.remaining_bytes()))
    elif mode == 1:
        _signed(fdp.ConsumeBytes(fdp.remaining_bytes()))
    else:
        _changed(fdp)


if __name__ == "__main__":
    run(one_input)
