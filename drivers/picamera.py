"""Raspberry Pi CSI camera (Camera Module 2/3, HQ) through picamera2.

OpenCV cannot read these cameras: since Bullseye they sit behind libcamera, not a V4L2
capture node that ``VideoCapture`` understands. picamera2 is not on PyPI in a form that
builds on the Pi (it needs the distribution's libcamera bindings), so install it from Debian
and let the venv see system packages::

    sudo apt-get install python3-picamera2
    python3 -m venv --system-site-packages .venv

The import happens at ``open()``: the module imports fine everywhere, and a missing
picamera2 shows as a reader ``fault`` naming the package, not a crash at start.

``format="RGB888"`` is libcamera's name for 24-bit pixels stored B, G, R in memory, which is
exactly OpenCV's BGR order, so frames go to the pipeline without a conversion.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kiosk.clock import Clock
from kiosk.devices import ReaderFault

INSTALL_HINT = (
    "picamera2 is not installed: sudo apt-get install python3-picamera2 and create the venv"
    " with --system-site-packages"
)


def _load_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise ReaderFault(INSTALL_HINT) from None
    return Picamera2


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
        picamera2_class: Any = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._size = (width, height)
        self._fps = fps
        self._num = camera_num
        self._cls = picamera2_class
        self._cam: Any = None
        self._lock = threading.Lock()

    def open(self) -> None:
        cls = self._cls or _load_picamera2()
        try:
            cam = cls(self._num)
            config = cam.create_video_configuration(
                main={"size": self._size, "format": "RGB888"},
                # Two buffers: the newest frame, never a queue of old ones.
                buffer_count=2,
                controls={"FrameRate": float(self._fps)},
            )
            cam.configure(config)
            cam.start()
        except ReaderFault:
            raise
        except Exception as exc:  # libcamera raises RuntimeError/IndexError for no camera
            raise ReaderFault(f"cannot open CSI camera {self._num}: {exc}") from None
        with self._lock:
            self._cam = cam

    def read(self) -> tuple[np.ndarray, int]:
        cam = self._cam
        if cam is None:
            raise ReaderFault("CSI camera not open")
        try:
            frame = cam.capture_array("main")
        except Exception as exc:
            raise ReaderFault(f"CSI capture failed: {exc}") from None
        if not isinstance(frame, np.ndarray) or frame.size == 0:
            raise ReaderFault("CSI capture returned no frame")
        return frame, self._clock.monotonic_ns()

    def close(self) -> None:
        with self._lock:
            cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()
