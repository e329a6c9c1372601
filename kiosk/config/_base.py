"""Shared base for config models: strict, documented, bounded."""

import unicodedata
from datetime import time
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from kiosk.hosts import host_names


class Section(BaseModel):
    """Every config model forbids unknown keys, so a typo is an error, not a silent default;
    and takes each value only as its own TOML type (``strict``): ``pulse_ms = "3000"``,
    ``true`` for a number or ``3000.0`` for an integer is an error naming the key, never a
    converted value. An integer is still a valid decimal (``sample_hz = 8``). What TOML writes
    as a string or an array is taken so where the model keeps another type: ``ClockTime``,
    ``LocalPath`` and tuples (``Field(strict=False)``: a TOML array; its items stay strict)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        use_attribute_docstrings=True,
        strict=True,
    )


def _time_of_day(value: object) -> object:
    # TOML's own local time (08:30:00) arrives as a time; text ("08:30") is parsed as ISO.
    if not isinstance(value, str):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        shown = value if len(value) <= 20 else value[:20] + "…"
        raise ValueError(f'should be a time of day (08:30:00 or "08:30") (got "{shown}")') from None


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time of day has no UTC offset (the site's timezone applies)")
    return value


ClockTime = Annotated[time, BeforeValidator(_time_of_day), AfterValidator(_local)]
"""A local time of day: TOML's ``08:30:00`` or the text ``"08:30"``; never a number."""
LocalPath = Annotated[Path, Field(strict=False)]
"""A path on this machine, written as a TOML string."""


# Types several settings share: the same kind of value, the same bounds.
Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port (0: any free port, for tests)."""


def _no_control(value: str) -> str:
    """Text the system is handed as a name (a path, a host): a control character in it (a NUL,
    a line break, an escape) is refused, the key named. A NUL passed ``check-config``, then
    ``kiosk run`` died of a traceback opening the file or binding the address (restarted
    every 3 s by systemd, the same traceback each time)."""
    for at, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc":
            raise ValueError(
                f"must not hold a control character ({repr(ch)[1:-1]} at character {at + 1})"
            )
    return value


Host = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_control)]
"""An address to listen on or connect to (never empty: to the server that means every
interface; no control character)."""
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_control)]
"""A file or directory path (relative ones as the setting says; no control character)."""
DevicePort = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control)]
"""A serial device path or a pyserial URL (no control character)."""
DeviceDeadlineMs = Annotated[int, Field(ge=10, le=5000)]
"""How long one device read or write may take before it is a fault."""
SourceName = Annotated[str, Field(min_length=1, max_length=32)]
"""The name a code source goes by in logs and on the health page."""
FramesPerSecond = Annotated[float, Field(gt=0, le=60)]
"""A camera frame rate."""
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""The seed of an emulator's random numbers."""
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
"""The name of an environment variable (that holds a secret: never the secret itself)."""
PageSize = Annotated[int, Field(ge=1, le=100000)]
"""Events in one page of /api/v1/events."""
HostNames = Annotated[
    tuple[str, ...], Field(max_length=32, strict=False), AfterValidator(host_names)
]
"""A server's ``allowed_hosts``: the names, besides its addresses, it answers to
(``kiosk.hosts.host_names``: lower-cased, without a trailing dot; anything else refused)."""
