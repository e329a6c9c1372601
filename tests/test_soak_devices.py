"""Soak: each device unplugged and plugged back hundreds of times through its real driver must
leave the process as it found it: no file descriptor, thread or memory kept per cycle.

A gate runs for weeks while its USB camera is knocked loose, the scanner's and the relay
board's cables are pulled and pushed back, the I2C thermometer glitches. Each test cycles one
fault and compares the process's open fds (``/proc/self/fd``), threads and the memory
``tracemalloc`` sees against a baseline taken after one warm-up cycle (the first cycle creates
what is made once: log records' caches, a decoder's tables). Tolerances are stated at each
assertion; a leak is at least one fd, thread or few hundred bytes per cycle, so a few hundred
cycles put it far past them.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import tracemalloc
import tty
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.camera import CameraReader
from drivers.decoders import build_decoder
from drivers.fake_camera import FakeCamera
from drivers.fake_hid import FakeHidScanner
from drivers.fake_serial import FakeGM65
from drivers.gate import SerialRelayGate, lcus_frame
from drivers.hid_scanner import HidScanner
from drivers.mlx90614 import Mlx90614, Smbus2Transport
from drivers.mlx90614_emulator import EmulatedSMBus, Mlx90614Emulator
from drivers.pipeline import FramePipeline
from drivers.serial_scanner import SerialScanner
from kiosk.backoff import Backoff
from kiosk.config.readers import DecoderConfig, WatchdogConfig
from kiosk.devices import ReaderFault, SensorFault

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")

#: Bytes of traced memory a soak may end above its baseline: what was measured without a leak
#: is 0.5-4.5 KB whatever the cycle count (interned strings, free lists); a leak of one small
#: object a cycle (a closed bus or port kept, ~100 B and up) over 100 cycles passes it, and
#: one kept camera frame (9 KB at the test's 64x48) is a leak of 1.3 MB.
MEMORY_SLACK = 12 * 1024

WD = WatchdogConfig(stale_frame_s=2.0, frozen_frame_s=3.0, reopen_initial_s=0.5, reopen_max_s=4.0)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def traced_memory() -> int:
    return tracemalloc.get_traced_memory()[0]


class Baseline:
    """The process's fds, threads and traced memory, to compare after the soak."""

    def __init__(self) -> None:
        gc.collect()
        self.fds = open_fds()
        # Threads by name, counted: a thread a cycle ends and starts again (the fake module's
        # server after a replug) is the same thread under another ident, which the system may
        # or may not reuse; one left behind a cycle is one more of its name.
        self.threads = Counter(t.name for t in threading.enumerate())
        self.memory = traced_memory()

    def grown(self) -> tuple[int, list[str], int]:
        gc.collect()
        extra = list((Counter(t.name for t in threading.enumerate()) - self.threads).elements())
        return open_fds() - self.fds, extra, traced_memory() - self.memory


@pytest.fixture
def traced() -> Iterator[None]:
    """Memory traced from here on, the drivers' log lines (a warning per fault cycle) not
    made: pytest's capture keeps every record of a test in memory until it ends, which is
    the harness's growth, not the drivers' (a daemon's journal holds them, not the process)."""
    logging.disable(logging.WARNING)
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)


def soak(cycles: int, cycle: Callable[[], None]) -> tuple[int, list[str], int]:
    """The growth over ``cycles`` cycles after as many to warm up: what a driver or a library
    makes once (a decoder's tables, a cache filled at its first use of some path) is made in
    the first half; a leak grows in both."""
    for _ in range(cycles):
        cycle()
    base = Baseline()
    for _ in range(cycles):
        cycle()
    return base.grown()


# -- the thermometer's I2C bus -------------------------------------------------------------


@pytest.mark.slow
def test_thermometer_bus_closed_and_reopened_200_times_keeps_one_bus_open(clock, traced):
    chip = Mlx90614Emulator(clock, 0x5A, ambient_c=24.0, seed=7)
    counts = {"opened": 0, "closed": 0}  # counts, not the buses: the test must keep nothing

    class CountedBus(EmulatedSMBus):
        def close(self) -> None:
            counts["closed"] += 1
            super().close()

    def open_bus() -> Smbus2Transport:
        counts["opened"] += 1
        return Smbus2Transport(CountedBus(chip))

    driver = Mlx90614(open_bus, clock, sleep=clock.advance, backoff=Backoff(0.5, 4.0))
    driver.read()

    def glitch_and_recover() -> None:
        chip.inject("nack")
        with pytest.raises(SensorFault, match="bus closed"):
            driver.read()
        chip.clear_faults()
        clock.advance(10)
        driver.read()
        assert driver.health().state == "ok"

    fds, threads, memory = soak(100, glitch_and_recover)
    assert counts == {"opened": 201, "closed": 200}  # each glitch's bus closed, one open
    assert (fds, threads) == (0, [])
    assert memory < MEMORY_SLACK
    driver.close()
    assert counts["closed"] == 201


# -- the relay board's USB serial port -----------------------------------------------------


@pytest.mark.slow
def test_relay_board_unplugged_and_replugged_300_times_keeps_one_port_open(tmp_path, clock, traced):
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    by_id = tmp_path / "usb-relay-if00-port0"  # as /dev/serial/by-id: gone while unplugged
    gate = SerialRelayGate(str(by_id), clock=clock)
    try:
        by_id.symlink_to(os.ttyname(slave))
        gate.set_open(False)

        def unplug_and_replug() -> None:
            by_id.unlink()
            assert gate.health().state == "fault"
            by_id.symlink_to(os.ttyname(slave))
            assert gate.health().ok  # locked again through a fresh descriptor
            assert os.read(master, 64).endswith(lcus_frame(1, False))

        fds, threads, memory = soak(150, unplug_and_replug)
        assert (fds, threads) == (0, [])
        assert memory < MEMORY_SLACK
    finally:
        gate.close()
        os.close(master)
        os.close(slave)


# -- the camera ----------------------------------------------------------------------------


def _camera(clock, cam: FakeCamera) -> CameraReader:
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="camera")
    return CameraReader(cam, pipeline, clock, watchdog=WD)


@pytest.mark.slow
def test_camera_unplugged_and_replugged_200_times_keeps_no_frame_or_state(clock, traced):
    cam = FakeCamera(clock, fps=15, size=(64, 48), seed=3)
    reader = _camera(clock, cam)
    reader.pump()
    reader.pump()
    assert reader.health().state == "ok"

    def unplug_and_replug() -> None:
        cam.unplug()
        reader.pump()
        assert reader.health().state == "fault"
        cam.replug()
        clock.advance(5)
        reader.pump()  # reopens
        reader.pump()
        assert reader.health().state == "ok"

    fds, threads, memory = soak(100, unplug_and_replug)
    assert (fds, threads) == (0, [])
    assert memory < MEMORY_SLACK
    assert reader.reopens == 201


def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@pytest.mark.slow  # real grab and watchdog threads, in real time
def test_threaded_camera_unplugged_200_times_leaves_one_reader_and_one_grab_thread(clock):
    cam = FakeCamera(clock, fps=200, size=(64, 48), seed=3, pace=True)
    reader = _camera(clock, cam)
    reader._period_s = 1 / 200
    reader.start(lambda _code: None)
    try:
        _until(lambda: reader.health().state == "ok")

        def unplug_and_replug() -> None:
            cam.unplug()
            _until(lambda: reader.health().state == "fault")
            cam.replug()
            clock.advance(5)
            _until(lambda: reader.health().state == "ok")

        fds, threads, _ = soak(100, unplug_and_replug)
        assert fds == 0
        # The grab thread of the open camera is a new one after each reopen: one at most.
        assert len(threads) <= 1 and all(n == "grab-camera" for n in threads)
    finally:
        reader.stop()
    assert not [t.name for t in threading.enumerate() if t.name.endswith("-camera")]


# -- the serial scanner --------------------------------------------------------------------


@pytest.mark.slow  # a real pty and the driver's reconnect thread, in real time
def test_scanner_unplugged_and_replugged_100_times_keeps_one_port_and_one_thread(
    tmp_path: Path, clock
):
    with FakeGM65(tmp_path) as module:
        scanner = SerialScanner(
            module.port, clock, name="gm65", reconnect=Backoff(base_s=0.005, cap_s=0.01)
        )
        scanner.start(lambda _code: None)
        try:
            _until(lambda: scanner.health().state == "ok")

            def unplug_and_replug() -> None:
                connects = scanner.connects
                module.unplug()
                _until(lambda: scanner.health().state == "fault")
                module.replug()
                _until(lambda: scanner.connects > connects and scanner.health().state == "ok")

            fds, threads, _ = soak(50, unplug_and_replug)
            assert fds == 0 and threads == []
        finally:
            scanner.stop()
    assert not [t.name for t in threading.enumerate() if t.name == "reader-gm65"]


# -- the keyboard-mode scanner -------------------------------------------------------------


@pytest.mark.slow  # a FIFO and the driver's reconnect thread, in real time
def test_keyboard_scanner_unplugged_mid_code_and_replugged_keeps_one_node_and_one_thread(
    tmp_path: Path, clock
):
    with FakeHidScanner(tmp_path) as fake:
        scanner = HidScanner(
            fake.node,
            clock,
            name="hid",
            grab=fake.grab,
            reconnect=Backoff(base_s=0.005, cap_s=0.01),
        )
        scanner.start(lambda _code: None)
        try:
            _until(lambda: scanner.health().state == "ok")

            def unplug_and_replug() -> None:
                connects = scanner.connects
                fake.type_text("KP1:HALF")
                fake.unplug()
                _until(lambda: scanner.health().state == "fault")
                fake.replug()
                _until(lambda: scanner.connects > connects and scanner.health().state == "ok")

            fds, threads, _ = soak(50, unplug_and_replug)
            assert fds == 0 and threads == []
            assert len(fake.holders) == 1  # the grab of the node open now, no other
        finally:
            scanner.stop()
    assert not [t.name for t in threading.enumerate() if t.name == "reader-hid"]


class WedgedCamera:
    """A camera whose every read hangs in the driver, and closing it does not wake the read
    (a USB camera wedged in uninterruptible I/O): only ``free()`` (the test's teardown) does."""

    def __init__(self) -> None:
        self._stuck = threading.Event()

    def open(self) -> None:
        pass

    def read(self):  # noqa: ANN201 - never returns a frame
        self._stuck.wait()
        raise ReaderFault("read returned after the device was freed")

    def close(self) -> None:
        pass  # does not wake the read

    def free(self) -> None:
        self._stuck.set()


def _grab_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "grab-camera"]


def test_a_camera_wedged_in_its_driver_is_reopened_without_piling_up_hung_threads(clock):
    """Each stale-frame reopen starts a grab thread; a read that never returns keeps the
    thread before it. Reopened every few seconds for a day, that is thousands of threads."""
    cam = WedgedCamera()
    reader = _camera(clock, cam)  # driven by step(): the test owns time, no watchdog thread
    before = len(_grab_threads())
    try:
        for _ in range(30):
            reader.step()  # opens (or says why not): a grab thread whose read hangs
            clock.advance(WD.stale_frame_s + 0.1)
            reader.step()  # no frame: lost, the source closed (the read stays hung)
            assert reader.health().state == "fault"
            clock.advance(WD.reopen_max_s + 0.1)
        hung = len(_grab_threads()) - before
        assert 1 <= hung <= CameraReader.MAX_HUNG_READS
        assert "still hung" in reader.health().detail
    finally:
        cam.free()
        for thread in _grab_threads():
            thread.join(timeout=2.0)
    assert len(_grab_threads()) == before  # freed, each ended (its generation was replaced)
    reader.step()
    assert reader.reopens > CameraReader.MAX_HUNG_READS  # and the camera is opened again
