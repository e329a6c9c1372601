"""No guard page puts a dwelling, a name, a phone number or a pass number where a shared
tablet's browser history, the access log or a Referer keeps it: in an address (a link, a
form's action, an image) or in a page's title (the history keeps it beside the address)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, hidden_fields, login, post, send

from kiosk import queries

HOUSEHOLD = "3-1-702"
NAME = "欧阳娜娜"
PHONE = "13912345678"
MAP = f"building,unit,floor,household\n3,1,7,{HOUSEHOLD}\n3,1,7,3-1-701\n".encode()


def title_of(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


def test_a_households_page_title_keeps_its_dwelling_out_of_the_browsers_history(
    guard_client, guard_core
):
    """The household page's address carries its row on the map, not the dwelling, yet its
    title read "住户 3-1-702 · 保安控制台": the shared tablet's history lists each household a
    guard opened, by dwelling. The title names the page by its row; the dwelling is in its
    heading only."""
    led = guard_core.ledgers
    led.compound.apply(led.compound.plan_import(MAP, "map.csv"), "root")
    login(guard_client)
    row = led.compound.row_ids()[HOUSEHOLD]
    page = guard_client.get(f"/guard/community/household/{row}").text
    assert HOUSEHOLD not in title_of(page)
    assert f"#{row}" in title_of(page)  # each household's tab told apart, by its row
    assert HOUSEHOLD in page.split("<h1", 1)[1].split("</h1>", 1)[0]


#: Where a page names another address: a link, a form's action, an image or a script.
ADDRESSES = re.compile(r'\b(?:href|action|src|formaction)="([^"]*)"')


@pytest.mark.slow
def test_no_guard_page_puts_a_dwelling_name_phone_or_pass_in_an_address(guard_client, guard_core):
    """Every page a guard opens, with a household on the map and in quarantine, a pass issued
    to a person, a visitor registered and a returnee observed: no address on it holds one of
    them, nor does its title but the household's own page's heading."""
    led = guard_core.ledgers
    led.compound.apply(led.compound.plan_import(MAP, "map.csv"), "root")
    today = guard_core.clock.now().date()
    guard_core.lists.add_quarantine(HOUSEHOLD, NAME, str(today), str(today), "root")
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/passes").text, "pass-form")
    issued = send(guard_client, "/guard/passes", fields | {"household": HOUSEHOLD,
                  "holder": NAME, "days": "1"})  # fmt: skip
    assert issued.status_code == 200
    [record] = queries.issued_passes(guard_core.store)
    pass_id = record.detail["pass_id"]
    csrf = fields["csrf"]
    post(guard_client, "/guard/lists/revocations/add", csrf, pass_id=pass_id, confirm="yes")
    led.observation.register(name=NAME, household=HOUSEHOLD, phone=PHONE, origin="Wuhan",
                             date_back=today, actor="root")  # fmt: skip
    row = led.compound.row_ids()[HOUSEHOLD]
    pages = ["/guard", "/guard/register", "/guard/passes", "/guard/lists", "/guard/stats",
             "/guard/health", "/guard/community", "/guard/community/map",
             "/guard/community/returnees", "/guard/community/services",
             "/guard/community/handover", "/guard/community/report",
             f"/guard/community/household/{row}"]  # fmt: skip
    secrets = (HOUSEHOLD, NAME, PHONE, PHONE[-4:], pass_id)
    found = {}
    for path in pages:
        page = guard_client.get(f"{path}?lang=en")
        assert page.status_code == 200, path
        shown = [a for a in ADDRESSES.findall(page.text) if any(s in a for s in secrets)]
        if any(s in title_of(page.text) for s in secrets):
            shown.append("<title>")
        if shown:
            found[path] = shown
    assert found == {}
    # the pages do show them (the check is not blind): the household's page names it
    assert HOUSEHOLD in guard_client.get(f"/guard/community/household/{row}").text


def ways_on(page: str) -> list[str]:
    """Where the page's language link and its "sign in again" link (shown when the shift
    ends) lead, as paths the browser asks for with a GET."""
    lang = re.search(r'<a href="([^"]*)\?lang=[^"]*" lang=', page).group(1)
    after = re.search(r'href="/guard/login\?next=([^"]*)" id="session-login"', page).group(1)
    return [lang, after]


def test_the_language_and_sign_in_links_of_a_page_drawn_for_a_form_lead_to_a_page(
    guard_client, guard_core
):
    """A page drawn in answer to a form (a refused list entry or registration, a confirmation
    step, a pass search) took its address from the form's target: its language link asked
    GET /guard/lists/quarantine/add?lang=en, and the sign-in after the shift ended went back
    there, both answering {"detail":"Method Not Allowed"} in English. They lead to the page
    the form is on."""
    csrf = login(guard_client)
    guard_core.lists.set_household("9-909", "root", residents=3)
    drawn = {
        "/guard/lists": post(guard_client, "/guard/lists/quarantine/add", csrf,
                             household="3-201", until="x"),
        "/guard/register": post(guard_client, "/guard/register/person", csrf, name="王五"),
        "/guard/lists ": post(guard_client, "/guard/lists/households/remove", csrf,
                              household="9-909"),
        "/guard/passes": post(guard_client, "/guard/passes/search", csrf, q="王"),
    }  # fmt: skip
    for page, answer in drawn.items():
        assert answer.status_code in (200, 400), page
        assert ways_on(answer.text) == [page.strip(), page.strip()], page
        assert guard_client.get(page.strip() + "?lang=en").status_code == 200
    # a community page drawn for a form: an import's preview, asked by the manager
    manager = TestClient(guard_client.app, base_url=BASE)
    admin = login(manager, "root", ADMIN_PW)
    preview = manager.post(
        "/guard/community/imports/preview",
        data={"csrf": admin, "kind": "compound"},
        files={"file": ("map.csv", MAP)},
        headers={"Origin": BASE},
    )
    assert preview.status_code == 200
    assert ways_on(preview.text) == ["/guard/community/imports"] * 2
    # a page asked with a GET keeps its own address
    assert ways_on(guard_client.get("/guard/community/returnees").text) == [
        "", "/guard/community/returnees"]  # fmt: skip
