"""Build the thermometer the config names; run one read under a deadline.

``mlx90614`` is the real driver on smbus2 (``/dev/i2c-N``) or Blinka; ``fake`` is *the same
driver* over the byte-level emulator, so the demo and the tests exercise the real checks. The
fake exposes ``.emulator`` for scripted visitors, replay scenarios and tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypedDict, Unpack

from kiosk.backoff import Backoff
from kiosk.clock import Clock, FakeClock
from kiosk.config.thermometer import FakeThermometerConfig, Mlx90614Config, ThermometerSection
from kiosk.devices import Thermometer

from .mlx90614 import (
    REOPEN_BACKOFF,
    BlinkaTransport,
    Mlx90614,
    PecMode,
    Smbus2Transport,
    Transport,
)
from .mlx90614_emulator import Mlx90614Emulator, load_trace_csv


class ConfigOptions(TypedDict, total=False):
    """``Mlx90614``'s keyword options that the config sets."""

    address: int
    pec: PecMode
    retries: int
    reopen_after_errors: int
    backoff: Backoff
    stuck_reads: int
    hang_after_ms: int


class DriverOptions(ConfigOptions, total=False):
    """``Mlx90614``'s keyword options: the config's, the clock's sleep and a name."""

    sleep: Callable[[float], None]
    name: str


class FakeMlx90614(Mlx90614):
    """The real ``Mlx90614`` driver talking to an ``Mlx90614Emulator`` over the smbus2 face."""

    def __init__(
        self, emulator: Mlx90614Emulator, clock: Clock, **kwargs: Unpack[DriverOptions]
    ) -> None:
        self.emulator = emulator
        kwargs.setdefault("name", "fake-mlx90614")
        super().__init__(lambda: Smbus2Transport(emulator.smbus()), clock, **kwargs)


def _sleeper(clock: Clock) -> Callable[[float], None]:
    # In virtual time a datasheet wait is a clock advance; on a real clock it is a real wait.
    return clock.advance if isinstance(clock, FakeClock) else time.sleep


def _driver_kwargs(d: Mlx90614Config | FakeThermometerConfig) -> ConfigOptions:
    return {
        "address": d.address,
        "pec": d.pec,
        "retries": d.retries,
        "reopen_after_errors": d.reopen_after_errors,
        "backoff": replace(REOPEN_BACKOFF, cap_s=d.backoff_max_s),
        "stuck_reads": d.stuck_reads,
        "hang_after_ms": d.read_deadline_ms,
    }


def build_thermometer(cfg: ThermometerSection, clock: Clock) -> Thermometer:
    """The configured thermometer. No I/O here: the bus opens on the first read."""
    d = cfg.driver
    if isinstance(d, Mlx90614Config):
        if d.backend == "smbus2":
            bus_number = d.bus

            def open_bus() -> Transport:
                return Smbus2Transport(bus_number)
        else:

            def open_bus() -> Transport:
                return BlinkaTransport()

        return Mlx90614(open_bus, clock, sleep=_sleeper(clock), **_driver_kwargs(d))
    emulator = Mlx90614Emulator(clock, address=d.address, ambient_c=d.ambient_c, seed=d.seed)
    if d.trace:
        emulator.load_trace(load_trace_csv(d.trace))
    return FakeMlx90614(emulator, clock, sleep=_sleeper(clock), **_driver_kwargs(d))
