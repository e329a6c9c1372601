"""The guard's manual release, said for the lock the config names.

docs/wiring.md said "keep the guard's manual release button wired in parallel with the relay
contact" for every lock. In parallel, a button only *closes* the lock's circuit: that
powers a fail-secure strike (power to unlock) and releases it, but a fail-safe maglock (power
to lock) is released only by *opening* its circuit, so a button in parallel with its contact
left the magnet powered and the gate locked while the guard pressed it. A maglock's release
is a normally-closed push button or break-glass in series with the magnet's supply. The
daemon's start now says, in the journal, which one this config's lock needs."""

from __future__ import annotations

import argparse
import logging

import pytest
import test_gate_lock_hold

from checkpoint import standby as standing
from checkpoint.cli import daemon_cmd
from kiosk.config import parse_config
from kiosk.config.gate import GateSection, manual_release

#: gpiozero's own mock pins as its default factory (``test_gate_lock_hold``).
pins = test_gate_lock_hold.pins


@pytest.mark.parametrize("wiring", ["normally_open", "normally_closed"])
def test_a_maglocks_release_is_a_normally_closed_button_in_series_with_its_supply(wiring):
    gate = GateSection.model_validate(
        {"wiring": wiring, "fail_mode": "fail_safe", "driver": {"type": "gpio"}}
    )
    said = manual_release(gate)
    assert said is not None
    assert "normally-closed" in said and "in series with the magnet's supply" in said
    assert "break-glass" in said
    assert "normally-open" not in said and "in parallel" not in said


@pytest.mark.parametrize("wiring", ["normally_open", "normally_closed"])
def test_a_strikes_release_is_a_normally_open_button_in_parallel_with_the_contact(wiring):
    gate = GateSection.model_validate(
        {"wiring": wiring, "fail_mode": "fail_secure", "driver": {"type": "serial_relay"}}
    )
    said = manual_release(gate)
    assert said is not None
    assert "normally-open" in said and "in parallel with the relay contact" in said
    assert "in series" not in said and "normally-closed" not in said


@pytest.mark.parametrize("driver", ["none", "fake"])
def test_without_a_relay_nothing_is_said(driver):
    assert manual_release(GateSection.model_validate({"driver": {"type": driver}})) is None


@pytest.mark.parametrize("fail_mode", ["fail_safe", "fail_secure"])
def test_the_daemons_start_names_the_manual_release_this_lock_needs(
    tmp_path, pins, monkeypatch, caplog, fail_mode
):
    async def core_or_standby(*args, **kwargs):
        return None  # a stop asked while standing by: the start is what is checked

    monkeypatch.setattr(standing, "core_or_standby", core_or_standby)
    config = parse_config(
        {
            "site": {"kiosk_id": "gate-1"},
            "web": {"port": 0},
            "engine": {"device_deadline_ms": 10000},
            "gate": {"fail_mode": fail_mode, "driver": {"type": "gpio", "pin": 5}},
        }
    )
    lock = daemon_cmd.DataDirLock(tmp_path)
    try:
        with caplog.at_level(logging.INFO):
            assert daemon_cmd._run(argparse.Namespace(), config, lock) == 0
    finally:
        lock.close()
    assert manual_release(config.gate) in caplog.text
