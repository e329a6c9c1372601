"""A gate's passages for the compound's other gates (``kiosk.peers``): served behind their own
narrow scope, judged when they come in, kept once, bounded, and counted by the history —
also after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from checkpoint.app import build_core
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.history import PassageHistory
from kiosk.peers import (
    MAX_AHEAD,
    PEER_SCOPE,
    CheckedPage,
    PeerLedger,
    PeerPageError,
    PeerRestarted,
    PeerRow,
    check_page,
)
from kiosk.store import EventDraft, format_ts
from ui.app import create_app

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
QUOTA = {"quota": {"enabled": True, "exits": 1, "period_days": 2}}


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def gate(tmp_path, clock):
    config = parse_config({"site": {"kiosk_id": "gate-north"}, "policy": QUOTA})
    core = build_core(config, tmp_path / "north", clock)
    yield core
    core.close()


def passage(core, household="1-101", *, direction="out", decision="pass", pass_id="P1", flags=()):
    return core.store.append(
        EventDraft(
            direction=direction,
            decision=decision,
            pass_id=pass_id,
            household=household,
            flags=tuple(flags),
        )
    )


def bearer(core, *scopes: str) -> dict[str, str]:
    _, token = core.tokens.create(list(scopes), "t")
    return {"Authorization": f"Bearer {token}"}


# --- serving: least privilege ------------------------------------------------------------------


def test_the_passages_endpoint_needs_its_own_scope_and_serves_only_what_the_rules_need(gate):
    passage(gate, flags=("quota_exempt", "escort"))
    passage(gate, decision="deny")  # an attempt, not a passage
    client = TestClient(create_app(gate))
    peer = bearer(gate, PEER_SCOPE)
    assert client.get("/api/v1/passages", headers=bearer(gate, "logs:read")).status_code == 403
    assert client.get("/api/v1/passages").status_code == 401
    got = client.get("/api/v1/passages", headers=peer)
    assert got.status_code == 200
    page = got.json()
    assert page["kiosk_id"] == "gate-north" and page["last"] == 2 and page["next"] == 2
    [row] = page["passages"]
    assert set(row) == {
        "kiosk_id", "seq", "pass_id", "household", "direction", "decision", "ts", "flags",
    }  # fmt: skip
    assert row["flags"] == ["quota_exempt"] and row["household"] == "1-101"
    # The peer's token reads no events, and a page is bounded.
    assert client.get("/api/v1/events", headers=peer).status_code == 403
    assert client.get("/api/v1/passages?limit=1001", headers=peer).status_code == 422
    assert client.get("/api/v1/passages?after=-1", headers=peer).status_code == 422
    # Asked again from where it ended: nothing new, the cursor stays.
    again = client.get("/api/v1/passages?after=2", headers=peer).json()
    assert again["passages"] == [] and again["next"] == 2


def test_the_endpoint_serves_the_quotas_look_back_only_and_pages_exactly(gate, clock):
    passage(gate, "1-101", pass_id="P1")
    clock.advance(4 * 86400)  # past the look-back (2 days and one)
    for i in range(3):
        passage(gate, f"{i}-2", pass_id=f"Q{i}")
    client = TestClient(create_app(gate))
    peer = bearer(gate, PEER_SCOPE)
    first = client.get("/api/v1/passages?limit=2", headers=peer).json()
    assert [r["pass_id"] for r in first["passages"]] == ["Q0", "Q1"] and first["next"] == 3
    rest = client.get(f"/api/v1/passages?after={first['next']}", headers=peer).json()
    assert [r["pass_id"] for r in rest["passages"]] == ["Q2"] and rest["next"] == 4


def test_the_scope_is_one_a_token_can_be_made_with():
    from kiosk.tokens import SCOPES, validate_scopes

    assert PEER_SCOPE in SCOPES and validate_scopes([PEER_SCOPE]) == {PEER_SCOPE}


# --- a page judged ---------------------------------------------------------------


def raw(**over) -> dict:
    base = {
        "kiosk_id": "gate-north",
        "seq": 1,
        "pass_id": "P1",
        "household": "1-101",
        "direction": "out",
        "decision": "pass",
        "ts": NOW.isoformat(),
        "flags": [],
    }
    return base | over


def answer(*rows, kiosk_id="gate-north", last=None) -> dict:
    seqs = [r["seq"] for r in rows] or [0]
    top = max(seqs) if last is None else last
    return {"kiosk_id": kiosk_id, "passages": list(rows), "next": top, "last": top}


def test_a_page_of_the_pinned_kiosk_is_kept_with_its_times_in_one_format():
    page = check_page(answer(raw(ts="2026-03-02T10:00:00+08:00")), "gate-north", 0, 10, NOW)
    assert page.rows == [
        PeerRow("gate-north", 1, "P1", "1-101", "out", "pass", format_ts(NOW), False)
    ]
    assert (page.next, page.last, page.ahead) == (1, 1, 0)


@pytest.mark.parametrize(
    ("page", "said"),
    [
        (answer(raw(), kiosk_id="gate-east"), "pinned to gate-north"),
        (answer(raw(kiosk_id="gate-east")), "forged row"),
        (answer(raw(seq=1), raw(seq=2), raw(seq=3)), "3 passages in a page asked for at most 2"),
    ],
)
def test_a_page_of_another_kiosk_or_too_long_is_refused_whole(page, said):
    with pytest.raises(PeerPageError, match=said):
        check_page(page, "gate-north", 0, 2, NOW)


def test_a_row_stamped_far_ahead_of_this_clock_is_dropped_and_counted():
    ahead = raw(seq=1, ts=(NOW + MAX_AHEAD + timedelta(seconds=1)).isoformat())
    near = raw(seq=2, ts=(NOW + MAX_AHEAD).isoformat())
    page = check_page(answer(ahead, near), "gate-north", 0, 10, NOW)
    assert [r.seq for r in page.rows] == [2] and page.ahead == 1 and page.next == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"household": "1-101\u200b"},  # a zero-width space pasted from a chat
        {"household": "\u202e101-1"},  # a right-to-left override: 1-101 on a screen
        {"household": "1-101\x1b[2J"},  # a terminal escape
        {"household": "1-101\u2028"},  # a line separator
        {"pass_id": "P1\x00"},
        {"pass_id": "P1\u00ad"},  # a soft hyphen
    ],
)
def test_a_row_with_a_character_nobody_sees_is_refused_and_counted_the_rest_kept(bad):
    """Before: a peer's household was checked for its length only, while the gate's own
    fields refuse what nobody sees (``kiosk.community.clean_text``): such a row reached the
    history, the breach alarms and the console as a household that looks like another."""
    rows = (raw(seq=1, household="2-202"), raw(seq=2, **bad), raw(seq=3, household="３-３０３"))
    page = check_page(answer(*rows), "gate-north", 0, 10, NOW)
    assert [r.seq for r in page.rows] == [1, 3] and page.refused == 1
    assert page.next == 3 and page.ahead == 0  # asked past it: it is not asked for again


def test_the_peers_own_time_is_compared_with_this_clock_and_a_page_without_it_still_taken():
    behind = answer(raw()) | {"now": (NOW - timedelta(hours=3)).isoformat()}
    page = check_page(behind, "gate-north", 0, 10, NOW)
    assert page.skew == -timedelta(hours=3) and len(page.rows) == 1  # its rows as stamped
    # A peer running the earlier code of the day says no time: nothing known of its clock.
    assert check_page(answer(raw()), "gate-north", 0, 10, NOW).skew is None
    with pytest.raises(PeerPageError, match="now is 'soon', not an ISO 8601 time"):
        check_page(answer(raw()) | {"now": "soon"}, "gate-north", 0, 10, NOW)


def test_a_log_shorter_than_the_cursor_is_a_peer_that_started_again():
    with pytest.raises(PeerRestarted):
        check_page(answer(last=3), "gate-north", 10, 10, NOW)


# --- kept, bounded, counted -------------------------------------------------------


def rows(n: int, ts: datetime = NOW, first: int = 1) -> list[PeerRow]:
    stamp = format_ts(ts)
    return [
        PeerRow("gate-south", i, f"P{i}", f"{i}-1", "out", "pass", stamp, False)
        for i in range(first, first + n)
    ]


def test_a_page_kept_twice_is_held_once_and_new_rows_are_said_once(gate):
    ledger = PeerLedger(gate.store, timedelta(days=3))
    page = CheckedPage(rows(3), 3, 3, 0)
    assert len(ledger.merge("http://s", "gate-south", page, NOW)) == 3
    assert ledger.merge("http://s", "gate-south", page, NOW) == []
    assert ledger.held() == {"gate-south": 3} and ledger.cursor("gate-south") == 3


def test_the_table_is_bounded_by_count_and_by_the_horizon(gate):
    ledger = PeerLedger(gate.store, timedelta(days=3), max_rows=100)
    old = rows(1, NOW - timedelta(days=4), first=151)
    assert (
        len(ledger.merge("http://s", "gate-south", CheckedPage(rows(150) + old, 151, 151, 0), NOW))
        == 151
    )
    assert ledger.held() == {"gate-south": 100}
    low = gate.store.reader().execute("SELECT MIN(seq), MAX(seq) FROM peer_passages").fetchone()
    assert tuple(low) == (51, 150)  # the oldest by seq past the count, the old one by time


def test_on_an_unsynchronised_clock_nothing_is_dropped_for_its_age(gate):
    """A clock far ahead (a wrong RTC before NTP) would call every real row old."""
    ledger = PeerLedger(gate.store, timedelta(days=3))
    page = CheckedPage(rows(2, NOW - timedelta(days=4)), 2, 2, 0)
    ledger.merge("http://s", "gate-south", page, NOW, synced=False)
    assert ledger.held() == {"gate-south": 2}


def test_retention_removes_the_peers_rows_with_the_other_ledgers(gate, clock):
    from kiosk.retention import purge

    PeerLedger(gate.store, timedelta(days=3)).merge(
        "http://s", "gate-south", CheckedPage(rows(1), 1, 1, 0), NOW
    )
    clock.advance(40 * 86400)
    result = purge(gate.store, 30, clock.now())
    assert result.ledger_rows_purged["peer_passages"] == 1
    assert PeerLedger(gate.store, timedelta(days=3)).held() == {}


def test_a_restart_rebuilds_the_history_from_the_peers_rows_too(tmp_path, clock):
    south = {"url": "http://s", "kiosk_id": "gate-south", "token_env": "PEER_TOKEN_S"}
    config = parse_config(
        {"site": {"kiosk_id": "gate-north"}, "policy": QUOTA, "compound": {"peers": [south]}}
    )
    core = build_core(config, tmp_path / "north", clock)
    try:
        passage(core, "2-202", pass_id="OWN")
        PeerLedger(core.store, core.history.horizon).merge(
            "http://s", "gate-south", CheckedPage(rows(1), 1, 1, 0), NOW
        )
    finally:
        core.close()
    clock.advance(3600)
    restarted = build_core(config, tmp_path / "north", clock)
    try:
        assert restarted.runner._load_history() == 2  # as the runner does at start
        history = restarted.history
        assert history.exits_in_period("1-1", clock.now(), 2) == 1  # the peer's
        assert history.exits_in_period("2-202", clock.now(), 2) == 1  # its own
        assert history.last_passage("P1", "out") == NOW
    finally:
        restarted.close()


def test_a_peer_passage_fetched_late_does_not_hide_a_later_one_of_this_gate():
    """A pass's last passage stays the latest: the north gate's row of 10:00, fetched after
    the south gate's own of 10:03, does not pull the window back to 10:00."""
    history = PassageHistory()
    history.record("P1", "1-101", "in", "pass", NOW + timedelta(minutes=3))
    history.record("P1", "1-101", "in", "pass", NOW, peer=True)
    assert history.last_passage("P1", "in") == NOW + timedelta(minutes=3)
    history.record("P1", "1-101", "in", "pass", NOW + timedelta(minutes=4), peer=True)
    assert history.last_passage("P1", "in") == NOW + timedelta(minutes=4)


def test_peer_passages_alone_keep_the_history_bounded():
    """A gate nobody uses for weeks still forgets its peers' old passages."""
    history = PassageHistory(horizon=timedelta(days=3))
    for day in range(30):
        for i in range(10):
            when = NOW + timedelta(days=day, minutes=i)
            history.record(f"P{day}-{i}", f"{i}-1", "out", "pass", when, peer=True)
    assert len(history) <= 4 * 10 * 2
    # A backlog from the past caught up later does not walk the history at each row.
    history.record("OLD", "9-9", "out", "pass", NOW, peer=True)
    assert history.last_passage("OLD", "out") == NOW


def test_a_log_that_cannot_be_read_is_a_503_not_a_server_error(gate, monkeypatch):
    import sqlite3

    import kiosk.peers

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    client = TestClient(create_app(gate), raise_server_exceptions=False)
    peer = bearer(gate, PEER_SCOPE)
    monkeypatch.setattr(kiosk.peers, "_page", broken)
    got = client.get("/api/v1/passages", headers=peer)
    assert got.status_code == 503 and "unavailable" in got.json()["detail"]


def test_a_page_of_another_compound_or_a_compound_that_is_no_id_is_refused_whole():
    page = answer(raw()) | {"compound": "West"}
    with pytest.raises(PeerPageError, match="a gate of compound west, and this gate's is east"):
        check_page(page, "gate-north", 0, 10, NOW, "east")
    for bad in (["east"], "east\nforged line", "", "e" * 65):
        with pytest.raises(PeerPageError, match="not a compound id"):
            check_page(answer(raw()) | {"compound": bad}, "gate-north", 0, 10, NOW, "east")
    assert len(check_page(page, "gate-north", 0, 10, NOW, "WEST").rows) == 1
    assert len(check_page(page, "gate-north", 0, 10, NOW).rows) == 1  # this gate says none
    assert len(check_page(answer(raw()), "gate-north", 0, 10, NOW, "east").rows) == 1


def test_only_this_boots_passages_on_a_clock_never_set_wait_to_be_dated(tmp_path):
    """A passage stamped 1970 and not dated waits with the serving gate while its boot may
    still date it; one of an earlier boot never dated will never be, and does not stop
    the passages after it from being served."""
    from kiosk.peers import peer_page

    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    core = build_core(parse_config({"site": {"kiosk_id": "gate-north"}, "policy": QUOTA}),
                      tmp_path / "north", unset)  # fmt: skip
    try:
        passage(core)
        since = unset.now() - timedelta(days=3)
        db, boot = core.store.reader(), core.store.boot_id
        page = peer_page(db, "gate-north", 0, 500, since, boot)
        assert (page["passages"], page["next"], page["last"]) == ([], 0, 1)
        page = peer_page(db, "gate-north", 0, 500, since, "an-earlier-boot")
        assert [p["seq"] for p in page["passages"]] == [1] and page["next"] == 1
    finally:
        core.close()
