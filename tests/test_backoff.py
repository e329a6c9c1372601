"""The one capped doubling wait (kiosk/backoff.py) that drivers, the pull and the collector use."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.backoff import MAX_DOUBLINGS, Backoff


def test_the_wait_doubles_from_the_base_per_failure_in_a_row_up_to_the_cap():
    backoff = Backoff(base_s=0.5, cap_s=10.0)
    assert [backoff.delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_a_cap_between_two_doublings_is_waited_exactly():
    backoff = Backoff(base_s=0.5, cap_s=3.0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_the_rule_holds_no_count_so_step_zero_after_a_success_is_the_base_again():
    backoff = Backoff(base_s=0.5, cap_s=4.0)
    assert backoff.delay(9) == 4.0
    assert backoff.delay(0) == 0.5  # the caller's count restarted: the first wait again
    assert backoff == Backoff(base_s=0.5, cap_s=4.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        backoff.base_s = 1.0  # type: ignore[misc]


@given(
    base_s=st.floats(min_value=0.01, max_value=30.0),
    cap_s=st.floats(min_value=0.01, max_value=3600.0),
    steps=st.integers(min_value=1, max_value=40),
)
def test_the_same_waits_as_doubling_a_wait_in_place_and_capping_it(base_s, cap_s, steps):
    """What the camera and the scanner did by hand (``wait = min(wait * 2, cap)``)."""
    if base_s > cap_s:
        base_s, cap_s = cap_s, base_s
    backoff = Backoff(base_s=base_s, cap_s=cap_s)
    wait = base_s
    for step in range(steps):
        assert backoff.delay(step) == wait
        wait = min(wait * 2, cap_s)


def test_a_cap_below_the_base_makes_every_wait_the_cap():
    # The config bounds the two separately: a collector polling every 600 s may cap its
    # error pause at 300 s.
    backoff = Backoff(base_s=600.0, cap_s=300.0)
    assert [backoff.delay(n) for n in range(3)] == [300.0, 300.0, 300.0]


def test_a_run_of_failures_too_long_for_a_float_power_still_waits_the_cap():
    with pytest.raises(OverflowError):
        _ = 0.5 * 2**1024  # what a bus missing for a day made the hand-written formula do
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    assert backoff.delay(1024) == 30.0
    assert backoff.delay(10**12) == 30.0
    huge = Backoff(base_s=1.0, cap_s=sys.float_info.max)
    assert huge.delay(10**6) == 2.0**MAX_DOUBLINGS  # the exponent stops, finite


@pytest.mark.parametrize(
    ("base_s", "cap_s", "named"),
    [
        (0.0, 10.0, "base_s"),
        (-0.5, 10.0, "base_s"),
        (float("nan"), 10.0, "base_s"),
        (float("inf"), 10.0, "base_s"),
        (0.5, 0.0, "cap_s"),
        (0.5, float("inf"), "cap_s"),
    ],
)
def test_a_wait_that_is_not_positive_finite_seconds_is_refused_by_name(base_s, cap_s, named):
    with pytest.raises(ValueError, match=f"Backoff {named} must be positive seconds"):
        Backoff(base_s=base_s, cap_s=cap_s)


def test_a_negative_step_is_refused():
    with pytest.raises(ValueError, match="counts failures from 0"):
        Backoff(base_s=0.5, cap_s=10.0).delay(-1)
