from datetime import UTC, datetime, timedelta

import pytest

from drivers.clocksync import (
    KERNEL_MAX_ERROR_US,
    FakeClockSync,
    KernelClockSync,
    _kernel_max_error_us,
    kernel_clock_synced,
    kernel_clock_verdict,
    system_clock,
)
from kiosk.clock import FakeClock, ShiftedClock, SystemClock


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
    base.is_synced = False
    assert clock.synced() is True  # the scripted day's time, not the host's


def test_shifted_clock_needs_an_aware_start():
    with pytest.raises(ValueError):
        ShiftedClock(datetime(2026, 3, 2, 9, 0), FakeClock())


def test_a_clock_synchronised_by_chrony_or_ntpd_counts_as_synchronised(tmp_path):
    """Only systemd-timesyncd touches its flag file: a Pi running chrony (a GPS or RTC hat)
    recorded every event as unsynchronised and never purged. The kernel's own verdict counts
    (and decides: the flag alone counts only where the kernel cannot be asked, below)."""
    no_flag = tmp_path / "synchronized"
    assert KernelClockSync(no_flag, kernel=lambda: True).synced()
    assert not KernelClockSync(no_flag, kernel=lambda: False).synced()


@pytest.mark.parametrize(
    ("max_error_us", "synced"),
    [
        (250_000, True),
        (KERNEL_MAX_ERROR_US - 1, True),
        (KERNEL_MAX_ERROR_US, False),
        (None, False),
    ],  # fmt: skip
)
def test_the_kernel_holds_the_clock_synchronised_while_its_maximum_error_is_under_16_s(
    max_error_us, synced
):
    """As timedatectl reads it: an NTP client keeps adjtimex's maximum error low; the kernel
    grows it past 16 s by itself once nobody does. No answer (not Linux) is not synchronised."""
    assert kernel_clock_synced(lambda: max_error_us) is synced


def test_the_kernels_clock_state_is_read_without_changing_it():
    """The real call (read only) answers on this machine, whatever its clock's state."""
    error = _kernel_max_error_us()
    assert error is None or error >= 0
    assert kernel_clock_synced() is (error is not None and error < KERNEL_MAX_ERROR_US)


def test_a_clock_set_by_hand_after_timesyncd_synchronised_is_not_synchronised(tmp_path):
    """timesyncd's flag file stays in /run for the rest of the boot once it has synchronised.
    A clock then set by hand (``date -s 2076-01-01``: settimeofday marks the kernel's clock
    unsynchronised, maximum error 16 s) still counted as synchronised, so the hourly purge
    cut by a clock 50 years ahead. The kernel's verdict decides where it can be asked; the
    flag counts only where it cannot (not Linux)."""
    flag = tmp_path / "synchronized"
    flag.touch()
    set_by_hand = KernelClockSync(flag, kernel=lambda: kernel_clock_verdict(lambda: 16_000_000))
    assert not set_by_hand.synced()
    assert KernelClockSync(flag, kernel=lambda: None).synced()
    assert not KernelClockSync(tmp_path / "absent", kernel=lambda: None).synced()


def test_the_system_clock_asks_its_sync_source_each_time_unless_vouched_for():
    """The platform read is a driver (``drivers.clocksync``) behind ``kiosk.clock.ClockSync``;
    the fake stands in for it."""
    sync = FakeClockSync()
    clock = SystemClock(sync)
    assert not clock.synced()
    sync.is_synced = True
    assert clock.synced() and sync.reads == 2
    assert SystemClock(FakeClockSync(), assume_synced=True).synced()
    assert system_clock(assume_synced=True).synced()
    assert system_clock().synced() is KernelClockSync().synced()
