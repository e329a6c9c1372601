"""Shared base for config models: strict, documented, bounded."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Every config model forbids unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, use_attribute_docstrings=True
    )


# Types several settings share: the same kind of value, the same bounds.
Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port (0: any free port, for tests)."""
Host = Annotated[str, Field(max_length=255)]
"""An address to listen on or connect to."""
FilePath = Annotated[str, Field(max_length=4096)]
"""A file or directory path (relative ones as the setting says)."""
DevicePort = Annotated[str, Field(max_length=256)]
"""A serial device path or a pyserial URL."""
DeviceDeadlineMs = Annotated[int, Field(ge=10, le=5000)]
"""How long one device read or write may take before it is a fault."""
SourceName = Annotated[str, Field(max_length=32)]
"""The name a code source goes by in logs and on the health page."""
FramesPerSecond = Annotated[float, Field(gt=0, le=60)]
"""A camera frame rate."""
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""The seed of an emulator's random numbers."""
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
"""The name of an environment variable (that holds a secret: never the secret itself)."""
PageSize = Annotated[int, Field(ge=1, le=100000)]
"""Events in one page of /api/v1/events."""
