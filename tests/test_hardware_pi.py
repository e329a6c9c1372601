"""On a Raspberry Pi: what the fakes assume of the real libraries and the board, in one run.

Opt-in (``KIOSK_TEST_HARDWARE=1``); each test skips when its device is not there, so the same
command works on a Pi with only some of the parts. docs/install.md ("Proving the hardware")
gives the command and the variables that name a relay (they switch it: lock disconnected).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from drivers.clocksync import system_clock
from drivers.gate import GpioRelayGate, SerialRelayGate, header_gpiochip
from drivers.mlx90614 import MAX_BUS_HZ, Smbus2Transport, i2c_bus_clock_hz
from drivers.picamera import PiCamera, csi_cameras
from kiosk.devices import ReaderFault

pytestmark = pytest.mark.hardware

MODEL = Path("/proc/device-tree/model")


def _on_a_pi() -> None:
    try:
        model = MODEL.read_bytes().decode("ascii", "replace")
    except OSError:
        pytest.skip("not a Raspberry Pi (no /proc/device-tree/model)")
    if "Raspberry Pi" not in model:
        pytest.skip(f"not a Raspberry Pi: {model}")


def _picamera2() -> Any:
    picamera2 = pytest.importorskip("picamera2")
    cls = picamera2.Picamera2
    if not csi_cameras(cls.global_camera_info()):
        pytest.skip("no CSI camera (rpicam-hello --list-cameras)")
    return cls


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_csi_camera_delivers_a_bgr_frame_within_its_capture_timeout():
    """The picamera2 here has what the driver calls: wait(job, timeout) (0.3.17) and
    cancel_all_and_flush (0.3.20); a frame is 640x480x3 bytes."""
    cls = _picamera2()
    assert hasattr(cls, "cancel_all_and_flush"), "picamera2 before 0.3.20: upgrade it"
    cam = PiCamera(system_clock(), capture_timeout_s=2.0)
    cam.open()
    try:
        frame, _ = cam.read()
        assert frame.shape == (480, 640, 3) and frame.dtype.name == "uint8"
    finally:
        cam.close()


def test_csi_camera_held_by_another_opener_is_busy_and_leaks_no_descriptor():
    """libcamera refuses a second acquire ("Device or resource busy", as from rpicam-hello
    or a second service); each refused open gives back what picamera2 made for it."""
    _picamera2()
    holder = PiCamera(system_clock())
    holder.open()
    try:
        second = PiCamera(system_clock())
        with pytest.raises(ReaderFault, match="(?i)busy"):
            second.open()
        before = _descriptors()
        for _ in range(5):
            with pytest.raises(ReaderFault):
                second.open()
        assert _descriptors() <= before
    finally:
        holder.close()


def test_the_header_gpio_chip_is_named_by_the_device_tree_and_opens():
    """The chip the relay driver opens (the RP1's on a Pi 5, gpiochip0 or gpiochip4 by
    kernel) is the one lgpio reports with the header's line names."""
    _on_a_pi()
    lgpio = pytest.importorskip("lgpio")
    chip = header_gpiochip()
    assert chip is not None, "no gpiochip with the header's compatible under /sys/bus/gpio"
    handle = lgpio.gpiochip_open(chip)
    try:
        _, lines, _name, label = lgpio.gpio_get_chip_info(handle)
        assert label in ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835") and lines >= 28
    finally:
        lgpio.gpiochip_close(handle)


def test_gpio_relay_switches_on_the_pin_named():
    """KIOSK_TEST_HARDWARE_RELAY_PIN=17 (BCM): the relay pulls in, then drops out."""
    pin = os.environ.get("KIOSK_TEST_HARDWARE_RELAY_PIN", "")
    if not pin.isdigit():
        pytest.skip("KIOSK_TEST_HARDWARE_RELAY_PIN names no pin")
    active_high = os.environ.get("KIOSK_TEST_HARDWARE_RELAY_ACTIVE_LOW") != "1"
    gate = GpioRelayGate(int(pin), active_high=active_high, clock=system_clock())
    try:
        assert gate.health().state == "ok", gate.health().detail
        gate.set_open(True)
        assert gate.energised
        gate.set_open(False)
        assert not gate.energised and gate.health().state == "ok"
    finally:
        gate.close()


def test_serial_relay_board_takes_both_commands():
    """KIOSK_TEST_HARDWARE_RELAY_PORT=/dev/serial/by-id/...: the board clicks on, then off."""
    port = os.environ.get("KIOSK_TEST_HARDWARE_RELAY_PORT", "")
    if not port:
        pytest.skip("KIOSK_TEST_HARDWARE_RELAY_PORT names no port")
    gate = SerialRelayGate(port, clock=system_clock())
    try:
        gate.set_open(True)
        gate.set_open(False)
        assert gate.health().state == "ok", gate.health().detail
    finally:
        gate.close()


def test_i2c_bus_runs_at_the_thermometers_speed_and_a_missing_chip_is_errno_121():
    """The clock the driver reads (dtparam=i2c_arm_baudrate) and the errno the emulator
    raises for a NACK: EREMOTEIO on the BCM283x and on the Pi 5's RP1 alike."""
    _on_a_pi()
    if not os.path.exists("/dev/i2c-1"):
        pytest.skip("no /dev/i2c-1 (raspi-config: I2C)")
    clock_hz = i2c_bus_clock_hz(1)
    assert clock_hz is None or clock_hz <= MAX_BUS_HZ, f"I2C bus at {clock_hz} Hz"
    bus = Smbus2Transport(1)
    try:
        for address in range(0x50, 0x60):
            if address == 0x5A:
                continue
            try:
                bus.write_then_read(address, b"\x06", 3)
            except OSError as exc:
                assert exc.errno == errno.EREMOTEIO, exc
                return
        pytest.skip("every address 0x50-0x5F answered")
    finally:
        bus.close()
