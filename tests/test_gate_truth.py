"""A pass the relay did not open for: the log, the reports and the gate tell one story.

The engine commits a pass before it commands the relay (a record for every opening). When the
relay then failed to open (a USB board unplugged), the guard got ``gate_fault`` and the screen
said out of order, but the log, the pull, the guard's feed and the daily report still said the
resident went through: the office counted a person who never did, the household's outing was
used up, anti-passback refused the resident's next try once the relay worked, and the guard's
manual pass for the same person (recorded as a person without a pass: the console refuses a
manual pass about a passage the kiosk passed) made two people through. The log is append-only,
so the pass row stays; the row after it, ``deny`` ``gate_fault`` flagged ``not_opened:<seq>``,
says the gate did not open for it, and every count follows that link (``kiosk.links``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlite_utils
from support import exits_since
from test_engine import Rig

from kiosk.config.policy import QuotaConfig
from kiosk.stats import compute_report
from kiosk.store import EventDraft

EARLY = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def rig(clock, tmp_path):
    r = Rig(
        clock,
        tmp_path,
        policy={"mode": "pass_only", "quota": {"enabled": True, "exits": 1}},
    )
    yield r
    r.close()


def _report(rig: Rig) -> dict:
    day = date.fromisoformat(rig.events()[0]["ts"][:10])
    quota = QuotaConfig(enabled=True, exits=1)
    return compute_report(sqlite_utils.Database(rig.log.path), day, "UTC", quota)


def _failed_pass(rig: Rig, household: str = "A-101") -> str:
    """A resident going out shows a pass while the relay's board is unplugged; its text."""
    rig.gate.unplug()
    text = rig.pass_text(household=household)
    rig.show(text, "out")
    rig.run(1)
    return text


def test_a_pass_the_relay_did_not_open_for_is_followed_by_a_row_saying_so(rig):
    _failed_pass(rig)
    passed, followed = rig.events()
    assert (passed["decision"], passed["reasons"]) == ("pass", ["ok"])  # append-only: it stays
    assert (followed["decision"], followed["reasons"]) == ("deny", ["gate_fault"])
    assert followed["flags"] == [f"not_opened:{passed['seq']}"]
    same = ("pass_id", "household", "holder", "direction", "kind")
    assert [followed[f] for f in same] == [passed[f] for f in same]
    assert followed["operator"] is None and followed["temp_c"] is None
    assert rig.log.verify().ok
    assert ("gate_fault", "raised") in rig.alarms()


def test_nobody_went_through_so_no_outing_and_no_passback_is_held(rig):
    _failed_pass(rig)
    pass_id = rig.events()[0]["pass_id"]
    assert exits_since(rig.history, "A-101", EARLY) == 0
    assert rig.history.last_passage(pass_id, "out") is None


def test_the_resident_passes_once_the_relay_answers_again(rig):
    """Not ``passback`` (the same pass out again within two minutes) nor ``quota_exceeded``
    (one outing a period): the first try never went through."""
    text = _failed_pass(rig)
    rig.gate.replug()
    eng = rig.config.engine
    rig.run(max(eng.idle_probe_s, eng.result_hold_s) + 1)  # its probe finds it answering
    assert "gate" not in rig.engine.degraded and rig.engine.state == "idle"
    rig.show(text, "out")
    rig.run(1)
    last = rig.events()[-1]
    assert (last["decision"], last["reasons"]) == ("pass", ["ok"])
    assert rig.gate.commands[-1].open_ is True
    report = _report(rig)
    assert report["exits_per_household"]["exits"] == 1
    assert report["exits_per_household"]["over_quota_households"] == 0


def test_the_report_counts_the_guards_manual_pass_once_and_the_failed_pass_not_at_all(rig):
    _failed_pass(rig)
    rig.engine.manual("manual_pass", "guard-zhou", "let through by hand", "out", subject="none")
    rig.run(1)
    report = _report(rig)
    assert report["community"]["people"] == {"in": 0, "out": 1}
    passages = report["passages"]
    assert (passages["total"], passages["passed"], passages["denied"]) == (2, 1, 1)
    assert report["by_decision"] == {"deny": 1, "manual_pass": 1, "pass": 1}  # rows
    assert report["exits_per_household"]["exits"] == 0  # the household never went out on it


def test_after_a_restart_the_pass_the_gate_did_not_open_for_is_still_no_outing(tmp_path):
    """The engine's history is rebuilt from the log at start: the pass row alone read as an
    outing and a passage out, so a restart between the failure and the resident's next try
    (a watchdog, the technician reseating the relay and restarting) refused it as passback and
    used up the household's quota."""
    import test_runner

    r = test_runner.one_outing_rig(tmp_path)
    text = r.pass_text()
    verified = r.trust.verify(text)
    person = {"pass_id": verified.pass_id, "household": verified.household}
    passed = r.log.append(EventDraft(direction="out", decision="pass", **person))
    r.log.append(
        EventDraft(
            direction="out",
            decision="deny",
            reasons=("gate_fault",),
            flags=(f"not_opened:{passed.seq}",),
            **person,
        )
    )
    decision = test_runner._first_decision_after_start(r, text)
    assert r.runner.history_loaded == 0
    assert (decision["decision"], decision["reasons"]) == ("pass", ["ok"])


def test_a_pass_whose_commit_landed_after_its_deadline_is_followed_by_the_deny_shown(rig):
    """The card stalled past ``store_deadline_ms``: the screen said deny (``store_fault``) and
    the gate stayed shut; the commit landed a moment later, so the log held a ``pass`` and the
    deny the resident was shown was dropped as a second copy. The office counted them through
    (the guard's alarm said the record was wrong, nothing else did). The deny held for the log
    is written after it, flagged ``not_opened:<seq>``."""
    from test_engine import _hold_crossings, land_late

    held = _hold_crossings(rig)
    rig.show(rig.pass_text(household="A-101"), "out")
    rig.run(0.5)
    [crossing] = held
    land_late(rig, crossing)
    del rig.ports.cross  # the store works again: the held record is written at its retry
    rig.run(rig.config.engine.idle_probe_s + 1)
    passed, followed = rig.events()
    assert passed["decision"] == "pass"
    assert (followed["decision"], followed["reasons"]) == ("deny", ["store_fault"])
    # the deny shown, and the alarm the engine raised for it (its row records it)
    assert followed["flags"] == [
        "role:resident",
        "alarm:device_fault",
        f"not_opened:{passed['seq']}",
    ]
    assert followed["ts"] == passed["ts"]  # the moment it was decided and shown
    assert len(rig.engine.backlog) == 0
    report = _report(rig)
    assert report["community"]["people"] == {"in": 0, "out": 0}
    assert report["exits_per_household"]["exits"] == 0


@pytest.mark.parametrize("late", [False, True], ids=["relay", "late-commit"])
def test_the_row_saying_the_gate_did_not_open_is_told_on_the_bus(rig, late):
    """The pass was published (its decision, committed), the row after it was not: nothing
    watching the bus learnt of it (the compound's other gates held the pass as a passage
    until their next poll). Its commit is published (``recorded``), naming both rows."""
    if late:
        from test_engine import _hold_crossings, land_late

        held = _hold_crossings(rig)
        rig.show(rig.pass_text(household="A-101"), "out")
        rig.run(0.5)
        land_late(rig, held[0])
        del rig.ports.cross
        rig.run(rig.config.engine.idle_probe_s + 1)
    else:
        _failed_pass(rig)
    passed, followed = rig.events()
    told = [m for m in rig.messages if m["type"] == "recorded"]
    said = {"decision": followed["decision"], "not_opened": passed["seq"]}
    assert told == [{"type": "recorded", "seq": followed["seq"], **said}]
