"""Frames from files: a folder of images or a video file, for tests, replay and the demo.

Images are played in name order; a file that cannot be decoded is skipped and counted (a
replay folder with one corrupt JPEG must not stop the replay). A video is read through
OpenCV's FFmpeg backend. With ``loop=True`` playback starts over at the end; without it
the end is a ``ReaderFault`` ("end of input"), so a finished file looks like a lost camera
to the watchdog rather than a frozen scene.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from kiosk.clock import Clock
from kiosk.devices import ReaderFault

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def read_image(path: Path) -> np.ndarray | None:
    """A BGR frame from an image file, or None if it is not a decodable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


class FileSource:
    """A ``FrameSource`` playing a folder of images or a video file."""

    #: Identical frames are expected (a one-image folder): no frozen-camera fault.
    repeats_frames = True

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        *,
        fps: float = 15.0,
        loop: bool = True,
        pace: bool = False,
        name: str = "file",
    ) -> None:
        self.name = name
        self.path = Path(path)
        self._clock = clock
        self._period_s = 1.0 / fps
        self._loop = loop
        self._pace = pace
        self._closing = threading.Event()
        self._images: list[Path] = []
        self._index = 0
        self._video: cv2.VideoCapture | None = None
        self.skipped = 0

    def open(self) -> None:
        self._closing.clear()
        if self.path.is_dir():
            self._images = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not self._images:
                raise ReaderFault(f"{self.path}: no image files")
            self._index = 0
        elif self.path.is_file():
            video = cv2.VideoCapture(str(self.path))
            if not video.isOpened():
                raise ReaderFault(f"{self.path}: not a readable video")
            self._video = video
        else:
            raise ReaderFault(f"{self.path}: no such file or folder")

    def read(self) -> tuple[np.ndarray, int]:
        if self._pace and self._closing.wait(self._period_s):
            raise ReaderFault("file source closed")
        video = self._video
        frame = self._next_video(video) if video is not None else self._next_image()
        return frame, self._clock.monotonic_ns()

    def _next_image(self) -> np.ndarray:
        if not self._images:
            raise ReaderFault("file source not open")
        for _ in range(len(self._images)):
            if self._index >= len(self._images):
                if not self._loop:
                    raise ReaderFault("end of input")
                self._index = 0
            path = self._images[self._index]
            self._index += 1
            frame = read_image(path)
            if frame is not None:
                return frame
            self.skipped += 1
            log.warning("skipping unreadable image %s", path.name)
        raise ReaderFault(f"{self.path}: no readable image")

    def _next_video(self, video: cv2.VideoCapture) -> np.ndarray:
        frame: np.ndarray | None
        ok, frame = video.read()
        if not ok and self._loop:
            video.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = video.read()
        if not ok or frame is None:
            raise ReaderFault("end of input")
        return frame

    def close(self) -> None:
        self._closing.set()
        video, self._video = self._video, None
        if video is not None:
            video.release()
        self._images = []

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """Every frame once, synchronously (replay): stops at the end even if looping."""
        loop, self._loop = self._loop, False
        self.open()
        try:
            while True:
                try:
                    yield self.read()
                except ReaderFault:
                    return
        finally:
            self.close()
            self._loop = loop
