"""Months at the gate without growing: the engine and the bus after many passages hold what
they held after a few, in virtual time (a FakeClock), on the real engine, policy, passage
history and event log.

A gate runs for months between restarts. Whatever the engine or the bus keeps per passage,
per person or per code must be let go once it has done its work: the sizes of their
structures, and the passages, drafts, events, crossings and outcomes still alive anywhere in
the process, are the same after many passages as after a few.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint.virtual import DirectPorts
from drivers.gate import FakeGate
from kiosk import lists as lists_mod
from kiosk.bus import EventBus
from kiosk.config import parse_config
from kiosk.crossing import Crossing, Outcome
from kiosk.devices import CodeRead
from kiosk.engine import Engine, Passage
from kiosk.history import PassageHistory
from kiosk.passes import TrustList, issue_pass
from kiosk.store import Event, EventDraft, EventLog

#: The households of the compound, each with one resident's pass.
HOUSEHOLDS = 120
#: Virtual seconds between two people at the gate: 10,000 passages are ~42 days.
GAP_S = 360.0


class Gate:
    """A pass-only gate: the engine on a real event log and a bus with a screen that reads
    every message and a tablet that went to sleep with its stream open."""

    def __init__(self, clock, tmp_path) -> None:
        self.clock = clock
        self.config = parse_config({"policy": {"mode": "pass_only"}})
        key = Ed25519PrivateKey.generate()
        self.log = EventLog(
            tmp_path / "events.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS], boot_id="b"
        ).open()
        self.lists = lists_mod.ListStore(self.log, clock)
        self.lists.load()
        self.history = PassageHistory()
        self.bus = EventBus(maxsize=64)
        self.screen = self.bus.subscribe(name="screen")
        self.ports = DirectPorts(self.log, FakeGate(clock), self.bus)
        self.engine = Engine(
            self.config,
            clock,
            self.ports,
            trust=TrustList([("demo", key.public_key())]),
            lists=self.lists,
            history=self.history,
        )
        self.ports.engine = self.engine
        now = clock.now()
        self.passes = [
            issue_pass(key, f"B{n // 10}-{n % 10:02d}", f"Resident {n}", days=400, now=now)[0]
            for n in range(HOUSEHOLDS)
        ]
        self.n = 0
        self.sleepers = 0
        self.read = 0

    def close(self) -> None:
        self.log.close()

    def passage(self) -> None:
        """The next person: mostly a resident's pass, now and then a code that is no pass or a
        guard's manual pass; a tablet wakes up (its stream dropped) and sleeps again."""
        n, self.n = self.n, self.n + 1
        self.clock.advance(GAP_S)
        if n % 50 == 7:
            self.engine.manual(
                decision="manual_pass", operator="alice", reason="visitor", direction="in"
            )
        else:
            text = f"not a pass {n}" if n % 25 == 3 else self.passes[n % HOUSEHOLDS]
            way = "in" if (n // HOUSEHOLDS) % 2 else "out"
            self.engine.on_code(CodeRead(text, "scanner", self.clock.monotonic_ns()), way)
        if n % 100 == 11:
            self.bus.subscribe(name=f"tablet-{n}")  # never read: dropped once it falls behind
        for _ in range(3):  # the pulse, the result held, idle again
            self.clock.advance(self.config.gate.pulse_ms / 1000 + self.config.engine.result_hold_s)
            self.engine.tick()
        while self.screen.get_nowait() is not None:
            self.read += 1
        assert self.engine.state == "idle", self.engine.state

    def run(self, passages: int) -> None:
        for _ in range(passages):
            self.passage()


def _alive(*kinds: type) -> dict[str, int]:
    gc.collect()
    counts = dict.fromkeys((k.__name__ for k in kinds), 0)
    for obj in gc.get_objects():
        for kind in kinds:
            if type(obj) is kind:
                counts[kind.__name__] += 1
    return counts


def sizes(gate: Gate) -> dict[str, Any]:
    """What the engine and the bus hold, and the per-passage objects alive in the process."""
    eng, bus = gate.engine, gate.bus
    held = {
        "backlog": len(eng.backlog),
        "crossings": len(eng._crossings),
        "late": len(eng._late),
        "inbox": len(eng._inbox),
        "manual_queue": len(eng._manual_queue),
        "faults": len(eng.faults),
        "fault_lines": len(eng._fault_lines),
        "reader_faults": len(eng.reader_faults),
        "subscribers": bus.subscribers,
        "sticky": len(bus._sticky),
        "queued": sum(s.pending() for s in bus._subs),
    }
    return held | _alive(Passage, EventDraft, Event, Crossing, Outcome)


def _same_after(clock, tmp_path, first: int, then: int) -> None:
    gate = Gate(clock, tmp_path)
    try:
        gate.run(first)
        early = sizes(gate)
        gate.run(then - first)
        late = sizes(gate)
        assert gate.log.last_seq == then
        # Every resident's passages the history holds are those of its horizon (31 days).
        horizon_passages = int(gate.history.horizon / timedelta(seconds=GAP_S)) + 1
        assert len(gate.history) <= HOUSEHOLDS + horizon_passages
    finally:
        gate.close()
    assert gate.read > then  # the screen heard every decision
    assert late == early


@pytest.mark.slow
def test_the_engine_and_the_bus_hold_as_much_after_2000_passages_as_after_200(clock, tmp_path):
    _same_after(clock, tmp_path, 200, 2000)


@pytest.mark.slow  # 10,000 commits to a real event log
def test_the_engine_and_the_bus_hold_as_much_after_10000_passages_as_after_1000(clock, tmp_path):
    _same_after(clock, tmp_path, 1000, 10_000)
