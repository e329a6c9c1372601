"""The signed pass's format, as figures: its prefix, roles, flags and bounds
(``kiosk.passes`` packs, signs and reads passes by them; docs/passes.md).

A module of its own, without ``cryptography``: the command line's parser offers the roles and
flags as choices and says the longest validity, and ``kiosk --help`` builds every verb's
parser (``tests/test_cli_start.py``); ``cryptography`` is loaded by the verb that signs or
verifies a pass.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "FLAGS",
    "KEY_ID_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_VALID_HOURS",
    "PASS_ID_BYTES",
    "PREFIX",
    "QR_CAPACITY_CHARS",
    "ROLES",
    "SIGNATURE_BYTES",
    "VERSION",
    "Role",
]

Role = Literal["resident", "staff", "delivery", "visitor"]

VERSION = 1
#: Text prefix; names the format and version, and is signed (domain separation).
PREFIX = "KP1:"
#: Two bits of the role/flags byte.
ROLES: tuple[Role, ...] = ("resident", "staff", "delivery", "visitor")
#: Six bits of the role/flags byte; unassigned bits must be zero.
FLAGS: tuple[str, ...] = ("gate_issued", "observation", "escort")
#: Characters a QR code of version 8, error correction Q, holds in alphanumeric mode.
QR_CAPACITY_CHARS = 157
SIGNATURE_BYTES = 64
KEY_ID_BYTES = 2
PASS_ID_BYTES = 6
#: Largest binary record that still fits the QR capacity after the prefix.
MAX_RECORD_BYTES = ((QR_CAPACITY_CHARS - len(PREFIX)) // 3) * 2
#: The validity's field is 16 bits of hours (about 7.5 years).
MAX_VALID_HOURS = 0xFFFF
