"""One entry per subject on the lists, at one gate and across the compound's gates: the same
quarantine added on both tablets of a gate, or a card voided at both gates, was two entries,
and lifting "it" left the other in force (the resident still stopped)."""

from __future__ import annotations

import pytest
from test_compound_gates import Gate, peer_entry
from test_peer_revocations import card, gates, told_and_fetched  # noqa: F401 - a fixture

from kiosk.lists import ListError


def quarantined(gate: Gate, household: str = "3-201", holder: str | None = None) -> bool:
    today = gate.clock.now().date()
    return gate.core.lists.current.quarantine_for(household, holder, today) is not None


def test_the_same_quarantine_added_on_two_tablets_is_one_entry(tmp_path, clock):
    gate = Gate(tmp_path, "gate-north", clock)
    try:
        lists = gate.core.lists
        lists.add_quarantine("3-201", None, "2026-03-01", "2026-03-14", actor="guard Li")
        # The other tablet's page was drawn before: the same household, the same days.
        held = "household 3-201 is already quarantined from 2026-03-01 until 2026-03-14"
        with pytest.raises(ListError, match=held):
            lists.add_quarantine("３-201", None, "2026-03-02", "2026-03-10", actor="guard Zhao")
        assert len(lists.current.quarantine) == 1
        # Extended: more days than the entry says, added; one lift ends both (below).
        lists.add_quarantine("3-201", None, "2026-03-10", "2026-03-20", actor="guard Zhao")
        assert len(lists.current.quarantine) == 2
        first = min(e.id for e in lists.current.quarantine if e.id is not None)
        lists.remove_quarantine(first, actor="guard Zhao")
        assert lists.current.quarantine == ()
        lists.add_quarantine("3-201", None, "2026-03-01", "2026-03-14", actor="guard Li")
        # A person of that household on their own, or another time, is another entry.
        lists.add_quarantine("3-201", "Wang L", "2026-03-01", "2026-03-14", actor="guard Zhao")
        lists.add_quarantine("3-201", None, "2026-04-01", "2026-04-14", actor="guard Zhao")
        assert len(lists.current.quarantine) == 3
    finally:
        gate.close()


def test_lifting_a_quarantine_ends_every_entry_of_it_in_force(tmp_path, clock):
    """Two entries of one quarantine (a sheet imported on top of a guard's entry, a log
    written before the check above): the guard lifted one, the resident was still stopped."""
    gate = Gate(tmp_path, "gate-north", clock)
    try:
        lists = gate.core.lists
        lists.add_quarantine("3-201", None, "2026-03-01", "2026-03-14", actor="guard Li")
        sheet = "household,from,until\n3-201,2026-02-28,2026-03-10\n3-201,2026-05-01,2026-05-14\n"
        lists.import_csv("quarantine", sheet, actor="office clerk")
        assert quarantined(gate)
        first = min(e.id for e in lists.current.quarantine if e.id is not None)
        lists.remove_quarantine(first, actor="guard Li")
        assert not quarantined(gate)  # lifted means lifted
        # May's is another quarantine: it stays.
        [left] = lists.current.quarantine
        assert left.from_date.isoformat() == "2026-05-01"
        [audit] = (
            gate.core.store.reader()
            .execute("SELECT detail FROM audit WHERE action = 'lists.quarantine_remove'")
            .fetchall()
        )
        assert '"also"' in audit[0]  # the other entry it ended is named by its number
    finally:
        gate.close()


def test_a_card_voided_at_the_other_gate_is_not_voided_again_here(gates):  # noqa: F811
    north, south = gates
    _, pass_id = card()
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    with pytest.raises(ListError, match="already voided at gate gate-north by guard Li"):
        south.core.lists.revoke(pass_id, "lost", actor="guard Zhao")
    assert pass_id not in south.core.lists.current.revocations


def test_a_card_voided_at_both_gates_at_once_is_not_said_restored_while_the_other_holds(
    gates,  # noqa: F811
):
    """Both guards voided it before either gate heard of the other's: the south guard's
    restore lifted its own and left north's, the resident still refused at south."""
    north, south = gates
    code, pass_id = card()
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    south.core.lists.revoke(pass_id, "lost", actor="guard Zhao")
    told_and_fetched(north, south)
    with pytest.raises(ListError, match="voided at gate gate-north too"):
        south.core.lists.unrevoke(pass_id, actor="guard Zhao")
    assert pass_id in south.core.lists.current.revocations  # nothing lifted unseen


def test_the_lists_page_shows_a_card_voided_here_and_at_the_other_gate_once(
    tmp_path, clock, monkeypatch
):
    from guard_support import make_app, make_core, signed_in

    from kiosk.config import parse_config
    from kiosk.peers import PeerLedger, PeerRevocation

    data = tmp_path / "south-console"
    data.mkdir()
    config = parse_config(
        {"site": {"kiosk_id": "gate-south"}, "compound": {"peers": [peer_entry("gate-north")]}}
    )
    south = make_core(data, clock, monkeypatch, config)
    try:
        _, pass_id = card()
        _, other = card("Wang M")
        south.lists.revoke(pass_id, "lost", actor="guard Zhao")
        ledger = PeerLedger(south.store, south.history.horizon)
        voided = [PeerRevocation("gate-north", p, None, "guard Li") for p in (pass_id, other)]
        ledger.set_revocations("gate-north", voided, clock.now())
        south.lists.load()
        with signed_in(make_app(south)) as guard:
            page = guard.get("/guard/lists").text
        peers = page[page.index('id="peer-revoked"') :]
        assert other in peers and pass_id not in peers  # shown once: as this gate's entry
    finally:
        south.close()
