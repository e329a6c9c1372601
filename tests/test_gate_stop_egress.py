"""A stopped kiosk leaves the gate as the wiring wants it with no kiosk: the coil off.

A fail-safe maglock wired through COM-NO (``wiring = "normally_open"``, ``fail_mode =
"fail_safe"``) needs its coil *energised* to stay locked, and so does a fail-secure strike on
COM-NC: both are wired so that a kiosk that is gone releases the gate (egress). But the stop
held the coil energised: ``kiosk run --lock-gate`` (kiosk.service's ``ExecStopPost``, after a
crash too) commanded it locked, a GPIO relay's close left its line driven at the locked level
(``persist_gpio_outputs``) and an LCUS board kept its last command, so a stopped, crashed or
crash-looping kiosk kept the maglock locked. The stop now leaves the coil off for them (the
gate released, the journal saying so); every other wiring is left locked as before, which is
the coil off too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import test_gate_lock_hold

from checkpoint.cli import main
from drivers import gate as gate_drivers
from drivers.gate import (
    GpioRelayGate,
    SerialRelayGate,
    coil_energised,
    lcus_frame,
    released_when_stopped,
)
from kiosk.core import Devices

#: gpiozero's own mock pins as its default factory (``test_gate_lock_hold``).
pins = test_gate_lock_hold.pins

RELEASES = "this wiring releases the gate while the kiosk is stopped: fail-safe egress"

WIRINGS = [
    ("normally_open", "fail_secure"),  # a strike on NO: locked = coil off
    ("normally_closed", "fail_safe"),  # a maglock on NC: locked = coil off
    ("normally_open", "fail_safe"),  # a maglock on NO: locked = coil on, released stopped
    ("normally_closed", "fail_secure"),  # a strike on NC: locked = coil on, released stopped
]


def _sys(tmp_path: Path, value: str) -> str:
    folder = tmp_path / "sys" / "module" / "pinctrl_bcm2835" / "parameters"
    folder.mkdir(parents=True)
    (folder / "persist_gpio_outputs").write_text(f"{value}\n", encoding="ascii")
    return str(tmp_path / "sys")


def test_the_wirings_held_locked_by_an_energised_coil_are_released_when_stopped():
    for wiring, fail_mode in WIRINGS:
        assert released_when_stopped(wiring, fail_mode) is coil_energised(False, wiring, fail_mode)
    assert released_when_stopped("normally_open", "fail_safe")
    assert released_when_stopped("normally_closed", "fail_secure")
    assert not released_when_stopped("normally_open", "fail_secure")
    assert not released_when_stopped("normally_closed", "fail_safe")


@pytest.mark.parametrize("active_high", [True, False])
@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS)
def test_a_gpio_relays_stop_leaves_its_line_driven_with_the_coil_off(
    tmp_path, pins, caplog, wiring, fail_mode, active_high
):
    """The daemon's stop: the runner's lock, then ``Devices.close``. The line is left driven
    (a Raspberry Pi kernel keeps it once the process ends) at the coil-off level: locked for a
    strike on NO or a maglock on NC, released for a maglock on NO or a strike on NC."""
    gate = GpioRelayGate(
        5,
        active_high=active_high,
        wiring=wiring,
        fail_mode=fail_mode,
        pin_factory=pins,
        sys_dir=_sys(tmp_path, "Y"),
    )
    pin = pins.pin(5)
    gate.set_open(True)
    gate.set_open(False)  # the runner's lock at stop
    with caplog.at_level(logging.INFO, logger="drivers.gate"):
        Devices(thermometer=None, readers=[], gate=gate).close()
    pins.close()  # the interpreter's exit: gpiozero's hook closes its factory's pins
    coil_off = not active_high
    assert [pin.function, pin.state] == ["output", coil_off]
    said = " ".join(r.getMessage() for r in caplog.records)
    if released_when_stopped(wiring, fail_mode):
        assert RELEASES in said and "left driven at the released level" in said
    else:
        assert RELEASES not in said and "left driven at the locked level" in said


@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS[2:])
def test_a_released_stop_on_a_kernel_that_frees_the_line_says_only_a_resistor_holds_it(
    tmp_path, pins, caplog, wiring, fail_mode
):
    gate = GpioRelayGate(
        5, wiring=wiring, fail_mode=fail_mode, pin_factory=pins, sys_dir=_sys(tmp_path, "N")
    )
    with caplog.at_level(logging.INFO, logger="drivers.gate"):
        gate.close()
    [line] = [r for r in caplog.records if "cannot hold" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert "cannot hold the released level" in line.getMessage()


class _Port:
    """A pyserial port that records what is written to it."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS)
def test_an_lcus_boards_stop_leaves_its_coil_off_where_that_releases_and_as_locked_elsewhere(
    caplog, wiring, fail_mode
):
    """The board keeps its last command: for a maglock on NO that was the lock (coil on),
    held for as long as the kiosk stayed stopped. Its stop now switches the coil off there."""
    ports: list[_Port] = []
    gate = _lcus(ports, wiring, fail_mode)
    gate.set_open(False)  # the runner's lock at stop
    with caplog.at_level(logging.INFO, logger="drivers.gate"):
        gate.close()
    locked = lcus_frame(1, coil_energised(False, wiring, fail_mode))
    written = b"".join(port.written for port in ports)
    assert all(port.closed for port in ports)
    said = " ".join(r.getMessage() for r in caplog.records)
    if released_when_stopped(wiring, fail_mode):
        assert written == locked + lcus_frame(1, False)
        assert RELEASES in said
    else:
        assert written == locked  # nothing more: the board keeps the lock
        assert RELEASES not in said


def _config(tmp_path: Path, wiring: str, fail_mode: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n'
        "[engine]\ndevice_deadline_ms = 10000\n"  # a loaded machine: no missed deadline
        f'[gate]\nwiring = "{wiring}"\nfail_mode = "{fail_mode}"\n'
        '[gate.driver]\ntype = "gpio"\npin = 5\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS)
def test_lock_gate_after_a_crash_leaves_the_coil_off_and_says_when_that_releases(
    tmp_path, pins, monkeypatch, capsys, wiring, fail_mode
):
    """kiosk.service's ``ExecStopPost`` after every stop, a killed daemon's included: the
    coil off and left driven there, the gate locked or (maglock on NO, strike on NC)
    released, as the wiring wants with no kiosk."""
    monkeypatch.setattr(GpioRelayGate, "level_kept_after_exit", lambda self: None)
    commands: list[bool] = []
    command = GpioRelayGate.set_open

    def set_open(self, open_):
        commands.append(open_)
        command(self, open_)

    monkeypatch.setattr(GpioRelayGate, "set_open", set_open)
    pin = pins.pin(5)
    code = main(["run", "--config", str(_config(tmp_path, wiring, fail_mode)), "--lock-gate"])
    pins.close()
    err = capsys.readouterr().err
    assert code == 0, err
    assert [pin.function, pin.state] == ["output", False]  # active-high: the coil off
    if released_when_stopped(wiring, fail_mode):
        assert commands == [True]  # released, never locked first: not even as the pin opens
        assert True not in [state.state for state in pin.states]
        assert RELEASES in err and "commanded locked" not in err
    else:
        assert commands == [False]
        assert "commanded locked" in err and RELEASES not in err


def test_lock_gate_that_cannot_release_is_exit_1_naming_the_gate(tmp_path, monkeypatch, capsys):
    def refuse(self, open_):
        raise gate_drivers.GateFault("fake gate unplugged")

    monkeypatch.setattr(gate_drivers.FakeGate, "set_open", refuse)
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n'
        '[gate]\nwiring = "normally_open"\nfail_mode = "fail_safe"\n',
        encoding="utf-8",
    )
    assert main(["run", "--config", str(path), "--lock-gate"]) == 1
    assert "could not be commanded released" in capsys.readouterr().err


@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS)
def test_a_command_after_an_lcus_boards_close_is_refused_and_writes_nothing(wiring, fail_mode):
    """The stop's lock queued behind a stuck command (``call_after``) can run after
    ``Devices.close``: it reopened the port and, for a maglock on NO, locked again the gate the
    stop had released, for as long as the kiosk stayed stopped. A closed relay commands no
    more but to switch its coil off, and its health (asked while idle, which puts a lost
    command back) touches nothing."""
    ports: list[_Port] = []
    gate = _lcus(ports, wiring, fail_mode)
    gate.set_open(False)
    gate.close()
    written = b"".join(port.written for port in ports)
    energising = not released_when_stopped(wiring, fail_mode)  # the open energises
    with pytest.raises(gate_drivers.GateFault, match="serial_relay: closed"):
        gate.set_open(energising)
    assert b"".join(port.written for port in ports) == written
    health = gate.health()
    assert (health.state, health.detail) == ("absent", "closed: the kiosk stopped")
    # Closed under a stuck open (the board may hold it): the coil switched off goes through.
    gate.set_open(not energising)
    assert b"".join(port.written for port in ports) == written + lcus_frame(1, False)
    assert all(port.closed for port in ports)
    assert gate.health().state == "absent"


@pytest.mark.parametrize(("wiring", "fail_mode"), WIRINGS)
def test_a_command_after_a_gpio_relays_close_is_refused_and_drives_nothing(
    tmp_path, pins, wiring, fail_mode
):
    """As the LCUS board: after the stop's close the pin is not opened again (at the locked
    level, the coil on for a maglock on NO) by a late command or by health."""
    gate = GpioRelayGate(
        5, wiring=wiring, fail_mode=fail_mode, pin_factory=pins, sys_dir=_sys(tmp_path, "N")
    )
    pin = pins.pin(5)
    gate.close()
    states = list(pin.states)
    with pytest.raises(gate_drivers.GateFault, match="gpio_relay: closed"):
        gate.set_open(False)
    health = gate.health()
    assert (health.state, health.detail) == ("absent", "closed: the kiosk stopped")
    assert pin.function == "input" and list(pin.states) == states


@pytest.mark.parametrize("driver", ["none", "fake"])
def test_lock_gate_without_a_relay_says_nothing_of_a_coil(tmp_path, capsys, driver):
    """``driver.type = "none"`` (or the fake) on a wiring a stop releases: there is no coil,
    and the journal said "gate: none commanded released, the coil off" after every stop."""
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n'
        '[gate]\nwiring = "normally_open"\nfail_mode = "fail_safe"\n'
        f'[gate.driver]\ntype = "{driver}"\n',
        encoding="utf-8",
    )
    assert main(["run", "--config", str(path), "--lock-gate"]) == 0
    err = capsys.readouterr().err
    assert "commanded released" not in err and "coil" not in err and RELEASES not in err


def _lcus(ports: list[_Port], wiring, fail_mode) -> SerialRelayGate:
    """An LCUS board on ``wiring``, each port it opens appended to ``ports``."""

    def factory(url, **kwargs):
        ports.append(_Port())
        return ports[-1]

    return SerialRelayGate(
        "loop://", channel=1, wiring=wiring, fail_mode=fail_mode, serial_factory=factory
    )
