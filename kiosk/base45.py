"""Base45 (RFC 9285): bytes as text in the QR code alphanumeric character set.

QR alphanumeric mode packs two characters into 11 bits, so Base45 text (3 characters per
2 bytes) costs about 16.5 bits per 2 bytes in the symbol, against 16 for raw bytes in byte
mode, and it survives every scanner and serial link that mangles binary.

Decoding is *strict* and therefore canonical: the only text that decodes to some bytes is
the text ``encode`` would produce for them. Lower case, characters outside the alphabet, a
dangling single character, and groups whose value overflows (a triple above 65535, a final
pair above 255) are all rejected. Without that, two different texts could decode to the
same bytes and a changed payload could still verify (see docs/passes.md).

Two properties the pass format relies on: a 3-character group never ends in a space
(its last digit is at most 65535 // 2025 = 32, 'W') and neither does a final pair (at most
255 // 45 = 5), so encoded text never ends in whitespace a reader might strip.
"""

from __future__ import annotations

import struct

__all__ = ["ALPHABET", "Base45Error", "decode", "encode", "encoded_length"]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
#: bytes.translate table: ASCII code -> digit value, 0xFF for anything outside the alphabet.
_TABLE = bytes(ALPHABET.index(chr(c)) if chr(c) in ALPHABET else _INVALID for c in range(256))


class Base45Error(ValueError):
    """Text that is not canonical Base45."""


def encoded_length(n_bytes: int) -> int:
    """Characters needed for ``n_bytes`` bytes: 3 per pair, 2 for an odd last byte."""
    return 3 * (n_bytes // 2) + 2 * (n_bytes % 2)


def encode(data: bytes) -> str:
    """Encode bytes; pairs are big-endian, digits least significant first (RFC 9285 §4)."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = (data[i] << 8) | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def decode(text: str) -> bytes:
    """Decode canonical Base45 text; anything else raises ``Base45Error`` (never another error)."""
    if not isinstance(text, str):
        raise Base45Error("not text")
    if len(text) % 3 == 1:
        raise Base45Error("length leaves a single character")
    try:
        digits = text.encode("ascii").translate(_TABLE)  # C speed: this is on the pass path
    except UnicodeEncodeError:
        digits = b"\xff"
    if _INVALID in digits:
        bad = next(ch for ch in text if ch not in ALPHABET)
        raise Base45Error(f"character {bad!r} is not in the Base45 alphabet")
    full = len(digits) - len(digits) % 3
    values = [
        x + 45 * y + 2025 * z
        for x, y, z in zip(digits[0:full:3], digits[1:full:3], digits[2:full:3], strict=True)
    ]
    if values and max(values) > 0xFFFF:
        at = 3 * next(i for i, n in enumerate(values) if n > 0xFFFF)
        raise Base45Error(f"group at {at} overflows two bytes")
    out = struct.pack(f">{len(values)}H", *values)
    if full < len(digits):
        n = digits[full] + 45 * digits[full + 1]
        if n > 0xFF:
            raise Base45Error("last pair overflows a byte")
        out += bytes((n,))
    return out
