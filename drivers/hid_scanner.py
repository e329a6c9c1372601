"""A QR scanner in USB keyboard mode (HID), read from its Linux evdev node, never typed.

Most handheld scanners (and a GM65 on USB out of the box) enumerate as a USB keyboard: left
alone, each code is typed into whatever has focus (the kiosk screen, a guard's console) and
never reaches the decision loop. This driver opens the scanner's event node (use the stable
``/dev/input/by-id/usb-...-event-kbd``; ``/dev/input/eventN`` numbers change with the order
devices appear), takes it for itself with the ``EVIOCGRAB`` ioctl so no keystroke reaches any
other program, and turns the key events back into the code's text.

Records are the kernel's ``struct input_event``: a ``struct timeval`` (two ``long``), then
``__u16 type``, ``__u16 code``, ``__s32 value``: 24 bytes for a 64-bit process, 16 for a 32-bit
one (armhf Raspberry Pi OS, even on a 64-bit kernel: the kernel writes the reader's layout).
The size follows this interpreter's ``long`` (``NATIVE_LONG_BYTES``).

Keys are read with the US layout, the scanners' factory default: a scanner set to another
layout (German, French) types other keys for the same character, so a code comes out with
swapped letters (QWERTZ: y and z) or with keys this table lacks; the first fails the pass's
signature (``pass_malformed``/``pass_bad_signature``), the second is refused here as
``unknown_key``: set the scanner to the US layout (docs/wiring.md). Only key presses count:
autorepeat (value 2: the host took a delayed release for a held key) is not something the
scanner typed, and a key pressed while Ctrl, Alt or AltGr is held, or a key not in the table,
makes its whole line ``unknown_key``: the text is never guessed or repaired. Except Alt codes,
as Windows reads them (a scanner's "Alt mode", layout-independent, and how scanners type
characters no key has): Alt held alone, one to four keypad digits, Alt released is one
character (``alt_code_char``: a leading 0 is code page 1252, none 437); a code out of range
or garbled (another key or modifier meanwhile) refuses its line as ``unknown_key`` too. A
line ends at a key of ``end_keys`` (Enter; keypad Enter and Tab as configured; with Enter,
also Ctrl+M and Ctrl+J, CR and LF as a scanner types them: a CR LF suffix is Enter, then
Ctrl+J) and then takes the serial scanners' path (``SerialLinePipeline.line``): the same
hygiene, hold-off and rejections.

A reader that falls behind loses keys: the kernel keeps a small queue per reader (evdev's 64
events or 8 packets at least) and, full, drops what is unread and queues ``SYN_DROPPED`` and
the newest event. The line the drop cut is refused as ``overrun`` through its end (or a pause),
never stitched into one code with what follows; the events up to the next ``SYN_REPORT`` are
not read, and the keys held are then asked of the device (``EVIOCGKEY``), as the kernel's
documentation says a client must (Documentation/input/event-codes.rst); the answer holds
every key event so far, so those already read past that point are not read again.

Standard library only (``os``, ``fcntl``, ``struct``, ``select``): python-evdev would be a C
extension to build on the Pi for the three calls used here.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drivers import faultlog
from drivers.codes import Rejection
from drivers.faultlog import describe
from drivers.line_scanner import DEFAULT_RECONNECT, LineScanner
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.readers import DecoderConfig, HidEndKey
from kiosk.devices import CodeSink, ReaderFault

log = logging.getLogger(__name__)

#: linux/input-event-codes.h
EV_SYN = 0x00
EV_KEY = 0x01
SYN_REPORT = 0
#: The reader's queue overflowed: events were lost before this one (evdev.c).
SYN_DROPPED = 3
KEY_TAB = 15
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_LEFTALT = 56
KEY_CAPSLOCK = 58
KEY_KPENTER = 96
KEY_RIGHTCTRL = 97
KEY_RIGHTALT = 100
KEY_LEFTMETA = 125
KEY_RIGHTMETA = 126
#: _IOW('E', 0x90, int): take (1) or release (0) the device for this file descriptor alone.
EVIOCGRAB = 0x40044590
#: KEY_MAX + 1 bits: the keys held, as EVIOCGKEY gives them.
KEY_BITMAP_BYTES = (0x2FF + 1) // 8
#: _IOR-style _IOC(_IOC_READ, 'E', 0x18, KEY_BITMAP_BYTES): the keys held now.
EVIOCGKEY = (2 << 30) | (KEY_BITMAP_BYTES << 16) | (ord("E") << 8) | 0x18

END_KEY_CODES: dict[str, int] = {"enter": KEY_ENTER, "kpenter": KEY_KPENTER, "tab": KEY_TAB}
_SHIFTS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
#: Held, these make a key mean something else than its character (Ctrl+M, Alt+keypad, AltGr).
_CHORDS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT, KEY_LEFTMETA,
                     KEY_RIGHTMETA})  # fmt: skip
_CTRLS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})
#: KEY_M and KEY_J: with Ctrl, the control characters CR and LF.
_CTRL_CR_LF = frozenset({50, 36})
_ALTS = frozenset({KEY_LEFTALT, KEY_RIGHTALT})  # the US layout has no AltGr: both are Alt
#: The keypad's digit keys (NumLock on), for Alt codes.
KEYPAD_DIGITS: dict[int, str] = {82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6",
                                 71: "7", 72: "8", 73: "9"}  # fmt: skip
#: Digits of an Alt code at most: a leading 0 and three.
ALT_CODE_DIGITS = 4


def alt_code_char(digits: str) -> str | None:
    """The character Windows types for Alt held with ``digits`` on the keypad, or ``None``.

    A leading 0 is the ANSI code page (1252, which scanners' "Alt mode" sends: Alt+0233 é),
    none the OEM one (437: Alt+130 é). Windows takes a code past 255 modulo 256 and types
    some character; here it is refused, as is 0, a byte 1252 has no character for, and more
    than four digits: a garbled code is never read as another character."""
    if not 1 <= len(digits) <= ALT_CODE_DIGITS or not digits.isdigit():
        return None
    value = int(digits)
    if not 1 <= value <= 255:
        return None
    try:
        return bytes([value]).decode("cp1252" if digits[0] == "0" else "cp437")
    except UnicodeDecodeError:
        return None


def _us_layout() -> dict[int, tuple[str, str]]:
    """Key code -> (character, character with Shift) of the US layout."""
    rows = (
        (2, "1234567890-=", "!@#$%^&*()_+"),
        (16, "qwertyuiop[]", "QWERTYUIOP{}"),
        (30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
        (43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
    )
    keys = {code + i: (plain, shifted) for code, plains, shifts in rows
            for i, (plain, shifted) in enumerate(zip(plains, shifts, strict=True))}  # fmt: skip
    keys[57] = (" ", " ")  # KEY_SPACE
    # The keypad (some scanners are set to send digits from it): NumLock is taken as on.
    keypad = {71: "7", 72: "8", 73: "9", 74: "-", 75: "4", 76: "5", 77: "6", 78: "+", 79: "1",
              80: "2", 81: "3", 82: "0", 83: ".", 55: "*", 98: "/"}  # fmt: skip
    keys.update({code: (ch, ch) for code, ch in keypad.items()})
    # Not a line end here: a character hygiene refuses (control_chars), as on a serial line.
    keys[KEY_ENTER] = keys[KEY_KPENTER] = ("\r", "\r")
    keys[KEY_TAB] = ("\t", "\t")
    return keys


US_LAYOUT = _us_layout()
#: For the fake scanner: the key and whether Shift is held, per character.
US_KEYS: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in sorted(US_LAYOUT.items(), reverse=True):
    US_KEYS[_shifted] = (_code, True)
    US_KEYS[_plain] = (_code, False)


def event_struct(long_bytes: int) -> struct.Struct:
    """``struct input_event`` for a process whose ``long`` has ``long_bytes`` bytes."""
    if long_bytes == 8:
        return struct.Struct("=qqHHi")
    if long_bytes == 4:
        return struct.Struct("=iiHHi")
    raise ValueError(f"no input_event layout for a {long_bytes}-byte long")


NATIVE_LONG_BYTES = struct.calcsize("l")


@dataclass(frozen=True)
class KeyLine:
    """What a line end gives: a line (``data``), or a reason it was dropped."""

    data: bytes | None = None
    reason: str | None = None  # oversized | unknown_key


class KeyLineDecoder:
    """Key events in, typed lines out: US layout, Shift and Caps Lock, bounded per line."""

    def __init__(self, max_chars: int, end_keys: Iterable[str] = ("enter",)) -> None:
        self._max = max_chars
        self._ends = frozenset(END_KEY_CODES[k] for k in end_keys)
        self._buf = bytearray()
        self._chars = 0  # characters in _buf (an Alt code's may take more than one byte)
        self._shifts: set[int] = set()
        self._chords: set[int] = set()
        self._caps = False
        self._unknown = False
        self._oversized = False
        #: Keypad digits of an Alt code being typed (Alt held alone), else None.
        self._alt: str | None = None
        #: The line was cut by lost events (``cut``): it ends unread.
        self._cut = False

    @property
    def partial(self) -> int:
        """Keys of a line begun and not yet ended."""
        alt = len(self._alt) if self._alt is not None else 0
        return len(self._buf) + self._unknown + self._oversized + alt

    def reset(self) -> None:
        """Forget a partial line and the keys held (after a reopen they belong to nobody)."""
        self.drop()
        self._shifts.clear()
        self._chords.clear()
        self._caps = False

    def drop(self) -> None:
        """Forget a partial line (one whose end never came), an Alt code begun with it."""
        self._buf.clear()
        self._chars = 0
        self._unknown = self._oversized = self._cut = False
        self._alt = None

    @property
    def cut(self) -> bool:
        """Whether the line begun was cut by lost events (its tail is still to come)."""
        return self._cut

    def cut_line(self) -> None:
        """Keys were lost (the kernel's ``SYN_DROPPED``): the line begun, and its tail up to
        its end key, are no code; ``_end`` gives nothing for it."""
        self.drop()
        self._cut = True

    def resync(self, held: Iterable[int]) -> None:
        """The modifiers held are ``held`` (the device's word after lost events: a release
        lost with them would leave Shift held for every later code), and Caps Lock off as at
        ``reset``: a toggle the keys held cannot give back, a press lost with them would flip
        the case of every later code."""
        down = set(held)
        self._shifts = down & _SHIFTS
        self._chords = down & _CHORDS
        self._caps = False

    def key(self, code: int, value: int) -> KeyLine | None:
        """One ``EV_KEY`` event (value 1 press, 0 release, 2 autorepeat); a line at its end."""
        if code in _SHIFTS or code in _CHORDS:
            self._modifier(code, value)
            return None
        if value != 1:
            return None
        if code in self._ends and not self._chords:
            return self._end()
        if code in _CTRL_CR_LF and self._ctrl_alone() and KEY_ENTER in self._ends:
            # CR and LF typed as Ctrl+M and Ctrl+J (a CR LF suffix: Enter, then Ctrl+J) end a
            # line as they do on a serial line, when Enter does; an empty line is no code.
            return self._end()
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if self._alt is not None and code in KEYPAD_DIGITS:
            self._alt += KEYPAD_DIGITS[code]
            return None
        chars = US_LAYOUT.get(code)
        if chars is None or self._chords:
            self._unknown = True
            return None
        plain, shifted = chars
        shift = bool(self._shifts) != (self._caps and plain.isalpha())
        self._add(shifted if shift else plain)
        return None

    def _ctrl_alone(self) -> bool:
        return bool(self._chords) and self._chords <= _CTRLS and not self._shifts

    def _modifier(self, code: int, value: int) -> None:
        """Shift, Ctrl, Alt or Meta pressed or released; an Alt code begins with Alt pressed
        alone and is a character once no Alt is held. Anything else pressed meanwhile (Ctrl,
        Shift, a key not a keypad digit) makes it garbled: its line is refused."""
        held = self._shifts if code in _SHIFTS else self._chords
        if value == 1 and code in _ALTS and not self._chords and not self._shifts:
            self._alt = ""
        elif value == 1 and self._alt is not None and code not in _ALTS:
            self._unknown = True
        (held.add if value else held.discard)(code)
        if value or self._alt is None or self._chords & _ALTS:
            return
        digits, self._alt = self._alt, None
        if self._chords or self._shifts:
            self._unknown = True
        elif digits:
            char = alt_code_char(digits)
            if char is None:
                self._unknown = True
            else:
                self._add(char)

    def _add(self, char: str) -> None:
        if self._oversized:
            return
        self._buf += char.encode("utf-8")
        self._chars += 1
        if self._chars > self._max:
            self._buf.clear()
            self._chars = 0
            self._oversized = True

    def _end(self) -> KeyLine | None:
        line: KeyLine | None
        if self._cut:
            line = None  # said when the keys were lost
        elif self._oversized:
            line = KeyLine(reason="oversized")
        elif self._unknown:
            line = KeyLine(reason="unknown_key")
        else:
            line = KeyLine(data=bytes(self._buf)) if self._buf else None
        self.drop()
        return line


def ioctl_grab(fd: int, on: bool) -> None:
    """Take (or give back) the input device behind ``fd`` for this descriptor alone."""
    fcntl.ioctl(fd, EVIOCGRAB, 1 if on else 0)


def ioctl_keys_down(
    fd: int, *, ioctl: Callable[[int, int, bytes], bytes] = fcntl.ioctl
) -> frozenset[int]:
    """The keys held now on the input device behind ``fd`` (``EVIOCGKEY``: a bitmap, key
    ``n`` bit ``n % 8`` of byte ``n // 8`` on a little-endian machine); ``OSError`` if it is
    no input device."""
    bits = ioctl(fd, EVIOCGKEY, bytes(KEY_BITMAP_BYTES))
    return frozenset(n for n in range(len(bits) * 8) if bits[n // 8] >> (n % 8) & 1)


UNTERMINATED_HINT = (
    "keys without a line end: set the scanner to end each code with Enter"
    " (or add its key to end_keys, docs/wiring.md)"
)

UNKNOWN_KEYS_HINT = (
    "codes with keys the US layout has no character for: set the scanner to the US keyboard"
    " layout, without Alt or Ctrl key codes (docs/wiring.md)"
)


#: What an error opening the scanner's node means at the gate, and its fix.
OPEN_HINTS = {
    errno.ENOENT: "no such device (scanner unplugged? ls /dev/input/by-id/)",
    errno.EACCES: (
        "permission denied (the kiosk user needs the group input: sudo ./scripts/install)"
    ),
    errno.EPERM: (
        "blocked by the service's device policy (DeviceAllow=char-input in kiosk.service)"
    ),
}


def open_error(device: str, exc: OSError) -> str:
    """Why ``device`` cannot be opened, and what fixes it."""
    return faultlog.open_error(device, exc, OPEN_HINTS)


def grab_error(device: str, exc: OSError) -> str:
    """Why ``device`` cannot be taken for the kiosk alone, and what fixes it."""
    if exc.errno == errno.EBUSY:
        return (
            f"cannot grab {device}: another program holds it (a second kiosk service,"
            " or evtest --grab?)"
        )
    if exc.errno in (errno.ENOTTY, errno.EINVAL):
        return (
            f"cannot grab {device}: not an input event device (name its"
            " /dev/input/by-id/...-event-kbd node)"
        )
    return f"cannot grab {device}: {exc.strerror or describe(exc)}"


class HidScanner(LineScanner[int]):
    """A ``CodeReader`` for a keyboard-mode scanner on an evdev node."""

    #: A partial line untouched this long is a line end that never comes.
    UNTERMINATED_AFTER_NS = 500_000_000
    #: Lines in a row refused as ``unknown_key``: the scanner is set so (``UNKNOWN_KEYS_HINT``).
    UNKNOWN_IN_A_ROW = 3
    #: Records read at most per read (a code is ~4 records a character).
    READ_RECORDS = 256

    def __init__(
        self,
        device: str,
        clock: Clock,
        *,
        name: str = "scanner",
        decoder_cfg: DecoderConfig | None = None,
        end_keys: Iterable[HidEndKey] = ("enter", "kpenter"),
        reconnect: Backoff = DEFAULT_RECONNECT,
        grab: Callable[[int, bool], None] = ioctl_grab,
        keys_down: Callable[[int], frozenset[int]] = ioctl_keys_down,
        read: Callable[[int, int], bytes] = os.read,
        long_bytes: int = NATIVE_LONG_BYTES,
        on_rejection: Callable[[Rejection], None] | None = None,
    ) -> None:
        super().__init__(name, clock, decoder_cfg, reconnect, on_rejection, log)
        self.device = device
        self.keys = KeyLineDecoder(self.decoder_cfg.max_payload_chars, end_keys)
        self._grab = grab
        self._keys_down = keys_down
        self._read = read
        self._event = event_struct(long_bytes)
        self._last_key_ns = 0
        self._unknown_lines = 0  # in a row
        self._held = b""  # the start of a record torn across reads
        self._dropping = False  # events lost: those up to the next SYN_REPORT are not read
        self._poller = select.poll()

    @property
    def where(self) -> str:
        return self.device

    def _open(self) -> int:
        """The node, opened and grabbed; ``ReaderFault`` naming the cause and the fix."""
        try:
            fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ReaderFault(open_error(self.device, exc)) from None
        try:
            self._grab(fd, True)
        except OSError as exc:
            os.close(fd)
            raise ReaderFault(grab_error(self.device, exc)) from None
        return fd

    def _close(self, fd: int) -> None:
        try:
            self._grab(fd, False)
        except OSError:
            pass  # unplugged: nothing left to release
        try:
            os.close(fd)
        except OSError:
            pass

    def _begin(self, fd: int) -> None:
        self.keys.reset()
        self._held = b""
        self._dropping = False
        # poll, not select: a busy daemon reopens the node on a descriptor past 1024.
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        if self._wake_fd is not None:  # a stop ends the wait at once
            self._poller.register(self._wake_fd, select.POLLIN)

    def _drop_partial(self) -> int:
        length = 0 if self.keys.cut else self.keys.partial  # a cut line is said already
        self.keys.drop()
        return length

    def _step(self, fd: int, sink: CodeSink, wait_ms: int) -> bool:
        size = self._event.size
        if all(ready != fd for ready, _ in self._poller.poll(wait_ms)):
            self._expire_partial()
            return False
        try:
            data = self._read(fd, size * self.READ_RECORDS)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise ReaderFault(f"{self.device} is gone (unplugged)") from None
            raise ReaderFault(describe(exc)) from None
        if not data:  # end of file: no evdev node does this; the writer is gone
            raise ReaderFault(f"{self.device} is gone (unplugged)")
        self.bytes_read += len(data)
        data = self._held + data
        whole = len(data) - len(data) % size
        self._held = data[whole:]
        synced = False  # the device's key state taken: this read's keys are in it
        for _sec, _usec, kind, code, value in self._event.iter_unpack(data[:whole]):
            if kind == EV_SYN and code == SYN_DROPPED:
                self._overrun()
            elif self._dropping:
                if kind == EV_SYN and code == SYN_REPORT:
                    synced = self._resync(fd)
            elif kind == EV_KEY and not synced:
                self._key(code, value, sink)
        return True

    def _overrun(self) -> None:
        """The kernel dropped events this reader had not read: the line they cut is refused
        (once, as a code the person scans again), and nothing is read up to the next
        ``SYN_REPORT`` (the newest event's packet, begun before the drop)."""
        now_ns = self._clock.monotonic_ns()
        self._last_key_ns = now_ns
        self._dropping = True
        if not self.keys.cut:
            self._rejected(self.pipeline.reject("overrun", now_ns, self.keys.partial))
        self.keys.cut_line()

    def _resync(self, fd: int) -> bool:
        """After lost events: the modifiers held as the device says (none if it cannot);
        whether it said. Its answer is the state after every key event made so far: the
        kernel empties its queue of them (``__evdev_flush_queue``), and those already read
        past this point are in it too, so they are not read again (a Shift press read and its
        release flushed would leave Shift held). The line they belong to is cut anyway."""
        self._dropping = False
        try:
            held = self._keys_down(fd)
        except OSError:
            self.keys.resync(())
            return False
        self.keys.resync(held)
        return True

    def _key(self, code: int, value: int, sink: CodeSink) -> None:
        now_ns = self._clock.monotonic_ns()
        self._last_key_ns = now_ns
        line = self.keys.key(code, value)
        if line is None:
            return
        self._line_ended(unknown=line.reason == "unknown_key")
        if line.reason == "unknown_key":
            self._rejected(self.pipeline.reject("unknown_key", now_ns))
            return
        read, rejection = self.pipeline.line(line.data, now_ns)
        if rejection is not None:
            self._rejected(rejection)
        if read is not None:
            sink(read)

    def _expire_partial(self) -> None:
        """A scanner set to send no Enter would otherwise look fine while every code is
        lost: say so until a line ends."""
        now_ns = self._clock.monotonic_ns()
        length = self.keys.partial
        cut = self.keys.cut
        if not (length or cut) or now_ns - self._last_key_ns < self.UNTERMINATED_AFTER_NS:
            return
        self.keys.drop()
        if cut:  # a line cut by lost keys whose end was lost too: said at the overrun
            return
        self._rejected(self.pipeline.reject("unterminated", now_ns, length))
        if self._health.state == "ok":
            self._set_health("degraded", UNTERMINATED_HINT)
            self.faults.fault(UNTERMINATED_HINT)

    def _line_ended(self, *, unknown: bool) -> None:
        """A line ended: the scanner sends line ends; and whether every line of late had keys
        no character is typed by (a scanner in Alt+keypad mode never gets a decision on the
        screen: the guard sees why on the Devices page), until a line reads."""
        self._unknown_lines = self._unknown_lines + 1 if unknown else 0
        if self._unknown_lines >= self.UNKNOWN_IN_A_ROW and self._health.state == "ok":
            self._set_health("degraded", UNKNOWN_KEYS_HINT)
            self.faults.fault(UNKNOWN_KEYS_HINT)
            return
        hints = (UNTERMINATED_HINT,) if unknown else (UNTERMINATED_HINT, UNKNOWN_KEYS_HINT)
        if self._health.state == "degraded" and self._health.detail in hints:
            self._set_health("ok", "")
            self.faults.recovered(f"lines read on {self.device}")
