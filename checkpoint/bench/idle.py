"""``idle``: CPU spent by the reader pipeline on an unchanging scene at 15 fps.

Nobody at the gate: the camera still delivers 15 frames a second, each with fresh sensor
noise. ``cpu_fraction`` is the pipeline's CPU time divided by the wall time those frames
span (virtual time, ``FakeClock``; CPU from ``time.thread_time``), with the change gate on;
``every_frame_cpu_fraction`` is the same pipeline made to decode every frame (threshold 0).
``ratio`` = gated / every-frame (target <= 0.2). Medians over repeats, same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from drivers.decoders import build_decoder
from drivers.fake_camera import FakeCamera
from drivers.pipeline import FramePipeline
from kiosk.clock import FakeClock
from kiosk.config.readers import DecoderConfig

FPS = 15.0


def _cpu_fraction(frames: list[np.ndarray], n: int, cfg: DecoderConfig) -> float:
    clock = FakeClock()
    pipeline = FramePipeline(build_decoder(cfg.backend), cfg, clock)
    step_s = 1.0 / FPS
    cpu = 0.0
    for i in range(n):
        frame = frames[i % len(frames)]
        started = time.thread_time()
        pipeline.process(frame, clock.monotonic_ns())
        cpu += time.thread_time() - started
        clock.advance(step_s)
    return cpu / (n * step_s)


def run(quick: bool) -> dict[str, Any]:
    n, repeats = (150, 3) if quick else (450, 5)
    camera = FakeCamera(FakeClock(), fps=FPS, seed=7)
    camera.show_nothing()
    camera.open()
    frames = [camera.read()[0] for _ in range(30)]  # fresh sensor noise on every frame
    camera.close()
    gated_cfg = DecoderConfig()
    every_cfg = DecoderConfig(change_threshold=0.0)
    gated, every = [], []
    for _ in range(repeats):
        gated.append(_cpu_fraction(frames, n, gated_cfg))
        every.append(_cpu_fraction(frames, n, every_cfg))
    g, e = statistics.median(gated), statistics.median(every)
    return {
        "fps": FPS,
        "cpu_fraction": round(g, 5),
        "every_frame_cpu_fraction": round(e, 5),
        "ratio": round(g / e, 3) if e > 0 else None,
    }
