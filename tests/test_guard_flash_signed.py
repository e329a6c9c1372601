"""A link sent to a guard (a chat, a QR code, a page linking to the gate) cannot put a "done"
banner on the console: ``/guard/passes?msg=pass.voided`` showed the green "Voided at this
gate" note with nothing voided, ``/guard?msg=ok.alarm_closed_since&n=999999999`` "closed …
999999999 more times", while the ``?err=`` banner beside them was signed. Every banner's
parameters (``msg`` with its ``n``, ``err`` with its ``refused``) are now signed together by
the console (``ui.guard.deps.flash_to``) and shown only with that signature."""

from __future__ import annotations

import html
import re

import pytest
from guard_support import login, make_app, post, send, signed_in
from test_desk_stalled_store import raised
from test_guard_passes_list import issue


def banners(page: str) -> list[str]:
    """The words of the banners a form's answer shows (guard_base.html's done note and
    problem) on ``page``."""
    found = re.findall(r'class="flash (?:ok|err)" role="\w+">(.*?)</', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", words)).strip() for words in found]


@pytest.mark.parametrize(
    "link",
    [
        "/guard/passes?msg=pass.voided&lang=en",
        "/guard/passes?msg=pass.clock_vouched&lang=en",
        "/guard?msg=ok.alarm_closed_since&n=999999999&lang=en",
        "/guard?msg=ok.done&lang=en",
        "/guard/calibration?msg=cal.saved&lang=en",
        "/guard/community/handover?msg=saved&lang=en",
    ],
)
def test_a_link_shows_no_done_banner(guard_client, link):
    login(guard_client)
    page = guard_client.get(link)
    assert page.status_code == 200
    assert banners(page.text) == []
    assert "999999999" not in page.text


def _voided(guard_client):
    """A pass issued, then voided from the list: the answer to the confirmed void."""
    csrf = login(guard_client)
    pass_id = guard_client.app.state.guard.core.trust.verify(
        issue(guard_client, csrf, "3-402", "Wang Xiuying")
    ).pass_id
    return post(guard_client, "/guard/passes/revoke", csrf, pass_id=pass_id, confirm="yes")


def test_a_real_voids_answer_still_shows_its_banner(guard_client):
    answer = _voided(guard_client)
    assert answer.status_code == 303 and "msg=pass.voided" in answer.headers["location"]
    shown = banners(guard_client.get(answer.headers["location"] + "&lang=en").text)
    assert len(shown) == 1 and shown[0].startswith("✔ Voided at this gate")


def _closed_since(tablet) -> str:
    """The address a real close answers with: its card raised three times more since the
    page drew it (``n=3``)."""
    desk = tablet.app.state.guard.alarms
    desk.note_message(raised(10, "store_backlog_full"))
    tablet.get("/guard")
    for stamp in (11, 12, 13):
        desk.note_message(raised(stamp, "store_backlog_full"))
    sent = send(
        tablet, "/guard/alarms/ack", {"csrf": tablet.csrf, "only": "bus:store_backlog_full@1"}
    )
    assert sent.status_code == 303
    return str(sent.headers["location"])


def test_a_real_closes_answer_still_shows_its_count(guard_core):
    with signed_in(make_app(guard_core)) as tablet:
        location = _closed_since(tablet)
        assert "n=3" in location
        page = tablet.get(location + "&lang=en").text
        [shown] = banners(page)
        assert "it happened again after your page showed it, 3 more times" in shown


def test_a_signature_holds_for_its_own_message_and_count_only(guard_core):
    """The signature of one banner put on another message, another count, with a count or a
    problem added: no banner at all."""
    with signed_in(make_app(guard_core)) as tablet:
        location = _closed_since(tablet)
        assert banners(tablet.get(location).text)  # as the console wrote it: shown
        edits = [
            location.replace("n=3", "n=999999999"),
            location.replace("n=3&", ""),  # the count taken away
            location.replace("msg=ok.alarm_closed_since", "msg=pass.voided"),
            location.replace("msg=ok.alarm_closed_since", "msg=ok.done"),
            location + "&err=Call+13900000000",
            location + "&refused=1",
            location + "&msg=pass.voided",  # a second msg: the last one is read
        ]
        for edited in edits:
            assert edited != location
            page = tablet.get(edited).text
            assert banners(page) == [], edited
            assert "999999999" not in page and "13900000000" not in page


def test_an_errors_signature_puts_no_done_note_in_its_place(guard_client):
    csrf = login(guard_client)
    refused = post(guard_client, "/guard/calibration", csrf, clinical_c="x")
    location = refused.headers["location"]
    assert "err=" in location and "sig=" in location
    assert [b[0] for b in banners(guard_client.get(location).text)] == ["✖"]
    sig = re.search(r"sig=([0-9a-f]+)", location).group(1)
    for planted in (f"/guard/calibration?msg=cal.saved&sig={sig}", f"{location}&n=1"):
        assert banners(guard_client.get(planted).text) == [], planted
