"""``kiosk run --lock-gate`` on a GPIO relay leaves the line driven at the locked level.

kiosk.service's ``ExecStopPost=`` runs it after every stop of the daemon, a crash's included, to
command the relay locked. On a GPIO relay it drove the pin to the locked level and then closed
it: gpiozero's close (and its exit hook's, for every device of its pin factory) makes the pin an
input with no pull (lgpio ``SET_PULL_NONE``), so the line it had just driven floated, and a
relay board whose locked state needs the pin driven (an active-low module's IN held high, a
maglock held by an energised coil) was left to the board's default until the next start. It
now ends the process with the line still claimed, as a killed daemon's: the kernel frees it
with the process and a Raspberry Pi kernel keeps a freed output at its level
(``persist_gpio_outputs``). A kernel that does not is said in the journal, loudly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from checkpoint.cli import main
from drivers.gate import GpioRelayGate, freed_line_kept


class Exited(BaseException):
    """The process ending (``os._exit``) in a test that must go on."""


@pytest.fixture
def pins(monkeypatch, tmp_path):
    """gpiozero's own mock pins as its default factory, as the driver finds an lgpio one."""
    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setenv("LG_WD", str(tmp_path))
    yield factory
    factory.reset()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[site]\nkiosk_id = "gate-1"\n[web]\nport = 0\n'
        "[engine]\ndevice_deadline_ms = 10000\n"  # a loaded machine: no missed deadline
        '[gate.driver]\ntype = "gpio"\npin = 5\nactive_high = false\n',
        encoding="utf-8",
    )
    return path


def test_lock_gate_leaves_an_active_low_relays_line_driven_high_after_it_exits(
    tmp_path, pins, monkeypatch, capsys
):
    """An active-low module on a fail-secure strike (normally open): locked is the coil off,
    the pin driven high. What the line is once the process has gone is what holds the gate."""
    ended: list[tuple[int, str, bool]] = []

    def exit_now(code: int) -> None:
        """The process ends here: the line as it is now is what the kernel frees (later, in
        this test, gpiozero's ``__del__`` of the device left behind would close it)."""
        pin = pins.pin(5)
        ended.append((code, pin.function, pin.state))
        raise Exited

    monkeypatch.setattr(os, "_exit", exit_now)
    try:
        code = main(["run", "--config", str(_config(tmp_path)), "--lock-gate"])
    except Exited:
        [(code, *line)] = ended
    else:  # the interpreter's own exit: gpiozero's hook closes its factory's pins
        pin = pins.pin(5)
        pins.close()
        line = [pin.function, pin.state]
    assert code == 0
    assert line == ["output", True]
    assert "persist_gpio_outputs" in capsys.readouterr().err  # kept or not, the journal says


def _sys(tmp_path: Path, **params: str) -> str:
    for module, value in params.items():
        folder = tmp_path / "module" / module / "parameters"
        folder.mkdir(parents=True)
        (folder / "persist_gpio_outputs").write_text(f"{value}\n", encoding="ascii")
    return str(tmp_path)


def test_a_raspberry_pi_kernel_keeps_a_freed_line_at_its_level(tmp_path):
    assert freed_line_kept(_sys(tmp_path, pinctrl_bcm2835="Y")) is None
    assert freed_line_kept(_sys(tmp_path / "pi5", pinctrl_rp1="Y")) is None


def test_a_kernel_that_does_not_keep_it_is_named_with_why(tmp_path, pins):
    off = freed_line_kept(_sys(tmp_path, pinctrl_bcm2835="N"))
    assert off is not None and "pinctrl_bcm2835.persist_gpio_outputs=N" in off
    mainline = freed_line_kept(str(tmp_path / "mainline"))
    assert mainline is not None and "no persist_gpio_outputs" in mainline
    gate = GpioRelayGate(17, pin_factory=pins, sys_dir=str(tmp_path / "mainline"))
    assert gate.level_kept_after_exit() == mainline
    gate.close()
