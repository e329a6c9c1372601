"""A passage costs the SD card one commit (one ``fsync`` in FULL): its decision's, before the
relay. Nothing else the engine does on an ordinary pass writes to the event log."""

from __future__ import annotations

import pytest
from test_engine import Rig
from test_sdwear_log_lines import _residents_pass


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path)
    yield r
    r.close()


def test_an_ordinary_pass_is_one_commit_and_nothing_else_is_written(rig):
    _residents_pass(rig, 1)  # the day's first row also makes its digest salt (once a period)
    statements: list[str] = []
    rig.log.submit(lambda db: db.conn.set_trace_callback(statements.append))
    statements.clear()
    _residents_pass(rig, 3, first=1)
    rig.run(60)  # the gate closes, the screen goes idle, a minute of ticks: no write
    rig.log.submit(lambda db: db.conn.set_trace_callback(None))
    assert [d["decision"] for d in rig.decisions()] == ["pass"] * 4
    assert statements.count("COMMIT") == 3
    inserts = [s.split("(")[0].strip() for s in statements if s.startswith("INSERT")]
    # Each commit: its event and the log's own high-water mark (the trigger's tally inside).
    assert sorted(set(inserts)) == ["INSERT INTO events", "INSERT INTO meta"]
