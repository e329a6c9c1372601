"""Guard console regressions: defects found in the console and its community pages, each pinned:
hostile or odd input answers 4xx (never a 5xx), the error banner says only what the console
wrote, and a cut-off action cannot be planted by someone who was never signed in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, console_fixtures, login, post, refused_with, signed_in

from ui import guard

#: Larger than any SQLite integer.
HUGE = str(2**70)


def _client(app, *who):
    return signed_in(app, *who, raise_server_exceptions=False)


#: The console at 09:00 Shanghai; a server error is a 500 answer, as a guard's browser gets it.
clock, core, app, alice, admin = console_fixtures(
    datetime(2026, 2, 12, 1, 0, tzinfo=UTC), raise_server_exceptions=False
)


@pytest.mark.parametrize(
    "path",
    [
        f"/guard/community/handover/{HUGE}/ack",
        f"/guard/community/returnees/{HUGE}/temperature",
        f"/guard/community/services/{HUGE}/take",
        f"/guard/community/services/{HUGE}/cancel",
    ],
)
def test_a_record_number_past_any_integer_is_refused_not_a_server_error(alice, core, path):
    before = core.store.last_audit_seq
    response = post(alice, path, alice.csrf, temp_c="37.0", day="2026-02-12", kind="fever")
    # back to the page with the problem in words (tests/test_guard_outage_pages.py)
    assert response.status_code == 303 and "err=" in response.headers["location"]
    assert core.store.last_audit_seq > before  # the refusal is audited like any other


def test_a_request_refused_by_validation_is_audited_as_refused_not_as_an_internal_error(
    alice, core
):
    response = post(alice, f"/guard/community/services/{HUGE}/take", alice.csrf)
    assert response.status_code == 303 and "err=" in response.headers["location"]
    row = core.store.audits()[-1]
    assert (row["actor"], row["action"]) == ("alice", "service_step_failed")
    assert row["detail"] == {"outcome": "refused", "problem": "http_422"}


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_a_report_day_outside_the_years_the_console_takes_is_refused_not_a_server_error(alice, day):
    page = alice.get(f"/guard/community/report?day={day}")
    assert page.status_code == 400 and "day: expected" in page.text
    for fmt in ("csv", "xlsx"):
        assert alice.get(f"/guard/community/report.{fmt}?day={day}").status_code == 400


@pytest.mark.parametrize(
    ("starts", "ends"),
    [("0001-01-01T00:00", "0001-01-01T10:00"), ("9999-12-31T20:00", "9999-12-31T23:59")],
)
def test_a_shift_at_the_ends_of_the_calendar_is_refused_not_a_server_error(
    admin, core, starts, ends
):
    response = post(
        admin, "/guard/community/shifts", admin.csrf, guard="alice", starts=starts, ends=ends
    )
    assert response.status_code == 400  # the page drawn again, the form as typed
    assert "2000-01-01" in refused_with(admin, response)  # says what it takes
    assert core.ledgers.roster.on_duty(core.config.site.kiosk_id) == []


@pytest.mark.parametrize(
    "page", ["", "/map", "/returnees", "/services", "/handover", "/report", "/imports"]
)
def test_a_link_from_anyone_cannot_put_words_in_a_community_pages_banners(alice, page):
    planted = "Session expired: call 13800138000"
    shown = alice.get(f"/guard/community{page}?err={planted}&msg=whatever").text
    assert "13800138000" not in shown
    assert 'class="flash ok"' not in shown  # only the pages' own "saved" note


def test_the_community_pages_still_show_the_problems_they_wrote(alice):
    # A refused step (a reading that is no number) is its page again with the problem;
    # a refused new request comes back as typed (test_ui_community), its problem shown too.
    refused = post(alice, "/guard/community/returnees/1/temperature", alice.csrf, temp_c="abc")
    assert refused.status_code == 400 and "location" not in refused.headers
    shown = refused.text
    assert 'class="flash err"' in shown and "temp_c" not in shown.split('class="flash err"')[0]
    again = post(alice, "/guard/community/services", alice.csrf, household="1-101", kind="food")
    assert 'class="flash err"' in again.text and "既不在隔离也不在观察期" in again.text


def _login_page_resume(client, location: str) -> str | None:
    """The resume token the login page at ``location`` carries, if any."""
    import html
    import re

    found = re.search(r'name="resume" value="([^"]+)"', client.get(location).text)
    return html.unescape(found.group(1)) if found else None


def _sign_in(client, name: str, password: str, resume: str):
    import html
    import re

    page = client.get("/guard/login").text
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    return client.post(
        "/guard/login",
        data={"name": name, "password": password, "csrf": token, "resume": resume},
        headers={"Origin": BASE},
        follow_redirects=False,
    )


BROWSER_POST = {"Origin": BASE, "Accept": "text/html,application/xhtml+xml"}


def test_someone_never_signed_in_cannot_plant_an_action_for_the_next_guard_to_sign_in(app, core):
    """A stranger on the LAN posts an action with no session: the login page they are sent to
    must not carry it, or the guard who signs in from that link would make it (an action
    that does not open the gate completes by itself)."""
    core.lists.add_quarantine("5-702", None, "2026-02-10", "2026-02-24", "root")
    with TestClient(app, base_url=BASE) as stranger:
        sent = stranger.post(
            "/guard/lists/quarantine/remove",
            data={"id": "1", "confirm": "yes"},
            headers=BROWSER_POST,
            follow_redirects=False,
        )
        assert sent.status_code == 303 and "resume=" not in sent.headers["location"]
    assert core.lists.current.quarantine  # still there


def test_a_cut_off_action_completes_only_for_the_guard_who_made_it(app, core, clock):
    from guard_support import GUARD_PW

    core.lists.add_quarantine("5-702", None, "2026-02-10", "2026-02-24", "root")
    with _client(app) as alice:
        clock.advance(12 * 3600 + 1)  # alice's shift is over
        sent = alice.post(
            "/guard/lists/quarantine/remove",
            data={"id": "1", "confirm": "yes", "csrf": alice.csrf},
            headers=BROWSER_POST,
            follow_redirects=False,
        )
        resume = _login_page_resume(alice, sent.headers["location"])
        assert resume  # her own cut-off action is carried through the login page
        # The next shift's guard signs in on the same console: not under his name.
        other = _sign_in(alice, "root", ADMIN_PW, resume)
        assert other.status_code == 303 and 'id="resume-form"' not in other.text
        alice.cookies.clear()
        again = _sign_in(alice, "alice", GUARD_PW, resume)
        assert again.status_code == 200 and 'id="resume-form"' in again.text
    assert core.lists.current.quarantine  # nothing done until the resumed form is sent


def test_a_passage_is_decided_by_hand_once_a_second_press_or_guard_is_told_who_did(
    guard_client, guard_core
):
    """Two guards (or a double tap) deciding the same kiosk passage: the gate opens once and
    the log holds one decision; the second is told who decided it."""
    from guard_support import add_event, decided, gate_opening

    add_event(guard_core, decision="deny", reasons=("fever",), holder="Li Wei", temp_c=38.4)
    csrf = login(guard_client)
    form = {"decision": "pass", "subject": "1", "reason": "home to isolate"}
    with gate_opening(guard_core) as opened, decided(guard_client, guard_core):
        first = post(guard_client, "/guard/manual?lang=en", csrf, **form)
        second = post(guard_client, "/guard/manual?lang=en", csrf, **form | {"decision": "deny"})
    assert "err=" not in first.headers["location"]
    assert "err=" in second.headers["location"]
    assert "alice" in guard_client.get(second.headers["location"]).text
    assert opened.wait(5)
    manual = [e for e in guard_core.store.events() if e["kind"] == "manual"]
    assert [(e["decision"], e["flags"]) for e in manual] == [("manual_pass", ["overrides:1"])]
    # Once committed, the log says so too (a console restarted in between).
    from kiosk.overrides import Overrides

    guard_core.runner.engine.overrides = Overrides()
    third = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" in third.headers["location"]
    assert len([e for e in guard_core.store.events() if e["kind"] == "manual"]) == 1
    assert guard_core.store.audits()[-1]["detail"]["problem"] == "err.subject_decided"


@pytest.mark.parametrize("end", ["signed_out", "account_disabled", "demoted"])
def test_an_open_live_stream_stops_when_the_guard_is_signed_out_or_removed(guard_core, end):
    """ "A removed account is out at once" holds for a live page left open too: the stream
    stops sending names once the session is signed out or the account removed or demoted."""
    import asyncio

    from guard_support import add_event
    from test_ui_kiosk import read_sse

    from kiosk.accounts import hash_password
    from ui.auth import COOKIE, GuardAuth

    guard_core.accounts.add("bob", "admin", hash_password("bob-pw-123", n=2**10), "root")
    auth = GuardAuth(guard_core.accounts, guard_core.clock, key=b"k" * 32)
    app = FastAPI()
    guard.install(app, guard_core, auth)
    cookie, session = auth.sessions.issue(guard_core.accounts.get("bob"))
    add_event(guard_core)

    def end_it(events: list) -> None:
        if [name for name, _ in events] == ["row", "alarms"]:
            if end == "signed_out":
                auth.sessions.revoke(session)
            elif end == "account_disabled":
                guard_core.accounts.disable("bob", "root")
            else:
                guard_core.accounts.add("bob", "guard", hash_password("x", n=2**10), "root")
            event = add_event(guard_core, holder="Li Wei", household="3-201")
            guard_core.bus.publish({"type": "decision", "seq": event.seq, "decision": "pass"})

    events = asyncio.run(
        read_sse(
            app,
            "/guard/events?after=0",
            headers={"cookie": f"{COOKIE}={cookie}"},
            on_event=end_it,
            until=lambda ev: len(ev) > 3,  # the stream opens with rows, alarms and the state
        )
    )
    assert [name for name, _ in events][:4] == ["row", "alarms", "state", "expired"]


def _on_shift(admin, guard: str) -> None:
    # 09:00 in Shanghai on the test's clock: a shift around it.
    response = post(admin, "/guard/community/shifts", admin.csrf, guard=guard,
                    starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    assert refused_with(admin, response) is None, response.text[:300]


def test_a_shift_or_a_handover_names_a_guard_who_can_sign_in(admin, alice, core):
    """A typo in a name made a shift for nobody (the guard was then 'not on duty') or a
    handover no one could ever sign to complete. The refusal is on the page drawn again with
    the form as typed (400), never in the address: it names a guard account."""
    typo = post(admin, "/guard/community/shifts", admin.csrf, guard="alcie",
                starts="2026-02-12T08:00", ends="2026-02-12T16:00")  # fmt: skip
    assert typo.status_code == 400 and "location" not in typo.headers
    assert "alcie" in refused_with(admin, typo)
    assert 'value="alcie"' in typo.text and 'value="2026-02-12T16:00"' in typo.text
    assert core.ledgers.roster.on_duty(core.config.site.kiosk_id) == []
    _on_shift(admin, "alice")
    nobody = post(alice, "/guard/community/handover", alice.csrf, incoming="rooot")
    assert nobody.status_code == 400 and 'value="rooot"' in nobody.text
    assert "rooot" in refused_with(alice, nobody)
    assert core.ledgers.roster.handovers(core.config.site.kiosk_id) == []


def test_a_handover_opened_twice_is_one_handover(admin, alice, core):
    _on_shift(admin, "alice")
    first = post(alice, "/guard/community/handover", alice.csrf, incoming="root")
    again = post(alice, "/guard/community/handover", alice.csrf, incoming="root")
    assert refused_with(alice, first) is None and refused_with(alice, again) is not None
    [handover] = core.ledgers.roster.handovers(core.config.site.kiosk_id)
    for who in (alice, admin):
        post(who, f"/guard/community/handover/{handover.id}/ack", who.csrf)
    assert core.ledgers.roster.handover(handover.id).complete
    # Once both have signed, the next handover can be opened.
    later = post(alice, "/guard/community/handover", alice.csrf, incoming="root")
    assert refused_with(alice, later) is None


def test_exporting_the_community_report_is_audited_like_the_days_export(alice, core):
    for fmt in ("csv", "xlsx"):
        assert alice.get(f"/guard/community/report.{fmt}?day=2026-02-12").status_code == 200
        row = core.store.audits()[-1]
        assert (row["actor"], row["action"]) == ("alice", "report_export")
        assert row["detail"] == {"day": "2026-02-12", "format": fmt, "outcome": "ok"}


def _decoded_parts(location: str) -> str:
    """The location as typed plus every base64 piece of it decoded (what a history entry or a
    proxy's log would hold)."""
    import base64
    import re
    from urllib.parse import unquote

    text = unquote(location)
    out = [text]
    for piece in re.findall(r"[A-Za-z0-9_-]{8,}", text):
        try:
            out.append(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)).decode())
        except ValueError:
            continue
    return "\n".join(out)


def test_a_cut_off_registration_does_not_put_the_persons_details_in_the_url(app, clock):
    from guard_support import GUARD_PW

    with _client(app) as alice:
        clock.advance(12 * 3600 + 1)
        form = {"name": "Han Meimei", "phone": "13900139000", "id_number": "110101199001011234",
                "unit": "1-101", "reason": "delivery", "temp_c": "36.5"}  # fmt: skip
        sent = alice.post(
            "/guard/register/person",
            data=form | {"csrf": alice.csrf},
            headers=BROWSER_POST,
            follow_redirects=False,
        )
        location = sent.headers["location"]
        assert "resume=" in location
        seen = _decoded_parts(location)
        for value in ("13900139000", "110101199001011234", "Han Meimei"):
            assert value not in seen, value
        resume = _login_page_resume(alice, location)
        assert resume and "13900139000" not in _decoded_parts(resume)
        again = _sign_in(alice, "alice", GUARD_PW, resume)
        assert 'value="13900139000"' in again.text  # the form comes back whole to its guard


def test_a_returnee_registered_twice_while_observed_is_one_person(alice, core):
    """A double tap on 登记 made two records of one person: two sets of alarms for one
    missed check, and the day's report counted two new returnees."""
    form = {"name": "Wang Fang", "household": "3-2-701", "phone": "13812345678",
            "origin": "Wuhan", "date_back": "2026-02-12", "days": "14"}  # fmt: skip
    first = post(alice, "/guard/community/returnees", alice.csrf, **form)
    again = post(alice, "/guard/community/returnees", alice.csrf, **form | {"name": " wang fang"})
    assert "err=" not in first.headers["location"] and again.status_code == 400
    assert len(core.ledgers.observation.people()) == 1
    assert "#1" in again.text  # names the record there is


def test_a_refused_returnee_registration_comes_back_as_typed(alice, core):
    """A returnee's registration refused (a date mistyped, the person already observed) went
    back to an empty form: name, household, phone, home town and note typed again at the door.
    The form comes back with what was typed and the problem, marked as unsent (guard.js asks
    before it is left); nothing is registered and the audit row says refused, never the text."""
    form = {"name": "李秀兰", "household": "6-1-302", "phone": "13912345678", "origin": "武汉",
            "date_back": "2026-02-30", "days": "10", "note": "独居老人"}  # fmt: skip
    sent = post(alice, "/guard/community/returnees", alice.csrf, **form)
    assert sent.status_code == 400
    page = sent.text.split('action="/guard/community/returnees"', 1)[1].split("</form>", 1)[0]
    for name, value in form.items():
        assert f'name="{name}"' in page and f'value="{value}"' in page, name
    assert "data-draft" in sent.text.split('action="/guard/community/returnees"', 1)[1][:80]
    assert 'class="flash err"' in sent.text
    assert core.ledgers.observation.people() == []
    row = core.store.audits()[-1]
    assert row["action"].endswith("_failed") and "李秀兰" not in str(row["detail"])


def test_two_people_of_one_household_with_a_fever_are_two_alarms_each_with_its_reading(
    guard_client, guard_core, clock
):
    """Denials of one household within the incident window joined one card: it named the
    first person and showed the second person's reading beside that name."""
    import re

    from guard_support import add_event

    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.1,
              household="3-201", holder="Li Wei", pass_id="c0ffee000001")  # fmt: skip
    clock.advance(120)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=39.2,
              household="3-201", holder="Wang Fang", pass_id="c0ffee000002")  # fmt: skip
    clock.advance(60)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.3,
              household="3-201", holder="Li Wei", pass_id="c0ffee000001")  # fmt: skip
    login(guard_client)
    page = guard_client.get("/guard?lang=en").text
    cards = re.findall(r'<div class="alarm kind-fever".*?</button>', page, re.S)
    assert len(cards) == 2
    wang = next(c for c in cards if "Wang Fang" in c)
    li = next(c for c in cards if "Li Wei" in c)
    assert "39.2" in wang and "Li Wei" not in wang and "/guard/passage/2" in wang
    assert "38.3" in li and "39.2" not in li and "2 times" in li


def test_a_service_request_opened_twice_is_one_request(alice, core):
    """A double tap on 提交 made two food requests for one household (delivered twice)."""
    core.lists.add_quarantine("5-702", None, "2026-02-10", "2026-02-24", "root")
    first = post(alice, "/guard/community/services", alice.csrf, household="5-702", kind="food")
    again = post(alice, "/guard/community/services", alice.csrf, household="5-702", kind="food")
    assert "err=" not in first.headers["location"] and again.status_code == 400
    other = post(alice, "/guard/community/services", alice.csrf, household="5-702", kind="parcel")
    assert "err=" not in other.headers["location"]  # another kind is another request
    assert len(core.ledgers.services.requests()) == 2
    [food] = [r for r in core.ledgers.services.requests() if r.kind == "food"]
    post(alice, f"/guard/community/services/{food.id}/take", alice.csrf)
    post(alice, f"/guard/community/services/{food.id}/done", alice.csrf)
    later = post(alice, "/guard/community/services", alice.csrf, household="5-702", kind="food")
    assert "err=" not in later.headers["location"]  # the next meal, once the first is done


def test_a_claim_on_a_passage_whose_decision_never_reached_the_log_lapses(
    guard_client, guard_core, clock
):
    """The engine's hold on a passage decided only bridges the moment until the log has it:
    a decision that never got there (the store failed) does not block the passage for good."""
    from guard_support import add_event

    add_event(guard_core, decision="deny", reasons=("fever",), holder="Li Wei", temp_c=38.4)
    csrf = login(guard_client)
    engine = guard_core.runner.engine
    release = engine.overrides.take(1, "bob", "manual_pass", clock.monotonic_ns())
    release(clock.monotonic_ns())  # bob's commit is over, failed: his record not in the log
    form = {"decision": "deny", "subject": "1", "reason": "rechecked"}
    soon = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" in soon.headers["location"]
    clock.advance(60)  # bob's decision never reached the log
    from guard_support import decided

    with decided(guard_client, guard_core):
        later = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" not in later.headers["location"]


def test_a_cut_off_action_is_offered_once_not_at_every_sign_in_from_the_same_link(app, clock):
    """The login link with the cut-off action stays in the browser's history: signing in
    from it again must not make the action again (a pass issued twice, a list edit twice)."""
    from guard_support import GUARD_PW

    with _client(app) as alice:
        clock.advance(12 * 3600 + 1)
        sent = alice.post(
            "/guard/passes",
            data={"household": "3-201", "holder": "Li Wei", "days": "7", "csrf": alice.csrf},
            headers=BROWSER_POST,
            follow_redirects=False,
        )
        resume = _login_page_resume(alice, sent.headers["location"])
        first = _sign_in(alice, "alice", GUARD_PW, resume)
        assert 'id="resume-form"' in first.text
        alice.cookies.clear()
        again = _sign_in(alice, "alice", GUARD_PW, resume)
        assert again.status_code == 303 and 'id="resume-form"' not in again.text


def test_a_guard_cannot_read_a_masked_phone_number_back_out_of_the_visitor_search(
    guard_client, guard_core
):
    """A guard sees 138****8000: searching suffixes longer than the visible four digits
    (08000, 008000, ...) told which hidden digits a visitor's number has."""
    from guard_support import ADMIN_PW, add_event

    for name, phone in (("Han Meimei", "13800008000"), ("Li Lei", "13911118000")):
        add_event(guard_core, decision="manual_pass", reasons=("guard_override",),
                  kind="registration", operator="alice",
                  person={"name": name, "phone": phone, "unit": "1-101", "note": "x"})  # fmt: skip

    def found(q: str) -> set[str]:
        page = post(guard_client, "/guard/register/search", csrf, q=q).text
        return {n for n in ("Han Meimei", "Li Lei") if f'data-name="{n}"' in page}

    csrf = login(guard_client)
    both = {"Han Meimei", "Li Lei"}
    for q in ("8000", "08000", "18000", "00008000", "13800008000"):
        assert found(q) == both, q  # no more than the four digits the guard sees
    guard_client.cookies.clear()
    csrf = login(guard_client, "root", ADMIN_PW)  # an admin sees the numbers: exact search
    assert found("08000") == {"Han Meimei"} and found("13911118000") == {"Li Lei"}


def _remove(client, shift):
    """The remove button of ``shift`` as its page draws it."""
    path = f"/guard/community/shifts/{shift.id}/remove"
    shown = {"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}
    return post(client, path, client.csrf, guard=shift.guard, **shown)


def test_a_shift_rostered_by_mistake_is_removed_at_the_console_one_that_has_ended_stays(
    admin, alice, core
):
    """A manager could add shifts and never take one out: a wrong guard or day rostered stayed
    'on duty' for the handover and the sign-in. A shift not over yet has a remove button (for
    admins); one that has ended is the record of who was on duty and has none, and a removal
    posted for it is refused on the page, the shift kept."""
    roster, gate = core.ledgers.roster, core.config.site.kiosk_id
    night = post(admin, "/guard/community/shifts", admin.csrf, guard="alice",
                 starts="2026-02-12T00:00", ends="2026-02-12T08:00")  # fmt: skip
    assert refused_with(admin, night) is None, night.text[:300]
    _on_shift(admin, "alice")  # 08:00-16:00: it is 09:00
    ended, now_on = roster.shifts(
        gate, datetime(2026, 2, 11, tzinfo=UTC), datetime(2026, 2, 13, tzinfo=UTC)
    )
    page = admin.get("/guard/community/handover").text
    assert f"/shifts/{now_on.id}/remove" in page and f"/shifts/{ended.id}/remove" not in page
    assert "/remove" not in alice.get("/guard/community/handover").text  # a guard's page
    assert _remove(alice, now_on).status_code == 403  # admins only, as adding one
    assert len(roster.shifts(gate, ended.starts_at, now_on.ends_at)) == 2  # a guard removes none
    kept = _remove(admin, ended)
    assert kept.status_code == 400 and f"班次 {ended.id} 已结束" in refused_with(admin, kept)
    gone = _remove(admin, now_on)
    assert gone.status_code == 303 and refused_with(admin, gone) is None
    assert roster.shifts(gate, ended.starts_at, now_on.ends_at) == [ended]
    assert roster.on_duty(gate) == []
    row = core.store.audits()[-1]
    assert (row["action"], row["detail"]["shift_id"]) == ("roster.shift_remove", now_on.id)


def test_a_remove_button_drawn_before_another_tablet_replaced_the_shift_removes_nothing(
    admin, core
):
    """SQLite gives a removed shift's id to the next shift added: tablet A's button for
    alice's shift, tapped after tablet B removed it and rostered root in its place (id
    reused), removed root's. The button carries the guard and start its page showed."""
    roster, gate = core.ledgers.roster, core.config.site.kiosk_id
    _on_shift(admin, "alice")
    [alices] = roster.on_duty(gate)
    assert _remove(admin, alices).status_code == 303  # tablet B
    _on_shift(admin, "root")
    [roots] = roster.on_duty(gate)
    assert roots.id == alices.id  # the id came back
    stale = _remove(admin, alices)  # tablet A's button
    assert stale.status_code == 400
    assert f"班次 {alices.id} 已不是您页面上显示的那个" in refused_with(admin, stale)
    assert roster.on_duty(gate) == [roots]


def test_a_remove_without_the_shift_its_page_showed_is_refused_as_out_of_date(admin, core):
    roster, gate = core.ledgers.roster, core.config.site.kiosk_id
    _on_shift(admin, "alice")
    [shift] = roster.on_duty(gate)
    bare = post(admin, f"/guard/community/shifts/{shift.id}/remove", admin.csrf)
    assert bare.status_code == 400 and "页面已过期" in refused_with(admin, bare)
    assert roster.on_duty(gate) == [shift]
