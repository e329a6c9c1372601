"""The camera at a real gate, all day: covered, frozen, swapped, in the sun (field round)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.camera import CameraReader
from drivers.decoders import build_decoder
from drivers.fake_camera import FakeCamera, render_scene
from drivers.pipeline import FramePipeline
from kiosk.config.readers import DecoderConfig, WatchdogConfig

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


def test_a_dim_gate_at_night_is_not_a_covered_camera(clock):
    cam = FakeCamera(clock, seed=4, noise_sigma=8.0)
    reader = _pumped(clock, cam)
    night = (render_scene(None, None, seed=11).astype(np.float32) * 0.25).astype(np.uint8)
    cam.show_image(night)
    _run_for(clock, reader, 40.0)
    assert reader.health().state == "ok"
