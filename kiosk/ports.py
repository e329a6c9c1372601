"""The core's seams: what the engine, the runner and the tables need of the objects around them.

Each is a ``typing.Protocol`` satisfied by one production class (named in its docstring) and by
whatever a test or the replay harness puts in its place. The device kinds (``Thermometer``,
``CodeReader``, ``Gate``) are in ``kiosk.devices``; the engine's own output port
(``EnginePorts``: cross, lock_gate, publish) is in ``kiosk.engine``, the values that cross it
(``Crossing``, ``Outcome``) in ``kiosk.crossing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, TypeVar

from sqlite_utils import Database

from kiosk.devices import Health

if TYPE_CHECKING:
    from kiosk.calibration import Calibration
    from kiosk.lists import Lists
    from kiosk.passes import Pass
    from kiosk.policy import ObservingLike
    from kiosk.store import Event, EventDraft

T = TypeVar("T")


class AuditedWriter(Protocol):
    """Reads, and writes that carry their audit row: what the lists and the ledgers need of
    the event log (``kiosk.store.EventLog``) — no write without its row
    (``kiosk.auditing.audited_write``)."""

    #: The boot the log stamps its rows with: a stamp written on a clock NTP has not set keeps
    #: it, to be dated later (``kiosk.queries.clock_of``).
    boot_id: str

    def reader(self) -> Database:
        """A read-only connection for the calling thread."""
        ...

    def submit_audited(
        self,
        fn: Callable[[Database], T],
        actor: str,
        action: str,
        detail: Callable[[T], Mapping[str, Any] | None],
        *,
        skip: Callable[[T], bool] | None = None,
    ) -> T:
        """``submit(fn)`` and its audit row (``detail(result)``) in one transaction; no row
        when ``skip(result)``."""
        ...


class Store(AuditedWriter, Protocol):
    """The event log's writer and readers, as the core's tables use them (``kiosk.store.EventLog``:
    tokens, accounts, statistics, retention)."""

    def submit(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` in one write transaction on the single writer; return its result."""
        ...

    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append one row to the chained audit table."""
        ...


class EventSink(Protocol):
    """The event log as the engine runner uses it (``kiosk.store.EventLog``)."""

    async def append_async(self, draft: EventDraft) -> Event:
        """Commit one event; raises ``kiosk.store.StoreFault`` when it cannot,
        ``kiosk.store.AlreadyRecorded`` when its condition found its record."""
        ...

    async def audit_async(
        self, actor: str, action: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Write an audit row; raises ``kiosk.store.StoreFault`` when it cannot."""
        ...

    def reader(self) -> Database: ...

    def health(self) -> Health: ...

    @property
    def boot_id(self) -> str:
        """The machine's boot the log stamps on its events (the monotonic clock's epoch)."""
        ...


class PassVerifier(Protocol):
    """The issuer keys a pass is checked against (``kiosk.passes.TrustList``)."""

    def verify(self, text: object) -> Pass:
        """The verified pass; raises ``kiosk.passes.PassError`` and nothing else."""
        ...


class ListSource(Protocol):
    """Where the current revocation/quarantine/observation lists come from
    (``kiosk.lists.ListStore``); read at each decision, so changes apply between passages."""

    @property
    def current(self) -> Lists: ...


class ObservationSource(Protocol):
    """Who is under observation, for the policy's ``observation_blocks``
    (``kiosk.observation.ObservationLedger``); read at each decision, like the lists."""

    @property
    def current(self) -> ObservingLike: ...


class History(Protocol):
    """Recent passing events, for the quota and anti-passback (``kiosk.history.PassageHistory``)."""

    @property
    def horizon(self) -> timedelta:
        """How far back the rules look; the runner reloads this much from the log at start."""
        ...

    def record(
        self,
        pass_id: str | None,
        household: str | None = None,
        direction: str | None = None,
        decision: str | None = None,
        ts: datetime | str | None = None,
        flags: Iterable[str] = (),
        *,
        mono_ns: int | None = None,
        peer: bool = False,
    ) -> None: ...

    def load(self, rows: Iterable[Mapping[str, Any]]) -> int: ...

    def forget(
        self,
        pass_id: str | None,
        household: str | None,
        direction: str,
        ts: datetime | str,
        flags: Iterable[str] = (),
    ) -> bool:
        """Take back a peer's passage its gate said it did not open for."""
        ...

    def drop_forgotten(self, passages: Iterable[tuple[str, datetime | str]]) -> int:
        """Drop the passages a resident's forget emptied (their direction and time)."""
        ...

    @property
    def undated(self) -> int:
        """Records stamped on an unsynchronised clock in this process, not dated yet."""
        ...

    def redate(self, wall: datetime, mono_ns: int) -> int: ...

    def exits_in_period(self, household: str, now: datetime, period_days: int) -> int: ...

    def households(self) -> list[str]: ...

    def last_passage(self, pass_id: str, direction: str) -> datetime | None: ...


class CalibrationSource(Protocol):
    """The site calibration for a new measurement (``kiosk.calibration.CalibrationStore``,
    which rereads its file when it changes; ``FixedCalibration`` for one value)."""

    def get(self) -> Calibration: ...


class EngineSeams(TypedDict):
    """What the engine consults, passed by keyword to ``Engine`` and, through it, to
    ``EngineRunner`` (which also reloads ``history`` from the log): ``trust`` verifies passes;
    ``lists`` and ``observation`` (none: nobody is under observation) are read at each
    decision, so changes apply between passages; ``history`` is updated after each committed
    event; ``calibration`` is read at each new measurement (none: the built-in model)."""

    trust: PassVerifier
    lists: ListSource
    history: History
    calibration: NotRequired[CalibrationSource | None]
    observation: NotRequired[ObservationSource | None]


class ListsSyncStatus(Protocol):
    """The office's list-bundle sync as the health report reads it
    (``office.listsync.ListSync``, set on ``Core.lists_sync`` by the daemon when
    ``fleet.lists_url`` is set)."""

    def status(self) -> dict[str, Any]: ...


class Peers(Protocol):
    """The compound's other gates as health and ``/api/v1/peers/poke`` use them
    (``checkpoint.peers.PeerSync``, set on ``Core.peers`` by the daemon when
    ``compound.peers`` is set)."""

    def status(self) -> list[dict[str, Any]]:
        """One row per peer gate: its state, last answer, alarms."""
        ...

    def poke(self, kiosk_id: str) -> bool:
        """Ask peer ``kiosk_id`` now rather than at the next poll; False: no such peer."""
        ...

    def closing(self, kiosk_id: str, at: str, signature: str | None) -> None:
        """Peer ``kiosk_id`` is stopping cleanly at ``at``: shown closed until it answers
        (``KeyError``: no such peer; ``kiosk.peers.PeerForged``, ``PeerPageError``: refused)."""
        ...
