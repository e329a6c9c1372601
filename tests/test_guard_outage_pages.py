"""The guard console's answers to a link it cannot follow (a day out of range, a record number
that is not one, an action it does not know): a page in the guard's language, as the console's
other refusals, never a JSON error inside the HTML console. API callers (``Accept:
application/json``) keep their JSON answer."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from guard_support import BASE, console_fixtures, post

from kiosk.alarms import device_alarms
from ui import i18n

clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))

JSON = {"Accept": "application/json"}


@pytest.mark.parametrize(
    "day", ["1999-12-31", "2026-02-30", "yesterday", "9999-12-31", "2026-02-12x"]
)
@pytest.mark.parametrize("path", ["/guard/stats", "/guard/export.csv", "/guard/export.xlsx"])
def test_a_day_the_statistics_refuse_is_a_console_page_in_the_guards_language(alice, path, day):
    alice.get("/guard/stats?lang=zh-CN")
    page = alice.get(f"{path}?day={day}")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html"), page.text[:200]
    assert 'class="flash err"' in page.text and "日期" in page.text
    assert "2026-02-12" in page.text  # today's figures below the banner, the picker on today
    api = alice.get(f"{path}?day={day}", headers=JSON)
    assert api.status_code == 400 and "detail" in api.json()


@pytest.mark.parametrize(
    "path",
    [
        "/guard/community/services/abc/take",
        "/guard/community/services/-1/take",
        "/guard/community/services/0/done",
        "/guard/community/services/1/explode",
        "/guard/community/returnees/-1/temperature",
        "/guard/community/returnees/x/ack",
        "/guard/community/returnees/1/explode",
        "/guard/community/handover/abc/ack",
    ],
)
def test_a_tampered_record_link_sends_the_guard_back_with_words_not_json(alice, core, path):
    alice.get("/guard/stats?lang=zh-CN")
    before = core.store.last_audit_seq
    answer = post(alice, path, alice.csrf, temp_c="37.0", day="2026-02-12", kind="fever")
    assert answer.status_code == 303, answer.text
    shown = alice.get(answer.headers["location"]).text
    assert 'class="flash err"' in shown and "链接无效" in shown
    row = core.store.audits()[-1]
    assert core.store.last_audit_seq == before + 1 and row["action"].endswith("_failed")
    assert row["detail"]["outcome"] == "refused"


def test_a_tampered_record_link_keeps_a_json_answer_for_json_callers(alice):
    answer = alice.post(
        "/guard/community/services/abc/take",
        data={"csrf": alice.csrf},
        headers={"Origin": BASE, **JSON},
    )
    assert answer.status_code in (400, 422) and answer.json()


#: What a device fault's alarm card must tell the guard to do (operations.md, "Alarms and
#: what to do"), by a word each language's text must hold.
WHAT_TO_DO = {
    "thermometer": {"en": "clinical thermometer", "zh-CN": "医用体温计"},
    "reader": {"en": "pass", "zh-CN": "通行码"},
    "gate": {"en": "manual release", "zh-CN": "手动"},
    "store": {"en": "paper register", "zh-CN": "纸质登记簿"},
}


@pytest.mark.parametrize("device", sorted(WHAT_TO_DO))
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_device_fault_card_tells_the_guard_what_to_do_in_their_language(
    alice, app, monkeypatch, device, lang
):
    """Before: the card said "Device fault · gate" and nothing more; what to do was only in
    the operator's manual, which the guard at the gate does not have."""
    from ui.i18n import t

    g = app.state.guard
    monkeypatch.setattr(type(g), "standing_alarms", lambda self: device_alarms({device: "fault"}))
    [card] = alice.get(f"/guard/api/feed?lang={lang}").json()["alarms"]
    assert card["kind"] == "device" and card["todo"] == t(lang, f"alarm.todo.{device}")
    assert WHAT_TO_DO[device][lang] in card["todo"]
    assert t(lang, "manual.title") in card["todo"]  # the form on the same page
    page = alice.get(f"/guard?lang={lang}").text
    assert card["todo"] in html.unescape(page)


@pytest.mark.parametrize(
    ("path", "form", "back"),
    [
        (
            "/guard/manual",
            {"decision": "pass", "subject": "none", "reason": "known", "direction": "in"},
            "/guard",
        ),
        (
            "/guard/register/person",
            {"name": "王秀英", "unit": "3-402", "reason": "看望母亲", "temp_c": "36.5"},
            "/guard/register",
        ),
    ],
)
def test_a_pass_the_dead_gate_did_not_open_is_not_answered_done(
    guard_client, guard_core, path, form, back
):
    """Before: with the relay unplugged, a guard's Manual pass was recorded, the relay's
    command failed, and the guard was told "Done" — at a gate that stayed locked. Now the
    guard is told it is recorded but the gate did not open: open it by hand."""
    from guard_support import decided, login

    csrf = login(guard_client)
    guard_client.get("/guard?lang=en")
    guard_core.devices.gate.unplug()
    with decided(guard_client, guard_core):
        answer = post(guard_client, path, csrf, **form)
    assert answer.status_code == 303 and "msg=ok.done" not in answer.headers["location"]
    assert answer.headers["location"].startswith(back)
    shown = html.unescape(guard_client.get(answer.headers["location"]).text)
    assert i18n.t("en", "err.gate_not_opened") in shown and "manual release" in shown
    (event,) = guard_core.store.events()
    assert event["decision"] == "manual_pass"  # recorded all the same, once
    rows = [a["action"] for a in guard_core.store.audits() if a["actor"] == "alice"]
    assert rows[-1] in ("manual_pass", "register_person") and not rows[-1].endswith("_failed")
    json_caller = guard_client.get("/guard/api/feed")  # the console still works
    assert json_caller.status_code == 200
    guard_core.devices.gate.replug()


@pytest.mark.parametrize(("path", "limit"), [("/guard/register", 40), ("/guard/passes", 60)])
def test_an_over_long_search_in_an_edited_form_is_the_page_not_json(alice, path, limit):
    """The search boxes stop typing at their limit (``maxlength``); a search edited past it
    (once a link, now a posted form) was a JSON 422 inside the console. The page searches for
    the first ``limit`` characters, as it always cut the text it uses."""
    page = post(alice, f"{path}/search", alice.csrf, q="王" * limit + "x")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'value="{"王" * limit}"' in page.text


@pytest.mark.parametrize(
    ("alarm", "todo"),
    [
        ("gate_fault", "alarm.todo.gate"),
        ("sensor_fault", "alarm.todo.thermometer"),
        ("reader_fault", "alarm.todo.reader"),
        ("store_fault", "alarm.todo.store"),
        ("gate_not_locked", "alarm.todo.gate_not_locked"),
    ],
)
def test_an_engine_device_alarm_about_a_passage_says_what_to_do_too(alarm, todo):
    """The relay that did not open for passage #7 is a card about that passage: it says what
    to do as the standing card of the device does."""
    from zoneinfo import ZoneInfo

    from kiosk.alarms import alarm_from_message
    from ui.guard.display import alarm_view

    card = alarm_from_message({"alarm": alarm, "seq": 7}, "2026-02-12T01:00:00Z")
    for lang in ("zh-CN", "en"):
        view = alarm_view(card, lang, ZoneInfo("Asia/Shanghai"), frozenset())
        assert view["kind"] == "device" and view["todo"] == i18n.t(lang, todo)
