"""Camera code readers: a frame source, a watchdog, and the shared frame pipeline.

``CameraReader`` turns any ``FrameSource`` (USB camera, Pi CSI camera, file source, fake
camera) into a ``kiosk.devices.CodeReader``. A grab thread reads frames as fast as the camera
delivers them and keeps only the newest (a stale frame would stamp a code with the wrong
time); a worker thread runs ``step()``: watchdog, pipeline, sink.

A lost USB camera shows in three ways, and the watchdog catches each (times on the injected
clock, so tests drive it with ``FakeClock``):

* ``read()`` returns False (unplugged; the V4L2 device node is gone) -> at once;
* the very same frame bytes forever (a wedged UVC firmware keeps re-sending its last
  buffer; a live sensor always has noise) -> after ``frozen_frame_s``;
* ``read()`` blocks (a hung driver, a hub brown-out) -> no frame for ``stale_frame_s``.

Then the source is closed (a read still delivering is let finish first: ``VideoCapture`` is not
thread-safe; a USB capture a read is blocked in is released by that read's thread once OpenCV's
own wait for a frame ran out, never under it: ``UsbCamera.close``) and reopened
after a doubling wait capped at ``reopen_max_s``. Health is ``fault`` while lost, ``ok`` again
after the first good frame: the guard screen shows the loss and the recovery by itself.

Any exception from opening or reading a source is that fault, whatever its type: a library
that cannot load (picamera2 against the wrong numpy raises ``ValueError``), a driver error, a
bug in a frame step. Each change of cause is logged once (``drivers.faultlog``), never a
traceback per frame. An ``open()`` that never returns leaves the reader ``starting``; past
``watchdog.start_timeout_s`` that is reported as a fault too.

``UsbCamera`` is the OpenCV V4L2 source. ``CAP_PROP_BUFFERSIZE=1`` keeps the driver from
queueing old frames; MJPG is asked for because YUYV at 640x480 may not fit 15 fps on a USB
hub shared with the serial scanner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
import numpy as np

from drivers.codes import Rejection
from drivers.faultlog import RejectionLog, StateLog, describe
from drivers.pipeline import FramePipeline, gate_thumbnail
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.readers import ExposureConfig, FocusConfig, WatchdogConfig
from kiosk.devices import CodeRead, CodeSink, Health, HealthState, ReaderFault

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    name: str

    def open(self) -> None:
        """Open the device; raises ``ReaderFault`` if it is not there."""

    def read(self) -> tuple[np.ndarray, int]:
        """Block for the next frame; ``(BGR or gray uint8, mono_ns)`` or ``ReaderFault``."""

    def close(self) -> None:
        """Release the device, at once or when a ``read()`` blocked in another thread ends
        (which must end: by this close or by the source's own timeout)."""


#: A covered lens (a hand, tape, a cap) or a camera turned to a plain wall still delivers live
#: frames, noise and all, that hold nothing. The change gate's thumbnail is averaged down to
#: 8x6 cells (sensor noise averages away) and a smooth light falloff is taken out of them (a
#: quadratic surface: the lens's vignetting, which darkens a wall's corners by a third, and
#: light from one side); what is left, the scene's own walls, lamps and edges, spans fewer
#: than this many grey levels (0-255) then. A dim gate the camera still sees spans more; a
#: gate with no light at all looks the same as a covered lens, and reads no paper pass either.
UNIFORM_DETAIL = 3.5
#: A uniform picture this long is a fault (a hand or a phone held close to the lens is not).
UNIFORM_S = 30.0
#: How often a delivered frame is looked at for it (the thumbnail costs ~10 us).
UNIFORM_CHECK_NS = 500_000_000
COVERED = (
    f"camera covered or facing a blank surface: uniform picture for {UNIFORM_S:g} s"
    " (or the gate unlit)"
)


def _quadratic_fit() -> np.ndarray:
    """The projection of 8x6 cells onto their best quadratic surface (least squares)."""
    yy, xx = np.mgrid[0:6, 0:8].astype(np.float64)
    x, y = (xx - 3.5) / 3.5, (yy - 2.5) / 2.5
    basis = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1).reshape(-1, 6)
    fit: np.ndarray = basis @ np.linalg.pinv(basis)
    return fit


_SMOOTH = _quadratic_fit()


def _uniform(frame: np.ndarray) -> bool:
    thumb = gate_thumbnail(frame)
    if thumb is None:
        return False
    cells = cv2.resize(thumb, (8, 6), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    detail = cells - _SMOOTH @ cells
    return bool(detail.max() - detail.min() < UNIFORM_DETAIL)


def _fingerprint(frame: np.ndarray) -> int:
    # A sparse sample is enough: sensor noise changes nearly every pixel of a live frame.
    return zlib.crc32(np.ascontiguousarray(frame[::7, ::5]).data)


class CameraReader:
    """A ``CodeReader`` over a ``FrameSource``, with the lost-camera watchdog."""

    #: Grab threads left inside a read that closing the source did not end (a camera wedged
    #: in the kernel) before the camera is no longer reopened: each reopen starts a thread,
    #: and a read that never returns keeps its own. Reopening resumes as they return.
    MAX_HUNG_READS = 2

    def __init__(
        self,
        source: FrameSource,
        pipeline: FramePipeline,
        clock: Clock,
        *,
        name: str = "camera",
        watchdog: WatchdogConfig | None = None,
        fps: float = 15.0,
        on_rejection: Callable[[Rejection], None] | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.pipeline = pipeline
        self._clock = clock
        self._wd = watchdog or WatchdogConfig()
        self._period_s = 1.0 / fps
        self._on_rejection = on_rejection
        # A file source may legitimately repeat a frame (a one-image folder); a camera may not.
        self._repeats_ok = bool(getattr(source, "repeats_frames", False))
        self._sink: CodeSink | None = None
        self._lock = threading.Lock()
        self._frame_evt = threading.Event()
        self._stop_evt = threading.Event()
        self._worker: threading.Thread | None = None
        #: The thread reading the open source (``_grab``): joined on stop, so the process never
        #: exits while it is inside OpenCV (a thread ended in C++ code aborts the process).
        self._grabber: threading.Thread | None = None
        #: Grab threads abandoned in a hung read (``_lost`` of a stale camera).
        self._hung: list[threading.Thread] = []
        self._gen = 0
        self._is_open = False
        self._next_open_ns = clock.monotonic_ns()
        self._reopen_backoff = Backoff(self._wd.reopen_initial_s, self._wd.reopen_max_s)
        self._failures_in_a_row = 0  # losses and failed opens since the last fresh frame
        self._slot: tuple[np.ndarray, int] | None = None
        self._grab_error: str | None = None
        self._last_frame_ns = 0
        self._last_fp: int | None = None
        self._same_since_ns = 0
        self._latest: tuple[np.ndarray, int] | None = None
        self._uniform_since_ns: int | None = None
        self._uniform_checked_ns: int | None = None
        self._health = Health("absent", "not started", clock.monotonic_ns())
        self.faults = StateLog(log, name, clock)
        self.rejections = RejectionLog(log, name, clock)
        self.reopens = 0
        self._pumped = False

    # -- CodeReader ----------------------------------------------------------------------
    def start(self, sink: CodeSink) -> None:
        self._sink = sink
        self._stop_evt.clear()
        self._set_health("degraded", "starting")
        self._worker = threading.Thread(target=self._run, name=f"reader-{self.name}", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop_evt.set()
        self._frame_evt.set()
        if self._worker is not None:
            self._worker.join(timeout=2.0)
            self._worker = None
        with self._lock:
            self._gen += 1
            was_open, self._is_open = self._is_open, False
        if was_open:
            self._retire_grabber()
            self._close_source()
        grabber, self._grabber = self._grabber, None
        if grabber is not None:
            # Ends after its current read: closing the source ends it, or a stalled USB
            # read's own timeout (V4L_SELECT_TIMEOUT_S), after which it releases the capture.
            grabber.join(timeout=V4L_SELECT_TIMEOUT_S + 1.0)
        self._set_health("absent", "stopped")

    def health(self) -> Health:
        self.faults.settle()
        h = self._health
        if h.state == "degraded" and h.detail == "starting" and h.since_mono_ns is not None:
            waited_s = (self._clock.monotonic_ns() - h.since_mono_ns) / 1e9
            if waited_s >= self._wd.start_timeout_s:
                detail = f"camera not started within {self._wd.start_timeout_s:g} s (open hung?)"
                self.faults.fault(detail)
                return Health("fault", detail, h.since_mono_ns)
        return h

    def latest_frame(self) -> tuple[np.ndarray, int] | None:
        """The last new frame the pipeline saw and its mono_ns, for the kiosk screen's
        preview; a repeated picture (a frozen camera) keeps the time it was first seen."""
        return self._latest

    # -- the watchdog and pipeline step --------------------------------------------------
    def step(self) -> list[CodeRead]:
        """One supervision step: (re)open when due, watchdog, process the newest frame."""
        now = self._clock.monotonic_ns()
        if not self._is_open:
            if now >= self._next_open_ns:
                self._try_open(now)
            return []
        with self._lock:
            slot, self._slot = self._slot, None
            error, self._grab_error = self._grab_error, None
        if error is not None:
            self._lost(now, f"camera lost: {error}")
            return []
        codes: list[CodeRead] = []
        if slot is not None:
            frame, mono_ns = slot
            self._last_frame_ns = now
            fp = _fingerprint(frame)
            if fp != self._last_fp or self._repeats_ok:
                # Only a new picture is the preview's: a wedged camera hands over its last
                # buffer (perhaps a pass held up as it froze) stamped anew at every read.
                self._latest = (frame, mono_ns)
            if fp != self._last_fp:
                self._last_fp = fp
                self._same_since_ns = now
                self._failures_in_a_row = 0
                self._report_picture(frame, now)
                codes = self._process(frame, mono_ns)
            elif (
                not self._repeats_ok and now - self._same_since_ns >= self._wd.frozen_frame_s * 1e9
            ):
                self._lost(now, f"camera frozen: same frame for {self._wd.frozen_frame_s:g} s")
                return []
        if now - self._last_frame_ns >= self._wd.stale_frame_s * 1e9:
            detail = f"camera lost: no frame for {self._wd.stale_frame_s:g} s"
            self._lost(now, detail, read_hung=True)
            return []
        return codes

    def _report_picture(self, frame: np.ndarray, now: int) -> None:
        """Health on a fresh frame: ``ok``, or ``fault`` while the picture is uniform."""
        if self._covered(frame, now):
            if self._health.detail != COVERED:
                self.faults.fault(COVERED)
                self._set_health("fault", COVERED)
        elif self._health.state != "ok":
            self._set_health("ok", "")
            self.faults.recovered("camera delivering frames")

    def _covered(self, frame: np.ndarray, now: int) -> bool:
        """Whether the picture has been uniform for ``UNIFORM_S``. Looked at every
        ``UNIFORM_CHECK_NS``; a file source (a test image) is exempt."""
        if self._repeats_ok:
            return False
        checked = self._uniform_checked_ns
        if checked is None or now - checked >= UNIFORM_CHECK_NS:
            self._uniform_checked_ns = now
            if not _uniform(frame):
                self._uniform_since_ns = None
            elif self._uniform_since_ns is None:
                self._uniform_since_ns = now
        since = self._uniform_since_ns
        return since is not None and now - since >= UNIFORM_S * 1e9

    def pump(self) -> list[CodeRead]:
        """``step()`` for a caller that owns time instead of ``start()`` (replay in virtual
        time): the frame is read from the source in the caller's thread, no thread runs."""
        if self._worker is not None:
            raise RuntimeError(f"{self.name}: pump() is for a reader that was not started")
        self._pumped = True
        if self._is_open:
            try:
                self._slot = self.source.read()
            except ReaderFault as exc:
                self._grab_error = str(exc)
        return self.step()

    def _process(self, frame: np.ndarray, mono_ns: int) -> list[CodeRead]:
        result = self.pipeline.process_detailed(frame, mono_ns)
        for rejection in result.rejected:
            self.rejections.rejected(rejection.reason)
            if self._on_rejection is not None:
                self._on_rejection(rejection)
        if self._sink is not None:
            for code in result.codes:
                self._sink(code)
        return result.codes

    def _try_open(self, now: int) -> None:
        self._hung = [t for t in self._hung if t.is_alive()]
        if len(self._hung) >= self.MAX_HUNG_READS:
            detail = f"camera wedged: {len(self._hung)} reads still hung in the driver"
            self._schedule_reopen(now, detail)
            return
        try:
            self.source.open()
        except ReaderFault as exc:
            self._schedule_reopen(now, f"camera not available: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - any failure to open is the camera's fault
            self._schedule_reopen(now, f"camera not available: {describe(exc)}", exc)
            return
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._slot = None
            self._grab_error = None
            self._is_open = True
        self._last_frame_ns = now
        # The fingerprint is kept: a camera still wedged after the reopen delivers its old
        # frame again and must stay in fault, not flap to ok for one frame.
        self._same_since_ns = now
        self.reopens += 1
        if self._pumped:
            return  # its caller reads the frames (``pump``): no grab thread
        t = threading.Thread(target=self._grab, args=(gen,), name=f"grab-{self.name}", daemon=True)
        t.start()
        self._grabber = t

    def _lost(
        self, now: int, detail: str, exc: BaseException | None = None, *, read_hung: bool = False
    ) -> None:
        with self._lock:
            self._gen += 1
            self._is_open = False
            self._slot = None
        # Said before the source is let go of: a close stuck in the camera's driver must
        # not leave the health as it was while it hangs.
        self._schedule_reopen(now, detail, exc)
        if not read_hung:
            self._retire_grabber()
        elif self._grabber is not None and self._grabber.is_alive():
            self._hung.append(self._grabber)
        self._close_source()

    def _retire_grabber(self) -> None:
        """Let the grab thread finish its current read before the source is closed.

        OpenCV's ``VideoCapture`` is not thread-safe: ``release()`` while ``read()`` decodes
        from the driver's mapped buffers can crash the process. A camera that still delivers
        (frozen, or being stopped) returns within a frame period, and the thread then sees the
        new generation and ends. A read that does not return in a few periods is hung: the
        source is closed without waiting longer (as for a stale camera, which skips this
        wait), and a USB camera releases the capture when that read returns."""
        grabber = self._grabber
        if grabber is not None and grabber is not threading.current_thread():
            grabber.join(timeout=min(2.0, max(0.2, 3 * self._period_s)))

    def _schedule_reopen(self, now: int, detail: str, exc: BaseException | None = None) -> None:
        wait = self._reopen_backoff.delay(self._failures_in_a_row)
        self._failures_in_a_row += 1
        self._next_open_ns = now + int(wait * 1e9)
        self.faults.fault(detail, f"{detail}; reopening in {wait:.1f} s", exc)
        self._set_health("fault", f"{detail}; reopening in {wait:.1f} s")

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # a dying device may fail to close; it is reopened anyway
            log.debug("%s: close failed: %s", self.name, describe(exc))

    def _set_health(self, state: HealthState, detail: str) -> None:
        self._health = Health(state, detail, self._clock.monotonic_ns())

    # -- threads -------------------------------------------------------------------------
    def _grab(self, gen: int) -> None:
        while not self._stop_evt.is_set():
            try:
                frame, mono_ns = self.source.read()
            except ReaderFault as exc:
                error: str | None = str(exc)
            except Exception as exc:  # an OpenCV error on a vanishing device
                error = f"{type(exc).__name__}: {exc}"
            else:
                error = None
            with self._lock:
                if gen != self._gen:
                    return  # a stale read that woke up after the source was replaced
                if error is not None:
                    self._grab_error = error
                else:
                    self._slot = (frame, mono_ns)
            self._frame_evt.set()
            if error is not None:
                return

    def _run(self) -> None:
        while not self._stop_evt.is_set():
            self._frame_evt.wait(self._period_s)
            self._frame_evt.clear()
            if self._stop_evt.is_set():
                break
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001
                # Never let one bad frame end the reader: a dead reader is a silent gate.
                # The source is closed and reopened like a lost camera, logged once.
                self._lost(self._clock.monotonic_ns(), f"reader error: {describe(exc)}", exc)


class Capture(Protocol):
    """What ``UsbCamera`` needs of ``cv2.VideoCapture`` (or of a test's fake)."""

    def isOpened(self) -> bool: ...

    def set(self, prop: int, value: float, /) -> bool: ...

    def get(self, prop: int, /) -> float: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class UsbCamera:
    """A USB (UVC) camera through OpenCV's V4L2 backend.

    ``capture_factory`` is ``cv2.VideoCapture`` by default; tests inject a fake with the
    same ``isOpened/set/read/release`` methods so the driver's real code path runs."""

    def __init__(
        self,
        device: int | str,
        clock: Clock,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15.0,
        name: str = "camera",
        exposure: ExposureConfig | None = None,
        focus: FocusConfig | None = None,
        capture_factory: Callable[..., Capture] | None = None,
    ) -> None:
        self.name = name
        self.device = device
        self._clock = clock
        self.size = (width, height)
        self.fps = fps
        self.exposure = exposure or ExposureConfig()
        self.focus = focus or FocusConfig()
        self._factory = capture_factory
        self._cap: Capture | None = None
        #: Captures a read is inside of now, and those closed meanwhile: such a capture is
        #: released by its read's own thread once the read has returned (``read``).
        self._lock = threading.Lock()
        self._fd_lock = threading.Lock()
        self._in_read: list[Capture] = []
        self._retired: list[Capture] = []
        #: A descriptor below FD_SETSIZE kept for OpenCV's open (see ``_SpareDescriptor``).
        self._spare = _SpareDescriptor()
        self.delivered = ""
        #: What the last open logged (format, refused settings): a camera that keeps
        #: dropping out is reopened every few seconds, and says it again only when it changes.
        self._told: tuple[str, str] | None = None
        if self.exposure.mode != "manual" and self.exposure.compensation_ev:
            log.warning(
                "%s: exposure compensation is a Pi camera control; on a USB camera use"
                ' exposure.mode = "manual"',
                name,
            )

    def open(self) -> None:
        import cv2

        # Read by OpenCV once, at the first wait for a frame: set before the first open.
        os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(V4L_SELECT_TIMEOUT_S))
        factory: Callable[..., Capture] = self._factory or cv2.VideoCapture
        device = self.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        try:
            with self._fd_lock, self._spare.lent():
                cap = factory(device, cv2.CAP_V4L2)
        except Exception as exc:
            raise ReaderFault(f"cannot open {self.device}: {exc}") from None
        if not cap.isOpened():
            cap.release()
            raise ReaderFault(f"cannot open {self.device}: {not_opened_reason(self.device)}")
        try:
            refused = [name for name, ok in self._apply(cap, usb_settings(self)) if not ok]
            self.delivered = delivered_format(cap)
        except Exception as exc:
            cap.release()
            raise ReaderFault(f"cannot set up {self.device}: {describe(exc)}") from None
        # V4L2 falls back silently (MJPEG -> YUYV, a smaller size, a lower rate): say what
        # the camera actually delivers and which settings it refused, when that changes.
        told = (self.delivered, ", ".join(refused))
        if told != self._told:
            self._told = told
            log.info("%s: %s delivers %s", self.name, self.device, self.delivered)
            if refused:
                log.warning("%s: %s refused %s", self.name, self.device, told[1])
        self._cap = cap

    @staticmethod
    def _apply(cap: Capture, settings: list[tuple[str, int, float]]) -> list[tuple[str, bool]]:
        return [(name, bool(cap.set(prop, value))) for name, prop, value in settings]

    def read(self) -> tuple[np.ndarray, int]:
        with self._lock:
            cap = self._cap
            if cap is None:
                raise ReaderFault("camera not open")
            self._in_read.append(cap)
        try:
            ok, frame = cap.read()
        finally:
            with self._lock:
                self._in_read.remove(cap)
                retired = _holds(self._retired, cap) and not _holds(self._in_read, cap)
                if retired:
                    self._retired = [c for c in self._retired if c is not cap]
            if retired:
                self._release(cap)  # closed while this read was inside it
        if not ok or frame is None:
            raise ReaderFault("read() returned no frame")
        return frame, self._clock.monotonic_ns()

    def close(self) -> None:
        """Release the capture, or leave that to the read inside it (a stalled camera).

        OpenCV's ``release()`` frees the capture object and unmaps its buffers; stopping
        the stream also wakes a read blocked in it, which then dequeues through a closed
        (or meanwhile reopened) descriptor and decodes from unmapped memory. A blocked read
        ends by itself after ``V4L_SELECT_TIMEOUT_S`` (or at once for an unplugged camera),
        and its thread releases the capture then; until then the device stays held and a
        reopen may find it busy, which the reader's backoff retries."""
        with self._lock:
            cap, self._cap = self._cap, None
            if cap is None:
                return
            if _holds(self._in_read, cap):
                self._retired.append(cap)
                return
        self._release(cap)

    def _release(self, cap: Capture) -> None:
        # A stalled capture is released in its read's thread: never while an open in the
        # reader's thread has lent the spare descriptor out for its capture.
        with self._fd_lock:
            try:
                cap.release()
            finally:
                self._spare.renew()  # most likely the device's own descriptor, just freed


def _holds(captures: list[Capture], cap: Capture) -> bool:
    return any(c is cap for c in captures)


#: How long OpenCV's V4L2 backend waits for a frame before ``read()`` returns False (its
#: ``OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT``, 10 s by default, read once per process; a site's
#: own setting in the environment wins). A stalled camera's capture is released by its read
#: when that wait runs out (``UsbCamera.close``), so it is kept short.
V4L_SELECT_TIMEOUT_S = 3

#: glibc's ``FD_SETSIZE``: ``select()`` cannot wait on a descriptor numbered this or more.
FD_SETSIZE = 1024


class _SpareDescriptor:
    """A descriptor numbered below ``FD_SETSIZE``, held so that OpenCV can open with it.

    OpenCV's V4L2 backend waits for each frame with ``select()`` on the device's descriptor;
    ``FD_SET`` on one numbered 1024 or more writes past the set (stack corruption, or glibc's
    fortify check aborting the whole daemon). A busy daemon (LAN connections,
    ``LimitNOFILE=8192``) reopening a re-plugged camera would hand it such a descriptor, as
    ``open()`` takes the lowest free one. So a low one is kept from the start, closed just
    before the capture opens (which then takes that number), and taken again at close."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.renew()

    def renew(self) -> None:
        """Hold the lowest free descriptor if it is lower than the one held."""
        try:
            fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        old = self._fd
        if fd >= FD_SETSIZE or (old is not None and old < fd):
            os.close(fd)
            return
        self._fd = fd
        if old is not None:
            os.close(old)

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        try:
            yield
        finally:
            self.renew()


#: V4L2_EXPOSURE_MANUAL, passed through by OpenCV's backend.
V4L2_EXPOSURE_MANUAL = 1


#: Where udev keeps a stable link per camera: ``usb-<maker>_<model>_<serial>-video-index0``.
V4L_BY_ID = "/dev/v4l/by-id"


def plugged_cameras() -> list[str]:
    """The by-id links of the cameras' capture nodes (``-video-index0``; ``index1`` is a
    UVC camera's metadata node), in name order; empty when there are none."""
    try:
        names = sorted(os.listdir(V4L_BY_ID))
    except OSError:
        return []
    return [os.path.join(V4L_BY_ID, n) for n in names if n.endswith("-video-index0")]


def not_opened_reason(device: int | str) -> str:
    """Why OpenCV's V4L2 backend did not open ``device``: it only says "not opened"."""
    path = f"/dev/video{device}" if isinstance(device, int) or device.isdigit() else device
    if not os.path.exists(path):
        present = plugged_cameras()
        if isinstance(device, str) and device.startswith(V4L_BY_ID) and present:
            # A by-id path holds the model: a camera swapped for another one is there under
            # another name.
            if len(present) == 1:
                return (
                    f"no such device; the camera plugged in now is {present[0]}:"
                    f' set device = "{present[0]}" in its [[readers.sources]]'
                )
            return (
                f"no such device; the cameras plugged in now are {', '.join(present)}:"
                " set device to the gate camera's in its [[readers.sources]]"
            )
        return "no such device (camera unplugged? ls /dev/v4l/by-id/)"
    if not os.access(path, os.R_OK | os.W_OK):
        return "permission denied (the kiosk user needs the group video)"
    return (
        "not a capture node, or busy (another program streaming from it?);"
        " v4l2-ctl --list-devices names each camera's capture node"
    )


def usb_settings(cam: UsbCamera) -> list[tuple[str, int, float]]:
    """``(name, CAP_PROP_*, value)`` for the configured format, exposure and focus.

    OpenCV's V4L2 backend passes ``CAP_PROP_EXPOSURE`` as exposure_time_absolute, in units
    of 100 microseconds. "auto" and "default" leave the camera's own settings alone."""
    import cv2

    settings: list[tuple[str, int, float]] = [
        ("MJPG", cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG")),
        ("width", cv2.CAP_PROP_FRAME_WIDTH, cam.size[0]),
        ("height", cv2.CAP_PROP_FRAME_HEIGHT, cam.size[1]),
        ("fps", cv2.CAP_PROP_FPS, cam.fps),
        ("buffersize", cv2.CAP_PROP_BUFFERSIZE, 1),
    ]
    if cam.exposure.mode == "manual":
        settings += [
            ("auto_exposure", cv2.CAP_PROP_AUTO_EXPOSURE, V4L2_EXPOSURE_MANUAL),
            ("exposure", cv2.CAP_PROP_EXPOSURE, max(1, round(cam.exposure.exposure_us / 100))),
        ]
    if cam.focus.mode == "continuous":
        settings.append(("autofocus", cv2.CAP_PROP_AUTOFOCUS, 1))
    elif cam.focus.mode == "fixed":
        settings += [
            ("autofocus", cv2.CAP_PROP_AUTOFOCUS, 0),
            ("focus", cv2.CAP_PROP_FOCUS, cam.focus.v4l2_focus),
        ]
    return settings


def delivered_format(cap: Capture) -> str:
    """What the camera delivers after the settings, e.g. ``MJPG 640x480 @ 15 fps``."""
    import cv2

    code = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") or "?"
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return f"{fourcc} {width}x{height} @ {cap.get(cv2.CAP_PROP_FPS):g} fps"
