"""Months at the gate without growing: every structure of a long-lived object that grows with
what arrives (codes shown, people, addresses, sessions, alarms, subscribers, days) stays under
its stated bound when fed many distinct keys or many days on an injected clock, and what it
lets go is the oldest or an expired entry, never one that would turn a refusal into a pass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support import exits_since

from drivers.codes import _HOLDOFF_CAP, HoldOff
from kiosk import accounts
from kiosk.accounts import Account
from kiosk.alarms import Alarm, AlarmBoard
from kiosk.bus import EventBus
from kiosk.devices import ThermoReading
from kiosk.history import PassageHistory
from kiosk.thermometry import DieTrend
from ui.auth import RESUME_KEPT, LoginLimiter, SessionManager
from ui.guard.community.common import PENDING_KEPT, Pending
from ui.kiosk_screen import WATCHED_MAX, Beats

# --- codes ---------------------------------------------------------------------------------


def test_a_readers_hold_off_keeps_at_most_its_cap_of_codes_and_the_newest_stay_held():
    holdoff = HoldOff(holdoff_s=3.0)
    t = 0
    for n in range(10_000):  # a burst of distinct codes, all within the hold-off
        t += 100_000  # 0.1 ms apart
        assert holdoff.admit(f"code-{n}", t)
        assert len(holdoff._last) <= _HOLDOFF_CAP
    assert not holdoff.admit("code-9999", t + 1)  # the newest are still held off
    assert holdoff.admit("code-0", t + 2)  # the oldest went first


def test_a_readers_hold_off_forgets_codes_once_their_time_is_over():
    holdoff = HoldOff(holdoff_s=3.0)
    for n in range(_HOLDOFF_CAP):
        holdoff.admit(f"code-{n}", n)
    holdoff.admit("later", 10_000_000_000)
    assert set(holdoff._last) == {"later"}


# --- the bus -------------------------------------------------------------------------------


def test_the_bus_keeps_no_screen_that_went_away_nor_more_than_its_queue_for_a_sleeping_one():
    bus = EventBus(maxsize=16)
    screen = bus.subscribe(name="screen")
    for n in range(5_000):  # screens come and go, tablets fall asleep with a stream open
        gone = bus.subscribe(name=f"page-{n}")
        if n % 2:
            gone.close()
        bus.publish({"type": "decision", "n": n})
        while screen.get_nowait() is not None:
            pass
        assert bus.subscribers <= 1 + 16 + 1
    for n in range(16):  # the last pages to fall asleep fall behind in their turn
        bus.publish({"type": "decision", "n": n})
    assert bus.subscribers == 1
    assert screen in bus._subs
    assert len(bus._sticky) == 0
    sleeping = bus.subscribe(name="tablet")
    for n in range(1_000):
        bus.publish({"type": "state", "n": n})
    assert sleeping.dropped and sleeping.pending() == 1  # only the "dropped" word is left
    assert len(bus._sticky) == 1


# --- sign-in -------------------------------------------------------------------------------


def test_the_login_limiter_keeps_at_most_its_addresses_and_still_refuses_the_latest_guesser(
    clock,
):
    limiter = LoginLimiter(clock, per_minute=3, max_addresses=1_000)
    for n in range(5_000):  # an address scan: one wrong password each
        limiter.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        clock.advance(0.001)
        assert len(limiter._fails) <= 1_000
    for _ in range(3):
        limiter.failed("192.168.1.66")
    assert limiter.retry_after_s("192.168.1.66") > 0


def test_sessions_signed_in_over_months_are_not_all_remembered(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=12 * 3600)
    first, _ = sessions.issue(Account("alice", "guard", "table", "cred"))
    for day in range(90):  # three shifts a day, every other day each signed out at its end
        for name in ("alice", "bob", "carol"):
            _, session = sessions.issue(Account(name, "guard", "table", "cred"))
            clock.advance(8 * 3600)
            if day % 2:
                sessions.revoke(session)
        assert len(sessions._issued) <= 3  # those of the last 12 hours
        assert len(sessions._revoked) <= accounts.REVOKED_KEPT
    latest, _ = sessions.issue(Account("alice", "guard", "table", "cred"))
    assert sessions.read(latest) is not None
    assert sessions.read(first) is None  # ended months ago


def test_actions_cut_off_by_an_ended_session_are_kept_at_most_their_count(clock):
    sessions = SessionManager(b"s" * 32, clock, lifetime_s=3600)
    tokens = []
    for n in range(2_000):
        tokens.append(sessions.resume_token("/guard/manual", [("reason", f"r{n}")], "alice"))
        clock.advance(0.1)
        assert len(sessions._resumes) <= RESUME_KEPT
    assert sessions.read_resume(tokens[-1]) is not None  # the newest is kept
    assert sessions.read_resume(tokens[0]) is None  # the oldest went first
    clock.advance(3600)
    sessions.resume_token("/guard/manual", [], "bob")
    assert len(sessions._resumes) == 1  # the expired ones are gone


# --- people and days -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_passage_history_holds_its_horizon_of_days_not_every_day_since_the_start(clock):
    history = PassageHistory(horizon=timedelta(days=31))
    per_day = 40
    for day in range(200):  # new visitors' passes every day, residents going out
        for n in range(per_day):
            clock.advance(86400 / per_day)
            history.record(f"pass-{day}-{n}", f"H-{day % 50}-{n % 7}", "out", "pass", clock.now())
    # 31 days of exits and last passages (and the day under way), at most.
    assert len(history) <= 2 * per_day * 33
    assert len(history._exits) <= 50 * 7
    assert exits_since(history, "H-49-0", clock.now() - timedelta(days=1)) > 0  # today's kept
    assert history.last_passage("pass-0-0", "out") is None  # the first day's are gone


def test_the_alarm_board_keeps_its_count_closed_ones_leaving_first_and_open_ones_counted():
    board = AlarmBoard(keep=50)
    for n in range(3_000):
        alarm = Alarm(key=f"event:{n}", kind="forged", ts=f"2026-03-02T08:{n % 60:02d}:00Z")
        board.add(alarm)
        if n % 3:
            board.ack(alarm.key, "alice", alarm.ts)
        assert len(board.alarms) <= 50
    assert board.overflow is not None
    open_now = [a for a in board.alarms.values() if not a.acked_by]
    # Every open alarm is on the board or counted on the overflow card: none left unsaid.
    assert len(open_now) + board.overflow.dropped == 1_000


def test_the_sensors_drift_keeps_a_minute_of_points_after_hours_of_readings():
    trend = DieTrend()
    t = 0
    for n in range(4 * 3600 * 4):  # four hours at 4 Hz
        t += 250_000_000
        trend.add(ThermoReading(object_c=30.0, ambient_c=25.0 + n * 1e-5, mono_ns=t))
    assert len(trend._points) <= 61


# --- the faces -----------------------------------------------------------------------------


def test_list_imports_previewed_and_never_applied_are_kept_at_most_their_count():
    pending = Pending()
    for n in range(500):
        pending.put("alice", "vehicles", object(), float(n))  # type: ignore[arg-type]
        assert len(pending) <= PENDING_KEPT
    pending.expire(10_000.0)
    assert len(pending) == 0


def test_the_kiosk_screens_watched_streams_are_at_most_their_count(clock):
    beats = Beats(clock)
    for n in range(1_000):  # a screen reloading, its old streams never closed
        beats.opened(f"page-{n:016d}")
        clock.advance(1)
        assert len(beats.streams) <= WATCHED_MAX
    assert beats.beat(f"page-{999:016d}")  # the newest page is still watched
