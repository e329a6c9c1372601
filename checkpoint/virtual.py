"""The program in virtual time: the composition root's core and devices, stepped on a FakeClock.

``EngineRunner`` runs the engine on the asyncio loop with the devices in worker threads under
deadlines; that is right on a real clock and wrong on a virtual one (a thread cannot wait in
virtual time). ``VirtualKiosk`` drives the very same objects that ``checkpoint.app.build_core``
wires (the engine of ``core.runner``, the thermometer driver, every ``CameraReader`` with its
watchdog and frame pipeline, the gate driver, the event log, the bus) from the caller's thread,
with the runner's cadences: the thermometer sampled at ``sample_hz`` while the engine wants
readings and every ``idle_probe_s`` otherwise, each camera pumped at its frame rate
(``CameraReader.pump``), the readers' health polled every ``idle_probe_s``, the engine ticked
every ``tick_ms``. No threads and no real waiting: replay and the loop bench run on it.

The engine's requests go through ``DirectPorts``: each decision's ``Crossing`` is carried out
in place (the event log's append, then the gate), its ``Outcome`` answered at once; messages go
to the core's ``EventBus``. Whatever watches decisions subscribes to that
bus (``VirtualKiosk.watch``), exactly as the screens do on the running daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

from drivers.camera import CameraReader
from kiosk.bus import EventBus, Subscription
from kiosk.clock import FakeClock
from kiosk.config.readers import CaptureSource, FakeCameraReaderConfig
from kiosk.core import Core
from kiosk.crossing import Crossing, Outcome
from kiosk.devices import CodeRead, DeviceFault, Gate
from kiosk.engine import Engine
from kiosk.runner import report_reader_health, sample_thermometer
from kiosk.store import AlreadyRecorded, Event, EventDraft, StoreFault

log = logging.getLogger(__name__)

Message = dict[str, Any]

#: A watcher is drained after every engine input, so its queue never holds more than a
#: passage's messages; the bound only guards against a runaway.
WATCH_QUEUE = 10_000


class EventAppender(Protocol):
    """What the ports need of the event log: ``kiosk.store.EventLog``, or a wrapper in front
    of it (replay's full-disk switch, the loop bench's timing)."""

    def append(self, draft: EventDraft) -> Event:
        """Commit one event; raises ``kiosk.store.StoreFault`` when it cannot,
        ``kiosk.store.AlreadyRecorded`` when its condition found its record."""
        ...

    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        """Write an audit row; raises ``kiosk.store.StoreFault`` when it cannot."""
        ...


@dataclass
class DirectPorts:
    """Engine ports that call the event log and the gate directly, in the caller's thread.

    ``store`` is the ``EventLog`` (or anything with its ``append``), ``gate_dev`` the gate
    driver, ``bus`` where published messages go. Set ``engine`` before the first request.
    ``on_message``/``on_gate``/``on_commit`` are for the engine's unit tests, which watch
    the ports themselves; the program watches the bus.
    """

    store: EventAppender
    gate_dev: Gate
    bus: EventBus | None = None
    _: KW_ONLY
    on_message: Callable[[Message], None] | None = None
    on_gate: Callable[[bool], None] | None = None
    on_commit: Callable[[Event], None] | None = None
    engine: Engine | None = None

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("DirectPorts.engine is not set")
        return self.engine

    def cross(self, crossing: Crossing) -> None:
        """Commit, then the gate if the crossing says so, then the one answer (in place)."""
        outcome = crossing.held_back() or self._commit(crossing)
        if outcome.opens_gate:
            outcome = outcome.gate_answered(self._set_gate(True))
        self._engine().on_crossed(outcome)

    def _commit(self, crossing: Crossing) -> Outcome:
        try:
            event = self.store.append(crossing.draft)
        except AlreadyRecorded as exc:  # its condition found its record: nothing written
            return Outcome(crossing, refused=exc)
        except StoreFault as exc:
            return Outcome(crossing, store_fault=exc)
        if self.on_commit is not None:
            self.on_commit(event)
        return Outcome(crossing, event=event)

    def lock_gate(self) -> None:
        self._engine().on_gate_locked(self._set_gate(False))

    def _set_gate(self, open_: bool) -> DeviceFault | None:
        if self.on_gate is not None:
            self.on_gate(open_)
        try:
            self.gate_dev.set_open(open_)
        except DeviceFault as exc:
            return exc
        return None

    def audit(self, action: str, detail: Mapping[str, Any]) -> None:
        try:
            self.store.audit("kiosk", action, detail)
        except StoreFault as exc:
            log.warning("engine audit %s not written: %s", action, exc.reason)

    def publish(self, message: Message) -> None:
        if self.bus is not None:
            self.bus.publish(message)
        if self.on_message is not None:
            self.on_message(message)


class VirtualKiosk:
    """The core's engine and devices stepped in virtual time (see the module docstring).

    ``store`` stands in front of the core's event log when given (replay's full-disk switch,
    the bench's timing wrapper); it must behave as the log does.
    """

    def __init__(self, core: Core, *, store: EventAppender | None = None) -> None:
        if not isinstance(core.clock, FakeClock):
            raise TypeError("VirtualKiosk needs a core built on a FakeClock")
        self.core = core
        self.clock: FakeClock = core.clock
        self.engine = core.runner.engine
        self.ports = DirectPorts(
            store if store is not None else core.store, core.devices.gate, core.bus
        )
        self.ports.engine = self.engine
        # The runner's ports would spawn asyncio tasks; in virtual time every request is
        # answered in place.
        self.engine.ports = self.ports
        self.thermometer = core.devices.thermometer
        self.readers = list(core.devices.readers)
        self.cameras = [r for r in self.readers if isinstance(r, CameraReader)]
        self._watchers: list[tuple[Subscription, Callable[[Message], None]]] = []
        self._start_ns = self.clock.monotonic_ns()

    # ------------------------------------------------------------------ watching

    def watch(self, fn: Callable[[Message], None], name: str = "watcher") -> None:
        """Call ``fn`` with every message the engine publishes from now on (through the bus)."""
        sub = self.core.bus.subscribe(maxsize=WATCH_QUEUE, name=name)
        while sub.get_nowait() is not None:
            pass  # the sticky state/health of before: not news
        self._watchers.append((sub, fn))

    def deliver(self) -> None:
        """Hand the bus's new messages to the watchers (after every engine input)."""
        for sub, fn in self._watchers:
            while (message := sub.get_nowait()) is not None:
                fn(message)

    def close(self) -> None:
        for sub, _ in self._watchers:
            sub.close()
        self._watchers.clear()

    # ------------------------------------------------------------------ inputs

    @property
    def elapsed_s(self) -> float:
        return (self.clock.monotonic_ns() - self._start_ns) / 1e9

    def submit_code(self, text: str, direction: str | None = None, source: str = "scanner") -> None:
        """A code as a serial scanner (or the guard console) hands it over."""
        self.engine.on_code(CodeRead(text, source, self.clock.monotonic_ns()), direction)
        self.deliver()

    def manual(self, **kwargs: Any) -> None:
        self.engine.manual(**kwargs)
        self.deliver()

    def select_direction(self, direction: str) -> None:
        self.engine.select_direction(direction)
        self.deliver()

    def pump_cameras(self) -> None:
        """One frame through each camera reader: watchdog, frame pipeline, codes to the engine."""
        for reader in self.cameras:
            for code in reader.pump():
                self.engine.on_code(code)
                self.deliver()

    def poll_health(self) -> None:
        """What the runner's health loop does: a reader in fault or back to ok, to the engine."""
        report_reader_health(self.engine, self.readers)
        self.deliver()

    def sample_thermometer(self) -> None:
        assert self.thermometer is not None
        sample_thermometer(self.engine, self.thermometer, self.clock)
        self.deliver()

    def tick(self) -> None:
        self.engine.tick()
        self.deliver()

    # ------------------------------------------------------------------ time

    def run(self, duration_s: float, on_time: Callable[[float], None] | None = None) -> None:
        """Advance virtual time to ``duration_s`` in small steps; ``on_time(elapsed_s)`` runs
        first at each step (a scenario applies its due steps there)."""
        cfg = self.core.config
        thermo_dt = 1.0 / cfg.thermometer.thermometry.sample_hz
        cam_dt = 1.0 / self._camera_fps()
        step_dt = min(thermo_dt, cam_dt, cfg.engine.tick_ms / 1000)
        probe_s = cfg.engine.idle_probe_s
        next_thermo = next_probe = next_cam = next_health = 0.0
        needs_temp = self.thermometer is not None and self.engine.needs_temperature
        while (elapsed := self.elapsed_s) <= duration_s:
            if on_time is not None:
                on_time(elapsed)
                self.deliver()
            if self.cameras and elapsed >= next_cam:
                self.pump_cameras()
                next_cam = elapsed + cam_dt
            if elapsed >= next_health:
                self.poll_health()
                next_health = elapsed + probe_s
            if needs_temp and (
                (self.engine.wants_readings and elapsed >= next_thermo) or elapsed >= next_probe
            ):
                self.sample_thermometer()
                next_thermo = elapsed + thermo_dt
                next_probe = elapsed + probe_s
            self.tick()
            self.clock.advance(step_dt)

    def _camera_fps(self) -> float:
        sources = self.core.config.readers.sources
        rates = [
            src.fps for src in sources if isinstance(src, CaptureSource | FakeCameraReaderConfig)
        ]
        return max(rates, default=15.0)
