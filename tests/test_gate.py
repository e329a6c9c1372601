"""Gate drivers: LCUS-1 bytes on a real pty, GPIO levels on gpiozero's MockFactory, the fake."""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import tty

import pytest
import serial
from fd_support import descriptors_past_1024
from gpiozero.pins.mock import MockFactory

from drivers.gate import (
    FakeGate,
    GpioRelayGate,
    NoGate,
    SerialRelayGate,
    build_gate,
    coil_energised,
    lcus_frame,
)
from kiosk.config.gate import GateSection
from kiosk.devices import GateFault


@pytest.fixture
def pty_port():
    """A real pseudo-terminal: the driver opens the slave by path, the test reads the master."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    name = os.ttyname(slave)
    yield master, name
    os.close(master)
    os.close(slave)


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += os.read(fd, n - len(data))
    return data


def test_lcus_frames_match_the_board_documentation():
    assert lcus_frame(1, True) == bytes.fromhex("A00101A2")
    assert lcus_frame(1, False) == bytes.fromhex("A00100A1")
    assert lcus_frame(2, True) == bytes.fromhex("A00201A3")


def test_lcus_checksum_wraps_at_one_byte():
    assert lcus_frame(0x60, True)[3] == (0xA0 + 0x60 + 1) & 0xFF


def test_wiring_maps_open_to_the_coil_level():
    assert coil_energised(True, "normally_open") is True
    assert coil_energised(False, "normally_open") is False
    assert coil_energised(True, "normally_closed") is False
    assert coil_energised(False, "normally_closed") is True


def test_serial_relay_writes_on_and_off_frames_to_the_port(pty_port, clock):
    master, name = pty_port
    gate = SerialRelayGate(name, channel=1, clock=clock)
    gate.set_open(True)
    assert _read_exactly(master, 4) == bytes.fromhex("A00101A2")
    gate.set_open(False)
    assert _read_exactly(master, 4) == bytes.fromhex("A00100A1")
    assert gate.health().ok
    gate.close()


def test_a_relay_port_opened_past_descriptor_1024_still_switches_the_gate(pty_port, clock):
    """pyserial's write() with a write timeout waits with select(), which refuses a descriptor
    past 1024: every command was 'relay write failed: filedescriptor out of range in
    select()', reopened and failed again, and the gate never opened until a restart."""
    master, name = pty_port
    with descriptors_past_1024():
        gate = SerialRelayGate(name, channel=1, clock=clock)
        try:
            gate.set_open(True)
            assert _read_exactly(master, 4) == bytes.fromhex("A00101A2")
            gate.set_open(False)
            assert _read_exactly(master, 4) == bytes.fromhex("A00100A1")
            assert gate.health().ok
        finally:
            gate.close()


def test_a_second_program_on_the_relays_port_is_refused_and_sends_nothing(pty_port, clock):
    """Before: the relay opened its port without the lock the serial scanner takes, so a
    second daemon (or a stray verb) on the same config drove the same board: one kiosk's
    'closed' cut the other's pulse short, or its 'open' opened a gate nobody decided for.
    The port is taken exclusively (flock); the second is a gate fault and writes no byte."""
    master, name = pty_port
    first = SerialRelayGate(name, clock=clock)
    second = SerialRelayGate(name, channel=2, clock=clock)  # its frames told apart
    try:
        first.set_open(False)
        assert _read_exactly(master, 4) == lcus_frame(1, False)
        with pytest.raises(GateFault) as info:
            second.set_open(True)
        assert info.value.reason == "gate_fault"
        assert second.health().detail == (
            f"relay port {name} is held by another program (a second kiosk service?)"
        )
        first.set_open(True)  # the first keeps its board, and no byte came from the second
        assert _read_exactly(master, 4) == lcus_frame(1, True)
        assert select.select([master], [], [], 0)[0] == []
    finally:
        first.close()
        second.close()


def test_serial_relay_normally_closed_wiring_inverts_the_coil(pty_port, clock):
    master, name = pty_port
    gate = SerialRelayGate(name, channel=2, wiring="normally_closed", clock=clock)
    gate.set_open(True)
    assert _read_exactly(master, 4) == lcus_frame(2, False)
    gate.close()


def test_serial_relay_on_a_loop_url_sends_the_channel_frame():
    ports = []

    def factory(url, **kwargs):
        port = serial.serial_for_url(url, **kwargs)
        ports.append(port)
        return port

    gate = SerialRelayGate("loop://", channel=3, serial_factory=factory)
    gate.set_open(True)
    assert ports[0].read(4) == lcus_frame(3, True)
    gate.close()


def test_unplugged_serial_relay_raises_gate_fault_and_recovers_when_back(pty_port, clock, tmp_path):
    master, name = pty_port
    by_id = tmp_path / "usb-relay-if00-port0"  # as /dev/serial/by-id: absent while unplugged

    gate = SerialRelayGate(str(by_id), clock=clock)
    with pytest.raises(GateFault) as info:
        gate.set_open(True)
    assert info.value.reason == "gate_fault"
    assert gate.health().state == "fault"
    by_id.symlink_to(name)  # plugged back in: the next command reopens
    gate.set_open(True)
    assert _read_exactly(master, 4) == lcus_frame(1, True)
    assert gate.health().ok
    gate.close()


def test_write_error_on_an_open_port_is_a_fault_and_the_port_is_reopened():
    opened = []

    class BrokenOnce:
        def __init__(self):
            self.fail = len(opened) == 0
            self.data = b""

        def write(self, data):
            if self.fail:
                raise serial.SerialException(
                    "device reports readiness to read but returned no data"
                )
            self.data += data
            return len(data)

        def flush(self):
            pass

        def close(self):
            pass

    def factory(_url, **_kwargs):
        port = BrokenOnce()
        opened.append(port)
        return port

    gate = SerialRelayGate("/dev/ttyUSB0", serial_factory=factory)
    with pytest.raises(GateFault):
        gate.set_open(True)
    gate.set_open(True)
    assert len(opened) == 2
    assert opened[1].data == lcus_frame(1, True)


@pytest.fixture
def pins():
    factory = MockFactory()
    yield factory
    factory.reset()


def test_gpio_relay_starts_locked_and_drives_the_pin_for_open(pins, clock):
    gate = GpioRelayGate(17, active_high=True, pin_factory=pins, clock=clock)
    pin = pins.pin(17)
    assert pin.state is False
    gate.set_open(True)
    assert pin.state is True
    gate.set_open(False)
    assert pin.state is False
    gate.close()


def test_gpio_active_low_module_with_normally_closed_wiring(pins):
    gate = GpioRelayGate(22, active_high=False, wiring="normally_closed", pin_factory=pins)
    pin = pins.pin(22)
    # NC: locked means coil energised; active-low: energised means pin low.
    assert pin.state is False
    assert gate.energised is True
    gate.set_open(True)
    assert pin.state is True
    assert gate.energised is False
    gate.close()


def test_fake_gate_records_every_command_with_its_time(clock):
    gate = FakeGate(clock)
    gate.set_open(True)
    clock.advance(3)
    gate.set_open(False)
    assert [(c.open_, c.mono_ns) for c in gate.commands] == [
        (True, 1_000_000_000),
        (False, 4_000_000_000),
    ]


def test_unplugged_fake_gate_fails_until_replugged(clock):
    gate = FakeGate(clock, wiring="normally_closed")
    gate.unplug()
    with pytest.raises(GateFault):
        gate.set_open(True)
    assert gate.health().state == "fault"
    assert gate.commands == []
    gate.replug()
    gate.set_open(True)
    assert gate.commands[-1].energised is False
    assert gate.health().ok


def test_stalled_fake_gate_blocks_until_released(clock):
    gate = FakeGate(clock)
    gate.stall()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (gate.set_open(True), done.set()), daemon=True)
    worker.start()
    assert gate.stalled_call.wait(5)
    assert not done.is_set()
    assert gate.commands == []
    gate.release()
    assert done.wait(2)
    assert gate.is_open


def test_no_gate_only_logs(caplog):
    gate = NoGate()
    with caplog.at_level("DEBUG", logger="drivers.gate"):  # debug: not a journal line a pass
        gate.set_open(True)
    assert "open" in caplog.text
    assert gate.health().ok


@pytest.mark.parametrize(
    ("driver", "cls"),
    [
        ({"type": "fake"}, FakeGate),
        ({"type": "none"}, NoGate),
        ({"type": "serial_relay", "port": "loop://"}, SerialRelayGate),
    ],
)
def test_build_gate_picks_the_driver_by_type(driver, cls, clock):
    gate = build_gate(GateSection.model_validate({"driver": driver}), clock)
    assert isinstance(gate, cls)
    gate.close()


def test_build_gate_builds_a_gpio_relay(clock, monkeypatch, pins):
    from gpiozero import Device

    monkeypatch.setattr(Device, "pin_factory", pins)
    gate = build_gate(
        GateSection.model_validate(
            {"driver": {"type": "gpio", "pin": 5}, "wiring": "normally_open"}
        ),
        clock,
    )
    assert isinstance(gate, GpioRelayGate)
    gate.set_open(True)
    assert pins.pin(5).state is True
    gate.close()


def test_serial_relay_reports_an_unplugged_board_while_idle_and_reopens_after(clock, tmp_path):
    node = tmp_path / "ttyUSB0"  # stands for the device node udev adds and removes
    node.touch()
    opened = []

    class Port:
        def __init__(self):
            self.data = b""
            self.closed = False

        def write(self, data):
            self.data += data
            return len(data)

        def flush(self):
            pass

        def close(self):
            self.closed = True

    def factory(_url, **_kwargs):
        opened.append(Port())
        return opened[-1]

    gate = SerialRelayGate(str(node), serial_factory=factory, clock=clock)
    gate.set_open(False)
    assert gate.health().ok
    node.unlink()  # cable pulled: no command sent, the health says so anyway
    health = gate.health()
    assert health.state == "fault" and "unplugged" in health.detail
    node.touch()  # plugged back in: locked again while idle, through a fresh descriptor
    assert gate.health().ok
    gate.set_open(True)
    assert len(opened) == 2 and opened[0].closed
    assert opened[1].data == lcus_frame(1, False) + lcus_frame(1, True)


def test_serial_relay_url_ports_are_not_checked_as_paths():
    gate = SerialRelayGate("loop://", serial_factory=serial.serial_for_url)
    assert gate.health().ok
    gate.close()


# -- the GPIO library failing: a gate fault, never a crashed daemon ------------------------


class BadPinFactory(Exception):
    """gpiozero.exc.BadPinFactory, as raised when no pin factory can start."""


def _lgpio_like_gpiozero(monkeypatch, pins, opened: list):
    """A gpiozero whose pin factory starts like lgpio's: it first creates its notification
    pipe in $LG_WD or else the working directory, and fails as gpiozero does when it cannot."""
    import types

    from gpiozero import OutputDevice as RealOutputDevice

    def output_device(pin, **kw):
        workdir = os.environ.get("LG_WD") or os.getcwd()
        fifo = os.path.join(workdir, f".lgd-nfy{len(opened)}")
        try:
            os.mkfifo(fifo)
        except OSError as exc:
            raise BadPinFactory(f"Unable to load any default pin factory! ({exc})") from None
        opened.append(fifo)
        kw["pin_factory"] = pins
        return RealOutputDevice(pin, **kw)

    from gpiozero import Device

    module = types.ModuleType("gpiozero")
    module.OutputDevice = output_device
    module.Device = Device
    monkeypatch.setitem(sys.modules, "gpiozero", module)


def test_gpio_relay_in_a_read_only_working_directory_uses_a_writable_lg_wd(
    monkeypatch, pins, clock, tmp_path
):
    opened: list = []
    _lgpio_like_gpiozero(monkeypatch, pins, opened)
    monkeypatch.chdir("/proc/sys")  # read-only even for root, like / under ProtectSystem
    monkeypatch.delenv("LG_WD", raising=False)
    monkeypatch.setenv("KIOSK_DATA", str(tmp_path))
    gate = GpioRelayGate(17, clock=clock)
    assert gate.health().state == "ok"
    assert os.environ["LG_WD"] == str(tmp_path) and opened[0].startswith(str(tmp_path))
    gate.set_open(True)
    assert pins.pin(17).state is True
    gate.close()


def test_a_gpio_library_failure_is_a_gate_fault_and_recovers_without_a_restart(
    monkeypatch, pins, clock, tmp_path, caplog
):
    opened: list = []
    _lgpio_like_gpiozero(monkeypatch, pins, opened)
    monkeypatch.setenv("LG_WD", "/proc/sys")  # lgpio cannot create its pipe here
    caplog.set_level("WARNING", logger="drivers")
    gate = build_gate(GateSection.model_validate({"driver": {"type": "gpio", "pin": 5}}), clock)
    health = gate.health()
    assert health.state == "fault" and "BadPinFactory" in health.detail
    for _ in range(3):
        with pytest.raises(GateFault, match="GPIO5 unavailable"):
            gate.set_open(True)
    faults = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(faults) == 1  # one line for the fault, not one per command
    monkeypatch.setenv("LG_WD", str(tmp_path))  # the cause fixed (e.g. the unit's LG_WD)
    gate.set_open(True)
    assert gate.health().state == "ok" and pins.pin(5).state is True
    gate.close()


def test_a_gpio_library_failure_does_not_stop_the_daemon_building_its_devices(
    monkeypatch, pins, clock
):
    from checkpoint.app import build_devices
    from kiosk.config import parse_config

    opened: list = []
    _lgpio_like_gpiozero(monkeypatch, pins, opened)
    monkeypatch.setenv("LG_WD", "/proc/sys")
    config = parse_config({"gate": {"driver": {"type": "gpio", "pin": 6}}})
    devices = build_devices(config, clock)
    assert devices.gate.health().state == "fault"
    devices.close()


def test_a_gpio_pin_that_could_not_open_is_tried_again_while_idle(
    monkeypatch, pins, clock, tmp_path
):
    """The chip (or lgpio's directory) appears after the start: health finds it without a
    command, so the guard sees the gate back, and the pin is set to locked at once."""
    opened: list = []
    _lgpio_like_gpiozero(monkeypatch, pins, opened)
    monkeypatch.setenv("LG_WD", "/proc/sys")
    gate = GpioRelayGate(5, clock=clock)
    assert gate.health().state == "fault" and gate.health().state == "fault"
    monkeypatch.setenv("LG_WD", str(tmp_path))
    health = gate.health()
    assert health.state == "ok" and health.detail == "closed"
    assert pins.pin(5).state is False  # opened, commanded locked, without a command
    gate.close()


def _default_factory_on_chip(monkeypatch, node):
    """gpiozero's default pin factory as lgpio's: it names its chip (``chip``) and cannot
    start while ``node`` (the chip's /dev entry) is missing. Returns the factories made."""
    from gpiozero import Device

    made: list = []

    def default_factory():
        if not node.exists():
            raise OSError(2, "can not open gpiochip")
        factory = MockFactory()
        factory.chip = 0
        made.append(factory)
        return factory

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(default_factory))
    return made


def test_a_chip_gone_under_an_open_pin_is_a_fault_while_idle_and_a_fresh_chip_when_back(
    monkeypatch, clock, tmp_path, caplog
):
    from gpiozero import Device

    node = tmp_path / "gpiochip0"
    node.touch()
    made = _default_factory_on_chip(monkeypatch, node)
    caplog.set_level("WARNING", logger="drivers")
    gate = GpioRelayGate(17, clock=clock, dev_dir=str(tmp_path))
    assert gate.health().state == "ok" and len(made) == 1
    node.unlink()  # the chip removed while the gate is idle
    health = gate.health()
    assert health.state == "fault" and f"{node} is gone" in health.detail
    assert Device.pin_factory is None  # the factory holding the old chip is let go
    with pytest.raises(GateFault, match="can not open gpiochip"):
        gate.set_open(True)
    assert gate.health().state == "fault"
    node.touch()  # the chip is back: a new device, reached through a new factory
    assert gate.health().state == "ok" and len(made) == 2 and Device.pin_factory is made[1]
    gate.set_open(True)
    assert made[1].pin(17).state is True
    assert len(caplog.records) == 2  # gone, then cannot open: one line per cause
    gate.close()
    made[1].reset()


class LgpioError(Exception):
    """lgpio.error"""


def _pi5_after_kernel_6_6_45(monkeypatch, tmp_path):
    """A Pi 5 whose kernel numbers the RP1 (the header's GPIOs) gpiochip0, with no gpiochip4
    link, under gpiozero 2.0.1's lgpio factory (the Debian package the venv sees through
    --system-site-packages): it opens gpiochip4 on a Pi 5, lgpio says 'can not open
    gpiochip', and gpiozero falls through every factory to BadPinFactory (gpiozero #1166).
    Returns the /sys and /dev trees and the factories made."""
    import types

    from gpiozero import Device

    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    for chip, compatible in [(0, b"raspberrypi,rp1-gpio\0"), (10, b"brcm,brcmstb-gpio\0")]:
        node = sysfs / f"bus/gpio/devices/gpiochip{chip}/of_node"
        node.mkdir(parents=True)
        (node / "compatible").write_bytes(compatible)
        (dev / f"gpiochip{chip}").parent.mkdir(exist_ok=True)
        (dev / f"gpiochip{chip}").touch()
    made: list = []

    class LGPIOFactory(MockFactory):
        def __init__(self, chip=None):
            if chip is None:
                chip = 4  # gpiozero 2.0.1 on a Pi 5 (revision type 0x17)
            if not (dev / f"gpiochip{chip}").exists():
                raise LgpioError("can not open gpiochip")
            super().__init__()
            self.chip = chip
            made.append(self)

    def default_factory():
        try:
            return LGPIOFactory()
        except LgpioError as exc:
            raise BadPinFactory(f"Unable to load any default pin factory! ({exc})") from None

    module = types.ModuleType("gpiozero.pins.lgpio")
    module.LGPIOFactory = LGPIOFactory
    monkeypatch.setitem(sys.modules, "gpiozero.pins.lgpio", module)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(default_factory))
    return sysfs, dev, made


def test_a_gpio_relay_on_a_pi_5_drives_the_chip_the_header_is_on(monkeypatch, clock, tmp_path):
    """The relay never worked on a Pi 5 after a kernel update (the gate a fault,
    'BadPinFactory'): the chip is taken from the device tree (the RP1's, or the BCM283x's on
    older Pis), not from a number a gpiozero release assumed for the board."""
    sysfs, dev, made = _pi5_after_kernel_6_6_45(monkeypatch, tmp_path)
    gate = GpioRelayGate(17, clock=clock, dev_dir=str(dev), sys_dir=str(sysfs))
    assert gate.health().state == "ok"
    gate.set_open(True)
    assert [f.chip for f in made] == [0] and made[0].pin(17).state is True
    gate.close()
    made[0].reset()


def test_the_header_chip_is_the_one_the_device_tree_names(tmp_path):
    from drivers.gate import header_gpiochip

    assert header_gpiochip(str(tmp_path)) is None  # no device tree: gpiozero's own choice
    for chip, compatible in [(0, b"brcm,bcm2711-gpio\0"), (1, b"raspberrypi,firmware-gpio\0")]:
        node = tmp_path / f"bus/gpio/devices/gpiochip{chip}/of_node"
        node.mkdir(parents=True)
        (node / "compatible").write_bytes(compatible)
    assert header_gpiochip(str(tmp_path)) == 0  # a Pi 4
    (tmp_path / "bus/gpio/devices/gpiochip0/of_node/compatible").write_bytes(b"x\0")
    assert header_gpiochip(str(tmp_path)) is None


class error(Exception):  # noqa: N801 - lgpio's own name
    """lgpio.error: its text is the repr of lgpio's message ("'GPIO busy'")."""

    def __str__(self) -> str:
        return repr(self.args[0])


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("GPIO busy", "another program or a dtoverlay holds GPIO17"),
        ("can not open gpiochip", "/dev/gpiochip"),
    ],
)
def test_a_gpio_pin_lgpio_refuses_says_what_holds_it(clock, message, hint):
    """lgpio's 'GPIO busy' (a 1-Wire or HAT overlay, or another program, claimed the line)
    and 'can not open gpiochip' were the whole fault: the guard saw "error: 'GPIO busy'"."""

    class RefusingFactory(MockFactory):
        def pin(self, spec, **kw):
            raise error(message)

    gate = GpioRelayGate(17, pin_factory=RefusingFactory(), clock=clock)
    health = gate.health()
    assert health.state == "fault" and message in health.detail and hint in health.detail


def test_a_failed_gpio_write_is_a_gate_fault_and_the_pin_is_opened_again(monkeypatch, pins, clock):
    gate = GpioRelayGate(17, pin_factory=pins, clock=clock)
    pin = pins.pin(17)

    def unplugged(value):
        raise OSError(19, "No such device")

    with monkeypatch.context() as broken:
        broken.setattr(pin, "_set_state", unplugged)
        with pytest.raises(GateFault, match="No such device"):
            gate.set_open(True)
        health = gate.health()
        assert health.state == "fault" and "OSError" in health.detail
    assert gate.health().state == "ok"  # a fresh OutputDevice on the working pin
    gate.set_open(True)
    assert pin.state is True
    gate.close()


def test_a_gpio_close_whose_pin_fails_twice_says_the_first_error_and_does_not_raise(
    monkeypatch, pins, clock, caplog
):
    """The chip gone at the stop: commanding the level fails, and so does closing the pin.
    The second error used to escape ``close()`` (the stop's close given up, the first error
    hidden); the journal now names the first, and the stop goes on."""
    gate = GpioRelayGate(17, pin_factory=pins, clock=clock)
    pin = pins.pin(17)

    def unplugged(value):
        raise OSError(19, "No such device")

    closes = [pin.close]

    def close_fails():
        if len(closes) == 1:  # once: gpiozero's __del__ closes it again
            closes.append(None)
            raise OSError(5, "Input/output error")
        closes[0]()

    with monkeypatch.context() as broken, caplog.at_level(logging.WARNING, "drivers.gate"):
        broken.setattr(pin, "_set_state", unplugged)
        broken.setattr(pin, "close", close_fails)
        gate.close()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "No such device" in said
    assert gate.energised is False  # forgotten: a later close does nothing
    gate.close()
