"""The checkpoint engine: one passage at a time, from a code and a temperature to a gate command.

A pure, synchronous state machine. It never sleeps, never reads the time except through the
injected ``Clock`` and never touches a device: it is driven by inputs (``on_code``,
``on_reading``, ``on_sensor_fault``, ``on_reader_fault``/``on_reader_ok``, ``tick``,
``manual``, and the answers to its own requests ``on_crossed``/``on_late_commit``,
``on_gate_locked``) and it acts only through its ``EnginePorts``: ``cross(crossing)``,
``lock_gate()`` and ``publish(message)``. The asyncio runner (``kiosk.runner``) and the
virtual-time replay (``checkpoint.virtual``) both drive this same class, so what replay proves
is what the gate does.

Passage states (published as ``{"type": "state", ...}`` with a ``prompt`` for the screen)::

    idle ─ code ──► code_read ─ presence ──► measuring ─┐   (code_first)
    idle ─ presence ───────────────────────► measuring ─┤   (temperature_first)
                               measuring ─ temperature ─┴► awaiting_code ─ code ─┐
                                                   └─────────────────────────────┴► deciding
    deciding ─ crossed ─► decided (deny) / gate_open (pass) ─ pulse ─► decided ─ hold ─► idle

One decision crosses to the world once (``kiosk.crossing``): the engine hands over a
``Crossing`` (the event draft and when the gate opens for it); the runner commits the draft,
then opens the gate if the crossing says so, and answers once with an ``Outcome``; only then
does the engine publish the decision. A pass that cannot be recorded does not open the gate
(``policy.on_store_fault`` decides what is recorded instead), and a screen never shows a
decision that the log does not have. Locking the gate at the end of its pulse (and probing a
failed relay) is the engine's own timed request, ``lock_gate``.

Safety rules the engine enforces on top of the policy:

* a measurement that says *implausible* is repeated once automatically, and a fever is
  measured once more before it becomes a deny (``remeasure_on_fever``): a cold wrist or a
  warm hand is common, a false fever alarm at a gate is expensive. A normal re-measure far
  below the fever (``thermometry.fever_stands``) is not the forehead that read it (someone
  took its place with no gap): the fever stands and the guard measures by hand;
* any device fault puts the kiosk into a visible degraded mode with a guard alarm; the policy
  turns the fault into a deny (``on_*_fault``: ``deny`` or ``manual`` = deny and call the
  guard). Faults clear by themselves when the device delivers again;
* a gate that fails to *lock* is retried on every tick until it does.

Ports must not block. They may call back into the engine synchronously (replay does): inputs
that arrive while the engine is handling another one are queued and handled in order.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Unpack
from zoneinfo import ZoneInfo

from kiosk import evacuation, policy, record, thermometry
from kiosk.calibration import Calibration, FixedCalibration
from kiosk.clock import Clock, ClockReading, earliest
from kiosk.config import KioskConfig
from kiosk.crossing import Crossing, Outcome
from kiosk.devices import CodeRead, DeviceFault, GateHeldShut, ThermoReading
from kiosk.history import QUOTA_EXEMPT, ROLE_FLAG, counted_outing
from kiosk.links import NOT_OPENED, RETRIES, SAME_AS, measure_again
from kiosk.links import not_opened as names_not_opened
from kiosk.logs import FlapLimit
from kiosk.overrides import Overrides, Release
from kiosk.ports import CalibrationSource, EngineSeams
from kiosk.privacy import CODE_KEYS, greeting_name
from kiosk.store import (
    AlreadyRecorded,
    AuditRow,
    Event,
    EventDraft,
    Unless,
    check_audit_row,
    check_unless,
)
from kiosk.typed import typed

log = logging.getLogger(__name__)

#: A reading this far below the warmest one of the person in view: their forehead is leaving
#: the view (leaving drops it by ~9 degC within 0.2 s; a sway or a small step back by under
#: 1.5 degC). See ``Engine._left``.
LEFT_DROP_C = 2.0
#: A reading this far above the temperature taken, for ``left_after_s``, while it waits for
#: its code: someone warmer stands there now (a swap with no gap for ``_left`` to see; a sway
#: stays within ~0.4 degC of the plateau), or the early estimate read low. Either way the
#: temperature is taken again. See ``Engine._warmer``.
WARMER_RISE_C = 0.6
#: A normal temperature this far (object) below the warmest reading of a forehead that left the
#: view (a ``LEFT_DROP_C`` fall) and was back within ``left_after_s`` is not that forehead's:
#: someone cooler took its place, or the view is partly lost (the "fell" doubt of one
#: measurement, ``thermometry._FELL_C``, across the return). See ``Engine._returned_cooler``.
RETURNED_COOLER_C = 0.2

Direction = Literal["in", "out"]
State = Literal[
    "idle", "code_read", "measuring", "awaiting_code", "deciding", "decided", "gate_open"
]
ManualDecision = Literal["manual_pass", "manual_deny"]
ManualKind = Literal["manual", "registration", "vehicle"]

#: Screen prompts: keys the kiosk screen translates (zh-CN / en). Never personal data.
PROMPTS: dict[str, str] = {
    "show_pass": "Show your pass QR code",
    "step_up": "Hold your wrist to the thermometer",
    "measure_wrist": "Code read. Hold your wrist to the thermometer",
    "measuring": "Measuring, hold still",
    "measure_again": "Once more: hold your wrist to the thermometer",
    "show_pass_now": "Now show your pass QR code",
    "checking": "Checking",
    "pass": "Please pass",
    "deny": "Access denied",
    "see_guard": "Access denied: please see the guard",
    "out_of_order": "Out of order: please see the guard",
    "stopping": "The checkpoint is stopping: please see the guard",
}

#: Fault keys in ``Engine.faults`` and the alarms raised for them.
DEVICE_ALARMS = {
    "thermometer": "sensor_fault",
    # Not a device failing: the air at the thermometer outside the calibration's trusted range,
    # the gate's standing state while every visitor is checked by hand (``_watch_air``).
    "air": "air_out_of_range",
    "reader": "reader_fault",
    "gate": "gate_fault",
    "store": "store_fault",
}

PASS_DECISIONS = frozenset({"pass", "manual_pass"})
#: The audit action and alarm of a guard's pass held for the log (a store fault) that is not
#: written: the log found another tablet's record of it (``Engine._drop_held``).
HELD_DROPPED = "held_pass_dropped"
#: The audit action and alarm of a commit that missed its deadline and landed after all
#: (``Engine._on_late_commit``): written once, or a pass the screen had denied.
LATE_COMMIT = "store_late_commit"
#: Reader types whose codes come in frames (one stamp for all the codes of a frame).
CAMERA_READERS = frozenset({"camera", "picamera", "fake_camera"})
#: The air outside the calibration's trusted range this long raises the gate's standing
#: ``air`` state; back inside it this long clears it (the noon sun is not spring).
AIR_OUT_AFTER_S = 10.0
AIR_BACK_AFTER_S = 60.0

#: How many measure-again denies the engine keeps for their passes' next attempt (those of
#: the last ``engine.retry_window_s``, at most this many): memory stays bounded.
ATTEMPTS_KEPT = 256


@dataclass(frozen=True)
class _Attempt:
    """A committed kiosk deny that only asked its person to measure again (``kiosk.links``):
    the pass's next attempt the same way within ``retry_window_s`` tries it again."""

    seq: int
    direction: str
    mono_ns: int


class TemperatureImplausible(ValueError):
    """A hand-measured temperature outside the plausible body range (a typo, or the wrong
    scale): nothing is recorded."""

    def __init__(self, temp_c: object, low_c: float, high_c: float) -> None:
        super().__init__(f"temp_c: a body temperature from {low_c:g} to {high_c:g} °C is required")
        self.temp_c = temp_c
        self.low_c = low_c
        self.high_c = high_c


class Stopping(Exception):  # noqa: N818 - a refusal, as FeverRefused
    """A guard's decision refused because the checkpoint's stop has begun (``begin_stop``):
    nothing is decided any more, the gate is locked for good; the console answers 503."""

    def __init__(self) -> None:
        super().__init__("the checkpoint is stopping: nothing is decided any more")


class FeverRefused(ValueError):
    """A registration, or a person without a pass, as a pass whose hand-measured temperature
    is a fever: the same threshold the kiosk applies. The guard re-measures first, or records
    a deny."""

    def __init__(self, temp_c: float, threshold_c: float) -> None:
        super().__init__(
            f"temp_c: {temp_c:.1f} °C is at or above the fever threshold {threshold_c:.1f} °C;"
            " re-measure, or register a deny"
        )
        self.temp_c = temp_c
        self.threshold_c = threshold_c


class QuotaReached(Exception):  # noqa: N818 - a refusal, as Stopping
    """A guard's pass out for a member of ``household`` that its console found the household's
    outing quota not reached for, and so asked no confirmation (``Engine.manual``'s
    ``quota_checked``), the quota reached by the time the engine takes it up: another
    tablet's outing of the household, looked at in the same moment, was recorded first.
    Nothing is recorded; the guard is asked to confirm the quota, as the console asks."""

    def __init__(self, household: str) -> None:
        super().__init__("the household's outing quota was reached since the console looked")
        self.household = household


class EnginePorts(Protocol):
    """What the engine asks of the outside world. Calls must return at once."""

    def cross(self, crossing: Crossing) -> None:
        """Commit ``crossing.draft``, then command the gate open if ``crossing.opens_gate``
        says so for that commit; answer once with ``Engine.on_crossed`` (``kiosk.crossing``)."""

    def lock_gate(self) -> None:
        """Command the relay locked; answer with ``Engine.on_gate_locked``."""

    def publish(self, message: dict[str, Any]) -> None:
        """Hand a state/decision/alarm/health message to the screens (never blocks)."""

    def audit(self, action: str, detail: Mapping[str, Any]) -> None:
        """Write an audit row of the kiosk's own (actor ``kiosk``), never blocking; one the
        log cannot take is said in the journal."""


@dataclass
class Passage:
    """One person (or one guard action) from first input to its committed event."""

    id: int
    started_ns: int
    direction: Direction
    kind: str = "passage"
    code: CodeRead | None = None
    temperature: thermometry.Temperature | None = None
    measurement: thermometry.Measurement | None = None
    remeasured: set[str] = field(default_factory=set)
    presence_seen: bool = False
    awaiting_code_since_ns: int | None = None
    #: Since when nobody is at the thermometer, once this passage saw its person (None: in view).
    away_since_ns: int | None = None
    #: The warmest object reading of the person this passage saw (see ``Engine._left``).
    peak_object_c: float = -math.inf
    #: The warmest reading of a forehead seen leaving the view (a ``LEFT_DROP_C`` fall) while
    #: this passage measured; someone back within ``left_after_s`` is measured against it.
    left_view_peak_c: float = -math.inf
    #: Since when the reading stands ``WARMER_RISE_C`` above the temperature taken (None: not).
    warmer_since_ns: int | None = None
    #: The fever being re-measured, while its person stays (see ``Engine._on_temperature``).
    fever: thermometry.Temperature | None = None
    decision: policy.Decision | None = None  # None for manual actions
    draft: EventDraft | None = None
    event: Event | None = None
    decided_ns: int | None = None
    #: The clock as the decision was taken: the event's ts, mono_ns and clock_synced, however
    #: late the store takes it (``EventDraft.decided``).
    decided_at: ClockReading | None = None
    #: A guard's action: told what became of its event's crossing once the commit is over.
    on_recorded: Callable[[Outcome], None] | None = None
    #: A guard's decision about a passage: its hold, let go as its record is (``_settle_hold``).
    release: Release | None = None
    reader_fault: bool = False
    #: Started by another code than the one decided while the person now in view was there
    #: (``Engine._lingering``): nobody is measured for it; their leaving ends it.
    behind: bool = False
    #: Started by its code (not by someone stepping up to a temperature-first kiosk).
    by_code: bool = False

    @property
    def seq(self) -> int | None:
        """The committed event's ``seq`` (None until committed, or never if it failed)."""
        return self.event.seq if self.event is not None else None


@dataclass(frozen=True)
class ManualSubject:
    """Whom a guard's manual decision is about, as the guard chose it on the console: a
    passage already in the log (its event ``seq``; the decision copies its pass, household,
    holder and kiosk reading). ``flags``: the passage's; only ``quota_exempt`` and the pass's
    role carry over (``_kept``). ``direction``: the passage's, the way the console records the
    decision unless the guard chose another (``Engine.manual``'s ``direction`` is what is
    recorded)."""

    seq: int
    pass_id: str | None = None
    household: str | None = None
    holder: str | None = None
    temp_c: float | None = None
    temp_object_c: float | None = None
    temp_ambient_c: float | None = None
    flags: tuple[str, ...] = ()
    direction: str | None = None

    @classmethod
    def of_event(cls, event: Mapping[str, Any]) -> ManualSubject:
        """The passage an event of the log records (``EventLog``'s row), as a subject."""
        return cls(
            seq=int(event["seq"]),
            pass_id=event.get("pass_id"),
            household=event.get("household"),
            holder=event.get("holder"),
            temp_c=event.get("temp_c"),
            temp_object_c=event.get("temp_object_c"),
            temp_ambient_c=event.get("temp_ambient_c"),
            flags=tuple(event.get("flags") or ()),
            direction=event.get("direction"),
        )


#: The flags of a passage that a guard's decision about it keeps: what the pass is, not what
#: the kiosk found. A carer's or a delivery's exit (``quota_exempt``: a role the quota does not
#: count) let through by the guard is no more the household's outing than one the kiosk passed;
#: and its role (``role:<role>``), by which a quota judged later counts it.
_KEPT_FLAGS = (QUOTA_EXEMPT,)


def _kept(flag: str) -> bool:
    return flag in _KEPT_FLAGS or flag.startswith(ROLE_FLAG)


#: ``subject`` of ``Engine.manual``: the guard chose nobody in the log (a person without a
#: pass), or left it to the engine (the kiosk's deny being shown, if any).
NO_SUBJECT: Literal["none"] = "none"
AUTO_SUBJECT: Literal["auto"] = "auto"


@dataclass(frozen=True)
class _Manual:
    decision: ManualDecision
    operator: str
    reason: str
    direction: Direction
    person: Mapping[str, Any] | None
    kind: str
    temp_c: float | None = None
    subject: ManualSubject | Literal["none", "auto"] = "auto"
    flags: tuple[str, ...] = ()
    audit: AuditRow | None = None
    on_recorded: Callable[[ManualAnswer], None] | None = None
    #: An evacuation's ``(cause, minutes)``: the gate held open from this record on.
    evacuation: tuple[str, int] | None = None
    #: What the guard's page showed under way (``evacuation.version_of``) as it confirmed an
    #: evacuation's start: started only over that (``Engine._moved``). None: not checked.
    seen: str | None = None
    #: The hold on its passage (``Overrides.take``), if it is about one.
    release: Release | None = None
    #: The household the person is a resident of (a registration "a resident of this
    #: dwelling", no pass with them): the event's, so the outing counts against its quota.
    household: str | None = None
    #: The condition its record is written on (``EventDraft.unless``).
    unless: Unless | None = None
    #: Its console found the household's outing quota not reached (and asked no
    #: confirmation): looked at again as the engine starts it (``Engine._quota_reached``).
    quota_checked: bool = False


def _check_manual_words(kind: str, operator: object, reason: object, person: object) -> None:
    """``ValueError`` unless a guard's action names its guard and reason (bounded), and a
    registration its person."""
    if not isinstance(operator, str) or not operator.strip() or len(operator) > 64:
        raise ValueError("operator: the guard's name (1 to 64 characters) is required")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ValueError("reason: required, at most 500 characters")
    if person is not None and not isinstance(person, Mapping):
        raise ValueError("person must be an object")
    if kind in ("registration", "vehicle") and not person:
        raise ValueError(f"a {kind} needs the person's details")


#: What a guard's action is answered with (``Engine.manual``'s ``on_recorded``): its outcome,
#: or why it was never started.
ManualAnswer = Outcome | Stopping | evacuation.Moved | QuotaReached


#: The flag of a guard's record for a person without a pass whose dwelling the guard
#: confirmed though it matches none the gate knows (``kiosk.dwellings``): never checked.
UNKNOWN_DWELLING = "unknown_dwelling"
#: Flags a guard's record may carry (``Engine.manual``): what the guard was warned of, as an
#: automatic decision would carry it.
MANUAL_FLAGS = frozenset({"quarantine", "observation", UNKNOWN_DWELLING})

#: The flag of a guard's pass for a person without a pass (nobody in the log, or a passage
#: naming no household) for whom the guard names no household either: nothing (quarantine,
#: the outing quota, observation) could be checked for it (``Engine.manual``).
UNCHECKED = "unchecked"


#: Keys of a guard's ``person`` typed as codes or names: kept in their plain spelling
#: (``kiosk.typed.typed``: a unit typed ``１-１０１`` is ``1-101``, a plate ``京Ａ１２３４５``
#: ``京A12345``), as the lists and the ledgers keep them.
TYPED_PERSON_KEYS = frozenset({*CODE_KEYS, "name", "phone", "id_number", "driver"})


def _manual_flags(
    flags: Iterable[str], evacuate: tuple[object, object] | None, what: tuple[str, str, object]
) -> tuple[tuple[str, ...], tuple[str, int] | None]:
    """A guard's record's flags, and its evacuation's ``(cause, minutes)`` if it is one
    (``what``: its decision, kind and subject); ``ValueError`` for what it may not carry."""
    subject = what[2]
    if not (isinstance(subject, ManualSubject) or subject in (NO_SUBJECT, AUTO_SUBJECT)):
        raise ValueError("subject must be a ManualSubject, 'none' or 'auto'")
    checked = tuple(dict.fromkeys(flags))
    if isinstance(flags, str) or not set(checked) <= MANUAL_FLAGS:
        raise ValueError(f"flags: only {', '.join(sorted(MANUAL_FLAGS))}")
    if evacuate is None:
        return checked, None
    held = evacuation.checked(*evacuate)
    if what != ("manual_pass", "manual", NO_SUBJECT):
        raise ValueError("an evacuation is a manual pass about nobody in the log")
    return (evacuation.FLAG,), held


def _typed_person(person: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``person`` with its text fields (``TYPED_PERSON_KEYS``) as text in their plain
    spelling, one rule for every entry point: a whole number (a replay scenario's
    ``phone = 13900139000`` in TOML, an API body's number) is its digits, kept as text, not a
    JSON number; a field left empty (None) stays so. ``ValueError`` for any other value
    there (true, 1.5, a list). The other fields (``occupants``) are kept as given."""
    if person is None:
        return None
    return {k: _person_text(k, v) if k in TYPED_PERSON_KEYS else v for k, v in person.items()}


def _person_text(key: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return None if value is None else typed(value)
    if type(value) is int:
        return str(value)
    raise ValueError(f"person.{key}: text expected, not {type(value).__name__}")


def unknown_person(subject: object) -> bool:
    """Whether a guard's decision is about a person whose household nothing in the log
    names: nobody in it (``subject`` ``"none"``), or a passage naming nobody, neither a
    household nor its holder (a pass missing or unread: ``no_pass``, ``reader_fault``; or
    the card of a forgotten resident, whose deny keeps its pass id alone; any other pass
    names its household)."""
    if isinstance(subject, ManualSubject):
        return not (subject.household or subject.holder)
    return subject == NO_SUBJECT


def _resident_household(kind: str, household: object, subject: object, evacuate: object) -> str:
    """A resident's household as the event keeps it: a registration's dwelling, or the one a
    guard names for a person without a pass (``subject`` ``"none"``, or a passage naming no
    household; no evacuation); ``ValueError`` for any other decision, or anything but 1 to 40
    characters of text."""
    nobody = kind == "manual" and unknown_person(subject) and evacuate is None
    if kind != "registration" and not nobody:
        raise ValueError(
            "household: only a registration or a person without a pass names a household"
        )
    if not isinstance(household, str) or not typed(household).strip():
        raise ValueError("household: required")
    if len(typed(household).strip()) > 40:
        raise ValueError("household: at most 40 characters")
    return typed(household).strip()


def _direction(value: object) -> Direction:
    """``value`` as a direction; ``ValueError`` for anything but ``"in"`` or ``"out"``."""
    if value == "in":
        return "in"
    if value == "out":
        return "out"
    raise ValueError("direction must be 'in' or 'out'")


def _decision_fields(draft: EventDraft, event: Event | None) -> dict[str, Any]:
    """The decision message's event fields (``record.DECISION_FIELDS``): what the engine
    decided from the draft, the log's stamp (seq, id, ts) from the committed event (None when
    it could not be committed)."""
    drafted = draft.values()
    return {
        name: drafted[name] if name in drafted else getattr(event, name, None)
        for name in record.DECISION_FIELDS
    }


def _unlogged_whom(draft: EventDraft) -> dict[str, Any]:
    """What a passage's alarm the log did not take (``seq`` None) says of its passage, that
    the log cannot tell the alarm desk yet: whom (``holder``, ``household``, ``pass_id``: for
    the guard's console alone, which masks them as it masks the log's), the reading
    (``temp_c``) and the stamp its row will carry once the backlog writes it (``at_ns``: the
    decision's monotonic time, the row's ``mono_ns``), by which the desk takes that row into
    the card (``kiosk.alarms``)."""
    whom: dict[str, Any] = {
        "holder": draft.holder,
        "household": draft.household,
        "pass_id": draft.pass_id,
        "temp_c": draft.temp_c,
    }
    if draft.decided is not None:
        whom["at_ns"] = draft.decided.mono_ns
    return whom


def holder_initial(holder: str | None) -> str | None:
    """What the unattended screen may show of a name: its first character and a dot."""
    if not holder:
        return None
    return holder.strip()[:1] + "." if holder.strip() else None


class Engine:
    """The per-passage state machine. Not thread-safe: one driver (runner or replay) owns it.

    Its seams (``kiosk.ports.EngineSeams``, by keyword): ``trust`` verifies passes
    (``TrustList``); ``lists`` gives the current lists snapshot, read at each decision so list
    changes apply between passages (``ListStore``); ``history`` is updated after each committed
    event (``PassageHistory``); ``calibration`` is read at each new measurement
    (``CalibrationStore``; default: the built-in model, ``FixedCalibration()``);
    ``observation`` gives who is under observation now, read at each decision
    (``ObservationLedger``; none: nobody is).
    """

    def __init__(
        self, config: KioskConfig, clock: Clock, ports: EnginePorts, **seams: Unpack[EngineSeams]
    ) -> None:
        self.config = config
        self.clock = clock
        self.ports = ports
        self.trust = seams["trust"]
        self.lists = seams["lists"]
        self.history = seams["history"]
        self.observation = seams.get("observation")
        calibration = seams.get("calibration")
        self.calibration: CalibrationSource = (
            calibration if calibration is not None else FixedCalibration()
        )
        self._eng = config.engine
        self._thermo_cfg = config.thermometer.thermometry
        self._init_watch()
        self._tz = ZoneInfo(config.site.timezone)

        self.state: State = "idle"
        self.passage: Passage | None = None
        self.faults: dict[str, str] = {}
        #: When each fault of ``faults`` was raised (this boot's monotonic clock, the stamp
        #: its raise's bus message carries): one raised again after it cleared has a new
        #: stamp, however soon (the health report's ``fault_since``, ``fault_raised_ns``).
        self.fault_began: dict[str, int] = {}
        #: Per device, which of its faults and recoveries reach the log (a flapping sensor
        #: would write two lines a turn for weeks).
        self._fault_lines: dict[str, FlapLimit] = {}
        self.reader_faults: dict[str, str] = {}
        self.prompt = self._idle_prompt()
        self.backlog: deque[EventDraft] = deque()
        self.dropped_backlog = 0
        self.direction: Direction = self._default_direction()
        # When a screen button chose ``direction`` for the next passage (None: not chosen).
        self._direction_chosen_ns: int | None = None
        self.ignored_codes = 0

        self._ids = itertools.count(1)
        # Crossings awaiting their outcome: a passage's, or a held-back draft's (backlog).
        self._crossings: dict[Crossing, Passage | EventDraft] = {}
        # Passages decided while records were held, not crossed yet (``_drain_after_held``).
        self._after_held: deque[Passage] = deque()
        # Crossings answered as pending store faults (a missed deadline; the commit may still
        # land): the draft each left in the backlog. Emptied as their ends are answered.
        self._late: dict[Crossing, EventDraft] = {}
        self._inbox: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._busy = False
        self._manual_queue: deque[_Manual] = deque()
        #: Guards' decisions about a passage taken and not yet answered for by the log.
        self.overrides = Overrides()
        # The holds of those whose record waits in the backlog, by the draft's id.
        self._draft_holds: dict[int, tuple[EventDraft, Release]] = {}
        self.stopping = False  # the stop has begun (``begin_stop``): nothing is decided
        # A code shown while busy: (read, direction, when it was kept), started when free.
        self._pending_code: tuple[CodeRead, Direction | None, int] | None = None
        self._presence_armed = True
        # The (source, stamp) of a camera frame that held two codes: none of its codes is taken.
        self._refused_frame: tuple[str, int] | None = None
        self._camera_sources = frozenset(
            s.name for s in config.readers.sources if s.type in CAMERA_READERS
        )
        self._gate_open = False
        # The relay obeyed an open command and no lock has been confirmed since: the gate is
        # open whatever a later command failing says.
        self._relay_opened = False
        self._gate_close_at_ns: int | None = None
        #: The evacuation under way (``kiosk.evacuation``): the gate held open until it ends.
        self.evacuation: evacuation.Evacuation | None = None
        #: The last guard's end of an evacuation (``claim_end``): its row being written, or
        #: done; a second end of the same one is refused, naming its guard.
        self.ending: evacuation.Ending | None = None
        self._gate_close_pending = False
        self._gate_probe_ns = 0
        self._hold_until_ns: int | None = None
        self._backlog_retry_ns = 0
        self._backlog_inflight = False
        self.decisions = 0
        # pass_id -> its last measure-again deny (``_note_attempt``), oldest first.
        self._attempts: dict[str, _Attempt] = {}

    def _init_watch(self) -> None:
        """What the thermometer's readings are followed by, across passages."""
        #: The sensor die's drift over the latest minute (every reading, idle or not).
        self._die = thermometry.DieTrend()
        #: Since when the air has read outside the calibration's range, and back inside it
        #: (monotonic); whether the standing alarm's words were made on a clock not set.
        self._air_out_since: int | None = None
        self._air_in_since_ns: int | None = None
        self._air_undated = False
        # The forehead in view now, followed across passages (``_watch_view``): its warmest
        # object reading (None: nobody in view), since when it has looked gone, and the code
        # of the last kiosk decision if it was in view then (the person decided on that code,
        # still at the thermometer; None: nobody was, or the passage had no code).
        self._view_peak_c: float | None = None
        self._view_away_ns: int | None = None
        self._lingering: str | None = None

    # ---------------------------------------------------------------- properties

    @property
    def mode(self) -> str:
        return self.config.policy.mode

    @property
    def needs_code(self) -> bool:
        return self.mode != "temperature_only"

    @property
    def needs_temperature(self) -> bool:
        return self.mode != "pass_only"

    @property
    def degraded(self) -> tuple[str, ...]:
        """Faulty parts, e.g. ``("thermometer", "reader:camera")``; empty when all is well."""
        parts = [k for k in self.faults if k != "reader"]
        parts += [f"reader:{s}" for s in self.reader_faults]
        return tuple(sorted(parts))

    @property
    def wants_readings(self) -> bool:
        """Whether the runner should sample the thermometer at full rate now."""
        if not self.needs_temperature:
            return False
        if self.state in ("code_read", "measuring", "awaiting_code"):
            return True  # awaiting the code: watching that the measured person stays
        if self._lingering is not None:
            return True  # watching the person just decided leave, before the next code
        return self.state == "idle" and self._starts_on_presence()

    @property
    def deciding(self) -> bool:
        """False while a fault stops anyone passing unaided (the screen says out of order)."""
        return not self._blocked_by_fault()

    @property
    def gate_is_open(self) -> bool:
        return self._gate_open

    def snapshot(self) -> dict[str, Any]:
        """The current state as the kiosk screen's state message (no personal data)."""
        msg: dict[str, Any] = {
            "type": "state",
            "state": self.state,
            "prompt": self.prompt,
            "text": PROMPTS[self.prompt],
            "direction": self.direction,
            "degraded": list(self.degraded),
            "gate_open": self._gate_open,
        }
        if self.evacuation is not None:
            msg["evacuation"] = self.evacuation.view(self._now())
        if self._gate_open and self._gate_close_at_ns is not None:
            # When the pulse ends (this clock's monotonic ns): a screen loaded mid-pulse
            # counts down what is left of it, not the whole pulse.
            msg["gate_closes_at_ns"] = self._gate_close_at_ns
        p = self.passage
        if p is not None:
            msg["passage"] = p.id
            t = p.temperature
            if t is not None:
                msg["temperature"] = {"status": t.status, "body_c": t.body_c}
        return msg

    # ---------------------------------------------------------------- inputs

    def on_code(self, read: CodeRead, direction: str | None = None) -> None:
        """A hygiene-checked code text from a reader (or a screen's direction button)."""
        self._input(self._on_code, read, direction)

    def on_reading(self, reading: ThermoReading) -> None:
        self._input(self._on_reading, reading)

    def on_sensor_fault(self, fault: DeviceFault, mono_ns: int | None = None) -> None:
        self._input(self._on_sensor_fault, fault, mono_ns)

    def on_reader_fault(self, source: str, fault: DeviceFault | str) -> None:
        self._input(self._on_reader_fault, source, str(fault))

    def on_reader_ok(self, source: str) -> None:
        self._input(self._on_reader_ok, source)

    def on_crossed(self, outcome: Outcome) -> None:
        """The one answer to ``ports.cross``: committed or not, and what the gate did."""
        self._input(self._on_crossed, outcome)

    def on_late_commit(self, crossing: Crossing, event: Event | AlreadyRecorded | None) -> None:
        """The end of a commit answered as a pending store fault (its deadline passed): the
        ``event`` when it landed after all, the refusal when its condition found its record
        (``EventDraft.unless``: nothing written), None when it failed."""
        self._input(self._on_late_commit, crossing, event)

    def on_gate_locked(self, fault: DeviceFault | None = None) -> None:
        """The answer to ``ports.lock_gate``: locked, or the relay's ``fault``."""
        self._input(self._on_gate_answer, False, fault)

    def begin_stop(self) -> None:
        """The checkpoint's stop begins (the runner's ``lock_for_stop``, before the gate's
        lock): from here nothing is decided. A guard's decision is refused (``manual``
        raises ``Stopping``), one queued behind a passage being committed is answered with
        that refusal (its ``on_recorded``) and never started, a code kept for later is
        dropped, and neither a code nor a reading starts or ends a passage; a crossing
        already under way finishes (its pass is recorded as not let through once the stop's
        lock obeyed: the runner's ``GateHeldShut``)."""
        self._input(self._begin_stop)

    def _begin_stop(self) -> None:
        self.stopping = True
        queued, self._manual_queue = list(self._manual_queue), deque()
        for item in queued:
            self._refuse(item)
        if self._pending_code is not None:
            self._pending_code = None
            self.ignored_codes += 1

    @staticmethod
    def _refuse(item: _Manual) -> None:
        """A guard's decision the stop refused: answered so, never started."""
        log.info("engine: a guard's %s refused: the checkpoint is stopping", item.decision)
        if item.on_recorded is not None:
            item.on_recorded(Stopping())

    def flush_backlog(self) -> None:
        """Try the records held by a store fault now, not at the next retry (the runner's
        stop: memory is about to go)."""
        self._input(self._flush_backlog)

    def _flush_backlog(self) -> None:
        self._retry_backlog(force=True)

    def tick(self) -> None:
        """Check every step's timeout, the gate pulse and the retries. Call often (≤100 ms)."""
        self._input(self._tick)

    def select_direction(self, direction: str) -> None:
        """A two-way kiosk's screen button: the direction of the passage under way, or of
        the next one if none is. Used once: the passage after that is back to the default,
        so one person's button press is never carried over to the next person."""
        checked = _direction(direction)
        if self.config.site.direction != "both" and checked != self.config.site.direction:
            raise ValueError(f"this kiosk only passes '{self.config.site.direction}'")
        p = self.passage
        if p is not None and self.state in ("code_read", "measuring", "awaiting_code"):
            p.direction = checked
        else:
            self.direction = checked
            self._direction_chosen_ns = self._now()

    def direction_from_hardware(self, p: Passage) -> bool:
        """Whether ``p``'s direction is the lane's, not a button's: a one-way kiosk, or the
        code came from a reader whose configured lane (``readers.sources[].direction``) is
        the passage's direction."""
        if self.config.site.direction != "both":
            return True
        if p.code is None:
            return False
        lanes = {s.name: s.direction for s in self.config.readers.sources}
        return lanes.get(p.code.source) == p.direction

    def _default_direction(self) -> Direction:
        site = self.config.site
        return site.direction if site.direction != "both" else site.default_direction

    def _direction_for(self, given: Direction | None) -> Direction:
        """A one-way kiosk's direction is fixed; a two-way one takes what it is told."""
        site = self.config.site
        if site.direction != "both":
            return site.direction
        return given or self.direction

    def manual(
        self,
        decision: ManualDecision | str,
        operator: str,
        reason: str,
        direction: str,
        person: Mapping[str, Any] | None = None,
        kind: ManualKind | str = "manual",
        temp_c: float | None = None,
        subject: ManualSubject | Literal["none", "auto"] = AUTO_SUBJECT,
        flags: Iterable[str] = (),
        audit: AuditRow | None = None,
        on_recorded: Callable[[ManualAnswer], None] | None = None,
        evacuate: tuple[object, object] | None = None,
        household: str | None = None,
        unless: Unless | None = None,
        seen: str | None = None,
        quota_checked: bool = False,
    ) -> None:
        """A guard's decision (override, or registration of a person or a vehicle).

        ``subject`` is whom it is about: a ``ManualSubject`` the guard chose (a passage in the
        log), ``"none"`` (a person without a pass, chosen explicitly), or ``"auto"`` (the
        kiosk's deny still being shown, else nobody).

        It enters the same path as a kiosk decision: committed first, then published, then
        the gate (for a manual pass). A passage still being measured is abandoned; one being
        committed finishes first. The free-text ``reason`` is stored with the personal fields
        (``person.note``) because guards write names into it; it never reaches a log line.

        ``temp_c`` is a hand-measured body temperature (a registration, or a guard confirming
        a person at the gate). It becomes the event's ``temp_c``, with no object/ambient
        reading (those are the kiosk sensor's). It must lie within the thermometry's
        plausible range (``TemperatureImplausible``). A *registration* (a person, or a vehicle
        whose ``temp_c`` is its hottest occupant's) or a person without a pass (``subject``
        ``"none"``) as a pass at or above ``fever_threshold_c`` is refused (``FeverRefused``):
        the same rule the kiosk applies, to someone admitted on the guard's word alone. An
        override of a passage is not refused: a guard may deliberately let a feverish
        resident through (home to isolate) and the record should then carry the reading.

        ``audit``: the asking request's ``(actor, action, detail)`` row, written in the
        event's own commit, when and if the event is (``EventDraft.audit``).

        ``on_recorded``: called once the commit is over, with its ``Outcome``: the committed
        event, or the store fault (the commit failed or missed ``store_deadline_ms``: the
        record waits in the backlog) and whether the gate was commanded open all the same,
        or ``refused`` (``unless``, its record's condition looked at in the commit,
        ``EventDraft.unless``, found it met: nothing decided); or with ``Stopping`` when the
        stop began while it waited to start (``begin_stop``), or ``_refused_at_start``'s.

        ``evacuate``: ``(cause, minutes)`` makes this manual pass an evacuation (the gate held
        open, ``kiosk.evacuation``), started only over ``seen``, what the guard's page showed
        under way (``evacuation.version_of``; else ``evacuation.Moved``, nothing recorded).
        ``household``: a registered resident's, or the one the guard names for a person
        without a pass (``unknown_person``), carried by the event as a pass's: the outing
        counts against its quota; naming none, such a manual pass (not an evacuation) is
        flagged ``unchecked``: nothing could be looked up for it (quarantine, quota,
        observation: the console's holds; its quota looked at again as it starts with
        ``quota_checked``). Raises ``ValueError`` (or a subclass) for bad input, before
        anything changes; ``Stopping`` once the stop has begun; a decision about a passage
        another one is about, taken and not yet in the log (two consoles, a console and a
        scenario's guard step), ``SubjectRefused`` (``kiosk.overrides``)."""
        if self.stopping:
            raise Stopping
        item = self._checked_manual(
            decision, operator, reason, direction, person, kind, temp_c, subject, flags,
            audit, on_recorded, evacuate, household, unless, seen, quota_checked,
        )  # fmt: skip
        if isinstance(item.subject, ManualSubject):
            # Taken last, once nothing can refuse it as bad input (that decided nothing).
            release = self.overrides.take(
                item.subject.seq, item.operator, item.decision, self._now()
            )
            item = dataclasses.replace(item, release=release)
        try:
            self._input(self._enqueue_manual, item)
        except BaseException:
            if item.release is not None:
                item.release(None)  # not queued: nothing decided
            raise

    def _checked_manual(
        self,
        decision: ManualDecision | str,
        operator: str,
        reason: str,
        direction: str,
        person: Mapping[str, Any] | None,
        kind: ManualKind | str,
        temp_c: float | None,
        subject: ManualSubject | Literal["none", "auto"],
        flags: Iterable[str],
        audit: AuditRow | None,
        on_recorded: Callable[[ManualAnswer], None] | None,
        evacuate: tuple[object, object] | None,
        household: str | None = None,
        unless: Unless | None = None,
        seen: str | None = None,
        quota_checked: bool = False,
    ) -> _Manual:
        """``manual``'s arguments checked, as the decision to queue; ``ValueError`` (or one of
        its subclasses) for bad input."""
        if decision not in ("manual_pass", "manual_deny"):
            raise ValueError("decision must be 'manual_pass' or 'manual_deny'")
        checked: ManualDecision = "manual_pass" if decision == "manual_pass" else "manual_deny"
        if kind not in ("manual", "registration", "vehicle"):
            raise ValueError("kind must be 'manual', 'registration' or 'vehicle'")
        checked_direction = _direction(direction)
        _check_manual_words(kind, operator, reason, person)
        if temp_c is not None:
            temp_c = self._hand_temperature(temp_c)
            threshold = self._thermo_cfg.fever_threshold_c
            # Admitted on the guard's word alone: a person registered, or one without a pass.
            on_word = kind in ("registration", "vehicle") or subject == NO_SUBJECT
            if on_word and decision == "manual_pass" and temp_c >= threshold:
                raise FeverRefused(temp_c, threshold)
        checked_flags, held = _manual_flags(flags, evacuate, (checked, kind, subject))
        if household is not None:
            household = _resident_household(kind, household, subject, evacuate)
        elif (checked, kind, held) == ("manual_pass", "manual", None) and unknown_person(subject):
            checked_flags += (UNCHECKED,)  # nobody to look up: the record says so
        return _Manual(
            checked,
            operator.strip(),
            reason.strip(),
            checked_direction,
            _typed_person(person),
            kind,
            temp_c,
            subject,
            checked_flags,
            None if audit is None else check_audit_row(audit),
            on_recorded,
            held,
            household=household,
            unless=check_unless(unless),
            seen=None if seen is None else str(seen)[:64],
            quota_checked=quota_checked is True,
        )

    def on_gate_health(self, ok: bool, detail: str = "") -> None:
        """The relay's own health while the gate is held open (the runner's poll): gone,
        the gate's state is unknown and the guard is told at once, not first at
        the lock when the hold ends; back (its driver has put the open back), it clears."""
        self._input(self._on_gate_health, ok, detail)

    def _on_gate_health(self, ok: bool, detail: str) -> None:
        if not self._gate_open:
            return  # idle: the runner commands the lock, whose answer tells the engine
        if not ok:
            self._raise_fault(
                "gate", f"{detail or 'relay not answering'}: the gate's state is unknown"
            )
        elif "gate" in self.faults and not self._gate_close_pending:
            self._clear_fault("gate")

    def end_evacuation(
        self, seen: str | None = None, ending: evacuation.Ending | None = None
    ) -> None:
        """A guard ends the evacuation: the gate locks at the next tick (a pass's pulse under
        way ends first). ``ValueError`` when none is under way; ``evacuation.Changed`` when
        ``seen`` (the ``version`` the guard's page showed) is not the one under way;
        ``evacuation.AlreadyEnded`` when another guard's end (``claim_end``) has it.
        ``ending``: this guard's claim, done now."""
        held = self._to_end(seen, ending)
        if ending is not None:
            self.ending = dataclasses.replace(ending, since_ns=held.since_ns, at_ns=self._now())
        self._input(self._end_evacuation, "a guard ended it")

    def claim_end(self, seen: str, by: str) -> evacuation.Ending:
        """A guard's end (``by``) of the evacuation ``seen`` begun, before its row is written:
        claimed, so that another guard's end meanwhile is refused (``AlreadyEnded``, naming
        ``by``) and writes nothing. ``end_evacuation(seen, claim)`` ends it once the row is
        written; ``release_end(claim)`` gives the claim up when nothing ended. Raises as
        ``end_evacuation``, and ``AlreadyEnded`` for one already ended by a guard."""
        held = self._to_end(seen, None)
        self.ending = evacuation.Ending(held.since_ns, by)
        return self.ending

    def release_end(self, claim: evacuation.Ending) -> None:
        """``claim`` given up: its evacuation was not ended by it (its row not written, or
        started again meanwhile). Once ended, the end stands."""
        if self.ending is claim:
            self.ending = None

    def _to_end(self, seen: str | None, mine: evacuation.Ending | None) -> evacuation.Evacuation:
        """The evacuation a guard's end (claim ``mine``, if any) of ``seen`` ends, or why not."""
        taken = self.end_taken(seen, mine)
        if taken is not None:
            raise evacuation.AlreadyEnded(taken)
        if self.evacuation is None:
            raise ValueError("no evacuation under way")
        if seen is not None and seen != self.evacuation.version:
            raise evacuation.Changed(self.evacuation)
        return self.evacuation

    def end_taken(
        self, seen: object, mine: evacuation.Ending | None = None
    ) -> evacuation.Ending | None:
        """Another guard's end (not ``mine``) of the evacuation ``seen`` (a page's version;
        None: the one under way), its row being written or done; None when none has it, or
        when another evacuation than ``seen`` is under way (that one is what to say)."""
        held, ending = self.evacuation, self.ending
        shown = held.version if seen is None and held is not None else seen
        if ending is None or ending is mine or not ending.of(shown):
            return None
        return ending if held is None or held.same_as(shown) else None

    def _end_evacuation(self, why: str) -> None:
        if self.evacuation is None:
            return
        self.evacuation = None
        log.warning("engine: evacuation over (%s): the gate locks", why)
        now = self._now()
        if self._gate_close_at_ns is not None:
            pulse_end = now + self.config.gate.pulse_ms * 1_000_000
            self._gate_close_at_ns = min(self._gate_close_at_ns, pulse_end)
        self.ports.publish(self.snapshot())

    def _hand_temperature(self, temp_c: object) -> float:
        low, high = self._thermo_cfg.plausible_min_c, self._thermo_cfg.plausible_max_c
        if isinstance(temp_c, bool) or not isinstance(temp_c, int | float):
            raise TemperatureImplausible(temp_c, low, high)
        if not low <= temp_c <= high:  # NaN fails this too
            raise TemperatureImplausible(temp_c, low, high)
        return float(temp_c)

    # ---------------------------------------------------------------- input plumbing

    def _input(self, fn: Callable[..., None], *args: Any) -> None:
        self._inbox.append((fn, args))
        if self._busy:
            return
        self._busy = True
        try:
            while self._inbox:
                handler, handler_args = self._inbox.popleft()
                handler(*handler_args)
        finally:
            self._busy = False

    def _now(self) -> int:
        return self.clock.monotonic_ns()

    # ---------------------------------------------------------------- state changes

    def _set_state(self, state: State, prompt: str) -> None:
        self.state = state
        self.prompt = prompt
        self.ports.publish(self.snapshot())

    def _idle_prompt(self) -> str:
        if self._blocked_by_fault():
            return "out_of_order"
        return "step_up" if self._starts_on_presence() else "show_pass"

    def _blocked_by_fault(self) -> bool:
        """Whether nobody can pass unaided right now (the screen says so at once)."""
        if "store" in self.faults or "gate" in self.faults:
            return True
        if self.needs_temperature and "thermometer" in self.faults:
            return True
        return bool(
            self.needs_code
            and self.reader_faults
            and len(self.reader_faults) >= max(1, len(self.config.readers.sources))
        )

    def _starts_on_presence(self) -> bool:
        return self.needs_temperature and (
            self.config.engine.order == "temperature_first" or not self.needs_code
        )

    def _go_idle(self) -> None:
        self.passage = None
        self._hold_until_ns = None
        self._set_state("idle", self._idle_prompt())
        self._start_waiting()

    def _start_waiting(self) -> None:
        """What waited for the kiosk to be free, now that it is idle: the next guard's action,
        else the code kept for later (the next person's, shown while it was busy). Once the
        stop began both are empty for good (``_begin_stop``): nothing starts."""
        if self._manual_queue:
            self._start_manual(self._manual_queue.popleft())
            return
        if self._pending_code is not None:
            read, direction, kept_ns = self._pending_code
            self._pending_code = None
            if self._now() - kept_ns > int(self._eng.code_timeout_s * 1e9):
                # Kept too long (a gate that would not lock): its holder has gone, and whoever
                # steps up now must not be measured for it.
                log.info("engine: dropped a code kept longer than code_timeout_s")
                self.ignored_codes += 1
                return
            self._on_code(read, direction)

    def _new_passage(
        self, started_ns: int, direction: Direction | None, kind: str = "passage"
    ) -> Passage:
        p = Passage(next(self._ids), started_ns, self._direction_for(direction), kind)
        self.direction = self._default_direction()
        self._direction_chosen_ns = None
        # Whoever is at the sensor now belongs to this passage: a new presence-started
        # passage needs the sensor to see nobody first (a person lingering after their
        # result is not measured again and again).
        self._presence_armed = False
        self.passage = p
        self._hold_until_ns = None
        return p

    def _can_start(self) -> bool:
        """A new passage may start from idle, or over a finished result once the gate locked."""
        if self.evacuation is not None:  # the gate held open: whoever shows a code is decided
            return self.state in ("idle", "decided", "gate_open")
        return self.state == "idle" or (self.state == "decided" and not self._gate_open)

    # ---------------------------------------------------------------- codes

    def _on_code(self, read: CodeRead, given: str | None) -> None:
        if self.stopping:  # nothing is decided any more (``begin_stop``)
            self.ignored_codes += 1
            return
        if given is not None and given not in ("in", "out"):
            log.warning("engine: ignored code with bad direction")
            return
        direction: Direction | None = "in" if given == "in" else "out" if given else None
        # A code proves its reader works.
        if read.source in self.reader_faults:
            self._on_reader_ok(read.source)
        if self._another_code_of_the_frame(read):
            return
        p = self.passage
        if (
            self._can_start()
            and p is not None
            and p.code is not None
            and p.code.text == read.text
            and self.state != "idle"
        ):
            self.ignored_codes += 1
            return
        if self._can_start():
            # This code supersedes one kept for later: its holder showed it again, or the
            # newest code shown wins (a kept copy must not start a second passage later).
            self._pending_code = None
            p = self._new_passage(read.mono_ns, direction)
            p.code = read
            p.by_code = True
            p.behind = self._behind(read)
            if not self.needs_temperature:
                self._decide()
            else:
                self._start_measurement(p, "measure_wrist", "code_read")
            return
        if p is not None and self.state == "awaiting_code" and p.code is None:
            p.code = read
            if direction is not None:
                p.direction = self._direction_for(direction)
            if p.warmer_since_ns is not None and self._measure_again_warmer(p):
                return  # the reading is rising past the temperature taken: measure for the code
            self._decide()
            return
        if p is not None and self.state in ("code_read", "measuring") and p.code is None:
            # temperature_first kiosk: the code came while we were still measuring.
            p.code = read
            if direction is not None:
                p.direction = self._direction_for(direction)
            return
        if p is not None and p.code is not None and p.code.text == read.text:
            # The same person still holding up the same code: not a new passage.
            self.ignored_codes += 1
            return
        if self.state in ("code_read", "measuring", "deciding", "gate_open", "decided"):
            # The next person is already showing a code (a phone held up early in a queue,
            # while this one is still measured): keep the latest, start it when free. The
            # camera does not send a code held still again, so one dropped here is lost.
            self._pending_code = (read, direction, self._now())
            return
        self.ignored_codes += 1

    def _behind(self, read: CodeRead) -> bool:
        """Whether a code starting a passage now was shown while the person decided on another
        code stands in view, not leaving (``_note_lingering``): it is not measured on them."""
        lingering = self._lingering
        return lingering is not None and lingering != read.text and self._view_away_ns is None

    def _another_code_of_the_frame(self, read: CodeRead) -> bool:
        """Whether ``read`` is another code of a camera frame (two phones held up together:
        a frame's codes share its stamp) whose first code this passage, or the code kept for
        later, took. None is taken: the kiosk cannot tell whose the person at the gate is, and
        must not pick one. A passage the first one started is over (the screen asks for the
        pass again); one that was measuring already (temperature first) drops the code and asks
        for it; a kept code is dropped. One already decided stands (docs/engine.md), but the
        others do not start a passage for whoever steps up next."""
        if read.source not in self._camera_sources:
            return False  # a scanner's lines read in one chunk share its stamp: not a frame
        frame = (read.source, read.mono_ns)
        if frame == self._refused_frame:
            self.ignored_codes += 1
            return True
        kept = self._pending_code
        p = self.passage
        if kept is not None and (kept[0].source, kept[0].mono_ns) == frame:
            if kept[0].text == read.text:
                return False
            self._pending_code = None
        elif p is not None and p.code is not None and (p.code.source, p.code.mono_ns) == frame:
            if p.code.text == read.text:
                return False
            if self.state in ("code_read", "measuring"):
                self._drop_code(p)
        else:
            return False
        log.info("engine: two codes in one frame: none taken")
        self._refused_frame = frame
        self.ignored_codes += 2
        return True

    def _drop_code(self, p: Passage) -> None:
        """Take back ``p``'s code, not yet decided: a passage it started is over (nothing
        measured for it yet is anyone's); a temperature-first one measures on."""
        p.code = None
        if p.by_code:
            self._go_idle()

    # ---------------------------------------------------------------- thermometer

    def _start_measurement(self, p: Passage, prompt: str, state: State = "code_read") -> None:
        now = self._now()
        # A re-measure after a doubted view remembers how warm this person already read: a view
        # lost since (a step back) cannot turn into a lower, normal temperature.
        seen = p.measurement.doubted_peak_c if p.measurement is not None else None
        p.measurement = thermometry.Measurement(
            self._thermo_cfg, self.current_calibration(), now, seen_object_c=seen, die=self._die
        )
        p.presence_seen = False
        p.away_since_ns = None
        p.warmer_since_ns = None
        p.peak_object_c = -math.inf
        self._set_state(state, prompt)

    def _watch_air(self, reading: ThermoReading) -> None:
        """The gate's standing ``air`` state: the air outside the calibration's trusted range
        for ``AIR_OUT_AFTER_S`` raises it once (every visitor is then checked by hand, denied
        ``air_out_of_range`` without an alarm each), a minute back inside clears it."""
        now = reading.mono_ns
        calibration = self.current_calibration()
        if calibration.covers(reading.ambient_c):
            self._air_out_since = None
            if "air" not in self.faults:
                return
            if self._air_in_since_ns is None:
                self._air_in_since_ns = now
            elif now - self._air_in_since_ns >= AIR_BACK_AFTER_S * 1e9:
                self._air_in_since_ns = None
                self._clear_fault("air")
            return
        self._air_in_since_ns = None
        if self._air_out_since is None:
            self._air_out_since = now
        since_ns = self._air_out_since
        if "air" in self.faults:
            if self._air_undated and self.clock.synced():  # NTP set the clock: say since when
                self.faults["air"] = self._air_words(reading, calibration, since_ns)
                self._publish_health()
            return
        if now - since_ns >= AIR_OUT_AFTER_S * 1e9:
            self._raise_fault("air", self._air_words(reading, calibration, since_ns))

    def _air_words(self, reading: ThermoReading, calibration: Calibration, since_ns: int) -> str:
        """The standing air alarm's detail: since when by the clock (one not set, 1970 or the
        last shutdown's time, says none: it is said once the clock is set)."""
        clock = ClockReading.take(self.clock)
        self._air_undated = not clock.synced
        since = (
            "(this gate's clock is not set: since when is said once it is)"
            if self._air_undated
            else f"since {clock.wall_at(since_ns).astimezone(self._tz):%H:%M}"
        )
        return (
            f"air {reading.ambient_c:.1f} degC outside the thermometer's trusted range"
            f" ({calibration.ambient_min_c:g} to {calibration.ambient_max_c:g} degC) {since}:"
            " every visitor checked by hand"
        )

    def current_calibration(self) -> Calibration:
        """The site calibration for a new measurement (a new fit applies from the next one on)."""
        return self.calibration.get()

    def _on_reading(self, reading: ThermoReading) -> None:
        if self.stopping:  # no passage starts or ends on it (``begin_stop``)
            return
        if "thermometer" in self.faults:
            self._clear_fault("thermometer")
        kept = self._die.add(reading)
        if not self.needs_temperature:
            return
        if kept:
            self._watch_air(reading)
        self._watch_view(reading)
        if self.state in ("idle", "decided"):
            present = thermometry.is_present(reading, self._thermo_cfg)
            if not present:
                self._presence_armed = True
            if (
                self.state != "idle"
                or not self._starts_on_presence()
                or not present
                or not self._presence_armed
            ):
                return
            started = self._new_passage(reading.mono_ns, None)
            self._start_measurement(started, "measuring", "measuring")
        p = self.passage
        if p is not None and self.state == "awaiting_code":
            if self._left(p, reading.mono_ns, reading):
                self._decide()  # as at the code timeout: no_pass
            elif self._warmer(p, reading):
                self._measure_again_warmer(p)
            return
        if p is None or self.state not in ("code_read", "measuring") or p.measurement is None:
            return
        if p.behind:
            if self._lingering is None:
                # The person in view when the code was shown has gone, unmeasured for it: it
                # may have been theirs, so whoever steps up next is not measured for it either.
                gone = thermometry.Temperature("no_temperature", None, None, None, "no_temperature")
                self._on_temperature(p, gone)
            return  # while they stay: decided on another code, not measured for this one
        result = p.measurement.add(reading)
        if not p.presence_seen and p.measurement.present:
            p.presence_seen = True
            if self.state != "measuring":
                self._set_state("measuring", "measuring")
        if result is not None:
            self._on_temperature(p, result)
        elif p.code is not None and p.presence_seen and self._left(p, reading.mono_ns, reading):
            # Whoever showed the code left before their temperature was taken: the next
            # person at the thermometer is not measured for it (as at the measure timeout).
            gone = thermometry.Temperature("no_temperature", None, None, None, "no_temperature")
            self._on_temperature(p, gone)
        elif p.fever is not None and p.presence_seen and self._left(p, reading.mono_ns, reading):
            # The feverish person left before any code: the passage is nobody's yet, and
            # whoever is measured next is its person, as before the fever (measured afresh:
            # the fever's samples are not theirs).
            p.fever = None
            p.left_view_peak_c = -math.inf
            self._start_measurement(p, "measuring", "measuring")

    def _watch_view(self, reading: ThermoReading) -> None:
        """Follow the forehead in view across passages, as ``_left`` follows a passage's: it
        has gone after ``left_after_s`` with nobody in view, or with the reading fallen
        ``LEFT_DROP_C`` below its warmest. The person in view at a decision (``_cross``) is
        that decision's: the next code's passage does not measure them (``Passage.behind``)."""
        now = reading.mono_ns
        peak = self._view_peak_c
        if thermometry.is_present(reading, self._thermo_cfg) and (
            peak is None or reading.object_c > peak - LEFT_DROP_C
        ):
            self._view_peak_c = reading.object_c if peak is None else max(peak, reading.object_c)
            self._view_away_ns = None
            return
        if peak is None:
            return
        if self._view_away_ns is None:
            self._view_away_ns = now
        if now - self._view_away_ns >= int(self._eng.left_after_s * 1e9):
            self._view_peak_c = None
            self._view_away_ns = None
            self._lingering = None

    def _left(self, p: Passage, mono_ns: int, reading: ThermoReading | None) -> bool:
        """Whether the person this passage saw at the thermometer has left: for
        ``left_after_s`` nobody in view, or a reading fallen ``LEFT_DROP_C`` below the warmest
        one of them (a forehead leaving the view; the air reading only comes half a second
        later), or no reading at all (``None``: a sensor fault cannot show they stayed). A
        temperature, and a code shown, belong to the person measured only while they stay;
        one back within ``left_after_s`` is the same passage."""
        if reading is not None and thermometry.is_present(reading, self._thermo_cfg):
            p.peak_object_c = max(p.peak_object_c, reading.object_c)
            if reading.object_c > p.peak_object_c - LEFT_DROP_C:
                p.away_since_ns = None
                return False
        if p.away_since_ns is None:
            p.away_since_ns = mono_ns
            if reading is not None:  # a forehead seen leaving (a fault shows nothing)
                p.left_view_peak_c = max(p.left_view_peak_c, p.peak_object_c)
        return mono_ns - p.away_since_ns >= int(self._eng.left_after_s * 1e9)

    def _warmer(self, p: Passage, reading: ThermoReading) -> bool:
        """Whether the reading has stood ``WARMER_RISE_C`` above the temperature this passage
        took for ``left_after_s``: that temperature no longer describes who is in view. A code
        shown while it stands above at all (``warmer_since_ns`` set) is measured for, too."""
        taken = p.temperature.object_c if p.temperature is not None else None
        if taken is None or reading.object_c < taken + WARMER_RISE_C:
            p.warmer_since_ns = None
            return False
        if p.warmer_since_ns is None:
            p.warmer_since_ns = reading.mono_ns
        return reading.mono_ns - p.warmer_since_ns >= int(self._eng.left_after_s * 1e9)

    def _measure_again_warmer(self, p: Passage) -> bool:
        """Drop the temperature taken and measure again (once a passage): someone warmer may
        stand there now. Whether it did."""
        if "warmer" in p.remeasured:
            return False
        p.remeasured.add("warmer")
        p.temperature = None
        self._start_measurement(p, "measure_again", "measuring")
        return True

    def _on_sensor_fault(self, fault: DeviceFault, mono_ns: int | None) -> None:
        self._raise_fault("thermometer", str(fault) or fault.reason)
        p = self.passage
        now = mono_ns if mono_ns is not None else self._now()
        if p is not None and self.state == "awaiting_code":
            if self._left(p, now, None):
                self._decide()  # nobody seen to stay: as if they left
            return
        if p is None or self.state not in ("code_read", "measuring") or p.measurement is None:
            return
        result = p.measurement.add_fault(fault, now)
        if result is not None:
            self._on_temperature(p, result)

    def _returned_cooler(self, p: Passage, t: thermometry.Temperature) -> bool:
        """Whether ``t``, a normal temperature, is not the forehead the passage saw: it reads
        well below a fever its own measurement read, or more than ``RETURNED_COOLER_C`` below
        the warmest reading of a forehead that left the view during this passage and was back
        within ``left_after_s`` (so ``_left`` kept the passage). The holder turning away and
        back reads as warm as before; someone cooler stepping in before the fall lasted reads
        lower than the holder already had."""
        if not t.ok or t.object_c is None or t.body_c is None:
            return False
        if t.body_c >= self._thermo_cfg.fever_threshold_c:
            return False
        m = p.measurement
        if p.fever is None and m is not None and m.read_a_fever(t.object_c):
            # It only fell, but from a fever this measurement read before a stable window
            # formed: as over a fever's re-measure (``fever_stands``), a normal reading this far
            # below is not that forehead (someone cooler took its place) and no evidence the
            # fever was wrong; nor is the re-measure's. (A fever re-measured: ``fever_stands``.)
            p.left_view_peak_c = max(p.left_view_peak_c, m.settled_peak_c)
            return True
        return t.object_c < p.left_view_peak_c - RETURNED_COOLER_C

    def _on_temperature(self, p: Passage, t: thermometry.Temperature) -> None:
        cfg = self._thermo_cfg
        if self._returned_cooler(p, t):
            log.info("engine: passage %d read cooler than the forehead that left its view", p.id)
            t = dataclasses.replace(
                t, status="implausible", reason="temp_implausible", doubt="fell"
            )
        if t.reason == thermometry.AIR_OUT_OF_RANGE:
            pass  # the same air a second time cannot help: the guard checks by hand
        elif t.status == "implausible" and "implausible" not in p.remeasured:
            p.remeasured.add("implausible")
            self._start_measurement(p, "measure_again", "measuring")
            return
        fever = t.status == "ok" and t.body_c is not None and t.body_c >= cfg.fever_threshold_c
        if fever and cfg.remeasure_on_fever and "fever" not in p.remeasured:
            p.remeasured.add("fever")
            p.fever = t
            self._start_measurement(p, "measure_again", "measuring")
            return
        if p.fever is not None and thermometry.fever_stands(p.fever, t, cfg):
            # Not the forehead that read the fever (someone no warmer in its place with no
            # gap, or the view lost): no evidence it was wrong. The fever stands; the guard
            # measures by hand.
            log.info(
                "engine: passage %d re-measured %.2f degC (object) below its fever; it stands",
                p.id,
                (p.fever.object_c or 0.0) - (t.object_c or 0.0),
            )
            t = p.fever
        p.temperature = t
        p.measurement = None
        if p.code is not None or not self.needs_code:
            self._decide()
            return
        if self._all_readers_down():
            p.reader_fault = True
            self._decide()
            return
        p.awaiting_code_since_ns = self._now()
        self._set_state("awaiting_code", "show_pass_now")

    # ---------------------------------------------------------------- readers

    def _all_readers_down(self) -> bool:
        return bool(self.reader_faults) and len(self.reader_faults) >= max(
            1, len(self.config.readers.sources)
        )

    def _on_reader_fault(self, source: str, detail: str) -> None:
        first = source not in self.reader_faults
        self.reader_faults[source] = detail
        if first:
            self.faults["reader"] = ", ".join(sorted(self.reader_faults))
            # ``all_down``: no reader left (the last one failing beside others failed before
            # is news to the guard, even if the first one's card was closed).
            said = f"reader {source}: {detail}"
            down = self._all_readers_down()
            stamp = self._alarm("reader_fault", "raised", detail=said, all_down=down)
            self.fault_began.setdefault("reader", stamp)
            self._publish_health()
            self._refresh_idle()
        p = self.passage
        if p is not None and self.state == "awaiting_code" and self._all_readers_down():
            p.reader_fault = True
            self._decide()

    def _on_reader_ok(self, source: str) -> None:
        if self.reader_faults.pop(source, None) is None:
            return
        if self.reader_faults:  # another still failing: the readers' fault stands, not cleared
            self.faults["reader"] = ", ".join(sorted(self.reader_faults))
        else:
            self.faults.pop("reader", None)
            self.fault_began.pop("reader", None)
            self._alarm("reader_fault", "cleared", detail=f"reader {source} is back")
        self._publish_health()
        self._refresh_idle()

    # ---------------------------------------------------------------- faults

    def _raise_fault(self, device: str, detail: str) -> None:
        first = device not in self.faults
        self.faults[device] = detail
        if first:
            self._log_fault_change(device, logging.WARNING, f"{device} fault: {detail}")
            self.fault_began[device] = self._alarm(DEVICE_ALARMS[device], "raised", detail=detail)
            self._publish_health()
            self._refresh_idle()

    def _clear_fault(self, device: str) -> None:
        if self.faults.pop(device, None) is None:
            return
        self.fault_began.pop(device, None)
        self._log_fault_change(device, logging.INFO, f"{device} recovered")
        self._alarm(DEVICE_ALARMS[device], "cleared", detail=f"{device} is back")
        self._publish_health()
        self._refresh_idle()

    def _log_fault_change(self, device: str, level: int, text: str) -> None:
        limit = self._fault_lines.setdefault(device, FlapLimit(self._now))
        line = limit.change(text)
        if line is None:
            log.debug("engine: %s", text)
        else:
            log.log(level, "engine: %s", line)

    def _settle_fault_lines(self) -> None:
        """The state of a device whose changes went unlogged for an hour (``FlapLimit``)."""
        for device, limit in self._fault_lines.items():
            detail = self.faults.get(device)
            state = f"{device} recovered" if detail is None else f"{device} fault: {detail}"
            line = limit.settled(state)
            if line is not None:
                log.log(logging.INFO if detail is None else logging.WARNING, "engine: %s", line)

    def _refresh_idle(self) -> None:
        if self.state == "idle":
            prompt = self._idle_prompt()
            if prompt != self.prompt:
                self._set_state("idle", prompt)

    def _alarm(self, alarm: str, state: str, **extra: Any) -> int:
        """Publish an ``alarm`` message; the stamp it carries (``mono_ns``)."""
        stamp = self._now()
        msg = {"type": "alarm", "alarm": alarm, "state": state, "mono_ns": stamp}
        msg.update(extra)
        self.ports.publish(msg)
        return stamp

    def _publish_health(self) -> None:
        self.ports.publish(
            {
                "type": "health",
                "degraded": list(self.degraded),
                "faults": dict(self.faults),
                "deciding": not self._blocked_by_fault(),
                "backlog": len(self.backlog),
            }
        )

    # ---------------------------------------------------------------- deciding

    def _decide(self, *, store_fault: bool = False) -> None:
        p = self.passage
        assert p is not None
        decision = self._policy_decision(p, store_fault=store_fault)
        p.decision = decision
        p.decided_at = ClockReading.take(self.clock)
        p.decided_ns = p.decided_at.mono_ns
        p.draft = self._draft_for(p, decision)
        self._cross(p)

    def _policy_decision(self, p: Passage, *, store_fault: bool) -> policy.Decision:
        if self.history.undated and self.clock.synced():
            # NTP has stepped the clock since passages were recorded on it unsynchronised:
            # date them by this boot's clock before the quota and passback look at them.
            self.history.redate(self.clock.now(), self.clock.monotonic_ns())
        now = self.clock.now()
        inputs = policy.PassageInputs(
            direction=p.direction,
            code=p.code.text if p.code is not None else None,
            temperature=p.temperature,
            reader_fault=p.reader_fault,
            store_fault=store_fault,
            # A relay that did not answer (its probe clears it): a pass would be recorded
            # for a gate that cannot open (kiosk.policy).
            gate_fault="gate" in self.faults,
            direction_trusted=self.direction_from_hardware(p),
            clock_synced=self.clock.synced(),
            earliest=earliest(self.clock, now),
        )
        return policy.decide(
            inputs,
            self.policy_state(),
            now,
            self.config.policy,
            self._thermo_cfg,
            self._tz,
        )

    def policy_state(self) -> policy.PolicyState:
        """The policy's view now: trust, the current lists snapshot, the history, and who is
        under observation."""
        observing = self.observation.current if self.observation is not None else None
        return policy.PolicyState(self.trust, self.lists.current, self.history, observing)

    def _draft_for(self, p: Passage, decision: policy.Decision) -> EventDraft:
        t = p.temperature
        pass_ = decision.pass_
        latency_ms = (p.decided_ns - p.started_ns) / 1e6 if p.decided_ns is not None else None
        # A card revoked by a forget (``kiosk.people``) speaks for nobody: its resident's name
        # never comes back with it, its household only where a hold needs it (``_kept``). Any
        # other revoked card (lost, taken) still names them: a guard's hold and an alarm need
        # the household.
        named = None if self._forgotten(decision) else pass_
        held = pass_ if named is None and self._kept(decision) else named
        return EventDraft(
            direction=p.direction,
            decision=decision.decision,
            reasons=tuple(decision.reasons),
            pass_id=pass_.pass_id if pass_ is not None else None,
            household=held.household if held is not None else None,
            holder=named.holder if named is not None else None,
            temp_c=t.body_c if t is not None else None,
            temp_object_c=t.object_c if t is not None else None,
            temp_ambient_c=t.ambient_c if t is not None else None,
            latency_ms=max(0.0, latency_ms) if latency_ms is not None else None,
            kind="passage",
            flags=(
                *decision.flags,
                *self._retry_flag(p, decision),
                *((evacuation.FLAG,) if self.evacuation is not None else ()),
                *policy.alarm_flags(decision, decision.decision),
            ),
            decided=p.decided_at,
        )

    def _forgotten(self, decision: policy.Decision) -> bool:
        """Whether ``decision`` refused a card a forget revoked, here (its revocation's source
        ``forget``) or at another gate of the compound (its page's mark): the person it names
        was forgotten (``Lists.is_forgotten``)."""
        pass_ = decision.pass_
        if pass_ is None or "pass_revoked" not in decision.reasons:
            return False
        return self.lists.current.is_forgotten(pass_.pass_id)

    def _kept(self, decision: policy.Decision) -> bool:
        """Whether the deny of a forgotten card keeps its household (never its holder): the
        decision found a hold on it (``policy.holds_household``: the breach alarm names it, a
        guard's manual pass over it is asked the hold), or this gate voided the card itself
        (``Lists.voided_here``: another gate's mark does not blank this gate's own void)."""
        pass_ = decision.pass_
        if pass_ is None:
            return False
        return policy.holds_household(decision) or self.lists.current.voided_here(pass_.pass_id)

    def _retry_flag(self, p: Passage, decision: policy.Decision) -> tuple[str, ...]:
        """``retries:<seq>`` when ``p`` is its pass's next attempt, the same way, within
        ``retry_window_s`` of a deny that only asked its person to measure again
        (``kiosk.links``): the reports count the attempts as one passage. A passage without
        a valid pass (a temperature-first attempt that never showed one) is linked to
        nothing: nothing says whose it was."""
        window_ns = int(self._eng.retry_window_s * 1e9)
        pass_ = decision.pass_
        earlier = self._attempts.get(pass_.pass_id) if pass_ is not None else None
        if window_ns <= 0 or earlier is None or earlier.direction != p.direction:
            return ()
        if p.started_ns - earlier.mono_ns > window_ns:
            return ()
        return (f"{RETRIES}{earlier.seq}",)

    def _note_attempt(self, event: Event) -> None:
        """Keep a committed kiosk deny that only asked its person to measure again, by pass,
        for ``_retry_flag``. Any other event of the pass ends what was kept of it: a pass,
        another deny, a guard's decision (which ends the passage it is about)."""
        if not event.pass_id:
            return
        self._attempts.pop(event.pass_id, None)
        threshold = self._thermo_cfg.fever_threshold_c
        if event.kind != "passage" or not measure_again(
            event.decision, event.reasons, event.temp_c, threshold
        ):
            return
        self._attempts[event.pass_id] = _Attempt(event.seq, event.direction, event.mono_ns)
        window_ns = int(self._eng.retry_window_s * 1e9)
        for pass_id, kept in list(self._attempts.items()):  # the oldest first
            if len(self._attempts) <= ATTEMPTS_KEPT and event.mono_ns - kept.mono_ns <= window_ns:
                break
            del self._attempts[pass_id]

    def _cross(self, subject: Passage | EventDraft) -> None:
        """Hand ``subject``'s event to the world: a passage's decision (the screen shows
        "checking" until its outcome), or a held-back draft from the backlog (no gate). While
        records are held (the backlog), a passage's goes to the log only after them, in
        decision order: it waits behind them (``_after_held``), and they are tried now."""
        if isinstance(subject, EventDraft):
            self._send(Crossing(subject), subject)
            return
        self._set_state("deciding", "checking")
        if subject.kind == "passage":
            self._note_lingering(subject)
        if self._pending_code is not None:
            # A code kept while this passage was measured waited for it, not for a gate
            # that would not lock: its time kept counts from this decision.
            read, direction, _ = self._pending_code
            self._pending_code = (read, direction, self._now())
        self._after_held.append(subject)
        self._retry_backlog(force=True)

    def _send(self, crossing: Crossing, subject: Passage | EventDraft) -> None:
        self._crossings[crossing] = subject
        self.ports.cross(crossing)

    def _drain_after_held(self) -> None:
        """The passages decided while records were held, crossed in decision order once the
        held ones allow: with none held, to the log; while the first held one cannot be
        written (its try failed, or its first commit is still under way), not to the log
        (``Crossing.behind_held``: answered as a store fault, so held after them). While a
        held record's try is under way, they wait for its outcome."""
        while self._after_held and not self._backlog_inflight:
            p = self._after_held.popleft()
            assert p.draft is not None
            crossing = Crossing(
                p.draft,
                open_if_committed=p.draft.decision in PASS_DECISIONS,
                open_if_unrecorded=self._passes_unrecorded(p),
                behind_held=bool(self.backlog),
            )
            self._send(crossing, p)

    def _note_lingering(self, p: Passage) -> None:
        """Whoever stands at the thermometer as ``p`` is decided on its code is that code's
        person: another code shown before they have left (a phone held up early in a queue,
        while a deny's person still reads the screen) is not measured on them, however long
        they stay, nor on whoever steps up after them (they may have been its holder): it ends
        as ``no_temperature`` when they go. Their own code shown again is measured (a resident
        trying again). A guard's decision changes nothing: the person at the screen is still
        the passage's."""
        in_view = self._view_peak_c is not None and self._view_away_ns is None
        self._lingering = p.code.text if in_view and p.code is not None else None

    def _on_crossed(self, outcome: Outcome) -> None:
        subject = self._crossings.pop(outcome.crossing, None)
        not_opened = self._not_opened(subject, outcome)
        refusal = None
        if not_opened and outcome.event is not None and outcome.gate_fault is not None:
            refusal = self._not_opened_draft(outcome.event, outcome.gate_fault)
            if isinstance(outcome.gate_fault, GateHeldShut) and isinstance(subject, Passage):
                # Kept locked on purpose (the stop): shown as what it is, never as the pass.
                subject.draft = refusal
        if subject is None:
            log.error("engine: an outcome for a crossing it is not waiting for; ignored")
        elif outcome.event is not None:
            self._on_committed(subject, outcome.event, went_through=not not_opened)
        elif outcome.refused is not None:
            self._on_refused(subject, outcome.refused)
        else:
            assert outcome.store_fault is not None
            self._on_store_fault(subject, outcome)
        if isinstance(subject, Passage):
            self._settle_hold(subject, outcome)
            if subject.on_recorded is not None:
                subject.on_recorded(outcome)
        if outcome.gate_commanded:
            if not self._gate_open and outcome.gate_fault is None:
                # Opened for a decision the engine did not announce as a pass: lock it now.
                log.error("engine: the gate was opened for no announced pass; locking it")
                self._gate_open = True
                self._gate_close_at_ns = self._now()
            self._on_gate_answer(True, outcome.gate_fault)
        if refusal is not None:
            self._record_not_opened(refusal)
        self._drain_after_held()
        # A guard's action that waited for this outcome starts once it is fully handled (the
        # relay's answer included: a failure to open is this passage's, not the guard's).
        if self._manual_queue and self.state != "deciding":
            self._start_manual(self._manual_queue.popleft())

    def _not_opened(self, subject: Passage | EventDraft | None, outcome: Outcome) -> bool:
        """Whether ``outcome`` is a kiosk pass, committed, whose gate did not open on the
        open command and stands locked as far as the relay is known (``_relay_opened``: only
        a lock the relay obeyed sets it False): the relay did not obey, or the stop locked it
        (``GateHeldShut``, answered after the stop's lock: whatever opened it before holds it
        open no more). Nobody went through on it (the screen sends them to the guard). Not a
        guard's manual pass: the guard opens the gate by hand for it (``err.gate_not_opened``),
        so it did go through; nor a pass while the gate was last known open (an evacuation,
        the stop's lock failed): the way stood open."""
        return (
            isinstance(subject, Passage)
            and subject.kind == "passage"
            and outcome.event is not None
            and outcome.event.decision == "pass"
            and outcome.gate_fault is not None
            and not self._relay_opened
        )

    def _not_opened_draft(self, event: Event, fault: DeviceFault) -> EventDraft:
        """The row saying the gate did not open for the pass ``event``: ``deny``, for the
        gate's reason (``gate_fault``: the relay did not obey; ``stopping``: the stop keeps
        it locked), flagged ``not_opened:<seq>`` (``kiosk.links``), with the pass's person,
        direction and temperature, as any deny keeps them."""
        return EventDraft(
            direction=event.direction,
            decision="deny",
            reasons=(fault.reason,),
            pass_id=event.pass_id,
            household=event.household,
            holder=event.holder,
            temp_c=event.temp_c,
            temp_object_c=event.temp_object_c,
            temp_ambient_c=event.temp_ambient_c,
            kind="passage",
            flags=(f"{NOT_OPENED}{event.seq}",),
            decided=ClockReading.take(self.clock),
        )

    def _record_not_opened(self, draft: EventDraft) -> None:
        """The log's ``pass`` for a gate that did not open stays (the log is append-only); a
        row after it says so (``_not_opened_draft``). The reports count the passage as it
        ended, denied, and the pass as no outing; a guard who lets the person through by
        hand records their own manual pass. It is written as a held record is (the backlog:
        after any held before it, kept through a store fault)."""
        self._hold_backlog(draft)
        self._retry_backlog(force=True)

    def _on_committed(
        self, subject: Passage | EventDraft, event: Event, *, went_through: bool = True
    ) -> None:
        """``event`` is in the log. ``went_through``: False for a pass the relay did not open
        for, which the passage history must not hold (no outing, no passback)."""
        if went_through:
            self._record_history(event)
        self._note_attempt(event)
        if isinstance(subject, EventDraft):  # a backlog entry
            self._backlog_inflight = False
            if self.backlog and self.backlog[0] is subject:
                self.backlog.popleft()
            self._release_hold(subject, self._now())
            self._store_back()
            self._publish_health()
            self._publish_recorded(event)
            self._retry_backlog(force=True)
            return
        self._store_back()
        subject.event = event
        self._announce(subject, committed=True)
        self._retry_backlog(force=True)

    def _on_refused(self, subject: Passage | EventDraft, refused: AlreadyRecorded) -> None:
        """A guard's decision whose record the log did not write: its condition found the
        record ``refused.seq`` (``EventDraft.unless``: another tablet registered the same one a
        moment before). Nothing was decided: no decision is published, no gate opens, and the
        screen goes back to what it showed (the gate open for the decision before, or idle).
        The guard is told (``on_recorded``)."""
        log.info("engine: a guard's decision not recorded: event %d holds it", refused.seq)
        if isinstance(subject, EventDraft):  # a held pass (its condition kept): not silently
            self._backlog_inflight = False
            self._drop_held(subject, refused)
            self._store_back()
            self._retry_backlog(force=True)
            return
        self._store_back()
        if self.passage is not subject:
            return
        self.passage = None
        self._hold_until_ns = self._now()
        if self._gate_open:
            self._set_state("gate_open", "pass")
        else:
            self._go_idle()

    def _on_late_commit(self, crossing: Crossing, event: Event | AlreadyRecorded | None) -> None:
        """A commit that was reported failed (deadline) ended: landed (keep that one record),
        refused (its pass held is not written: ``_drop_held``) or failed (its draft may be
        retried from the backlog now)."""
        draft = self._late.pop(crossing, None)
        if draft is None:
            return
        if not isinstance(event, Event):
            if event is not None and draft.decision in PASS_DECISIONS:
                self._drop_held(draft, event)
            elif event is not None:  # the deny shown is written, naming the record found
                self._link_held(draft, f"{SAME_AS}{event.seq}")
            if event is not None:
                self._store_back()
            self._retry_backlog()
            return
        self._release_hold(draft, self._now())
        denied = event.decision in PASS_DECISIONS and draft.decision not in PASS_DECISIONS
        if denied:  # what was shown is written after it, naming it (kiosk.links)
            self._link_held(draft, f"{NOT_OPENED}{event.seq}")
        else:
            self._unhold(draft)
        log.warning("engine: a commit past its deadline landed late (seq=%s)", event.seq)
        if denied:
            # The log says pass, but the screen said deny and the gate stayed shut: nobody went
            # through on it, so it uses up no outing; the deny shown follows it in the log
            # (``not_opened:<seq>``), and the guard is told.
            why = "recorded as a pass after its deadline; it was denied, the gate stayed shut"
            self._tell_record(LATE_COMMIT, event.seq, draft, why, cause="denied")
        else:
            self._record_history(event)
            self._note_attempt(event)
            self._tell_record(LATE_COMMIT, event.seq, draft)
            self._publish_recorded(event)
        self._publish_health()
        self._store_back()
        # The records held behind it waited for this landing: write them now if the store works.
        self._retry_backlog(force="store" not in self.faults)

    def _unhold(self, draft: EventDraft) -> None:
        """``draft`` (that very one) out of the backlog, if it is there."""
        for i, held in enumerate(self.backlog):
            if held is draft:
                del self.backlog[i]
                return

    def _link_held(self, draft: EventDraft, flag: str) -> None:
        """The held ``draft`` written with ``flag`` added, naming the record it follows
        (``kiosk.links``: the reports count that registration once)."""
        for i, held in enumerate(self.backlog):
            if held is draft:
                self.backlog[i] = dataclasses.replace(draft, flags=(*draft.flags, flag))
                return

    def _store_back(self) -> None:
        """The log answered a commit (written, refused, or a late one ended: either way it
        works): with nothing held and no other commit under way, the store fault is over,
        and the kiosk is back in service now, not "out of order" until the next resident's
        commit. Records still held keep it until the last of them is written."""
        if not self.backlog and not self._late:
            self._clear_fault("store")

    def _drop_held(self, draft: EventDraft, refused: AlreadyRecorded) -> None:
        """A guard's pass held for the log (a store fault) that the log refused: its condition
        (``EventDraft.unless``, ``kiosk.again``) found ``refused.seq``, another tablet's record
        of the same one going the same way. That record stands for it: the held one is not
        written after it (a passage twice). Never silently: an audit row and an alarm on that
        record (``HELD_DROPPED``) tell the guards what was not written and why."""
        self._unhold(draft)
        self._release_hold(draft, None)
        log.warning("engine: a held pass not written: event %d holds it", refused.seq)
        why = f"already recorded as event {refused.seq}"
        whose = f"{draft.operator or 'a guard'}'s {draft.kind} {draft.direction} held for the log"
        self._tell_record(HELD_DROPPED, refused.seq, draft, f"{whose} not written: {why}", why=why)
        self._publish_health()

    def _tell_record(
        self, name: str, seq: int, draft: EventDraft, detail: str = "", **said: str
    ) -> None:
        """Tell the guards of a record written or left out after its decision was told
        (``name``: ``HELD_DROPPED``, ``LATE_COMMIT``; ``seq`` the record that stands,
        ``draft`` the decision held): its audit row (the decision, direction, kind, guard and
        ``seq``, and ``said``), from which the console rebuilds its card after a restart, then
        the alarm (``detail`` its words)."""
        what = {"decision": draft.decision, "direction": draft.direction, "kind": draft.kind}
        self.ports.audit(name, {**what, "operator": draft.operator, "seq": seq, **said})
        words = {"detail": detail} if detail else {}
        self._alarm(
            name, "raised", seq=seq, operator=draft.operator, direction=draft.direction,
            **words, **said,
        )  # fmt: skip

    def _publish_recorded(self, event: Event) -> None:
        """Tell the bus of a row written after its decision was told (from the backlog: held
        through a storage fault, or the row saying the gate did not open for a pass; or a
        commit that landed past its deadline, unless it is a pass the screen had denied: its
        ``not_opened`` row is told instead): ``{"type": "recorded", "seq", "decision",
        "not_opened"}`` (the pass's seq that row names, else None). Its decision message went
        out uncommitted, or never (the ``not_opened`` row): whoever follows the log (the
        compound's other gates, poked at once) learns of it here. Not a ``decision``: the
        screen moved on long ago."""
        self.ports.publish(
            {
                "type": "recorded",
                "seq": event.seq,
                "decision": event.decision,
                "not_opened": names_not_opened(event.flags),
            }
        )

    def _record_history(self, event: Event) -> None:
        try:
            self.history.record(
                event.pass_id,
                event.household,
                event.direction,
                event.decision,
                event.ts,
                event.flags,
                mono_ns=None if event.clock_synced else event.mono_ns,
            )
        except Exception:  # noqa: BLE001 - history is an aid to the policy, never a blocker
            log.exception("engine: passage history could not record an event")

    def _announce(self, p: Passage, *, committed: bool) -> None:
        """Publish the decision, raise the guard alarm if any; a pass starts the gate's pulse
        (the crossing has commanded it open; its answer is handled after this)."""
        self.decisions += 1
        draft = p.draft
        assert draft is not None
        decision = draft.decision
        d = p.decision
        needs_guard = (d is not None and d.needs_guard) or decision == "manual_deny"
        alarm = d.alarm if d is not None else None
        seq = p.seq
        # The event log holds a committed decision: a line per passage in the journal (~2,000
        # a day on the SD card, kept for ever) only for one it could not take.
        log.log(
            logging.DEBUG if committed else logging.INFO,
            "engine: passage %d %s %s seq=%s%s",
            p.id,
            decision,
            ",".join(draft.reasons),
            seq,
            "" if committed else " (NOT COMMITTED)",
        )
        self.ports.publish(
            {
                "type": "decision",
                "passage": p.id,
                # pass_id and household are for the guard screen only: the kiosk screen
                # shows holder_initial at most.
                **_decision_fields(draft, p.event),
                "committed": committed,
                "needs_guard": needs_guard,
                "alarm": alarm,
                # A guard on duty when it was decided (a guard's own decision: one is there).
                "on_duty": d.on_duty if d is not None else True,
                "holder_initial": holder_initial(draft.holder),
                "holder_greeting": greeting_name(draft.holder) if draft.holder else None,
            }
        )
        whom = _unlogged_whom(draft) if seq is None else {}
        raised = policy.bus_alarm(d, decision)  # the kiosk's row records it (_draft_for)
        if raised == policy.GUARD_NEEDED:
            self._alarm(
                raised, "raised", passage=p.id, seq=seq, reasons=list(draft.reasons), **whom
            )
        elif raised:
            self._alarm(raised, "raised", passage=p.id, seq=seq, direction=draft.direction, **whom)
        now = self._now()
        self._hold_until_ns = now + int(self._eng.result_hold_s * 1e9)
        if decision in PASS_DECISIONS:
            self._gate_close_at_ns = now + self.config.gate.pulse_ms * 1_000_000
            if self.evacuation is not None:  # held open until the evacuation ends
                self._gate_close_at_ns = max(self._gate_close_at_ns, self.evacuation.until_ns)
            self._gate_open = True
            self._set_state("gate_open", "pass")
        else:
            prompt = "see_guard" if needs_guard or alarm else "deny"
            self._set_state("decided", prompt)

    # ---------------------------------------------------------------- store faults

    def _on_store_fault(self, subject: Passage | EventDraft, outcome: Outcome) -> None:
        exc = outcome.store_fault
        assert exc is not None
        self._raise_fault("store", f"{exc.reason}: {exc.detail or exc}")
        if isinstance(subject, EventDraft):  # a backlog entry
            self._backlog_inflight = False
            self._backlog_retry_ns = self._now() + int(self._eng.idle_probe_s * 1e9)
            draft = subject
        else:
            p = subject
            draft = p.draft = self._uncommitted_draft(p)
            self._hold_backlog(draft)
            self._announce(p, committed=False)
        if outcome.pending:  # may still land: answered by on_late_commit
            self._late[outcome.crossing] = draft

    def _settle_hold(self, p: Passage, outcome: Outcome) -> None:
        """A guard's decision about a passage (``p.release``) answered: committed, its hold
        stands ``CLAIM_S`` from now; not committed, it stays held while its record waits in
        the backlog (``_release_hold``: from that record's commit, or let go if it is lost)."""
        if p.release is None:
            return
        if outcome.refused is not None:
            p.release(None)  # nothing decided
        elif outcome.event is not None:
            p.release(self._now())
        elif p.draft is not None:
            self._draft_holds[id(p.draft)] = (p.draft, p.release)

    def _release_hold(self, draft: EventDraft, over_ns: int | None) -> None:
        """The backlog's ``draft`` committed at ``over_ns`` (None: lost): its hold, if any,
        is released so (``Overrides.take``)."""
        held = self._draft_holds.get(id(draft))
        if held is not None and held[0] is draft:
            del self._draft_holds[id(draft)]
            held[1](over_ns)

    def _passes_unrecorded(self, p: Passage) -> bool:
        """Whether the gate opens for ``p`` even when its event cannot be committed: only a
        guard's manual pass with ``on_store_fault = "manual"`` (the record waits in memory)."""
        assert p.draft is not None
        return (
            p.kind != "passage"
            and p.draft.decision == "manual_pass"
            and (
                self.config.policy.on_store_fault == "manual"
                or evacuation.FLAG in p.draft.flags  # a fire does not wait for a disk
            )
        )

    def _uncommitted_draft(self, p: Passage) -> EventDraft:
        """What a passage whose event could not be committed records (held in the backlog)."""
        assert p.draft is not None
        draft = p.draft
        if p.kind != "passage":
            # A guard's action that cannot be recorded: with on_store_fault = "manual" the
            # guard's word opens the gate and the record waits in memory, on its condition
            # still (``unless``: another tablet's registration of the same one written while
            # it waits stands for it, ``_drop_held``); with "deny" nobody passes unrecorded,
            # so the gate stays locked and the record says so, whatever else is written.
            reasons = (*draft.reasons, "store_fault")
            if draft.decision == "manual_pass" and not self._passes_unrecorded(p):
                denied = dataclasses.replace(draft, decision="manual_deny", reasons=reasons)
                return dataclasses.replace(denied, unless=None)
            return dataclasses.replace(draft, reasons=reasons)
        p.decision = decision = self._policy_decision(p, store_fault=True)
        if decision.decision in PASS_DECISIONS:
            # Defence in depth: a pass is never announced for an unrecorded passage.
            log.error("engine: policy passed a passage despite store_fault; denying")
            return dataclasses.replace(
                self._draft_for(p, decision),
                decision="deny",
                reasons=tuple(sorted({*decision.reasons, "store_fault"} - {"ok"})),
            )
        return self._draft_for(p, decision)

    def _hold_backlog(self, draft: EventDraft) -> None:
        if len(self.backlog) >= self._eng.backlog_max:
            self._release_hold(self.backlog.popleft(), None)  # lost: nobody decided it
            self.dropped_backlog += 1
            self._alarm("store_backlog_full", "raised", dropped=self.dropped_backlog)
        self.backlog.append(draft)
        self._backlog_retry_ns = self._now() + int(self._eng.idle_probe_s * 1e9)
        self._publish_health()

    def _retry_backlog(self, *, force: bool = False) -> None:
        """Try the first held record again when it is due (``force``: now); then the
        passages waiting behind the held ones go on if they may (``_drain_after_held``)."""
        if self._backlog_due(force=force):
            self._backlog_inflight = True
            self._cross(self.backlog[0])
        self._drain_after_held()

    def _backlog_due(self, *, force: bool) -> bool:
        if not self.backlog or self._backlog_inflight:
            return False
        if any(held is self.backlog[0] for held in self._late.values()):
            return False  # its first commit is still under way: a second could record it twice
        return force or self._now() >= self._backlog_retry_ns

    # ---------------------------------------------------------------- gate

    def _lock_gate(self) -> None:
        self._gate_close_pending = True
        self.ports.lock_gate()

    def _gate_may_be_opening(self) -> bool:
        """Whether a crossing in flight may command the gate open: a lock commanded now would
        land after that opening and cut its pulse short (its outcome sets the pulse's end)."""
        return any(c.open_if_committed or c.open_if_unrecorded for c in self._crossings)

    def _on_gate_answer(self, open_: bool, fault: DeviceFault | None) -> None:
        if isinstance(fault, GateHeldShut):
            # Kept locked by the stop (which told the engine, ``on_gate_locked``): not the
            # relay's fault, and nobody is invited through it (a guard's pass: see the guard).
            self._gate_open = self._relay_opened
            if self.state == "gate_open":
                self._set_state("decided", "stopping")
            return
        if fault is None:
            self._on_gate_done(open_)
        else:
            self._on_gate_fault(open_, fault)

    def _on_gate_done(self, open_: bool) -> None:
        # At the stop an open's answer comes after the stop's lock's (``EngineRunner._set_gate``):
        # the relay obeyed a command before that lock, which says nothing of the lock's fault.
        if "gate" in self.faults and not (open_ and self.stopping):
            self._clear_fault("gate")
        self._relay_opened = open_
        if not open_:
            self._gate_open = False
            self._gate_close_pending = False
            self._gate_close_at_ns = None
            if self.state == "gate_open":
                self._set_state("decided", "pass")
            if self._pending_code is not None and self.state == "decided":
                self._go_idle()  # the next person is already showing a code

    def _on_gate_fault(self, open_: bool, exc: DeviceFault) -> None:
        self._raise_fault("gate", str(exc) or "gate fault")
        if open_:
            # Committed as a pass, but the lock did not release: the guard lets them through.
            p = self.passage
            self._alarm(
                "gate_fault",
                "raised",
                detail="relay did not open",
                passage=p.id if p else None,
                seq=p.seq if p else None,
            )
            # It did not open (but stays open if an earlier pass's command opened it); command
            # it locked as soon as the relay answers again.
            self._gate_open = self._relay_opened
            self._gate_close_at_ns = self._now()
            if self.state == "gate_open":
                # Not "pass" (a screen showing the pass would send them into a locked gate):
                # the kiosk is out of order, the guard lets them through.
                self._set_state("decided", "out_of_order")
        else:
            self._gate_close_pending = False
            # At a stop nothing retries (the ticks are over): the guard locks it by hand.
            retry = "the checkpoint is stopping: lock it by hand" if self.stopping else "retrying"
            self._alarm("gate_not_locked", "raised", detail=f"relay did not lock; {retry}")
            if self.state == "gate_open":
                # The pulse is over but the gate may still be open: stop inviting people
                # through it. The kiosk stays busy (gate_is_open) until the relay locks.
                self._set_state("decided", "out_of_order")
        self._gate_probe_ns = self._now() + int(self._eng.idle_probe_s * 1e9)

    # ---------------------------------------------------------------- manual

    def _enqueue_manual(self, item: _Manual) -> None:
        # Never once the stop began: ``manual`` raised ``Stopping`` (the loop's thread: the
        # stop's ``begin_stop`` cannot come between), and ``_begin_stop`` refused the queue.
        if self.state == "deciding":
            self._manual_queue.append(item)
            return
        self._start_manual(item)

    def _hold_open(self, operator: str, cause: str, minutes: int) -> None:
        """An evacuation started (``evacuation.held_open``): a new one, or, one under way (a
        second tablet's start), that one going on until the later of the two ends, for the
        graver cause."""
        under_way = self.evacuation
        self.evacuation = evacuation.held_open(under_way, cause, minutes, operator, self._now())
        if under_way is None:
            log.warning("engine: evacuation (%s): the gate held open for %d min", cause, minutes)
        else:
            log.warning(
                "engine: evacuation (%s) started again (%s, %d min): it goes on as %s, to the"
                " later end", under_way.cause, cause, minutes, self.evacuation.cause,
            )  # fmt: skip

    def _start_manual(self, item: _Manual) -> None:
        if self._refused_at_start(item):
            return
        if item.evacuation is not None:
            self._hold_open(item.operator, *item.evacuation)
        previous = self.passage
        if previous is not None and self.state in ("code_read", "measuring", "awaiting_code"):
            log.info("engine: passage %d abandoned for a guard action", previous.id)
        p = self._new_passage(self._now(), item.direction, item.kind)
        p.on_recorded = item.on_recorded
        p.release = item.release
        person = dict(item.person or {})
        person.setdefault("note", item.reason)
        base: Passage | None = None
        if (
            item.subject == AUTO_SUBJECT
            and item.kind == "manual"
            and previous is not None
            and previous.event is not None
            and previous.draft is not None
            and previous.draft.decision == "deny"
            and self.state in ("decided", "gate_open")
        ):
            base = previous  # the guard overrides (or confirms) the kiosk's deny just shown
        src: EventDraft | ManualSubject | None = base.draft if base is not None else None
        temps: tuple[float | None, float | None, float | None] = (None, None, None)
        overrides = base.seq if base is not None else None
        if isinstance(item.subject, ManualSubject):
            src, overrides = item.subject, item.subject.seq
        if item.temp_c is not None:
            # Measured by hand now: it replaces the kiosk's estimate, and there is no sensor
            # pair to go with it (calibration must not pair a clinical reading with one).
            temps = (item.temp_c, None, None)
        elif src is not None:
            temps = (src.temp_c, src.temp_object_c, src.temp_ambient_c)
        p.decided_at = ClockReading.take(self.clock)
        p.draft = EventDraft(
            direction=item.direction,
            decision=item.decision,
            reasons=("guard_override", *(("fever",) if self._hand_fever(item, src) else ())),
            pass_id=src.pass_id if src is not None else None,
            household=(src.household if src is not None else None) or item.household,
            holder=src.holder if src is not None else None,
            temp_c=temps[0],
            temp_object_c=temps[1],
            temp_ambient_c=temps[2],
            latency_ms=0.0,
            operator=item.operator,
            kind=item.kind,
            flags=(
                *item.flags,
                *(f for f in (src.flags if src is not None else ()) if _kept(f)),
                *((f"overrides:{overrides}",) if overrides is not None else ()),
            ),
            person=person,
            decided=p.decided_at,
            audit=item.audit,
            unless=item.unless,
        )
        p.decided_ns = p.started_ns
        self._cross(p)

    def _refused_at_start(self, item: _Manual) -> bool:
        """Whether ``item`` is refused as the engine starts it, for what the guard's console
        looked at changed while it waited behind the decisions before it (committed, in the
        history): an evacuation's start another went first (``_moved``), a pass out whose
        household's quota another outing reached (``_quota_reached``). Then it is not
        started nor recorded: its guard is told (asked again), its hold on a passage is let
        go, and the next guard's action waiting starts; none waiting and the kiosk idle, the
        code kept for later does (the person showing it is not left asked for a pass)."""
        refusal = self._moved(item) or self._quota_reached(item)
        if refusal is None:
            return False
        log.info("engine: a guard's action not started: %s", refusal)
        if item.release is not None:
            item.release(None)  # nothing decided
        if item.on_recorded is not None:
            item.on_recorded(refusal)
        if self.state == "idle":  # as it went idle: a code kept meanwhile is not left waiting
            self._start_waiting()
        elif self._manual_queue and self.state != "deciding":
            self._start_manual(self._manual_queue.popleft())
        return True

    def _moved(self, item: _Manual) -> evacuation.Moved | None:
        """``evacuation.Moved`` for an evacuation's start confirmed over what is no longer
        under way (``seen``): another tablet's start waited with it and went first."""
        if item.evacuation is None or item.seen in (None, evacuation.version_of(self.evacuation)):
            return None
        return evacuation.Moved(self.evacuation)

    def _quota_reached(self, item: _Manual) -> QuotaReached | None:
        """``QuotaReached`` for a pass out its console found the quota of its household (its
        passage's, or the ``household`` named) not reached for and so asked no confirmation
        (``Engine.manual``'s ``quota_checked``), reached now by the rule the console asked
        (``kiosk.policy.quota_reached``, a resident's outing) on the history as the commits
        before it left it: another tablet's outing of the household, checked in the same
        moment, was recorded first. A passage the quota in force does not count (its role's
        flag against ``quota.roles``, ``kiosk.history.counted_outing``, as the history judges
        it) is no outing."""
        subject = item.subject if isinstance(item.subject, ManualSubject) else None
        household = (subject.household if subject is not None else None) or item.household
        roles = self.config.policy.quota.roles
        counted = subject is None or counted_outing(subject.flags, roles)
        if not (item.quota_checked and counted and household is not None):
            return None
        if (item.decision, item.direction) != ("manual_pass", "out"):
            return None
        quota, now = self.config.policy.quota, self.clock.now()
        if not policy.quota_reached(quota, self.history, household, "resident", now, tz=self._tz):
            return None
        return QuotaReached(household)

    def _hand_fever(self, item: _Manual, src: EventDraft | ManualSubject | None) -> bool:
        """Whether a guard's deny is a fever found by hand: a temperature the guard measured
        at or above the threshold, about someone the kiosk had not already read as feverish
        (a person registered at the gate, one without a pass, a passage the kiosk read as
        normal). Its event carries ``fever`` as the kiosk's own fever deny does, so the alarm
        desk raises the card and the reports count it; a guard confirming the kiosk's fever is
        that one fever, counted once."""
        threshold = self._thermo_cfg.fever_threshold_c
        if item.decision != "manual_deny" or item.temp_c is None or item.temp_c < threshold:
            return False
        return src is None or src.temp_c is None or src.temp_c < threshold

    # ---------------------------------------------------------------- time

    def _tick(self) -> None:
        now = self._now()
        p = self.passage
        if p is not None and self.state in ("code_read", "measuring") and p.measurement:
            result = p.measurement.check_timeout(now)
            if result is not None:
                self._on_temperature(p, result)
        elif p is not None and self.state == "awaiting_code":
            waited = now - (p.awaiting_code_since_ns or now)
            if waited >= int(self._eng.code_timeout_s * 1e9):
                self._decide()
        self._tick_gate(now)
        self._expire_direction(now)
        self._settle_fault_lines()
        if (
            self.state == "decided"
            and self._hold_until_ns is not None
            and now >= self._hold_until_ns
            and not self._gate_open
        ):
            self._go_idle()
        if self.backlog:  # paced by idle_probe_s; also after a late commit ended
            self._retry_backlog()

    def _expire_direction(self, now: int) -> None:
        """A direction chosen on the screen and not used by a passage within
        ``code_timeout_s`` goes back to the default: whoever pressed it walked away, and the
        next person must not be recorded going their way."""
        chosen = self._direction_chosen_ns
        if chosen is None or now - chosen < int(self._eng.code_timeout_s * 1e9):
            return
        self._direction_chosen_ns = None
        if self.direction != self._default_direction():
            self.direction = self._default_direction()
            if self.state == "idle":
                self._set_state("idle", self.prompt)

    def _tick_gate(self, now: int) -> None:
        """Lock the gate at the end of its pulse (retrying a relay that failed to), or probe a
        failed relay with the safe command to notice its return."""
        if self.evacuation is not None and now >= self.evacuation.until_ns:
            self._end_evacuation("its time is over")
        if self._gate_close_pending or self._gate_may_be_opening():
            return
        if self._gate_close_at_ns is not None:
            if now >= self._gate_close_at_ns and (
                "gate" not in self.faults or now >= self._gate_probe_ns
            ):
                self._lock_gate()
        elif "gate" in self.faults and now >= self._gate_probe_ns:
            self._gate_probe_ns = now + int(self._eng.idle_probe_s * 1e9)
            self._lock_gate()
