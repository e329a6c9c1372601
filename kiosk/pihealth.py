"""The Pi's own power and heat: what the kernel says of them, and each spell of trouble.

A Pi on a long cable or a weak supply runs under-voltage (the SD card corrupts, the USB camera
and the I2C thermometer drop out), and one in a sunny enclosure throttles (decoding slows).
The kernel of Raspberry Pi OS (Bookworm, Trixie) says both without ``vcgencmd``:

* the firmware driver's ``get_throttled`` file (raspberrypi/linux,
  ``drivers/firmware/raspberrypi.c``: the firmware's answer to ``GET_THROTTLED``, written
  ``"%x\\n"``): bit 0 under-voltage now, 1 ARM frequency capped, 2 throttled, 3 soft
  temperature limit; bits 16-19 the same "has occurred". The kernel's ``rpi_volt`` hwmon
  driver (``drivers/hwmon/raspberrypi-hwmon.c``) asks the firmware every 2 s and clears
  those sticky bits as it asks, so on Raspberry Pi OS they mean "since the kernel's last
  poll", not "since boot" as ``vcgencmd``'s documentation has it;
* that driver's ``in0_lcrit_alarm``: bit 16 of its last poll (an under-voltage within ~2 s);
* the SoC temperature, ``thermal_zone0/temp`` in millidegrees Celsius.

``drivers.pihealth`` reads them (``PiPowerReading``); ``PowerWatch`` here, polled by the daemon
off the decision loop, keeps the last reading for health, ``/metrics``, the guard's Devices
page and the live page's standing card, and records each spell of under-voltage or throttling
as two audit rows (its start, its end) and two journal lines. It never touches a decision.
An under-voltage makes the firmware throttle too (bit 0, then bit 2: ``0x50005``): that
throttle, in a reading that sees the under-voltage or one that began within
``ACTIVE_HOLD_S`` of its dip (between two dips of one supply) and has not cleared since, is the
under-voltage spell's (``throttled`` in its rows), one spell of one cause, not a second; a
``throttled`` spell is the SoC slowed with no under-voltage in or within the hold of its first
reading, or for its heat (from its first reading), its ``cause`` in its rows (``heat`` once a
reading in it said so, else ``unknown``), and its journal lines say heat only then. Bits 1
and 2 name no cause (the firmware caps the ARM for a low supply as for heat): a throttle's is
what the rest of the reading shows, the under-voltage's, heat's (bit 3 or 19, the SoC at
``hot_c``) or unknown (health's ``throttled_cause``), and the guard is told heat only on such
a sign.

A spell ends only once its condition has been clear for ``coalesce_s`` (5 minutes): a supply
flapping every few seconds is one spell (its ``flaps`` counted), never a row per poll, so at
most two rows per condition in any ``coalesce_s``. Files that are absent (not a Pi, an older
kernel) are "not available", never a fault; a garbled one is a problem named in health, and
what it would have said is unknown: no spell starts or ends on it.

A spell begun before NTP set the clock (a Pi has no battery-backed clock: 1970, or the saved
time of the last shutdown) keeps in its rows its boot and the monotonic time of its first
reading (``clock``); ``power_spells`` dates it by that boot's set clock as ``kiosk.dating``
dates the boot's events, and says its time is unknown if the boot never had one, never the
hours between a wrong stamp and the last sign of life.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .auditing import HeldRows
from .clock import Clock, ClockReading
from .dating import run_end
from .logs import FlapLimit
from .queries import boot_offsets, clock_of, offset_time
from .store import StoreFault, format_ts, read_boot_id
from .unreadable import json_field

__all__ = [
    "CONDITIONS",
    "PI_POWER_ACTION",
    "PiPowerReading",
    "PiPowerSource",
    "PowerWatch",
    "flag_names",
    "power_spells",
]

log = logging.getLogger(__name__)

#: The firmware's throttle word's bits (``get_throttled``), now; the same << 16: has occurred.
FLAG_BITS = (("under_voltage", 0), ("freq_capped", 1), ("throttled", 2), ("soft_temp_limit", 3))
OCCURRED_SHIFT = 16
#: The soft temperature limit's bit: the SoC slowed for heat, whatever else the word says.
_SOFT_LIMIT_BIT = 3
#: The spells recorded: the supply too weak; the SoC slowed (capped, throttled, soft limit).
CONDITIONS = ("under_voltage", "throttled")
#: The audit actions of a spell: ``pi_power.<condition>.start`` and ``.end`` (actor daemon).
PI_POWER_ACTION = "pi_power."
#: A spell ends once its condition has not been seen for this long.
COALESCE_S = 300.0
#: The live page's card (health's ``under_voltage``/``throttled``) stands this long after the
#: condition was last seen: a flapping supply is one card, not one a poll.
ACTIVE_HOLD_S = 60.0


def flag_names(word: int, shift: int = 0) -> tuple[str, ...]:
    """The names of the throttle word's bits set (``shift`` 16: the "has occurred" ones)."""
    return tuple(name for name, bit in FLAG_BITS if word >> (bit + shift) & 1)


@dataclass(frozen=True)
class PiPowerReading:
    """One read of the kernel's files: ``None`` for a file that is not there; ``problems``,
    each file that could not be understood, named (its value then ``None`` too)."""

    throttled: int | None = None
    lcrit_alarm: bool | None = None
    soc_temp_c: float | None = None
    problems: tuple[str, ...] = ()
    #: The throttle word is there but no ``rpi_volt`` driver refreshes it (blacklisted
    #: module): it is the firmware's answer at boot, kept, not read as now.
    stale_word: bool = False

    @property
    def available(self) -> bool:
        values = (self.throttled, self.lcrit_alarm, self.soc_temp_c)
        return any(v is not None for v in values) or bool(self.problems)

    def seen(self, condition: str) -> bool | None:
        """Whether ``condition`` holds now or since the kernel's last poll; None: unknown
        (no file says, or the one that would is garbled or stale)."""
        word = None if self.stale_word else self.throttled
        if condition == "under_voltage":
            if word is None and self.lcrit_alarm is None:
                return None
            bits = 0 if word is None else word | word >> OCCURRED_SHIFT
            return bool(bits & 1) or bool(self.lcrit_alarm)
        if word is None:
            return None
        return bool((word | word >> OCCURRED_SHIFT) & 0b1110)


class PiPowerSource(Protocol):
    """Where the readings come from (``drivers.pihealth``): a read never raises for a file
    that is absent or garbled, it says so in the reading."""

    def read(self) -> PiPowerReading: ...


class AuditWriter(Protocol):
    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None: ...


@dataclass
class _Spell:
    #: Its first reading: the wall clock then, the monotonic clock, whether NTP had set it.
    start: ClockReading
    last_seen_ns: int
    flaps: int = 0
    clear: bool = False
    #: A throttled spell's: when a reading in it last said heat (``PowerWatch._hot``).
    hot_ns: int | None = None
    #: An under-voltage's: the firmware's throttle that came with it.
    throttle: _Throttle | None = None

    @property
    def since(self) -> datetime:
        """Its start as the wall clock said then (its start row's ``from``)."""
        return self.start.wall

    def began(self, now: ClockReading) -> datetime:
        """Its start as ``now`` dates it (``_dated``)."""
        return _dated(self.start, now)

    def span(self, now: ClockReading) -> tuple[datetime, datetime]:
        """Its ``from`` and ``to``, both off one wall reading: its start's, or, stamped before
        NTP set the clock and the clock set ``now``, the synchronised clock's (``wall_at``, as
        ``kiosk.dating`` dates such a boot's events); ``to`` is that plus the monotonic time to
        its problem's last sighting (the condition, or the throttle the supply caused if it
        lingered after the voltage came back). A step of the wall clock within the spell (NTP's
        first sync under a boot's load, a step back) moves neither end."""
        start, throttle = self.start, self.throttle
        since = self.began(now)
        last_ns = max(self.last_seen_ns, 0 if throttle is None else throttle.last_ns)
        return since, since + timedelta(microseconds=max(0, last_ns - start.mono_ns) // 1000)


@dataclass
class _Throttle:
    """The supply's throttle, first seen at ``start``, last at ``last_ns`` (the monotonic
    clock: its spell's ``to`` is dated from it, ``_Spell.span``): an under-voltage spell's,
    or ``PowerWatch._lingering``, one in readings with no under-voltage begun within
    ``ACTIVE_HOLD_S`` of the supply's last dip (``PowerWatch._supplys``): the supply's,
    credited to its spell once it dips again, the throttle clears, the spell ends or the
    kiosk stops; a throttled spell of its own from ``since`` (its first reading, not the hot
    one) if it says heat first."""

    start: ClockReading
    last_ns: int


def _dated(start: ClockReading, now: ClockReading) -> datetime:
    """When ``start`` was, as the clock read ``now`` (of the same boot) dates it: the wall
    clock then, or, read before NTP set the clock and set ``now``, the synchronised clock's
    time less the monotonic time since (as ``kiosk.dating`` dates such a boot's events)."""
    return now.wall_at(start.mono_ns) if now.synced and not start.synced else start.wall


@dataclass
class PowerWatch:
    """The last reading and the open spells; ``poll`` from a thread (it reads files and may
    write audit rows), ``status`` from anywhere."""

    source: PiPowerSource | None
    clock: Clock
    audit: AuditWriter | None = None
    hot_c: float = 80.0
    coalesce_s: float = COALESCE_S
    #: This boot's id (``kiosk.store.read_boot_id``; the daemon passes its log's), kept in the
    #: rows of a spell begun before NTP set the clock (``_clock``).
    boot_id: str = field(default_factory=read_boot_id)
    last: PiPowerReading | None = None
    read_at: datetime | None = None
    _spells: dict[str, _Spell] = field(default_factory=dict)
    _lingering: _Throttle | None = None
    _problem: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Held by a poll and a stop while they change the spells and write their rows (not by
    #: ``status``): a stop's end row never goes in before the start row a poll is writing.
    _writing: threading.Lock = field(default_factory=threading.Lock)
    #: Its rows the storage refused (a failing card: under low voltage is exactly when),
    #: written in order once it takes them again (``kiosk.auditing.HeldRows``).
    held: HeldRows = field(default_factory=lambda: HeldRows(reserve=0))
    #: Spells a stop's ``close`` took and has not begun the end row of; rows being written.
    _closing: int = 0
    _in_write: int = 0
    #: The journal lines of a problem's changes: a file garbled or flapping changes at each
    #: poll (its text carries the value read), logged ``FLAP_LINES`` an hour, then counted.
    _problem_lines: FlapLimit = field(init=False)

    def __post_init__(self) -> None:
        self._problem_lines = FlapLimit(self.clock.monotonic_ns)

    def poll(self) -> PiPowerReading | None:
        """One read and what it changes; None without a source. A source that raises (a bug,
        never an absent file) is a problem named, as a garbled file is."""
        if self.source is None:
            return None
        try:
            reading = self.source.read()
        except Exception as exc:  # noqa: BLE001 - the Pi's health never takes the daemon down
            reading = PiPowerReading(problems=(f"read failed: {type(exc).__name__}: {exc}",))
        self.observe(reading)
        return reading

    def observe(self, reading: PiPowerReading) -> None:
        """Take ``reading``: the spells it starts or ends are changed under the lock, their
        rows written after it (a write may wait on a busy or failing card, and health,
        ``/metrics`` and the guard's pages read ``status`` meanwhile)."""
        with self._writing:
            self._observe(reading)

    def _observe(self, reading: PiPowerReading) -> None:
        read = ClockReading.take(self.clock)
        now, mono = read.wall, read.mono_ns
        started, ended = [], []
        with self._lock:
            self.last, self.read_at = reading, now
            if reading.seen("under_voltage") or reading.seen("throttled") is False:
                self._to_the_supply()  # a lingering throttle between dips, or gone in the hold
            for condition in CONDITIONS:  # under-voltage first: a throttle may be its
                seen = reading.seen(condition)
                if seen and condition == "throttled" and self._supplys(reading, read):
                    seen = False  # the supply's: not a sighting of a throttled spell's own
                if seen:
                    if self._seen(condition, read):
                        started.append(condition)
                    if condition == "throttled" and self._hot(reading):
                        self._spells[condition].hot_ns = mono
                elif seen is False and condition in self._spells:
                    spell = self._spells[condition]
                    spell.clear = True
                    if mono - self._last_ns(condition, spell) >= self.coalesce_s * 1e9:
                        if condition == "under_voltage":
                            self._to_the_supply()  # a throttle pending is this spell's
                        ended.append((condition, self._spells.pop(condition)))
            opened = [(c, self._spells[c].start, _facts(c, self._spells[c])) for c in started]
        for condition, start, facts in opened:
            self._started(condition, reading, start, facts)
        for condition, spell in ended:
            self._ended(condition, spell, stopped=False)
        if self.audit is not None and (len(self.held) or self.held.dropped):
            self.held.flush(self.audit)  # the storage may work again
        self._say_problem(reading)

    def _seen(self, condition: str, now: ClockReading) -> bool:
        """``condition`` seen (under the lock): True when that starts a spell, from ``now`` or,
        a throttled one, from the first reading of the throttle that lingered if it was seen
        within ``ACTIVE_HOLD_S`` (no spell's start late, none at a stale time)."""
        spell = self._spells.get(condition)
        if spell is not None:
            if condition == "throttled":
                self._lingering = None  # this spell's now, never the supply's as well
            spell.flaps += 1 if spell.clear else 0
            spell.clear, spell.last_seen_ns = False, now.mono_ns
            return False
        start, run = now, self._lingering if condition == "throttled" else None
        if run is not None and self._recent(run.last_ns):
            start, self._lingering = run.start, None
        elif run is not None:
            self._to_the_supply()  # not seen for the hold: the supply's, this one begins now
        self._spells[condition] = _Spell(start, now.mono_ns)
        return True

    def _supplys(self, reading: PiPowerReading, now: ClockReading) -> bool:
        """The throttle ``reading`` shows (under the lock) is the under-voltage's: its spell is
        open, no spell of heat is, nothing in the reading says heat (the soft temperature
        limit's bit 3 or 19, the SoC at ``hot_c``), and the same reading sees the
        under-voltage (now or since the kernel's last poll), or the throttle began within
        ``ACTIVE_HOLD_S`` of the supply's dip (the firmware still throttling after the
        voltage came back: ``_lingering``) and has not cleared since. Kept on that spell
        (``throttled``), no spell of its own: one weak supply is one supply problem, however
        long its throttle lingers; only heat makes it a throttled spell (from its first
        reading). A throttle first seen past the hold is a throttled spell of its own. A
        throttled spell of heat already open (the SoC hot before the supply sagged) goes on
        as its own; one of cause unknown takes no throttle the supply's dip brings."""
        under, own = self._spells.get("under_voltage"), self._spells.get("throttled")
        if under is None or (own is not None and self._heat(own)) or self._hot(reading):
            return False
        if reading.seen("under_voltage"):
            self._credit(under, _Throttle(now, now.mono_ns))
            return True
        if self._lingering is None and not self._recent(under.last_seen_ns):
            return False
        if self._lingering is None:
            self._lingering = _Throttle(now, now.mono_ns)
        self._lingering.last_ns = now.mono_ns
        return True

    def _to_the_supply(self) -> None:
        """The lingering throttle is the supply's (under the lock): the supply dipped again,
        the throttle is gone within the hold, or the kiosk stops before it could tell."""
        run, self._lingering = self._lingering, None
        under = self._spells.get("under_voltage")
        if run is not None and under is not None:
            self._credit(under, run)

    def _last_ns(self, condition: str, spell: _Spell) -> int:
        """When ``spell`` was last seen (under the lock): an under-voltage's, its throttle
        included, lingering after the dip or not (the spell is not over while it is on)."""
        if condition != "under_voltage":
            return spell.last_seen_ns
        throttles = (spell.throttle, self._lingering)
        return max([spell.last_seen_ns] + [t.last_ns for t in throttles if t is not None])

    @staticmethod
    def _credit(under: _Spell, run: _Throttle) -> None:
        """The throttle ``run`` is ``under``'s: its first sighting kept, its last the latest."""
        if under.throttle is None:
            under.throttle = _Throttle(run.start, run.last_ns)
        under.throttle.last_ns = max(under.throttle.last_ns, run.last_ns)

    def _hot(self, reading: PiPowerReading) -> bool:
        """Whether ``reading`` says the SoC is hot: the soft temperature limit's bit (now or
        since the kernel's last poll) or its temperature at ``hot_c``."""
        word = None if reading.stale_word else reading.throttled
        soft = word is not None and bool((word | word >> OCCURRED_SHIFT) & 1 << _SOFT_LIMIT_BIT)
        return soft or self._too_hot(reading.soc_temp_c)

    def _too_hot(self, temp_c: float | None) -> bool:
        """Whether the SoC's temperature is at ``hot_c`` (None: not known, not hot)."""
        return temp_c is not None and temp_c >= self.hot_c

    def _started(
        self, condition: str, reading: PiPowerReading, start: ClockReading, facts: dict[str, Any]
    ) -> None:
        """A spell's journal line and start row (outside the lock); ``facts``: ``_facts``. The
        line says the spell's start (``_dated``: a throttled one's may be a read before this
        one, and NTP may have set the clock since); the row, as the clock said it, with
        ``clock`` (``_clock``) if NTP had not set it."""
        word = None if reading.throttled is None else f"{reading.throttled:#x}"
        now = ClockReading.take(self.clock)
        log.warning(
            "%s: %s from %s%s (throttle word %s, SoC %s); docs/operations.md, Power and heat",
            condition.replace("_", "-"),
            _what(condition, facts),
            format_ts(_dated(start, now)),
            "" if now.synced else _UNSET,
            word or "not available",
            "?" if reading.soc_temp_c is None else f"{reading.soc_temp_c:.1f} degC",
        )
        detail = {"from": format_ts(start.wall), "word": word, **facts, **self._clock(start)}
        self._write(f"{PI_POWER_ACTION}{condition}.start", detail)

    def _clock(self, start: ClockReading) -> dict[str, Any]:
        """What a spell's rows keep of a first reading stamped before NTP set the clock:
        ``clock``, its boot and monotonic time (``kiosk.queries.clock_of``), by which a reader
        dates it as that boot's events are (``power_spells``); nothing for one on a set
        clock."""
        found = clock_of(start, self.boot_id)
        return {} if found is None else {"clock": found}

    def _ended(self, condition: str, spell: _Spell, *, stopped: bool) -> None:
        """A spell's journal line and end row: it lasted until its problem was last seen
        (``_Spell.span``: an under-voltage's throttle lingering after its dip included). The
        row's ``from`` is its start row's (the spell it ends), ``dated_from`` its start dated
        by the clock NTP set since, if it was not set then."""
        since, until = spell.span(ClockReading.take(self.clock))
        seconds = (until - since).total_seconds()
        facts = _facts(condition, spell)
        log.info(
            "%s over: %s from %s to %s (%.0f s, back %d times within it)%s",
            condition.replace("_", "-"),
            _what(condition, facts),
            format_ts(since),
            format_ts(until),
            seconds,
            spell.flaps,
            " (the kiosk stopped)" if stopped else "",
        )
        dated = {} if since == spell.since else {"dated_from": format_ts(since)}
        detail = {
            "from": format_ts(spell.since),
            **dated,
            "to": format_ts(until),
            "seconds": round(seconds, 1),
            "flaps": spell.flaps,
            "stopped": stopped,
            **facts,
            **self._clock(spell.start),
        }
        self._write(f"{PI_POWER_ACTION}{condition}.end", detail)

    def _write(self, action: str, detail: dict[str, Any]) -> None:
        """The row now, after the ones held before it; held in turn if the storage refuses
        it (the store's own health names a failing card)."""
        if self.audit is None:
            return
        now = self.clock.now()
        self.held.flush(self.audit)
        if not len(self.held):
            with self._lock:
                self._in_write += 1  # ``unwritten`` while the storage does not answer
            try:
                self.audit.audit("daemon", action, detail)
                return
            except StoreFault as exc:
                log.warning("the Pi's power spell could not be recorded (%s): %s", action, exc)
            finally:
                with self._lock:
                    self._in_write -= 1
        self.held.hold("daemon", action, detail, now, essential=False)

    def _say_problem(self, reading: PiPowerReading) -> None:
        """One journal line when a problem appears or changes, one when it is gone; a file
        that keeps changing (garbled, flapping) at most ``FlapLimit``'s lines an hour, and
        after such an hour one saying how it reads now."""
        problem = "; ".join(reading.problems) or None
        if problem == self._problem:
            line = self._problem_lines.settled(_problem_text(problem))
        else:
            self._problem = problem
            line = self._problem_lines.change(_problem_text(problem))
        if line is not None:
            log.log(logging.INFO if problem is None else logging.WARNING, "%s", line)

    def close(self) -> None:
        """At the daemon's stop: each open spell ends at its last sighting, an under-voltage's
        throttle included (``stopped``).
        Blocking on the storage: a stop that gives up on one that does not answer says
        ``unwritten`` rows were not written."""
        with self._writing:
            with self._lock:
                self._to_the_supply()
                open_, self._spells = self._spells, {}
                self._closing = len(open_)
            for condition, spell in open_.items():
                with self._lock:
                    self._closing -= 1  # its row is ``_in_write`` or held from here
                self._ended(condition, spell, stopped=True)
            self.held.close(self.audit)  # one last try; what is left is said in the log

    def unwritten(self) -> int:
        """Its rows not in the log (yet): the end rows of the spells still open or being
        closed, a row being written, the rows held and those not kept (``held.dropped``)."""
        with self._lock:
            pending = len(self._spells) + self._closing + self._in_write
        return pending + self.held.unwritten() + self.held.dropped

    def active(self, condition: str) -> datetime | None:
        """Since when ``condition`` holds, while it was seen within ``ACTIVE_HOLD_S``."""
        with self._lock:
            spell = self._spells.get(condition)
            if spell is None or not self._recent(spell.last_seen_ns):
                return None
            return spell.began(ClockReading.take(self.clock))

    def _recent(self, mono_ns: int) -> bool:
        return self.clock.monotonic_ns() - mono_ns <= ACTIVE_HOLD_S * 1e9

    def _heat(self, spell: _Spell) -> bool:
        """Whether a reading in the throttled ``spell`` said heat within its ``coalesce_s``."""
        ns = spell.hot_ns
        return ns is not None and self.clock.monotonic_ns() - ns <= self.coalesce_s * 1e9

    def _slowed(self) -> tuple[datetime, str] | None:
        """Since when the SoC runs slowed, seen within ``ACTIVE_HOLD_S``, and why (health's
        ``throttled_cause``): a throttled spell's start, ``heat`` while a reading in it said so
        within its ``coalesce_s``, else what the last reading shows (heat, the under-voltage,
        or ``unknown``: bit 1 or 2 alone, a cool SoC: the firmware caps the ARM for a low
        supply as for heat, and its word named neither); else the throttle an under-voltage
        spell came with or that lingers after its dip, ``under_voltage`` (health's
        ``throttled`` says the firmware's throttle, whatever its cause)."""
        now = ClockReading.take(self.clock)
        with self._lock:
            spell = self._spells.get("throttled")
            if spell is not None and self._recent(spell.last_seen_ns):
                return spell.began(now), "heat" if self._heat(spell) else self._shown()
            spell = self._spells.get("under_voltage")
            throttles = (None if spell is None else spell.throttle, self._lingering)
            starts = [
                _dated(t.start, now) for t in throttles if t is not None and self._recent(t.last_ns)
            ]
            return (min(starts), "under_voltage") if starts else None

    def _shown(self) -> str:
        """The cause of a throttle the last reading shows (under the lock)."""
        reading = self.last
        if reading is not None and self._hot(reading):
            return "heat"
        return (
            "under_voltage" if reading is not None and reading.seen("under_voltage") else "unknown"
        )

    def status(self) -> dict[str, Any]:
        """Health's ``pi_power``: ``state`` (``unknown`` before the first read, ``absent``: not
        a Pi or not read, ``fault``: under-voltage, ``degraded``: throttled, hot or a problem,
        else ``ok``), what the last reading said, and the spells in force."""
        reading, read_at = self.last, self.read_at
        under, slowed = self.active("under_voltage"), self._slowed()
        throttled, cause = slowed or (None, None)
        word = None if reading is None else reading.throttled
        temp = None if reading is None else reading.soc_temp_c
        problems = list(reading.problems) if reading is not None else []
        if reading is not None and reading.stale_word:
            problems.append(STALE_WORD)
        return {
            "state": self._state(reading, under, throttled, problems),
            "available": None if reading is None else reading.available,
            "under_voltage": under is not None,
            "under_voltage_since": None if under is None else under.isoformat(),
            "throttled": throttled is not None,
            "throttled_since": None if throttled is None else throttled.isoformat(),
            "throttled_cause": cause,
            "flags": [] if word is None else list(flag_names(word)),
            "occurred": [] if word is None else list(flag_names(word, OCCURRED_SHIFT)),
            "throttled_word": None if word is None else f"{word:#x}",
            "under_voltage_alarm": None if reading is None else reading.lcrit_alarm,
            "soc_temp_c": temp,
            "hot": self._too_hot(temp),
            "problems": problems,
            "read_at": None if read_at is None else read_at.isoformat(),
        }

    def _state(
        self,
        reading: PiPowerReading | None,
        under: datetime | None,
        throttled: datetime | None,
        problems: list[str],
    ) -> str:
        if reading is None:
            return "absent" if self.source is None else "unknown"
        if not reading.available:
            return "absent"
        if under is not None:
            return "fault"
        hot = self._too_hot(reading.soc_temp_c)
        return "degraded" if throttled is not None or hot or problems else "ok"


def _problem_text(problem: str | None) -> str:
    if problem is None:
        return "the Pi's power and heat are read in full again"
    return f"the Pi's power and heat cannot be read in full: {problem}"


_WHAT = {
    "under_voltage": "the Pi's supply voltage is too low (a weak supply or a long, thin cable)",
    "heat": "the Pi runs slowed for heat (its SoC too hot)",
    "unknown": (
        "the Pi runs slowed (ARM frequency capped or throttled) with no under-voltage and no"
        " sign of heat: cause unknown (the firmware's word names none)"
    ),
}
#: Said after a spell's start in its journal line while NTP has not set the clock.
_UNSET = " (by a clock NTP has not set yet)"
#: Said of an under-voltage spell the firmware throttled in.
_SLOWED = ", and the firmware slowed the Pi for it"


def _cause(spell: _Spell) -> str:
    """A throttled spell's cause in its rows and lines: ``heat`` once a reading in it said
    so, else ``unknown``."""
    return "heat" if spell.hot_ns is not None else "unknown"


def _facts(condition: str, spell: _Spell) -> dict[str, Any]:
    """What a spell's rows say of its cause: an under-voltage's ``throttled`` (whether the
    firmware slowed the Pi for it), a throttled one's ``cause``."""
    if condition == "under_voltage":
        return {"throttled": spell.throttle is not None}
    return {"cause": _cause(spell)}


def _what(condition: str, facts: Mapping[str, Any]) -> str:
    """What a spell's journal lines say of it: heat only when a reading said it."""
    if condition == "under_voltage":
        return _WHAT[condition] + (_SLOWED if facts.get("throttled") else "")
    return _WHAT[str(facts.get("cause"))]


#: The problem health names for a throttle word no driver refreshes.
STALE_WORD = (
    "the kernel's rpi_volt driver (raspberrypi_hwmon) is not loaded: the throttle word is the"
    " firmware's answer at boot, not read as now"
)


#: How far before the day a spell's start row is looked for (a spell across midnight).
SPELL_LOOKBACK = timedelta(days=2)


def power_spells(db: Any, bounds: tuple[str, str]) -> list[dict[str, Any]]:
    """The spells of under-voltage and throttling that touch the day ``bounds`` (UTC, as
    ``kiosk.days.day_bounds``), from their audit rows (``PowerWatch``), oldest first: each
    ``condition``, ``from``, ``to`` (None: not over when the log was read), ``flaps``, whether
    the kiosk ``stopped`` in it and whether it ``died`` in it, ``dating`` (``_date_by_boot``)
    and ``length``, times aware UTC. A spell with no end row is over at the daemon's next
    start (``daemon.start``) or the condition's next start row, whichever comes first (the
    Pi died in it: a brown-out); its ``to`` is then the last sign of life before that
    (``_died``). A spell begun before NTP set the clock and ended after is dated as its end
    row says (``dated_from``: ``_Spell.span``); one begun so and not ended on a set clock
    (its rows' ``clock``) is dated by its boot (``_date_by_boot``). A ``to`` before its
    ``from`` (an end row of a version before 2026-12-06, the clock stepped back in the
    spell) is its ``from``. After retention purged a row's detail the rows' own times stand
    in (an end row is written ``COALESCE_S`` after the last sighting)."""
    if not db["audit"].exists():
        return []
    start, end = bounds
    spells: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for row in _spell_rows(db, start, end):
        condition, _, edge = row["action"].removeprefix(PI_POWER_ACTION).rpartition(".")
        detail = _detail(row["detail"])
        if row["action"] == _DAEMON_START:  # the daemon started again: it died in those open
            for spell in open_.values():
                _died(db, spell, row["ts"], row)
            open_.clear()
        elif edge == "start":
            if condition in open_:  # its start row written, the daemon's refused
                _died(db, open_.pop(condition), row["ts"], row)
            open_[condition] = _opened(condition, detail, row)
            spells.append(open_[condition])
        elif edge == "end":  # its own times: alone if its start row was never written
            spell = _ending(db, open_, condition, detail, row) or _unstarted(
                condition, detail, row, spells
            )
            _ended(spell, detail, row["ts"])
    for spell in spells:
        if spell["clock"] is not None and not spell.get("dated"):
            _date_by_boot(db, spell)
    day = (_aware(start), _aware(end))
    spells.sort(key=lambda spell: spell["at"])
    return [s for s in spells if _touches(s, day)]


def _touches(spell: Mapping[str, Any], day: tuple[datetime, datetime]) -> bool:
    """Whether ``spell`` touches ``day``: from its ``at`` to its ``to`` (None: not over), or,
    undated (``_date_by_boot``), at its ``at`` alone."""
    last = spell["to"] if spell["dating"] != "unsynced" else spell["at"]
    return bool(spell["at"] < day[1] and (last is None or last >= day[0]))


#: The daemon's start row (``kiosk.stats.DAEMON_START``, which imports this module).
_DAEMON_START = "daemon.start"
#: The actions ``power_spells`` reads: each spell's start and end, the daemon's start.
_SPELL_ACTIONS = [
    *(f"{PI_POWER_ACTION}{c}.{edge}" for c in CONDITIONS for edge in ("start", "end")),
    _DAEMON_START,
]
#: The rows of the spells around a day (``_spell_rows``): by their stamps (``audit_ts``), and
#: every row of a spell begun before NTP set the clock, which keep its ``clock``
#: (``audit_action``): its start row and its end row, stamped on whichever clock. A row whose
#: detail is not JSON (damaged: ``kiosk.unreadable.json_field``) keeps no ``clock``: read by its
#: stamp, never the day's report's ``malformed JSON``.
_SPELL_ROWS_SQL = f"""
SELECT seq, ts, action, detail, boot_id, mono_ns FROM audit
WHERE ts >= :since AND ts < :until AND +action IN (SELECT value FROM json_each(:actions))
UNION
SELECT seq, ts, action, detail, boot_id, mono_ns FROM audit
WHERE action IN (SELECT value FROM json_each(:actions))
    AND {json_field("detail", "$.clock")} IS NOT NULL
ORDER BY seq
"""  # noqa: S608 - module constants


def _spell_rows(db: Any, start: str, end: str) -> list[dict[str, Any]]:
    """The rows of the spells around the day ``[start, end)``: those stamped within
    ``SPELL_LOOKBACK`` of it, and all rows of the spells begun before NTP set the clock
    (1970, the saved time of the last shutdown: a stamp that says nothing of the day), which
    keep its ``clock`` (a row of an older version is read by its stamp, as before), whatever
    their stamps: such a spell's end row, on the set clock, ends it on every day's report,
    however long its boot ran on. In ``seq`` order. A spell of those that no row read ends
    is over with its boot (``_over_with_its_boot``)."""
    cursor = db.execute(
        _SPELL_ROWS_SQL,
        {
            "actions": json.dumps(_SPELL_ACTIONS),
            "since": _moved(start, -SPELL_LOOKBACK),
            "until": _moved(end, SPELL_LOOKBACK),
        },
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, found, strict=True)) for found in cursor.fetchall()]


def _opened(condition: str, detail: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The spell a start row opens: from its ``from`` (the row's stamp after retention), and
    its first reading's ``clock`` if NTP had not set the clock (``PowerWatch._clock``)."""
    when = _time_in(detail, "from") or _aware(str(row["ts"]))
    return {
        "condition": condition,
        "from": when,
        "to": None,
        "flaps": 0,
        "at": when,
        "dating": "clock",
        "length": None,
        "seq": row["seq"],
        "clock": _clock_in(detail),
    }


def _ended(spell: dict[str, Any], detail: Mapping[str, Any], ts: str) -> None:
    """``spell`` as its end row says: dated by ``dated_from`` if it began before NTP set the
    clock and ended after."""
    dated = _time_in(detail, "dated_from")
    spell["from"] = spell["at"] = dated or spell["from"]
    spell["to"] = max(spell["from"], _time_in(detail, "to") or _aware(ts))
    spell["length"] = spell["to"] - spell["from"]
    spell["dated"] = bool(dated) or spell.get("dated", False)
    spell["dating"] = "boot" if spell["dated"] else "clock"
    spell["flaps"] = int(detail.get("flaps") or 0)
    spell["stopped"] = bool(detail.get("stopped"))
    spell["clock"] = spell["clock"] or _clock_in(detail)


#: The bounds of a ``clock`` a boot could have written: its monotonic time within ten years of
#: the boot, its boot id no longer than this (the kernel's is 36 characters).
_MONO_NS_BELOW = 10 * 366 * 86400 * 10**9
_BOOT_ID_MAX = 64


def _clock_in(detail: Mapping[str, Any]) -> tuple[str, int] | None:
    """A row's ``clock``, ``[boot_id, mono_ns]`` (``PowerWatch._clock``), else None: also
    for one no boot could have written (``_MONO_NS_BELOW``, ``_BOOT_ID_MAX``: a restored or
    hand-edited row), which is read by its stamp as a row without it, never dated by it."""
    found = detail.get("clock")
    if not isinstance(found, list) or len(found) != 2:
        return None
    boot, mono = found
    if not isinstance(boot, str) or not isinstance(mono, int) or isinstance(mono, bool):
        return None
    if not 0 <= mono < _MONO_NS_BELOW or not 0 < len(boot) <= _BOOT_ID_MAX:
        return None
    return boot, mono


def _ending(
    db: Any,
    open_: dict[str, dict[str, Any]],
    condition: str,
    detail: Mapping[str, Any],
    row: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The open spell an end row ends; None if it ends another, later one (whose start row
    was refused), the open one then over where the Pi died in it."""
    spell = open_.pop(condition, None)
    since = _time_in(detail, "from")
    if spell is None or since is None or since <= spell["from"]:
        return spell
    _died(db, spell, str(detail["from"]), row)
    return None


def _died(db: Any, spell: dict[str, Any], before: str, closing: Mapping[str, Any]) -> None:
    """``spell``, which no end row ended, over at the daemon's last sign of life before the
    row ``closing`` (stamped ``before``, or at ``before`` itself). One begun on a set clock
    ends at ``_last_alive``; one begun before NTP set it (``clock``) lasted until its boot's
    last row before ``closing``, by that boot's monotonic clock (``_boot_alive_ns``): its
    stamps say nothing of the day, and the next boot's start would count the minutes the Pi
    was off."""
    spell["died"] = True
    if spell["clock"] is None:
        spell["to"] = _last_alive(db, spell["from"], before)
        spell["length"] = spell["to"] - spell["from"]
        return
    boot, mono = spell["clock"]
    last = _boot_alive_ns(db, boot, spell["seq"], closing)
    spell["length"] = timedelta(microseconds=max(0, max(last, mono) - mono) // 1000)
    spell["to"] = spell["from"] + spell["length"]


def _last_alive(db: Any, since: datetime, before: str) -> datetime:
    """The Pi's last sign of life from ``since`` to ``before`` (a row's stamp): the last audit
    row or event written meanwhile, ``since`` itself without one. The Pi died in between; a
    spell it never ended lasted at most that long on record (the daemon's next start would
    count the minutes it was off, which the report's ``restarts`` count already)."""
    latest = format_ts(since)
    for table in ("audit", "events"):
        if db[table].exists():
            found = db.execute(
                f"select max(ts) from {table} where ts > ? and ts < ?",  # noqa: S608 - constants
                [latest, before],
            ).fetchone()[0]
            latest = max(latest, str(found or latest))
    return _aware(latest)


#: ``_boot_alive_ns``'s reads, each a probe however long the log: the boot's last audit row
#: before ``:bound`` (its rows run unbroken to there: ``_boot_end``); its last event stamped
#: unsynchronised (the partial index ``events_unsynced``); its last event from its first on a
#: set clock (``:synced``, ``boot_clock``) to the next boot's first (``:events_end``).
#: ``:below``: the closing row's monotonic time if of the same boot (the daemon restarted in
#: it).
_ALIVE_SQL = (
    "SELECT mono_ns FROM audit WHERE seq > :after AND seq < :bound AND boot_id = :boot"
    " ORDER BY seq DESC LIMIT 1",
    "SELECT max(mono_ns) FROM events"
    " WHERE boot_id = :boot AND clock_synced = 0 AND mono_ns < :below",
    "SELECT mono_ns FROM events WHERE seq >= :synced AND seq < :events_end AND boot_id = :boot"
    " AND mono_ns < :below ORDER BY seq DESC LIMIT 1",
)


def _boot_alive_ns(db: Any, boot: str, after: int, closing: Mapping[str, Any]) -> int:
    """The monotonic time of ``boot``'s last row (audit rows between ``after`` and the row
    ``closing``, events), 0 without one."""
    below = closing["mono_ns"] if closing["boot_id"] == boot else _NO_END
    synced = _first_synced_event(db, boot)
    params = {
        "boot": boot,
        "after": after,
        "bound": min(closing["seq"], _boot_end(db, boot, after)),
        "below": below,
        "synced": _NO_END if synced is None else synced,
        "events_end": _NO_END if synced is None else _run_end(db, "events", boot, synced),
    }
    found = [0]
    for sql in _ALIVE_SQL:
        row = db.execute(sql, params).fetchone()
        found.append(int(row[0] or 0) if row is not None else 0)
    return max(found)


def _first_synced_event(db: Any, boot: str) -> int | None:
    """The ``seq`` of ``boot``'s first event on a set clock (``boot_clock``), else None."""
    try:
        row = db.execute("SELECT seq FROM boot_clock WHERE boot_id = ?", [boot]).fetchone()
    except sqlite3.OperationalError:  # a log of a version before the boots' offsets
        return None
    return None if row is None else int(row[0])


_NO_END = 2**62


def _date_by_boot(db: Any, spell: dict[str, Any]) -> None:
    """A spell begun before NTP set the clock, not dated by its end row: its start dated as
    ``kiosk.dating`` dates that boot's events, by the boot's offset (``_boot_offset``) and
    its first reading's monotonic time, ``dating`` ``boot``, and ``to`` its ``length`` on;
    a boot never dated, ``dating`` ``unsynced``: ``from`` and ``to`` unknown (None), its
    ``length`` (by the boot's monotonic clock) all that is known, listed at the start of
    the boot after it (``at``: it was over by then) if that boot was dated, else at its
    stamp, as its boot's events are counted."""
    boot, mono = spell["clock"]
    if spell["length"] is None:
        _over_with_its_boot(db, spell)
    offset = _boot_offset(db, boot, spell["seq"])
    length = spell["length"]
    if offset is None:
        spell["at"] = _next_boot_start(db, boot, spell["seq"]) or spell["from"]
        spell["from"] = spell["to"] = None
        spell["dating"] = "unsynced"
        return
    spell["from"] = spell["at"] = _aware(offset_time(offset, mono))
    spell["to"] = None if length is None else spell["from"] + length
    spell["dating"] = "boot"


def _over_with_its_boot(db: Any, spell: dict[str, Any]) -> None:
    """``spell`` (its rows' ``clock``), neither ended nor over at a later start among the
    rows read (its boot's next rows outside the day's look-back, for the day's dating of
    them could not be known), over where the Pi died in it if another boot followed its
    boot (``_died``); its boot's own if none did (not over)."""
    boot, _ = spell["clock"]
    found = db.execute(
        "SELECT seq, ts, boot_id, mono_ns FROM audit WHERE seq = ?",
        [_boot_end(db, boot, spell["seq"])],
    ).fetchone()
    if found is not None:
        closing = dict(zip(("seq", "ts", "boot_id", "mono_ns"), found, strict=True))
        _died(db, spell, str(closing["ts"]), closing)


def _boot_offset(db: Any, boot: str, after: int) -> int | None:
    """``boot``'s offset (``kiosk.dating``: wall less monotonic milliseconds): that of its
    first event on a set clock (``boot_clock``), else of its first audit row on a set clock
    after the row ``after`` (a Pi that decided no passage after NTP answered); None if it
    has neither."""
    found = boot_offsets(db, [boot]).get(boot)
    if found is not None:
        return found
    row = db.execute(
        "SELECT ts, mono_ns FROM audit WHERE seq > ? AND seq < ? AND boot_id = ?"
        " AND clock_synced = 1 ORDER BY seq LIMIT 1",
        [after, _boot_end(db, boot, after), boot],
    ).fetchone()
    if row is None:
        return None
    return int(_aware(str(row[0])).timestamp() * 1000) - int(row[1]) // 1_000_000


def _boot_end(db: Any, boot: str, after: int) -> int:
    """The ``seq`` of the first audit row after ``after`` of a boot other than ``boot``."""
    return _run_end(db, "audit", boot, after)


def _run_end(db: Any, table: str, boot: str, after: int) -> int:
    """Where ``boot``'s rows of ``table`` from ``after`` end (``kiosk.dating.run_end``: one
    probe, an ended boot's end written once), ``_NO_END`` if they go on."""
    found = run_end(db, table, boot, after)
    return _NO_END if found is None else found


def _next_boot_start(db: Any, boot: str, after: int) -> datetime | None:
    """When the boot after ``boot`` (that of the first audit row after ``after`` not of it)
    began, if it was dated: ``boot`` was over by then."""
    nxt = _boot_end(db, boot, after)
    row = db.execute("SELECT boot_id FROM audit WHERE seq = ?", [nxt]).fetchone()
    offset = None if row is None else _boot_offset(db, str(row[0]), nxt - 1)
    return None if offset is None else _aware(offset_time(offset, 0))


def _unstarted(
    condition: str, detail: Mapping[str, Any], row: Mapping[str, Any], spells: list[dict[str, Any]]
) -> dict[str, Any]:
    """The spell of an end row without its start row (the storage refused that one): from
    the end row's ``from`` (its ``to`` after retention purged it)."""
    ts = str(row["ts"])
    spells.append(_opened(condition, {"from": detail.get("from") or detail.get("to") or ts}, row))
    return spells[-1]


def _moved(bound: str, by: timedelta) -> str:
    """``bound`` moved ``by``, as the audit table's stamps sort; the calendar's own end where
    that is past it (a report of its first or last day)."""
    try:
        return format_ts(_aware(bound) + by)
    except OverflowError:
        return bound


def _aware(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _time_in(detail: Mapping[str, Any], key: str) -> datetime | None:
    """A row's ``from``/``to``/``dated_from`` as a time; None where it is absent or no time
    (a restored or hand-edited row: read as absent, never a report that fails)."""
    found = detail.get(key)
    if not isinstance(found, str) or not found:
        return None
    try:
        return _aware(found)
    except ValueError:
        return None


def _detail(raw: object) -> dict[str, Any]:
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
