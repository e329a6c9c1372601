"""GM65-class QR scanner modules over UART or USB-CDC, through pyserial.

The module decodes by itself and sends each code as a text line (factory default 9600 8N1,
terminated by CR or CR LF depending on its setting; both are accepted). We trust none of it:
the bytes go through the same hygiene and hold-off as camera codes (``drivers.codes``).

Unplugging a USB-CDC module makes the next read fail (a hang-up: readable but no data) and
the device node disappears; the worker closes, reports ``fault`` and reopens the same path
with a doubling wait capped at ``reconnect_max_s``; plugging it back in recovers by itself.
Use the stable ``/dev/serial/by-id/...`` path: ``ttyACM0`` may come back as ``ttyACM1``.

Optional command-trigger mode (``trigger``): the module only scans when told to. The GM65
acknowledges each trigger with ``02 00 00 01 00 33 31`` *in the same byte stream* as the
code, without a line terminator, so the driver strips that exact sequence before splitting
lines; otherwise the acknowledgement would be glued to the front of the next code. Those
acknowledgements are also the only sign of life of a module in this mode: the port stays open
whether or not anything answers, so triggers going unanswered (``MISSED_ACKS_FAULT`` in a
row: a module switched back to keyboard mode, at another baud rate, or hung) are a ``fault``
until it answers again.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable
from typing import Any

from drivers.codes import Rejection
from drivers.faultlog import describe
from drivers.line_scanner import DEFAULT_RECONNECT, LineScanner
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeSink, ReaderFault

log = logging.getLogger(__name__)

GM65_TRIGGER_ACK = bytes.fromhex("02 00 00 01 00 33 31")

UNTERMINATED_HINT = (
    "data without a line end: set the module to end each code with CR"
    " (kiosk scanner setup, docs/wiring.md)"
)


def strip_ack(buf: bytes) -> tuple[bytes, bytes]:
    """``(clean, held)``: ``buf`` without trigger acks; ``held`` may be the start of one."""
    clean = buf.replace(GM65_TRIGGER_ACK, b"")
    for n in range(min(len(GM65_TRIGGER_ACK) - 1, len(clean)), 0, -1):
        if clean.endswith(GM65_TRIGGER_ACK[:n]):
            return clean[:-n], clean[-n:]
    return clean, b""


class _PortIO:
    """Reads and writes of an open pyserial port that wait with ``poll()``.

    pyserial's own ``read()`` and ``write()`` (with a write timeout) wait with ``select()``,
    which refuses a descriptor numbered past 1024 ("filedescriptor out of range"): a busy
    daemon (LAN connections, ``LimitNOFILE=8192``) reopening a re-plugged scanner would read
    nothing for good. A POSIX port (one with its descriptor ``fd``) is read and written here,
    through the descriptor pyserial opened non-blocking; any other (``loop://``, a test's
    port) through its own methods, its read ended by a stop through its ``cancel_read``
    (``cancel``: the worker's ``wake_also``)."""

    #: Bytes read at most per read (a line is bounded by the pipeline anyway).
    READ_BYTES = 4096

    def __init__(self, ser: Any, wake_fd: int | None = None) -> None:
        self._ser = ser
        fd = getattr(ser, "fd", None)
        self._fd: int | None = fd if isinstance(fd, int) else None
        self._poll: select.poll | None = None
        if self._fd is not None:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
            if wake_fd is not None:  # readable once the reader is stopped: the wait ends
                self._poll.register(wake_fd, select.POLLIN)

    def read(self, wait_ms: int) -> bytes:
        """What has come, after waiting ``wait_ms`` at most; ``OSError`` when the port is gone.
        (A port that is not POSIX waits as long as its own read timeout says, or until
        ``cancel``.)"""
        if self._fd is None or self._poll is None:
            return bytes(self._ser.read(max(1, self._ser.in_waiting)))
        if all(ready != self._fd for ready, _ in self._poll.poll(wait_ms)):
            return b""  # nothing came, or the reader is stopped
        try:
            data = os.read(self._fd, self.READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:  # readable with nothing to read: a USB-CDC module unplugged
            raise OSError("device reports readiness to read but returned no data (unplugged?)")
        return data

    def cancel(self) -> None:
        """End the wait of a read of a port that is not POSIX, now or the next one begun (a
        POSIX port's ends through the wake-up pipe); a port that cannot, or is closed, waits
        out its timeout. Never raises (a stop calls it from another thread)."""
        cancel = getattr(self._ser, "cancel_read", None)
        if self._fd is None and callable(cancel):
            try:
                cancel()
            except Exception:  # noqa: BLE001 - a port closed or full: its read ends anyway
                log.debug("a stop could not cancel the read of a port", exc_info=True)

    def write(self, data: bytes) -> None:
        """``data`` sent now, or ``OSError`` (a port that takes no byte is not answering)."""
        if self._fd is None:
            self._ser.write(data)
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]


class SerialScanner(LineScanner[Any]):
    """A ``CodeReader`` for a serial scanner module."""

    #: Triggers sent while this many before them went unacknowledged: the module is not there.
    MISSED_ACKS_FAULT = 3
    #: A partial line untouched this long is a line end that never comes (see ``_expire_partial``).
    UNTERMINATED_AFTER_NS = 500_000_000

    def __init__(
        self,
        port: str,
        clock: Clock,
        *,
        name: str = "scanner",
        baudrate: int = 9600,
        decoder_cfg: DecoderConfig | None = None,
        trigger: bytes | None = None,
        trigger_interval_s: float = 1.0,
        reconnect: Backoff = DEFAULT_RECONNECT,
        serial_factory: Callable[..., Any] | None = None,
        on_rejection: Callable[[Rejection], None] | None = None,
    ) -> None:
        super().__init__(name, clock, decoder_cfg, reconnect, on_rejection, log)
        self.port = port
        self._baudrate = baudrate
        self._trigger = trigger
        self._trigger_ns = int(trigger_interval_s * 1e9)
        self._factory = serial_factory
        self._serial: Any = None
        self._io: _PortIO
        self._held = b""
        self._unanswered = 0
        self._next_trigger_ns = 0

    @property
    def where(self) -> str:
        return self.port

    def _no_answer(self, unanswered: int) -> None:
        detail = (
            f"module does not acknowledge triggers ({unanswered} unanswered): keyboard mode,"
            " another baud rate or hung? (docs/wiring.md)"
        )
        if self._health.state != "fault":
            self._set_health("fault", detail)
            self.faults.fault(detail)

    def _answering(self) -> None:
        if self._health.state == "fault":
            self._set_health("ok", "")
            self.faults.recovered(f"module answering on {self.port}")

    def _open(self) -> Any:
        import serial

        factory = self._factory or serial.serial_for_url
        try:
            return factory(
                self.port,
                baudrate=self._baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=0.1,
                write_timeout=0.5,
                # flock: a second reader of one tty (`kiosk scanner setup`, a second daemon)
                # would get part of the bytes each; it is refused instead.
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ReaderFault(f"cannot open {self.port}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to open is the scanner's fault
            raise ReaderFault(f"cannot open {self.port}: {describe(exc)}") from None

    def _close(self, handle: Any) -> None:
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - a port already gone has nothing to close
            pass

    def _begin(self, ser: Any) -> None:
        self.pipeline.assembler.reset()
        self._io = _PortIO(ser, self._wake_fd)
        self._worker.wake_also(self._io.cancel)
        self._held = b""
        self._unanswered = 0  # triggers sent since the last acknowledgement
        self._next_trigger_ns = self._clock.monotonic_ns()

    def _drop_partial(self) -> int:
        length = self.pipeline.assembler.partial
        self.pipeline.assembler.reset()
        return length

    def _step(self, ser: Any, sink: CodeSink, wait_ms: int) -> bool:
        import serial

        try:
            now_ns = self._clock.monotonic_ns()
            if self._trigger is not None and now_ns >= self._next_trigger_ns:
                self._next_trigger_ns = now_ns + self._trigger_ns
                if self._unanswered >= self.MISSED_ACKS_FAULT:
                    self._no_answer(self._unanswered)
                self._io.write(self._trigger)
                self._unanswered += 1
            data = self._io.read(wait_ms)
        except (serial.SerialException, OSError) as exc:
            raise ReaderFault(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - e.g. a TypeError from a closing port
            raise ReaderFault(describe(exc)) from None
        if not data:
            self._expire_partial()
            return False
        self.bytes_read += len(data)
        if self._trigger is not None:
            if GM65_TRIGGER_ACK in self._held + data:
                self._unanswered = 0
                self._answering()
            data, self._held = strip_ack(self._held + data)
        codes, rejected = self.pipeline.feed(data, self._clock.monotonic_ns())
        if codes or rejected:
            self._line_ended()
        for rejection in rejected:
            self._rejected(rejection)
        for code in codes:
            sink(code)
        return True

    def _expire_partial(self) -> None:
        """A module that ends no line (a GM65's factory setting) would otherwise look fine
        while every code is lost: say so until a line ends."""
        rejection = self.pipeline.expire(self._clock.monotonic_ns(), self.UNTERMINATED_AFTER_NS)
        if rejection is None:
            return
        self._rejected(rejection)
        if self._health.state == "ok":
            self._set_health("degraded", UNTERMINATED_HINT)
            self.faults.fault(UNTERMINATED_HINT)

    def _line_ended(self) -> None:
        if self._health.state == "degraded" and self._health.detail == UNTERMINATED_HINT:
            self._set_health("ok", "")
            self.faults.recovered(f"lines end on {self.port}")
