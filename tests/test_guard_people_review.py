"""What a review of 49cc10b9 found in the console's forget (``/guard/community/people``), pinned:
the fix is in the commit that added each test. On a FakeClock, nothing written outside
``tmp_path``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from guard_support import add_event, console_fixtures, hidden_fields, send
from test_guard_people import _scanned, refused_words

from kiosk.passes import issue_pass
from kiosk.people import Person, find

clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))

NAME, HOUSEHOLD, PASS = "Marlowe Qiuxiang", "7-1404", "feedfacecafe"
ROOM = "/guard/community/people"


def _post(client, path: str, **data: str):
    return send(client, path, {"csrf": client.csrf, **data})


def test_a_misspelt_name_beside_a_held_pass_id_is_refused_by_its_kind(core, admin, clock):
    """The office's request gives her pass (held here) and her name spelt otherwise than the
    gate recorded it. The pass found rows, so the name that found no one was never refused:
    the forget read as done, her older card, her quarantine entry and passages kept. Refused
    now, the key named by its kind (never its value), nothing forgotten."""
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id="0123456789ab")  # her old card
    core.lists.add_quarantine(HOUSEHOLD, NAME, date(2026, 2, 1), date(2026, 2, 14), "root", "x")
    before = find(core.store.reader(), Person.of(name=NAME, household=HOUSEHOLD), date(2026, 3, 2))
    misspelt = {"pass_id": PASS, "name": "Marlow Qiuxiang", "household": HOUSEHOLD}
    dry = _post(admin, f"{ROOM}/forget?lang=en", **misspelt)
    assert dry.status_code == 400
    said = refused_words(dry.text)
    assert "Name: no store of this gate holds anyone by this key" in said, said
    assert "Marlow" not in said
    assert 'id="forget-form"' not in dry.text
    after = find(core.store.reader(), Person.of(name=NAME, household=HOUSEHOLD), date(2026, 3, 2))
    assert after.counts() == before.counts()
    assert not core.lists.current.revocations


def test_each_pass_id_of_several_that_no_row_holds_is_warned_of_in_the_preview(core, admin, clock):
    """Two pass ids: hers (held) and a typo that is another resident's live card never seen
    here. The preview warned of a pass id no row holds only when it was the one key: this
    one was voided with no word, the other resident shut out. Each such pass id is warned
    of now (the preview still lets the office go on: nothing tells a typo from a card never
    seen here)."""
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
    code, other = issue_pass(core.issuer_key, "D4-0404", "Other Resident", now=clock.now())
    assert _scanned(core, code)[0] == "pass"
    dry = _post(admin, f"{ROOM}/forget?lang=en", pass_id=f"{PASS} {other.pass_id}")
    assert dry.status_code == 200
    unheld = r'class="flash warn people-unheld" data-pass="([0-9a-f]+)">([^<]*)'
    warned = re.findall(unheld, dry.text)
    assert [p for p, _ in warned] == [other.pass_id]
    assert f"No row of this gate holds pass id {other.pass_id}" in warned[0][1]
    assert 'id="people-pass-only"' not in dry.text  # her pass holds rows: not a pass-only one
    done = send(admin, f"{ROOM}/forget?lang=en", hidden_fields(dry.text, "forget-form"))
    assert done.status_code == 200 and 'id="people-done"' in done.text


def test_pass_ids_no_row_holds_given_alone_are_warned_of_once(core, admin, clock):
    """Two pass ids, neither held by a row: the preview said "this pass id" once for all and
    then warned again of each, three warnings for two. Said once."""
    _, one = issue_pass(core.issuer_key, "D4-0404", "Late Comer", now=clock.now())
    _, two = issue_pass(core.issuer_key, "D4-0405", "Later Comer", now=clock.now())
    dry = _post(admin, f"{ROOM}/forget?lang=en", pass_id=f"{one.pass_id} {two.pass_id}")
    assert dry.status_code == 200 and 'id="people-pass-only"' in dry.text
    assert "people-unheld" not in dry.text
