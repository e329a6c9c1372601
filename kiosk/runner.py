"""EngineRunner: the engine on the asyncio loop, devices in threads under deadlines.

The engine itself is synchronous and pure; this module is what makes it safe on real
hardware:

* **One deadline mechanism for every blocking device call.** Each device (thermometer, gate)
  has its own daemon worker thread (``DeviceWorker``); the loop awaits the call for at most
  ``EngineSection.device_deadline_ms``. A call that does not return in time becomes a
  ``DeviceFault`` for the engine, and while the abandoned call is still stuck in the driver
  the next calls to that device fail fast instead of piling up threads. A hung I2C read or a
  wedged USB relay therefore never stalls the loop: a code shown afterwards is still decided.
* **Readers hop onto the loop.** A reader's thread calls the sink, which only does
  ``loop.call_soon_threadsafe``; the engine is only ever touched from the loop thread.
* **Commit before the relay fires.** The engine hands over one ``Crossing`` per decision
  (``kiosk.crossing``); the runner commits its draft through ``EventLog.append_async`` with a
  deadline (``store_deadline_ms``), then opens the gate if the crossing says so for that
  commit, then answers the engine once (``on_crossed``). A commit that misses its deadline is
  answered as a store fault (the gate stays shut); if it lands later, the engine is told
  (``on_late_commit``) so nothing is recorded twice.
* **Heartbeat.** The tick task stamps the loop's heartbeat; ``loop_healthy(max_age_s)``
  answers from any thread (the systemd watchdog pings only while it is true).

The runner does not own the devices or the event log: the composer (``checkpoint.app``) builds
and closes them. ``start()`` starts the readers; ``stop()`` locks the gate, then stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from kiosk.bus import EventBus
from kiosk.clock import Clock, ClockReading, earliest
from kiosk.config import KioskConfig
from kiosk.crossing import Crossing, Outcome
from kiosk.dating import dated_source
from kiosk.deadline import Abandoned, DeviceWorker, StopBudget, in_daemon_thread
from kiosk.devices import (
    CodeRead,
    CodeReader,
    DeviceFault,
    Gate,
    GateFault,
    GateHeldShut,
    Health,
    SensorFault,
    Thermometer,
)
from kiosk.engine import Engine
from kiosk.files import read_snapshot, streamed_rows
from kiosk.links import NOT_OPENED_ROWS, not_opened
from kiosk.logs import RepeatedFailure
from kiosk.peers import load_peer_rows
from kiosk.people import forgotten_passages, last_forget
from kiosk.ports import EngineSeams, EventSink
from kiosk.standby import keep_held
from kiosk.store import (
    AlreadyRecorded,
    Event,
    EventDraft,
    StoreFault,
    decode_event_row,
    format_ts,
)

log = logging.getLogger(__name__)

#: A stop waits this long at most for the loop's tasks to end once cancelled, and for its
#: readers to stop (all at once): each within the stop's budget too (``StopBudget``).
STOP_TASKS_S = 2.0
STOP_READERS_S = 2.0


def report_reader_health(engine: Engine, readers: Sequence[CodeReader]) -> None:
    """Tell the engine which readers are in fault and which are back (the runner's health
    loop; replay does the same in virtual time)."""
    for reader in readers:
        h = reader.health()
        if h.state == "fault":
            engine.on_reader_fault(reader.name, h.detail or "reader fault")
        elif h.state == "ok":
            engine.on_reader_ok(reader.name)


def sample_thermometer(engine: Engine, thermometer: Thermometer, clock: Clock) -> None:
    """One read handed to the engine in place: the reading, or the fault (virtual time: replay,
    the bench, tests; the runner does the same through its thermometer worker, with a
    deadline)."""
    try:
        reading = thermometer.read()
    except SensorFault as fault:
        engine.on_sensor_fault(fault, clock.monotonic_ns())
    else:
        engine.on_reading(reading)


def _health_dict(h: Health) -> dict[str, Any]:
    return {"state": h.state, "detail": h.detail}


#: The events the passage history holds: passing ones.
PASSING = "decision IN ('pass', 'manual_pass')"


#: An event of this boot stamped before NTP synced and not dated yet (``kiosk.dating``).
_UNDATED = "clock_synced = 0 AND boot_id = :boot"
#: Not dated by its boot's first synchronised event (``dated_events``' first half).
_NOT_REDATED = (
    "NOT EXISTS (SELECT 1 FROM boot_clock b WHERE b.boot_id = events.boot_id"
    " AND b.seq > events.seq)"
)
_COLUMNS = "seq, pass_id, household, direction, decision"


def _history_sql(passing: str = PASSING, *, dated: bool = False) -> str:
    """The passing events of the history's look-back (``:since``) in ``seq`` order
    (``passing``: another kind of row); ``dated``: of a log with events stamped before NTP
    synced, those its boot has not dated (``_history_rows`` adds the others). On an index:
    one condition with ``OR`` (or ``ORDER BY seq`` over ``events``) had SQLite walk the
    whole log at every start, a year of rows read from the card for a month's passages. The
    rows from the first ``seq`` stamped since (found on ``events_ts``) are walked in ``seq``
    order, the order they are stored in: read on the ts index and then sorted, a month of
    passages went through SQLite's temp files, and a card with a few MB free refused the
    daemon's start (``SQLITE_FULL``)."""
    undated = f"CASE WHEN {_UNDATED} THEN mono_ns END" if dated else "NULL"
    kept = f" AND (clock_synced = 1 OR {_NOT_REDATED})" if dated else ""
    return (
        f"SELECT {_COLUMNS}, ts, flags, {undated} AS undated_mono_ns FROM events"  # noqa: S608
        " WHERE seq >= (SELECT min(seq) FROM events INDEXED BY events_ts WHERE ts >= :since)"
        f" AND ts >= :since AND {passing}{kept} ORDER BY seq"
    )


def _undated_sql(passing: str = PASSING) -> str:
    """This boot's passing events not dated yet, whatever their stamp, in ``seq`` order
    (index ``events_unsynced``: ``boot_id``, then ``seq``)."""
    return (
        f"SELECT {_COLUMNS}, ts, flags, mono_ns AS undated_mono_ns"  # noqa: S608
        f" FROM events INDEXED BY events_unsynced WHERE {_UNDATED} AND {_NOT_REDATED}"
        f" AND {passing} ORDER BY seq"
    )


def _redated_sql(passing: str = PASSING) -> str:
    """The passing events stamped before NTP synced that their boot dated since, at that
    time; unordered (boot by boot: a ``seq`` order would be a temp sort), and few: a boot's
    first minutes before NTP stepped its clock."""
    return (
        f"SELECT {_COLUMNS}, dated_ts AS ts, flags, NULL AS undated_mono_ns"  # noqa: S608
        f" FROM redated_events WHERE dated_ts >= :since AND {passing}"
    )


def _seq(row: Mapping[str, Any]) -> int:
    return int(row["seq"])


def _by_seq(*streams: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The rows of ``streams`` (each in ``seq`` order) in ``seq`` order, each ``seq`` once
    (a row of this boot not dated yet and stamped since is in two)."""
    last: int | None = None
    for row in heapq.merge(*streams, key=_seq):
        if _seq(row) != last:
            last = _seq(row)
            yield row


@contextlib.contextmanager
def _history_rows(
    reader: Any, source: str, params: Mapping[str, Any], passing: str = PASSING
) -> Iterator[Iterator[Mapping[str, Any]]]:
    """The look-back's rows (``_history_sql``) in ``seq`` order, one at a time: in a log
    with events stamped before NTP synced (``source``: ``dated_events``), also this boot's
    not dated yet and those dated since, each read in its own order and merged here (one
    ``UNION ... ORDER BY seq`` sorted them all in SQLite's temp files), in one snapshot."""
    if source == "events":
        with streamed_rows(reader, _history_sql(passing), params) as rows:
            yield rows
        return
    with read_snapshot(reader.conn):
        redated = sorted(reader.query(_redated_sql(passing), params), key=_seq)
        with (
            streamed_rows(reader, _history_sql(passing, dated=True), params) as since,
            streamed_rows(reader, _undated_sql(passing), params) as undated,
        ):
            yield _by_seq(since, redated, undated)


class EngineRunner:
    """Runs an ``Engine`` on the asyncio loop with the real (or fake) devices and event log.

    Everything is injected: ``config``, ``clock``, the ``thermometer``, the code ``readers``,
    the ``gate``, the event log (``store``, a ``kiosk.store.EventLog``), optionally the ``bus``
    the screens subscribe to, and by keyword the engine's seams (``kiosk.ports.EngineSeams``:
    ``trust``, ``lists``, ``history``, which is rebuilt from the event log at ``start()``,
    ``calibration``, ``observation``).
    """

    def __init__(
        self,
        config: KioskConfig,
        clock: Clock,
        *,
        thermometer: Thermometer | None,
        readers: Sequence[CodeReader],
        gate: Gate,
        store: EventSink,
        bus: EventBus | None = None,
        **seams: Unpack[EngineSeams],
    ) -> None:
        self.config = config
        self.clock = clock
        self.thermometer = thermometer
        self.readers = list(readers)
        self.gate = gate
        self.store = store
        #: Where a stop keeps the decisions the log never took (the data dir); None: nowhere.
        self.held_dir: Path | None = None
        self.bus = bus or EventBus()
        eng = config.engine
        self._deadline_s = eng.device_deadline_ms / 1000
        self._store_deadline_s = eng.store_deadline_ms / 1000
        self.engine = Engine(config, clock, _RunnerPorts(self), **seams)
        self.history = self.engine.history
        # The thermometer's own deadline is its driver's (a read older than that is a hang,
        # the driver's health says the same); other devices use the engine's.
        thermo_deadline_s = config.thermometer.driver.read_deadline_ms / 1000
        self._thermo_worker = DeviceWorker("thermometer", thermo_deadline_s, SensorFault)
        self._gate_worker = DeviceWorker("gate", self._deadline_s, GateFault)
        #: The relay's health as last asked in its device thread (``_refresh_gate_health``).
        self._gate_health: Health | None = None
        #: When each device's fault began, as the health reports saw it (``health``): device
        #: (the readers as one, ``reader``) -> the time of the first report that had it, or
        #: of the engine's raise of a fault it holds. Known only while the daemon runs: after
        #: a restart a fault still standing is a new incident (docs/screens.md).
        self._fault_since: dict[str, str] = {}
        #: The engine's raise (``Engine.fault_began``) of each fault of ``_fault_since`` it
        #: holds, as the last report saw it: another is the fault raised again meanwhile.
        self._fault_raised: dict[str, int] = {}
        #: Held while ``_faults_began`` reads and replaces ``_fault_since``: the health
        #: report is asked from several threads (the console's pages, the health loop), and
        #: two at once each found a new fault and dated it by its own ``now``.
        self._fault_since_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        #: The engine's audit rows being written (``_spawn_audit``): not crossings.
        self._audits: set[asyncio.Future[None]] = set()
        #: Commits answered as store faults (past their deadline) still under way: their end
        #: is the engine's (``on_late_commit``), and the stop's last writes wait for it.
        self._late_commits: set[asyncio.Future[Event]] = set()
        self._wake = asyncio.Event()
        # Relay commands one after the other: an open committed while the lock is still
        # under way waits for it (the worker would refuse it as hung).
        self._gate_order = asyncio.Lock()
        self._beat_ns: int | None = None
        self._tick_failures = RepeatedFailure(
            log, "engine tick failed", "engine tick working again"
        )
        self._started = False
        #: The stop's lock, once the stop began (no open is commanded any more: ``_set_gate``):
        #: True once the relay obeyed it, False once it did not (failed, stuck, given up).
        self._stop_lock: asyncio.Future[bool] | None = None
        self.max_tick_lag_ms = 0.0
        self.codes_received = 0
        self.history_loaded = 0
        # The last resident's forget whose passages the history dropped (``drop_forgotten``).
        self._forgets_seen = 0
        self._forgets_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, loaded: Callable[[], object] | None = None) -> None:
        """Rebuild the history, start the readers and the loop tasks. ``loaded``: called in a
        thread once the history is read, before anything is decided or commanded (the
        daemon's start row: ``checkpoint.app.record_start``)."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.current_thread()
        self._wake = asyncio.Event()
        self._gate_order = asyncio.Lock()
        self._stop_lock = None
        self.engine.stopping = False  # a runner started again after a stop decides again
        self.bus.bind(self._loop)
        # Before the log is read: a forget committed meanwhile is looked at again, never missed.
        await asyncio.to_thread(self._forgets_from_here)
        self.history_loaded = await asyncio.to_thread(self._load_history)
        if loaded is not None:
            await asyncio.to_thread(loaded)
        # Whatever the relay was left at (a crash mid-pulse: a USB relay keeps its coil across
        # the daemon's death), command it locked first; a failure is the engine's gate fault,
        # retried until it locks.
        await self._lock_gate()
        for reader in self.readers:
            reader.start(self._sink_for(reader))
        self._beat_ns = self.clock.monotonic_ns()
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name="engine-tick"),
            asyncio.create_task(self._health_loop(), name="engine-health"),
        ]
        if self.thermometer is not None and self.engine.needs_temperature:
            self._tasks.append(asyncio.create_task(self._thermo_loop(), name="engine-thermo"))
        self._started = True
        self.publish(self.engine.snapshot())
        log.info("engine runner started (%d readers)", len(self.readers))

    async def stop(self, budget: StopBudget | None = None) -> None:
        """Stop the loop tasks and the readers; leave the gate commanded locked: ``lock_for_stop``
        then ``finish_stop``, each step within ``budget`` (by default, its own caps only)."""
        budget = budget or StopBudget(math.inf)
        if await self.lock_for_stop(budget):
            await self.finish_stop(budget)

    @property
    def stopping(self) -> bool:
        """The stop has begun (``lock_for_stop``, ``Engine.begin_stop``): nothing is decided
        any more, the gate is (being) locked for good; the faces refuse what would decide at
        once (``ui.guard.deps``), and the engine whatever gets past them (``Stopping``)."""
        return self.engine.stopping

    async def lock_for_stop(self, budget: StopBudget) -> bool:
        """The stop's first part, before anything that may wait on the storage or the network:
        no code is decided from here, the loop's tasks are cancelled, the gate is commanded
        locked, and nothing opens it after (``_set_gate`` refuses: ``GateHeldShut``); then a
        crossing still under way is waited for (its commit bounded by ``store_deadline_ms``):
        a pass it commits is recorded as not let through (``stopping``) once the relay obeyed
        the lock, never opened for and locked again at once. False for a runner never started
        (closed now)."""
        if not self._started:
            self.close()
            return False
        self._started = False
        self.engine.begin_stop()
        for task in self._tasks:
            task.cancel()  # their end is waited for after the lock (``finish_stop``)
        await self._lock_at_stop(budget)
        pending = list(self._inflight)
        if pending:
            step = "crossing under way"
            own_s = self._store_deadline_s + self._deadline_s
            _, left = await asyncio.wait(pending, timeout=budget.grant(step, own_s))
            if left:
                budget.gave_up(step)
        return True

    async def finish_stop(self, budget: StopBudget) -> None:
        """The stop's rest, the gate locked: the loop's tasks' end, the readers (all at once),
        the decisions held by a store fault (``_flush_backlog``), each within ``budget``."""
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, left = await asyncio.wait(tasks, timeout=budget.grant("engine tasks", STOP_TASKS_S))
            if left:
                budget.gave_up("engine tasks")
        await self._stop_readers(budget)
        await self._flush_backlog(budget)
        self.close()

    async def _stop_readers(self, budget: StopBudget) -> None:
        """Every reader stopped at once, each in a daemon thread: one stuck in its driver is
        said and left to the process's exit."""
        if not self.readers:
            return
        grant = budget.grant("readers", STOP_READERS_S)
        outcomes = await asyncio.gather(
            *(in_daemon_thread(f"kiosk-stop-{r.name}", r.stop, grant) for r in self.readers),
            return_exceptions=True,
        )
        for reader, outcome in zip(self.readers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("reader %s did not stop cleanly: %s", reader.name, outcome)
        if any(isinstance(outcome, Abandoned) for outcome in outcomes):
            budget.gave_up("readers")

    async def _flush_backlog(self, budget: StopBudget | None = None) -> None:
        """Records held in memory by a store fault, and the rows of crossings still under way
        (a pass committing past the stop's wait for it: its ``stopping`` row): those ended
        first, then one last try (within the store deadline) before they are gone, then kept
        in a file (``_keep_held``, within the store deadline too), all within ``budget``; an
        error line says how many were not written."""
        budget = budget or StopBudget(math.inf)
        eng = self.engine
        if not eng.backlog and not self._under_way():
            return
        step = "held decisions"
        loop = asyncio.get_running_loop()
        end = loop.time() + budget.grant(step, 2 * self._store_deadline_s)
        tried_by = min(end, loop.time() + self._store_deadline_s)
        await self._settle(tried_by)  # a late pass's row joins the backlog as it lands
        eng.flush_backlog()
        await self._settle(tried_by)
        if not eng.backlog:
            return
        kept_s = max(0.0, min(self._store_deadline_s, end - loop.time()))
        if not await self._keep_held(list(eng.backlog), kept_s):
            budget.gave_up(step)

    def _under_way(self) -> set[asyncio.Future[Any]]:
        """The crossings and the late commits not ended yet."""
        return {*self._inflight, *self._late_commits}

    async def _settle(self, until: float) -> None:
        """Wait until nothing is under way (``_under_way``; what ends may start the next
        held row's commit, waited for too), or the loop's clock reads ``until``."""
        loop = asyncio.get_running_loop()
        while (busy := self._under_way()) and loop.time() < until:
            await asyncio.wait(
                busy, timeout=until - loop.time(), return_when=asyncio.FIRST_COMPLETED
            )

    async def _keep_held(self, drafts: list[EventDraft], timeout_s: float) -> bool:
        """The decisions the log never took, kept beside it in a file when the card still
        takes one (``kiosk.standby.keep_held``) within ``timeout_s``; the journal says where,
        or that it could not. False: the card did not answer in time (not waited for longer)."""
        where = self.held_dir
        said = f"stopping with {len(drafts)} event(s) held in memory and not written"
        if where is None:
            log.error(said)
            return True
        now = self.clock.now()
        args = (drafts, where, self.config.site.kiosk_id, self.store.boot_id, now)
        try:  # on the card that refused the log: bounded as a commit is (a stalled card)
            path = await in_daemon_thread("kiosk-keep-held", lambda: keep_held(*args), timeout_s)
        except (OSError, Abandoned) as exc:
            log.error("%s; they could not be kept in %s either: %s", said, where, exc)
            return not isinstance(exc, Abandoned)
        log.error("%s to the log; kept (masked) in %s", said, path)
        return True

    async def _lock_at_stop(self, budget: StopBudget) -> None:
        """Command the gate locked; from here no open is commanded (``_set_gate``), and an
        open already commanded is answered once this lock is (``_stop_lock``)."""
        self._stop_lock = obeyed = asyncio.get_running_loop().create_future()
        try:
            obeyed.set_result(await self._command_lock_at_stop(budget))
        finally:
            if not obeyed.done():
                obeyed.set_result(False)

    async def _command_lock_at_stop(self, budget: StopBudget) -> bool:
        """The stop's lock; True when the relay obeyed it (the engine told either way). A relay
        command still stuck in the driver (an open past its deadline) may go through later:
        wait for it a little (within the budget's grant), and if it is still stuck, queue the
        lock behind it so the gate never ends open after the kiosk stopped."""
        step = "gate lock"
        loop = asyncio.get_running_loop()
        # One command's deadline at least, however little the budget left (a start that
        # used it all up): the gate is commanded locked at every stop.
        end = loop.time() + budget.grant(step, 2 * self._deadline_s, at_least_s=self._deadline_s)
        worker = self._gate_worker
        if not await self._take_gate_order(end - loop.time()):
            worker.call_after(self.gate.set_open, False)  # behind the command holding it
            budget.gave_up(step)
            return False
        try:
            if worker.busy:
                wait_s = max(0.0, min(self._deadline_s, end - loop.time()))
                await asyncio.to_thread(worker.wait_idle, wait_s)
            if worker.busy:
                log.warning("gate command still stuck at stop; the lock follows it when it returns")
                worker.call_after(self.gate.set_open, False)
                budget.gave_up(step)
                return False
            deadline_s = max(0.0, min(self._deadline_s, end - loop.time()))
            try:
                await worker.call(self.gate.set_open, False, deadline_s=deadline_s)
            except Exception as exc:  # noqa: BLE001 - a driver bug is a gate fault (_command_gate)
                fault = exc if isinstance(exc, DeviceFault) else GateFault(f"gate error: {exc}")
                log.warning("gate could not be locked at stop: %s", fault)
                self.engine.on_gate_locked(fault)
                return False
            # What opened it before (a pulse, an evacuation) holds it open no more.
            self.engine.on_gate_locked()
            return True
        finally:
            if self._gate_order.locked():
                self._gate_order.release()

    async def _take_gate_order(self, timeout_s: float) -> bool:
        """The relay's command order (``_gate_order``), within ``timeout_s`` when another
        command holds it (its call ends at its deadline); at once when it is free."""
        if not self._gate_order.locked():
            await self._gate_order.acquire()
            return True
        try:
            await asyncio.wait_for(self._gate_order.acquire(), max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Release the device worker threads (``stop`` does it; a runner never started, as
        in tests of the screens, needs only this)."""
        self._thermo_worker.stop()
        self._gate_worker.stop()

    def _load_history(self) -> int:
        """Passing events within the history's horizon, read from the log (the truth). The
        horizon is measured back from the earliest real time can be (``kiosk.clock.earliest``):
        a clock not synchronised that reads days fast would leave out this morning's outings,
        and nothing loads them again once NTP steps it back."""
        start = earliest(self.clock) - self.history.horizon
        since = format_ts(start)
        reader = self.store.reader()
        # An event stamped before NTP stepped the clock, at the time its boot's clock gives it.
        source, _ts = dated_source(reader)
        # One of this boot not dated yet (the daemon restarted before NTP stepped the clock,
        # or after it but before this boot recorded a synchronised event) keeps its monotonic
        # time, whatever its stamp, so the next decision dates it as it would have in memory.
        params = {"since": since, "boot": self.store.boot_id}
        # A pass the gate did not open for: nobody went through (no outing, no passback).
        with _history_rows(reader, source, params, NOT_OPENED_ROWS) as rows:
            failed = {not_opened(decode_event_row(row)["flags"] or ()) for row in rows}
        with _history_rows(reader, source, params) as rows:  # a month's
            counted = self.history.load(
                decode_event_row(row) for row in rows if row["seq"] not in failed
            )
        # The compound's other gates' passages held here (``kiosk.peers``), after this gate's.
        return counted + load_peer_rows(reader, self.history, start)

    def _forgets_from_here(self) -> None:
        """``drop_forgotten`` looks at the forgets after the log's last one now."""
        with self._forgets_lock:
            self._forgets_seen = last_forget(self.store.reader())

    def drop_forgotten(self) -> int:
        """The passages a resident's forget emptied since the last look (the console's at
        once, another process's at the daemon's lists check: ``kiosk person forget``),
        dropped from the history on the loop (``PassageHistory.drop_forgotten``): the quota
        and anti-passback no longer count them, as after a restart. How many were found."""
        with self._forgets_lock:
            self._forgets_seen, passages = forgotten_passages(
                self.store.reader(), self._forgets_seen
            )
        if passages:
            self.in_loop(lambda: self.history.drop_forgotten(passages))
        return len(passages)

    def in_loop(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the engine's loop, between two of its steps (from any thread): what
        the engine reads (the history) is changed there only. Before ``start``, in place."""
        loop = self._loop
        if loop is None or not self._started or loop.is_closed():
            fn()
            return
        loop.call_soon_threadsafe(fn)

    # ------------------------------------------------------------------ heartbeat

    def loop_healthy(self, max_age_s: float) -> bool:
        """True while the loop's tick ran within ``max_age_s`` (safe from any thread)."""
        beat = self._beat_ns
        if beat is None or not self._started:
            return False
        return (self.clock.monotonic_ns() - beat) <= max_age_s * 1e9

    async def _tick_loop(self) -> None:
        period = self.config.engine.tick_ms / 1000
        loop = asyncio.get_running_loop()
        due = loop.time() + period
        while self._started:
            await asyncio.sleep(max(0.0, due - loop.time()))
            lag_ms = (loop.time() - due) * 1000
            if lag_ms > self.max_tick_lag_ms:
                self.max_tick_lag_ms = lag_ms
            due = max(due + period, loop.time())
            self._tick()

    def _tick(self) -> None:
        """One beat of the loop and one engine tick. A tick that fails at every beat (10-20 a
        second) is logged with its traceback once per kind of error, and its end once."""
        self._beat_ns = self.clock.monotonic_ns()
        try:
            self.engine.tick()
        except Exception as exc:
            self._tick_failures.failed(exc)
        else:
            self._tick_failures.worked()

    # ------------------------------------------------------------------ devices

    def _sink_for(self, reader: CodeReader) -> Callable[[CodeRead], None]:
        site = self.config.site
        # A reader per lane: its codes pass the lane's way (site.direction_from = "readers").
        lanes = {
            s.name: s.direction
            for s in self.config.readers.sources
            if site.direction == "both" and site.direction_from == "readers"
        }

        def sink(read: CodeRead) -> None:
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            try:
                loop.call_soon_threadsafe(self._deliver_code, read, lanes.get(read.source))
            except RuntimeError:
                pass  # loop shutting down

        return sink

    def _deliver_code(self, read: CodeRead, direction: str | None) -> None:
        """A code to the engine (which decides nothing once the stop began: ``_on_code``)."""
        self.codes_received += 1
        try:
            self.engine.on_code(read, direction)
        except Exception:
            log.exception("engine failed on a code")
        self._wake.set()

    def submit_code(self, text: str, direction: str | None = None, source: str = "screen") -> None:
        """A code typed or scanned outside the readers (guard console, demo); any thread."""
        read = CodeRead(text, source, self.clock.monotonic_ns())
        loop = self._loop
        if loop is None:
            raise RuntimeError("runner not started")
        loop.call_soon_threadsafe(self._deliver_code, read, direction)

    async def _thermo_loop(self) -> None:
        assert self.thermometer is not None
        thermo_cfg = self.config.thermometer.thermometry
        fast = 1.0 / thermo_cfg.sample_hz
        slow = self.config.engine.idle_probe_s
        while self._started:
            try:
                reading = await self._thermo_worker.call(self.thermometer.read)
            except DeviceFault as fault:
                self.engine.on_sensor_fault(fault, self.clock.monotonic_ns())
            except Exception as exc:  # a driver bug is a fault, never a value
                self.engine.on_sensor_fault(SensorFault(f"thermometer error: {exc}"))
            else:
                self.engine.on_reading(reading)
            interval = fast if self.engine.wants_readings else slow
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=interval)
            finally:
                waiter.cancel()

    async def _health_loop(self) -> None:
        last: tuple[object, ...] | None = None
        while self._started:
            report_reader_health(self.engine, self.readers)
            await self._refresh_gate_health()
            report = self.health()
            key = tuple(sorted((k, v["state"]) for k, v in report["devices"].items())) + tuple(
                report["degraded"]
            )
            if key != last:
                last = key
                self.publish({"type": "health", **report})
            await asyncio.sleep(self.config.engine.idle_probe_s)

    async def _refresh_gate_health(self) -> None:
        """Ask the relay's health in its device thread, in turn with its commands, never on
        the loop: a driver may touch the device there (the serial relay commands the lock
        again while idle after a replug, and opening a wedged USB adapter can block for
        seconds). A relay that does not answer is reported by ``hung``."""
        try:
            async with self._gate_order:
                self._gate_health = await self._gate_worker.call(self.gate.health)
        except DeviceFault:
            return
        except Exception as exc:  # noqa: BLE001 - a driver bug is a gate fault
            self._gate_health = Health("fault", f"gate health error: {exc}")
        eng = self.engine
        if eng.gate_is_open and not self._inflight:  # held open: gone or back, say it now
            eng.on_gate_health(self._gate_health.state != "fault", self._gate_health.detail)
        elif (
            self._gate_health.state == "fault"
            and "gate" not in eng.faults
            and not eng.gate_is_open
            and not self._inflight  # a crossing may be opening it: its own answer will tell
        ):
            # The relay says it is gone (a USB board unplugged) while idle: command the lock,
            # the safe command, so that its failure is the engine's gate fault now, not the
            # next resident's pass recorded for a gate that then fails to open.
            await self._lock_gate()

    def health(self) -> dict[str, Any]:
        """Every device's health, the engine's degraded parts, and whether it is deciding."""
        devices: dict[str, dict[str, Any]] = {}
        if self.thermometer is not None:
            devices["thermometer"] = _health_dict(self.thermometer.health())
        for reader in self.readers:
            devices[f"reader:{reader.name}"] = _health_dict(reader.health())
        gate = self._gate_health if self._gate_health is not None else self.gate.health()
        devices["gate"] = _health_dict(gate)
        devices["store"] = _health_dict(self.store.health())
        # The engine's view wins where it saw a fault the device does not report (a deadline).
        eng = self.engine
        for part, detail in eng.faults.items():
            key = part if part != "reader" else None
            if key and key in devices and devices[key]["state"] == "ok":
                devices[key] = {"state": "fault", "detail": detail}
        if "air" in eng.faults:
            # Not a device: the air outside the calibration's range, standing while it lasts
            # (a screen or console loaded after the engine raised it reads it here).
            devices["air"] = {"state": "fault", "detail": eng.faults["air"]}
        if self._thermo_worker.hung and "thermometer" in devices:
            devices["thermometer"] = {"state": "fault", "detail": "read hung past its deadline"}
        if self._gate_worker.hung:
            devices["gate"] = {"state": "fault", "detail": "relay command hung past its deadline"}
        since, raised = self._faults_began(devices)
        return {
            "fault_since": since,
            # The engine's own stamp of each raise (monotonic), as its bus message carries it.
            "fault_raised_ns": raised,
            "devices": devices,
            # The engine's own faults, as its health messages carry them (``reader`` naming
            # the readers it holds failing, whatever each reader's entry says now): a face
            # that missed those messages (a console started, or dropped by the bus, while a
            # camera failed) reads them here (``ui.views.faults_of``).
            "faults": dict(eng.faults),
            "degraded": list(eng.degraded),
            "deciding": self._started and eng.deciding,
            "state": eng.state,
            "backlog": len(eng.backlog),
            "loop_ok": self.loop_healthy(max(1.0, 4 * self.config.engine.tick_ms / 1000)),
        }

    def _faults_began(
        self, devices: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, str], dict[str, int]]:
        """When each device in fault now (its entry's state, or the engine's ``faults``; the
        readers as one, ``reader``) began failing: the first report that had it, since none
        between had it not (the health loop reports every ``idle_probe_s``), or the engine's
        raise of a fault it holds, dated again when the engine raised it again between two
        reports. A fault gone and back is a new time: the guard's closed card is a new card
        (``kiosk.alarms.AlarmBoard.take_standing``). Beside it, the engine's stamp of each
        raise (its bus message's ``mono_ns``): the desk knows by it the bus's messages of
        a return the report told first (``kiosk.alarms.AlarmBoard.take_start``)."""
        failing = set(self.engine.faults) | {
            "reader" if key.startswith("reader:") else key
            for key, entry in devices.items()
            if entry["state"] == "fault"
        }
        raised = dict(self.engine.fault_began)
        with self._fault_since_lock:
            now = ClockReading.take(self.clock)
            began: dict[str, str] = {}
            for device in sorted(failing):
                stamp, seen = raised.get(device), self._fault_raised.get(device)
                known = self._fault_since.get(device)
                if known is None or (stamp is not None and seen is not None and stamp != seen):
                    at = now.wall_at(stamp) if stamp is not None else now.wall
                    known = min(at, now.wall).isoformat()
                began[device] = known
            self._fault_since = began
            self._fault_raised = {d: s for d, s in raised.items() if d in began}
            return dict(began), dict(self._fault_raised)

    def metrics(self) -> dict[str, float]:
        """Counters and gauges for ``/metrics`` (numbers only, no personal data)."""
        eng = self.engine
        return {
            "decisions": eng.decisions,
            "codes_received": self.codes_received,
            "codes_ignored": eng.ignored_codes,
            "backlog": len(eng.backlog),
            "backlog_dropped": eng.dropped_backlog,
            "degraded": len(eng.degraded),
            "max_tick_lag_ms": round(self.max_tick_lag_ms, 3),
            "thermometer_calls": self._thermo_worker.calls,
            "thermometer_timeouts": self._thermo_worker.timeouts,
            "gate_calls": self._gate_worker.calls,
            "gate_timeouts": self._gate_worker.timeouts,
            "bus_subscribers": self.bus.subscribers,
            "bus_dropped": self.bus.dropped_total,
            "queue_depth": len(self._inflight),
        }

    # ------------------------------------------------------------------ guard actions

    async def manual(self, **kwargs: Any) -> None:
        """A guard's decision (see ``Engine.manual``); raises ``ValueError`` for bad input,
        ``Stopping`` once the stop has begun."""
        self.engine.manual(**kwargs)

    def manual_threadsafe(self, timeout_s: float = 2.0, **kwargs: Any) -> None:
        """``manual`` from a thread other than the loop's (e.g. the demo driver)."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self.manual(**kwargs), self._loop)
        fut.result(timeout_s)

    def select_direction(self, direction: str) -> None:
        """The next passage's direction; safe from any thread."""
        if direction not in ("in", "out"):
            raise ValueError("direction must be 'in' or 'out'")
        loop = self._loop
        if loop is not None and threading.current_thread() is not self._loop_thread:
            loop.call_soon_threadsafe(self.engine.select_direction, direction)
        else:
            self.engine.select_direction(direction)

    # ------------------------------------------------------------------ engine ports

    def publish(self, message: dict[str, Any]) -> None:
        """Hand a message to the screens' bus (loop thread only)."""
        self.bus.publish(message)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _spawn_audit(self, action: str, detail: Mapping[str, Any]) -> None:
        """The engine's audit row (``EnginePorts.audit``), written off the crossings: not a
        crossing under way (a write waiting on a stalled card neither stills the relay's
        health poll, ``_refresh_gate_health``, nor holds the stop, nor counts in
        ``queue_depth``), journalled when the log has not confirmed it within the store's
        deadline, and when it fails."""
        write = asyncio.ensure_future(self.store.audit_async("kiosk", action, detail))
        write.add_done_callback(lambda f: _audit_ended(action, f))
        self._audits.add(write)
        write.add_done_callback(self._audits.discard)
        ms = self._store_deadline_s * 1000

        def overdue() -> None:
            if not write.done():
                log.warning("engine audit %s not confirmed within %.0f ms", action, ms)

        asyncio.get_running_loop().call_later(self._store_deadline_s, overdue)

    async def _cross(self, crossing: Crossing) -> None:
        """One decision carried out in order: commit, then the gate if the crossing says so
        for that commit, then the one answer to the engine."""
        outcome, still_committing = await self._commit(crossing)
        if outcome.opens_gate:
            outcome = outcome.gate_answered(await self._set_gate(True))
        self.engine.on_crossed(outcome)
        if still_committing is not None:
            # Its end is answered after the outcome (the engine waits for it only from then
            # on), even when it landed while the relay was being commanded.
            still_committing.add_done_callback(lambda f: self._late_commit(crossing, f))
            self._late_commits.add(still_committing)
            still_committing.add_done_callback(self._late_commits.discard)

    async def _commit(self, crossing: Crossing) -> tuple[Outcome, asyncio.Future[Event] | None]:
        """The commit's outcome, and the commit itself when it missed its deadline (pending)."""
        held_back = crossing.held_back()
        if held_back is not None:
            return held_back, None
        inner = asyncio.ensure_future(self.store.append_async(crossing.draft))
        done, _ = await asyncio.wait({inner}, timeout=self._store_deadline_s)
        if not done:
            ms = self._store_deadline_s * 1000
            fault = StoreFault("store_fault", f"commit not confirmed within {ms:.0f} ms")
            return Outcome(crossing, store_fault=fault, pending=True), inner
        return self._committed(crossing, inner), None

    @staticmethod
    def _committed(crossing: Crossing, inner: asyncio.Future[Event]) -> Outcome:
        try:
            return Outcome(crossing, event=inner.result())
        except AlreadyRecorded as exc:  # its condition found its record: nothing written
            return Outcome(crossing, refused=exc)
        except StoreFault as exc:
            return Outcome(crossing, store_fault=exc)
        except Exception as exc:  # noqa: BLE001 - any failure to commit is a store fault
            log.exception("event append failed unexpectedly")
            return Outcome(crossing, store_fault=StoreFault("store_fault", type(exc).__name__))

    def _late_commit(self, crossing: Crossing, fut: asyncio.Future[Event]) -> None:
        """The end of a commit that missed its deadline: the event, the refusal when its
        condition found its record (nothing written), or None (it failed)."""
        failed = None if fut.cancelled() else fut.exception()
        if failed is None and not fut.cancelled():
            self.engine.on_late_commit(crossing, fut.result())
        else:
            refused = failed if isinstance(failed, AlreadyRecorded) else None
            self.engine.on_late_commit(crossing, refused)

    async def _lock_gate(self) -> None:
        self.engine.on_gate_locked(await self._set_gate(False))

    async def _set_gate(self, open_: bool) -> DeviceFault | None:
        """Command the relay under the device deadline; the fault if it did not obey. A
        command still under way is waited for first (at most its deadline). An open once the
        stop began is answered after the stop's lock (``_stop_lock``, bounded by its grant;
        the engine has its answer first): refused (``GateHeldShut``) when the lock was
        commanded before it; one already in the driver that the relay obeyed is
        ``GateHeldShut`` too when the lock then obeyed (opened and locked again at once:
        nobody let through on it), and let through when the lock failed (the gate stands
        open)."""
        fault = await self._command_gate(open_)
        if not open_ or self._stop_lock is None:
            return fault
        if await asyncio.shield(self._stop_lock) and fault is None:
            return GateHeldShut("the checkpoint is stopping: opened and locked again at once")
        return fault

    async def _command_gate(self, open_: bool) -> DeviceFault | None:
        """The relay commanded in order (``_gate_order``); no open once the stop began."""
        try:
            async with self._gate_order:
                if open_ and self._stop_lock is not None:  # locked for the stop: for good
                    return GateHeldShut("the checkpoint is stopping: the gate stays locked")
                await self._gate_worker.call(self.gate.set_open, open_)
        except DeviceFault as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a driver bug is a gate fault
            return GateFault(f"gate error: {exc}")
        return None


class _RunnerPorts:
    """The engine's ports: each request becomes a task on the loop; nothing blocks."""

    def __init__(self, runner: EngineRunner) -> None:
        self._runner = runner

    def cross(self, crossing: Crossing) -> None:
        self._runner._spawn(self._runner._cross(crossing))  # noqa: SLF001

    def lock_gate(self) -> None:
        self._runner._spawn(self._runner._lock_gate())  # noqa: SLF001

    def publish(self, message: dict[str, Any]) -> None:
        self._runner.publish(message)

    def audit(self, action: str, detail: Mapping[str, Any]) -> None:
        self._runner._spawn_audit(action, detail)  # noqa: SLF001


def _audit_ended(action: str, write: asyncio.Future[None]) -> None:
    """The end of the engine's audit row's write: one the log could not take, journalled."""
    failed = None if write.cancelled() else write.exception()
    if isinstance(failed, StoreFault):
        log.warning("engine audit %s not written: %s", action, failed.reason)
    elif failed is not None:
        log.error("engine audit %s not written: %s", action, type(failed).__name__)
