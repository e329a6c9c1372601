"""The Pi's own power and heat: where the kernel's files are read from, and how often.

The kiosk reads the firmware's throttle word, the ``rpi_volt`` under-voltage alarm and the
SoC temperature from sysfs (``drivers.pihealth``), never by spawning ``vcgencmd``; off the
decision loop, and never a reason to pass or deny (docs/operations.md, *Power and heat*).
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from ._base import LocalPath, Section


class SysfsPiHealthConfig(Section):
    type: Literal["sysfs"] = "sysfs"
    root: LocalPath = Path("/")
    """The folder the kernel's ``sys`` is under: ``/`` on the Pi (a test or a container may
    name another)."""


class FakePiHealthConfig(Section):
    type: Literal["fake"] = "fake"
    root: LocalPath | None = None
    """The folder the fake writes its sysfs files in (``drivers.pihealth.FakePiSysfs``); none:
    ``pi-sysfs`` in the data dir."""


class NoPiHealthConfig(Section):
    type: Literal["none"] = "none"


PiHealthDriver = Annotated[
    SysfsPiHealthConfig | FakePiHealthConfig | NoPiHealthConfig,
    Field(discriminator="type"),
]


class PiHealthSection(Section):
    driver: PiHealthDriver = Field(default_factory=SysfsPiHealthConfig)
    """Where the Pi's power and heat are read: 'sysfs' (the kernel's files; on a machine that
    is not a Pi they are absent and the row says 'not available'), 'fake' (files a test or the
    demo writes) or 'none' (not read at all)."""
    poll_s: float = Field(2.0, ge=1.0, le=60.0)
    """Seconds between reads. The kernel itself asks the firmware every 2 s and clears the
    firmware's 'has occurred' bits as it does, so a slower poll can miss a short dip."""
    hot_c: float = Field(80.0, ge=50.0, le=90.0)
    """SoC temperature from which the Devices row says the Pi runs hot (the firmware caps
    the ARM's frequency from 80 degC and throttles harder at 85)."""
