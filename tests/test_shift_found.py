"""What a review found playing a shift on the console.

* A dwelling typed for a person without a pass otherwise than its list spells it (``D404``
  or ``D 404`` for the quarantine list's ``D-404``) matched nothing: no hold, the pass out
  recorded under a household nobody has, no flag saying it was never checked; and the
  form's picker offered none of the quarantine list's dwellings. A dwelling the gate does
  not know is now asked about first, offering a listed one it differs from only by
  separators, spaces or case, never taken in its place; confirmed as typed, the record is
  flagged ``unknown_dwelling``.
* Then, on the registration page and in the Chinese report files: a resident registered
  going out with unit ``D404`` while the quarantine list has ``D-404`` walked out unheld
  (only the off-map check ran), and the form's quarantine badge said nothing of ``D-404``;
  the registration now asks about it as the manual pass does (one mechanism,
  ``kiosk.dwellings``), and the badge names the listed dwelling it may be. A day's changed
  quota rules stayed English on the Chinese report page and in the Chinese file's words;
  the district's Chinese ``compounds`` sheet showed its ``quota_enabled`` as ``True`` only.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    ADMIN_PW,
    BASE,
    close_core,
    decided,
    login,
    make_app,
    make_core,
    post,
)
from test_guard_holds import as_a_browser_sends, confirm_page_fields

from kiosk.categories import exits_rows, report_rows, worded
from kiosk.config import KioskConfig
from kiosk.typed import typed as plain_spelling
from office.district import compound_rows
from ui import i18n
from ui.guard.community.report import labelled
from ui.guard.forms import BadInput
from ui.report_words import file_words

QUARANTINED = "D-404"


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    config = KioskConfig.model_validate({"site": {"direction": "both"}})
    c = make_core(data_dir, clock, monkeypatch, config)
    c.lists.add_quarantine(QUARANTINED, None, "2026-02-28", "2026-03-13", "root")
    yield c
    close_core(c)


def nobody(client, csrf, household: str, **more):
    sent = {"decision": "pass", "subject": "none", "reason": "说手机丢了", "direction": "out"}
    return post(client, "/guard/manual", csrf, **(sent | {"household": household} | more))


def kept_as_typed(client, core, keep, household: str) -> None:
    """The guard's "Keep HOUSEHOLD as typed" (``keep`` sends it): the pass out is recorded
    under the dwelling as typed, flagged never checked, and the audit says so."""
    with decided(client, core):
        done = keep()
    assert done.status_code == 303 and "err=" not in done.headers["location"]
    event, audit = core.store.events()[-1], core.store.audits()[-1]
    assert (event["decision"], event["household"]) == ("manual_pass", household)
    assert event["flags"] == ["unknown_dwelling"]
    assert audit["detail"].get("unknown_dwelling") == "confirmed"


def quarantine_asked(page) -> bool:
    return page.status_code == 200 and 'id="confirm-confirm-quarantine"' in page.text


@pytest.mark.parametrize("typed", ["D404", "D 404", "d404", "Ｄ４０４"])
def test_a_dwelling_typed_without_its_hyphen_is_asked_about_and_the_listed_one_offered(core, typed):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        asked = nobody(client, csrf, typed)
        assert asked.status_code == 200 and core.store.last_seq == 0  # nothing recorded
        assert "不是本闸口所知的任何一户" in asked.text and "是否是 D-404？" in asked.text
        assert 'name="household" value="D-404" id="confirm-offered-1">改为 D-404' in asked.text
        assert confirm_page_fields(asked.text)["unknown_dwelling"] == plain_spelling(typed)
        # "Use D-404": the quarantine's hold, as for the dwelling typed as listed
        meant = as_a_browser_sends(client, asked.text, ("household", "D-404"))
        assert quarantine_asked(meant) and core.store.last_seq == 0
        assert "户号 D-404 正处于居家隔离期" in meant.text


@pytest.mark.parametrize("typed", ["D-404", "d-404", " D-404 ", "Ｄ－４０４"])
def test_a_dwelling_typed_as_listed_is_held_at_once(core, typed):
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = nobody(client, login(client), typed)
    assert quarantine_asked(asked) and core.store.last_seq == 0
    assert 'name="unknown_dwelling"' not in asked.text


def test_a_dwelling_kept_as_typed_is_recorded_flagged_never_checked(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = nobody(client, login(client), "D 404")
        kept_as_typed(client, core, lambda: as_a_browser_sends(client, asked.text), "D 404")


def test_separators_are_never_stripped_to_make_a_dwelling_match(core):
    """``1-101`` and ``11-01`` may be two homes: the listed one is offered, the one typed
    kept when the guard says so."""
    core.lists.set_household("11-01", "root")
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        asked = nobody(client, csrf, "1-101", direction="in")
        assert "是否是 11-01？" in asked.text and core.store.last_seq == 0
        with decided(client, core):
            as_a_browser_sends(client, asked.text)
        event = core.store.events()[-1]
    assert event["household"] == "1-101" and event["flags"] == ["unknown_dwelling"]


def test_a_dwelling_like_no_listed_one_is_asked_without_a_guess(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = nobody(client, login(client), "Z-999")
    assert "户号 Z-999 不是本闸口所知的任何一户" in asked.text
    assert "是否是" not in asked.text and 'id="confirm-offered-1"' not in asked.text


def test_every_dwelling_the_gate_knows_is_a_known_one_and_offered(core):
    """The picker offered the map's and the households list's dwellings only: a gate with a
    quarantine list and no map offered nothing. A returnee's dwelling and an issued pass's
    are known too."""
    today = core.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    core.ledgers.observation.register(name="王芳", household="E-505", phone="",
                                      origin="武汉", date_back=today, actor="root")  # fmt: skip
    core.store.audit("alice", "pass_issued", {"pass_id": "c0ffee000001", "household": "F-606"})
    core.lists.set_household("G-707", "root")
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        offered = client.get("/guard/api/households").json()["offered"]
        assert offered == ["D-404", "E-505", "F-606", "G-707"]
        for dwelling in ("E-505", "F-606", "G-707"):  # none asked about
            page = nobody(client, csrf, dwelling, direction="in", decision="deny")
            assert page.status_code == 303, dwelling
    assert not any("unknown_dwelling" in e["flags"] for e in core.store.events())


# --- the daily report's values in the office's language -----------------------------------


def report_cells(page: str, item: str) -> list[str]:
    """The cells of the report page's row ``exits_per_household, item``."""
    row = page.split(f'data-category="exits_per_household" data-item="{item}">', 1)[1]
    return re.findall(r"<td>([^<]*)</td>", row.split("</tr>", 1)[0])


@pytest.mark.slow  # a core and its day's report: ~0.12 s of CPU
def test_the_daily_report_page_says_its_values_in_words(data_dir, clock, monkeypatch):
    """外出限额 ``True``, 计入限额的身份 ``resident``, 当日限额变更 ``none`` on the Chinese
    report (``True`` on the English one too): said in words."""
    quota = {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident", "visitor"]}
    config = KioskConfig.model_validate({"policy": {"quota": quota}})
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            login(client, "root", ADMIN_PW)
            zh = client.get("/guard/community/report?lang=zh-CN").text
    finally:
        close_core(core)
    assert report_cells(zh, "quota_enabled") == ["每户外出", "外出限额", "是"]
    assert report_cells(zh, "quota_roles") == ["每户外出", "计入限额的身份", "居民、访客"]
    assert report_cells(zh, "quota_changes") == ["每户外出", "当日限额变更", "无"]
    assert report_cells(zh, "quota_exits") == ["每户外出", "每周期外出次数", "1"]  # a number
    english = labelled([["exits_per_household", "quota_enabled", True]], "en")
    assert english[0][2] == "Yes"


def test_a_report_file_keeps_its_values_and_says_them_in_its_words_column():
    """The Chinese file's value column is as a script always read it; the words column says
    the value beside its item; the English file is as it always was."""
    exits = {
        "quota_enabled": False,
        "quota_exits": 1,
        "period_days": 2,
        "households": 0,
        "exits": 0,
        "max": 0,
        "over_quota_households": 0,
        "quota_roles": ["resident"],
    }
    report = {"day": "2026-03-02", "exits_per_household": exits}  # fmt: skip
    rows = {
        r[1]: r
        for r in worded(report_rows(report), file_words("zh-CN"))
        if r[0] == "exits_per_household"
    }
    assert rows["quota_enabled"] == ["exits_per_household", "quota_enabled", False, "每户外出",
                                     "外出限额：否"]  # fmt: skip
    assert rows["quota_roles"][2:] == ["resident", "每户外出", "计入限额的身份：居民"]
    assert rows["quota_changes"][2:] == ["none", "每户外出", "当日限额变更：无"]
    assert rows["quota_exits"][2:] == [1, "每户外出", "每周期外出次数"]  # a number: as it is
    english = [r for r in report_rows(report) if r[0] == "exits_per_household"]
    assert ["exits_per_household", "quota_enabled", False] in english


# --- "(required) is required" --------------------------------------------------------------


def test_a_hold_reason_left_empty_is_asked_for_in_words_of_its_own(core):
    """The hold page said "隔离户外出原因（必填）" + "is required" when the reason was left
    empty ("Why they go out over the quota (required) is required"); and the browser did not
    ask for it first."""
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = nobody(client, login(client), QUARANTINED)
        assert 'name="quarantine_reason" maxlength="200" value="" required>' in asked.text
        assert 'id="confirm-record-deny" formnovalidate>' in asked.text  # a deny needs none
        empty = as_a_browser_sends(client, asked.text, ("quarantine_reason", " "),
                                   ("confirm_quarantine", "1"))  # fmt: skip
    assert quarantine_asked(empty) and core.store.last_seq == 0
    assert "请填写隔离户外出的原因" in empty.text
    assert "请填写隔离户外出原因（必填）" not in empty.text


def test_no_label_that_says_it_is_required_is_said_required_again():
    every = i18n.keys()
    labels = [
        key
        for key in every
        if i18n.t("en", key).endswith("(required)") or i18n.t("zh-CN", key).endswith("（必填）")
    ]
    assert "reg.quota_reason" in labels and "manual.reason" in labels
    for key in labels:
        for lang in ("en", "zh-CN"):
            said = BadInput("err.required", field=key).text(lang)
            assert "required)" not in said and "必填）" not in said, (key, said)
    assert BadInput("err.required", field="reg.quota_reason").text("en") == (
        "Give the reason they go out over the quota"
    )


def resident_out(client, csrf, unit: str, **more):
    sent = {"name": "王伟", "unit": unit, "resident": "1", "reason": "买药", "temp_c": "36.5",
            "direction": "out", "decision": "pass"}  # fmt: skip
    return post(client, "/guard/register/person", csrf, **(sent | more))


def confirm_sent(client, page: str, *pressed: tuple[str, str]):
    """The confirmation page's form sent as a browser sends it, to its own action: its
    fields in their order, then the button ``pressed``."""
    form = page.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    action = re.search(r'<form[^>]*action="([^"]+)"', page.split('id="confirm-form"', 1)[0][-400:]
                       + 'id="confirm-form"' + form)  # fmt: skip
    found = re.findall(r'<input (?:type="hidden" )?name="([^"]+)"[^>]*? value="([^"]*)"', form)
    sent = [(k, html.unescape(v)) for k, v in found] + list(pressed)
    headers = {"Origin": BASE, "Content-Type": "application/x-www-form-urlencoded"}
    path = html.unescape(action.group(1)) if action else "/guard/register/person"
    return client.post(path, content=urlencode(sent), headers=headers, follow_redirects=False)


@pytest.mark.parametrize("typed", ["D404", "D 404", "d404"])
def test_a_resident_registered_with_the_dwelling_typed_otherwise_is_asked_about(core, typed):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        asked = resident_out(client, csrf, typed)
        assert asked.status_code == 200 and core.store.last_seq == 0  # nothing recorded
        assert "不是本闸口所知的任何一户" in asked.text and "是否是 D-404？" in asked.text
        assert "仍按" in asked.text and "的住户登记" in asked.text  # a registration's words
        assert 'name="unit" value="D-404" id="confirm-offered-1">改为 D-404' in asked.text
        # "Use D-404": held for the quarantine, as the dwelling typed as listed is
        meant = confirm_sent(client, asked.text, ("unit", "D-404"))
        assert meant.status_code == 400 and core.store.last_seq == 0
        assert "户号 D-404 正处于居家隔离期" in meant.text


def test_a_resident_of_the_listed_dwelling_is_held_at_once(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        held = resident_out(client, login(client), "d-404")
    assert held.status_code == 400 and "户号 d-404 正处于居家隔离期" in held.text
    assert 'id="confirm-form"' not in held.text and "是否是 D-404？" not in held.text


def test_a_resident_dwelling_kept_as_typed_is_recorded_flagged_never_checked(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = resident_out(client, login(client), "D404")
        kept_as_typed(client, core, lambda: confirm_sent(client, asked.text), "D404")


def test_a_visitor_is_not_asked_about_the_dwelling_they_visit(core):
    """A visitor's unit is their host's, not their home: registered as before."""
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        with decided(client, core):
            done = resident_out(client, csrf, "Z-999", resident="", direction="in")
    assert done.status_code == 303 and core.store.events()[-1]["flags"] == []


def test_the_quarantine_badge_names_the_listed_dwelling_a_unit_may_be(core):
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        typo = post(client, "/guard/api/household", csrf, unit="D404").json()
        listed = post(client, "/guard/api/household", csrf, unit="D-404").json()
        blank = post(client, "/guard/api/household", csrf, unit=" ").json()
        page = client.get("/guard/register").text
    assert typo == {"quarantined": False, "near": [{"household": "D-404", "quarantined": True}]}
    assert listed == {"quarantined": True}  # known: as it always was
    assert blank == {"quarantined": False}
    assert 'data-near="⚠ 户号 {unit} 不是本闸口所知的任何一户，是否是 {near}？"' in page


# --- a day's changed rules in the Chinese report's words ----------------------------------

CHANGES = [
    {"from": None, "period_days": 2, "quota_enabled": False, "quota_exits": 1,
     "quota_roles": ["resident"]},
    {"from": "2026-03-02T04:00:00+00:00", "period_days": 2, "quota_enabled": True,
     "quota_exits": 1, "quota_roles": ["resident"]},
]  # fmt: skip


def changes_row() -> list:
    section = {"quota_enabled": True, "quota_roles": ["resident"], "quota_changes": CHANGES}
    return next(r for r in exits_rows(section, "Asia/Shanghai") if r[1] == "quota_changes")


def test_a_days_changed_rules_are_said_in_chinese_on_the_page_and_in_the_file():
    row = changes_row()
    assert row[2] == "start off; 12:00 1 every 2 days (resident)"  # the value, as it was
    zh = labelled([row], "zh-CN")[0]
    assert zh[2] == "开始时 关闭；12:00 每 2 天 1 次（居民）"
    filed = worded([["category", "item", "value"], row], file_words("zh-CN"))[1]
    assert filed[:3] == row and filed[-1] == "当日限额变更：开始时 关闭；12:00 每 2 天 1 次（居民）"
    assert labelled([row], "en")[0][2] == row[2]  # the English page as it always was


def test_rules_left_out_and_a_clock_not_known_are_said_too():
    section = {"quota_changes": [*CHANGES, {**CHANGES[0], "from": "2026-03-02T06:00:00+00:00"}],
               "quota_changes_left_out": 1}  # fmt: skip
    row = next(r for r in exits_rows(section, "Mars/Base") if r[1] == "quota_changes")
    assert row[2] == (
        "start off; (1 more rule not listed); 04:00 UTC 1 every 2 days (resident); 06:00 UTC off"
    )
    assert labelled([row], "zh-CN")[0][2] == (
        "开始时 关闭；（另有 1 条规则未列出）；04:00 UTC 每 2 天 1 次（居民）；06:00 UTC 关闭"
    )


# --- the district's compounds sheet -------------------------------------------------------


def test_the_chinese_compounds_sheet_says_whether_a_quota_is_on_in_words():
    compound = {"id": "c1", "gates": ["gate-01"], "households": 2, "exits": 3,
                "histogram": {"1": 1, "2": 1}, "over_quota_households": 0,
                "quota": {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident"],
                          "timezone": "Asia/Shanghai"}}  # fmt: skip
    off = {**compound, "id": "c2", "quota": {**compound["quota"], "enabled": False}}
    exits = {"quota_enabled": True, "quota_exits": 1, "period_days": 2, "households": 2,
             "exits": 3, "max": 2, "over_quota_households": 0}  # fmt: skip
    exits["compounds"] = [compound, off]
    rows = compound_rows({"exits_per_household": exits, "by_gate": [{"kiosk_id": "gate-01"}]})
    header, *sheet = worded(rows, file_words("zh-CN"))
    enabled = rows[0].index("quota_enabled")
    said = header.index("外出限额（文字）")
    assert [r[enabled] for r in sheet] == [True, True, False]  # the value column, unchanged
    assert [r[said] for r in sheet] == ["是", "是", "否"]
    assert [r[header.index("计入的身份（文字）")] for r in sheet][1:] == ["居民", "居民"]
    assert header[: len(rows[0])] == [file_words("zh-CN")(f"col.{c}") for c in rows[0]]


# --- the form's badge, in a browser ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from test_browser import DemoThread

    d = DemoThread(tmp_path_factory.mktemp("shift-found2")).start()
    yield d
    d.stop()


@pytest.mark.browser
def test_the_form_offers_the_listed_dwelling_as_the_unit_is_typed(demo, browser):
    from test_guard_screens_browser import signed_in

    core = demo.session.core
    today = core.clock.now().date()
    until = today.replace(year=today.year + 1)
    core.lists.add_quarantine(QUARANTINED, None, str(today), str(until), "root")
    page = signed_in(browser, demo, "/guard/register?lang=zh-CN")
    try:
        page.fill("#person-form input[name=unit]", "D404")
        page.press("#person-form input[name=unit]", "Tab")  # its change
        badge = page.locator("#unit-check")
        badge.filter(has_text="是否是 D-404（居家隔离中）？").wait_for()
        assert "户号 D404 不是本闸口所知的任何一户" in badge.inner_text()
        badge.get_by_role("button", name="改为 D-404").click()
        assert page.input_value("#person-form input[name=unit]") == "D-404"
        badge.filter(has_text="该户正处于居家隔离期").wait_for()
    finally:
        page.context.close()
