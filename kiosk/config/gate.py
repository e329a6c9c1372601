"""Gate relay driver.

The engine only ever says *open* (release the lock) or *closed* (lock); the driver maps that
to the relay coil level through ``wiring``. Whether the gate is released on power loss is a
property of the lock and its wiring (``fail_mode``), not of software: see docs/engine.md.
"""

from typing import Annotated, Literal

from pydantic import Field

from ._base import Section


class SerialRelayConfig(Section):
    type: Literal["serial_relay"] = "serial_relay"
    port: str = Field(
        "/dev/ttyUSB0",
        max_length=256,
        description="LCUS-1 USB relay serial port (a device path or a pyserial URL).",
    )
    baudrate: int = Field(9600, ge=1200, le=115200, description="LCUS-1 boards use 9600.")
    channel: int = Field(1, ge=1, le=8, description="Relay channel on the board.")
    write_timeout_ms: int = Field(
        200,
        ge=10,
        le=5000,
        description="A command not written within this is a gate fault (unplugged, stalled USB).",
    )


class GpioRelayConfig(Section):
    type: Literal["gpio"] = "gpio"
    pin: int = Field(17, ge=0, le=27, description="BCM GPIO pin driving the relay module.")
    active_high: bool = Field(True, description="Relay modules differ: some switch on a low level.")


class NoGateConfig(Section):
    type: Literal["none"] = "none"


class FakeGateConfig(Section):
    type: Literal["fake"] = "fake"


GateDriver = Annotated[
    SerialRelayConfig | GpioRelayConfig | NoGateConfig | FakeGateConfig,
    Field(discriminator="type"),
]


class GateSection(Section):
    driver: GateDriver = Field(default_factory=FakeGateConfig, description="Which relay to drive.")
    pulse_ms: int = Field(
        3000, ge=100, le=30000, description="How long the gate stays released after a pass."
    )
    wiring: Literal["normally_open", "normally_closed"] = Field(
        "normally_open",
        description="Relay contact: NO releases the lock when energised, NC when de-energised.",
    )
    fail_mode: Literal["fail_secure", "fail_safe"] = Field(
        "fail_secure",
        description=(
            "On power loss: fail_secure stays locked (checkpoint default); fail_safe releases"
            " (fire-code exits). Documented in docs/wiring.md; chosen by the lock, not software."
        ),
    )
