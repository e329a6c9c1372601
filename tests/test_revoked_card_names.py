"""A revoked card's deny names whom the card names, unless a forget revoked it.

For a few hours on 2026-12-07 (bf2e6bfe) every ``pass_revoked`` deny recorded the pass id
alone: a quarantined resident's lost card, found again and shown going out, raised a breach
alarm naming nobody, and a guard letting them out anyway was asked no hold and the exit counted
against no household. Only a forget's revocation (source ``forget``) keeps the name out now;
a guard's manual pass about such a deny (naming no household) asks the guard for the dwelling.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, close_core, decided, login, make_app, make_core, settle_idle
from test_clock_floor import MORNING, _config, _decide, key  # noqa: F401 (a fixture)
from test_guard_holds import CONFIG, HOUSEHOLD, RESIDENT, manual, quarantine, quota

from checkpoint import app
from kiosk.alarms import alarm_from_event
from kiosk.clock import FakeClock
from kiosk.config import KioskConfig
from kiosk.devices import CodeRead
from kiosk.engine import ManualSubject, unknown_person
from kiosk.passes import issue_pass
from kiosk.people import Person, forget


def _events(core):
    cur = core.store.reader().execute("SELECT * FROM events WHERE purged_at IS NULL")
    return [dict(zip([c[0] for c in cur.description], row, strict=True)) for row in cur]


def test_a_quarantined_residents_lost_card_raises_an_alarm_naming_them(tmp_path, key):  # noqa: F811
    clock = FakeClock(start=MORNING)
    core = app.build_core(_config(), tmp_path, clock)
    try:
        text, card = issue_pass(key, "5-505", "Zhou Ping", days=30, now=MORNING)
        until = (MORNING + timedelta(days=13)).date()
        core.lists.add_quarantine("5-505", None, (MORNING - timedelta(days=1)).date(), until, "z")
        core.lists.revoke(card.pass_id, "reported stolen", "zhou")
        clock.advance(60)
        assert "pass_revoked" in _decide(core, clock, key, text=text)["reasons"]
        [event] = _events(core)
        assert (event["household"], event["holder"]) == ("5-505", "Zhou Ping")
        alarm = alarm_from_event(event)
        assert alarm is not None and (alarm.household, alarm.holder) == ("5-505", "Zhou Ping")
    finally:
        core.close()


def test_a_forget_marks_a_card_a_guard_had_revoked_before(tmp_path, key):  # noqa: F811
    """Her lost card voided by a guard, then she is forgotten: the card shown again still
    records no name (the guard's row is the forget's now)."""
    clock = FakeClock(start=MORNING)
    core = app.build_core(_config(), tmp_path, clock)
    try:
        text, card = issue_pass(key, "2-202", "Li Wei", days=30, now=MORNING)
        assert _decide(core, clock, key, text=text)["decision"] == "pass"
        core.lists.revoke(card.pass_id, "reported lost", "root")
        forget(core.store, Person.of(name="Li Wei", household="2-202"), clock.now(),
               actor="root", tz="Asia/Shanghai")  # fmt: skip
        core.lists.reload_if_changed()
        clock.advance(120)
        assert _decide(core, clock, key, text=text)["reasons"] == ["pass_revoked"]
        [event] = _events(core)
        assert (event["pass_id"], event["household"], event["holder"]) == (card.pass_id, None, None)
    finally:
        core.close()


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    """The guard holds' core, its kiosk reading passes only (a card decides at once)."""
    config = CONFIG | {"policy": CONFIG["policy"] | {"mode": "pass_only"}}
    c = make_core(data_dir, clock, monkeypatch, KioskConfig.model_validate(config))
    c.lists.set_household(HOUSEHOLD, "root")  # a dwelling the gate knows: not asked about
    yield c
    close_core(c)


@pytest.mark.parametrize("held", [quarantine, quota], ids=["quarantine", "quota"])
def test_a_pass_over_a_revoked_cards_deny_asks_the_households_hold(core, clock, held):
    text, card = issue_pass(
        core.issuer_key, HOUSEHOLD, RESIDENT, days=30, now=clock.now() - timedelta(days=2)
    )
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        held(core, client, csrf)
        clock.advance(10)
        settle_idle(client, core)
        core.lists.revoke(card.pass_id, "reported lost", "root")
        clock.advance(10)
        settle_idle(client, core)
        with decided(client, core):
            engine = core.runner.engine
            client.portal.call(engine.on_code, CodeRead(text, "test", clock.monotonic_ns()), "out")
        denied = core.store.events()[-1]
        assert "pass_revoked" in denied["reasons"] and denied["household"] == HOUSEHOLD
        clock.advance(10)
        settle_idle(client, core)
        page = manual(client, csrf, denied["seq"], direction="out")
        assert page.status_code == 200
        assert f'id="confirm-confirm-{held.__name__}"' in page.text


def test_a_passage_with_a_pass_id_but_no_household_is_an_unknown_person():
    """A forgotten resident's card: its deny keeps the pass id alone; the guard names the
    dwelling, so the household's holds are looked up (before, the pass id alone made it
    "known", and a pass over it looked nothing up)."""
    assert unknown_person(ManualSubject(seq=1, pass_id="p1"))
    assert not unknown_person(ManualSubject(seq=1, pass_id="p1", household="5-101"))
    assert not unknown_person(ManualSubject(seq=1, pass_id="p1", holder="Li Wei"))
