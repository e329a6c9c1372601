"""``decode``: the reader pipeline against the bare zxing-cpp call on the same frames.

The frames are generated from fixed seeds (``drivers.fake_camera``): pass-sized QR codes on
phone screens and paper cards, small, tilted, dim, blurred, with glare and JPEG artefacts,
harder phone screens (``SCREEN_KINDS``: dark-mode inverted codes, a dimmed low-contrast screen,
moire, dark mode with moire), plus empty scenes (no code) at the gate. The bare call is
``zxingcpp.read_barcodes`` asked for QR codes with the library's default settings (which try
inverted codes too, ``try_invert=True``), on the frame as the camera delivers it.
The pipeline is reset before each frame so every frame is really decoded (the change gate
would otherwise skip most of them and flatter the pipeline).

``screens`` breaks the harder screens down: frames, decoded, bare_decoded per kind.
``ratio`` is the worse of the code-frame and empty-frame ratios (pipeline median over bare
median), both measured in this run; ``false_reads`` counts any text that was not the one
rendered (it must stay 0).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from drivers.decoders import build_decoder
from drivers.fake_camera import (
    SCREEN_KINDS,
    sample_empty_frame,
    sample_frame,
    sample_screen_frame,
)
from drivers.pipeline import FramePipeline
from kiosk.clock import FakeClock
from kiosk.config.readers import DecoderConfig

SEED = 20260302


def make_frames(
    n_code: int, n_empty: int, seed: int = SEED, n_screen: int = 0
) -> list[tuple[np.ndarray, str | None]]:
    """``n_code`` frames with a code (seeds ``seed + i``), ``n_screen`` of each harder screen
    kind, then ``n_empty`` without a code."""
    frames: list[tuple[np.ndarray, str | None]] = [sample_frame(seed + i) for i in range(n_code)]
    for k, kind in enumerate(SCREEN_KINDS):
        frames += [sample_screen_frame(seed + 50_000 + 1000 * k + i, kind) for i in range(n_screen)]
    frames += [(sample_empty_frame(seed + 100_000 + i), None) for i in range(n_empty)]
    return frames


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def run(quick: bool) -> dict[str, Any]:
    import zxingcpp

    n_code, n_screen, n_empty, repeats = (48, 6, 16, 2) if quick else (120, 16, 40, 3)
    frames = make_frames(n_code, n_empty, n_screen=n_screen)
    kinds = ["plain"] * n_code + [k for k in SCREEN_KINDS for _ in range(n_screen)]
    screens: dict[str, dict[str, int]] = {
        k: {"frames": n_screen, "decoded": 0, "bare_decoded": 0} for k in SCREEN_KINDS
    }
    qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), FakeClock())

    def bare(frame: np.ndarray) -> list[str]:
        return [b.text for b in zxingcpp.read_barcodes(frame, formats=qr, try_invert=True)]

    def piped(frame: np.ndarray) -> list[str]:
        pipeline.reset()
        return [c.text for c in pipeline.process(frame, 0)]

    bare_t: dict[bool, list[float]] = {True: [], False: []}
    pipe_t: dict[bool, list[float]] = {True: [], False: []}
    decoded = bare_decoded = false_reads = 0
    for index, (frame, text) in enumerate(frames):
        b_runs: list[float] = []
        p_runs: list[float] = []
        for r in range(repeats):
            # Alternate the order so neither side always runs with a warm cache.
            order = (bare, piped) if r % 2 == 0 else (piped, bare)
            for fn in order:
                started = time.perf_counter()
                got = fn(frame)
                elapsed = time.perf_counter() - started
                (b_runs if fn is bare else p_runs).append(elapsed)
                if r == 0:
                    ok = text is not None and text in got
                    false_reads += sum(1 for g in got if g != text)
                    if fn is bare:
                        bare_decoded += ok
                    else:
                        decoded += ok
                    if index < len(kinds) and kinds[index] in screens:
                        screens[kinds[index]]["bare_decoded" if fn is bare else "decoded"] += ok
        has_code = text is not None
        bare_t[has_code].append(statistics.median(b_runs))
        pipe_t[has_code].append(statistics.median(p_runs))

    code_ratio = _median_ms(pipe_t[True]) / _median_ms(bare_t[True])
    empty_ratio = _median_ms(pipe_t[False]) / _median_ms(bare_t[False])
    all_bare = bare_t[True] + bare_t[False]
    all_pipe = pipe_t[True] + pipe_t[False]
    return {
        "frames": len(frames),
        "code_frames": len(kinds),
        "decoded": decoded,
        "bare_decoded": bare_decoded,
        "bare_ms": round(_median_ms(all_bare), 3),
        "pipeline_ms": round(_median_ms(all_pipe), 3),
        "ratio": round(max(code_ratio, empty_ratio), 3),
        "code_ratio": round(code_ratio, 3),
        "empty_ratio": round(empty_ratio, 3),
        "second_passes": pipeline.stats.second_passes // repeats,
        "false_reads": false_reads,
        "screens": screens,
    }
