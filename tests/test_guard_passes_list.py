"""Issue 17 item 10: the list of passes issued at the console (searchable, from the issue
records in the audit log), voiding a lost pass from it after a confirmation step, printing
cards again (one or a batch; the same signed pass), and confirmation of destructive list
edits."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from test_ui_guard import BASE, close_core, login, make_app, make_core, post

from kiosk import queries
from kiosk.passes import issue_pass


@pytest.fixture
def core(data_dir, clock, monkeypatch):
    c = make_core(data_dir, clock, monkeypatch)
    yield c
    close_core(c)


@pytest.fixture
def client(core):
    with TestClient(make_app(core), base_url=BASE) as c:
        yield c


def issue(client, csrf, household, holder, days="30"):
    response = post(client, "/guard/passes", csrf, household=household, holder=holder, days=days)
    assert response.status_code == 200, response.text
    return html.unescape(re.search(r'data-payload="([^"]+)"', response.text).group(1))


def ids_on(page: str) -> list[str]:
    return re.findall(r'<tr data-pass="([0-9a-f]{12})"', page)


def test_issued_passes_are_listed_and_searched_by_holder_household_or_number(client, core):
    csrf = login(client)
    first = core.trust.verify(issue(client, csrf, "3-402", "王秀英"))
    second = core.trust.verify(issue(client, csrf, "7-301", "Chen Jing"))
    page = client.get("/guard/passes").text
    assert ids_on(page) == [second.pass_id, first.pass_id]  # newest first
    assert ids_on(client.get("/guard/passes", params={"q": "秀英"}).text) == [first.pass_id]
    assert ids_on(client.get("/guard/passes", params={"q": "7-30"}).text) == [second.pass_id]
    q = first.pass_id[-5:].upper()
    assert ids_on(client.get("/guard/passes", params={"q": q}).text) == [first.pass_id]
    assert ids_on(client.get("/guard/passes", params={"q": "nobody"}).text) == []
    record = queries.issued_passes(core.store)[0]
    assert record.detail["holder"] == "Chen Jing" and record.actor == "alice"


def test_voiding_a_pass_from_the_list_asks_first_then_revokes_it(client, core):
    csrf = login(client)
    pass_ = core.trust.verify(issue(client, csrf, "3-402", "王秀英"))
    asked = post(client, "/guard/passes/revoke", csrf, pass_id=pass_.pass_id)
    assert asked.status_code == 200 and 'id="confirm-step"' in asked.text
    assert pass_.pass_id in asked.text and "王秀英" in asked.text and "3-402" in asked.text
    assert not core.lists.current.is_revoked(pass_.pass_id)  # nothing changed yet
    assert [a["action"] for a in core.store.audits()][-1] == "confirm_asked"
    # The confirmation page carries the pass and asks for the reason.
    assert f'name="pass_id" value="{pass_.pass_id}"' in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    done = post(
        client, "/guard/passes/revoke", csrf, pass_id=pass_.pass_id, confirm="yes", note="遗失"
    )
    assert done.status_code == 303
    assert core.lists.current.is_revoked(pass_.pass_id)
    page = client.get("/guard/passes").text
    assert "已挂失或作废" in page
    row = page.split(f'data-pass="{pass_.pass_id}"')[1].split("</tr>")[0]
    assert "补打" not in row and 'class="ghost small revoke"' not in row


def test_voiding_a_pass_not_issued_here_is_refused(client, core):
    csrf = login(client)
    response = post(client, "/guard/passes/revoke", csrf, pass_id="0123456789ab", confirm="yes")
    assert response.status_code == 303 and "err=" in response.headers["location"]
    assert not core.lists.current.is_revoked("0123456789ab")


def test_a_reprint_is_the_same_signed_pass(client, core):
    csrf = login(client)
    payload = issue(client, csrf, "3-402", "王秀英")
    pass_id = core.trust.verify(payload).pass_id
    page = post(client, "/guard/passes/print", csrf, pass_id=pass_id)
    assert page.status_code == 200 and 'id="cards"' in page.text
    printed = re.findall(r'data-payload="([^"]+)"', page.text)
    assert [html.unescape(p) for p in printed] == [payload]
    assert any(a["action"] == "pass_reprinted" for a in core.store.audits())


def test_a_batch_of_cards_prints_together_and_a_void_one_is_refused(client, core):
    csrf = login(client)
    payloads = [issue(client, csrf, "3-402", name) for name in ("王秀英", "李雷", "韩梅梅")]
    ids = [core.trust.verify(p).pass_id for p in payloads]
    page = client.post(
        "/guard/passes/print",
        data={"csrf": csrf, "pass_id": ids},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    printed = [html.unescape(p) for p in re.findall(r'data-payload="([^"]+)"', page.text)]
    assert printed == payloads
    assert "待打印的通行证（3 张）" in page.text
    post(client, "/guard/passes/revoke", csrf, pass_id=ids[1], confirm="yes")
    refused = post(client, "/guard/passes/print", csrf, pass_id=ids[1])
    assert refused.status_code == 303 and "err=" in refused.headers["location"]
    nothing = post(client, "/guard/passes/print", csrf)
    assert "err=" in nothing.headers["location"]


def test_a_pass_signed_with_another_key_is_not_reprinted(client, core):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    csrf = login(client)
    pass_id = core.trust.verify(issue(client, csrf, "3-402", "王秀英")).pass_id
    core.issuer_key = Ed25519PrivateKey.generate()  # the key was replaced
    refused = post(client, "/guard/passes/print", csrf, pass_id=pass_id)
    assert "err=" in refused.headers["location"]


def test_passes_from_elsewhere_are_not_listed(client, core):
    issue_pass(core.issuer_key, "1-101", "Outside", days=1, now=core.clock.now())
    login(client)
    assert ids_on(client.get("/guard/passes").text) == []


def test_ending_a_quarantine_asks_first_and_names_the_entry(client, core):
    csrf = login(client)
    post(
        client,
        "/guard/lists/quarantine/add",
        csrf,
        household="5-202",
        holder="孙丽",
        until="2026-03-15",
    )
    (entry,) = queries.list_rows(core.store)["quarantine"]
    asked = post(client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]))
    assert asked.status_code == 200 and "5-202" in asked.text and "孙丽" in asked.text
    assert "解除" in asked.text and len(core.lists.current.quarantine) == 1
    post(client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]), confirm="yes")
    assert len(core.lists.current.quarantine) == 0
    gone = post(client, "/guard/lists/quarantine/remove", csrf, id=str(entry["id"]))
    assert "err=" in gone.headers["location"]


def test_removing_a_household_asks_first(client, core):
    csrf = login(client)
    post(client, "/guard/lists/households/add", csrf, household="9-909", residents="3")
    asked = post(client, "/guard/lists/households/remove", csrf, household="9-909")
    assert 'id="confirm-step"' in asked.text and "9-909" in core.lists.current.households
    post(client, "/guard/lists/households/remove", csrf, household="9-909", confirm="yes")
    assert "9-909" not in core.lists.current.households


def test_the_batch_is_bounded(client, core):
    csrf = login(client)
    response = client.post(
        "/guard/passes/print",
        data={"csrf": csrf, "pass_id": [f"{i:012x}" for i in range(60)]},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "err=" in response.headers["location"]
