"""Melexis MLX90614 infrared thermometer over SMBus/I2C, read the way a medical device should.

Part: MLX90614 (single-zone, TO-39), datasheet "MLX90614 family, Single and Dual Zone Infra Red
Thermometer in TO-39" (Melexis 3901090614). Bus speed: the chip is an SMBus device; run the bus
at 100 kHz (on a Pi, ``dtparam=i2c_arm_baudrate=100000`` in ``/boot/firmware/config.txt``);
400 kHz is reported not to work.

Every temperature is read with SMBus "Read Word" (write the command, *repeated start*, read
three bytes: LSB, MSB, PEC) and only accepted when

* the PEC (CRC-8, polynomial 0x07, over SA_W, command, SA_R, LSB, MSB) matches (``pec="strict"``),
* the error flag (bit 15 of the word) is clear, and
* the value is inside the chip's calibrated range (Ta -40..125 degC, To -70..380 degC).

A failed check is retried a bounded number of times and then raised as ``SensorFault``: a
garbled word never becomes a temperature. ``pec="warn"``/``"off"`` exist because some setups
(clone chips, bridges that drop the PEC byte) are reported not to send a valid PEC; in those
modes each word must be confirmed by a second read that agrees within 0.1 degC, so a single
corrupted transfer still cannot pass. See ``docs/thermometer.md``.

The bus is injected as a ``Transport`` (``Smbus2Transport`` for Raspberry Pi OS,
``BlinkaTransport`` for the Adafruit ``busio`` stack; the Adafruit MLX90614 class itself reads
two bytes with no PEC and no error flag, so it is not used). No I/O happens at import or in the
constructor: the bus is opened on first read, and reopened with capped back-off after repeated
``OSError`` (errno 121 NACK / 110 timeout).
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from drivers.faultlog import StateLog, describe, open_error
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.devices import Health, SensorFault, ThermoReading
from kiosk.logs import OncePerInterval
from kiosk.thermometry import DIE_DRIFT_MAX_C_PER_MIN

if TYPE_CHECKING:
    from smbus2 import i2c_msg

log = logging.getLogger(__name__)

PecMode = Literal["strict", "warn", "off"]

DEFAULT_ADDRESS = 0x5A
#: With ``pec = "warn"`` (a chip that sends no valid PEC: every word mismatches, ~30 a
#: second) the mismatches are logged at most this often, with their count.
PEC_LOG_EVERY_S = 3600.0
#: RAM (read-only) commands: opcode 000x xxxx.
RAM_TA = 0x06
RAM_TOBJ1 = 0x07
#: EEPROM commands: opcode 001x xxxx; 0x24 is the emissivity cell, 0x25 config register 1.
EEPROM_EMISSIVITY = 0x24
EEPROM_CONFIG1 = 0x25
#: EEPROM cell 0x0F (command 0x2F): a second emissivity-dependent coefficient, used by the
#: gradient-compensated xCx parts (BCC, BCF, BCI, DCI, ...); 0x0000 on the others.
EEPROM_CELL_0F = 0x2F

_ERROR_FLAG = 0x8000
_KELVIN_LSB = 0.02  # degC per LSB of a temperature word
_ABS_ZERO_C = -273.15
TA_RANGE_C = (-40.0, 125.0)
TO_RANGE_C = (-70.0, 380.0)
#: Without PEC, two consecutive reads of a register must agree this closely (5 LSB = 0.1 degC).
_CONFIRM_LSB = 5
#: The datasheet asks for >= 5 ms after an EEPROM erase or write; we wait 20 ms to be safe.
EEPROM_WAIT_S = 0.020
#: Waits before reopening a bus closed after errors: 0.5 s doubling; the config sets the cap
#: (``backoff_max_s``, 30 s by default).
REOPEN_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)

#: A die warming or cooling faster than this is not in equilibrium: the thermopile's ambient
#: compensation lags, so object readings are off (after power-on, or carried in from the cold).
AMBIENT_DRIFT_MAX_C_PER_MIN = DIE_DRIFT_MAX_C_PER_MIN  # the measurement waits beyond it
_DRIFT_WINDOW_NS = 60_000_000_000
#: A bus is "noisy" when at least this share of the latest ``_NOISE_WINDOW`` word reads failed
#: their check (PEC, two reads disagreeing, out of range). Each failure is retried, so readings
#: still arrive, but every corruption is one more chance for a garbled word to match its PEC
#: by luck (1 in 256): the operator is told to fix the wiring before that happens.
NOISY_BUS_SHARE = 0.02
_NOISE_WINDOW = 500
_NOISE_MIN_WORDS = 100

#: What an error opening ``/dev/i2c-N`` means at the gate, and its fix (``faultlog.open_error``).
I2C_OPEN_HINTS = {
    errno.ENOENT: (
        "no such device (I2C off or i2c-dev not loaded: sudo ./scripts/install, and reboot if"
        " it says so)"
    ),
    errno.EACCES: "permission denied (the kiosk user needs the group i2c: sudo ./scripts/install)",
    errno.EPERM: (
        "blocked by the service's device policy (DeviceAllow=char-i2c in kiosk.service, resolved"
        " before i2c-dev was loaded: sudo systemctl restart kiosk)"
    ),
}
#: Bus errors that mean nothing answered at the chip's address (a NACK).
NO_ANSWER = frozenset({errno.EREMOTEIO, errno.ENXIO})

#: 3 dB bandwidth (Hz) of the object-temperature filter for each IIR setting (config register 1,
#: bits 2:0) at the factory FIR length 1024, as the Linux iio mlx90614 driver tabulates it.
IIR_BANDWIDTH_HZ = (0.77, 0.31, 0.20, 0.15, 7.23, 1.53, 1.10, 0.86)
FACTORY_CONFIG1 = 0x9FB4


def _crc8_bitwise(byte: int) -> int:
    """One byte through the CRC-8 register bit by bit (polynomial 0x07, no reflection)."""
    crc = byte
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


#: The register after each byte value, bit by bit once: every read checks its PEC with it.
_CRC8_TABLE = bytes(_crc8_bitwise(b) for b in range(256))


def crc8(data: bytes) -> int:
    """SMBus PEC: CRC-8, polynomial x^8+x^2+x+1 (0x07), initial value 0, no reflection."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def read_pec(address: int, command: int, lsb: int, msb: int) -> int:
    """PEC of a Read Word: covers SA_W, command, SA_R, LSB, MSB (the repeated start is included)."""
    return crc8(bytes([address << 1, command, (address << 1) | 1, lsb, msb]))


def write_pec(address: int, command: int, lsb: int, msb: int) -> int:
    """PEC of a Write Word: covers SA_W, command, LSB, MSB."""
    return crc8(bytes([address << 1, command, lsb, msb]))


def raw_to_c(raw: int) -> float:
    # Rounded to the chip's 0.02 degC resolution so float noise never shows in logs.
    return round(raw * _KELVIN_LSB + _ABS_ZERO_C, 2)


def c_to_raw(celsius: float) -> int:
    return round((celsius - _ABS_ZERO_C) / _KELVIN_LSB)


def sensor_settle_s(config1: int = FACTORY_CONFIG1, tolerance_fraction: float = 0.01) -> float:
    """Time for the chip's own object filter to settle to within ``tolerance_fraction`` of a step.

    Modelled as a first-order low-pass with the 3 dB bandwidth of the configured IIR setting:
    ``t = ln(1/tolerance) / (2 pi f3dB)``. This is the floor no measurement can beat.
    """
    bandwidth = IIR_BANDWIDTH_HZ[config1 & 0x7]
    return math.log(1.0 / tolerance_fraction) / (2 * math.pi * bandwidth)


class EmissivityRefused(SensorFault):
    """An emissivity write the driver will not do on this part (nothing was written)."""


class WordError(ValueError):
    """A 3-byte read that must not be trusted; the message says which check failed."""


def check_word(
    address: int, command: int, data: bytes, pec: PecMode = "strict"
) -> tuple[int, bool]:
    """Check one Read Word response; return ``(word, pec_ok)`` or raise ``WordError``.

    Only the framing and PEC are checked here; the error flag and range depend on the register.
    """
    if len(data) != 3:
        raise WordError(f"expected 3 bytes, got {len(data)}")
    lsb, msb, got = data[0], data[1], data[2]
    pec_ok = got == read_pec(address, command, lsb, msb)
    if not pec_ok and pec == "strict":
        raise WordError("PEC mismatch")
    return lsb | (msb << 8), pec_ok


def check_temperature(word: int, command: int) -> float:
    """Error flag and calibrated range of a temperature word; returns degC or raises."""
    if word & _ERROR_FLAG:
        raise WordError("error flag set")
    celsius = raw_to_c(word)
    low, high = TA_RANGE_C if command == RAM_TA else TO_RANGE_C
    if not low <= celsius <= high:
        raise WordError(f"{celsius:.2f} degC outside {low:g}..{high:g}")
    return celsius


def bus_error(exc: OSError, address: int, bus: int | None) -> str:
    """A bus error by its kernel name, with what to check when nothing answered at
    ``address`` on ``/dev/i2c-<bus>`` (``bus`` None: not known)."""
    problem = f"I2C error {errno.errorcode.get(exc.errno or 0, exc.errno)}"
    if exc.errno not in NO_ANSWER:
        return problem
    look = "sudo i2cdetect -l" if bus is None else f"sudo i2cdetect -y {bus}"
    return f"{problem}: no answer at 0x{address:02X} (check the wiring and the address: {look})"


# --------------------------------------------------------------------------------------------
# Transports


class Transport(Protocol):
    """The two bus operations the chip needs. Raise ``OSError`` on a bus error."""

    def write_then_read(self, address: int, out: bytes, count: int) -> bytes:
        """Write ``out``, repeated start, read ``count`` bytes (no stop in between)."""

    def write(self, address: int, data: bytes) -> None: ...

    def close(self) -> None: ...


class RdwrBus(Protocol):
    """What ``Smbus2Transport`` needs of a bus: ``smbus2.SMBus``, or the emulator's
    ``EmulatedSMBus``."""

    def i2c_rdwr(self, *msgs: i2c_msg) -> None: ...

    def close(self) -> None: ...


#: The chip's SMBus limit; a faster bus corrupts its words (docs/wiring.md).
MAX_BUS_HZ = 100_000


def i2c_bus_clock_hz(bus: int, sysfs: str = "/sys") -> int | None:
    """The clock of ``/dev/i2c-<bus>`` from its device-tree node (``clock-frequency``, what
    ``dtparam=i2c_arm_baudrate`` sets on a Pi), or None where there is none to read."""
    path = f"{sysfs}/bus/i2c/devices/i2c-{bus}/of_node/clock-frequency"
    try:
        with open(path, "rb") as f:
            cell = f.read(8)
    except OSError:
        return None
    return int.from_bytes(cell, "big") if len(cell) == 4 else None


class Smbus2Transport:
    """smbus2 on ``/dev/i2c-N``; ``i2c_rdwr`` sends both messages in one combined transfer.

    ``bus`` is a bus number (opened here, its clock read from the device tree) or an object
    with ``i2c_rdwr``/``close`` (the emulator, or a recording fake in tests). ``clock_hz``:
    the bus clock if known; ``bus_number``: N of ``/dev/i2c-N``, None for an object.
    """

    def __init__(self, bus: int | RdwrBus, *, clock_hz: int | None = None) -> None:
        self.bus_number = bus if isinstance(bus, int) else None
        if isinstance(bus, int):
            from smbus2 import SMBus

            clock_hz = clock_hz or i2c_bus_clock_hz(bus)
            bus = SMBus(bus)
        self._bus: RdwrBus = bus
        self.clock_hz = clock_hz

    def write_then_read(self, address: int, out: bytes, count: int) -> bytes:
        from smbus2 import i2c_msg

        write = i2c_msg.write(address, out)
        read = i2c_msg.read(address, count)
        self._bus.i2c_rdwr(write, read)
        return bytes(read)

    def write(self, address: int, data: bytes) -> None:
        from smbus2 import i2c_msg

        self._bus.i2c_rdwr(i2c_msg.write(address, data))

    def close(self) -> None:
        self._bus.close()


class BlinkaTransport:
    """Adafruit Blinka ``busio.I2C``; ``writeto_then_readfrom`` without a stop (repeated start).

    Blinka is imported lazily: it raises on a machine it does not recognise as a board.
    """

    _LOCK_ATTEMPTS = 1000

    def __init__(self, i2c: object | None = None, frequency_hz: int = 100_000) -> None:
        if i2c is None:
            try:
                import board
                import busio

                i2c = busio.I2C(board.SCL, board.SDA, frequency=frequency_hz)
            except (ImportError, NotImplementedError, RuntimeError, ValueError) as exc:
                raise OSError(errno.ENODEV, f"Blinka I2C unavailable: {exc}") from None
        self._i2c: Any = i2c  # busio.I2C

    def _lock(self) -> None:
        for _ in range(self._LOCK_ATTEMPTS):
            if self._i2c.try_lock():
                return
        raise OSError(errno.EBUSY, "I2C bus lock not obtained")

    def write_then_read(self, address: int, out: bytes, count: int) -> bytes:
        buf = bytearray(count)
        self._lock()
        try:
            self._i2c.writeto_then_readfrom(address, bytes(out), buf)
        finally:
            self._i2c.unlock()
        return bytes(buf)

    def write(self, address: int, data: bytes) -> None:
        self._lock()
        try:
            self._i2c.writeto(address, bytes(data))
        finally:
            self._i2c.unlock()

    def close(self) -> None:
        deinit = getattr(self._i2c, "deinit", None)
        if deinit is not None:
            deinit()


# --------------------------------------------------------------------------------------------
# The driver


@dataclass
class _Counters:
    reads: int = 0
    faults: int = 0
    check_failures: int = 0
    pec_mismatches: int = 0
    os_errors: int = 0
    reopens: int = 0
    refused_while_hung: int = 0


class _BusClosed(SensorFault):
    """A read refused while the bus waits to be reopened: its text is the fault's cause with
    the wait, never a fault of its own."""


class Mlx90614:
    """Checked MLX90614 reads; implements ``kiosk.devices.Thermometer``.

    ``read()`` is blocking and is called by the engine's runner in a worker thread with a
    deadline. If a read hangs (a slave holding SDA low), the runner abandons it; a later
    ``read()`` then fails fast with ``SensorFault`` instead of queueing another thread behind
    the stuck one, and ``health()`` reports the hang.
    """

    def __init__(
        self,
        open_bus: Callable[[], Transport],
        clock: Clock,
        *,
        address: int = DEFAULT_ADDRESS,
        pec: PecMode = "strict",
        retries: int = 3,
        reopen_after_errors: int = 3,
        backoff: Backoff = REOPEN_BACKOFF,
        stuck_reads: int = 40,
        hang_after_ms: int = 200,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "mlx90614",
    ) -> None:
        if pec not in ("strict", "warn", "off"):
            raise ValueError(f"pec must be strict, warn or off, not {pec!r}")
        self.name = name
        self.address = address
        self.pec = pec
        self._open_bus = open_bus
        self._clock = clock
        self._retries = retries
        self._reopen_after = max(1, reopen_after_errors)
        self._backoff = backoff
        self._stuck_reads = stuck_reads
        self._hang_after_ns = hang_after_ms * 1_000_000
        self._sleep = sleep
        self._bus: Transport | None = None
        self._read_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._inflight_since: int | None = None
        self._consecutive_os_errors = 0
        self._failed_reopens = 0
        self._reopen_at_ns: int | None = None
        self._last_raw: tuple[int, int] | None = None
        self._same_raw = 0
        self._last_fault: str | None = None
        self._last_fault_ns: int | None = None
        self._closed = False
        self._ambient_history: deque[tuple[int, float]] = deque()
        #: The latest word reads' checks, True for a failure (see ``NOISY_BUS_SHARE``).
        self._word_checks: deque[bool] = deque(maxlen=_NOISE_WINDOW)
        #: Set while the bus clock is above the chip's limit (``_check_bus_clock``).
        self._too_fast: str | None = None
        #: N of the ``/dev/i2c-N`` last opened (the transport's ``bus_number``), for the hints.
        self._bus_number: int | None = None
        self.counters = _Counters()
        self._pec_lines = OncePerInterval(PEC_LOG_EVERY_S)
        #: The bus's faults in the journal: once per cause, the return once (not per reopen).
        self.faults = StateLog(log, name, clock)

    # -- Thermometer protocol ------------------------------------------------------------

    def read(self) -> ThermoReading:
        """One checked reading of ambient (Ta) and object (Tobj1); raises ``SensorFault``."""
        if self._closed:
            raise SensorFault("thermometer closed")
        if not self._read_lock.acquire(blocking=False):
            with self._state_lock:
                self.counters.refused_while_hung += 1
            raise SensorFault("previous read has not returned (I2C bus hung)")
        self._inflight_since = self._clock.monotonic_ns()
        try:
            reading = self._read_pair()
        except SensorFault as fault:
            # A read refused during the back-off keeps the cause that closed the bus.
            self._note_fault(None if isinstance(fault, _BusClosed) else str(fault))
            raise
        except Exception as exc:
            # A bus library raising something unexpected must still be a fault, not a crash
            # of the sampling loop. It fails so at every read: one line per cause, the
            # traceback at debug for the developer.
            cause = f"unexpected driver error: {type(exc).__name__}"
            self.faults.fault(cause, f"unexpected driver error: {describe(exc)}", exc)
            self._note_fault(cause)
            raise SensorFault(f"unexpected driver error: {type(exc).__name__}: {exc}") from exc
        finally:
            self._inflight_since = None
            if self._closed:  # closed while this read hung: release the bus now
                self._drop_bus()
            self._read_lock.release()
        with self._state_lock:
            self.counters.reads += 1
            self._last_fault = None
            self._last_fault_ns = None
            self._track_ambient(reading)
            reopens = self.counters.reopens
        self.faults.recovered(f"reading again ({reopens} bus reopen(s) since start)")
        return reading

    def health(self) -> Health:
        self.faults.settle()
        now = self._clock.monotonic_ns()
        with self._state_lock:
            since = self._inflight_since
            if since is not None and now - since >= self._hang_after_ns:
                return Health("fault", f"read hung for {(now - since) // 1_000_000} ms", since)
            if self._bus is None and self._reopen_at_ns is not None:
                wait_s = max(0.0, (self._reopen_at_ns - now) / 1e9)
                return Health(
                    "fault",
                    f"I2C bus closed after errors; reopen attempt {self._failed_reopens + 1}"
                    f" in {wait_s:.1f} s ({self._last_fault})",
                    self._last_fault_ns,
                )
            if self._last_fault is not None:
                return Health("fault", self._last_fault, self._last_fault_ns)
            drift = self._ambient_drift_c_per_min(now)
            if drift is not None and abs(drift) > AMBIENT_DRIFT_MAX_C_PER_MIN:
                return Health(
                    "degraded",
                    f"sensor die drifting {drift:+.1f} degC/min (warm-up or thermal shock):"
                    " readings wait for it to settle",
                )
            if self._too_fast is not None:
                return Health("degraded", self._too_fast)
            noisy = self._noisy_bus()
            if noisy is not None:
                return Health("degraded", noisy)
            if self.pec == "warn" and self.counters.pec_mismatches:
                return Health(
                    "degraded", f"{self.counters.pec_mismatches} PEC mismatches (pec=warn)"
                )
            if self.pec == "off":
                return Health("degraded", "PEC checking off: reads confirmed by re-reading")
            if self.counters.reads == 0:
                return Health("ok", "no read yet")
            return Health("ok", f"{self.counters.reads} reads")

    def _noisy_bus(self) -> str | None:
        checks = self._word_checks
        failed = sum(checks)
        if len(checks) < _NOISE_MIN_WORDS or failed < NOISY_BUS_SHARE * len(checks):
            return None
        return (
            f"noisy I2C bus: {failed} of the last {len(checks)} words failed their check"
            " (PEC, range or re-read); reads are retried, but check the wiring, pull-ups and"
            " cable length (docs/thermometer.md)"
        )

    def _track_ambient(self, reading: ThermoReading) -> None:
        history = self._ambient_history
        if history and reading.mono_ns - history[-1][0] < 1_000_000_000:
            return  # one point a second is plenty for a drift over a minute
        history.append((reading.mono_ns, reading.ambient_c))
        while history and reading.mono_ns - history[0][0] > _DRIFT_WINDOW_NS:
            history.popleft()

    def _ambient_drift_c_per_min(self, now: int) -> float | None:
        history = self._ambient_history
        if len(history) < 2 or now - history[-1][0] > _DRIFT_WINDOW_NS:
            return None
        (t0, a0), (t1, a1) = history[0], history[-1]
        if t1 - t0 < 10_000_000_000:
            return None
        return (a1 - a0) / ((t1 - t0) / 60e9)

    def close(self) -> None:
        self._closed = True
        if self._read_lock.acquire(blocking=False):
            try:
                self._drop_bus()
            finally:
                self._read_lock.release()

    # -- Emissivity (EEPROM 0x24) ---------------------------------------------------------

    def read_emissivity(self) -> float:
        """Emissivity as the chip uses it: EEPROM word / 65535."""
        with self._exclusive():
            return self._read_eeprom(EEPROM_EMISSIVITY) / 65535

    def write_emissivity(self, emissivity: float) -> float:
        """Erase, write and read back EEPROM 0x24; returns the value now stored.

        EEPROM cells must be erased (written 0x0000) before a new value is written, each write
        needs its own PEC, and the chip needs >= 5 ms per cell write: we wait 20 ms. Melexis
        advise a power cycle before the new emissivity is relied on.
        """
        if not 0.1 <= emissivity <= 1.0:
            raise ValueError("emissivity must be within 0.1..1.0")
        raw = round(emissivity * 65535)
        with self._exclusive():
            self._refuse_gradient_compensated()
            self._write_eeprom(EEPROM_EMISSIVITY, 0x0000)
            self._sleep(EEPROM_WAIT_S)
            self._write_eeprom(EEPROM_EMISSIVITY, raw)
            self._sleep(EEPROM_WAIT_S)
            stored = self._read_eeprom(EEPROM_EMISSIVITY)
        if stored != raw:
            raise SensorFault(
                f"emissivity write not verified: wrote 0x{raw:04X}, read 0x{stored:04X}"
            )
        return stored / 65535

    def _refuse_gradient_compensated(self) -> None:
        # Melexis' application note "MLX90614 Changing emissivity" asks, on parts that use
        # cell 0x0F, for that cell to be rescaled with 0x24 after an unlock sequence. Writing
        # 0x24 alone leaves the two inconsistent: the part reads wrong and the read-back of
        # 0x24 would still say "success". We do not write on those parts at all.
        cell = self._read_eeprom(EEPROM_CELL_0F)
        if cell not in (0x0000, 0xFFFF):
            raise EmissivityRefused(
                f"not written: this MLX90614 uses EEPROM cell 0x0F (0x{cell:04X}), a"
                " gradient-compensated xCx part (e.g. BCF, BCI, DCI); its emissivity needs cell"
                " 0x0F rescaled and unlocked as well (Melexis application note 'Changing"
                " emissivity'), which this driver does not do. Keep emissivity 1.0 and let the"
                " site calibration absorb the difference (docs/thermometer.md)."
            )

    def read_config1(self) -> int:
        with self._exclusive():
            return self._read_eeprom(EEPROM_CONFIG1)

    # -- internals ------------------------------------------------------------------------

    def _exclusive(self) -> _Exclusive:
        return _Exclusive(self)

    def _read_pair(self) -> ThermoReading:
        ta_raw = self._read_register(RAM_TA, temperature=True)
        to_raw = self._read_register(RAM_TOBJ1, temperature=True)
        raw = (ta_raw, to_raw)
        # A live thermopile always shows noise at 0.02 degC resolution; the exact same pair of
        # words for many reads means a frozen chip or a bridge replaying a cached transfer.
        if raw == self._last_raw:
            self._same_raw += 1
        else:
            self._same_raw = 0
            self._last_raw = raw
        if self._stuck_reads and self._same_raw + 1 >= self._stuck_reads:
            raise SensorFault(f"readings frozen: identical words for {self._same_raw + 1} reads")
        return ThermoReading(
            object_c=raw_to_c(to_raw),
            ambient_c=raw_to_c(ta_raw),
            mono_ns=self._clock.monotonic_ns(),
        )

    def _read_register(self, command: int, *, temperature: bool) -> int:
        last_problem = "no attempt"
        for _ in range(self._retries + 1):
            try:
                word = self._checked_word(command, temperature)
                if self.pec != "strict":
                    confirm = self._checked_word(command, temperature)
                    if abs(confirm - word) > _CONFIRM_LSB:
                        raise WordError("two reads disagree (no PEC to arbitrate)")
            except WordError as exc:
                last_problem = str(exc)
                with self._state_lock:
                    self.counters.check_failures += 1
                    self._word_checks.append(True)
                continue
            except OSError as exc:
                last_problem = bus_error(exc, self.address, self._bus_number)
                self._on_os_error(last_problem)
                continue
            self._consecutive_os_errors = 0
            self._failed_reopens = 0
            with self._state_lock:
                self._word_checks.append(False)
            return word
        raise SensorFault(
            f"register 0x{command:02X}: {last_problem} ({self._retries + 1} attempts)"
        )

    def _checked_word(self, command: int, temperature: bool) -> int:
        bus = self._ensure_bus()
        data = bus.write_then_read(self.address, bytes([command]), 3)
        word, pec_ok = check_word(self.address, command, data, self.pec)
        if not pec_ok and self.pec == "warn":
            now_s = self._clock.monotonic_ns() / 1e9
            with self._state_lock:
                self.counters.pec_mismatches += 1
                count = self.counters.pec_mismatches
                due = self._pec_lines.due(now_s) is not None
            if due:
                log.warning("mlx90614 PEC mismatch (pec=warn)", extra={"count": count})
        if temperature:
            check_temperature(word, command)
        return word

    def _ensure_bus(self) -> Transport:
        if self._bus is not None:
            return self._bus
        now = self._clock.monotonic_ns()
        if self._reopen_at_ns is not None and now < self._reopen_at_ns:
            wait_s = (self._reopen_at_ns - now) / 1e9
            with self._state_lock:
                cause = self._last_fault or "I2C bus closed after errors"
            raise _BusClosed(f"{cause}; reopening in {wait_s:.1f} s")
        try:
            self._bus = self._open_bus()
        except OSError as exc:
            problem = open_error(str(exc.filename or "I2C bus"), exc, I2C_OPEN_HINTS)
            self._schedule_reopen(problem)
            raise SensorFault(problem) from None
        self._bus_number = getattr(self._bus, "bus_number", None)
        self._check_bus_clock(getattr(self._bus, "clock_hz", None))
        if self._reopen_at_ns is not None:
            with self._state_lock:
                self.counters.reopens += 1
                self._reopen_at_ns = None
            log.debug("mlx90614 bus reopened", extra={"attempt": self._failed_reopens + 1})
        return self._bus

    def _check_bus_clock(self, clock_hz: object) -> None:
        if not isinstance(clock_hz, int) or clock_hz <= MAX_BUS_HZ:
            self._too_fast = None
            return
        message = (
            f"I2C bus at {clock_hz // 1000} kHz, the MLX90614 needs 100 kHz or less: set"
            " dtparam=i2c_arm_baudrate=100000 in /boot/firmware/config.txt and reboot"
            " (docs/wiring.md)"
        )
        if message != self._too_fast:
            log.warning("%s: %s", self.name, message)
        self._too_fast = message

    def _on_os_error(self, problem: str) -> None:
        with self._state_lock:
            self.counters.os_errors += 1
        self._consecutive_os_errors += 1
        if self._consecutive_os_errors >= self._reopen_after:
            self._consecutive_os_errors = 0
            self._drop_bus()
            self._schedule_reopen(problem)
            raise SensorFault(f"{problem}, repeated: I2C bus closed, will reopen")

    def _schedule_reopen(self, problem: str) -> None:
        backoff = self._backoff.delay(self._failed_reopens)
        self._failed_reopens += 1
        with self._state_lock:
            self._reopen_at_ns = self._clock.monotonic_ns() + int(backoff * 1e9)
            self._last_fault = problem
        # Once per cause (a sensor unplugged for a week fails to reopen every 30 s); the
        # return is logged by the first good reading.
        self.faults.fault(
            problem,
            f"{problem}: I2C bus closed; reopening in {backoff:g} s, backing off up to"
            f" {self._backoff.cap_s:g} s",
        )

    def _drop_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except OSError:
                pass

    def _note_fault(self, message: str | None) -> None:
        """One more failed read; ``message`` the fault health says from now (None: the one it
        says already)."""
        with self._state_lock:
            self.counters.faults += 1
            if message is not None:
                self._last_fault = message
                self._last_fault_ns = self._clock.monotonic_ns()

    def _read_eeprom(self, command: int) -> int:
        return self._read_register(command, temperature=False)

    def _write_eeprom(self, command: int, value: int) -> None:
        lsb, msb = value & 0xFF, value >> 8
        frame = bytes([command, lsb, msb, write_pec(self.address, command, lsb, msb)])
        try:
            self._ensure_bus().write(self.address, frame)
        except OSError as exc:
            raise SensorFault(
                f"EEPROM 0x{command:02X} write failed: {exc.strerror or exc}"
            ) from None


class _Exclusive:
    """Hold the read lock for an EEPROM operation; refuse if a read is in flight."""

    def __init__(self, driver: Mlx90614) -> None:
        self._driver = driver

    def __enter__(self) -> None:
        if not self._driver._read_lock.acquire(blocking=False):
            raise SensorFault("thermometer busy (a read has not returned)")

    def __exit__(self, *exc: object) -> None:
        self._driver._read_lock.release()
