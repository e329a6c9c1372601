"""Token buckets: a burst, then one request per refill interval, keyed, bounded."""

from __future__ import annotations

import pytest

from kiosk.ratelimit import RateLimiter


def test_burst_is_allowed_then_refused_with_retry_after(clock):
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert all(limiter.take("a").allowed for _ in range(3))
    verdict = limiter.take("a")
    assert not verdict.allowed
    assert verdict.retry_after_s == pytest.approx(0.5)
    assert verdict.retry_after_header == "1"


def test_bucket_refills_with_time(clock):
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=clock)
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed
    clock.advance(0.5)
    assert not limiter.take("a").allowed
    clock.advance(0.5)
    assert limiter.take("a").allowed


def test_refill_never_exceeds_burst(clock):
    limiter = RateLimiter(rate_per_s=10, burst=2, clock=clock)
    clock.advance(3600)
    assert limiter.take("a").allowed and limiter.take("a").allowed
    assert not limiter.take("a").allowed


def test_keys_are_independent(clock):
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=clock)
    assert limiter.take("token:1").allowed
    assert not limiter.take("token:1").allowed
    assert limiter.take("addr:10.0.0.9").allowed


def test_per_minute_spreads_the_rate(clock):
    limiter = RateLimiter.per_minute(60, clock)
    assert limiter.rate_per_s == 1 and limiter.burst == 10


def test_key_count_is_bounded_least_recent_first(clock):
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=clock, max_keys=3)
    for key in "abcd":
        limiter.take(key)
    assert len(limiter) == 3
    # "a" was dropped, so it comes back with a full bucket; "d" is still empty.
    assert limiter.take("a").allowed
    assert not limiter.take("d").allowed


def test_long_waits_round_retry_after_up(clock):
    limiter = RateLimiter(rate_per_s=0.1, burst=1, clock=clock)
    limiter.take("a")
    verdict = limiter.take("a")
    assert verdict.retry_after_s == pytest.approx(10)
    assert verdict.retry_after_header == "10"


def test_bad_settings_are_refused(clock):
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0, burst=1, clock=clock)
