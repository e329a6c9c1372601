"""The relay while the Pi boots, before the kiosk drives its pin.

From power-on until the daemon claims the pin (tens of seconds: firmware, kernel, the
service's start), the pin sits at its reset pull: BCM GPIO 0-8 pulled high (2 and 3 with the
board's 1.8 kOhm I2C pull-ups), 9-27 pulled low, 14 (TXD) driven high once the UART is on. An
active-low module on GPIO17 (low at boot), or an active-high one on GPIO4 (high at boot), is
energised through every boot and every power cut's return: for a strike on NO the gate is
released before anyone is watching. The driver names it in the journal at start with the
fix (another pin, or the firmware driving it to the off level), and docs/wiring.md lists the
safe pins for each kind of module."""

from __future__ import annotations

import logging
import re

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.gate import HIGH_AT_BOOT, GpioRelayGate, boot_level_warning, coil_energised


@pytest.fixture
def pins():
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.mark.parametrize(
    ("pin", "active_high"),
    [(17, False), (27, False), (4, True), (2, True), (14, True)],
)
def test_a_pin_whose_boot_level_energises_the_coil_is_named_at_start(
    pins, caplog, pin, active_high
):
    with caplog.at_level(logging.WARNING, logger="drivers.gate"):
        gate = GpioRelayGate(pin, active_high=active_high, pin_factory=pins)
    said = [r.getMessage() for r in caplog.records]  # at start (a close says its own)
    gate.close()
    assert len(said) == 1, said
    assert f"GPIO{pin}" in said[0] and "released" in said[0]
    assert f"gpio={pin}=op,{'dl' if active_high else 'dh'}" in said[0]


@pytest.mark.parametrize(("pin", "active_high"), [(17, True), (22, True), (5, False), (6, False)])
def test_a_safe_pin_for_the_module_says_nothing(pins, caplog, pin, active_high):
    with caplog.at_level(logging.WARNING, logger="drivers.gate"):
        gate = GpioRelayGate(pin, active_high=active_high, pin_factory=pins)
    assert caplog.records == []  # at start (a close says its own)
    gate.close()


def test_an_egress_wiring_is_warned_when_its_boot_level_holds_the_gate_locked():
    # A maglock on NO (fail_safe) is held locked by an energised coil, and a stopped kiosk
    # leaves it released (the coil off): an active-low module low at boot energises it, so the
    # gate stays locked through the boot, and for good if the kiosk never starts.
    said = boot_level_warning(17, False, "normally_open", "fail_safe")
    assert said is not None and "energised, and the gate locked" in said
    assert boot_level_warning(5, False, "normally_open", "fail_safe") is None


COMBINATIONS = [
    (wiring, fail_mode, active_high, pin)
    for wiring in ("normally_open", "normally_closed")
    for fail_mode in ("fail_secure", "fail_safe")
    for active_high in (True, False)
    for pin in (17, 5)  # pulled low at boot, pulled high at boot
]


@pytest.mark.parametrize(("wiring", "fail_mode", "active_high", "pin"), COMBINATIONS)
def test_the_boot_warning_names_a_coil_energised_at_boot_and_only_advice_that_leaves_it_off(
    wiring, fail_mode, active_high, pin
):
    """Whatever the wiring, a kiosk not driving the pin leaves the coil off (its stop,
    ``--lock-gate``): the gate as the wiring leaves it with no kiosk. A boot level that
    energises the coil is named, with what it does to this lock (released, or held locked for
    the egress wirings), and only the pins and the firmware line that leave it off. The
    warning used to call a coil off "energised" and advise the pin already in use (GPIO17 for
    GPIO17) or the firmware line to the level it already had."""
    high = pin in HIGH_AT_BOOT
    energised_at_boot = high == active_high
    said = boot_level_warning(pin, active_high, wiring, fail_mode)
    if not energised_at_boot:
        assert said is None
        return
    assert said is not None
    held = "locked" if coil_energised(False, wiring, fail_mode) else "released"
    assert f"is energised, and the gate {held}" in said
    advised = said.partition("move it to ")[2].partition(", or add")[0]  # "GPIO5 or 6"
    numbers = [int(word.removeprefix("GPIO")) for word in re.findall(r"(?:GPIO)?\d+", advised)]
    assert numbers and pin not in numbers, advised
    for other in numbers:  # each pin advised leaves this coil off at boot
        assert boot_level_warning(other, active_high, wiring, fail_mode) is None, advised
    off_level = "dl" if active_high else "dh"
    assert f"gpio={pin}=op,{off_level}" in said
    assert f"op,{'dh' if active_high else 'dl'}" not in said
