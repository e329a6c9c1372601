"""Soak: a reader rejecting what it reads for hours must cost the journal a few lines a
minute, not one per rejection. A scanner on a noisy line (the gate motor's interference, a
baud rate that does not match, a cable going) hands over a garbage line many times a second;
a camera whose driver delivers broken frames rejects 15 a second. Each reason is said at
once, then at most once a minute with how many like it were not logged."""

from __future__ import annotations

import logging
import queue

import numpy as np

from drivers.camera import CameraReader
from drivers.decoders import build_decoder
from drivers.pipeline import FramePipeline
from drivers.serial_scanner import SerialScanner
from kiosk.config.readers import DecoderConfig, WatchdogConfig

PASS = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
WAIT_S = 5.0  # an upper bound for the driver's thread; met at once when things work
#: Rejections over 100 s of the injected clock: two minutes begun, so two or three lines.
REJECTIONS, EVERY_S = 2000, 0.05


def rejected_lines(caplog, logger: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno >= logging.INFO and "code rejected" in r.getMessage()
    ]


class NoisyPort:
    """A pyserial port on a noisy line: a garbage line every ``EVERY_S`` of the kiosk's
    clock, ``REJECTIONS`` of them, then a good code."""

    in_waiting = 0

    def __init__(self, clock) -> None:
        self._clock = clock
        self._lines = [b"\xff\xfe%d\r\n" % i for i in range(REJECTIONS)] + [PASS.encode() + b"\r"]

    def read(self, _n: int) -> bytes:
        if not self._lines:
            self._clock.advance(0.1)
            return b""
        self._clock.advance(EVERY_S)
        return self._lines.pop(0)

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        return None


def test_a_scanner_on_a_noisy_line_says_so_a_few_times_with_the_count(clock, caplog):
    port = NoisyPort(clock)
    scanner = SerialScanner("/dev/ttyACM0", clock, serial_factory=lambda *_a, **_k: port)
    codes: queue.Queue = queue.Queue()
    with caplog.at_level(logging.INFO, logger="drivers.serial_scanner"):
        scanner.start(codes.put)
        try:
            assert codes.get(timeout=WAIT_S).text == PASS  # every garbage line read before it
        finally:
            scanner.stop()
    said = rejected_lines(caplog, "drivers.serial_scanner")
    assert 1 <= len(said) <= 3 and said[0] == "scanner: code rejected (not_utf8)"
    assert "more like it not logged" in said[-1]
    assert scanner.pipeline.stats.rejected == REJECTIONS  # every one still counted


def test_a_camera_delivering_broken_frames_says_so_a_few_times_with_the_count(clock, caplog):
    class Broken:
        """Frames no pipeline can use (2x2 of float64), each unlike the one before."""

        name = "broken"
        sent = 0

        def open(self) -> None:
            pass

        def read(self):
            self.sent += 1
            return np.full((2, 2), self.sent, np.float64), clock.monotonic_ns()

        def close(self) -> None:
            pass

    wd = WatchdogConfig(stale_frame_s=2.0, frozen_frame_s=120.0)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    broken = Broken()
    reader = CameraReader(broken, pipeline, clock, watchdog=wd)
    with caplog.at_level(logging.INFO, logger="drivers.camera"):
        for _ in range(REJECTIONS):
            reader.pump()
            clock.advance(EVERY_S)
    said = rejected_lines(caplog, "drivers.camera")
    assert 1 <= len(said) <= 3 and "code rejected (bad_frame)" in said[0]
    assert "more like it not logged" in said[-1]
    assert pipeline.stats.rejected == broken.sent > REJECTIONS - 5  # every one still counted
