"""Whom a per-client limit counts a link-local IPv6 client as (``kiosk.ratelimit.client_key``).

A global or unique-local /64 is one home's or one machine's (SLAAC hands it its addresses), so
an IPv6 client counts as its /64. The link-local prefix ``fe80::/64`` is every machine's on the
link: a guard's PC that reaches ``gate-1.local`` by mDNS over its link-local address (macOS,
Windows and Linux with nss-mdns resolve ``.local`` so) was one sender with every other machine
of the LAN doing the same, so a stranger's five wrong passwords locked every guard out of
signing in, and one host spent the whole link's connection and request rates."""

from __future__ import annotations

from checkpoint.server import ConnectionGate, HostRate
from kiosk.ratelimit import client_key
from ui.auth import LoginLimiter

GUARD = "fe80::1c2b:3aff:fe4d:5e6f%eth0"
STRANGER = "fe80::a00:27ff:fe12:3456%eth0"


def test_a_link_local_client_counts_as_its_own_address_not_the_links_64():
    assert client_key(GUARD) == "fe80::1c2b:3aff:fe4d:5e6f"
    assert client_key(GUARD) != client_key(STRANGER)
    # A global /64 is still one sender, and IPv4 (mapped or not) itself.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_a_strangers_wrong_passwords_over_link_local_do_not_lock_the_guard_out(clock):
    limiter = LoginLimiter(clock, per_minute=5)
    for _ in range(5):
        limiter.failed(STRANGER, "root")
    assert limiter.retry_after_s(STRANGER) > 0
    assert limiter.retry_after_s(GUARD) == 0


def test_one_link_local_host_does_not_spend_the_links_connection_rate_or_cap(clock):
    gate = ConnectionGate(100, 4, opening=HostRate(60, clock))  # bursts of 10
    assert sum(gate.admit(STRANGER) for _ in range(30)) == 4  # its own cap, then refused
    assert gate.admit(GUARD)
    assert gate.per_network[client_key(GUARD)] == 1
