from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from support import exits_since

from kiosk.history import PassageHistory

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def test_exits_count_only_passing_outward_decisions():
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    h.record("p1", "1-1", "out", "manual_pass", T0 + timedelta(minutes=1))
    h.record("p1", "1-1", "out", "deny", T0 + timedelta(minutes=2))
    h.record("p1", "1-1", "out", "manual_deny", T0 + timedelta(minutes=3))
    h.record("p1", "1-1", "in", "pass", T0 + timedelta(minutes=4))
    assert h.exits_in_period("1-1", T0 + timedelta(hours=1), 1) == 2
    assert h.exits_in_period("2-2", T0 + timedelta(hours=1), 1) == 0


def test_quota_window_is_rolling_and_exits_drop_out_after_the_period():
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    assert h.exits_in_period("1-1", T0 + timedelta(days=2) - timedelta(seconds=1), 2) == 1
    assert h.exits_in_period("1-1", T0 + timedelta(days=2), 2) == 0


def test_exits_of_different_passes_of_one_household_add_up():
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    h.record("p2", "1-1", "out", "pass", T0 + timedelta(hours=1))
    assert h.exits_in_period("1-1", T0 + timedelta(hours=2), 1) == 2


def test_last_passage_is_per_pass_and_direction_and_ignores_denials():
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    h.record("p1", "1-1", "out", "deny", T0 + timedelta(minutes=5))
    h.record("p1", "1-1", "in", "pass", T0 + timedelta(minutes=9))
    assert h.last_passage("p1", "out") == T0
    assert h.last_passage("p1", "in") == T0 + timedelta(minutes=9)
    assert h.last_passage("p2", "out") is None


def test_the_last_passage_is_the_last_recorded_even_after_the_clock_stepped_back():
    """Records come in ``seq`` order (the engine after each commit; ``load`` from rows
    ordered by seq). Before: the latest *timestamp* was kept, so after the wall clock stepped
    back an hour (NTP correcting a clock that ran ahead) the pass's real passage was not
    remembered, and a copied pass used a minute later was not caught as passback for an hour."""
    h = PassageHistory()
    h.record("p1", "1-1", "in", "pass", T0 + timedelta(hours=1))  # clock an hour ahead
    h.record("p1", "1-1", "in", "pass", T0)  # corrected: the real time
    assert h.last_passage("p1", "in") == T0
    h.load(
        [
            {"pass_id": "p2", "direction": "in", "decision": "pass", "ts": t}
            for t in ("2026-03-02T09:30:00Z", "2026-03-02T08:30:00Z")
        ]
    )
    assert h.last_passage("p2", "in") == T0


def test_load_rebuilds_from_event_log_rows_with_iso_timestamps():
    rows = [
        {
            "pass_id": "p1",
            "household": "1-1",
            "direction": "out",
            "decision": "pass",
            "ts": "2026-03-02T08:30:00+00:00",
        },
        {
            "pass_id": "p1",
            "household": "1-1",
            "direction": "out",
            "decision": "deny",
            "ts": "2026-03-02T08:31:00+00:00",
        },
        {
            "pass_id": None,
            "household": None,
            "direction": "in",
            "decision": "manual_pass",
            "ts": "2026-03-02T08:32:00Z",
        },
    ]
    h = PassageHistory()
    assert h.load(rows) == 2
    assert h.exits_in_period("1-1", T0 + timedelta(minutes=5), 1) == 1
    assert h.last_passage("p1", "out") == T0


def test_record_accepts_a_committed_event_object_as_the_engine_passes_it():
    @dataclass
    class Event:
        pass_id: str
        household: str
        direction: str
        decision: str
        ts: str

    h = PassageHistory()
    h.record(Event("p1", "1-1", "out", "pass", "2026-03-02T08:30:00+00:00"))
    h.record(
        {"pass_id": "p2", "household": "1-1", "direction": "out", "decision": "pass", "ts": T0}
    )
    assert h.exits_in_period("1-1", T0, 1) == 2


def test_old_entries_are_pruned_so_memory_stays_bounded():
    h = PassageHistory(horizon=timedelta(days=3))
    for day in range(10):
        h.record(f"p{day}", f"h{day}", "out", "pass", T0 + timedelta(days=day))
    assert len(h) <= 2 * 5
    assert h.exits_in_period("h0", T0 + timedelta(days=9), 30) == 0
    assert h.exits_in_period("h9", T0 + timedelta(days=9), 30) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("p1", "1-1", "sideways", "pass", T0), "direction"),
        (("p1", "1-1", "out", "pass", datetime(2026, 3, 2)), "timezone-aware"),
        (("p1", "1-1", "out", "pass", None), "required"),
    ],
)
def test_bad_records_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        PassageHistory().record(*args)


def test_times_in_any_offset_compare_exactly():
    h = PassageHistory()
    local = datetime.fromisoformat("2026-03-02T16:30:00.000123+08:00")
    h.record("p1", "1-1", "out", "pass", local)
    assert h.last_passage("p1", "out") == local
    assert exits_since(h, "1-1", local - timedelta(microseconds=1)) == 1
    assert exits_since(h, "1-1", local) == 0


def test_pruning_most_passes_keeps_the_recent_ones():
    h = PassageHistory(horizon=timedelta(days=2))
    for i in range(50):
        h.record(f"old{i}", "1-1", "in", "pass", T0 + timedelta(minutes=i))
    h.record("new", "1-1", "in", "pass", T0 + timedelta(days=3))
    h.record("newer", "1-1", "in", "pass", T0 + timedelta(days=3, hours=2))
    assert h.last_passage("old0", "in") is None
    assert h.last_passage("new", "in") == T0 + timedelta(days=3)
    assert h.last_passage("newer", "in") == T0 + timedelta(days=3, hours=2)
    assert len(h) == 2


@pytest.mark.slow
def test_a_log_of_distinct_passes_is_held_compactly():
    # Every passage its own pass (visitors' one-day passes; the memory bench's log): the
    # history holds one entry each, so each must be small (docs/memory.md). Datetime values
    # in tuple-keyed dicts took ~110 bytes an entry besides the pass id; now ~50.
    rows = [
        {
            "pass_id": f"P-{i:06d}",
            "household": f"B{i % 9}-{i % 400:04d}",
            "direction": "out" if i % 2 else "in",
            "decision": "pass",
            "ts": (T0 + timedelta(seconds=i)).isoformat(),  # as read from the log
        }
        for i in range(20_000)
    ]
    tracemalloc.start()
    try:
        h = PassageHistory()
        h.load(rows)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(h) == 30_000
    assert used / len(h) < 80


def test_pruning_goes_on_after_the_wall_clock_came_back_from_far_ahead():
    # The clock ran a year ahead for a few passages (pruning then happened at that time), then
    # NTP set it right: entries still drop out as real time moves on, memory stays bounded.
    h = PassageHistory(horizon=timedelta(days=5))
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    ahead = t0 + timedelta(days=365)
    for i in range(3):
        h.record(f"a{i}", "9-9", "out", "pass", ahead + timedelta(hours=2 * i))
    for day in range(40):
        h.record(f"p{day}", f"H{day}", "out", "pass", t0 + timedelta(days=day))
        h.record(f"q{day}", f"H{day}", "out", "pass", t0 + timedelta(days=day, hours=2))
    assert len(h) <= 2 * 2 * 6 + 2 * 3  # five days and a bit of real ones, and the year-ahead


# --- a peer's passage taken back (``forget``: its gate did not open for it) ---------------------

MIN = timedelta(minutes=1)


def test_a_peers_passage_taken_back_brings_back_the_passage_it_had_replaced():
    """The card went out here, then (a copy) at the north gate, whose relay did not open:
    taking the north gate's passage back left the pass with no passage out, so the next try
    here within the passback window passed. A history rebuilt from the log (at start), or
    one that fetched the north gate's page after the failure, holds the one here."""
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    h.record("p1", "1-1", "out", "pass", T0 + 2 * MIN, peer=True)
    assert h.forget("p1", "1-1", "out", T0 + 2 * MIN)
    assert h.last_passage("p1", "out") == T0
    assert exits_since(h, "1-1", T0 - MIN) == 1  # the outing here stays


@pytest.mark.parametrize("here", [True, False], ids=["one-here", "none-here"])
def test_a_peers_earlier_passage_fetched_after_the_one_taken_back_is_what_is_left(here):
    h = PassageHistory()
    if here:
        h.record("p1", None, "in", "pass", T0)
    h.record("p1", None, "in", "pass", T0 + 3 * MIN, peer=True)  # from the north gate
    h.record("p1", None, "in", "pass", T0 + 2 * MIN, peer=True)  # from the east gate, later
    h.record("p1", None, "in", "pass", T0 + 1 * MIN, peer=True)  # and an earlier one
    h.forget("p1", None, "in", T0 + 3 * MIN)
    assert h.last_passage("p1", "in") == T0 + 2 * MIN


def test_a_passage_here_after_the_peers_is_kept_when_the_peers_is_taken_back():
    h = PassageHistory()
    h.record("p1", None, "out", "pass", T0)
    h.record("p1", None, "out", "pass", T0 + 2 * MIN, peer=True)
    h.record("p1", None, "out", "manual_pass", T0 + 3 * MIN)  # a guard's, here
    assert not h.forget("p1", None, "out", T0 + 2 * MIN)
    assert h.last_passage("p1", "out") == T0 + 3 * MIN
    h.record("p1", None, "out", "pass", T0 + 4 * MIN, peer=True)
    h.forget("p1", None, "out", T0 + 4 * MIN)
    assert h.last_passage("p1", "out") == T0 + 3 * MIN  # not the first, replaced here


def test_a_peers_passage_with_none_before_it_leaves_none_when_taken_back():
    h = PassageHistory()
    h.record("p1", None, "out", "pass", T0, peer=True)
    assert h.forget("p1", None, "out", T0)
    assert h.last_passage("p1", "out") is None


def test_the_passage_brought_back_is_one_the_clock_dated_since():
    """Recorded on a clock not set (the time saved at the last shutdown, half an hour
    behind), dated by ``redate`` while the peer's was on top."""
    h = PassageHistory()
    h.record("p1", None, "out", "pass", T0 - 30 * MIN, mono_ns=10**9)
    h.record("p1", None, "out", "pass", T0 + 2 * MIN, peer=True)
    h.redate(T0 + MIN, 61 * 10**9)  # 60 s after the passage here: it was at T0
    h.forget("p1", None, "out", T0 + 2 * MIN)
    assert h.last_passage("p1", "out") == T0


def test_a_passage_brought_back_is_pruned_with_the_rest():
    h = PassageHistory(horizon=timedelta(days=1))
    h.record("p1", None, "out", "pass", T0)
    h.record("p1", None, "out", "pass", T0 + timedelta(days=2), peer=True)
    h.record("p2", None, "out", "pass", T0 + timedelta(days=2, hours=2), peer=True)  # prunes
    h.forget("p1", None, "out", T0 + timedelta(days=2))
    assert h.last_passage("p1", "out") is None


# --- a peer's dated passage and this gate's records not dated yet --------------------------------

#: A gate whose clock was never set (no RTC, no saved time): it stamps 1970.
UNSET = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)


def _unset_gate_with_a_guards_pass() -> PassageHistory:
    """A guard's pass out here at 1970 (the kiosk cannot judge a pass on a clock not set), 4 s
    into the boot, waiting to be dated; then a peer's passage stamped on its dated clock."""
    h = PassageHistory()
    h.record("p1", "1-101", "out", "manual_pass", UNSET, mono_ns=4 * 10**9)
    h.record("q", "2-202", "in", "pass", T0, peer=True)
    return h


def test_a_peers_dated_passage_does_not_prune_this_gates_passages_not_dated_yet():
    """Before: the peer's T0 pruned everything stamped before T0 less the horizon, this
    gate's 1970 records among them: the guard's pass was gone before NTP's step dated it,
    the household's outing and the pass's passback forgotten."""
    h = _unset_gate_with_a_guards_pass()
    assert h.undated == 1
    assert exits_since(h, "1-101", UNSET - MIN) == 1
    assert h.last_passage("p1", "out") == UNSET
    h.redate(T0 + MIN, 64 * 10**9)  # NTP set the clock a minute after the guard's pass
    assert h.exits_in_period("1-101", T0 + 2 * MIN, 1) == 1
    assert h.last_passage("p1", "out") == T0
    assert h.last_passage("q", "in") == T0


def test_a_peers_passage_still_prunes_what_is_dated_and_old():
    """The memory bound holds: this gate's dated records past the horizon go at a peer's
    passage as before, its records not dated yet stay, wherever they sort."""
    h = PassageHistory(horizon=timedelta(days=3))
    for i in range(6):  # dated: this gate's clock was set then
        h.record(f"old{i}", "1-101", "out", "pass", T0 - timedelta(days=10, minutes=i))
    h.record("p1", "1-101", "out", "manual_pass", UNSET, mono_ns=4 * 10**9)
    h.record("p2", "1-101", "in", "manual_pass", UNSET + MIN, mono_ns=64 * 10**9)
    h.record("q", "2-202", "in", "pass", T0, peer=True)
    assert [h.last_passage(f"old{i}", "out") for i in range(6)] == [None] * 6
    assert exits_since(h, "1-101", UNSET - MIN) == 1  # the guard's 1970 one, not the old ones
    assert (h.last_passage("p1", "out"), h.last_passage("p2", "in")) == (UNSET, UNSET + MIN)
    assert h.undated == 2


def test_this_gates_own_passage_on_the_same_clock_still_prunes_what_it_stamped_long_before():
    """A clock never set runs all the same: a record of its own a horizon later prunes
    the undated ones before it (no peer's time of another clock in it)."""
    h = PassageHistory(horizon=timedelta(days=1))
    h.record("p1", "1-101", "out", "manual_pass", UNSET, mono_ns=4 * 10**9)
    for hours in range(1, 27):  # one a hour: each follows the one before within a day
        later = UNSET + timedelta(hours=hours)
        h.record(f"p{hours + 1}", None, "in", "manual_pass", later, mono_ns=hours * 3600 * 10**9)
    assert h.last_passage("p1", "out") is None and exits_since(h, "1-101", UNSET - MIN) == 0


# --- two peers' passages stacked on one pass, both taken back ----------------------------------


def _stacked() -> PassageHistory:
    """Out here at T0, then (copies) at the north gate at +2 min and the east gate at +3 min,
    neither of whose relays opened."""
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0)
    h.record("p1", "1-1", "out", "pass", T0 + 2 * MIN, peer=True)  # north
    h.record("p1", "1-1", "out", "pass", T0 + 3 * MIN, peer=True)  # east
    return h


@pytest.mark.parametrize("order", [(3, 2), (2, 3)], ids=["top-first", "beneath-first"])
def test_two_peers_passages_stacked_and_both_taken_back_leave_the_one_here(order):
    """Before: the history kept one passage beneath the last, so the east gate's replaced
    the north gate's beneath it and the one here was lost; both taken back (in either order)
    left the pass with no passage out, and a copied card tried again here within the passback
    window passed. Each take-back now leaves what the history would hold without it."""
    h = _stacked()
    first, second = order
    assert h.forget("p1", "1-1", "out", T0 + first * MIN)
    assert h.last_passage("p1", "out") == T0 + max(set(order) - {first}) * MIN
    assert h.forget("p1", "1-1", "out", T0 + second * MIN)
    assert h.last_passage("p1", "out") == T0
    assert exits_since(h, "1-1", T0 - MIN) == 1  # the outing here, and only it


def test_a_stack_of_peers_passages_fetched_in_any_order_unwinds_to_the_one_left():
    h = PassageHistory()
    h.record("p1", None, "in", "pass", T0)
    for minutes in (4, 2, 5, 1, 3):  # several gates' pages, fetched in no order
        h.record("p1", None, "in", "pass", T0 + minutes * MIN, peer=True)
    for gone, left in ((5, 4), (2, 4), (4, 3), (3, 1), (1, 0)):
        assert h.forget("p1", None, "in", T0 + gone * MIN)
        assert h.last_passage("p1", "in") == T0 + left * MIN
    assert not h.forget("p1", None, "in", T0 + 5 * MIN)  # not held any more


def test_the_passage_here_dated_beneath_a_stack_of_peers_passages_comes_back():
    """Recorded on a clock not set (half an hour behind), beneath two peers' dated passages;
    ``redate`` dates it back beneath them, and both taken back leave it. Before, it was lost
    under the second peer's passage: ``redate`` found it nowhere."""
    h = PassageHistory()
    h.record("p1", "1-1", "out", "pass", T0 - 30 * MIN, mono_ns=10**9)
    h.record("p1", "1-1", "out", "pass", T0 + 2 * MIN, peer=True)
    h.record("p1", "1-1", "out", "pass", T0 + 3 * MIN, peer=True)
    h.redate(T0 + MIN, 61 * 10**9)  # 60 s after the passage here: it was at T0
    h.forget("p1", "1-1", "out", T0 + 3 * MIN)
    h.forget("p1", "1-1", "out", T0 + 2 * MIN)
    assert h.last_passage("p1", "out") == T0
    assert h.exits_in_period("1-1", T0 + 5 * MIN, 1) == 1


def test_the_passage_here_dated_above_a_stack_of_peers_passages_is_the_last():
    """Stamped 1970 (a clock never set), so beneath both peers' passages until dated: it was
    the latest in real time, so it is the last, and stays when they are taken back."""
    h = PassageHistory()
    h.record("p1", None, "out", "pass", UNSET, mono_ns=10**9)
    h.record("p1", None, "out", "pass", T0 - 3 * MIN, peer=True)
    h.record("p1", None, "out", "pass", T0 - 2 * MIN, peer=True)
    h.redate(T0 + MIN, 61 * 10**9)  # the passage here was at T0
    assert h.last_passage("p1", "out") == T0
    h.forget("p1", None, "out", T0 - 2 * MIN)
    assert h.last_passage("p1", "out") == T0


def test_a_stack_is_pruned_with_the_rest():
    h = PassageHistory(horizon=timedelta(days=1))
    h.record("p1", None, "out", "pass", T0)
    h.record("p1", None, "out", "pass", T0 + timedelta(hours=1), peer=True)
    h.record("p1", None, "out", "pass", T0 + timedelta(days=2), peer=True)
    h.record("p2", None, "out", "pass", T0 + timedelta(days=2, hours=2), peer=True)  # prunes
    assert not h.forget("p1", None, "out", T0 + timedelta(hours=1))  # pruned
    h.forget("p1", None, "out", T0 + timedelta(days=2))
    assert h.last_passage("p1", "out") is None


def test_a_forgotten_residents_passages_are_dropped_by_their_times_and_no_others():
    """``kiosk.people.forget`` nulls a passage's pass and household: the history finds the
    ones it holds by their direction and time, as a history rebuilt from the log would not
    hold them."""
    h = PassageHistory()
    mine = [T0, T0 + timedelta(minutes=5)]
    h.record("p-her", "1-101", "out", "pass", mine[0])
    h.record("p-her", "1-101", "in", "pass", mine[1])
    h.record("p-him", "1-101", "out", "pass", T0 + timedelta(minutes=1))
    h.record("p-far", "2-202", "in", "pass", T0 + timedelta(minutes=2))

    assert h.drop_forgotten([("out", mine[0]), ("in", mine[1].isoformat())]) == 3

    assert h.last_passage("p-her", "out") is None and h.last_passage("p-her", "in") is None
    assert exits_since(h, "1-101", T0 - timedelta(days=1)) == 1  # his alone
    assert h.last_passage("p-him", "out") == T0 + timedelta(minutes=1)
    assert h.last_passage("p-far", "in") == T0 + timedelta(minutes=2)
    assert h.drop_forgotten([("out", mine[0])]) == 0  # gone already


def test_a_forgotten_passage_beneath_a_peers_passage_is_dropped_from_the_stack():
    """Her passage here at T0, a copy of her card at the north gate on top of it: the
    forget drops hers from beneath; the north gate's taken back then leaves the pass with
    none that way (before, hers came back up from the stack)."""
    h = _stacked()
    assert h.drop_forgotten([("out", T0)]) == 2  # her exit, her passage beneath the two
    assert h.last_passage("p1", "out") == T0 + 3 * MIN
    assert h.forget("p1", "1-1", "out", T0 + 3 * MIN)
    assert h.forget("p1", "1-1", "out", T0 + 2 * MIN)
    assert h.last_passage("p1", "out") is None


@pytest.mark.parametrize("as_mapping", [True, False])
def test_an_exempt_exit_given_as_the_event_itself_is_not_the_households_outing(as_mapping):
    """The engine records the committed event itself (``record(event)``): its
    ``quota_exempt`` flag (a staff member's exit on the household's code) keeps it out of the
    household's quota, as it does given by keyword."""
    from kiosk.history import QUOTA_EXEMPT

    @dataclass
    class Event:
        pass_id: str
        household: str
        direction: str
        decision: str
        ts: datetime
        flags: tuple[str, ...]

    h = PassageHistory()
    for pass_id, flags in (("S1", (QUOTA_EXEMPT,)), ("R1", ())):
        event = Event(pass_id, "1-101", "out", "pass", T0, flags)
        h.record(event.__dict__ if as_mapping else event)
        outings = h.exits_in_period("1-101", T0 + timedelta(minutes=1), 1)
        assert outings == (0 if pass_id == "S1" else 1)


# --- a clock weeks fast and not synchronised prunes nothing real ------------------------------

HOUR = timedelta(hours=1)
FAST = timedelta(days=40)  # past the horizon (31 days): a fake-hwclock restored far ahead


def test_passages_on_a_fast_clock_not_synchronised_keep_the_real_outings():
    """Before: two passages stamped 40 days ahead by a clock NTP had not set pruned at that
    time less the horizon, the household's real outing of this morning among what went:
    once NTP set the clock back, the household went out again within its period."""
    h = PassageHistory()
    h.record("p1", "1-101", "out", "pass", T0)  # synchronised: a real outing
    h.record("p1", "1-101", "in", "pass", T0 + MIN)
    for i in range(3):  # the clock 40 days fast, unsynchronised, one an hour
        h.record(f"v{i}", "2-202", "out", "pass", T0 + FAST + i * HOUR, mono_ns=(i + 1) * 10**12)
    assert h.exits_in_period("1-101", T0 + HOUR, 2) == 1
    assert h.last_passage("p1", "in") == T0 + MIN
    h.redate(T0 + 4 * HOUR, 4 * 10**12)  # NTP sets the clock: the fast ones come back too
    assert h.exits_in_period("1-101", T0 + 4 * HOUR, 2) == 1
    assert h.exits_in_period("2-202", T0 + 4 * HOUR, 2) == 3


def test_a_restart_loading_passages_stamped_on_a_fast_clock_keeps_the_real_outings():
    """An earlier boot never synchronised stamped its passages 40 days ahead (dated by that
    clock alone): loading them pruned the real outing loaded before them."""
    h = PassageHistory()
    rows = [{"pass_id": "p1", "household": "1-101", "ts": T0.isoformat()}]
    rows += [
        {"pass_id": f"v{i}", "household": "2-202", "ts": (T0 + FAST + i * HOUR).isoformat()}
        for i in range(3)
    ]
    h.load([r | {"direction": "out", "decision": "pass"} for r in rows])
    assert h.exits_in_period("1-101", T0 + HOUR, 2) == 1


def test_a_clock_never_set_still_prunes_its_own_records_by_the_time_between_them():
    """The memory bound on a gate NTP never reaches: this boot's records not dated yet go
    once the monotonic time since them passes the horizon; the dated ones stay."""
    h = PassageHistory(horizon=timedelta(days=1))
    h.record("d", "3-303", "out", "pass", T0)  # dated, before the boot
    h.record("p1", "1-101", "out", "manual_pass", UNSET, mono_ns=4 * 10**9)
    for hours in range(1, 27):
        later = UNSET + timedelta(hours=hours)
        h.record(f"p{hours + 1}", None, "in", "manual_pass", later, mono_ns=hours * 3600 * 10**9)
    assert h.last_passage("p1", "out") is None and exits_since(h, "1-101", UNSET - MIN) == 0
    assert h.last_passage("p2", "in") is None and h.last_passage("p27", "in") is not None
    assert h.undated == 25
    assert h.last_passage("d", "out") == T0 and exits_since(h, "3-303", T0 - MIN) == 1
