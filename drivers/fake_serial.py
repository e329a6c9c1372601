"""A fake GM65-class scanner module on a real pseudo-terminal pair.

The scanner driver opens a real tty path with pyserial, so termios settings, partial reads,
hang-up on unplug and reconnects all run through the same kernel paths as a USB-CDC module.
``port`` is a symlink (like ``/dev/serial/by-id/...``) that survives ``unplug()``/``replug()``
even though each plug gets a new ``/dev/pts/N``.

Faults: ``send_raw(b"...")`` for garbage bytes (baud mismatch, electrical noise), ``unplug()``
(the master side closes: the driver's read sees a hang-up), ``replug()``.

Command-trigger mode: a GM65 sent ``7E 00 08 01 00 02 01 AB CD`` answers ``02 00 00 01 00 33
31`` and then scans; ``queue_code()`` holds a code until the next trigger arrives.
"""

from __future__ import annotations

import contextlib
import os
import select
import tempfile
import threading
import tty
from pathlib import Path

GM65_TRIGGER = bytes.fromhex("7E 00 08 01 00 02 01 AB CD")
GM65_TRIGGER_ACK = bytes.fromhex("02 00 00 01 00 33 31")


class FakeGM65:
    """A scriptable scanner behind a pty. Use as a context manager or call ``close()``."""

    def __init__(self, link_dir: str | Path | None = None, terminator: bytes = b"\r\n") -> None:
        self._tmp = None
        if link_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fake-gm65-")
            link_dir = self._tmp.name
        self.port = str(Path(link_dir) / "gm65")
        self.terminator = terminator
        self.triggers = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self._queued: list[bytes] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replug()

    # -- plugging ------------------------------------------------------------------------
    def replug(self) -> None:
        """Plug the module in: a fresh pty pair behind the stable ``port`` symlink."""
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
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="fake-gm65", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Pull the cable: the pty closes, the driver's next read sees a hang-up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
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

    def queue_code(self, text: str | bytes) -> None:
        """In command-trigger mode: send this code after the next trigger command."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self._lock:
            self._queued.append(data)

    def _serve(self) -> None:
        buf = b""
        while not self._stop.is_set():
            master = self._master
            if master is None:
                return
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(master, 256)
            except OSError:
                return  # nobody has the port open right now, or unplugged
            buf = (buf + chunk)[-64:]
            while GM65_TRIGGER in buf:
                buf = buf.split(GM65_TRIGGER, 1)[1]
                self.triggers += 1
                with self._lock:
                    code = self._queued.pop(0) if self._queued else None
                reply = GM65_TRIGGER_ACK + (code + self.terminator if code else b"")
                with contextlib.suppress(OSError):
                    self.send_raw(reply)
