"""Device interfaces, by kind. Real drivers and fakes in ``drivers/`` implement them.

Every blocking call here runs in a worker thread owned by the engine's runner, never on the
asyncio loop, and every one may raise ``DeviceFault``: a fault is reported, never turned into
a value. A bad reading must never become a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

HealthState = Literal["ok", "degraded", "fault", "absent"]


@dataclass(frozen=True)
class Health:
    """What a device says about itself, for ``/api/v1/health`` and the guard screen."""

    state: HealthState
    detail: str = ""
    since_mono_ns: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class DeviceFault(Exception):
    """A device could not deliver a trustworthy result; ``reason`` is a reason code
    (docs/policy.md)."""

    reason = "sensor_fault"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class SensorFault(DeviceFault):
    reason = "sensor_fault"


class ReaderFault(DeviceFault):
    reason = "reader_fault"


class GateFault(DeviceFault):
    reason = "gate_fault"


class GateHeldShut(GateFault):
    """An open refused on purpose, not a relay's failure: the kiosk's stop has commanded the
    gate locked, and nothing opens it again (``EngineRunner.lock_for_stop``). A pass whose
    open is refused so did not go through: the engine records it as not let through, for
    this reason (``stopping``), and the screen shows that, not the pass."""

    reason = "stopping"


@dataclass(frozen=True)
class ThermoReading:
    """One checked thermometer read: object (skin) and ambient (sensor die) in °C."""

    object_c: float
    ambient_c: float
    mono_ns: int


@runtime_checkable
class Thermometer(Protocol):
    name: str

    def read(self) -> ThermoReading:
        """Blocking checked read; raises ``SensorFault`` instead of returning garbage."""

    def health(self) -> Health: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CodeRead:
    """A decoded, hygiene-checked code text, tagged with where and when it was seen."""

    text: str
    source: str
    mono_ns: int
    decode_ms: float = 0.0


CodeSink = Callable[[CodeRead], None]


@runtime_checkable
class CodeReader(Protocol):
    name: str

    def start(self, sink: CodeSink) -> None:
        """Start the reader's own worker thread; each accepted code is passed to ``sink``.

        ``sink`` is thread-safe (the engine hops it onto its loop)."""

    def stop(self) -> None: ...

    def health(self) -> Health: ...


@runtime_checkable
class FrameKeeper(Protocol):
    """A code reader that keeps its latest camera frame (for the kiosk screen's preview)."""

    def latest_frame(self) -> tuple[Any, int] | None:
        """``(frame, mono_ns)`` of the newest frame, or None before the first."""


@runtime_checkable
class Gate(Protocol):
    name: str

    def set_open(self, open_: bool) -> None:
        """Command the relay to release (True) or lock (False) the gate; raises ``GateFault``.

        The engine times the pulse with its own clock, so replay runs in virtual time."""

    def health(self) -> Health: ...

    def close(self) -> None: ...
