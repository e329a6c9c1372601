"""The whole daemon stop within one budget, every step stuck at once (``Daemon.stop``,
``kiosk.deadline.StopBudget``).

Before: the stop's writes shared a deadline, but each step before them had its own timeout
and they added up (the web server 1.5 s, the engine's tasks 2 s, each reader 2 s, a crossing
under way 3.5 s, the held decisions 3 s + 3 s, the devices 2 s, the page helper 2 s, the
list sync 1 s, the peers' farewell 2 s and stop 1 s + 5 s, then the writes, then the exit's
2 s): far past systemd's ``TimeoutStopSec=15``, and systemd SIGKILLed the daemon with
nothing said. Now every step draws on one budget, a reserve kept for the gate's lock and
the writes, the relay is commanded locked before anything that may wait on the storage or
the network, and the journal line names the step that used the budget up.

No sleeps: whatever is stuck waits on a ``threading.Event`` set only at the end; the budget
is scaled down (a few seconds) and injected, its reserves the product's own (1 s for the
gate's lock, 2 s for the writes: ``STOP_LOCK_S``, ``STOP_WRITES_S``). Scaled down to 0.05 s
and 0.15 s they were less than a loaded machine takes to begin the steps given up at 0 s
and to make a real write: the writes were given nothing, or not time for the stop row, and
the line said otherwise than it does on a Pi (``_budget``)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import types
from datetime import UTC, datetime

import httpx
import pytest
from guard_support import console_fixtures
from support import unit_seconds

from checkpoint import app as app_module
from checkpoint.app import Daemon
from checkpoint.notify import Notifier
from checkpoint.peers import FAREWELL_S, PeerSync
from kiosk.config import parse_config
from kiosk.deadline import StopBudget
from kiosk.devices import Health
from kiosk.pihealth import PiPowerReading, PowerWatch
from office import listsync as listsync_module
from office.listsync import ListSync

WAIT_S = 10.0  # an upper bound for a test to fail instead of hanging, never a sleep
START = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
clock, core, app, alice, admin = console_fixtures(START)


def test_the_stop_and_the_exits_grace_end_well_before_systemd_kills_the_daemon():
    """Raising the budget, the exit's grace or a reserve without the unit's TimeoutStopSec
    fails here: the stop (every step within the budget) and the grace after it, with a
    margin, end before systemd's SIGKILL."""
    limit = unit_seconds("TimeoutStopSec")
    a = app_module
    assert limit >= a.STOP_BUDGET_S + a.EXIT_GRACE_S + a.STOP_MARGIN_S
    assert a.STOP_MARGIN_S >= 1.0
    assert a.STOP_LOCK_S + a.STOP_WRITES_S < a.STOP_BUDGET_S / 2  # the steps before get half
    # Each step's own cap fits in what the budget leaves before the lock and the writes.
    before = a.STOP_BUDGET_S - a.STOP_LOCK_S - a.STOP_WRITES_S
    for cap in (
        a.WEB_STOP_S,
        a.TASKS_STOP_S,
        a.DEVICES_CLOSE_S,
        a.HELPER_STOP_S,
        a.LISTS_STOP_S,
        a.PEERS_STOP_S,
        FAREWELL_S,
    ):
        assert cap <= before


def test_a_budget_grants_each_step_its_cap_within_what_is_left_less_the_reserves():
    now = [0.0]
    budget = StopBudget(10.0, {"gate lock": 1.0, "writes": 2.0}, now=lambda: now[0])
    assert budget.grant("readers", 2.0) == 2.0  # its own cap
    now[0] = 6.0
    assert budget.grant("crossing under way", 3.5) == 1.0  # 4 s left, 3 kept back
    budget.gave_up("crossing under way")
    assert budget.grant("gate lock", 1.0) == 1.0  # draws on its own reserve
    now[0] = 8.5
    assert budget.grant("web server", 1.5) == 0.0  # the writes' 2 s are never given away
    budget.gave_up("web server")
    assert budget.grant("writes", math.inf) == 1.5  # the writes: the rest
    now[0] = 11.0
    assert budget.left() == 0.0 and budget.grant("writes", math.inf) == 0.0
    said = budget.said()
    assert said.startswith("the budget used up by crossing under way;")
    assert "crossing under way (1.0 s), web server (0.0 s)" in said


def test_a_budget_never_short_says_only_the_steps_given_up_at_their_own_cap():
    budget = StopBudget(math.inf)
    assert budget.grant("readers", 2.0) == 2.0
    budget.gave_up("readers")
    assert budget.said() == "given up: readers (2.0 s)"


def _budget(daemon: Daemon, budget_s: float) -> None:
    """``daemon``'s stop given ``budget_s``, with the product's reserves for the gate's lock
    and the writes: what a real write and the start of each step given up need on a loaded
    machine (they are the product's for that reason)."""
    daemon.stop_budget_s = budget_s
    daemon.stop_reserves_s = {
        "gate lock": app_module.STOP_LOCK_S,
        "writes": app_module.STOP_WRITES_S,
    }


def _readers_stuck(budget: StopBudget, now: list[float]) -> StopBudget:
    """The lock granted, the readers given up at their grant, then the writes granted the
    rest (``math.inf``, as ``Daemon._stop_writes`` grants them) and done."""
    budget.grant("gate lock", 1.0)
    now[0] += budget.grant("readers", 2.0)
    budget.gave_up("readers")
    budget.grant("writes", math.inf)
    return budget


def test_a_step_given_up_at_its_own_cap_is_not_said_to_have_used_up_the_budget():
    """One reader stuck 2 s, its own cap, with 8 s of the 10 left: before, the writes' infinite
    cap read as a step cut short and the line blamed the readers for the budget."""
    now = [0.0]
    budget = _readers_stuck(
        StopBudget(10.0, {"gate lock": 1.0, "writes": 2.0}, now=lambda: now[0]), now
    )
    assert budget.left() == 8.0 and not budget.cut
    assert budget.said() == "given up: readers (2.0 s)"


def test_a_step_the_budget_cut_short_is_named_with_the_writes_granted_the_rest():
    now = [0.0]
    budget = StopBudget(3.5, {"gate lock": 1.0, "writes": 2.0}, now=lambda: now[0])
    budget = _readers_stuck(budget, now)  # 1.5 s for the readers: the writes' 2 s kept back
    assert budget.cut
    assert budget.said() == "the budget used up by readers; given up: readers (1.5 s)"


@pytest.mark.slow
def test_a_stop_with_one_step_stuck_at_its_own_cap_blames_it_for_no_budget(
    app, core, clock, caplog, monkeypatch
):
    """The page helper not ending within its own 0.2 s, the rest of the 10 s budget unused:
    the journal's warning names it given up, and no step as having used the budget up."""
    never = threading.Event()
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    monkeypatch.setattr(app_module, "HELPER_STOP_S", 0.2)
    monkeypatch.setattr(core.pages, "close", lambda: never.wait(WAIT_S))

    async def run() -> None:
        await core.runner.start()
        await daemon.stop()

    try:
        with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
            asyncio.run(run())
    finally:
        never.set()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]
    said = f"stopping: within the stop's {daemon.stop_budget_s:.1f} s, given up: "
    assert line.startswith(said) and "page helper (0.2 s)" in line, line
    assert "used up" not in line, line


class Seen(list):
    """What the stuck parts were asked, in order, from any thread; ``wait_for`` the steps a
    stop's threads reach (each started in time, maybe reached a moment after)."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def append(self, item: str) -> None:
        with self._changed:
            super().append(item)
            self._changed.notify_all()

    def wait_for(self, items: tuple[str, ...]) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: all(i in self for i in items), WAIT_S)


class StuckReader:
    """A reader whose driver never returns from its stop."""

    name = "stuck-scanner"

    def __init__(self, never: threading.Event, seen: Seen) -> None:
        self.never, self.seen = never, seen

    def start(self, sink) -> None:
        pass

    def stop(self) -> None:
        self.seen.append("reader")
        self.never.wait(30)

    def health(self) -> Health:
        return Health("ok", "")


def _stuck_client(never: threading.Event, seen: Seen, name: str) -> httpx.Client:
    """An HTTP client to a peer or an office that never answers (unreachable)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{name} {request.method}")
        never.wait(30)
        raise httpx.ConnectError("unreachable", request=request)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _stuck_daemon(core, app, clock, monkeypatch, never: threading.Event, seen: Seen):
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    daemon._pi_power = PowerWatch(None, clock, core.store)
    daemon._pi_power.observe(PiPowerReading(throttled=0x50005))  # one spell open: its end row
    close_power = daemon._pi_power.close

    def power_close():
        seen.append("power")  # the first write
        close_power()

    monkeypatch.setattr(daemon._pi_power, "close", power_close)

    def pages_close():  # an export reading the stalled card holds the helper
        seen.append("pages")
        never.wait(30)

    monkeypatch.setattr(core.pages, "close", pages_close)
    core.runner.readers = [*core.runner.readers, StuckReader(never, seen)]
    peer = {"url": "http://gate-north.lan", "kiosk_id": "gate-north", "token_env": "PEER_TOKEN_N"}
    monkeypatch.setenv("PEER_TOKEN_N", "kt_north_" + "a" * 43)
    section = parse_config({"compound": {"peers": [peer]}}).compound
    daemon._peers = PeerSync(core, section, client=_stuck_client(never, seen, "peer"))
    daemon._lists_sync = ListSync(
        core.lists,
        core.trust,
        "http://office.lan/lists/bundle",
        core.clock,
        client=_stuck_client(never, seen, "office"),
    )
    gate = core.devices.gate
    command = gate.set_open

    def set_open(open_: bool) -> None:
        command(open_)
        if not open_:
            seen.append("locked")

    monkeypatch.setattr(gate, "set_open", set_open)
    return daemon


@pytest.mark.slow
def test_a_stop_with_every_step_stuck_ends_within_its_budget_the_relay_locked_first(
    app, core, clock, caplog, monkeypatch
):
    never = threading.Event()
    seen = Seen()
    daemon = _stuck_daemon(core, app, clock, monkeypatch, never, seen)
    # The crossing under way is given what the writes' reserve leaves once the gate is locked:
    # less than its own cap (the budget ran short), more than the writes (it used it up).
    _budget(daemon, app_module.STOP_LOCK_S + 2 * app_module.STOP_WRITES_S)
    engine = core.config.engine
    crossing_s = daemon.stop_budget_s - app_module.STOP_WRITES_S
    own_s = (engine.store_deadline_ms + engine.device_deadline_ms) / 1000
    assert app_module.STOP_WRITES_S < crossing_s < own_s

    async def run() -> float:
        await core.runner.start()
        seen.clear()  # the start's own lock
        daemon._peers.start()
        daemon._lists_sync.start()
        core.store._enqueue(lambda: never.wait(30))  # the card stalls
        # A crossing under way whose commit the stalled card holds (waited for after the lock).
        core.runner._spawn(asyncio.Event().wait())
        daemon._rows_task = asyncio.create_task(daemon.console_rows(stopping=True))
        request = asyncio.create_task(asyncio.Event().wait())  # a request never ending
        state = types.SimpleNamespace(tasks={request})  # uvicorn's ServerState
        daemon._server = types.SimpleNamespace(should_exit=False, server_state=state)
        daemon._server_task = asyncio.create_task(asyncio.Event().wait())
        began = time.monotonic()
        await daemon.stop()
        took = time.monotonic() - began
        await asyncio.sleep(0)  # the cancelled request's task meets its cancel
        assert request.cancelled()  # past its grant the server's requests are cut
        return took

    steps = ("reader", "pages", "peer POST", "power")
    try:
        with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
            took = asyncio.run(run())
        assert seen.wait_for(("locked", *steps))  # each stuck step was begun
        said = list(seen)
    finally:
        never.set()
    assert took < daemon.stop_budget_s + 1.5  # the budget and a slack; not the caps' sum
    assert daemon._server.should_exit is True
    # The relay commanded locked before the steps that wait on the storage or the network.
    for step in steps:
        assert said.index("locked") < said.index(step), (step, said)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]
    storage = f"the storage did not answer within the stop's {daemon.stop_budget_s:.1f} s"
    assert f"{storage}; given up at power" in line
    assert "the budget used up by crossing under way" in line
    for step in ("readers", "page helper", "peers farewell", "web server", "writes"):
        assert f"{step} (" in line, step


def _log_close_seen(core, seen, monkeypatch) -> threading.Event:
    """The event log's close noted in ``seen`` ("log closed"); the event is set once done."""
    closed = threading.Event()
    close = core.store.close

    def store_close() -> None:
        seen.append("log closed")
        close()
        closed.set()

    monkeypatch.setattr(core.store, "close", store_close)
    return closed


@pytest.mark.slow
def test_the_event_log_is_closed_only_once_the_list_syncs_stop_has_returned(
    app, core, clock, caplog, monkeypatch
):
    """The log's close waited for the peers' stop, not for the list sync's: a sync whose stop
    was given up at its grant (an office's answer on its way, an apply under way) had its
    thread use the log the stop then closed (one closed under a running query crashed the
    process). Now the close waits for the list sync's stop as for the peers' (within the
    writes' grant: past it the log is left open and said), and after that stop returns no
    thread of the sync uses the log (``ListSync.stop``)."""
    release = threading.Event()
    seen = Seen()
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    _budget(daemon, app_module.STOP_LOCK_S + app_module.STOP_WRITES_S)
    sync = ListSync(core.lists, core.trust, "http://office.lan/lists/bundle", core.clock)
    stop = sync.stop

    def sync_stop(timeout_s: float) -> bool:  # a thread's fetch under way, waited for
        seen.append("sync stopping")
        release.wait(30)
        seen.append("sync stopped")
        return stop(timeout_s)

    monkeypatch.setattr(sync, "stop", sync_stop)
    daemon._lists_sync = sync
    closed = _log_close_seen(core, seen, monkeypatch)

    async def run() -> None:
        await core.runner.start()
        await daemon.stop()

    try:
        with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
            asyncio.run(run())
        assert "log closed" not in seen  # not while the sync's stop is under way
    finally:
        release.set()
    assert closed.wait(WAIT_S)  # the close's thread goes on once the sync has stopped
    assert seen.index("sync stopped") < seen.index("log closed")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]
    assert "given up at log" in line and "list sync (" in line


@pytest.mark.slow
def test_the_event_log_is_not_closed_under_a_list_sync_apply_outlasting_its_stop(
    app, core, clock, caplog, monkeypatch
):
    """``ListSync.stop`` waited ``APPLY_WAIT_S`` (5 s) for an apply under way and returned
    all the same (a slow card, a big bundle on a Pi): the daemon took its return for the
    sync's end of the log and closed the log under the apply (one closed under a running
    query crashed the process). Now the close waits for the sync to say no apply is under
    way (``ListSync.log_released``) within the writes' grant: past it the log is left open
    and the journal line says so; it is closed only once the apply has ended."""
    monkeypatch.setattr(listsync_module, "APPLY_WAIT_S", 0.0)  # the wait run out at once
    inside, release = threading.Event(), threading.Event()
    seen = Seen()
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard
    _budget(daemon, app_module.STOP_LOCK_S + app_module.STOP_WRITES_S)
    sync = ListSync(core.lists, core.trust, "http://office.lan/lists/bundle", core.clock)
    daemon._lists_sync = sync

    def apply() -> None:  # the bundle's audited write on a slow card
        with sync._uses.using():
            inside.set()
            release.wait(30)
            seen.append("apply ended")

    applying = threading.Thread(target=apply, daemon=True)
    closed = _log_close_seen(core, seen, monkeypatch)

    async def run() -> None:
        await core.runner.start()
        applying.start()
        assert inside.wait(WAIT_S)
        await daemon.stop()

    try:
        with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
            asyncio.run(run())
        assert "log closed" not in seen  # not while the apply is under way
    finally:
        release.set()
    applying.join(WAIT_S)
    assert closed.wait(WAIT_S)  # the close's thread goes on once the apply has ended
    assert seen.index("apply ended") < seen.index("log closed")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping:")]
    assert "given up at log" in line and "the event log left open" in line
    assert "list sync (" in line  # its stop said the apply outlasted its wait


def test_a_stop_with_nothing_stuck_gives_up_nothing_and_says_nothing(
    app, core, clock, caplog, monkeypatch
):
    daemon = Daemon(core, notifier=Notifier(None))
    daemon.guard = app.state.guard

    async def run() -> None:
        await core.runner.start()
        await daemon.stop()

    with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
        asyncio.run(run())
    assert not [r for r in caplog.records if r.getMessage().startswith("stopping:")]
    assert core.devices.gate.is_open is False


def test_kiosk_demo_ends_as_kiosk_run_does_a_stuck_thread_not_keeping_it(monkeypatch, caplog):
    """`kiosk demo` had no ``ExitAfterStop``: a thread still stuck after its stop (a write
    to a stalled card) kept the process for ever. Now it is armed after the demo's stop, and
    ends the process with the stop's code when such a thread is left."""
    from checkpoint import demo
    from checkpoint.app import ExitAfterStop

    never = threading.Event()
    order: list[str] = []

    class Session:
        def __init__(self) -> None:
            self.daemon = self

        async def run_until_signal(self) -> None:
            order.append("run")

        async def stop(self) -> None:
            order.append("stop")
            stuck = threading.Thread(target=never.wait, args=(30,), name="kiosk-stuck-write")
            stuck.start()  # still in its write when the stop returns

    async def start_demo(*args, **kwargs):
        return Session()

    async def play_visitors(session) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(demo, "start_demo", start_demo)
    monkeypatch.setattr(demo, "play_visitors", play_visitors)
    monkeypatch.setattr(demo, "print_banner", lambda session: None)
    exits: list[int] = []

    def exit_(code: int) -> None:
        order.append("exit")
        exits.append(code)

    leaving = ExitAfterStop(0.0, exit_=exit_)
    try:
        with caplog.at_level(logging.ERROR, logger="checkpoint.app"):
            code = demo.run_demo_process(0, None, leaving=leaving)
            assert leaving._timer is not None
            leaving._timer.join(WAIT_S)
    finally:
        never.set()
    assert code == 0
    assert order == ["run", "stop", "exit"] and exits == [0]
    assert "threads still in a call: kiosk-stuck-write" in caplog.text


def test_a_step_that_fails_is_said_and_the_writes_still_come(app, core, clock, caplog, monkeypatch):
    daemon = Daemon(core, notifier=Notifier(None))

    async def finish_stop(budget) -> None:
        raise RuntimeError("a bug in the engine's stop")

    monkeypatch.setattr(core.runner, "finish_stop", finish_stop)

    async def run() -> None:
        await core.runner.start()
        await daemon.stop()

    with caplog.at_level(logging.ERROR, logger="checkpoint.app"):
        asyncio.run(run())
    assert "stopping: a step failed" in caplog.text and "a bug in the engine" in caplog.text
    assert (core.data_dir / app_module.STOPPED_MARKER).exists()  # the writes came
    core.runner.close()


def test_the_relays_floor_at_a_spent_budget_stays_within_the_margin_systemd_leaves():
    """The gate lock's floor (one relay command's deadline, ``at_least_s``) was granted in
    full however little the budget left: ``engine.device_deadline_ms`` may be 10 s, five
    times the margin systemd leaves after the budget and the exit, and a relay stuck in its
    driver at a stop after a long start ran the daemon into systemd's SIGKILL. The floor is
    cut to that margin (``kiosk.deadline.STOP_MARGIN_S``)."""
    from kiosk.deadline import STOP_MARGIN_S

    budget = StopBudget(0.0, {"gate lock": 1.0})
    assert budget.grant("gate lock", 20.0, at_least_s=10.0) == STOP_MARGIN_S
    assert StopBudget(0.0).grant("gate lock", 0.5, at_least_s=0.25) == 0.25
    assert app_module.STOP_MARGIN_S == STOP_MARGIN_S  # the unit's sum counts the same margin
