"""A guard form the console refuses comes back with everything typed still in it (the one
mechanism, ``ui.guard.community.common.drawn_again``): the guard at the gate corrects the one
field that was wrong, never types the entry again. Each of the lists page's add forms, the
pass form, and a community form as before."""

from __future__ import annotations

import html
import re

import pytest
from guard_support import hidden_fields, login, send

from kiosk import queries


def value_of(page: str, form_id: str, name: str) -> str | None:
    """The value a text field of the form ``form_id`` is drawn with (None: not drawn)."""
    form = page.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    field = re.search(rf'<input name="{name}"[^>]*>', form)
    if field is None:
        return None
    value = re.search(r'value="([^"]*)"', field.group(0))
    return html.unescape(value.group(1)) if value else ""


LONG = "x" * 201  # past the note's 200 characters: refused, in the guard's words

ADDS = [  # form id, path, what is typed (one field refused), the fields kept
    ("quarantine-form", "/guard/lists/quarantine/add",
     {"household": "3-201", "holder": "王秀英", "from": "2026-03-02", "until": "2026-03-16",
      "note": LONG}),
    ("households-form", "/guard/lists/households/add",
     {"household": "5-502", "residents": "4", "observation_until": "2026-03-20", "note": LONG}),
    ("revocations-form", "/guard/lists/revocations/add",
     {"pass_id": "0123456789ab", "note": LONG, "confirm": "yes"}),
]  # fmt: skip


@pytest.mark.parametrize(("form_id", "path", "typed"), ADDS)
def test_a_refused_list_entry_comes_back_as_typed(guard_client, guard_core, form_id, path, typed):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/lists?lang=en").text, form_id)
    refused = send(guard_client, f"{path}?lang=en", fields | typed)
    assert refused.status_code == 400, refused.headers.get("location")
    assert "at most 200" in refused.text.split('class="flash err"', 1)[1].split("</", 1)[0]
    for name, value in typed.items():
        if name != "confirm":
            assert value_of(refused.text, form_id, name) == value, name
    # only the refused form is drawn with it: the others are empty
    for other, _path, _typed in ADDS:
        if other != form_id:
            assert value_of(refused.text, other, "note") == "", other
    lists = queries.list_rows(guard_core.store)
    assert not (lists["quarantine"] or lists["households"] or lists["revocations"])
    # corrected and sent again from the page drawn, it is taken
    again = hidden_fields(refused.text, form_id) | typed | {"note": "corrected"}
    assert again["once"] != fields["once"]
    taken = send(guard_client, path, again)
    assert taken.status_code == 303 and "err=" not in taken.headers["location"]
    [audit] = [a for a in guard_core.store.audits() if a["detail"].get("outcome") == "refused"]
    assert audit["detail"]["problem"] == "refused" and audit["detail"]["refused"] == "err.too_long"
    assert LONG not in str(audit["detail"])


def test_a_refused_pass_comes_back_as_typed(guard_client, guard_core):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/passes").text, "pass-form")
    typed = {"household": "3-201\u200b", "holder": "王秀英", "role": "staff", "days": "3"}
    refused = send(guard_client, "/guard/passes", fields | typed)
    assert refused.status_code == 400, refused.headers.get("location")
    assert "户号含有无效字符" in refused.text
    for name in ("household", "holder", "days"):
        assert value_of(refused.text, "pass-form", name) == typed[name], name
    assert '<option value="staff" selected>' in refused.text.split('id="pass-form"', 1)[1]
    assert queries.issued_passes(guard_core.store) == []


def test_a_script_is_still_answered_in_json(guard_client, guard_core):
    csrf = login(guard_client)
    answer = guard_client.post(
        "/guard/lists/quarantine/add",
        data={"csrf": csrf, "household": "3-201", "until": "2026-03-16", "note": LONG},
        headers={"Origin": "http://kiosk.test", "Accept": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["ok"] is False


REMOVALS = [  # path, the form of the confirmation, what it names
    ("/guard/lists/households/remove", {"household": "9-909", "confirm": "yes"}, "9-909"),
    ("/guard/lists/revocations/remove", {"pass_id": "0123456789ab", "confirm": "yes"},
     "0123456789ab"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "form", "named"), REMOVALS)
def test_a_refused_removal_puts_no_dwelling_or_pass_in_a_url(
    guard_client, guard_core, path, form, named
):
    """Removing a household not (or no longer) on the list, or lifting a revocation there is
    not, was refused in the list's words, "household '9-909' is not in the ledger", sent back
    in the page's address (``?err=``): the dwelling or the pass number in the shared tablet's
    history and the access log. The refusal is said on the page drawn, never in a URL."""
    csrf = login(guard_client)
    refused = send(guard_client, f"{path}?lang=en", {"csrf": csrf} | form)
    assert refused.status_code == 400
    assert named not in refused.headers.get("location", "")
    assert named in refused.text.split('class="flash err"', 1)[1].split("</", 1)[0]


def row_buttons(page: str, table: str) -> list[str]:
    """The words (what a screen reader says) of each button in ``table``'s rows."""
    body = page.split(f'id="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    buttons = re.findall(r"<button([^>]*)>(.*?)</button>", body, re.S)
    named = [re.search(r'aria-label="([^"]*)"', attrs) for attrs, _words in buttons]
    return [
        html.unescape(name.group(1)) if name else " ".join(re.sub(r"<[^>]+>", "", words).split())
        for name, (_attrs, words) in zip(named, buttons, strict=True)
    ]


def test_each_rows_remove_void_and_reprint_button_says_which_entry(guard_client, guard_core):
    """A screen reader's list of buttons on the lists page read "Remove, Remove, Remove…" and
    on the passes page "Void, Reprint, Void…": which quarantine ends, which pass is voided,
    heard only by going back to the table. Each says its entry, as the rows show it."""
    today = guard_core.clock.now().date()
    for household, holder in (("3-201", "王秀英"), ("3-202", None)):
        guard_core.lists.add_quarantine(household, holder, str(today), str(today), "root")
    guard_core.lists.set_household("9-909", "root", residents=3)
    guard_core.lists.set_household("9-910", "root", residents=2)
    login(guard_client)
    page = guard_client.get("/guard/lists?lang=en").text
    quarantine = row_buttons(page, "quarantine")
    assert sorted(quarantine) == ["Remove: 3-201 · 王秀英", "Remove: 3-202"], quarantine
    assert sorted(row_buttons(page, "households")) == ["Remove: 9-909", "Remove: 9-910"]
    for holder in ("王秀英", "李雷"):
        fields = hidden_fields(guard_client.get("/guard/passes").text, "pass-form")
        send(guard_client, "/guard/passes", fields | {"household": "3-402", "holder": holder,
             "days": "1"})  # fmt: skip
    ids = {r.detail["holder"]: r.detail["pass_id"] for r in queries.issued_passes(guard_core.store)}
    said = row_buttons(guard_client.get("/guard/passes?lang=en").text, "passes")
    assert len(set(said)) == len(said) == 4, said
    for holder, pass_id in ids.items():
        assert (
            f"Void (lost): {holder} · {pass_id}" in said
            and f"Reprint: {holder} · {pass_id}" in said
        )
