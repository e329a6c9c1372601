"""A compound peer's states timed across a step of this gate's wall clock (NTP setting a clock
that read 1970, or correcting one an hour off): how long a refusal's spell lasts and whether an
answer crosses a closing notice are durations, counted on the monotonic clock; the times shown
are the wall clock's as it reads now (``checkpoint.peers``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_compound_gates import (
    NORTH_KEY,
    NOW,
    Gate,
    closing_pair,
    page,
    peer_entry,
    resident,
    row,
)

from kiosk.clock import FakeClock
from kiosk.passes import public_key_pem

#: A signature that is none of the pinned key's: a forged answer.
FORGED = {"X-Kiosk-Signature": "0a1b:AA"}


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def north(tmp_path, clock):
    gate = Gate(tmp_path, "gate-north", clock)
    yield gate
    gate.close()


@pytest.fixture
def south(tmp_path, clock):
    gate = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    yield gate
    gate.close()


def pinned_gate(tmp_path, clock: FakeClock) -> Gate:
    """The south gate asking north with north's key pinned (``trust_key``)."""
    (tmp_path / "gate-south" / "trust").mkdir(parents=True)
    (tmp_path / "gate-south" / "trust" / "gate-north.pub").write_bytes(
        public_key_pem(NORTH_KEY.public_key())
    )
    entry = peer_entry("gate-north") | {"trust_key": "gate-north"}
    return Gate(tmp_path, "gate-south", clock, [entry])


@pytest.fixture
def pinned(tmp_path, clock, north):
    gate = pinned_gate(tmp_path, clock)
    yield gate
    gate.close()


def forging(gate: Gate, north_gate: Gate, monkeypatch):
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=page(row()), headers=FORGED))
    return gate.peer_of(north_gate, monkeypatch, transport=transport)


@pytest.mark.parametrize("step", [timedelta(hours=1), timedelta(hours=-1)])
def test_a_forged_spell_is_not_ended_by_ntp_stepping_the_clock(
    north, pinned, clock, monkeypatch, step
):
    """Someone answering for the pinned peer kept it ``forged`` for stale_after_s after the
    last forged answer; NTP stepping this gate's clock an hour either way a second later
    ended the spell at once (an hour gone, or its last forged answer an hour ahead): the
    alarm went, the guard's card with it, the forger still answering."""
    sync = forging(pinned, north, monkeypatch)
    sync.poll()
    clock.advance(1)
    clock.set_wall(clock.now() + step)  # NTP: the wall clock only
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "forged"
    assert peer["stale_since"] == (NOW + step).isoformat()  # shown by the clock as it reads now
    clock.advance(121)  # stale_after_s of real time since: over
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] != "forged"


def test_an_unsigned_spell_begun_on_a_clock_never_set_lasts_across_ntp(
    tmp_path, north, monkeypatch
):
    """A gate booted without network time (1970) refused its pinned peer's unsigned answer;
    NTP set the clock ten seconds later and the peer's ``unsigned`` alarm was gone at once,
    its spell read as 56 years old; it lasts stale_after_s, and is said since when dated."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    south = pinned_gate(tmp_path, unset)
    try:
        north.core.issuer_key = None  # it sends no signature
        sync = south.peer_of(north, monkeypatch)
        sync.poll()
        unset.advance(10)
        unset.set_wall(NOW)
        unset.is_synced = True
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "unsigned"
        assert peer["stale_since"] == (NOW - timedelta(seconds=10)).isoformat()
    finally:
        south.close()


def test_an_answer_crossing_the_closing_notice_keeps_the_peer_closed_across_an_ntp_step(
    tmp_path, clock, monkeypatch
):
    """A page the peer answered before its farewell, arriving after it, leaves it closed; an
    NTP step of an hour between the notice and that page made it read as an answer an hour
    later (the peer back), and a later outage of the night alarmed."""
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    north_gate, _switch, sync = closing_pair(tmp_path, clock, monkeypatch, south)
    try:
        north_gate.sync.farewell()
        north_gate.clock = FakeClock(start=NOW - timedelta(seconds=5))
        north_gate.core.clock = north_gate.clock  # its answer dated before its farewell
        clock.set_wall(NOW + timedelta(hours=1))  # NTP steps this gate's clock
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed"
        assert peer["closed_since"] == (NOW + timedelta(hours=1)).isoformat()
    finally:
        north_gate.close()
        south.close()


# --- a peer whose clock is not set, behind real time ------------------------------------------


def test_a_copied_card_at_a_peer_booted_on_its_saved_clock_is_still_a_passback(
    tmp_path, south, clock, monkeypatch
):
    """The north gate, an RTC-less Pi back from a power cut with no network time, booted on
    the time fake-hwclock saved hours before and stamped its passages three hours behind; the
    south gate kept them so (skew shown, 'not corrected'): a card copied and used at both gates
    a minute apart passed at both, and the outing left the quota's window hours early. North
    says which rows it stamped on its clock not set; south, on its set clock, dates them by
    north's clock as north's answer gives it."""
    saved = FakeClock(start=NOW - timedelta(hours=3), is_synced=False)
    north = Gate(tmp_path, "gate-north", saved)
    try:
        sync = south.peer_of(north, monkeypatch)
        card = resident()
        assert north.passage(card, "in")["decision"] == "pass"
        clock.advance(60)
        saved.advance(60)
        sync.poll()
        [held] = south.core.store.reader().execute("SELECT ts FROM peer_passages").fetchall()
        assert held[0] == NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        assert south.passage(card, "in") == {"decision": "deny", "reasons": ["passback"]}
        [peer] = south.core.health()["peers"]
        assert peer["clock_skewed"] and peer["rows_redated"] == 1
    finally:
        north.close()


def test_a_peer_whose_clock_ntp_just_set_dates_what_it_stamped_before(
    tmp_path, south, clock, monkeypatch
):
    """NTP set the north gate's clock (three hours behind till then) before its next
    passage could date its boot: its page served the passage at the time its clock had
    said, three hours early, for good. Its clock set, it dates them itself."""
    saved = FakeClock(start=NOW - timedelta(hours=3), is_synced=False)
    north = Gate(tmp_path, "gate-north", saved)
    try:
        sync = south.peer_of(north, monkeypatch)
        north.passage(resident(), "out")
        saved.advance(60)
        saved.set_wall(NOW + timedelta(seconds=60))  # NTP at north
        saved.is_synced = True
        clock.advance(60)
        sync.poll()
        [held] = south.core.store.reader().execute("SELECT ts FROM peer_passages").fetchall()
        assert held[0] == NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    finally:
        north.close()


@pytest.mark.parametrize(
    ("said", "unsynced_from", "synced", "ts"),
    [
        ("2026-03-01T23:00:00Z", 1, True, "2026-03-02T02:00:00.000000Z"),  # dated by the skew
        ("2026-03-01T23:00:00Z", 2, True, "2026-03-01T23:00:00.000000Z"),  # before it: stamped
        ("2026-03-01T23:00:00Z", None, True, "2026-03-01T23:00:00.000000Z"),  # a set clock's
        ("2026-03-01T23:00:00Z", 1, False, "2026-03-01T23:00:00.000000Z"),  # this one not set
        ("9999-12-31T23:59:59Z", 1, True, "2026-03-01T23:00:00.000000Z"),  # no time told
    ],
)
def test_only_rows_a_peer_stamped_on_its_clock_not_set_are_dated_by_its_skew(
    said, unsynced_from, synced, ts
):
    import json

    from kiosk.peers import check_page

    answer = json.loads(page(row(seq=1, ts="2026-03-01T23:00:00Z")))
    answer |= {"now": said, "unsynced_from": unsynced_from}
    checked = check_page(answer, "gate-north", 0, 500, NOW, synced=synced)
    if checked.rows:
        assert checked.rows[0].ts == ts
        assert checked.redated == (ts != "2026-03-01T23:00:00.000000Z")


@pytest.mark.parametrize("bad", ["7", -1, 2**63, True, 1.5, [1]])
def test_a_page_saying_a_bad_unsynced_from_is_refused_whole(bad):
    import json

    from kiosk.peers import PeerPageError, check_page

    answer = json.loads(page(row(seq=1))) | {"unsynced_from": bad}
    with pytest.raises(PeerPageError, match="unsynced_from"):
        check_page(answer, "gate-north", 0, 500, NOW)


def test_a_closing_notice_just_after_ntp_set_this_gates_clock_is_taken(
    tmp_path, clock, monkeypatch
):
    """The south gate booted without network time (1970) and heard the north gate (its clock
    56 years ahead, by south's); NTP set south's clock, and north, switched off at its timer
    a few seconds later, said it was closing: south judged the notice's time against its own
    new clock plus the old skew, refused it as played back and showed north forged, a siren
    for a gate that had stopped cleanly. A notice's time is judged against the peer's clock
    as its last answer gave it plus the monotonic time since."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    south = Gate(tmp_path, "gate-south", unset, [peer_entry("gate-north")])
    north_gate, _switch, sync = closing_pair(tmp_path, clock, monkeypatch, south)
    try:
        sync.poll()
        unset.advance(5)
        clock.advance(5)
        unset.set_wall(clock.now())  # NTP at south
        unset.is_synced = True
        assert north_gate.sync.farewell() == {"gate-south": 202}
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed" and peer["forged"] == 0
    finally:
        north_gate.close()
        south.close()


def test_a_peers_closed_hours_after_ntp_set_this_gates_clock_go_by_the_peers_clock(
    tmp_path, clock, monkeypatch
):
    """The south gate booted without network time (1970) at 21:50 and heard the north gate,
    switched off every night 22:00-06:00 by its timer; NTP set south's clock at 21:58. North
    went off at 22:00 and south showed it lost all night, an alarm every night after a power
    cut: its closed hours were read on south's new clock plus the skew told against 1970 (a
    time of day hours off). They go by north's clock as its last answer said it plus the
    monotonic time since."""
    from test_compound_gates import Switch

    clock.advance(11 * 3600 + 50 * 60)  # 21:50 in Shanghai
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    entry = peer_entry("gate-north") | {"closed_from": "22:00", "closed_until": "06:00"}
    south = Gate(tmp_path, "gate-south", unset, [entry])
    north_gate = Gate(tmp_path, "gate-north", clock)
    try:
        switch = Switch(north_gate)
        sync = south.peer_of(north_gate, monkeypatch, transport=httpx.MockTransport(switch))
        sync.poll()
        for gate_clock in (unset, clock):
            gate_clock.advance(480)
        unset.set_wall(clock.now())  # NTP at south: 21:58
        unset.is_synced = True
        switch.up = False  # north's timer at 22:00
        for gate_clock in (unset, clock):
            gate_clock.advance(3600)
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed"
    finally:
        north_gate.close()
        south.close()


def test_a_peer_saying_the_calendars_last_day_breaks_neither_health_nor_its_closed_hours(
    tmp_path, clock, monkeypatch
):
    """A host at the peer's address answering ``now`` on the calendar's last day: its clock
    now, a moment later, is past the calendar; the health report stays a report."""
    import json

    entry = peer_entry("gate-north") | {"closed_from": "22:00", "closed_until": "06:00"}
    south = Gate(tmp_path, "gate-south", clock, [entry])
    try:
        body = json.loads(page()) | {"now": "9999-12-31T15:59:30Z"}  # 23:59:30 in Shanghai
        mad = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
        monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", "kt_abcdef01_" + "a" * 43)
        from checkpoint.peers import PeerSync

        south.sync = PeerSync(south.core, south.config.compound, client=httpx.Client(transport=mad))
        south.sync.poll()
        clock.advance(200)  # its clock now: past the calendar's end in the site's zone
        [peer] = south.sync.status()  # was an OverflowError: the health report a 500
        assert peer["clock_skewed"] and peer["state"] in ("stale", "closed")
    finally:
        south.close()
