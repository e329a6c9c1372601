"""Camera sources, the lost-camera watchdog, file sources, the fake camera, build_readers."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading

import cv2
import numpy as np
import pytest
from fd_support import descriptors_past_1024
from support import wait_for_frame

from drivers.camera import CameraReader, UsbCamera
from drivers.decoders import DecoderUnavailable, build_decoder
from drivers.fake_camera import FakeCamera, SceneParams, add_noise, render_scene
from drivers.file_source import FileSource
from drivers.picamera import PiCamera
from drivers.pipeline import FramePipeline
from drivers.readers import build_readers
from drivers.serial_scanner import SerialScanner
from kiosk.config import parse_config
from kiosk.config.readers import DecoderConfig, WatchdogConfig
from kiosk.devices import CodeReader, ReaderFault

PASS = "KP1:NCFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
EASY = SceneParams("paper", 220, 0.03, 5.0, 0.0, 2.0, 1.0, 0.0, 90)
WD = WatchdogConfig(stale_frame_s=2.0, frozen_frame_s=3.0, reopen_initial_s=0.5, reopen_max_s=4.0)
WAIT_S = 5.0  # an upper bound for a real thread to post; met at once when things work


@pytest.fixture(scope="module")
def code_scene() -> np.ndarray:
    return render_scene(PASS, EASY, seed=2)


class FakeCapture:
    """A cv2.VideoCapture look-alike with the three ways a real camera dies."""

    def __init__(self, scene: np.ndarray, mode: str = "ok", opened: bool = True) -> None:
        self.scene = scene
        self.mode = mode
        self.opened = opened
        self.props: dict[int, float] = {}
        self.refuse: set[int] = set()
        self.released = threading.Event()
        self._wake = threading.Event()  # a blocked read ends: OpenCV's wait ran out, or released
        self.reads = 0
        self._frozen = add_noise(scene, 3, 0)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        if prop in self.refuse:
            return False
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        # A camera without MJPEG falls back to YUYV; without a size, to its own default.
        if prop == cv2.CAP_PROP_FOURCC and prop in self.refuse:
            return float(cv2.VideoWriter_fourcc(*"YUYV"))
        return float(self.props.get(prop, 0.0))

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.released.is_set() or self.mode == "false":
            return False, None
        if self.mode == "block":
            # A stalled stream: OpenCV's own wait for a frame runs out (``give_up``).
            self._wake.wait(WAIT_S)
            return False, None
        # A camera delivers at its frame rate; without this the grab thread would spin.
        if self.released.wait(0.005):
            return False, None
        if self.mode == "frozen":
            return True, self._frozen
        return True, add_noise(self.scene, 3, self.reads)

    def give_up(self) -> None:
        """OpenCV's wait for the next frame of a stalled stream runs out."""
        self._wake.set()

    def release(self) -> None:
        self.released.set()
        self._wake.set()


class CaptureFactory:
    def __init__(self, scene: np.ndarray) -> None:
        self.scene = scene
        self.modes: list[str] = []
        self.made: list[FakeCapture] = []
        self.absent = False

    def __call__(self, device, api) -> FakeCapture:
        assert api == cv2.CAP_V4L2
        mode = self.modes.pop(0) if self.modes else "ok"
        cap = FakeCapture(self.scene, mode, opened=not self.absent)
        self.made.append(cap)
        return cap


def _usb_reader(clock, factory, sink=None) -> CameraReader:
    source = UsbCamera("/dev/video0", clock, capture_factory=factory)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="gate-cam")
    reader = CameraReader(source, pipeline, clock, name="gate-cam", watchdog=WD)
    reader._sink = sink
    return reader


def _delivering_reader(clock, factory) -> CameraReader:
    """A USB camera reader that has opened its camera and stepped on its first frame."""
    reader = _usb_reader(clock, factory)
    reader.step()
    _step_with_frame(reader)
    return reader


def _step_with_frame(reader: CameraReader) -> list:
    """Wait (bounded) until the grab thread posted, then run one watchdog step."""
    assert wait_for_frame(reader, WAIT_S)
    return reader.step()


def _step_until(reader: CameraReader, state: str, steps: int = 50) -> None:
    """Step on each posted frame until the health is ``state`` (frames already in flight)."""
    for _ in range(steps):
        if reader.health().state == state:
            return
        _step_with_frame(reader)
    assert reader.health().state == state


def test_usb_camera_asks_for_fresh_frames_and_reads_a_pass(clock, code_scene):
    factory = CaptureFactory(code_scene)
    got: list = []
    reader = _usb_reader(clock, factory, got.append)
    reader.step()  # opens
    codes = _step_with_frame(reader)
    assert [(c.text, c.source) for c in codes] == [(PASS, "gate-cam")]
    assert got == codes
    props = factory.made[0].props
    assert props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert (props[cv2.CAP_PROP_FRAME_WIDTH], props[cv2.CAP_PROP_FRAME_HEIGHT]) == (640, 480)
    assert reader.health().state == "ok"
    frame, mono_ns = reader.latest_frame()
    assert frame.shape == (480, 640, 3) and mono_ns == clock.monotonic_ns()
    reader.stop()


def test_read_returning_false_is_a_fault_and_the_camera_reopens_after_backoff(clock, code_scene):
    factory = CaptureFactory(code_scene)
    factory.modes = ["false", "ok"]
    reader = _delivering_reader(clock, factory)
    health = reader.health()
    assert health.state == "fault" and "read() returned no frame" in health.detail
    assert factory.made[0].released.is_set()
    clock.advance(0.4)
    reader.step()
    assert len(factory.made) == 1  # still waiting out the 0.5 s backoff
    clock.advance(0.1)
    reader.step()
    assert len(factory.made) == 2
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    reader.stop()


def test_the_same_frame_forever_is_a_frozen_camera_fault(clock, code_scene):
    factory = CaptureFactory(code_scene)
    factory.modes = ["frozen"]
    reader = _delivering_reader(clock, factory)
    assert reader.health().state == "ok"
    clock.advance(2.9)
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    clock.advance(0.1)
    _step_with_frame(reader)
    health = reader.health()
    assert health.state == "fault" and "frozen" in health.detail
    assert factory.made[0].released.is_set()


def test_a_camera_still_frozen_after_reopen_stays_in_fault(clock, code_scene):
    factory = CaptureFactory(code_scene)
    factory.modes = ["frozen", "frozen"]
    reader = _delivering_reader(clock, factory)
    clock.advance(3.0)
    _step_with_frame(reader)
    assert reader.health().state == "fault"
    clock.advance(0.5)
    reader.step()  # reopened; the same wedged frame comes back
    for _ in range(3):
        _step_with_frame(reader)
        assert reader.health().state == "fault"
    clock.advance(3.0)
    _step_with_frame(reader)
    assert "frozen" in reader.health().detail and len(factory.made) == 2
    reader.stop()


def test_a_one_image_folder_repeating_its_frame_is_not_a_frozen_camera(clock, tmp_path):
    cv2.imwrite(str(tmp_path / "only.png"), np.full((48, 64, 3), 90, np.uint8))
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(FileSource(tmp_path, clock), pipeline, clock, watchdog=WD)
    reader.step()
    for _ in range(5):
        _step_with_frame(reader)
        clock.advance(1.0)
    assert reader.health().state == "ok"
    reader.stop()


def test_a_blocking_read_is_noticed_by_frame_age_and_released_once_it_gave_up(clock, code_scene):
    factory = CaptureFactory(code_scene)
    factory.modes = ["block", "ok"]
    reader = _usb_reader(clock, factory)
    reader.step()
    clock.advance(1.9)
    reader.step()
    assert reader.health().state != "fault"
    clock.advance(0.1)
    reader.step()
    health = reader.health()
    assert health.state == "fault" and "no frame for 2 s" in health.detail
    assert not factory.made[0].released.is_set()  # never released under its read
    factory.made[0].give_up()
    assert factory.made[0].released.wait(WAIT_S)  # by its read's thread, once it returned
    clock.advance(0.5)
    reader.step()
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    reader.stop()


@pytest.mark.slow
def test_reopen_backoff_doubles_and_is_capped_while_the_camera_is_absent(clock, code_scene):
    factory = CaptureFactory(code_scene)
    factory.absent = True
    reader = _usb_reader(clock, factory)
    waits = []
    for _ in range(6):
        reader.step()
        detail = reader.health().detail
        waits.append(float(detail.rsplit("reopening in ", 1)[1].split(" s")[0]))
        clock.advance(waits[-1])
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert reader.health().state == "fault" and "not available" in reader.health().detail
    factory.absent = False
    reader.step()
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    reader.stop()


def test_a_bad_frame_never_ends_the_reader(clock):
    class Garbage:
        name = "garbage"

        def open(self):
            pass

        def read(self):
            return np.zeros((2, 2), np.float64), clock.monotonic_ns()

        def close(self):
            pass

    rejected = []
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(Garbage(), pipeline, clock, watchdog=WD, on_rejection=rejected.append)
    reader.step()
    assert _step_with_frame(reader) == []
    assert rejected and rejected[0].reason == "bad_frame"
    reader.stop()


# -- the fake camera ---------------------------------------------------------------------


def test_fake_camera_shows_a_code_on_a_phone_and_on_paper(clock):
    cam = FakeCamera(clock, seed=1)
    decoder = build_decoder("zxing")
    for style in ("phone", "paper"):
        cam.show_code(PASS, style=style, seed=4)
        frame, mono_ns = cam.next_frame()
        assert frame.shape == (480, 640, 3) and mono_ns == clock.monotonic_ns()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        assert [c.data for c in decoder.decode(gray)] == [PASS.encode()]
    cam.show_nothing()
    assert decoder.decode(cv2.cvtColor(cam.next_frame()[0], cv2.COLOR_BGR2GRAY)) == []


def test_fake_camera_frames_have_fresh_noise_until_frozen(clock):
    cam = FakeCamera(clock)
    a, b = cam.next_frame()[0], cam.next_frame()[0]
    assert not np.array_equal(a, b)
    cam.freeze()
    c, d = cam.next_frame()[0], cam.next_frame()[0]
    assert np.array_equal(c, d)
    cam.unfreeze()
    assert not np.array_equal(cam.next_frame()[0], d)


def test_fake_camera_unplug_raises_reader_fault_until_replugged(clock):
    cam = FakeCamera(clock)
    cam.unplug()
    with pytest.raises(ReaderFault):
        cam.next_frame()
    with pytest.raises(ReaderFault):
        cam.open()
    cam.replug()
    cam.open()
    assert cam.read()[0].shape == (480, 640, 3)


def test_fake_camera_blocked_read_is_released_by_close(clock):
    cam = FakeCamera(clock)
    cam.open()
    cam.block()
    outcome: queue.Queue = queue.Queue()

    def reader():
        try:
            cam.read()
            outcome.put("frame")
        except ReaderFault:
            outcome.put("fault")

    t = threading.Thread(target=reader)
    t.start()
    cam.close()  # what the watchdog does
    t.join(WAIT_S)
    assert outcome.get_nowait() == "fault"


def test_fake_camera_rejects_an_unknown_style(clock):
    with pytest.raises(ValueError, match="phone"):
        FakeCamera(clock).show_code(PASS, style="billboard")


def test_fake_camera_show_image_plays_a_file(clock, tmp_path, code_scene):
    path = tmp_path / "pass.png"
    cv2.imwrite(str(path), code_scene)
    cam = FakeCamera(clock, noise_sigma=0)
    cam.show_image(path)
    assert np.array_equal(cam.next_frame()[0], code_scene)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        cam.show_image(tmp_path / "bad.png")


def test_camera_unplug_in_the_demo_shows_as_fault_and_recovers_by_itself(clock):
    cam = FakeCamera(clock, fps=100, seed=3, pace=True)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="camera")
    got: queue.Queue = queue.Queue()
    reader = CameraReader(cam, pipeline, clock, watchdog=WD)
    reader._sink = got.put
    reader.step()
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    cam.unplug()
    _step_until(reader, "fault")
    clock.advance(0.5)
    reader.step()  # reopen fails: still unplugged
    assert reader.health().state == "fault"
    cam.replug()
    cam.show_code(PASS, style="phone", seed=1)
    clock.advance(1.0)
    reader.step()
    _step_with_frame(reader)
    assert reader.health().state == "ok"
    assert got.get_nowait().text == PASS
    reader.stop()


def test_threaded_reader_delivers_codes_to_the_sink_and_stops(clock):
    cam = FakeCamera(clock, fps=100, seed=5, pace=True)
    cam.show_code(PASS, seed=2)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="camera")
    reader = CameraReader(cam, pipeline, clock, watchdog=WD)
    assert isinstance(reader, CodeReader)
    got: queue.Queue = queue.Queue()
    reader.start(got.put)
    try:
        code = got.get(timeout=WAIT_S)
        assert (code.text, code.source) == (PASS, "camera")
    finally:
        reader.stop()
    assert reader.health().state == "absent"
    # No thread of the reader outlives stop(): one still inside OpenCV when the process exits
    # aborts it ("terminate called without an active exception": the daemon exited -6).
    assert not [t.name for t in threading.enumerate() if t.name.endswith("-camera")]


# -- file sources ------------------------------------------------------------------------


def test_folder_source_plays_images_in_order_and_skips_a_corrupt_one(clock, tmp_path, code_scene):
    blank = np.full((48, 64, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), blank)
    (tmp_path / "2.jpg").write_bytes(b"\xff\xd8 truncated")
    cv2.imwrite(str(tmp_path / "3.png"), code_scene)
    (tmp_path / "notes.txt").write_text("not an image")
    src = FileSource(tmp_path, clock, loop=False)
    frames = [f for f, _ in src.frames()]
    assert len(frames) == 2 and src.skipped == 1
    assert np.array_equal(frames[0], blank)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    assert [c.text for c in pipeline.process(frames[1], 0)] == [PASS]


def test_folder_source_loops_or_ends_with_a_fault(clock, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    looping = FileSource(tmp_path, clock, loop=True)
    looping.open()
    for _ in range(3):
        looping.read()
    once = FileSource(tmp_path, clock, loop=False)
    once.open()
    once.read()
    with pytest.raises(ReaderFault, match="end of input"):
        once.read()


def test_video_file_source_plays_frames(clock, tmp_path, code_scene):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    assert writer.isOpened()
    for n in range(4):
        writer.write(add_noise(code_scene, 2, n))
    writer.release()
    src = FileSource(path, clock, loop=False)
    frames = [f for f, _ in src.frames()]
    assert len(frames) == 4
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    assert [c.text for c in pipeline.process(frames[0], 0)] == [PASS]


def test_missing_file_source_is_a_reader_fault(clock, tmp_path):
    with pytest.raises(ReaderFault, match="no such file"):
        FileSource(tmp_path / "nope", clock).open()
    with pytest.raises(ReaderFault, match="no image files"):
        FileSource(tmp_path, clock).open()


# -- Pi CSI camera -----------------------------------------------------------------------


def test_picamera_without_picamera2_is_a_fault_naming_the_debian_package(clock, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(ReaderFault, match="apt-get install python3-picamera2"):
        PiCamera(clock).open()


class StubJob:
    def __init__(self) -> None:
        self.cancelled = threading.Event()


class StubPicamera2:
    """picamera2's ``Picamera2`` as the driver uses it: jobs, ``wait(job, timeout)``,
    ``cancel_all_and_flush``. ``mode``: "ok" delivers ``frame``; "hang" never completes a
    request (a loose ribbon cable), so only a cancel ends the wait; "timeout" raises the
    ``TimeoutError`` picamera2's ``wait`` raises when the timeout passes."""

    frame: np.ndarray | None = None
    mode = "ok"
    made: list[StubPicamera2] = []
    camera_controls: dict = {"AfMode": (0, 2, 0), "LensPosition": (0.0, 15.0, 1.0)}

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [{"Model": "imx708", "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a", "Num": 0}]

    def __init__(self, num: int) -> None:
        self.num = num
        self.calls: list = []
        self.jobs: list[StubJob] = []
        self.waits: list[float | None] = []
        self.cancels = 0
        self.closed = False
        StubPicamera2.made.append(self)

    def create_video_configuration(self, main, buffer_count, controls):
        self.calls.append(("config", main["size"], main["format"], dict(controls)))
        return {"main": main}

    def configure(self, config) -> None:
        pass

    def start(self) -> None:
        self.calls.append(("start",))

    def capture_array(self, stream: str, wait: bool | None = None) -> StubJob:
        assert stream == "main" and wait is False  # a blocking capture could hang forever
        job = StubJob()
        self.jobs.append(job)
        return job

    def wait(self, job: StubJob, timeout: float | None = None) -> np.ndarray:
        from concurrent.futures import CancelledError

        self.waits.append(timeout)
        if self.mode == "ok":
            return self.frame
        if self.mode == "timeout":
            raise TimeoutError
        if job.cancelled.wait(WAIT_S):
            raise CancelledError
        raise TimeoutError

    def cancel_all_and_flush(self) -> None:
        self.cancels += 1
        for job in self.jobs:
            job.cancelled.set()

    def stop(self) -> None:
        self.calls.append(("stop",))

    def close(self) -> None:
        self.closed = True
        self.calls.append(("close",))


@pytest.fixture
def stub_picamera2(code_scene):
    StubPicamera2.frame, StubPicamera2.mode, StubPicamera2.made = code_scene, "ok", []
    return StubPicamera2


def test_picamera_reads_bgr_frames_through_picamera2(clock, code_scene, stub_picamera2):
    cam = PiCamera(clock, fps=10, capture_timeout_s=1.5, picamera2_class=stub_picamera2)
    cam.open()
    frame, mono_ns = cam.read()
    cam.close()
    stub = stub_picamera2.made[0]
    assert frame is code_scene and mono_ns == clock.monotonic_ns()
    size, fmt, controls = stub.calls[0][1:]
    assert (size, fmt, controls["FrameRate"]) == ((640, 480), "RGB888", 10.0)
    assert stub.waits == [1.5]  # every capture waits with a timeout
    assert stub.cancels == 1 and stub.calls[-1] == ("close",)


def test_a_timed_out_capture_is_a_fault_and_its_request_is_cancelled(clock, stub_picamera2):
    stub_picamera2.mode = "timeout"
    cam = PiCamera(clock, capture_timeout_s=2.0, picamera2_class=stub_picamera2)
    cam.open()
    with pytest.raises(ReaderFault, match="timed out after 2 s"):
        cam.read()
    assert stub_picamera2.made[0].cancels == 1
    cam.close()


def test_ten_hang_and_recover_cycles_leave_no_capture_thread_behind(clock, stub_picamera2):
    stub_picamera2.mode = "hang"
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    # A capture timeout far beyond the test: only the cancel at close can end a hung wait.
    cam = PiCamera(clock, name="csi", capture_timeout_s=300, picamera2_class=stub_picamera2)
    reader = CameraReader(cam, pipeline, clock, name="csi", watchdog=WD)
    baseline = threading.active_count()
    for cycle in range(10):
        reader.step()  # opens; the grab thread waits on a request that never completes
        assert len(stub_picamera2.made) == cycle + 1
        clock.advance(WD.stale_frame_s)
        reader.step()  # the watchdog: no frame for 2 s -> close (cancels) -> reopen later
        assert reader.health().state == "fault"
        for t in threading.enumerate():
            if t.name == "grab-csi":
                t.join(WAIT_S)
        clock.advance(WD.reopen_max_s)
    grabbing = [t for t in threading.enumerate() if t.name == "grab-csi"]
    assert grabbing == [] and threading.active_count() == baseline
    assert all(s.closed and s.cancels >= 1 for s in stub_picamera2.made)
    reader.stop()


class AbsentPicamera2:
    """picamera2 with no CSI camera attached, as its ``Picamera2.__init__`` behaves: it makes
    its notification pipe first, then looks the camera up in ``global_camera_info()`` and
    raises IndexError; its ``close()`` returns early for a camera never opened, so the
    pipe's write end is never closed (one descriptor per failed construction)."""

    leaked: list[int] = []
    wait = StubPicamera2.wait
    cancel_all_and_flush = StubPicamera2.cancel_all_and_flush

    @staticmethod
    def global_camera_info() -> list[dict]:
        return []

    def __init__(self, num: int) -> None:
        read_end, write_end = os.pipe()
        os.close(read_end)
        AbsentPicamera2.leaked.append(write_end)
        raise IndexError("list index out of range")


def test_an_absent_csi_camera_is_a_fault_that_leaks_no_descriptor_per_retry(clock):
    """Retried every reopen_max_s (10 s by default) for as long as the ribbon is out: one
    leaked descriptor per retry used up the unit's LimitNOFILE=8192 in under a day."""
    AbsentPicamera2.leaked = []
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    cam = PiCamera(clock, name="csi", picamera2_class=AbsentPicamera2)
    reader = CameraReader(cam, pipeline, clock, name="csi", watchdog=WD)
    try:
        for _ in range(20):
            reader.step()
            clock.advance(WD.reopen_max_s)
        assert AbsentPicamera2.leaked == []
        health = reader.health()
        assert health.state == "fault" and "no CSI camera 0" in health.detail
    finally:
        reader.stop()
        for fd in AbsentPicamera2.leaked:
            os.close(fd)


def test_a_csi_camera_held_by_another_program_says_busy_not_init_incomplete(clock):
    """picamera2 wraps libcamera's refusal ("Failed to acquire camera: Device or resource
    busy") in "Camera __init__ sequence did not complete."; the guard must see the cause."""

    class BusyPicamera2:
        global_camera_info = StubPicamera2.global_camera_info
        wait = StubPicamera2.wait
        cancel_all_and_flush = StubPicamera2.cancel_all_and_flush

        def __init__(self, num: int) -> None:
            try:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            except RuntimeError as e:
                raise RuntimeError("Camera __init__ sequence did not complete.") from e

    with pytest.raises(ReaderFault) as caught:
        PiCamera(clock, picamera2_class=BusyPicamera2).open()
    detail = str(caught.value)
    assert "Device or resource busy" in detail and "another program" in detail


class _CameraManager:
    """picamera2's class-wide ``CameraManager``: the cameras by number (``add``, ``cleanup``)."""

    def __init__(self) -> None:
        self.cameras: dict = {}

    def add(self, index: int, camera: object) -> None:
        self.cameras[index] = camera

    def cleanup(self, index: int) -> None:
        del self.cameras[index]


class HeldPicamera2:
    """picamera2 while another program holds the camera, as its ``Picamera2.__init__``
    behaves: it makes its notification pipe, registers itself with the class's camera
    manager, then libcamera's acquire fails and it raises "Camera __init__ sequence did not
    complete." without closing the pipe; ``close()`` returns early for a camera not open."""

    _cm = _CameraManager()
    global_camera_info = StubPicamera2.global_camera_info
    wait = StubPicamera2.wait
    cancel_all_and_flush = StubPicamera2.cancel_all_and_flush

    def __init__(self, camera_num: int) -> None:
        self.notifyme_r, self.notifyme_w = os.pipe2(os.O_NONBLOCK)
        self.notifymeread = os.fdopen(self.notifyme_r, "rb")
        self.is_open = False
        self._cm.add(camera_num, self)
        try:
            try:
                raise OSError(16, "Device or resource busy")
            except OSError as e:
                raise RuntimeError("Failed to acquire camera") from e
        except Exception as e:
            raise RuntimeError("Camera __init__ sequence did not complete.") from e

    def close(self) -> None:
        if not self.is_open:
            return


def _open_descriptors() -> int:
    import gc

    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_a_csi_camera_held_by_another_program_leaks_no_descriptor_per_retry(clock):
    """Retried every reopen_max_s while rpicam-hello or a second kiosk service holds the
    camera: picamera2 left its notification pipe open at each failed construction, and the
    unit's LimitNOFILE=8192 ran out in under a day (then the web server and the event log
    failed too)."""
    HeldPicamera2._cm = _CameraManager()
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    cam = PiCamera(clock, name="csi", picamera2_class=HeldPicamera2)
    reader = CameraReader(cam, pipeline, clock, name="csi", watchdog=WD)
    try:
        reader.step()
        clock.advance(WD.reopen_max_s)
        before = _open_descriptors()
        for _ in range(20):
            reader.step()
            clock.advance(WD.reopen_max_s)
        assert _open_descriptors() - before <= 0
        assert HeldPicamera2._cm.cameras == {}  # no failed camera kept by picamera2
        health = reader.health()
        assert health.state == "fault" and "Device or resource busy" in health.detail
    finally:
        reader.stop()


def test_a_picamera2_too_old_for_a_capture_timeout_is_one_fault_naming_the_upgrade(
    clock, stub_picamera2
):
    """picamera2 before 0.3.17 (the python3-picamera2 of the first Bookworm images, which
    scripts/install leaves as it finds it) has ``wait(job)`` with no timeout: every capture
    failed with "TypeError: ... unexpected keyword argument 'timeout'" and left its job
    queued in picamera2, one more per frame."""

    class Picamera2Before0317(stub_picamera2):
        def wait(self, job):  # picamera2 0.3.12-0.3.16
            return self.frame

    with pytest.raises(ReaderFault) as caught:
        PiCamera(clock, picamera2_class=Picamera2Before0317).open()
    assert "too old" in str(caught.value) and "python3-picamera2" in str(caught.value)
    assert stub_picamera2.made == []  # the camera is not taken


class Picamera2Before0320:
    """picamera2 0.3.17-0.3.19 as its jobs behave (v0.3.19, picamera2/picamera2.py): ``wait``
    takes a timeout, but there is no ``cancel_all_and_flush`` (0.3.20), and ``stop()``
    dispatches its own job and waits for it with no timeout, while the event loop runs jobs
    strictly in order: behind a capture that never completes (a loose ribbon) it never
    returns."""

    made: list[Picamera2Before0320] = []
    global_camera_info = StubPicamera2.global_camera_info

    def __init__(self, num: int) -> None:
        self.queue: list[StubJob] = []
        self.stopping = threading.Event()
        Picamera2Before0320.made.append(self)

    def create_video_configuration(self, **_kwargs) -> dict:
        return {}

    def configure(self, config) -> None:
        pass

    def start(self) -> None:
        pass

    def capture_array(self, stream: str, wait: bool | None = None) -> StubJob:
        self.queue.append(StubJob())  # no request completes: it stays first in the queue
        return self.queue[-1]

    def wait(self, job: StubJob, timeout: float | None = None) -> np.ndarray:
        if job.cancelled.wait(timeout if timeout is not None else WAIT_S):
            raise RuntimeError("never cancelled: 0.3.19 has no cancel")
        raise TimeoutError

    def stop(self) -> None:
        self.stopping.set()
        stop_job = StubJob()
        self.queue.append(stop_job)
        # dispatch_functions([self.stop_], wait=True): job.get_result() with no timeout,
        # behind the capture (bounded here only so a failing test ends).
        stop_job.cancelled.wait(WAIT_S)

    def close(self) -> None:
        pass


def test_a_picamera2_that_cannot_cancel_a_capture_is_too_old_and_never_taken(clock):
    """picamera2 0.3.17-0.3.19 passed the version check (its wait() has a timeout), but a
    loose ribbon then left the reader's thread in ``stop()`` for ever (it waits behind the
    capture that never completes, and there is no cancel_all_and_flush to end it) while the
    reader's health still said ok. Such a picamera2 is refused at open, naming 0.3.20."""
    Picamera2Before0320.made = []
    with pytest.raises(ReaderFault) as caught:
        PiCamera(clock, picamera2_class=Picamera2Before0320).open()
    text = str(caught.value)
    assert "too old" in text and "0.3.20" in text and "python3-picamera2" in text
    assert Picamera2Before0320.made == []  # the camera is not taken


class WedgedStopPicamera2(StubPicamera2):
    """A picamera2 whose ``stop()`` does not return until ``release`` is set (a driver stuck
    in the kernel): the reader's thread is held in it."""

    stopping = threading.Event()
    release = threading.Event()

    def stop(self) -> None:
        WedgedStopPicamera2.stopping.set()
        WedgedStopPicamera2.release.wait(WAIT_S)


def test_a_camera_lost_is_a_fault_while_its_close_is_still_stuck(clock, stub_picamera2):
    """The reader closed a lost camera first and said so afterwards: a close stuck in the
    camera's driver left the health as it was before (ok, after the last frame) for as long
    as it hung."""
    stub_picamera2.mode = "hang"
    WedgedStopPicamera2.stopping, WedgedStopPicamera2.release = threading.Event(), threading.Event()
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    cam = PiCamera(clock, name="csi", capture_timeout_s=300, picamera2_class=WedgedStopPicamera2)
    reader = CameraReader(cam, pipeline, clock, name="csi", watchdog=WD)
    reader.step()  # opens; the capture never completes
    assert reader.health().state != "fault"
    clock.advance(WD.stale_frame_s)
    stepping = threading.Thread(target=reader.step, daemon=True)
    stepping.start()  # the watchdog: no frame for 2 s -> lost -> close, stuck in stop()
    try:
        assert WedgedStopPicamera2.stopping.wait(WAIT_S)
        health = reader.health()
        assert health.state == "fault" and "camera lost" in health.detail
    finally:
        WedgedStopPicamera2.release.set()
        stepping.join(WAIT_S)
        reader.stop()


def _libcamera_list(ids: list[str]) -> list[dict]:
    """picamera2's ``global_camera_info()``: libcamera's cameras (on Raspberry Pi OS a USB
    webcam too, through its UVC pipeline), sorted CSI first and USB ones last."""
    cams = [{"Model": i.rsplit("/", 1)[-1], "Id": i, "Num": n} for n, i in enumerate(ids)]
    return sorted(cams, key=lambda c: ("/usb" not in c["Id"], c["Id"]), reverse=True)


@pytest.mark.parametrize(
    ("ids", "num"),
    [
        (["/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1:1.0-046d:0825"], 0),
        (
            [
                "/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1:1.0-046d:0825",
                "/base/soc/i2c0mux/i2c@1/imx708@1a",
            ],
            1,
        ),
    ],
)
def test_a_usb_webcam_is_not_taken_for_a_missing_csi_camera(clock, ids, num):
    """libcamera lists a USB webcam beside the CSI cameras: with the ribbon out (or a second
    CSI camera configured that is not there), Picamera2(num) opened the webcam instead, and
    the guard was told the CSI camera worked, or that it was busy (the USB reader had it)."""
    opened: list[dict] = []

    class Picamera2WithWebcam:
        wait = StubPicamera2.wait
        cancel_all_and_flush = StubPicamera2.cancel_all_and_flush

        @staticmethod
        def global_camera_info() -> list[dict]:
            return _libcamera_list(ids)

        def __init__(self, camera_num: int) -> None:
            opened.append(self.global_camera_info()[camera_num])

    with pytest.raises(ReaderFault, match=f"no CSI camera {num}"):
        PiCamera(clock, camera_num=num, picamera2_class=Picamera2WithWebcam).open()
    assert opened == []


@pytest.mark.parametrize(
    ("node", "why"),
    [
        (None, "no such device"),
        ("file", "not a capture node, or busy"),
    ],
)
def test_a_usb_camera_that_does_not_open_says_why(clock, code_scene, tmp_path, node, why):
    """OpenCV's V4L2 backend only says "not opened": the guard saw "cannot open /dev/video0"
    for an unplugged camera and for a Pi 5's CSI front-end node alike."""
    device = tmp_path / "video0"
    if node == "file":
        device.write_bytes(b"")
    cam = UsbCamera(
        str(device), clock, capture_factory=lambda *_a: FakeCapture(code_scene, opened=False)
    )
    with pytest.raises(ReaderFault) as caught:
        cam.open()
    assert str(caught.value).startswith(f"cannot open {device}: {why}")


def test_a_usb_camera_the_kiosk_user_may_not_open_names_the_group(
    clock, code_scene, tmp_path, monkeypatch
):
    device = tmp_path / "video0"
    device.write_bytes(b"")
    monkeypatch.setattr("drivers.camera.os.access", lambda *_a: False)  # tests run as root
    cam = UsbCamera(
        str(device), clock, capture_factory=lambda *_a: FakeCapture(code_scene, opened=False)
    )
    with pytest.raises(ReaderFault, match="permission denied .*group video"):
        cam.open()


def test_picamera_controls_exposure_and_focus_from_the_config(clock, stub_picamera2):
    phone = parse_config(
        {
            "readers": {
                "sources": [
                    {
                        "type": "picamera",
                        "exposure": {"mode": "auto", "compensation_ev": -1.5},
                        "focus": {"mode": "fixed", "lens_dioptres": 3.0},
                    }
                ]
            }
        }
    ).readers.sources[0]
    cam = PiCamera(
        clock, exposure=phone.exposure, focus=phone.focus, picamera2_class=stub_picamera2
    )
    cam.open()
    controls = stub_picamera2.made[0].calls[0][3]
    assert controls["AeEnable"] is True and controls["ExposureValue"] == -1.5
    assert (controls["AfMode"], controls["LensPosition"]) == (0, 3.0)
    cam.close()


def test_picamera_manual_exposure_and_no_focus_on_a_camera_without_a_lens_motor(
    clock, stub_picamera2, monkeypatch
):
    from kiosk.config.readers import ExposureConfig, FocusConfig

    monkeypatch.setattr(stub_picamera2, "camera_controls", {"ExposureTime": (1, 10**6, 1000)})
    cam = PiCamera(
        clock,
        exposure=ExposureConfig(mode="manual", exposure_us=4000, gain=2.0),
        focus=FocusConfig(mode="continuous"),
        picamera2_class=stub_picamera2,
    )
    cam.open()
    controls = stub_picamera2.made[0].calls[0][3]
    assert (controls["AeEnable"], controls["ExposureTime"], controls["AnalogueGain"]) == (
        False,
        4000,
        2.0,
    )
    assert "AfMode" not in controls  # picamera2 would refuse a control the sensor lacks
    cam.close()


NUMPY_DTYPE_SIZE = (
    "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility."
    " Expected 96 from C header, got 88 from PyObject')"
)


def _numpy_abi_picamera2(root, monkeypatch, failure: str = NUMPY_DTYPE_SIZE) -> None:
    """picamera2 laid out as on Bookworm: /usr/lib/python3/dist-packages/picamera2 whose
    encoders import Debian's simplejpeg, a C extension built against numpy 1.24 that fails
    at import under numpy 2 (``failure``: "numpy.dtype size changed"); sys.modules entries
    dropped."""
    dist = root / "usr/lib/python3/dist-packages"
    (dist / "picamera2" / "encoders").mkdir(parents=True)
    (dist / "picamera2" / "__init__.py").write_text("from .picamera2 import Picamera2\n")
    (dist / "picamera2" / "picamera2.py").write_text(
        "import libcamera\nimport numpy\nfrom picamera2.encoders import JpegEncoder\n"
        "class Picamera2:\n    pass\n"
    )
    (dist / "picamera2" / "encoders" / "__init__.py").write_text(
        "from .jpeg_encoder import JpegEncoder\n"
    )
    (dist / "picamera2" / "encoders" / "jpeg_encoder.py").write_text(
        "import simplejpeg\nclass JpegEncoder:\n    pass\n"
    )
    (dist / "libcamera").mkdir()
    (dist / "libcamera" / "__init__.py").write_text("")
    (dist / "simplejpeg").mkdir()
    (dist / "simplejpeg" / "__init__.py").write_text(
        "import numpy\n"
        "BUILT_FOR = 1\n"
        "if int(numpy.__version__.split('.')[0]) != BUILT_FOR:\n"
        f"    {failure}\n"
    )
    monkeypatch.syspath_prepend(str(dist))
    for name in [
        m for m in sys.modules if m.split(".")[0] in ("picamera2", "libcamera", "simplejpeg")
    ]:
        monkeypatch.delitem(sys.modules, name)
    return dist


def test_picamera2_against_the_wrong_numpy_is_one_fault_line_not_a_traceback_per_frame(
    clock, tmp_path, monkeypatch, caplog
):
    _numpy_abi_picamera2(tmp_path, monkeypatch)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(PiCamera(clock, name="csi"), pipeline, clock, name="csi", watchdog=WD)
    caplog.set_level("DEBUG", logger="drivers")
    for _ in range(30):  # two seconds of frames at 15 fps, and reopen attempts
        reader.step()
        clock.advance(WD.reopen_max_s)
    health = reader.health()
    assert health.state == "fault"
    assert "numpy.dtype size changed" in health.detail and "simplejpeg" in health.detail
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert reader.faults.lines == 1


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (
            "raise ImportError('numpy.core.multiarray failed to import')",
            "ImportError: numpy.core.multiarray failed to import",
        ),
        ("import pidng", "ModuleNotFoundError: No module named 'pidng'"),
    ],
)
def test_picamera2_that_is_installed_and_fails_to_import_says_its_error_not_missing(
    clock, tmp_path, monkeypatch, failure, said
):
    """An apt extension built for numpy 1.x fails under numpy 2 with an ImportError
    ("numpy.core.multiarray failed to import"): every ImportError was "picamera2 is not
    installed", which sent the fitter to install what was there. The error is said, with the
    numpy hint when numpy is its cause."""
    _numpy_abi_picamera2(tmp_path, monkeypatch, failure)
    with pytest.raises(ReaderFault) as err:
        PiCamera(clock).open()
    assert said in str(err.value)
    assert "is not installed" not in str(err.value)
    assert ("simplejpeg into the venv" in str(err.value)) == ("numpy" in said)


def test_picamera2_without_libcamera_bindings_names_the_debian_package(
    clock, tmp_path, monkeypatch
):
    _numpy_abi_picamera2(tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "libcamera", None)  # Debian's python3-libcamera absent
    with pytest.raises(ReaderFault, match="apt-get install python3-picamera2"):
        PiCamera(clock).open()


def test_simplejpeg_in_the_venv_ahead_of_debians_lets_picamera2_load(clock, tmp_path, monkeypatch):
    """The fix scripts/install applies: simplejpeg from PyPI (built for the venv's numpy) in
    the venv's site-packages, which comes before dist-packages on sys.path."""
    from drivers.picamera import _load_picamera2

    _numpy_abi_picamera2(tmp_path, monkeypatch)
    venv = tmp_path / "venv-site-packages"
    (venv / "simplejpeg").mkdir(parents=True)
    (venv / "simplejpeg" / "__init__.py").write_text("import numpy\n")
    monkeypatch.syspath_prepend(str(venv))
    cls = _load_picamera2()
    assert cls.__name__ == "Picamera2" and sys.modules["simplejpeg"].__file__.startswith(str(venv))


def test_a_source_that_raises_anything_at_open_is_a_fault_logged_once(clock, caplog):
    class Broken:
        name = "broken"
        opens = 0

        def open(self):
            Broken.opens += 1
            raise KeyError("sensor mode table")

        def read(self):  # pragma: no cover - never opened
            raise AssertionError

        def close(self):
            pass

    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(Broken(), pipeline, clock, name="broken", watchdog=WD)
    caplog.set_level("WARNING", logger="drivers")
    for _ in range(8):
        reader.step()
        clock.advance(WD.reopen_max_s)
    assert Broken.opens == 8
    assert reader.health().state == "fault" and "KeyError" in reader.health().detail
    assert len(caplog.records) == 1


def test_an_open_that_never_returns_is_a_fault_after_the_start_timeout(clock):
    class Hanging:
        """A driver whose open() blocks (a wedged libcamera or V4L2 open)."""

        name = "hanging"

        def __init__(self):
            self.entered = threading.Event()
            self.release = threading.Event()

        def open(self):
            self.entered.set()
            self.release.wait(WAIT_S)
            raise ReaderFault("gave up")

        def read(self):  # pragma: no cover - never opened
            raise AssertionError

        def close(self):
            pass

    source = Hanging()
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(source, pipeline, clock, watchdog=WatchdogConfig(start_timeout_s=15))
    reader.start(lambda code: None)
    try:
        assert source.entered.wait(WAIT_S)  # the worker is stuck in open()
        clock.advance(14.9)
        assert reader.health().state == "degraded"
        clock.advance(0.1)
        health = reader.health()
        assert health.state == "fault" and "not started within 15 s" in health.detail
    finally:
        source.release.set()
        reader.stop()


def test_usb_camera_logs_the_format_it_actually_delivers_and_what_it_refused(
    clock, code_scene, caplog
):
    factory = CaptureFactory(code_scene)
    cam = UsbCamera("/dev/video0", clock, capture_factory=factory)
    original = factory.__call__

    def refusing(device, api):
        cap = original(device, api)
        cap.refuse = {cv2.CAP_PROP_FOURCC}
        return cap

    cam._factory = refusing
    caplog.set_level("INFO", logger="drivers")
    cam.open()
    assert cam.delivered == "YUYV 640x480 @ 15 fps"
    text = caplog.text
    assert "delivers YUYV 640x480 @ 15 fps" in text and "refused MJPG" in text
    cam.close()


def test_usb_camera_manual_exposure_and_fixed_focus(clock, code_scene):
    from kiosk.config.readers import ExposureConfig, FocusConfig

    factory = CaptureFactory(code_scene)
    cam = UsbCamera(
        "/dev/video0",
        clock,
        exposure=ExposureConfig(mode="manual", exposure_us=5000),
        focus=FocusConfig(mode="fixed", v4l2_focus=40),
        capture_factory=factory,
    )
    cam.open()
    props = factory.made[0].props
    assert props[cv2.CAP_PROP_AUTO_EXPOSURE] == 1 and props[cv2.CAP_PROP_EXPOSURE] == 50
    assert props[cv2.CAP_PROP_AUTOFOCUS] == 0 and props[cv2.CAP_PROP_FOCUS] == 40
    cam.close()
    auto = UsbCamera("/dev/video0", clock, capture_factory=factory)
    auto.open()
    assert cv2.CAP_PROP_AUTO_EXPOSURE not in factory.made[1].props  # auto: left alone
    auto.close()


class V4l2Capture(FakeCapture):
    """OpenCV's V4L2 capture as to descriptors: it opens the device node (the lowest free
    descriptor) and waits for each frame with select(), whose FD_SET writes past the set for
    a descriptor numbered 1024 or more (stack corruption, or glibc's fortify abort)."""

    def __init__(self, scene: np.ndarray) -> None:
        super().__init__(scene)
        self.fd = os.open(os.devnull, os.O_RDONLY)

    def read(self) -> tuple[bool, np.ndarray | None]:
        assert self.fd < 1024, f"FD_SET({self.fd}): past FD_SETSIZE, the daemon aborts"
        return super().read()

    def release(self) -> None:
        super().release()
        os.close(self.fd)


def test_a_usb_camera_reopened_past_descriptor_1024_gets_one_select_can_wait_on(clock, code_scene):
    """A busy daemon (LAN connections, LimitNOFILE=8192) reopening a re-plugged USB camera:
    OpenCV's V4L2 backend got a descriptor past 1024 and its select() corrupted the stack
    (or aborted the whole daemon). The camera keeps a low descriptor to open with."""
    made: list[V4l2Capture] = []

    def factory(*_a):
        made.append(V4l2Capture(code_scene))
        return made[-1]

    cam = UsbCamera("/dev/video0", clock, capture_factory=factory)  # at start: few descriptors
    try:
        with descriptors_past_1024():
            for _ in range(3):  # unplugged and back, again and again
                cam.open()
                frame, _ = cam.read()
                assert frame is not None
                cam.close()
    finally:
        with contextlib.suppress(OSError):
            cam.close()
    assert len(made) == 3


@pytest.mark.hardware
def test_real_usb_camera_delivers_frames(clock):
    """KIOSK_TEST_HARDWARE_CAMERA names the node, else the first USB camera in
    /dev/v4l/by-id (on a Pi, /dev/video0 may be the CSI front end's node, not a webcam)."""
    import glob

    found = sorted(glob.glob("/dev/v4l/by-id/usb-*-video-index0"))
    device = os.environ.get("KIOSK_TEST_HARDWARE_CAMERA") or (found[0] if found else "")
    if not device:
        pytest.skip("no USB camera in /dev/v4l/by-id")
    cam = UsbCamera(device, clock)
    cam.open()
    try:
        frame, _ = cam.read()
        assert frame.ndim == 3
    finally:
        cam.close()


# -- build_readers -----------------------------------------------------------------------


def test_default_config_builds_a_fake_camera_reader_the_demo_can_script(clock):
    readers = build_readers(parse_config({}).readers, clock)
    assert len(readers) == 1
    reader = readers[0]
    assert isinstance(reader, CameraReader) and isinstance(reader.source, FakeCamera)
    assert reader.name == "camera"


def test_camera_and_serial_sources_run_side_by_side_with_their_own_tags(clock, tmp_path):
    cfg = parse_config(
        {
            "readers": {
                "sources": [
                    {"type": "camera", "name": "cam", "device": "/dev/video2"},
                    {"type": "picamera", "name": "csi"},
                    {"type": "serial", "name": "gm65", "port": "loop://", "trigger_hex": "7E00"},
                    {"type": "fake_camera", "name": "files", "images": str(tmp_path)},
                ]
            }
        }
    ).readers
    readers = build_readers(cfg, clock)
    assert [r.name for r in readers] == ["cam", "csi", "gm65", "files"]
    assert isinstance(readers[0].source, UsbCamera)
    assert isinstance(readers[1].source, PiCamera)
    assert isinstance(readers[2], SerialScanner)
    assert isinstance(readers[3].source, FileSource)
    assert readers[0].pipeline is not readers[3].pipeline


def test_duplicate_source_names_are_a_config_error():
    from kiosk.config import ConfigError

    with pytest.raises(ConfigError, match="unique"):
        parse_config({"readers": {"sources": [{"type": "camera"}, {"type": "fake_camera"}]}})


def test_missing_decoder_library_fails_the_build_with_the_install_hint(clock, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(DecoderUnavailable, match="zxing-cpp"):
        build_readers(parse_config({}).readers, clock)


# -- OpenCV's VideoCapture is not thread-safe: release() must not land inside read() ---------


class OverlapCapture(FakeCapture):
    """Records a ``release()`` that lands while another thread is inside ``read()``: on a
    real V4L2 capture that unmaps the buffers a read is decoding from (a crash)."""

    def __init__(self, scene: np.ndarray, mode: str = "ok") -> None:
        super().__init__(scene, mode)
        self._inside = 0
        self._mu = threading.Lock()
        self.released_during_read = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._mu:
            self._inside += 1
        try:
            return super().read()
        finally:
            with self._mu:
                self._inside -= 1

    def release(self) -> None:
        with self._mu:
            self.released_during_read += self._inside
        super().release()


class OverlapFactory(CaptureFactory):
    def __call__(self, device, api) -> FakeCapture:
        mode = self.modes.pop(0) if self.modes else "ok"
        cap = OverlapCapture(self.scene, mode)
        self.made.append(cap)
        return cap


def test_a_frozen_camera_is_released_only_after_its_read_returned(clock, code_scene):
    factory = OverlapFactory(code_scene)
    factory.modes = ["frozen"]
    reader = _delivering_reader(clock, factory)
    clock.advance(3.0)
    _step_with_frame(reader)  # the same frame for frozen_frame_s: lost, released
    assert reader.health().state == "fault"
    assert factory.made[0].released.is_set()
    assert factory.made[0].released_during_read == 0
    reader.stop()


def test_stopping_a_delivering_camera_releases_it_after_its_read_returned(clock, code_scene):
    factory = OverlapFactory(code_scene)
    reader = _delivering_reader(clock, factory)
    assert reader.health().state == "ok"
    reader.stop()
    assert factory.made[0].released.is_set()
    assert factory.made[0].released_during_read == 0


def test_a_camera_reopened_all_day_says_its_format_once_not_at_every_open(clock, caplog):
    """A camera that keeps dropping out is reopened every ~12 s (stale 2 s, backoff 10 s):
    each open logged what it delivers, what it refused and the exposure warning, 900 lines
    an hour. They are said again only when what the camera does changes."""
    from kiosk.config.readers import ExposureConfig

    factory = CaptureFactory(np.zeros((8, 8), np.uint8))  # opened, never read
    cam = UsbCamera(
        "/dev/video0",
        clock,
        exposure=ExposureConfig(compensation_ev=1.0),
        capture_factory=factory,
    )
    original = factory.__call__
    refuse = {cv2.CAP_PROP_FOURCC}

    def refusing(device, api):
        cap = original(device, api)
        cap.refuse = set(refuse)
        return cap

    cam._factory = refusing
    caplog.set_level("INFO", logger="drivers")
    for _ in range(300):  # an hour of reopens
        cam.open()
        cam.close()
    assert len([r for r in caplog.records if "delivers" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "refused MJPG" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "exposure compensation" in r.getMessage()]) == 1
    refuse.clear()  # another camera plugged in: MJPEG this time
    cam.open()
    cam.close()
    delivers = [r.getMessage() for r in caplog.records if "delivers" in r.getMessage()]
    assert len(delivers) == 2 and "MJPG" in delivers[1]


def test_the_installs_picamera2_check_names_a_load_failure_and_an_old_picamera2(
    clock, tmp_path, monkeypatch
):
    from drivers.picamera import TOO_OLD, picamera2_problem

    _numpy_abi_picamera2(tmp_path, monkeypatch)
    assert "numpy.dtype size changed" in (picamera2_problem() or "")

    class Old:
        def wait(self, job): ...

    monkeypatch.setattr("drivers.picamera._load_picamera2", lambda: Old)
    assert picamera2_problem() == TOO_OLD

    class Before0320(Old):
        def wait(self, job, timeout=None): ...

    monkeypatch.setattr("drivers.picamera._load_picamera2", lambda: Before0320)
    assert picamera2_problem() == TOO_OLD  # no cancel_all_and_flush: a stop() may hang

    class Recent(Before0320):
        def cancel_all_and_flush(self): ...

    monkeypatch.setattr("drivers.picamera._load_picamera2", lambda: Recent)
    assert picamera2_problem() is None
