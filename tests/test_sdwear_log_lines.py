"""What one ordinary passage writes to the journal (journald keeps each line on the SD card).

A busy gate decides ~2,000 passages a day for months; the decision is in the event log
already, so an ordinary pass writes no line at INFO. Warnings and faults still do.
"""

from __future__ import annotations

import logging

import pytest
from test_engine import Rig

from drivers.gate import NoGate


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(clock, tmp_path)
    yield r
    r.close()


def _residents_pass(rig: Rig, count: int, first: int = 0) -> None:
    """``count`` residents of as many households each show a pass, are measured and go."""
    for i in range(first, first + count):
        rig.show(rig.pass_text(household=f"A-{101 + i}", holder=f"Resident {i}"))
        rig.emulator.person_arrives(36.6)
        rig.run(8)
        rig.emulator.person_leaves()
        rig.run(2)


def _journal(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines the daemon at its default level (``kiosk run``: info) hands to journald."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def test_an_ordinary_pass_writes_no_journal_line(rig, caplog):
    """Before: ``engine: passage N pass ok seq=N`` at INFO for every decision, ~2,000 lines
    a day on the card that said only what the event log holds."""
    caplog.set_level(logging.INFO)
    _residents_pass(rig, 3)
    assert [d["decision"] for d in rig.decisions()] == ["pass"] * 3
    assert [e["seq"] for e in rig.events()] == [1, 2, 3]
    assert _journal(caplog) == []
    # Still there for whoever runs the daemon at --log-level debug.
    assert sum("passage" in r.getMessage() for r in caplog.records) == 0
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="kiosk.engine")
    _residents_pass(rig, 1)
    assert any(r.getMessage().startswith("engine: passage 4 pass ok seq=4") for r in caplog.records)


def test_a_decision_the_log_could_not_take_is_still_a_journal_line(rig, caplog):
    """A decision not committed is in no event log: it stays in the journal (at INFO), beside
    the store fault's own warning."""
    caplog.set_level(logging.INFO)
    rig.store.fail()
    rig.resident_comes(3)
    lines = _journal(caplog)
    assert any("(NOT COMMITTED)" in line for line in lines)
    assert any("store fault" in line for line in lines)


def test_an_advisory_gate_writes_no_journal_line_per_passage(caplog):
    """Before: a kiosk with no relay (``gate.driver.type = "none"``) logged ``gate (none):
    open`` and ``gate (none): closed`` at INFO, two lines a passage for ever."""
    caplog.set_level(logging.INFO)
    gate = NoGate()
    for _ in range(3):
        gate.set_open(True)
        gate.set_open(False)
    assert not gate.is_open
    assert _journal(caplog) == []
    caplog.set_level(logging.DEBUG, logger="drivers.gate")
    gate.set_open(True)
    assert [r.getMessage() for r in caplog.records] == ["gate (none): open"]


@pytest.mark.parametrize(("level", "lines"), [("info", 0), ("debug", 1)])
def test_a_peer_poll_writes_no_journal_line_unless_debugging(level, lines, capsys):
    """httpx says every request at INFO ("HTTP Request: GET https://gate-north.lan/api/v1/
    passages?after=... 200 OK"): a gate polling two peers every 10 s wrote ~17,000 journal
    lines a day to its card, each saying nothing a failure would not say. At the daemon's own
    level (info) they are not written; at debug they are."""
    import httpx

    from kiosk.logs import setup_logging

    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        setup_logging(level)
        reply = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
        with httpx.Client(transport=reply) as client:
            client.get("https://gate-north.lan/api/v1/passages?after=0")
        said = [line for line in capsys.readouterr().err.splitlines() if "HTTP Request" in line]
        assert len(said) == lines
    finally:
        root.handlers[:], level_before = kept
        root.setLevel(level_before)
        logging.getLogger("httpx").setLevel(logging.NOTSET)
