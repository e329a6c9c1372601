"""A card voided by a guard at one gate is refused at the compound's other gates after the
poke, not only once the office's next bundle revokes it (``kiosk.peers`` ``revocations``,
docs/passes.md "Voided at one gate, refused at all"). Two real gates (tests/
test_compound_gates.py's ``Gate``), each told of the other (``peer_of``), on one fake clock.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from test_compound_gates import KEY, NORTH_KEY, NOW, TRUST, Gate, peer_entry

from kiosk.lists import ListError, sign_bundle
from kiosk.passes import issue_pass, public_key_pem
from kiosk.peers import (
    MAX_PAGE_REVOCATIONS,
    SIGNATURE_HEADER,
    PeerPageError,
    check_page,
    held_revocations,
    purge,
)


def card(holder: str = "Wang L") -> tuple[str, str]:
    code, pass_ = issue_pass(KEY, "1-101", holder, "resident", 30, now=NOW - timedelta(days=1))
    return code, pass_.pass_id


@pytest.fixture
def gates(tmp_path, clock, monkeypatch):
    """North and south, each a peer of the other; north's key pinned at south (its pages
    signed for each ask)."""
    north, south = north_pinned_at_south(tmp_path, clock, monkeypatch)
    yield north, south
    south.close()
    north.close()


def north_pinned_at_south(tmp_path, clock, monkeypatch) -> tuple[Gate, Gate]:
    """North and south, each a peer of the other, north's key pinned at south (in its trust
    folder, which other keys may share)."""
    trust = tmp_path / "gate-south" / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "gate-north.pub").write_bytes(public_key_pem(NORTH_KEY.public_key()))
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")], poll_s=3600)
    north.core.issuer_key = NORTH_KEY
    entry = peer_entry("gate-north") | {"trust_key": "gate-north"}
    south = Gate(tmp_path, "gate-south", clock, [entry], poll_s=3600)
    north.peer_of(south, monkeypatch)
    south.peer_of(north, monkeypatch)
    return north, south


def told_and_fetched(north: Gate, south: Gate) -> None:
    """North pokes south with its news (the push thread's work), south asks north (its
    thread's, woken by the poke)."""
    assert north.sync.push() == {"gate-south": 202}
    assert south.sync.woken("gate-north")
    south.sync.poll()


def test_a_card_voided_at_the_north_gate_is_refused_at_the_south_gate_after_the_poke(gates):
    north, south = gates
    code, pass_id = card()
    assert south.passage(code, "out")["decision"] == "pass"
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]
    [held] = held_revocations(south.core.store.reader())
    assert (held.kiosk_id, held.pass_id, held.actor) == ("gate-north", pass_id, "guard Li")
    # The reason (free text) never leaves the gate it was written at.
    assert "lost" not in json.dumps(south.core.store.reader().execute(
        "SELECT * FROM peer_revocations").fetchall())  # fmt: skip
    # Not liftable here: only a guard at north restores it, and the south guard is told so.
    with pytest.raises(ListError, match="voided at gate gate-north"):
        south.core.lists.unrevoke(pass_id, actor="guard Zhao")


def test_a_restore_at_the_north_gate_lets_the_card_in_at_the_south_gate_again(gates):
    north, south = gates
    code, pass_id = card()
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]
    north.core.lists.unrevoke(pass_id, actor="guard Li")  # the card was found
    told_and_fetched(north, south)
    assert south.passage(code, "in")["decision"] == "pass"
    assert held_revocations(south.core.store.reader()) == []


def bundle_revoking(pass_id: str) -> str:
    return sign_bundle(KEY, {
        "format": "kiosk-lists/1", "version": 1,
        "issued_at": (NOW - timedelta(hours=1)).isoformat(),
        "revocations": [{"pass_id": pass_id, "reason": "office"}],
    })  # fmt: skip


def test_the_offices_revocation_is_not_undone_by_a_restore_at_another_gate(gates):
    north, south = gates
    code, pass_id = card()
    south.core.lists.import_bundle(bundle_revoking(pass_id), TRUST, actor="office")
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    north.core.lists.unrevoke(pass_id, actor="guard Li")
    told_and_fetched(north, south)
    assert held_revocations(south.core.store.reader()) == []
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]  # the office's stands


def test_a_guards_own_revocation_here_stays_when_the_other_gate_restores_its_own(gates):
    north, south = gates
    code, pass_id = card()
    # Both guards voided it before either gate heard of the other's (once south holds
    # north's, a second void here is refused: tests/test_peers_lists.py).
    south.core.lists.revoke(pass_id, "lost too", actor="guard Zhao")
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    told_and_fetched(north, south)
    north.core.lists.unrevoke(pass_id, actor="guard Li")
    told_and_fetched(north, south)
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]


def test_a_forged_page_voiding_or_restoring_a_card_is_refused(gates, monkeypatch):
    """Whoever answers at north's address (its key pinned at south) makes up a page that
    voids a resident's card (a denial of service) or one without the real void (to let the
    finder in): neither is signed by north's key for the ask, and nothing of it is held."""
    north, south = gates
    code, pass_id = card()
    forged = json.dumps({
        "kiosk_id": "gate-north", "passages": [], "next": 0, "last": 0,
        "revocations": [{"pass_id": pass_id, "revoked_at": NOW.isoformat(), "actor": "x"}],
    })  # fmt: skip

    def forger(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=forged, headers={SIGNATURE_HEADER: "0a1b:AAAA"})

    south.sync.stop(0)
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(forger))
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["state"] == "forged"
    assert held_revocations(south.core.store.reader()) == []
    assert south.passage(code, "in")["decision"] == "pass"


def test_a_replayed_page_from_before_the_void_does_not_lift_it(gates, monkeypatch):
    north, south = gates
    code, pass_id = card()
    real = TestClient(north.app)
    recorded: list[httpx.Response] = []

    def recorder(request: httpx.Request) -> httpx.Response:
        answer = real.get(str(request.url.copy_with(scheme="http")), headers=request.headers)
        recorded.append(answer)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    south.sync.stop(0)
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(recorder))
    sync.poll()  # a page without the void, recorded
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    sync.poll()
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]

    def replay(request: httpx.Request) -> httpx.Response:
        old = recorded[0]
        return httpx.Response(200, content=old.content, headers=old.headers)

    sync.stop(0)
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(replay))
    sync.poll()
    assert south.core.health()["peers"][0]["state"] == "forged"
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]


def test_a_gate_of_another_compound_voids_nothing_here(tmp_path, clock, monkeypatch):
    west = Gate(tmp_path, "gate-north", clock, id="west")
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], id="east")
    try:
        code, pass_id = card()
        west.core.lists.revoke(pass_id, "lost", actor="guard Li")
        south.peer_of(west, monkeypatch).poll()
        assert "of compound west" in south.core.health()["peers"][0]["last_error"]
        assert held_revocations(south.core.store.reader()) == []
        assert south.passage(code, "in")["decision"] == "pass"
    finally:
        south.close()
        west.close()


def base_page(revocations: object) -> dict:
    return {"kiosk_id": "gate-north", "passages": [], "next": 0, "last": 0,
            "revocations": revocations}  # fmt: skip


@pytest.mark.parametrize(
    ("revocations", "said"),
    [
        ("abc", "not a list"),
        ([{"pass_id": "a" * 12}] * (MAX_PAGE_REVOCATIONS + 1), "not a list of at most"),
        ([{"pass_id": "ABCDEF012345"}], "not 12 hex digits"),
        ([{"pass_id": "1-101"}], "not 12 hex digits"),
        ([{"pass_id": "a" * 12, "reason": "x"}], "not an object of"),
        ([{"pass_id": "a" * 12, "revoked_at": "yesterday"}], "not an ISO 8601 time"),
        ([{"pass_id": "a" * 12, "actor": "x" * 65}], "actor is not text"),
        ([["a" * 12]], "not an object of"),
    ],
)
def test_a_hostile_revocations_list_refuses_the_page_whole(revocations, said):
    with pytest.raises(PeerPageError, match=said):
        check_page(base_page(revocations), "gate-north", 0, 500, NOW)


def test_a_page_without_revocations_leaves_those_held_as_they_are():
    """A peer on a release before them says none: ``None``, not an empty set (which would
    lift every one held)."""
    assert check_page(base_page(None) | {}, "gate-north", 0, 500, NOW).revocations is None
    said = check_page(base_page([{"pass_id": "a" * 12}]), "gate-north", 0, 500, NOW)
    assert [r.pass_id for r in said.revocations] == ["a" * 12]


def test_a_poll_with_nothing_new_writes_nothing_and_retention_drops_a_peer_gone(gates, clock):
    north, south = gates
    _, pass_id = card()
    north.core.lists.revoke(pass_id, "lost", actor="guard Li")
    south.sync.poll()
    assert not south.sync.ledger.set_revocations(
        "gate-north", held_revocations(south.core.store.reader()), clock.now()
    )
    db = south.core.store.reader()
    [seen] = db.execute("SELECT seen_at FROM peer_revocations").fetchone()
    south.sync.poll()
    assert db.execute("SELECT seen_at FROM peer_revocations").fetchone()[0] == seen
    # North removed from south's config, or down for longer than the retention window.
    gone = south.core.store.submit(lambda db: purge(db, clock.now() + timedelta(days=1)))
    assert gone == 1 and held_revocations(south.core.store.reader()) == []


def test_the_south_guard_sees_the_card_voided_at_north_by_whom_and_when(
    tmp_path, clock, monkeypatch
):
    from guard_support import make_app, make_core, signed_in
    from test_compound_gates import env_name

    from checkpoint.peers import PeerSync
    from kiosk.config import parse_config
    from kiosk.peers import PEER_SCOPE

    north = Gate(tmp_path, "gate-north", clock)
    data = tmp_path / "south-console"
    data.mkdir()
    config = parse_config(
        {"site": {"kiosk_id": "gate-south"}, "compound": {"peers": [peer_entry("gate-north")]}}
    )
    south = make_core(data, clock, monkeypatch, config)
    try:
        _, pass_id = card()
        north.core.lists.revoke(pass_id, "lost", actor="guard Li")
        _, token = north.core.tokens.create([PEER_SCOPE], "gate peer", peer="gate-south")
        monkeypatch.setenv(env_name("gate-north"), token)
        peers = PeerSync(south, south.config.compound, client=TestClient(north.app))
        peers.poll()
        with signed_in(make_app(south)) as guard:
            page = guard.get("/guard/lists").text
        assert pass_id in page and "gate-north" in page and "guard Li" in page
        assert "2026-03-02" in page  # when it was voided there
        peers.stop(1)
    finally:
        south.close()
        north.close()


def test_the_guard_voiding_a_card_is_told_the_other_gates_are_told():
    """It said the other gates refuse the card only once the office's list revokes it."""
    from ui import i18n

    assert "other gates are told" in i18n.t("en", "pass.voided")
    assert "其他门岗随即收到通知" in i18n.t("zh-CN", "pass.voided")
