"""What the two line scanners share (``SerialScanner``, ``HidScanner``): a worker thread that
opens the device, serves it until it is lost, closes it and opens it again after a backoff,
with the same health, fault log, rejection log and line pipeline.

Never ends on an error: a reader that stopped is a gate that silently reads nothing.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

from drivers.codes import Rejection, SerialLinePipeline
from drivers.faultlog import RejectionLog, StateLog, describe
from drivers.worker import Worker
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.readers import DecoderConfig
from kiosk.devices import CodeSink, Health, HealthState, ReaderFault

log = logging.getLogger("drivers.scanner")

#: Between two tries to open a scanner: 0.5 s, doubling, at most 10 s (the config's
#: ``reconnect_initial_s``, ``reconnect_max_s``).
DEFAULT_RECONNECT = Backoff(base_s=0.5, cap_s=10.0)

Handle = TypeVar("Handle")


class LineScanner(ABC, Generic[Handle]):
    """A ``CodeReader`` of lines from a device ``Handle``; subclasses open, read (``_step``)
    and close it and say where it is (``where``)."""

    #: How long the worker's read waits for the device before it looks at the time again.
    WAIT_MS = 100
    #: Reads at most per ``pump`` (a device that never stops sending cannot hold replay).
    PUMP_READS = 64

    def __init__(
        self,
        name: str,
        clock: Clock,
        decoder_cfg: DecoderConfig | None,
        reconnect: Backoff,
        on_rejection: Callable[[Rejection], None] | None,
        logger: logging.Logger = log,
    ) -> None:
        self.name = name
        self._clock = clock
        self.decoder_cfg = decoder_cfg or DecoderConfig()
        self.pipeline = SerialLinePipeline(self.decoder_cfg, source=name)
        self._reconnect = reconnect
        self._on_rejection = on_rejection
        self._worker = Worker(f"reader-{name}")
        self._health = Health("absent", "not started", clock.monotonic_ns())
        self.connects = 0
        self.faults = StateLog(logger, name, clock)
        self.rejections = RejectionLog(logger, name, clock)
        self.health_changed = threading.Event()
        self._pumped: Handle | None = None  # the device opened by ``pump``
        #: Bytes read from the device in all (replay waits for what its fake sent).
        self.bytes_read = 0
        #: Readable once ``stop`` is asked: ``_step`` polls it beside the device, so a stop
        #: never waits out a read (None when pumped: no thread to wake).
        self._wake_fd: int | None = None

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the device is (its port or node), as the fault log says it."""

    @abstractmethod
    def _open(self) -> Handle:
        """The device, ready to serve; ``ReaderFault`` naming the cause."""

    @abstractmethod
    def _begin(self, handle: Handle) -> None:
        """Forget what belonged to the device's last opening (a partial line, keys held)."""

    @abstractmethod
    def _step(self, handle: Handle, sink: CodeSink, wait_ms: int) -> bool:
        """Wait ``wait_ms`` at most for the device, hand over the lines it ended; whether it
        sent anything. An exception: the device is lost."""

    @abstractmethod
    def _drop_partial(self) -> int:
        """Forget a line begun and not ended; how long it was (0: none)."""

    def _serve(self, handle: Handle, sink: CodeSink) -> None:
        """Read lines until the device is lost (an exception) or the worker stops."""
        self._begin(handle)
        while not self._worker.stopping.is_set():
            self._step(handle, sink, self.WAIT_MS)

    @abstractmethod
    def _close(self, handle: Handle) -> None:
        """Let the device go; never raises."""

    def start(self, sink: CodeSink) -> None:
        self._worker.start(self._run, sink)

    def stop(self) -> None:
        self._worker.stop()
        if self._pumped is not None:
            self._close(self._pumped)
            self._pumped = None
        self._set_health("absent", "stopped")

    def pump(self, sink: CodeSink, wait_ms: int = 0) -> None:
        """In virtual time (replay), instead of ``start``: what the device has sent, handed to
        ``sink`` in the caller's thread, waiting ``wait_ms`` at most for it; the device opened
        first when it is not (a failure is a ``fault``, tried again at the next pump), closed
        when lost."""
        if self._pumped is None:
            try:
                handle = self._open()
            except ReaderFault as exc:
                self._set_health("fault", str(exc))
                self.faults.fault(str(exc))
                return
            self._connected()
            self._begin(handle)
            self._pumped = handle
        try:
            for _ in range(self.PUMP_READS):
                if not self._step(self._pumped, sink, wait_ms):
                    break
        except Exception as exc:  # noqa: BLE001 - a lost device is a fault, as in _run
            self._lost(exc)
            self._close(self._pumped)
            self._pumped = None

    def health(self) -> Health:
        self.faults.settle()
        return self._health

    def _set_health(self, state: HealthState, detail: str) -> None:
        self._health = Health(state, detail, self._clock.monotonic_ns())
        self.health_changed.set()

    def _rejected(self, rejection: Rejection) -> None:
        self.rejections.rejected(rejection.reason)
        if self._on_rejection is not None:
            self._on_rejection(rejection)

    def _run(self, sink: CodeSink) -> None:
        self._wake_fd = self._worker.wake_fd
        try:
            self._reconnecting(sink)
        finally:
            self._wake_fd = None

    def _reconnecting(self, sink: CodeSink) -> None:
        failed_opens = 0  # in a row
        while not self._worker.stopping.is_set():
            try:
                handle = self._open()
            except ReaderFault as exc:
                wait = self._reconnect.delay(failed_opens)
                failed_opens += 1
                self._set_health("fault", f"{exc}; retry in {wait:.1f} s")
                self.faults.fault(str(exc))
                if self._worker.stopping.wait(wait):
                    break
                continue
            failed_opens = 0
            self._connected()
            try:
                self._serve(handle, sink)
            except Exception as exc:  # noqa: BLE001 - never end the reader: a silent gate
                self._lost(exc)
            finally:
                # Before the wait: cdc-acm frees a ttyACM number only when its last
                # descriptor closes (a module back meanwhile would be ttyACM1).
                self._close(handle)
            if self._worker.stopping.wait(self._reconnect.delay(0)):
                break

    def _connected(self) -> None:
        self.connects += 1
        self._set_health("ok", "")
        self.faults.recovered(f"connected on {self.where}")

    def _lost(self, exc: Exception) -> None:
        cause = str(exc) if isinstance(exc, ReaderFault) else describe(exc)
        self._set_health("fault", f"scanner lost: {cause}; reconnecting")
        self.faults.fault(f"scanner lost: {cause}")
        # A code cut off by the unplug is refused and counted, as one whose end never came.
        length = self._drop_partial()
        if length:
            self._rejected(self.pipeline.reject("unterminated", self._clock.monotonic_ns(), length))
