"""Sign-in attempts from a LAN's addresses over months: the login limiter (the guard
console's, the kiosk screen key's) holds the addresses of the last minute, not every address
that ever guessed, and what it lets go never lets a locked-out guesser try again early."""

from __future__ import annotations

import pytest

from ui.auth import LoginLimiter


@pytest.mark.slow
def test_the_login_limiter_lets_go_of_the_addresses_whose_minute_is_over(clock):
    # A scan of the LAN (an IPv6 host can use any /64 on the link) once: 10,000 addresses
    # that never come back were held for good, ~10 MB, until the next scan replaced them.
    limiter = LoginLimiter(clock, per_minute=3)
    for n in range(10_000):
        limiter.failed(f"fd00:{n:x}::1", "admin")
        clock.advance(0.01)  # 100 s in all
    assert len(limiter._fails) <= 6_000 + 1  # those of the last minute
    for _ in range(3):
        limiter.failed("192.168.1.66", "admin")
    clock.advance(61)
    limiter.failed("192.168.1.67", "admin")
    assert set(limiter._fails) == {"192.168.1.67"}
    assert limiter.retry_after_s("192.168.1.66") == 0  # its minute is over


def test_the_login_limiter_keeps_refusing_a_guesser_while_others_come_and_go(clock):
    limiter = LoginLimiter(clock, per_minute=3, max_addresses=100)
    for _ in range(3):
        limiter.failed("192.168.1.66", "admin")
    for n in range(2_000):  # a scan from other addresses, one wrong password each
        limiter.failed(f"10.0.{n // 256}.{n % 256}", "alice")
        clock.advance(0.02)  # 40 s in all: the guesser's minute is not over
        assert len(limiter._fails) <= 100
        assert limiter.retry_after_s("192.168.1.66") > 0
