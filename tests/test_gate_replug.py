"""A USB relay board unplugged and plugged back while the gate is held open (an evacuation,
a pass's pulse): the board powers up with its coil off, so a strike on NO is locked again
while both screens say the gate is open. Its health commanded only the *lock* back when the
coil's state was unknown, and only while idle: the gate stayed locked for the rest of the
evacuation. It now puts back what was last asked of it (open), and a lock asked last (and
failed while it was gone) stays a lock: a replug never opens a gate the kiosk wanted shut."""

from __future__ import annotations

from pathlib import Path

from drivers.gate import SerialRelayGate, lcus_frame


class Port:
    def __init__(self, url: str = "") -> None:
        self.url = url
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _gate(node, clock):
    opened: list[Port] = []

    def factory(_url, **_kwargs):
        if not node.exists():
            raise OSError(19, "No such device")
        opened.append(Port(_url))
        return opened[-1]

    return SerialRelayGate(str(node), serial_factory=factory, clock=clock), opened


def test_a_board_replugged_while_held_open_is_opened_again(clock, tmp_path):
    node = tmp_path / "ttyUSB0"
    node.touch()
    gate, opened = _gate(node, clock)
    gate.set_open(True)  # held open (an evacuation)
    node.unlink()
    assert gate.health().state == "fault"
    node.touch()  # back, its coil off: the strike locked
    assert gate.health().ok
    assert len(opened) == 2  # through a fresh descriptor
    assert opened[1].data == lcus_frame(1, True)  # released again, as asked


def test_a_lock_that_failed_while_it_was_gone_is_a_lock_when_it_is_back(clock, tmp_path):
    node = tmp_path / "ttyUSB0"
    node.touch()
    gate, opened = _gate(node, clock)
    gate.set_open(True)
    node.unlink()
    gate.health()
    try:
        gate.set_open(False)  # the pulse's end, while it is gone
    except Exception:  # noqa: BLE001 - a GateFault, as the engine gets it
        pass
    node.touch()
    assert gate.health().ok
    assert len(opened) == 2
    assert opened[1].data == lcus_frame(1, False)  # never opened by the replug


def _replug(dev, opened: list[Port]) -> str:
    """The board enumerates again as Linux's usb-serial numbers it: the lowest ttyUSB minor
    that no open tty still holds (a minor is released only at its last close)."""
    held = {Path(p.url).name for p in opened if not p.closed}
    name = next(f"ttyUSB{i}" for i in range(8) if f"ttyUSB{i}" not in held)
    (dev / name).touch()
    return name


def test_a_board_replugged_while_its_old_port_was_held_comes_back_under_its_own_name(
    clock, tmp_path
):
    """health() saw the node gone but kept the dead descriptor open until the next command:
    usb-serial frees a ttyUSB minor only at its last close, so the board plugged back came up
    as ttyUSB1 and the gate, configured on ttyUSB0, was never commanded again (held open for
    an evacuation, the runner only polls health: a strike on NO stayed locked). The port is
    let go of as soon as the node is gone."""
    node = tmp_path / "ttyUSB0"
    node.touch()
    gate, opened = _gate(node, clock)
    gate.set_open(True)  # held open (an evacuation)
    node.unlink()  # a USB brown-out
    assert gate.health().state == "fault"
    assert opened[0].closed  # the dead descriptor let go of at once
    assert _replug(tmp_path, opened) == "ttyUSB0"
    assert gate.health().ok
    assert opened[1].data == lcus_frame(1, True)  # released again, as asked
