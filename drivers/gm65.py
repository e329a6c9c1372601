"""GM65 scanner module set-up over its serial command protocol ("zone bits").

The module keeps its settings in a table of one-byte *zones*. Commands (host -> module)::

    7E 00 | type | len | addr_hi addr_lo | data... | crc_hi crc_lo

with type 07 = read ``len`` zones from ``addr``, 08 = write ``len`` data bytes from ``addr``,
09 = save the zones to flash (``7E 00 09 01 00 00 00 DE C8``). The CRC is CRC-16/XMODEM
(polynomial 0x1021, initial 0) over ``type .. data``; the manual allows ``AB CD`` instead,
which the module accepts unchecked, but we send the real one. Replies (module -> host)::

    02 00 | status (00 = ok) | len | data... | crc_hi crc_lo

CRC over ``status .. data``: a write or save is acknowledged with ``02 00 00 01 00 33 31``.

Zones we set, each read first and changed only in the bits named (the others are the
module's own settings, e.g. its light and beeper):

* 0x000D bits 1-0, output interface: 00 TTL serial (UART), 01 USB keyboard (HID, the USB
  factory default: codes would be *typed into the kiosk's browser*), 11 USB virtual serial
  (CDC-ACM, ``/dev/ttyACM0``);
* 0x0060 bits 6-5, tail after each code: 00 CR, 01 CR LF, 10 TAB, 11 none;
* 0x0000 bits 1-0, scan mode: 00 manual (button), 01 command-triggered, 10 continuous,
  11 sensing.

A module already in USB keyboard mode has no serial port to talk to: it is set up once by
scanning the printed setup codes in its manual (docs/wiring.md), after which this works.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Output = Literal["serial", "cdc"]
Mode = Literal["command", "continuous"]

HEADER = b"\x7e\x00"
REPLY_HEADER = b"\x02\x00"
TYPE_READ, TYPE_WRITE, TYPE_SAVE = 0x07, 0x08, 0x09
ACK = bytes.fromhex("02 00 00 01 00 33 31")

ZONE_MODE = 0x0000
ZONE_OUTPUT = 0x000D
ZONE_TAIL = 0x0060

OUTPUT_BITS = {"serial": 0b00, "keyboard": 0b01, "cdc": 0b11}
MODE_BITS = {"manual": 0b00, "command": 0b01, "continuous": 0b10, "sensing": 0b11}
TAIL_CR = 0b00


class Gm65Error(Exception):
    """The module did not answer, or answered something other than the protocol's reply."""


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, as the GM65 manual specifies for commands and replies."""
    return binascii.crc_hqx(data, 0)


def command(kind: int, address: int, data: bytes) -> bytes:
    """One command frame; for a read, ``data`` is the one-byte zone count."""
    body = bytes([kind, len(data), address >> 8, address & 0xFF]) + data
    return HEADER + body + crc16(body).to_bytes(2, "big")


def read_command(address: int, count: int = 1) -> bytes:
    return command(TYPE_READ, address, bytes([count]))


def write_command(address: int, data: bytes) -> bytes:
    return command(TYPE_WRITE, address, data)


SAVE_COMMAND = command(TYPE_SAVE, 0x0000, b"\x00")


def reply(status: int, data: bytes) -> bytes:
    """A module reply frame (what the fake module sends)."""
    body = bytes([status, len(data)]) + data
    return REPLY_HEADER + body + crc16(body).to_bytes(2, "big")


def parse_reply(buf: bytes) -> tuple[bytes, bytes] | None:
    """``(data, rest)`` for the first complete reply in ``buf``; None while incomplete.

    Bytes before the header (a code the module was sending) are skipped. Raises
    ``Gm65Error`` for a reply with an error status or a wrong CRC."""
    start = buf.find(REPLY_HEADER)
    if start < 0 or len(buf) < start + 4:
        return None
    status, length = buf[start + 2], buf[start + 3]
    end = start + 4 + length + 2
    if len(buf) < end:
        return None
    body = buf[start + 2 : end - 2]
    if int.from_bytes(buf[end - 2 : end], "big") != crc16(body):
        raise Gm65Error(f"reply with a bad CRC: {buf[start:end].hex(' ')}")
    if status != 0x00:
        raise Gm65Error(f"module refused the command (status 0x{status:02X})")
    return body[2:], buf[end:]


def with_bits(value: int, shift: int, width: int, bits: int) -> int:
    mask = ((1 << width) - 1) << shift
    return (value & ~mask & 0xFF) | ((bits << shift) & mask)


@dataclass(frozen=True)
class ZoneChange:
    name: str
    address: int
    before: int
    after: int


class Gm65:
    """Talks to a GM65 on an open pyserial-like port (``write``, ``read``, ``reset_input_buffer``).

    ``now`` is a monotonic clock in seconds; each reply must arrive within ``timeout_s``."""

    MAX_REPLY = 64

    def __init__(
        self, port: Any, *, timeout_s: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._port = port
        self._timeout_s = timeout_s
        self._now = now

    def _exchange(self, frame: bytes, what: str) -> bytes:
        self._port.reset_input_buffer()
        self._port.write(frame)
        buf = b""
        deadline = self._now() + self._timeout_s
        while self._now() < deadline:
            buf += self._port.read(16)
            parsed = parse_reply(buf)
            if parsed is not None:
                return parsed[0]
            buf = buf[-self.MAX_REPLY :]
        raise Gm65Error(f"no reply to {what} within {self._timeout_s:g} s ({frame.hex(' ')})")

    def read_zone(self, address: int) -> int:
        data = self._exchange(read_command(address), f"read of zone 0x{address:04X}")
        if len(data) != 1:
            raise Gm65Error(f"zone 0x{address:04X}: expected 1 byte, got {data.hex(' ')}")
        return data[0]

    def write_zone(self, address: int, value: int) -> None:
        data = self._exchange(write_command(address, bytes([value])), f"write of 0x{address:04X}")
        if data != b"\x00":
            raise Gm65Error(f"zone 0x{address:04X} write not acknowledged: {data.hex(' ')}")

    def save(self) -> None:
        if self._exchange(SAVE_COMMAND, "save to flash") != b"\x00":
            raise Gm65Error("save to flash not acknowledged")

    def setup(self, output: Output, mode: Mode, *, save: bool = True) -> list[ZoneChange]:
        """Serial/CDC output, CR after each code, and the scan mode; read back, then saved."""
        plan = [
            ("output", ZONE_OUTPUT, 0, 2, OUTPUT_BITS[output]),
            ("tail", ZONE_TAIL, 5, 2, TAIL_CR),
            ("mode", ZONE_MODE, 0, 2, MODE_BITS[mode]),
        ]
        changes = []
        for name, address, shift, width, bits in plan:
            before = self.read_zone(address)
            want = with_bits(before, shift, width, bits)
            if want != before:
                self.write_zone(address, want)
            after = self.read_zone(address)
            if after != want:
                raise Gm65Error(
                    f"zone 0x{address:04X} ({name}) reads 0x{after:02X} after writing 0x{want:02X}"
                )
            changes.append(ZoneChange(name, address, before, after))
        if save:
            self.save()
        return changes
