"""Defects found in the drivers by a hunt, each pinned by the test that first failed on it."""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.gate import FakeGate, GpioRelayGate, SerialRelayGate, build_gate, lcus_frame
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


# -- an LCUS board keeps its coil as last commanded; nothing but a command changes it --------


class _RecordingPort:
    """A pyserial port stand-in that keeps what was written (the board answers nothing)."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _recording_factory(opened: list[_RecordingPort]):
    def factory(_url, **_kwargs):
        opened.append(_RecordingPort())
        return opened[-1]

    return factory


def test_serial_relay_left_energised_by_a_killed_daemon_is_locked_at_start(tmp_path, clock):
    """The watchdog (or the OOM killer) kills the daemon during a pass's pulse: the board keeps
    its coil energised, the gate open. The next daemon must lock it before anyone passes."""
    node = tmp_path / "ttyUSB0"
    node.touch()
    opened: list[_RecordingPort] = []
    gate = SerialRelayGate(str(node), serial_factory=_recording_factory(opened), clock=clock)
    health = gate.health()  # the runner's first health poll, at start
    assert [p.data for p in opened] == [lcus_frame(1, False)]
    assert health.ok and health.detail == "closed"
    gate.health()
    assert [p.data for p in opened] == [lcus_frame(1, False)]  # once, not at every poll
    gate.close()


def test_serial_relay_replugged_while_idle_is_locked_again(tmp_path, clock):
    """A maglock on NO is held locked by an energised coil; a board replugged while the gate
    is idle powers up with its coil off, the lock released, until it is commanded again."""
    node = tmp_path / "ttyUSB0"
    node.touch()
    opened: list[_RecordingPort] = []
    gate = SerialRelayGate(
        str(node),
        wiring="normally_open",
        fail_mode="fail_safe",
        serial_factory=_recording_factory(opened),
        clock=clock,
    )
    gate.set_open(False)
    assert opened[0].data == lcus_frame(1, True)
    node.unlink()  # pulled out
    assert gate.health().state == "fault"
    node.touch()  # plugged back in: coil off, maglock unpowered
    assert gate.health().ok
    assert len(opened) == 2 and opened[0].closed
    assert opened[1].data == lcus_frame(1, True)  # energised again: locked


def test_serial_relay_health_does_not_relock_a_gate_open_for_a_pass(tmp_path, clock):
    node = tmp_path / "ttyUSB0"
    node.touch()
    opened: list[_RecordingPort] = []
    gate = SerialRelayGate(str(node), serial_factory=_recording_factory(opened), clock=clock)
    gate.set_open(True)
    gate.health()
    assert opened[0].data == lcus_frame(1, True)


def test_serial_relay_idle_lock_from_health_does_not_wait_for_the_drain(tmp_path, clock):
    """health() runs on the runner's loop: tcdrain has no timeout, a stalled USB would hang
    the loop (and the watchdog would restart the kiosk) instead of showing a gate fault."""

    class NoDrainPort(_RecordingPort):
        def flush(self) -> None:
            raise AssertionError("tcdrain on the loop thread")

    node = tmp_path / "ttyUSB0"
    node.touch()
    opened: list[_RecordingPort] = []

    def factory(_url, **_kwargs):
        opened.append(NoDrainPort())
        return opened[-1]

    gate = SerialRelayGate(str(node), serial_factory=factory, clock=clock)
    assert gate.health().ok
    assert opened[0].data == lcus_frame(1, False)


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_closing_a_serial_relay_does_not_wait_forever_behind_a_stalled_drain(tmp_path, clock):
    """tcdrain on a wedged USB adapter never returns; the command stuck in it held the lock,
    so close() at shutdown hung until systemd killed the kiosk."""
    draining = threading.Event()
    release = threading.Event()

    class StalledPort(_RecordingPort):
        def flush(self) -> None:
            draining.set()
            release.wait(10)

    node = tmp_path / "ttyUSB0"
    node.touch()
    port = StalledPort()
    gate = SerialRelayGate(
        str(node), serial_factory=lambda *_a, **_k: port, clock=clock, write_timeout_s=0.01
    )
    stuck = threading.Thread(target=gate.set_open, args=(False,), daemon=True)
    stuck.start()
    assert draining.wait(5)
    closer = threading.Thread(target=gate.close, daemon=True)
    closer.start()
    closer.join(5)
    try:
        assert not closer.is_alive()
        assert port.closed
    finally:
        release.set()
        stuck.join(5)
