"""Build the configured code readers: cameras, CSI cameras, serial and keyboard-mode
scanners, fakes.

Each camera-type source gets its own ``FramePipeline`` (the gate and hold-off are per
source); the decoder is shared, both backends being stateless per call. Several sources run
at once and every code is tagged with its source's ``name``.

Camera modules (OpenCV, numpy, the decoders) are imported only when a camera-type source is
configured: a gate with a serial scanner never loads them (~30 MB of its memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from kiosk.backoff import Backoff
from kiosk.clock import Clock, FakeClock
from kiosk.config.readers import (
    CameraReaderConfig,
    ExposureConfig,
    FakeCameraReaderConfig,
    FakeHidReaderConfig,
    FocusConfig,
    HidReaderConfig,
    PiCameraReaderConfig,
    ReadersSection,
    SerialReaderConfig,
)
from kiosk.devices import CodeReader

from .hid_scanner import HidScanner
from .serial_scanner import SerialScanner

if TYPE_CHECKING:
    from .camera import FrameSource
    from .decoders import Decoder


def build_readers(cfg: ReadersSection, clock: Clock) -> list[CodeReader]:
    """One reader per configured source; raises ``DecoderUnavailable`` for a missing library.

    The fake camera plays in real time (the demo); the demo scripts it through
    ``reader.source`` (a ``FakeCamera``: ``show_code``, ``unplug``, ...)."""
    decoder: Decoder | None = None
    readers: list[CodeReader] = []
    for src in cfg.sources:
        if isinstance(src, SerialReaderConfig):
            readers.append(
                SerialScanner(
                    src.port,
                    clock,
                    name=src.name,
                    baudrate=src.baudrate,
                    decoder_cfg=cfg.decoder,
                    trigger=bytes.fromhex(src.trigger_hex) if src.trigger_hex else None,
                    trigger_interval_s=src.trigger_interval_s,
                    reconnect=Backoff(src.reconnect_initial_s, src.reconnect_max_s),
                )
            )
            continue
        if isinstance(src, HidReaderConfig | FakeHidReaderConfig):
            readers.append(_hid_reader(src, cfg, clock))
            continue
        from .camera import CameraReader, UsbCamera
        from .decoders import build_decoder
        from .pipeline import FramePipeline

        if decoder is None:
            decoder = build_decoder(cfg.decoder.backend)
        pipeline = FramePipeline(decoder, cfg.decoder, clock, source=src.name)
        source: FrameSource
        if isinstance(src, CameraReaderConfig):
            source = UsbCamera(src.device, clock, **_capture(src))
        elif isinstance(src, PiCameraReaderConfig):
            from .picamera import PiCamera

            source = PiCamera(clock, capture_timeout_s=src.watchdog.stale_frame_s, **_capture(src))
        elif isinstance(src, FakeCameraReaderConfig):
            if src.images:
                from .file_source import FileSource

                source = FileSource(
                    src.images, clock, fps=src.fps, loop=True, pace=True, name=src.name
                )
            else:
                from .fake_camera import FakeCamera

                # Real-time playback on a real clock; in virtual time the caller paces it.
                pace = not isinstance(clock, FakeClock)
                source = FakeCamera(clock, fps=src.fps, seed=src.seed, pace=pace)
        else:  # pragma: no cover - the config union is closed
            raise TypeError(f"unknown reader source {type(src).__name__}")
        readers.append(
            CameraReader(source, pipeline, clock, name=src.name, watchdog=src.watchdog, fps=src.fps)
        )
    return readers


def _hid_reader(
    src: HidReaderConfig | FakeHidReaderConfig, cfg: ReadersSection, clock: Clock
) -> CodeReader:
    """A keyboard-mode scanner; the fake one types into a FIFO the same driver reads."""
    reconnect = Backoff(src.reconnect_initial_s, src.reconnect_max_s)
    if isinstance(src, FakeHidReaderConfig):
        from .fake_hid import FakeHidReader

        return FakeHidReader(
            clock, name=src.name, decoder_cfg=cfg.decoder, end_keys=src.end_keys,
            reconnect=reconnect,
        )  # fmt: skip
    return HidScanner(
        src.device,
        clock,
        name=src.name,
        decoder_cfg=cfg.decoder,
        end_keys=src.end_keys,
        reconnect=reconnect,
    )


class _Capture(TypedDict):
    """What a USB and a CSI camera both take from their source's config."""

    width: int
    height: int
    fps: float
    name: str
    exposure: ExposureConfig
    focus: FocusConfig


def _capture(src: CameraReaderConfig | PiCameraReaderConfig) -> _Capture:
    return _Capture(
        width=src.width,
        height=src.height,
        fps=src.fps,
        name=src.name,
        exposure=src.exposure,
        focus=src.focus,
    )
