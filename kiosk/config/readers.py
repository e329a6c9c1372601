"""Code reader sources and the decoder pipeline."""

from typing import Annotated, Literal

from pydantic import Field

from ._base import Section


class CameraReaderConfig(Section):
    type: Literal["camera"] = "camera"
    name: str = Field(
        "camera", max_length=32, description="Tag put on every code from this source."
    )
    device: int | str = Field(0, description="V4L2 index or path, e.g. 0 or /dev/video0.")
    width: int = Field(640, ge=160, le=3840, description="Capture width in pixels.")
    height: int = Field(480, ge=120, le=2160, description="Capture height in pixels.")
    fps: float = Field(15.0, gt=0, le=60, description="Capture rate asked of the camera.")


class PiCameraReaderConfig(Section):
    type: Literal["picamera"] = "picamera"
    name: str = Field("picamera", max_length=32, description="Tag put on every code.")
    width: int = Field(640, ge=160, le=3840, description="Capture width in pixels.")
    height: int = Field(480, ge=120, le=2160, description="Capture height in pixels.")
    fps: float = Field(15.0, gt=0, le=60, description="Capture rate.")


class SerialReaderConfig(Section):
    type: Literal["serial"] = "serial"
    name: str = Field("scanner", max_length=32, description="Tag put on every code.")
    port: str = Field("/dev/ttyACM0", max_length=256, description="Serial device or pyserial URL.")
    baudrate: int = Field(9600, ge=1200, le=921600, description="GM65 default 9600 8N1.")


class FakeCameraReaderConfig(Section):
    type: Literal["fake_camera"] = "fake_camera"
    name: str = Field("camera", max_length=32, description="Tag put on every code.")
    fps: float = Field(15.0, gt=0, le=60, description="Frames per second the fake plays.")
    images: str | None = Field(None, max_length=4096, description="Folder of images to play.")


ReaderConfig = Annotated[
    CameraReaderConfig | PiCameraReaderConfig | SerialReaderConfig | FakeCameraReaderConfig,
    Field(discriminator="type"),
]


class DecoderConfig(Section):
    backend: Literal["zxing", "pyzbar"] = Field("zxing", description="QR decoding library.")
    max_payload_chars: int = Field(
        512, ge=16, le=4096, description="Longer code texts are rejected before the engine."
    )
    holdoff_s: float = Field(
        3.0, ge=0, le=60, description="The same code seen again within this is not re-submitted."
    )
    change_threshold: float = Field(
        4.0,
        ge=0,
        le=255,
        description="Mean abs. difference (0-255) on a downscale that counts as change.",
    )
    forced_decode_s: float = Field(
        1.0, gt=0, le=30, description="Decode at least this often even when nothing changes."
    )


class ReadersSection(Section):
    sources: list[ReaderConfig] = Field(
        default_factory=lambda: [FakeCameraReaderConfig()],
        max_length=4,
        description="Code sources; several may run at once (camera and serial).",
    )
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
