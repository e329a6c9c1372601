"""A USB relay board unplugged and plugged back while the gate is held open (an evacuation,
a pass's pulse): the board powers up with its coil off, so a strike on NO is locked again
while both screens say the gate is open. Its health commanded only the *lock* back when the
coil's state was unknown, and only while idle: the gate stayed locked for the rest of the
evacuation. It now puts back what was last asked of it (open), and a lock asked last (and
failed while it was gone) stays a lock: a replug never opens a gate the kiosk wanted shut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


class FdPort(Port):
    """A port with its own descriptor, as pyserial's POSIX port (``fd``): what it has open is
    the node it opened, whatever the path names later."""

    def __init__(self, url: str) -> None:
        super().__init__(str(Path(url).resolve()))
        self.fd = os.open(url, os.O_RDWR)

    @property  # type: ignore[override]
    def data(self) -> bytes:  # written through the descriptor (drivers.gate.write_port)
        return Path(self.url).read_bytes()

    @data.setter
    def data(self, _value: bytes) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _by_id(dev: Path) -> Path:
    (dev / "ttyUSB0").touch()
    (dev / "by-id").mkdir()
    link = dev / "by-id" / "usb-1a86_USB_Serial-if00-port0"
    link.symlink_to("../ttyUSB0")
    return link


def _quick_replug(dev: Path, link: Path) -> None:
    """A brown-out between two health polls: the old node goes, and with ttyUSB0 still held
    open the board comes back as ttyUSB1, where the by-id link now points."""
    (dev / "ttyUSB0").unlink()
    (dev / "ttyUSB1").touch()
    link.unlink()
    link.symlink_to("../ttyUSB1")


def _by_id_gate(link: Path, clock, port=Port, **kwargs):
    opened: list[Port] = []

    def factory(url, **_kwargs):
        if not os.path.exists(url):
            raise OSError(19, "No such device")
        opened.append(port(url))
        return opened[-1]

    return SerialRelayGate(str(link), serial_factory=factory, clock=clock, **kwargs), opened


@pytest.mark.parametrize("port", [Port, FdPort])
def test_a_board_back_under_its_by_id_name_within_one_poll_is_opened_again(clock, tmp_path, port):
    """The by-id link existed at every poll, so the gate held open for an evacuation kept
    writing nowhere while the board, powered up coil off, held a strike on NO locked; health
    said ok. The port open is checked against the node the path names now."""
    link = _by_id(tmp_path)
    gate, opened = _by_id_gate(link, clock, port)
    gate.set_open(True)  # an evacuation
    assert gate.health().ok
    _quick_replug(tmp_path, link)
    assert gate.health().ok
    assert opened[0].closed  # the dead descriptor let go of
    assert len(opened) == 2 and os.path.realpath(opened[1].url).endswith("ttyUSB1")
    assert opened[1].data == lcus_frame(1, True)  # released again, as asked
    gate.health()
    assert len(opened) == 2  # the same board: not reopened at every poll


def test_an_idle_lock_on_nc_is_put_back_after_a_quick_replug(clock, tmp_path):
    """Wired normally_closed the lock is the coil on; the board back within one poll powered
    up coil off, the gate released, and nothing locked it again."""
    link = _by_id(tmp_path)
    gate, opened = _by_id_gate(link, clock, FdPort, wiring="normally_closed")
    assert gate.health().ok  # idle: the lock commanded
    assert opened[0].data == lcus_frame(1, True)
    _quick_replug(tmp_path, link)
    for _ in range(3):
        assert gate.health().ok
    assert len(opened) == 2
    assert opened[1].data == lcus_frame(1, True)  # locked again
