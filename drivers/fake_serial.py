"""A fake GM65-class scanner module on a real pseudo-terminal pair.

The scanner driver opens a real tty path with pyserial, so termios settings, partial reads,
hang-up on unplug and reconnects all run through the same kernel paths as a USB-CDC module.
``port`` is a symlink (like ``/dev/serial/by-id/...``) that survives ``unplug()``/``replug()``
even though each plug gets a new ``/dev/pts/N``.

Faults: ``send_raw(b"...")`` for garbage bytes (baud mismatch, electrical noise), ``unplug()``
(the master side closes: the driver's read sees a hang-up), ``replug()``.

Command-trigger mode: a GM65 sent ``7E 00 08 01 00 02 01 AB CD`` answers ``02 00 00 01 00 33
31`` and then scans; ``queue_code()`` holds a code until the next trigger arrives.

Set-up commands (``drivers.gm65``): the fake keeps the module's zone table (``zones``), answers
zone reads and writes with the manual's reply frames, checks each command's CRC (or the
manual's ``AB CD`` placeholder) and ignores a frame whose CRC is wrong, as the module does;
"save" copies the zones to ``saved``. Writing the tail zone changes the terminator it sends.
``mute()`` makes it answer nothing (a module in USB keyboard mode, or the wrong baud rate).
"""

from __future__ import annotations

import contextlib
import os
import select
import tempfile
import threading
import tty
from pathlib import Path

from drivers import gm65
from drivers.worker import Worker

GM65_TRIGGER = bytes.fromhex("7E 00 08 01 00 02 01 AB CD")
GM65_TRIGGER_ACK = bytes.fromhex("02 00 00 01 00 33 31")


class FakeGM65:
    """A scriptable scanner behind a pty. Use as a context manager or call ``close()``."""

    #: How long the module waits for a command before it looks at its plug again.
    POLL_MS = 50

    def __init__(self, link_dir: str | Path | None = None, terminator: bytes = b"\r\n") -> None:
        self._tmp = None
        if link_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fake-gm65-")
            link_dir = self._tmp.name
        self.port = str(Path(link_dir) / "gm65")
        self.terminator = terminator
        self.triggers = 0
        #: Bytes sent to the driver in all (replay pumps the driver until it read them).
        self.sent = 0
        # Factory-like zones: manual mode with standard light and aimer, TTL serial, no tail.
        self.zones: dict[int, int] = {
            gm65.ZONE_MODE: 0x14,
            gm65.ZONE_OUTPUT: 0xA0,
            gm65.ZONE_TAIL: 0x60,
        }
        self.saved: dict[int, int] | None = None
        self.commands: list[bytes] = []
        self.muted = False
        #: Set at each trigger command received (tests wait on it instead of sleeping).
        self.trigger_seen = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self._queued: list[bytes] = []
        self._worker = Worker("fake-gm65")
        self.replug()

    # -- plugging ------------------------------------------------------------------------
    def replug(self) -> None:
        """Plug the module in: a fresh pty pair behind the stable ``port`` symlink. Undone
        when its loop cannot start (``RuntimeError``: the last stop gave up on it)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)
            self._master, self._slave = master, slave
            link = Path(self.port)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(os.ttyname(slave))
        try:
            self._worker.start(self._serve)
        except RuntimeError:  # the unplug's stop gave up on its loop: still unplugged
            self._pull()
            raise

    def unplug(self) -> None:
        """Pull the cable: the pty closes, the driver's next read sees a hang-up."""
        self._worker.stop()
        self._pull()

    def _pull(self) -> None:
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
            with contextlib.suppress(FileNotFoundError):
                Path(self.port).unlink()
        for fd in (slave, master):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def close(self) -> None:
        self.unplug()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FakeGM65:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scanning ------------------------------------------------------------------------
    def scan(self, text: str | bytes) -> None:
        """The module reads a code and sends it, terminated like the real module."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.send_raw(data + self.terminator)

    def send_raw(self, data: bytes) -> None:
        """Bytes on the wire exactly as given (garbage, partial lines, no terminator)."""
        with self._lock:
            master = self._master
            if master is None:
                raise OSError("fake GM65 is unplugged")
            view = memoryview(data)
            while view:
                n = os.write(master, view)
                view = view[n:]
            self.sent += len(data)

    def queue_code(self, text: str | bytes) -> None:
        """In command-trigger mode: send this code after the next trigger command."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self._lock:
            self._queued.append(data)

    def mute(self) -> None:
        """Answer no command (codes scanned are still sent)."""
        self.muted = True

    def _serve(self) -> None:
        buf = b""
        wake = self._worker.wake_fd  # readable once unplugged: the wait ends at once
        while not self._worker.stopping.is_set():
            master = self._master
            if master is None:
                return
            try:
                # poll, not select: a test may plug it in past descriptor 1024.
                poller = select.poll()
                poller.register(master, select.POLLIN)
                if wake is not None:
                    poller.register(wake, select.POLLIN)
                if all(ready != master for ready, _ in poller.poll(self.POLL_MS)):
                    continue
                chunk = os.read(master, 256)
            except OSError:
                return  # nobody has the port open right now, or unplugged
            buf = self._handle_commands((buf + chunk)[-256:])

    def _handle_commands(self, buf: bytes) -> bytes:
        """Answer every complete command frame in ``buf``; returns what is left over."""
        while True:
            start = buf.find(gm65.HEADER)
            if start < 0:
                return buf[-1:]  # a 7E at the very end may start a frame
            frame_len = 8 + buf[start + 3] if len(buf) >= start + 4 else None
            if frame_len is None or len(buf) < start + frame_len:
                return buf[start:]
            frame, buf = buf[start : start + frame_len], buf[start + frame_len :]
            reply = self._answer(frame)
            if reply and not self.muted:
                with contextlib.suppress(OSError):
                    self.send_raw(reply)

    def _answer(self, frame: bytes) -> bytes:
        kind, length = frame[2], frame[3]
        address = int.from_bytes(frame[4:6], "big")
        data, crc = frame[6 : 6 + length], frame[6 + length :]
        if crc != b"\xab\xcd" and int.from_bytes(crc, "big") != gm65.crc16(frame[2:-2]):
            return b""  # a frame with a wrong CRC is ignored
        self.commands.append(frame)
        if kind == gm65.TYPE_READ:
            return gm65.reply(0, bytes(self.zones.get(address + i, 0) for i in range(data[0])))
        if kind == gm65.TYPE_SAVE:
            self.saved = dict(self.zones)
            return GM65_TRIGGER_ACK
        if kind != gm65.TYPE_WRITE:
            return gm65.reply(1, b"")
        if address == 0x0002 and data == b"\x01":
            self.triggers += 1
            self.trigger_seen.set()
            with self._lock:
                code = self._queued.pop(0) if self._queued else None
            return GM65_TRIGGER_ACK + (code + self.terminator if code else b"")
        for i, value in enumerate(data):
            self.zones[address + i] = value
        if address <= gm65.ZONE_TAIL < address + length:
            tails = (b"\r", b"\r\n", b"\t", b"")
            self.terminator = tails[(self.zones[gm65.ZONE_TAIL] >> 5) & 0b11]
        return GM65_TRIGGER_ACK
