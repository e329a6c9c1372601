"""Defects found in the drivers by a hunt, each pinned by the test that first failed on it."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.gate import FakeGate, GpioRelayGate, build_gate
from kiosk.config.gate import GateSection


@pytest.fixture
def pins():
    factory = MockFactory()
    yield factory
    factory.reset()


# The four ways docs/wiring.md lets a lock be wired, and what energising the coil does to it:
# a fail-secure strike gets power (unlocks) through NO while energised, through NC while not;
# a fail-safe maglock loses its power (unlocks) through NC while energised, through NO while not.
_RELEASED_WHEN_ENERGISED = {
    ("fail_secure", "normally_open"): True,
    ("fail_secure", "normally_closed"): False,
    ("fail_safe", "normally_closed"): True,
    ("fail_safe", "normally_open"): False,
}


@pytest.mark.parametrize(("fail_mode", "wiring"), sorted(_RELEASED_WHEN_ENERGISED))
def test_built_gate_releases_the_lock_only_for_open_whatever_the_lock_and_contact(
    fail_mode, wiring, clock
):
    gate = build_gate(
        GateSection.model_validate(
            {"driver": {"type": "fake"}, "wiring": wiring, "fail_mode": fail_mode}
        ),
        clock,
    )
    assert isinstance(gate, FakeGate)
    gate.set_open(True)
    gate.set_open(False)
    released = _RELEASED_WHEN_ENERGISED[(fail_mode, wiring)]
    assert [c.energised for c in gate.commands] == [released, not released]


def test_gpio_maglock_wired_through_nc_is_locked_at_start_and_released_for_a_pass(
    pins, clock, monkeypatch
):
    """docs/wiring.md: a fail-safe maglock goes through COM-NC, so the coil must be OFF
    (magnet powered) while locked and ON only for the pulse."""
    from gpiozero import Device

    monkeypatch.setattr(Device, "pin_factory", pins)
    gate = build_gate(
        GateSection.model_validate(
            {
                "driver": {"type": "gpio", "pin": 5},
                "wiring": "normally_closed",
                "fail_mode": "fail_safe",
            }
        ),
        clock,
    )
    assert isinstance(gate, GpioRelayGate)
    assert pins.pin(5).state is False  # coil off: NC closed, magnet powered, locked
    gate.set_open(True)
    assert pins.pin(5).state is True
    gate.set_open(False)
    assert pins.pin(5).state is False
    gate.close()
