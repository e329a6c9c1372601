"""Defects found working a shift at the gate with the console in a browser, each pinned."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from guard_support import BASE, GUARD_PW, add_event, console_fixtures, decided, post

from kiosk import queries

#: The console at 09:00 Shanghai.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


def test_lists_never_updated_say_so_instead_of_minus_one_hours(alice):
    # A kiosk whose lists were never updated: the Lists page said "名单已 -1 小时未更新".
    for lang, never in (("zh-CN", "名单从未更新"), ("en", "Lists have never been updated")):
        page = alice.get(f"/guard/lists?lang={lang}")
        assert page.status_code == 200
        assert never in page.text
        assert "-1 " not in page.text and "-1 h" not in page.text


def test_lists_stamped_ahead_of_the_clock_say_their_age_is_unknown(alice, core, clock):
    # Lists stamped three days ahead of the clock (it stepped back since): the Lists page
    # showed no warning at all, as if fresh; it says their age is unknown.
    from datetime import timedelta

    from kiosk.lists import Freshness

    ahead = Freshness(updated_at=clock.now() + timedelta(days=3), source="bundle")
    core.lists._snapshots.amend(lambda lists: lists.with_freshness(ahead))
    for lang, said in (("zh-CN", "无法判断新旧"), ("en", "their age is unknown")):
        page = alice.get(f"/guard/lists?lang={lang}")
        assert page.status_code == 200 and said in page.text
        assert "Lists have never been updated" not in page.text and "名单从未更新" not in page.text


def test_shifts_and_handovers_read_in_the_sites_time_as_the_manager_typed_them(admin, alice):
    # The manager types a shift in local time (datetime-local); the roster listed it in UTC
    # ("2026-03-02T00:00 协调世界时" for an 08:00 start), so the guard read the wrong hours.
    form = {"csrf": admin.csrf, "guard": "alice", "starts": "2026-03-02T08:00"}
    saved = admin.post("/guard/community/shifts", data=form | {"ends": "2026-03-02T16:00"})
    assert saved.status_code in (200, 303)
    opened = alice.post("/guard/community/handover", data={"csrf": alice.csrf, "incoming": "root"})
    assert opened.status_code in (200, 303)
    page = alice.get("/guard/community/handover?lang=zh-CN").text
    assert "2026-03-02 08:00" in page and "2026-03-02 16:00" in page
    assert "自 2026-03-02 08:00" in page  # since alice's shift began
    assert "协调世界时" not in page and "T00:00" not in page
    overview = alice.get("/guard/community?lang=en").text
    assert "08:00–16:00" in overview and "UTC" not in overview


def test_the_language_chosen_on_the_sign_in_page_stays_after_signing_in(app):
    # A guard tapped "English" on the sign-in page, signed in, and got the console in Chinese.
    with TestClient(app, base_url=BASE) as client:
        page = client.get("/guard/login?lang=en")
        assert '<html lang="en">' in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        signed = client.post(
            "/guard/login?lang=en",
            data={"name": "alice", "password": GUARD_PW, "csrf": token, "next": "/guard"},
            headers={"Origin": BASE},
        )
        assert signed.status_code == 200
        assert '<html lang="en">' in signed.text
        assert '<html lang="en">' in client.get("/guard/stats").text


def test_the_printable_daily_report_names_its_rows_in_the_guards_language(alice, core):
    # The report a guard prints for the office listed machine keys ("people / in",
    # "service_requests / open_at_end", "quarantined_households") on the Chinese page.
    from kiosk.store import EventDraft

    core.store.append(EventDraft(direction="in", decision="pass", household="1-1", temp_c=36.5))
    zh = alice.get("/guard/community/report?day=2026-03-02&lang=zh-CN").text
    row = 'data-category="people" data-item="in"><td>人员进出</td><td>进入</td><td>1<'
    assert row in zh
    assert "<td>quarantined_households</td>" not in zh and "<td>open_at_end</td>" not in zh
    assert "<td>居家隔离户数</td>" in zh and "<td>通过</td>" in zh
    en = alice.get("/guard/community/report?day=2026-03-02&lang=en").text
    assert 'data-item="in"><td>People</td><td>In</td><td>1<' in en
    # The exports keep the office's keys.
    assert "people,in,1" in alice.get("/guard/community/report.csv?day=2026-03-02").text


def test_a_vehicle_passage_names_who_had_the_fever_not_only_the_driver(alice, core):
    # A car turned back for a passenger's fever: the passage page (where the feed and the
    # alarms lead) showed "38.2" beside the driver's name and no passengers at all.
    form = {"plate": "沪A12345", "driver": "刘强", "driver_temp": "36.4", "reason": "送货"}
    form |= {"p1_name": "刘小明", "p1_temp": "38.2", "decision": "deny", "direction": "in"}
    with decided(alice, core):
        assert post(alice, "/guard/register/vehicle", alice.csrf, **form).status_code == 303
    (event,) = core.store.events()
    page = alice.get(f"/guard/passage/{event['seq']}?lang=zh-CN").text
    assert "刘强 36.4 °C、刘小明 38.2 °C" in page


def test_the_pass_just_issued_is_in_the_list_under_its_card(alice, core):
    # Issuing showed the card above "本机签发的通行证 0 · 没有符合的通行证": the list was read
    # before the issue was recorded, so the guard saw no sign it was kept.
    form = {"household": "3-201", "holder": "陈建国", "role": "visitor", "days": "3"}
    page = post(alice, "/guard/passes?lang=zh-CN", alice.csrf, **form)
    assert page.status_code == 200
    listed = re.findall(r'name="pass_id" value="([^"]+)" form="print-batch"', page.text)
    assert "没有符合的通行证" not in page.text
    (row,) = queries.issued_passes(core.store)  # the issue as the audit row records it
    assert listed == [row.detail["pass_id"]]
    # Read again, the list has it once.
    again = alice.get("/guard/passes").text
    assert re.findall(r'name="pass_id" value="([^"]+)" form="print-batch"', again) == listed


def test_the_last_reading_on_the_calibration_page_is_in_the_sites_time(alice, core):
    # The guard pairs a clinical reading with the kiosk's last one by its time: the page gave
    # it in UTC ("2026-03-02 01:00:15" for a reading the feed shows at 09:00:15).
    add_event(core, temp_c=36.7, temp_object_c=33.8, temp_ambient_c=24.0)
    page = alice.get("/guard/calibration?lang=zh-CN").text
    assert "最近一次测温：2026-03-02 09:00" in page and "01:00" not in page
    # A reading the thermometry could not turn into a body temperature is not "0.0 °C".
    add_event(core, decision="deny", reasons=("remeasure",), temp_object_c=29.0, temp_ambient_c=9.0)
    page = alice.get("/guard/calibration?lang=zh-CN").text
    assert "估算 — °C（表面 29.0 °C" in page and "0.0 °C" not in page


def test_a_returnees_alarm_names_the_person_not_only_their_number(alice):
    # "发热 · #1 · 2026-03-02": the guard had to match #1 against the table below.
    form = {"name": "周晓峰", "household": "3-201", "origin": "武汉", "date_back": "2026-03-02"}
    saved = post(alice, "/guard/community/returnees", alice.csrf, **form | {"days": "14"})
    assert "msg=saved" in saved.headers["location"]
    pid = re.search(r'data-person="(\d+)"', alice.get("/guard/community/returnees").text)[1]
    post(alice, f"/guard/community/returnees/{pid}/temperature", alice.csrf, temp_c="38.1")
    page = alice.get("/guard/community/returnees?lang=zh-CN").text
    alarms = page[page.index('id="alarms"') : page.index('id="ledger"')]
    assert "发热 · 周晓峰 · 3-201 · 2026-03-02" in alarms
