"""Gate relay drivers: LCUS-1 USB serial relay, GPIO relay module, none, and a fake.

The engine only says *open* (release the lock) or *closed* (lock). Each driver maps that to
a relay coil level through the contact the lock is wired to (``gate.wiring``) and the kind of
lock (``gate.fail_mode``), as docs/wiring.md wires them:

- fail-secure lock (strike, power to unlock) on ``normally_open``: energised releases;
- fail-secure lock on ``normally_closed``: de-energised releases;
- fail-safe maglock (power to lock) on ``normally_closed``: energised releases (it cuts the
  magnet's power);
- fail-safe maglock on ``normally_open``: de-energised releases.

Whether the gate is released on power loss (fail-safe) or stays locked (fail-secure) is a
property of the lock and that wiring, not of software; a driver can only make sure it leaves
the gate *commanded* closed when it starts, and the coil off when it is closed: locked, or
released for the two wirings where de-energised releases, chosen so that a kiosk that is gone
releases the gate (``released_when_stopped``).

LCUS-1 protocol (CH340 USB serial at 9600 8N1, write-only): four bytes
``A0 <channel> <state> <checksum>`` where state is 01 (coil on) or 00 (coil off) and the
checksum is the sum of the first three bytes & 0xFF, e.g. ``A0 01 01 A2`` / ``A0 01 00 A1``.
The board does not acknowledge, so an unplugged board only shows as a failed write: the
driver reopens the port on the next command, which is how recovery happens by itself.

Every ``set_open`` may block (USB stalls); the engine's runner calls it in a worker thread
under a deadline.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.faultlog import StateLog, describe
from kiosk.clock import Clock
from kiosk.config.gate import (
    FailMode,
    FakeGateConfig,
    GateSection,
    GpioRelayConfig,
    NoGateConfig,
    SerialRelayConfig,
    Wiring,
    released_when_stopped,
)
from kiosk.deadline import DeviceWorker
from kiosk.devices import Gate, GateFault, Health, HealthState

log = logging.getLogger(__name__)

_LCUS_HEADER = 0xA0


def lcus_frame(channel: int, energise: bool) -> bytes:
    """The LCUS-1 command that switches ``channel``'s coil on or off."""
    if not 1 <= channel <= 0xFF:
        raise ValueError(f"relay channel out of range: {channel}")
    state = 0x01 if energise else 0x00
    return bytes([_LCUS_HEADER, channel, state, (_LCUS_HEADER + channel + state) & 0xFF])


def coil_energised(open_: bool, wiring: Wiring, fail_mode: FailMode = "fail_secure") -> bool:
    """The coil level that puts the lock in the commanded state for this contact and lock.

    A fail-secure lock needs power to unlock, a fail-safe one power to stay locked; the NC
    contact carries power while the coil is off. So energising releases exactly when both or
    neither are the "normal" case (NO with fail-secure, NC with fail-safe)."""
    releases_when_energised = (wiring == "normally_open") == (fail_mode == "fail_secure")
    return open_ if releases_when_energised else not open_


#: The journal's word where a stop leaves the gate released (``released_when_stopped``).
STOPPED_RELEASED = "this wiring releases the gate while the kiosk is stopped: fail-safe egress"


class _Relay:
    """What both relay drivers share: the wiring that maps a command to a coil level, one
    lock around the device, and the health of the last command, stamped by the clock."""

    def __init__(
        self,
        name: str,
        wiring: Wiring,
        fail_mode: FailMode,
        clock: Clock | None,
        health: Health,
    ) -> None:
        self.name = name
        self._wiring: Wiring = wiring
        self._fail_mode: FailMode = fail_mode
        self._clock = clock
        self._lock = threading.Lock()
        self._health = health
        #: What ``close`` commands: released where this wiring wants it so with no kiosk.
        self._stopped_open = released_when_stopped(wiring, fail_mode)
        self._stopped_state = "released" if self._stopped_open else "locked"
        #: ``close`` has run (the kiosk's stop): nothing opens the device again.
        self._closed = False

    def _after_close(self, open_: bool, *, coil_off_too: bool) -> bool:
        """Whether this command comes after ``close`` (the stop's lock queued behind a stuck
        command, ``call_after``); refused then (``GateFault``) unless it switches the coil
        off and ``coil_off_too``: a stopped kiosk leaves the coil off, and reopening the
        device to energise it would, for the wirings a stop releases, lock again the gate
        the stop released (and a foreground ``kiosk run`` left it so)."""
        if not self._closed:
            return False
        if coil_off_too and open_ == self._stopped_open:
            return True
        state = "open" if open_ else "locked"
        raise GateFault(
            f"{self.name}: closed (the kiosk stopped): not commanded {state}, the coil left off",
            reason="gate_fault",
        )

    def _closed_health(self) -> Health:
        return Health("absent", "closed: the kiosk stopped", self._mono())

    def _coil(self, open_: bool) -> bool:
        return coil_energised(open_, self._wiring, self._fail_mode)

    def _mono(self) -> int | None:
        return self._clock.monotonic_ns() if self._clock is not None else None

    def _report(self, state: HealthState, detail: str) -> None:
        self._health = Health(state, detail, self._mono())

    def health(self) -> Health:
        return self._health


def write_port(ser: Any, data: bytes, timeout_s: float) -> int | None:
    """``data`` written to an open pyserial port within ``timeout_s``, or ``OSError``.

    pyserial's ``write()`` with a write timeout waits with ``select()``, which refuses a
    descriptor numbered past 1024 ("filedescriptor out of range in select()"): a busy daemon
    (LAN connections, ``LimitNOFILE=8192``) that reopens a re-plugged board could then never
    command the gate again. A POSIX port (one with its descriptor ``fd``, opened non-blocking
    by pyserial) is written here, waiting with ``poll()``; any other (``loop://``, a test's
    port) through its own ``write()``."""
    fd = getattr(ser, "fd", None)
    if not isinstance(fd, int):
        written: int | None = ser.write(data)
        return written
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout_s
    view = memoryview(data)
    while view:
        left_ms = max(0, round((deadline - time.monotonic()) * 1000))
        if not poller.poll(left_ms):
            raise OSError(errno.ETIMEDOUT, f"write timeout ({len(view)} of {len(data)} bytes left)")
        try:
            view = view[os.write(fd, view) :]
        except (BlockingIOError, InterruptedError):
            if left_ms == 0:
                raise OSError(errno.ETIMEDOUT, "write timeout") from None
    return len(data)


class _PortHeld(OSError):
    """The relay's port is locked by another program: nothing was written."""


class SerialRelayGate(_Relay):
    """LCUS-1 family USB relay board over pyserial.

    The port is opened lazily and reopened after any failure, so a board that is unplugged
    and plugged back in recovers on the next command without restarting the kiosk.

    The board is write-only: nothing answers, so a failed write is the only sign from the
    board itself. For a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``) ``health``
    also looks whether the node still exists, so an unplugged board is reported while the
    gate is idle, not first when a person is waiting at it; the port it had open is closed
    then (a dead descriptor held open keeps the ttyUSB number: the board plugged back would
    come up as the next one) and opened again when the board is back.
    The board keeps its coil as last commanded (a daemon killed during a pulse leaves the
    gate open) and powers up with it off, so ``health`` commands the lock while idle
    whenever the coil's state is not known: at start and after a replug. Where the coil on
    is the lock (``released_when_stopped``), ``close`` switches it off first.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        channel: int = 1,
        wiring: Wiring = "normally_open",
        fail_mode: FailMode = "fail_secure",
        write_timeout_s: float = 0.2,
        clock: Clock | None = None,
        serial_factory: Callable[..., Any] | None = None,
        name: str = "serial_relay",
    ) -> None:
        super().__init__(name, wiring, fail_mode, clock, Health("ok", "not used yet"))
        self._port = port
        self._baudrate = baudrate
        self._channel = channel
        self._write_timeout_s = write_timeout_s
        if serial_factory is None:
            import serial

            serial_factory = serial.serial_for_url
        self._factory = serial_factory
        self._ser: Any = None
        #: What the engine last asked (whether it was obeyed): what a replugged board is put
        #: back to. A lock that failed while the board was gone stays a lock.
        self._wanted = False
        self._node_gone = False
        #: The board's coil is known to be as last commanded through the port now open.
        self._commanded = False
        #: The device node the port open is on (``_node_of``), None with no port or no path.
        self._opened_node: tuple[int, int, int] | None = None

    def _ensure_port(self) -> Any:
        if self._ser is None:
            try:
                self._ser = self._factory(
                    self._port,
                    baudrate=self._baudrate,
                    timeout=self._write_timeout_s,
                    write_timeout=self._write_timeout_s,
                    # flock, as the serial scanner: a second program on the board (a second
                    # daemon on a copied config) would cut this one's pulse short or open the
                    # gate for nobody; it is refused before it writes a byte.
                    exclusive=True,
                )
            except OSError as exc:  # serial.SerialException is one
                if exc.errno != errno.EWOULDBLOCK:
                    raise
                raise _PortHeld(
                    f"relay port {self._port} is held by another program (a second kiosk service?)"
                ) from exc
            self._opened_node = self._node_of(self._ser)
        return self._ser

    def _node_of(self, ser: Any = None) -> tuple[int, int, int] | None:
        """Which device node: that of ``ser``'s descriptor (pyserial's ``fd``), or the one
        the configured path names now (a by-id link followed); None for no path (``loop://``)
        or no node."""
        fd = getattr(ser, "fd", None)
        try:
            if isinstance(fd, int):
                st = os.fstat(fd)
            elif self._port.startswith("/"):
                st = os.stat(self._port)
            else:
                return None
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_rdev)

    def _port_is_stale(self) -> bool:
        """The port open is on another node than the path names now: the board dropped and
        came back within one health poll as the next ttyUSB (the old one still held here),
        and its by-id link points there; the descriptor open is dead."""
        opened = self._opened_node
        return self._ser is not None and opened is not None and self._node_of() != opened

    def _drop_port(self) -> None:
        self._commanded = False
        self._opened_node = None
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - the port is already broken; closing is best effort
                log.debug("serial relay: close after failure failed", exc_info=True)

    def set_open(self, open_: bool) -> None:
        with self._lock:
            # Closed under a stuck command, the board may hold its open: the coil switched
            # off still goes through, the port let go again.
            after_close = self._after_close(open_, coil_off_too=True)
            self._wanted = open_
            try:
                self._command(open_)
            finally:
                if after_close:
                    self._drop_port()

    def _command(self, open_: bool, *, drain: bool = True) -> None:
        frame = lcus_frame(self._channel, self._coil(open_))
        if self._node_gone:  # unplugged since the port was opened: that fd is dead
            self._node_gone = False
            self._drop_port()
        try:
            ser = self._ensure_port()
            written = write_port(ser, frame, self._write_timeout_s)
            if drain:
                ser.flush()
            if written is not None and written != len(frame):
                raise OSError(f"short write ({written} of {len(frame)} bytes)")
        except Exception as exc:
            # serial.SerialException, SerialTimeoutException and OSError (ENODEV when
            # the USB device vanished) all mean the same for the gate: not commanded.
            self._drop_port()
            self._report(
                "fault", str(exc) if isinstance(exc, _PortHeld) else f"relay write failed: {exc}"
            )
            raise GateFault(f"serial relay {self._port}: {exc}", reason="gate_fault") from exc
        self._commanded = True
        self._report("ok", "open" if open_ else "closed")

    def health(self) -> Health:
        """The node's presence, and the last command put back if the board's coil is not
        known: the board keeps whatever coil level it had (energised by a daemon killed
        during a pulse) or powers up with it off (replugged), and nothing else would command
        it before the next passage. At start and after a failed lock that is the lock; a
        board replugged while the gate is held open (an evacuation) is opened again: powered
        up off, a strike on NO would stand locked while the screens say go through. A board
        back within one poll (its by-id link now on the next ttyUSB) is seen by the node the
        port has open no longer being the one the path names."""
        if self._closed:
            return self._closed_health()
        if self._port.startswith("/") and not os.path.exists(self._port):
            self._let_go_of_dead_port()
            return Health("fault", f"{self._port} is gone (relay board unplugged?)", self._mono())
        if self._port_is_stale():
            log.warning(
                "serial relay %s: the board came back on another node; reopening", self._port
            )
            self._let_go_of_dead_port()
        if not self._commanded and self._lock.acquire(blocking=False):
            try:
                if not self._commanded:  # a command may have landed meanwhile
                    # No drain: tcdrain has no timeout, and health is asked often (the
                    # runner asks it in the relay's thread; write_timeout bounds the write).
                    self._command(self._wanted, drain=False)
            except GateFault:
                log.debug("serial relay: putting the last command back failed", exc_info=True)
            finally:
                self._lock.release()
        return self._health

    def _let_go_of_dead_port(self) -> None:
        """The node is gone: the descriptor is dead, and held open it keeps the board's ttyUSB
        number (usb-serial frees a minor only at its last close), so the board plugged back
        would come up under another name, never commanded again. Closed now, or by the
        command that holds the port (``_node_gone``)."""
        self._node_gone = True
        self._commanded = False
        if self._lock.acquire(blocking=False):
            try:
                self._drop_port()
            finally:
                self._lock.release()

    def close(self) -> None:
        """Close the port; a command stuck in it (tcdrain on a wedged USB adapter has no
        timeout) is not waited for past its write timeout and a margin: the port is closed
        under it, so the kiosk's shutdown does not hang until systemd kills it.
        The board keeps its last command, the lock: where the wiring wants the gate released
        with no kiosk (``released_when_stopped``) the coil is switched off first. Afterwards only
        the coil switched off is commanded (``_after_close``)."""
        self._closed = True
        if not self._lock.acquire(timeout=self._write_timeout_s + 0.5):
            log.warning(
                "serial relay %s: a command is stuck; closing under it (not %s)",
                self._port,
                self._stopped_state,
            )
            self._drop_port()
            return
        try:
            if self._stopped_open:
                self._release_at_stop()
            self._drop_port()
        finally:
            self._lock.release()

    def _release_at_stop(self) -> None:
        try:
            self._command(True, drain=False)  # the port's close waits for the bytes
        except GateFault as exc:
            log.warning("%s: not commanded released at close: %s", self.name, exc)
            return
        log.info("%s: the coil switched off at close: %s", self.name, STOPPED_RELEASED)


#: BCM GPIOs at a high level from reset until a program drives them (Pi 1-4 defaults: 0-8
#: pulled up, 2 and 3 by the board's 1.8 kOhm I2C pull-ups; 14 is TXD, driven high by the UART
#: once it is on, 15 its RXD pulled up); 9-27 are pulled down.
HIGH_AT_BOOT = frozenset({*range(9), 14, 15})


def boot_level_warning(
    pin: int,
    active_high: bool,
    wiring: Wiring = "normally_open",
    fail_mode: FailMode = "fail_secure",
) -> str | None:
    """What a guard's technician must hear when ``pin``'s level from power-on until the kiosk
    drives it energises the coil. Whatever the wiring, a kiosk that is not driving the pin
    leaves the coil off (its stop, ``--lock-gate``): the gate as the wiring leaves it with no
    kiosk (locked for a strike on NO or a maglock on NC, released for a maglock on NO or a
    strike on NC, the egress wirings). A boot level that energises the coil does the opposite
    through every boot, and for good when the kiosk never starts: it releases a strike on NO,
    and holds an egress wiring locked. None when booting leaves the coil off. The pins and the
    firmware line it advises are those whose level leaves the coil off."""
    high = pin in HIGH_AT_BOOT
    if high != active_high:
        return None  # the boot level is the module's off level
    module = "active-high" if active_high else "active-low"
    safe = "GPIO17, 27 or 22" if active_high else "GPIO5 or 6"  # low / high at boot: off
    held = "locked" if released_when_stopped(wiring, fail_mode) else "released"
    return (
        f"GPIO{pin} is {'high' if high else 'low'} from power-on until the kiosk drives it: an"
        f" {module} relay module on it is energised, and the gate {held}, through every boot (a"
        " power cut's return included) and whenever the kiosk does not start, not as the"
        f" wiring leaves it with no kiosk: move it to {safe}, or add"
        f" gpio={pin}=op,{'dl' if active_high else 'dh'} to /boot/firmware/config.txt"
        " (docs/wiring.md, GPIO relay module)"
    )


#: The Raspberry Pi kernel's pin controllers that keep a GPIO line a program lets go of at the
#: level it was driven to (``persist_gpio_outputs``): the BCM2835-2711's (Pi 1-4) and the Pi
#: 5's RP1. On by default in Raspberry Pi OS (``dtparam=strict_gpiod`` turns it off); a mainline
#: kernel has it off (6.11 on) or lacks it, and a freed line goes back to an input there.
PERSIST_MODULES = ("pinctrl_bcm2835", "pinctrl_rp1")


def freed_line_kept(sys_dir: str = "/sys") -> str | None:
    """None when this kernel keeps a GPIO output a program lets go of at its level (any of
    ``PERSIST_MODULES`` with ``persist_gpio_outputs`` on); else why not, for the journal."""
    found: list[str] = []
    for module in PERSIST_MODULES:
        path = os.path.join(sys_dir, "module", module, "parameters", "persist_gpio_outputs")
        try:
            with open(path, encoding="ascii", errors="replace") as param:
                value = param.read(8).strip()
        except OSError:
            continue
        if value in ("Y", "1"):
            return None
        found.append(f"{module}.persist_gpio_outputs={value or '?'}")
    if found:
        return ", ".join(found)
    return "no persist_gpio_outputs parameter in this kernel (not a Raspberry Pi OS kernel?)"


class GpioRelayGate(_Relay):
    """A relay module on a GPIO pin via gpiozero's ``OutputDevice``.

    ``active_high`` says which pin level energises the coil (many cheap modules are
    active-low). The gate is commanded closed at start. Closing a pin in gpiozero makes it an
    input with its pull resistor off (the lgpio factory claims pins with ``SET_PULL_NONE``),
    so then only a resistor on the module's IN (docs/wiring.md) holds the coil off; the lock
    does what it does with the relay off (locked for a strike on NO or a maglock on NC;
    released for a maglock on NO, the wiring chosen so that a dead kiosk releases it).
    ``close()`` (the daemon's stop) and ``kiosk run --lock-gate`` (after every stop) do not:
    they command the coil off (locked, or released where ``released_when_stopped``) and let go
    of the line still driven, which a Raspberry Pi kernel keeps once the process ends
    (``level_kept_after_exit``); a kernel that does not is an error line in the journal.

    Any failure of the GPIO library (gpiozero's ``BadPinFactory`` when lgpio cannot start,
    a pin in use, no ``/dev/gpiochip*``) is a gate fault, never a crash of the daemon: the
    pin is opened again at the next command and at each ``health`` while idle, so a fixed
    cause recovers without a restart and the guard sees it. A chip that goes away under an
    open pin (lgpio's factory names its chip: ``/dev/gpiochipN`` gone) or a failed write drops
    the pin, and with gpiozero's default factory the factory too: it holds the old chip open,
    and a chip that comes back is reached only through a fresh one.
    On Raspberry Pi OS gpiozero uses lgpio, which creates its notification pipes in ``$LG_WD``
    or else the working directory; ``/`` under ``ProtectSystem=strict`` is read-only, so the
    unit sets both, and the driver points ``LG_WD`` at a writable directory if it is unset.
    """

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        wiring: Wiring = "normally_open",
        fail_mode: FailMode = "fail_secure",
        clock: Clock | None = None,
        pin_factory: Any = None,
        name: str = "gpio_relay",
        dev_dir: str = "/dev",
        sys_dir: str = "/sys",
        initial_open: bool = False,
    ) -> None:
        super().__init__(name, wiring, fail_mode, clock, Health("ok", "closed"))
        #: The level the pin is opened at: locked, but released for ``release_at_stop``.
        self._initial_open = initial_open
        self._dev_dir = dev_dir
        self._sys_dir = sys_dir
        self._pin = pin
        self._active_high = active_high
        self._pin_factory = pin_factory
        self._device: Any = None
        self._faults = StateLog(log, name, clock)
        booting = boot_level_warning(pin, active_high, wiring, fail_mode)
        if booting is not None:
            log.warning("%s: %s", name, booting)
        with self._lock:
            try:
                self._ensure_device()
            except GateFault:
                pass  # reported by health(); tried again at the first command

    def _ensure_device(self) -> Any:
        if self._device is not None:
            return self._device
        lgpio_workdir()
        try:
            from gpiozero import OutputDevice

            self._device = OutputDevice(
                self._pin,
                active_high=self._active_high,
                initial_value=self._coil(self._initial_open),
                pin_factory=self._pin_factory or self._header_factory(),
            )
        except Exception as exc:  # noqa: BLE001 - BadPinFactory, GPIOPinInUse, OSError, ...
            detail = f"GPIO{self._pin} unavailable: {describe(exc)}{lgpio_hint(exc, self._pin)}"
            self._fault(detail)
            raise GateFault(f"gpio relay: {detail}", reason="gate_fault") from None
        self._faults.recovered(f"GPIO{self._pin} ready")
        self._report("ok", "closed")
        return self._device

    def _header_factory(self) -> Any:
        """gpiozero's lgpio factory on the chip the device tree names for the header's GPIOs,
        or None (gpiozero's own choice: no device tree, no lgpio, GPIOZERO_PIN_FACTORY set).

        gpiozero picks the chip by board (2.0.1: gpiochip4 on a Pi 5, 2.0.1.post1 and later:
        4 if it exists, else 0), but the kernel renumbers: from 6.6.45 the Pi 5's RP1 is
        gpiochip0, with a gpiochip4 link only where Raspberry Pi OS adds one. A factory on
        the wrong chip fails ('can not open gpiochip') and the gate never works."""
        if os.environ.get("GPIOZERO_PIN_FACTORY"):
            return None
        from gpiozero import Device

        if Device.pin_factory is not None:
            return Device.pin_factory
        chip = header_gpiochip(self._sys_dir)
        if chip is None:
            return None
        try:
            from gpiozero.pins.lgpio import LGPIOFactory
        except ImportError:
            return None
        Device.pin_factory = LGPIOFactory(chip=chip)
        log.info("%s: GPIO%d on /dev/gpiochip%d (device tree)", self.name, self._pin, chip)
        return Device.pin_factory

    @property
    def energised(self) -> bool:
        return self._device is not None and bool(self._device.value)

    def set_open(self, open_: bool) -> None:
        with self._lock:
            # ``close`` waited for any command under way and left the coil off: that stands.
            self._after_close(open_, coil_off_too=False)
            device = self._ensure_device()
            try:
                device.value = self._coil(open_)
            except Exception as exc:  # noqa: BLE001 - lgpio.error, OSError, ...: not commanded
                self._drop_device()
                self._fault(f"GPIO{self._pin} write failed: {describe(exc)}")
                raise GateFault(f"gpio relay: {exc}", reason="gate_fault") from exc
            self._report("ok", "open" if open_ else "closed")

    def _fault(self, detail: str) -> None:
        self._faults.fault(detail)
        self._report("fault", detail)

    def _chip_gone(self) -> str | None:
        """The open pin's chip node if it has gone away (lgpio's factory names its chip)."""
        chip = getattr(getattr(self._device, "pin_factory", None), "chip", None)
        if not isinstance(chip, int):
            return None
        node = os.path.join(self._dev_dir, f"gpiochip{chip}")
        return None if os.path.exists(node) else node

    def _drop_device(self) -> None:
        """Forget a pin whose chip failed; it is opened afresh next time (see the class)."""
        device, self._device = self._device, None
        if device is not None:
            self._close_failed(device)

    def _close_failed(self, device: Any) -> None:
        """Close ``device``, whose chip failed, and with gpiozero's default factory the factory
        too; best effort, each error only at debug level (the caller has said the first)."""
        factory = getattr(device, "pin_factory", None)
        try:
            device.close()
        except Exception:  # noqa: BLE001 - the chip is gone; closing is best effort
            log.debug("gpio relay: close after failure failed", exc_info=True)
        if self._pin_factory is not None or factory is None:
            return
        from gpiozero import Device

        if Device.pin_factory is factory:
            Device.pin_factory = None
            try:
                factory.close()
            except Exception:  # noqa: BLE001 - as above
                log.debug("gpio relay: closing the pin factory failed", exc_info=True)

    def health(self) -> Health:
        """While idle: a chip gone is a fault at once, a pin not open is tried again (a command
        in progress holds the lock and sets the health itself)."""
        if self._closed:
            return self._closed_health()
        if not self._lock.acquire(blocking=False):
            return self._health
        try:
            gone = self._chip_gone()
            if gone is not None:
                self._drop_device()
                self._fault(f"GPIO{self._pin} unavailable: {gone} is gone")
            elif self._device is None:
                self._ensure_device()
        except GateFault:
            pass  # _ensure_device has set the health and logged a changed cause
        finally:
            self._lock.release()
        self._faults.settle()
        return self._health

    def close(self) -> None:
        """The daemon's stop (``Devices.close``): the relay commanded as a stopped kiosk leaves
        it, the coil off (locked, or released where the wiring wants it so with no kiosk:
        ``released_when_stopped``), and its line let go of still driven there where the kernel
        keeps a freed line at its level (``level_kept_after_exit``): neither this close nor
        gpiozero's exit hook resets it, the kernel frees it with the process. Elsewhere the
        pin is closed (an input with no pull) and the journal says, as an error, that only the
        module's resistor holds it. Nothing commands it afterwards (``_after_close``)."""
        with self._lock:
            self._closed = True
            device, self._device = self._device, None
            if device is None:
                return
            state = self._stopped_state
            try:
                device.value = self._coil(self._stopped_open)
            except Exception as exc:  # noqa: BLE001 - the chip gone: nothing to hold
                log.warning("%s: not commanded %s at close: %s", self.name, state, describe(exc))
                self._close_failed(device)
                return
            if self._stopped_open:
                log.info("%s: GPIO%d at close: %s", self.name, self._pin, STOPPED_RELEASED)
            why_not = self.level_kept_after_exit()
            if why_not is None:
                _let_go_driven(device)
                log.info(
                    "%s: GPIO%d left driven at the %s level (the kernel keeps a freed"
                    " line's level: persist_gpio_outputs)",
                    self.name,
                    self._pin,
                    state,
                )
                return
            device.close()
            log.error(
                "%s: GPIO%d cannot hold the %s level once closed (%s): the line goes back"
                " to an input with no pull, and only the relay module's own resistor keeps the"
                " coil off (the gate %s) until the kiosk drives it again (docs/install.md)",
                self.name,
                self._pin,
                state,
                why_not,
                state,
            )

    def level_kept_after_exit(self) -> str | None:
        """Whether the line keeps the level it is driven to once this process ends without
        closing it (``kiosk run --lock-gate`` ends so): None when this kernel keeps a freed
        output at its level (``freed_line_kept``), else why not. Closing it never does:
        gpiozero's close, its exit hook's included, makes the pin an input with no pull."""
        return freed_line_kept(self._sys_dir)


def _let_go_driven(device: Any) -> None:
    """Forget ``device``'s pin without resetting it: its reservation released, the pin out of
    its factory's table (whose close, at the exit hook, makes every pin in it an input) and
    off the device (whose close would). lgpio's claim on the line ends with its chip handle,
    at the factory's close or the process's end, the line still at its level."""
    pin = device._pin  # noqa: SLF001 - gpiozero offers no close that keeps the level
    factory = device.pin_factory
    factory.release_pins(device, pin.info.name)
    factory.pins.pop(pin.info, None)
    device._pin = None  # noqa: SLF001 - as above


def lgpio_hint(exc: BaseException, pin: int) -> str:
    """What a guard can do about lgpio's refusals, which name neither the pin nor the cause."""
    text = str(exc).lower()
    if "gpio busy" in text:
        return (
            f"; another program or a dtoverlay holds GPIO{pin} (1-Wire, a HAT, a second kiosk"
            " service?): gpioinfo names the owner"
        )
    if "can not open gpiochip" in text:
        return "; no /dev/gpiochip for the header, or the kiosk user is not in the group gpio"
    return ""


#: Device-tree drivers of the GPIO chip that carries a Raspberry Pi's 40-pin header: the
#: Pi 5's RP1, the BCM2711 (Pi 4, 400, CM4) and the BCM2835 family (Pi 1-3, Zero).
HEADER_GPIO_COMPATIBLE = frozenset(
    {
        "raspberrypi,rp1-gpio",
        "brcm,bcm2711-gpio",
        "brcm,bcm2835-gpio",
        "raspberrypi,bcm2711-gpio",
        "raspberrypi,bcm2835-gpio",
    }
)


def header_gpiochip(sysfs: str = "/sys") -> int | None:
    """The number N of the ``/dev/gpiochipN`` that carries the header's GPIOs, from each
    chip's ``of_node/compatible``; None where no chip says so (no device tree, not a Pi)."""
    base = os.path.join(sysfs, "bus", "gpio", "devices")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return None
    for name in names:
        number = name.removeprefix("gpiochip")
        if number == name or not number.isdigit():
            continue
        try:
            with open(os.path.join(base, name, "of_node", "compatible"), "rb") as f:
                compatible = f.read(512).decode("ascii", "replace").split("\0")
        except OSError:
            continue
        if HEADER_GPIO_COMPATIBLE.intersection(compatible):
            return int(number)
    return None


def lgpio_workdir() -> str:
    """Point lgpio's notification pipes (``$LG_WD``) at a writable directory if unset.

    lgpio otherwise uses the working directory, which for a service may be a read-only ``/``;
    gpiozero then falls through every pin factory and raises ``BadPinFactory``."""
    current = os.environ.get("LG_WD")
    if current:
        return current
    candidate = os.environ.get("KIOSK_DATA", "")
    if not (candidate and os.path.isdir(candidate)):
        candidate = tempfile.gettempdir()
    os.environ["LG_WD"] = candidate
    return candidate


class NoGate:
    """No relay: the kiosk only advises (a guard opens the gate). Commands are logged at
    debug level: two lines a passage at info filled the journal on the SD card with what the
    event log holds."""

    def __init__(self, name: str = "none") -> None:
        self.name = name
        self.is_open = False

    def set_open(self, open_: bool) -> None:
        self.is_open = open_
        log.debug("gate (none): %s", "open" if open_ else "closed")

    def health(self) -> Health:
        return Health("ok", "no relay configured (advisory only)")

    def close(self) -> None:
        return None


#: The fake relay's latest commands kept (``FakeGate.commands``): ``kiosk demo`` loops its
#: visitors for as long as it runs, two commands a pass.
COMMANDS_KEPT = 1000


@dataclass(frozen=True)
class GateCommand:
    """One command the fake gate received: when, what the engine asked, the coil level."""

    mono_ns: int
    open_: bool
    energised: bool


class FakeGate:
    """A relay that records its commands with their monotonic time (the latest
    ``COMMANDS_KEPT`` at least, never more than twice that) and can be told to fail.

    ``unplug()`` makes every command raise ``GateFault`` (as a USB board pulled out does)
    until ``replug()``; ``stall()`` makes commands block until ``release()``, the way a
    wedged USB write does, so the runner's deadlines can be tested. Failed commands are
    recorded in ``attempts`` but not in ``commands``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        wiring: Wiring = "normally_open",
        fail_mode: FailMode = "fail_secure",
        name: str = "fake_gate",
    ) -> None:
        self.name = name
        self._clock = clock
        self._wiring: Wiring = wiring
        self._fail_mode: FailMode = fail_mode
        self._lock = threading.Lock()
        self.commands: list[GateCommand] = []
        self.attempts = 0
        self.is_open = False
        self.plugged = True
        self._go = threading.Event()
        self._go.set()
        #: Set when a command is held by ``stall()`` (tests wait on it instead of sleeping).
        self.stalled_call = threading.Event()
        self.on_command: Callable[[GateCommand], object] | None = None

    def unplug(self) -> None:
        self.plugged = False

    def replug(self) -> None:
        self.plugged = True

    def stall(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def set_open(self, open_: bool) -> None:
        if not self._go.is_set():
            self.stalled_call.set()
        self._go.wait()
        with self._lock:
            self.attempts += 1
            if not self.plugged:
                raise GateFault("fake gate unplugged", reason="gate_fault")
            energised = coil_energised(open_, self._wiring, self._fail_mode)
            command = GateCommand(self._clock.monotonic_ns(), open_, energised)
            self.commands.append(command)
            if len(self.commands) > 2 * COMMANDS_KEPT:
                del self.commands[:-COMMANDS_KEPT]
            self.is_open = open_
        if self.on_command is not None:
            self.on_command(command)

    def health(self) -> Health:
        if not self.plugged:
            return Health("fault", "unplugged")
        return Health("ok", "open" if self.is_open else "closed")

    def close(self) -> None:
        return None


def lock_at_start(gate: Gate, deadline_s: float) -> bool:
    """Command ``gate`` locked, the first thing ``kiosk run`` does, under ``deadline_s``; the
    journal says what came of it. Whether it obeyed.

    A daemon killed during a pass's pulse (SIGKILL, the OOM killer, the watchdog's SIGABRT)
    left the relay energised: an LCUS board keeps its coil as last commanded, and a Raspberry
    Pi kernel keeps a released GPIO line at its last level (``persist_gpio_outputs``, Raspberry
    Pi OS's default). Until the engine's own start commanded it, after the event log had
    opened, the gate stayed released, and for good when the start stopped short (another
    kiosk's log) or stood by on a failing card. A relay that does not obey is an error line
    naming why; the start goes on, and the engine keeps commanding it locked."""
    failed = _command_within(gate, False, deadline_s)
    if failed is not None:
        log.error(
            "gate: %s could not be commanded locked at start (%s): its state is unknown"
            " (it may be held open) until it answers; the kiosk keeps commanding it locked",
            gate.name,
            failed,
        )
        return False
    log.info("gate: %s commanded locked at start, before anything else", gate.name)
    return True


def release_at_stop(gate: Gate, deadline_s: float) -> bool:
    """``kiosk run --lock-gate`` where the wiring wants the gate released with no kiosk
    (``released_when_stopped``): ``gate`` commanded released (its coil off) under
    ``deadline_s``, never locked first, the journal saying so (of a relay: with none, or
    the fake, there is no coil to speak of). Whether it obeyed."""
    failed = _command_within(gate, True, deadline_s)
    if failed is not None:
        log.error(
            "gate: %s could not be commanded released (%s): its state is unknown (%s)",
            gate.name,
            failed,
            STOPPED_RELEASED,
        )
        return False
    if isinstance(gate, _Relay):
        log.warning("gate: %s commanded released, the coil off: %s", gate.name, STOPPED_RELEASED)
    return True


def _command_within(gate: Gate, open_: bool, deadline_s: float) -> Exception | None:
    """``gate.set_open(open_)`` in a worker under ``deadline_s``: None, or what failed."""
    worker = DeviceWorker(f"gate {gate.name}", deadline_s, GateFault)
    try:
        worker.call_sync(gate.set_open, open_)
    except Exception as exc:  # noqa: BLE001 - GateFault, a deadline, a driver bug: not obeyed
        return exc
    finally:
        worker.stop()
    return None


def build_gate(cfg: GateSection, clock: Clock, *, initial_open: bool = False) -> Gate:
    """The gate driver named by ``cfg.driver.type``; a serial board opens at its first command,
    a GPIO pin at once, at the locked level (released with ``initial_open``: ``kiosk run
    --lock-gate`` where ``released_when_stopped``, which never locks it)."""
    driver = cfg.driver
    if isinstance(driver, SerialRelayConfig):
        return SerialRelayGate(
            driver.port,
            baudrate=driver.baudrate,
            channel=driver.channel,
            wiring=cfg.wiring,
            fail_mode=cfg.fail_mode,
            write_timeout_s=driver.write_timeout_ms / 1000,
            clock=clock,
        )
    if isinstance(driver, GpioRelayConfig):
        return GpioRelayGate(
            driver.pin,
            active_high=driver.active_high,
            wiring=cfg.wiring,
            fail_mode=cfg.fail_mode,
            clock=clock,
            initial_open=initial_open,
        )
    if isinstance(driver, NoGateConfig):
        return NoGate()
    if isinstance(driver, FakeGateConfig):
        return FakeGate(clock, wiring=cfg.wiring, fail_mode=cfg.fail_mode)
    raise ValueError(f"unknown gate driver {driver!r}")  # pragma: no cover - config forbids
