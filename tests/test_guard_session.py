"""The guard's session lasts a configurable shift, the console warns before it ends, and an
action after the end goes through the login page and then completes (issue 17 item 4)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from guard_support import BASE, GUARD_PW, add_event, close_core, login, make_core

from kiosk.config import parse_config


@pytest.fixture
def guard_core(data_dir, clock, monkeypatch):
    c = make_core(data_dir, clock, monkeypatch, parse_config({"web": {"session_hours": 8}}))
    yield c
    close_core(c)


def browser_post(guard_client, path: str, csrf: str, **data):
    return guard_client.post(
        path,
        data={"csrf": csrf, **data},
        headers={"Origin": BASE, "Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )


def sign_in_again(guard_client, location: str):
    """Through the login page the expired session was sent to, carrying the cut-off action."""
    page = guard_client.get(location).text
    assert 'id="session-ended"' in page
    resume = html.unescape(re.search(r'name="resume" value="([^"]+)"', page).group(1))
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    return guard_client.post(
        "/guard/login",
        data={"name": "alice", "password": GUARD_PW, "csrf": token, "resume": resume},
        headers={"Origin": BASE},
        follow_redirects=False,
    )


def test_pages_carry_the_time_left_of_the_shift_and_when_to_warn(guard_client, clock):
    login(guard_client)
    page = guard_client.get("/guard").text
    assert 'data-session-left-s="28800"' in page and 'data-session-warn-s="600"' in page
    clock.advance(7.5 * 3600)
    assert 'data-session-left-s="1800"' in guard_client.get("/guard").text
    assert 'id="session-warning"' in page


def test_an_action_after_the_shift_ended_completes_after_signing_in_again(
    guard_client, guard_core, clock
):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)  # the shift is over
    response = browser_post(
        guard_client, "/guard/alarms/ack", csrf, key="event:1@1", resolution="sent_home"
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/guard/login?next=/guard&resume=")
    assert not [
        a for a in guard_core.store.audits() if a["action"] == "alarm_ack"
    ]  # nothing done yet
    signed_in = sign_in_again(guard_client, location)
    assert signed_in.status_code == 200 and 'data-auto="1"' in signed_in.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', signed_in.text))
    assert form["key"] == "event:1@1" and form["resolution"] == "sent_home"
    done = guard_client.post(
        "/guard/alarms/ack",
        data={k: html.unescape(v) for k, v in form.items()},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "err=" not in done.headers["location"]
    [ack] = [a for a in guard_core.store.audits() if a["action"] == "alarm_ack"]
    assert ack["detail"]["resolution"] == "sent_home" and ack["actor"] == "alice"


def test_a_cut_off_gate_opening_waits_for_the_guards_click(guard_client, guard_core, clock):
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)
    response = browser_post(
        guard_client,
        "/guard/manual",
        csrf,
        decision="pass",
        subject="none",
        reason="known",
        direction="in",
    )
    signed_in = sign_in_again(guard_client, response.headers["location"])
    assert 'data-auto="0"' in signed_in.text and 'action="/guard/manual"' in signed_in.text
    assert guard_core.store.last_seq == 0


def test_a_forged_or_stale_resume_token_is_ignored(guard_client, guard_core, clock):
    sessions = guard_client.app.state.guard.auth.sessions
    token = sessions.resume_token("/guard/alarms/ack", [("key", "event:1")], "alice")
    resume = sessions.read_resume(token)
    assert (resume.path, resume.fields, resume.name) == (
        "/guard/alarms/ack",
        [("key", "event:1")],
        "alice",
    )
    assert sessions.read_resume(token[:-2] + "xx") is None
    assert sessions.resume_token("/guard/alarms/ack", [("note", "x" * 5000)], "alice") is None
    assert sessions.read_resume(sessions.resume_token("/guard/login", [], "alice")) is None
    clock.advance(601)
    assert sessions.read_resume(token) is None
    page = guard_client.get("/guard/login?resume=" + token).text
    assert 'name="resume"' not in page


def test_the_live_stream_stops_when_the_shift_ends(guard_core, clock):
    import asyncio

    from test_ui_kiosk import _guard_app, read_sse

    add_event(guard_core)
    app, cookie = _guard_app(guard_core)

    def end_the_shift(events: list) -> None:
        if [name for name, _ in events] == ["row", "alarms"]:
            clock.advance(12 * 3600 + 1)  # _guard_app's sessions last the default 12 h
            guard_core.bus.publish({"type": "health", "faults": {}, "deciding": True})

    events = asyncio.run(
        read_sse(
            app,
            "/guard/events?after=0",
            headers={"cookie": cookie},
            on_event=end_the_shift,
            until=lambda ev: bool(ev) and ev[-1][0] == "expired",
        )
    )
    assert [name for name, _ in events] == ["row", "alarms", "state", "expired", "status"]


def test_a_cut_off_list_entry_is_shown_in_the_guards_words_after_signing_in_again(
    guard_client, guard_core, clock
):
    """A quarantine entry typed on the lists page as the shift ended, sent, went through the
    sign-in and was shown before completing as 'once QBIrL6gKX0gzj4Mr', 'household 3-201',
    'holder 王五': the form's one-time token and its field names, in English on a Chinese
    console. It says each field by the form's own label, and no token."""
    from guard_support import hidden_fields

    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/lists").text, "quarantine-form")
    clock.advance(8 * 3600 + 1)
    typed = {"household": "3-201", "holder": "王五", "until": "2026-03-20", "note": "返乡"}
    csrf = fields.pop("csrf")
    response = browser_post(guard_client, "/guard/lists/quarantine/add", csrf, **fields | typed)
    page = sign_in_again(guard_client, response.headers["location"]).text
    facts = page.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    shown = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", facts))
    assert shown == {"户号": "3-201", "持证人": "王五", "结束日期": "2026-03-20", "备注": "返乡"}
    # the form sent on is the one typed, token and all
    assert f'name="once" value="{fields["once"]}"' in page


def flash_err(client, response) -> str | None:
    """The error banner on the page a sign-in sent the guard to, if any."""
    assert response.status_code == 303, response.text[:300]
    if "err=" not in response.headers["location"]:
        return None
    page = client.get(response.headers["location"]).text
    found = re.search(r'class="flash err"[^>]*>(.*?)</', page, re.S).group(1)
    return html.unescape(found).removeprefix("✖").strip()


def sign_in_with(guard_client, resume: str, name: str = "alice", password: str = GUARD_PW):
    """Signed in as ``name`` from a fresh sign-in page (the last sign-in's cookie gone)."""
    guard_client.cookies.clear()
    page = guard_client.get("/guard/login").text
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    return guard_client.post(
        "/guard/login",
        data={"name": name, "password": password, "csrf": token, "resume": resume},
        headers={"Origin": BASE},
        follow_redirects=False,
    )


def test_a_cut_off_registration_signed_in_for_too_late_is_said_not_completed(
    guard_client, guard_core, clock
):
    """An elderly resident's registration sent as the shift ended; the guard went to fetch
    her ID card and signed in 11 minutes later: the console went to the live page, no word,
    nothing recorded, though the sign-in page had promised it would complete. The sign-in
    page says the limit, and after it the guard is told which action was not completed."""
    from guard_support import ADMIN_PW, hidden_fields

    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/register").text, "person-form")
    clock.advance(8 * 3600 + 1)
    typed = {"name": "Zhang Guiying", "phone": "13800138000", "unit": "3-201", "decision": "pass"}
    typed |= {"id_number": "110101194001011234", "reason": "lives here"}
    csrf = fields.pop("csrf")
    sent = browser_post(guard_client, "/guard/register/person", csrf, **fields | typed)
    location = sent.headers["location"]
    assert not [v for v in typed.values() if len(v) > 4 and v in location]  # no field in clear
    page = guard_client.get(location).text
    assert "请在 10 分钟内重新登录" in page  # the promise says its limit
    resume = html.unescape(re.search(r'name="resume" value="([^"]+)"', page).group(1))
    clock.advance(11 * 60)
    lapsed = guard_client.get(location).text  # the page drawn again says it too
    assert "您刚才的人员登记未完成" in lapsed and 'name="resume"' not in lapsed
    other = sign_in_with(guard_client, resume, "root", ADMIN_PW)
    assert flash_err(guard_client, other) is None  # not hers: said to the guard who made it
    said = flash_err(guard_client, sign_in_with(guard_client, resume))
    assert said == "您刚才的人员登记未完成：重新登录时已超过 10 分钟。请重新操作。"
    assert guard_core.store.last_seq == 0


def test_a_cut_off_action_offered_once_is_not_said_lapsed_after(guard_client, guard_core, clock):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)
    sent = browser_post(guard_client, "/guard/alarms/ack", csrf, key="event:1", resolution="other")
    page = guard_client.get(sent.headers["location"]).text
    resume = html.unescape(re.search(r'name="resume" value="([^"]+)"', page).group(1))
    assert 'id="resume-form"' in sign_in_with(guard_client, resume).text
    clock.advance(11 * 60)  # the sign-in link, from the browser's history
    assert flash_err(guard_client, sign_in_with(guard_client, resume)) is None


def guard_posts(routes, prefix: str = ""):
    """(path, route name) of every POST route of the console, through included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI >= 0.120)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from guard_posts(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif "POST" in (getattr(route, "methods", None) or ()):
            yield prefix + route.path, route.name


def test_every_action_a_session_end_can_cut_off_has_its_words(guard_client):
    """What the guard is told of a cut-off action no longer kept names it in words."""
    from ui import i18n
    from ui.auth import is_resumable

    posts = [(p, n) for p, n in guard_posts(guard_client.app.routes) if is_resumable(p)]
    assert len(posts) > 20
    assert [n for _p, n in posts if not i18n.has(f"session.act.{n}")] == []


def test_a_cut_off_evacuation_waits_for_the_guards_click(guard_client, guard_core, clock):
    """An evacuation confirmed as the shift ended went on by itself after signing in, with no
    click, up to 10 minutes later: the gate held open for everyone for an hour on a fire long
    put out. Starting it, and ending it (the gate locks again), each wait for the guard."""
    login(guard_client)
    form = guard_client.get("/guard/health").text.split('action="/guard/evacuation"', 1)[1]
    found = re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.split("</form>")[0])
    start = {k: html.unescape(v) for k, v in found}
    csrf = start.pop("csrf")
    clock.advance(8 * 3600 + 1)
    typed = {"cause": "fire", "minutes": "60", "confirm": "yes"}
    sent = browser_post(guard_client, "/guard/evacuation", csrf, **start | typed)
    page = sign_in_again(guard_client, sent.headers["location"]).text
    assert 'data-auto="0"' in page and "门将对所有人保持打开" in page
    assert guard_core.runner.engine.evacuation is None  # nothing done until the click
    guard_client.cookies.clear()
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)
    sent = browser_post(guard_client, "/guard/evacuation/end", csrf)
    page = sign_in_again(guard_client, sent.headers["location"]).text
    assert 'data-auto="0"' in page and "门将重新上锁" in page


def cut_off_manual_pass(guard_client, guard_core, clock, subject: str):
    """A manual pass about ``subject`` sent as the shift ended: the sign-in link it led to."""
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)
    sent = browser_post(
        guard_client, "/guard/manual", csrf, decision="pass", subject=subject, reason="known"
    )
    return sent.headers["location"]


def test_a_cut_off_manual_pass_says_whom_it_is_for_as_the_live_form_did(
    guard_client, guard_core, clock
):
    """The page offering a cut-off manual pass again said "this opens the gate: check the
    person is still there", and not who: the subject was left out. It says whom, drawn as the
    live form's confirmation line (masked for the role as there)."""
    add_event(guard_core, decision="deny", reasons=("no_pass",), household="3-201", holder="Li Wei")
    login(guard_client)
    live = guard_client.get("/guard").text
    who = html.unescape(re.search(r'id="subject-last" value="1" data-who="([^"]+)"', live)[1])
    guard_client.cookies.clear()
    page = sign_in_again(guard_client, cut_off_manual_pass(guard_client, guard_core, clock, "1"))
    facts = page.text.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert f"<dt>本次操作的对象</dt><dd>{html.escape(who)}</dd>" in facts
    assert 'data-auto="0"' in page.text


def test_a_cut_off_manual_pass_about_a_passage_decided_meanwhile_is_refused_when_drawn(
    guard_client, guard_core, clock
):
    add_event(guard_core, decision="deny", reasons=("no_pass",), household="3-201", holder="Li Wei")
    location = cut_off_manual_pass(guard_client, guard_core, clock, "1")
    add_event(guard_core, kind="manual", decision="manual_deny", operator="root",
              flags=("overrides:1",), reasons=("manual",))  # fmt: skip
    page = sign_in_again(guard_client, location)
    assert page.status_code == 303
    assert "root" in flash_err(guard_client, page)  # who decided it, as the live form says


#: The console's pages, walked for their forms (with a row of each kind, below).
FORM_PAGES = ("/guard", "/guard/register", "/guard/passes", "/guard/lists", "/guard/health",
              "/guard/calibration", "/guard/community/returnees", "/guard/community/services",
              "/guard/community/handover", "/guard/community/people",
              "/guard/community/imports")  # fmt: skip
_TAG = re.compile(r'<(input|select|textarea|button)\b([^>]*)>(.*?)(?=<(?:input|select|textarea|button)\b|$)', re.S)  # fmt: skip  # noqa: E501


def posted_fields(page: str):
    """(action, field, values) of every form posting on ``page``: a field's values are its
    options (a list, a radio, a box, a button), its hidden value, else one typed text. A
    file's form is never carried through the sign-in (only a form's text is)."""
    for form in re.finditer(r'<form\b([^>]*method="post"[^>]*)>(.*?)</form>', page, re.S):
        if "multipart/form-data" in form[1]:
            continue
        action = html.unescape(re.search(r'action="([^"]*)"', form[1])[1])
        found: dict[str, set[str]] = {}
        for tag in _TAG.finditer(form[2]):
            name = re.search(r'\bname="([^"]+)"', tag[2])
            if name is None:
                continue
            value = re.search(r'\bvalue="([^"]*)"', tag[2])
            options = re.findall(r'<option value="([^"]*)"', tag[3]) if tag[1] == "select" else []
            typed = tag[1] in ("input", "textarea") and not re.search(r'type="(hidden|radio|checkbox)"', tag[2])  # fmt: skip  # noqa: E501
            kept = options or ([] if typed or value is None else [html.unescape(value[1])])
            found.setdefault(name[1], set()).update(kept or ["值"])
        for name, values in found.items():
            yield action, name, values


def with_a_row_of_each_kind(admin, core) -> None:
    """An open alarm, a pass, list entries, a returnee and a service request: their forms."""
    from guard_support import post

    add_event(core, decision="deny", reasons=("fever",), temp_c=38.4, household="3-201")
    post(admin, "/guard/passes", admin.csrf, household="3-201", holder="Li Wei", days="1")
    post(admin, "/guard/lists/quarantine/add", admin.csrf, household="4-1", until="2099-03-20")
    post(admin, "/guard/lists/households/add", admin.csrf, household="4-2", residents="2")
    post(admin, "/guard/community/returnees", admin.csrf, name="Wang", household="3-201",
         origin="X", date_back="2026-03-01", days="14")  # fmt: skip
    post(admin, "/guard/community/services", admin.csrf, household="3-201", kind="food")
    tomorrow = core.clock.now().astimezone(ZoneInfo(core.config.site.timezone)) + timedelta(1)
    day = tomorrow.date().isoformat()
    shift = post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
                 starts=f"{day}T08:00", ends=f"{day}T16:00")  # fmt: skip
    assert shift.status_code == 303  # not over yet: its remove button is drawn


def test_every_field_a_cut_off_form_posts_is_said_in_words(guard_core):
    """A cut-off alarm closed as "sent home" was offered again on a Chinese console as
    "resolution sent_home", an evacuation as "cause fire minutes 60": the resume page knew the
    words of some forms' fields only. Every field of every form of the console that a
    session's end can cut off is said by its label (both languages), and a code by its
    words, never a raw key or value."""
    from guard_support import ADMIN_PW, make_app, signed_in

    from ui.auth import is_resumable
    from ui.guard.registrations import HOLDS
    from ui.guard.session import NOT_SAID, resume_facts

    app, site_tz = make_app(guard_core), ZoneInfo(guard_core.config.site.timezone)
    routes = [(re.sub(r"\{\w+\}", "[^/]+", p) + "$", n) for p, n in guard_posts(app.routes)]
    seen: dict[tuple[str, str], set[str]] = {}
    with signed_in(app, "root", ADMIN_PW) as admin:
        with_a_row_of_each_kind(admin, guard_core)
        for page in FORM_PAGES:
            for action, name, values in posted_fields(admin.get(page).text):
                if is_resumable(action):
                    route = next(n for p, n in routes if re.match(p, action))
                    seen.setdefault((route, name), set()).update(values)
    for route in ("register_person", "register_vehicle", "manual"):  # a hold's confirmation
        for hold in HOLDS:
            seen[(route, f"{hold}_reason")] = {"值"}
    seen[("list_edit", "note")] = {"值"}  # a revocation's confirmation asks why
    for route in ("register_person", "register_vehicle"):  # asked again: the record it names
        assert (route, "again") in seen
        seen[(route, "again")] = {"1"}
    assert seen[("shift_remove", "guard")] == {"alice"}
    assert len({r for r, _n in seen}) > 15
    raw = []
    for (route, name), values in sorted(seen.items()):
        for value in sorted(v for v in values if v):  # an empty field is not said
            for lang in ("zh-CN", "en"):
                facts = resume_facts(lang, route, [(name, value)], site_tz)
                if name in NOT_SAID or name.startswith(("confirm_", "was_", "csrf")):
                    assert facts == [] or name == "csrf", (route, name)
                    continue
                [(label, shown)] = facts
                account = (route, name) == ("shift_remove", "guard")  # a name, not a code
                code = lang == "zh-CN" and not account and re.fullmatch(r"[a-z][a-z_]*", value)
                stored_time = re.match(r"\d{4}-\d\d-\d\dT", shown)  # a UTC time as stored
                if label == name or (code and shown == value) or stored_time:
                    raw.append((route, name, value, lang))
    assert raw == []


def test_a_cut_off_shift_removal_says_whose_shift_in_the_sites_time():
    """A shift's remove button posts the guard, start and end its page showed (stored UTC
    times): the resume page says them as that page did, in the site's time to the minute;
    a registration asked again is said without the record it named (``again``)."""
    from ui.guard.session import resume_facts

    shanghai = ZoneInfo("Asia/Shanghai")
    sent = [("guard", "alice"), ("starts_at", "2026-03-20T00:00:00+00:00"),
            ("ends_at", "2026-03-20T08:00:00+00:00")]  # fmt: skip
    assert resume_facts("zh-CN", "shift_remove", sent, shanghai) == [
        ("保安", "alice"), ("开始", "2026-03-20 08:00"), ("结束", "2026-03-20 16:00")
    ]  # fmt: skip
    asked = [("name", "Zhang Guiying"), ("again", "1")]
    assert resume_facts("zh-CN", "register_person", asked, shanghai) == [("姓名", "Zhang Guiying")]


def test_a_cut_off_alarm_closing_is_said_in_chinese(guard_client, guard_core, clock):
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.4)
    csrf = login(guard_client)
    clock.advance(8 * 3600 + 1)
    sent = browser_post(
        guard_client, "/guard/alarms/ack", csrf, key="event:1", resolution="sent_home"
    )
    page = sign_in_again(guard_client, sent.headers["location"]).text
    facts = page.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert facts == "><dt>处理结果</dt><dd>人工复测确认，已劝返</dd>"


def test_a_cut_off_action_a_reboot_forgot_is_said_lost_to_its_guard():
    """A power cut while an elderly resident's registration waited for its guard to sign in
    again: the Pi booted again (another boot id, its monotonic clock from zero) and the
    registration vanished without a word, though a daemon restart in the same boot said it.
    A token of another boot, signed with the session key (it survives a reboot), is said lost
    to the guard who made it, no one else; bounded by the wall time where the clock is
    synchronised, and said without a time claim on a clock not synchronised yet."""
    from datetime import timedelta

    from kiosk.clock import FakeClock, FlooredClock
    from ui.auth import Lapsed, SessionManager

    key, start = b"s" * 32, FakeClock().start
    before = SessionManager(key, FakeClock(start, mono_ns=50_000 * 10**9), 3600, boot_id="b1")
    token = before.resume_token(
        "/guard/register/person",
        [("name", "Li Hua"), ("id_number", "1101")],
        "alice",
        "register_person",
    )
    assert "Li Hua" not in token and "1101" not in token and "alice" not in token

    def booted(after_s: float, synced: bool = True, wall: timedelta | None = None):
        """The checkpoint booted again ``after_s`` after the cut (up ``after_s`` / 2)."""
        clock = FakeClock(start + timedelta(seconds=after_s), int(after_s / 2 * 1e9), synced)
        if wall is not None:
            clock.set_wall(start + wall)
        return SessionManager(key, clock, 3600, boot_id="b2")

    lost = Lapsed("register_person", expired=False)
    after = booted(120)
    assert after.read_resume(token) is None
    assert after.lapsed_resume(token, "alice") == lost
    assert after.lapsed_resume(token) == lost  # the sign-in page, before anyone signs in
    assert after.lapsed_resume(token, "bob") is None  # another guard's sign-in
    # the wall time says how long: more than ten minutes, as in the same boot
    assert booted(11 * 60).lapsed_resume(token, "alice") == Lapsed("register_person", True)
    assert booted(3601).lapsed_resume(token, "alice") is None  # the sign-in link, an hour on
    # not synchronised after the reboot: the Pi reads its last shutdown's time (before the
    # cut, even) or 1970: said lost, no time claimed, while the boot is younger than the bound
    for wall in (timedelta(minutes=-30), timedelta(days=-20_000)):
        assert booted(120, synced=False, wall=wall).lapsed_resume(token, "alice") == lost
    assert booted(2 * 3601, synced=False).lapsed_resume(token, "alice") is None  # up > 1 h
    # the event log holds a synchronised stamp of two hours after the cut: known older
    floored = FlooredClock(FakeClock(start + timedelta(seconds=120), 60 * 10**9, False))
    floored.raise_floor(start + timedelta(hours=2))
    assert SessionManager(key, floored, 3600, boot_id="b2").lapsed_resume(token, "alice") is None
    # another key (a checkpoint without the session_key secret, or a forger) says nothing
    other = SessionManager(b"t" * 32, FakeClock(start + timedelta(seconds=120)), 3600, "b2")
    assert other.lapsed_resume(token, "alice") is None


def test_a_registration_cut_off_before_a_reboot_is_said_not_completed_after_it(
    guard_core, clock, monkeypatch
):
    """The sign-in page after a power cut: the console of the new boot says the registration
    was not completed, and so does the sign-in, to the guard who made it."""
    from fastapi.testclient import TestClient
    from guard_support import hidden_fields, make_app

    typed = {"name": "Zhang Guiying", "phone": "13800138000", "unit": "3-201", "decision": "pass"}
    with TestClient(make_app(guard_core), base_url=BASE) as before:
        login(before)
        fields = hidden_fields(before.get("/guard/register").text, "person-form")
        clock.advance(8 * 3600 + 1)
        csrf = fields.pop("csrf")
        location = browser_post(before, "/guard/register/person", csrf, **fields | typed)
        location = location.headers["location"]
        page = before.get(location).text
        resume = html.unescape(re.search(r'name="resume" value="([^"]+)"', page).group(1))
    clock.advance(180)
    clock.mono_ns = 60 * 10**9  # booted again a minute ago
    monkeypatch.setattr(guard_core.store, "boot_id", "the next boot")
    lost = "您刚才的人员登记未完成：检查站在此期间重启，没有保留该操作。请重新操作。"
    with TestClient(make_app(guard_core), base_url=BASE) as after:
        page = after.get(location).text
        assert lost in page and 'name="resume"' not in page
        assert flash_err(after, sign_in_with(after, resume)) == lost
    assert guard_core.store.last_seq == 0
