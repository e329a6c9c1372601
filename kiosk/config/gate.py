"""Gate relay driver.

The engine only ever says *open* (release the lock) or *closed* (lock); the driver maps that
to the relay coil level through ``wiring``. Whether the gate is released on power loss is a
property of the lock and its wiring (``fail_mode``), not of software: see docs/engine.md.
"""

from typing import Annotated, Literal

from pydantic import Field

from ._base import DeviceDeadlineMs, DevicePort, Section


class SerialRelayConfig(Section):
    type: Literal["serial_relay"] = "serial_relay"
    port: DevicePort = "/dev/ttyUSB0"
    """LCUS-1 USB relay serial port (a device path or a pyserial URL)."""
    baudrate: int = Field(9600, ge=1200, le=115200)
    """LCUS-1 boards use 9600."""
    channel: int = Field(1, ge=1, le=8)
    """Relay channel on the board."""
    write_timeout_ms: DeviceDeadlineMs = 200
    """A command not written within this is a gate fault (unplugged, stalled USB)."""


class GpioRelayConfig(Section):
    type: Literal["gpio"] = "gpio"
    pin: int = Field(17, ge=0, le=27)
    """BCM GPIO pin driving the relay module."""
    active_high: bool = True
    """Relay modules differ: some switch on a low level."""


class NoGateConfig(Section):
    type: Literal["none"] = "none"


class FakeGateConfig(Section):
    type: Literal["fake"] = "fake"


GateDriver = Annotated[
    SerialRelayConfig | GpioRelayConfig | NoGateConfig | FakeGateConfig,
    Field(discriminator="type"),
]


class GateSection(Section):
    driver: GateDriver = Field(default_factory=FakeGateConfig)
    """Which relay to drive."""
    pulse_ms: int = Field(3000, ge=100, le=30000)
    """How long the gate stays released after a pass."""
    wiring: Literal["normally_open", "normally_closed"] = "normally_open"
    """Relay contact the lock is wired through. With fail_mode it sets the coil level: a
    fail-secure lock on NO and a fail-safe maglock on NC are released while the coil is
    energised; a fail-secure lock on NC and a maglock on NO while it is not."""
    fail_mode: Literal["fail_secure", "fail_safe"] = "fail_secure"
    """On power loss: fail_secure stays locked (checkpoint default); fail_safe releases (fire-code
    exits). Chosen by the lock, not software, but the driver needs it with wiring to know
    which coil level releases the lock (docs/wiring.md)."""
