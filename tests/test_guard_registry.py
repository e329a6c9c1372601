"""Issue 17 item 9: registration at the guard console on the real core. A person without a
phone, a refused registration that keeps its fields, vehicles with every occupant's
temperature and the plate checked against the resident-vehicle list, earlier visitors found
by name or phone suffix (masked per role)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    ADMIN_PW,
    BASE,
    add_event,
    decided,
    login,
    make_app,
    nothing_recorded,
    post,
)

from kiosk import queries, vehicles
from kiosk.vehicles import VehicleList


def resident_cars(guard_core, csv_text: str) -> None:
    guard_core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(guard_core.store, guard_core.clock)
    cars.apply(cars.plan_import(csv_text.encode(), "cars.csv"), "admin")


def person(guard_client, csrf, **fields):
    data = {"name": "王秀英", "unit": "3-402", "reason": "看望母亲"}
    return post(guard_client, "/guard/register/person", csrf, **(data | fields))


def vehicle(guard_client, csrf, **fields):
    data = {"plate": "京A12345", "driver": "Zhao Gang", "driver_temp": "36.4", "reason": "搬家"}
    return post(guard_client, "/guard/register/vehicle", csrf, **(data | fields))


def test_a_person_without_a_phone_is_registered_without_one(guard_client, guard_core):
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        response = person(guard_client, csrf, phone="", temp_c="36.5")
    assert response.status_code == 303
    (event,) = guard_core.store.events()
    assert event["kind"] == "registration" and event["decision"] == "manual_pass"
    assert event["person"]["name"] == "王秀英" and "phone" not in event["person"]


def test_a_phone_without_digits_is_refused_with_the_form_kept(guard_client, guard_core):
    csrf = login(guard_client)
    response = person(guard_client, csrf, phone="none", temp_c="36.5")
    assert response.status_code == 400
    assert 'value="王秀英"' in response.text and 'value="看望母亲"' in response.text
    assert nothing_recorded(guard_core)


def test_a_fever_refusal_keeps_the_fields_and_its_button_records_a_deny(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"name": "李雷", "unit": "1-101", "reason": "送货", "temp_c": "38.3", "direction": "in"}
    refused = post(guard_client, "/guard/register/person", csrf, **form, decision="pass")
    assert refused.status_code == 400 and nothing_recorded(guard_core)
    text = refused.text
    assert "38.3" in text and "登记为禁止通行" in text and "“拒绝”" not in text
    for value in form.values():
        assert f'value="{value}"' in text
    # The message names the button the page shows: pressing it records the refusal.
    assert 'id="person-record-deny"' in text and 'name="record_deny"' in text
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/person", csrf, **form, decision="pass", record_deny="1")
    (event,) = guard_core.store.events()
    assert event["decision"] == "manual_deny" and event["temp_c"] == 38.3
    audit = [a for a in guard_core.store.audits() if a["action"].startswith("register_person")]
    assert [a["action"] for a in audit] == ["register_person_failed", "register_person"]
    assert audit[0]["detail"]["refused"] == "reg.fever_refused"


def test_a_feverish_passenger_refuses_the_vehicle_and_is_named(guard_client, guard_core):
    csrf = login(guard_client)
    response = vehicle(
        guard_client, csrf, p1_name="赵敏", p1_temp="38.1", p2_name="赵强", p2_temp="36.6"
    )
    assert response.status_code == 400 and nothing_recorded(guard_core)
    assert (
        "赵敏 38.1 °C" in response.text
        and "赵强 36.6" not in response.text.split("flash err")[1][:200]
    )
    assert 'value="赵敏"' in response.text and 'value="38.1"' in response.text
    with decided(guard_client, guard_core):
        vehicle(guard_client, csrf, p1_name="赵敏", p1_temp="38.1", record_deny="1")
    (event,) = guard_core.store.events()
    assert event["decision"] == "manual_deny" and event["temp_c"] == 38.1


def test_the_engine_refuses_a_feverish_vehicle_as_a_pass_too(guard_core):
    from kiosk.engine import FeverRefused

    with pytest.raises(FeverRefused):
        guard_core.runner.engine.manual(
            "manual_pass", "alice", "搬家", "in", {"plate": "京A1"}, kind="vehicle", temp_c=38.0
        )
    assert nothing_recorded(guard_core)


def test_an_implausible_occupant_temperature_names_the_range(guard_client, guard_core):
    csrf = login(guard_client)
    response = vehicle(guard_client, csrf, p1_name="赵敏", p1_temp="3.66")
    assert response.status_code == 400 and nothing_recorded(guard_core)
    assert "34" in response.text and "43" in response.text


def check_plate(client, csrf, plate):
    """The registration form's plate check: a POST, so the plate is never in a URL."""
    return post(client, "/guard/community/plate", csrf, plate=plate)


def test_the_plate_is_checked_against_the_resident_vehicle_list(guard_client, guard_core):
    resident_cars(guard_core, "plate,household\n京A12345,3-402\n")
    csrf = login(guard_client)
    assert check_plate(guard_client, csrf, "京a·12345").json() == {
        "listed": True,
        "known": True,
        "household": "3-402",
    }
    assert check_plate(guard_client, csrf, "沪B99999").json()["known"] is False
    with decided(guard_client, guard_core):
        vehicle(guard_client, csrf)
    with decided(guard_client, guard_core):
        vehicle(guard_client, csrf, plate="沪B99999", driver="钱七")
    resident, stranger = guard_core.store.events()
    assert resident["person"]["plate_check"] == "resident"
    assert resident["person"]["resident_of"] == "3-402"
    assert stranger["person"]["plate_check"] == "unknown"
    assert "resident_of" not in stranger["person"]
    page = guard_client.get("/guard/register").text
    assert "非本小区登记车辆" in page and "本小区车辆（户号 3-402）" in page
    assert "Zhao Gang 36.4 °C" in page


def test_without_a_vehicle_list_a_plate_is_not_called_unknown(guard_client, guard_core):
    csrf = login(guard_client)
    assert check_plate(guard_client, csrf, "京A12345").json() == {
        "listed": False,
        "known": False,
        "household": None,
    }


def test_the_plate_check_needs_a_session_and_the_csrf_token(guard_client):
    response = guard_client.post(
        "/guard/community/plate", data={"plate": "京A12345"}, headers={"Origin": BASE}
    )
    assert response.status_code == 401
    login(guard_client)
    response = guard_client.post(
        "/guard/community/plate", data={"plate": "京A12345"}, headers={"Origin": BASE}
    )
    assert response.status_code == 403


def test_a_plate_is_never_looked_up_in_a_url(guard_client, guard_core):
    """A plate in a query string lands in browser history and any proxy's access log: the
    GET variant the form used is gone, and the page's script posts it."""
    resident_cars(guard_core, "plate,household\n京A12345,3-402\n")
    login(guard_client)
    response = guard_client.get("/guard/api/plate", params={"plate": "京A12345"})
    assert response.status_code in (404, 405) and "3-402" not in response.text
    script = guard_client.get("/static/guard.js").text
    assert "/guard/api/plate" not in script and "/guard/community/plate" in script


def test_the_plate_check_answers_the_household_as_the_viewers_role_may_see_it(
    guard_client, guard_core, monkeypatch
):
    """The answer is masked by the console's role rules (``mask_record``), like every other
    household the console shows: a role that may not see households gets ``**02``."""
    from ui.guard.community import common

    resident_cars(guard_core, "plate,household\n京A12345,3-402\n")
    csrf = login(guard_client)
    assert check_plate(guard_client, csrf, "京A12345").json()["household"] == "3-402"
    monkeypatch.setattr(common, "role", lambda g, session: "office")
    answer = check_plate(guard_client, csrf, "京A12345").json()
    assert answer["known"] is True and answer["household"] == "***02"


def registration(guard_core, name, phone, **more):
    person = {"name": name, "phone": phone, "unit": "3-402", "note": "看望母亲"} | more
    return add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        operator="alice",
        kind="registration",
        person=person,
    )


def test_past_visitors_by_name_or_phone_suffix_newest_once(guard_core):
    registration(guard_core, "王秀英", "13800138000")
    registration(guard_core, "王秀英", "13800138000", unit="5-101")
    registration(guard_core, "李雷", "139 0013 9000")
    registration(guard_core, "100%_x", "13700137000")
    by_name = queries.past_visitors(guard_core.store, "秀英")
    assert [e["person"]["unit"] for e in by_name] == ["5-101"]  # the latest, once
    assert [e["person"]["name"] for e in queries.past_visitors(guard_core.store, "9000")] == [
        "李雷"
    ]
    assert queries.past_visitors(guard_core.store, "%")[0]["person"]["name"] == "100%_x"
    assert queries.past_visitors(guard_core.store, "_")[0]["person"]["name"] == "100%_x"
    assert queries.past_visitors(guard_core.store, "  ") == []
    assert queries.past_visitors(guard_core.store, "张") == []


def test_finding_an_earlier_visitor_masks_the_phone_for_a_guard_and_copies_it(
    guard_client, guard_core, clock
):
    registration(guard_core, "王秀英", "13800138000", id_number="110101199003071234")
    clock.advance(3600)  # she visited an hour ago
    csrf = login(guard_client)
    page = post(guard_client, "/guard/register/search", csrf, q="8000").text
    assert "王秀英" in page and "138****8000" in page and "13800138000" not in page
    assert "110101199003071234" not in page
    with decided(guard_client, guard_core):
        response = person(guard_client, csrf, temp_c="36.6", copy_from="1")
    assert response.status_code == 303
    event = guard_core.store.events()[-1]
    assert event["person"]["phone"] == "13800138000"
    assert event["person"]["id_number"] == "110101199003071234"


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        ("\u246c8000", "\u246d8000"),
        ("\uff11\uff13\uff18\uff10\uff10\uff10", "\uff11\uff14\uff18\uff10\uff10\uff10"),
    ],
)  # circled 13 and 14 (each folds to two digits); full-width 138000 and 148000
def test_a_guard_reads_no_hidden_phone_digit_through_the_visitor_search(
    guard_client, guard_core, right, wrong
):
    """Before: a guard, who sees 138****8000, is cut to the last 4 digits of a number
    searched, but the cut was decided on the text as typed while the search folds it first:
    "\u246c8000" (circled 13) is no digit string, and folded to 138000 it found the visitor,
    "\u246d8000" (148000) did not, so each guess read a hidden digit back. Both find them."""
    registration(guard_core, "王秀英", "13800138000")
    csrf = login(guard_client)
    for q in (right, wrong):
        page = post(guard_client, "/guard/register/search", csrf, q=q).text
        assert 'id="found"' in page and 'id="found-none"' not in page, q


def test_copying_from_something_that_is_no_registration_is_refused(guard_client, guard_core):
    add_event(guard_core)  # a kiosk passage, seq 1
    csrf = login(guard_client)
    response = person(guard_client, csrf, temp_c="36.6", copy_from="1")
    assert response.status_code == 400 and guard_core.store.last_seq == 1


def test_an_admin_sees_the_phone_of_an_earlier_visitor(guard_core):
    registration(guard_core, "王秀英", "13800138000")
    with TestClient(make_app(guard_core), base_url=BASE) as admin:
        csrf = login(admin, "root", ADMIN_PW)
        assert "13800138000" in post(admin, "/guard/register/search", csrf, q="王").text


def test_the_search_text_is_bounded(guard_client):
    csrf = login(guard_client)
    # Cut to 40 characters before it is used (an edited form: the page, not a JSON 422).
    page = post(guard_client, "/guard/register/search", csrf, q="x" * 41)
    assert page.status_code == 200 and 'value="' + "x" * 40 + '"' in page.text


OUT = {"name": "王秀英", "unit": "3-402", "reason": "买药", "temp_c": "36.5", "direction": "out"}


def quarantined(guard_core, household="3-402"):
    guard_core.lists.add_quarantine(household, None, "2026-02-28", "2026-03-13", "root")


def test_a_quarantined_households_member_is_not_registered_out_without_a_confirmation(
    guard_client, guard_core
):
    """A guard registered a member of a quarantined household going out by hand: the event
    was committed as manual_pass (the gate opened), nothing told the guard of the quarantine
    and nothing on the record said so. Now the form comes back with the warning, a required
    reason and the button that confirms; the guard may still let them out."""
    quarantined(guard_core, "３-402")  # the list spells it in full width
    csrf = login(guard_client)
    refused = person(guard_client, csrf, **OUT, decision="pass")
    assert refused.status_code == 400 and nothing_recorded(guard_core)
    text = refused.text
    assert "居家隔离" in text and 'id="person-confirm-quarantine"' in text
    assert 'name="quarantine_reason"' in text and 'id="person-record-deny"' in text
    for value in OUT.values():
        assert f'value="{value}"' in text  # the form as it was typed
    no_reason = person(guard_client, csrf, **OUT, decision="pass", confirm_quarantine="1")
    assert no_reason.status_code == 400 and nothing_recorded(guard_core)
    with decided(guard_client, guard_core):
        done = person(guard_client, csrf, **OUT, decision="pass", confirm_quarantine="1",
                      quarantine_reason="送医：社区医生陪同")  # fmt: skip
    assert done.status_code == 303
    (event,) = guard_core.store.events()
    assert event["decision"] == "manual_pass" and event["kind"] == "registration"
    assert event["person"]["quarantine_reason"] == "送医：社区医生陪同"
    audit = [a for a in guard_core.store.audits() if a["action"].startswith("register_person")]
    assert [a["action"] for a in audit] == ["register_person_failed"] * 2 + ["register_person"]
    assert audit[0]["detail"]["refused"] == "reg.quarantine_confirm"
    assert audit[-1]["detail"]["quarantine"] == "confirmed"


def test_a_quarantined_household_coming_home_or_denied_needs_no_confirmation(
    guard_client, guard_core
):
    quarantined(guard_core)
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        home = person(guard_client, csrf, **(OUT | {"direction": "in"}), decision="pass")
    assert home.status_code == 303
    with decided(guard_client, guard_core):
        denied = person(guard_client, csrf, **OUT, decision="deny")
    assert denied.status_code == 303
    assert [e["decision"] for e in guard_core.store.events()] == ["manual_pass", "manual_deny"]
    assert "quarantine_reason" not in guard_core.store.events()[0]["person"]


def test_the_unit_check_says_a_household_is_quarantined(guard_client, guard_core):
    quarantined(guard_core)
    csrf = login(guard_client)
    check = "/guard/api/household"
    assert post(guard_client, check, csrf, unit="3-402").json() == {"quarantined": True}
    assert post(guard_client, check, csrf, unit="3-403").json() == {"quarantined": False}
    # Never asked in a URL (a dwelling and its quarantine in history and access logs), and
    # not without the console's CSRF token.
    assert guard_client.get(check, params={"unit": "3-402"}).status_code == 405
    assert post(guard_client, check, "forged", unit="3-402").status_code == 403


def test_a_quarantined_households_car_going_out_needs_the_confirmation(guard_client, guard_core):
    resident_cars(guard_core, "plate,household\n京A12345,3-402\n")
    quarantined(guard_core)
    csrf = login(guard_client)
    refused = vehicle(guard_client, csrf, direction="out", decision="pass")
    assert refused.status_code == 400 and nothing_recorded(guard_core)
    assert 'id="vehicle-confirm-quarantine"' in refused.text
    with decided(guard_client, guard_core):
        vehicle(guard_client, csrf, direction="out", decision="pass", confirm_quarantine="1",
                quarantine_reason="接送隔离人员就医")  # fmt: skip
    (event,) = guard_core.store.events()
    assert event["person"]["quarantine_reason"] == "接送隔离人员就医"


def test_a_confirmed_quarantine_exit_carries_the_quarantine_flag(guard_client, guard_core):
    quarantined(guard_core)
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        person(guard_client, csrf, **OUT, decision="pass", confirm_quarantine="1",
               quarantine_reason="送医")  # fmt: skip
    (event,) = guard_core.store.events()
    assert "quarantine" in event["flags"]


@pytest.mark.parametrize(
    ("page", "search", "typed", "found"),
    [("/guard/register", "/guard/register/search", "王秀英", "138****8000"),
     ("/guard/passes", "/guard/passes/search", "秀英", "王秀英")],
)  # fmt: skip
def test_a_search_for_a_person_is_never_in_a_url(guard_client, guard_core, page, search, typed,
                                                 found):  # fmt: skip
    """The visitor and pass searches were GET forms: /guard/register?q=王秀英 stayed in the
    shared phone's browser history, offered to the next guard as the address was typed, past
    every purge (the forms' autocomplete="off" kept it out of form history only). They post
    the text with the form's CSRF token; the page is the same."""
    registration(guard_core, "王秀英", "13800138000")
    csrf = login(guard_client)
    post(guard_client, "/guard/passes", csrf, household="3-402", holder="王秀英", days="30")
    shown = guard_client.get(page).text
    form = shown.split('role="search"', 1)[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form and f'action="{search}"' in form, form
    answer = post(guard_client, search, csrf, q=typed)
    assert answer.status_code == 200 and found in answer.text
    assert f'value="{typed}"' in answer.text  # the box keeps what was searched
    assert post(guard_client, search, "not-the-token", q=typed).status_code in (400, 403)


QUOTA = {"policy": {"quota": {"enabled": True, "exits": 1, "period_days": 2}}}


@pytest.fixture
def quota_core(data_dir, clock, monkeypatch):
    from guard_support import close_core, make_core

    from kiosk.config import KioskConfig

    config = KioskConfig.model_validate(QUOTA | {"policy": QUOTA["policy"] | {
        "observation_blocks": "out"}})  # fmt: skip
    core = make_core(data_dir, clock, monkeypatch, config)
    core.lists.set_household("3-402", "root")  # a dwelling the gate knows: not asked about
    yield core
    close_core(core)


def test_a_resident_registered_going_out_counts_against_the_quota_and_is_held_by_it(
    data_dir, clock, quota_core
):
    """A resident registered by hand going out (no pass with them) was recorded without a
    household: the outing counted against no quota, the day's exits_per_household missed it,
    and a household whose outing was used up, or an observed returnee kept in, went out
    with no warning. Now "a resident of this dwelling" records the household on the event,
    and such a resident going out past the quota, or under observation that keeps people in,
    comes back with the warning until the guard confirms with a reason."""
    from kiosk.policy import quota_used
    from kiosk.stats import daily_report

    core = quota_core
    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        out = OUT | {"unit": "3-402", "decision": "pass", "resident": "1"}
        with decided(client, core):
            first = post(client, "/guard/register/person", csrf, **out)
        assert first.status_code == 303
        (event,) = core.store.events()
        assert event["household"] == "3-402" and event["person"]["resident"] is True
        quota = core.config.policy.quota
        assert quota_used(quota, core.history, clock.now(), tz="Asia/Shanghai") == {"3-402"}
        again = post(client, "/guard/register/person", csrf, **(out | {"name": "王建国"}))
        assert again.status_code == 400 and len(core.store.events()) == 1
        assert 'id="person-confirm-quota"' in again.text and 'name="quota_reason"' in again.text
        assert 'value="王建国"' in again.text  # the form as typed
        with decided(client, core):
            done = post(client, "/guard/register/person", csrf, **(out | {
                "name": "王建国", "confirm_quota": "1", "quota_reason": "就医"}))  # fmt: skip
        assert done.status_code == 303
        second = core.store.events()[-1]
        assert second["household"] == "3-402" and second["person"]["quota_reason"] == "就医"
        # a visitor to that dwelling is no outing of it, and is not held by its quota
        with decided(client, core):
            visitor = post(client, "/guard/register/person", csrf, **(OUT | {"name": "访客"}),
                           decision="pass")  # fmt: skip
        assert visitor.status_code == 303 and core.store.events()[-1]["household"] is None
        # an observed returnee of another dwelling, kept in, is held as well
        core.ledgers.observation.register(
            name="李雷", household="5-101", phone="", origin="武汉",
            date_back=today, actor="root",
        )  # fmt: skip
        held = post(client, "/guard/register/person", csrf, **(out | {"name": "李雷",
                    "unit": "5-101"}))  # fmt: skip
        assert held.status_code == 400 and 'id="person-confirm-observation"' in held.text
        audit = [a for a in core.store.audits() if a["action"].startswith("register_person")]
        assert audit[-1]["detail"]["refused"] == "reg.observation_confirm"
        assert audit[-3]["detail"]["quota"] == "confirmed"
    report = daily_report(core.store.reader(), today, "Asia/Shanghai", quota)
    exits = report["exits_per_household"]
    assert (exits["households"], exits["exits"], exits["over_quota_households"]) == (1, 2, 1)


COMPOUND_MAP = b"building,floor,household\n3,2,3-2-701\n3,4,3-402\n"


def _confirm_fields(page: str) -> dict[str, str]:
    import html
    import re

    form = page.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def test_a_resident_of_a_dwelling_not_on_the_map_is_asked_about_first(guard_client, guard_core):
    """A resident of this dwelling ("resident") recorded whatever was typed as the
    household: 3-2-710 typed for 3-2-701 charged 3-2-710's quota (its residents then denied
    quota_exceeded) and skipped the real household's quota and observation. With a compound
    map loaded, a resident's dwelling the map lacks is asked about first; confirmed, it is
    recorded."""
    led = guard_core.ledgers
    led.compound.apply(led.compound.plan_import(COMPOUND_MAP, "map.csv"), "root")
    csrf = login(guard_client)
    typo = {"unit": "3-2-710", "resident": "1", "temp_c": "36.5", "direction": "out"}
    asked = person(guard_client, csrf, **typo)
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert "3-2-710" in asked.text and nothing_recorded(guard_core)
    fields = _confirm_fields(asked.text)
    with decided(guard_client, guard_core):
        confirmed = guard_client.post(
            "/guard/register/person", data=fields, headers={"Origin": BASE},
            follow_redirects=False,
        )  # fmt: skip
    assert confirmed.status_code == 303
    (event,) = guard_core.store.events()
    assert event["household"] == "3-2-710"
    # on the map (however typed), or a visitor's host: no question
    with decided(guard_client, guard_core):
        mapped = person(guard_client, csrf, **(typo | {"unit": "３－２－７０１"}))
    assert mapped.status_code == 303
    with decided(guard_client, guard_core):
        visitor = person(guard_client, csrf, unit="3-2-710", temp_c="36.5")
    assert visitor.status_code == 303 and len(guard_core.store.events()) == 3
    # The audit row says the dwelling off the map was confirmed, as a hold confirmed is;
    # those on it (or a visitor's host) say nothing of it.
    said = [a["detail"].get("off_map") for a in guard_core.store.audits()
            if a["action"] == "register_person"]  # fmt: skip
    assert said == ["confirmed", None, None]


def test_a_resident_confirmed_off_the_map_is_not_asked_again_when_a_hold_draws_the_form(
    guard_client, guard_core
):
    """The confirmation is kept by the form drawn again (a fever, a hold), for that dwelling
    only: a dwelling typed anew is asked about again."""
    led = guard_core.ledgers
    led.compound.apply(led.compound.plan_import(COMPOUND_MAP, "map.csv"), "root")
    csrf = login(guard_client)
    typo = {"unit": "3-2-710", "resident": "1", "temp_c": "39.5", "direction": "out"}
    fields = _confirm_fields(person(guard_client, csrf, **typo).text)
    fever = guard_client.post(
        "/guard/register/person", data=fields, headers={"Origin": BASE}, follow_redirects=False
    )
    assert fever.status_code == 400 and 'id="person-record-deny"' in fever.text
    form = fever.text.split('id="person-form"', 1)[1].split("</form>", 1)[0]
    assert 'name="off_map" value="3-2-710"' in form
    with decided(guard_client, guard_core):
        again = person(guard_client, csrf, **(typo | {"temp_c": "36.5"}), off_map="3-2-710")
    assert again.status_code == 303 and guard_core.store.events()[-1]["household"] == "3-2-710"
    other = person(guard_client, csrf, **(typo | {"unit": "3-2-711"}), off_map="3-2-710")
    assert other.status_code == 200 and 'id="confirm-form"' in other.text


@pytest.mark.parametrize(("blocks", "held"), [("both", True), ("out", False)])
def test_an_observed_resident_coming_in_is_held_where_the_gate_denies_it(
    data_dir, clock, monkeypatch, blocks, held
):
    """The console held an observed resident going out only, while the gate denies one
    coming in too when ``observation_blocks`` is "both": the console asks the gate's rule."""
    from guard_support import close_core, make_core

    from kiosk.config import KioskConfig

    config = KioskConfig.model_validate({"policy": {"observation_blocks": blocks}})
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
        core.ledgers.observation.register(
            name="李雷", household="5-101", phone="", origin="武汉", date_back=today,
            actor="root",
        )  # fmt: skip
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            came = {"name": "李雷", "unit": "5-101", "resident": "1", "reason": "回家",
                    "temp_c": "36.5", "direction": "in", "decision": "pass"}  # fmt: skip
            if held:
                answer = post(client, "/guard/register/person", csrf, **came)
                assert answer.status_code == 400
                assert 'id="person-confirm-observation"' in answer.text
            else:
                with decided(client, core):
                    answer = post(client, "/guard/register/person", csrf, **came)
                assert answer.status_code == 303
    finally:
        close_core(core)


def test_a_resident_coming_in_is_not_held_by_the_quota(data_dir, clock, quota_core):
    """The quota counts outings: a resident of a household whose quota is used up comes
    home without a question."""
    core = quota_core
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        out = OUT | {"unit": "3-402", "decision": "pass", "resident": "1"}
        with decided(client, core):
            assert post(client, "/guard/register/person", csrf, **out).status_code == 303
        with decided(client, core):
            home = post(client, "/guard/register/person", csrf, **(out | {"direction": "in"}))
        assert home.status_code == 303


def test_the_hold_asked_is_the_one_the_button_confirms(data_dir, clock, quota_core):
    """A form that confirmed a later hold (observation) and is then held by an earlier one
    (the quota, reached meanwhile): the button confirms the one asked, and the quota is not
    sent as confirmed behind the guard's back."""
    core = quota_core
    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    core.ledgers.observation.register(
        name="李雷", household="3-402", phone="", origin="武汉", date_back=today, actor="root",
    )  # fmt: skip
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        out = OUT | {"unit": "3-402", "decision": "pass", "resident": "1"}
        with decided(client, core):  # the household's one outing: the quota is used up
            assert post(client, "/guard/register/person", csrf, **out).status_code == 303
        held = post(client, "/guard/register/person", csrf, **(out | {
            "name": "李雷", "confirm_observation": "1", "observation_reason": "就医"}))  # fmt: skip
        assert held.status_code == 400
        form = held.text.split('id="person-form"', 1)[1].split("</form>", 1)[0]
        assert 'id="person-confirm-quota"' in form
        assert 'type="hidden" name="confirm_quota"' not in form
        assert 'type="hidden" name="confirm_observation"' in form
