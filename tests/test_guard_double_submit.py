"""A double tap on a guard's decision form (the manual pass/deny, a registration) is one
decision: each form as drawn carries a one-time ``once`` token; the same form sent again
records nothing more (a second gate opening, a second visitor in the day's counts) and
says so. A refused form can be sent again once corrected."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

from guard_support import hidden_fields, login, send

from ui import i18n

PERSON = {"name": "Han Meimei", "unit": "3-402", "reason": "visiting", "temp_c": "36.6",
          "direction": "in", "decision": "pass"}  # fmt: skip
MANUAL = {"decision": "pass", "subject": "none", "reason": "neighbour, no phone", "direction": "in"}


def registrations(core) -> list[dict]:
    return [e for e in core.store.events() if e["kind"] == "registration"]


def test_a_registration_sent_twice_from_one_form_is_recorded_once(guard_client, guard_core):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/register").text, "person-form") | PERSON
    first = send(guard_client, "/guard/register/person", fields)
    again = send(guard_client, "/guard/register/person", fields)
    assert "msg=ok.done" in first.headers["location"]
    said = parse_qs(urlsplit(again.headers["location"]).query)["err"][0]
    assert said == i18n.t("zh-CN", "err.sent_twice")
    assert len(registrations(guard_core)) == 1
    # The next visitor's form (drawn again) is a new registration.
    fields = hidden_fields(guard_client.get("/guard/register").text, "person-form") | PERSON
    fields["name"] = "Li Lei"  # another one: the same person again is asked about first
    assert "msg=ok.done" in send(guard_client, "/guard/register/person", fields).headers["location"]
    assert len(registrations(guard_core)) == 2


def test_a_manual_pass_double_tapped_opens_for_one_person(guard_client, guard_core):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard").text, "manual-form") | MANUAL
    answers = []
    taps = [
        threading.Thread(target=lambda: answers.append(send(guard_client, "/guard/manual", fields)))
        for _ in range(2)
    ]
    for tap in taps:
        tap.start()
    for tap in taps:
        tap.join()
    done = [a for a in answers if "msg=ok.done" in a.headers["location"]]
    assert len(done) == 1
    assert [e["decision"] for e in guard_core.store.events()] == ["manual_pass"]


def test_a_refused_form_can_be_sent_again_corrected(guard_client, guard_core):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard").text, "manual-form") | MANUAL
    refused = send(guard_client, "/guard/manual", fields | {"reason": ""})
    assert "err=" in refused.headers["location"]
    assert "msg=ok.done" in send(guard_client, "/guard/manual", fields).headers["location"]


def test_a_refused_registration_can_be_sent_again_corrected_from_its_form(guard_client, guard_core):
    """A registration refused (the reason left empty) drew its form again, yet its one-time
    token stayed taken: the same form sent again corrected (the browser's back to it, a
    resend) was refused as "already sent" although nothing was recorded."""
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/register").text, "person-form") | PERSON
    refused = send(guard_client, "/guard/register/person", fields | {"reason": ""})
    assert refused.status_code == 400 and registrations(guard_core) == []
    corrected = send(guard_client, "/guard/register/person", fields)
    assert "msg=ok.done" in corrected.headers["location"]
    assert len(registrations(guard_core)) == 1


def test_a_recorded_form_sent_again_gives_nothing_back_to_refill(guard_client, guard_core):
    """The repeat of a recorded form is no refusal (something was recorded): its answer does
    not mark the form refused (``refused=1``), which would put the last person's reason,
    temperature and direction back into the next one's form (before 2026-12-07 it did)."""
    login(guard_client)
    page = guard_client.get("/guard").text
    fields = hidden_fields(page, "manual-form") | MANUAL | {"temp_c": "36.6"}
    first = send(guard_client, "/guard/manual", fields)
    again = send(guard_client, "/guard/manual", fields)
    assert "msg=ok.done" in first.headers["location"]
    sent_back = parse_qs(urlsplit(again.headers["location"]).query)
    assert sent_back["err"][0] == i18n.t("zh-CN", "err.sent_twice")
    assert "refused" not in sent_back
    form = guard_client.get(again.headers["location"]).text.split('id="manual-form"', 1)[0]
    assert "data-refused" not in form.rsplit("<form", 1)[1]
