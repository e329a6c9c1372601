"""A gate taken out of ``[[compound.peers]]`` (decommissioned, or a gate of another compound
listed by mistake) left what it said in force here: its guards' revocations refused cards
that no guard could restore any more ("only a guard there restores it"), its quarantine
entries stopped residents, and its passages counted in the quota."""

from __future__ import annotations

from test_compound_gates import Gate, peer_entry, resident
from test_peer_revocations import card, gates, told_and_fetched  # noqa: F401 - a fixture


def test_a_peer_removed_from_the_config_no_longer_counts_here(tmp_path, gates, clock):  # noqa: F811
    north, south = gates
    code, pass_id = card()
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    north.core.lists.add_quarantine("2-202", None, "2026-03-01", "2026-03-14", actor="guard Li")
    north.passage(resident("3-303"))
    told_and_fetched(north, south)
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]
    south.close()
    alone = Gate(tmp_path, "gate-south", clock)  # north taken out of its compound.peers
    try:
        alone.core.runner._load_history()  # as the runner does at start
        assert alone.passage(code, "in")["decision"] == "pass"
        assert alone.passage(resident("2-202"), "out")["decision"] == "pass"
        assert alone.passage(resident("3-303", "Wang M"), "out")["decision"] == "pass"
        held = (
            alone.core.store.reader()
            .execute(
                "SELECT (SELECT count(*) FROM peer_passages) + (SELECT count(*) FROM"
                " peer_revocations) + (SELECT count(*) FROM peer_quarantine)"
            )
            .fetchone()[0]
        )
        assert held == 0
    finally:
        alone.close()
    # Listed again: fetched again from its start (its cursor went with the rest).
    back = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    try:
        assert (
            back.core.store.reader().execute("SELECT count(*) FROM peer_cursors").fetchone()[0] == 0
        )
    finally:
        back.close()
