"""Issue 17 item 10: the list of passes issued at the console (searchable, from the issue
records in the audit log), voiding a lost pass from it after a confirmation step, printing
cards again (one or a batch; the same signed pass), and confirmation of destructive list
edits."""

from __future__ import annotations

import html
import re

import pytest
from guard_support import BASE, login, post, refused_with

from kiosk import queries
from kiosk.passes import issue_pass


def issue(guard_client, csrf, household, holder, days="30"):
    response = post(
        guard_client, "/guard/passes", csrf, household=household, holder=holder, days=days
    )
    assert response.status_code == 200, response.text
    return html.unescape(re.search(r'data-payload="([^"]+)"', response.text).group(1))


def ids_on(page: str) -> list[str]:
    return re.findall(r'<tr data-pass="([0-9a-f]{12})"', page)


def test_issued_passes_are_listed_and_searched_by_holder_household_or_number(
    guard_client, guard_core
):
    csrf = login(guard_client)
    first = guard_core.trust.verify(issue(guard_client, csrf, "3-402", "王秀英"))
    second = guard_core.trust.verify(issue(guard_client, csrf, "7-301", "Chen Jing"))
    page = guard_client.get("/guard/passes").text
    assert ids_on(page) == [second.pass_id, first.pass_id]  # newest first

    def found(q: str) -> list[str]:
        return ids_on(post(guard_client, "/guard/passes/search", csrf, q=q).text)

    assert found("秀英") == [first.pass_id]
    assert found("7-30") == [second.pass_id]
    assert found(first.pass_id[-5:].upper()) == [first.pass_id]
    assert found("nobody") == []
    record = queries.issued_passes(guard_core.store)[0]
    assert record.detail["holder"] == "Chen Jing" and record.actor == "alice"


def test_voiding_a_pass_from_the_list_asks_first_then_revokes_it(guard_client, guard_core):
    csrf = login(guard_client)
    pass_ = guard_core.trust.verify(issue(guard_client, csrf, "3-402", "王秀英"))
    asked = post(guard_client, "/guard/passes/revoke", csrf, pass_id=pass_.pass_id)
    assert asked.status_code == 200 and 'id="confirm-step"' in asked.text
    assert pass_.pass_id in asked.text and "王秀英" in asked.text and "3-402" in asked.text
    assert not guard_core.lists.current.is_revoked(pass_.pass_id)  # nothing changed yet
    assert [a["action"] for a in guard_core.store.audits()][-1] == "confirm_asked"
    # The confirmation page carries the pass and asks for the reason.
    assert f'name="pass_id" value="{pass_.pass_id}"' in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    done = post(
        guard_client,
        "/guard/passes/revoke",
        csrf,
        pass_id=pass_.pass_id,
        confirm="yes",
        note="遗失",
    )
    assert done.status_code == 303
    assert guard_core.lists.current.is_revoked(pass_.pass_id)
    page = guard_client.get("/guard/passes").text
    assert "已挂失或作废" in page
    row = page.split(f'data-pass="{pass_.pass_id}"')[1].split("</tr>")[0]
    assert "补打" not in row and 'class="ghost small revoke"' not in row


def test_voiding_a_pass_not_issued_here_is_refused(guard_client, guard_core):
    csrf = login(guard_client)
    response = post(
        guard_client, "/guard/passes/revoke", csrf, pass_id="0123456789ab", confirm="yes"
    )
    assert response.status_code == 303 and "err=" in response.headers["location"]
    assert not guard_core.lists.current.is_revoked("0123456789ab")


def test_a_reprint_is_the_same_signed_pass(guard_client, guard_core):
    csrf = login(guard_client)
    payload = issue(guard_client, csrf, "3-402", "王秀英")
    pass_id = guard_core.trust.verify(payload).pass_id
    page = post(guard_client, "/guard/passes/print", csrf, pass_id=pass_id)
    assert page.status_code == 200 and 'id="cards"' in page.text
    printed = re.findall(r'data-payload="([^"]+)"', page.text)
    assert [html.unescape(p) for p in printed] == [payload]
    assert any(a["action"] == "pass_reprinted" for a in guard_core.store.audits())


@pytest.mark.slow
def test_a_batch_of_cards_prints_together_and_a_void_one_is_refused(guard_client, guard_core):
    csrf = login(guard_client)
    payloads = [issue(guard_client, csrf, "3-402", name) for name in ("王秀英", "李雷", "韩梅梅")]
    ids = [guard_core.trust.verify(p).pass_id for p in payloads]
    page = guard_client.post(
        "/guard/passes/print",
        data={"csrf": csrf, "pass_id": ids},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    printed = [html.unescape(p) for p in re.findall(r'data-payload="([^"]+)"', page.text)]
    assert printed == payloads
    assert "待打印的通行证（3 张）" in page.text
    post(guard_client, "/guard/passes/revoke", csrf, pass_id=ids[1], confirm="yes")
    refused = post(guard_client, "/guard/passes/print", csrf, pass_id=ids[1])
    assert refused.status_code == 303 and "err=" in refused.headers["location"]
    nothing = post(guard_client, "/guard/passes/print", csrf)
    assert "err=" in nothing.headers["location"]


def test_a_pass_signed_with_another_key_is_not_reprinted(guard_client, guard_core):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    csrf = login(guard_client)
    pass_id = guard_core.trust.verify(issue(guard_client, csrf, "3-402", "王秀英")).pass_id
    guard_core.issuer_key = Ed25519PrivateKey.generate()  # the key was replaced
    refused = post(guard_client, "/guard/passes/print", csrf, pass_id=pass_id)
    assert "err=" in refused.headers["location"]


def test_passes_from_elsewhere_are_not_listed(guard_client, guard_core):
    issue_pass(guard_core.issuer_key, "1-101", "Outside", days=1, now=guard_core.clock.now())
    login(guard_client)
    assert ids_on(guard_client.get("/guard/passes").text) == []


def test_ending_a_quarantine_asks_first_and_names_the_entry(guard_client, guard_core):
    csrf = login(guard_client)
    post(
        guard_client,
        "/guard/lists/quarantine/add",
        csrf,
        household="5-202",
        holder="孙丽",
        until="2026-03-15",
    )
    (entry,) = queries.list_rows(guard_core.store)["quarantine"]
    asked = post(guard_client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]))
    assert asked.status_code == 200 and "5-202" in asked.text and "孙丽" in asked.text
    assert "解除" in asked.text and len(guard_core.lists.current.quarantine) == 1
    post(guard_client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]), confirm="yes")
    assert len(guard_core.lists.current.quarantine) == 0
    gone = post(guard_client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]))
    assert refused_with(guard_client, gone)


def test_removing_a_household_asks_first(guard_client, guard_core):
    csrf = login(guard_client)
    post(guard_client, "/guard/lists/households/add", csrf, household="9-909", residents="3")
    asked = post(guard_client, "/guard/lists/households/remove", csrf, household="9-909")
    assert 'id="confirm-step"' in asked.text and "9-909" in guard_core.lists.current.households
    post(guard_client, "/guard/lists/households/remove", csrf, household="9-909", confirm="yes")
    assert "9-909" not in guard_core.lists.current.households


def test_the_batch_is_bounded(guard_client, guard_core):
    csrf = login(guard_client)
    response = guard_client.post(
        "/guard/passes/print",
        data={"csrf": csrf, "pass_id": [f"{i:012x}" for i in range(60)]},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "err=" in response.headers["location"]


def test_a_pass_issued_at_the_console_for_30_days_ends_at_its_clock_time_across_the_autumn_change(
    data_dir, monkeypatch
):
    """Before: the console's days were N x 24 real hours, so a pass issued in Berlin at 14:05
    on 20 October for 30 days ended at 13:05 on 19 November (the card said so, and the gate
    refused it from then). It ends at 14:05, the clock time it was issued at."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient
    from guard_support import close_core, make_app, make_core

    from kiosk.clock import FakeClock
    from kiosk.config import parse_config

    clock = FakeClock(start=datetime(2026, 10, 20, 12, 5, tzinfo=UTC))
    config = parse_config({"site": {"timezone": "Europe/Berlin"}})
    core = make_core(data_dir, clock, monkeypatch, config)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            pass_ = core.trust.verify(issue(client, csrf, "3-402", "王秀英", days="30"))
    finally:
        close_core(core)
    assert pass_.valid_until == datetime(2026, 11, 19, 13, 5, tzinfo=UTC)  # 14:05 CET


def test_a_voiding_confirmed_twice_from_one_form_is_one_revocation(guard_client, guard_core):
    """The confirmation's "void" tapped twice with gloves (or sent again after a slow answer):
    the pass was revoked twice, two rows in the audit log and the revocation's time and
    reason overwritten by the second. The confirmation's form acts once, like a list's."""
    from guard_support import hidden_fields, send

    csrf = login(guard_client)
    pass_ = guard_core.trust.verify(issue(guard_client, csrf, "3-402", "王秀英"))
    asked = post(guard_client, "/guard/passes/revoke", csrf, pass_id=pass_.pass_id)
    confirm = hidden_fields(asked.text, "confirm-form") | {"note": "遗失"}
    assert confirm.get("once")
    first = send(guard_client, "/guard/passes/revoke", confirm)
    assert first.status_code == 303 and "err=" not in first.headers["location"]
    revoked = queries.list_rows(guard_core.store)["revocations"]
    guard_core.clock.advance(5)
    again = send(guard_client, "/guard/passes/revoke", confirm | {"note": "second tap"})
    assert again.status_code == 303 and "err=" in again.headers["location"]
    assert queries.list_rows(guard_core.store)["revocations"] == revoked
    made = [a for a in guard_core.store.audits() if a["action"] in ("lists.revoke", "pass_revoked")]
    assert len(made) == 1, made


def test_voiding_a_lost_pass_says_where_it_no_longer_opens_and_what_next(guard_client, guard_core):
    """Before: voiding a lost card said only "Done", and the guard took it for void at every
    gate; a guard's revocation holds at this gate alone (the other gates of the compound
    learn of it from the office's list), so the finder walked in at the other gate. The
    guard is told so, to tell the office, and to issue the holder a new pass."""
    csrf = login(guard_client)
    pass_ = guard_core.trust.verify(issue(guard_client, csrf, "3-402", "王秀英"))
    done = post(guard_client, "/guard/passes/revoke", csrf, pass_id=pass_.pass_id, confirm="yes")
    page = guard_client.get(done.headers["location"]).text
    assert "本门已作废" in page and "告知管理处" in page and "重新签发" in page
    assert guard_core.lists.current.is_revoked(pass_.pass_id)


def test_a_reprint_says_the_card_printed_before_still_opens_the_gate(guard_client, guard_core):
    """Before: "补打" (print again) reads to a guard as the replacement for a lost card, and
    the cards came with no word that they are the very same pass: the lost card went on
    opening the gate. The cards say it, and what to do for a lost one."""
    csrf = login(guard_client)
    payload = issue(guard_client, csrf, "7-101", "李桂兰")
    page = post(
        guard_client, "/guard/passes/print", csrf, pass_id=guard_core.trust.verify(payload).pass_id
    )
    cards = page.text.split('id="cards"')[1]
    assert "原卡仍然有效" in cards and "挂失作废" in cards
