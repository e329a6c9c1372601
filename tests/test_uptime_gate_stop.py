"""A clean stop of the daemon leaves a GPIO relay's line driven at the locked level.

The daemon's stop commands the gate locked (``EngineRunner.stop``) and then closes its devices
(``Devices.close``): gpiozero's close made the pin an input with no pull (lgpio
``SET_PULL_NONE``), and so did its exit hook, so a relay board whose locked state needs the pin
driven (an active-low module's IN held high) was left to the board's default until
``kiosk run --lock-gate`` (``ExecStopPost``) drove it again, or for the ``RestartSec`` of a
restart. Closed now, the relay is commanded locked and its line let go of still driven, where
the kernel keeps a freed line at its level (``freed_line_kept``); where it does not, the
journal says so."""

from __future__ import annotations

import logging
from pathlib import Path

import test_gate_lock_hold
from gpiozero.pins.mock import MockFactory

from drivers.gate import GpioRelayGate
from kiosk.core import Devices

#: gpiozero's own mock pins as its default factory (``test_gate_lock_hold``).
pins = test_gate_lock_hold.pins


def _sys(tmp_path: Path, value: str) -> str:
    folder = tmp_path / "sys" / "module" / "pinctrl_bcm2835" / "parameters"
    folder.mkdir(parents=True)
    (folder / "persist_gpio_outputs").write_text(f"{value}\n", encoding="ascii")
    return str(tmp_path / "sys")


def _active_low(pins: MockFactory, sys_dir: str) -> GpioRelayGate:
    """An active-low module on a strike (normally open): locked is the pin driven high."""
    return GpioRelayGate(5, active_high=False, pin_factory=pins, sys_dir=sys_dir)


def test_closing_the_relay_at_a_stop_leaves_its_line_driven_locked(tmp_path, pins):
    gate = _active_low(pins, _sys(tmp_path, "Y"))
    pin = pins.pin(5)  # the line: what the kernel frees with the process
    gate.set_open(True)
    gate.set_open(False)  # the runner's lock at stop
    Devices(thermometer=None, readers=[], gate=gate).close()
    assert [pin.function, pin.state] == ["output", True]
    pins.close()  # the interpreter's exit: gpiozero's hook closes its factory's pins
    assert [pin.function, pin.state] == ["output", True]


def test_a_relay_closed_while_released_is_locked_first(tmp_path, pins):
    """A stop whose lock did not come through (the runner's deadline): closing locks it."""
    gate = _active_low(pins, _sys(tmp_path, "Y"))
    pin = pins.pin(5)
    gate.set_open(True)
    assert pin.state is False  # energised: the pin low
    gate.close()
    pins.close()
    assert [pin.function, pin.state] == ["output", True]


def test_where_the_kernel_does_not_keep_the_line_the_stop_says_so(tmp_path, pins, caplog):
    gate = _active_low(pins, _sys(tmp_path, "N"))
    with caplog.at_level(logging.INFO, logger="drivers.gate"):
        gate.close()
    [line] = [r for r in caplog.records if "locked level" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert "pinctrl_bcm2835.persist_gpio_outputs=N" in line.getMessage()
