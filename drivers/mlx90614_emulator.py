"""A byte-level MLX90614 emulator: the fake thermometer the demo, replay, bench and tests use.

It answers SMBus transfers the way the chip does (Read Word with repeated start returning
LSB, MSB, PEC; EEPROM erase-then-write with PEC and a write time), so the *real* driver in
``drivers.mlx90614`` runs against it unchanged, through either bus face:

* ``emulator.smbus()``: an object with smbus2's ``i2c_rdwr(*msgs)``/``close()``;
* ``emulator.busio()``: an object with Blinka's ``try_lock``/``writeto_then_readfrom``/``writeto``.

A read that is not preceded by its command in the same combined transfer (no repeated start)
is NACKed, as the chip does, so a transport that issues a STOP in between fails here too.

The scene (what the sensor looks at) comes from the injected clock only: ``person_arrives``
starts an approach curve toward what a forehead at that body temperature reads at the current
ambient (a ``Visit`` says how: the approach's speed, a forehead filling only part of the field
of view, hair or a hat brim in it, a wobbling arm, sweat cooling the skin, a step back),
``person_leaves`` decays back to the background, ``set_ambient`` moves the die
temperature, ``load_trace`` plays recorded (t, object, ambient) points. The object value then
passes through a first-order model of the chip's own IIR filter (bandwidth from config register
0x25), plus seeded noise, so settling looks like the chip's. Faults are injected per register
read: ``bad_pec``, ``error_flag``, ``nack`` (errno 121), ``timeout`` (errno 110), ``stuck``,
``hang`` (blocks until ``release_hang()`` or a bounded real-time wait), ``ffff``.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import math
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.clock import Clock

from .mlx90614 import (
    DEFAULT_ADDRESS,
    EEPROM_CELL_0F,
    EEPROM_CONFIG1,
    EEPROM_EMISSIVITY,
    FACTORY_CONFIG1,
    IIR_BANDWIDTH_HZ,
    RAM_TA,
    RAM_TOBJ1,
    c_to_raw,
    read_pec,
    write_pec,
)

FAULTS = ("hang", "nack", "timeout", "ffff", "bad_pec", "error_flag", "stuck")

_I2C_M_RD = 0x0001
_EEPROM_WRITE_S = (
    0.005  # datasheet: an EEPROM cell write takes up to 5 ms; the chip NACKs meanwhile
)
_FACTORY_EEPROM = {
    0x20: 0x9993,  # To max
    0x21: 0x62E3,  # To min
    0x22: 0x0201,  # PWM control
    0x23: 0xF71C,  # Ta range
    EEPROM_EMISSIVITY: 0xFFFF,  # emissivity 1.0
    # Cell 0x0F: the second emissivity-dependent coefficient of gradient-compensated xCx
    # parts; 0 on a plain part. A test sets it to model a BCF/DCI. Write-protected (locked).
    EEPROM_CELL_0F: 0x0000,
    EEPROM_CONFIG1: FACTORY_CONFIG1,
    0x2E: 0xBE5A,  # SMBus address (LSB)
    0x3C: 0x1C4B,
    0x3D: 0x0C9E,
    0x3E: 0x3D07,
    0x3F: 0x9B52,  # ID numbers (arbitrary but fixed)
}


def skin_reading_c(body_c: float, ambient_c: float) -> float:
    """What the sensor reads off the wrist of a person at ``body_c`` in ``ambient_c``.

    Skin sits between core and air: colder air pulls it further from the core (the fraction
    grows as ambient drops; a wrist is pulled more than a forehead), and skin emissivity
    (~0.98) at a few centimetres reads slightly low. A rough physiological model; the kiosk's
    default calibration approximates it (to within 0.4 degC over 15..35 degC) with a different
    functional form, so the bench's uncalibrated error is that mismatch plus measurement.
    """
    pull = min(0.4, max(0.12, 0.22 + 0.006 * (25.0 - ambient_c)))
    return body_c - pull * (body_c - ambient_c) - 0.15


@dataclass(frozen=True)
class Visit:
    """How one person presents their forehead: the scene the sensor sees, as time goes by.

    The reading approaches ``background + coverage * (skin - background)`` with the approach's
    time constant: ``fill`` is the fraction of the field of view the forehead fills (the rest
    is the background), ``hair`` the fraction of that covered by hair or a hat brim (reading
    halfway between skin and air), ``wobble`` an arm or head swaying the coverage by that
    fraction at ``wobble_hz``, ``sweat_c`` the skin cooling reached over ``sweat_tau_s`` (from
    arrival), ``step_back_at_s`` a step back to ``step_back_fill`` of the coverage, and
    ``chill_c`` a forehead come in from the cold: that much below its reading on arrival,
    re-warming with ``rewarm_tau_s`` (minutes: skin warms back slowly in the shelter).
    ``Visit()`` is the plain approach the emulator always modelled.

    ``sway`` is the head's natural sway (nobody holds still to a millimetre): it moves an edge
    that lies *inside* the field of view (the forehead's edge of a view it does not fill, a
    hairline, a hat brim, the edge after a step back) by up to that fraction of the view, so
    such a view's reading fluctuates; a forehead that overfills the view (``fill`` 1, no hair)
    keeps the view on skin and shows none of it. The emulator drives it with ``sway_signal``.
    """

    approach_tau_s: float = 0.35
    fill: float = 1.0
    hair: float = 0.0
    wobble: float = 0.0
    wobble_hz: float = 1.3
    sweat_c: float = 0.0
    sweat_tau_s: float = 1.5
    step_back_at_s: float | None = None
    step_back_fill: float = 0.8
    sway: float = 0.04
    chill_c: float = 0.0
    rewarm_tau_s: float = 120.0

    def __post_init__(self) -> None:
        if not (0 < self.approach_tau_s <= 10 and 0 < self.fill <= 1 and 0 <= self.hair <= 1):
            raise ValueError("visit: approach_tau_s in (0, 10], fill in (0, 1], hair in [0, 1]")
        if not (0 <= self.wobble < 1 and 0 < self.step_back_fill <= 1 and self.sweat_tau_s > 0):
            raise ValueError("visit: wobble in [0, 1), step_back_fill in (0, 1], sweat_tau_s > 0")
        if not 0 <= self.sway <= 0.2:
            raise ValueError("visit: sway in [0, 0.2]")
        if not (0 <= self.chill_c <= 15 and self.rewarm_tau_s > 0):
            raise ValueError("visit: chill_c in [0, 15], rewarm_tau_s > 0")

    def coverage(self, t_s: float, sway_s: float = 0.0) -> float:
        """Fraction of the way from the background to the skin reading, at ``t_s`` from arrival.

        ``sway_s`` (in -1..1) is where the head's natural sway is at ``t_s``.
        """
        fill, hair = self.fill, self.hair
        if self.step_back_at_s is not None and t_s > self.step_back_at_s:
            left = math.exp(-(t_s - self.step_back_at_s) / self.approach_tau_s)
            fill *= self.step_back_fill + (1 - self.step_back_fill) * left
        if fill < 1:  # the forehead's edge is inside the view: the sway moves it
            fill = min(1.0, max(0.0, fill + self.sway * sway_s))
        if hair:  # so does the hairline's
            hair = min(1.0, max(0.0, hair - self.sway * sway_s))
        cover = fill * (1 - hair / 2)
        if self.wobble:
            cover *= 1 - self.wobble * (1 - math.cos(2 * math.pi * self.wobble_hz * t_s)) / 2
        return cover

    def reading_c(
        self, body_c: float, ambient_c: float, background_c: float, t_s: float, sway_s: float = 0.0
    ) -> float:
        """The plateau the approach heads for at ``t_s``: background and skin, mixed."""
        skin = skin_reading_c(body_c, ambient_c)
        skin -= self.sweat_c * (1 - math.exp(-t_s / self.sweat_tau_s))
        skin -= self.chill_c * math.exp(-t_s / self.rewarm_tau_s)
        return background_c + self.coverage(t_s, sway_s) * (skin - background_c)


#: The head's natural sway while standing at the sensor: three components (Hz, weight) whose
#: phases each visit draws from the emulator's seed; the sum stays within -1..1.
_SWAY_COMPONENTS = ((0.4, 0.5), (0.9, 0.3), (1.7, 0.2))


def sway_signal(phases: tuple[float, ...], t_s: float) -> float:
    """Where the head is in its sway at ``t_s`` after arrival, in -1..1."""
    return sum(
        w * math.sin(2 * math.pi * hz * t_s + ph)
        for (hz, w), ph in zip(_SWAY_COMPONENTS, phases, strict=True)
    )


@dataclass(frozen=True)
class TracePoint:
    t_s: float
    object_c: float
    ambient_c: float


def load_trace_csv(path: str | Path) -> list[TracePoint]:
    """Read a trace file: CSV with header ``t_s,object_c,ambient_c``, times increasing."""
    points: list[TracePoint] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"t_s", "object_c", "ambient_c"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: header must be t_s,object_c,ambient_c")
        for line, row in enumerate(reader, start=2):
            try:
                point = TracePoint(
                    float(row["t_s"]), float(row["object_c"]), float(row["ambient_c"])
                )
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: not three numbers") from None
            if points and point.t_s <= points[-1].t_s:
                raise ValueError(f"{path}:{line}: t_s must increase")
            points.append(point)
    if not points:
        raise ValueError(f"{path}: no points")
    return points


class Mlx90614Emulator:
    """The chip, its scene and its faults. Thread-safe: the driver reads from a worker thread."""

    approach_tau_s = 0.35  # a forehead moving into the field of view
    leave_tau_s = 0.25
    background_above_ambient_c = 0.2

    def __init__(
        self,
        clock: Clock,
        address: int = DEFAULT_ADDRESS,
        *,
        ambient_c: float = 24.0,
        seed: int = 0,
        noise_c: float | None = None,
        hang_max_s: float = 2.0,
    ) -> None:
        self.clock = clock
        self.address = address
        self.hang_max_s = hang_max_s
        self.eeprom: dict[int, int] = dict(_FACTORY_EEPROM)
        self.transfers = 0
        #: Optional wire corruption for tests: ``(command, bytes) -> bytes`` on every read reply.
        self.on_wire: Callable[[int, bytes], bytes] | None = None
        self._lock = threading.Lock()
        self._seed = seed
        self._noise_override = noise_c
        self._ambient_c = ambient_c
        #: A steady move of the die/air temperature: (start ns, from, degC per s, until).
        self._ramp: tuple[int, float, float, float] | None = None
        self._body_c: float | None = None
        self._visit = Visit()
        self._sway_phases = (0.0,) * len(_SWAY_COMPONENTS)
        self._arrivals = 0
        now = clock.monotonic_ns()
        self._scene_from = ambient_c + self.background_above_ambient_c
        self._scene_to = self._scene_from
        self._scene_t0 = now
        self._scene_tau = self.approach_tau_s
        self._trace: list[TracePoint] | None = None
        self._trace_t0 = now
        self._filtered = self._scene_from
        self._filtered_at = now
        self._faults: dict[str, int | None] = {}
        self._stuck: dict[int, bytes] = {}
        self._hang_event = threading.Event()
        #: Set while a read is blocked in an injected hang (tests wait on it, bounded).
        self.hang_started = threading.Event()
        self._last_write_ns: int | None = None
        self._locked = False

    # -- scene control ----------------------------------------------------------------------

    def person_arrives(self, body_c: float, visit: Visit | None = None) -> None:
        """Someone steps up; the object reading approaches their forehead reading.

        ``visit`` says how they present it (default: a plain approach, the whole forehead).
        """
        visit = visit or Visit(approach_tau_s=self.approach_tau_s)
        with self._lock:
            self._follow_ramp(self.clock.monotonic_ns())
            # The approach starts from what the scene shows now (the old visit's reading).
            self._retarget(skin_reading_c(body_c, self._ambient_c), visit.approach_tau_s)
            self._body_c = body_c
            self._visit = visit
            self._arrivals += 1
            rng = random.Random(f"{self._seed}:sway:{self._arrivals}")
            self._sway_phases = tuple(rng.uniform(0, 2 * math.pi) for _ in _SWAY_COMPONENTS)

    def person_leaves(self) -> None:
        with self._lock:
            self._follow_ramp(self.clock.monotonic_ns())
            self._retarget(self._background(), self.leave_tau_s)
            self._body_c = None

    def set_ambient(self, celsius: float) -> None:
        """Move the air/die temperature; a person present re-targets to the new skin reading."""
        with self._lock:
            start = self._scene_object(self.clock.monotonic_ns())
            self._ramp = None
            self._ambient_c = celsius
            target = (
                self._background()
                if self._body_c is None
                else skin_reading_c(self._body_c, celsius)
            )
            self._retarget(target, self.approach_tau_s, start)

    def ramp_ambient(self, c_per_min: float, until_c: float) -> None:
        """Move the die/air temperature steadily from now toward ``until_c`` at ``c_per_min``
        (the sign follows ``until_c``), then hold it: a box warmed by the Pi or the sun, a kiosk
        carried into the guard hut or out into the cold. A person present follows the air."""
        if not (math.isfinite(c_per_min) and c_per_min > 0 and math.isfinite(until_c)):
            raise ValueError("ramp_ambient: c_per_min > 0 and a finite until_c")
        with self._lock:
            now = self.clock.monotonic_ns()
            self._follow_ramp(now)
            rate = math.copysign(c_per_min / 60.0, until_c - self._ambient_c)
            self._ramp = (now, self._ambient_c, rate, until_c)

    def load_trace(self, points: Iterable[TracePoint]) -> None:
        """Play (t_s, object_c, ambient_c) points from now, linearly interpolated, last held."""
        pts = list(points)
        if not pts:
            raise ValueError("empty trace")
        with self._lock:
            self._trace = pts
            self._trace_t0 = self.clock.monotonic_ns()

    @property
    def body_c(self) -> float | None:
        return self._body_c

    @property
    def ambient_c(self) -> float:
        with self._lock:
            return self._scene_at(self.clock.monotonic_ns())[1]

    def chip_object_c(self) -> float:
        """The chip's filtered object temperature now, without noise (for tests and the bench)."""
        with self._lock:
            return self._advance_filter(self.clock.monotonic_ns())

    @property
    def noise_c(self) -> float:
        if self._noise_override is not None:
            return self._noise_override
        # Wider filter bandwidth lets more thermopile noise through.
        return 0.02 * math.sqrt(self._bandwidth_hz() / 0.77)

    # -- faults -----------------------------------------------------------------------------

    def inject(self, fault: str, reads: int | None = None) -> None:
        """Make the next ``reads`` register reads (None: all, until cleared) show ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        if reads is not None and reads < 1:
            raise ValueError("reads must be >= 1 or None")
        with self._lock:
            self._faults[fault] = reads
            if fault == "stuck":
                self._stuck.clear()
            if fault == "hang":
                self._hang_event = threading.Event()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._stuck.clear()
            self._hang_event.set()

    def release_hang(self) -> None:
        """Let a hung read complete (the slave lets go of SDA)."""
        with self._lock:
            self._faults.pop("hang", None)
            self._hang_event.set()

    # -- bus faces --------------------------------------------------------------------------

    def smbus(self) -> EmulatedSMBus:
        return EmulatedSMBus(self)

    def busio(self) -> EmulatedBusioI2C:
        return EmulatedBusioI2C(self)

    # -- byte level -------------------------------------------------------------------------

    def read_word(self, address: int, command: int, count: int) -> bytes:
        """A combined write(command) + repeated start + read(count) transfer."""
        if address != self.address:
            raise OSError(errno.EREMOTEIO, "no ACK from address")
        hang = None
        with self._lock:
            self.transfers += 1
            fault = self._take_fault()
            if fault == "hang":
                hang = self._hang_event
        if hang is not None:
            self.hang_started.set()
            # Bounded: a forgotten release must never wedge a test run.
            released = hang.wait(self.hang_max_s)
            self.hang_started.clear()
            if not released:
                raise OSError(errno.ETIMEDOUT, "bus hung")
            fault = None
        if fault == "nack":
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        if fault == "timeout":
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        if fault == "ffff":
            return b"\xff" * count
        with self._lock:
            if fault == "stuck" and command in self._stuck:
                return self._stuck[command][:count]
            word = self._register(command)
            if word is None:
                raise OSError(errno.EREMOTEIO, "command not acknowledged")
            if fault == "error_flag":
                word |= 0x8000
            lsb, msb = word & 0xFF, word >> 8
            pec = read_pec(self.address, command, lsb, msb)
            if fault == "bad_pec":
                pec ^= 0xA5
            reply = bytes([lsb, msb, pec])
            if fault == "stuck":
                self._stuck[command] = reply
        reply = reply[:count] + b"\xff" * max(0, count - 3)
        if self.on_wire is not None:
            reply = self.on_wire(command, reply)
        return reply

    def write(self, address: int, data: bytes) -> None:
        """A plain write transfer: an EEPROM write word (command, LSB, MSB, PEC)."""
        if address != self.address:
            raise OSError(errno.EREMOTEIO, "no ACK from address")
        with self._lock:
            self.transfers += 1
            now = self.clock.monotonic_ns()
            if len(data) == 1:
                return  # a bare command byte is acknowledged and does nothing
            if len(data) != 4 or not 0x20 <= data[0] <= 0x3F:
                raise OSError(errno.EREMOTEIO, "write not acknowledged")
            if (
                self._last_write_ns is not None
                and now - self._last_write_ns < _EEPROM_WRITE_S * 1e9
            ):
                raise OSError(errno.EREMOTEIO, "EEPROM busy")
            command, lsb, msb, pec = data
            if pec != write_pec(self.address, command, lsb, msb):
                raise OSError(errno.EREMOTEIO, "PEC error: write ignored")
            if command == EEPROM_CELL_0F:
                raise OSError(errno.EREMOTEIO, "EEPROM cell 0x0F is locked")
            value = lsb | (msb << 8)
            current = self.eeprom.get(command, 0)
            # An EEPROM cell written without a prior erase ends up with a mix of old and new bits.
            self.eeprom[command] = 0 if value == 0 else (value if current == 0 else current | value)
            self._last_write_ns = now

    # -- internals --------------------------------------------------------------------------

    def _take_fault(self) -> str | None:
        for name in FAULTS:
            if name in self._faults:
                left = self._faults[name]
                if left is not None:
                    if left <= 1:
                        del self._faults[name]
                    else:
                        self._faults[name] = left - 1
                return name
        return None

    def _noise(self, now: int, command: int, sigma: float) -> float:
        # Noise is a function of (seed, time, register): a retry at the same instant reads the
        # same value, as the chip's RAM does between updates, and runs are reproducible.
        return random.Random(f"{self._seed}:{now}:{command}").gauss(0.0, sigma) if sigma else 0.0

    def _register(self, command: int) -> int | None:
        now = self.clock.monotonic_ns()
        if command == RAM_TA:
            sigma = 0.01 if self._noise_override is None else min(0.01, self._noise_override)
            return c_to_raw(self._scene_at(now)[1] + self._noise(now, command, sigma))
        if command == RAM_TOBJ1:
            obj = self._advance_filter(now) + self._noise(now, command, self.noise_c)
            return c_to_raw(obj)
        if 0x20 <= command <= 0x3F:
            return self.eeprom.get(command, 0)
        return None

    def _background(self) -> float:
        return self._ambient_c + self.background_above_ambient_c

    def _retarget(self, target: float, tau_s: float, start: float | None = None) -> None:
        now = self.clock.monotonic_ns()
        self._scene_from = self._scene_object(now) if start is None else start
        self._scene_to = target
        self._scene_t0 = now
        self._scene_tau = tau_s

    def _follow_ramp(self, now: int) -> None:
        if self._ramp is None:
            return
        t0, start, rate, until = self._ramp
        moved = start + rate * max(0.0, (now - t0) / 1e9)
        self._ambient_c = min(moved, until) if rate > 0 else max(moved, until)

    def _scene_object(self, now: int) -> float:
        self._follow_ramp(now)
        t = max(0.0, (now - self._scene_t0) / 1e9)
        target = self._scene_to
        if self._body_c is None and self._ramp is not None:
            target = self._background()  # the background follows the air
        if self._body_c is not None:
            sway = sway_signal(self._sway_phases, t)
            target = self._visit.reading_c(
                self._body_c, self._ambient_c, self._background(), t, sway
            )
        return target + (self._scene_from - target) * math.exp(-t / self._scene_tau)

    def _scene_at(self, now: int) -> tuple[float, float]:
        self._follow_ramp(now)
        if self._trace is not None:
            return self._trace_at((now - self._trace_t0) / 1e9)
        return self._scene_object(now), self._ambient_c

    def _trace_at(self, t: float) -> tuple[float, float]:
        pts = self._trace
        assert pts is not None
        if t <= pts[0].t_s:
            return pts[0].object_c, pts[0].ambient_c
        for a, b in zip(pts, pts[1:], strict=False):
            if t <= b.t_s:
                f = (t - a.t_s) / (b.t_s - a.t_s)
                return (
                    a.object_c + f * (b.object_c - a.object_c),
                    a.ambient_c + f * (b.ambient_c - a.ambient_c),
                )
        return pts[-1].object_c, pts[-1].ambient_c

    def _bandwidth_hz(self) -> float:
        return IIR_BANDWIDTH_HZ[self.eeprom.get(EEPROM_CONFIG1, FACTORY_CONFIG1) & 0x7]

    def _advance_filter(self, now: int) -> float:
        """Step the chip's first-order object filter from its last update to ``now``."""
        tau = 1.0 / (2 * math.pi * self._bandwidth_hz())
        t = self._filtered_at
        if now - t > 20 * tau * 1e9:
            self._filtered = self._scene_at(now)[0]
        else:
            step_ns = max(1_000_000, int(tau * 1e9 / 4))
            while t < now:
                dt = min(step_ns, now - t)
                t += dt
                target = self._scene_at(t)[0]
                self._filtered += (1 - math.exp(-dt / 1e9 / tau)) * (target - self._filtered)
        self._filtered_at = now
        return self._filtered


class EmulatedSMBus:
    """smbus2.SMBus's ``i2c_rdwr`` face of the emulator, filling real ``i2c_msg`` buffers."""

    def __init__(self, chip: Mlx90614Emulator) -> None:
        self._chip = chip
        self.closed = False

    def i2c_rdwr(self, *msgs: Any) -> None:  # smbus2.i2c_msg (its stub names no fields)
        if self.closed:
            raise OSError(errno.EBADF, "bus closed")
        kinds = [bool(m.flags & _I2C_M_RD) for m in msgs]
        if kinds == [False, True]:
            write, read = msgs
            out = bytes(write)
            if len(out) != 1:
                raise OSError(errno.EREMOTEIO, "read word expects one command byte")
            reply = self._chip.read_word(write.addr, out[0], read.len)
            ctypes.memmove(read.buf, reply, read.len)
        elif kinds == [False]:
            self._chip.write(msgs[0].addr, bytes(msgs[0]))
        else:
            # A read without its command in the same transfer: the chip does not answer.
            raise OSError(errno.EREMOTEIO, "unsupported transfer (no repeated start)")

    def close(self) -> None:
        self.closed = True


class EmulatedBusioI2C:
    """Blinka ``busio.I2C``'s face of the emulator."""

    def __init__(self, chip: Mlx90614Emulator) -> None:
        self._chip = chip
        self._locked = False

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: bytes,
        buffer_in: bytearray,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        if not self._locked:
            raise RuntimeError("busio.I2C used without try_lock()")
        out = bytes(buffer_out[out_start:out_end])
        in_end = len(buffer_in) if in_end is None else in_end
        if len(out) != 1:
            raise OSError(errno.EREMOTEIO, "read word expects one command byte")
        reply = self._chip.read_word(address, out[0], in_end - in_start)
        buffer_in[in_start:in_end] = reply

    def writeto(
        self, address: int, buffer: bytes, *, start: int = 0, end: int | None = None
    ) -> None:
        if not self._locked:
            raise RuntimeError("busio.I2C used without try_lock()")
        self._chip.write(address, bytes(buffer[start:end]))

    def deinit(self) -> None:
        self._locked = False
