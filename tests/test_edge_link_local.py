"""Whom a per-client limit counts a link-local IPv6 client as (``kiosk.ratelimit.client_key``).

The link-local prefix ``fe80::/64`` is every machine's on the link, and any of them takes as many
addresses in it as it likes (``ip addr add fe80::N/64`` in a loop). Counted alone (as it was for
a few hours of this release), each address was a fresh five wrong passwords at the guard's
sign-in, a fresh API allowance and fresh connection and request rates: unbounded guessing from
one laptop on the LAN. It counts as its /64, like every other IPv6 address: a stranger there
holds back the guards who reach the gate over link-local IPv6 for the minute (as on a global /64
that is the whole LAN), never a guard over IPv4, and the sign-in is never opened to guessing."""

from __future__ import annotations

from kiosk.ratelimit import client_key
from ui.auth import LoginLimiter

GUARD = "fe80::1c2b:3aff:fe4d:5e6f%eth0"
STRANGER = "fe80::a00:27ff:fe12:3456%eth0"


def test_a_link_local_client_counts_as_the_links_64_like_any_ipv6_client():
    assert client_key(GUARD) == client_key(STRANGER) == "fe80::/64"
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_rotating_link_local_addresses_buys_no_more_guesses(clock):
    limiter = LoginLimiter(clock, per_minute=5)
    for n in range(5):
        limiter.failed(f"fe80::{n + 1:x}%eth0", "root")
    assert limiter.retry_after_s("fe80::99%eth0") > 0  # a fresh address: the same sender
    assert limiter.retry_after_s("192.0.2.7") == 0  # a guard over IPv4 is not held back
