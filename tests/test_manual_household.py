"""A manual pass for a person without a pass (``subject=none``: an elderly resident who forgot
the paper pass, a child) was never held: the record named no household, so a
home-quarantined resident who said "I lost my pass" walked out on the guard's tap. The guard
may now name the person's dwelling (typed or picked from the compound's households): the pass
is then held by the rules a scanned pass of that household meets (quarantine, the outing
quota, a returnee under observation), and the record carries the household (its outing
counts). Named none, the form says that nothing can be checked and the record says so
(flag ``unchecked``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    close_core,
    decided,
    hidden_fields,
    login,
    make_app,
    make_core,
    nothing_recorded,
    post,
    refused_with,
    send,
)
from test_guard_holds import as_a_browser_sends, confirm_page_fields

from kiosk.config import KioskConfig
from kiosk.engine import NO_SUBJECT

HOUSEHOLD, RESIDENT = "3-402", "王建国"


def config(observation_blocks: str = "out", direction: str = "both") -> KioskConfig:
    return KioskConfig.model_validate(
        {
            "policy": {
                "quota": {"enabled": True, "exits": 1, "period_days": 2},
                "observation_blocks": observation_blocks,
            },
            "site": {"direction": direction},
        }  # fmt: skip
    )


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    c = make_core(data_dir, clock, monkeypatch, config())
    yield c
    close_core(c)


def nobody(client, csrf, **more):
    sent = {"decision": "pass", "subject": "none", "reason": "忘带通行证", "direction": "out"}
    return post(client, "/guard/manual", csrf, **(sent | more))


def quarantine(core) -> None:
    core.lists.add_quarantine(HOUSEHOLD, None, "2026-02-28", "2026-03-13", "root")


def observation(core) -> None:
    today = core.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    core.ledgers.observation.register(name=RESIDENT, household=HOUSEHOLD, phone="",
                                      origin="武汉", date_back=today, actor="root")  # fmt: skip


def test_a_quarantined_household_named_is_refused_until_confirmed_with_a_reason(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        quarantine(core)
        before = core.store.last_seq
        asked = nobody(client, csrf, household="３-４０２")  # typed full-width
        assert asked.status_code == 200 and core.store.last_seq == before
        assert 'id="confirm-confirm-quarantine"' in asked.text
        assert 'id="confirm-record-deny"' in asked.text
        again = confirm_page_fields(asked.text)
        assert again["subject"] == "none" and again["household"] == "３-４０２"
        with decided(client, core):
            done = as_a_browser_sends(client, asked.text, ("quarantine_reason", "送医"),
                                      ("confirm_quarantine", "1"))  # fmt: skip
        assert done.status_code == 303 and "err=" not in done.headers["location"]
        event = core.store.events()[-1]
    assert (event["decision"], event["household"]) == ("manual_pass", HOUSEHOLD)
    assert event["person"]["quarantine_reason"] == "送医"
    assert "quarantine" in event["flags"] and "unchecked" not in event["flags"]
    rows = [a for a in core.store.audits() if a["detail"].get("quarantine") == "confirmed"]
    assert [a["action"] for a in rows] == ["manual_pass"]


def test_a_household_named_coming_home_from_quarantine_is_no_exit(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        quarantine(core)
        with decided(client, core):
            done = nobody(client, csrf, household=HOUSEHOLD, direction="in")
        assert done.status_code == 303
        event = core.store.events()[-1]
    assert (event["direction"], event["household"]) == ("in", HOUSEHOLD)
    assert "quarantine" in event["flags"]


def test_a_household_named_is_held_for_its_used_up_quota_and_its_outing_counts(core):
    core.lists.set_household(HOUSEHOLD, "root")  # a dwelling the gate knows: not asked about
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        with decided(client, core):  # the household's one outing of the period
            assert nobody(client, csrf, household=HOUSEHOLD).status_code == 303
        first = core.store.events()[-1]
        assert first["household"] == HOUSEHOLD and first["flags"] == []
        asked = nobody(client, csrf, household=HOUSEHOLD)
        assert asked.status_code == 200 and core.store.last_seq == first["seq"]
        assert 'id="confirm-confirm-quota"' in asked.text
        with decided(client, core):
            done = as_a_browser_sends(client, asked.text, ("quota_reason", "急诊"),
                                      ("confirm_quota", "1"))  # fmt: skip
        assert done.status_code == 303
    assert core.store.events()[-1]["person"]["quota_reason"] == "急诊"


def test_a_household_with_a_returnee_blocked_is_asked_who_it_is(core):
    """The person is not named: a returnee of the household under observation, in a
    direction it stops, is shown on the page (said of the household, not of this person) and
    asked; confirmed, the record carries the flag ``observation``."""
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        observation(core)
        asked = nobody(client, csrf, household=HOUSEHOLD)
        assert asked.status_code == 200 and 'id="confirm-confirm-observation"' in asked.text
        assert f"户号 {HOUSEHOLD} 有正在居家健康观察的返回人员" in asked.text
        assert "该户有居家健康观察人员" in asked.text
        assert "此人正在" not in asked.text  # the registration's words, of a named person
        with decided(client, core):
            as_a_browser_sends(client, asked.text, ("observation_reason", "是其家属"),
                               ("confirm_observation", "1"))  # fmt: skip
        event = core.store.events()[-1]
    assert event["person"]["observation_reason"] == "是其家属"
    assert "observation" in event["flags"]


def test_a_returnee_the_rules_do_not_stop_is_flagged_as_for_a_scanned_pass(
    data_dir, clock, monkeypatch
):
    core = make_core(data_dir, clock, monkeypatch, config("none"))
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            observation(core)
            with decided(client, core):
                assert nobody(client, csrf, household=HOUSEHOLD).status_code == 303
            event = core.store.events()[-1]
    finally:
        close_core(core)
    assert event["household"] == HOUSEHOLD and "observation" in event["flags"]


def test_a_person_without_a_pass_is_asked_which_way_never_given_the_sites_default(core):
    """The live form's direction starts at "auto": for a person without a pass there is no
    passage to take the way from, and the site's default (``in``) let a quarantined resident
    out unheld, the record saying ``in`` and the outing not counted (rv30a, 2026-12-07). At a
    gate both ways the way must be said: refused, nothing recorded, told to choose; said,
    the quarantine is held."""
    quarantine(core)
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        page = client.get("/guard?lang=en").text
        assert "data-way-needed" in page  # guard.js asks before the form is sent
        for decision in ("pass", "deny"):
            refused = nobody(client, csrf, direction="", household=HOUSEHOLD, decision=decision)
            said = refused_with(client, refused) or ""
            assert said.startswith("Choose the way the person without a pass goes"), said
        assert nothing_recorded(core)
        asked = nobody(client, csrf, direction="out", household=HOUSEHOLD)
    assert asked.status_code == 200 and 'id="confirm-confirm-quarantine"' in asked.text
    assert nothing_recorded(core)


def test_at_a_gate_one_way_a_person_without_a_pass_goes_its_way(data_dir, clock, monkeypatch):
    """A gate that only lets people out: "auto" is its way (before, the site's
    ``default_direction``, ``in`` unless set, recorded an exit as a way in and held nothing)."""
    core = make_core(data_dir, clock, monkeypatch, config(direction="out"))
    try:
        quarantine(core)
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            assert "data-way-needed" not in client.get("/guard").text
            asked = nobody(client, csrf, direction="", household=HOUSEHOLD)
            assert asked.status_code == 200 and 'id="confirm-confirm-quarantine"' in asked.text
            with decided(client, core):
                done = nobody(client, csrf, direction="", reason="送医")
            assert done.status_code == 303 and "err=" not in done.headers["location"]
            event = core.store.events()[-1]
    finally:
        close_core(core)
    assert (event["decision"], event["direction"]) == ("manual_pass", "out")


def test_no_household_named_is_said_on_the_form_and_on_the_record(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        quarantine(core)
        page = client.get("/guard").text
        assert 'name="household"' in page
        assert "不填户号则无法核对任何限制" in page
        with decided(client, core):
            done = nobody(client, csrf)
        assert done.status_code == 303
        event = core.store.events()[-1]
        with decided(client, core):  # a deny checks nothing either way: no flag
            nobody(client, csrf, decision="deny")
        denied = core.store.events()[-1]
    assert event["household"] is None and "unchecked" in event["flags"]
    assert "unchecked" not in denied["flags"]


def test_the_engine_keeps_the_household_of_a_person_without_a_pass_only(core):
    """The core's rule, for every entry point: the household of a manual decision about
    nobody in the log is the event's; a pass naming none is flagged ``unchecked``; an
    evacuation is no person's passage (no flag, no household)."""
    engine = core.runner.engine
    with TestClient(make_app(core), base_url=BASE) as client:
        with decided(client, core):
            client.portal.call(lambda: engine.manual(
                "manual_pass", "alice", "忘带", "out", subject=NO_SUBJECT, household="３-４０２"
            ))  # fmt: skip
        named = core.store.events()[-1]
        with pytest.raises(ValueError, match="household"):
            engine.manual("manual_pass", "alice", "x", "out", household=HOUSEHOLD)  # "auto"
        with pytest.raises(ValueError, match="household"):
            engine.manual("manual_pass", "alice", "x", "out", subject=NO_SUBJECT,
                          household=HOUSEHOLD, evacuate=("fire", 5))  # fmt: skip
        with decided(client, core):
            client.portal.call(lambda: engine.manual(
                "manual_pass", "alice", "fire", "out", subject=NO_SUBJECT, evacuate=("fire", 5)
            ))  # fmt: skip
        evacuated = core.store.events()[-1]
    assert named["household"] == HOUSEHOLD and "unchecked" not in named["flags"]
    assert "unchecked" not in evacuated["flags"] and evacuated["household"] is None


def test_a_dwelling_off_the_map_is_asked_about_first(core):
    """A typo (``3-4-402`` for ``3-402``) would charge another household's quota and leave the
    real one's quarantine unasked: with a map loaded, a dwelling it lacks is asked about
    first, then held as named."""
    led = core.ledgers
    led.compound.apply(led.compound.plan_import(b"building,floor,household\n3,4,3-402\n", "m.csv"),
                       "root")  # fmt: skip
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        offered = client.get("/guard/api/households").json()["offered"]
        assert offered == ["3-402"]  # offered to pick (the page's datalist)
        quarantine(core)
        before = core.store.last_seq
        asked = nobody(client, csrf, household="3-4-402")
        assert asked.status_code == 200 and core.store.last_seq == before
        assert "户号 3-4-402 不在小区平面图上" in asked.text
        fields = confirm_page_fields(asked.text)
        assert fields["off_map"] == "3-4-402"
        with decided(client, core):
            done = post(client, "/guard/manual", csrf, **fields)
        assert done.status_code == 303
        assert core.store.events()[-1]["household"] == "3-4-402"
        # the audit row says it was confirmed off the map, as a confirmed hold is said
        assert core.store.audits()[-1]["detail"].get("off_map") == "confirmed"
        on_map = nobody(client, csrf, household="3-402")  # no question: held at once
        assert on_map.status_code == 200 and 'id="confirm-confirm-quarantine"' in on_map.text


def test_at_an_out_only_gate_an_evacuation_and_a_registration_go_out(data_dir, clock, monkeypatch):
    """Starting an evacuation and a registration posted with no direction recorded the
    site's ``default_direction``, "in", at a gate that only lets people out (rv30f, read in
    the code): the gate's own way now, as the manual pass's (``SiteConfig.guard_way``)."""
    core = make_core(data_dir, clock, monkeypatch, config(direction="out"))
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            with decided(client, core):
                post(client, "/guard/register/person", csrf, name="李雷", unit="5-101",
                     reason="看望母亲", temp_c="36.6")  # fmt: skip
            registered = core.store.events()[-1]
            drawn = hidden_fields(client.get("/guard/health").text, "evac-start-form")
            fire = drawn | {"cause": "fire", "minutes": "15", "reason": "smoke", "confirm": "yes"}
            with decided(client, core):
                send(client, "/guard/evacuation", fire)
            evacuated = core.store.events()[-1]
    finally:
        close_core(core)
    assert (registered["kind"], registered["direction"]) == ("registration", "out")
    assert (evacuated["decision"], evacuated["direction"]) == ("manual_pass", "out")
    assert "evacuation" in evacuated["flags"]
