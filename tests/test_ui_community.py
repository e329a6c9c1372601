"""The guard console's community pages (``ui.guard.community``) on the real core."""

from __future__ import annotations

import html
import io
import re
import typing
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, console_fixtures, login, make_core, post

from kiosk.clock import FakeClock
from ui import guard, kiosk_screen
from ui.guard import community as guard_community

#: The console at 09:00 Shanghai.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))


def upload(client, kind, name, data):
    return client.post(
        "/guard/community/imports/preview",
        data={"csrf": client.csrf, "kind": kind},
        files={"file": (name, data)},
        headers={"Origin": BASE},
    )


def test_every_page_needs_a_sign_in(app):
    with TestClient(app, base_url=BASE) as client:
        for path in ("", "/map", "/returnees", "/services", "/handover", "/report", "/imports"):
            r = client.get("/guard/community" + path, follow_redirects=False)
            assert r.status_code == 303 and "/guard/login" in r.headers["location"]


def test_map_import_preview_apply_and_the_grid(admin, core):
    plan = "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-702\n3,1,1,3-1-101\n"
    page = upload(admin, "compound", "map.csv", plan.encode())
    assert re.search(r'data-key="added">3<', page.text)
    assert core.store.reader()["compound_households"].count == 0  # a preview writes nothing
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    assert post(admin, "/guard/community/imports/apply", admin.csrf, token=token).status_code == 303
    assert core.store.reader()["compound_households"].count == 3
    again = post(admin, "/guard/community/imports/apply", admin.csrf, token=token)
    assert "预览已过期" in unquote(again.headers["location"])  # in the guard's language
    core.lists.add_quarantine("3-1-702", None, "2026-02-10", "2026-02-24", "root")
    grid = admin.get("/guard/community/map").text
    assert re.search(r'class="c-home st-quarantined ".*3-1-702', grid)
    row = re.search(r'href="/guard/community/household/(\d+)"[^>]*>3-1-702', grid).group(1)
    home = admin.get(f"/guard/community/household/{row}").text
    assert "st-quarantined" in home and 'id="passages"' in home


def test_a_guard_registers_a_returnee_records_a_temperature_and_sees_no_phone(alice, core):
    r = post(alice, "/guard/community/returnees", alice.csrf, name="Wang Fang",
             household="3-2-701", phone="13812345678", origin="Wuhan", date_back="2026-02-12",
             days="14")  # fmt: skip
    assert "msg=saved" in r.headers["location"]
    page = alice.get("/guard/community/returnees").text
    assert "Wang Fang" in page and "13812345678" not in page and "138****5678" in page
    pid = re.search(r'data-person="(\d+)"', page).group(1)
    post(alice, f"/guard/community/returnees/{pid}/temperature", alice.csrf, temp_c="38.1")
    assert 'data-alarm="fever"' in alice.get("/guard/community/returnees").text
    refused = post(alice, f"/guard/community/returnees/{pid}/status", alice.csrf, status="cleared")
    assert refused.status_code == 403  # clearing is the manager's (admin's) decision
    bad = post(alice, "/guard/community/returnees", alice.csrf, name="", household="x",
               origin="y", date_back="2026-02-12", days="14")  # fmt: skip
    assert bad.status_code == 400 and "姓名：必填" in bad.text  # the form back as typed


def test_a_service_request_only_for_a_confined_household_and_its_steps(alice, core):
    note = "买菜：青菜两斤，鸡蛋一盒，送到门口"
    refused = post(alice, "/guard/community/services", alice.csrf, household="1-101",
                   kind="medicine", note=note)  # fmt: skip
    # Back to the form as typed (it came back empty: the note typed again), with the problem.
    assert refused.status_code == 400 and "既不在隔离也不在观察期" in refused.text
    form = refused.text.split('action="/guard/community/services"', 1)[1].split("</form>", 1)[0]
    assert 'value="1-101"' in form and f'value="{note}"' in form and "data-draft" in form
    assert 'value="medicine" selected' in form
    core.lists.add_quarantine("5-702", None, "2026-02-10", "2026-02-24", "alice")
    post(alice, "/guard/community/services", alice.csrf, household="5-702", kind="food")
    rid = re.search(r'data-request="(\d+)"', alice.get("/guard/community/services").text).group(1)
    post(alice, f"/guard/community/services/{rid}/take", alice.csrf)
    post(alice, f"/guard/community/services/{rid}/done", alice.csrf)
    page = alice.get("/guard/community/services").text
    assert f'data-request="{rid}" data-state="done"' in page


def test_a_handover_from_the_page(admin, alice, core, clock):
    post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
         starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    assert "alice" in alice.get("/guard/community").text
    post(alice, "/guard/community/handover", alice.csrf, incoming="root")
    page = alice.get("/guard/community/handover").text
    hid = re.search(r'data-handover="(\d+)" data-complete="no"', page).group(1)
    # The breach attempts and the guards' overrides, in the guard's language.
    assert re.search(r'<dt>隔离人员被拦</dt><dd data-key="quarantine_breaches">0<', page)
    assert re.search(r'<dt>保安改判</dt><dd data-key="overrides">0<', page)
    english = alice.get("/guard/community/handover?lang=en").text
    assert "<dt>Quarantine breach attempts</dt>" in english
    assert "<dt>Guard overrides</dt>" in english
    post(alice, f"/guard/community/handover/{hid}/ack", alice.csrf)
    post(admin, f"/guard/community/handover/{hid}/ack", admin.csrf)
    assert (
        f'data-handover="{hid}" data-complete="yes"' in admin.get("/guard/community/handover").text
    )


def test_the_report_page_and_its_xlsx_and_csv(admin, core):
    from kiosk.store import EventDraft

    core.store.append(EventDraft(direction="in", decision="pass", household="1-1", temp_c=36.5))
    page = admin.get("/guard/community/report?day=2026-02-12").text
    assert re.search(r'data-category="people" data-item="in"><td>人员进出</td><td>进入</td><td>1<',
                     page)  # fmt: skip
    xlsx = admin.get("/guard/community/report.xlsx?day=2026-02-12")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["daily report"]
    cells = {(r[0], r[1]): r[2] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells[("people", "in")] == 1
    assert "people,in,1" in admin.get("/guard/community/report.csv?day=2026-02-12").text
    assert admin.get("/guard/community/report.pdf?day=2026-02-12").status_code == 400
    assert admin.get("/guard/community/report.csv?day=garbage").status_code == 400
    assert "day: expected" in admin.get("/guard/community/report?day=garbage").text


def test_the_report_files_are_not_kept_in_the_browser_cache(admin):
    """Before: every other download of the console answered ``Cache-Control: no-store``, but
    the day's report (.csv, .xlsx) had none: the office PC's browser could keep a copy of it
    in its disk cache, outside retention."""
    for fmt in ("csv", "xlsx"):
        got = admin.get(f"/guard/community/report.{fmt}?day=2026-02-12")
        assert got.status_code == 200 and got.headers.get("cache-control") == "no-store", fmt


def test_imports_are_for_admins(alice):
    assert (
        upload(alice, "compound", "m.csv", b"building,floor,household\n1,1,1\n").status_code == 403
    )


@pytest.mark.parametrize(
    ("kind", "sheet", "data"),
    [
        ("vehicles", "plate,household\n京A12345,1-101\n京A12345,1-102\n", "京A12345"),
        ("compound", "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-701\n", "3-1-701"),
    ],
)
def test_a_refused_sheet_is_said_on_the_page_not_in_a_url(admin, kind, sheet, data):
    # A sheet refused for a plate listed twice went back to the form as
    # /guard/community/imports?err=第 3 行：车牌 京A12345 重复出现: the plates and dwellings of the
    # clerk's list in the shared tablet's history, where neither is ever put in a URL.
    answer = upload(admin, kind, "list.csv", sheet.encode())
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    assert data in answer.text and 'class="flash err"' in answer.text
    assert 'name="token"' not in answer.text  # nothing to apply
    json = admin.post(
        "/guard/community/imports/preview",
        data={"csrf": admin.csrf, "kind": kind},
        files={"file": ("list.csv", sheet.encode())},
        headers={"Origin": BASE, "Accept": "application/json"},
    )
    assert json.status_code == 400 and data in json.json()["error"]


def test_plate_check_flags_an_unknown_plate(admin):
    page = upload(admin, "vehicles", "cars.csv", "plate,household\n京A12345,1-101\n".encode())
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    post(admin, "/guard/community/imports/apply", admin.csrf, token=token)

    def check(plate):
        return post(admin, "/guard/community/plate", admin.csrf, plate=plate)

    assert check("京a 12345").json() == {"listed": True, "known": True, "household": "1-101"}
    assert check("沪B99999").json()["known"] is False
    assert check("!").status_code == 400
    no_csrf = admin.post(
        "/guard/community/plate", data={"plate": "京A12345"}, headers={"Origin": BASE}
    )
    assert no_csrf.status_code == 403


def test_every_string_of_the_pages_exists_in_both_languages():
    from pathlib import Path

    from kiosk import compound, observation, services

    used = set()
    for path in (Path(kiosk_screen.__file__).parent / "templates").glob("community_*.html"):
        used |= set(re.findall(r'tr\(\s*["\']([a-z_.]+)["\']', path.read_text("utf-8")))
    built = {key for key in used if key.endswith(".")}  # "st." + status and the like
    assert built == {"h.", "k.", "nav.", "q.", "s.", "st."}
    summary = ("open_alarms", "fevers", "quarantine_returns", "new_returnees", "registrations",
               "vehicles", "open_requests")  # fmt: skip
    pages = ("overview", "map", "returnees", "services", "handover", "report", "imports")
    used = (used - built) | {f"st.{s}" for s in compound.STATUSES}
    used |= {f"s.{s}" for s in observation.STATUSES} | {f"k.{k}" for k in services.KINDS}
    used |= {f"q.{s}" for s in typing.get_args(services.State)}
    used |= {f"h.{k}" for k in summary} | {f"nav.{p}" for p in pages}
    used |= {"missed_check", "fever", "take", "done", "cancel"}  # tr(a.kind), tr(action)
    assert used <= set(guard_community.TEXT)
    for zh, en in guard_community.TEXT.values():
        assert zh.strip() and en.strip() and zh != en


def test_the_consoles_navigation_leads_to_the_community_pages(alice):
    page = alice.get("/guard").text
    assert 'href="/guard/community"' in page
    community = alice.get("/guard/community?lang=zh-CN").text
    assert re.search(
        r'<a href="/guard/community" class="on" aria-current="page">社区</a>', community
    )


def test_community_actions_are_audited_by_the_consoles_route_class(alice, core):
    post(alice, "/guard/community/shifts", alice.csrf, guard="alice",
         starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    refused = core.store.audits()[-1]
    assert (refused["actor"], refused["action"]) == ("alice", "shift_add_failed")
    assert refused["detail"] == {"outcome": "refused", "problem": "http_403"}
    bad = post(alice, "/guard/community/services", alice.csrf, household="1-101", kind="food")
    assert bad.status_code == 400  # the form back as typed, with the problem
    last = core.store.audits()[-1]
    # refused, by its message key, as a registration drawn again is
    assert (last["action"], last["detail"]["refused"]) == ("service_open_failed", "refused_by_core")
    assert "1-101" not in str(last["detail"])  # what was typed stays out of the audit log


@pytest.mark.slow
def test_each_ledger_change_from_the_console_writes_exactly_one_audit_row(admin, alice, core):
    """The route class and the ledger audit the same change once: one row, with who, what
    and from what to what, and the request's outcome (``kiosk.auditing``)."""

    def one_row(client, path, action, **form):
        before = core.store.audits(limit=10000)
        response = post(client, path, client.csrf, **form)
        assert response.status_code == 303 and "err=" not in response.headers["location"], path
        new = core.store.audits(after_seq=before[-1]["seq"] if before else 0, limit=100)
        assert [(a["actor"], a["action"]) for a in new] == [(client.actor, action)], path
        assert new[0]["detail"]["outcome"] == "ok"
        return new[0]["detail"]

    admin.actor, alice.actor = "root", "alice"
    one_row(admin, "/guard/lists/quarantine/add", "lists.quarantine_add", household="5-702",
            **{"from": "2026-02-10", "until": "2026-02-24"})  # fmt: skip
    added = one_row(alice, "/guard/community/returnees", "observation.register", name="Wang Fang",
                    household="3-2-701", phone="13812345678", origin="Wuhan",
                    date_back="2026-02-12", days="14")  # fmt: skip
    pid = added["person_id"]
    checked = one_row(alice, f"/guard/community/returnees/{pid}/temperature",
                      "observation.check", temp_c="38.1")  # fmt: skip
    assert checked["fever"] is True
    one_row(alice, f"/guard/community/returnees/{pid}/ack", "observation.ack",
            day="2026-02-12", kind="fever")  # fmt: skip
    escalated = one_row(admin, f"/guard/community/returnees/{pid}/status",
                        "observation.status", status="escalated")  # fmt: skip
    assert (escalated["from"], escalated["to"]) == ("observing", "escalated")
    cleared = one_row(admin, f"/guard/community/returnees/{pid}/status", "observation.status",
                      status="cleared")  # fmt: skip
    assert (cleared["from"], cleared["to"]) == ("escalated", "cleared")
    opened = one_row(alice, "/guard/community/services", "service.open", household="5-702",
                     kind="food")  # fmt: skip
    rid = opened["request_id"]
    taken = one_row(alice, f"/guard/community/services/{rid}/take", "service.taken")
    assert (taken["from"], taken["to"]) == ("open", "taken")
    finished = one_row(alice, f"/guard/community/services/{rid}/done", "service.done")
    assert (finished["from"], finished["to"]) == ("taken", "done")
    one_row(admin, "/guard/community/shifts", "roster.shift_add", guard="alice",
            starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    opened = one_row(alice, "/guard/community/handover", "handover.open", incoming="root")
    ack = f"/guard/community/handover/{opened['handover_id']}/ack"
    assert one_row(alice, ack, "handover.ack")["complete"] is False
    assert one_row(admin, ack, "handover.ack")["complete"] is True
    text = str(core.store.audits(limit=10000))
    assert "Wang Fang" not in text and "13812345678" not in text
    assert core.store.verify().ok


QUOTA_MAP = (
    "building,unit,floor,household\n3,1,7,3-1-701\n3,1,7,3-1-702\n3,1,1,3-1-101\n3,1,1,3-1-102\n"
)


def gate_denies_for_quota(core, household):
    """What the gate decides for a resident of ``household`` going out now."""
    from kiosk.passes import issue_pass
    from kiosk.policy import PassageInputs, PolicyState, decide

    now = core.clock.now()
    payload, _ = issue_pass(core.issuer_key, household, "Li", "resident", 30, now=now)
    state = PolicyState(core.trust, core.lists.current, core.history)
    cfg = core.config
    got = decide(PassageInputs("out", payload, None), state, now, cfg.policy,
                 cfg.thermometer.thermometry, core.tz)  # fmt: skip
    return "quota_exceeded" in got.reasons


@pytest.mark.parametrize("enabled", [True, False])
def test_the_maps_quota_mark_is_what_the_gate_decides(data_dir, monkeypatch, enabled):
    """The map marked "quota used" from today's exits alone: a resident's outing yesterday
    (period 2 days: the gate still says quota_exceeded) went unmarked, a staff member's exit
    on the household's code (quota_exempt) marked it, and with the quota off every household
    that went out was marked."""
    from kiosk.config import KioskConfig
    from kiosk.store import EventDraft

    clock = FakeClock(start=datetime(2026, 2, 9, 2, 0, tzinfo=UTC))  # 10:00 Shanghai
    quota = {"enabled": enabled, "exits": 1, "period_days": 2}
    core = make_core(data_dir, clock, monkeypatch, KioskConfig.model_validate(
        {"policy": {"quota": quota}}))  # fmt: skip
    try:
        cmap = core.ledgers.compound
        cmap.apply(cmap.plan_import(QUOTA_MAP.encode(), "map.csv"), "root")

        def out(household, flags=()):  # committed, then recorded: as the engine does
            draft = EventDraft(direction="out", decision="pass", household=household, flags=flags)
            core.history.record(core.store.append(draft))

        out("3-1-101")  # three days ago: outside the period
        clock.advance(2 * 86400)
        out("3-1-701")  # yesterday: inside it
        clock.advance(86400)
        out("3-1-702", flags=("quota_exempt",))  # a staff member on the household's code
        out("3-1-102")  # today
        app = FastAPI()
        guard.install(app, core)
        with TestClient(app, base_url=BASE) as admin:
            login(admin, "root", ADMIN_PW)
            page = admin.get("/guard/community/map").text
        cells = dict(
            (h, c.split())
            for c, h in re.findall(r'class="c-home ([^"]*)"><a [^>]*>([^<]+?)\s*<', page)
        )
        used = {h for h, classes in cells.items() if "st-quota_used" in classes}
        assert used == ({"3-1-701", "3-1-102"} if enabled else set())
        for household in cells:
            assert (household in used) == gate_denies_for_quota(core, household), household
        assert ("c-chip st-quota_used" in page) == enabled  # no legend for a quota that is off
    finally:
        core.close()


def test_a_household_row_the_map_does_not_have_is_not_found(admin):
    # An edited or stale link answered 200 with the "no such household" page: a 404 says it
    # to the browser, a script and the access log alike.
    for row in ("999999", "0", "-1"):
        response = admin.get(f"/guard/community/household/{row}?lang=en")
        assert response.status_code == 404, row
        assert "<html" in response.text.lower()


def test_an_import_preview_names_the_header_line_and_the_lines_skipped(admin):
    text = (
        "XX小区居家隔离人员名单,,,\n填报日期：2026年12月5日,,,\nhousehold,holder,from,until\n"
        "5-702,张伟,2026-12-01,2026-12-14\n合计,1人,,\n制表人：王五,,,\n"
    )
    page = upload(admin, "quarantine", "名单.csv", text.encode())
    assert re.search(r'data-key="added">1<', page.text)
    assert 'data-key="header_line">3<' in page.text
    assert 'data-key="skipped_title">1, 2<' in page.text
    assert 'data-key="skipped_footer">5, 6<' in page.text


def test_an_import_preview_names_the_rows_hidden_in_the_sheet(admin):
    book = openpyxl.Workbook()
    for row in (["household", "residents"], ["5-702", 2], ["9-901", 3], ["6-101", 1]):
        book.active.append(row)
    book.active.row_dimensions[3].hidden = True
    out = io.BytesIO()
    book.save(out)
    page = upload(admin, "households", "h.xlsx", out.getvalue())
    assert re.search(r'data-key="added">2<', page.text)
    assert 'data-key="skipped_hidden">3<' in page.text


def test_an_import_preview_says_which_column_was_taken_for_which_field(admin):
    text = (
        "序号,户号,姓名,手机号,隔离开始日期（必填）,隔离结束日期\n"
        "1,5-702,张伟,13800138000,2026-12-01,2026-12-14\n"
    )
    page = upload(admin, "lists", "名单.csv", text.encode())
    assert re.search(r'data-key="added">1<', page.text), page.text
    assert '<dt>户号</dt><dd data-field="household">household<' in page.text
    assert '<dt>隔离开始日期（必填）</dt><dd data-field="from">from<' in page.text
    assert 'data-key="not_kept">序号, 手机号<' in page.text
    assert "13800138000" not in page.text


def test_a_households_passages_are_in_the_guards_words(admin, core):
    """A household looked up showed its passages as the log stores them: "in", "out",
    "manual_deny", in English codes on the Chinese console. Each says its direction and
    decision in the page's language, a deny with its sign, as the live feed does."""
    from kiosk.store import EventDraft

    cmap = core.ledgers.compound
    cmap.apply(cmap.plan_import(b"building,unit,floor,household\n4,1,2,4-1-201\n", "m.csv"), "t")
    for direction, decision in (("in", "pass"), ("out", "manual_deny")):
        core.store.append(EventDraft(direction=direction, decision=decision, household="4-1-201"))
    row = cmap.row_ids()["4-1-201"]
    page = admin.get(f"/guard/community/household/{row}?lang=zh-CN").text
    passages = page[page.index('id="passages"') :]
    cells = re.findall(r"<td>([^<]*)</td>", passages)
    assert "进入" in cells and "外出" in cells, cells
    assert "✔ 通过" in cells and "✖ 人工拒绝" in cells, cells
    assert not {"in", "out", "pass", "manual_deny"} & set(cells), cells


def test_every_phone_number_field_opens_the_phones_number_pad(alice):
    """On a phone the registration's phone field brought up the dial pad, the returnee
    form's the full keyboard, letters first, for eleven digits typed at the door: every
    field for a phone number says ``inputmode="tel"``."""
    fields = []
    for path in ("/guard/register", "/guard/community/returnees"):
        page = alice.get(path).text
        fields += [(path, tag) for tag in re.findall(r'<input[^>]*name="phone"[^>]*>', page)]
    assert len(fields) == 2, fields
    assert [f for f in fields if 'inputmode="tel"' not in f[1]] == []


def test_an_import_previewed_before_the_ntp_step_applies_after_it(admin, core, clock):
    """The office's map previewed on a Pi whose clock NTP had not set yet (1970), applied a
    minute later, after NTP stepped the clock: "this preview has expired: upload the file
    again" (its fifteen minutes counted by the wall clock's jump of 56 years)."""
    real = clock.now()
    clock.set_wall(datetime(1970, 1, 1, 0, 5, tzinfo=UTC))
    clock.is_synced = False
    plan = "building,unit,floor,household\n3,1,7,3-1-701\n"
    page = upload(admin, "compound", "map.csv", plan.encode())
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    clock.advance(60)
    clock.set_wall(real + timedelta(seconds=60))
    clock.is_synced = True
    applied = post(admin, "/guard/community/imports/apply", admin.csrf, token=token)
    assert applied.status_code == 303 and "err=" not in applied.headers["location"]
    assert core.store.reader()["compound_households"].count == 1


def test_the_overview_and_returnees_count_open_alarms_as_the_handover(admin, alice, core):
    """Before: with a fever open on the live console the overview and the returnee page said
    "Open alarms 0" while the handover counted it. All three count the returnee ledger's and
    the gate's; the pages link the gate's to the live page, where they are closed."""
    from kiosk.store import EventDraft

    core.store.append(EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.6))
    post(alice, "/guard/community/returnees", alice.csrf, name="Wang Fang",
         household="3-2-701", origin="Wuhan", date_back="2026-02-12", days="14")  # fmt: skip
    pid = re.search(r'data-person="(\d+)"', alice.get("/guard/community/returnees").text)[1]
    post(alice, f"/guard/community/returnees/{pid}/temperature", alice.csrf, temp_c="38.1")
    count = re.compile(r'<span class="count" id="open-alarms">(\d+)</span>')
    gate = re.compile(r'<a id="gate-alarms" href="/guard">([^<]*)</a>')
    for path in ("/guard/community?lang=en", "/guard/community/returnees?lang=en"):
        page = alice.get(path).text
        assert count.search(page)[1] == "2", path
        assert gate.search(page)[1] == "Gate alarms open on the live page: 1", path
    post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
         starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    post(alice, "/guard/community/handover", alice.csrf, incoming="root")
    handover = alice.get("/guard/community/handover").text
    assert re.search(r'<dd data-key="open_alarms">2<', handover)


def test_no_gate_alarm_no_line_about_the_live_page(alice):
    page = alice.get("/guard/community?lang=en").text
    assert '<span class="count" id="open-alarms">0</span>' in page
    assert 'id="gate-alarms"' not in page


def test_the_manager_corrects_a_mistyped_returnee_and_the_report_counts_one(alice, admin, core):
    """A returnee registered with a typo (3-2-710 for 3-2-701) could not be corrected: the
    real person went unmatched at the gate, the wrong record raised a missed check every day,
    and clearing it to register again made the report say 2 new and 1 cleared. The manager
    now corrects the record (audited once, as every console change); a refused correction
    comes back as typed, status 400; a guard may not correct."""
    r = post(alice, "/guard/community/returnees", alice.csrf, name="王芳",
             household="3-2-710", phone="13812345678", origin="武汉", date_back="2026-02-12",
             days="14")  # fmt: skip
    assert "msg=saved" in r.headers["location"]
    pid = re.search(r'data-person="(\d+)"', admin.get("/guard/community/returnees").text)[1]
    page = admin.get("/guard/community/returnees").text
    assert f'action="/guard/community/returnees/{pid}/correct"' in page
    assert "/correct" not in alice.get("/guard/community/returnees").text
    fix = dict(name="王芳", household="3-2-701", date_back="2026-02-12", until="2026-02-25")
    path = f"/guard/community/returnees/{pid}/correct"
    assert post(alice, path, alice.csrf, **fix).status_code == 403
    old = post(admin, path, admin.csrf, **(fix | {"date_back": "0001-01-01"}))
    assert old.status_code == 400 and "返回日期：不能早于 30 天前" in old.text
    assert 'value="0001-01-01"' in old.text and 'value="3-2-701"' in old.text  # as typed
    assert core.ledgers.observation.person(int(pid)).household == "3-2-710"
    before = core.store.audits(limit=10000)[-1]["seq"]
    done = post(admin, path, admin.csrf, **fix)
    assert done.status_code == 303 and "msg=saved" in done.headers["location"]
    [row] = core.store.audits(after_seq=before, limit=100)
    assert (row["actor"], row["action"]) == ("root", "observation.correct")
    assert row["detail"]["outcome"] == "ok" and row["detail"]["fields"] == ["household"]
    assert core.ledgers.observation.current.observing("3-2-701", "王芳", date(2026, 2, 12))
    assert not core.ledgers.observation.current.observing("3-2-710", "王芳", date(2026, 2, 12))
    report = admin.get("/guard/community/report.csv?day=2026-02-12").text
    returnees = {line.split(",")[1]: line.split(",")[2] for line in report.splitlines()
                 if line.startswith("returnees")}  # fmt: skip
    assert (returnees["new"], returnees["cleared"]) == ("1", "0")


def test_a_correction_onto_another_returnee_observed_now_is_refused(admin, core):
    """Correcting the typo's record (3-2-710) to the name and household of a returnee
    observed now (3-2-701) would make them two records of one person: refused, as typed,
    nothing changed; the record's own values (``but``) are no other returnee."""
    for household in ("3-2-701", "3-2-710"):
        post(admin, "/guard/community/returnees", admin.csrf, name="王芳", household=household,
             phone="13812345678", origin="武汉", date_back="2026-02-12", days="14")  # fmt: skip
    typo = next(p for p in core.ledgers.observation.people() if p.household == "3-2-710")
    path = f"/guard/community/returnees/{typo.id}/correct"
    fix = dict(name="王 芳", household="3-2-701", date_back="2026-02-12", until="2026-02-25")
    refused = post(admin, path, admin.csrf, **fix)
    assert refused.status_code == 400 and 'value="3-2-701"' in refused.text
    assert core.ledgers.observation.person(typo.id).household == "3-2-710"
    own = post(admin, path, admin.csrf, **(fix | {"household": "3-2-710",
                                                   "until": "2026-02-26"}))  # fmt: skip
    assert own.status_code == 303


def test_each_returnees_status_button_names_its_row(admin):
    """The admin's status button of each returnee's row ("✓") had no name but the mark: a
    screen reader heard "✓, button" on every row. It says whose status it sets, named as the
    row shows them."""
    for name, household in (("Wang Fang", "3-2-701"), ("Li Lei", "3-2-702")):
        post(admin, "/guard/community/returnees", admin.csrf, name=name, household=household,
             origin="Wuhan", date_back="2026-02-12", days="14")  # fmt: skip
    page = admin.get("/guard/community/returnees?lang=en").text
    rows = re.findall(r'<tr data-person="(\d+)"><td>\d+</td><td>([^<]*)</td>.*?</tr>', page, re.S)
    assert len(rows) == 2
    forms = re.findall(r'action="/guard/community/returnees/\d+/status".*?</form>', page, re.S)
    spoken = [re.search(r'<span class="sr-only">([^<]*)</span>', f) for f in forms]
    assert [s and s.group(1) for s in spoken] == [f"Status: #{i} {n}" for i, n in rows]


def correction_form(page: str, pid: int) -> dict[str, str]:
    """The hidden fields of person ``pid``'s correction form as ``page`` drew it."""
    form = page.split(f'action="/guard/community/returnees/{pid}/correct"', 1)[1]
    form = form.split("</form>", 1)[0]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_correction_of_a_record_corrected_since_the_page_was_drawn_is_refused(admin, core):
    """Two managers with the ledger open: the first corrected the household, then the
    second, whose page still showed the typo, corrected the last day, and the record took
    the second's form whole (the first's household put back, unseen). A correction now
    carries the version of the record its page showed: one corrected since is refused, the
    form comes back on the record now with this manager's change, and sent again it is saved;
    both corrections are in the record's history and the audit."""
    post(admin, "/guard/community/returnees", admin.csrf, name="王芳", household="3-2-710",
         phone="13812345678", origin="武汉", date_back="2026-02-12", days="14")  # fmt: skip
    [person] = core.ledgers.observation.people()
    path = f"/guard/community/returnees/{person.id}/correct"
    shown = dict(name="王芳", household="3-2-710", date_back="2026-02-12", until="2026-02-25")
    first = correction_form(admin.get("/guard/community/returnees").text, person.id)
    second = correction_form(admin.get("/guard/community/returnees?lang=en").text, person.id)
    assert first["seen"] and first["seen"] == second["seen"]
    done = post(
        admin, path, admin.csrf, **(shown | {"household": "3-2-701", "seen": first["seen"]})
    )
    assert done.status_code == 303
    was = {k: v for k, v in second.items() if k.startswith("was_")}  # what it showed
    late = shown | was | {"until": "2026-02-20", "seen": second["seen"]}
    refused = post(admin, path, admin.csrf, **late)
    assert refused.status_code == 400
    said = html.unescape(refused.text)
    assert f"person {person.id} changed since the page was drawn" in said
    assert "it is now name 王芳, household 3-2-701, back 2026-02-12, until 2026-02-25" in said
    # this manager's change kept, the other's household as it is now (not the stale 3-2-710)
    assert 'value="2026-02-20"' in refused.text and 'value="3-2-710"' not in refused.text
    now = core.ledgers.observation.person(person.id)
    assert (now.household, now.observation_until) == ("3-2-701", date(2026, 2, 25))
    assert len(core.ledgers.observation.corrections(person.id)) == 1
    again = correction_form(refused.text, person.id)
    assert again["seen"] != second["seen"]  # the record as it is now
    fixed = post(
        admin, path, admin.csrf, **(late | {"household": "3-2-701", "seen": again["seen"]})
    )
    assert fixed.status_code == 303
    now = core.ledgers.observation.person(person.id)
    assert (now.household, now.observation_until) == ("3-2-701", date(2026, 2, 20))
    kept = core.ledgers.observation.corrections(person.id)
    assert [(c.household, c.observation_until) for c in kept] == [
        ("3-2-710", date(2026, 2, 25)), ("3-2-701", date(2026, 2, 25))
    ]  # fmt: skip
    audits = [a["action"] for a in core.store.audits(limit=1000) if "correct" in a["action"]]
    assert audits == ["observation.correct", "returnee_correct_failed", "observation.correct"]


def correction_sent(page: str, pid: int) -> dict[str, str]:
    """Every field of person ``pid``'s correction form as ``page`` drew it: what pressing
    its button sends."""
    form = page.split(f'action="/guard/community/returnees/{pid}/correct"', 1)[1]
    form = form.split("</form>", 1)[0]
    found = re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found if k != "csrf"}


def _two_managers(admin, core):
    """A returnee registered with a typo; both managers' pages drawn; the first's fix of the
    household (3-2-710 → 3-2-701) saved from the first page. Returns the person, the
    correction's path and the second page's form as drawn."""
    post(admin, "/guard/community/returnees", admin.csrf, name="王芳", household="3-2-710",
         phone="", origin="武汉", date_back="2026-02-12", days="14")  # fmt: skip
    [person] = core.ledgers.observation.people()
    path = f"/guard/community/returnees/{person.id}/correct"
    first = correction_sent(admin.get("/guard/community/returnees").text, person.id)
    second = correction_sent(admin.get("/guard/community/returnees?lang=en").text, person.id)
    assert post(admin, path, admin.csrf, **(first | {"household": "3-2-701"})).status_code == 303
    return person, path, second


def test_a_stale_correction_sent_again_as_redrawn_keeps_the_first_managers_fix(admin, core):
    """Refused because the first manager had corrected the household since, the second's
    form came back with ITS page's values in every field and the record's version now:
    pressing Save again (the natural next step) put 3-2-710 back, unseen. The form is
    redrawn on the record as it is now with only this manager's changes applied, and says
    which: sent again as redrawn, both corrections stand."""
    person, path, second = _two_managers(admin, core)
    refused = post(admin, path, admin.csrf, **(second | {"until": "2026-02-20"}))
    assert refused.status_code == 400
    again = correction_sent(refused.text, person.id)
    assert (again["household"], again["until"]) == ("3-2-701", "2026-02-20")
    assert "Your changes kept: Observed until" in html.unescape(refused.text)
    assert post(admin, path, admin.csrf, **again).status_code == 303
    now = core.ledgers.observation.person(person.id)
    assert (now.household, now.observation_until) == ("3-2-701", date(2026, 2, 20))


def test_a_field_both_managers_changed_is_shown_with_both_values(admin, core):
    person, path, second = _two_managers(admin, core)
    refused = post(admin, path, admin.csrf, **(second | {"household": "3-2-702"}))
    assert refused.status_code == 400
    again = correction_sent(refused.text, person.id)
    assert again["household"] == "3-2-702"  # as this manager typed it
    said = html.unescape(refused.text)
    assert "Changed by both: Household (now 3-2-701)" in said  # the other's, to choose from
    assert core.ledgers.observation.person(person.id).household == "3-2-701"


def test_a_stale_correction_is_said_in_the_guards_language(admin, core):
    post(admin, "/guard/community/returnees", admin.csrf, name="王芳", household="3-2-710",
         phone="", origin="武汉", date_back="2026-02-12", days="14")  # fmt: skip
    [person] = core.ledgers.observation.people()
    path = f"/guard/community/returnees/{person.id}/correct"
    fix = dict(name="王芳", household="3-2-701", date_back="2026-02-12", until="2026-02-25")
    refused = post(admin, path, admin.csrf, **(fix | {"seen": "0123456789abcdef"}))
    assert refused.status_code == 400
    assert "页面显示后已被更正" in refused.text and "现为 王芳，户号 3-2-710" in refused.text
    assert core.ledgers.observation.person(person.id).household == "3-2-710"


def test_each_returnees_controls_tell_two_rows_of_one_name_apart(alice, admin):
    """Two returnees of one name (Wang Fang of 3-2-701 and of 5-1-302; a role that sees
    initials, any two of one initial): a screen reader heard "Temperature: Wang Fang" and
    "Record: Wang Fang" on both rows, never which. Every control of a row says the row's
    number with the name as the row shows it (its first two cells)."""
    for household in ("3-2-701", "5-1-302"):
        post(admin, "/guard/community/returnees", admin.csrf, name="Wang Fang",
             household=household, origin="Wuhan", date_back="2026-02-12", days="14")  # fmt: skip
    for client, controls in ((alice, 2), (admin, 10)):
        page = client.get("/guard/community/returnees?lang=en").text
        rows = re.findall(r'<tr data-person="(\d+)"><td>\d+</td><td>([^<]*)</td>(.*?)</tr>',
                          page, re.S)  # fmt: skip
        assert len(rows) == 2 and {shown for _, shown, _ in rows} == {"Wang Fang"}
        for pid, shown, cells in rows:
            said = re.findall(r'aria-label="([^"]*)"|<span class="sr-only">([^<]*)</span>', cells)
            names = [label or span for label, span in said]
            assert len(names) == controls, names
            assert all(n.endswith(f": #{pid} {shown}") for n in names), names
