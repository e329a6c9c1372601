"""A kiosk restarted on a clock AHEAD, not synchronised: a fast fake-hwclock, a hand mis-set
that got saved. ``kiosk.clock.FlooredClock`` keeps the log's newest synchronised stamp (plus
the monotonic time since), a lower bound on real time; the clock's own reading may be right or
days fast. What the two disagree on is not the machine's call: the guard looks
(``clock_not_set``), never a pass nobody looked at (docs/policy.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from test_clock_floor import _config, _decide, _restart_on, trusted_key

from checkpoint import app
from kiosk.clock import FakeClock, FlooredClock
from kiosk.config import parse_config
from kiosk.passes import PassStartError, issue_pass, pass_start
from kiosk.peers import CheckedPage, PeerLedger, PeerRow
from kiosk.store import EventDraft, format_ts

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


def _restarted_fast(monkeypatch, tmp_path, config):
    """The gate restarted on a clock four days fast that NTP has not set: (core, its clock)."""
    fast = FakeClock(start=MORNING + timedelta(days=4), is_synced=False)
    return _restart_on(monkeypatch, tmp_path, config, fast), fast


def test_a_quarantined_household_on_a_clock_four_days_fast_is_referred_to_the_guard(
    tmp_path, monkeypatch, key
):
    config = _config()
    _logged(tmp_path, config, quarantine="5-505")
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
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
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
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
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
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
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
    try:
        out = _decide(core, fast, key, household="6-606", days=60, now=LONG_AGO)
        assert out["decision"] == "deny" and "under_observation" in out["reasons"]
        assert "clock_not_set" in out["flags"] and out["needs_guard"]
    finally:
        core.close()


def test_once_ntp_sets_the_clock_its_date_decides_alone(tmp_path, monkeypatch, key):
    config = _config()
    _logged(tmp_path, config, quarantine="5-505")
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
    try:
        fast.is_synced = True  # NTP says the clock was right: the quarantine is over
        out = _decide(core, fast, key, household="5-505", days=60, now=LONG_AGO)
        assert out["decision"] == "pass", out["reasons"]
        assert "clock_not_set" not in out["flags"]
    finally:
        core.close()


def _went_out(tmp_path, config, household="1-101"):
    """This morning, synchronised: an outing of ``household``; the restart ten minutes later."""
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    before.store.append(EventDraft(direction="out", decision="pass", household=household))
    before.close()


QUOTA = {"quota": {"enabled": True, "exits": 1, "period_days": 2}}


def test_an_outing_before_a_restart_on_a_fast_clock_counts_after_ntp_steps_it_back(
    tmp_path, monkeypatch, key
):
    config = _config(**QUOTA)
    _went_out(tmp_path, config)
    fast = FakeClock(start=MORNING + timedelta(days=5), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    core.runner._load_history()  # as the runner does when it starts
    try:
        fast.set_wall(MORNING + timedelta(minutes=20))  # NTP answers: the clock steps back
        fast.is_synced = True
        again = _decide(core, fast, key, household="1-101", days=30, now=LONG_AGO)
        assert again["reasons"] == ["quota_exceeded"]  # out 20 minutes ago, one in two days
    finally:
        core.close()


def test_an_outing_before_a_restart_on_a_fast_clock_is_the_guards_during_the_fast_spell(
    tmp_path, monkeypatch, key
):
    config = _config(**QUOTA)
    _went_out(tmp_path, config)
    fast = FakeClock(start=MORNING + timedelta(days=5), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    core.runner._load_history()
    try:
        again = _decide(core, fast, key, household="1-101", days=30, now=LONG_AGO)
        assert again["reasons"] == ["quota_exceeded"]  # over it by the floor, not by the clock
        assert "clock_not_set" in again["flags"] and again["needs_guard"]
    finally:
        core.close()


def test_a_pass_used_before_a_restart_on_a_fast_clock_is_still_a_copy_after_ntp(
    tmp_path, monkeypatch, key
):
    config = _config(passback={"enabled": True, "window_min": 30, "mode": "hard"})
    text = issue_pass(key, "1-101", "Li Wei", days=30, now=LONG_AGO)[0]
    right = FakeClock(start=MORNING)
    before = app.build_core(config, tmp_path, right)
    assert _decide(before, right, key, text=text)["decision"] == "pass"
    before.close()
    fast = FakeClock(start=MORNING + timedelta(days=5), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    core.runner._load_history()
    try:
        fast.set_wall(MORNING + timedelta(minutes=5))  # NTP: five minutes after the first
        fast.is_synced = True
        again = _decide(core, fast, key, text=text)
        assert again["reasons"] == ["passback"]
    finally:
        core.close()


def test_the_other_gates_outings_are_loaded_from_the_floor_too(tmp_path, monkeypatch):
    south = {"url": "http://s", "kiosk_id": "gate-south", "token_env": "PEER_TOKEN_S"}
    config = parse_config(
        {"site": {"kiosk_id": "gate-north"}, "policy": QUOTA, "compound": {"peers": [south]}}
    )
    before = app.build_core(config, tmp_path, FakeClock(start=MORNING))
    before.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
    outing = [PeerRow("gate-south", 1, "P1", "1-1", "out", "pass", format_ts(MORNING), False)]
    PeerLedger(before.store, before.history.horizon).merge(
        "http://s", "gate-south", CheckedPage(outing, 1, 1, 0), MORNING
    )
    before.close()
    fast = FakeClock(start=MORNING + timedelta(days=40), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        core.runner._load_history()  # as the runner does when it starts
        assert core.history.exits_in_period("1-1", MORNING + timedelta(minutes=20), 2) == 1
        assert core.history.last_passage("P1", "out") == MORNING
    finally:
        core.close()


def test_a_pass_starts_at_the_time_typed_on_a_clock_not_synchronised_never_before_its_floor():
    """The one rule of the console and ``kiosk pass issue``: a clock NTP has not set is not
    signed silently (a floored one after a power cut reads the last shutdown's time)."""
    base = FakeClock(start=MORNING - timedelta(hours=11), is_synced=False)  # 22:00 last night
    clock = FlooredClock(base)
    clock.raise_floor(MORNING - timedelta(hours=11))
    base.advance(600)
    with pytest.raises(PassStartError) as refused:
        pass_start(clock, tz=ZoneInfo("Asia/Shanghai"))
    assert refused.value.code == "unsynced"
    assert "2026-03-01 22:10" in str(refused.value)  # what the clock reads, in the site's zone
    real = MORNING + timedelta(minutes=10)
    assert pass_start(clock, real) == real
    with pytest.raises(PassStartError) as early:
        pass_start(clock, MORNING - timedelta(hours=12))  # 21:00: before a time that passed
    assert early.value.code == "before_floor"
    base.set_wall(real)
    base.is_synced = True  # NTP: the clock's time, a start typed near it or not
    assert pass_start(clock) == pass_start(clock, real + timedelta(minutes=3)) == real
    with pytest.raises(PassStartError) as far:
        pass_start(clock, real + timedelta(days=2))
    assert far.value.code == "not_now"
    typed = datetime(2026, 3, 2, 9, 10)  # as typed: a time of the site's clock, in tz
    assert pass_start(clock, typed, ZoneInfo("Asia/Shanghai")) == real


def test_the_demos_scripted_clock_is_synchronised_on_a_host_that_is_not():
    """``kiosk demo`` on a host without network time: its scripted day is virtual, not the
    host's; the console asked for the phone's time (December) while the demo gate read March,
    and every demo pass was not yet valid."""
    from kiosk.clock import ShiftedClock

    host = FakeClock(start=datetime(2026, 12, 7, 4, 0, tzinfo=UTC), is_synced=False)
    clock = ShiftedClock(MORNING, host)
    assert clock.synced() is True
    assert pass_start(clock) == MORNING  # no start asked for: the demo's own time


def test_a_revoked_pass_on_a_fast_clock_is_a_plain_deny_not_the_guards(tmp_path, monkeypatch, key):
    """Revoked at both times: the revocation denies by itself, whatever the clock. The fast
    clock also found the pass expired (the floor did not): that was sent to the guard as
    "pass has expired", a card without the revocation."""
    config = _config()
    _logged(tmp_path, config)
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
    try:
        payload, issued = issue_pass(key, "2-202", "Li Wei", days=3, now=MORNING)
        core.lists.revoke(issued.pass_id, "lost", "zhou")
        out = _decide(core, fast, key, text=payload)
        assert out["decision"] == "deny" and out["reasons"] == ["pass_revoked"]
        assert "clock_not_set" not in out["flags"] and not out["needs_guard"]
    finally:
        core.close()


def test_a_quarantine_the_two_times_disagree_on_is_a_guard_card_not_a_breach_alarm(
    tmp_path, monkeypatch, key
):
    """A right clock unsynchronised, the quarantine ended by it, not by the floor: maybe no
    quarantine at all. The guard looks (clock_not_set); no quarantine_breach alarm."""
    from kiosk.alarms import alarm_from_event

    config = _config()
    _logged(tmp_path, config, quarantine="5-505")
    core, fast = _restarted_fast(monkeypatch, tmp_path, config)
    try:
        out = _decide(core, fast, key, household="5-505", days=60, now=LONG_AGO)
        assert out["decision"] == "deny" and out["needs_guard"]
        assert "clock_not_set" in out["flags"] and out.get("alarm") is None
        card = alarm_from_event(
            {"seq": 1, "decision": "deny", "reasons": out["reasons"], "flags": out["flags"]}
        )
        assert card is not None and card.kind == "guard" and card.detail == "quarantined"
    finally:
        core.close()


NIGHT = MORNING - timedelta(hours=11)  # 22:00 last night, the last synchronised stamp


def test_a_right_clock_a_guard_vouched_for_raises_the_floor_and_keeps_it_across_a_restart(
    tmp_path, monkeypatch, key
):
    """A Pi with its RTC and no NTP, off overnight: the clock is right, the floor (last
    night's stamp plus the uptime) lags all day, so a pass printed at noon was not yet valid
    and referred at 20:00. The guard vouches at the console: the floor is the clock's
    reading, audited, and stays so after a restart as a synchronised stamp does."""
    from kiosk.store import vouch_time

    config = _config()
    before = app.build_core(config, tmp_path, FakeClock(start=NIGHT))
    before.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
    before.close()
    right = FakeClock(start=MORNING, is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, right)
    try:
        assert core.clock.floor() < MORNING - timedelta(hours=10)
        vouch_time(core.store, core.clock, right.now(), "zhou", "clock")
        assert core.clock.floor() == MORNING
        [row] = [a for a in core.store.audits() if a["action"] == "clock.vouched"]
        assert row["actor"] == "zhou" and row["detail"]["at"] == format_ts(MORNING)
        right.advance(12 * 3600)  # 20:00: a pass printed at noon is valid, nobody called
        out = _decide(core, right, key, household="2-202", days=1, now=MORNING + timedelta(hours=4))
        assert out["decision"] == "pass", out["reasons"]
    finally:
        core.close()
    again = FakeClock(start=MORNING + timedelta(hours=13), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, again)
    try:
        assert core.clock.floor() >= MORNING  # the vouched time, not last night's stamp
    finally:
        core.close()


def test_a_vouch_never_lowers_the_floor_nor_passes_the_clock(tmp_path, monkeypatch):
    from kiosk.store import vouch_time

    config = _config()
    _logged(tmp_path, config)
    slow = FakeClock(start=MORNING - timedelta(days=2), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, slow)
    try:
        floor = core.clock.floor()
        assert vouch_time(core.store, core.clock, slow.now(), "zhou", "clock") is False
        ahead = MORNING + timedelta(days=30)  # a typo: never past the clock's own reading
        assert vouch_time(core.store, core.clock, ahead, "zhou", "pass_start") is False
        assert core.clock.floor() == floor
        assert not [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    finally:
        core.close()


def test_opening_hours_are_judged_at_both_times_on_a_fast_clock(tmp_path, monkeypatch, key):
    """Closed until 10:00; it is 09:00 (the floor), the clock three hours fast reads 12:00:
    the gate opened by the fast clock alone. Outside hours at either time counts, and the
    two disagreeing, the guard looks."""
    hours = {"enabled": True, "open_at": "10:00", "close_at": "22:00", "mode": "closed"}
    config = _config(hours=hours)
    _logged(tmp_path, config)
    fast = FakeClock(start=MORNING + timedelta(hours=3), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        out = _decide(core, fast, key, household="2-202", days=60, now=LONG_AGO)
        assert out["decision"] == "deny" and "outside_hours" in out["reasons"]
        assert "clock_not_set" in out["flags"] and out["needs_guard"]
    finally:
        core.close()


SH = ZoneInfo("Asia/Shanghai")
#: Real time 22:50 on 4 March in Shanghai, the last day of 5-505's quarantine.
LATE = datetime(2026, 3, 4, 22, 50, tzinfo=SH).astimezone(UTC)


def _fast_in_quarantine(tmp_path, monkeypatch):
    """A gate whose clock reads two hours fast (00:50 on 5 March), unsynchronised, the log's
    newest stamp 22:50 on 4 March: the floor finds 5-505 in quarantine, the clock does not."""
    config = _config()
    before = app.build_core(config, tmp_path, FakeClock(start=LATE))
    before.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
    before.lists.add_quarantine(
        "5-505", None, (LATE - timedelta(days=10)).date(), datetime(2026, 3, 4).date(), "zhou"
    )
    before.close()
    fast = FakeClock(start=LATE + timedelta(hours=2), is_synced=False)
    return _restart_on(monkeypatch, tmp_path, config, fast), fast


def test_a_typed_start_the_clock_disagrees_with_vouches_for_nothing(tmp_path, monkeypatch, key):
    """A guard reading a phone on Tokyo time types 00:00 on 5 March, an hour past real time:
    the console accepts it as a start, but it was the floor, and the quarantine that ends
    at midnight ended with nobody looking. A typed start vouches only when it agrees with
    the clock (within pass_start's slack), and then for the earlier of the two."""
    from kiosk.store import vouch_time

    core, fast = _fast_in_quarantine(tmp_path, monkeypatch)
    try:
        floor = core.clock.floor()
        typed = datetime(2026, 3, 5, 0, 0, tzinfo=SH)
        assert pass_start(core.clock, typed, SH, days=1) == typed  # the console issues it
        assert vouch_time(core.store, core.clock, typed, "alice", "pass_start") is False
        assert core.clock.floor() == floor
        out = _decide(core, fast, key, household="5-505", days=60, now=LATE - timedelta(days=20))
        assert out["decision"] == "deny" and out["needs_guard"]
        agreed = fast.now() + timedelta(minutes=5)  # the phone agrees: the earlier, the clock's
        assert vouch_time(core.store, core.clock, agreed, "alice", "pass_start") is True
        assert core.clock.floor() == fast.now()
    finally:
        core.close()


def test_a_vouch_is_no_synchronised_stamp_and_network_time_supersedes_it(tmp_path, monkeypatch):
    """A vouch was read back as a synchronised stamp: after NTP a purge was refused, the
    vouch called 'the newest synchronised record' the clock was set back from, and a vouch
    above real time stayed the floor across every restart. A purge is dated by synchronised
    stamps only; a synchronised reading since the vouch supersedes it, even below it."""
    from kiosk.retention import judge_clock
    from kiosk.store import newest_synced_ts, vouch_time, vouched_ts

    core, fast = _fast_in_quarantine(tmp_path, monkeypatch)
    try:  # a phone agreeing with the fast clock: the guard's word, two hours past real time
        assert vouch_time(core.store, core.clock, fast.now(), "alice", "clock") is True
        vouched = core.store.submit(vouched_ts)
        assert vouched == format_ts(fast.now())
        assert core.store.submit(newest_synced_ts) == format_ts(LATE)
    finally:
        core.close()
    right = FakeClock(start=LATE + timedelta(minutes=5), is_synced=False)
    core = _restart_on(monkeypatch, tmp_path, _config(), right)
    try:
        assert core.clock.floor() == datetime.fromisoformat(vouched)  # kept: nothing says else
        right.is_synced = True  # NTP: the right time, below the vouch
        judge_clock(right.now(), True, core.store.submit(newest_synced_ts))  # not refused
        core.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
        assert core.store.submit(vouched_ts) is None
    finally:
        core.close()
    off = FakeClock(start=LATE + timedelta(minutes=30), is_synced=False)  # NTP lost again
    core = _restart_on(monkeypatch, tmp_path, _config(), off)
    try:
        assert core.clock.floor() <= LATE + timedelta(minutes=30)
    finally:
        core.close()


def test_disputed_opening_hours_leave_an_agreed_quarantine_its_breach_alarm(
    tmp_path, monkeypatch, key
):
    """A quarantine both times found lost its quarantine_breach alarm when the opening hours
    were disputed (closed by the floor's time, open by the clock's): the event-wide
    clock_not_set flag downgraded every reason to the guard's card. The event now says which
    reasons are disputed (clock_not_set:<reason>); only those are the guard's."""
    from kiosk.alarms import alarm_from_event

    hours = {"enabled": True, "open_at": "10:00", "close_at": "22:00", "mode": "closed"}
    config = _config(hours=hours)
    _logged(tmp_path, config, quarantine="5-505")  # yesterday .. day after tomorrow: both times
    fast = FakeClock(start=MORNING + timedelta(hours=3), is_synced=False)  # 12:00, floor 09:00
    core = _restart_on(monkeypatch, tmp_path, config, fast)
    try:
        out = _decide(core, fast, key, household="5-505", days=60, now=LONG_AGO)
    finally:
        core.close()
    assert {"clock_not_set", "clock_not_set:outside_hours"} <= set(out["flags"])
    assert "clock_not_set:quarantined" not in out["flags"]
    card = alarm_from_event({"seq": 1, **{k: out[k] for k in ("decision", "reasons", "flags")}})
    assert card is not None and card.kind == "quarantine"
