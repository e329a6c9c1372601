"""A forget's revocation keeps its mark wherever it goes (docs/privacy.md, *The pass*).

A deny of a card a resident's forget revoked records its pass id alone, never the holder and
household the card names. Three ways the mark was lost, or the forget read as done when a card
was not voided, each pinned here: a sheet voiding the card again (the revocation became the
sheet's, and the next deny named the resident again; a guard's void again is refused, saying
so); the other gates of the compound, which held the forget's revocation as a guard's (their
deny of the card named the holder read from it); and a forget by name of a resident whose card
no row here holds (its ``pass_issued`` record purged), which voided nothing and said nothing of
it. On FakeClocks, nothing written outside ``tmp_path``.
"""

from __future__ import annotations

import io
import json

import pytest
import test_compound_gates
from guard_support import add_event, hidden_fields, send
from test_clock_floor import MORNING, _config, _decide, key  # noqa: F401 (a fixture)
from test_compound_gates import KEY, NOW
from test_guard_people import ROOM, admin, app, core  # noqa: F401 (fixtures: the console's)
from test_peer_revocations import base_page, card, north_pinned_at_south, told_and_fetched
from test_person import cli  # noqa: F401 (a fixture: kiosk person beside the core)

from checkpoint import app as program
from kiosk.clock import FakeClock
from kiosk.listimport import apply_list_import, plan_list_import
from kiosk.lists import ListError
from kiosk.passes import issue_pass, public_key_pem
from kiosk.peers import PeerPageError, check_page, held_revocations, revocations_page
from kiosk.people import Person, forget

NAME, HOUSEHOLD = "Marlowe Qiuxiang", "7-1404"


def _unpurged(kiosk) -> list[tuple]:
    return (
        kiosk.store.reader()
        .execute("SELECT decision, pass_id, household, holder FROM events WHERE purged_at IS NULL")
        .fetchall()
    )


def _source(kiosk, pass_id: str) -> tuple:
    return (
        kiosk.store.reader()
        .execute("SELECT source, reason FROM list_revocations WHERE pass_id = ?", [pass_id])
        .fetchone()
    )


# --- 1. voided again at this gate -------------------------------------------------------------


@pytest.fixture
def forgotten(tmp_path, key):  # noqa: F811
    """A gate whose resident Li Wei (2-202) passed on her card and was then forgotten by name:
    ``(kiosk, clock, card text, pass id)``."""
    clock = FakeClock(start=MORNING)
    kiosk = program.build_core(_config(), tmp_path, clock)
    try:
        text, pass_ = issue_pass(key, "2-202", "Li Wei", days=30, now=MORNING)
        assert _decide(kiosk, clock, key, text=text)["decision"] == "pass"
        forget(kiosk.store, Person.of(name="Li Wei", household="2-202"), clock.now(),
               actor="root", tz="Asia/Shanghai")  # fmt: skip
        kiosk.lists.reload_if_changed()
        yield kiosk, clock, text, pass_.pass_id
    finally:
        kiosk.close()


def test_a_sheet_voiding_a_forgotten_residents_card_again_keeps_the_forgets_mark(forgotten, key):  # noqa: F811
    """The office's clerk imports a revocations sheet that lists the card (reported lost
    before the resident moved out): the row became the sheet's (source ``csv``), and the card
    shown again recorded her name and household in the log, the ones the forget emptied."""
    kiosk, clock, text, pass_id = forgotten
    sheet = f"pass_id,reason\n{pass_id},lost card of Li Wei\n"
    result = kiosk.lists.import_csv("revocations", sheet, actor="office")
    assert "already revoked by a resident's forget" in result.message
    assert tuple(_source(kiosk, pass_id)) == ("forget", "")
    clock.advance(120)
    assert _decide(kiosk, clock, key, text=text)["reasons"] == ["pass_revoked"]
    assert _unpurged(kiosk) == [("deny", pass_id, None, None)]


def test_a_revocations_sheet_listing_a_forgotten_residents_card_shows_it_unchanged(forgotten):
    """``kiosk lists import`` (and the console's imports) showed the card as changed, the
    sheet's reason to be written over the forget's empty one, and applied it."""
    kiosk, _clock, _text, pass_id = forgotten
    sheet = f"pass_id,reason\n{pass_id},lost card of Li Wei\n".encode()
    plan = plan_list_import(sheet, "revoked.csv", kiosk.lists.current)
    assert (plan.diff.changed, plan.diff.unchanged, plan.rows) == ((), 1, ())
    assert apply_list_import(plan, kiosk.lists, "office") is None
    assert tuple(_source(kiosk, pass_id)) == ("forget", "")


def test_a_guards_void_of_a_forgotten_residents_card_is_refused_saying_a_forget_made_it(
    forgotten,
):
    kiosk, _clock, _text, pass_id = forgotten
    with pytest.raises(ListError, match="already revoked by a resident's forget"):
        kiosk.lists.revoke(pass_id, "lost", actor="guard Li")
    assert tuple(_source(kiosk, pass_id)) == ("forget", "")


# --- 2. at the compound's other gates ---------------------------------------------------------


@pytest.fixture
def gates(tmp_path, clock, monkeypatch):
    """North and south, each a peer of the other, deciding on a card alone (no thermometer),
    south trusting the office's key (its engine reads the card) and north's (its pages)."""
    policy = test_compound_gates.POLICY | {"mode": "pass_only", "hours": {"enabled": False}}
    monkeypatch.setattr(test_compound_gates, "POLICY", policy)
    trust = tmp_path / "gate-south" / "trust"
    trust.mkdir(parents=True)
    (trust / "office.pub").write_bytes(public_key_pem(KEY.public_key()))
    north, south = north_pinned_at_south(tmp_path, clock, monkeypatch)
    yield north, south
    south.close()
    north.close()


def test_a_card_forgotten_at_the_north_gate_is_denied_at_the_south_gate_naming_nobody(gates, clock):
    """South held north's forget as a guard's void: refused, and its deny copied the holder
    and household from the card into south's log."""
    north, south = gates
    code, pass_id = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    forget(north.core.store, Person.of(household="1-101"), clock.now(),
           actor="root")  # fmt: skip
    assert north.core.lists.reload_if_changed()
    clock.advance(5)
    told_and_fetched(north, south)
    [held] = held_revocations(south.core.store.reader())
    assert (held.pass_id, held.forgotten) == (pass_id, True)
    assert _decide(south.core, clock, KEY, "in", text=code)["reasons"] == ["pass_revoked"]
    assert _unpurged(south.core) == [("deny", pass_id, None, None)]


def test_a_guards_void_a_forget_marks_later_is_news_for_the_other_gates(gates, clock):
    """The forget marks the guard's row of the card as its own, its stamp kept: the set of
    voids the peers hold (pass and stamp) looked unchanged, no peer was told, and the other
    gates went on naming the resident until their next poll (an hour here)."""
    north, south = gates
    code, pass_id = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    assert [r.forgotten for r in held_revocations(south.core.store.reader())] == [False]
    forget(north.core.store, Person.of(household="1-101"), clock.now(),
           actor="root")  # fmt: skip
    north.core.lists.reload_if_changed()
    clock.advance(5)
    told_and_fetched(north, south)  # north's push has news for south
    assert [r.forgotten for r in held_revocations(south.core.store.reader())] == [True]
    assert _decide(south.core, clock, KEY, "in", text=code)["reasons"] == ["pass_revoked"]
    assert _unpurged(south.core)[-1] == ("deny", pass_id, None, None)


def test_a_guards_void_at_the_other_gate_still_names_the_holder(gates, clock):
    """Only a forget's mark keeps the name out: a card a guard voided at north is recorded at
    south with the household it names (a quarantine breach's alarm needs it)."""
    north, south = gates
    code, pass_id = card("Wang L")
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    assert _decide(south.core, clock, KEY, "in", text=code)["reasons"] == ["pass_revoked"]
    assert _unpurged(south.core) == [("deny", pass_id, "1-101", "Wang L")]


def test_the_page_names_the_forgets_revocations_beside_them_as_an_earlier_gate_reads_them(
    gates, clock
):
    """The mark is a list of the page's own (``forgotten``), never a key of a revocation: a
    gate on an earlier release refuses a revocation with a key it does not know, page and
    all, and ignores a key of the page."""
    north, _south = gates
    _, kept = card("Wang L")
    _, gone = card("Zhou P")
    north.core.lists.revoke(kept, "lost", actor="guard Li")
    forget(north.core.store, Person.of(pass_ids=[gone]), clock.now(), actor="root")
    said = revocations_page(north.core.store.reader())
    assert said["forgotten"] == [gone]
    assert {k for r in said["revocations"] for k in r} == {"pass_id", "revoked_at", "actor"}


def test_a_page_without_forgotten_holds_its_revocations_as_a_guards():
    """A gate on an earlier release says no ``forgotten``: as before, a guard's void."""
    page = base_page([{"pass_id": "a" * 12}])
    [held] = check_page(page, "gate-north", 0, 500, NOW).revocations
    assert not held.forgotten
    marked = page | {"forgotten": ["a" * 12]}
    [held] = check_page(marked, "gate-north", 0, 500, NOW, signed=True).revocations
    assert held.forgotten


@pytest.mark.parametrize(
    ("revocations", "forgotten", "said"),
    [
        ([{"pass_id": "a" * 12}], "a" * 12, "forgotten is not a list"),
        ([{"pass_id": "a" * 12}], ["a" * 12] * 501, "not a list of at most"),
        ([{"pass_id": "a" * 12}], ["1-101"], "not 12 hex digits"),
        ([{"pass_id": "a" * 12}], ["b" * 12], "does not hold"),
        (None, ["a" * 12], "does not hold"),
    ],
)
def test_a_hostile_forgotten_list_refuses_the_page_whole(revocations, forgotten, said):
    page = base_page(revocations) | {"forgotten": forgotten}
    with pytest.raises(PeerPageError, match=said):
        check_page(page, "gate-north", 0, 500, NOW)


# --- 3. a card the forget cannot find by name ---------------------------------------------------


def _card_issued_long_ago(kiosk, clock) -> None:
    """Her card was issued at this console long ago: its ``pass_issued`` row is purged (no
    pass id, no holder left in it), and she has not used it here since; a guard's manual pass
    of hers is recent."""
    issued = {"pass_id": "c0ffee000001", "holder": NAME, "household": HOUSEHOLD}
    kiosk.store.audit("alice", "pass_issued", issued)
    purge = "UPDATE audit SET detail = NULL, purged_at = ? WHERE action = 'pass_issued'"
    kiosk.store.submit(lambda db: db.execute(purge, [clock.now().isoformat()]))
    clock.advance(60)
    add_event(kiosk, holder=NAME, household=HOUSEHOLD, decision="manual_pass", kind="manual")


def test_a_forget_by_name_that_found_no_card_says_cards_may_still_open_the_gate(
    guard_core,
    clock,
    cli,  # noqa: F811
    capsys,
    monkeypatch,
):
    """It said ``passes_revoked: 0`` and exit 0, no word that a card of hers not found here
    still opens the gate: the office read the request as done."""
    _card_issued_long_ago(guard_core, clock)
    keys = f"name={NAME}\nhousehold={HOUSEHOLD}\n".encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(keys)))
    assert cli("person", "forget", "--keys-file", "-") == 0
    said = capsys.readouterr()
    would = json.loads(said.out)
    assert (would["passes"], would["passes_may_remain"]) == (0, True)
    assert "STILL OPENS THE GATE" in said.err and "--pass-id" in said.err, said.err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(keys)))
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 0
    said = capsys.readouterr()
    done = json.loads(said.out)
    assert (done["passes_revoked"], done["passes_may_remain"]) == (0, True)
    assert "0 passes found in this gate's rows voided" in said.err, said.err
    assert "STILL OPENS THE GATE" in said.err and "--pass-id" in said.err, said.err


def test_a_forget_given_the_pass_id_says_nothing_of_cards_left(
    guard_core,
    clock,
    cli,  # noqa: F811
    capsys,
    monkeypatch,
):
    _card_issued_long_ago(guard_core, clock)
    keys = f"name={NAME}\nhousehold={HOUSEHOLD}\npass_id=c0ffee000001\n".encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(keys)))
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["passes_may_remain"] is False
    assert "STILL OPENS THE GATE" not in said.err
    assert guard_core.lists.reload_if_changed() and guard_core.lists.current.is_forgotten(
        "c0ffee000001"
    )


def test_the_consoles_forget_by_name_says_a_card_not_found_still_opens_the_gate(
    guard_core,
    clock,
    admin,  # noqa: F811
):
    _card_issued_long_ago(guard_core, clock)
    fields = {"csrf": admin.csrf, "name": NAME, "household": HOUSEHOLD}
    dry = send(admin, f"{ROOM}/forget?lang=en", fields)
    assert dry.status_code == 200 and 'id="people-may-remain"' in dry.text
    assert "still opens the gate" in dry.text
    done = send(admin, f"{ROOM}/forget?lang=en", hidden_fields(dry.text, "forget-form"))
    assert done.status_code == 200 and 'id="people-done"' in done.text
    assert 'id="people-may-remain"' in done.text and "get its pass id" in done.text
