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


Wiring = Literal["normally_open", "normally_closed"]
FailMode = Literal["fail_secure", "fail_safe"]

GateDriver = Annotated[
    SerialRelayConfig | GpioRelayConfig | NoGateConfig | FakeGateConfig,
    Field(discriminator="type"),
]


class GateSection(Section):
    driver: GateDriver = Field(default_factory=FakeGateConfig)
    """Which relay to drive."""
    pulse_ms: int = Field(3000, ge=100, le=30000)
    """How long the gate stays released after a pass."""
    wiring: Wiring = "normally_open"
    """Relay contact the lock is wired through. With fail_mode it sets the coil level: a
    fail-secure lock on NO and a fail-safe maglock on NC are released while the coil is
    energised; a fail-secure lock on NC and a maglock on NO while it is not."""
    fail_mode: FailMode = "fail_secure"
    """On power loss: fail_secure stays locked (checkpoint default); fail_safe releases (fire-code
    exits). Chosen by the lock, not software, but the driver needs it with wiring to know
    which coil level releases the lock (docs/wiring.md)."""


def released_when_stopped(wiring: Wiring, fail_mode: FailMode) -> bool:
    """Whether a stopped kiosk leaves this gate released: where an energised coil holds the
    lock (a fail-safe maglock on NO, a fail-secure strike on NC), a wiring chosen so that a
    kiosk that is gone lets people out. The stop (a driver's ``close``, ``kiosk run
    --lock-gate`` after every stop, a crash's included) leaves the coil off there, as a dead
    Pi would, instead of holding the gate locked with nobody deciding; every other wiring is
    left locked, which is the coil off too (``drivers.gate.coil_energised``)."""
    return (wiring == "normally_open") != (fail_mode == "fail_secure")


def stop_releases(gate: GateSection) -> bool:
    """Whether this kiosk's stop releases its gate: a relay (or the fake that stands in for
    one) on a wiring ``released_when_stopped``; without one (``none``) nothing is driven."""
    return gate.driver.type != "none" and released_when_stopped(gate.wiring, gate.fail_mode)


def manual_release(gate: GateSection) -> str | None:
    """The guard's manual release this lock needs, for the daemon's start line; None without a
    relay. A button in parallel with the relay contact only closes the lock's circuit: it
    powers a fail-secure strike (power to unlock) and releases it, but a fail-safe maglock
    (power to lock) is released only by opening its circuit (docs/wiring.md)."""
    if gate.driver.type not in ("serial_relay", "gpio"):
        return None
    if gate.fail_mode == "fail_safe":
        return (
            "gate: a fail-safe maglock (fail_mode = 'fail_safe', power to lock): the guard's"
            " manual release is a normally-closed push button or break-glass in series with"
            " the magnet's supply, independent of the kiosk; a button across the relay contact"
            " cannot cut the magnet's power (docs/wiring.md)"
        )
    contact = "COM-NO" if gate.wiring == "normally_open" else "COM-NC"
    return (
        "gate: a fail-secure lock (fail_mode = 'fail_secure', power to unlock): the guard's"
        f" manual release is a normally-open push button in parallel with the relay contact"
        f" ({contact}), powering the lock independent of the kiosk (docs/wiring.md)"
    )
