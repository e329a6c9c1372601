"""A quota switched on, or its roles narrowed, judges the outings made before by the roles in
force: the event records the pass's role (``role:<role>``) whatever the quota's setting then.
A courier's exit made while the quota was off, or a carer's while staff counted, was kept
with no role and no ``quota_exempt`` flag, and counted as the household's outing: the
household was held at the gate for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.history import QUOTA_EXEMPT, PassageHistory, counted_outing
from kiosk.passes import issue_pass
from tests import test_runner as tr

KEY = Ed25519PrivateKey.generate()


def _decide(tmp_path, quota: dict, holder: str, role: str) -> dict:
    rig = tr.Rig(
        tmp_path,
        overrides={"site": {"direction": "out"}, "policy": {"mode": "pass_only", "quota": quota}},
    )
    # As the composition root builds it (``checkpoint.app``): the quota's roles in force.
    rig.history.roles = frozenset(rig.config.policy.quota.roles)
    code = issue_pass(KEY, "A-101", holder, role=role, days=30, now=rig.clock.now())[0]

    async def main() -> dict:
        await rig.runner.start()
        rig.show(code)
        decision = await rig.next("decision")
        await rig.runner.stop()
        return decision

    try:
        return tr.run(main())
    finally:
        rig.close()


def test_a_delivery_out_while_the_quota_was_off_is_no_outing_once_it_is_on(tmp_path, monkeypatch):
    monkeypatch.setattr(tr.Ed25519PrivateKey, "generate", staticmethod(lambda: KEY))
    courier = _decide(tmp_path, {"enabled": False}, "Courier Wang", "delivery")
    assert courier["decision"] == "pass"
    # The office switches the quota on (one outing every 2 days) and restarts the kiosk.
    on = {"enabled": True, "exits": 1, "period_days": 2}
    resident = _decide(tmp_path, on, "Li Wei", "resident")
    assert resident["reasons"] == ["ok"], resident["reasons"]


def test_a_carers_exit_while_staff_counted_is_none_once_the_roles_are_narrowed(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tr.Ed25519PrivateKey, "generate", staticmethod(lambda: KEY))
    both = {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident", "staff"]}
    assert _decide(tmp_path, both, "Carer Zhao", "staff")["decision"] == "pass"
    residents = {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident"]}
    assert _decide(tmp_path, residents, "Li Wei", "resident")["reasons"] == ["ok"]


def test_a_role_widened_counts_the_exits_made_while_it_did_not(tmp_path, monkeypatch):
    monkeypatch.setattr(tr.Ed25519PrivateKey, "generate", staticmethod(lambda: KEY))
    residents = {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident"]}
    carer = _decide(tmp_path, residents, "Carer Zhao", "staff")
    assert QUOTA_EXEMPT in carer["flags"] and "role:staff" in carer["flags"]
    both = {"enabled": True, "exits": 1, "period_days": 2, "roles": ["resident", "staff"]}
    assert _decide(tmp_path, both, "Li Wei", "resident")["reasons"] == ["quota_exceeded"]


def test_rows_without_a_role_count_as_judged_then():
    # Before 2026-12-07 no row said its role: exempt stays exempt, the rest count.
    assert counted_outing([QUOTA_EXEMPT], ["resident", "staff"]) is False
    assert counted_outing([], ["staff"]) is True
    assert counted_outing(["role:delivery"], ["resident"]) is False
    assert counted_outing(["role:delivery", QUOTA_EXEMPT], None) is False
    history = PassageHistory(roles=["resident"])
    history.record("p", "A-101", "out", "pass", "2026-03-02T08:00:00Z", ["role:staff"])
    history.record("q", "A-102", "out", "pass", "2026-03-02T08:00:00Z", [])
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert history.exits_in_period("A-101", at, 2) == 0
    assert history.exits_in_period("A-102", at, 2) == 1


def test_the_other_gates_read_the_role_too(tmp_path):
    """A courier's exit at the north gate made while the quota was off: the south gate,
    its quota on, counts it no more than the north does (the page serves the role, the
    ledger keeps it, a restart reads it back)."""
    from kiosk import peers
    from kiosk.clock import FakeClock
    from kiosk.peers import PeerLedger, check_page, load_peer_rows, peer_page, record_peer_rows
    from kiosk.store import EventDraft, EventLog, format_ts

    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    clock = FakeClock(start=now)
    north = EventLog(tmp_path / "n.db", "north", clock, "NORMAL", [peers.MIGRATIONS]).open()
    south = EventLog(tmp_path / "s.db", "south", clock, "NORMAL", [peers.MIGRATIONS]).open()
    try:
        north.append(
            EventDraft(
                direction="out",
                decision="pass",
                pass_id="P1",
                household="A-101",
                flags=("role:delivery",),
            )
        )
        page = peer_page(north.reader(), "north", 0, 10, now - timedelta(days=3))
        assert page["passages"][0]["flags"] == ["role:delivery"]
        page["now"] = format_ts(now)
        checked = check_page(page, "north", 0, 10, now)
        assert [row.role for row in checked.rows] == ["delivery"]
        history = PassageHistory(roles=["resident"])
        assert record_peer_rows(history, checked.rows) == 1
        assert history.exits_in_period("A-101", now, 2) == 0
        PeerLedger(south, timedelta(days=3)).merge("http://north", "north", checked, now)
        for roles, exits in ((["resident"], 0), (["resident", "delivery"], 1)):
            rebuilt = PassageHistory(roles=roles)
            assert load_peer_rows(south.reader(), rebuilt, now - timedelta(days=2)) == 1
            assert rebuilt.exits_in_period("A-101", now, 2) == exits
    finally:
        north.close()
        south.close()


@pytest.mark.slow  # a whole core built
def test_the_gates_history_counts_the_roles_the_config_names(tmp_path):
    from checkpoint.app import build_core
    from kiosk.config import parse_config

    quota = {"enabled": True, "roles": ["resident", "staff"]}
    core = build_core(parse_config({"policy": {"quota": quota}}), tmp_path / "d")
    try:
        assert core.history.roles == {"resident", "staff"}
    finally:
        core.close()
