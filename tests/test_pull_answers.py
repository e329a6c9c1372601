"""What the office says of a gate's odd answers: where a redirect points, and an unbounded
kiosk_id never repeated whole."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from office.gatereports import fetch_report
from office.pull import Puller, PullError


def _answering(response: httpx.Response) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda request: response))


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_says_where_it_points_and_that_it_is_not_followed(tmp_path, status):
    """Before: "http://gate-1/api/v1/events: HTTP 302" and nothing else: a gate moved to
    https (web.tls), or a proxy's login page, left the clerk guessing."""
    where = "https://gate-1:8443/api/v1/events?after=0"
    client = _answering(httpx.Response(status, headers={"Location": where}))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=1) as puller,
        pytest.raises(PullError) as info,
    ):
        puller.pull("http://gate-1", "kt_x_y")
    message = str(info.value)
    assert f"HTTP {status} redirects to 'https://gate-1:8443/api/v1/events" in message
    assert "not followed" in message
    with pytest.raises(PullError, match=f"HTTP {status} redirects to 'https://gate-1:8443"):
        fetch_report(client, "http://gate-1", "kt_x_y")


def test_a_redirect_s_location_is_bounded_and_escaped(tmp_path):
    where = "https://evil/" + "A" * 5000
    client = _answering(httpx.Response(302, headers={"Location": where}))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=1) as puller,
        pytest.raises(PullError) as info,
    ):
        puller.pull("http://gate-1", "kt_x_y")
    message = str(info.value)
    assert len(message) < 600 and "AAAA" in message


def test_a_redirect_without_a_location_says_so(tmp_path):
    client = _answering(httpx.Response(303))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=1) as puller,
        pytest.raises(PullError, match="HTTP 303 redirects, with no Location"),
    ):
        puller.pull("http://gate-1", "kt_x_y")


def _row(**fields):
    return {"seq": 1, "kiosk_id": "gate-1", "prev_hash": "0" * 64, "hash": "x", **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"kiosk_id": "K" * 1_000_000},
        {"kiosk_id": ["gate-1"] * 100_000},
        {"seq": "9" * 1_000_000},
        {"seq": list(range(100_000))},
    ],
    ids=["long-id", "list-id", "long-seq", "list-seq"],
)
def test_check_page_never_repeats_a_gate_s_value_whole(fields):
    """Before: "seq 1: kiosk_id 'KKKK...' (a megabyte), expected 'gate-1'": the whole value a
    gate sent went into the error, then the status page, /status.json, the log and stderr."""
    from kiosk.hashchain import GENESIS
    from office.pull import ChainError, check_page

    with pytest.raises(ChainError) as info:
        check_page([_row(prev_hash=GENESIS, **fields)], "gate-1", 0, GENESIS)
    assert len(str(info.value)) < 300, str(info.value)[:300]


def test_a_gate_s_list_sync_says_where_a_redirect_points(tmp_path, clock):
    """Before: the gate's list status said "HTTP 301" and nothing else (the office moved its
    collector to https, say): where to point [fleet] lists_url was left to guessing."""
    from kiosk import lists as lists_mod
    from kiosk.lists import ListStore
    from kiosk.passes import TrustList, new_key_pair
    from kiosk.store import EventLog
    from office.listsync import ListSync

    new_key_pair(tmp_path / "office", "office")
    store = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    store.open()
    try:
        lists = ListStore(store, clock)
        lists.load()
        where = "https://office:9110/lists/bundle"
        client = _answering(httpx.Response(301, headers={"Location": where}))
        sync = ListSync(
            lists, TrustList.from_dir(tmp_path / "office"), "http://office:9110/lists/bundle",
            clock, client=client,
        )  # fmt: skip
        result = sync.check()
        assert result.outcome == "error"
        assert f"HTTP 301 redirects to {where!r}, not followed" in result.message
        assert "lists_url" in result.message
    finally:
        store.close()


def test_a_gate_report_answered_by_someone_elses_page_names_the_day_and_the_page():
    """Before: "http://gate-1/api/v1/stats: not a daily report (Expecting value: line 1
    column 1 (char 0))": neither which day's report nor that the answer was a proxy's or
    captive portal's HTML page, not the gate's."""
    page = b"<html><body>Proxy error: upstream timed out</body></html>"
    client = _answering(httpx.Response(200, content=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(PullError) as info:
        fetch_report(client, "http://gate-1", "kt_x_y", date(2026, 3, 2))
    message = str(info.value)
    assert "day=2026-03-02" in message and "is not JSON" in message, message
    assert f"text/html, {len(page)} bytes" in message, message
    assert "Expecting value" not in message, message
