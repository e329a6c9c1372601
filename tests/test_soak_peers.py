"""Soak: a compound's peer gate asked every ``compound.poll_s`` for weeks. A peer on a flaky
link (lost and back at every other poll) or a card that keeps refusing its passages must cost
the journal a bounded number of lines, as a flapping device does (docs/operations.md), not a
line or a traceback per poll: 8,640 polls a day at the default 10 s."""

from __future__ import annotations

import logging

import httpx
import pytest
import test_compound_gates
from test_compound_gates import Switch, resident

from kiosk.logs import FLAP_LINES
from kiosk.store import StoreFault

POLLS = 60  # ten minutes at the default poll_s: ten times the changes logged an hour


#: The north and south gates of the compound tests, on this module's clock.
north, south = test_compound_gates.north, test_compound_gates.south


@pytest.fixture
def gates(north, south):
    """North, and south asking it (``test_compound_gates``' gates, on this module's clock)."""
    return north, south


def peer_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "checkpoint.peers" and r.levelno >= logging.INFO]


@pytest.mark.slow
def test_a_peer_on_a_flaky_link_is_logged_a_few_times_an_hour_with_the_count(
    gates, clock, monkeypatch, caplog
):
    north, south = gates
    way = Switch(north)
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    with caplog.at_level(logging.INFO, logger="checkpoint.peers"):
        for i in range(POLLS):
            way.up = bool(i % 2)
            sync.poll()
            clock.advance(10)
        assert len(peer_lines(caplog)) <= FLAP_LINES
        # An hour on, the next poll says the state then and how many changes were not
        # logged: the journal's last word is the state.
        clock.advance(3600)
        way.up = True
        sync.poll()
    last = peer_lines(caplog)[-1].getMessage()
    assert last == "compound: peer gate-north answers (54 changes not logged over the last 70 min)"
    assert south.core.health()["peers"][0]["state"] == "ok"  # the state is always shown


@pytest.mark.slow
def test_a_card_that_keeps_refusing_a_peers_passages_is_one_traceback_not_one_a_poll(
    gates, clock, monkeypatch, caplog
):
    north, south = gates
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("1-101"))

    kept, refusing = sync.ledger.merge, [True]

    def merge(*args, **kwargs):
        if refusing[0]:
            raise StoreFault("store_fault", "disk full")
        return kept(*args, **kwargs)

    monkeypatch.setattr(sync.ledger, "merge", merge)
    with caplog.at_level(logging.INFO, logger="checkpoint.peers"):
        for _ in range(POLLS):
            sync.poll()
            clock.advance(10)
    assert len([r for r in peer_lines(caplog) if r.exc_info]) == 1
    assert len(peer_lines(caplog)) <= 2
    assert "could not be kept here" in south.core.health()["peers"][0]["last_error"]
    refusing[0] = False  # the card takes them again: said, and the passage is held
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="checkpoint.peers"):
        sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}
    said = [r.getMessage() for r in peer_lines(caplog)]
    assert "compound: peer gate-north answers again" in said and len(said) <= 2


def test_a_peer_on_older_code_over_a_flaky_link_says_it_refuses_the_news_once(
    gates, monkeypatch, caplog
):
    """It answers 405 to the poke when the link is up and nothing when it is down: the
    missing answer between two refusals did not make the second one news again."""
    north, south = gates
    answers = iter(range(10_000))

    def old_code_flaky(request: httpx.Request) -> httpx.Response:
        if next(answers) % 2:
            raise httpx.ConnectError("no route to host", request=request)
        return httpx.Response(405, json={"detail": "Method Not Allowed"})

    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(old_code_flaky))
    with caplog.at_level(logging.WARNING, logger="checkpoint.peers"):
        for _ in range(POLLS):
            sync.news({"type": "decision", "decision": "pass", "committed": True})
            sync.push()
    said = [r.getMessage() for r in caplog.records if "news" in r.getMessage()]
    assert len(said) == 1 and "(HTTP 405)" in said[0]
    assert south.core.health()["peers"][0]["tell_failed"] == POLLS
