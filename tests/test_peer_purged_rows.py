"""A passage purged before the compound's other gate read it (a resident forgotten) keeps
that gate's pages readable (``kiosk.peers`` page, ``check_page``). Two real gates on one
fake clock (tests/test_compound_gates.py's ``Gate``), nothing written outside ``tmp_path``."""

from __future__ import annotations

from test_peer_passages import NOW, answer, raw
from test_peer_revocations import card, gates  # noqa: F401 (a fixture)

from kiosk.peers import check_page
from kiosk.people import Person, forget


def test_a_passage_forgotten_before_the_other_gate_read_it_leaves_its_pages_readable(
    gates,  # noqa: F811
    clock,
):
    """South had not read north's passage yet (down, or its poll an hour off) when north
    forgot the resident: the emptied row went out in north's page with the household a purge
    leaves (``''``), which south refuses (not text of 1 to 64 characters), and with it the
    whole page, every later one too: north's voids and passages never reached south again.
    The page serves it as a row of no household now."""
    north, south = gates
    code, pass_id = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    forget(north.core.store, Person.of(pass_ids=[pass_id]), clock.now(), actor="root")
    north.core.lists.reload_if_changed()
    clock.advance(5)
    south.sync.poll()
    assert south.sync.states["gate-north"].last_error is None
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]


def test_an_older_gates_page_with_a_purged_rows_empty_household_is_kept():
    """A gate not updated yet serves a purged row's household as ``''``: the row is one of no
    household here, its page kept (it was refused whole, and every page after it)."""
    page = check_page(answer(raw(pass_id=None, household="")), "gate-north", 0, 10, NOW)
    assert [(r.pass_id, r.household) for r in page.rows] == [(None, None)]
