"""Code reader sources and the decoder pipeline. See docs/readers.md."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ._base import DevicePort, FilePath, FramesPerSecond, Section, Seed, SourceName

CameraIndex = Annotated[int, Field(ge=0, le=255)]
"""A V4L2 camera's index: N opens /dev/videoN."""


def _absolute_path(value: str, should_be: str, look: str = "") -> str:
    """A device's path, which is absolute; else ``ValueError``: what it ``should_be``, where to
    ``look`` for one, and (cut short) what was written."""
    if not value.startswith("/"):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise ValueError(f'{should_be} ({look}got "{shown}")')
    return value


class WatchdogConfig(Section):
    """How a lost camera is noticed and reopened. Times are on the kiosk's monotonic clock."""

    stale_frame_s: float = Field(2.0, ge=0.2, le=60)
    """No new frame for this long (a blocked read): camera lost."""
    frozen_frame_s: float = Field(3.0, ge=0.5, le=120)
    """The very same frame bytes for this long (a wedged camera): camera lost."""
    reopen_initial_s: float = Field(0.5, ge=0.05, le=30)
    """First wait before reopening a lost camera."""
    reopen_max_s: float = Field(10.0, ge=0.1, le=300)
    """Cap of the doubling wait between reopen attempts."""
    start_timeout_s: float = Field(15.0, ge=1, le=300)
    """Still 'starting' (opening, no frame yet) after this long: a fault."""


class ExposureConfig(Section):
    """Exposure. A phone screen is far brighter than the scene around it: whole-scene auto
    exposure clips it to white. See the phone-screen preset in docs/wiring.md."""

    mode: Literal["auto", "manual"] = "auto"
    """auto: the camera's own exposure; manual: a fixed time and gain."""
    compensation_ev: float = Field(0.0, ge=-4, le=4)
    """auto only: bias in EV stops (-1.5 darkens for bright phone screens). Pi camera
    (ExposureValue); USB cameras have no such control in OpenCV."""
    exposure_us: int = Field(8000, ge=50, le=1_000_000)
    """manual only: exposure time in microseconds."""
    gain: float = Field(1.0, ge=1.0, le=16.0)
    """manual only, Pi camera: analogue gain (1 = none)."""


class FocusConfig(Section):
    """Focus. A Camera Module 3 or an autofocus webcam may not settle at 20-40 cm by itself."""

    mode: Literal["default", "continuous", "fixed"] = "default"
    """default: leave the camera as it starts; continuous autofocus; or a fixed lens position."""
    lens_dioptres: float = Field(3.0, ge=0, le=15)
    """fixed, Pi camera: lens position in dioptres (1 / metres; 3.0 = 33 cm)."""
    v4l2_focus: int = Field(0, ge=0, le=1023)
    """fixed, USB camera: the driver's focus_absolute value."""


class ReaderSource(Section):
    """What every code reader source has: its ``type`` (the tag of ``ReaderConfig``) and the
    lane it serves."""

    type: str
    direction: Literal["in", "out"] | None = None
    """The lane this reader serves, when `site.direction_from = 'readers'`: every code it reads
    passes this way."""


class CaptureSource(ReaderSource):
    """What a real camera source has: the capture format, exposure, focus and watchdog."""

    width: int = Field(640, ge=160, le=3840)
    """Capture width in pixels."""
    height: int = Field(480, ge=120, le=2160)
    """Capture height in pixels."""
    fps: FramesPerSecond = 15.0
    """Capture rate asked of the camera."""
    exposure: ExposureConfig = Field(default_factory=ExposureConfig)
    """Exposure."""
    focus: FocusConfig = Field(default_factory=FocusConfig)
    """Focus."""
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    """Lost-camera detection and reopen backoff."""


class CameraReaderConfig(CaptureSource):
    type: Literal["camera"] = "camera"
    name: SourceName = "camera"
    """Tag put on every code from this source."""
    device: CameraIndex | FilePath = 0
    """V4L2 index (an integer: 0 is the first camera) or the camera's path, e.g. /dev/video0 or
    /dev/v4l/by-id/... (stable across re-plugging)."""

    @field_validator("device")
    @classmethod
    def _index_or_path(cls, value: int | str) -> int | str:
        # OpenCV's V4L2 backend opens an integer as /dev/videoN and a string as a file: a
        # quoted index ("0") is neither the first camera nor a path anyone meant.
        if isinstance(value, int):
            return value
        text = value.strip()
        if text.isascii() and text.isdigit():
            raise ValueError(
                f"a camera index is an integer: write device = {int(text)} without the quotes"
                f' (or the camera\'s path, e.g. "/dev/video{int(text)}")'
            )
        return _absolute_path(
            value, 'should be a camera index (device = 0) or the camera\'s path, e.g. "/dev/video0"'
        )


class PiCameraReaderConfig(CaptureSource):
    type: Literal["picamera"] = "picamera"
    name: SourceName = "picamera"
    """Tag put on every code."""


class ScannerSource(ReaderSource):
    """What a scanner source (serial or keyboard-mode) has: the wait before reopening it once
    unplugged, doubling up to a cap."""

    reconnect_initial_s: float = Field(0.5, ge=0.01, le=30)
    """First wait before reopening an unplugged scanner."""
    reconnect_max_s: float = Field(10.0, ge=0.05, le=300)
    """Cap of the doubling wait between reopen attempts."""


class SerialReaderConfig(ScannerSource):
    type: Literal["serial"] = "serial"
    name: SourceName = "scanner"
    """Tag put on every code."""
    port: DevicePort = "/dev/ttyACM0"
    """Serial device or pyserial URL."""
    baudrate: int = Field(9600, ge=1200, le=921600)
    """GM65 default 9600 8N1."""
    trigger_hex: str | None = Field(None, max_length=128, pattern=r"^([0-9A-Fa-f]{2} ?)+$")
    """Command-trigger bytes sent to the module, as hex (GM65: '7E 00 08 01 00 02 01 AB CD'); unset
    for continuous/sense mode."""
    trigger_interval_s: float = Field(1.0, ge=0.1, le=60)
    """How often the trigger command is sent when set."""


HidEndKey = Literal["enter", "kpenter", "tab"]
"""A key that ends a code typed by a keyboard-mode scanner."""


class HidSource(ScannerSource):
    """What a keyboard-mode scanner source has: the keys that end a code (and a scanner's
    reopen wait)."""

    end_keys: list[HidEndKey] = Field(
        default_factory=lambda: list[HidEndKey](["enter", "kpenter"]), min_length=1, max_length=3
    )
    """Keys that end a code: enter, kpenter (keypad Enter), tab. Any other of them inside a
    code is refused as a control character."""


class HidReaderConfig(HidSource):
    type: Literal["hid"] = "hid"
    name: SourceName = "scanner"
    """Tag put on every code."""
    device: DevicePort
    """The scanner's input event node: /dev/input/by-id/usb-...-event-kbd (stable across
    re-plugging; `kiosk scanner list` shows them). Taken for the kiosk alone while it runs."""

    @field_validator("device")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _absolute_path(
            value,
            "should be the scanner's input node, e.g. /dev/input/by-id/usb-SCANNER-event-kbd",
            "ls -l /dev/input/by-id/; ",
        )


class FakeHidReaderConfig(HidSource):
    type: Literal["fake_hid"] = "fake_hid"
    name: SourceName = "scanner"
    """Tag put on every code."""


class FakeCameraReaderConfig(ReaderSource):
    type: Literal["fake_camera"] = "fake_camera"
    name: SourceName = "camera"
    """Tag put on every code."""
    fps: FramesPerSecond = 15.0
    """Frames per second the fake plays."""
    images: FilePath | None = None
    """Folder of images or a video file to play in a loop; unset: generated scenes scripted by the
    demo."""
    seed: Seed = 0
    """Seed of the generated scenes."""
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    """Lost-camera detection and reopen backoff."""


ReaderConfig = Annotated[
    CameraReaderConfig
    | PiCameraReaderConfig
    | SerialReaderConfig
    | HidReaderConfig
    | FakeHidReaderConfig
    | FakeCameraReaderConfig,
    Field(discriminator="type"),
]


class DecoderConfig(Section):
    backend: Literal["zxing", "pyzbar"] = "zxing"
    """QR decoding library."""
    max_payload_chars: int = Field(512, ge=16, le=4096)
    """Longer code texts are rejected before the engine."""
    holdoff_s: float = Field(3.0, ge=0, le=60)
    """The same code seen again within this is not re-submitted."""
    change_threshold: float = Field(4.0, ge=0, le=255)
    """Mean abs. difference (0-255) on a downscale that counts as change."""
    forced_decode_s: float = Field(1.0, gt=0, le=30)
    """Decode at least this often even when nothing changes."""
    second_pass: bool = True
    """Where a code is likely but the fast decode failed, decode a normalised, upscaled crop once
    more (reads more dim, blurred and glared codes)."""


class ReadersSection(Section):
    sources: list[ReaderConfig] = Field(
        default_factory=lambda: list[ReaderConfig]([FakeCameraReaderConfig()]), max_length=4
    )
    """Code sources; several may run at once (camera, serial and keyboard-mode scanners)."""
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    """Decoder backend and the frame pipeline shared by camera-type sources."""

    @model_validator(mode="after")
    def _names_are_unique(self) -> ReadersSection:
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique (each code is tagged with one): {dup}")
        return self
