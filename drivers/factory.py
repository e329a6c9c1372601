"""The one driver factory: the config's ``type`` fields in, the kiosk's devices out.

Each device kind has its builder beside its drivers (``drivers.thermometer.build_thermometer``,
``drivers.readers.build_readers``, ``drivers.gate.build_gate``); ``build_devices`` asks each
for what the config names, real hardware or the emulators, and leaves out what the policy mode
does not use (no thermometer for ``pass_only``, no reader for ``temperature_only``). No I/O
happens here: a bus, a port or a camera opens on first use (only a fake thermometer's trace
file is read, and one that is not a trace is a ``ConfigError``). The Pi's power and heat are
read by ``drivers.pihealth.build_pi_power``'s reader (``pi_health.driver``: the kernel's sysfs,
or a fake's files, written when it is built), which the daemon polls.

On a ``FakeClock`` (replay, the loop bench) the fakes wait in virtual time: the fake camera is
not paced and the thermometer's datasheet waits advance the clock.
"""

from __future__ import annotations

from kiosk.clock import Clock
from kiosk.config import ConfigError, KioskConfig
from kiosk.core import Devices
from kiosk.devices import Gate

from .gate import build_gate
from .pihealth import build_pi_power
from .readers import build_readers
from .thermometer import build_thermometer

__all__ = ["build_devices", "build_pi_power"]


def build_devices(config: KioskConfig, clock: Clock, *, gate: Gate | None = None) -> Devices:
    """The devices of ``config``: thermometer (or None), code readers, gate (``gate``: the
    relay ``kiosk run`` built and locked first, ``drivers.gate.lock_at_start``)."""
    thermometer = None
    if config.policy.mode != "pass_only":
        try:
            thermometer = build_thermometer(config.thermometer, clock)
        except ValueError as exc:  # the emulator's trace file (read here) is not a trace
            raise ConfigError("thermometer.driver.trace", [str(exc)]) from None
    readers = (
        [] if config.policy.mode == "temperature_only" else build_readers(config.readers, clock)
    )
    return Devices(thermometer, readers, gate or build_gate(config.gate, clock))
