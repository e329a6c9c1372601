"""What a gate decides alone from lists it knows to be stale, through the engine in virtual
time: a quarantine that ended after the gate last heard from the office goes to the guard."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.lists import sign_bundle
from tests.test_engine import Rig

SITE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def make_rig(clock, tmp_path):
    made: list[Rig] = []

    def make(**overrides) -> Rig:
        folder = tmp_path / f"r{len(made)}"
        folder.mkdir()
        made.append(Rig(clock, folder, **overrides))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def rig(make_rig):
    return make_rig()


def _today(rig: Rig) -> date:
    return rig.clock.now().astimezone(SITE).date()


def _office_sends(rig: Rig, version: int, quarantine: list[dict]) -> None:
    """The office's list sync applies a bundle (signed with a key the gate trusts)."""
    payload = {
        "format": "kiosk-lists/1",
        "version": version,
        "issued_at": rig.clock.now().isoformat(),
        "quarantine": quarantine,
    }
    result = rig.lists.import_bundle(sign_bundle(rig.key, payload), rig.trust, "fleet")
    assert result.applied


def _quarantine(household: str, start: date, until: date) -> dict:
    return {"household": household, "from": start.isoformat(), "until": until.isoformat()}


def _goes_out(rig: Rig) -> dict:
    rig.show(rig.pass_text(household="A-101"), "out")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    return rig.decisions()[-1]


def test_a_quarantine_that_ended_while_the_gate_was_offline_goes_to_the_guard(rig):
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)  # offline: no sync for three days (stale after 48 h)
    decision = _goes_out(rig)
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["quarantine_unconfirmed"]
    assert decision["needs_guard"] is True
    assert ("guard_needed", "raised") in rig.alarms()
    prompts = [m.get("prompt") for m in rig.messages if m["type"] == "state"]
    assert "see_guard" in prompts
    event = rig.events()[-1]
    assert event["reasons"] == ["quarantine_unconfirmed"]
    assert "lists_stale" in event["flags"]


def test_with_fresh_lists_a_quarantine_that_ended_lets_the_household_out(rig):
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    rig.lists.confirm(rig.clock.now())  # the office said this morning: nothing changed
    decision = _goes_out(rig)
    assert decision["decision"] == "pass"
    assert decision["reasons"] == ["ok"]


def test_a_quarantine_that_ended_before_the_last_sync_is_over_even_on_stale_lists(rig):
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced - timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    decision = _goes_out(rig)
    assert decision["decision"] == "pass"


def test_a_guard_edit_on_an_offline_gate_is_no_sync_with_the_office(rig):
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    rig.lists.revoke("0123456789ab", "lost card", actor="guard-zhou")  # stamps the lists now
    decision = _goes_out(rig)
    assert decision["reasons"] == ["quarantine_unconfirmed"]


def test_coming_home_through_the_lane_after_an_unconfirmed_end_passes(make_rig):
    rig = make_rig(site={"direction": "in"})
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    rig.show(rig.pass_text(household="A-101"), "in")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    assert rig.decisions()[-1]["decision"] == "pass"


def test_coming_home_by_the_screen_button_after_an_unconfirmed_end_goes_to_the_guard(rig):
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    rig.show(rig.pass_text(household="A-101"), "in")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    decision = rig.decisions()[-1]
    assert decision["reasons"] == ["quarantine_unconfirmed"]
    assert decision["needs_guard"] is True


def test_the_kiosk_screen_says_in_plain_words_that_the_guard_will_check(rig):
    from ui.views import result_view

    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    decision = _goes_out(rig)
    result, next_step = result_view(decision, "en")
    assert result["kind"] == "deny"
    # The screen faces the queue: the guard checks, the quarantine is not named there.
    assert result["reasons"] == ["The guard must check this pass first"]
    assert next_step == "Please wait here: the guard will check with you"
    zh, _ = result_view(decision, "zh-CN")
    assert zh["reasons"] == ["此通行证需保安核实后才能通行"]


def test_a_quarantine_starting_after_an_unset_clocks_date_goes_to_the_guard(rig):
    """A Pi booted without network reads its log's last synchronised time (or 1970): the
    quarantine the office set from tomorrow may have begun days ago."""
    today = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", today + timedelta(days=1), today + timedelta(days=14))]
    )
    rig.clock.is_synced = False
    decision = _goes_out(rig)
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["quarantine_unconfirmed"]
    assert decision["needs_guard"] is True
    assert "clock_not_set" in rig.events()[-1]["flags"]
    assert ("guard_needed", "raised") in rig.alarms()


def test_a_quarantine_starting_tomorrow_on_a_set_clock_is_not_yet_in_force(rig):
    today = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", today + timedelta(days=1), today + timedelta(days=14))]
    )
    assert _goes_out(rig)["decision"] == "pass"


def _revokes(rig: Rig, version: int, pass_id: str) -> None:
    payload = {
        "format": "kiosk-lists/1",
        "version": version,
        "issued_at": rig.clock.now().isoformat(),
        "revocations": [{"pass_id": pass_id, "reason": "lost"}],
    }
    assert rig.lists.import_bundle(sign_bundle(rig.key, payload), rig.trust, "fleet").applied


def _pass_out(rig: Rig, household: str) -> tuple[str, int]:
    from kiosk.passes import issue_pass

    text, pass_ = issue_pass(rig.key, household, "Li Wei", days=30, now=rig.clock.now())
    rig.show(text, "out")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    event = rig.events()[-1]
    assert event["decision"] == "pass"
    return pass_.pass_id, event["seq"]


def test_a_pass_the_office_revoked_that_passed_before_the_gate_heard_raises_a_guard_card(rig):
    from kiosk.alarms import AlarmDesk

    _office_sends(rig, 1, [])
    rig.clock.advance(3600)
    used, seq = _pass_out(rig, "A-101")  # the office revoked it meanwhile; the gate was offline
    rig.clock.advance(2 * 86400)
    _revokes(rig, 2, used)
    desk = AlarmDesk(rig.log, rig.clock, lookback_h=72)
    [card] = [a for a in desk.open_alarms([]) if a.detail == "revoked_pass_passed"]
    assert (card.kind, card.seq, card.household, card.direction) == ("guard", seq, "A-101", "out")
    from ui.guard.display import alarm_view

    view = alarm_view(card, "en", SITE, frozenset({"household"}))
    assert view["title"] == "Guard needed"
    assert view["detail"].startswith("The office revoked this pass, but it passed here")
    # after a restart the card is still open, until a guard closes it
    again = AlarmDesk(rig.log, rig.clock, lookback_h=72)
    [card] = [a for a in again.open_alarms([]) if a.detail == "revoked_pass_passed"]
    again.close(
        [card.key],
        "guard-zhou",
        [],
        record=lambda closed: rig.log.audit(
            "guard-zhou", "alarm_ack", {"keys": [a.key for a in closed], "resolution": "handled"}
        ),
    )
    third = AlarmDesk(rig.log, rig.clock, lookback_h=72)
    assert [a for a in third.open_alarms([]) if a.detail == "revoked_pass_passed"] == []


def test_a_pass_revoked_after_the_gate_last_heard_but_used_before_raises_nothing(rig):
    from kiosk.alarms import AlarmDesk

    used, _seq = _pass_out(rig, "A-101")
    rig.clock.advance(3600)
    _office_sends(rig, 1, [])  # the last sync came after the passage: it was not revoked then
    rig.clock.advance(3600)
    _revokes(rig, 2, used)
    desk = AlarmDesk(rig.log, rig.clock, lookback_h=72)
    assert [a for a in desk.open_alarms([]) if a.detail == "revoked_pass_passed"] == []


def test_a_new_pass_on_an_unset_clock_goes_to_the_guard_not_away(rig):
    """Issued at the office this morning; the gate, booted without network, reads its log's
    last synchronised time, a day behind: "not valid yet" is the clock's doing, not the pass's."""
    from ui.views import result_view

    rig.clock.is_synced = False
    rig.show(rig.pass_text(household="A-101", start_days=1.0), "out")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    decision = rig.decisions()[-1]
    assert decision["reasons"] == ["pass_not_yet_valid"]
    assert decision["needs_guard"] is True
    assert "clock_not_set" in decision["flags"]
    assert ("guard_needed", "raised") in rig.alarms()
    _result, next_step = result_view(decision, "en")
    assert next_step == "This gate's clock is not set: please wait, the guard will check your pass"


def test_a_pass_not_yet_valid_on_a_set_clock_is_a_plain_deny(rig):
    rig.show(rig.pass_text(household="A-101", start_days=1.0), "out")
    rig.emulator.person_arrives(36.6)
    rig.run(8)
    decision = rig.decisions()[-1]
    assert (decision["reasons"], decision["needs_guard"]) == (["pass_not_yet_valid"], False)


def test_a_guard_edit_does_not_make_an_offline_gates_lists_look_fresh(rig):
    """The health report and both screens said the office's lists were current an hour after
    a guard revoked a card on a gate that had not heard from the office for three days."""
    import httpx

    from office.listsync import ListSync

    _office_sends(rig, 1, [])
    rig.clock.advance(3 * 86400)
    rig.lists.revoke("0123456789ab", "lost card", actor="guard-zhou")
    rig.clock.advance(3600)
    shown = rig.lists.current.freshness.to_dict(rig.clock.now(), 48)
    assert shown["stale"] is True
    assert shown["age_s"] == 3 * 86400 + 3600
    # the list sync's status after a restart, before its first contact, says the same
    offline = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(503)))
    sync = ListSync(rig.lists, rig.trust, "http://office/lists", rig.clock, client=offline)
    sync.stale_after_h = 48
    assert sync.status()["stale"] is True
    sync.stop()


def test_lists_kept_by_the_guard_alone_are_as_fresh_as_their_last_change(rig):
    rig.clock.advance(3 * 86400)
    rig.lists.revoke("0123456789ab", "lost card", actor="guard-zhou")
    assert rig.lists.current.freshness.to_dict(rig.clock.now(), 48)["stale"] is False


def test_the_referral_card_says_why_and_is_there_for_a_console_opened_later(rig):
    """The guard_needed bus message reaches only a console open at that moment, and its card
    says only "Guard needed": derived from the event, the card says why, after a restart too."""
    from kiosk.alarms import AlarmDesk
    from ui.guard.display import alarm_view

    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(3 * 86400)
    seq = _goes_out(rig)["seq"]
    desk = AlarmDesk(rig.log, rig.clock)
    [card] = [a for a in desk.open_alarms([]) if a.seq == seq]
    assert (card.kind, card.household, card.direction) == ("guard", "A-101", "out")
    view = alarm_view(card, "en", SITE, frozenset({"household"}))
    assert view["detail"] == "Quarantine not confirmed over: lists or clock out of date"


def test_a_gate_keeping_its_lists_by_hand_does_not_refer_an_ended_quarantine_for_ever(rig):
    """No office sends this gate lists: nothing it never received can have extended the
    quarantine the guard entered, and nothing but an edit would ever make its lists fresh."""
    today = _today(rig)
    rig.lists.add_quarantine("A-101", None, today - timedelta(days=10), today, actor="guard-zhou")
    rig.clock.advance(5 * 86400)
    assert rig.lists.current.freshness.is_stale(rig.clock.now(), 48)
    assert _goes_out(rig)["decision"] == "pass"


def test_a_gate_without_ntp_but_with_the_office_decides_by_the_offices_time(tmp_path, monkeypatch):
    """A compound's LAN reaches the office but not NTP: the gate came back at its card image's
    date, its log's newest synchronised stamp three days old. The office's signed bundle says
    it was issued this morning: a time that has passed, which the gate's clock reads no earlier
    than, before and after a restart. Its quarantine from yesterday holds, a pass issued this
    morning passes, with nobody called."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from checkpoint import app
    from kiosk.clock import FakeClock
    from kiosk.config import parse_config
    from kiosk.passes import public_key_pem
    from kiosk.store import EventDraft
    from tests.test_clock_floor import _decide

    morning = FakeClock().now()
    office = Ed25519PrivateKey.generate()
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "office.pub").write_bytes(public_key_pem(office.public_key()))
    config = parse_config(
        {
            "site": {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai"},
            "policy": {"mode": "pass_only", "hours": {"enabled": False}},
        }
    )
    before = app.build_core(config, tmp_path, FakeClock(start=morning - timedelta(days=3)))
    before.store.append(EventDraft(direction="in", decision="pass", household="9-909"))
    before.close()

    image_date = FakeClock(start=morning - timedelta(days=10), is_synced=False)
    monkeypatch.setattr(app, "system_clock", lambda **kw: image_date)
    core = app.build_core(config, tmp_path)
    today = morning.astimezone(SITE).date()
    payload = {
        "format": "kiosk-lists/1",
        "version": 1,
        "issued_at": morning.isoformat(),
        "quarantine": [_quarantine("5-505", today - timedelta(days=1), today + timedelta(days=13))],
    }
    try:
        assert core.lists.import_bundle(sign_bundle(office, payload), core.trust, "fleet").applied
        assert core.clock.now() >= morning
        home = _decide(core, image_date, office, household="5-505", days=30, now=morning)
        assert home["reasons"] == ["quarantined"]
        new = _decide(core, image_date, office, household="2-202", days=30, now=morning)
        assert (new["decision"], new["needs_guard"]) == ("pass", False)
    finally:
        core.close()
    again = app.build_core(config, tmp_path)  # restarted, still without NTP
    try:
        assert again.clock.now() >= morning
    finally:
        again.close()


def test_a_quarantine_ending_on_the_day_of_the_last_sync_goes_to_the_guard(rig):
    """The office's list of that morning said "until today": one it sent later, which this
    gate never got, may have extended it."""
    synced = _today(rig)
    _office_sends(rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced)])
    rig.clock.advance(3 * 86400)
    decision = _goes_out(rig)
    assert decision["reasons"] == ["quarantine_unconfirmed"]
    assert "lists_stale" in rig.events()[-1]["flags"]


def test_a_quarantine_starting_tomorrow_on_stale_lists_is_not_yet_in_force(rig):
    """Not over, not begun: nothing for a missed list to have extended, so no referral."""
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced + timedelta(days=4), synced + timedelta(days=14))]
    )
    rig.clock.advance(3 * 86400)  # stale; the quarantine starts tomorrow
    assert _today(rig) + timedelta(days=1) == synced + timedelta(days=4)
    assert _goes_out(rig)["decision"] == "pass"


def test_another_persons_ended_quarantine_on_stale_lists_does_not_hold_this_one(rig):
    """Zhang San of A-101 was quarantined alone; Li Wei of the same household goes out."""
    synced = _today(rig)
    entry = _quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))
    _office_sends(rig, 1, [{**entry, "holder": "Zhang San"}])
    rig.clock.advance(3 * 86400)
    assert _goes_out(rig)["decision"] == "pass"


def test_on_lists_heard_within_lists_stale_after_h_a_quarantine_that_ended_since_is_over(rig):
    """Last heard 36 hours ago (stale after 48): the quarantine, over yesterday, ended after
    that sync, but the lists are fresh: the gate decides alone, and the household goes out."""
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=10), synced + timedelta(days=1))]
    )
    rig.clock.advance(36 * 3600)
    assert _today(rig) == synced + timedelta(days=2)  # 04:30 in Shanghai, two days on
    decision = _goes_out(rig)
    assert (decision["decision"], decision["reasons"]) == ("pass", ["ok"])


def test_lists_stamped_after_a_clock_stepped_back_confirm_no_quarantines_end(rig):
    """The clock stepped back two days after the office's sync (a Pi without an RTC): the
    lists' stamp lies ahead, their age is unknown (stale), and nothing says when they were
    last confirmed. A quarantine over by the clock's day goes to the guard, as on lists
    never confirmed, not taken as confirmed on the stamp's day."""
    synced = _today(rig)
    _office_sends(
        rig, 1, [_quarantine("A-101", synced - timedelta(days=12), synced - timedelta(days=3))]
    )
    rig.clock.set_wall(rig.clock.now() - timedelta(days=2))
    assert rig.lists.current.freshness.stamp_ahead(rig.clock.now())
    decision = _goes_out(rig)
    assert decision["reasons"] == ["quarantine_unconfirmed"]
    assert "lists_stale" in rig.events()[-1]["flags"]
