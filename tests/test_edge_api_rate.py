"""The office API's rate per sender (``ui.api``): whom a request without a valid token counts
as, the same as the guard's sign-in (``kiosk.ratelimit.client_key``), and why a valid token's
request is its token's alone."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_api import bearer, make_core

from ui import api

GUESS = {"Authorization": "Bearer kt_guess_0000000000000000000000000000000000000000000"}


def asked_from(app: FastAPI, addr: str, headers: dict[str, str], path: str = "/api/v1/events"):
    return TestClient(app, client=(addr, 50000)).get(path, headers=headers).status_code


@pytest.mark.slow
def test_an_ipv6_host_rotating_its_addresses_is_one_sender_as_at_the_sign_in(tmp_path, clock):
    # Every SLAAC host has the 2**64 addresses of its /64: a fresh address per request took a
    # fresh API allowance each time (the sign-in's limit already counts the /64 as one), so one
    # machine could hammer the API (tokens, /metrics) at any rate and crowd the limiter's table.
    core = make_core(tmp_path, clock, {"api_rate_per_min": 6})  # burst 1, then 1 per 10 s
    app = FastAPI()
    state = api.install(app, core)
    try:
        answers = [asked_from(app, f"2001:db8:1:2::{i:x}", GUESS) for i in range(1, 41)]
        assert answers[0] == 401 and set(answers[1:]) == {429}
        metrics = asked_from(app, "2001:db8:1:2::abcd", {}, "/metrics")
        assert metrics == 429
        assert len(state.addr_limiter) == 1
        # Another /64, IPv4, and an IPv4 client on a dual-stack listener are others.
        assert asked_from(app, "2001:db8:1:3::1", GUESS) == 401
        assert asked_from(app, "192.168.1.50", GUESS) == 401
        assert asked_from(app, "::ffff:192.168.1.51", GUESS) == 401
        assert asked_from(app, "192.168.1.51", GUESS) == 429
    finally:
        core.store.close()


def test_a_lan_machine_spending_its_64s_allowance_does_not_shut_out_the_office_or_the_peers(
    tmp_path, clock
):
    # One /64 is often the whole LAN: the office's pull and the other gates ask from it too.
    # A request with a valid token counts against its token (web.api_rate_per_min), not
    # against the address's allowance a stranger there has spent.
    core = make_core(tmp_path, clock, {"api_rate_per_min": 6})
    app = FastAPI()
    api.install(app, core)
    office = bearer(core, "logs:read")
    try:
        assert [asked_from(app, "2001:db8:1:2::66", GUESS) for _ in range(3)] == [401, 429, 429]
        assert asked_from(app, "2001:db8:1:2::10", office) == 200
        # The token's own allowance still holds, from any address.
        assert asked_from(app, "2001:db8:1:2::11", office) == 429
        clock.advance(10)
        assert asked_from(app, "192.168.1.9", office) == 200
    finally:
        core.store.close()
