"""The camera at a real gate, all day: covered, frozen, swapped, in the sun (field round)."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest
from support import wait_for_frame

from drivers.camera import CameraReader, UsbCamera
from drivers.decoders import build_decoder
from drivers.fake_camera import FakeCamera, add_noise, render_scene
from drivers.picamera import PiCamera
from drivers.pipeline import FramePipeline
from kiosk.config.readers import DecoderConfig, WatchdogConfig
from kiosk.devices import ReaderFault

WD = WatchdogConfig(stale_frame_s=2.0, frozen_frame_s=3.0, reopen_initial_s=0.5, reopen_max_s=4.0)
FRAME_S = 0.5  # virtual time between pumped frames: a slow camera, few frames per test


def _pumped(clock, cam: FakeCamera) -> CameraReader:
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="gate-cam")
    reader = CameraReader(cam, pipeline, clock, name="gate-cam", watchdog=WD)
    reader.pump()  # opens
    reader.pump()
    assert reader.health().state == "ok"
    return reader


def _run_for(clock, reader: CameraReader, seconds: float) -> None:
    for _ in range(int(seconds / FRAME_S)):
        clock.advance(FRAME_S)
        reader.pump()


@pytest.mark.slow
@pytest.mark.parametrize("level", [6, 128, 245])
def test_a_covered_camera_or_one_facing_a_blank_wall_is_a_reader_fault(clock, level):
    """A hand, tape or a cap over the lens (dark), or the camera knocked round to a plain wall
    (grey, white) still delivers live frames with sensor noise: the watchdog saw a healthy
    camera, the guard was never told and every resident's pass went unread."""
    cam = FakeCamera(clock, seed=4, noise_sigma=8.0)  # a covered sensor runs at full gain
    reader = _pumped(clock, cam)
    cam.show_image(np.full((480, 640, 3), level, np.uint8))
    _run_for(clock, reader, 29.0)
    assert reader.health().state == "ok"  # someone's hand passing by is not a fault
    _run_for(clock, reader, 2.0)
    health = reader.health()
    assert health.state == "fault"
    assert "covered" in health.detail and "uniform picture" in health.detail
    assert reader.reopens == 1  # not a lost device: nothing to reopen
    cam.show_nothing()  # uncovered
    _run_for(clock, reader, 1.0)
    assert reader.health().state == "ok"


def _plain_wall(level: float, falloff: float, tilt: float) -> np.ndarray:
    """A plain wall as a cheap webcam sees it: darker towards the corners (the lens's
    vignetting, ``falloff`` of the centre's light there) and lit more from one side."""
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    r2 = ((xx - 320) / 320) ** 2 + ((yy - 240) / 240) ** 2
    wall = level * (1 - falloff * r2 / 2) + tilt * xx / 640
    return np.repeat(np.clip(wall, 0, 255)[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize(("level", "falloff", "tilt"), [(150, 0.4, 0), (200, 0.3, 30)])
def test_a_camera_turned_to_a_plain_wall_is_a_reader_fault_despite_its_vignetting(
    clock, level, falloff, tilt
):
    """A camera knocked round to face the wall beside it sees no flat grey: its lens darkens
    the corners by a third or more, which spans far more grey levels than any threshold on
    the picture's range allows, and the camera stayed 'ok' facing the wall."""
    cam = FakeCamera(clock, seed=4, noise_sigma=8.0)
    reader = _pumped(clock, cam)
    cam.show_image(_plain_wall(level, falloff, tilt))
    _run_for(clock, reader, 31.0)
    health = reader.health()
    assert health.state == "fault" and "facing a blank surface" in health.detail


@pytest.mark.slow
def test_a_dim_gate_at_night_is_not_a_covered_camera(clock):
    cam = FakeCamera(clock, seed=4, noise_sigma=8.0)
    reader = _pumped(clock, cam)
    night = (render_scene(None, None, seed=11).astype(np.float32) * 0.25).astype(np.uint8)
    cam.show_image(night)
    _run_for(clock, reader, 40.0)
    assert reader.health().state == "ok"


def test_a_camera_swapped_for_another_model_names_its_new_stable_path(clock, tmp_path, monkeypatch):
    """The config names the camera by its stable /dev/v4l/by-id path, which holds the model:
    a camera swapped for another model left the reader in "no such device (camera
    unplugged?)" with the new camera plugged in and working; the fault names its path."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    for link in (
        "usb-Generic_HD_Webcam_200901010001-video-index0",
        "usb-Generic_HD_Webcam_200901010001-video-index1",
    ):
        (by_id / link).write_bytes(b"")
    monkeypatch.setattr("drivers.camera.V4L_BY_ID", str(by_id))
    old = by_id / "usb-046d_C270_HD_WEBCAM_2D4AA0A0-video-index0"
    cam = UsbCamera(str(old), clock, capture_factory=lambda *_a: _Unopened())
    with pytest.raises(ReaderFault) as caught:
        cam.open()
    new = by_id / "usb-Generic_HD_Webcam_200901010001-video-index0"
    assert f'set device = "{new}"' in str(caught.value)
    assert "index1" not in str(caught.value)  # a camera's metadata node, not a capture node


def test_a_missing_camera_with_none_plugged_in_says_unplugged(clock, tmp_path, monkeypatch):
    monkeypatch.setattr("drivers.camera.V4L_BY_ID", str(tmp_path / "absent"))
    cam = UsbCamera(str(tmp_path / "video0"), clock, capture_factory=lambda *_a: _Unopened())
    with pytest.raises(ReaderFault, match="no such device .camera unplugged"):
        cam.open()


class _Unopened:
    """A ``cv2.VideoCapture`` of a device that did not open."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return False

    def release(self) -> None:
        pass


PASS = "KP1:NCFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"


def test_a_frozen_camera_is_no_live_preview_of_the_pass_it_froze_on(clock):
    """A USB camera whose sensor hung keeps handing over its last buffer, stamped as new:
    the kiosk screen's preview showed that picture, a resident's pass held up as it froze,
    to everyone at the gate after them, as live, through every reopen of the wedged camera.
    A repeated picture is not a new frame: the preview goes to standby as for a lost one."""
    from ui.kiosk_screen import fresh_frame

    cam = FakeCamera(clock, seed=4)
    reader = _pumped(clock, cam)
    cam.show_code(PASS, style="phone", seed=1)
    reader.pump()
    assert fresh_frame(reader.latest_frame(), clock.monotonic_ns()) is not None
    cam.freeze()
    for _ in range(40):  # 20 s: lost as frozen, reopened, the same picture again
        clock.advance(FRAME_S)
        reader.pump()
        assert fresh_frame(reader.latest_frame(), clock.monotonic_ns() + 1) is None or (
            reader.health().state == "ok"
        )
    assert reader.reopens >= 2 and "frozen" in reader.health().detail
    assert fresh_frame(reader.latest_frame(), clock.monotonic_ns()) is None
    cam.unfreeze()
    clock.advance(10.0)
    reader.pump()  # reopened
    reader.pump()
    assert reader.health().state == "ok"
    assert fresh_frame(reader.latest_frame(), clock.monotonic_ns()) is not None


def test_a_one_image_folder_keeps_its_preview(clock, tmp_path):
    """A file source may repeat its picture (the demo's one-image folder): still live."""
    from drivers.file_source import FileSource
    from ui.kiosk_screen import fresh_frame

    cv2.imwrite(str(tmp_path / "only.png"), np.full((48, 64, 3), 90, np.uint8))
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock)
    reader = CameraReader(FileSource(tmp_path, clock), pipeline, clock, watchdog=WD)
    for _ in range(10):
        reader.pump()
        clock.advance(1.0)
    reader.pump()
    assert fresh_frame(reader.latest_frame(), clock.monotonic_ns()) is not None


class StallingCapture:
    """A ``cv2.VideoCapture`` of a UVC camera whose stream stalls (a hub brown-out), with
    OpenCV's object lifetime: ``release()`` destroys the capture (stops the stream, unmaps
    its buffers, frees the object) and the stream stopping wakes a read blocked in the same
    object, which then carries on inside what was freed: a use-after-free, recorded here."""

    def __init__(self, scene: np.ndarray, stall: bool) -> None:
        self.scene = scene
        self.stall = stall
        self.released = threading.Event()
        self._wake = threading.Event()  # the read's wait ends: a timeout or a release
        self.reading = 0
        self.released_under_read = False
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        self.reading += 1
        try:
            if self.stall:
                self._wake.wait(10.0)  # bounded: no test hangs on it
                return False, None
            if self.released.wait(0.005):
                return False, None
            return True, add_noise(self.scene, 3, self.reads)
        finally:
            self.reading -= 1

    def select_timeout(self) -> None:
        """OpenCV's own wait for the next frame runs out: the read returns False."""
        self._wake.set()

    def release(self) -> None:
        if self.reading:
            self.released_under_read = True
        self.released.set()
        self._wake.set()


def test_a_stalled_usb_camera_is_never_released_under_its_own_read(clock):
    """The watchdog released a stalled camera to wake its blocked read: OpenCV's release()
    frees the capture while that read is inside it, and the woken read went on to dequeue a
    buffer through a closed (or by then reopened) descriptor and decode from unmapped
    memory. The capture is released by its own read's thread once the read has returned
    (OpenCV's select timeout, which the kiosk sets to a few seconds)."""
    scene = render_scene(PASS, None, seed=2)
    made: list[StallingCapture] = []

    def factory(device, api) -> StallingCapture:
        made.append(StallingCapture(scene, stall=not made))
        return made[-1]

    source = UsbCamera("/dev/video0", clock, capture_factory=factory)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="gate-cam")
    reader = CameraReader(source, pipeline, clock, name="gate-cam", watchdog=WD)
    try:
        reader.step()  # opens; its read stalls
        clock.advance(WD.stale_frame_s)
        reader.step()
        assert "no frame for 2 s" in reader.health().detail
        stalled = made[0]
        assert not stalled.released_under_read
        stalled.select_timeout()  # the read gives up by itself
        assert stalled.released.wait(5.0)  # and its thread releases the capture
        assert not stalled.released_under_read
        clock.advance(WD.reopen_initial_s)
        reader.step()  # reopened
        assert wait_for_frame(reader, 5.0)
        reader.step()
        assert reader.health().state == "ok" and len(made) == 2
    finally:
        reader.stop()
        for cap in made:
            cap.select_timeout()
    assert not any(cap.released_under_read for cap in made)


def test_opencvs_wait_for_a_frame_of_a_stalled_camera_is_a_few_seconds(clock, monkeypatch):
    """OpenCV waits 10 s by default before a read of a stalled camera gives up, holding the
    capture (and its device) that long; the kiosk asks for 3 s unless the site set it."""
    monkeypatch.setenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "x")
    monkeypatch.delenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT")
    scene = render_scene(None, None, seed=2)
    cam = UsbCamera("/dev/video0", clock, capture_factory=lambda *_a: StallingCapture(scene, False))
    cam.open()
    cam.close()
    assert os.environ["OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT"] == "3"
    monkeypatch.setenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "7")
    cam.open()
    cam.close()
    assert os.environ["OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT"] == "7"


def test_a_csi_camera_replaced_by_a_usb_webcam_says_how_to_read_with_the_webcam(
    clock, tmp_path, monkeypatch
):
    """The ribbon camera failed and a USB webcam took its place at the gate: the reader said
    only "no CSI camera 0 ... check the ribbon", with the webcam libcamera lists beside it;
    it names the webcam and the source lines that read it."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-046d_C270_HD_WEBCAM_2D4AA0A0-video-index0").write_bytes(b"")
    monkeypatch.setattr("drivers.camera.V4L_BY_ID", str(by_id))

    class Picamera2WithOnlyAWebcam:
        @staticmethod
        def global_camera_info() -> list[dict]:
            usb = "/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1:1.0-046d:0825"
            return [{"Model": "uvcvideo", "Id": usb, "Num": 0}]

        def wait(self, job, timeout=None):  # noqa: ANN001, ANN201 - picamera2's signature
            raise AssertionError("never opened")

        def cancel_all_and_flush(self):  # noqa: ANN201 - picamera2's signature
            raise AssertionError("never opened")

    with pytest.raises(ReaderFault) as caught:
        PiCamera(clock, picamera2_class=Picamera2WithOnlyAWebcam).open()
    text = str(caught.value)
    webcam = by_id / "usb-046d_C270_HD_WEBCAM_2D4AA0A0-video-index0"
    assert text.startswith("no CSI camera 0")
    assert f'type = "camera", device = "{webcam}"' in text


def _new_driver_texts(tmp_path, monkeypatch) -> list[str]:
    """The camera faults this round added, as the drivers write them."""
    from drivers.camera import COVERED, not_opened_reason
    from drivers.picamera import NO_CAMERA, usb_instead

    by_id = tmp_path / "by-id"
    by_id.mkdir()
    monkeypatch.setattr("drivers.camera.V4L_BY_ID", str(by_id))
    old = f"{by_id}/usb-046d_C270_HD_WEBCAM_2D4AA0A0-video-index0"
    csi = NO_CAMERA.format(num=0, found=0)
    texts = [COVERED, csi + usb_instead()]
    (by_id / "usb-Generic_HD_Webcam_1-video-index0").write_bytes(b"")
    texts += [f"cannot open {old}: {not_opened_reason(old)}", csi + usb_instead()]
    (by_id / "usb-Generic_HD_Webcam_2-video-index0").write_bytes(b"")
    texts += [f"cannot open {old}: {not_opened_reason(old)}", csi + usb_instead()]
    return texts


def test_the_new_camera_faults_are_in_chinese_on_the_guards_devices_page(tmp_path, monkeypatch):
    import re

    from test_guard_devices import KEPT, detail_of

    config = re.compile(r'type = "camera"|device( = "[^"]+")?|\[\[readers\.sources\]\]| or |USB')
    for text in _new_driver_texts(tmp_path, monkeypatch):
        shown = detail_of(text, "zh-CN")
        assert shown != text
        assert not re.search(r"[A-Za-z]{2,}", KEPT.sub("", config.sub("", shown))), shown
        assert detail_of(text, "en") == text
