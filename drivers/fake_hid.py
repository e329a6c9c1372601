"""A fake keyboard-mode scanner: real ``struct input_event`` records through a FIFO.

The driver (``drivers.hid_scanner.HidScanner``) opens ``node`` as it would open
``/dev/input/by-id/...-event-kbd`` and reads the same bytes a USB scanner's evdev node gives:
a press (1) and a release (0) per key, Shift held around capitals and symbols, each key
followed by a ``SYN_REPORT``, in the record layout of a 64-bit (24 bytes) or a 32-bit (16
bytes) process. A FIFO is no input device, so taking it for the kiosk alone is the fake's
``grab`` (the driver's seam): it records who holds it and can be told another program does.

A scanner in "Alt mode" types each character as Alt+keypad digits: ``scan(text,
alt_codes=True)``.

Faults: ``press(code)`` for a key no layout maps, ``autorepeat=True`` on ``type_text`` (the
host taking a delayed release for a held key), ``send_raw`` for torn records, ``unplug()``
(the node vanishes; the driver's read sees the end, as a real node gives ``ENODEV``) and
``replug()``, ``hold_grab()`` (``EBUSY``: another program took the device), ``overrun()``
(the kernel's ``SYN_DROPPED``: the driver fell behind and lost events).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from secrets import token_hex

from drivers.hid_scanner import (
    END_KEY_CODES,
    EV_KEY,
    EV_SYN,
    KEY_LEFTALT,
    KEY_LEFTSHIFT,
    KEYPAD_DIGITS,
    NATIVE_LONG_BYTES,
    SYN_DROPPED,
    SYN_REPORT,
    US_KEYS,
    HidScanner,
    event_struct,
)
from drivers.line_scanner import DEFAULT_RECONNECT
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.readers import DecoderConfig, HidEndKey
from kiosk.devices import CodeSink

#: The node's name as udev makes it for a typical handheld scanner.
NODE_NAME = "usb-Fake_Barcode_Scanner-event-kbd"


class FakeHidScanner:
    """A scriptable keyboard-mode scanner behind a FIFO. A context manager, or ``close()``."""

    def __init__(
        self,
        link_dir: str | Path | None = None,
        *,
        long_bytes: int = NATIVE_LONG_BYTES,
        end_key: str = "enter",
        plugged: bool = True,
    ) -> None:
        # Without a folder, one of our own is made at the first plug, removed by ``close()``.
        self._own_dir: Path | None = None
        if link_dir is None:
            link_dir = self._own_dir = Path(tempfile.gettempdir()) / f"fake-hid-{token_hex(8)}"
        self.node = str(Path(link_dir) / NODE_NAME)
        self.end_key = end_key
        self._event = event_struct(long_bytes)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # a full FIFO blocks a write, never a grab
        self._fd: int | None = None
        #: Descriptors that hold the device now (the driver's), and every grab and release.
        self.holders: set[int] = set()
        self.grabs: list[tuple[int, bool]] = []
        self._held_elsewhere = False
        #: Bytes written into the node in all (replay pumps the driver until it read them).
        self.sent = 0
        if plugged:
            self.replug()

    # -- plugging ------------------------------------------------------------------------
    def replug(self) -> None:
        """Plug the scanner in: a fresh FIFO at ``node``, kept open for writing by us."""
        with self._lock:
            if self._fd is not None:
                return
            if self._own_dir is not None:
                self._own_dir.mkdir(mode=0o700, exist_ok=True)
            hidden = f"{self.node}.{os.getpid()}.new"
            os.mkfifo(hidden, 0o600)
            # O_RDWR never blocks on a FIFO: the node is readable the moment it appears.
            self._fd = os.open(hidden, os.O_RDWR | os.O_CLOEXEC)
            os.replace(hidden, self.node)

    def unplug(self) -> None:
        """Pull the cable: the node vanishes and its reader sees the end."""
        with self._write_lock, self._lock:
            fd, self._fd = self._fd, None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.node)
            self.holders.clear()
        if fd is not None:
            os.close(fd)

    @property
    def plugged(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        self.unplug()
        if self._own_dir is not None:
            with contextlib.suppress(OSError):
                self._own_dir.rmdir()

    def __enter__(self) -> FakeHidScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- EVIOCGRAB -----------------------------------------------------------------------
    def grab(self, fd: int, on: bool) -> None:
        """The driver's grab seam: ``EBUSY`` while another program holds the device."""
        with self._lock:
            if on and (self._held_elsewhere or (self.holders and fd not in self.holders)):
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            self.grabs.append((fd, on))
            (self.holders.add if on else self.holders.discard)(fd)

    def hold_grab(self, held: bool = True) -> None:
        """Another program (evtest --grab, a second daemon) holds the device, or lets go."""
        self._held_elsewhere = held

    @property
    def grabbed(self) -> bool:
        return bool(self.holders)

    def stand_in_for(self, reader: HidScanner) -> None:
        """Be the device ``reader`` opens (replay of a config naming a real node): its node
        and its grab are this fake's."""
        reader.device = self.node
        reader._grab = self.grab

    # -- typing --------------------------------------------------------------------------
    def scan(self, text: str, *, autorepeat: bool = False, alt_codes: bool = False) -> None:
        """The scanner reads a code and types it, then its end key; ``alt_codes``: each
        character as a scanner in "Alt mode" types it (``type_alt_codes``)."""
        if alt_codes:
            self.type_alt_codes(text)
        else:
            self.type_text(text, autorepeat=autorepeat)
        self.press(END_KEY_CODES[self.end_key])

    def type_alt_codes(self, text: str) -> None:
        """``text`` as Alt+keypad codes: Alt held, 0 and the character's code page 1252
        byte in decimal on the keypad, Alt released. A character 1252 lacks: ``ValueError``."""
        keypad = {digit: code for code, digit in KEYPAD_DIGITS.items()}
        records = bytearray()
        for ch in text:
            try:
                byte = ch.encode("cp1252")[0]
            except UnicodeEncodeError:
                raise ValueError(f"code page 1252 has no byte for {ch!r}") from None
            records += self._record(EV_KEY, KEY_LEFTALT, 1) + self._syn()
            for digit in f"0{byte:03d}":
                records += self._key(keypad[digit], autorepeat=False)
            records += self._record(EV_KEY, KEY_LEFTALT, 0) + self._syn()
        self.send_raw(bytes(records))

    def type_text(self, text: str, *, autorepeat: bool = False) -> None:
        """``text`` typed on the US layout, no end key; ``autorepeat`` adds a value-2 event
        after each press. A character the layout cannot type is a ``ValueError``."""
        records = bytearray()
        for ch in text:
            if ch not in US_KEYS:
                raise ValueError(f"the US layout has no key for {ch!r}")
            code, shift = US_KEYS[ch]
            if shift:
                records += self._record(EV_KEY, KEY_LEFTSHIFT, 1) + self._syn()
            records += self._key(code, autorepeat=autorepeat)
            if shift:
                records += self._record(EV_KEY, KEY_LEFTSHIFT, 0) + self._syn()
        self.send_raw(bytes(records))

    def press(self, code: int, *, autorepeat: bool = False) -> None:
        """One key pressed and released (any code: one no layout maps, an end key)."""
        self.send_raw(self._key(code, autorepeat=autorepeat))

    def send_events(self, events: list[tuple[int, int, int]]) -> None:
        """``(type, code, value)`` records exactly as given."""
        self.send_raw(b"".join(self._record(*event) for event in events))

    def overrun(self, newest: tuple[int, int, int] | None = None) -> None:
        """The reader fell behind and its queue overflowed: the kernel drops what it had not
        read (here: what the test does not send) and queues ``SYN_DROPPED``, then the newest
        event (``newest``: its packet's ``SYN_REPORT`` is in what is sent next)."""
        events = [(EV_SYN, SYN_DROPPED, 0)]
        if newest is not None:
            events.append(newest)
        self.send_events(events)

    def send_raw(self, data: bytes) -> None:
        """Bytes into the node as given (torn records included)."""
        with self._write_lock:
            fd = self._fd
            if fd is None:
                raise OSError("fake scanner is unplugged")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            self.sent += len(data)

    @property
    def record_size(self) -> int:
        return self._event.size

    def _key(self, code: int, *, autorepeat: bool) -> bytes:
        out = self._record(EV_KEY, code, 1) + self._syn()
        if autorepeat:
            out += self._record(EV_KEY, code, 2) + self._syn()
        return out + self._record(EV_KEY, code, 0) + self._syn()

    def _syn(self) -> bytes:
        return self._record(EV_SYN, SYN_REPORT, 0)

    def _record(self, kind: int, code: int, value: int) -> bytes:
        return self._event.pack(0, 0, kind, code, value)


class FakeHidReader(HidScanner):
    """The driver on a fake scanner (config ``type = "fake_hid"``): the demo types into
    ``fake`` (``fake.scan(text)``) and the codes take the driver's whole path."""

    def __init__(
        self,
        clock: Clock,
        *,
        name: str = "scanner",
        decoder_cfg: DecoderConfig | None = None,
        end_keys: Iterable[HidEndKey] = ("enter", "kpenter"),
        reconnect: Backoff = DEFAULT_RECONNECT,
    ) -> None:
        ends = list(end_keys)
        # Plugged in when the reader starts: building the devices does no I/O.
        self.fake = FakeHidScanner(end_key=ends[0], plugged=False)
        super().__init__(
            self.fake.node,
            clock,
            name=name,
            decoder_cfg=decoder_cfg,
            end_keys=ends,
            grab=self.fake.grab,
            reconnect=reconnect,
        )

    def start(self, sink: CodeSink) -> None:
        self.fake.replug()
        super().start(sink)

    def stop(self) -> None:
        super().stop()
        self.fake.close()
