"""A kiosk restarted on a clock AHEAD, not synchronised: a fast fake-hwclock, a hand mis-set
that got saved. ``kiosk.clock.FlooredClock`` keeps the log's newest synchronised stamp (plus
the monotonic time since), a lower bound on real time; the clock's own reading may be right or
days fast. What the two disagree on is not the machine's call: the guard looks
(``clock_not_set``), never a pass nobody looked at (docs/policy.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from test_clock_floor import _config, _decide, _restart_on, trusted_key

from checkpoint import app
from kiosk.clock import FakeClock
from kiosk.store import EventDraft

MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, synchronised
LONG_AGO = MORNING - timedelta(days=10)


@pytest.fixture
def key(tmp_path):
    return trusted_key(tmp_path)


def _logged(tmp_path, config, **household):
    """The log before the restart: one synchronised passage this morning, and the lists."""
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    before.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
    if "quarantine" in household:
        # From yesterday until the day after tomorrow.
        days = (MORNING - timedelta(days=1)).date(), (MORNING + timedelta(days=2)).date()
        before.lists.add_quarantine(household["quarantine"], None, *days, "zhou")
    if "observed" in household:
        until = (MORNING + timedelta(days=2)).date()
        before.lists.set_household(household["observed"], "zhou", observation_until=until)
    before.close()


def test_a_quarantined_household_on_a_clock_four_days_fast_is_referred_to_the_guard(
    tmp_path, monkeypatch, key
):
    config = _config()
    _logged(tmp_path, config, quarantine="5-505")
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        out = _decide(core, fast, key, household="5-505", days=60, now=LONG_AGO)
        assert out["decision"] == "deny"
        assert "quarantined" in out["reasons"]  # as the floor's day has it
        assert "clock_not_set" in out["flags"] and out["needs_guard"]
        # Nobody else is held: a pass both days agree on still passes alone.
        other = _decide(core, fast, key, household="2-202", days=60, now=LONG_AGO)
        assert other["decision"] == "pass", other["reasons"]
        assert "clock_not_set" not in other["flags"]
    finally:
        core.close()


def test_a_pass_valid_by_the_floor_but_expired_by_a_fast_clock_goes_to_the_guard(
    tmp_path, monkeypatch, key
):
    config = _config()
    _logged(tmp_path, config)
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        # A visitor's three-day pass issued this morning: valid for three days in real time.
        out = _decide(core, fast, key, household="2-202", days=3, now=MORNING)
        assert out["reasons"] == ["pass_expired"]
        assert "clock_not_set" in out["flags"] and out["needs_guard"]
        # Expired by the floor too: expired, as on any clock, nobody called.
        old = _decide(core, fast, key, household="3-303", days=3, now=LONG_AGO)
        assert old["reasons"] == ["pass_expired"] and not old["needs_guard"]
        assert "clock_not_set" not in old["flags"]
    finally:
        core.close()


def test_an_observed_household_on_a_fast_clock_is_still_flagged(tmp_path, monkeypatch, key):
    config = _config()
    _logged(tmp_path, config, observed="6-606")
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        out = _decide(core, fast, key, household="6-606", days=60, now=LONG_AGO)
        assert "observation" in out["flags"]  # the households list's mark: a flag, both days
    finally:
        core.close()


def test_an_observed_returnee_walking_out_on_a_fast_clock_is_referred_to_the_guard(
    tmp_path, monkeypatch, key
):
    config = _config(observation_blocks="out")
    _logged(tmp_path, config)
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    back = (MORNING - timedelta(days=1)).date()  # observed yesterday, today and tomorrow
    before.ledgers.observation.register(
        name="Li Wei", household="6-606", phone="", origin="Wuhan", date_back=back,
        actor="zhou", days=3,
    )  # fmt: skip
    before.close()
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        out = _decide(core, fast, key, household="6-606", days=60, now=LONG_AGO)
        assert out["decision"] == "deny" and "under_observation" in out["reasons"]
        assert "clock_not_set" in out["flags"] and out["needs_guard"]
    finally:
        core.close()


def test_once_ntp_sets_the_clock_its_date_decides_alone(tmp_path, monkeypatch, key):
    config = _config()
    _logged(tmp_path, config, quarantine="5-505")
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        fast.is_synced = True  # NTP says the clock was right: the quarantine is over
        out = _decide(core, fast, key, household="5-505", days=60, now=LONG_AGO)
        assert out["decision"] == "pass", out["reasons"]
        assert "clock_not_set" not in out["flags"]
    finally:
        core.close()
