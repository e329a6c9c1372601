"""Personal data in addresses: what a guard's phone keeps in its history, a proxy or an access
log sees. A name, a phone number or a dwelling is searched by a posted form, never by an
address (docs/privacy.md, the browser row)."""

from __future__ import annotations

import pytest
from guard_support import add_event, login, post


def registration(guard_core, name: str, phone: str) -> None:
    person = {"name": name, "phone": phone, "unit": "3-402", "note": "看望母亲"}
    add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        operator="alice",
        kind="registration",
        person=person,
    )


@pytest.mark.parametrize(
    ("page", "search", "typed", "found"),
    [("/guard/register", "/guard/register/search", "王秀英", "138****8000"),
     ("/guard/passes", "/guard/passes/search", "秀英", "王秀英")],
)  # fmt: skip
def test_a_search_in_the_address_is_not_served(guard_client, guard_core, page, search, typed,
                                               found):  # fmt: skip
    """The searches post what was typed, yet GET /guard/register?q=王秀英 still answered the
    search: an old bookmark, a link pasted into a chat, a guard typing the address kept the
    name in the phone's history and every proxy's log past every purge, and the page said
    nothing against it. The address's ``q`` is not searched: the page is drawn plain."""
    registration(guard_core, "王秀英", "13800138000")
    csrf = login(guard_client)
    post(guard_client, "/guard/passes", csrf, household="3-402", holder="王秀英", days="30")
    post(guard_client, "/guard/passes", csrf, household="5-101", holder="李雷", days="30")
    assert found in post(guard_client, search, csrf, q=typed).text  # the form finds them
    addressed = guard_client.get(page, params={"q": typed})
    assert addressed.status_code == 200
    assert f'value="{typed}"' not in addressed.text  # not taken into the search box
    assert 'id="found"' not in addressed.text  # no visitor found by the address
    if page == "/guard/passes":  # the whole list, not the address's hits
        assert "李雷" in addressed.text and "王秀英" in addressed.text
