"""A peer's passage does not make this gate forget its own passages not dated yet.

A gate whose clock was never set (no RTC, no saved time) stamps 1970; the kiosk cannot judge a
pass on it, so the guard lets the resident out by hand, and the record waits for NTP to date
it (``PassageHistory.redate``, at the first decision on a set clock). A peer's passage, on its
dated clock, pruned the history at its time less the horizon: when NTP stepped the clock here
and the peers' rows came in before the next decision (or when the gate restarted on its clock
still unset and loaded the peers' rows held), the guard's pass went with the 1970 rest: the
resident out again a minute later passed, neither passback nor over the household's quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from test_compound_gates import peer_entry
from test_engine import Rig

from checkpoint.app import build_core
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.passes import issue_pass
from kiosk.peers import CheckedPage, PeerLedger, PeerRow
from kiosk.store import EventDraft, format_ts

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
UNSET = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
QUOTA = {"quota": {"enabled": True, "exits": 1, "period_days": 2}}


@pytest.fixture
def unset():
    return FakeClock(start=UNSET, is_synced=False)


@pytest.fixture
def rig(unset, tmp_path):
    r = Rig(unset, tmp_path, policy=QUOTA)
    yield r
    r.close()


def _out(rig: Rig, text: str, *, guard: bool = False) -> dict:
    """The resident shows ``text`` going out; ``guard``: the guard lets them out by hand on
    the kiosk's deny shown. The kiosk's decision."""
    before = len(rig.decisions())
    rig.show(text, "out")
    rig.emulator.person_arrives(36.6)
    rig.run(3)
    if guard:
        rig.engine.manual("manual_pass", "guard-zhou", "known resident", "out")
        rig.run(1)
    rig.emulator.person_leaves()
    rig.run(8)
    return rig.decisions()[before:][0]


def _ntp_steps(clock: FakeClock) -> None:
    clock.advance(60)
    clock.set_wall(NOW)
    clock.is_synced = True


def test_the_guards_pass_on_a_clock_never_set_outlives_a_peers_passage_after_ntp(rig, unset):
    text = issue_pass(rig.key, "1-101", "Li Wei", now=NOW - timedelta(days=1))[0]
    shown = _out(rig, text, guard=True)
    assert (shown["decision"], shown["reasons"]) == ("deny", ["pass_not_yet_valid"])
    given = rig.decisions()[-1]
    assert (given["decision"], given["household"]) == ("manual_pass", "1-101")
    assert rig.history.undated == 1
    _ntp_steps(unset)
    # The peers' rows held back while this clock was unset come in before the next decision.
    rig.history.record("Q", "2-202", "in", "pass", NOW - timedelta(minutes=1), peer=True)
    again = _out(rig, text)
    assert again["decision"] == "deny"
    assert set(again["reasons"]) == {"quota_exceeded", "passback"}


def test_a_restart_on_a_clock_never_set_loads_the_peers_rows_and_keeps_its_own(tmp_path, unset):
    config = parse_config(
        {
            "site": {"kiosk_id": "gate-north"},
            "policy": QUOTA,
            "compound": {"peers": [peer_entry("gate-south")]},
        }
    )
    core = build_core(config, tmp_path, unset)
    try:  # a guard's pass here at 1970; the peer's rows held since the clock was last set
        core.store.append(
            EventDraft(direction="out", decision="manual_pass", pass_id="P1", household="1-101")
        )
        row = PeerRow("gate-south", 1, "Q", "2-202", "in", "pass", format_ts(NOW), False)
        PeerLedger(core.store, timedelta(days=3)).merge(
            "http://s", "gate-south", CheckedPage([row], 1, 1, 0), NOW
        )
    finally:
        core.close()
    restarted = build_core(config, tmp_path, unset)  # the same boot, the clock still unset
    try:
        history = restarted.runner.history
        assert restarted.runner._load_history() == 2  # as the runner does when it starts
        assert history.undated == 1
        _ntp_steps(unset)
        history.redate(unset.now(), unset.monotonic_ns())
        assert history.exits_in_period("1-101", unset.now(), 2) == 1
        assert history.last_passage("P1", "out") == NOW - timedelta(minutes=1)
    finally:
        restarted.close()
