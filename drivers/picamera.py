"""Raspberry Pi CSI camera (Camera Module 2/3, HQ) through picamera2.

OpenCV cannot read these cameras: since Bullseye they sit behind libcamera, not a V4L2
capture node that ``VideoCapture`` understands. picamera2 is not on PyPI in a form that
builds on the Pi (it needs the distribution's libcamera bindings), so install it from Debian
and let the venv see system packages::

    sudo apt-get install python3-picamera2
    python3 -m venv --system-site-packages .venv

The venv's numpy (2.x, for OpenCV 4.10+) then shadows Debian's numpy 1.24, and Debian's
``simplejpeg`` (imported by picamera2's encoders) fails at import with ``ValueError:
numpy.dtype size changed`` (picamera2 issues #1088, #1211). ``scripts/install`` therefore
installs ``simplejpeg`` from PyPI into the venv when a CSI camera is configured (the
``picamera`` extra); any import failure is a reader fault that says so, never a crash.

The import happens at ``open()``: the module imports fine everywhere, and a missing or
broken picamera2 shows as a reader ``fault`` naming the cause, not a crash at start.

Each capture is a picamera2 job waited for with a timeout (``capture_timeout_s``): a camera
whose cable came loose never completes a request, and a ``capture_array()`` without a timeout
would hold its grab thread forever, one more with every recovery. On a timeout and at
``close()`` the outstanding jobs are cancelled (``cancel_all_and_flush``), which also wakes a
capture waiting in another thread, and lets ``stop()`` (queued behind that capture, waited
for with no timeout) run. picamera2 before 0.3.20 has no such cancel: it is refused at
``open()`` as too old (``TOO_OLD``), as the install's release check refuses it.

``format="RGB888"`` is libcamera's name for 24-bit pixels stored B, G, R in memory, which is
exactly OpenCV's BGR order, so frames go to the pipeline without a conversion.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
from concurrent.futures import CancelledError
from typing import Any

import numpy as np

from drivers.faultlog import describe
from kiosk.clock import Clock
from kiosk.config.readers import ExposureConfig, FocusConfig
from kiosk.devices import ReaderFault

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "picamera2 is not installed: sudo apt-get install python3-picamera2 and create the venv"
    " with --system-site-packages"
)
NUMPY_ABI_HINT = (
    "picamera2 cannot load ({error}): a Debian module built for another numpy (simplejpeg,"
    " numpy 1.24) meets the venv's numpy; run scripts/install again, it installs simplejpeg"
    " into the venv for a CSI camera"
)
TOO_OLD = (
    "picamera2 is too old (the Pi camera needs 0.3.20 or later): before 0.3.17 its wait() has"
    " no timeout, before 0.3.20 it cannot cancel a capture (cancel_all_and_flush), so a camera"
    " that stops sending frames would hold the reader for ever; sudo apt-get update && sudo"
    " apt-get install --only-upgrade python3-picamera2"
)
NO_CAMERA = (
    "no CSI camera {num}: libcamera finds {found} camera(s); check the ribbon (Pi powered off)"
    " and rpicam-hello --list-cameras (camera_auto_detect=1 or the sensor's dtoverlay in"
    " /boot/firmware/config.txt)"
)

#: libcamera's ``AfModeEnum`` values (controls.AfModeEnum.Manual/Continuous).
AF_MODE_MANUAL = 0
AF_MODE_CONTINUOUS = 2


#: Modules whose absence is picamera2 not installed (Debian's python3-picamera2 and the
#: libcamera bindings it depends on), or a venv made without --system-site-packages.
NOT_INSTALLED = frozenset({"picamera2", "libcamera"})


def _load_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except Exception as exc:  # noqa: BLE001 - a library that fails to load is a fault
        raise ReaderFault(load_error(exc)) from None
    return Picamera2


def load_error(exc: Exception) -> str:
    """Why importing picamera2 failed, and the fix. Only a missing picamera2 or libcamera is
    "not installed": a Debian extension built for numpy 1.x fails under numpy 2 with an
    ``ImportError`` too ("numpy.core.multiarray failed to import"), and its text is said."""
    if isinstance(exc, ModuleNotFoundError) and exc.name in NOT_INSTALLED:
        return INSTALL_HINT
    error = describe(exc)
    if "dtype size changed" in str(exc) or "numpy" in str(exc).lower():
        return NUMPY_ABI_HINT.format(error=error)
    return f"picamera2 cannot load: {error}"


def picamera2_problem() -> str | None:
    """Why this interpreter cannot drive a CSI camera (picamera2 missing, failing to load, or
    too old), or None: the install's check of a release for a config with a Pi camera
    (``scripts/install``, ``check_release``), before it runs at the gate."""
    try:
        cls = _load_picamera2()
    except ReaderFault as exc:
        return str(exc)
    return None if _recent_enough(cls) else TOO_OLD


def _recent_enough(cls: Any) -> bool:
    """Whether ``Picamera2`` has what a capture from a lost camera needs to end: ``wait`` with
    a ``timeout`` (0.3.17) and ``cancel_all_and_flush`` (0.3.20). Without the cancel a wait that
    timed out leaves its capture first in picamera2's job queue, and ``stop()`` waits behind
    it with no timeout: the reader's thread was held in the close of a camera whose ribbon
    came loose, for ever."""
    if not callable(getattr(cls, "cancel_all_and_flush", None)):
        return False
    try:
        return "timeout" in inspect.signature(cls.wait).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _release_unconstructed(cls: Any, exc: BaseException) -> None:
    """Free what a ``Picamera2.__init__`` that raised kept (a camera held by another program).

    picamera2 makes its notification pipe and registers the object with its class-wide camera
    manager before libcamera's acquire; when that fails it raises without closing either, and
    ``close()`` returns early for a camera not open. No caller ever holds the object, so each
    retry (every ``reopen_max_s`` while the camera is held) leaked a descriptor. The object is
    found in the traceback (``self`` of the ``__init__`` that raised)."""
    tb = exc.__traceback__
    cam = None
    while tb is not None:
        frame = tb.tb_frame
        candidate = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
        if isinstance(candidate, cls):
            cam = candidate
        tb = tb.tb_next
    if cam is None:
        return
    if getattr(cam, "is_open", False):
        with contextlib.suppress(Exception):
            cam.close()
        return
    manager: Any = getattr(cls, "_cm", None)
    cameras = getattr(manager, "cameras", None)
    if isinstance(cameras, dict):
        for index in [i for i, c in list(cameras.items()) if c is cam]:
            with contextlib.suppress(Exception):
                manager.cleanup(index)
    with contextlib.suppress(Exception):
        cam.notifymeread.close()
    with contextlib.suppress(Exception):
        os.close(cam.notifyme_w)


def _open_failure(num: int, exc: BaseException) -> str:
    """Why ``Picamera2(num)`` failed: picamera2 wraps libcamera's own reason ("Failed to
    acquire camera: Device or resource busy") in "Camera __init__ sequence did not complete.",
    so the innermost cause is the one a guard can act on."""
    causes = [exc]
    while causes[-1].__cause__ is not None and len(causes) < 8:
        causes.append(causes[-1].__cause__)
    detail = f"cannot open CSI camera {num}: {describe(causes[-1])}"
    if len(causes) > 1:
        detail += f" ({describe(exc)})"
    if "busy" in detail.lower():
        detail += "; another program holds the camera (rpicam-hello, a second kiosk service?)"
    return detail


def csi_cameras(cameras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CSI cameras in picamera2's ``global_camera_info()``.

    libcamera on Raspberry Pi OS also lists USB webcams (its UVC pipeline; their ``Id`` holds
    ``/usb``), and picamera2 sorts them after the CSI cameras, so camera ``n`` is the
    ``n``-th CSI camera only while ``n`` is below this count: past it ``Picamera2(n)`` would
    open a webcam (perhaps the one a USB reader uses) as if it were the ribbon's camera."""
    return [cam for cam in cameras if "/usb" not in str(cam.get("Id", ""))]


def usb_instead() -> str:
    """What to write when libcamera lists a USB webcam but no CSI camera: the ribbon camera
    replaced by a webcam at the gate is read by a ``camera`` source, not a ``picamera``."""
    from drivers.camera import plugged_cameras  # the /dev/v4l/by-id capture nodes

    present = plugged_cameras()
    if not present:
        return (
            "; a USB camera is plugged in: if it replaces the CSI camera, make this source"
            ' type = "camera" with its device (ls /dev/v4l/by-id/)'
        )
    devices = " or ".join(f'"{path}"' for path in present)
    return (
        "; a USB camera is plugged in: if it replaces the CSI camera, make this source"
        f' type = "camera", device = {devices}'
    )


def camera_controls(
    exposure: ExposureConfig, focus: FocusConfig, available: dict[str, Any] | None
) -> dict[str, Any]:
    """The libcamera controls for the configured exposure and focus.

    Focus controls are only asked of a camera that advertises them (``camera_controls``):
    picamera2 refuses a control the sensor does not have, and a Camera Module 2 has no lens
    motor. ``available`` None means unknown (sent as configured)."""
    controls: dict[str, Any] = {}
    if exposure.mode == "manual":
        controls.update(
            AeEnable=False, ExposureTime=exposure.exposure_us, AnalogueGain=exposure.gain
        )
    else:
        controls.update(AeEnable=True, ExposureValue=exposure.compensation_ev)
    if focus.mode != "default":
        if available is not None and "AfMode" not in available:
            log.warning("CSI camera has no autofocus lens: focus.mode=%s ignored", focus.mode)
        elif focus.mode == "continuous":
            controls["AfMode"] = AF_MODE_CONTINUOUS
        else:
            controls.update(AfMode=AF_MODE_MANUAL, LensPosition=focus.lens_dioptres)
    return controls


class PiCamera:
    """A ``FrameSource`` over picamera2; run it with ``drivers.camera.CameraReader``."""

    def __init__(
        self,
        clock: Clock,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15.0,
        name: str = "picamera",
        camera_num: int = 0,
        capture_timeout_s: float = 2.0,
        exposure: ExposureConfig | None = None,
        focus: FocusConfig | None = None,
        picamera2_class: Any = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._size = (width, height)
        self._fps = fps
        self._num = camera_num
        self._timeout_s = capture_timeout_s
        self._exposure = exposure or ExposureConfig()
        self._focus = focus or FocusConfig()
        self._cls = picamera2_class
        self._cam: Any = None
        self._lock = threading.Lock()
        self.controls: dict[str, Any] = {}

    def open(self) -> None:
        cls = self._cls or _load_picamera2()
        if not _recent_enough(cls):
            raise ReaderFault(TOO_OLD)
        try:
            # Looked up before constructing: Picamera2() without the camera leaks its
            # notification pipe (IndexError after os.pipe2, close() skips a camera never
            # opened), one descriptor per retry, retried every reopen_max_s while the ribbon
            # is out.
            cameras = cls.global_camera_info()
            found = len(csi_cameras(cameras))
            if self._num >= found:
                detail = NO_CAMERA.format(num=self._num, found=found)
                raise ReaderFault(detail + usb_instead() if len(cameras) > found else detail)
            cam = cls(self._num)
        except ReaderFault:
            raise
        except Exception as exc:  # libcamera raises RuntimeError for a camera busy or failing
            _release_unconstructed(cls, exc)
            raise ReaderFault(_open_failure(self._num, exc)) from None
        try:
            available = getattr(cam, "camera_controls", None)
            self.controls = camera_controls(self._exposure, self._focus, available)
            config = cam.create_video_configuration(
                main={"size": self._size, "format": "RGB888"},
                # Two buffers: the newest frame, never a queue of old ones.
                buffer_count=2,
                controls={"FrameRate": float(self._fps), **self.controls},
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # noqa: BLE001 - a camera that fails to start is released
            with contextlib.suppress(Exception):
                self._release(cam)
            raise ReaderFault(f"cannot start CSI camera {self._num}: {describe(exc)}") from None
        log.info(
            "%s: CSI camera %d at %dx%d %.0f fps, controls %s",
            self.name,
            self._num,
            *self._size,
            self._fps,
            self.controls,
        )
        with self._lock:
            self._cam = cam

    def read(self) -> tuple[np.ndarray, int]:
        cam = self._cam
        if cam is None:
            raise ReaderFault("CSI camera not open")
        try:
            job = cam.capture_array("main", wait=False)
            frame = cam.wait(job, timeout=self._timeout_s)
        except TimeoutError:
            self._cancel(cam)
            raise ReaderFault(f"CSI capture timed out after {self._timeout_s:g} s") from None
        except CancelledError:
            raise ReaderFault("CSI capture cancelled (camera closed)") from None
        except Exception as exc:  # noqa: BLE001
            raise ReaderFault(f"CSI capture failed: {describe(exc)}") from None
        if not isinstance(frame, np.ndarray) or frame.size == 0:
            raise ReaderFault("CSI capture returned no frame")
        return frame, self._clock.monotonic_ns()

    def close(self) -> None:
        with self._lock:
            cam, self._cam = self._cam, None
        if cam is not None:
            self._release(cam)

    def _release(self, cam: Any) -> None:
        # Cancel first: it wakes a capture waiting in the grab thread, so no thread is left
        # behind; stop() and close() on a wedged camera may fail, close() must still run.
        self._cancel(cam)
        try:
            cam.stop()
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: stop failed: %s", self.name, describe(exc))
        finally:
            cam.close()

    def _cancel(self, cam: Any) -> None:
        try:
            cam.cancel_all_and_flush()
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: cancel_all_and_flush failed: %s", self.name, describe(exc))
