"""EngineRunner: devices in threads with deadlines, the loop always responsive.

These run a real asyncio loop on the real clock with short deadlines (tens of ms); nothing
sleeps in a test: each waits for the bus message it expects, with a generous bound.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint.replay import StoreSwitch
from drivers.clocksync import system_clock
from drivers.gate import FakeGate
from kiosk import lists as lists_mod
from kiosk.calibration import Calibration
from kiosk.config import parse_config
from kiosk.deadline import StopBudget
from kiosk.devices import CodeRead, Health, SensorFault, ThermoReading
from kiosk.history import PassageHistory
from kiosk.passes import TrustList, issue_pass
from kiosk.runner import DeviceWorker, EngineRunner
from kiosk.store import AlreadyRecorded, EventDraft, EventLog, StoreFault

WAIT_S = 5.0  # an upper bound for a test to fail instead of hanging, never a sleep


def _object_for(body_c: float, ambient_c: float) -> float:
    """The object reading the default calibration turns into ``body_c`` (bisection)."""
    cal = Calibration()
    lo, hi = ambient_c, 45.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if cal.estimate(mid, ambient_c) < body_c:
            lo = mid
        else:
            hi = mid
    return lo


class ScriptedThermometer:
    """A thermometer double: a person at ``body_c`` (or nobody), can hang or fail."""

    name = "scripted"

    def __init__(self, clock) -> None:
        self.clock = clock
        self.body_c: float | None = None
        self.failing = False
        self._go = threading.Event()
        self._go.set()
        self._n = 0

    def hang(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def read(self) -> ThermoReading:
        self._go.wait(WAIT_S)
        if self.failing:
            raise SensorFault("I2C NACK")
        self._n += 1
        ambient = 24.0
        obj = 24.2 if self.body_c is None else _object_for(self.body_c, ambient)
        wobble = 0.01 * (self._n % 3)  # a live sensor is never bit-identical
        return ThermoReading(obj + wobble, ambient, self.clock.monotonic_ns())

    def health(self) -> Health:
        return Health("fault", "failing") if self.failing else Health("ok")

    def close(self) -> None:
        self.release()


class PushReader:
    """A code reader double whose 'thread' is the caller's helper thread."""

    def __init__(self, name: str = "scanner") -> None:
        self.name = name
        self.sink = None
        self.state = "ok"

    def start(self, sink) -> None:
        self.sink = sink

    def stop(self) -> None:
        self.sink = None

    def health(self) -> Health:
        return Health(self.state)  # type: ignore[arg-type]

    def show(self, text: str, clock) -> None:
        read = CodeRead(text, self.name, clock.monotonic_ns())
        t = threading.Thread(target=self.sink, args=(read,))
        t.start()
        t.join()


FAST = {
    "engine": {
        "tick_ms": 5,
        "device_deadline_ms": 250,  # generous: a loaded CI machine must not trip it
        "store_deadline_ms": 300,
        "idle_probe_s": 0.05,
        "result_hold_s": 0.1,
    },
    "gate": {"pulse_ms": 100},
    "thermometer": {"thermometry": {"sample_hz": 50, "measure_timeout_s": 2}},
    "readers": {"sources": [{"type": "serial", "name": "scanner"}]},
}


#: The wall-clock deadlines a loaded machine's scheduling runs out, lifted for the tests of
#: the stop's order (not of a deadline): a relay command or a thermometer read whose thread
#: was not run for a quarter of a second (FAST's 250 ms, the driver's 200 ms) was a gate or a
#: sensor fault, the start's lock retried or the pass denied, and a measurement starved of
#: readings for 2 s no temperature; the store's 3 s could run out on the stop before the
#: released commit landed. Each bound is the module's own for a test that fails, never met
#: when it works.
UNHURRIED = {
    "engine": {"store_deadline_ms": 20000, "device_deadline_ms": int(WAIT_S * 1000)},
    "thermometer": {
        "driver": {"type": "fake", "read_deadline_ms": int(WAIT_S * 1000)},
        "thermometry": {"sample_hz": 50, "measure_timeout_s": WAIT_S},
    },
}


class RecordingGate(FakeGate):
    """The fake relay, noting each command with the event log's last seq at that moment (the
    gate must open only after the decision is committed)."""

    def __init__(self, clock, rig: Rig) -> None:
        super().__init__(clock)
        self.rig = rig

    def set_open(self, open_: bool) -> None:
        self.rig.gate_calls.append((open_, self.rig.log.last_seq))
        self.rig.announced_at_gate.append(self.rig.runner.engine.decisions)
        super().set_open(open_)


class Rig:
    def __init__(self, tmp_path, overrides=None, readers=None) -> None:
        data = {k: dict(v) for k, v in FAST.items()}
        for key, value in (overrides or {}).items():
            data[key] = {**data.get(key, {}), **value}
        self.config = parse_config(data)
        self.clock = system_clock(assume_synced=True)
        self.key = Ed25519PrivateKey.generate()
        self.trust = TrustList([("demo", self.key.public_key())])
        self.log = EventLog(
            tmp_path / "events.db",
            "gate-1",
            self.clock,
            "NORMAL",
            [lists_mod.MIGRATIONS],
            boot_id="t",
        ).open()
        self.store = StoreSwitch(self.log)
        self.lists = lists_mod.ListStore(self.log, self.clock)
        self.lists.load()
        self.history = PassageHistory()
        self.thermometer = ScriptedThermometer(self.clock)
        self.scanner = PushReader()
        self.gate_calls: list[tuple[bool, int]] = []
        self.announced_at_gate: list[int] = []  # decisions the engine had published by then
        self.gate = RecordingGate(self.clock, self)
        self.runner = EngineRunner(
            self.config,
            self.clock,
            thermometer=self.thermometer,
            readers=readers if readers is not None else [self.scanner],
            gate=self.gate,
            store=self.store,
            trust=self.trust,
            lists=self.lists,
            history=self.history,
        )
        self.sub = self.runner.bus.subscribe(maxsize=10000, name="test")
        self.seen: list[dict] = []
        self.taken: set[int] = set()

    def pass_text(self, holder: str = "Li Wei", household: str = "A-101") -> str:
        return issue_pass(self.key, household, holder, days=30, now=self.clock.now())[0]

    def show(self, text: str) -> None:
        self.scanner.show(text, self.clock)

    async def next(self, kind: str, **match) -> dict:
        """The first message of ``kind`` (matching ``match``) not yet taken, in bus order."""

        def matches(msg: dict) -> bool:
            return msg["type"] == kind and all(msg.get(k) == v for k, v in match.items())

        async def find() -> dict:
            while True:
                for i, msg in enumerate(self.seen):
                    if i not in self.taken and matches(msg):
                        self.taken.add(i)
                        return msg
                msg = await self.sub.get()
                assert msg is not None, "subscription ended"
                self.seen.append(msg)

        return await asyncio.wait_for(find(), WAIT_S)

    def close(self) -> None:
        self.thermometer.release()
        self.gate.release()
        self.log.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def run(coro):
    return asyncio.run(coro)


@pytest.mark.slow
def test_code_from_a_reader_thread_is_decided_and_the_gate_pulses(rig):
    async def main():
        await rig.runner.start()
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        decision = await rig.next("decision")
        await rig.next("state", state="decided")  # after the pulse, once the gate locked
        await rig.runner.stop()
        return decision

    decision = run(main())
    assert decision["decision"] == "pass"
    assert decision["committed"] is True
    # locked at start, then the pass's pulse
    assert [c.open_ for c in rig.gate.commands][:3] == [False, True, False]
    assert rig.gate.commands[-1].open_ is False  # stop() leaves it locked


@pytest.mark.slow
def test_event_is_committed_then_the_gate_opened_then_the_decision_published(rig):
    """One crossing per decision: commit, gate, then the engine's announcement."""

    async def main():
        await rig.runner.start()
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        decision = await rig.next("decision")
        await rig.next("state", state="decided")
        await rig.runner.stop()
        return decision

    decision = run(main())
    assert rig.gate_calls[0] == (False, 0)  # locked at start
    open_, seq_at_command = rig.gate_calls[1]
    assert open_ is True
    assert seq_at_command == 1
    assert rig.announced_at_gate[1] == 0  # nothing announced yet when the relay fired
    assert decision["committed"] is True
    assert decision["seq"] == 1


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_hung_thermometer_read_is_a_fault_and_a_code_is_still_decided(rig):
    async def main():
        await rig.runner.start()
        rig.thermometer.hang()  # the I2C slave holds SDA low
        hung_at_ns = rig.clock.monotonic_ns()
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        decision = await rig.next("decision")
        alarm = await rig.next("alarm", alarm="sensor_fault", state="raised")
        # The loop kept ticking while the read hung (a tick since; not a wall-clock age, which
        # a loaded machine can stretch past any bound between the tick and this line).
        healthy = rig.runner.loop_healthy((rig.clock.monotonic_ns() - hung_at_ns - 1) / 1e9)
        health = rig.runner.health()
        rig.thermometer.release()
        await rig.next("alarm", alarm="sensor_fault", state="cleared")
        rig.show(rig.pass_text(holder="Sun Li"))
        after = await rig.next("decision")
        await rig.runner.stop()
        return decision, alarm, healthy, health, after

    decision, alarm, healthy, health, after = run(main())
    assert decision["reasons"] == ["sensor_fault"]
    assert "hung" in alarm["detail"] or "not returned" in alarm["detail"]
    assert healthy is True
    assert health["devices"]["thermometer"]["state"] == "fault"
    assert after["decision"] == "pass"


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_unplugged_relay_is_a_gate_fault_and_the_next_code_is_decided(rig):
    async def main():
        await rig.runner.start()
        rig.gate.unplug()
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        first = await rig.next("decision")
        rig.thermometer.body_c = None  # the guard lets them through
        await rig.next("alarm", alarm="gate_fault", state="raised")
        await rig.next("state", state="idle")  # the kiosk's at start
        await rig.next("state", state="idle")  # after the first one's result
        rig.show(rig.pass_text(holder="Sun Li"))  # the next one shows the code, steps up
        rig.thermometer.body_c = 36.6
        second = await rig.next("decision")
        rig.gate.replug()
        await rig.next("alarm", alarm="gate_fault", state="cleared")
        await rig.runner.stop()
        return first, second

    first, second = run(main())
    # its open failed, or the health poll found the relay gone first (test_gate_fault_passes)
    assert (first["decision"], first["reasons"]) in (("pass", ["ok"]), ("deny", ["gate_fault"]))
    # decided, but not as a pass through a gate known not to open
    assert (second["decision"], second["reasons"]) == ("deny", ["gate_fault"])
    assert rig.gate.commands[-1].open_ is False


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_stalled_relay_misses_its_deadline_and_the_loop_stays_responsive(rig):
    async def main():
        await rig.runner.start()
        rig.gate.stall()  # a wedged USB write
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        await rig.next("decision")
        rig.thermometer.body_c = None  # the guard lets them through
        alarm = await rig.next("alarm", alarm="gate_fault", state="raised")
        await rig.next("state", state="idle")  # the kiosk's at start
        await rig.next("state", state="idle")  # after the first one's result
        rig.show(rig.pass_text(holder="Sun Li"))  # the next one shows the code, steps up
        rig.thermometer.body_c = 36.6
        second = await rig.next("decision")
        healthy = rig.runner.loop_healthy(0.5)
        rig.gate.release()
        await rig.next("alarm", alarm="gate_fault", state="cleared")
        await rig.runner.stop()
        return alarm, second, healthy

    alarm, second, healthy = run(main())
    assert "hung" in alarm["detail"]  # the open missed its deadline, or the lock found it stuck
    assert (second["decision"], second["reasons"]) == ("deny", ["gate_fault"])
    assert healthy is True


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_frozen_camera_is_a_reader_fault_and_a_scanned_code_is_still_decided(tmp_path):
    from drivers.camera import CameraReader
    from drivers.decoders import build_decoder
    from drivers.fake_camera import FakeCamera
    from drivers.pipeline import FramePipeline
    from kiosk.config.readers import DecoderConfig, WatchdogConfig

    clock = system_clock()
    camera = FakeCamera(clock, fps=30, size=(320, 240), pace=True, noise_sigma=2.0)
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="camera")
    reader = CameraReader(
        camera,
        pipeline,
        clock,
        name="camera",
        watchdog=WatchdogConfig(frozen_frame_s=0.5, stale_frame_s=1.0),
        fps=30,
    )
    scanner = PushReader()
    r = Rig(
        tmp_path,
        overrides={"readers": {"sources": [{"type": "fake_camera"}, {"type": "serial"}]}},
        readers=[reader, scanner],
    )
    r.scanner = scanner

    async def main():
        await r.runner.start()
        while True:  # the camera's first good frame
            health = await r.next("health")
            if health["devices"]["reader:camera"]["state"] == "ok":
                break
        camera.freeze()
        alarm = await r.next("alarm", alarm="reader_fault", state="raised")
        r.thermometer.body_c = 36.6
        r.show(r.pass_text())
        decision = await r.next("decision")
        camera.unfreeze()
        await r.next("alarm", alarm="reader_fault", state="cleared")
        await r.runner.stop()
        return alarm, decision

    try:
        alarm, decision = run(main())
    finally:
        camera.close()
        r.close()
    assert "frozen" in alarm["detail"]
    assert decision["decision"] == "pass"


def test_store_fault_denies_and_the_record_is_written_after_recovery(rig):
    async def main():
        await rig.runner.start()
        rig.store.fail()
        rig.thermometer.body_c = 36.6
        rig.show(rig.pass_text())
        decision = await rig.next("decision")
        await rig.next("alarm", alarm="store_fault", state="raised")
        rig.store.recover()
        await rig.next("alarm", alarm="store_fault", state="cleared")
        await rig.runner.stop()
        return decision

    decision = run(main())
    assert decision["committed"] is False
    assert "store_fault" in decision["reasons"]
    assert rig.gate.commands == [] or all(not c.open_ for c in rig.gate.commands)
    [event] = rig.log.events()
    assert "store_fault" in event["reasons"]


class SlowLog:
    """An event log double whose commits wait until released (an fsync stuck on a dying SD)."""

    def __init__(self, log) -> None:
        self.log = log
        self.release = threading.Event()
        self.entered = threading.Event()

    async def append_async(self, draft):
        self.entered.set()
        await asyncio.to_thread(self.release.wait, WAIT_S)
        return await self.log.append_async(draft)

    def __getattr__(self, name):
        return getattr(self.log, name)


def stalled_commit(tmp_path, log_double, **until: str):
    """A pass whose commit stalls on ``log_double`` (a ``SlowLog``) past its deadline, released
    once the decision is out; runs until the alarm message ``until`` names. Returns the rig,
    the double, the decision, the backlog's length while stalled and the events logged."""
    r = Rig(tmp_path, overrides={"policy": {"mode": "pass_only"}})
    stalled = log_double(r.log)
    r.runner.store = stalled

    async def main():
        await r.runner.start()
        r.show(r.pass_text())
        decision = await r.next("decision")
        backlog_during = len(r.runner.engine.backlog)
        stalled.release.set()
        await r.next("alarm", **until)
        await r.runner.stop()
        return decision, backlog_during

    try:
        decision, backlog_during = run(main())
        events = r.log.events()
    finally:
        r.close()
    return r, stalled, decision, backlog_during, events


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_commit_past_its_deadline_is_a_store_fault_and_a_late_landing_is_kept_once(tmp_path):
    r, _, decision, backlog_during, events = stalled_commit(
        tmp_path, SlowLog, alarm="store_late_commit"
    )
    assert decision["committed"] is False
    assert decision["decision"] == "deny"
    assert backlog_during == 1
    # The pass landed once; the deny the screen showed follows it, naming it (kiosk.links).
    passed, shown = events
    assert (passed["decision"], shown["decision"]) == ("pass", "deny")
    # role: 760dd300; the alarm the engine raised for the deny shown, which its row records
    assert shown["flags"] == ["role:resident", "alarm:device_fault", f"not_opened:{passed['seq']}"]
    assert r.runner.engine.backlog == type(r.runner.engine.backlog)()
    assert all(not c.open_ for c in r.gate.commands)


class FailingLateLog(SlowLog):
    """The first commit waits until released, then fails (the SD card gave up); the rest go
    through. Notes whether a second attempt came before the first one had ended."""

    def __init__(self, log) -> None:
        super().__init__(log)
        self.calls = 0
        self.first_ended = False
        self.retried_while_pending = False

    async def append_async(self, draft):
        self.calls += 1
        if self.calls > 1:
            self.retried_while_pending |= not self.first_ended
            return await self.log.append_async(draft)
        self.entered.set()
        await asyncio.to_thread(self.release.wait, WAIT_S)
        self.first_ended = True
        raise StoreFault("store_fault", "disk I/O error")


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_commit_that_fails_after_its_deadline_is_retried_once_it_has_ended(tmp_path):
    r, failing, decision, _, events = stalled_commit(
        tmp_path, FailingLateLog, alarm="store_fault", state="cleared"
    )
    assert decision["committed"] is False
    assert [e["decision"] for e in events] == ["deny"]
    assert "store_fault" in events[0]["reasons"]
    assert failing.calls == 2 and not failing.retried_while_pending
    assert len(r.runner.engine.backlog) == 0


def test_a_late_commit_its_condition_refused_is_told_so_not_as_failed(tmp_path):
    """A commit past its deadline that ends refused (``kiosk.store.AlreadyRecorded``: another
    tablet's registration was there) is told as that refusal, so the pass held for it is not
    written after the record that stands for it; a failure is told as None, as before."""
    from kiosk.crossing import Crossing

    r = Rig(tmp_path)
    told: list = []
    r.runner.engine.on_late_commit = lambda crossing, event: told.append(event)
    loop = asyncio.new_event_loop()
    try:
        for failed in (AlreadyRecorded({"seq": 1}), StoreFault("store_fault", "disk I/O error")):
            ended = loop.create_future()
            ended.set_exception(failed)
            r.runner._late_commit(Crossing(EventDraft(direction="in", decision="pass")), ended)
    finally:
        loop.close()
        r.close()
    assert isinstance(told[0], AlreadyRecorded) and told[1] is None


def test_a_pass_committed_during_the_stops_wait_is_not_let_through_the_gate_locked_first(tmp_path):
    """The stop waited for a crossing under way before it locked the gate: a pass committed in
    that wait drove the relay open (locked again at once), the log said the person went
    through and the screen said pass. The gate is locked first, and nothing opens it after:
    the pass committed later is followed in the log by its ``stopping`` deny (``not_opened``,
    the temperature and the pass kept as any deny keeps them), the screen is told a deny for
    ``stopping``, never the pass, and no outing is counted."""
    reader = PushReader()
    r = Rig(tmp_path, overrides=UNHURRIED, readers=[reader])
    slow = SlowLog(r.log)
    r.runner.store = slow

    async def main():
        await r.runner.start()
        r.thermometer.body_c = 36.6
        reader.show(r.pass_text(household="A-101"), r.clock)
        # The stop must come while the commit is under way, which is what is tested.
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)  # one turn of the loop: the stop has begun
        assert r.runner.stopping and not stopping.done()
        slow.release.set()  # the commit lands while the runner is stopping
        await stopping
        return await r.next("decision")

    try:
        decision = run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [c.open_ for c in r.gate.commands] == [False, False]  # start, stop: never opened
    passed, denied = events
    assert passed["decision"] == "pass" and denied["decision"] == "deny"
    assert denied["reasons"] == ["stopping"]
    assert denied["flags"] == [f"not_opened:{passed['seq']}"]
    assert denied["temp_c"] == passed["temp_c"] is not None
    assert denied["household"] == passed["household"] == "A-101"
    assert decision["decision"] == "deny" and decision["reasons"] == ["stopping"]
    assert not [m for m in r.seen if m["type"] == "decision" and m["decision"] == "pass"]
    assert r.runner.engine.state == "decided" and r.runner.engine.prompt == "deny"
    assert r.history.last_passage(passed["pass_id"], passed["direction"]) is None  # no passback


def test_a_guards_pass_the_stop_kept_the_gate_locked_for_is_no_relay_fault_nor_a_pass_shown(
    tmp_path,
):
    """A guard's pass handed to the engine as the stop began: the stop's refusal to open was
    taken for a relay failure (gate fault, alarm, the screen out of order for a broken relay).
    It is what it is: no fault, no alarm, the screen saying the checkpoint is stopping; the
    guard opens by hand as for a relay that did not open, so no ``not_opened`` row."""
    r = Rig(tmp_path, overrides=UNHURRIED)
    slow = SlowLog(r.log)
    r.runner.store = slow

    async def main():
        await r.runner.start()
        r.runner.engine.manual(
            decision="manual_pass", operator="alice", reason="x", direction="in", subject="none"
        )
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        stopping = asyncio.ensure_future(r.runner.stop())
        await asyncio.wait({stopping}, timeout=0)  # one turn of the loop: the stop has begun
        slow.release.set()
        await stopping

    try:
        run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [c.open_ for c in r.gate.commands] == [False, False]  # start, stop: never opened
    assert [e["decision"] for e in events] == ["manual_pass"]
    eng = r.runner.engine
    assert "gate" not in eng.faults and eng.prompt == "stopping"
    told = []
    while (message := r.sub.get_nowait()) is not None:
        told.append(message)
    assert [m["decision"] for m in told if m["type"] == "decision"] == ["manual_pass"]
    assert not [m for m in told if m["type"] == "alarm" and m.get("alarm") == "gate_fault"]


class _CrossingCutShort(StopBudget):
    """A stop's budget gone before a crossing under way could end (a stalled card's commit):
    no time for it, its own cap for every other step."""

    def grant(self, step: str, own_s: float, **kw) -> float:
        return 0.0 if step == "crossing under way" else super().grant(step, own_s, **kw)


def test_a_crossing_that_outlives_the_stops_wait_never_opens_the_gate_after_its_lock(tmp_path):
    """The stop waits for a crossing under way only as long as its budget allows: one whose
    commit lands after the gate was commanded locked (here while a reader is being stopped)
    does not open it, and the stop leaves the gate locked."""
    overrides = {**UNHURRIED, "policy": {"mode": "pass_only"}}
    crossed = threading.Event()

    class ReleasingReader(PushReader):
        def stop(self) -> None:  # after the lock: the commit lands, the crossing ends
            slow.release.set()
            assert crossed.wait(6 * WAIT_S)
            super().stop()

    reader = ReleasingReader()
    r = Rig(tmp_path, overrides=overrides, readers=[reader])
    slow = SlowLog(r.log)
    r.runner.store = slow

    async def main():
        await r.runner.start()
        reader.show(r.pass_text(), r.clock)
        assert await asyncio.to_thread(slow.entered.wait, 6 * WAIT_S)
        [crossing] = r.runner._inflight
        crossing.add_done_callback(lambda _: crossed.set())
        await r.runner.stop(_CrossingCutShort(math.inf))

    try:
        run(main())
        events = r.log.events()
    finally:
        r.close()
    assert [c.open_ for c in r.gate.commands] == [False, False]  # start, stop: never opened
    # Committed, then recorded as a pass the gate did not open for (no passage counted).
    assert [e["decision"] for e in events] == ["pass", "deny"]
    assert events[1]["reasons"] == ["stopping"]  # the stop kept it locked: no relay's fault


def _first_decision_after_start(r: Rig, text: str) -> dict:
    """Start the runner on what the log holds, show ``text``, and stop: its decision."""

    async def main():
        await r.runner.start()
        r.show(text)
        decision = await r.next("decision")
        await r.runner.stop()
        return decision

    try:
        return run(main())
    finally:
        r.close()


def test_history_is_rebuilt_from_the_event_log_at_start(tmp_path):
    r = Rig(tmp_path, overrides={"policy": {"mode": "pass_only", "passback": {"mode": "hard"}}})
    text = r.pass_text()
    verified = r.trust.verify(text)
    r.log.append(
        EventDraft(
            direction="in",  # the scanner's passages use the site's default direction
            decision="pass",
            pass_id=verified.pass_id,
            household=verified.household,
            holder=verified.holder,
        )
    )

    decision = _first_decision_after_start(r, text)
    assert r.runner.history_loaded == 1
    assert decision["reasons"] == ["passback"]


def one_outing_rig(tmp_path) -> Rig:
    """An exit gate, pass only, one outing per household per period."""
    return Rig(
        tmp_path,
        overrides={
            "site": {"direction": "out"},
            "policy": {"mode": "pass_only", "quota": {"enabled": True, "exits": 1}},
        },
    )


def test_a_staff_exit_in_the_log_is_left_out_of_the_rebuilt_quota(tmp_path):
    # A staff member went out on the household's code (flagged quota_exempt by the policy);
    # after a restart the resident's one outing is still there.
    r = one_outing_rig(tmp_path)
    text = r.pass_text()
    verified = r.trust.verify(text)
    r.log.append(
        EventDraft(
            direction="out",
            decision="pass",
            pass_id="staff-pass",
            household=verified.household,
            flags=("quota_exempt",),
        )
    )

    decision = _first_decision_after_start(r, text)
    assert r.runner.history_loaded == 1
    assert decision["reasons"] == ["ok"]


def test_the_relays_health_is_asked_in_its_device_thread_never_on_the_loop(rig):
    # A relay driver may touch the device in health() (the serial relay commands the lock
    # again after a replug; opening a wedged USB adapter blocks for seconds): asked on the
    # loop, it would stall every temperature and code until it returned.
    asked_on: list[threading.Thread] = []
    health = rig.gate.health

    def noted_health():
        asked_on.append(threading.current_thread())
        return health()

    rig.gate.health = noted_health

    async def main():
        loop_thread = threading.current_thread()
        await rig.runner.start()
        while not asked_on:  # until the health loop's first report: the relay was asked
            await rig.next("health")
        report = rig.runner.health()
        await rig.runner.stop()
        return loop_thread, report

    loop_thread, report = run(main())
    assert asked_on and loop_thread not in asked_on
    assert report["devices"]["gate"]["state"] == "ok"


def test_loop_heartbeat_is_healthy_only_while_running(rig):
    async def main():
        before = rig.runner.loop_healthy(1.0)
        await rig.runner.start()
        during = rig.runner.loop_healthy(1.0)
        await rig.runner.stop()
        return before, during, rig.runner.loop_healthy(1.0)

    assert run(main()) == (False, True, False)


def test_health_reports_every_device_and_whether_it_decides(rig):
    async def main():
        await rig.runner.start()
        ok = rig.runner.health()
        rig.scanner.state = "fault"
        await rig.next("alarm", alarm="reader_fault", state="raised")
        broken = rig.runner.health()
        await rig.runner.stop()
        return ok, broken

    ok, broken = run(main())
    metrics = rig.runner.metrics()
    assert all(isinstance(v, int | float) for v in metrics.values())
    assert metrics["thermometer_calls"] >= 1
    assert set(ok["devices"]) == {"thermometer", "reader:scanner", "gate", "store"}
    assert ok["deciding"] is True
    assert broken["deciding"] is False
    assert broken["degraded"] == ["reader:scanner"]


def test_guard_action_from_another_thread_enters_the_same_path(rig):
    async def main():
        await rig.runner.start()
        worker = threading.Thread(
            target=rig.runner.manual_threadsafe,
            kwargs={
                "decision": "manual_pass",
                "operator": "guard-zhou",
                "reason": "known resident",
                "direction": "in",
            },
        )
        worker.start()
        decision = await rig.next("decision")
        await asyncio.to_thread(worker.join)
        await rig.next("state", state="decided")
        await rig.runner.stop()
        return decision

    decision = run(main())
    assert decision["decision"] == "manual_pass"
    assert decision["operator"] == "guard-zhou"
    assert [c.open_ for c in rig.gate.commands][:2] == [False, True]  # start, the guard's pass


def test_device_worker_fails_fast_while_a_call_is_still_hung():
    gate = threading.Event()
    worker = DeviceWorker("thermometer", 0.02, SensorFault)

    async def main():
        with pytest.raises(SensorFault, match="no answer within 20 ms"):
            await worker.call(gate.wait, WAIT_S)
        with pytest.raises(SensorFault, match="has not returned"):
            await worker.call(lambda: 1)
        gate.set()
        assert await asyncio.to_thread(worker.wait_idle, WAIT_S)
        return await worker.call(lambda: 42)

    try:
        assert run(main()) == 42
    finally:
        gate.set()
        worker.stop()


def test_a_scenario_plays_in_real_time_onto_the_running_kiosk(rig):
    from checkpoint.demo import walk_on_when_decided
    from checkpoint.replay import (
        DeviceTarget,
        ScenarioDriver,
        ScenarioKeys,
        parse_scenario,
        play_realtime,
    )

    scenario = parse_scenario(
        {
            "name": "rt",
            "present": "scanner",
            "steps": [
                {
                    "at_s": 0.02,
                    "direction": "out",
                    "body_c": 36.6,
                    "pass": {"household": "A-1", "holder": "Li"},
                },
                {"at_s": 0.04, "quarantine": {"household": "Q-9"}},
            ],
        },
        "rt",
    )
    keys = ScenarioKeys()
    rig.runner.engine.trust = keys.trust

    class Person:
        """The emulator's scene control, onto the scripted thermometer."""

        def person_arrives(self, body_c: float) -> None:
            rig.thermometer.body_c = body_c

        def person_leaves(self) -> None:
            rig.thermometer.body_c = None

    async def main():
        await rig.runner.start()
        target = DeviceTarget(
            rig.clock,
            emulator=Person(),
            list_store=rig.lists,
            code_sink=rig.runner.submit_code,
            on_direction=rig.runner.select_direction,
            on_manual=rig.runner.manual_threadsafe,
        )
        walked = asyncio.Event()
        loop = asyncio.get_running_loop()
        walk_on = target.visitor_done

        def visitor_done(message: dict) -> None:  # the bus subscriber runs it in a thread
            walk_on(message)
            loop.call_soon_threadsafe(walked.set)

        target.visitor_done = visitor_done
        walker = asyncio.create_task(walk_on_when_decided(rig.runner.bus, target))
        driver = ScenarioDriver(scenario, rig.clock, target, keys)
        await play_realtime(driver)
        decision = await rig.next("decision")
        await asyncio.wait_for(walked.wait(), 10)
        walker.cancel()
        await rig.runner.stop()
        return decision, driver

    decision, driver = run(main())
    assert decision["decision"] == "pass"
    assert decision["direction"] == "out"
    assert driver.done and driver.applied == [0, 1]
    assert rig.thermometer.body_c is None  # the visitor walked on
    assert rig.lists.current.quarantine[0].household == "Q-9"


def test_a_pi_camera_whose_library_cannot_load_raises_the_reader_alarm_once(
    tmp_path, monkeypatch, caplog
):
    """picamera2 importing Debian's simplejpeg under the venv's numpy 2 raises ValueError at
    import: the reader is a fault, the guard gets the alarm, the journal gets one line."""
    import sys
    import types

    from drivers.camera import CameraReader
    from drivers.decoders import build_decoder
    from drivers.picamera import PiCamera
    from drivers.pipeline import FramePipeline
    from kiosk.config.readers import DecoderConfig, WatchdogConfig

    class BrokenPicamera2(types.ModuleType):
        def __getattr__(self, name):
            raise ValueError("numpy.dtype size changed, may indicate binary incompatibility")

    monkeypatch.setitem(sys.modules, "picamera2", BrokenPicamera2("picamera2"))
    clock = system_clock()
    pipeline = FramePipeline(build_decoder("zxing"), DecoderConfig(), clock, source="csi")
    wd = WatchdogConfig(reopen_initial_s=0.05, reopen_max_s=0.1)
    reader = CameraReader(PiCamera(clock, name="csi"), pipeline, clock, name="csi", watchdog=wd)
    r = Rig(
        tmp_path,
        overrides={"readers": {"sources": [{"type": "picamera", "name": "csi"}]}},
        readers=[reader],
    )
    caplog.set_level("WARNING", logger="drivers")

    async def main():
        await r.runner.start()
        alarm = await r.next("alarm", alarm="reader_fault", state="raised")
        await r.runner.stop()
        return alarm

    try:
        alarm = run(main())
    finally:
        r.close()
    assert "numpy.dtype size changed" in alarm["detail"]
    assert reader.reopens == 0 and reader.faults.lines == 1
    assert len([rec for rec in caplog.records if rec.name == "drivers.camera"]) == 1


def test_an_engine_tick_failing_at_every_tick_is_one_traceback_and_its_end_one_line(
    rig, caplog, monkeypatch
):
    """The tick runs 10-20 times a second: a tick that kept failing wrote a traceback at each,
    tens of thousands of lines an hour in the journal on the card."""
    failure: list[Exception | None] = [RuntimeError("ledger out of step")]
    real_tick = rig.runner.engine.tick

    def tick() -> None:
        if failure[0] is not None:
            raise failure[0]
        real_tick()

    monkeypatch.setattr(rig.runner.engine, "tick", tick)
    caplog.set_level("INFO", logger="kiosk")
    for _ in range(1000):
        rig.runner._tick()
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and lines[0].exc_info is not None
    failure[0] = None
    for _ in range(10):
        rig.runner._tick()
    failure[0] = KeyError("other")
    for _ in range(10):
        rig.runner._tick()
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.levelname for r in lines] == ["ERROR", "INFO", "ERROR"]
    assert "working again" in lines[1].getMessage()


def test_air_outside_the_trusted_range_stands_in_the_health_report_for_a_screen_loaded_later(
    rig,
):
    # The engine's standing air state (tests/test_engine_winter.py) was only in its bus
    # messages: a kiosk page or console loaded after it was raised (the browser restarted every
    # morning) showed no banner and no standing card. It is a row of the health report.
    from kiosk.alarms import device_alarms
    from ui.kiosk_screen import banner_view
    from ui.views import faults_of

    detail = "air 6.0 degC outside the thermometer's trusted range (15 to 35 degC) since 07:10"
    rig.runner.engine.faults["air"] = detail
    report = rig.runner.health()
    assert report["devices"]["air"] == {"state": "fault", "detail": detail}
    assert [a.key for a in device_alarms(faults_of(report))] == ["device:air"]
    notes = banner_view(report, "en")  # (not started here: "self check paused" as well)
    assert "Air outside the thermometer's range: please see the guard for a manual check" in notes
    assert not [n for n in notes if n.startswith("Device fault")]
