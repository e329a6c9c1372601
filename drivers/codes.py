"""What a decoded payload must be to reach the engine, for every source: hygiene, hold-off,
and a serial scanner's byte stream cut into lines.

The camera's frame pipeline (``drivers.pipeline``) and the serial scanners
(``drivers.serial_scanner``) share these rules. Nothing here needs OpenCV or numpy: a gate
with only a serial scanner never imports them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeRead

#: Bytes a raw payload may have per allowed character (UTF-8 is at most 4).
_MAX_BYTES_PER_CHAR = 4
#: Distinct texts remembered for the hold-off; old entries expire anyway.
_HOLDOFF_CAP = 64

#: Control, format, surrogate, private-use, unassigned; and line/paragraph separators, which
#: break lines in log viewers and JavaScript just like CR/LF.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Rejection:
    """A decoded payload that did not reach the engine, and why (no payload content kept)."""

    #: empty | oversized | not_utf8 | control_chars | bad_frame | unterminated | unknown_key
    #: | overrun
    reason: str
    source: str
    mono_ns: int
    length: int = 0


def check_payload(data: bytes, max_chars: int) -> tuple[str | None, str | None]:
    """``(text, None)`` if the payload may reach the engine, else ``(None, reason)``.

    The text is never altered (a pass's signature covers every byte): bad payloads are
    rejected, not repaired. Control and format characters (NUL, ESC, bidi overrides, ...)
    are rejected because no pass contains them and they are how hostile codes try to fool a
    log viewer or a terminal."""
    if not data:
        return None, "empty"
    if len(data) > max_chars * _MAX_BYTES_PER_CHAR:
        return None, "oversized"
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None, "not_utf8"
    if len(text) > max_chars:
        return None, "oversized"
    if not text.isprintable() and any(
        unicodedata.category(ch) in CONTROL_CATEGORIES for ch in text
    ):
        return None, "control_chars"
    return text, None


class HoldOff:
    """Suppresses a text seen again within ``holdoff_ns`` of its last sighting."""

    def __init__(self, holdoff_s: float) -> None:
        self._holdoff_ns = int(holdoff_s * 1e9)
        self._last: dict[str, int] = {}

    def admit(self, text: str, mono_ns: int) -> bool:
        """Record a sighting; True if it should be submitted (not seen within the hold-off)."""
        self._expire(mono_ns)
        last = self._last.get(text)
        self._last[text] = mono_ns
        if len(self._last) > _HOLDOFF_CAP:
            oldest = min(self._last, key=self._last.__getitem__)
            del self._last[oldest]
        return last is None or mono_ns - last > self._holdoff_ns

    def touch(self, texts: Iterable[str], mono_ns: int) -> None:
        """Still seen (an unchanged scene that was not decoded again)."""
        for text in texts:
            if text in self._last:
                self._last[text] = mono_ns

    def _expire(self, mono_ns: int) -> None:
        stale = [t for t, ns in self._last.items() if mono_ns - ns > self._holdoff_ns]
        for t in stale:
            del self._last[t]


@dataclass
class PipelineStats:
    frames: int = 0
    decodes: int = 0
    second_passes: int = 0
    codes: int = 0
    rejected: int = 0
    last_rejection: str | None = None


# -- serial scanners ---------------------------------------------------------------------


class SerialLineAssembler:
    """Splits a scanner's byte stream into CR/LF-terminated lines.

    A line that grows past ``max_bytes`` without a terminator (garbage, a baud-rate
    mismatch) is dropped up to the next terminator and reported once as ``oversized``, so a
    noisy line can never grow memory or glue junk onto the next good code."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buf = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> list[bytes | None]:
        """Complete lines in arrival order; ``None`` stands for a dropped oversized line."""
        out: list[bytes | None] = []
        for byte in chunk:
            if byte in (0x0D, 0x0A):
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                continue
            if self._discarding:
                continue
            self._buf.append(byte)
            if len(self._buf) > self._max:
                self._buf.clear()
                self._discarding = True
                out.append(None)
        return out

    @property
    def partial(self) -> int:
        """Bytes of a line begun and not yet ended."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial line (after a reconnect it belongs to nobody)."""
        self._buf.clear()
        self._discarding = False


def strip_aim_qr(line: bytes) -> bytes:
    """``line`` without the AIM symbology identifier of a QR code (ISO/IEC 15424: ``]Q`` and
    a modifier 0-6) a scanner may be set to put before each code: it says what was read, it
    is no part of the code. Another symbology's (``]C0``, a barcode: no pass) or one not at
    the start is left as it came."""
    if len(line) >= 3 and line[:2] == b"]Q" and 0x30 <= line[2] <= 0x36:
        return line[3:]
    return line


class SerialLinePipeline:
    """Hygiene and hold-off for a serial scanner's lines, the same rules as for frames."""

    def __init__(self, cfg: DecoderConfig, source: str = "scanner") -> None:
        self.cfg = cfg
        self.source = source
        self.assembler = SerialLineAssembler(cfg.max_payload_chars * _MAX_BYTES_PER_CHAR)
        self._holdoff = HoldOff(cfg.holdoff_s)
        self.stats = PipelineStats()
        self._last_byte_ns = 0

    def expire(self, mono_ns: int, idle_ns: int) -> Rejection | None:
        """Drop a partial line no byte has been added to for ``idle_ns``: a module sends a
        code in one burst, so it is a line end that never comes (a module set to send none,
        noise), and it must not be glued to the front of the next code."""
        length = self.assembler.partial
        if not length or mono_ns - self._last_byte_ns < idle_ns:
            return None
        self.assembler.reset()
        rejection = Rejection("unterminated", self.source, mono_ns, length)
        self.stats.rejected += 1
        self.stats.last_rejection = rejection.reason
        return rejection

    def feed(self, chunk: bytes, mono_ns: int) -> tuple[list[CodeRead], list[Rejection]]:
        codes: list[CodeRead] = []
        rejected: list[Rejection] = []
        if chunk:
            self._last_byte_ns = mono_ns
        for line in self.assembler.feed(chunk):
            code, rejection = self.line(line, mono_ns)
            if code is not None:
                codes.append(code)
            if rejection is not None:
                rejected.append(rejection)
        return codes, rejected

    def line(self, line: bytes | None, mono_ns: int) -> tuple[CodeRead | None, Rejection | None]:
        """One complete line (``None``: one dropped as ``oversized``) through hygiene and
        hold-off, a QR code's AIM identifier taken off first (``strip_aim_qr``): a code to
        submit, a rejection, or neither (held off). A keyboard-mode
        scanner's lines (``drivers.hid_scanner``) come in here too."""
        if line is None:
            return None, self._reject(Rejection("oversized", self.source, mono_ns))
        line = strip_aim_qr(line)
        text, reason = check_payload(line, self.cfg.max_payload_chars)
        if text is None:
            return None, self._reject(Rejection(reason or "?", self.source, mono_ns, len(line)))
        if not self._holdoff.admit(text, mono_ns):
            return None, None
        self.stats.codes += 1
        return CodeRead(text, self.source, mono_ns, 0.0), None

    def reject(self, reason: str, mono_ns: int, length: int = 0) -> Rejection:
        """A line refused before hygiene (a key no layout maps), counted like the others."""
        return self._reject(Rejection(reason, self.source, mono_ns, length))

    def _reject(self, rejection: Rejection) -> Rejection:
        self.stats.rejected += 1
        self.stats.last_rejection = rejection.reason
        return rejection
