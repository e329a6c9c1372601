"""The one driver factory: the config's ``type`` fields in, the kiosk's devices out.

Each device kind has its builder beside its drivers (``drivers.thermometer.build_thermometer``,
``drivers.readers.build_readers``, ``drivers.gate.build_gate``); ``build_devices`` asks each
for what the config names, real hardware or the emulators, and leaves out what the policy mode
does not use (no thermometer for ``pass_only``, no reader for ``temperature_only``). No I/O
happens here: a bus, a port or a camera opens on first use.

On a ``FakeClock`` (replay, the loop bench) the fakes wait in virtual time: the fake camera is
not paced and the thermometer's datasheet waits advance the clock.
"""

from __future__ import annotations

from kiosk.clock import Clock
from kiosk.config import KioskConfig
from kiosk.core import Devices

from .gate import build_gate
from .readers import build_readers
from .thermometer import build_thermometer


def build_devices(config: KioskConfig, clock: Clock) -> Devices:
    """The devices of ``config``: thermometer (or None), code readers, gate."""
    thermometer = None
    if config.policy.mode != "pass_only":
        thermometer = build_thermometer(config.thermometer, clock)
    readers = (
        [] if config.policy.mode == "temperature_only" else build_readers(config.readers, clock)
    )
    return Devices(thermometer, readers, build_gate(config.gate, clock))
