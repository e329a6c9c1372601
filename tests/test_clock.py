from datetime import UTC, datetime, timedelta

import pytest

from kiosk.clock import FakeClock, ShiftedClock


def test_fake_clock_moves_only_forward_and_both_times_together():
    clock = FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    mono = clock.monotonic_ns()
    clock.advance(1.5)
    assert clock.monotonic_ns() - mono == 1_500_000_000
    assert clock.now() == datetime(2026, 3, 2, 8, 30, 1, 500000, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_fake_clock_wall_step_leaves_monotonic_time_alone():
    clock = FakeClock()
    mono = clock.monotonic_ns()
    clock.set_wall(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2030 and clock.monotonic_ns() == mono


def test_shifted_clock_starts_at_its_wall_time_and_runs_with_its_base():
    base = FakeClock(start=datetime(2026, 11, 28, 20, 0, tzinfo=UTC))
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    clock = ShiftedClock(start, base)
    assert clock.now() == start
    base.advance(90)
    assert clock.now() == start + timedelta(seconds=90)
    assert clock.monotonic_ns() == base.monotonic_ns()
    clock.jump(3600)
    assert clock.now() == start + timedelta(seconds=3690)
    assert clock.synced() is base.synced()


def test_shifted_clock_needs_an_aware_start():
    with pytest.raises(ValueError):
        ShiftedClock(datetime(2026, 3, 2, 9, 0))
