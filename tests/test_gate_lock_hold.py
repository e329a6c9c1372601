"""``kiosk run --lock-gate`` on a GPIO relay leaves the line driven at the locked level.

kiosk.service's ``ExecStopPost=`` runs it after every stop of the daemon, a crash's included, to
command the relay locked. On a GPIO relay it drove the pin to the locked level and then closed
it: gpiozero's close (and its exit hook's, for every device of its pin factory) makes the pin an
input with no pull (lgpio ``SET_PULL_NONE``), so the line it had just driven floated, and a
relay board whose locked state needs the pin driven (an active-low module's IN held high, a
maglock held by an energised coil) was left to the board's default until the next start. It
now lets go of the line still driven (``GpioRelayGate.close``, as the daemon's stop does): the
kernel frees it with the process and a Raspberry Pi kernel keeps a freed output at its level
(``persist_gpio_outputs``). A kernel that does not is said in the journal, loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from checkpoint.cli import main
from drivers.gate import GpioRelayGate, freed_line_kept


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
    the pin driven high. What the line is once the process has gone is what holds the gate
    (on a Raspberry Pi kernel, which keeps a freed line's level)."""
    monkeypatch.setattr(GpioRelayGate, "level_kept_after_exit", lambda self: None)
    pin = pins.pin(5)  # the line: what the kernel frees with the process
    code = main(["run", "--config", str(_config(tmp_path)), "--lock-gate"])
    pins.close()  # the interpreter's exit: gpiozero's hook closes its factory's pins
    assert code == 0
    assert [pin.function, pin.state] == ["output", True]
    assert "left driven at the locked level" in capsys.readouterr().err


def test_lock_gate_on_a_kernel_that_frees_the_line_says_so_loudly(tmp_path, pins, capsys):
    """This machine's kernel (no ``persist_gpio_outputs``): the line cannot be held once the
    process ends, and the journal says so, as an error, naming why."""
    assert main(["run", "--config", str(_config(tmp_path)), "--lock-gate"]) == 0
    err = capsys.readouterr().err
    assert "cannot hold the locked level" in err and "persist_gpio_outputs" in err


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
