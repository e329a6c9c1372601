"""The engine's own audit rows on the runner (``EngineRunner._spawn_audit``): a row waiting on a
stalled card is not a crossing under way."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_runner import Rig, run

WAIT_S = 10  # a bound for a loaded machine, never reached when it works


class _Said(logging.Handler):
    """Sets ``said`` once the runner's journal says ``words``."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.said = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.said.set()


@pytest.mark.slow  # integration: real deadlines (CI runs it)
def test_an_engine_audit_waiting_on_a_stalled_card_stills_nothing(tmp_path):
    """A ``held_pass_dropped`` row waits on a slow card; meanwhile the relay is unplugged
    while idle. Its gate fault is raised (the relay's health poll did nothing while the row
    sat among the crossings under way: no fault until the next resident's pass), the row is
    no crossing in ``queue_depth``, and the journal says it was not confirmed in time."""
    rig = Rig(tmp_path)
    stuck = asyncio.Event()

    async def slow_audit(actor, action, detail=None):
        await stuck.wait()  # the writer stalled on a slow card

    async def main():
        await rig.runner.start()
        rig.store.audit_async = slow_audit
        rig.runner.engine.ports.audit("held_pass_dropped", {"seq": 1})
        await asyncio.sleep(0)
        depth = rig.runner.metrics()["queue_depth"]
        rig.gate.unplug()
        raised = await asyncio.wait_for(
            rig.next("alarm", alarm="gate_fault", state="raised"), WAIT_S
        )
        stuck.set()
        await rig.runner.stop()
        return depth, raised

    overdue = _Said("engine audit held_pass_dropped not confirmed within 300 ms")
    logging.getLogger("kiosk.runner").addHandler(overdue)
    try:
        depth, raised = run(main())
    finally:
        logging.getLogger("kiosk.runner").removeHandler(overdue)
        rig.close()
    assert depth == 0 and raised["state"] == "raised"
