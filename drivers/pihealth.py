"""The Pi's power and heat from the kernel's own files, and a fake that writes them.

Read on Raspberry Pi OS Bookworm and Trixie, never by spawning ``vcgencmd``:

* ``get_throttled``: an attribute of the firmware's platform device, created beside the
  ``rpi_volt`` hwmon device when the firmware answers ``GET_THROTTLED`` (raspberrypi/linux,
  ``drivers/firmware/raspberrypi.c``: ``rpi_register_hwmon_driver``), found through the
  driver's own folder ``/sys/bus/platform/drivers/raspberrypi-firmware/*/`` (on a Pi 4
  ``soc:firmware``, the path the attribute was introduced with:
  ``/sys/devices/platform/soc/soc:firmware/get_throttled``, raspberrypi/linux#2397). Its text
  is the word in hex without ``0x`` (``"%x\\n"``). The kernel marks it deprecated: the first
  read after a boot leaves one "deprecated, use hwmon sysfs instead" warning with a backtrace
  in the kernel log, harmless and once per boot (docs/operations.md says so);
* ``in0_lcrit_alarm`` of the hwmon device named ``rpi_volt`` (``/sys/class/hwmon/hwmon*/name``;
  ``drivers/hwmon/raspberrypi-hwmon.c``, documented in the kernel's
  ``Documentation/hwmon/raspberrypi-hwmon.rst``): ``0`` or ``1``;
* ``/sys/class/thermal/thermal_zone0/temp``: the SoC's temperature in millidegrees Celsius
  (``Documentation/ABI/testing/sysfs-class-thermal``).

A file that is not there (not a Pi, an older kernel) is ``None`` in the reading; one that
cannot be understood or read is a problem named. Every file is read bounded (a few bytes).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kiosk.config.pihealth import PiHealthSection, SysfsPiHealthConfig
from kiosk.pihealth import PiPowerReading

__all__ = ["FAKE_THROTTLED", "FakePiSysfs", "SysfsPiPower", "build_pi_power"]

T = TypeVar("T")

FIRMWARE_DRIVER = "sys/bus/platform/drivers/raspberrypi-firmware"
FIRMWARE_DEVICE = "sys/devices/platform/soc/soc:firmware"
#: The fake's throttle word under its root (a Pi 4's path).
FAKE_THROTTLED = f"{FIRMWARE_DEVICE}/get_throttled"
HWMON = "sys/class/hwmon"
HWMON_NAME = "rpi_volt"
THERMAL = "sys/class/thermal/thermal_zone0/temp"
#: Enough for any of the three files (a 32-bit word in hex, a millidegree count).
MAX_BYTES = 64
#: A SoC temperature outside this is a garbled file, not a reading.
PLAUSIBLE_C = (-60.0, 150.0)


class Garbled(ValueError):
    """A file the kernel writes that does not read as it should: named with its path."""


def _text(path: Path) -> str | None:
    """The file's text, stripped; None when it is not there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise Garbled(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = os.read(fd, MAX_BYTES + 1)
    except OSError as exc:
        if exc.errno == errno.ENODEV:  # the device went away between open and read
            return None
        raise Garbled(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise Garbled(f"{path}: more than {MAX_BYTES} bytes, not the kernel's")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Garbled(f"{path}: not text") from None


def _word(text: str, path: Path) -> int:
    try:
        word = int(text, 16)
    except ValueError:
        raise Garbled(f"{path}: {text[:20]!r} is not a hex word") from None
    if not 0 <= word <= 0xFFFFFFFF:
        raise Garbled(f"{path}: {text[:20]!r} is not a 32-bit word")
    return word


def _alarm(text: str, path: Path) -> bool:
    if text not in ("0", "1"):
        raise Garbled(f"{path}: {text[:20]!r} is not 0 or 1")
    return text == "1"


def _celsius(text: str, path: Path) -> float:
    try:
        celsius = int(text) / 1000
    except ValueError:
        raise Garbled(f"{path}: {text[:20]!r} is not millidegrees") from None
    if not PLAUSIBLE_C[0] <= celsius <= PLAUSIBLE_C[1]:
        raise Garbled(f"{path}: {celsius:.1f} degC is not a SoC temperature")
    return celsius


class SysfsPiPower:
    """``read()`` the three files under ``root`` (``/`` on the Pi)."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def throttled_path(self) -> Path | None:
        """The firmware device's ``get_throttled``, wherever the device sits (the Pi 5's
        firmware node has another path than a Pi 4's)."""
        for device in sorted((self.root / FIRMWARE_DRIVER).glob("*/get_throttled")):
            return device
        legacy = self.root / FIRMWARE_DEVICE / "get_throttled"
        return legacy if legacy.exists() else None

    def hwmon_dir(self) -> Path | None:
        """The ``rpi_volt`` hwmon device's folder, or None."""
        for name in sorted((self.root / HWMON).glob("hwmon*/name")):
            try:
                if _text(name) == HWMON_NAME:
                    return name.parent
            except Garbled:
                continue
        return None

    def read(self) -> PiPowerReading:
        problems: list[str] = []
        hwmon = self.hwmon_dir()
        word = self._one(self.throttled_path(), _word, problems)
        alarm = self._one(None if hwmon is None else hwmon / "in0_lcrit_alarm", _alarm, problems)
        temp = self._one(self.root / THERMAL, _celsius, problems)
        return PiPowerReading(
            throttled=word,
            lcrit_alarm=alarm,
            soc_temp_c=temp,
            problems=tuple(problems),
            stale_word=word is not None and hwmon is None,
        )

    @staticmethod
    def _one(path: Path | None, parse: Callable[[str, Path], T], problems: list[str]) -> T | None:
        if path is None:
            return None
        try:
            text = _text(path)
            return None if text is None else parse(text, path)
        except Garbled as exc:
            problems.append(str(exc))
            return None


class FakePiSysfs:
    """The kernel's three files written under ``root`` as a Pi's kernel lays them out (the
    firmware device found through its driver's folder, a ``rpi_volt`` hwmon device among
    others), for tests and ``kiosk demo``: ``set`` a state, ``garble`` a file, ``remove`` all
    (a machine that is not a Pi). Read with ``SysfsPiPower(root)``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.device = root / FIRMWARE_DEVICE
        self.hwmon = root / HWMON / "hwmon1"
        self.thermal = root / THERMAL

    def set(self, word: int = 0, *, alarm: bool | None = None, temp_c: float = 48.3) -> FakePiSysfs:
        """The firmware's word, the alarm (default: the word's bit 16) and the temperature."""
        self.device.mkdir(parents=True, exist_ok=True)
        link = self.root / FIRMWARE_DRIVER / "soc:firmware"
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(self.device, link.parent))
        (self.device / "get_throttled").write_text(f"{word:x}\n")
        other = self.root / HWMON / "hwmon0"  # another hwmon device (the SoC's own)
        other.mkdir(parents=True, exist_ok=True)
        (other / "name").write_text("cpu_thermal\n")
        self.hwmon.mkdir(parents=True, exist_ok=True)
        (self.hwmon / "name").write_text(f"{HWMON_NAME}\n")
        uv = bool(word >> 16 & 1) if alarm is None else alarm
        (self.hwmon / "in0_lcrit_alarm").write_text("1\n" if uv else "0\n")
        self.thermal.parent.mkdir(parents=True, exist_ok=True)
        self.thermal.write_text(f"{round(temp_c * 1000)}\n")
        return self

    def garble(self, which: str, text: str = "zz\n") -> None:
        """Write ``text`` into ``get_throttled``, ``in0_lcrit_alarm`` or ``temp``."""
        path = {
            "get_throttled": self.device / "get_throttled",
            "in0_lcrit_alarm": self.hwmon / "in0_lcrit_alarm",
            "temp": self.thermal,
        }[which]
        path.write_text(text)

    def unload_hwmon(self) -> None:
        """The ``raspberrypi_hwmon`` module not loaded: no ``rpi_volt`` device."""
        for name in self.hwmon.iterdir():
            name.unlink()
        self.hwmon.rmdir()

    def remove(self) -> None:
        """No file at all: a machine that is not a Pi."""
        shutil.rmtree(self.root / "sys", ignore_errors=True)


def build_pi_power(section: PiHealthSection, data_dir: Path) -> SysfsPiPower | None:
    """The reader ``pi_health.driver`` names (None for ``none``); a fake's files are written
    at once, a Pi at rest (its folder: ``root``, or ``pi-sysfs`` in the data dir)."""
    driver = section.driver
    if isinstance(driver, SysfsPiHealthConfig):
        return SysfsPiPower(driver.root)
    if driver.type == "none":
        return None
    root = driver.root or data_dir / "pi-sysfs"
    if not (root / "sys").exists():
        FakePiSysfs(root).set()
    return SysfsPiPower(root)
