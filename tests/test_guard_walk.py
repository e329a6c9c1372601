"""Defects found walking a guard's shift through the console in Chinese (issue 17): each test
names what the guard saw."""

from __future__ import annotations

from guard_support import login, post

from kiosk.calibration import Calibration, default_path


def test_a_calibration_pair_whose_skin_is_not_above_the_air_is_refused_in_chinese(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"clinical_c": "36.6", "object_c": "30.0", "ambient_c": "31.5"}
    refused = post(guard_client, "/guard/calibration", csrf, **form)
    shown = guard_client.get(refused.headers["location"]).text
    assert "皮肤表面温度" in shown and "环境温度" in shown
    assert "object reading" not in shown and "sensor did not see" not in shown
    assert Calibration.load(default_path(guard_core.data_dir)).points == ()
    [audit] = [a for a in guard_core.store.audits() if a["action"].startswith("calibration")]
    assert audit["detail"]["problem"] == "cal.not_above_ambient"
    english = post(guard_client, "/guard/calibration?lang=en", csrf, **form)
    assert "not above" in guard_client.get(english.headers["location"]).text


def test_a_quarantine_ending_before_it_starts_is_refused_in_chinese(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"household": "3-201", "from": "2026-03-05", "until": "2026-03-01"}
    shown = post(guard_client, "/guard/lists/quarantine/add", csrf, **form).text
    assert "Value error" not in shown and "until is before from" not in shown
    assert "结束日期" in shown and "开始日期" in shown
    assert not guard_core.lists.current.quarantine
    audit = guard_core.store.audits()[-1]
    assert audit["detail"]["refused"] == "err.until_before_from"  # drawn again as typed


def flash_error(client, response) -> str:
    """The error banner of the page a refusal answered (drawn with the form as typed, or
    the page it was sent back to)."""
    page = (
        response.text
        if response.status_code == 400
        else client.get(response.headers["location"]).text
    )
    return page.split('class="flash err"', 1)[1].split("</div>", 1)[0]


def test_an_invisible_character_pasted_into_a_field_is_named_in_chinese(guard_client, guard_core):
    """A zero-width space comes along when a unit or a name is copied from a chat message; the
    core refuses it in English, the console says it first, in the guard's words."""
    csrf = login(guard_client)
    quarantine = {"household": "3-201\u200b", "until": "2026-03-10"}
    shown = flash_error(guard_client, post(guard_client, "/guard/lists/quarantine/add", csrf,
                                           **quarantine))  # fmt: skip
    assert "户号含有无效字符" in shown and "Value error" not in shown
    issue = {"household": "3-201", "holder": "王\u200b五", "role": "visitor", "days": "1"}
    shown = flash_error(guard_client, post(guard_client, "/guard/passes", csrf, **issue))
    assert "持证人含有无效字符" in shown and "printable" not in shown
    assert not guard_core.lists.current.quarantine and guard_core.store.last_seq == 0


def test_a_full_width_space_typed_by_a_chinese_input_method_is_a_space(guard_client, guard_core):
    csrf = login(guard_client)
    issue = {"household": "3-201", "holder": "欧阳\u3000娜娜", "role": "visitor", "days": "1"}
    response = post(guard_client, "/guard/passes", csrf, **issue)
    assert response.status_code == 200, response.headers.get("location")
    assert "欧阳 娜娜" in response.text


def test_a_service_request_shows_its_state_in_words_and_its_time_in_site_time(
    guard_client, guard_core
):
    """The requests table read 'open' and '2026-03-02T08:30' (UTC) for a request made at
    16:30 in Shanghai."""
    led = guard_core.ledgers
    led.compound.apply(led.compound.plan_import(b"building,floor,household\n5,7,5-702\n",
                                                "map.csv"), "root")  # fmt: skip
    guard_core.lists.add_quarantine("5-702", None, "2026-03-01", "2026-03-14", "root")
    csrf = login(guard_client)
    post(guard_client, "/guard/community/services", csrf, household="5-702", kind="food")
    page = guard_client.get("/guard/community/services?lang=zh-CN").text
    row = page.split('data-request="1"', 1)[1].split("</tr>", 1)[0]
    assert "2026-03-02 16:30" in row and "T08:30" not in row
    assert "待接单" in row and ">open<" not in row
    home = guard_client.get("/guard/community/household/1?lang=zh-CN").text
    requests = home.split('id="requests"', 1)[1].split("</section>", 1)[0]
    assert "待接单" in requests and ">open<" not in requests
    post(guard_client, "/guard/community/services/1/take", csrf)
    page = guard_client.get("/guard/community/services?lang=en").text
    assert ">Taken<" in page.split('data-request="1"', 1)[1].split("</tr>", 1)[0]


def test_where_a_list_entry_came_from_is_said_in_chinese(guard_client, guard_core):
    """The lists page read '名单更新于 2026-03-02 16:30（guard）' and '(guard)' beside each
    entry's guard: the store's source code, not words."""
    csrf = login(guard_client)
    post(guard_client, "/guard/lists/quarantine/add", csrf, household="5-101", until="2026-03-16")
    page = guard_client.get("/guard/lists?lang=zh-CN").text
    assert "（guard）" not in page and "(guard)" not in page
    assert page.count("保安台录入") >= 2  # the page's freshness line and the entry
    assert "(entered at the console)" in guard_client.get("/guard/lists?lang=en").text


def test_a_calibration_pair_the_full_card_cannot_take_is_refused_in_the_guards_words(
    guard_client, guard_core, monkeypatch
):
    """Before: the file's save failing (a full card: ENOSPC) was a 500 on the console."""
    import errno

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    csrf = login(guard_client)
    monkeypatch.setattr(Calibration, "save", full)
    form = {"clinical_c": "36.6", "object_c": "33.0", "ambient_c": "24.0"}
    refused = post(guard_client, "/guard/calibration", csrf, **form)
    assert refused.status_code == 303
    shown = guard_client.get(refused.headers["location"]).text
    assert "没有保存" in shown and "No space" not in shown
    audit = [a for a in guard_core.store.audits() if a["action"].startswith("calibration")][-1]
    assert audit["detail"]["problem"] == "cal.not_saved"
    monkeypatch.undo()
    assert Calibration.load(default_path(guard_core.data_dir)).points == ()
