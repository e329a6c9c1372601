"""``kiosk collect --once`` without ``--every`` learns how often cron runs it from the spacing
of its runs' starts (``office.pg.beaten``), a review of the first learned cadence: a gap was
counted whenever a beat's run differed from the one before, so overlapping runs (a long first
pull still going when cron began the next, two collectors on one database) taught the 90
seconds between their interleaved beats, and two checks by hand after an outage taught three
minutes: a healthy hourly cron read as the collector down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from office.district import _cadence, _collector_down
from office.pg import (
    MAX_EXPECT_S,
    ONCE_EVERY_S,
    SPACINGS_KEPT,
    STARTS_KEPT,
    beaten,
    held_starts,
    learned_expect,
    moved_on,
    spacings,
    started,
)


def _u(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=h, minutes=m, seconds=s)


def _hourly(runs_: int) -> tuple[list, list]:
    """``runs_`` runs of cron hourly, each beating once a few seconds past the hour."""
    runs: list = []
    starts: list = []
    for k in range(runs_):
        runs, starts = beaten(runs, starts, f"r{k}", _u(k, 0, 5), None, first=True)
    return runs, starts


def test_a_long_pull_overlapping_crons_next_run_learns_crons_hour():
    """Hourly cron without ``--every``: the 04:00 run is a long first pull (a page every 3
    minutes) still pulling when the 05:00 run begins (no flock), the two runs' beats 90 s
    apart interleaved. Before: 90 s learned, and the healthy collector read down at 05:50."""
    runs, starts = _hourly(4)
    beats = [(_u(4, 0, 5) + timedelta(minutes=3 * i), "r4") for i in range(24)]  # to 05:09
    beats += [(_u(5, 1, 35) + timedelta(minutes=3 * i), "r5") for i in range(3)]  # to 05:07
    for at, run in sorted(beats):
        first = run not in [r for r, _ in starts]
        runs, starts = beaten(runs, starts, run, at, None, first=first)
        assert runs[-1][3] == ONCE_EVERY_S, (at, run)
    assert [run for run, _ in starts] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert _collector_down(runs, _u(5, 50)) == []  # its next run at 06:00:05


def test_two_collectors_on_one_database_learn_the_hour_they_both_run():
    """Two hosts' cron hourly, their runs beginning seconds apart and beating in turn."""
    runs: list = []
    starts: list = []
    for k in range(6):
        for minute in (0, 2, 4):
            for host, late in (("a", 5), ("b", 7)):
                at = _u(k, minute, late)
                runs, starts = beaten(runs, starts, f"{host}{k}", at, None, first=minute == 0)
    assert spacings(starts) == [3598.0] * SPACINGS_KEPT  # b's start 2 s after a's: none
    assert runs[-1][3] == 3598.0 and _collector_down(runs, _u(6, 18)) == []


def test_runs_begun_less_than_a_minute_apart_are_no_spacing():
    starts = [("a", _u(1)), ("b", _u(1, 0, 59)), ("c", _u(2)), ("d", _u(2, 1))]
    assert spacings(starts) == [3541.0, 60.0]


def test_two_checks_by_hand_after_an_outage_do_not_make_hourly_cron_read_down():
    """Cron hourly at :00 without ``--every``; the database back at 10:00 after an outage,
    the operator runs ``kiosk collect --once`` at 10:02 and at 10:05 to check. Before: the
    one spacing of three minutes was the interval, the collector read down from 10:20."""
    runs, starts = _hourly(4)
    runs, starts = beaten(
        runs, starts, "hand1", _u(10, 2), None, first=True
    )  # a spell begins again
    runs, starts = beaten(runs, starts, "hand2", _u(10, 5), None, first=True)
    assert starts == [("hand1", _u(10, 2)), ("hand2", _u(10, 5))]
    assert runs[-1][3] == ONCE_EVERY_S
    assert _collector_down(runs, _u(10, 50))[1:] == []


def test_the_interval_is_trusted_once_enough_spacings_are_held():
    assert learned_expect([900.0] * (SPACINGS_KEPT - 1)) == ONCE_EVERY_S
    assert learned_expect([900.0] * SPACINGS_KEPT) == 900.0
    assert learned_expect([900.0, 7200.0, 900.0, 900.0]) == ONCE_EVERY_S  # at most the hour
    quarters = [(f"q{k}", _u(0) + k * timedelta(minutes=15)) for k in range(8)]
    assert spacings([("hourly", _u(0) - timedelta(hours=1)), *quarters]) == [900.0] * 4


def test_a_runs_own_beats_minutes_apart_are_no_spacing():
    """A ``--once`` run in a long pull beats every 2 minutes: its own beats are not cron's
    spacing, however long its pull."""
    runs, starts = _hourly(3)
    for i in range(10):
        at = _u(3) + timedelta(minutes=2 * i)
        runs, starts = beaten(runs, starts, "long", at, None, first=i == 0)
    assert [run for run, _ in starts] == ["r0", "r1", "r2", "long"]
    assert runs[-1][3] == ONCE_EVERY_S and spacings(starts) == [3600.0, 3600.0, 3595.0]


def test_the_starts_kept_are_the_spells_newest_and_bounded():
    runs, starts = _hourly(STARTS_KEPT + 3)
    assert len(starts) == STARTS_KEPT and starts[-1][0] == f"r{STARTS_KEPT + 2}"
    assert started(runs, starts, "after-a-gap", _u(40), first=True) == [("after-a-gap", _u(40))]


def test_held_starts_read_what_reads_and_keep_the_newest():
    held = [[f"r{k}", _u(k).isoformat()] for k in range(STARTS_KEPT + 2)]
    assert held_starts((json.dumps(held),)) == [(f"r{k}", _u(k)) for k in range(2, STARTS_KEPT + 2)]
    odd = [["a", "yesterday"], ["b"], [3, _u(1).isoformat()], ["c", "2026-05-01T01:00"], "d"]
    assert held_starts((json.dumps([*odd, ["e", _u(2).isoformat()]]),)) == [("e", _u(2))]
    assert held_starts(("not json",)) == held_starts(None) == held_starts(("{}",)) == []


def test_a_run_outlasting_the_starts_kept_is_not_begun_again_by_its_later_beats():
    """A ``--once`` run pulling for a day (a year of events on a slow link) beating among
    cron's hourly runs: once more than ``STARTS_KEPT`` runs began after it, its start is no
    longer kept. Before, its next beat was counted as its start again: a start at half past,
    a false half-hour spacing learned. Only a run's first beat adds its start."""
    runs, starts = beaten([], [], "long", _u(0, 0, 5), None, first=True)
    for k in range(1, STARTS_KEPT + 6):
        runs, starts = beaten(runs, starts, f"r{k}", _u(k, 0, 5), None, first=True)
        runs, starts = beaten(runs, starts, "long", _u(k, 30), None, first=False)
        runs, starts = beaten(runs, starts, f"r{k}", _u(k, 1, 5), None, first=False)
    assert "long" not in [run for run, _ in starts]
    assert spacings(starts) == [3600.0] * SPACINGS_KEPT and runs[-1][3] == ONCE_EVERY_S


def test_only_a_first_beat_adds_a_start():
    runs, starts = _hourly(3)
    assert started(runs, starts, "late", _u(3), first=False) == starts
    assert started(runs, starts, "late", _u(3), first=True) == [*starts, ("late", _u(3))]
    # a first beat said again (its commit's answer lost) is not a second start
    again = started(runs, [*starts, ("late", _u(3))], "late", _u(3, 1), first=True)
    assert again == [*starts, ("late", _u(3))]


def test_the_databases_clock_stepping_back_past_the_spell_begins_the_learning_again():
    """Cron every 15 minutes; the database's clock steps back a day (a host restored from a
    snapshot, a wrong time corrected). Before, the spell went on and every start after the
    step, earlier than the spell's beginning, was filtered out until real time caught up: a
    day of the hour expected, the cadence frozen. Now a beat before the spell began begins a
    new one, and the new starts are learned from."""
    runs: list = []
    starts: list = []
    for k in range(2):
        runs, starts = beaten(runs, starts, f"r{k}", _u(10, 15 * k), None, first=True)
    for k in range(SPACINGS_KEPT + 1):
        at = _u(10, 15 * k, 5) - timedelta(days=1)
        runs, starts = beaten(runs, starts, f"s{k}", at, None, first=True)
    assert [run for run, _ in starts] == [f"s{k}" for k in range(SPACINGS_KEPT + 1)]
    assert spacings(starts) == [900.0] * SPACINGS_KEPT and runs[-1][3] == 900.0
    assert runs[-1][1] == _u(10, 0, 5) - timedelta(days=1)  # the spell begun again


def test_a_small_step_back_within_the_spell_keeps_the_learning():
    """The clock stepping back a few minutes, still after the spell began: the spell and its
    starts go on; the start before the step is no spacing, the ones after it are."""
    runs: list = []
    starts: list = []
    for k in range(SPACINGS_KEPT + 1):
        runs, starts = beaten(runs, starts, f"r{k}", _u(10, 15 * k), None, first=True)
    back = _u(10, 15 * SPACINGS_KEPT) - timedelta(minutes=3)
    for k in range(SPACINGS_KEPT + 1):  # s0 three minutes before r4's start
        runs, starts = beaten(runs, starts, f"s{k}", back + k * timedelta(minutes=15), None,
                              first=True)  # fmt: skip
        assert runs[-1][3] == 900.0 and len(runs) == 1


def test_a_runs_start_is_when_it_began_not_its_first_page():
    """Cron every 15 minutes; each run's first beat comes after its first page is written,
    seconds to minutes after it began as the gates answer. Before, that first beat was the
    run's start: the learned spacing jittered with the first pages (a slow one, 14:30 after
    the start before a quick one, taught 15:20 and the collector read as down 20 s late).
    The first beat carries how long before it the run began: the spacing is cron's."""
    runs: list = []
    starts: list = []
    first_page_s = [10.0, 290.0, 30.0, 480.0, 5.0, 60.0]
    for k, age_s in enumerate(first_page_s):
        began = _u(10, 15 * k)
        at = began + timedelta(seconds=age_s)
        runs, starts = beaten(runs, starts, f"r{k}", at, None, first=True, age_s=age_s)
        runs, starts = beaten(runs, starts, f"r{k}", at + timedelta(minutes=1), None, first=False)
        assert starts[-1] == (f"r{k}", began)
    assert spacings(starts) == [900.0] * SPACINGS_KEPT and runs[-1][3] == 900.0
    assert len(runs) == 1 and runs[-1][1] == _u(10)  # the spell from the first run's start


def test_a_first_beat_that_begins_a_spell_keeps_its_runs_start():
    """After the collector was down: the spell begins when the run began, and its start stays
    among the spell's (a start before the spell began was dropped at its next beat)."""
    runs, starts = beaten([], [], "r0", _u(10, 5), None, first=True, age_s=300.0)
    runs, starts = beaten(runs, starts, "r0", _u(10, 6), None, first=False)
    assert starts == [("r0", _u(10))] and runs == [("r0", _u(10), _u(10, 6), ONCE_EVERY_S)]


def test_a_step_back_cuts_the_spells_dated_after_the_new_one_began():
    """A spell 10:00 .. 12:00 expecting 15 minutes, then the database's clock steps back three
    hours: a beat at 09:00 begins a new spell. Before, it was appended after the spell dated
    later: the district report read 09:00 .. 10:00 as the collector down (a gap that never
    happened) and the cadence as the old spell's. Now the spells dated after the new one's
    beginning are cut: dropped, or ended at it."""
    held = [("r0", _u(10), _u(12), 900.0)]
    runs = moved_on(held, "r1", _u(9), 300.0)
    assert runs == [("r1", _u(9), _u(9), 300.0)]
    assert _collector_down(runs, _u(9, 5)) == [] and _cadence(runs) == timedelta(minutes=5)
    held = [("r0", _u(7), _u(8, 20), 900.0), ("r1", _u(8, 30), _u(9, 30), 900.0), *held]
    runs = moved_on(held, "r2", _u(9), 300.0, since=_u(8, 50))
    assert runs == [
        ("r0", _u(7), _u(8, 20), 900.0),
        ("r1", _u(8, 30), _u(8, 50), 900.0),  # ended at the new spell's beginning
        ("r2", _u(8, 50), _u(9), 300.0),
    ]
    assert _collector_down(runs, _u(9, 5)) == [] and _cadence(runs) == timedelta(minutes=5)
    runs = moved_on(held, "r2", _u(9), 300.0)  # an earlier spell holding now, ended at it
    assert runs[1:] == [("r1", _u(8, 30), _u(9), 900.0), ("r2", _u(9), _u(9), 300.0)]
    assert _cadence(runs) == timedelta(minutes=5)


def test_a_first_beat_goes_back_a_week_at_most_and_not_over_a_lost_first_beat():
    """A run's first beat says how long before it the run began, its spell begun then. Its
    first beat lost (the database down six hours), the first kept says none (``Collector``):
    the six hours stay the collector down. Backdated, they would read as the collector up.
    However old the run says it is, the spell goes back a week at most (``MAX_EXPECT_S``)."""
    held, _ = beaten([], [], "r0", _u(10), 900.0, first=True)
    runs, _ = beaten(held, [], "r1", _u(16), 900.0, first=True)
    assert _collector_down(runs, _u(16, 5)) == [(_u(10), _u(16))]
    runs, _ = beaten(held, [], "r1", _u(16), 900.0, first=True, age_s=6 * 3600.0)
    assert _collector_down(runs, _u(16, 5)) == []  # what a lost first beat no longer says
    now = _u(16) + timedelta(days=30)
    runs, starts = beaten([], [], "r2", now, 900.0, first=True, age_s=30 * 86400.0)
    week = now - timedelta(seconds=MAX_EXPECT_S)
    assert runs == [("r2", week, now, 900.0)] and starts == [("r2", week)]


def test_a_run_begun_before_the_spell_it_goes_on_with_moves_its_beginning_back():
    """A run began at 09:55 (its first page slow), its first beat at 10:06 goes on with the
    spell another run began at 10:00: the spell is from 09:55, when the collector was."""
    runs = moved_on([("a", _u(10), _u(10, 5), 900.0)], "b", _u(10, 6), 900.0, since=_u(9, 55))
    assert runs == [("b", _u(9, 55), _u(10, 6), 900.0)]


def test_a_start_said_late_is_kept_in_time_order():
    """The run that began at 09:50 says so at 10:30, after the 10:00 run's start was kept:
    the starts stay in time order (the spacings are each from the start before it)."""
    runs = [("a", _u(9), _u(10, 25), 900.0)]
    starts = started(runs, [("a", _u(10))], "b", _u(10, 30), first=True, at=_u(9, 50))
    assert starts == [("b", _u(9, 50)), ("a", _u(10))]
