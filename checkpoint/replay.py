"""Scenarios: scripted visitors, faults and clock changes, replayed through the real engine.

A scenario is a TOML file (format in docs/scenarios.md): a start time, optional config
overrides, and ``[[steps]]`` at ``at_s`` seconds, each presenting a visitor (a ``code`` text
as a serial scanner would send it, a signed ``pass`` that replay issues with a throwaway key,
or a ``frame`` image file fed through the real frame pipeline), a ``body_c`` for the
thermometer emulator, device faults, list changes, clock jumps, guard actions and an
``expect``-ation that replay checks.

Three reusable pieces:

* ``load_scenario(path) -> Scenario`` validates the file (``ScenarioError`` names the step and
  field of any mistake, before anything runs);
* ``ScenarioDriver`` resolves each step's visitor (issuing passes) and applies it to a
  ``ScenarioTarget``; ``DeviceTarget`` is the target made of the fake devices (emulated
  thermometer, fake camera, fake gate, the list store, a store-fault switch). Replay drives it
  in virtual time; the demo drives it in real time through the running daemon;
* ``replay(scenario) -> ReplayResult`` builds the program through the composition root
  (``checkpoint.app.build_core``) on a ``FakeClock`` and the scenario's config — the real
  event log, engine, MLX90614 driver on its emulator, ``CameraReader`` on the fake camera,
  fake gate — steps it with ``checkpoint.virtual.VirtualKiosk`` (no threads, no real
  waiting), watches the bus and reports one record per decision.

Keys: replay creates a fresh issuer key per run ("demo", trusted: its public half goes into
the run's temporary trust folder, as a kiosk trusts an issuer) and a second one that is not
trusted ("unknown"); nothing private is ever written to disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlite_utils import Database

from checkpoint.virtual import DirectPorts as DirectPorts
from checkpoint.virtual import VirtualKiosk
from drivers.camera import CameraReader
from drivers.fake_camera import FakeCamera
from drivers.fake_hid import FakeHidReader, FakeHidScanner
from drivers.fake_serial import FakeGM65
from drivers.gate import FakeGate
from drivers.hid_scanner import HidScanner
from drivers.line_scanner import LineScanner
from drivers.mlx90614_emulator import Mlx90614Emulator
from drivers.serial_scanner import SerialScanner
from drivers.thermometer import FakeMlx90614
from kiosk import base45, pass_format, passes
from kiosk.clock import Clock, ClockReading, FakeClock
from kiosk.config import (
    ConfigError,
    KioskConfig,
    parse_config,
    read_toml,
    validation_problems,
)
from kiosk.config.site import SiteConfig
from kiosk.core import Core
from kiosk.devices import CodeRead, CodeSink, Gate, Health
from kiosk.engine import NO_SUBJECT, ManualSubject
from kiosk.links import OVERRIDES, overridden
from kiosk.lists import ListStore
from kiosk.store import Event, EventDraft, EventLog, StoreFault
from kiosk.subjects import subject_in_log

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).parent / "scenarios"

#: In virtual time an injected thermometer hang is bounded this short (a real wait).
VIRTUAL_HANG_S = 0.02

KeyName = Literal["demo", "unknown", "forged", "expired", "not_yet_valid"]

#: ``manual.about``: the visitor of the latest step before, or a person without a pass.
PREVIOUS = "previous"
NOBODY = "none"


class ScenarioError(ValueError):
    """A scenario file that cannot be used: one line naming the file, step and field."""


# --------------------------------------------------------------------------- format


class _Strict(BaseModel):
    """A scenario's keys are as strict as its ``[config]`` (``kiosk.config.Section``): a
    typo is an error, and each value is taken only as its own TOML type (``at_s = "1"`` is an
    error naming the step and key, never 1 s). What TOML writes as an array is taken where
    the model keeps a tuple (``Field(strict=False)``; its items stay strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PassSpec(_Strict):
    """A pass replay issues at the step's time. ``key`` picks how it is signed."""

    id: str | None = Field(None, max_length=32, description="Name to refer to it later.")
    household: str = Field(min_length=1, max_length=32)
    holder: str = Field(min_length=1, max_length=32)
    role: Literal["resident", "staff", "visitor", "delivery"] = "resident"
    days: float = Field(30.0, ge=1 / 24, le=pass_format.MAX_VALID_HOURS // 24)
    """As ``kiosk pass issue --days``: an hour (1/24) to the most hours a pass holds, 2730
    days (a part of an hour made ``issue_pass`` raise, a traceback out of ``kiosk replay``)."""
    starts_in_days: float = Field(0.0, ge=-3650, le=3650)
    key: KeyName = "demo"


class ThermometerFault(_Strict):
    name: Literal["hang", "nack", "timeout", "ffff", "bad_pec", "error_flag", "stuck", "clear"]
    count: int | None = Field(None, ge=1, le=100000, description="Reads affected; none: all.")


class QuarantineSpec(_Strict):
    household: str = Field(min_length=1, max_length=64)
    holder: str | None = Field(None, max_length=64)
    days: int = Field(14, ge=1, le=365)


class ManualSpec(_Strict):
    decision: Literal["manual_pass", "manual_deny"]
    operator: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)
    direction: Literal["in", "out"] | None = None
    kind: Literal["manual", "registration", "vehicle"] = "manual"
    person: dict[str, Any] | None = None
    about: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="Whom it decides: 'previous', a visitor step's name, or 'none'.",
    )


class Expect(_Strict):
    """What the first decision after this step must be. ``reasons``: each must be present."""

    decision: Literal["pass", "deny", "manual_pass", "manual_deny"]
    reasons: tuple[str, ...] = Field((), strict=False)
    exact: bool = Field(False, description="reasons must be exactly these (order ignored)")
    flags: tuple[str, ...] = Field((), strict=False)
    committed: bool = True
    overrides: bool | None = Field(
        None,
        description="true: it carries overrides:<seq> of the passage its manual is about;"
        " false: no overrides flag",
    )


class Step(_Strict):
    at_s: float = Field(ge=0, le=7 * 24 * 3600)
    name: str | None = Field(None, min_length=1, max_length=32)
    note: str | None = Field(None, max_length=200)
    code: str | None = Field(None, max_length=4096)
    pass_: PassSpec | str | None = Field(None, alias="pass")
    frame: str | None = Field(None, max_length=4096)
    body_c: float | None = Field(None, ge=-20, le=80)
    leaves: bool = False
    ambient_c: float | None = Field(None, ge=-20, le=60)
    direction: Literal["in", "out"] | None = None
    thermometer: ThermometerFault | None = None
    camera: Literal["unplug", "replug", "freeze", "unfreeze"] | None = None
    gate: Literal["unplug", "replug"] | None = None
    store: Literal["fail", "recover"] | None = None
    quarantine: QuarantineSpec | None = None
    revoke: str | None = Field(None, max_length=32, description="id of an issued pass")
    clock_jump_s: float | None = Field(None, ge=-86400 * 365, le=86400 * 365)
    manual: ManualSpec | None = None
    expect: Expect | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_visitor(self) -> Step:
        shown = [x for x in (self.code, self.pass_, self.frame) if x is not None]
        if len(shown) > 1:
            raise ValueError("a step shows at most one of code, pass, frame")
        return self

    @property
    def visitor(self) -> bool:
        """Whether someone comes to the kiosk at this step: a code, pass or frame shown, or a
        wrist held to the thermometer (a temperature-first kiosk's passage)."""
        shown = (self.code, self.pass_, self.frame, self.body_c)
        return any(x is not None for x in shown)


class ScenarioFile(_Strict):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    start: datetime = Field(
        default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        description="Wall time at at_s = 0 (timezone required).",
    )
    clock_synced: bool = True
    duration_s: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    present: Literal["camera", "scanner"] = Field(
        "camera", description="How a pass is shown: QR on the fake camera, or scanner text."
    )
    config: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1, max_length=100000)

    @model_validator(mode="after")
    def _checks(self) -> ScenarioFile:
        if self.start.tzinfo is None:
            raise ValueError("start needs a timezone offset, e.g. 2026-03-02T09:00:00+08:00")
        times = [s.at_s for s in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be in at_s order")
        return self


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path | None
    start: datetime
    clock_synced: bool
    present: str
    config: KioskConfig
    steps: tuple[Step, ...]
    duration_s: float

    @property
    def expectations(self) -> int:
        return sum(1 for s in self.steps if s.expect is not None)


#: The member a step's ``pass`` (a table or the id of an earlier one) was tried as.
_UNION_TAGS = ("PassSpec",)


def parse_scenario(data: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        raw = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, _UNION_TAGS)  # in the config's words
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ScenarioError(f"{source}: {problems[0]}{more}") from None
    try:
        config = parse_config(raw.config, f"{source} [config]")
    except ConfigError as exc:
        raise ScenarioError(f"{source}: config.{exc.problems[0]}") from None
    one_way = config.site.direction
    _check_subjects(raw.steps, source)
    for i, step in enumerate(raw.steps):
        if step.frame is not None and config.readers.sources[0].type != "fake_camera":
            raise ScenarioError(f"{source}: steps[{i}].frame needs a fake_camera reader")
        if one_way != "both" and step.direction not in (None, one_way):
            raise ScenarioError(
                f"{source}: steps[{i}].direction: this kiosk only passes '{one_way}'"
            )
        if _way_unsaid(raw.steps, i) and config.site.guard_way() is None:
            raise ScenarioError(
                f"{source}: steps[{i}].manual.direction: at a gate both ways a guard's decision"
                " about a person without a pass says its way ('in' or 'out'), as the console"
                " asks it: set manual.direction or the step's direction"
            )
    last = raw.steps[-1].at_s
    if raw.duration_s is not None and last > raw.duration_s:
        i = next(i for i, step in enumerate(raw.steps) if step.at_s > raw.duration_s)
        at_s = raw.steps[i].at_s
        raise ScenarioError(
            f"{source}: steps[{i}].at_s: {at_s:g} is after duration_s {raw.duration_s:g}"
            " (it would never run)"
        )
    settle = (
        config.thermometer.thermometry.measure_timeout_s * 2
        + config.engine.code_timeout_s
        + config.engine.result_hold_s
        + config.gate.pulse_ms / 1000
        + 2
    )
    return Scenario(
        name=raw.name,
        description=raw.description,
        path=None,
        start=raw.start,
        clock_synced=raw.clock_synced,
        present=raw.present,
        config=config,
        steps=tuple(raw.steps),
        duration_s=raw.duration_s if raw.duration_s is not None else last + settle,
    )


def about_step(steps: tuple[Step, ...] | list[Step], index: int) -> int | None:
    """The visitor step that step ``index``'s guard decision is about (its ``manual.about``),
    or None (a person without a pass). Raises ``ValueError`` when it names no visitor step
    before it."""
    manual = steps[index].manual
    about = manual.about if manual is not None else None
    if manual is None or about in (None, NOBODY):
        return None
    if manual.kind != "manual":
        raise ValueError(f"a {manual.kind} is about nobody in the log")
    if about == PREVIOUS:
        found = [j for j in range(index) if steps[j].visitor]
    else:
        found = [j for j in range(index) if steps[j].name == about and steps[j].visitor]
    if not found:
        raise ValueError(f"{about!r} names no visitor step before this one")
    return found[-1]


def _way_unsaid(steps: list[Step], index: int) -> bool:
    """Whether step ``index`` is a guard's decision about a person without a pass that says
    no way (``manual.direction``, the step's ``direction``): the console asks it at a gate
    both ways."""
    step = steps[index]
    manual = step.manual
    if manual is None or manual.kind != "manual" or manual.direction or step.direction:
        return False
    return about_step(steps, index) is None


def _check_subjects(steps: list[Step], source: str) -> None:
    """Step names are unique; each ``manual.about`` names a visitor step before it; an
    ``expect.overrides = true`` goes with a manual about a passage."""
    names = [s.name for s in steps if s.name is not None]
    for i, step in enumerate(steps):
        if step.name in (PREVIOUS, NOBODY):
            raise ScenarioError(f"{source}: steps[{i}].name: {step.name!r} is a word of about")
        if step.name is not None and names.count(step.name) > 1:
            raise ScenarioError(f"{source}: steps[{i}].name: {step.name!r} names two steps")
        try:
            about = about_step(steps, i)
        except ValueError as exc:
            raise ScenarioError(f"{source}: steps[{i}].manual.about: {exc}") from None
        if step.expect is not None and step.expect.overrides and about is None:
            raise ScenarioError(
                f"{source}: steps[{i}].expect.overrides: the step's manual is about no passage"
                " (manual.about names none)"
            )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; a bare name finds a shipped scenario."""
    p = Path(path)
    if not p.exists() and not p.suffix and (SCENARIO_DIR / f"{p}.toml").exists():
        p = SCENARIO_DIR / f"{p}.toml"
    try:
        data = read_toml(p)  # no further than a config: a scenario is as small
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    scenario = parse_scenario(data, str(p))
    for i, step in enumerate(scenario.steps):
        if step.frame is not None and not (p.parent / step.frame).is_file():
            raise ScenarioError(f"{p}: steps[{i}].frame: no such file {step.frame}")
    return Scenario(**{**scenario.__dict__, "path": p})


def shipped_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


# --------------------------------------------------------------------------- passes


class ScenarioKeys:
    """Throwaway issuer keys for one run: ``demo`` is trusted, ``unknown`` is not."""

    def __init__(self) -> None:
        self.demo = Ed25519PrivateKey.generate()
        self.unknown = Ed25519PrivateKey.generate()
        self.trust = passes.TrustList([("demo", self.demo.public_key())])
        self.issued: dict[str, tuple[str, passes.Pass]] = {}

    def issue(self, spec: PassSpec, now: datetime) -> tuple[str, passes.Pass]:
        """The QR text for ``spec`` at ``now``; ``forged`` alters a valid pass after signing."""
        key = self.unknown if spec.key == "unknown" else self.demo
        starts = spec.starts_in_days
        days = spec.days
        if spec.key == "expired":
            starts, days = -10.0, 3.0
        elif spec.key == "not_yet_valid":
            starts = max(starts, 2.0)
        text, pass_ = passes.issue_pass(
            key,
            spec.household,
            spec.holder,
            role=spec.role,
            days=days,
            now=now + timedelta(days=starts),
        )
        if spec.key == "forged":
            text = forge(text)
        if spec.id:
            self.issued[spec.id] = (text, pass_)
        return text, pass_


def forge(text: str) -> str:
    """A pass whose household was changed after signing (the forgery a kiosk must catch)."""
    raw = bytearray(base45.decode(text[len(pass_format.PREFIX) :]))
    header = passes._HEADER.size  # noqa: SLF001 - the forgery targets the exact layout
    i = header  # first byte of the household text
    raw[i] = raw[i] + 1 if raw[i] < 0x7E else raw[i] - 1
    return pass_format.PREFIX + base45.encode(bytes(raw))


# --------------------------------------------------------------------------- targets


class ScenarioTarget(Protocol):
    """Where a step's actions land: the fakes (``DeviceTarget``) or anything alike."""

    def present_code(self, text: str, direction: str | None, *, camera: bool) -> None: ...

    def present_frame(self, path: Path, direction: str | None) -> None: ...

    def person_arrives(self, body_c: float) -> None: ...

    def person_leaves(self) -> None: ...

    def set_ambient(self, celsius: float) -> None: ...

    def thermometer_fault(self, name: str, count: int | None) -> None: ...

    def camera(self, action: str) -> None: ...

    def gate(self, action: str) -> None: ...

    def store(self, action: str) -> None: ...

    def quarantine(self, household: str, holder: str | None, days: int) -> None: ...

    def revoke(self, pass_id: str) -> None: ...

    def clock_jump(self, seconds: float) -> None: ...

    def subject(self, seq: int, decision: str) -> ManualSubject: ...

    def manual(
        self, spec: ManualSpec, direction: str, subject: ManualSubject | Literal["none"]
    ) -> None: ...


class StoreSwitch:
    """The real ``EventLog`` with an injected failure (a full disk), for replay and the demo.

    While failing, ``append`` raises ``StoreFault`` exactly as the log does on SQLITE_FULL and
    nothing is written; ``recover()`` lets writes through again.
    """

    def __init__(self, store: EventLog) -> None:
        self.store = store
        self.failing = False

    def fail(self) -> None:
        self.failing = True

    def recover(self) -> None:
        self.failing = False

    def _check(self) -> None:
        if self.failing:
            raise StoreFault("store_fault", "database or disk is full (SQLITE_FULL, injected)")

    def append(self, draft: EventDraft) -> Event:
        self._check()
        return self.store.append(draft)

    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        self._check()
        self.store.audit(actor, action, detail)

    async def audit_async(
        self, actor: str, action: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        self._check()
        await self.store.audit_async(actor, action, detail)

    async def append_async(self, draft: EventDraft) -> Event:
        self._check()
        return await self.store.append_async(draft)

    def reader(self) -> Database:
        return self.store.reader()

    def health(self) -> Health:
        return self.store.health()

    @property
    def boot_id(self) -> str:
        return self.store.boot_id


@dataclass
class DeviceTarget:
    """Applies steps to the fake devices. ``code_sink`` receives scanner-style code texts;
    without one, codes are shown on the fake camera. ``on_direction`` sets the next passage's
    direction (a two-way kiosk's screen button); ``on_manual`` records a guard action, about
    a passage of ``event_log`` when the step names one."""

    clock: Clock
    emulator: Mlx90614Emulator | None = None
    camera_dev: FakeCamera | None = None
    gate_dev: Gate | None = None
    store_switch: StoreSwitch | None = None
    list_store: ListStore | None = None
    timezone: str = "UTC"
    code_sink: Callable[[str, str | None], None] | None = None
    on_direction: Callable[[str], None] | None = None
    on_manual: Callable[..., None] | None = None
    on_clock_jump: Callable[[float], None] | None = None
    #: the event log (``Core.store``; not named ``store`` here: that is the scenario's
    #: ``store`` step, ``Target.store``)
    event_log: EventLog | None = None

    def present_code(self, text: str, direction: str | None, *, camera: bool) -> None:
        if direction is not None and self.on_direction is not None:
            self.on_direction(direction)
        if camera and self.camera_dev is not None:
            seed = zlib.crc32(text.encode("utf-8"))
            self.camera_dev.show_code(text, seed=seed)
        elif self.code_sink is not None:
            self.code_sink(text, direction)
        else:
            raise ScenarioError("no way to present a code (no camera and no scanner)")

    def present_frame(self, path: Path, direction: str | None) -> None:
        if direction is not None and self.on_direction is not None:
            self.on_direction(direction)
        if self.camera_dev is None:
            raise ScenarioError("frame steps need the fake camera")
        self.camera_dev.show_image(path)

    def _thermometer(self) -> Mlx90614Emulator:
        if self.emulator is None:
            raise ScenarioError("thermometer steps need the simulated thermometer")
        return self.emulator

    def _lists(self) -> ListStore:
        if self.list_store is None:
            raise ScenarioError("list steps need the list store")
        return self.list_store

    def person_arrives(self, body_c: float) -> None:
        self._thermometer().person_arrives(body_c)

    def person_leaves(self) -> None:
        self._thermometer().person_leaves()

    def visitor_done(self, _decision: Mapping[str, Any] | None = None) -> None:
        """For a watcher of the bus's decisions: the decided visitor walks on, lowering the
        phone, so the next arrival starts from an empty scene (replay and the demo alike)."""
        if self.emulator is not None:
            self.emulator.person_leaves()
        if self.camera_dev is not None and self.camera_dev.showing is not None:
            self.camera_dev.show_nothing()

    def set_ambient(self, celsius: float) -> None:
        self._thermometer().set_ambient(celsius)

    def thermometer_fault(self, name: str, count: int | None) -> None:
        if name == "clear":
            self._thermometer().clear_faults()
        else:
            self._thermometer().inject(name, count)

    def camera(self, action: str) -> None:
        if not isinstance(self.camera_dev, FakeCamera):
            raise ScenarioError("camera steps need the fake camera (readers: fake_camera)")
        getattr(self.camera_dev, action)()

    def gate(self, action: str) -> None:
        if not isinstance(self.gate_dev, FakeGate):
            raise ScenarioError("gate steps need the fake gate (gate.driver.type = 'fake')")
        getattr(self.gate_dev, action)()

    def store(self, action: str) -> None:
        if self.store_switch is None:
            raise ScenarioError("store faults need the store switch")
        getattr(self.store_switch, action)()

    def quarantine(self, household: str, holder: str | None, days: int) -> None:
        from zoneinfo import ZoneInfo

        today: date = self.clock.now().astimezone(ZoneInfo(self.timezone)).date()
        self._lists().add_quarantine(
            household, holder, today, today + timedelta(days=days - 1), actor="scenario"
        )

    def revoke(self, pass_id: str) -> None:
        self._lists().revoke(pass_id, "lost card (scenario)", actor="scenario")

    def clock_jump(self, seconds: float) -> None:
        if self.on_clock_jump is not None:
            self.on_clock_jump(seconds)
        elif isinstance(self.clock, FakeClock):
            self.clock.set_wall(self.clock.now() + timedelta(seconds=seconds))

    def subject(self, seq: int, decision: str) -> ManualSubject:
        """The passage ``seq`` as the subject of a guard's ``decision``, checked as the
        console checks the one a guard chose (``kiosk.subjects``; ``SubjectRefused``, a
        ``ValueError``, when it may not be decided)."""
        if self.event_log is None:
            raise ScenarioError("manual steps about a passage need the event log")
        now = ClockReading.take(self.clock)
        return subject_in_log(self.event_log, seq, decision, now, self.event_log.boot_id)

    def manual(
        self, spec: ManualSpec, direction: str, subject: ManualSubject | Literal["none"]
    ) -> None:
        """The guard's decision about ``subject``: a passage (``subject``), or a person
        without a pass (``NO_SUBJECT``)."""
        if self.on_manual is None:
            raise ScenarioError("manual steps need a guard console")
        self.on_manual(
            decision=spec.decision,
            operator=spec.operator,
            reason=spec.reason,
            direction=direction,
            person=spec.person,
            kind=spec.kind,
            subject=subject,
        )


class ScenarioDriver:
    """Walks a scenario's steps: ``due(elapsed_s)`` and ``apply(step)``, in any time base.

    Replay calls it from its virtual-time loop; the demo from a real-time task.
    """

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        target: ScenarioTarget,
        keys: ScenarioKeys | None = None,
        site: SiteConfig | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.target = target
        self.keys = keys or ScenarioKeys()
        #: The gate played on (the core's; else the scenario's): the way of a guard's step.
        self.site = scenario.config.site if site is None else site
        self._next = 0
        self.applied: list[int] = []
        #: Each visitor step's passage (its ``seq``; None: its decision was not recorded).
        self.passages: dict[int, int | None] = {}
        #: Each manual step's subject as it was resolved (the ``seq``; None: nobody).
        self.subjects: dict[int, int | None] = {}
        self._awaiting: int | None = None
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._next >= len(self.scenario.steps)

    def next_at_s(self) -> float | None:
        return None if self.done else self.scenario.steps[self._next].at_s

    def due(self, elapsed_s: float) -> list[tuple[int, Step]]:
        """Steps whose time has come (each returned once, in order)."""
        out: list[tuple[int, Step]] = []
        steps = self.scenario.steps
        while self._next < len(steps) and steps[self._next].at_s <= elapsed_s + 1e-9:
            out.append((self._next, steps[self._next]))
            self._next += 1
        return out

    def apply(self, index: int, step: Step) -> None:
        t = self.target
        direction = step.direction
        if step.clock_jump_s is not None:
            t.clock_jump(step.clock_jump_s)
        if step.ambient_c is not None:
            t.set_ambient(step.ambient_c)
        if step.thermometer is not None:
            t.thermometer_fault(step.thermometer.name, step.thermometer.count)
        if step.camera is not None:
            t.camera(step.camera)
        if step.gate is not None:
            t.gate(step.gate)
        if step.store is not None:
            t.store(step.store)
        if step.quarantine is not None:
            q = step.quarantine
            with _refused(index, "quarantine"):
                t.quarantine(q.household, q.holder, q.days)
        if step.revoke is not None:
            if step.revoke not in self.keys.issued:
                raise ScenarioError(f"steps[{index}].revoke: no pass with id {step.revoke!r}")
            with _refused(index, "revoke"):  # revoked already: its first revocation stands
                t.revoke(self.keys.issued[step.revoke][1].pass_id)
        if step.leaves:
            t.person_leaves()
        if step.visitor:
            with self._lock:  # before it is shown: a code may be decided as it is handed over
                self._awaiting = index
        if step.body_c is not None:
            t.person_arrives(step.body_c)
        if step.code is not None:
            t.present_code(step.code, direction, camera=False)
        elif step.pass_ is not None:
            text = self.pass_text(index, step.pass_)
            t.present_code(text, direction, camera=self.scenario.present == "camera")
        elif step.frame is not None:
            base = self.scenario.path.parent if self.scenario.path else Path.cwd()
            t.present_frame(base / step.frame, direction)
        if step.manual is not None:
            self._guard(index, step, step.manual)
        self.applied.append(index)

    def _guard(self, index: int, step: Step, manual: ManualSpec) -> None:
        """Step ``index``'s guard decision: about the passage its ``manual.about`` names (the
        ``seq``, checked as the console checks it) or about nobody, going ``_way``."""
        about = self._subject(index, manual)
        with _refused(index, "manual"):
            subject = NO_SUBJECT if about is None else self.target.subject(about, manual.decision)
            self.target.manual(manual, self._way(step, manual, subject), subject)

    def _way(self, step: Step, manual: ManualSpec, subject: ManualSubject | Literal["none"]) -> str:
        """The direction a guard's decision is recorded with, as the console records it
        (``SiteConfig.guard_way``): the one the guard chose (``manual.direction``), else its
        passage's, else the step's ``direction``, else the gate's own at a one-way gate; a
        registration's form shows ``default_direction`` chosen. At a gate both ways a
        decision about a person without a pass says its way (``parse_scenario`` refuses one
        that does not); a passage of no way is refused as the console refuses it."""
        passage = subject.direction if isinstance(subject, ManualSubject) else None
        way = self.site.guard_way(manual.direction, passage, step.direction)
        if way is None and manual.kind != "manual":
            way = self.site.default_direction
        if way is None:
            raise ScenarioError("a guard's decision at a gate both ways needs its direction")
        return way

    def decided(self, message: Mapping[str, Any]) -> None:
        """For each ``decision`` message of the bus (as ``visitor_done``): a kiosk passage
        is the passage of the latest visitor step still waiting for one (the rule that
        matches an expectation to its step: the first decision published after it)."""
        if message.get("type", "decision") != "decision" or message.get("kind") != "passage":
            return
        with self._lock:
            if self._awaiting is not None:
                seq = message.get("seq") if message.get("committed", True) else None
                self.passages[self._awaiting] = None if seq is None else int(seq)
                self._awaiting = None

    def _subject(self, index: int, manual: ManualSpec) -> int | None:
        """The ``seq`` of the passage step ``index``'s ``manual`` is about (None: nobody), or
        a ``ScenarioError`` when that visitor has no recorded decision yet."""
        named = manual.about not in (None, NOBODY)
        visitor = about_step(self.scenario.steps, index) if named else None
        seq = None
        if visitor is not None:
            with self._lock:
                if visitor not in self.passages:
                    raise ScenarioError(
                        f"steps[{index}].manual.about: step {visitor}'s visitor is not decided yet"
                    )
                seq = self.passages[visitor]
            if seq is None:
                raise ScenarioError(
                    f"steps[{index}].manual.about: step {visitor}'s decision was not recorded"
                )
        self.subjects[index] = seq
        return seq

    def reset(self) -> None:
        """Start the steps again (the demo loops its stream); issued passes are kept, the
        steps ``applied`` are those of the new round."""
        self._next = 0
        self.applied.clear()
        with self._lock:
            self.passages.clear()
            self._awaiting = None
        self.subjects.clear()

    def pass_text(self, index: int, spec: PassSpec | str) -> str:
        if isinstance(spec, str):
            if spec not in self.keys.issued:
                raise ScenarioError(f"steps[{index}].pass: no pass with id {spec!r} issued yet")
            return self.keys.issued[spec][0]
        return self.keys.issue(spec, self.clock.now())[0]


@contextlib.contextmanager
def _refused(index: int, field_name: str) -> Iterator[None]:
    """A step the kiosk refuses (a guard action or list change it rejects as bad input) is
    the scenario's mistake: a ``ScenarioError`` naming the step, not a traceback."""
    try:
        yield
    except ScenarioError:
        raise
    except ValueError as exc:
        raise ScenarioError(f"steps[{index}].{field_name}: {exc}") from None


async def play_realtime(
    driver: ScenarioDriver,
    *,
    repeat: bool = False,
    gap_s: float = 10.0,
    time_fn: Callable[[], float] | None = None,
) -> None:
    """Play the steps in real time on the running loop (the demo). Each step is applied in a
    worker thread, because applying may block briefly (a list change commits through the
    event log's writer, a guard action waits for the engine). ``repeat`` loops the stream
    with ``gap_s`` between rounds; cancel the task to stop."""
    import asyncio
    import time

    now = time_fn or time.monotonic
    while True:
        started = now()
        while not driver.done:
            next_at = driver.next_at_s()
            assert next_at is not None
            wait = started + next_at - now()
            if wait > 0:
                await asyncio.sleep(wait)
            for index, step in driver.due(now() - started):
                try:
                    await asyncio.to_thread(driver.apply, index, step)
                except Exception:
                    # One failed step (a list write during a disk fault, say) must not end the
                    # stream: the next visitor still comes.
                    log.exception("scenario step %d failed", index)
        if not repeat:
            return
        await asyncio.sleep(gap_s)
        driver.reset()


# --------------------------------------------------------------------------- replay


@dataclass
class ReplayResult:
    scenario: str
    decisions: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    expectations: int = 0
    gate_commands: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def check_expectation(
    expect: Expect, decision: Mapping[str, Any], overrides: int | None = None
) -> str | None:
    """None when ``decision`` meets ``expect``, else what differs (one line). ``overrides``:
    the ``seq`` of the passage the step's guard decision is about (``expect.overrides``)."""
    problems = []
    if decision["decision"] != expect.decision:
        problems.append(f"decision {decision['decision']} != {expect.decision}")
    got = set(decision["reasons"])
    if expect.exact and got != set(expect.reasons):
        problems.append(f"reasons {sorted(got)} != {sorted(expect.reasons)}")
    missing = [r for r in expect.reasons if r not in got]
    if missing and not expect.exact:
        problems.append(f"reasons {sorted(got)} lack {missing}")
    missing_flags = [f for f in expect.flags if f not in decision.get("flags", [])]
    if missing_flags:
        problems.append(f"flags {decision.get('flags', [])} lack {missing_flags}")
    problems.extend(_override_problems(expect, decision, overrides))
    if bool(decision.get("committed", True)) != expect.committed:
        problems.append(f"committed {decision.get('committed')} != {expect.committed}")
    return "; ".join(problems) or None


def _override_problems(
    expect: Expect, decision: Mapping[str, Any], overrides: int | None
) -> list[str]:
    """``expect.overrides``: true, the decision overrides the passage ``overrides``; false,
    it overrides none."""
    flags = list(decision.get("flags") or [])
    about = overridden(flags)
    if expect.overrides is None or (not expect.overrides and about is None):
        return []
    if not expect.overrides:
        return [f"flags {flags} override passage {about}"]
    if overrides is None:
        return ["overrides: the step's guard decision was about no passage"]
    return [] if about == overrides else [f"flags {flags} lack {OVERRIDES}{overrides}"]


def _decision_record(msg: Mapping[str, Any], t_s: float, step: int | None) -> dict[str, Any]:
    keep = (
        "seq",
        "kind",
        "decision",
        "reasons",
        "flags",
        "direction",
        "temp_c",
        "latency_ms",
        "operator",
        "needs_guard",
        "alarm",
        "committed",
    )
    rec: dict[str, Any] = {"t_s": round(t_s, 3), "step": step}
    rec.update({k: msg.get(k) for k in keep})
    if rec["latency_ms"] is not None:
        rec["latency_ms"] = round(rec["latency_ms"], 1)
    return rec


def build_replay_core(
    scenario: Scenario, data_dir: Path, keys: ScenarioKeys, db_path: str | Path | None = None
) -> Core:
    """The program for ``scenario``, built by the composition root on a ``FakeClock``.

    The scenario's ``demo`` key is trusted the way a kiosk trusts an issuer (its public half
    in the trust folder); the event log goes to ``db_path`` when given. In virtual time the
    drivers wait by advancing the clock (the fake camera is not paced; the thermometer's
    datasheet waits are clock advances) and a hung read is bounded short, never waited for."""
    from checkpoint.app import build_core
    from kiosk.config import trust_dir
    from kiosk.passes import public_key_pem

    config = scenario.config
    if db_path is not None:
        store = config.store.model_copy(update={"path": str(Path(db_path).resolve())})
        config = config.model_copy(update={"store": store})
    trust = trust_dir(config, data_dir)
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "demo.pub").write_bytes(public_key_pem(keys.demo.public_key()))
    clock = FakeClock(start=scenario.start, is_synced=scenario.clock_synced)
    core = build_core(config, data_dir, clock)
    emulator = emulator_of(core)
    if emulator is not None:
        emulator.hang_max_s = VIRTUAL_HANG_S
    core.history.load(core.store.events(0, 10000))
    return core


def fake_camera_of(core: Core) -> FakeCamera | None:
    """The scriptable fake camera behind the core's first fake-camera reader, if any."""
    for reader in core.devices.readers:
        if isinstance(reader, CameraReader) and isinstance(reader.source, FakeCamera):
            return reader.source
    return None


def emulator_of(core: Core) -> Mlx90614Emulator | None:
    """The MLX90614 emulator behind the core's fake thermometer, if it has one."""
    thermometer = core.devices.thermometer
    return thermometer.emulator if isinstance(thermometer, FakeMlx90614) else None


class _Recorder:
    """Watches the bus: one record per decision, each matched with the step that expects it."""

    def __init__(
        self,
        kiosk: VirtualKiosk,
        driver: ScenarioDriver,
        target: DeviceTarget,
        result: ReplayResult,
        on_decision: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.kiosk = kiosk
        self.driver = driver
        self.target = target
        self.result = result
        self.on_decision = on_decision
        self.pending: deque[tuple[int, Expect | None]] = deque()
        self.current_step: int | None = None

    def step(self, index: int, step: Step) -> None:
        self.current_step = index
        if step.expect is not None:
            self.pending.append((index, step.expect))

    def message(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "alarm":
            self.result.alarms.append(msg)
            return
        if msg["type"] != "decision":
            return
        t_s = self.kiosk.elapsed_s
        self.driver.decided(msg)
        step_index, expect = self.pending.popleft() if self.pending else (self.current_step, None)
        rec = _decision_record(msg, t_s, step_index)
        if expect is not None:
            about = self.driver.subjects.get(step_index) if step_index is not None else None
            problem = check_expectation(expect, msg, about)
            rec["expect"] = "ok" if problem is None else f"FAILED: {problem}"
            if problem is not None:
                self.result.failures.append(f"step {step_index} (t={t_s:.1f}s): {problem}")
        self.result.decisions.append(rec)
        # The visitor walks on once decided (a temperature-first kiosk would otherwise start
        # a new passage for the same person when the result screen clears).
        self.target.visitor_done(msg)
        if self.on_decision is not None:
            self.on_decision(rec)

    def unmet(self) -> None:
        for index, expect in self.pending:
            if expect is not None:
                self.result.failures.append(f"step {index}: expected a {expect.decision}, got none")


def replay(
    scenario: Scenario,
    *,
    db_path: str | Path | None = None,
    on_decision: Callable[[dict[str, Any]], None] | None = None,
    keys: ScenarioKeys | None = None,
) -> ReplayResult:
    """Run ``scenario`` through the program on fake devices in virtual time.

    The program is what the daemon runs, built by the composition root
    (``checkpoint.app.build_core``): the real event log, engine, MLX90614 driver on the
    emulator, ``CameraReader`` (watchdog and frame pipeline) on the fake camera, fake gate,
    driven by ``VirtualKiosk`` with no threads and no real waiting."""
    keys = keys or ScenarioKeys()
    result = ReplayResult(scenario.name, expectations=scenario.expectations)
    with tempfile.TemporaryDirectory(prefix="kiosk-replay-") as tmp:
        core = build_replay_core(scenario, Path(tmp), keys, db_path)
        try:
            _run(scenario, core, keys, result, on_decision)
        finally:
            core.close()
    return result


#: How long replay waits (real time) for a scanner driver to read what its fake sent.
SCANNER_READ_S = 2.0


class ScannerFakes:
    """The scenario's scanners, each its real driver on a fake device: a code is typed into
    the fake (keyboard mode: US keys, else Alt codes) or sent down its pty (serial) and the
    driver is pumped in replay's thread (``LineScanner.pump``), so a code takes the gate's
    path: line ends, hygiene, hold-off. A ``serial`` or ``hid`` source's port or node is a
    fake's for the run; a ``fake_hid`` source brings its own."""

    def __init__(self, readers: list[Any]) -> None:
        self._scanners: list[tuple[LineScanner[Any], FakeGM65 | FakeHidScanner]] = []
        for reader in readers:
            fake: FakeGM65 | FakeHidScanner
            if isinstance(reader, FakeHidReader):
                fake = reader.fake
                fake.replug()
            elif isinstance(reader, HidScanner):
                fake = FakeHidScanner()
                fake.stand_in_for(reader)
            elif isinstance(reader, SerialScanner):
                fake = FakeGM65()  # a trigger-mode module's codes come unasked here
                reader.port = fake.port
            else:
                continue
            self._scanners.append((reader, fake))

    def __bool__(self) -> bool:
        return bool(self._scanners)

    def present(self, text: str, sink: CodeSink) -> bool:
        """``text`` scanned on the first scanner and read by its driver; False when no key
        of a keyboard-mode scanner types it (the demo hands such a code over as it is)."""
        reader, fake = self._scanners[0]
        try:
            if isinstance(fake, FakeHidScanner):
                try:
                    fake.scan(text)
                except ValueError:
                    fake.scan(text, alt_codes=True)
            else:
                fake.scan(text)
        except ValueError:
            return False
        deadline = time.monotonic() + SCANNER_READ_S
        while reader.bytes_read < fake.sent and time.monotonic() < deadline:
            reader.pump(sink, wait_ms=20)
        return True

    def pump(self, sink: CodeSink) -> None:
        for reader, _ in self._scanners:
            reader.pump(sink)

    def close(self) -> None:
        for reader, fake in self._scanners:
            reader.stop()
            fake.close()


def _run(
    scenario: Scenario,
    core: Core,
    keys: ScenarioKeys,
    result: ReplayResult,
    on_decision: Callable[[dict[str, Any]], None] | None,
) -> None:
    store = StoreSwitch(core.store)
    kiosk = VirtualKiosk(core, store=store)
    gate = core.devices.gate
    start_ns = core.clock.monotonic_ns()
    if isinstance(gate, FakeGate):
        gate.on_command = lambda c: result.gate_commands.append(
            (round((c.mono_ns - start_ns) / 1e9, 3), c.open_)
        )
    scanners = ScannerFakes(list(core.devices.readers))

    def read(direction: str | None) -> CodeSink:
        def sink(code: CodeRead) -> None:
            kiosk.engine.on_code(code, direction)
            kiosk.deliver()

        return sink

    def scanned(text: str, direction: str | None) -> None:
        if not scanners.present(text, read(direction)):
            kiosk.submit_code(text, direction)

    target = DeviceTarget(
        core.clock,
        emulator=emulator_of(core),
        camera_dev=fake_camera_of(core),
        gate_dev=gate,
        store_switch=store,
        list_store=core.lists,
        timezone=core.config.site.timezone,
        code_sink=scanned if scanners else kiosk.submit_code,
        on_direction=kiosk.select_direction,
        on_manual=kiosk.manual,
        event_log=core.store,
    )
    driver = ScenarioDriver(scenario, core.clock, target, keys, site=core.config.site)
    recorder = _Recorder(kiosk, driver, target, result, on_decision)
    kiosk.watch(recorder.message, name="replay")

    def on_time(elapsed: float) -> None:
        scanners.pump(read(None))
        for index, step in driver.due(elapsed):
            recorder.step(index, step)
            driver.apply(index, step)
            kiosk.deliver()

    try:
        kiosk.run(scenario.duration_s, on_time)
    finally:
        kiosk.close()
        scanners.close()
    recorder.unmet()


def format_record(rec: Mapping[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False, sort_keys=False)
